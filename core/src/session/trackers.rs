//! Trackers inside the session: each torrent's [`TrackerList`] (BEP 12 tiers), HTTP announces
//! through the runtime ([`Output::Http`]), UDP announces through [`UdpTrackerClient`]s and the
//! session's UDP socket ([`Output::SendDatagram`], BEP 15/41), and the peers they return.
//!
//! How an announce travels:
//! - the list hands out an [`Announce`] (`next_announce`); we fill an [`AnnounceRequest`] from
//!   the torrent's counters;
//! - `http(s)://`: [`Output::Http`] with the announce URL; [`Input::HttpDone`] brings the body,
//!   parsed with [`parse_announce_response`];
//! - `udp://`: the host is an IP literal, or [`Output::Resolve`] first; then one
//!   [`UdpTrackerClient`] per (torrent, tracker address) does connect/announce with
//!   retransmission; datagrams come back as [`Input::Datagram`];
//! - the outcome goes back to the list (`handle_success` / `handle_failure`), the application
//!   hears [`Event::TrackerAnnounced`] or [`Event::TrackerFailed`], and returned peers are dialled
//!   up to [`Config::max_peers_per_torrent`](super::Config::max_peers_per_torrent).
//!
//! A torrent announces while it is active: its list is built when it is added but started only
//! once it is neither checking, paused nor stopped by an error ([`Session::trackers_sync`]), so
//! the first announce carries the `left` the check found and peers the tracker returns can be
//! dialled. `completed` goes out once when a torrent that was incomplete when it first started
//! finishes (BEP 3: never for a torrent that was complete from the start). `stopped` goes out
//! when the torrent is paused or stops on an error (`started` again on resume), and on removal
//! (best effort there, HTTP trackers only: a UDP exchange cannot outlive the torrent).
//!
//! A hybrid torrent (BEP 52 "upgrade path") is one torrent in two swarms: every announce goes
//! out under its v1 hash and, alongside, under its truncated v2 hash with the same event and
//! counters. The v1 announce drives the list (intervals, failover, events); the companion
//! only brings peers (whoever announced the v2 swarm alone) and fails silently.
//!
//! Private torrents (BEP 27) use only their own trackers: the list is built from the tiers the
//! torrent was added with and nothing else ever adds one.
//!
//! The `external ip` a tracker reports (BEP 24) becomes the session's view of its own address
//! ([`Session::external_ip`], [`Event::ExternalIpChanged`]). Scrapes (BEP 48, BEP 15) are in
//! the `scrape` module.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::scrape::Scrapes;
use super::{Event, HttpReply, Output, Session};
use crate::id::{InfoHashes, RequestId, TorrentId};
use crate::time::Instant;
use crate::tracker::{
    parse_announce_response, Announce, AnnounceEvent, AnnounceId, AnnounceRequest,
    AnnounceResponse, TierConfig, TrackerError, TrackerLimits, TrackerList, TrackerUrl,
    UdpClientConfig, UdpEvent, UdpTrackerClient,
};

/// How many peers one announce asks for.
const NUMWANT: u32 = 200;

/// Which of a torrent's swarms an announce is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Swarm {
    /// The torrent's [wire id](crate::id::InfoHashes::wire_id): the announce the list tracks.
    Main,
    /// A hybrid torrent's truncated v2 hash (BEP 52): a companion of the main announce.
    V2,
}

/// The session's tracker state, for every torrent.
#[derive(Debug, Default)]
pub(super) struct Trackers {
    /// (Ordered maps where they are iterated: the session's outputs must not depend on hash
    /// order, so the same seed replays the same run.)
    lists: BTreeMap<TorrentId, TorrentTrackers>,
    /// HTTP announces in flight.
    http: HashMap<RequestId, (TorrentId, AnnounceId, String, Swarm)>,
    /// UDP announces waiting for their tracker's name to resolve.
    resolving: HashMap<RequestId, PendingUdp>,
    /// One UDP client per torrent, tracker address and swarm.
    udp: BTreeMap<(TorrentId, SocketAddr, Swarm), UdpSlot>,
    /// The `key` sent with every announce (BEP 3 / BEP 15), the same for the whole session.
    key: u32,
    /// Addresses that turned out to be ourselves; never dialled again.
    ourselves: HashSet<SocketAddr>,
    /// Our address as the last tracker that reported it sees it (BEP 24).
    external_ip: Option<IpAddr>,
    /// Scrapes in flight (BEP 48, BEP 15).
    pub(super) scrapes: Scrapes,
}

#[derive(Debug)]
pub(super) struct TorrentTrackers {
    pub(super) list: TrackerList,
    /// Whether the list was ever started (the torrent became active once).
    started_once: bool,
    /// Whether `completed` has been handled (sent, or not due because the torrent was complete
    /// when it first started).
    completed: bool,
}

#[derive(Debug)]
struct PendingUdp {
    torrent: TorrentId,
    id: AnnounceId,
    url: String,
    url_data: String,
    request: AnnounceRequest,
    swarm: Swarm,
}

#[derive(Debug)]
struct UdpSlot {
    client: UdpTrackerClient,
    /// The announce this client is working on, and its tracker's URL.
    announce: Option<(AnnounceId, String)>,
}

impl Trackers {
    pub(super) fn new(key: u32) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// The earliest deadline of any tracker list or UDP client.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.lists
            .values()
            .filter_map(|t| t.list.poll_timeout())
            .chain(self.udp.values().filter_map(|s| s.client.poll_timeout()))
            .chain(self.scrapes.deadline())
            .min()
    }

    /// A torrent's tracker list, if it has trackers.
    pub(super) fn list(&self, torrent: TorrentId) -> Option<&TorrentTrackers> {
        self.lists.get(&torrent)
    }

    pub(super) fn remember_self(&mut self, addr: SocketAddr) {
        if self.ourselves.len() < 64 {
            self.ourselves.insert(addr);
        }
    }
}

impl Session {
    /// Our IP address as the world sees it, as a tracker last reported it (BEP 24 `external
    /// ip`); `None` until one does. Changes are reported with [`Event::ExternalIpChanged`].
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.trackers.external_ip
    }

    /// Builds a new torrent's tracker list from `tiers` (BEP 12), and starts announcing if the
    /// torrent is active already (otherwise once it is: [`Session::trackers_sync`]).
    pub(super) fn trackers_start(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        tiers: &[Vec<String>],
    ) {
        let private = match self.torrents.get(torrent.0) {
            Some(t) => t.info.is_private(),
            // A magnet link (BEP 9): not known to be private.
            None if self.is_magnet(torrent) => false,
            None => return,
        };
        let list = TrackerList::new(tiers, private, TierConfig::DEFAULT, self.rng.fork());
        if list.is_empty() {
            return;
        }
        self.trackers.lists.insert(
            torrent,
            TorrentTrackers {
                list,
                started_once: false,
                completed: false,
            },
        );
        self.trackers_sync(now, torrent);
    }

    /// Starts or stops a torrent's announces to match its state: announcing while it is active
    /// (`started`), `stopped` once it is paused or stopped by an error. Harmless to call at any
    /// time.
    pub(super) fn trackers_sync(&mut self, now: Instant, torrent: TorrentId) {
        let (active, finished) = match self.torrents.get(torrent.0) {
            Some(tor) => (tor.is_active(), tor.finished),
            // A magnet link (BEP 9) announces while it fetches its metadata.
            None if self.is_magnet(torrent) => (true, false),
            None => return,
        };
        let Some(t) = self.trackers.lists.get_mut(&torrent) else {
            return;
        };
        match (active, t.list.is_running()) {
            (true, false) => {
                if !t.started_once {
                    t.started_once = true;
                    // BEP 3: "No completed is sent if the file was complete when started."
                    t.completed = finished;
                }
                t.list.start(now);
            }
            (false, true) => t.list.stop(now),
            _ => return,
        }
        self.tracker_tick(now, torrent);
    }

    /// The torrent is going away: say `stopped` (best effort) and forget its trackers.
    pub(super) fn trackers_stop(&mut self, now: Instant, torrent: TorrentId) {
        if let Some(t) = self.trackers.lists.get_mut(&torrent) {
            t.list.stop(now);
        }
        // Only HTTP can carry the `stopped` announces: UDP ones need a connect exchange.
        self.tracker_tick(now, torrent);
        self.trackers.lists.remove(&torrent);
        self.trackers.udp.retain(|(t, ..), _| *t != torrent);
        self.trackers.resolving.retain(|_, p| p.torrent != torrent);
        self.trackers.scrapes.forget(torrent);
        // Late answers to HTTP announces in flight find no list and are dropped.
    }

    /// Runs every tracker timer due at `now`.
    pub(super) fn trackers_timeout(&mut self, now: Instant) {
        let due: Vec<(TorrentId, SocketAddr, Swarm)> = self
            .trackers
            .udp
            .iter()
            .filter(|(_, s)| s.client.poll_timeout().is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(slot) = self.trackers.udp.get_mut(&key) {
                slot.client.handle_timeout(now);
            }
            self.udp_flush(now, key);
        }
        self.scrapes_timeout(now);
        let torrents: Vec<TorrentId> = self.trackers.lists.keys().copied().collect();
        for torrent in torrents {
            if let Some(t) = self.trackers.lists.get_mut(&torrent) {
                t.list.handle_timeout(now);
            }
            self.tracker_tick(now, torrent);
        }
    }

    /// Starts or stops announcing for torrents whose state changed (a check finished, a
    /// storage error), and sends `completed` for torrents that just finished.
    pub(super) fn trackers_after_input(&mut self, now: Instant) {
        let torrents: Vec<TorrentId> = self.trackers.lists.keys().copied().collect();
        for torrent in torrents {
            self.trackers_sync(now, torrent);
        }
        let finished: Vec<TorrentId> = self
            .trackers
            .lists
            .iter()
            .filter(|(id, t)| {
                t.started_once
                    && !t.completed
                    && self.torrents.get(id.0).is_some_and(|tor| tor.finished)
            })
            .map(|(id, _)| *id)
            .collect();
        for torrent in finished {
            if let Some(t) = self.trackers.lists.get_mut(&torrent) {
                t.completed = true;
                t.list.complete(now);
            }
            self.tracker_tick(now, torrent);
        }
    }

    /// Starts every announce the torrent's list wants now, and drops the ones it gave up on.
    fn tracker_tick(&mut self, now: Instant, torrent: TorrentId) {
        loop {
            let Some(t) = self.trackers.lists.get_mut(&torrent) else {
                return;
            };
            // While running, a cancel is the list giving up waiting (its own timeout, already
            // backing the tracker off): tell the application. Otherwise the torrent stopped
            // (paused, failed, removed) and the announce is simply dropped.
            let timed_out = t.list.is_running();
            while let Some(id) = t.list.poll_cancel() {
                // Drop the transport.
                let mut url = None;
                self.trackers.http.retain(|_, (_, a, u, _)| {
                    if *a == id {
                        url = Some(std::mem::take(u));
                    }
                    *a != id
                });
                self.trackers.resolving.retain(|_, p| {
                    if p.id == id {
                        url = Some(std::mem::take(&mut p.url));
                    }
                    p.id != id
                });
                for slot in self.trackers.udp.values_mut() {
                    if slot.announce.as_ref().is_some_and(|(a, _)| *a == id) {
                        slot.client.cancel();
                        url = slot.announce.take().map(|(_, u)| u);
                    }
                }
                if timed_out {
                    self.outputs.push_back(Output::Event(Event::TrackerFailed {
                        torrent,
                        url: url.unwrap_or_default(),
                        error: TrackerError::TimedOut,
                    }));
                }
            }
            let Some(t) = self.trackers.lists.get_mut(&torrent) else {
                return;
            };
            let Some(announce) = t.list.next_announce(now) else {
                return;
            };
            self.start_announce(now, torrent, announce);
        }
    }

    fn announce_request(&self, torrent: TorrentId, announce: &Announce) -> Option<AnnounceRequest> {
        let (wire_id, uploaded, downloaded, left) = match self.torrents.get(torrent.0) {
            Some(t) => (
                t.info.hashes().wire_id(),
                t.uploaded,
                t.downloaded,
                t.left(),
            ),
            None => {
                let (wire_id, left) = self.magnet_announce(torrent)?;
                (wire_id, 0, 0, left)
            }
        };
        let mut request = AnnounceRequest::new(
            wire_id,
            self.peer_id,
            self.config.listen_port.unwrap_or(0),
            self.trackers.key,
        );
        request.uploaded = uploaded;
        request.downloaded = downloaded;
        request.left = left;
        request.event = announce.event;
        request.tracker_id.clone_from(&announce.tracker_id);
        request.numwant = Some(if announce.event == Some(AnnounceEvent::Stopped) {
            0
        } else {
            NUMWANT
        });
        Some(request)
    }

    fn start_announce(&mut self, now: Instant, torrent: TorrentId, announce: Announce) {
        let Some(request) = self.announce_request(torrent, &announce) else {
            return;
        };
        // BEP 52: a hybrid torrent joins the v2 swarm too.
        let companion = match self.torrent_hashes(torrent) {
            Some(InfoHashes::Hybrid(_, v2)) => Some(AnnounceRequest {
                info_hash: v2.truncated(),
                ..request.clone()
            }),
            _ => None,
        };
        let (id, url) = (announce.id, announce.url);
        self.send_announce(now, torrent, (id, url.clone()), request, Swarm::Main);
        if let Some(companion) = companion {
            self.send_announce(now, torrent, (id, url), companion, Swarm::V2);
        }
    }

    /// Sends one announce to its tracker over the transport its URL names.
    fn send_announce(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        (id, tracker_url): (AnnounceId, String),
        request: AnnounceRequest,
        swarm: Swarm,
    ) {
        match TrackerUrl::parse(&tracker_url) {
            Ok(TrackerUrl::Http { url }) => match request.to_http_url(&url) {
                Ok(url) => {
                    let req = self.next_request_id();
                    self.trackers
                        .http
                        .insert(req, (torrent, id, tracker_url, swarm));
                    self.outputs.push_back(Output::Http {
                        req,
                        url,
                        max_body: TrackerLimits::DEFAULT.max_body,
                    });
                }
                Err(error) => self.announce_failed(now, (torrent, swarm), id, &tracker_url, error),
            },
            Ok(TrackerUrl::Udp {
                host,
                port,
                url_data,
            }) => {
                let literal = host
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, port));
                match literal {
                    Some(addr) => {
                        let what = (id, tracker_url);
                        self.udp_announce(now, (torrent, addr, swarm), what, &url_data, request);
                    }
                    None => {
                        let req = self.next_request_id();
                        self.trackers.resolving.insert(
                            req,
                            PendingUdp {
                                torrent,
                                id,
                                url: tracker_url,
                                url_data,
                                request,
                                swarm,
                            },
                        );
                        self.outputs.push_back(Output::Resolve { req, host, port });
                    }
                }
            }
            Err(error) => self.announce_failed(now, (torrent, swarm), id, &tracker_url, error),
        }
    }

    fn udp_announce(
        &mut self,
        now: Instant,
        key: (TorrentId, SocketAddr, Swarm),
        what: (AnnounceId, String),
        url_data: &str,
        request: AnnounceRequest,
    ) {
        let addr = key.1;
        if !self.trackers.udp.contains_key(&key) {
            let client = UdpTrackerClient::new(
                addr.is_ipv6(),
                url_data,
                UdpClientConfig::default(),
                TrackerLimits::DEFAULT,
                self.rng.fork(),
            );
            self.trackers.udp.insert(
                key,
                UdpSlot {
                    client,
                    announce: None,
                },
            );
        }
        let slot = self
            .trackers
            .udp
            .get_mut(&key)
            .expect("inserted just above");
        slot.announce = Some(what);
        slot.client.announce(now, request);
        self.udp_flush(now, key);
    }

    /// Sends a UDP client's datagrams and acts on its results.
    fn udp_flush(&mut self, now: Instant, key: (TorrentId, SocketAddr, Swarm)) {
        let mut results = Vec::new();
        if let Some(slot) = self.trackers.udp.get_mut(&key) {
            while let Some(data) = slot.client.poll_transmit() {
                self.outputs.push_back(Output::SendDatagram {
                    to: key.1,
                    data: Bytes::from(data),
                });
            }
            while let Some(event) = slot.client.poll_event() {
                if let Some(what) = slot.announce.take() {
                    results.push((what, event));
                }
            }
        }
        let from = (key.0, key.2);
        for ((id, url), event) in results {
            match event {
                UdpEvent::Announced(response) => {
                    self.announce_succeeded(now, from, id, &url, response);
                }
                UdpEvent::Failed(error) => self.announce_failed(now, from, id, &url, error),
                UdpEvent::Scraped(_) => {}
            }
        }
        self.tracker_tick(now, key.0);
    }

    /// An HTTP announce finished.
    pub(super) fn tracker_http_done(
        &mut self,
        now: Instant,
        req: RequestId,
        result: Result<HttpReply, String>,
    ) {
        if let Some(scrape) = self.trackers.scrapes.take_http(req) {
            self.scrape_http_done(now, scrape, result);
            return;
        }
        let Some((torrent, id, url, swarm)) = self.trackers.http.remove(&req) else {
            return;
        };
        let outcome = result
            .map_err(|message| TrackerError::Transport { message })
            .and_then(|reply| {
                parse_announce_response(reply.status, &reply.body, &TrackerLimits::DEFAULT)
            });
        let from = (torrent, swarm);
        match outcome {
            Ok(response) => self.announce_succeeded(now, from, id, &url, response),
            Err(error) => self.announce_failed(now, from, id, &url, error),
        }
        self.tracker_tick(now, torrent);
    }

    /// A UDP tracker's name resolved (or not).
    pub(super) fn tracker_resolved(
        &mut self,
        now: Instant,
        req: RequestId,
        result: Result<Vec<SocketAddr>, String>,
    ) {
        if let Some(scrape) = self.trackers.scrapes.take_resolving(req) {
            self.scrape_resolved(now, scrape, result);
            return;
        }
        let Some(pending) = self.trackers.resolving.remove(&req) else {
            return;
        };
        // Prefer IPv4: every UDP tracker answers there, not all have IPv6.
        let addr = result.map(|addrs| {
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
        });
        match addr {
            Ok(Some(addr)) => self.udp_announce(
                now,
                (pending.torrent, addr, pending.swarm),
                (pending.id, pending.url),
                &pending.url_data,
                pending.request,
            ),
            Ok(None) => self.announce_failed(
                now,
                (pending.torrent, pending.swarm),
                pending.id,
                &pending.url,
                TrackerError::Transport {
                    message: "the tracker's name has no address".into(),
                },
            ),
            Err(message) => self.announce_failed(
                now,
                (pending.torrent, pending.swarm),
                pending.id,
                &pending.url,
                TrackerError::Transport { message },
            ),
        }
        self.tracker_tick(now, pending.torrent);
    }

    /// A datagram arrived: offer it to the UDP tracker clients talking to its sender.
    pub(super) fn tracker_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let keys: Vec<(TorrentId, SocketAddr, Swarm)> = self
            .trackers
            .udp
            .keys()
            .filter(|(_, addr, _)| *addr == from)
            .copied()
            .collect();
        for key in keys {
            let taken = self
                .trackers
                .udp
                .get_mut(&key)
                .is_some_and(|slot| slot.client.handle_datagram(now, data));
            if taken {
                self.udp_flush(now, key);
                return;
            }
        }
        self.scrape_datagram(now, from, data);
    }

    fn announce_succeeded(
        &mut self,
        now: Instant,
        (torrent, swarm): (TorrentId, Swarm),
        id: AnnounceId,
        url: &str,
        response: AnnounceResponse,
    ) {
        let Some(t) = self.trackers.lists.get_mut(&torrent) else {
            return;
        };
        if swarm == Swarm::V2 {
            // A companion announce: only its peers count, while the torrent announces.
            if t.list.is_running() {
                self.dial_peers(now, torrent, &response.peers);
            }
            return;
        }
        if !t.list.handle_success(now, id, &response) {
            return;
        }
        if let Some(ip) = response.external_ip {
            if self.trackers.external_ip != Some(ip) {
                self.trackers.external_ip = Some(ip);
                self.outputs
                    .push_back(Output::Event(Event::ExternalIpChanged {
                        ip,
                        url: url.to_string(),
                    }));
            }
        }
        if let Some(message) = response.warning.clone() {
            self.outputs.push_back(Output::Event(Event::TrackerWarning {
                torrent,
                url: url.to_string(),
                message,
            }));
        }
        self.outputs
            .push_back(Output::Event(Event::TrackerAnnounced {
                torrent,
                url: url.to_string(),
                peers: response.peers.len(),
                seeders: response.seeders,
                leechers: response.leechers,
            }));
        self.dial_peers(now, torrent, &response.peers);
    }

    fn announce_failed(
        &mut self,
        now: Instant,
        (torrent, swarm): (TorrentId, Swarm),
        id: AnnounceId,
        url: &str,
        error: TrackerError,
    ) {
        if swarm == Swarm::V2 {
            return; // the main announce reports the tracker's health
        }
        let Some(t) = self.trackers.lists.get_mut(&torrent) else {
            return;
        };
        if t.list.handle_failure(now, id, &error) {
            self.outputs.push_back(Output::Event(Event::TrackerFailed {
                torrent,
                url: url.to_string(),
                error,
            }));
        }
    }

    /// Adds a tracker learned from a peer (BEP 28) and announces to it when its turn comes;
    /// a torrent without trackers gets a list. Returns whether it was added.
    pub(super) fn trackers_add(&mut self, now: Instant, torrent: TorrentId, url: &str) -> bool {
        if !self.trackers.lists.contains_key(&torrent) {
            self.trackers_start(now, torrent, &[vec![url.to_string()]]);
            return self.trackers.lists.contains_key(&torrent);
        }
        let added = self
            .trackers
            .lists
            .get_mut(&torrent)
            .is_some_and(|t| t.list.add_tracker(url));
        if added {
            self.tracker_tick(now, torrent);
        }
        added
    }

    /// The trackers of a torrent that answered an announce (BEP 28 tells peers only these).
    pub(super) fn trackers_working(&self, torrent: TorrentId) -> Vec<String> {
        self.trackers
            .lists
            .get(&torrent)
            .map(|t| {
                t.list
                    .trackers()
                    .filter(|s| s.fails == 0 && s.last_error.is_none() && s.seeders.is_some())
                    .map(|s| s.url.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Connects to peers a tracker returned, up to the torrent's connection budget, skipping
    /// ones we are connected to and ourselves.
    pub(super) fn dial_peers(&mut self, now: Instant, torrent: TorrentId, peers: &[SocketAddr]) {
        // Peers that dialled us count under the address they listen on (BEP 10 `p`) too.
        let connected: HashSet<SocketAddr> = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(torrent))
            .flat_map(|(_, c)| [Some(c.peer.addr()), super::ext_more::listen_addr(&c.peer)])
            .flatten()
            .collect();
        // Connections, not addresses: one that dialled us is there under two.
        let open = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(torrent))
            .count();
        let mut budget = self.config.max_peers_per_torrent.saturating_sub(open);
        // BEP 40: the best-ranked candidates first; at the limit, one may replace the worst.
        for addr in self.by_priority(peers) {
            if connected.contains(&addr) || self.trackers.ourselves.contains(&addr) {
                continue;
            }
            if budget == 0 {
                if !self.evict_for(now, torrent, addr) {
                    break;
                }
                budget = 1;
            }
            if self.connect_inner(now, torrent, addr).is_ok() {
                budget -= 1;
            }
        }
    }
}
