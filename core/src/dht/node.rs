//! The DHT node machine: commands and datagrams in, datagrams and events out.
//!
//! Drain order after every `handle_*` call and every command: [`DhtNode::poll_transmit`]
//! until `None`, [`DhtNode::poll_event`] until `None`, then read [`DhtNode::poll_timeout`]
//! and call [`DhtNode::handle_timeout`] when it passes (spurious calls are harmless).
//!
//! The query side (answering other nodes) is in `server.rs`; this file holds the machine's
//! state, the commands, our own requests and lookups, and maintenance.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use super::bloom::ScrapeBloom;
use super::item::{Item, ItemLimits, ItemStore};
use super::items::ItemLookup;
use super::krpc::{Body, ErrorReply, Message, NodeInfo, Query, QueryKind, Response, TxId, Want};
use super::lookup::{Traversal, TraversalStats};
use super::node_id::{is_valid_for_ip, secure_node_id, NodeId};
use super::ratelimit::QueryLimiter;
use super::routing::{RoutingTable, K};
use super::state::DhtState;
use super::storage::{PeerStore, StoreLimits};
use super::tokens::{TidGen, Tokens};
use crate::id::InfoHashV1;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// How often an empty routing table sends us back to the bootstrap routers.
const REBOOTSTRAP_EVERY: Duration = Duration::from_secs(60);

/// How a [`DhtNode`] behaves; [`Default`] suits a normal client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtConfig {
    /// The node id to use (a restored one, say). `None`: derive one from `external_ip` (BEP
    /// 42) if given, else a random one.
    pub node_id: Option<NodeId>,
    /// Our external address, if known, for a BEP 42 id.
    pub external_ip: Option<IpAddr>,
    /// BEP 42 enforcement: nodes whose id does not match their address are kept out of the
    /// routing table, and their answers neither end lookups nor receive announces. Requests
    /// from them are always served. Off by default (as libtorrent), since many nodes on the
    /// network still do not comply.
    pub enforce_node_id: bool,
    /// BEP 43 read-only: answer no queries and mark ours with `ro`.
    pub read_only: bool,
    /// Take part in the IPv4 DHT.
    pub ipv4: bool,
    /// Take part in the IPv6 DHT (BEP 32).
    pub ipv6: bool,
    /// Requests in flight per lookup (Kademlia's alpha).
    pub alpha: usize,
    /// Requests one lookup may send in all.
    pub max_lookup_queries: u32,
    /// When a request counts as failed.
    pub request_timeout: Duration,
    /// When a lookup request is "slow" and another may go out in its place.
    pub slow_after: Duration,
    /// Bounds of the peer store.
    pub store: StoreLimits,
    /// Bounds of the BEP 44 item store.
    pub items: ItemLimits,
    /// Queries a second served per source IP, after a burst of `query_burst`.
    pub queries_per_ip: u32,
    /// Burst of queries allowed per source IP.
    pub query_burst: u32,
    /// Source IPs tracked by the rate limiter.
    pub max_tracked_ips: usize,
    /// Replies to an address that has not answered us are at most this many times the
    /// request's size (no amplification).
    pub amplification_factor: usize,
    /// The largest reply sent at all (BEP 32: 1,024 bytes of payload).
    pub max_reply: usize,
    /// Our requests pending at once.
    pub max_pending: usize,
    /// Lookups running at once; more finish at once with nothing found.
    pub max_lookups: usize,
    /// Datagrams queued for sending; replies beyond it are dropped.
    pub max_transmit_queue: usize,
    /// How often maintenance (token rotation, expiry, refresh, pings) runs.
    pub maintenance_interval: Duration,
    /// `v`: our client version, sent in every message if set.
    pub version: Option<[u8; 4]>,
    /// BEP 51 `interval` in `sample_infohashes` replies, in seconds.
    pub sample_interval: u32,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            external_ip: None,
            enforce_node_id: false,
            read_only: false,
            ipv4: true,
            ipv6: false,
            alpha: 3,
            max_lookup_queries: 128,
            request_timeout: Duration::from_secs(5),
            slow_after: Duration::from_secs(1),
            store: StoreLimits::default(),
            items: ItemLimits::default(),
            queries_per_ip: 20,
            query_burst: 40,
            max_tracked_ips: 4_096,
            amplification_factor: 4,
            max_reply: 1_024,
            max_pending: 512,
            max_lookups: 256,
            max_transmit_queue: 4_096,
            maintenance_interval: Duration::from_secs(5),
            version: None,
            sample_interval: 6 * 60 * 60,
        }
    }
}

/// Identifies one lookup (get_peers, announce, scrape); never reused by a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupId(pub u64);

/// What to announce (BEP 5 `announce_peer`, BEP 33 `seed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce {
    /// Our peer port.
    pub port: u16,
    /// `implied_port`: ask the storing nodes to use our DHT socket's source port instead
    /// (for peers behind NAT that also take uTP connections on that port).
    pub implied_port: bool,
    /// BEP 33: we are a seed.
    pub seed: bool,
}

/// How a lookup went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Requests sent.
    pub queries: u32,
    /// Answers received.
    pub responses: u32,
    /// Requests that timed out or got an error.
    pub timeouts: u32,
    /// Hops to the closest node that answered.
    pub hops: u32,
    /// Distinct peers found.
    pub peers: usize,
    /// From the command to the end of the search.
    pub duration: Duration,
}

/// What the node tells its owner.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DhtEvent {
    /// Peers for a lookup (each peer reported once per lookup).
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// Its info-hash.
        info_hash: InfoHashV1,
        /// New peers.
        peers: Vec<SocketAddr>,
    },
    /// BEP 33: the swarm-size estimate of a scrape, just before its `LookupDone`.
    Scrape {
        /// The lookup.
        lookup: LookupId,
        /// Its info-hash.
        info_hash: InfoHashV1,
        /// Estimated seeds.
        seeds: u32,
        /// Estimated other peers.
        peers: u32,
    },
    /// A get_peers, scrape or announce lookup finished searching.
    LookupDone {
        /// The lookup.
        lookup: LookupId,
        /// Its info-hash.
        info_hash: InfoHashV1,
        /// How it went.
        stats: LookupStats,
    },
    /// An announce's `announce_peer` requests were all answered or timed out.
    AnnounceDone {
        /// The lookup.
        lookup: LookupId,
        /// Its info-hash.
        info_hash: InfoHashV1,
        /// Nodes that acknowledged the announce.
        acked: usize,
    },
    /// A BEP 44 `get` (or the search of a `put`) finished: the item found, if any (for a
    /// mutable item, the verified one with the highest `seq`).
    ItemDone {
        /// The lookup.
        lookup: LookupId,
        /// The target.
        target: NodeId,
        /// The item.
        item: Option<Item>,
        /// How it went.
        stats: LookupStats,
    },
    /// A BEP 44 `put`'s requests were all answered or timed out.
    PutDone {
        /// The lookup.
        lookup: LookupId,
        /// The target.
        target: NodeId,
        /// Nodes that stored the item.
        acked: usize,
    },
    /// BEP 46: a [`DhtNode::resolve_torrent`] finished, just after its `ItemDone`.
    TorrentResolved {
        /// The lookup.
        lookup: LookupId,
        /// The info-hash the newest valid item points at.
        info_hash: Option<InfoHashV1>,
        /// That item's sequence number.
        seq: Option<i64>,
    },
    /// The bootstrap lookup finished.
    Bootstrapped {
        /// Nodes in the routing tables.
        nodes: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A liveness check (questionable node, or a new node that queried us, or `add_node`).
    Ping,
    /// A lookup request on traversal `family` (0 IPv4, 1 IPv6).
    Lookup { id: LookupId, family: usize },
    /// An `announce_peer` of lookup `id`.
    Announce { id: LookupId },
}

#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) addr: SocketAddr,
    pub(super) purpose: Purpose,
    pub(super) deadline: Instant,
    /// Lookup requests pass a "slow" deadline before the final one.
    pub(super) slow_stage: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bootstrap,
    Refresh,
    GetPeers {
        scrape: bool,
    },
    Announce(Announce),
    /// BEP 44 `get`, or with `put` the search before a `put`; details in `Lookup::item`.
    Item {
        put: bool,
    },
}

#[derive(Clone, Debug)]
struct Lookup {
    kind: Kind,
    target: NodeId,
    traversals: [Option<Traversal>; 2],
    started: Instant,
    found: BTreeSet<SocketAddr>,
    seeds: ScrapeBloom,
    peers: ScrapeBloom,
    searching: bool,
    announce_outstanding: usize,
    acked: usize,
    item: Option<Box<ItemLookup>>,
}

/// Counters for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtCounters {
    /// Datagrams fed in.
    pub datagrams_in: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Queries dropped by the per-IP rate limit.
    pub rate_limited: u64,
    /// Replies cut down to the amplification limit.
    pub trimmed_replies: u64,
    /// Responses with no matching transaction (late, or forged).
    pub unexpected_responses: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
}

/// A Mainline DHT node (BEP 5 and extensions), sans IO.
///
/// Drain order after every `handle_*` call and every command: [`DhtNode::poll_transmit`]
/// until `None`, [`DhtNode::poll_event`] until `None`, then read [`DhtNode::poll_timeout`]
/// and call [`DhtNode::handle_timeout`] when it passes (spurious calls are harmless).
#[derive(Debug)]
pub struct DhtNode {
    pub(super) config: DhtConfig,
    pub(super) id: NodeId,
    pub(super) rng: Rng,
    tids: TidGen,
    pub(super) tokens: Tokens,
    pub(super) store: PeerStore,
    pub(super) items: ItemStore,
    pub(super) tables: [RoutingTable; 2],
    pub(super) pending: BTreeMap<TxId, Pending>,
    deadlines: BTreeSet<(Instant, TxId)>,
    pub(super) pinging: BTreeSet<SocketAddr>,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    transmit: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(super) events: VecDeque<DhtEvent>,
    pub(super) limiter: QueryLimiter,
    routers: Vec<SocketAddr>,
    seeds: Vec<NodeInfo>,
    next_maintenance: Instant,
    bootstrapping: Option<LookupId>,
    /// When the maintenance may next re-bootstrap an empty table (backoff for dead routers).
    next_rebootstrap: Instant,
    refreshing: [Option<LookupId>; 2],
    pub(super) counters: DhtCounters,
}

pub(super) fn family(addr: &SocketAddr) -> usize {
    usize::from(addr.is_ipv6())
}

impl DhtNode {
    /// A node with `config`, drawing all its randomness (id, transaction ids, token secrets)
    /// from `rng`, which a runtime must seed from the operating system's entropy.
    pub fn new(config: DhtConfig, mut rng: Rng, now: Instant) -> Self {
        let id = match (config.node_id, config.external_ip) {
            (Some(id), _) => id,
            (None, Some(ip)) => {
                let r = rng.next_u32() as u8;
                secure_node_id(ip, r, &mut rng)
            }
            (None, None) => NodeId::random(&mut rng),
        };
        let tids = TidGen::new(&mut rng);
        let tokens = Tokens::new(now, &mut rng);
        Self {
            limiter: QueryLimiter::new(
                config.queries_per_ip,
                config.query_burst,
                config.max_tracked_ips,
            ),
            store: PeerStore::new(config.store),
            items: ItemStore::new(config.items),
            config,
            id,
            rng,
            tids,
            tokens,
            tables: [RoutingTable::new(id, now), RoutingTable::new(id, now)],
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            pinging: BTreeSet::new(),
            lookups: BTreeMap::new(),
            next_lookup: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            routers: Vec::new(),
            seeds: Vec::new(),
            next_maintenance: now + Duration::from_secs(1),
            bootstrapping: None,
            next_rebootstrap: now,
            refreshing: [None, None],
            counters: DhtCounters::default(),
        }
    }

    /// A node that resumes a saved [`DhtState`]: its id (unless `config.node_id` says
    /// otherwise), and its contacts as the first candidates of the next [`bootstrap`].
    ///
    /// [`bootstrap`]: DhtNode::bootstrap
    pub fn restore(mut config: DhtConfig, rng: Rng, now: Instant, state: &DhtState) -> Self {
        config.node_id.get_or_insert(state.id);
        let mut node = Self::new(config, rng, now);
        node.seeds = state.nodes.clone();
        node
    }

    /// What to save for the next start: the id and the routing tables' contacts.
    pub fn state(&self) -> DhtState {
        DhtState {
            id: self.id,
            nodes: self
                .tables
                .iter()
                .flat_map(|t| t.iter().map(|e| e.info))
                .collect(),
        }
    }

    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The routing table of IPv4 (`ipv6 == false`) or IPv6.
    pub fn routing_table(&self, ipv6: bool) -> &RoutingTable {
        &self.tables[usize::from(ipv6)]
    }

    /// The peer store.
    pub fn store(&self) -> &PeerStore {
        &self.store
    }

    /// The BEP 44 item store.
    pub fn items(&self) -> &ItemStore {
        &self.items
    }

    /// The counters.
    pub fn counters(&self) -> DhtCounters {
        self.counters
    }

    /// The number of our requests awaiting an answer.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    fn family_enabled(&self, f: usize) -> bool {
        if f == 0 {
            self.config.ipv4
        } else {
            self.config.ipv6
        }
    }

    // ----- commands -----

    /// Joins the DHT through `routers` (configured bootstrap nodes; kept to re-bootstrap
    /// whenever the routing table empties) and any restored contacts: a lookup of our own id.
    pub fn bootstrap(&mut self, now: Instant, routers: &[SocketAddr]) {
        self.routers = routers.iter().copied().filter(|a| a.port() != 0).collect();
        self.routers.truncate(64);
        self.next_rebootstrap = now + REBOOTSTRAP_EVERY;
        self.start_bootstrap(now);
    }

    fn start_bootstrap(&mut self, now: Instant) {
        if self
            .bootstrapping
            .is_some_and(|id| self.lookups.contains_key(&id))
        {
            return;
        }
        let seeds = std::mem::take(&mut self.seeds);
        let routers = self.routers.clone();
        let id = self.start_lookup(now, Kind::Bootstrap, self.id, |f, t| {
            t.add(
                &seeds
                    .iter()
                    .filter(|n| family(&n.addr) == f)
                    .copied()
                    .collect::<Vec<_>>(),
                0,
            );
            for r in routers.iter().filter(|a| family(a) == f) {
                t.add_address(*r);
            }
        });
        self.bootstrapping = id;
    }

    /// Pings `addr` (a peer's DHT port from a BEP 5 `port` message, say): if it answers, it
    /// joins the routing table.
    pub fn add_node(&mut self, now: Instant, addr: SocketAddr) {
        let f = family(&addr);
        if !self.family_enabled(f) || addr.port() == 0 || self.tables[f].get(&addr).is_some() {
            return;
        }
        self.ping(now, addr);
    }

    pub(super) fn ping(&mut self, now: Instant, addr: SocketAddr) {
        if self.pinging.contains(&addr) {
            return;
        }
        if self.send_query(now, addr, QueryKind::Ping, Purpose::Ping) {
            self.pinging.insert(addr);
        }
    }

    /// Looks for peers of `info_hash` (BEP 5 `get_peers`); peers come as
    /// [`DhtEvent::Peers`], the end as [`DhtEvent::LookupDone`].
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHashV1) -> LookupId {
        self.user_lookup(now, Kind::GetPeers { scrape: false }, info_hash)
    }

    /// Like [`DhtNode::get_peers`], also asking for BEP 33 bloom filters: a
    /// [`DhtEvent::Scrape`] estimate comes before the `LookupDone`.
    pub fn scrape(&mut self, now: Instant, info_hash: InfoHashV1) -> LookupId {
        self.user_lookup(now, Kind::GetPeers { scrape: true }, info_hash)
    }

    /// Announces that we are a peer of `info_hash`: a `get_peers` lookup (its peers are
    /// reported too), then `announce_peer` to the closest nodes that gave a token
    /// ([`DhtEvent::AnnounceDone`]). Repeat every 15 to 30 minutes: stored peers expire.
    pub fn announce(&mut self, now: Instant, info_hash: InfoHashV1, how: Announce) -> LookupId {
        self.user_lookup(now, Kind::Announce(how), info_hash)
    }

    fn user_lookup(&mut self, now: Instant, kind: Kind, info_hash: InfoHashV1) -> LookupId {
        let target = NodeId(info_hash.0);
        match self.start_lookup(now, kind, target, |_, _| {}) {
            Some(id) => id,
            None => {
                let lookup = self.next_lookup_id();
                self.events.push_back(DhtEvent::LookupDone {
                    lookup,
                    info_hash,
                    stats: LookupStats::default(),
                });
                if let Kind::Announce(_) = kind {
                    self.events.push_back(DhtEvent::AnnounceDone {
                        lookup,
                        info_hash,
                        acked: 0,
                    });
                }
                lookup
            }
        }
    }

    /// Reports the peers our own store holds for a lookup's info-hash first: we are a node
    /// of the DHT too, and may be the only one that was told (a network of two).
    fn local_peers(&mut self, id: LookupId, target: NodeId) {
        let mut peers = self
            .store
            .peers(&target.0, false, false, 100, &mut self.rng);
        peers.extend(self.store.peers(&target.0, true, false, 100, &mut self.rng));
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        peers.retain(|p| lookup.found.insert(*p));
        if !peers.is_empty() {
            self.events.push_back(DhtEvent::Peers {
                lookup: id,
                info_hash: InfoHashV1(target.0),
                peers,
            });
        }
    }

    /// A fresh lookup id.
    pub(super) fn next_lookup_id(&mut self) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        id
    }

    /// Starts a lookup seeded from the routing tables (and `seed`); `None` if too many run.
    fn start_lookup(
        &mut self,
        now: Instant,
        kind: Kind,
        target: NodeId,
        seed: impl FnMut(usize, &mut Traversal),
    ) -> Option<LookupId> {
        self.start_lookup_with(now, kind, target, None, seed)
    }

    fn start_lookup_with(
        &mut self,
        now: Instant,
        kind: Kind,
        target: NodeId,
        item: Option<Box<ItemLookup>>,
        mut seed: impl FnMut(usize, &mut Traversal),
    ) -> Option<LookupId> {
        if self.lookups.len() >= self.config.max_lookups {
            return None;
        }
        let id = self.next_lookup_id();
        let mut traversals = [None, None];
        for (f, slot) in traversals.iter_mut().enumerate() {
            if !self.family_enabled(f) {
                continue;
            }
            let mut t = Traversal::new(target, self.config.alpha, self.config.max_lookup_queries);
            t.add(&self.tables[f].closest(now, &target, K * 2), 0);
            seed(f, &mut t);
            self.tables[f].touch(now, &target);
            *slot = Some(t);
        }
        self.lookups.insert(
            id,
            Lookup {
                kind,
                target,
                traversals,
                started: now,
                found: BTreeSet::new(),
                seeds: ScrapeBloom::new(),
                peers: ScrapeBloom::new(),
                searching: true,
                announce_outstanding: 0,
                acked: 0,
                item,
            },
        );
        if let Kind::GetPeers { .. } | Kind::Announce(_) = kind {
            self.local_peers(id, target);
        }
        self.pump(now, id);
        Some(id)
    }

    /// Like `start_lookup`, with the BEP 44 details set before the first request goes out.
    pub(super) fn start_item_lookup(
        &mut self,
        now: Instant,
        target: NodeId,
        item: ItemLookup,
    ) -> Option<LookupId> {
        let put = item.put.is_some();
        self.start_lookup_with(
            now,
            Kind::Item { put },
            target,
            Some(Box::new(item)),
            |_, _| {},
        )
    }

    // ----- polls -----

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// When [`DhtNode::handle_timeout`] wants to be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.deadlines.first().map(|(t, _)| *t);
        Some(first.map_or(self.next_maintenance, |t| t.min(self.next_maintenance)))
    }

    // ----- sending -----

    pub(super) fn queue(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        if self.transmit.len() < self.config.max_transmit_queue {
            self.counters.datagrams_out += 1;
            self.transmit.push_back((to, bytes));
        }
    }

    fn version(&self) -> Option<arrayvec::ArrayVec<u8, 4>> {
        self.config.version.map(arrayvec::ArrayVec::from)
    }

    pub(super) fn message(&self, tid: TxId, body: Body) -> Message {
        Message {
            tid,
            body,
            ip: None,
            read_only: self.config.read_only,
            version: self.version(),
        }
    }

    /// Sends a query; false if too many requests are pending.
    fn send_query(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        kind: QueryKind,
        purpose: Purpose,
    ) -> bool {
        if self.pending.len() >= self.config.max_pending {
            return false;
        }
        let mut tid = self.tids.next_tid();
        while self.pending.contains_key(&tid) {
            tid = self.tids.next_tid();
        }
        let query = Query { id: self.id, kind };
        let bytes = self.message(tid.clone(), Body::Query(query)).to_vec();
        let slow_stage = matches!(purpose, Purpose::Lookup { .. });
        let deadline = now
            + if slow_stage {
                self.config.slow_after
            } else {
                self.config.request_timeout
            };
        self.deadlines.insert((deadline, tid.clone()));
        self.pending.insert(
            tid,
            Pending {
                addr,
                purpose,
                deadline,
                slow_stage,
            },
        );
        self.queue(addr, bytes);
        true
    }

    // ----- answers to our requests -----

    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: &TxId,
        r: Response,
        read_only: bool,
    ) {
        let Some(p) = self.take_pending(tid, &from) else {
            self.counters.unexpected_responses += 1;
            return;
        };
        let mut r = r;
        // Never query ourselves.
        r.nodes.retain(|n| n.id != self.id);
        r.nodes6.retain(|n| n.id != self.id);
        let f = family(&from);
        let valid = !self.config.enforce_node_id || is_valid_for_ip(&r.id, from.ip());
        if valid && !read_only {
            self.tables[f].heard_from(
                now,
                NodeInfo {
                    id: r.id,
                    addr: from,
                },
            );
        }
        match p.purpose {
            Purpose::Ping => {}
            Purpose::Lookup { id, family: tf } => {
                let Some(lookup) = self.lookups.get_mut(&id) else {
                    return;
                };
                let Some(t) = lookup.traversals[tf].as_mut() else {
                    return;
                };
                let Some(depth) = t.on_response(&from, r.id, r.token.clone(), valid) else {
                    return;
                };
                if let Some(t4) = lookup.traversals[0].as_mut() {
                    t4.add(&r.nodes, depth);
                }
                if let Some(t6) = lookup.traversals[1].as_mut() {
                    t6.add(&r.nodes6, depth);
                }
                if let Some(item) = lookup.item.as_mut().filter(|_| valid) {
                    item.on_response(&lookup.target, &r);
                }
                if let Kind::GetPeers { .. } | Kind::Announce(_) = lookup.kind {
                    if lookup.searching {
                        let mut new = Vec::new();
                        for v in r.values {
                            if lookup.found.len() >= 1_000 {
                                break;
                            }
                            if lookup.found.insert(v) {
                                new.push(v);
                            }
                        }
                        if let Some(b) = &r.seeds_bloom {
                            lookup.seeds.union(b);
                        }
                        if let Some(b) = &r.peers_bloom {
                            lookup.peers.union(b);
                        }
                        if !new.is_empty() {
                            self.events.push_back(DhtEvent::Peers {
                                lookup: id,
                                info_hash: InfoHashV1(lookup.target.0),
                                peers: new,
                            });
                        }
                    }
                }
                self.pump(now, id);
            }
            Purpose::Announce { id } => {
                if let Some(lookup) = self.lookups.get_mut(&id) {
                    lookup.acked += 1;
                    lookup.announce_outstanding -= 1;
                    self.pump(now, id);
                }
            }
        }
    }

    pub(super) fn handle_error_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: &TxId,
        _e: ErrorReply,
    ) {
        // The node is alive, but its answer is no use to the request.
        if let Some(p) = self.take_pending(tid, &from) {
            self.request_failed(now, p, false);
        }
    }

    fn take_pending(&mut self, tid: &TxId, from: &SocketAddr) -> Option<Pending> {
        match self.pending.get(tid) {
            Some(p) if p.addr == *from => {}
            _ => return None,
        }
        let p = self.pending.remove(tid).expect("checked above");
        self.deadlines.remove(&(p.deadline, tid.clone()));
        if p.purpose == Purpose::Ping {
            self.pinging.remove(&p.addr);
        }
        Some(p)
    }

    fn request_failed(&mut self, now: Instant, p: Pending, timed_out: bool) {
        if timed_out {
            self.tables[family(&p.addr)].failed(&p.addr);
        }
        match p.purpose {
            Purpose::Ping => {}
            Purpose::Lookup { id, family: tf } => {
                if let Some(t) = self
                    .lookups
                    .get_mut(&id)
                    .and_then(|l| l.traversals[tf].as_mut())
                {
                    t.on_failure(&p.addr);
                    self.pump(now, id);
                }
            }
            Purpose::Announce { id } => {
                if let Some(l) = self.lookups.get_mut(&id) {
                    l.announce_outstanding -= 1;
                    self.pump(now, id);
                }
            }
        }
    }

    // ----- lookups -----

    /// Sends what lookup `id` may send, and finishes it when it is done.
    fn pump(&mut self, now: Instant, id: LookupId) {
        let Some(mut lookup) = self.lookups.remove(&id) else {
            return;
        };
        if lookup.searching {
            for f in 0..2 {
                let Some(t) = lookup.traversals[f].as_mut() else {
                    continue;
                };
                while self.pending.len() < self.config.max_pending {
                    let Some(addr) = t.next_query() else {
                        break;
                    };
                    let want = Want {
                        n4: lookup.kind == Kind::Bootstrap && self.config.ipv4 && self.config.ipv6,
                        n6: lookup.kind == Kind::Bootstrap && self.config.ipv4 && self.config.ipv6,
                    };
                    let kind = match lookup.kind {
                        Kind::Bootstrap | Kind::Refresh => QueryKind::FindNode {
                            target: lookup.target,
                            want,
                        },
                        Kind::GetPeers { scrape } => QueryKind::GetPeers {
                            info_hash: lookup.target.0,
                            want,
                            noseed: false,
                            scrape,
                        },
                        Kind::Announce(a) => QueryKind::GetPeers {
                            info_hash: lookup.target.0,
                            want,
                            noseed: a.seed,
                            scrape: false,
                        },
                        Kind::Item { .. } => QueryKind::Get {
                            target: lookup.target,
                            seq: lookup.item.as_ref().and_then(|i| i.min_seq),
                            want,
                        },
                    };
                    self.send_query(now, addr, kind, Purpose::Lookup { id, family: f });
                }
            }
            let done = lookup.traversals.iter().flatten().all(|t| t.is_done());
            if !done {
                self.lookups.insert(id, lookup);
                return;
            }
            lookup.searching = false;
            self.search_finished(now, id, &mut lookup);
        }
        if lookup.announce_outstanding > 0 {
            self.lookups.insert(id, lookup);
            return;
        }
        if let Kind::Announce(_) = lookup.kind {
            self.events.push_back(DhtEvent::AnnounceDone {
                lookup: id,
                info_hash: InfoHashV1(lookup.target.0),
                acked: lookup.acked,
            });
        }
        if let Kind::Item { put: true } = lookup.kind {
            self.events.push_back(DhtEvent::PutDone {
                lookup: id,
                target: lookup.target,
                acked: lookup.acked,
            });
        }
        // Dropped: answers to its slow requests still update the routing table.
    }

    fn search_finished(&mut self, now: Instant, id: LookupId, lookup: &mut Lookup) {
        let mut stats = LookupStats {
            peers: lookup.found.len(),
            duration: now.saturating_duration_since(lookup.started),
            ..LookupStats::default()
        };
        for t in lookup.traversals.iter_mut().flatten() {
            t.finish();
            let s: TraversalStats = t.stats();
            stats.queries += s.queries;
            stats.responses += s.responses;
            stats.timeouts += s.timeouts;
            stats.hops = stats.hops.max(s.hops);
        }
        let info_hash = InfoHashV1(lookup.target.0);
        match lookup.kind {
            Kind::Bootstrap => {
                self.bootstrapping = None;
                self.events.push_back(DhtEvent::Bootstrapped {
                    nodes: self.tables.iter().map(RoutingTable::len).sum(),
                });
            }
            Kind::Refresh => {
                for r in &mut self.refreshing {
                    if *r == Some(id) {
                        *r = None;
                    }
                }
            }
            Kind::GetPeers { scrape } => {
                if scrape {
                    self.events.push_back(DhtEvent::Scrape {
                        lookup: id,
                        info_hash,
                        seeds: lookup.seeds.count(),
                        peers: lookup.peers.count(),
                    });
                }
                self.events.push_back(DhtEvent::LookupDone {
                    lookup: id,
                    info_hash,
                    stats,
                });
            }
            Kind::Item { .. } => {
                let targets: Vec<(NodeInfo, super::krpc::Token)> = lookup
                    .traversals
                    .iter()
                    .flatten()
                    .flat_map(|t| t.closest_answered())
                    .filter_map(|(n, tok)| tok.map(|t| (n, t)))
                    .collect();
                let item = lookup.item.take();
                if let Some(item) = item {
                    for kind in self.item_finished(id, lookup.target, &item, stats, targets) {
                        if self.send_query(now, kind.0, kind.1, Purpose::Announce { id }) {
                            lookup.announce_outstanding += 1;
                        }
                    }
                }
            }
            Kind::Announce(a) => {
                self.events.push_back(DhtEvent::LookupDone {
                    lookup: id,
                    info_hash,
                    stats,
                });
                let targets: Vec<(NodeInfo, super::krpc::Token)> = lookup
                    .traversals
                    .iter()
                    .flatten()
                    .flat_map(|t| t.closest_answered())
                    .filter_map(|(n, tok)| tok.map(|t| (n, t)))
                    .collect();
                for (n, token) in targets {
                    let kind = QueryKind::AnnouncePeer {
                        info_hash: lookup.target.0,
                        port: a.port,
                        implied_port: a.implied_port,
                        token,
                        seed: a.seed,
                    };
                    if self.send_query(now, n.addr, kind, Purpose::Announce { id }) {
                        lookup.announce_outstanding += 1;
                    }
                }
            }
        }
    }

    // ----- time -----

    /// Handles expired requests and periodic maintenance due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((deadline, tid)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(p) = self.pending.get_mut(&tid) else {
                continue;
            };
            if p.slow_stage {
                // Slow, not failed yet: let the lookup send another request meanwhile.
                p.slow_stage = false;
                let rest = self
                    .config
                    .request_timeout
                    .saturating_sub(self.config.slow_after);
                p.deadline = now + rest;
                let (addr, purpose) = (p.addr, p.purpose);
                self.deadlines.insert((p.deadline, tid));
                if let Purpose::Lookup { id, family: f } = purpose {
                    if let Some(t) = self
                        .lookups
                        .get_mut(&id)
                        .and_then(|l| l.traversals[f].as_mut())
                    {
                        t.on_slow(&addr);
                        self.pump(now, id);
                    }
                }
                continue;
            }
            let p = self.pending.remove(&tid).expect("looked up above");
            if p.purpose == Purpose::Ping {
                self.pinging.remove(&p.addr);
            }
            self.request_failed(now, p, true);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + self.config.maintenance_interval;
            self.maintain(now);
        }
    }

    fn maintain(&mut self, now: Instant) {
        self.tokens.maintain(now, &mut self.rng);
        self.store.expire(now);
        self.items.expire(now);
        self.limiter.maintain(now);
        if self.tables.iter().all(RoutingTable::is_empty)
            && (!self.routers.is_empty() || !self.seeds.is_empty())
            && now >= self.next_rebootstrap
        {
            self.next_rebootstrap = now + REBOOTSTRAP_EVERY;
            self.start_bootstrap(now);
        }
        for f in 0..2 {
            if !self.family_enabled(f) || self.tables[f].is_empty() {
                continue;
            }
            // BEP 5: ping the node heard from least recently once it is questionable.
            if let Some(n) = self.tables[f].most_questionable(now) {
                self.ping(now, n.addr);
            }
            let busy = self.refreshing[f].is_some_and(|id| self.lookups.contains_key(&id));
            if !busy {
                if let Some(target) = self.tables[f].refresh_target(now, &mut self.rng) {
                    self.refreshing[f] = self.start_lookup(now, Kind::Refresh, target, |_, _| {});
                }
            }
        }
        // Lookups stalled on `max_pending` get another chance.
        let ids: Vec<LookupId> = self.lookups.keys().copied().collect();
        for id in ids {
            self.pump(now, id);
        }
    }
}
