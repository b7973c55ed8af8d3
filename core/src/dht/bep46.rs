//! BEP 46: torrents that update through mutable items. A publisher puts a mutable item (BEP
//! 44) whose value is `{"ih": <20-byte info-hash>}`; a consumer who knows the public key (and
//! the salt, if any) gets the item and learns the current info-hash.
//!
//! Here: the value's form ([`torrent_value`], [`info_hash_of`]), the magnet link that names a
//! source (`magnet:?xs=urn:btpk:<key hex>&s=<salt hex>`, [`TorrentSource::from_magnet`]), and
//! the lookup target. The lookup itself is [`DhtNode::resolve_torrent`], which ends with a
//! [`DhtEvent::TorrentResolved`]; publishing is [`DhtNode::put_mutable`] of
//! [`torrent_value`].
//!
//! [`DhtNode::resolve_torrent`]: super::DhtNode::resolve_torrent
//! [`DhtNode::put_mutable`]: super::DhtNode::put_mutable
//! [`DhtEvent::TorrentResolved`]: super::DhtEvent::TorrentResolved

use super::item::{mutable_target, ItemValue, MutableItem, MAX_SALT_LEN};
use super::node_id::NodeId;
use crate::bencode::{self, DictWriter, Value};
use crate::id::InfoHashV1;

/// Where an updatable torrent is published: a public key and an optional salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSource {
    /// The publisher's ed25519 public key.
    pub public_key: [u8; 32],
    /// The salt (empty for none).
    pub salt: Vec<u8>,
}

impl TorrentSource {
    /// The DHT target of the source's mutable item: SHA-1(key ‖ salt).
    pub fn target(&self) -> NodeId {
        mutable_target(&self.public_key, &self.salt)
    }

    /// Parses `magnet:?xs=urn:btpk:<64 hex digits>[&s=<hex salt>]` (BEP 46). Other
    /// parameters are ignored; `None` when there is no valid `xs=urn:btpk:` or the salt is not
    /// hex or longer than 64 bytes.
    pub fn from_magnet(uri: &str) -> Option<Self> {
        let query = uri.strip_prefix("magnet:?")?;
        let mut public_key = None;
        let mut salt = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=')?;
            match key {
                "xs" => {
                    let hex = value.strip_prefix("urn:btpk:")?;
                    let bytes = decode_hex(hex)?;
                    public_key = Some(<[u8; 32]>::try_from(bytes.as_slice()).ok()?);
                }
                "s" => {
                    salt = decode_hex(value)?;
                    if salt.len() > MAX_SALT_LEN {
                        return None;
                    }
                }
                _ => {}
            }
        }
        Some(Self {
            public_key: public_key?,
            salt,
        })
    }

    /// The magnet link naming this source.
    pub fn to_magnet(&self) -> String {
        let mut s = format!("magnet:?xs=urn:btpk:{}", encode_hex(&self.public_key));
        if !self.salt.is_empty() {
            s.push_str("&s=");
            s.push_str(&encode_hex(&self.salt));
        }
        s
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The item value that points at `info_hash`: `d2:ih20:<info-hash>e`.
pub fn torrent_value(info_hash: InfoHashV1) -> ItemValue {
    let mut v = Vec::with_capacity(32);
    let mut d = DictWriter::new(&mut v);
    d.bytes(b"ih", &info_hash.0);
    d.finish();
    ItemValue::new(v).expect("a one-key dictionary of 32 bytes is valid")
}

/// The info-hash a BEP 46 value points at: its `ih` key, 20 bytes. Other keys are allowed.
pub fn info_hash_of(value: &ItemValue) -> Option<InfoHashV1> {
    let v = bencode::decode(value.as_bytes()).ok()?;
    let ih = v.as_dict()?.get(b"ih").and_then(Value::as_bytes)?;
    Some(InfoHashV1(ih.try_into().ok()?))
}

/// The info-hash of a verified mutable item, if it is a BEP 46 torrent pointer.
pub fn resolve(item: &MutableItem) -> Option<InfoHashV1> {
    info_hash_of(&item.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::item::ItemKey;

    const KEY: &str = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e";

    #[test]
    fn bep46_test_vector_1_magnet_to_target() {
        let src = TorrentSource::from_magnet(&format!("magnet:?xs=urn:btpk:{KEY}")).unwrap();
        assert!(src.salt.is_empty());
        assert_eq!(
            encode_hex(&src.target().0),
            "cc3f9d90b572172053626f9980ce261a850d050b"
        );
        assert_eq!(src.to_magnet(), format!("magnet:?xs=urn:btpk:{KEY}"));
    }

    #[test]
    fn bep46_test_vector_2_with_salt() {
        let uri = format!("magnet:?xs=urn:btpk:{KEY}&s=6e");
        let src = TorrentSource::from_magnet(&uri).unwrap();
        assert_eq!(src.salt, b"n");
        assert_eq!(
            encode_hex(&src.target().0),
            "59ee7c2cb9b4f7eb1986ee2d18fd2fdb8a56554f"
        );
        assert_eq!(src.to_magnet(), uri);
    }

    #[test]
    fn bad_magnets_are_refused() {
        for bad in [
            "magnet:?xt=urn:btih:0000000000000000000000000000000000000000",
            "magnet:?xs=urn:btpk:8543",
            &format!("magnet:?xs=urn:btpk:{KEY}&s=6"),
            &format!("magnet:?xs=urn:btpk:{KEY}&s={}", "00".repeat(65)),
            "http://example.invalid/",
        ] {
            assert_eq!(TorrentSource::from_magnet(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_point_at_info_hashes() {
        let ih = InfoHashV1([9; 20]);
        let v = torrent_value(ih);
        assert_eq!(&v.as_bytes()[..8], b"d2:ih20:");
        assert_eq!(info_hash_of(&v), Some(ih));
        let key = ItemKey::from_seed(&[1; 32]);
        let item = MutableItem::sign(&key, b"", 1, v).unwrap();
        assert_eq!(resolve(&item), Some(ih));
        let other = ItemValue::new(b"d2:ih3:abce".to_vec()).unwrap();
        assert_eq!(info_hash_of(&other), None);
        assert_eq!(info_hash_of(&ItemValue::from_bytes(b"x").unwrap()), None);
    }
}
