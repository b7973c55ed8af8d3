//! Trackers: HTTP announce and scrape (BEP 3, 7, 23, 24, 31, 48), the UDP tracker protocol
//! (BEP 15, 41) and the per-torrent tier policy (BEP 12, 27).
//!
//! Everything here is sans-IO. The pieces, and who drives them:
//!
//! - [`AnnounceRequest`] is what we tell a tracker. [`AnnounceRequest::to_http_url`] builds the
//!   HTTP announce URL; [`UdpRequest`] carries it over UDP.
//! - [`parse_announce_response`] and [`parse_scrape_response`] read an HTTP tracker's body
//!   (bounded by [`TrackerLimits`]); [`scrape_url`] and [`scrape_request_url`] build the BEP 48
//!   scrape request.
//! - [`UdpRequest`] and [`UdpResponse`] are the BEP 15 packet codec (both directions, so tests and
//!   the simulator can play the tracker); [`UdpTrackerClient`] is the machine that talks to one
//!   UDP tracker: connect, connection-id lifetime, transaction ids, retransmission.
//! - [`TrackerList`] is one torrent's policy: BEP 12 tiers, which tracker to announce to next and
//!   when, `started`/`completed`/`stopped`, backoff on failure, BEP 31 `retry in`.
//! - [`TrackerUrl`] tells an HTTP tracker from a UDP one and splits a UDP URL into host, port and
//!   the BEP 41 URL data.
//!
//! Scrapes: the session's `Session::scrape` asks every tracker of a torrent, with
//! [`scrape_url`] / [`parse_scrape_response`] over HTTP and [`UdpTrackerClient::scrape`] over
//! UDP.
//!
//! How the session drives a torrent's trackers: it builds a [`TrackerList`] from the torrent's
//! tiers, and whenever [`TrackerList::next_announce`] hands out an [`Announce`] it fills an
//! [`AnnounceRequest`] (event and tracker id from the `Announce`) and sends it: over HTTP via the
//! runtime, then [`parse_announce_response`] on the body; or over UDP through a
//! [`UdpTrackerClient`] for that tracker. The outcome goes back with
//! [`TrackerList::handle_success`] or [`TrackerList::handle_failure`]. Announces the list gives up
//! on (its own timeout) come out of [`TrackerList::poll_cancel`] so their transport can be dropped.
//!
//! ## Private torrents (BEP 27)
//!
//! A private torrent talks only to the trackers in its own `.torrent`: the session must build its
//! [`TrackerList`] from `Metainfo::trackers()` alone and must never use DHT, PEX or LSD for it
//! ([`TrackerList::is_private`] says so). There is nothing else for this module to enforce.
//!
//! ## Errors
//!
//! [`TrackerError`] classifies by [`Fault`](crate::error::Fault): a body or datagram that does not
//! parse is `Malformed`, a bound hit is `LimitExceeded`, a tracker that refused (`failure reason`,
//! the UDP error action, an HTTP error status) or did not answer is `Unsupported` (the reaction is
//! to move to another tracker, which [`TrackerList`] does), and a bad argument is `ApiMisuse`.

mod error;
mod http;
mod scrape;
mod tiers;
mod udp;
mod udp_client;
mod url;

pub use error::TrackerError;
pub use http::parse_announce_response;
pub use scrape::{parse_scrape_response, scrape_request_url, scrape_url, ScrapeResponse};
pub use tiers::{Announce, AnnounceId, TierConfig, TrackerIndex, TrackerList, TrackerStatus};
pub use udp::{response_transaction_id, UdpRequest, UdpResponse, MAX_SCRAPE_HASHES, PROTOCOL_ID};
pub use udp_client::{UdpClientConfig, UdpEvent, UdpTrackerClient};
pub use url::TrackerUrl;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::bencode::DecodeOptions;
use crate::id::PeerId;
use crate::time::Duration;

/// An announce event (BEP 3 `event`; BEP 15 numbers them: [`AnnounceEvent::udp_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The first announce of a download.
    Started,
    /// The download finished (sent once, never when starting as a seed).
    Completed,
    /// The torrent is paused or removed.
    Stopped,
}

impl AnnounceEvent {
    /// The value of the HTTP `event` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
        }
    }

    /// The BEP 15 event number (0 is "none").
    pub fn udp_code(event: Option<Self>) -> u32 {
        match event {
            None => 0,
            Some(Self::Completed) => 1,
            Some(Self::Started) => 2,
            Some(Self::Stopped) => 3,
        }
    }

    /// The event for a BEP 15 event number; `Err` for numbers past 3.
    pub fn from_udp_code(code: u32) -> Result<Option<Self>, TrackerError> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(Self::Completed)),
            2 => Ok(Some(Self::Started)),
            3 => Ok(Some(Self::Stopped)),
            _ => Err(TrackerError::InvalidField { field: "event" }),
        }
    }
}

impl fmt::Display for AnnounceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What we tell a tracker in an announce (BEP 3; over UDP, BEP 15).
///
/// `info_hash` is the v1 info-hash, or for a v2-only torrent the v2 hash truncated to 20 bytes
/// (BEP 52). A hybrid torrent announces both, as two requests (the session sends the second,
/// under the truncated v2 hash, alongside each announce of the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent's 20-byte info-hash.
    pub info_hash: [u8; 20],
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peer connections on.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event, or `None` for a regular interval announce.
    pub event: Option<AnnounceEvent>,
    /// How many peers we want (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// A random key that stays the same for the session, so the tracker knows us across address
    /// changes.
    pub key: u32,
    /// The `tracker id` the tracker gave us before, sent back as `trackerid` (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
    /// Ask for the compact peer list (BEP 23); trackers mostly insist on it anyway.
    pub compact: bool,
    /// Ask for dictionary peers without their peer ids (`no_peer_id=1`).
    pub no_peer_id: bool,
    /// An address to announce instead of the one the packet comes from (over UDP: IPv4 only).
    pub ip: Option<IpAddr>,
}

impl AnnounceRequest {
    /// A request with the usual defaults: compact, no peer ids, no event, the tracker's numwant.
    pub fn new(info_hash: [u8; 20], peer_id: PeerId, port: u16, key: u32) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: None,
            numwant: None,
            key,
            tracker_id: None,
            compact: true,
            no_peer_id: true,
            ip: None,
        }
    }
}

/// What a tracker answered to an announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// How long to wait before the next regular announce (`None` if the tracker did not say).
    pub interval: Option<Duration>,
    /// The tracker's `min interval`: never announce sooner than this.
    pub min_interval: Option<Duration>,
    /// Peers, IPv4 and IPv6 (BEP 7, 23), deduplicated and bounded by
    /// [`TrackerLimits::max_peers`]; invalid entries (port 0, unspecified address, hostnames)
    /// are skipped.
    pub peers: Vec<SocketAddr>,
    /// The `tracker id` to send back in later announces.
    pub tracker_id: Option<Vec<u8>>,
    /// The `warning message`, if any (the announce still succeeded).
    pub warning: Option<String>,
    /// Our own address as the tracker sees it (BEP 24 `external ip`).
    pub external_ip: Option<IpAddr>,
    /// Seeders (`complete`), if reported.
    pub seeders: Option<u32>,
    /// Leechers (`incomplete`), if reported.
    pub leechers: Option<u32>,
}

/// One torrent's counts in a scrape (BEP 48; over UDP, BEP 15).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders (`complete`).
    pub complete: u32,
    /// Completed downloads ever (`downloaded`).
    pub downloaded: u32,
    /// Leechers (`incomplete`).
    pub incomplete: u32,
    /// The torrent's name, if the tracker sent one (HTTP only).
    pub name: Option<String>,
}

/// When a refusing tracker wants to hear from us again (BEP 31 `retry in`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryIn {
    /// Retry after this long (the BEP counts in minutes).
    After(Duration),
    /// Never retry this tracker.
    Never,
}

/// Bounds on what a tracker's answer may cost us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerLimits {
    /// The largest HTTP response body accepted; the runtime should stop reading past it.
    pub max_body: usize,
    /// The most peers kept from one response; the rest are dropped.
    pub max_peers: usize,
    /// The most torrents kept from one scrape response; the rest are dropped.
    pub max_scrape_entries: usize,
    /// The deepest bencode nesting accepted (a dictionary peer list needs 3).
    pub max_depth: u32,
    /// The most bencode values in one response.
    pub max_tokens: u32,
    /// The longest text (failure reason, warning, UDP error message) kept, in bytes; longer text
    /// is cut at a character boundary.
    pub max_text: usize,
}

impl TrackerLimits {
    /// The defaults: 2 MiB bodies, 2,000 peers, 1,000 scrape entries, depth 8, 200,000 values,
    /// 1 KiB of text.
    pub const DEFAULT: Self = Self {
        max_body: 2 * 1024 * 1024,
        max_peers: 2000,
        max_scrape_entries: 1000,
        max_depth: 8,
        max_tokens: 200_000,
        max_text: 1024,
    };

    /// The lenient bencode options these limits stand for (trackers are known to be sloppy).
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions::LENIENT
            .with_max_depth(self.max_depth)
            .with_max_tokens(self.max_tokens)
    }
}

impl Default for TrackerLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Collects peers: skips unusable addresses and duplicates, stops at the limit.
pub(crate) struct PeerSink {
    peers: Vec<SocketAddr>,
    seen: std::collections::BTreeSet<SocketAddr>,
    max: usize,
}

impl PeerSink {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            peers: Vec::new(),
            seen: std::collections::BTreeSet::new(),
            max,
        }
    }

    pub(crate) fn push(&mut self, addr: SocketAddr) {
        if self.peers.len() >= self.max || addr.port() == 0 || addr.ip().is_unspecified() {
            return;
        }
        if self.seen.insert(addr) {
            self.peers.push(addr);
        }
    }

    /// Compact peers: 6 bytes (IPv4, BEP 23) or 18 bytes (IPv6, BEP 7) each, address then port
    /// in network order. A trailing partial entry is ignored.
    pub(crate) fn push_compact(&mut self, bytes: &[u8], ipv6: bool) {
        let size = if ipv6 { 18 } else { 6 };
        for entry in bytes.chunks_exact(size) {
            if self.peers.len() >= self.max {
                break;
            }
            let (ip, port) = entry.split_at(size - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = if ipv6 {
                let octets: [u8; 16] = ip.try_into().expect("chunk of 18 minus 2");
                IpAddr::from(octets)
            } else {
                let octets: [u8; 4] = ip.try_into().expect("chunk of 6 minus 2");
                IpAddr::from(octets)
            };
            self.push(SocketAddr::new(ip, port));
        }
    }

    pub(crate) fn finish(self) -> Vec<SocketAddr> {
        self.peers
    }
}

/// `bytes` as lossy UTF-8, cut to at most `max` bytes at a character boundary.
pub(crate) fn bounded_text(bytes: &[u8], max: usize) -> String {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if text.len() > max {
        // Lossy decoding can grow the text (U+FFFD is 3 bytes).
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Compact encoding of one peer (6 or 18 bytes), for tests and fake trackers.
pub(crate) fn put_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_tiers;
#[cfg(test)]
mod tests_udp;
