//! The Mainline DHT inside the session (BEP 5): one optional [`DhtNode`] on the session's UDP
//! socket, which finds peers for public torrents and announces our listen port for them.
//!
//! - **Configuration**: [`Config::dht`](super::Config::dht) (`None`, the default, is off).
//!   Bootstrap nodes are `host:port` strings: IP literals are used at once, names go out as
//!   [`Output::Resolve`] first. A saved [`DhtState`] (node id and contacts) restores the node
//!   id across restarts (BEP 5: "the node id should be kept"); [`Session::dht_state`] gives it
//!   for saving.
//! - **Start**: the node is made at the first call that carries a time (the session's
//!   constructor has none), so [`Session::poll_timeout`] asks for an immediate timeout while
//!   the DHT is configured but not started.
//! - **UDP demultiplexing**: a datagram whose first byte is `d` is KRPC (a bencoded
//!   dictionary); UDP tracker responses (BEP 15) start with a 32-bit action of 0 to 3, so
//!   their first byte is 0.
//! - **Torrents**: every torrent that is not private (BEP 27: private torrents use only their
//!   trackers) is announced when added and every `announce_interval` after: a `get_peers`
//!   lookup whose peers are dialled like a tracker's, then `announce_peer` with our listen
//!   port (without a listen port, only the lookup). A lookup that reached no node (the table
//!   was still empty) is retried once the table has a node, or after `RETRY_EMPTY` (15 s);
//!   one that found no peer for an unfinished torrent after `RETRY_NO_PEERS` (a minute); when
//!   the bootstrap finishes, every torrent is announced again at once. Each lookup's end is
//!   reported as [`Event::DhtLookupDone`].
//! - **Magnet links** (BEP 9) are looked up from [`Session::add_magnet`] on: the peers found
//!   are dialled for the metadata. Whether the torrent is private is known only with the
//!   metadata; a private one leaves the DHT then.
//! - **Hybrid torrents** (BEP 52) are announced and looked up under both info-hashes, the v1
//!   one and the v2 one truncated to 20 bytes, each on its own schedule: a v2 peer finds us
//!   under either. A magnet naming only the v1 hash of a hybrid adds the v2 one once the
//!   metadata arrives.
//! - **Peers' DHT ports**: we set the DHT bit in the handshake and send our port (BEP 5
//!   `port`) to peers that set it too; a peer's `port` message makes the node ping that
//!   address, which joins the routing table if it answers.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use bytes::Bytes;

use super::{Event, Output, Session};
use crate::dht::{Announce, DhtConfig, DhtEvent, DhtNode, DhtState, LookupId};
use crate::id::{ConnId, InfoHashV1, InfoHashes, RequestId, TorrentId};
use crate::time::{Duration, Instant};

/// The well-known public bootstrap routers. Only for real use: tests and demos pass loopback
/// nodes.
pub const PUBLIC_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// How soon a torrent's lookup is retried when it reached no node.
pub(super) const RETRY_EMPTY: Duration = Duration::from_secs(15);

/// How soon an unfinished torrent's lookup is retried when it found no peer.
pub(super) const RETRY_NO_PEERS: Duration = Duration::from_secs(60);

/// How the session runs its DHT node: [`Config::dht`](super::Config::dht).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtSettings {
    /// The node's own settings (its id, BEP 42 enforcement, limits, ...).
    pub node: DhtConfig,
    /// Bootstrap nodes as `host:port` (IP literals or names). Empty: only `state`'s contacts
    /// and peers' `port` messages bring nodes.
    pub bootstrap: Vec<String>,
    /// What [`Session::dht_state`] returned before the last shutdown: the node id is kept
    /// and its contacts are asked first.
    pub state: Option<DhtState>,
    /// How often each torrent is announced (BEP 5 peers expire after 30 minutes or so).
    pub announce_interval: Duration,
}

impl Default for DhtSettings {
    fn default() -> Self {
        Self {
            node: DhtConfig::default(),
            bootstrap: Vec::new(),
            state: None,
            announce_interval: Duration::from_secs(15 * 60),
        }
    }
}

/// One info-hash of a torrent on the DHT (a hybrid torrent has two).
#[derive(Debug)]
struct DhtTorrent {
    next: Instant,
    lookup: Option<LookupId>,
    /// The last lookup reached no node: go again as soon as the table has one.
    reached_nobody: bool,
}

/// The session's DHT state.
#[derive(Debug)]
pub(super) struct SessionDht {
    settings: DhtSettings,
    pub(super) node: Option<DhtNode>,
    routers: Vec<SocketAddr>,
    resolving: HashMap<RequestId, ()>,
    /// By torrent and info-hash; ordered, so the simulator's runs are reproducible.
    torrents: BTreeMap<(TorrentId, InfoHashV1), DhtTorrent>,
    lookups: HashMap<LookupId, (TorrentId, InfoHashV1)>,
    /// BEP 44 items and BEP 46 lookups of the application (`dht_items.rs`).
    pub(super) items: super::dht_items::DhtItems,
}

impl SessionDht {
    pub(super) fn new(settings: DhtSettings) -> Self {
        Self {
            settings,
            node: None,
            routers: Vec::new(),
            resolving: HashMap::new(),
            torrents: BTreeMap::new(),
            lookups: HashMap::new(),
            items: super::dht_items::DhtItems::default(),
        }
    }

    /// The earliest deadline: now-ish while not started, else the node's and the next
    /// torrent announce.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let Some(node) = &self.node else {
            return Some(Instant::ZERO);
        };
        node.poll_timeout()
            .into_iter()
            .chain(
                self.torrents
                    .values()
                    .filter(|t| t.lookup.is_none())
                    .map(|t| t.next),
            )
            .chain(self.items.deadline())
            .min()
    }
}

/// The 20-byte ids a torrent goes by on the DHT: the v1 info-hash and the v2 one truncated
/// (BEP 52), whichever it has.
fn dht_ids(hashes: &InfoHashes) -> Vec<InfoHashV1> {
    hashes
        .v1()
        .into_iter()
        .chain(hashes.v2().map(|h| InfoHashV1(h.truncated())))
        .collect()
}

/// Whether a datagram is KRPC (a bencoded dictionary) rather than a UDP tracker's answer.
pub(super) fn is_krpc(data: &[u8]) -> bool {
    data.first() == Some(&b'd')
}

impl Session {
    /// The DHT node, when [`Config::dht`](super::Config::dht) is set and the session has
    /// started it (after its first input or timeout): its id, routing tables and counters.
    pub fn dht_node(&self) -> Option<&DhtNode> {
        self.dht.as_ref()?.node.as_ref()
    }

    /// What to save of the DHT for the next start (node id and contacts); pass it back in
    /// [`DhtSettings::state`].
    pub fn dht_state(&self) -> Option<DhtState> {
        self.dht_node().map(DhtNode::state)
    }

    /// Makes the node at the first call with a time, and starts the bootstrap.
    pub(super) fn dht_start(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        if dht.node.is_some() {
            return;
        }
        let rng = self.rng.fork();
        let node = match &dht.settings.state {
            Some(state) => DhtNode::restore(dht.settings.node.clone(), rng, now, state),
            None => DhtNode::new(dht.settings.node.clone(), rng, now),
        };
        dht.node = Some(node);
        let mut names = Vec::new();
        for b in &dht.settings.bootstrap {
            if let Ok(addr) = b.parse::<SocketAddr>() {
                dht.routers.push(addr);
            } else if let Some((host, port)) = b.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    names.push((host.trim_matches(['[', ']']).to_string(), port));
                }
            }
        }
        for (host, port) in names {
            let req = self.next_request_id();
            let dht = self.dht.as_mut().expect("checked above");
            dht.resolving.insert(req, ());
            self.outputs.push_back(Output::Resolve { req, host, port });
        }
        let dht = self.dht.as_mut().expect("checked above");
        let routers = dht.routers.clone();
        dht.node
            .as_mut()
            .expect("made above")
            .bootstrap(now, &routers);
        self.dht_flush(now);
    }

    /// A bootstrap name resolved; false if the lookup was not the DHT's.
    pub(super) fn dht_resolved(
        &mut self,
        now: Instant,
        req: RequestId,
        result: &Result<Vec<SocketAddr>, String>,
    ) -> bool {
        let Some(dht) = self.dht.as_mut() else {
            return false;
        };
        if dht.resolving.remove(&req).is_none() {
            return false;
        }
        if let Ok(addrs) = result {
            dht.routers.extend(addrs.iter().copied());
            let routers = dht.routers.clone();
            if let Some(node) = dht.node.as_mut() {
                node.bootstrap(now, &routers);
            }
            self.dht_flush(now);
        }
        true
    }

    /// Feeds a datagram to the node if it is KRPC; false if it is not the DHT's.
    pub(super) fn dht_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        let Some(node) = self.dht.as_mut().and_then(|d| d.node.as_mut()) else {
            return false;
        };
        if !is_krpc(data) {
            return false;
        }
        node.handle_datagram(now, from, data);
        self.dht_flush(now);
        true
    }

    /// Runs the node's timers and the torrents' announces that are due.
    pub(super) fn dht_timeout(&mut self, now: Instant) {
        self.dht_start(now);
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let Some(node) = dht.node.as_mut() else {
            return;
        };
        if node.poll_timeout().is_some_and(|t| t <= now) {
            node.handle_timeout(now);
        }
        let known = node.routing_table(false).len() + node.routing_table(true).len();
        for t in dht
            .torrents
            .values_mut()
            .filter(|t| t.reached_nobody && known > 0)
        {
            t.reached_nobody = false;
            t.next = t.next.min(now);
        }
        let due: Vec<(TorrentId, InfoHashV1)> = dht
            .torrents
            .iter()
            .filter(|(_, t)| t.lookup.is_none() && t.next <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            self.dht_announce(now, key);
        }
        self.dht_items_timeout(now);
        self.dht_flush(now);
    }

    /// A torrent or a magnet link was added: announce it under each of its info-hashes
    /// (unless it is private).
    pub(super) fn dht_torrent_added(&mut self, now: Instant, torrent: TorrentId) {
        if self.dht.is_none() {
            return;
        }
        if let Some(t) = self.torrents.get(torrent.0) {
            if t.info.is_private() {
                return; // BEP 27: private torrents use only their own trackers.
            }
        }
        let Some(hashes) = self.torrent_hashes(torrent) else {
            return;
        };
        self.dht_start(now);
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let mut added = Vec::new();
        for info_hash in dht_ids(&hashes) {
            dht.torrents.entry((torrent, info_hash)).or_insert_with(|| {
                added.push((torrent, info_hash));
                DhtTorrent {
                    next: now,
                    lookup: None,
                    reached_nobody: false,
                }
            });
        }
        for key in added {
            self.dht_announce(now, key);
        }
        self.dht_flush(now);
    }

    /// A magnet link's metadata arrived: a private torrent leaves the DHT (BEP 27), a hybrid
    /// one is announced under the info-hash the link did not name too.
    pub(super) fn dht_metadata_installed(&mut self, now: Instant, torrent: TorrentId) {
        if self
            .torrents
            .get(torrent.0)
            .is_some_and(|t| t.info.is_private())
        {
            self.dht_torrent_removed(torrent);
        } else {
            self.dht_torrent_added(now, torrent);
        }
    }

    /// A torrent was removed: forget it (its lookups run out on their own).
    pub(super) fn dht_torrent_removed(&mut self, torrent: TorrentId) {
        if let Some(dht) = self.dht.as_mut() {
            dht.torrents.retain(|(t, _), _| *t != torrent);
            dht.lookups.retain(|_, (t, _)| *t != torrent);
        }
    }

    /// The info-hashes under which `torrent` is on the DHT (two for a hybrid torrent, none
    /// for a private one or without the DHT).
    pub fn dht_info_hashes(&self, torrent: TorrentId) -> Vec<InfoHashV1> {
        self.dht.as_ref().map_or_else(Vec::new, |d| {
            d.torrents
                .range((torrent, InfoHashV1([0; 20]))..=(torrent, InfoHashV1([0xff; 20])))
                .map(|((_, h), _)| *h)
                .collect()
        })
    }

    fn dht_announce(&mut self, now: Instant, key: (TorrentId, InfoHashV1)) {
        let port = self.config.listen_port;
        let seed = self.torrents.get(key.0 .0).is_some_and(|t| t.finished);
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let (Some(node), Some(t)) = (dht.node.as_mut(), dht.torrents.get_mut(&key)) else {
            return;
        };
        if t.lookup.is_some() {
            return;
        }
        let info_hash = key.1;
        let lookup = match port {
            Some(port) if port != 0 => node.announce(
                now,
                info_hash,
                Announce {
                    port,
                    implied_port: false,
                    seed,
                },
            ),
            _ => node.get_peers(now, info_hash),
        };
        t.lookup = Some(lookup);
        t.next = now + dht.settings.announce_interval;
        dht.lookups.insert(lookup, key);
    }

    /// Sends the node's datagrams and acts on its events.
    pub(super) fn dht_flush(&mut self, now: Instant) {
        let Some(node) = self.dht.as_mut().and_then(|d| d.node.as_mut()) else {
            return;
        };
        let mut events = Vec::new();
        while let Some((to, data)) = node.poll_transmit() {
            self.outputs.push_back(Output::SendDatagram {
                to,
                data: Bytes::from(data),
            });
        }
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        for e in events {
            self.dht_event(now, e);
        }
    }

    fn dht_event(&mut self, now: Instant, event: DhtEvent) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        match event {
            DhtEvent::Peers { lookup, peers, .. } => {
                if let Some(&(torrent, _)) = dht.lookups.get(&lookup) {
                    self.dial_peers(now, torrent, &peers);
                }
            }
            DhtEvent::LookupDone {
                lookup,
                info_hash,
                stats,
            } => {
                let Some(key) = dht.lookups.remove(&lookup) else {
                    return;
                };
                // A magnet link is unfinished too: it is still looking for its metadata.
                let finished = self.torrents.get(key.0 .0).is_some_and(|t| t.finished);
                if let Some(t) = dht.torrents.get_mut(&key) {
                    t.lookup = None;
                    t.reached_nobody = stats.responses == 0;
                    if stats.responses == 0 {
                        t.next = now + RETRY_EMPTY;
                    } else if stats.peers == 0 && !finished {
                        // Still looking for a first peer: ask again soon, not in 15 minutes.
                        t.next = t.next.min(now + RETRY_NO_PEERS);
                    }
                }
                self.outputs.push_back(Output::Event(Event::DhtLookupDone {
                    torrent: key.0,
                    info_hash,
                    peers: stats.peers,
                    responses: stats.responses,
                }));
            }
            DhtEvent::Bootstrapped { nodes } => {
                if nodes > 0 {
                    // Lookups made before the table had anyone found nothing: go again.
                    for t in dht.torrents.values_mut() {
                        t.next = now;
                    }
                }
                self.outputs
                    .push_back(Output::Event(Event::DhtBootstrapped { nodes }));
            }
            other => self.dht_item_event(now, other),
        }
    }

    /// BEP 5: a peer told us its DHT port; the node pings it.
    pub(super) fn dht_port_message(&mut self, now: Instant, conn: ConnId, port: u16) {
        let Some(addr) = self.conns.get(conn.0).map(|c| c.peer.addr()) else {
            return;
        };
        let Some(node) = self.dht.as_mut().and_then(|d| d.node.as_mut()) else {
            return;
        };
        node.add_node(now, SocketAddr::new(addr.ip(), port));
        self.dht_flush(now);
    }

    /// A connection was established: send our DHT port if both sides set the DHT bit.
    pub(super) fn dht_established(&mut self, conn: ConnId) {
        let (Some(port), true) = (self.config.listen_port, self.dht.is_some()) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.peer.send_dht_port(port);
        }
    }
}
