//! The 68-byte handshake that opens every peer connection (BEP 3), and its reserved bits.

use std::fmt;
use std::ops::BitOr;

use bytes::BufMut;

use super::{Decoded, WireError};
use crate::id::{InfoHashes, PeerId};

/// The protocol string, after its length byte 19 (BEP 3).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The eight reserved bytes of the handshake, where peers advertise extensions.
///
/// Bits are named by the constants below; combine them with `|`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// No extension bits set.
    pub const NONE: Self = Self([0; 8]);
    /// BEP 10 extension protocol: `reserved[5] & 0x10`.
    pub const EXTENSION_PROTOCOL: Self = Self::bit(5, 0x10);
    /// BEP 6 fast extension: `reserved[7] & 0x04`.
    pub const FAST: Self = Self::bit(7, 0x04);
    /// BEP 5 DHT (the sender will send a `port` message): `reserved[7] & 0x01`.
    pub const DHT: Self = Self::bit(7, 0x01);
    /// BEP 52 upgrade path: the sender of a hybrid torrent's v1 hash also supports v2 and the
    /// responder may answer with the v2 hash: `reserved[7] & 0x10`.
    pub const V2: Self = Self::bit(7, 0x10);

    const fn bit(byte: usize, mask: u8) -> Self {
        let mut bytes = [0; 8];
        bytes[byte] = mask;
        Self(bytes)
    }

    /// Whether every bit set in `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        let mut i = 0;
        while i < 8 {
            if self.0[i] & other.0[i] != other.0[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The bits set both here and in `other`: what both ends of a connection support.
    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        let mut out = [0; 8];
        let mut i = 0;
        while i < 8 {
            out[i] = self.0[i] & other.0[i];
            i += 1;
        }
        Self(out)
    }

    /// The bits set here or in `other`.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        let mut out = [0; 8];
        let mut i = 0;
        while i < 8 {
            out[i] = self.0[i] | other.0[i];
            i += 1;
        }
        Self(out)
    }
}

impl BitOr for Reserved {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reserved(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        for (bit, name) in [
            (Self::EXTENSION_PROTOCOL, " extension"),
            (Self::FAST, " fast"),
            (Self::DHT, " dht"),
            (Self::V2, " v2"),
        ] {
            if self.contains(bit) {
                f.write_str(name)?;
            }
        }
        f.write_str(")")
    }
}

/// Which of a torrent's info-hashes a handshake named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashVersion {
    /// The v1 (SHA-1) info-hash.
    V1,
    /// The v2 (SHA-256) info-hash, truncated to 20 bytes (BEP 52).
    V2,
}

/// The handshake: protocol string, reserved bits, info-hash, peer id (BEP 3).
///
/// The info-hash field is always 20 bytes: a v2 info-hash goes out truncated to its first 20
/// bytes (BEP 52). For a hybrid torrent, the initiator sends the v1 hash with
/// [`Reserved::V2`] set, and a responder that also supports v2 may answer with the truncated v2
/// hash to upgrade the connection (BEP 52 "Upgrade Path"); [`Handshake::names`] tells which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The extensions the sender supports.
    pub reserved: Reserved,
    /// The 20-byte info-hash (a v2 hash truncated).
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// The handshake's size on the wire.
    pub const LEN: usize = 68;

    /// A handshake naming `hashes` by their wire id: the v1 hash if there is one, otherwise the
    /// truncated v2 hash (BEP 52).
    pub fn new(reserved: Reserved, hashes: &InfoHashes, peer_id: PeerId) -> Self {
        Self {
            reserved,
            info_hash: hashes.wire_id(),
            peer_id,
        }
    }

    /// Which of `hashes` this handshake names, if any.
    pub fn names(&self, hashes: &InfoHashes) -> Option<HashVersion> {
        if hashes.v1().is_some_and(|h| h.0 == self.info_hash) {
            Some(HashVersion::V1)
        } else if hashes.v2().is_some_and(|h| h.truncated() == self.info_hash) {
            Some(HashVersion::V2)
        } else {
            None
        }
    }

    /// Decodes a handshake from the start of `buf`.
    ///
    /// A wrong protocol string is reported as soon as its first wrong byte has arrived, so a peer
    /// speaking something else (or an encrypted stream, BEP 8 / MSE) is recognised at once.
    pub fn decode(buf: &[u8]) -> Result<Decoded<Self>, WireError> {
        let header = header();
        let checked = buf.len().min(header.len());
        if let Some(offset) = (0..checked).find(|&i| buf[i] != header[i]) {
            return Err(WireError::BadProtocol { offset });
        }
        let Some(bytes) = buf.first_chunk::<{ Self::LEN }>() else {
            return Ok(Decoded::Need(Self::LEN - buf.len()));
        };
        let mut reserved = [0; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Decoded::Ready(
            Self {
                reserved: Reserved(reserved),
                info_hash,
                peer_id: PeerId(peer_id),
            },
            Self::LEN,
        ))
    }

    /// Writes the 68-byte handshake into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_slice(&header());
        buf.put_slice(&self.reserved.0);
        buf.put_slice(&self.info_hash);
        buf.put_slice(&self.peer_id.0);
    }
}

/// `\x13BitTorrent protocol`.
fn header() -> [u8; 20] {
    let mut out = [0; 20];
    out[0] = PROTOCOL.len() as u8;
    out[1..].copy_from_slice(PROTOCOL);
    out
}
