//! BEP 14 local service discovery: the `BT-SEARCH` announce codec and the announce policy.
//!
//! LSD announces "I am in these swarms, on this port" as an HTTP-like request in a UDP datagram
//! to a multicast group ([`LSD_GROUP_V4`], [`LSD_GROUP_V6`]). This module only builds and parses
//! the datagrams; the runtime owns the sockets (and in tests points them at loopback: nothing
//! here sends anything).
//!
//! - [`LsdAnnounce`] is the message: [`LsdAnnounce::decode`] parses a datagram with strict
//!   bounds (size, header count, line and cookie length, number of info-hashes) and
//!   [`LsdAnnounce::encode`] writes one.
//! - [`LsdAnnouncer`] is the sans-IO policy: it announces each torrent at most once every
//!   [`ANNOUNCE_INTERVAL`], sends at most one datagram per group every [`MIN_SEND_GAP`] (packing
//!   several info-hashes into it, BEP 14), never announces private torrents (BEP 27), and turns
//!   received announces into peers, ignoring its own (by cookie).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{BufMut, Bytes};

use crate::error::{Classify, Fault};
use crate::time::{Duration, Instant};

/// The LSD port (BEP 14).
pub const LSD_PORT: u16 = 6771;
/// The IPv4 (organisation-local) multicast group (BEP 14).
pub const LSD_GROUP_V4: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), LSD_PORT);
/// The IPv6 (site-local) multicast group (BEP 14).
pub const LSD_GROUP_V6: SocketAddrV6 = SocketAddrV6::new(
    Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f),
    LSD_PORT,
    0,
    0,
);
/// The largest datagram parsed; larger ones are refused unread.
pub const MAX_DATAGRAM: usize = 1500;
/// The largest datagram we build (BEP 14: stay under 1400 bytes).
pub const MAX_SENT_DATAGRAM: usize = 1400;
/// The most `Infohash` headers one announce may carry.
pub const MAX_INFOHASHES: usize = 24;
/// The most header lines one announce may carry.
pub const MAX_HEADERS: usize = 64;
/// The longest cookie kept, in bytes.
pub const MAX_COOKIE_LEN: usize = 64;
/// How often each torrent is announced (BEP 14: every 5 minutes).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The shortest time between two datagrams to one group (BEP 14: at most one a minute).
pub const MIN_SEND_GAP: Duration = Duration::from_secs(60);

const REQUEST_LINE: &[u8] = b"BT-SEARCH * HTTP/1.1";

/// A multicast group to announce to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LsdGroup {
    /// `239.192.152.143:6771`.
    V4,
    /// `[ff15::efc0:988f]:6771`.
    V6,
}

impl LsdGroup {
    /// The group's address.
    pub fn addr(self) -> SocketAddr {
        match self {
            Self::V4 => SocketAddr::V4(LSD_GROUP_V4),
            Self::V6 => SocketAddr::V6(LSD_GROUP_V6),
        }
    }

    /// The `Host` header value (RFC 2732 brackets for IPv6).
    pub fn host(self) -> &'static str {
        match self {
            Self::V4 => "239.192.152.143:6771",
            Self::V6 => "[ff15::efc0:988f]:6771",
        }
    }
}

/// A datagram that is not an announce we accept, and why. All are the sender's fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LsdError {
    /// The datagram is larger than [`MAX_DATAGRAM`].
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The first line is not `BT-SEARCH * HTTP/1.1` (another SSDP-like message, say).
    NotAnnounce,
    /// The headers do not end with an empty line.
    Truncated,
    /// A header line without a colon, or not ASCII.
    BadHeader,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// No `Port` header.
    MissingPort,
    /// A `Port` that is not a decimal number in 1-65535, or two `Port` headers.
    BadPort,
    /// No `Infohash` header.
    MissingInfohash,
    /// An `Infohash` that is not 40 hex digits.
    BadInfohash,
    /// More than [`MAX_INFOHASHES`] `Infohash` headers.
    TooManyInfohashes,
    /// A cookie longer than [`MAX_COOKIE_LEN`], or two cookies.
    BadCookie,
}

impl fmt::Display for LsdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "LSD datagram of {len} bytes is too large"),
            Self::NotAnnounce => f.write_str("not a BT-SEARCH announce"),
            Self::Truncated => f.write_str("LSD headers do not end"),
            Self::BadHeader => f.write_str("malformed LSD header line"),
            Self::TooManyHeaders => f.write_str("too many LSD header lines"),
            Self::MissingPort => f.write_str("LSD announce without Port"),
            Self::BadPort => f.write_str("bad LSD Port"),
            Self::MissingInfohash => f.write_str("LSD announce without Infohash"),
            Self::BadInfohash => f.write_str("bad LSD Infohash"),
            Self::TooManyInfohashes => f.write_str("too many LSD Infohash headers"),
            Self::BadCookie => f.write_str("bad LSD cookie"),
        }
    }
}

impl std::error::Error for LsdError {}

impl Classify for LsdError {
    fn fault(&self) -> Fault {
        match self {
            Self::TooLarge { .. } | Self::TooManyHeaders | Self::TooManyInfohashes => {
                Fault::LimitExceeded
            }
            _ => Fault::Malformed,
        }
    }
}

/// One BEP 14 announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdAnnounce {
    /// The sender's BitTorrent listen port.
    pub port: u16,
    /// The info-hashes announced (20 bytes: a v2-only torrent uses its truncated hash, as
    /// [`InfoHashes::wire_id`](crate::id::InfoHashes::wire_id)). At least one.
    pub info_hashes: Vec<[u8; 20]>,
    /// The sender's cookie, to recognise its own announces looped back.
    pub cookie: Option<String>,
}

impl LsdAnnounce {
    /// Parses a datagram.
    ///
    /// Header names are case-insensitive and unknown headers are ignored (BEP 14); lines may end
    /// in CRLF or LF. The `Host` header is not checked (it names the group the datagram was sent
    /// to, which the socket already knows).
    pub fn decode(datagram: &[u8]) -> Result<Self, LsdError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(LsdError::TooLarge {
                len: datagram.len(),
            });
        }
        let mut lines = datagram.split(|&b| b == b'\n').map(|l| match l {
            [rest @ .., b'\r'] => rest,
            l => l,
        });
        if lines.next() != Some(REQUEST_LINE) {
            return Err(LsdError::NotAnnounce);
        }
        let mut port = None;
        let mut info_hashes = Vec::new();
        let mut cookie = None;
        let mut ended = false;
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                ended = true;
                break;
            }
            if i == MAX_HEADERS {
                return Err(LsdError::TooManyHeaders);
            }
            let line = std::str::from_utf8(line)
                .ok()
                .filter(|l| l.is_ascii())
                .ok_or(LsdError::BadHeader)?;
            let (name, value) = line.split_once(':').ok_or(LsdError::BadHeader)?;
            let value = value.trim();
            let name = name.trim();
            if name.eq_ignore_ascii_case("port") {
                let p = parse_port(value).ok_or(LsdError::BadPort)?;
                if port.replace(p).is_some() {
                    return Err(LsdError::BadPort);
                }
            } else if name.eq_ignore_ascii_case("infohash") {
                if info_hashes.len() == MAX_INFOHASHES {
                    return Err(LsdError::TooManyInfohashes);
                }
                let hash = crate::id::parse_hex::<20>(value).ok_or(LsdError::BadInfohash)?;
                info_hashes.push(hash);
            } else if name.eq_ignore_ascii_case("cookie") {
                if value.len() > MAX_COOKIE_LEN || cookie.is_some() {
                    return Err(LsdError::BadCookie);
                }
                cookie = Some(value.to_owned());
            }
        }
        if !ended {
            return Err(LsdError::Truncated);
        }
        let port = port.ok_or(LsdError::MissingPort)?;
        if info_hashes.is_empty() {
            return Err(LsdError::MissingInfohash);
        }
        Ok(Self {
            port,
            info_hashes,
            cookie,
        })
    }

    /// Writes the announce for `group` into `buf`.
    pub fn encode(&self, group: LsdGroup, buf: &mut impl BufMut) {
        buf.put_slice(REQUEST_LINE);
        buf.put_slice(b"\r\nHost: ");
        buf.put_slice(group.host().as_bytes());
        buf.put_slice(b"\r\nPort: ");
        buf.put_slice(self.port.to_string().as_bytes());
        buf.put_slice(b"\r\n");
        for hash in &self.info_hashes {
            buf.put_slice(b"Infohash: ");
            for b in hash {
                buf.put_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            buf.put_slice(b"\r\n");
        }
        if let Some(c) = &self.cookie {
            buf.put_slice(b"cookie: ");
            buf.put_slice(c.as_bytes());
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b"\r\n\r\n");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A decimal port in 1-65535, digits only.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

/// The size of an announce header without info-hashes and cookie, for a given group.
fn base_len(group: LsdGroup) -> usize {
    // Request line, Host, Port (at most 5 digits), final blank lines.
    REQUEST_LINE.len() + 2 + 6 + group.host().len() + 2 + 6 + 5 + 2 + 4
}

/// The size of one `Infohash` line.
const INFOHASH_LINE: usize = 10 + 40 + 2;

/// Settings of an [`LsdAnnouncer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdConfig {
    /// Our BitTorrent listen port, announced.
    pub listen_port: u16,
    /// Our cookie: announces carrying it are our own, looped back. Draw it from the session's
    /// seeded RNG (at most [`MAX_COOKIE_LEN`] visible ASCII characters).
    pub cookie: String,
    /// The groups to announce to (the runtime sends each datagram on every interface listening
    /// for that family).
    pub groups: Vec<LsdGroup>,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The multicast group.
    pub to: SocketAddr,
    /// The datagram.
    pub data: Bytes,
}

/// A peer learned from an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LsdPeer {
    /// The torrent (its 20-byte wire id).
    pub info_hash: [u8; 20],
    /// The peer's address: the datagram's source address with the announced port (BEP 14).
    pub addr: SocketAddr,
}

/// The BEP 14 announce policy, as a sans-IO machine (see the [module docs](self)).
///
/// Inputs: [`add_torrent`](Self::add_torrent) / [`remove_torrent`](Self::remove_torrent),
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout), and
/// [`handle_datagram`](Self::handle_datagram) for each datagram received on the LSD sockets.
/// Output: drain [`poll_transmit`](Self::poll_transmit) after each `handle_timeout`.
#[derive(Clone, Debug)]
pub struct LsdAnnouncer {
    config: LsdConfig,
    /// Public torrents and when each was last announced.
    torrents: BTreeMap<[u8; 20], Option<Instant>>,
    last_sent: Option<Instant>,
    transmits: VecDeque<Transmit>,
}

impl LsdAnnouncer {
    /// A machine with no torrents yet. The cookie is cut to its first [`MAX_COOKIE_LEN`]
    /// visible ASCII characters (others are dropped), so that it reads back as sent.
    pub fn new(mut config: LsdConfig) -> Self {
        config.cookie = config
            .cookie
            .chars()
            .filter(char::is_ascii_graphic)
            .take(MAX_COOKIE_LEN)
            .collect();
        Self {
            config,
            torrents: BTreeMap::new(),
            last_sent: None,
            transmits: VecDeque::new(),
        }
    }

    /// Starts announcing a torrent (by its 20-byte wire id). A private torrent (BEP 27) is
    /// never announced and announces for it are ignored: this call does nothing for it.
    pub fn add_torrent(&mut self, info_hash: [u8; 20], private: bool) {
        if !private {
            self.torrents.entry(info_hash).or_insert(None);
        }
    }

    /// Stops announcing a torrent and learning peers for it.
    pub fn remove_torrent(&mut self, info_hash: [u8; 20]) {
        self.torrents.remove(&info_hash);
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.config.groups.is_empty() {
            return None;
        }
        let due = self
            .torrents
            .values()
            .map(|last| last.map_or(Instant::ZERO, |t| t + ANNOUNCE_INTERVAL))
            .min()?;
        Some(match self.last_sent {
            Some(t) => due.max(t + MIN_SEND_GAP),
            None => due,
        })
    }

    /// Queues the announces that are due: one datagram per group, holding as many due torrents
    /// (those announced longest ago first) as fit in [`MAX_SENT_DATAGRAM`] bytes, at most one
    /// datagram per group every [`MIN_SEND_GAP`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.last_sent.is_some_and(|t| now < t + MIN_SEND_GAP) || self.config.groups.is_empty() {
            return;
        }
        let mut due: Vec<(Option<Instant>, [u8; 20])> = self
            .torrents
            .iter()
            .filter(|(_, last)| last.is_none_or(|t| t + ANNOUNCE_INTERVAL <= now))
            .map(|(h, last)| (*last, *h))
            .collect();
        if due.is_empty() {
            return;
        }
        due.sort();
        let widest = self.config.groups.iter().map(|&g| base_len(g)).max();
        let room = MAX_SENT_DATAGRAM - widest.unwrap_or(0) - (10 + self.config.cookie.len());
        let fit = (room / INFOHASH_LINE).clamp(1, MAX_INFOHASHES);
        let info_hashes: Vec<[u8; 20]> = due.iter().take(fit).map(|&(_, h)| h).collect();
        for h in &info_hashes {
            self.torrents.insert(*h, Some(now));
        }
        let announce = LsdAnnounce {
            port: self.config.listen_port,
            info_hashes,
            cookie: (!self.config.cookie.is_empty()).then(|| self.config.cookie.clone()),
        };
        for &group in &self.config.groups {
            let mut data = Vec::with_capacity(MAX_SENT_DATAGRAM);
            announce.encode(group, &mut data);
            self.transmits.push_back(Transmit {
                to: group.addr(),
                data: Bytes::from(data),
            });
        }
        self.last_sent = Some(now);
    }

    /// The next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// A datagram received from `from` on an LSD socket: the peers it announces for our
    /// (public) torrents. Our own announces (by cookie) and announces with port 0 give none.
    pub fn handle_datagram(
        &self,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<Vec<LsdPeer>, LsdError> {
        let announce = LsdAnnounce::decode(datagram)?;
        if !self.config.cookie.is_empty()
            && announce.cookie.is_some_and(|c| c == self.config.cookie)
        {
            return Ok(Vec::new());
        }
        let addr = SocketAddr::new(from.ip(), announce.port);
        let mut peers: Vec<LsdPeer> = announce
            .info_hashes
            .iter()
            .filter(|h| self.torrents.contains_key(*h))
            .map(|&info_hash| LsdPeer { info_hash, addr })
            .collect();
        peers.dedup();
        Ok(peers)
    }
}

#[cfg(test)]
#[path = "lsd_tests.rs"]
mod tests;
