//! The UDP tracker packet codec (BEP 15), with BEP 41 URL data in announce requests.
//!
//! Both directions are here, so tests and the simulator can play the tracker. All integers are
//! big-endian. Requests: connect (16 bytes), announce (98 bytes plus BEP 41 options), scrape (16
//! plus 20 per info-hash). Responses: connect (16), announce (20 plus 6 or 18 per peer, by the
//! address family the request went over), scrape (8 plus 12 per info-hash), error (8 plus text).

use std::net::{IpAddr, Ipv4Addr};

use super::{
    bounded_text, put_compact, AnnounceEvent, AnnounceRequest, PeerSink, ScrapeStats, TrackerError,
    TrackerLimits,
};
use crate::id::PeerId;
use crate::time::Duration;

/// The magic constant that opens a connect request (BEP 15 `protocol_id`).
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// The most info-hashes one UDP scrape may carry (BEP 15: "up to about 74").
pub const MAX_SCRAPE_HASHES: usize = 74;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// The length of an announce request before its BEP 41 options.
const ANNOUNCE_LEN: usize = 98;

/// BEP 41 option types.
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_URL_DATA: u8 = 2;

/// A request from client to UDP tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpRequest {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client; echoed in the response.
        transaction_id: u32,
    },
    /// Announce, with the connection id from a connect response.
    Announce {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client; echoed in the response.
        transaction_id: u32,
        /// The announce. Over UDP, `tracker_id`, `compact` and `no_peer_id` do not travel, and
        /// `ip` only when it is IPv4; decoding gives `compact` and `no_peer_id` true.
        request: AnnounceRequest,
        /// BEP 41 URL data: the announce URL's path and query (empty: no option sent).
        url_data: Vec<u8>,
    },
    /// Scrape up to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client; echoed in the response.
        transaction_id: u32,
        /// The torrents.
        info_hashes: Vec<[u8; 20]>,
    },
}

/// A response from UDP tracker to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpResponse {
    /// A connection id for the next minute.
    Connect {
        /// Echoed from the request.
        transaction_id: u32,
        /// To put in announce and scrape requests.
        connection_id: u64,
    },
    /// The answer to an announce.
    Announce {
        /// Echoed from the request.
        transaction_id: u32,
        /// Seconds until the next regular announce.
        interval: u32,
        /// Leechers.
        leechers: u32,
        /// Seeders.
        seeders: u32,
        /// Peers (IPv6 if the request went over IPv6), deduplicated, bounded, unusable entries
        /// skipped.
        peers: Vec<std::net::SocketAddr>,
    },
    /// The answer to a scrape: counts in the order the hashes were asked for (no names).
    Scrape {
        /// Echoed from the request.
        transaction_id: u32,
        /// One entry per info-hash.
        stats: Vec<ScrapeStats>,
    },
    /// The tracker refused.
    Error {
        /// Echoed from the request.
        transaction_id: u32,
        /// The tracker's message (bounded, lossy UTF-8).
        message: String,
    },
}

/// Reads big-endian integers off the front of a packet.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TrackerError> {
        let end = self.pos + n;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(TrackerError::Truncated {
                needed: end,
                got: self.data.len(),
            })?;
        self.pos = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, TrackerError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TrackerError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().expect("took 4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, TrackerError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("took 8 bytes")))
    }

    fn array20(&mut self) -> Result<[u8; 20], TrackerError> {
        Ok(self.take(20)?.try_into().expect("took 20 bytes"))
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        self.pos = self.data.len();
        rest
    }
}

/// The transaction id of a response (bytes 4..8), if the packet is long enough to have one.
///
/// Lets a session with several [`UdpTrackerClient`](super::UdpTrackerClient)s on one tracker
/// address route a datagram to the one that is waiting for it.
pub fn response_transaction_id(packet: &[u8]) -> Option<u32> {
    let b = packet.get(4..8)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

impl UdpRequest {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. } => *transaction_id,
        }
    }

    /// Appends the packet to `out`.
    ///
    /// Fails for a scrape of zero or more than [`MAX_SCRAPE_HASHES`] hashes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TrackerError> {
        match self {
            Self::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Self::Announce {
                connection_id,
                transaction_id,
                request: r,
                url_data,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&r.info_hash);
                out.extend_from_slice(&r.peer_id.0);
                out.extend_from_slice(&r.downloaded.to_be_bytes());
                out.extend_from_slice(&r.left.to_be_bytes());
                out.extend_from_slice(&r.uploaded.to_be_bytes());
                out.extend_from_slice(&AnnounceEvent::udp_code(r.event).to_be_bytes());
                let ip = match r.ip {
                    Some(IpAddr::V4(v4)) => v4.octets(),
                    _ => [0; 4],
                };
                out.extend_from_slice(&ip);
                out.extend_from_slice(&r.key.to_be_bytes());
                // BEP 15: num_want -1 means "default"; i32 on the wire.
                let numwant = r
                    .numwant
                    .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&r.port.to_be_bytes());
                if !url_data.is_empty() {
                    // BEP 41: URLData options of at most 255 bytes each. Options end with the
                    // packet, so no EndOfOptions (as in the BEP's first example and libtorrent).
                    for chunk in url_data.chunks(255) {
                        out.push(OPTION_URL_DATA);
                        out.push(chunk.len() as u8);
                        out.extend_from_slice(chunk);
                    }
                }
            }
            Self::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
                    return Err(TrackerError::ScrapeSize {
                        count: info_hashes.len(),
                    });
                }
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for hash in info_hashes {
                    out.extend_from_slice(hash);
                }
            }
        }
        Ok(())
    }

    /// Decodes a request (the tracker's side; for tests and fake trackers).
    ///
    /// A connect must carry [`PROTOCOL_ID`]; BEP 41 options are read until EndOfOptions or the
    /// end of the packet, unknown ones skipped by their length byte. Scrapes take at most
    /// [`MAX_SCRAPE_HASHES`] hashes; extra bytes are ignored.
    pub fn decode(packet: &[u8]) -> Result<Self, TrackerError> {
        let mut r = Reader::new(packet);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => Ok(Self::Connect { transaction_id }),
            ACTION_CONNECT => Err(TrackerError::InvalidField {
                field: "protocol_id",
            }),
            ACTION_ANNOUNCE => {
                let info_hash = r.array20()?;
                let peer_id = PeerId(r.array20()?);
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let event = AnnounceEvent::from_udp_code(r.u32()?)?;
                let ip = Ipv4Addr::from(r.u32()?);
                let key = r.u32()?;
                let numwant = r.u32()? as i32;
                let port = r.u16()?;
                let url_data = decode_options(r.rest())?;
                Ok(Self::Announce {
                    connection_id,
                    transaction_id,
                    request: AnnounceRequest {
                        info_hash,
                        peer_id,
                        port,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        numwant: u32::try_from(numwant).ok(),
                        key,
                        tracker_id: None,
                        compact: true,
                        no_peer_id: true,
                        ip: (!ip.is_unspecified()).then_some(IpAddr::V4(ip)),
                    },
                    url_data,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                let info_hashes: Vec<[u8; 20]> = rest
                    .chunks_exact(20)
                    .take(MAX_SCRAPE_HASHES)
                    .map(|c| c.try_into().expect("chunk of 20"))
                    .collect();
                if info_hashes.is_empty() {
                    return Err(TrackerError::Truncated {
                        needed: 16 + 20,
                        got: packet.len(),
                    });
                }
                Ok(Self::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            action => Err(TrackerError::UnexpectedAction { action }),
        }
    }
}

/// Reads BEP 41 options and returns the concatenated URL data.
fn decode_options(mut bytes: &[u8]) -> Result<Vec<u8>, TrackerError> {
    let mut url_data = Vec::new();
    let total = ANNOUNCE_LEN + bytes.len();
    while let Some((&kind, rest)) = bytes.split_first() {
        match kind {
            OPTION_END => break,
            OPTION_NOP => bytes = rest,
            _ => {
                let (&len, rest) = rest.split_first().ok_or(TrackerError::Truncated {
                    needed: total + 1,
                    got: total,
                })?;
                let data = rest
                    .get(..usize::from(len))
                    .ok_or(TrackerError::Truncated {
                        needed: total + usize::from(len) - rest.len(),
                        got: total,
                    })?;
                if kind == OPTION_URL_DATA {
                    url_data.extend_from_slice(data);
                }
                bytes = &rest[usize::from(len)..];
            }
        }
    }
    Ok(url_data)
}

impl UdpResponse {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id, .. }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. }
            | Self::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Appends the packet to `out` (the tracker's side; for tests and fake trackers).
    ///
    /// Announce peers are written 6 or 18 bytes each by their own address family; a tracker
    /// sends only the family the request came over.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let header = |out: &mut Vec<u8>, action: u32, tid: u32| {
            out.extend_from_slice(&action.to_be_bytes());
            out.extend_from_slice(&tid.to_be_bytes());
        };
        match self {
            Self::Connect {
                transaction_id,
                connection_id,
            } => {
                header(out, ACTION_CONNECT, *transaction_id);
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Self::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                header(out, ACTION_ANNOUNCE, *transaction_id);
                for n in [interval, leechers, seeders] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                for peer in peers {
                    put_compact(out, peer);
                }
            }
            Self::Scrape {
                transaction_id,
                stats,
            } => {
                header(out, ACTION_SCRAPE, *transaction_id);
                for s in stats {
                    for n in [s.complete, s.downloaded, s.incomplete] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Self::Error {
                transaction_id,
                message,
            } => {
                header(out, ACTION_ERROR, *transaction_id);
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Decodes a response.
    ///
    /// `ipv6` says whether the request went to the tracker over IPv6, which decides the size of
    /// announce peers (BEP 15: 18 bytes instead of 6). A trailing partial peer or scrape entry
    /// is ignored; peers and scrape entries are bounded by `limits`.
    pub fn decode(packet: &[u8], ipv6: bool, limits: &TrackerLimits) -> Result<Self, TrackerError> {
        let mut r = Reader::new(packet);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => Ok(Self::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let mut peers = PeerSink::new(limits.max_peers);
                peers.push_compact(r.rest(), ipv6);
                Ok(Self::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers: peers.finish(),
                })
            }
            ACTION_SCRAPE => {
                let stats = r
                    .rest()
                    .chunks_exact(12)
                    .take(limits.max_scrape_entries)
                    .map(|c| {
                        let n =
                            |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().expect("4 of 12"));
                        ScrapeStats {
                            complete: n(0),
                            downloaded: n(4),
                            incomplete: n(8),
                            name: None,
                        }
                    })
                    .collect();
                Ok(Self::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Self::Error {
                transaction_id,
                message: bounded_text(r.rest(), limits.max_text),
            }),
            action => Err(TrackerError::UnexpectedAction { action }),
        }
    }

    /// This announce response as the [`AnnounceResponse`](super::AnnounceResponse) the tier
    /// policy takes; `None` for other actions.
    pub fn into_announce_response(self) -> Option<super::AnnounceResponse> {
        match self {
            Self::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Some(super::AnnounceResponse {
                interval: Some(Duration::from_secs(u64::from(interval))),
                peers,
                seeders: Some(seeders),
                leechers: Some(leechers),
                ..Default::default()
            }),
            _ => None,
        }
    }
}
