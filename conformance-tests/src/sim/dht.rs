//! A simulated DHT network: thousands of [`DhtNode`] machines in one process on a virtual
//! clock, joined by datagram links with latency, jitter and loss, with churn and malicious
//! nodes.
//!
//! Separate from the session simulator ([`Sim`](super::Sim)): DHT nodes only exchange
//! datagrams. [`DhtSim`] owns a virtual clock, a seeded [`Rng`], an event heap ordered by
//! (time, sequence number) and the nodes. A step pops the earliest event (a datagram arriving,
//! or a node's timer), feeds the node, drains its datagrams (scheduling their arrival after
//! the link latency, unless lost) and its events, and re-arms its timer from
//! [`DhtNode::poll_timeout`]. The same seed gives the same run ([`DhtSim::trace_hash`]).
//!
//! Addresses are in 127.0.0.0/8 (127.a.b.c:6881): nothing here opens a socket, and BEP 42
//! exempts loopback addresses from node-id checks.
//!
//! Malicious nodes ([`Behaviour`]) first run as honest nodes, so that they are in routing
//! tables (sleepers), and turn when [`DhtSim::set_behaviour`] is called: a black hole drops
//! everything; a garbage node answers every datagram with random bytes or with a response
//! full of made-up contacts; a wrong-id node answers with a new random id each time and
//! advertises made-up nodes very close to the target (a Sybil-style attack on lookups).
//!
//! [`run_scenario`] is the standard experiment: build a network, announce, apply churn and
//! malice, look up, and report success, hops, messages and latency.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

use bitshoal_core::dht::krpc::{Body, Message, NodeInfo, QueryKind, Response, Token};
use bitshoal_core::dht::{Announce, DhtConfig, DhtEvent, DhtNode, LookupId, NodeId};
use bitshoal_core::id::InfoHashV1;
use bitshoal_core::rng::Rng;
use bitshoal_core::time::{Duration, Instant};

use super::Scheduled;

/// How a simulated node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs the real machine.
    Honest,
    /// Drops everything it receives.
    BlackHole,
    /// Answers everything with random bytes or made-up contacts.
    Garbage,
    /// Answers queries with a random id each time and fake nodes close to the target.
    WrongId,
    /// Gone (churned out): receives nothing, sends nothing.
    Down,
}

/// Link and node parameters of a [`DhtSim`].
#[derive(Clone, Debug)]
pub struct DhtSimConfig {
    /// One-way link latency.
    pub latency: Duration,
    /// Extra latency, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// The configuration of every honest node.
    pub node: DhtConfig,
}

impl Default for DhtSimConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
            loss: 0.0,
            node: DhtConfig::default(),
        }
    }
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Timer {
        node: usize,
    },
}

#[derive(Debug)]
struct SimNode {
    addr: SocketAddr,
    machine: DhtNode,
    behaviour: Behaviour,
    timer_at: Option<Instant>,
}

/// Counters of a [`DhtSim`] run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Datagrams sent by any node.
    pub sent: u64,
    /// Datagrams lost on links.
    pub lost: u64,
    /// Datagrams sent to an address with no node.
    pub unroutable: u64,
    /// Events processed.
    pub steps: u64,
}

/// A simulated DHT network (see the [module docs](self)).
#[derive(Debug)]
pub struct DhtSim {
    now: Instant,
    rng: Rng,
    seq: u64,
    heap: BinaryHeap<Scheduled<Ev>>,
    nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    config: DhtSimConfig,
    events: Vec<(Instant, usize, DhtEvent)>,
    counters: NetCounters,
    trace: u64,
}

/// The address of node `i`: 127.(1 + i / 65536).(i / 256 % 256).(i % 256):6881.
pub fn node_addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(ip.into(), 6881)
}

impl DhtSim {
    /// An empty network whose whole run is determined by `seed`.
    pub fn new(seed: u64, config: DhtSimConfig) -> Self {
        Self {
            now: Instant::ZERO,
            rng: Rng::from_seed(seed),
            seq: 0,
            heap: BinaryHeap::new(),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            config,
            events: Vec::new(),
            counters: NetCounters::default(),
            trace: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The simulator's generator (for scenario choices).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The number of nodes ever added.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s machine.
    pub fn node(&self, i: usize) -> &DhtNode {
        &self.nodes[i].machine
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    /// Node `i`'s behaviour.
    pub fn behaviour(&self, i: usize) -> Behaviour {
        self.nodes[i].behaviour
    }

    /// The counters.
    pub fn counters(&self) -> NetCounters {
        self.counters
    }

    /// Every event the nodes reported: (time, node, event).
    pub fn events(&self) -> &[(Instant, usize, DhtEvent)] {
        &self.events
    }

    /// A hash of every datagram sent, with its time and endpoints (for determinism checks).
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    /// Adds an honest node (not yet joined: see [`DhtSim::bootstrap`]); returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let addr = node_addr(i);
        let machine = DhtNode::new(self.config.node.clone(), self.rng.fork(), self.now);
        self.nodes.push(SimNode {
            addr,
            machine,
            behaviour: Behaviour::Honest,
            timer_at: None,
        });
        self.by_addr.insert(addr, i);
        self.after_input(i);
        i
    }

    /// Node `i` joins through the nodes `contacts`.
    pub fn bootstrap(&mut self, i: usize, contacts: &[usize]) {
        let routers: Vec<SocketAddr> = contacts.iter().map(|&c| self.nodes[c].addr).collect();
        let now = self.now;
        self.nodes[i].machine.bootstrap(now, &routers);
        self.after_input(i);
    }

    /// Changes node `i`'s behaviour (a node turns malicious, or leaves with [`Behaviour::Down`]).
    pub fn set_behaviour(&mut self, i: usize, b: Behaviour) {
        self.nodes[i].behaviour = b;
    }

    /// Runs a command on honest node `i` at the current time, then drains it.
    pub fn command<T>(&mut self, i: usize, f: impl FnOnce(&mut DhtNode, Instant) -> T) -> T {
        let now = self.now;
        let out = f(&mut self.nodes[i].machine, now);
        self.after_input(i);
        out
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.counters.sent += 1;
        self.trace = fnv(self.trace, &self.now.as_micros().to_le_bytes());
        self.trace = fnv(self.trace, to.to_string().as_bytes());
        self.trace = fnv(self.trace, &data);
        if self.config.loss > 0.0
            && (self.rng.next_u64() as f64 / u64::MAX as f64) < self.config.loss
        {
            self.counters.lost += 1;
            return;
        }
        let Some(&to_idx) = self.by_addr.get(&to) else {
            self.counters.unroutable += 1;
            return;
        };
        let jitter = self.config.jitter.as_micros() as u64;
        let extra = if jitter > 0 {
            self.rng.below(jitter + 1)
        } else {
            0
        };
        let at = self.now + self.config.latency + Duration::from_micros(extra);
        self.schedule(
            at,
            Ev::Deliver {
                to: to_idx,
                from,
                data,
            },
        );
    }

    /// Drains node `i` and re-arms its timer.
    fn after_input(&mut self, i: usize) {
        let from = self.nodes[i].addr;
        while let Some((to, data)) = self.nodes[i].machine.poll_transmit() {
            if self.nodes[i].behaviour == Behaviour::Honest {
                self.send(from, to, data);
            }
        }
        while let Some(e) = self.nodes[i].machine.poll_event() {
            self.events.push((self.now, i, e));
        }
        if let Some(t) = self.nodes[i].machine.poll_timeout() {
            let t = t.max(self.now);
            if self.nodes[i].timer_at.is_none_or(|cur| t < cur) {
                self.nodes[i].timer_at = Some(t);
                self.schedule(t, Ev::Timer { node: i });
            }
        }
    }

    /// Processes one event; false when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(s) = self.heap.pop() else {
            return false;
        };
        self.now = s.at;
        self.counters.steps += 1;
        match s.ev {
            Ev::Timer { node } => {
                if self.nodes[node].timer_at != Some(s.at) {
                    return true; // superseded by an earlier timer
                }
                self.nodes[node].timer_at = None;
                let now = self.now;
                if self.nodes[node].behaviour == Behaviour::Honest {
                    self.nodes[node].machine.handle_timeout(now);
                    self.after_input(node);
                } else if self.nodes[node].behaviour != Behaviour::Down {
                    // Malicious nodes keep no timers; the machine is frozen.
                }
            }
            Ev::Deliver { to, from, data } => self.deliver(to, from, &data),
        }
        true
    }

    fn deliver(&mut self, to: usize, from: SocketAddr, data: &[u8]) {
        let now = self.now;
        let me = self.nodes[to].addr;
        match self.nodes[to].behaviour {
            Behaviour::Honest => {
                self.nodes[to].machine.handle_datagram(now, from, data);
                self.after_input(to);
            }
            Behaviour::Down | Behaviour::BlackHole => {}
            Behaviour::Garbage => {
                let reply = if self.rng.below(2) == 0 {
                    let len = 1 + self.rng.below(200) as usize;
                    let mut junk = vec![0u8; len];
                    self.rng.fill(&mut junk);
                    junk
                } else {
                    match Message::decode(data) {
                        Ok(m) if matches!(m.body, Body::Query(_)) => {
                            let nodes = (0..8)
                                .map(|_| NodeInfo {
                                    id: NodeId::random(&mut self.rng),
                                    addr: node_addr(self.rng.below(1 << 20) as usize),
                                })
                                .collect();
                            let r = Response {
                                id: NodeId::random(&mut self.rng),
                                nodes,
                                ..Response::default()
                            };
                            reply_to(m, r)
                        }
                        _ => return,
                    }
                };
                self.send(me, from, reply);
            }
            Behaviour::WrongId => {
                let Ok(m) = Message::decode(data) else {
                    return;
                };
                let Body::Query(q) = &m.body else {
                    return;
                };
                let target = match &q.kind {
                    QueryKind::FindNode { target, .. }
                    | QueryKind::SampleInfohashes { target, .. } => Some(*target),
                    QueryKind::GetPeers { info_hash, .. } => Some(NodeId(*info_hash)),
                    _ => None,
                };
                let mut r = Response {
                    id: NodeId::random(&mut self.rng),
                    token: Some(Token::try_from(&b"fake"[..]).expect("fits")),
                    ..Response::default()
                };
                if let Some(t) = target {
                    r.nodes = (0..8)
                        .map(|_| {
                            let mut id = t;
                            let tail = 12 + self.rng.below(8) as usize;
                            let mut junk = [0u8; 20];
                            self.rng.fill(&mut junk);
                            id.0[tail..].copy_from_slice(&junk[tail..]);
                            NodeInfo {
                                id,
                                addr: node_addr(self.rng.below(1 << 20) as usize),
                            }
                        })
                        .collect();
                }
                let bytes = reply_to(m, r);
                self.send(me, from, bytes);
            }
        }
    }

    /// Runs until `done` holds or `max` of virtual time passes; returns whether `done` held.
    pub fn run_until(&mut self, mut done: impl FnMut(&DhtSim) -> bool, max: Duration) -> bool {
        let end = self.now + max;
        loop {
            if done(self) {
                return true;
            }
            match self.heap.peek() {
                Some(s) if s.at <= end => {
                    self.step();
                }
                _ => {
                    self.now = end.max(self.now);
                    return done(self);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(|_| false, d);
    }
}

fn reply_to(query: Message, r: Response) -> Vec<u8> {
    Message {
        tid: query.tid,
        body: Body::Response(r),
        ip: None,
        read_only: false,
        version: None,
    }
    .to_vec()
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The standard experiment of [`run_scenario`].
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Nodes in the network.
    pub nodes: usize,
    /// Time between two nodes joining.
    pub join_interval: Duration,
    /// Nodes that announce (one info-hash each).
    pub announcers: usize,
    /// Fraction of nodes that leave after the announces, replaced by as many new nodes.
    pub churn: f64,
    /// Fraction of nodes that turn malicious after the announces (a third each black holes,
    /// garbage, wrong ids).
    pub malicious: f64,
    /// Lookups made at the end, each for a random announced info-hash from a random honest node.
    pub lookups: usize,
    /// The network's links and nodes.
    pub net: DhtSimConfig,
}

impl Scenario {
    /// A scenario of `nodes` nodes with the defaults: 50 ms links, 20 announcers, 200 lookups.
    pub fn new(seed: u64, nodes: usize) -> Self {
        Self {
            seed,
            nodes,
            join_interval: Duration::from_millis(20),
            announcers: 20,
            churn: 0.0,
            malicious: 0.0,
            lookups: 200,
            net: DhtSimConfig::default(),
        }
    }
}

/// What [`run_scenario`] measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioReport {
    /// Lookups made.
    pub lookups: usize,
    /// Lookups that found the announced peer.
    pub found: usize,
    /// Lookups that finished (found or not) within the time limit.
    pub finished: usize,
    /// Mean hops to the closest node that answered.
    pub mean_hops: f64,
    /// Mean requests sent per lookup.
    pub mean_messages: f64,
    /// Mean virtual time from the command to the first peer, over lookups that found it.
    pub mean_time_to_peer: Duration,
    /// Mean virtual time from the command to the end of the search.
    pub mean_duration: Duration,
    /// 95th percentile of the time to the first peer.
    pub p95_time_to_peer: Duration,
    /// Mean routing-table size of honest nodes at the end.
    pub mean_table_size: f64,
    /// Announces acknowledged by at least one node.
    pub announces_acked: usize,
    /// Datagrams sent in the whole run.
    pub datagrams: u64,
    /// The run's trace hash.
    pub trace_hash: u64,
}

impl ScenarioReport {
    /// Found / lookups.
    pub fn success_rate(&self) -> f64 {
        if self.lookups == 0 {
            return 0.0;
        }
        self.found as f64 / self.lookups as f64
    }
}

/// Builds a network, announces, applies churn and malice, looks up (see [`Scenario`]).
pub fn run_scenario(s: &Scenario) -> ScenarioReport {
    let mut sim = DhtSim::new(s.seed, s.net.clone());
    // Joining: each new node bootstraps from up to 3 random earlier nodes.
    for i in 0..s.nodes {
        sim.add_node();
        let contacts: Vec<usize> = (0..i.min(3))
            .map(|_| sim.rng.below(i as u64) as usize)
            .collect();
        if i > 0 {
            sim.bootstrap(i, &contacts);
        }
        sim.run_for(s.join_interval);
    }
    sim.run_for(Duration::from_secs(60));

    // Announces from random nodes, one info-hash each.
    let mut announced: Vec<(InfoHashV1, SocketAddr)> = Vec::new();
    let mut announce_ids = Vec::new();
    for a in 0..s.announcers {
        let who = sim.rng.below(s.nodes as u64) as usize;
        let mut ih = [0u8; 20];
        sim.rng.fill(&mut ih);
        let ih = InfoHashV1(ih);
        let port = 10_000 + a as u16;
        let id = sim.command(who, |n, now| {
            n.announce(
                now,
                ih,
                Announce {
                    port,
                    implied_port: false,
                    seed: false,
                },
            )
        });
        announce_ids.push((who, id));
        announced.push((ih, SocketAddr::new(sim.addr(who).ip(), port)));
    }
    sim.run_for(Duration::from_secs(60));
    let announces_acked = announce_ids
        .iter()
        .filter(|(who, id)| {
            sim.events.iter().any(|(_, n, e)| {
                *n == *who
                    && matches!(e, DhtEvent::AnnounceDone { lookup, acked, .. } if lookup == id && *acked > 0)
            })
        })
        .count();

    // Churn: some nodes leave, as many new ones join.
    let leaving = (s.nodes as f64 * s.churn) as usize;
    let malicious = (s.nodes as f64 * s.malicious) as usize;
    let mut order: Vec<usize> = (0..s.nodes).collect();
    sim.rng.shuffle(&mut order);
    for &i in order.iter().take(leaving) {
        sim.set_behaviour(i, Behaviour::Down);
    }
    for (k, &i) in order.iter().skip(leaving).take(malicious).enumerate() {
        let b = [Behaviour::BlackHole, Behaviour::Garbage, Behaviour::WrongId][k % 3];
        sim.set_behaviour(i, b);
    }
    for _ in 0..leaving {
        let i = sim.add_node();
        let contacts: Vec<usize> = (0..3)
            .map(|_| {
                order[leaving
                    + malicious
                    + sim.rng.below((s.nodes - leaving - malicious) as u64) as usize]
            })
            .collect();
        sim.bootstrap(i, &contacts);
        sim.run_for(s.join_interval);
    }
    sim.run_for(Duration::from_secs(30));

    // Lookups from random honest nodes.
    let honest: Vec<usize> = (0..sim.len())
        .filter(|&i| sim.behaviour(i) == Behaviour::Honest)
        .collect();
    let mut pending: BTreeMap<(usize, LookupId), (usize, Instant)> = BTreeMap::new();
    let first_event = sim.events.len();
    for _ in 0..s.lookups {
        let who = honest[sim.rng.below(honest.len() as u64) as usize];
        let which = sim.rng.below(announced.len() as u64) as usize;
        let ih = announced[which].0;
        let id = sim.command(who, |n, now| n.get_peers(now, ih));
        pending.insert((who, id), (which, sim.now()));
        // Spread the lookups over time a little.
        sim.run_for(Duration::from_millis(10));
    }
    let total = pending.len();
    sim.run_until(
        |sim| {
            sim.events[first_event..]
                .iter()
                .filter(|(_, n, e)| {
                    matches!(e, DhtEvent::LookupDone { lookup, .. } if pending.contains_key(&(*n, *lookup)))
                })
                .count()
                >= total
        },
        Duration::from_secs(300),
    );

    let mut report = ScenarioReport {
        lookups: total,
        announces_acked,
        ..ScenarioReport::default()
    };
    let mut found_at: BTreeMap<(usize, LookupId), Duration> = BTreeMap::new();
    let mut hops = 0u64;
    let mut messages = 0u64;
    let mut durations = Duration::ZERO;
    for (t, n, e) in &sim.events[first_event..] {
        match e {
            DhtEvent::Peers { lookup, peers, .. } => {
                if let Some((which, start)) = pending.get(&(*n, *lookup)) {
                    if peers.contains(&announced[*which].1) {
                        found_at
                            .entry((*n, *lookup))
                            .or_insert(t.saturating_duration_since(*start));
                    }
                }
            }
            DhtEvent::LookupDone { lookup, stats, .. } if pending.contains_key(&(*n, *lookup)) => {
                report.finished += 1;
                hops += u64::from(stats.hops);
                messages += u64::from(stats.queries);
                durations += stats.duration;
            }
            _ => {}
        }
    }
    report.found = found_at.len();
    if report.finished > 0 {
        report.mean_hops = hops as f64 / report.finished as f64;
        report.mean_messages = messages as f64 / report.finished as f64;
        report.mean_duration = durations / report.finished as u32;
    }
    let mut times: Vec<Duration> = found_at.values().copied().collect();
    times.sort();
    if !times.is_empty() {
        report.mean_time_to_peer = times.iter().sum::<Duration>() / times.len() as u32;
        report.p95_time_to_peer = times[(times.len() * 95 / 100).min(times.len() - 1)];
    }
    report.mean_table_size = honest
        .iter()
        .map(|&i| sim.node(i).routing_table(false).len() as f64)
        .sum::<f64>()
        / honest.len().max(1) as f64;
    report.datagrams = sim.counters().sent;
    report.trace_hash = sim.trace_hash();
    report
}
