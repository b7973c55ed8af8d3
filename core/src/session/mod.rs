//! The one public entry point of the core: all torrents, all connections, one deadline.
//!
//! See [`Session`] for the driving contract.

pub(crate) mod checking;
mod dht;
mod dht_items;
mod engine;
mod ext;
mod ext_more;
mod hashes;
mod io;
mod leaf_hashes;
mod lifecycle;
mod lsd;
mod metadata;
mod pieces;
mod priority;
mod scrape;
mod superseed;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ext;
#[cfg(test)]
mod tests_lifecycle;
#[cfg(test)]
mod tests_resume;
mod trackers;
pub(crate) mod v2;
mod v2_ban;
mod verify;

pub use crate::picker::Priority;
pub use dht::{DhtSettings, PUBLIC_ROUTERS};
pub use dht_items::{MAX_PUBLISHED, REPUBLISH_INTERVAL};
pub use engine::CommandError;
pub use ext::{MAX_LEARNED, MIN_PEX_GAP, PEX_CHECK_INTERVAL};
pub use ext_more::{MAX_HOLEPUNCH_CONNECTS, MAX_PEX_SOURCES, MAX_TEX_TRACKERS};
pub use hashes::{HASH_REQUEST_BURST, HASH_REQUEST_RATE, MAX_HASH_REQUEST_LEN, MAX_OVER_BUDGET};
pub use leaf_hashes::{MAX_CACHED_LEAVES, MAX_LEAF_READ_BYTES, MAX_PENDING_PER_PEER};
pub use lifecycle::{CheckMode, TorrentError, TorrentState};
pub use lsd::{LSD_PEER_GAP, MAX_LSD_DATAGRAMS_PER_MINUTE};
pub use metadata::{AddMagnet, MAX_SERVED_PER_CONN};
pub use priority::EVICT_INTERVAL;
pub use superseed::SuperseedMode;
pub use v2_ban::MAX_SUSPECT_PIECES;

pub use io::{
    Digest, DiskCmd, DiskDone, Event, HashAlgorithm, HashJob, HttpReply, Input, Output,
    StorageError,
};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::id::{ConnId, InfoHashes, PeerId, RequestId, TorrentId};
use crate::metainfo::{Info, BLOCK_LEN};
use crate::peer::{DisconnectReason, PeerConfig, PeerConn, PeerEvent, ALLOWED_FAST_COUNT};
use crate::rate::TokenBucket;
use crate::rng::Rng;
use crate::slots::Slots;
use crate::time::Instant;
use crate::torrent::Torrent;
use crate::wire::{allowed_fast_set, BlockRequest, ExtendedHandshake, Handshake, Reserved};

/// Everything a session is configured with. `Config::default()` is a sensible client; set
/// fields with `Config { rng_seed, ..Config::default() }` (new fields always get defaults).
#[derive(Clone, Debug)]
pub struct Config {
    /// Seeds the session's only random number generator: the same seed and the same inputs give
    /// the same outputs. Runtimes pass entropy; the simulator a fixed number.
    pub rng_seed: u64,
    /// Our peer id; generated from the RNG with the `-BS0001-` prefix (BEP 20) when `None`.
    pub peer_id: Option<PeerId>,
    /// The TCP port we listen on, advertised in the BEP 10 handshake (`p`).
    pub listen_port: Option<u16>,
    /// The most connections, all torrents together.
    pub max_connections: usize,
    /// The most connections per torrent the session opens by itself (to peers trackers
    /// return); connections the application asks for with [`Session::connect`] always go.
    pub max_peers_per_torrent: usize,
    /// How many peers we upload to at once, per torrent, the optimistic unchoke included.
    pub unchoke_slots: usize,
    /// Upload limit for all torrents together, in bytes per second of block payload; 0 means
    /// unlimited. Per-torrent limits: [`Session::set_torrent_limits`].
    pub upload_rate_limit: u64,
    /// Download limit for all torrents together, in bytes per second of requested blocks;
    /// 0 means unlimited.
    pub download_rate_limit: u64,
    /// The most bytes of disk reads in flight; reads wait above it (back-pressure).
    pub max_disk_read_bytes: u64,
    /// The most bytes of block writes in flight and of complete pieces waiting for their
    /// digest; no new blocks are requested above it (back-pressure from a slow disk or a slow
    /// hasher, and the bound on the memory downloads hold). A connection's requests still in
    /// flight count against what is left, so a deep pipeline cannot land on top of a full
    /// queue. That also bounds the download rate by this many bytes per round trip to the
    /// peers (4 MiB at 100 ms: 40 MiB/s); the default, 4 MiB, downloads over loopback as fast
    /// as 8 MiB did with 5 MiB less memory (`benches/README.md`).
    pub max_disk_write_bytes: u64,
    /// The most bytes handed to a connection's socket and not yet flushed before we stop
    /// reading more blocks for it.
    pub max_unflushed_bytes: u64,
    /// Per-connection timeouts and bounds.
    pub peer: PeerConfig,
    /// The client name sent in the BEP 10 handshake (`v`).
    pub client_name: String,
    /// The Mainline DHT (BEP 5) on the session's UDP socket; `None` (the default) is off.
    pub dht: Option<DhtSettings>,
    /// BEP 14 local service discovery: announce public torrents to the LAN's multicast group
    /// and dial the peers announced there (the runtime joins the group only when this is set).
    /// Off by default.
    pub lsd: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rng_seed: 0,
            peer_id: None,
            listen_port: None,
            max_connections: 500,
            max_peers_per_torrent: 50,
            unchoke_slots: 8,
            upload_rate_limit: 0,
            download_rate_limit: 0,
            max_disk_read_bytes: 16 * 1024 * 1024,
            max_disk_write_bytes: 4 * 1024 * 1024,
            max_unflushed_bytes: 1024 * 1024,
            peer: PeerConfig::DEFAULT,
            client_name: concat!("bitshoal ", env!("CARGO_PKG_VERSION")).to_string(),
            dht: None,
            lsd: false,
        }
    }
}

/// A torrent to add with [`Session::add_torrent`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AddTorrent {
    /// The validated info dictionary.
    pub info: Arc<Info>,
    /// Tracker announce URLs in tiers (BEP 12), e.g. `Metainfo::trackers()`. For a private
    /// torrent (BEP 27) pass only its own trackers.
    pub trackers: Vec<Vec<String>>,
    /// How to learn which pieces are already on disk.
    pub check: CheckMode,
    /// BEP 52 piece layers of a v2 or hybrid torrent, by file index (`Metainfo::piece_layer`);
    /// layers left out are fetched from peers with hash requests.
    pub piece_layers: Vec<Option<bytes::Bytes>>,
}

impl AddTorrent {
    /// A torrent with nothing downloaded yet (nothing is checked) and no trackers.
    pub fn new(info: Arc<Info>) -> Self {
        let pieces = info.layout().piece_count();
        Self {
            info,
            trackers: Vec::new(),
            check: CheckMode::Trust(Bitfield::new(pieces)),
            piece_layers: Vec::new(),
        }
    }

    /// A torrent from a `.torrent` file: its info dictionary, trackers and piece layers.
    pub fn from_metainfo(meta: &crate::metainfo::Metainfo) -> Self {
        Self::new(Arc::new(meta.info().clone()))
            .with_trackers(meta.trackers().to_vec())
            .with_piece_layers(meta.piece_layers().to_vec())
    }

    /// The same torrent with these BEP 52 piece layers (by file index, as
    /// `Metainfo::piece_layer` gives them); each is checked against its file's root at add.
    #[must_use]
    pub fn with_piece_layers(mut self, layers: Vec<Option<bytes::Bytes>>) -> Self {
        self.piece_layers = layers;
        self
    }

    /// The same torrent announced to `tiers` of tracker URLs (BEP 12).
    #[must_use]
    pub fn with_trackers(mut self, tiers: Vec<Vec<String>>) -> Self {
        self.trackers = tiers;
        self
    }

    /// The same torrent with `have` trusted as already verified (a seed's complete files):
    /// [`CheckMode::Trust`].
    #[must_use]
    pub fn with_have(self, have: Bitfield) -> Self {
        self.with_check(CheckMode::Trust(have))
    }

    /// The same torrent, learning what is on disk as `check` says.
    #[must_use]
    pub fn with_check(mut self, check: CheckMode) -> Self {
        self.check = check;
        self
    }
}

/// Why [`Session::add_torrent`] refused a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddError {
    /// A torrent with the same info-hash is already in the session.
    Duplicate(TorrentId),
    /// A piece layer given with [`AddTorrent::with_piece_layers`] has the wrong length or does
    /// not hash to its file's `pieces root` (`ApiMisuse`: pass the layers of the torrent's own
    /// `Metainfo`).
    BadPieceLayer {
        /// The file index.
        file: usize,
    },
    /// The resume bitfield does not have the torrent's piece count (`ApiMisuse`: pass a
    /// bitfield made with `Bitfield::new(info.layout().piece_count())`).
    HaveLength {
        /// The torrent's piece count.
        expected: u32,
        /// The bitfield's length.
        actual: u32,
    },
    /// The resume data names another torrent (`ApiMisuse`: load the resume file saved for
    /// this info-hash).
    ResumeForAnotherTorrent,
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate(_) => f.write_str("the torrent is already in the session"),
            Self::BadPieceLayer { file } => write!(
                f,
                "the piece layer given for file {file} does not match its pieces root"
            ),
            Self::HaveLength { expected, actual } => write!(
                f,
                "resume bitfield covers {actual} pieces, the torrent has {expected}: \
                 make it with Bitfield::new(info.layout().piece_count())"
            ),
            Self::ResumeForAnotherTorrent => {
                f.write_str("the resume data was saved for another torrent")
            }
        }
    }
}

impl std::error::Error for AddError {}

/// Why the session refused to open or accept a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// [`Config::max_connections`] are open.
    TooManyConnections,
    /// The torrent id is stale or was never issued (`ApiMisuse`).
    UnknownTorrent,
    /// The torrent is checking, paused or stopped by an error: it makes no connections.
    TorrentInactive,
    /// The address is banned from the torrent (smart ban).
    Banned,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyConnections => f.write_str("connection limit reached"),
            Self::UnknownTorrent => {
                f.write_str("unknown torrent id: it was removed, or comes from another session")
            }
            Self::TorrentInactive => {
                f.write_str("the torrent is checking, paused or stopped: resume it first")
            }
            Self::Banned => f.write_str("the address is banned from this torrent"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A snapshot of one torrent, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TorrentStatus {
    /// The info-hashes.
    pub hashes: InfoHashes,
    /// Pieces verified and stored.
    pub pieces_have: u32,
    /// All pieces.
    pub pieces_total: u32,
    /// Bytes still to download.
    pub left: u64,
    /// Block payload bytes received.
    pub downloaded: u64,
    /// Block payload bytes sent.
    pub uploaded: u64,
    /// Connections that completed the handshake.
    pub peers: usize,
    /// Whether every wanted piece (priority other than [`Priority::Skip`]) is verified and
    /// stored.
    pub finished: bool,
    /// Where the torrent is in its life.
    pub state: TorrentState,
    /// Block payload bytes per second from all its peers, as of the latest input.
    pub download_rate: u64,
    /// Block payload bytes per second to all its peers, as of the latest input.
    pub upload_rate: u64,
    /// Downloaded pieces that passed their hash check.
    pub pieces_verified: u32,
    /// Downloaded pieces that failed their hash check (and were downloaded again).
    pub pieces_failed: u32,
}

/// A snapshot of one peer connection, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The connection.
    pub conn: ConnId,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The peer's id.
    pub peer_id: PeerId,
    /// Whether we opened the connection.
    pub outgoing: bool,
    /// Whether we refuse the peer's requests.
    pub am_choking: bool,
    /// Whether we want pieces the peer has.
    pub am_interested: bool,
    /// Whether the peer refuses our requests.
    pub peer_choking: bool,
    /// Whether the peer wants pieces we have.
    pub peer_interested: bool,
    /// Whether the peer stopped answering our requests.
    pub snubbed: bool,
    /// How many pieces the peer has.
    pub pieces: u32,
    /// Block payload bytes per second from the peer.
    pub download_rate: u64,
    /// Block payload bytes per second to the peer.
    pub upload_rate: u64,
    /// Our requests in flight to the peer.
    pub requests_outstanding: usize,
    /// Block payload bytes received from the peer on this connection.
    pub downloaded: u64,
    /// Block payload bytes sent to the peer on this connection.
    pub uploaded: u64,
}

#[derive(Debug)]
struct Conn {
    peer: PeerConn,
    /// Known from the start for outgoing connections, after the handshake for incoming ones.
    torrent: Option<TorrentId>,
    /// Bytes handed to the runtime since the last [`Input::Flushed`].
    unflushed: u64,
    /// When we last unchoked the peer.
    last_unchoked: Option<Instant>,
    /// When the peer got the optimistic unchoke slot, while it holds it.
    optimistic_since: Option<Instant>,
}

impl Conn {
    /// A connection that has sent and received nothing yet.
    fn new(peer: PeerConn, torrent: Option<TorrentId>) -> Conn {
        Conn {
            peer,
            torrent,
            unflushed: 0,
            last_unchoked: None,
            optimistic_since: None,
        }
    }
}

#[derive(Debug)]
enum Job {
    Write {
        torrent: TorrentId,
        piece: u32,
        length: u32,
    },
    Read {
        torrent: TorrentId,
        conn: ConnId,
        request: BlockRequest,
    },
    Hash {
        torrent: TorrentId,
        piece: u32,
        /// The piece's bytes, held until the digest is back (counted against the write cap).
        length: u64,
    },
    /// Checking: a whole piece read from disk.
    CheckRead {
        torrent: TorrentId,
        piece: u32,
        length: u32,
    },
    /// Checking: the hash of a piece read from disk.
    CheckHash { torrent: TorrentId, piece: u32 },
    /// A whole piece read for its leaf hashes (BEP 52 leaf requests, hybrid re-checks).
    LeafRead {
        torrent: TorrentId,
        piece: u32,
        length: u32,
    },
    /// The leaf hashes of such a piece.
    LeafHash { torrent: TorrentId, piece: u32 },
}

impl Job {
    fn torrent(&self) -> TorrentId {
        match self {
            Self::Write { torrent, .. }
            | Self::Read { torrent, .. }
            | Self::Hash { torrent, .. }
            | Self::CheckRead { torrent, .. }
            | Self::CheckHash { torrent, .. }
            | Self::LeafRead { torrent, .. }
            | Self::LeafHash { torrent, .. } => *torrent,
        }
    }
}

/// A BitTorrent session: every torrent and connection, as one sans-IO state machine.
///
/// # Contract
///
/// The session never performs IO, reads a clock, or draws entropy of its own. The runtime
/// drives it with four kinds of calls:
///
/// - **in**: [`handle_input`](Self::handle_input) for what happened (bytes received, connects,
///   disk and hash results) and [`handle_timeout`](Self::handle_timeout) when the deadline
///   passes (spurious calls are harmless);
/// - **commands**: methods such as [`add_torrent`](Self::add_torrent),
///   [`connect`](Self::connect), [`accept`](Self::accept), [`remove_torrent`](Self::remove_torrent),
///   the lifecycle ([`pause`](Self::pause), [`resume`](Self::resume); see [`TorrentState`]),
///   and the download policy: [`set_file_priority`](Self::set_file_priority),
///   [`set_sequential`](Self::set_sequential), [`set_piece_deadline`](Self::set_piece_deadline)
///   (streaming), [`set_torrent_limits`](Self::set_torrent_limits); trackers:
///   [`scrape`](Self::scrape);
/// - **out**: [`poll_output`](Self::poll_output) until it returns `None`, performing every
///   [`Output`] in order. This must happen after *every* in-call and command, before the
///   next one (debug builds assert it);
/// - **getters** (`&self`): [`poll_timeout`](Self::poll_timeout) for the one deadline, and
///   status queries.
///
/// Every call takes `now`, an [`Instant`] from the runtime's monotonic clock. Inputs for
/// connections or jobs the session no longer knows (stale ids) are ignored.
///
/// # Example: a driving loop
///
/// ```
/// use bitshoal_core::session::{Config, Input, Output, Session};
/// use bitshoal_core::time::{Duration, Instant};
///
/// let mut session = Session::new(Config::default());
/// let mut now = Instant::ZERO;
/// // A runtime's loop: wait for IO or the deadline, feed what happened, perform the outputs.
/// for _round in 0..3 {
///     // ... poll sockets and job queues here, calling session.handle_input(now, ...) for each
///     // event, e.g. `Input::Received { conn, data }`, and draining outputs after each call ...
///     if session.poll_timeout().is_some_and(|t| t <= now) {
///         session.handle_timeout(now);
///     }
///     while let Some(output) = session.poll_output() {
///         match output {
///             Output::Connect { conn, addr } => { /* open a socket, remember `conn` */ }
///             Output::Send { conn, head, body } => { /* write head, then body */ }
///             Output::Close { conn } => { /* drop the socket */ }
///             Output::Disk(cmd) => { /* run on a storage worker, then Input::DiskDone */ }
///             Output::Hash(job) => { /* hash on a worker, then Input::Hashed */ }
///             Output::Event(event) => println!("{event:?}"),
///             _ => {}
///         }
///     }
///     now += Duration::from_millis(100);
/// }
/// ```
#[derive(Debug)]
pub struct Session {
    config: Config,
    /// The session's randomness: the choker draws from it, each torrent's picker from a fork.
    rng: Rng,
    peer_id: PeerId,
    torrents: Slots<Torrent>,
    /// 20-byte wire ids (v1 hash, truncated v2 hash) to torrents, for handshake routing.
    by_wire_id: HashMap<[u8; 20], TorrentId>,
    conns: Slots<Conn>,
    jobs: HashMap<RequestId, Job>,
    next_request: u64,
    disk_read_bytes: u64,
    /// Bytes of block writes in flight and of pieces being hashed, and whether requests were
    /// held back by the cap.
    disk_write_bytes: u64,
    write_blocked: bool,
    /// The latest `now` given to `handle_input` / `handle_timeout` (for rates in getters).
    clock: Instant,
    outputs: VecDeque<Output>,
    /// Every torrent's trackers and the announces in flight.
    trackers: trackers::Trackers,
    /// The global upload limit (block reads for peers).
    upload_limit: TokenBucket,
    /// The global download limit (requests to peers).
    download_limit: TokenBucket,
    /// When the choker runs next; `None` while no peer is connected.
    next_choke: Option<Instant>,
    /// When rate-limit tokens return for connections that ran out.
    rate_wakeup: Option<Instant>,
    /// Connections waiting for rate-limit tokens.
    rate_waiters: Vec<ConnId>,
    /// BEP 52 hash requests: budgets per peer, piece layers being fetched.
    hash_transfer: hashes::HashTransfer,
    leaf_hashes: leaf_hashes::LeafHashes,
    v2_suspects: v2_ban::Suspects,
    dht: Option<dht::SessionDht>,
    /// The extension protocol: magnet torrents fetching metadata, per-connection state.
    ext: ext::ExtState,
    /// BEP 14 local service discovery.
    lsd: lsd::SessionLsd,
}

impl Session {
    /// A session with no torrents and no connections.
    pub fn new(config: Config) -> Self {
        let mut rng = Rng::from_seed(config.rng_seed);
        let (config_limit_up, config_limit_down) =
            (config.upload_rate_limit, config.download_rate_limit);
        let peer_id = config.peer_id.unwrap_or_else(|| {
            let mut random = [0u8; 12];
            rng.fill(&mut random);
            PeerId::generate(&PeerId::BITSHOAL_PREFIX, random)
        });
        let tracker_key = rng.next_u32();
        let dht_settings = config.dht.clone();
        Self {
            config,
            rng,
            peer_id,
            torrents: Slots::default(),
            by_wire_id: HashMap::new(),
            conns: Slots::default(),
            jobs: HashMap::new(),
            next_request: 0,
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            write_blocked: false,
            clock: Instant::ZERO,
            outputs: VecDeque::new(),
            upload_limit: engine::bucket(config_limit_up),
            download_limit: engine::bucket(config_limit_down),
            next_choke: None,
            rate_wakeup: None,
            rate_waiters: Vec::new(),
            trackers: trackers::Trackers::new(tracker_key),
            hash_transfer: hashes::HashTransfer::default(),
            leaf_hashes: leaf_hashes::LeafHashes::default(),
            v2_suspects: v2_ban::Suspects::default(),
            dht: dht_settings.map(dht::SessionDht::new),
            ext: ext::ExtState::default(),
            lsd: lsd::SessionLsd::default(),
        }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    fn assert_drained(&self) {
        debug_assert!(
            self.outputs.is_empty(),
            "Session: drain poll_output() until None after every call, before the next one"
        );
    }

    // ---- commands ------------------------------------------------------------------------

    /// Adds a torrent. Its storage is announced with [`DiskCmd::Open`]; with
    /// [`CheckMode::Full`] (or resume data whose files changed) it starts in
    /// [`TorrentState::Checking`] and makes no connections until the check is done.
    pub fn add_torrent(&mut self, now: Instant, add: AddTorrent) -> Result<TorrentId, AddError> {
        self.assert_drained();
        self.dht_start(now);
        let info = add.info;
        let trackers = add.trackers;
        let mut v2_state = v2::V2State::new(&info, &add.piece_layers)?;
        if let (Some(state), CheckMode::Resume { data, .. }) = (v2_state.as_mut(), &add.check) {
            // Layers fetched in an earlier run; damaged ones are fetched again.
            state.adopt_layers(&info, &data.piece_layers);
        }
        let hashes = info.hashes();
        let wire_ids: SmallVec<[[u8; 20]; 2]> =
            [hashes.v1().map(|h| h.0), hashes.v2().map(|h| h.truncated())]
                .into_iter()
                .flatten()
                .collect();
        if let Some(existing) = wire_ids.iter().find_map(|w| self.by_wire_id.get(w)) {
            return Err(AddError::Duplicate(*existing));
        }
        let (have, check) = lifecycle::initial_have(&info, add.check)?;
        let rng = self.rng.fork();
        let mut torrent = Torrent::new(info.clone(), have, rng);
        torrent.v2 = v2_state;
        let id = TorrentId(self.torrents.insert(torrent));
        for w in wire_ids {
            self.by_wire_id.insert(w, id);
        }
        self.outputs
            .push_back(Output::Disk(DiskCmd::Open { torrent: id, info }));
        if let Some(pieces) = check {
            self.start_check(now, id, pieces);
        } else {
            self.note_state(id);
        }
        // Announced once the torrent is active (at once, or after the check).
        self.trackers_start(now, id, &trackers);
        self.dht_torrent_added(now, id);
        Ok(id)
    }

    /// Removes a torrent, closing its connections. Returns whether it existed.
    pub fn remove_torrent(&mut self, now: Instant, torrent: TorrentId) -> bool {
        self.assert_drained();
        if self.remove_magnet(now, torrent) {
            return true;
        }
        if self.torrents.get(torrent.0).is_none() {
            return false;
        }
        self.close_torrent_conns(now, torrent, DisconnectReason::TorrentStopped);
        self.trackers_stop(now, torrent);
        self.hashes_torrent_removed(torrent);
        self.dht_torrent_removed(torrent);
        self.lsd_sync_removed(torrent);
        self.by_wire_id.retain(|_, id| *id != torrent);
        let mut freed_reads = 0;
        let mut freed_writes = 0;
        self.jobs.retain(|_, job| {
            let keep = job.torrent() != torrent;
            match job {
                Job::Read { request, .. } if !keep => freed_reads += u64::from(request.length),
                Job::CheckRead { length, .. } | Job::LeafRead { length, .. } if !keep => {
                    freed_reads += u64::from(*length)
                }
                Job::Write { length, .. } if !keep => freed_writes += u64::from(*length),
                Job::Hash { length, .. } if !keep => freed_writes += *length,
                _ => {}
            }
            keep
        });
        self.disk_read_bytes = self.disk_read_bytes.saturating_sub(freed_reads);
        self.torrents.remove(torrent.0);
        self.outputs
            .push_back(Output::Disk(DiskCmd::Close { torrent }));
        self.write_completed(now, freed_writes);
        true
    }

    /// Opens a connection to a peer of `torrent`; the runtime gets [`Output::Connect`].
    pub fn connect(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        self.assert_drained();
        self.connect_inner(now, torrent, addr)
    }

    /// [`Session::connect`] without the drain check, for the session's own dialling.
    fn connect_inner(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        if self.is_magnet(torrent) {
            return self.magnet_connect(now, torrent, addr);
        }
        let t = self
            .torrents
            .get(torrent.0)
            .ok_or(ConnectError::UnknownTorrent)?;
        if !t.is_active() {
            return Err(ConnectError::TorrentInactive);
        }
        if t.banned.contains(&addr.ip()) {
            return Err(ConnectError::Banned);
        }
        self.dial(now, torrent, addr)
    }

    /// Opens an outgoing connection for a torrent (with or without its metadata) once the
    /// torrent has allowed it: the session-wide connection limit is checked here.
    pub(super) fn dial(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let peer = PeerConn::outgoing(now, addr, self.config.peer);
        let conn = ConnId(self.conns.insert(Conn::new(peer, Some(torrent))));
        self.outputs.push_back(Output::Connect { conn, addr });
        Ok(conn)
    }

    /// Registers a connection the runtime accepted. The torrent is chosen by the peer's
    /// handshake. On an error, the runtime closes the socket.
    ///
    /// (A method rather than an `Input`: the session allocates the id and may refuse.)
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnId, ConnectError> {
        self.assert_drained();
        if self.conns.len() >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let peer = PeerConn::incoming(now, addr, self.config.peer);
        Ok(ConnId(self.conns.insert(Conn::new(peer, None))))
    }

    /// Closes a connection. Returns whether it existed.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) -> bool {
        self.assert_drained();
        if self.conns.get(conn.0).is_none() {
            return false;
        }
        self.close_conn(now, conn, DisconnectReason::TorrentStopped, true);
        true
    }

    // ---- getters -------------------------------------------------------------------------

    /// A snapshot of a torrent, or `None` for an unknown id.
    pub fn torrent_status(&self, torrent: TorrentId) -> Option<TorrentStatus> {
        let Some(t) = self.torrents.get(torrent.0) else {
            return self.magnet_status(torrent);
        };
        let (download_rate, upload_rate) = self.torrent_rates(t);
        Some(TorrentStatus {
            hashes: t.info.hashes(),
            pieces_have: t.have.count(),
            pieces_total: t.have.len(),
            left: t.left(),
            downloaded: t.downloaded,
            uploaded: t.uploaded,
            peers: t.peers.len(),
            finished: t.finished,
            state: t.state(),
            download_rate,
            upload_rate,
            pieces_verified: t.pieces_verified,
            pieces_failed: t.pieces_failed,
        })
    }

    /// The pieces of a torrent we have verified and stored (resume data).
    pub fn have(&self, torrent: TorrentId) -> Option<&Bitfield> {
        self.torrents.get(torrent.0).map(|t| &t.have)
    }

    /// A snapshot of the connections of a torrent that completed the handshake.
    pub fn peers(&self, now: Instant, torrent: TorrentId) -> Vec<PeerInfo> {
        let Some(t) = self.torrents.get(torrent.0) else {
            return Vec::new();
        };
        t.peers
            .iter()
            .filter_map(|&conn| {
                let c = self.conns.get(conn.0)?;
                let p = &c.peer;
                Some(PeerInfo {
                    conn,
                    addr: p.addr(),
                    peer_id: p.remote()?.peer_id,
                    outgoing: p.is_outgoing(),
                    am_choking: p.is_choking_peer(),
                    am_interested: p.is_interested(),
                    peer_choking: p.peer_is_choking(),
                    peer_interested: p.peer_is_interested(),
                    snubbed: p.is_snubbed(),
                    pieces: p.peer_has().map_or(0, Bitfield::count),
                    download_rate: p.download_rate(now),
                    upload_rate: p.upload_rate(now),
                    requests_outstanding: p.outstanding_count(),
                    downloaded: p.downloaded_total(),
                    uploaded: p.uploaded_total(),
                })
            })
            .collect()
    }

    /// The number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The earliest instant at which [`Session::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .iter()
            .filter_map(|(_, c)| c.peer.next_deadline())
            .chain(self.next_choke)
            .chain(self.rate_wakeup)
            .chain(self.trackers.deadline())
            .chain(self.dht.as_ref().and_then(dht::SessionDht::deadline))
            .chain(self.ext_deadline())
            .chain(self.lsd_deadline())
            .min()
    }

    /// The next thing for the runtime to do; call until `None` after every other call.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---- inputs --------------------------------------------------------------------------

    /// Feeds one thing that happened.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.assert_drained();
        self.clock = self.clock.max(now);
        self.dht_start(now);
        match input {
            Input::Connected { conn } => {
                let ours = self.conn_handshake(conn);
                if let (Some(c), Some(ours)) = (self.conns.get_mut(conn.0), ours) {
                    c.peer.on_connected(now, &ours);
                    self.after_activity(now, conn);
                }
            }
            Input::ConnectFailed { conn } => {
                if self.conns.get(conn.0).is_some() {
                    self.close_conn(now, conn, DisconnectReason::ConnectFailed, false);
                }
            }
            Input::Received { conn, data } => {
                if let Some(c) = self.conns.get_mut(conn.0) {
                    c.peer.on_received(now, data);
                    self.drive(now, conn);
                }
            }
            Input::Flushed { conn } => {
                if let Some(c) = self.conns.get_mut(conn.0) {
                    c.unflushed = 0;
                    self.after_activity(now, conn);
                }
            }
            Input::Closed { conn } => {
                if self.conns.get(conn.0).is_some() {
                    self.close_conn(now, conn, DisconnectReason::ClosedByRemote, false);
                }
            }
            Input::DiskDone { req, result } => self.on_disk_done(now, req, result),
            Input::Hashed { req, digest } => self.on_hashed(now, req, digest),
            Input::HttpDone { req, result } => self.tracker_http_done(now, req, result),
            Input::Datagram { from, data } => {
                if !self.dht_datagram(now, from, &data) {
                    self.tracker_datagram(now, from, &data);
                }
            }
            Input::LsdDatagram { from, data } => self.lsd_datagram(now, from, &data),
            Input::Resolved { req, result } => {
                if !self.dht_resolved(now, req, &result) {
                    self.tracker_resolved(now, req, result);
                }
            }
        }
        self.trackers_after_input(now);
    }

    /// A fresh id for a job the session asks the runtime to run.
    fn next_request_id(&mut self) -> RequestId {
        let req = RequestId(self.next_request);
        self.next_request += 1;
        req
    }

    /// Sets the TCP port we listen on, once the runtime has bound it (port 0 binds pick one):
    /// announced to trackers and in the BEP 10 handshake.
    pub fn set_listen_port(&mut self, port: u16) {
        self.config.listen_port = Some(port);
    }

    /// Runs every timer due at `now`. Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.assert_drained();
        self.clock = self.clock.max(now);
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| ConnId(k))
            .collect();
        for conn in due {
            if let Some(c) = self.conns.get_mut(conn.0) {
                c.peer.handle_timeout(now);
                self.after_activity(now, conn);
            }
        }
        if self.next_choke.is_some_and(|t| t <= now) {
            self.choke_tick(now);
        }
        if self.rate_wakeup.is_some_and(|t| t <= now) {
            self.rate_wake(now);
        }
        self.trackers_timeout(now);
        self.ext_timeout(now);
        self.trackers_after_input(now);
        self.dht_timeout(now);
        self.lsd_timeout(now);
    }

    // ---- connections ---------------------------------------------------------------------

    fn reserved(&self) -> Reserved {
        let ours = Reserved::EXTENSION_PROTOCOL.union(Reserved::FAST);
        if self.dht.is_some() {
            ours.union(Reserved::DHT) // BEP 5: we will send a `port` message.
        } else {
            ours
        }
    }

    /// Our handshake for a connection whose torrent is known.
    fn conn_handshake(&self, conn: ConnId) -> Option<Handshake> {
        let torrent = self.conns.get(conn.0)?.torrent?;
        let t = match self.torrents.get(torrent.0) {
            Some(t) => t,
            // A magnet torrent: no files yet, so its own hashes only.
            None => {
                let hashes = self.torrent_hashes(torrent)?;
                let reserved = self.magnet_reserved(&hashes);
                return Some(Handshake::new(reserved, &hashes, self.peer_id));
            }
        };
        Some(self.handshake_for(t, None))
    }

    fn extended_handshake(&self) -> ExtendedHandshake {
        ExtendedHandshake {
            client: Some(self.config.client_name.clone()),
            listen_port: self.config.listen_port,
            request_queue: Some(self.config.peer.max_inbound_requests),
            ..ExtendedHandshake::default()
        }
    }

    /// Processes what a connection received: the handshake, then messages.
    fn drive(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        if c.peer.is_awaiting_handshake() {
            match c.peer.take_handshake() {
                Ok(None) => {}
                Ok(Some(theirs)) => {
                    if let Err(reason) = self.route_handshake(now, conn, &theirs) {
                        self.close_conn(now, conn, reason, true);
                        return;
                    }
                }
                Err(reason) => {
                    self.close_conn(now, conn, reason, true);
                    return;
                }
            }
        }
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        if c.peer.is_pending() {
            // A magnet torrent's connection, before the metadata (BEP 9).
            let _ = c.peer.process_messages_pending();
        } else if c.peer.is_established() {
            if let Some(t) = c.torrent.and_then(|t| self.torrents.get(t.0)) {
                // Errors close the peer; after_activity reports it.
                let _ = c.peer.process_messages(now, t.info.layout(), &t.have);
            }
        }
        self.after_activity(now, conn);
    }

    /// Accepts or refuses the peer's handshake, and establishes the connection.
    fn route_handshake(
        &mut self,
        now: Instant,
        conn: ConnId,
        theirs: &Handshake,
    ) -> Result<(), DisconnectReason> {
        let known = self.conns.get(conn.0).and_then(|c| c.torrent);
        let torrent = match known {
            Some(t) => t,
            None => *self
                .by_wire_id
                .get(&theirs.info_hash)
                .ok_or(DisconnectReason::UnknownTorrent)?,
        };
        if self.is_magnet(torrent) {
            return self.route_magnet_handshake(now, conn, torrent, theirs);
        }
        let t = self
            .torrents
            .get(torrent.0)
            .filter(|t| t.is_active())
            .ok_or(DisconnectReason::TorrentStopped)?;
        let ip = self.conns.get(conn.0).map(|c| c.peer.addr().ip());
        if self.is_banned(torrent, ip, &theirs.peer_id) {
            return Err(DisconnectReason::Banned);
        }
        if theirs.names(&t.info.hashes()).is_none() {
            return Err(DisconnectReason::InfoHashMismatch);
        }
        if theirs.peer_id == self.peer_id {
            return Err(DisconnectReason::SelfConnection);
        }
        let duplicate = t.peers.iter().copied().find(|p| {
            self.conns
                .get(p.0)
                .and_then(|c| c.peer.remote())
                .is_some_and(|r| r.peer_id == theirs.peer_id)
        });
        if let Some(existing) = duplicate {
            // Both sides dialled at once (BEP 55): keep the one both agree on.
            if !self.keep_new_duplicate(conn, existing, &theirs.peer_id) {
                return Err(DisconnectReason::DuplicatePeer);
            }
            self.close_conn(now, existing, DisconnectReason::DuplicatePeer, true);
        }
        let t = self
            .torrents
            .get(torrent.0)
            .ok_or(DisconnectReason::TorrentStopped)?;
        let ours = self.handshake_for(t, Some(theirs));
        let extended = self.extended_handshake_for(torrent, conn);
        let have = self.superseed_announced(torrent, &t.have); // BEP 16
        let info_hash = t.info.hashes().wire_id();
        let piece_count = have.len();
        let c = self
            .conns
            .get_mut(conn.0)
            .expect("route_handshake is called for a live connection");
        c.torrent = Some(torrent);
        c.peer.establish(now, theirs, &ours, Some(&extended), &have);
        // BEP 6: grant the canonical allowed-fast pieces we have, so a new peer can start.
        if c.peer.fast() {
            if let SocketAddr::V4(v4) = c.peer.addr() {
                let set: Vec<u32> =
                    allowed_fast_set(*v4.ip(), &info_hash, piece_count, ALLOWED_FAST_COUNT)
                        .into_iter()
                        .filter(|&p| have.get(p))
                        .collect();
                c.peer.allow_fast(&set);
            }
        }
        let addr = c.peer.addr();
        self.next_choke.get_or_insert(now + engine::CHOKE_INTERVAL);
        self.torrents
            .get_mut(torrent.0)
            .expect("checked above")
            .peers
            .push(conn);
        self.hashes_conn_established(conn, theirs);
        self.ext_conn_established(now, torrent, conn);
        self.outputs.push_back(Output::Event(Event::PeerConnected {
            torrent,
            conn,
            addr,
            peer_id: theirs.peer_id,
        }));
        self.dht_established(conn);
        Ok(())
    }

    /// After anything happened on a connection: act on its events, keep its requests and reads
    /// going, hand its sends to the runtime, and clean up if it closed.
    fn after_activity(&mut self, now: Instant, conn: ConnId) {
        self.handle_peer_events(now, conn);
        self.pump(now, conn);
        self.flush(now, conn);
        #[cfg(debug_assertions)]
        if let Some(c) = self.conns.get(conn.0) {
            c.peer.debug_assert_invariants();
        }
        self.close_if_both_seeding(conn);
        let closed = self
            .conns
            .get(conn.0)
            .and_then(|c| c.peer.closed_reason().cloned());
        if let Some(reason) = closed {
            self.close_conn(now, conn, reason, true);
        }
    }

    fn handle_peer_events(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(conn.0) else {
                return;
            };
            let Some(event) = c.peer.poll_event() else {
                return;
            };
            let Some(torrent) = c.torrent else {
                continue;
            };
            match event {
                PeerEvent::BitfieldReplaced { old, new } => {
                    if let Some(t) = self.torrents.get_mut(torrent.0) {
                        t.picker.replace_peer_pieces(&old, &new);
                    }
                    self.superseed_peer_has(now, torrent, conn, None, Some(&new));
                }
                PeerEvent::Have { piece, now_full } => {
                    if let Some(t) = self.torrents.get_mut(torrent.0) {
                        t.picker.peer_has(piece, now_full);
                    }
                    self.superseed_peer_has(now, torrent, conn, Some(piece), None);
                }
                PeerEvent::CanRequest | PeerEvent::WantsBlock(_) => {}
                PeerEvent::InterestChanged => self.rechoke(now, torrent),
                PeerEvent::Block { request, data } => {
                    self.on_block(now, torrent, conn, request, data);
                }
                PeerEvent::RequestsDropped(requests) => {
                    if let Some(t) = self.torrents.get_mut(torrent.0) {
                        for r in requests {
                            t.picker.request_dropped(conn, r);
                        }
                    }
                }
                PeerEvent::Extended { id, payload } => {
                    self.on_extended(now, torrent, conn, id, &payload);
                }
                PeerEvent::ExtendedHandshake => self.on_extended_handshake(now, torrent, conn),
                PeerEvent::DhtPort(port) => self.dht_port_message(now, conn, port),
                PeerEvent::HashRequest(r) => self.on_hash_request(now, torrent, conn, r),
                PeerEvent::Hashes { request, hashes } => {
                    self.on_hashes(now, torrent, conn, request, &hashes);
                }
                PeerEvent::HashReject(r) => self.on_hash_reject(torrent, conn, r),
            }
        }
    }

    /// Keeps a connection busy: interest, requests to the peer, disk reads for its requests.
    fn pump(&mut self, now: Instant, conn: ConnId) {
        self.pump_hashes(now, conn);
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        let Some(t) = c.torrent.and_then(|t| self.torrents.get_mut(t.0)) else {
            return;
        };
        let torrent = c.torrent.expect("checked above");
        if !c.peer.is_established() || !t.is_active() {
            return;
        }
        let interested = c.peer.peer_has().is_some_and(|p| t.wants_from(p)) && t.can_verify();
        c.peer.set_interested(interested);
        let mut wait_until: Option<Instant> = None;
        // Back-pressure: no new requests while the write queue is over its cap.
        let writes_over = self.disk_write_bytes >= self.config.max_disk_write_bytes;
        self.write_blocked |= writes_over && interested;
        if interested && !c.peer.fully_choked() && !writes_over {
            // Blocks still on their way count against the same cap as the writes and hashes
            // they become: without this, a deep pipeline (up to `MAX_PIPELINE` blocks) lands
            // in memory on top of a full write queue whenever the disk or hasher lags.
            let room =
                (self.config.max_disk_write_bytes - self.disk_write_bytes) / u64::from(BLOCK_LEN);
            let room = usize::try_from(room)
                .unwrap_or(usize::MAX)
                .saturating_sub(c.peer.outstanding_count());
            let wanted = c.peer.request_slots(now) as usize;
            // Held back by the cap: a completed write asks again (`write_completed`).
            self.write_blocked |= wanted > room;
            let slots = wanted.min(room);
            // Download limit: one block's tokens per request.
            let granted =
                engine::grant_blocks(now, &mut self.download_limit, &mut t.download_limit, slots);
            if slots > 0 && granted == 0 {
                wait_until = Some(engine::tokens_at(
                    now,
                    &self.download_limit,
                    &t.download_limit,
                ));
            }
            if granted > 0 {
                let mut picked = Vec::new();
                if let Some(pieces) = c.peer.pieces() {
                    t.picker.pick(conn, &pieces, granted, &mut picked);
                }
                let unused = (granted - picked.len()) as u64 * u64::from(BLOCK_LEN);
                engine::give_back(&mut self.download_limit, &mut t.download_limit, unused);
                c.peer.request(now, &picked);
            }
        }
        // Reads for the peer's requests, within the disk, socket and upload budgets.
        if self.disk_read_bytes < self.config.max_disk_read_bytes
            && c.unflushed < self.config.max_unflushed_bytes
            && c.peer.has_blocks_to_read()
        {
            let budget = (self.config.max_disk_read_bytes - self.disk_read_bytes)
                .min(self.config.max_unflushed_bytes - c.unflushed);
            let want = (budget / u64::from(BLOCK_LEN)).max(1) as usize;
            let granted =
                engine::grant_blocks(now, &mut self.upload_limit, &mut t.upload_limit, want);
            if granted == 0 {
                let at = engine::tokens_at(now, &self.upload_limit, &t.upload_limit);
                wait_until = Some(wait_until.map_or(at, |w| w.min(at)));
            }
            let mut reads = Vec::new();
            c.peer.take_blocks_to_read(granted, &mut reads);
            let used: u64 = reads.iter().map(|r| u64::from(r.length)).sum();
            engine::give_back(
                &mut self.upload_limit,
                &mut t.upload_limit,
                granted as u64 * u64::from(BLOCK_LEN) - used,
            );
            self.issue_reads(torrent, conn, reads);
        }
        if let Some(at) = wait_until {
            self.wait_for_tokens(conn, at);
        }
    }

    /// Issues disk reads for blocks a peer requested.
    fn issue_reads(&mut self, torrent: TorrentId, conn: ConnId, reads: Vec<BlockRequest>) {
        let (Some(c), Some(t)) = (self.conns.get_mut(conn.0), self.torrents.get(torrent.0)) else {
            return;
        };
        for request in reads {
            let layout = t.info.layout();
            let Some(block) = layout.request(request.index, request.begin, request.length) else {
                c.peer.refuse_block(request);
                continue;
            };
            let req = RequestId(self.next_request);
            self.next_request += 1;
            self.disk_read_bytes += u64::from(request.length);
            self.jobs.insert(
                req,
                Job::Read {
                    torrent,
                    conn,
                    request,
                },
            );
            self.outputs.push_back(Output::Disk(DiskCmd::Read {
                req,
                torrent,
                spans: layout.block_spans(block).collect(),
                length: request.length,
            }));
        }
    }

    /// Moves a connection's queued sends into the outputs.
    fn flush(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        while let Some((head, body)) = c.peer.poll_send(now) {
            c.unflushed += (head.len() + body.as_ref().map_or(0, |b| b.len())) as u64;
            self.outputs.push_back(Output::Send { conn, head, body });
        }
    }

    /// Removes a connection: returns its requests and its pieces' availability, reports it,
    /// and tells the runtime to close the socket when `tell_runtime`.
    fn close_conn(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: DisconnectReason,
        tell_runtime: bool,
    ) {
        let Some(mut c) = self.conns.remove(conn.0) else {
            return;
        };
        self.hashes_conn_closed(conn);
        c.peer.close(reason.clone());
        let reason = c.peer.closed_reason().cloned().unwrap_or(reason);
        if reason == DisconnectReason::SelfConnection && c.peer.is_outgoing() {
            // A tracker listed us: never dial that address again.
            self.trackers.remember_self(c.peer.addr());
        }
        if let Some(t) = c.torrent.and_then(|t| self.torrents.get_mut(t.0)) {
            // Events not yet applied still change what the picker counts for this peer; apply
            // them so that taking the peer's final set away leaves the counts exact.
            while let Some(event) = c.peer.poll_event() {
                match event {
                    PeerEvent::RequestsDropped(requests) => {
                        for r in requests {
                            t.picker.request_dropped(conn, r);
                        }
                    }
                    PeerEvent::BitfieldReplaced { old, new } => {
                        t.picker.replace_peer_pieces(&old, &new);
                    }
                    PeerEvent::Have { piece, now_full } => t.picker.peer_has(piece, now_full),
                    _ => {}
                }
            }
            if let Some(has) = c.peer.peer_has() {
                t.picker.peer_left(has);
            }
            // Smart ban: blocks it sent of single-peer (exclusive) pieces go back to the pool.
            for (piece, block) in t.picker.peer_gone(conn) {
                if let Some(buf) = t.pieces.get_mut(&piece) {
                    buf.forget(block as usize);
                }
            }
            t.peers.retain(|p| *p != conn);
        }
        if tell_runtime {
            self.outputs.push_back(Output::Close { conn });
        }
        let failed_dial = (reason == DisconnectReason::ConnectFailed).then(|| c.peer.addr());
        self.outputs
            .push_back(Output::Event(Event::PeerDisconnected {
                torrent: c.torrent,
                conn,
                addr: c.peer.addr(),
                reason,
            }));
        self.rate_waiters.retain(|w| *w != conn);
        self.ext_conn_closed(now, c.torrent, conn, failed_dial);
        if let Some(torrent) = c.torrent {
            self.rechoke(now, torrent);
            // Its upload slot may have gone to a peer that now needs reads and requests.
            self.pump_torrent(now, torrent);
        }
    }
}
