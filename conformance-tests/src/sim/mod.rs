//! The deterministic simulator: sessions on a virtual clock, joined by a simulated network,
//! with in-memory disks and inline hashing (DESIGN.md, "The simulator").
//!
//! A [`Sim`] owns a virtual clock, a seeded [`Rng`], an event heap ordered by (time, sequence
//! number) so that ties are broken deterministically, and hosts: **nodes** (each a
//! [`Session`] with a [`MemDisk`]) and **fake peers** ([`FakePeer`], raw wire bytes under the
//! test's control). Hosts are joined by reliable ordered pipes with latency and bandwidth (see
//! [`net`] for the model).
//! Trackers ([`SimTracker`], added with [`Sim::add_tracker`]) answer the nodes' HTTP and UDP
//! announces and name lookups with latency (see the `tracker` module).
//!
//! A [step](Sim::step) pops the earliest event, sets the clock, feeds the node (bytes, connects,
//! disk and hash completions, its timer), drains *all* its outputs (the session contract),
//! performs them (which schedules further events: nothing is fed back to a node while its
//! outputs are being drained), and re-arms the node's timer from
//! [`Session::poll_timeout`]. After every drain the simulator checks invariants (see
//! [`Sim::add_invariant`] for adding more); a violation stops the run with a [`SimError`] that
//! names the seed. The same seed and the same script give the same run, bit for bit:
//! [`Sim::trace_hash`] hashes every output with its time and node.
//!
//! # Example
//!
//! ```
//! use bitshoal_conformance::sim::{NodeConfig, Sim, TestTorrent, TorrentSpec};
//! use bitshoal_core::time::Duration;
//!
//! let mut sim = Sim::new(7);
//! let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(100_000, 32 * 1024));
//! let seed = sim.add_node(NodeConfig::default());
//! let leech = sim.add_node(NodeConfig::default());
//! sim.seed_torrent(seed, &torrent);
//! let t = sim.add_torrent(leech, &torrent);
//! let seed_addr = sim.node(seed).addr();
//! sim.connect(leech, t, seed_addr).unwrap();
//! sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
//!     .unwrap_or_else(|e| panic!("{e}"));
//! assert_eq!(sim.node(leech).disk().content(t).unwrap(), &torrent.content[..]);
//! ```

pub mod dht;
mod disk;
mod fake_peer;
mod multicast;
pub mod net;
mod swarm;
mod torrent;
mod tracker;

pub use disk::MemDisk;
pub use fake_peer::{FakeConfig, FakePeer, MetadataServe, FAKE_UT_METADATA};
pub use multicast::MulticastDatagram;
pub use net::{HostRef, LinkProfile};
pub use swarm::{Swarm, SwarmBuilder, SwarmNode};
pub use torrent::{TestTorrent, TorrentSpec};
pub use tracker::{
    NetworkRequest, SimTracker, TrackerConfig, TrackerId, TrackerProtocol, TrackerRequest,
};

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, RequestId, TorrentId};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{
    AddError, AddTorrent, Config, ConnectError, Digest, DiskCmd, DiskDone, Event, Input, Output,
    Session, StorageError,
};
use bitshoal_core::time::{Duration, Instant};
use bitshoal_core::wire::{Handshake, Message};
use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};

use net::Pipe;

/// A node (a session) in a [`Sim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) usize);

/// A fake peer in a [`Sim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FakeId(pub(crate) usize);

/// How a node is set up; see [`Sim::add_node`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The session's configuration. Its `rng_seed` is replaced by one drawn from the
    /// simulator's RNG, so the simulator's seed decides everything.
    pub session: Config,
    /// The node's access link.
    pub link: LinkProfile,
    /// How long each disk read or write takes to complete.
    pub disk_latency: Duration,
    /// How long each hash job takes to complete.
    pub hash_latency: Duration,
    /// Writes take `disk_latency` plus a random extra of up to this, and land on the disk when
    /// they complete, not when they are issued: writes issued one after the other may land in
    /// the other order, as on a runtime whose disk pool runs several threads.
    pub disk_jitter: Duration,
    /// A fixed listening address instead of the next free one (loopback only).
    pub addr: Option<SocketAddr>,
    /// Behind a NAT: connections to the node are refused unless it dialled the connecting
    /// host's address within [`NAT_PINHOLE`] (its own attempt opened a pinhole), as a NAT
    /// without port forwarding does (BEP 55 holepunching gets through it).
    pub no_incoming: bool,
}

/// How long a NAT'd node's outgoing attempt keeps the way open for the other host to dial
/// it back (see [`NodeConfig::no_incoming`]).
pub const NAT_PINHOLE: Duration = Duration::from_secs(60);

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            session: Config::default(),
            link: LinkProfile::LAN,
            disk_latency: Duration::from_micros(100),
            hash_latency: Duration::ZERO,
            disk_jitter: Duration::ZERO,
            addr: None,
            no_incoming: false,
        }
    }
}

/// A node: a session, its disk, and what it reported.
#[derive(Debug)]
pub struct SimNode {
    session: Session,
    addr: SocketAddr,
    disk: MemDisk,
    events: Vec<(Instant, Event)>,
    disk_latency: Duration,
    hash_latency: Duration,
    disk_jitter: Duration,
    /// When the node's timer event is scheduled for.
    armed: Option<Instant>,
    /// Connections closed (by either side) or failed: no output may name them again.
    dead: BTreeSet<ConnId>,
    /// Pieces each torrent had at the last check: the count never goes down.
    have_counts: BTreeMap<TorrentId, u32>,
    /// Behind a NAT ([`NodeConfig::no_incoming`]): the IPs it dialled, and when.
    pinholes: Option<BTreeMap<IpAddr, Instant>>,
    /// Every HTTP request, name lookup and datagram the node sent (see `tracker`).
    pub(crate) network: Vec<(Instant, NetworkRequest)>,
}

impl SimNode {
    /// The session (getters only: commands go through [`Sim::with_session`]).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The node's listening address (its outgoing connections come from the same IP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's disk.
    pub fn disk(&self) -> &MemDisk {
        &self.disk
    }

    /// Every event the session reported, with its time, in order.
    pub fn events(&self) -> &[(Instant, Event)] {
        &self.events
    }

    /// Every connection that ended, with its reason, in order.
    pub fn disconnects(&self) -> Vec<(ConnId, DisconnectReason)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::PeerDisconnected { conn, reason, .. } => Some((*conn, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether the torrent has every piece.
    pub fn is_finished(&self, torrent: TorrentId) -> bool {
        self.session
            .torrent_status(torrent)
            .is_some_and(|s| s.finished)
    }
}

#[derive(Debug)]
pub(crate) enum HostKind {
    Node(Box<SimNode>),
    Fake(Box<FakePeer>),
}

#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) addr: SocketAddr,
    pub(crate) link: LinkProfile,
    /// When the uplink is free again.
    pub(crate) up_free: Instant,
    /// When the downlink is free again.
    pub(crate) down_free: Instant,
    pub(crate) kind: HostKind,
}

/// Something scheduled to happen.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A node's timer.
    Wake { host: usize },
    /// Bytes reach side `to` of a pipe.
    Deliver { pipe: usize, to: usize, data: Bytes },
    /// The other side closed (or refused): side `to` learns it.
    Fin { pipe: usize, to: usize },
    /// Everything side `from` sent so far has left its uplink.
    Flushed { pipe: usize, from: usize },
    /// A connection attempt reaches the listener.
    Accept { pipe: usize },
    /// The listener's answer reaches the connecting side.
    Connected { pipe: usize },
    /// Nobody listens at the address a node connected to.
    ConnectFailed { host: usize, conn: ConnId },
    /// A disk job completes.
    DiskDone {
        host: usize,
        req: RequestId,
        result: Result<DiskDone, StorageError>,
    },
    /// A write issued with [`NodeConfig::disk_jitter`] lands on the disk and completes.
    DiskWrite { host: usize, cmd: DiskCmd },
    /// A hash job completes.
    Hashed {
        host: usize,
        req: RequestId,
        digest: Digest,
    },
    /// An input reaches a node (tracker answers, name lookups, datagrams: see `tracker`).
    Input { host: usize, input: Input },
}

/// An event `ev` due at `at`; `seq` (the order of scheduling) breaks ties, so a run replays
/// exactly. Ordered for a max-heap of the earliest event (the DHT simulator uses it too).
#[derive(Debug)]
pub(crate) struct Scheduled<E> {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) ev: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, so the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Why a run stopped short; its `Display` names the seed that replays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError {
    /// The simulator's seed.
    pub seed: u64,
    /// The virtual time when it stopped.
    pub at: Instant,
    /// Steps taken by the run that failed.
    pub steps: u64,
    /// What went wrong.
    pub kind: SimErrorKind,
}

/// What stopped a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimErrorKind {
    /// The predicate did not hold within the virtual time allowed.
    TimedOut,
    /// No event is left and the predicate does not hold.
    Stalled,
    /// The step cap was reached (a livelock, or a cap too small).
    StepCap,
    /// An invariant check failed.
    Invariant(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            SimErrorKind::TimedOut => "the condition did not hold in time".to_string(),
            SimErrorKind::Stalled => "nothing left to do and the condition does not hold".into(),
            SimErrorKind::StepCap => "step cap reached".into(),
            SimErrorKind::Invariant(m) => format!("invariant violated: {m}"),
        };
        write!(
            f,
            "simulation seed {} at {:?} after {} steps: {what} (replay with Sim::new({}))",
            self.seed, self.at, self.steps, self.seed
        )
    }
}

impl std::error::Error for SimError {}

type Check = Box<dyn Fn(&Sim) -> Result<(), String>>;

/// The simulator; see the [module documentation](self).
pub struct Sim {
    seed: u64,
    now: Instant,
    rng: Rng,
    seq: u64,
    heap: BinaryHeap<Scheduled<Ev>>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) listeners: BTreeMap<SocketAddr, usize>,
    pub(crate) pipes: Vec<Pipe>,
    /// (node host, connection) to (pipe, side).
    pub(crate) conn_pipes: BTreeMap<(usize, ConnId), (usize, usize)>,
    pub(crate) path_latency: BTreeMap<(usize, usize), Duration>,
    trace: Sha1,
    /// Whether outputs are hashed into the trace (see [`Sim::set_tracing`]).
    tracing: bool,
    outputs: u64,
    steps: u64,
    max_steps: u64,
    violation: Option<String>,
    checks: Vec<(String, Check)>,
    /// Trackers (see the `tracker` module).
    pub(crate) trackers: Vec<SimTracker>,
    /// Multicast group members (see the `multicast` module).
    pub(crate) groups: BTreeMap<SocketAddr, BTreeSet<usize>>,
    /// Every multicast datagram sent.
    pub(crate) multicast_log: Vec<MulticastDatagram>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("hosts", &self.hosts.len())
            .field("pending", &self.heap.len())
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty simulation at time zero whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            now: Instant::ZERO,
            rng: Rng::from_seed(seed),
            seq: 0,
            heap: BinaryHeap::new(),
            hosts: Vec::new(),
            listeners: BTreeMap::new(),
            pipes: Vec::new(),
            conn_pipes: BTreeMap::new(),
            path_latency: BTreeMap::new(),
            trace: Sha1::new(),
            tracing: true,
            outputs: 0,
            steps: 0,
            max_steps: 5_000_000,
            violation: None,
            checks: Vec::new(),
            trackers: Vec::new(),
            groups: BTreeMap::new(),
            multicast_log: Vec::new(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The simulator's RNG, for building scenarios (torrents, peer ids) from the seed.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The most steps one [`run_until`](Self::run_until) or [`run_for`](Self::run_for) call
    /// may take (default five million).
    pub fn set_step_cap(&mut self, steps: u64) {
        self.max_steps = steps;
    }

    /// A hash of every output of every node so far, in order, with its time and node: equal
    /// for two runs exactly when they behaved the same (up to SHA-1 collisions).
    pub fn trace_hash(&self) -> [u8; 20] {
        self.trace.clone().finalize().into()
    }

    /// Turns hashing outputs into the trace on or off (on by default). Off, [`Sim::trace_hash`]
    /// stops changing; large benchmarks turn it off because it hashes every byte sent.
    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
    }

    /// How many outputs the nodes produced.
    pub fn output_count(&self) -> u64 {
        self.outputs
    }

    /// Adds a check that runs after every step; an `Err` stops the run with a [`SimError`].
    pub fn add_invariant(
        &mut self,
        name: impl Into<String>,
        check: impl Fn(&Sim) -> Result<(), String> + 'static,
    ) {
        self.checks.push((name.into(), Box::new(check)));
    }

    fn next_addr(&self) -> SocketAddr {
        let k = self.hosts.len();
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (k % 250) as u8)),
            6881 + (k / 250) as u16,
        )
    }

    fn add_host(&mut self, addr: SocketAddr, link: LinkProfile, kind: HostKind) -> usize {
        assert!(addr.ip().is_loopback(), "simulated hosts live on loopback");
        assert!(
            !self.listeners.contains_key(&addr) && self.hosts.iter().all(|h| h.addr != addr),
            "address {addr} is taken"
        );
        let h = self.hosts.len();
        self.hosts.push(Host {
            addr,
            link,
            up_free: self.now,
            down_free: self.now,
            kind,
        });
        h
    }

    /// Adds a node listening at the next free loopback address (or `config.addr`).
    pub fn add_node(&mut self, config: NodeConfig) -> NodeId {
        let addr = config.addr.unwrap_or_else(|| self.next_addr());
        let mut session = config.session;
        session.rng_seed = self.rng.next_u64();
        session.listen_port.get_or_insert(addr.port());
        let node = SimNode {
            session: Session::new(session),
            addr,
            disk: MemDisk::new(),
            events: Vec::new(),
            disk_latency: config.disk_latency,
            hash_latency: config.hash_latency,
            disk_jitter: config.disk_jitter,
            armed: None,
            dead: BTreeSet::new(),
            have_counts: BTreeMap::new(),
            pinholes: config.no_incoming.then(BTreeMap::new),
            network: Vec::new(),
        };
        let h = self.add_host(addr, config.link, HostKind::Node(Box::new(node)));
        self.listeners.insert(addr, h);
        // A session may want a timeout before any input (the DHT starts on its first call).
        self.rearm(h);
        NodeId(h)
    }

    /// Adds a fake peer at the next free loopback address (or `config.addr`).
    pub fn add_fake(&mut self, config: FakeConfig) -> FakeId {
        let addr = config.addr.unwrap_or_else(|| self.next_addr());
        let listen = config.listen;
        let link = config.link;
        let h = self.add_host(
            addr,
            link,
            HostKind::Fake(Box::new(FakePeer::new(config, addr))),
        );
        if listen {
            self.listeners.insert(addr, h);
        }
        FakeId(h)
    }

    /// A node.
    pub fn node(&self, node: NodeId) -> &SimNode {
        match &self.hosts[node.0].kind {
            HostKind::Node(n) => n,
            HostKind::Fake(_) => panic!("{node:?} is a fake peer"),
        }
    }

    fn node_mut(&mut self, host: usize) -> &mut SimNode {
        match &mut self.hosts[host].kind {
            HostKind::Node(n) => n,
            HostKind::Fake(_) => panic!("host {host} is a fake peer"),
        }
    }

    /// A fake peer.
    pub fn fake(&self, fake: FakeId) -> &FakePeer {
        match &self.hosts[fake.0].kind {
            HostKind::Fake(f) => f,
            HostKind::Node(_) => panic!("{fake:?} is a node"),
        }
    }

    /// A fake peer, to change (see [`FakePeer::serve`], [`FakePeer::clear_received`]).
    pub fn fake_mut(&mut self, fake: FakeId) -> &mut FakePeer {
        match &mut self.hosts[fake.0].kind {
            HostKind::Fake(f) => f,
            HostKind::Node(_) => panic!("{fake:?} is a node"),
        }
    }

    // ---- commands to nodes ----------------------------------------------------------------

    /// Runs a command on a node's session at the current time, then drains and performs its
    /// outputs (the session contract).
    pub fn with_session<R>(
        &mut self,
        node: NodeId,
        command: impl FnOnce(&mut Session, Instant) -> R,
    ) -> R {
        let now = self.now;
        let r = command(&mut self.node_mut(node.0).session, now);
        // A command may forget pieces on purpose (a file lost, BEP 54): the invariant that
        // counts never go down holds for network input, not for the application's commands.
        self.node_mut(node.0).have_counts.clear();
        self.drain(node.0);
        r
    }

    /// Adds a torrent the node has nothing of yet.
    pub fn add_torrent(&mut self, node: NodeId, torrent: &TestTorrent) -> TorrentId {
        self.try_add_torrent(node, torrent.add())
            .expect("a fresh test torrent is accepted")
    }

    /// Adds a torrent as `add` describes.
    pub fn try_add_torrent(
        &mut self,
        node: NodeId,
        add: AddTorrent,
    ) -> Result<TorrentId, AddError> {
        self.with_session(node, |s, now| s.add_torrent(now, add))
    }

    /// Adds a torrent the node has completely, with its content on the node's disk.
    pub fn seed_torrent(&mut self, node: NodeId, torrent: &TestTorrent) -> TorrentId {
        let have = Bitfield::full(torrent.piece_count());
        let id = self
            .try_add_torrent(node, torrent.add().with_have(have))
            .expect("a fresh test torrent is accepted");
        self.node_mut(node.0).disk.fill(id, &torrent.content);
        id
    }

    /// A node's disk, to inject faults or stage content (see [`MemDisk`]).
    pub fn disk_mut(&mut self, node: NodeId) -> &mut MemDisk {
        &mut self.node_mut(node.0).disk
    }

    /// Asks a node to connect to `addr` for `torrent`.
    pub fn connect(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        self.with_session(node, |s, now| s.connect(now, torrent, addr))
    }

    // ---- fake peers -----------------------------------------------------------------------

    /// Has a fake peer connect to `addr`. Bytes it sends before the connection is accepted
    /// are delivered after the accept; a refused connection shows as
    /// [`FakePeer::closed_at`].
    pub fn fake_connect(&mut self, fake: FakeId, addr: SocketAddr) {
        assert!(
            self.fake(fake).pipe.is_none(),
            "a fake peer has one connection"
        );
        match self.open_pipe(fake.0, None, addr) {
            Some(pipe) => self.fake_mut(fake).pipe = Some((pipe, 0)),
            None => {
                let now = self.now;
                self.fake_mut(fake).closed_at = Some(now);
            }
        }
    }

    /// Sends raw bytes from a fake peer (dropped if it has no connection).
    pub fn fake_send_raw(&mut self, fake: FakeId, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        if let Some((pipe, side)) = self.fake(fake).pipe {
            if !bytes.is_empty() {
                self.pipe_send(pipe, side, bytes);
            }
        }
    }

    /// Sends wire messages from a fake peer, encoded with the wire codec, as one send.
    pub fn fake_send(&mut self, fake: FakeId, messages: &[Message]) {
        let mut buf = BytesMut::new();
        for m in messages {
            if let Some(body) = m.encode(&mut buf) {
                buf.extend_from_slice(&body);
            }
        }
        self.fake_send_raw(fake, buf.freeze());
    }

    /// Sends a handshake from a fake peer.
    pub fn fake_send_handshake(&mut self, fake: FakeId, handshake: &Handshake) {
        let mut buf = BytesMut::new();
        handshake.encode(&mut buf);
        self.fake_send_raw(fake, buf.freeze());
    }

    /// Closes a fake peer's connection.
    pub fn fake_close(&mut self, fake: FakeId) {
        if let Some((pipe, side)) = self.fake_mut(fake).pipe.take() {
            self.pipe_close(pipe, side);
        }
    }

    // ---- running --------------------------------------------------------------------------

    pub(crate) fn schedule(&mut self, at: Instant, ev: Ev) {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Scheduled {
            at: at.max(self.now),
            seq,
            ev,
        });
    }

    fn error(&self, steps: u64, kind: SimErrorKind) -> SimError {
        SimError {
            seed: self.seed,
            at: self.now,
            steps,
            kind,
        }
    }

    /// Runs the earliest event. Returns `Ok(false)` when no event is left.
    pub fn step(&mut self) -> Result<bool, SimError> {
        let Some(next) = self.heap.pop() else {
            return Ok(false);
        };
        self.now = next.at;
        self.steps += 1;
        self.dispatch(next.ev);
        if self.violation.is_none() {
            for (name, check) in &self.checks {
                if let Err(m) = check(self) {
                    self.violation = Some(format!("{name}: {m}"));
                    break;
                }
            }
        }
        match &self.violation {
            Some(m) => Err(self.error(1, SimErrorKind::Invariant(m.clone()))),
            None => Ok(true),
        }
    }

    /// Runs until `done` holds (checked before every step), failing after `max` of virtual
    /// time, when nothing is left to do, at the step cap, or on an invariant violation.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Sim) -> bool,
        max: Duration,
    ) -> Result<(), SimError> {
        let deadline = self.now + max;
        let mut steps = 0;
        loop {
            if done(self) {
                return Ok(());
            }
            match self.heap.peek() {
                None => return Err(self.error(steps, SimErrorKind::Stalled)),
                Some(next) if next.at > deadline => {
                    self.now = deadline;
                    return Err(self.error(steps, SimErrorKind::TimedOut));
                }
                Some(_) => {}
            }
            if steps >= self.max_steps {
                return Err(self.error(steps, SimErrorKind::StepCap));
            }
            steps += 1;
            self.step().map_err(|e| SimError { steps, ..e })?;
        }
    }

    /// Runs every event up to `now + d`, then sets the clock to `now + d`.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let end = self.now + d;
        let mut steps = 0;
        while self.heap.peek().is_some_and(|n| n.at <= end) {
            if steps >= self.max_steps {
                return Err(self.error(steps, SimErrorKind::StepCap));
            }
            steps += 1;
            self.step().map_err(|e| SimError { steps, ..e })?;
        }
        self.now = end;
        Ok(())
    }

    fn dispatch(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Wake { host } => {
                let node = self.node_mut(host);
                if node.armed != Some(now) {
                    return; // re-armed for another time since
                }
                node.armed = None;
                node.session.handle_timeout(now);
                self.drain(host);
            }
            Ev::Deliver { pipe, to, data } => {
                let end = &self.pipes[pipe].ends[to];
                if !end.open {
                    return;
                }
                let host = end.host;
                match (&mut self.hosts[host].kind, end.conn) {
                    (HostKind::Node(n), Some(conn)) => {
                        let data = BytesMut::from(&data[..]);
                        n.session.handle_input(now, Input::Received { conn, data });
                        self.drain(host);
                    }
                    (HostKind::Node(_), None) => {}
                    (HostKind::Fake(f), _) => {
                        let replies = f.on_bytes(now, &data);
                        if !replies.is_empty() {
                            self.pipe_send(pipe, to, replies.freeze());
                        }
                    }
                }
            }
            Ev::Fin { pipe, to } => {
                let end = &mut self.pipes[pipe].ends[to];
                if !end.open {
                    return;
                }
                end.open = false;
                let (host, conn, connected) = (end.host, end.conn, end.connected);
                match &mut self.hosts[host].kind {
                    HostKind::Node(n) => {
                        let Some(conn) = conn else { return };
                        self.conn_pipes.remove(&(host, conn));
                        n.dead.insert(conn);
                        let input = if connected {
                            Input::Closed { conn }
                        } else {
                            Input::ConnectFailed { conn }
                        };
                        n.session.handle_input(now, input);
                        self.drain(host);
                    }
                    HostKind::Fake(f) => {
                        f.closed_at = Some(now);
                        f.pipe = None;
                    }
                }
            }
            Ev::Flushed { pipe, from } => {
                let p = &self.pipes[pipe];
                let end = &p.ends[from];
                if !end.open || now < p.dirs[from].sent_done {
                    return;
                }
                let (host, conn) = (end.host, end.conn);
                if let (HostKind::Node(n), Some(conn)) = (&mut self.hosts[host].kind, conn) {
                    n.session.handle_input(now, Input::Flushed { conn });
                    self.drain(host);
                }
            }
            Ev::Accept { pipe } => self.accept(pipe),
            Ev::Connected { pipe } => {
                let end = &mut self.pipes[pipe].ends[0];
                if !end.open || end.connected {
                    return;
                }
                end.connected = true;
                let (host, conn) = (end.host, end.conn);
                if let (HostKind::Node(n), Some(conn)) = (&mut self.hosts[host].kind, conn) {
                    n.session.handle_input(now, Input::Connected { conn });
                    self.drain(host);
                }
            }
            Ev::ConnectFailed { host, conn } => {
                let n = self.node_mut(host);
                n.dead.insert(conn);
                n.session.handle_input(now, Input::ConnectFailed { conn });
                self.drain(host);
            }
            Ev::DiskDone { host, req, result } => {
                let n = self.node_mut(host);
                n.session.handle_input(now, Input::DiskDone { req, result });
                self.drain(host);
            }
            Ev::DiskWrite { host, cmd } => {
                let n = self.node_mut(host);
                if let Some((req, result)) = n.disk.execute(cmd) {
                    n.session.handle_input(now, Input::DiskDone { req, result });
                }
                self.drain(host);
            }
            Ev::Hashed { host, req, digest } => {
                let n = self.node_mut(host);
                n.session.handle_input(now, Input::Hashed { req, digest });
                self.drain(host);
            }
            Ev::Input { host, input } => {
                self.node_mut(host).session.handle_input(now, input);
                self.drain(host);
            }
        }
    }

    /// A connection attempt reaches its listener.
    fn accept(&mut self, pipe: usize) {
        let now = self.now;
        let (from, to) = (self.pipes[pipe].ends[0].host, self.pipes[pipe].ends[1].host);
        if !self.pipes[pipe].ends[0].open {
            self.pipes[pipe].ends[1].open = false;
            return;
        }
        // The connecting side's address as the listener sees it: its IP, an ephemeral port.
        let seen = SocketAddr::new(self.hosts[from].addr.ip(), 40_000 + (pipe % 20_000) as u16);
        let from_ip = self.hosts[from].addr.ip();
        let accepted = match &mut self.hosts[to].kind {
            HostKind::Node(n)
                if n.pinholes
                    .as_ref()
                    .is_some_and(|p| p.get(&from_ip).is_none_or(|at| now > *at + NAT_PINHOLE)) =>
            {
                false // behind a NAT, no pinhole for that host
            }
            HostKind::Node(n) => match n.session.accept(now, seen) {
                Ok(conn) => {
                    self.pipes[pipe].ends[1].conn = Some(conn);
                    self.conn_pipes.insert((to, conn), (pipe, 1));
                    self.drain(to);
                    true
                }
                Err(_) => {
                    self.drain(to);
                    false
                }
            },
            HostKind::Fake(f) => {
                if f.config.listen && f.pipe.is_none() && f.closed_at.is_none() {
                    f.pipe = Some((pipe, 1));
                    true
                } else {
                    false
                }
            }
        };
        if accepted {
            let at = now + self.latency(from, to);
            self.schedule(at, Ev::Connected { pipe });
        } else {
            self.pipe_close(pipe, 1);
        }
    }

    /// Drains a node's outputs, performs them, re-arms its timer, and checks its invariants.
    fn drain(&mut self, host: usize) {
        loop {
            let output = self.node_mut(host).session.poll_output();
            let Some(output) = output else { break };
            self.trace_output(host, &output);
            self.perform(host, output);
        }
        self.rearm(host);
        self.check_node(host);
    }

    fn violate(&mut self, message: String) {
        if self.violation.is_none() {
            self.violation = Some(message);
        }
    }

    fn rearm(&mut self, host: usize) {
        let now = self.now;
        let node = self.node_mut(host);
        let Some(deadline) = node.session.poll_timeout() else {
            node.armed = None;
            return;
        };
        let at = deadline.max(now);
        if node.armed == Some(at) {
            return;
        }
        node.armed = Some(at);
        self.schedule(at, Ev::Wake { host });
    }

    fn check_node(&mut self, host: usize) {
        let node = self.node_mut(host);
        let mut problem = None;
        let torrents: Vec<TorrentId> = node.disk.torrents().collect();
        for t in torrents {
            let Some(count) = node.session.have(t).map(Bitfield::count) else {
                continue;
            };
            let before = node.have_counts.insert(t, count).unwrap_or(0);
            if count < before {
                problem = Some(format!(
                    "node {host}: torrent {t:?} went from {before} pieces to {count}"
                ));
            }
        }
        if let Some(m) = problem {
            self.violate(m);
        }
    }

    fn trace_output(&mut self, host: usize, output: &Output) {
        self.outputs += 1;
        if !self.tracing {
            return;
        }
        let t = &mut self.trace;
        t.update(self.now.as_micros().to_le_bytes());
        t.update((host as u64).to_le_bytes());
        match output {
            Output::Send { conn, head, body } => {
                t.update(format!("send {conn:?}").as_bytes());
                t.update(head);
                if let Some(body) = body {
                    t.update(body);
                }
            }
            Output::Disk(DiskCmd::Write {
                req, spans, data, ..
            }) => {
                t.update(format!("write {req:?} {spans:?}").as_bytes());
                t.update(data);
            }
            Output::Disk(DiskCmd::Open { torrent, info }) => {
                t.update(format!("open {torrent:?}").as_bytes());
                t.update(info.raw());
            }
            Output::Hash(job) => {
                t.update(format!("hash {:?}", job.req).as_bytes());
                for b in &job.data {
                    t.update(b);
                }
            }
            other => t.update(format!("{other:?}").as_bytes()),
        }
    }

    /// Performs one output of node `host`, checking the connection invariants.
    fn perform(&mut self, host: usize, output: Output) {
        let now = self.now;
        match output {
            Output::Connect { conn, addr } => {
                let n = self.node_mut(host);
                if n.dead.contains(&conn) || self.conn_pipes.contains_key(&(host, conn)) {
                    self.violate(format!("node {host}: Connect reuses live id {conn:?}"));
                    return;
                }
                self.open_pipe(host, Some(conn), addr);
            }
            Output::Send { conn, head, body } => {
                if self.node(NodeId(host)).dead.contains(&conn) {
                    self.violate(format!("node {host}: Send on {conn:?} after it closed"));
                    return;
                }
                let Some(&(pipe, side)) = self.conn_pipes.get(&(host, conn)) else {
                    self.violate(format!("node {host}: Send on unknown {conn:?}"));
                    return;
                };
                let data = match body {
                    None => head,
                    Some(body) => {
                        let mut b = BytesMut::with_capacity(head.len() + body.len());
                        b.extend_from_slice(&head);
                        b.extend_from_slice(&body);
                        b.freeze()
                    }
                };
                self.pipe_send(pipe, side, data);
            }
            Output::Close { conn } => {
                let n = self.node_mut(host);
                if !n.dead.insert(conn) {
                    self.violate(format!("node {host}: Close of {conn:?} after it closed"));
                    return;
                }
                match self.conn_pipes.get(&(host, conn)).copied() {
                    Some((pipe, side)) => self.pipe_close(pipe, side),
                    None => self.violate(format!("node {host}: Close of unknown {conn:?}")),
                }
            }
            Output::Disk(cmd @ DiskCmd::Write { .. })
                if self.node(NodeId(host)).disk_jitter > Duration::ZERO =>
            {
                let n = self.node(NodeId(host));
                let jitter = n.disk_jitter.as_micros() as u64;
                let latency = n.disk_latency + Duration::from_micros(self.rng.below(jitter + 1));
                self.schedule(now + latency, Ev::DiskWrite { host, cmd });
            }
            Output::Disk(cmd) => {
                let n = self.node_mut(host);
                let latency = n.disk_latency;
                if let Some((req, result)) = n.disk.execute(cmd) {
                    self.schedule(now + latency, Ev::DiskDone { host, req, result });
                }
            }
            Output::Hash(job) => {
                let latency = self.node(NodeId(host)).hash_latency;
                let digest = job.compute();
                let req = job.req;
                self.schedule(now + latency, Ev::Hashed { host, req, digest });
            }
            Output::Event(event) => {
                if let Event::PeerDisconnected { conn, .. } = &event {
                    let conn = *conn;
                    if self.conn_pipes.contains_key(&(host, conn)) {
                        self.violate(format!(
                            "node {host}: {conn:?} reported disconnected with its socket open \
                             (no Output::Close)"
                        ));
                    }
                    self.node_mut(host).dead.insert(conn);
                }
                self.node_mut(host).events.push((now, event));
            }
            output @ (Output::Http { .. }
            | Output::Resolve { .. }
            | Output::SendDatagram { .. }) => self.perform_network(host, output),
            Output::SendLsd { to, data } => self.send_multicast(host, to, data),
            other => self.violate(format!("node {host}: unexpected output {other:?}")),
        }
    }
}
