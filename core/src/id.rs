//! Typed identifiers: info-hashes and peer ids.
//!
//! A torrent is named by its info-hash: the SHA-1 of the bencoded `info` dictionary for v1
//! (BEP 3), the SHA-256 of it for v2 (BEP 52). A hybrid torrent has both. On the wire a v2 hash is
//! truncated to its first 20 bytes wherever a 20-byte field is expected (BEP 52).

use std::fmt;

use crate::slots::SlotKey;

/// A v1 info-hash: SHA-1 of the `info` dictionary (BEP 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHashV1(pub [u8; 20]);

/// A v2 info-hash: SHA-256 of the `info` dictionary (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHashV2(pub [u8; 32]);

impl InfoHashV2 {
    /// The first 20 bytes, used in 20-byte wire fields (handshake, tracker, DHT) per BEP 52.
    pub fn truncated(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[..20]);
        out
    }
}

/// The info-hashes a torrent is known by: v1, v2, or both for a hybrid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InfoHashes {
    /// A v1-only torrent.
    V1(InfoHashV1),
    /// A v2-only torrent.
    V2(InfoHashV2),
    /// A hybrid torrent (BEP 52 "upgrade path"): the same files under both hashes.
    Hybrid(InfoHashV1, InfoHashV2),
}

impl InfoHashes {
    /// The v1 hash, if the torrent has one.
    pub fn v1(&self) -> Option<InfoHashV1> {
        match self {
            Self::V1(h) | Self::Hybrid(h, _) => Some(*h),
            Self::V2(_) => None,
        }
    }

    /// The v2 hash, if the torrent has one.
    pub fn v2(&self) -> Option<InfoHashV2> {
        match self {
            Self::V2(h) | Self::Hybrid(_, h) => Some(*h),
            Self::V1(_) => None,
        }
    }

    /// The 20 bytes that name this torrent on the wire: the v1 hash if there is one, otherwise the
    /// truncated v2 hash (BEP 52).
    pub fn wire_id(&self) -> [u8; 20] {
        match self {
            Self::V1(h) | Self::Hybrid(h, _) => h.0,
            Self::V2(h) => h.truncated(),
        }
    }
}

/// A 20-byte peer id (BEP 3; conventions in BEP 20).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for InfoHashV1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for InfoHashV1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV1({self})")
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerId(")?;
        for &b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str(")")
    }
}

/// Parses 40 hex digits (either case) into 20 bytes, or 64 into 32.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_truncation() {
        let h = InfoHashV2(std::array::from_fn(|i| i as u8));
        assert_eq!(parse_hex::<32>(&h.to_string()), Some(h.0));
        assert_eq!(h.truncated(), std::array::from_fn::<u8, 20, _>(|i| i as u8));
        assert_eq!(InfoHashes::V2(h).wire_id(), h.truncated());
        assert_eq!(parse_hex::<20>("zz"), None);
        assert_eq!(parse_hex::<1>("G0"), None);
        assert_eq!(parse_hex::<1>("aF"), Some([0xaf]));
    }
}

/// Identifies one torrent in a [`Session`](crate::session::Session).
///
/// Carries a generation, so an id kept after its torrent was removed is recognised as stale
/// rather than silently naming a newer torrent in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TorrentId(pub(crate) SlotKey);

/// Identifies one peer connection in a [`Session`](crate::session::Session).
///
/// The session allocates it ([`Session::accept`](crate::session::Session::accept) for incoming
/// connections, `Output::Connect` for outgoing ones); the runtime uses it to name the socket.
/// Like [`TorrentId`] it carries a generation: inputs for a closed connection's id are ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub(crate) SlotKey);

impl ConnId {
    /// A small number for logs; unique among open connections, reused after a close.
    pub fn slot(&self) -> u32 {
        self.0.slot
    }
}

/// Names one disk, hash, HTTP or DNS job the session asked the runtime to run.
///
/// Never reused within a session, so a late completion can never be mistaken for another job's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The raw number, for logs.
    pub fn get(&self) -> u64 {
        self.0
    }

    /// An id made outside a session, for runtimes' own jobs and their tests (a session ignores
    /// completions for ids it did not hand out).
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}
