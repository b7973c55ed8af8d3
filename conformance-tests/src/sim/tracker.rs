//! Trackers inside the simulator, and how the simulator performs a node's tracker outputs.
//!
//! A [`SimTracker`] has a loopback address (`127.0.1.x`, apart from the nodes' `127.0.0.x`),
//! optionally a host name, and answers both protocols on one port, like opentracker:
//!
//! - HTTP (BEP 3, 23): a node's `Output::Http` whose URL names the tracker's address (or
//!   name) is parsed as an announce; the compact answer comes back as `Input::HttpDone` one
//!   round trip later. A URL naming no tracker, or a dead one, fails with "connection
//!   refused" after a round trip.
//! - UDP (BEP 15): `Output::SendDatagram` to the tracker's address is decoded with
//!   [`UdpRequest::decode`] and answered with [`UdpResponse`] as `Input::Datagram` one round
//!   trip later. A dead tracker swallows datagrams (a client hears nothing and retransmits).
//!   Datagrams to a node's address are delivered to it as `Input::Datagram`.
//! - `Output::Resolve` finds a tracker by name (`Input::Resolved` after a round trip), or
//!   fails with "no such host".
//!
//! Each tracker keeps a swarm per info-hash (the address a peer announced from, with the port
//! it announced) and answers an announce with the other peers of the swarm. It answers scrapes
//! too (BEP 48 at `/scrape`, the BEP 15 scrape action) with the swarm's seeders, leechers and
//! `completed` announces, and can report the announcing address as `external ip` (BEP 24). Every request that
//! reaches a tracker's address, dead or alive, is logged ([`SimTracker::log`]) with its time,
//! so tests can check failover and retransmission timing on the virtual clock.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bitshoal_core::bencode::DictWriter;
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::TorrentId;
use bitshoal_core::session::{AddTorrent, HttpReply, Input, Output};
use bitshoal_core::time::{Duration, Instant};
use bitshoal_core::tracker::{AnnounceEvent, ScrapeStats, UdpRequest, UdpResponse};
use bytes::Bytes;
use percent_encoding::percent_decode_str;

use super::{Ev, HostKind, NodeId, Sim, SimNode, TestTorrent};

/// A tracker in a [`Sim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackerId(pub(crate) usize);

/// How a [`SimTracker`] is set up; see [`Sim::add_tracker`].
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// A host name that `Output::Resolve` (and HTTP URLs) may use instead of the address.
    pub name: Option<String>,
    /// The port for both HTTP and UDP.
    pub port: u16,
    /// The `interval` the tracker hands out, in seconds.
    pub interval: u32,
    /// Whether the tracker answers (a dead one refuses HTTP and swallows UDP).
    pub alive: bool,
    /// The BEP 48 `flags.min_request_interval` its HTTP scrapes hand out, in seconds (0: none).
    pub min_scrape_interval: u32,
    /// Whether HTTP announce answers carry the announcing address as `external ip` (BEP 24).
    pub report_external_ip: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            name: None,
            port: 6969,
            interval: 1800,
            alive: true,
            min_scrape_interval: 0,
            report_external_ip: false,
        }
    }
}

/// Which protocol a logged request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerProtocol {
    /// An HTTP GET.
    Http,
    /// A UDP datagram (connect or announce).
    Udp,
}

/// One request that reached a tracker's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerRequest {
    /// When it arrived.
    pub at: Instant,
    /// The node that sent it.
    pub node: NodeId,
    /// How.
    pub protocol: TrackerProtocol,
    /// Whether the tracker was alive to answer it.
    pub answered: bool,
    /// For an announce: its event (`None` for a regular announce); `None` too for requests
    /// that are not announces (UDP connects), see `announce`.
    pub event: Option<AnnounceEvent>,
    /// Whether it was an announce (not a UDP connect, nor garbage).
    pub announce: bool,
    /// Whether it was a scrape (HTTP `/scrape`, or the UDP scrape action).
    pub scrape: bool,
    /// For an announce: the bytes the node said it still needs (`left`).
    pub left: Option<u64>,
}

/// A request a node sent to the network outside its peer connections: what trackers (and,
/// later, the DHT or LSD) cost it, and where it went; see [`SimNode::network_requests`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkRequest {
    /// An `Output::Http` GET of this URL.
    Http(String),
    /// An `Output::Resolve` of this host name.
    Resolve(String),
    /// An `Output::SendDatagram` to this address.
    Datagram(SocketAddr),
}

impl SimNode {
    /// Every HTTP request, name lookup and datagram the node sent, with its time, in order.
    pub fn network_requests(&self) -> &[(Instant, NetworkRequest)] {
        &self.network
    }
}

/// A tracker: its address, its swarms, and what reached it.
#[derive(Debug)]
pub struct SimTracker {
    addr: SocketAddr,
    config: TrackerConfig,
    /// Per info-hash: each peer's address (announcing IP, announced port) and bytes left.
    swarms: BTreeMap<[u8; 20], BTreeMap<SocketAddr, u64>>,
    /// Per info-hash: `completed` announces heard.
    completed: BTreeMap<[u8; 20], u32>,
    log: Vec<TrackerRequest>,
    next_connection_id: u64,
}

impl SimTracker {
    /// The tracker's address (HTTP and UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP announce URL, by address.
    pub fn http_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// The UDP announce URL, by address.
    pub fn udp_url(&self) -> String {
        format!("udp://{}", self.addr)
    }

    /// The UDP announce URL by name (the node has to resolve it first).
    pub fn udp_url_by_name(&self) -> Option<String> {
        let name = self.config.name.as_ref()?;
        Some(format!("udp://{name}:{}", self.addr.port()))
    }

    /// Whether the tracker answers.
    pub fn is_alive(&self) -> bool {
        self.config.alive
    }

    /// Every request that reached the tracker, in order.
    pub fn log(&self) -> &[TrackerRequest] {
        &self.log
    }

    /// The announces that reached the tracker from `node`, in order.
    pub fn announces_from(&self, node: NodeId) -> Vec<&TrackerRequest> {
        self.log
            .iter()
            .filter(|r| r.node == node && r.announce)
            .collect()
    }

    /// The peers the tracker knows for `info_hash`.
    pub fn swarm(&self, info_hash: &[u8; 20]) -> Vec<SocketAddr> {
        self.swarms
            .get(info_hash)
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The scrapes that reached the tracker from `node`, in order.
    pub fn scrapes_from(&self, node: NodeId) -> Vec<&TrackerRequest> {
        self.log
            .iter()
            .filter(|r| r.node == node && r.scrape)
            .collect()
    }

    /// Seeders, leechers and `completed` announces for `info_hash`.
    fn counts(&self, info_hash: &[u8; 20]) -> (u32, u32, u32) {
        let swarm = self.swarms.get(info_hash);
        let seeders = swarm.map_or(0, |s| s.values().filter(|&&l| l == 0).count() as u32);
        let all = swarm.map_or(0, |s| s.len() as u32);
        let completed = self.completed.get(info_hash).copied().unwrap_or(0);
        (seeders, all - seeders, completed)
    }

    /// The answer to an HTTP scrape's query string (BEP 48): every `info_hash` asked for that
    /// the tracker has heard of.
    fn http_scrape(&self, query: &str) -> Vec<u8> {
        let mut hashes: Vec<[u8; 20]> = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("info_hash="))
            .filter_map(|v| <[u8; 20]>::try_from(percent_decode_str(v).collect::<Vec<u8>>()).ok())
            .filter(|h| self.swarms.contains_key(h))
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut files = Vec::new();
        let mut f = DictWriter::new(&mut files);
        for hash in hashes {
            let (seeders, leechers, completed) = self.counts(&hash);
            let mut entry = Vec::new();
            let mut e = DictWriter::new(&mut entry);
            e.int(b"complete", i64::from(seeders));
            e.int(b"downloaded", i64::from(completed));
            e.int(b"incomplete", i64::from(leechers));
            e.finish();
            f.raw(&hash, &entry);
        }
        f.finish();
        let mut body = Vec::new();
        let mut d = DictWriter::new(&mut body);
        d.raw(b"files", &files);
        if self.config.min_scrape_interval > 0 {
            let mut flags = Vec::new();
            let mut fl = DictWriter::new(&mut flags);
            fl.int(
                b"min_request_interval",
                i64::from(self.config.min_scrape_interval),
            );
            fl.finish();
            d.raw(b"flags", &flags);
        }
        d.finish();
        body
    }

    /// Records an announce from `from` and returns the other peers (at most `numwant`) with
    /// the seeder and leecher counts.
    fn announce(
        &mut self,
        info_hash: [u8; 20],
        from: SocketAddr,
        left: u64,
        event: Option<AnnounceEvent>,
        numwant: usize,
    ) -> (Vec<SocketAddr>, u32, u32) {
        if event == Some(AnnounceEvent::Completed) {
            *self.completed.entry(info_hash).or_default() += 1;
        }
        let swarm = self.swarms.entry(info_hash).or_default();
        if event == Some(AnnounceEvent::Stopped) {
            swarm.remove(&from);
        } else {
            swarm.insert(from, left);
        }
        let peers = swarm
            .keys()
            .filter(|&&a| a != from)
            .take(numwant)
            .copied()
            .collect();
        let seeders = swarm.values().filter(|&&l| l == 0).count() as u32;
        let leechers = swarm.len() as u32 - seeders;
        (peers, seeders, leechers)
    }

    /// The answer to an HTTP announce's query string.
    fn http_announce(
        &mut self,
        from_ip: IpAddr,
        query: &str,
    ) -> Result<(Vec<u8>, Option<AnnounceEvent>), String> {
        let mut info_hash = None;
        let mut port = None;
        let mut left = None;
        let mut event = None;
        let mut numwant = 50;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bytes: Vec<u8> = percent_decode_str(value).collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match key {
                "info_hash" => info_hash = <[u8; 20]>::try_from(bytes.as_slice()).ok(),
                "port" => port = text.parse::<u16>().ok(),
                "left" => left = text.parse::<u64>().ok(),
                "numwant" => numwant = text.parse::<usize>().unwrap_or(50),
                "event" => {
                    event = match text.as_str() {
                        "started" => Some(AnnounceEvent::Started),
                        "completed" => Some(AnnounceEvent::Completed),
                        "stopped" => Some(AnnounceEvent::Stopped),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        let mut body = Vec::new();
        let mut d = DictWriter::new(&mut body);
        let (Some(info_hash), Some(port), Some(left)) = (info_hash, port, left) else {
            d.bytes(b"failure reason", b"bad announce");
            d.finish();
            return Ok((body, event));
        };
        let from = SocketAddr::new(from_ip, port);
        let (peers, seeders, leechers) = self.announce(info_hash, from, left, event, numwant);
        let mut compact = Vec::with_capacity(peers.len() * 6);
        for peer in &peers {
            if let IpAddr::V4(ip) = peer.ip() {
                compact.extend_from_slice(&ip.octets());
                compact.extend_from_slice(&peer.port().to_be_bytes());
            }
        }
        d.int(b"complete", i64::from(seeders));
        if self.config.report_external_ip {
            match from_ip {
                IpAddr::V4(ip) => d.bytes(b"external ip", &ip.octets()),
                IpAddr::V6(ip) => d.bytes(b"external ip", &ip.octets()),
            }
        }
        d.int(b"incomplete", i64::from(leechers));
        d.int(b"interval", i64::from(self.config.interval));
        d.bytes(b"peers", &compact);
        d.finish();
        Ok((body, event))
    }

    /// The answer to a UDP datagram, and what to log about it.
    fn udp_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
    ) -> (Option<Vec<u8>>, bool, Option<AnnounceEvent>) {
        let Ok(request) = UdpRequest::decode(data) else {
            return (None, false, None);
        };
        if let UdpRequest::Scrape {
            transaction_id,
            info_hashes,
            ..
        } = &request
        {
            let stats = info_hashes
                .iter()
                .map(|h| {
                    let (complete, incomplete, downloaded) = self.counts(h);
                    ScrapeStats {
                        complete,
                        downloaded,
                        incomplete,
                        name: None,
                    }
                })
                .collect();
            let mut out = Vec::new();
            UdpResponse::Scrape {
                transaction_id: *transaction_id,
                stats,
            }
            .encode(&mut out);
            return (Some(out), false, None);
        }
        let (response, announce, event) = match request {
            UdpRequest::Connect { transaction_id } => {
                self.next_connection_id += 1;
                let connection_id = 0x5157_0000_0000_0000 | self.next_connection_id;
                let response = UdpResponse::Connect {
                    transaction_id,
                    connection_id,
                };
                (response, false, None)
            }
            UdpRequest::Announce {
                transaction_id,
                request,
                ..
            } => {
                let peer = SocketAddr::new(from.ip(), request.port);
                let numwant = request.numwant.map_or(50, |n| n as usize);
                let (peers, seeders, leechers) = self.announce(
                    request.info_hash,
                    peer,
                    request.left,
                    request.event,
                    numwant,
                );
                let response = UdpResponse::Announce {
                    transaction_id,
                    interval: self.config.interval,
                    leechers,
                    seeders,
                    peers,
                };
                (response, true, request.event)
            }
            UdpRequest::Scrape { .. } => unreachable!("answered above"),
        };
        let mut out = Vec::new();
        response.encode(&mut out);
        (Some(out), announce, event)
    }
}

impl Sim {
    /// Adds a tracker at the next free `127.0.1.x` address.
    pub fn add_tracker(&mut self, config: TrackerConfig) -> TrackerId {
        let k = self.trackers.len();
        let ip = Ipv4Addr::new(127, 0, 1, 1 + (k % 250) as u8);
        let addr = SocketAddr::new(IpAddr::V4(ip), config.port);
        self.trackers.push(SimTracker {
            addr,
            config,
            swarms: BTreeMap::new(),
            completed: BTreeMap::new(),
            log: Vec::new(),
            next_connection_id: 0,
        });
        TrackerId(k)
    }

    /// Adds a torrent the node has nothing of yet, announced to `tiers` (BEP 12).
    pub fn add_torrent_with_trackers(
        &mut self,
        node: NodeId,
        torrent: &TestTorrent,
        tiers: Vec<Vec<String>>,
    ) -> TorrentId {
        let add = AddTorrent::new(torrent.info.clone()).with_trackers(tiers);
        self.try_add_torrent(node, add)
            .expect("a fresh test torrent is accepted")
    }

    /// Adds a torrent the node has completely (its content on the node's disk), announced to
    /// `tiers`.
    pub fn seed_torrent_with_trackers(
        &mut self,
        node: NodeId,
        torrent: &TestTorrent,
        tiers: Vec<Vec<String>>,
    ) -> TorrentId {
        let have = Bitfield::full(torrent.piece_count());
        let add = AddTorrent::new(torrent.info.clone())
            .with_have(have)
            .with_trackers(tiers);
        // As `seed_torrent` does: reads are scheduled with latency, so filling right after
        // the add is in time.
        let id = self
            .try_add_torrent(node, add)
            .expect("a fresh test torrent is accepted");
        self.node_mut(node.0).disk.fill(id, &torrent.content);
        id
    }

    /// A tracker.
    pub fn tracker(&self, tracker: TrackerId) -> &SimTracker {
        &self.trackers[tracker.0]
    }

    /// Lists `addr` in a tracker's swarm of `info_hash` as if it had announced there with
    /// `left` bytes to go (a peer that announces only elsewhere, say only in the v2 swarm of a
    /// hybrid torrent).
    pub fn list_in_swarm(
        &mut self,
        tracker: TrackerId,
        info_hash: [u8; 20],
        addr: SocketAddr,
        left: u64,
    ) {
        let t = &mut self.trackers[tracker.0];
        t.swarms.entry(info_hash).or_default().insert(addr, left);
    }

    /// Kills or revives a tracker.
    pub fn set_tracker_alive(&mut self, tracker: TrackerId, alive: bool) {
        self.trackers[tracker.0].config.alive = alive;
    }

    /// The tracker at `host[:port]` as an URL names it (address or name), if any.
    fn tracker_by_host(&self, host: &str, port: u16) -> Option<usize> {
        self.trackers.iter().position(|t| {
            t.addr.port() == port
                && (t.addr.ip().to_string() == host || t.config.name.as_deref() == Some(host))
        })
    }

    /// The one-way delay between node `host` and a tracker: the node's access link (the
    /// tracker's is taken to be instantaneous).
    fn tracker_delay(&self, host: usize) -> Duration {
        self.hosts[host].link.latency
    }

    /// Performs a node's `Output::Http`, `Output::Resolve` or `Output::SendDatagram`.
    pub(crate) fn perform_network(&mut self, host: usize, output: Output) {
        let now = self.now;
        let rtt = self.tracker_delay(host) * 2;
        let request = match &output {
            Output::Http { url, .. } => Some(NetworkRequest::Http(url.clone())),
            Output::Resolve { host, .. } => Some(NetworkRequest::Resolve(host.clone())),
            Output::SendDatagram { to, .. } => Some(NetworkRequest::Datagram(*to)),
            _ => None,
        };
        if let (Some(request), HostKind::Node(node)) = (request, &mut self.hosts[host].kind) {
            node.network.push((now, request));
        }
        match output {
            Output::Http { req, url, max_body } => {
                let result = self.http_get(host, &url, max_body);
                let input = Input::HttpDone { req, result };
                self.schedule(now + rtt, Ev::Input { host, input });
            }
            Output::Resolve {
                req,
                host: name,
                port,
            } => {
                let result = self
                    .trackers
                    .iter()
                    .find(|t| t.config.name.as_deref() == Some(name.as_str()))
                    .map(|t| vec![SocketAddr::new(t.addr.ip(), port)])
                    .ok_or_else(|| format!("cannot resolve {name:?}: no such host"));
                let input = Input::Resolved { req, result };
                self.schedule(now + rtt, Ev::Input { host, input });
            }
            Output::SendDatagram { to, data } => self.send_datagram(host, to, &data),
            other => self.violate(format!("node {host}: not a network output {other:?}")),
        }
    }

    fn http_get(&mut self, host: usize, url: &str, max_body: usize) -> Result<HttpReply, String> {
        let refused = || Err("connection refused".to_string());
        let Some(rest) = url.strip_prefix("http://") else {
            return refused();
        };
        let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) => (name, port.parse().unwrap_or(0)),
            None => (authority, 80),
        };
        let Some(t) = self.tracker_by_host(name, port) else {
            return refused();
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        // BEP 48: the scrape URL's last path component starts with `scrape`.
        let scrape = path
            .rsplit('/')
            .next()
            .is_some_and(|p| p.starts_with("scrape"));
        let from_ip = self.hosts[host].addr.ip();
        let at = self.now + self.tracker_delay(host);
        let left = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("left="))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|_| !scrape);
        let tracker = &mut self.trackers[t];
        if !tracker.config.alive {
            tracker.log.push(TrackerRequest {
                at,
                node: NodeId(host),
                protocol: TrackerProtocol::Http,
                answered: false,
                event: None,
                announce: !scrape,
                scrape,
                left,
            });
            return refused();
        }
        let (body, event) = if scrape {
            (tracker.http_scrape(query), None)
        } else {
            tracker.http_announce(from_ip, query)?
        };
        tracker.log.push(TrackerRequest {
            at,
            node: NodeId(host),
            protocol: TrackerProtocol::Http,
            answered: true,
            event,
            announce: !scrape,
            scrape,
            left,
        });
        if body.len() > max_body {
            return Err(format!("body over {max_body} bytes"));
        }
        Ok(HttpReply {
            status: 200,
            body: Bytes::from(body),
        })
    }

    fn send_datagram(&mut self, host: usize, to: SocketAddr, data: &[u8]) {
        let now = self.now;
        let from = self.hosts[host].addr;
        let one_way = self.tracker_delay(host);
        if let Some(t) = self.trackers.iter().position(|t| t.addr == to) {
            let tracker = &mut self.trackers[t];
            let alive = tracker.config.alive;
            let decoded = UdpRequest::decode(data);
            let scrape = matches!(decoded, Ok(UdpRequest::Scrape { .. }));
            let left = match &decoded {
                Ok(UdpRequest::Announce { request, .. }) => Some(request.left),
                _ => None,
            };
            let (reply, announce, event) = if alive {
                tracker.udp_datagram(from, data)
            } else {
                // Whether a dead tracker's datagram was an announce, for the log.
                (None, left.is_some(), None)
            };
            tracker.log.push(TrackerRequest {
                at: now + one_way,
                node: NodeId(host),
                protocol: TrackerProtocol::Udp,
                answered: alive,
                event,
                announce,
                scrape,
                left,
            });
            if let Some(reply) = reply {
                let input = Input::Datagram {
                    from: to,
                    data: Bytes::from(reply),
                };
                self.schedule(now + one_way * 2, Ev::Input { host, input });
            }
            return;
        }
        // Another node's socket: delivered after both access links.
        let target = self
            .hosts
            .iter()
            .position(|h| h.addr == to && matches!(h.kind, HostKind::Node(_)));
        if let Some(target) = target {
            let at = now + self.latency(host, target);
            let input = Input::Datagram {
                from,
                data: Bytes::copy_from_slice(data),
            };
            self.schedule(
                at,
                Ev::Input {
                    host: target,
                    input,
                },
            );
        }
    }
}
