//! What goes into a [`Session`](super::Session) and what comes out of it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::id::{ConnId, PeerId, RequestId, TorrentId};
use crate::metainfo::{FileSpan, Info};
use crate::peer::DisconnectReason;

use super::TorrentState;

/// Something that happened in the world, for [`Session::handle_input`](super::Session::handle_input).
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// An outgoing connection asked for with [`Output::Connect`] is established.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// An outgoing connection could not be established.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes arrived on a connection. Hand over the buffer they were read into: piece payloads
    /// are cut out of it without copying.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes, in order.
        data: BytesMut,
    },
    /// Everything sent on the connection so far has been handed to the operating system.
    Flushed {
        /// The connection.
        conn: ConnId,
    },
    /// The remote side closed the connection, or it failed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A disk job finished.
    DiskDone {
        /// The job's id from [`DiskCmd`].
        req: RequestId,
        /// What it produced.
        result: Result<DiskDone, StorageError>,
    },
    /// A hash job finished.
    Hashed {
        /// The job's id from [`HashJob`].
        req: RequestId,
        /// The digest.
        digest: Digest,
    },
    /// An HTTP GET asked for with [`Output::Http`] finished: the response (any status), or a
    /// transport failure described in words (connect, TLS, timeout, size limit...).
    HttpDone {
        /// The request's id.
        req: RequestId,
        /// The response, or what went wrong.
        result: Result<HttpReply, String>,
    },
    /// A UDP datagram arrived on the session's UDP socket (UDP trackers; later DHT and uTP).
    Datagram {
        /// The sender.
        from: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// A datagram arrived on the local service discovery socket (BEP 14 multicast; see
    /// [`Config::lsd`](super::Config::lsd)).
    LsdDatagram {
        /// The sender.
        from: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// A host name lookup asked for with [`Output::Resolve`] finished.
    Resolved {
        /// The lookup's id.
        req: RequestId,
        /// The addresses, or what went wrong.
        result: Result<Vec<SocketAddr>, String>,
    },
}

/// An HTTP response, as much of it as the session needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The body (the runtime bounds it; see `Output::Http::max_body`).
    pub body: Bytes,
}

/// Something for the runtime to do, from [`Session::poll_output`](super::Session::poll_output).
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "outputs are the session's only way to act; drain and perform every one"]
pub enum Output {
    /// Open a TCP connection to `addr`; report [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect {
        /// The id to report back with.
        conn: ConnId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Send `head` and then `body` (a block read from disk), in order, with one vectored write
    /// if possible.
    Send {
        /// The connection.
        conn: ConnId,
        /// Message headers and small messages.
        head: Bytes,
        /// A block of piece data that follows `head`.
        body: Option<Bytes>,
    },
    /// Close the connection; no input for it will be accepted afterwards.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Run a disk job; report [`Input::DiskDone`].
    Disk(DiskCmd),
    /// Run a hash job; report [`Input::Hashed`].
    Hash(HashJob),
    /// Perform an HTTP(S) GET of `url` (a tracker announce or scrape), following redirects to
    /// http/https only, reading at most `max_body` bytes of body; report [`Input::HttpDone`].
    Http {
        /// The request's id.
        req: RequestId,
        /// The URL.
        url: String,
        /// The most body bytes to accept (more is a failure, not a truncation).
        max_body: usize,
    },
    /// Send a datagram from the session's UDP socket.
    SendDatagram {
        /// The destination.
        to: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// Send a BEP 14 announce to a multicast group from the local service discovery socket
    /// (on every interface of the group's family the runtime joined; drop it if none).
    SendLsd {
        /// The group (`239.192.152.143:6771` or `[ff15::efc0:988f]:6771`).
        to: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// Look up a host name; report [`Input::Resolved`].
    Resolve {
        /// The lookup's id.
        req: RequestId,
        /// The host name.
        host: String,
        /// The port to put in the addresses.
        port: u16,
    },
    /// Tell the application.
    Event(Event),
}

/// A storage job. The core computes the file spans; the runtime never re-derives geometry.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiskCmd {
    /// A torrent's files are known: prepare its storage (its save location is the runtime's
    /// business, keyed by the torrent id). No completion is reported.
    Open {
        /// The torrent.
        torrent: TorrentId,
        /// Its files and geometry.
        info: Arc<Info>,
    },
    /// Write `data` across `spans` (in order; pad spans are skipped, never written).
    Write {
        /// The job id.
        req: RequestId,
        /// The torrent.
        torrent: TorrentId,
        /// Where the bytes go, in order; their lengths add up to `data.len()`.
        spans: SmallVec<[FileSpan; 2]>,
        /// The bytes.
        data: Bytes,
    },
    /// Read `length` bytes across `spans` (pad spans read as zeros) and report
    /// [`DiskDone::Read`].
    Read {
        /// The job id.
        req: RequestId,
        /// The torrent.
        torrent: TorrentId,
        /// Where the bytes come from, in order.
        spans: SmallVec<[FileSpan; 2]>,
        /// The total length.
        length: u32,
    },
    /// The torrent is gone: flush and close its files. No completion is reported.
    Close {
        /// The torrent.
        torrent: TorrentId,
    },
}

/// What a finished disk job produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiskDone {
    /// The write is on disk (or in the OS cache).
    Written,
    /// The bytes read.
    Read(Bytes),
}

/// A storage failure, reported by the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    /// The file index in the torrent, if one file is to blame.
    pub file: Option<usize>,
    /// What went wrong, as the runtime describes it.
    pub message: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.file {
            Some(file) => write!(f, "storage error in file {file}: {}", self.message),
            None => write!(f, "storage error: {}", self.message),
        }
    }
}

impl std::error::Error for StorageError {}

/// A hashing job: the digest of the concatenation of `data`.
#[derive(Debug)]
pub struct HashJob {
    /// The job id.
    pub req: RequestId,
    /// Which digest.
    pub algorithm: HashAlgorithm,
    /// The bytes, as the blocks they arrived in (no copy was made to join them).
    pub data: Vec<Bytes>,
}

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1, for v1 pieces (BEP 3).
    Sha1,
    /// BEP 52: the SHA-256 of each 16 KiB block of the first `len` bytes (the last block may be
    /// shorter); bytes past `len` are alignment padding and are not hashed. Reported as
    /// [`Digest::Sha256Blocks`]; [`merkle::block_hashes`](crate::merkle::block_hashes) computes it.
    Sha256Blocks {
        /// How many bytes of the data are file data.
        len: u32,
    },
    /// A hybrid torrent's piece: SHA-1 of all the data and the SHA-256 blocks of its first
    /// `len` bytes, in one pass over the data. Reported as [`Digest::Sha1AndSha256Blocks`].
    Sha1AndSha256Blocks {
        /// How many bytes of the data are file data.
        len: u32,
    },
}

/// A finished digest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Digest {
    /// A SHA-1 digest.
    Sha1([u8; 20]),
    /// The block hashes of [`HashAlgorithm::Sha256Blocks`], one per 16 KiB block, in order.
    Sha256Blocks(Vec<[u8; 32]>),
    /// Both digests of [`HashAlgorithm::Sha1AndSha256Blocks`].
    Sha1AndSha256Blocks {
        /// The SHA-1 of all the data.
        sha1: [u8; 20],
        /// The block hashes of the file data.
        blocks: Vec<[u8; 32]>,
    },
}

impl HashJob {
    /// Computes the job's digest on the calling thread: the reference implementation runtimes
    /// may call from their hash workers (it uses the CPU's SHA instructions where there are
    /// any). Never call it on the session's thread for real data: hashing is what workers are
    /// for.
    pub fn compute(&self) -> Digest {
        use sha1::Digest as _;
        let sha1 = || {
            let mut h = sha1::Sha1::new();
            for chunk in &self.data {
                h.update(chunk);
            }
            <[u8; 20]>::from(h.finalize())
        };
        match self.algorithm {
            HashAlgorithm::Sha1 => Digest::Sha1(sha1()),
            HashAlgorithm::Sha256Blocks { len } => {
                Digest::Sha256Blocks(crate::merkle::block_hashes(&self.data, len as usize))
            }
            HashAlgorithm::Sha1AndSha256Blocks { len } => Digest::Sha1AndSha256Blocks {
                sha1: sha1(),
                blocks: crate::merkle::block_hashes(&self.data, len as usize),
            },
        }
    }
}

/// What the application sees: the session's public narrative.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer completed the handshake on a torrent.
    PeerConnected {
        /// The torrent.
        torrent: TorrentId,
        /// The connection.
        conn: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// The peer's id (BEP 20 conventions say which client it is: `wire::client_name`).
        peer_id: PeerId,
    },
    /// A connection ended.
    PeerDisconnected {
        /// The torrent, if the handshake got that far.
        torrent: Option<TorrentId>,
        /// The connection.
        conn: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// Why.
        reason: DisconnectReason,
    },
    /// A piece passed its hash check and is stored.
    PieceVerified {
        /// The torrent.
        torrent: TorrentId,
        /// The piece index.
        piece: u32,
    },
    /// A piece failed its hash check and will be downloaded again.
    HashFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The piece index.
        piece: u32,
    },
    /// Every wanted piece is verified and stored.
    TorrentFinished {
        /// The torrent.
        torrent: TorrentId,
    },
    /// A tracker answered an announce.
    TrackerAnnounced {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker's announce URL.
        url: String,
        /// How many peers it returned.
        peers: usize,
        /// Seeders it reported, if any.
        seeders: Option<u32>,
        /// Leechers it reported, if any.
        leechers: Option<u32>,
    },
    /// A tracker announce failed (the tier policy backs off and tries the next tracker).
    TrackerFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker's announce URL.
        url: String,
        /// What went wrong.
        error: crate::tracker::TrackerError,
    },
    /// A tracker sent a `warning message` (BEP 3) with its answer.
    TrackerWarning {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker's announce URL.
        url: String,
        /// The warning.
        message: String,
    },
    /// Storage failed; the torrent stopped in [`TorrentState::Error`] (reported once).
    StorageFailed {
        /// The torrent.
        torrent: TorrentId,
        /// What the runtime reported.
        error: StorageError,
    },
    /// A peer sent data that failed verification (smart ban): its connections to the torrent
    /// are closed with [`DisconnectReason::Banned`] and its address is refused from now on.
    PeerBanned {
        /// The torrent.
        torrent: TorrentId,
        /// The banned address.
        ip: IpAddr,
        /// The peer's id, if it was connected when banned.
        peer_id: Option<PeerId>,
    },
    /// The torrent moved to another kind of state (checking progress is reported with
    /// [`Event::CheckingProgress`] instead).
    StateChanged {
        /// The torrent.
        torrent: TorrentId,
        /// The new state.
        state: TorrentState,
    },
    /// A hybrid torrent's piece matched one of its two hashes and not the other: the torrent's
    /// v1 and v2 views describe different data (BEP 52 "Upgrade Path"). The torrent stopped in
    /// [`TorrentState::Error`].
    HybridConflict {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: u32,
        /// Whether the v1 SHA-1 matched (then the v2 tree did not), or the other way round.
        v1_ok: bool,
    },
    /// Every piece layer of a v2 or hybrid torrent is known: those added without them (from a
    /// magnet link) fetched them from peers with BEP 52 hash requests.
    PieceLayersComplete {
        /// The torrent.
        torrent: TorrentId,
    },
    /// A magnet link's `info` dictionary arrived and matched the info-hash (BEP 9): the
    /// torrent's files are known now ([`Session::torrent_info`](super::Session::torrent_info)),
    /// its storage is opened ([`DiskCmd::Open`]) and it downloads as any other. Save `info` (the
    /// exact bencoded dictionary) to make a `.torrent` of it.
    MetadataReceived {
        /// The torrent.
        torrent: TorrentId,
        /// The verified, bencoded `info` dictionary.
        info: Bytes,
    },
    /// Checking the files on disk progressed (reported at each whole percent, and at the end).
    CheckingProgress {
        /// The torrent.
        torrent: TorrentId,
        /// Pieces checked.
        checked: u32,
        /// Pieces to check (all of them, or those resume data left in doubt).
        total: u32,
    },
    /// A tracker answered a scrape ([`Session::scrape`](super::Session::scrape); BEP 48,
    /// BEP 15).
    ScrapeResult {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker's announce URL.
        url: String,
        /// Seeders it counts.
        complete: u32,
        /// Leechers it counts.
        incomplete: u32,
        /// Completed downloads it has seen.
        downloaded: u32,
    },
    /// A scrape of one tracker failed.
    ScrapeFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker's announce URL.
        url: String,
        /// What went wrong.
        error: crate::tracker::TrackerError,
    },
    /// A tracker reported our address as the world sees it (BEP 24 `external ip`), and it
    /// differs from what the session knew ([`Session::external_ip`](super::Session::external_ip)).
    ExternalIpChanged {
        /// Our address.
        ip: IpAddr,
        /// The tracker that reported it.
        url: String,
    },
    /// The DHT's bootstrap lookup finished (BEP 5; [`Config::dht`](super::Config::dht)).
    DhtBootstrapped {
        /// Nodes in the routing tables now.
        nodes: usize,
    },
    /// A DHT lookup (`get_peers`, then `announce_peer`) of one of a torrent's info-hashes
    /// finished (BEP 5); the peers it found were dialled as a tracker's are.
    DhtLookupDone {
        /// The torrent (a magnet link's too, while it fetches the metadata).
        torrent: TorrentId,
        /// The info-hash looked up (a hybrid torrent's v2 one truncated, BEP 52).
        info_hash: crate::id::InfoHashV1,
        /// Distinct peers found.
        peers: usize,
        /// Nodes that answered.
        responses: u32,
    },
    /// A BEP 44 get ([`Session::dht_get_immutable`](super::Session::dht_get_immutable),
    /// [`Session::dht_get_mutable`](super::Session::dht_get_mutable)) finished.
    DhtItem {
        /// What the call returned.
        lookup: crate::dht::LookupId,
        /// The item's target.
        target: crate::dht::NodeId,
        /// The item (a mutable one's newest verified version), if any node had it.
        item: Option<crate::dht::Item>,
    },
    /// A BEP 44 put ([`Session::dht_put`](super::Session::dht_put), or its hourly
    /// republish) finished.
    DhtPutDone {
        /// What the call returned (or the republish's own lookup).
        lookup: crate::dht::LookupId,
        /// The item's target.
        target: crate::dht::NodeId,
        /// Nodes that stored it.
        acked: usize,
    },
    /// A BEP 46 lookup ([`Session::dht_resolve_torrent`](super::Session::dht_resolve_torrent))
    /// finished.
    DhtTorrentResolved {
        /// What the call returned.
        lookup: crate::dht::LookupId,
        /// The info-hash the newest valid item points at, if one was found.
        info_hash: Option<crate::id::InfoHashV1>,
        /// That item's sequence number.
        seq: Option<i64>,
    },
}
