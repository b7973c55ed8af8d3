//! BEP 11 peer exchange (`ut_pex`): the message codec and what to tell one peer, and when.
//!
//! A message is a bencoded dictionary of compact peer lists: `added` / `dropped` hold 6-byte
//! IPv4 entries (address, port), `added6` / `dropped6` 18-byte IPv6 ones, and `added.f` /
//! `added6.f` one [`PexFlags`] byte per added peer.
//!
//! PEX must not be used for private torrents (BEP 27): the caller knows whether a torrent is
//! private and must then neither create a [`PexState`] nor offer `ut_pex` in its handshake,
//! and must ignore `ut_pex` messages it receives for one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BufMut;

use super::ExtError;
use crate::bencode::{put_bytes, DictWriter, Value};
use crate::time::{Duration, Instant};

/// The most `added` entries (IPv4 and IPv6 together) a received message may hold.
pub const MAX_ADDED: usize = 200;
/// The most `dropped` entries (IPv4 and IPv6 together) a received message may hold.
pub const MAX_DROPPED: usize = 200;
/// The most added (and, separately, dropped) entries we send after the first message (BEP 11).
pub const MAX_SENT_PER_MESSAGE: usize = 50;
/// The most added entries in the first message we send to a peer.
pub const MAX_SENT_INITIAL: usize = MAX_ADDED;
/// The shortest time between two messages to one peer (BEP 11: at most one a minute).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);

/// The flags byte of an added peer (BEP 11). Unknown bits are kept as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// 0x01: prefers encryption (the `e` key of its extension handshake).
    pub const ENCRYPTION: Self = Self(0x01);
    /// 0x02: a seed or upload-only (BEP 21) peer.
    pub const SEED: Self = Self(0x02);
    /// 0x04: supports uTP (BEP 29).
    pub const UTP: Self = Self(0x04);
    /// 0x08: offered `ut_holepunch` (BEP 55) in its extension handshake.
    pub const HOLEPUNCH: Self = Self(0x08);
    /// 0x10: we connected to it (outgoing), so it is reachable.
    pub const REACHABLE: Self = Self(0x10);

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of both.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// One `ut_pex` message (BEP 11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message, with their flags.
    pub added: Vec<(SocketAddr, PexFlags)>,
    /// Peers the sender disconnected from since its last message.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// Decodes a `ut_pex` payload.
    ///
    /// At most [`MAX_ADDED`] added and [`MAX_DROPPED`] dropped entries are accepted (counted
    /// before anything is allocated). A flags string shorter than its list leaves the remaining
    /// peers without flags; a longer one is ignored past the list. A compact list whose length is
    /// not a whole number of entries is an error. Absent lists are empty.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtError> {
        let dict = super::decode_dict(payload)?;
        let bytes = |key: &'static str| -> Result<&[u8], ExtError> {
            match dict.get(key.as_bytes()) {
                None => Ok(&[]),
                Some(v) => v.as_bytes().ok_or(ExtError::BadValue(key)),
            }
        };
        let (added4, added6) = (bytes("added")?, bytes("added6")?);
        let (dropped4, dropped6) = (bytes("dropped")?, bytes("dropped6")?);
        let count = |v4: &[u8], v6: &[u8], what, limit| {
            let n = entries(v4, 6, what)? + entries(v6, 18, what)?;
            if n > limit {
                return Err(ExtError::TooMany { what, limit });
            }
            Ok(n)
        };
        let n_added = count(added4, added6, "pex added", MAX_ADDED)?;
        let n_dropped = count(dropped4, dropped6, "pex dropped", MAX_DROPPED)?;
        let flags = |key| match dict.get(key) {
            Some(Value::Bytes(f)) => *f,
            _ => &[],
        };
        let mut added = Vec::with_capacity(n_added);
        for (list, f, size) in [
            (added4, flags(b"added.f"), 6),
            (added6, flags(b"added6.f"), 18),
        ] {
            for (i, entry) in list.chunks_exact(size).enumerate() {
                let flag = f.get(i).copied().map_or(PexFlags::NONE, PexFlags);
                added.push((compact(entry), flag));
            }
        }
        let mut dropped = Vec::with_capacity(n_dropped);
        dropped.extend(dropped4.chunks_exact(6).map(compact));
        dropped.extend(dropped6.chunks_exact(18).map(compact));
        Ok(Self { added, dropped })
    }

    /// Writes the bencoded payload into `buf`; lists of an address family with no entries are
    /// left out.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut a4 = Vec::new();
        let mut f4 = Vec::new();
        let mut a6 = Vec::new();
        let mut f6 = Vec::new();
        for (addr, flags) in &self.added {
            if addr.is_ipv4() {
                put_compact(&mut a4, addr);
                f4.push(flags.0);
            } else {
                put_compact(&mut a6, addr);
                f6.push(flags.0);
            }
        }
        let mut d4 = Vec::new();
        let mut d6 = Vec::new();
        for addr in &self.dropped {
            put_compact(if addr.is_ipv4() { &mut d4 } else { &mut d6 }, addr);
        }
        let mut d = DictWriter::new(buf);
        for (key, list) in [
            (&b"added"[..], &a4),
            (b"added.f", &f4),
            (b"added6", &a6),
            (b"added6.f", &f6),
            (b"dropped", &d4),
            (b"dropped6", &d6),
        ] {
            if !list.is_empty() {
                put_bytes(d.value(key), list);
            }
        }
        d.finish();
    }
}

/// The number of `size`-byte entries in a compact list.
fn entries(list: &[u8], size: usize, what: &'static str) -> Result<usize, ExtError> {
    if list.len() % size != 0 {
        return Err(ExtError::BadLength {
            what,
            expected: list.len() / size * size + size,
            actual: list.len(),
        });
    }
    Ok(list.len() / size)
}

/// A compact address: 4 or 16 address bytes, then a big-endian port.
pub(crate) fn compact(entry: &[u8]) -> SocketAddr {
    let (ip, port) = entry.split_at(entry.len() - 2);
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match <[u8; 4]>::try_from(ip) {
        Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        Err(_) => {
            let mut v6 = [0u8; 16];
            v6.copy_from_slice(ip);
            IpAddr::V6(Ipv6Addr::from(v6))
        }
    };
    SocketAddr::new(ip, port)
}

/// Appends the compact form of `addr` (6 bytes for IPv4, 18 for IPv6).
pub(crate) fn put_compact(buf: &mut impl BufMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => buf.put_slice(&ip.octets()),
        IpAddr::V6(ip) => buf.put_slice(&ip.octets()),
    }
    buf.put_u16(addr.port());
}

/// What PEX has told one peer, and when it may tell it more (BEP 11).
///
/// The caller keeps one per connection that offered `ut_pex`, never for a private torrent, and
/// calls [`next_message`](Self::next_message) with the torrent's current connected peers
/// (established connections only, BEP 11) at least once a minute, or at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Clone, Debug)]
pub struct PexState {
    recipient: SocketAddr,
    /// The peers the recipient believes we are connected to.
    told: BTreeMap<SocketAddr, PexFlags>,
    last_sent: Option<Instant>,
}

impl PexState {
    /// A fresh state for the connection to `recipient` (never told about itself).
    pub fn new(recipient: SocketAddr) -> Self {
        Self {
            recipient,
            told: BTreeMap::new(),
            last_sent: None,
        }
    }

    /// The earliest time the next message may go, if one was sent already.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + PEX_INTERVAL)
    }

    /// The message to send now, if any: the peers connected since the last message (added) and
    /// those gone (dropped), each capped at [`MAX_SENT_PER_MESSAGE`] ([`MAX_SENT_INITIAL`] for
    /// the first message's added list); the rest waits for the next message. `None` within
    /// [`PEX_INTERVAL`] of the last message or when nothing changed.
    pub fn next_message(
        &mut self,
        now: Instant,
        connected: impl IntoIterator<Item = (SocketAddr, PexFlags)>,
    ) -> Option<PexMessage> {
        if self.poll_timeout().is_some_and(|t| now < t) {
            return None;
        }
        let current: BTreeMap<SocketAddr, PexFlags> = connected
            .into_iter()
            .filter(|(a, _)| *a != self.recipient)
            .collect();
        let max_added = if self.last_sent.is_none() {
            MAX_SENT_INITIAL
        } else {
            MAX_SENT_PER_MESSAGE
        };
        let added: Vec<(SocketAddr, PexFlags)> = current
            .iter()
            .filter(|(a, _)| !self.told.contains_key(a))
            .take(max_added)
            .map(|(a, f)| (*a, *f))
            .collect();
        let dropped: Vec<SocketAddr> = self
            .told
            .keys()
            .filter(|a| !current.contains_key(a))
            .take(MAX_SENT_PER_MESSAGE)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        self.told.extend(added.iter().copied());
        for a in &dropped {
            self.told.remove(a);
        }
        self.last_sent = Some(now);
        Some(PexMessage { added, dropped })
    }
}
