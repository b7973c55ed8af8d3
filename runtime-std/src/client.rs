//! What both runtimes' clients are built from and what they report.
//!
//! A client is a session plus the IO it needs: sockets, a [`DiskPool`](crate::workers::DiskPool)
//! and a [`HashPool`](crate::workers::HashPool). The blocking runtime's
//! [`BlockingClient`](crate::blocking::BlockingClient) and the mio runtime's `Client` take the
//! same [`ClientConfig`], report the same [`ClientEvent`]s and implement the same
//! [`TorrentClient`] trait, so an application (or a test) can switch runtimes without touching
//! anything else. What they share in adding torrents and saving resume files lives here
//! ([`TorrentRoots`]), not in each of them.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, RequestId, TorrentId};
use bitshoal_core::metainfo::Info;
use bitshoal_core::resume::ResumeData;
use bitshoal_core::session::{
    AddError, AddMagnet, AddTorrent, CheckMode, CommandError, Config, ConnectError, Event,
    HttpReply, Input, Session, StorageError, TorrentStatus,
};
use bitshoal_core::time::Instant;

use crate::http::{HttpDone, HttpOptions, HttpPool, HttpRequest};
use crate::resolve::{ResolveRequest, Resolved, Resolver};
use crate::storage::{Storage, StorageConfig};
use crate::workers::{Completion, Sink};

/// How to build a client, on either runtime.
///
/// `ClientConfig::default()` draws the session's `rng_seed` from OS entropy (see
/// [`random_seed`]), so every client gets its own peer id and tracker key; tests and
/// simulations that need reproducible runs set a fixed seed.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The session's configuration.
    pub session: Config,
    /// Where to accept peers; `None` for no listener.
    pub listen: Option<SocketAddr>,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Disk worker threads (0: the storage default).
    pub disk_threads: usize,
    /// Hashing threads (0: one per core).
    pub hash_threads: usize,
    /// Which addresses the client may contact by itself (peers it dials, datagrams it sends);
    /// `None`: any. A refused dial fails at once (`Input::ConnectFailed`), a refused datagram
    /// is dropped. The `bitshoal` binary uses it to keep a loopback client on loopback.
    pub reach: Option<Reach>,
}

/// A rule for which IP addresses a client may contact (see [`ClientConfig::reach`]).
#[derive(Clone)]
pub struct Reach(Arc<dyn Fn(IpAddr) -> bool + Send + Sync>);

impl Reach {
    /// Addresses for which `allow` returns true.
    pub fn new(allow: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(allow))
    }

    /// Loopback addresses (127.0.0.0/8, ::1, and IPv4-mapped loopback) and the addresses in
    /// `named`.
    pub fn loopback_and(named: Vec<IpAddr>) -> Self {
        Self::new(move |ip| is_loopback(ip) || named.contains(&ip))
    }

    /// Whether the rule lets the client contact `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        (self.0)(ip)
    }
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reach(..)")
    }
}

/// Whether `reach` (none: anything) lets a client contact `addr`.
pub fn reachable(reach: Option<&Reach>, addr: SocketAddr) -> bool {
    reach.is_none_or(|r| r.allows(addr.ip()))
}

/// Whether `ip` is a loopback address, IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`) included.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: Config {
                rng_seed: random_seed(),
                ..Config::default()
            },
            listen: None,
            storage: StorageConfig::default(),
            disk_threads: 0,
            hash_threads: 0,
            reach: None,
        }
    }
}

/// A fresh random seed for a session's RNG, from OS entropy.
///
/// std's `RandomState` keys its hasher from the operating system's random source (once per
/// thread, then varied per instance); hashing a process-wide counter and the wall clock with a
/// fresh one gives distinct, unpredictable seeds without another dependency.
pub fn random_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((call, time, std::process::id()))
}

/// A client's tracker-facing IO services: the session's `Output::Http` GETs on an
/// [`HttpPool`] and its `Output::Resolve` lookups on a [`Resolver`], each started on first use
/// (a client without trackers starts no threads for them). Their results reach the client's
/// [`Sink`] as [`Completion::Input`]s (`Input::HttpDone`, `Input::Resolved`), ready for the
/// session.
#[derive(Debug)]
pub struct NetServices {
    sink: Sink,
    http: Option<HttpPool>,
    resolver: Option<Resolver>,
}

impl NetServices {
    /// Services delivering to `sink`.
    pub fn new(sink: Sink) -> Self {
        let inputs = Sink::new(move |completion| match completion {
            Completion::Http(done) => sink.deliver(Completion::Input(http_input(done))),
            Completion::Resolved(done) => sink.deliver(Completion::Input(resolved_input(done))),
            other => sink.deliver(other),
        });
        Self {
            sink: inputs,
            http: None,
            resolver: None,
        }
    }

    /// Performs `Output::Http { req, url, max_body }`: a GET of `url` whose body may not exceed
    /// `max_body` bytes.
    pub fn http(&mut self, req: RequestId, url: String, max_body: usize) {
        let sink = &self.sink;
        let pool = self
            .http
            .get_or_insert_with(|| HttpPool::new(0, sink.clone()));
        pool.submit(HttpRequest {
            id: req.get(),
            url,
            options: HttpOptions {
                max_body,
                ..HttpOptions::default()
            },
        });
    }

    /// Performs `Output::Resolve { req, host, port }`.
    pub fn resolve(&mut self, req: RequestId, host: String, port: u16) {
        let sink = &self.sink;
        let resolver = self
            .resolver
            .get_or_insert_with(|| Resolver::new(0, sink.clone()));
        resolver.resolve(ResolveRequest {
            id: req.get(),
            host,
            port,
        });
    }
}

/// The session's `Input::HttpDone` for a finished GET: the status and body, or the error's
/// `Display` (which never shows a passkey: see [`RedactedUrl`](crate::http::RedactedUrl)).
fn http_input(done: HttpDone) -> Input {
    Input::HttpDone {
        req: RequestId::from_raw(done.id),
        result: done
            .result
            .map(|r| HttpReply {
                status: r.status,
                body: r.body.into(),
            })
            .map_err(|e| e.to_string()),
    }
}

/// The session's `Input::Resolved` for a finished lookup.
fn resolved_input(done: Resolved) -> Input {
    Input::Resolved {
        req: RequestId::from_raw(done.id),
        result: done.result.map_err(|e| e.to_string()),
    }
}

/// What happened, for the application: the session's events, plus storage syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An event from the session.
    Session(Event),
    /// A finished torrent's files are created (empty ones too) and synced to disk, or failed to.
    Synced {
        /// The torrent.
        torrent: TorrentId,
        /// Whether all went well.
        result: Result<(), StorageError>,
    },
}

/// What a client needs to add a torrent without its content in hand: the [`AddTorrent`] for
/// `info` with `have` trusted as verified and stored (`None`: nothing downloaded yet).
pub fn add_trusting(info: Arc<Info>, have: Option<Bitfield>) -> AddTorrent {
    let have = have.unwrap_or_else(|| Bitfield::new(info.layout().piece_count()));
    AddTorrent::new(info).with_check(CheckMode::Trust(have))
}

/// The [`AddTorrent`] for `info` whose content lives (or will live) under `download_dir`, with
/// what is there learnt from its resume file in `state_dir` (see [`crate::resume::check_mode`]):
/// unchanged files are trusted, changed ones checked piece by piece; without a resume file,
/// existing files are checked.
pub fn add_resuming(info: Arc<Info>, download_dir: &Path, state_dir: &Path) -> AddTorrent {
    let check = crate::resume::check_mode(download_dir, &info, state_dir);
    AddTorrent::new(info).with_check(check)
}

/// The torrents a client has added, each with its download directory and files: what both
/// runtimes' clients do alike when adding a torrent and saving its resume file.
#[derive(Debug, Default)]
pub struct TorrentRoots {
    roots: HashMap<TorrentId, (PathBuf, Arc<Info>)>,
    /// Download directories of magnet torrents still fetching their metadata (BEP 9).
    magnets: HashMap<TorrentId, PathBuf>,
}

impl TorrentRoots {
    /// Adds a magnet link to `session` at `now` (see `Session::add_magnet`), its content to go
    /// under `download_dir` once the metadata is in; names that directory to `storage` for the
    /// torrent's later `DiskCmd::Open`. The caller drains and performs the outputs afterwards.
    pub fn add_magnet(
        &mut self,
        session: &mut Session,
        now: Instant,
        storage: &Storage,
        add: AddMagnet,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let id = session.add_magnet(now, add)?;
        storage.register(id, download_dir.clone());
        self.magnets.insert(id, download_dir);
        Ok(id)
    }

    /// Notes what an event changes: a magnet torrent's files are known once its metadata
    /// arrived (for resume data).
    pub fn on_event(&mut self, session: &Session, event: &Event) {
        if let Event::MetadataReceived { torrent, .. } = event {
            let info = session.torrent_info(*torrent);
            if let (Some(dir), Some(info)) = (self.magnets.remove(torrent), info) {
                self.roots.insert(*torrent, (dir, info));
            }
        }
    }

    /// Adds `add` to `session` at `now`, its content under `download_dir` as the torrent lays
    /// it out, and names that directory to `storage` before the torrent's `DiskCmd::Open` is
    /// prepared. The caller drains and performs the session's outputs afterwards.
    pub fn add(
        &mut self,
        session: &mut Session,
        now: Instant,
        storage: &Storage,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let info = Arc::clone(&add.info);
        let id = session.add_torrent(now, add)?;
        storage.register(id, download_dir.clone());
        self.roots.insert(id, (download_dir, info));
        Ok(id)
    }

    /// The download directory of `torrent`.
    pub fn root(&self, torrent: TorrentId) -> Option<&Path> {
        self.roots.get(&torrent).map(|(root, _)| root.as_path())
    }

    /// `torrent`'s resume data now: the session's verified (and unverified) pieces and the
    /// files' sizes and times as they are on disk. Holding `session` keeps it from issuing
    /// writes between the two.
    pub fn resume_data(&self, session: &Session, torrent: TorrentId) -> Option<ResumeData> {
        let (root, info) = self.roots.get(&torrent)?;
        let (files, read_at) = crate::resume::read_files(root, info);
        session.resume_data(torrent, files, read_at)
    }

    /// Writes `torrent`'s resume file to `state_dir` (atomically; see [`crate::resume`]).
    pub fn save_resume(
        &self,
        session: &Session,
        torrent: TorrentId,
        state_dir: &Path,
    ) -> io::Result<PathBuf> {
        let data = self
            .resume_data(session, torrent)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown torrent"))?;
        crate::resume::save(state_dir, &data)
    }
}

/// What both runtimes' clients do, for code that runs on either (the `bitshoal` binary's
/// `--runtime` switch, tests that run a scenario on both).
///
/// The methods with a default body are built from the others; each client also has them as
/// inherent methods of the same names, so callers that know their runtime need no import.
pub trait TorrentClient: Sized {
    /// A client with no torrents, listening if configured.
    fn new(config: ClientConfig) -> io::Result<Self>;

    /// The address peers can connect to, if listening.
    fn local_addr(&self) -> Option<SocketAddr>;

    /// The address of the client's UDP socket (UDP trackers, the DHT), if it has one.
    fn udp_addr(&self) -> Option<SocketAddr>;

    /// Adds a torrent described by `add` whose content lives (or will live) under
    /// `download_dir` as the torrent lays it out.
    fn add_torrent_with(
        &mut self,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError>;

    /// Runs a session command at the client's clock (`f` gets the session and `now`) and
    /// performs what it produced. Every command not given its own method goes through here:
    /// `client.command(|s, now| s.set_sequential(now, torrent, true))`.
    fn command<R>(&mut self, f: impl FnOnce(&mut Session, Instant) -> R) -> R;

    /// Adds a torrent from a magnet link (BEP 9): its metadata is fetched from peers first
    /// (`Event::MetadataReceived`), then its content goes under `download_dir`.
    fn add_magnet(&mut self, add: AddMagnet, download_dir: PathBuf) -> Result<TorrentId, AddError>;

    /// The session, for queries (`torrent_status`, `have`, `file_progress`...).
    fn view(&mut self) -> &Session;

    /// Writes the torrent's resume file to `state_dir` (see [`crate::resume`]). Safe at any
    /// moment: a kill right after loses no verified piece. Writes landing after the save make
    /// the next start check the pieces of the files they changed.
    fn save_resume(&mut self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf>;

    /// Creates the torrent's empty files and syncs every file written since the last sync, on
    /// a disk worker; [`ClientEvent::Synced`] reports the result. Done by itself on
    /// [`Event::TorrentFinished`]; call it for a torrent that is complete without finishing
    /// (all there after a check or a resume).
    fn sync_files(&mut self, torrent: TorrentId);

    /// Runs the client once (waiting at most `max_wait`) and returns what happened.
    fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>>;

    /// Adds a torrent, learning what is already under `download_dir` from its resume file in
    /// `state_dir` ([`add_resuming`]).
    fn add_torrent_resuming(
        &mut self,
        info: Arc<Info>,
        download_dir: PathBuf,
        state_dir: &Path,
    ) -> Result<TorrentId, AddError> {
        let add = add_resuming(info, &download_dir, state_dir);
        self.add_torrent_with(add, download_dir)
    }

    /// Opens a connection to a peer of `torrent`.
    fn connect(&mut self, torrent: TorrentId, addr: SocketAddr) -> Result<ConnId, ConnectError> {
        self.command(|s, now| s.connect(now, torrent, addr))
    }

    /// Pauses a torrent (see `Session::pause`).
    fn pause(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        self.command(|s, now| s.pause(now, torrent))
    }

    /// A snapshot of a torrent.
    fn status(&mut self, torrent: TorrentId) -> Option<TorrentStatus> {
        self.view().torrent_status(torrent)
    }
}

#[cfg(test)]
mod tests {
    use bitshoal_core::session::Session;

    use super::*;

    #[test]
    fn loopback_reach_allows_loopback_and_named_addresses_only() {
        let named: IpAddr = "192.0.2.7".parse().unwrap();
        let reach = Reach::loopback_and(vec![named]);
        for ok in [
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "::ffff:127.0.0.1",
            "192.0.2.7",
        ] {
            assert!(reach.allows(ok.parse().unwrap()), "{ok}");
        }
        for refused in [
            "192.0.2.8",
            "10.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "0.0.0.0",
        ] {
            assert!(!reach.allows(refused.parse().unwrap()), "{refused}");
        }
        let addr: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        assert!(reachable(None, addr));
        assert!(!reachable(Some(&reach), addr));
    }

    #[test]
    fn default_configs_get_distinct_seeds_and_so_distinct_peer_ids() {
        let a = ClientConfig::default();
        let b = ClientConfig::default();
        assert_ne!(a.session.rng_seed, b.session.rng_seed);
        assert_ne!(
            Session::new(a.session).peer_id(),
            Session::new(b.session).peer_id()
        );
    }
}
