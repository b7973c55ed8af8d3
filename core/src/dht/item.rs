//! BEP 44 items: immutable values stored under their SHA-1, mutable values signed with an
//! ed25519 key and stored under SHA-1(public key ‖ salt), and the bounded store a node keeps
//! them in.
//!
//! A value is any bencoded type whose canonical encoding is at most [`MAX_VALUE_LEN`] bytes
//! ([`ItemValue`] checks both). A mutable item signs the buffer
//! `[4:salt<len>:<salt>]3:seqi<seq>e1:v<encoded value>` ([`signing_buffer`]; the salt part
//! only when the salt is not empty). Signing is deterministic (ed25519), so the core needs no
//! randomness for it; key generation takes its 32-byte seed from the caller.
//!
//! The [`ItemStore`] keeps at most `max_items` items, each expiring `item_ttl` after its last
//! put (BEP 44: "these items MAY expire in 2 hours"). When full, a new item evicts the one
//! closest to expiry. A mutable item is replaced only by a higher sequence number (or
//! refreshed by the same one with the same value), and a `cas` must match the stored `seq`.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha1::{Digest, Sha1};

use super::node_id::NodeId;
use crate::bencode::{self, put_bytes, put_int, DecodeOptions};
use crate::error::{Classify, Fault};
use crate::time::{Duration, Instant};

/// The longest encoded value stored or sent (BEP 44: "MAY reject ... longer than 1000 bytes").
pub const MAX_VALUE_LEN: usize = 1000;

/// The longest salt (BEP 44: "MUST NOT be longer than 64 bytes").
pub const MAX_SALT_LEN: usize = 64;

/// BEP 44 error codes (besides BEP 5's), sent in `put` error replies.
pub mod code {
    /// The value (`v`) is too big.
    pub const VALUE_TOO_BIG: i64 = 205;
    /// The signature does not verify.
    pub const INVALID_SIGNATURE: i64 = 206;
    /// The salt is too big.
    pub const SALT_TOO_BIG: i64 = 207;
    /// `cas` does not match the stored sequence number.
    pub const CAS_MISMATCH: i64 = 301;
    /// The sequence number is lower than (or equal to, with another value) the stored one.
    pub const SEQ_TOO_LOW: i64 = 302;
}

/// Why an item (or a `put` of one) is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemError {
    /// The encoded value is longer than [`MAX_VALUE_LEN`].
    ValueTooLarge {
        /// Its length.
        len: usize,
    },
    /// The value is not one canonical bencoded value (unsorted keys, trailing bytes, ...).
    InvalidBencode,
    /// The salt is longer than [`MAX_SALT_LEN`].
    SaltTooLarge {
        /// Its length.
        len: usize,
    },
    /// The public key is not a valid ed25519 point, or the signature does not verify.
    InvalidSignature,
    /// A negative sequence number (BEP 44 "MAY reject").
    NegativeSeq,
    /// `cas` does not match the stored sequence number.
    CasMismatch {
        /// The stored sequence number.
        stored: i64,
    },
    /// The sequence number is not above the stored one.
    SeqTooLow {
        /// The stored sequence number.
        stored: i64,
    },
    /// The item does not hash to the target it was looked up under.
    TargetMismatch,
    /// The store is full of items that may not be evicted yet.
    StoreFull,
}

impl ItemError {
    /// The BEP 44 (or BEP 5) error code to answer a `put` with.
    pub fn code(&self) -> i64 {
        match self {
            Self::ValueTooLarge { .. } => code::VALUE_TOO_BIG,
            Self::InvalidSignature => code::INVALID_SIGNATURE,
            Self::SaltTooLarge { .. } => code::SALT_TOO_BIG,
            Self::CasMismatch { .. } => code::CAS_MISMATCH,
            Self::SeqTooLow { .. } => code::SEQ_TOO_LOW,
            Self::StoreFull => super::krpc::code::SERVER,
            Self::InvalidBencode | Self::NegativeSeq | Self::TargetMismatch => {
                super::krpc::code::PROTOCOL
            }
        }
    }
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValueTooLarge { len } => {
                write!(f, "item value of {len} bytes is over {MAX_VALUE_LEN}")
            }
            Self::InvalidBencode => f.write_str("item value is not canonical bencode"),
            Self::SaltTooLarge { len } => write!(f, "salt of {len} bytes is over {MAX_SALT_LEN}"),
            Self::InvalidSignature => f.write_str("invalid signature"),
            Self::NegativeSeq => f.write_str("negative sequence number"),
            Self::CasMismatch { stored } => write!(f, "cas mismatch: stored seq is {stored}"),
            Self::SeqTooLow { stored } => write!(f, "sequence number not above {stored}"),
            Self::TargetMismatch => f.write_str("item does not hash to its target"),
            Self::StoreFull => f.write_str("item store is full"),
        }
    }
}

impl std::error::Error for ItemError {}

impl Classify for ItemError {
    fn fault(&self) -> Fault {
        match self {
            Self::ValueTooLarge { .. } | Self::SaltTooLarge { .. } | Self::StoreFull => {
                Fault::LimitExceeded
            }
            Self::InvalidBencode => Fault::Malformed,
            _ => Fault::PeerMisbehaved,
        }
    }
}

/// A bencoded value of at most [`MAX_VALUE_LEN`] bytes in canonical form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemValue(Vec<u8>);

impl fmt::Debug for ItemValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemValue({})", String::from_utf8_lossy(&self.0))
    }
}

impl ItemValue {
    /// Checks that `encoded` is one canonical bencoded value of at most [`MAX_VALUE_LEN`]
    /// bytes.
    pub fn new(encoded: Vec<u8>) -> Result<Self, ItemError> {
        if encoded.len() > MAX_VALUE_LEN {
            return Err(ItemError::ValueTooLarge { len: encoded.len() });
        }
        // Strict mode refuses unsorted keys, leading zeros and trailing bytes (BEP 44: a put
        // with invalid bencoding MUST be rejected).
        let options = DecodeOptions::STRICT
            .with_max_depth(16)
            .with_max_tokens(MAX_VALUE_LEN as u32);
        bencode::decode_with(&encoded, options).map_err(|_| ItemError::InvalidBencode)?;
        Ok(Self(encoded))
    }

    /// A byte-string value (`<len>:<bytes>`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ItemError> {
        let mut v = Vec::with_capacity(bytes.len() + 6);
        put_bytes(&mut v, bytes);
        Self::new(v)
    }

    /// The encoded value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The target of an immutable item: SHA-1 of its encoded value.
pub fn immutable_target(value: &ItemValue) -> NodeId {
    NodeId(Sha1::digest(value.as_bytes()).into())
}

/// The target of a mutable item: SHA-1 of the public key followed by the salt.
pub fn mutable_target(public_key: &[u8; 32], salt: &[u8]) -> NodeId {
    let mut h = Sha1::new();
    h.update(public_key);
    h.update(salt);
    NodeId(h.finalize().into())
}

/// The buffer a mutable item's signature covers (BEP 44 "Signature Verification").
pub fn signing_buffer(salt: &[u8], seq: i64, value: &ItemValue) -> Vec<u8> {
    let mut b = Vec::with_capacity(value.as_bytes().len() + salt.len() + 40);
    if !salt.is_empty() {
        put_bytes(&mut b, b"salt");
        put_bytes(&mut b, salt);
    }
    put_bytes(&mut b, b"seq");
    put_int(&mut b, seq);
    put_bytes(&mut b, b"v");
    b.extend_from_slice(value.as_bytes());
    b
}

/// An ed25519 key pair that signs mutable items.
#[derive(Clone)]
pub struct ItemKey(SigningKey);

impl fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemKey(public {:02x?})", self.public_key())
    }
}

impl ItemKey {
    /// The key pair of a 32-byte secret seed (which the runtime draws from the operating
    /// system's entropy, and the application keeps to publish updates later).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32-byte public key (`k`).
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
}

/// A signed mutable item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableItem {
    /// The publisher's ed25519 public key (`k`).
    pub public_key: [u8; 32],
    /// The salt (empty for none); never sent in `get` replies.
    pub salt: Vec<u8>,
    /// The sequence number.
    pub seq: i64,
    /// The value.
    pub value: ItemValue,
    /// The signature (`sig`) over [`signing_buffer`].
    pub signature: [u8; 64],
}

impl MutableItem {
    /// Signs `value` at `seq` under `key` and `salt`.
    pub fn sign(key: &ItemKey, salt: &[u8], seq: i64, value: ItemValue) -> Result<Self, ItemError> {
        if salt.len() > MAX_SALT_LEN {
            return Err(ItemError::SaltTooLarge { len: salt.len() });
        }
        if seq < 0 {
            return Err(ItemError::NegativeSeq);
        }
        let signature = key.0.sign(&signing_buffer(salt, seq, &value)).to_bytes();
        Ok(Self {
            public_key: key.public_key(),
            salt: salt.to_vec(),
            seq,
            value,
            signature,
        })
    }

    /// Checks the salt's length, the sequence number and the signature.
    pub fn verify(&self) -> Result<(), ItemError> {
        if self.salt.len() > MAX_SALT_LEN {
            return Err(ItemError::SaltTooLarge {
                len: self.salt.len(),
            });
        }
        if self.seq < 0 {
            return Err(ItemError::NegativeSeq);
        }
        let key =
            VerifyingKey::from_bytes(&self.public_key).map_err(|_| ItemError::InvalidSignature)?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(
            &signing_buffer(&self.salt, self.seq, &self.value),
            &signature,
        )
        .map_err(|_| ItemError::InvalidSignature)
    }

    /// The target it is stored under.
    pub fn target(&self) -> NodeId {
        mutable_target(&self.public_key, &self.salt)
    }
}

/// An immutable or a mutable item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// Stored under SHA-1 of the value.
    Immutable(ItemValue),
    /// Stored under SHA-1 of key and salt.
    Mutable(MutableItem),
}

impl Item {
    /// The target it is stored under.
    pub fn target(&self) -> NodeId {
        match self {
            Self::Immutable(v) => immutable_target(v),
            Self::Mutable(m) => m.target(),
        }
    }

    /// The value.
    pub fn value(&self) -> &ItemValue {
        match self {
            Self::Immutable(v) => v,
            Self::Mutable(m) => &m.value,
        }
    }
}

/// The item store's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    /// Items kept (each at most ~1.2 KB).
    pub max_items: usize,
    /// How long an item lives after its last put.
    pub item_ttl: Duration,
}

impl Default for ItemLimits {
    fn default() -> Self {
        Self {
            max_items: 1_000,
            item_ttl: Duration::from_secs(2 * 60 * 60),
        }
    }
}

#[derive(Clone, Debug)]
struct Stored {
    item: Item,
    expires: Instant,
}

/// Items put to this node, by target (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct ItemStore {
    limits: ItemLimits,
    items: BTreeMap<NodeId, Stored>,
}

impl ItemStore {
    /// An empty store with these bounds.
    pub fn new(limits: ItemLimits) -> Self {
        Self {
            limits,
            items: BTreeMap::new(),
        }
    }

    /// The number of items stored.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item stored under `target`.
    pub fn get(&self, target: &NodeId) -> Option<&Item> {
        self.items.get(target).map(|s| &s.item)
    }

    /// Stores `item` (already verified by the caller: [`MutableItem::verify`]) under its
    /// target, following BEP 44's `seq` and `cas` rules.
    pub fn put(&mut self, now: Instant, item: Item, cas: Option<i64>) -> Result<(), ItemError> {
        let target = item.target();
        let expires = now + self.limits.item_ttl;
        if let Some(stored) = self.items.get_mut(&target) {
            if let (Item::Mutable(new), Item::Mutable(old)) = (&item, &stored.item) {
                if cas.is_some_and(|cas| cas != old.seq) {
                    return Err(ItemError::CasMismatch { stored: old.seq });
                }
                let same = new.seq == old.seq && new.value == old.value;
                if new.seq < old.seq || (new.seq == old.seq && !same) {
                    return Err(ItemError::SeqTooLow { stored: old.seq });
                }
            }
            // An immutable item, or the same mutable one again: refresh (and take the new
            // signature, which verified).
            *stored = Stored { item, expires };
            return Ok(());
        }
        if self.items.len() >= self.limits.max_items {
            let oldest = self
                .items
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    self.items.remove(&k);
                }
                None => return Err(ItemError::StoreFull),
            }
        }
        self.items.insert(target, Stored { item, expires });
        Ok(())
    }

    /// Drops expired items.
    pub fn expire(&mut self, now: Instant) {
        self.items.retain(|_, s| s.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let s: String = s.split_whitespace().collect();
        let mut out = [0; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    const PUBLIC: &str = "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548";
    const PRIVATE: &str = "e06d3183d14159228433ed599221b80bd0a5ce8352e4bdf0262f76786ef1c74d
        b7e7a9fea2c0eb269d61e3b38e450a22e754941ac78479d6c54e1faf6037881d";

    /// Signs with the BEP's 64-byte expanded secret key (libsodium's format), which the
    /// public API does not take: the vectors do not give the 32-byte seed.
    fn sign_expanded(buffer: &[u8]) -> [u8; 64] {
        use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
        let esk = ExpandedSecretKey::from_bytes(&hex::<64>(PRIVATE));
        let vk = VerifyingKey::from_bytes(&hex::<32>(PUBLIC)).unwrap();
        raw_sign::<sha2::Sha512>(&esk, buffer, &vk).to_bytes()
    }

    fn hello() -> ItemValue {
        ItemValue::new(b"12:Hello World!".to_vec()).unwrap()
    }

    #[test]
    fn bep44_test_vector_1_mutable() {
        let buffer = signing_buffer(b"", 1, &hello());
        assert_eq!(buffer, b"3:seqi1e1:v12:Hello World!");
        let sig = hex::<64>(
            "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff
             1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
        );
        assert_eq!(sign_expanded(&buffer), sig);
        let item = MutableItem {
            public_key: hex(PUBLIC),
            salt: Vec::new(),
            seq: 1,
            value: hello(),
            signature: sig,
        };
        assert_eq!(item.verify(), Ok(()));
        assert_eq!(
            item.target().0,
            hex::<20>("4a533d47ec9c7d95b1ad75f576cffc641853b750")
        );
        // Any change breaks the signature.
        let mut bad = item.clone();
        bad.seq = 2;
        assert_eq!(bad.verify(), Err(ItemError::InvalidSignature));
        let mut bad = item;
        bad.signature[0] ^= 1;
        assert_eq!(bad.verify(), Err(ItemError::InvalidSignature));
    }

    #[test]
    fn bep44_test_vector_2_mutable_with_salt() {
        let buffer = signing_buffer(b"foobar", 1, &hello());
        assert_eq!(buffer, b"4:salt6:foobar3:seqi1e1:v12:Hello World!");
        let sig = hex::<64>(
            "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d
             df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
        );
        assert_eq!(sign_expanded(&buffer), sig);
        let item = MutableItem {
            public_key: hex(PUBLIC),
            salt: b"foobar".to_vec(),
            seq: 1,
            value: hello(),
            signature: sig,
        };
        assert_eq!(item.verify(), Ok(()));
        assert_eq!(
            item.target().0,
            hex::<20>("411eba73b6f087ca51a3795d9c8c938d365e32c1")
        );
        // The salt is part of what is signed.
        let mut bad = item;
        bad.salt = b"foobaz".to_vec();
        assert_eq!(bad.verify(), Err(ItemError::InvalidSignature));
    }

    #[test]
    fn bep44_test_vector_3_immutable() {
        assert_eq!(
            immutable_target(&hello()).0,
            hex::<20>("e5f96f6f38320f0f33959cb4d3d656452117aadb")
        );
    }

    #[test]
    fn signing_round_trips_and_values_are_checked() {
        let key = ItemKey::from_seed(&[3; 32]);
        let item = MutableItem::sign(&key, b"s", 7, hello()).unwrap();
        assert_eq!(item.verify(), Ok(()));
        assert_eq!(item.target(), mutable_target(&key.public_key(), b"s"));
        assert_eq!(
            ItemKey::from_seed(&key.seed()).public_key(),
            key.public_key()
        );
        assert_eq!(
            MutableItem::sign(&key, &[0; 65], 1, hello()),
            Err(ItemError::SaltTooLarge { len: 65 })
        );
        assert_eq!(
            MutableItem::sign(&key, b"", -1, hello()),
            Err(ItemError::NegativeSeq)
        );
        assert_eq!(
            ItemValue::new(b"d1:bi1e1:ai2ee".to_vec()),
            Err(ItemError::InvalidBencode)
        );
        assert_eq!(
            ItemValue::new(b"i1ei2e".to_vec()),
            Err(ItemError::InvalidBencode)
        );
        assert_eq!(
            ItemValue::from_bytes(&[b'x'; 997]),
            Err(ItemError::ValueTooLarge { len: 1001 })
        );
        assert_eq!(
            ItemValue::from_bytes(&[b'x'; 996])
                .unwrap()
                .as_bytes()
                .len(),
            1000
        );
    }

    #[test]
    fn store_follows_seq_and_cas_rules_and_is_bounded() {
        let key = ItemKey::from_seed(&[5; 32]);
        let v = |s: &[u8]| ItemValue::from_bytes(s).unwrap();
        let m = |seq, val: &[u8]| Item::Mutable(MutableItem::sign(&key, b"", seq, v(val)).unwrap());
        let limits = ItemLimits {
            max_items: 2,
            item_ttl: Duration::from_secs(100),
        };
        let mut store = ItemStore::new(limits);
        let t0 = Instant::ZERO;
        assert_eq!(
            store.put(t0, m(2, b"a"), Some(9)),
            Ok(()),
            "cas ignored when empty"
        );
        assert_eq!(
            store.put(t0, m(1, b"b"), None),
            Err(ItemError::SeqTooLow { stored: 2 })
        );
        assert_eq!(
            store.put(t0, m(2, b"b"), None),
            Err(ItemError::SeqTooLow { stored: 2 })
        );
        assert_eq!(
            store.put(t0, m(2, b"a"), None),
            Ok(()),
            "same item refreshes"
        );
        assert_eq!(
            store.put(t0, m(3, b"c"), Some(1)),
            Err(ItemError::CasMismatch { stored: 2 })
        );
        assert_eq!(store.put(t0, m(3, b"c"), Some(2)), Ok(()));
        let target = mutable_target(&key.public_key(), b"");
        assert!(matches!(store.get(&target), Some(Item::Mutable(i)) if i.seq == 3));

        // Bounded: a third item evicts the one closest to expiry.
        let later = t0 + Duration::from_secs(10);
        store.put(later, Item::Immutable(v(b"x")), None).unwrap();
        store.put(later, Item::Immutable(v(b"y")), None).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.get(&target).is_none());
        store.expire(later + Duration::from_secs(100));
        assert!(store.is_empty());
    }
}
