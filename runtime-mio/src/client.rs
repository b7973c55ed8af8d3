//! A whole client: the event loop, the storage and hashing workers, and the glue between them.
//!
//! [`Client`] is what the `bitshoal` binary runs: it owns an [`EventLoop`] (and so the session),
//! a [`DiskPool`] executing the session's disk commands against real files, and a [`HashPool`].
//! Worker completions come back through the loop's channel and wake it; storage's own
//! completions (a torrent's files synced) come back through a side channel as
//! [`ClientEvent::Synced`].
//!
//! [`ClientConfig`] and [`ClientEvent`] live in `bitshoal-std` (re-exported here), shared with
//! the blocking runtime's `BlockingClient`, which has the same shape.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, TorrentId};
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{
    AddError, AddMagnet, AddTorrent, CommandError, ConnectError, DiskCmd, Event, HashJob, Session,
    TorrentStatus,
};
use bitshoal_core::time::Instant;
use bitshoal_std::client::{add_trusting, TorrentRoots};
pub use bitshoal_std::client::{ClientConfig, ClientEvent, TorrentClient};
use bitshoal_std::storage::Storage;
use bitshoal_std::workers::{Completion, DiskPool, HashPool, Sink};

use crate::event_loop::{EventLoop, JobSink};

struct Pools {
    disk: DiskPool,
    hash: HashPool,
}

impl JobSink for Pools {
    fn disk(&mut self, cmd: DiskCmd) {
        self.disk.submit(cmd);
    }

    fn hash(&mut self, job: HashJob) {
        self.hash.submit(job);
    }
}

/// A BitTorrent client on real sockets and files.
pub struct Client {
    event_loop: EventLoop,
    pools: Pools,
    side: mpsc::Receiver<Completion>,
    /// Each torrent's download directory and files, for resume data.
    roots: TorrentRoots,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("event_loop", &self.event_loop)
            .field("torrents", &self.roots)
            .finish()
    }
}

impl Client {
    /// A client with no torrents, listening if configured.
    pub fn new(config: ClientConfig) -> io::Result<Self> {
        let mut event_loop = EventLoop::new(Session::new(config.session), config.listen)?;
        event_loop.set_reach(config.reach);
        let to_loop = event_loop.completion_sender();
        let (side_tx, side) = mpsc::channel();
        let sink = Sink::new(move |completion| match completion {
            Completion::Input(input) => {
                to_loop.send(input);
            }
            other => {
                if side_tx.send(other).is_ok() {
                    to_loop.wake();
                }
            }
        });
        let storage = Storage::new(config.storage);
        let pools = Pools {
            disk: DiskPool::new(storage, config.disk_threads, sink.clone()),
            hash: HashPool::new(config.hash_threads, sink),
        };
        Ok(Self {
            event_loop,
            pools,
            side,
            roots: TorrentRoots::default(),
        })
    }

    /// The address peers can connect to, if listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.event_loop.local_addr()
    }

    /// The address of the client's UDP socket (UDP trackers).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.event_loop.udp_addr()
    }

    /// Adds a torrent whose content lives (or will live) under `download_dir` as the torrent
    /// lays it out (`download_dir/<name>` for a multi-file torrent). `have` are pieces known to
    /// be there and verified already. For trackers, use [`Self::add_torrent_with`].
    pub fn add_torrent(
        &mut self,
        info: Arc<Info>,
        download_dir: PathBuf,
        have: Option<Bitfield>,
    ) -> Result<TorrentId, AddError> {
        self.add_torrent_with(add_trusting(info, have), download_dir)
    }

    /// Adds a torrent, learning what is already under `download_dir` from its resume file in
    /// `state_dir` (see `bitshoal_std::resume`): unchanged files are trusted, changed ones
    /// checked piece by piece; without a resume file, existing files are checked.
    pub fn add_torrent_resuming(
        &mut self,
        info: Arc<Info>,
        download_dir: PathBuf,
        state_dir: &Path,
    ) -> Result<TorrentId, AddError> {
        TorrentClient::add_torrent_resuming(self, info, download_dir, state_dir)
    }

    /// Adds a torrent described by `add` (its trackers, how to check what is on disk) whose
    /// content lives (or will live) under `download_dir` as the torrent lays it out.
    pub fn add_torrent_with(
        &mut self,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let now = self.event_loop.now();
        let id = self.roots.add(
            self.event_loop.session(),
            now,
            self.pools.disk.storage(),
            add,
            download_dir,
        )?;
        self.event_loop.dispatch(&mut self.pools);
        Ok(id)
    }

    /// Adds a torrent from a magnet link (BEP 9; see `Session::add_magnet`): its metadata is
    /// fetched from peers first ([`Event::MetadataReceived`]), then its content goes under
    /// `download_dir` as for [`Self::add_torrent_with`].
    pub fn add_magnet(
        &mut self,
        add: AddMagnet,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let now = self.event_loop.now();
        let id = self.roots.add_magnet(
            self.event_loop.session(),
            now,
            self.pools.disk.storage(),
            add,
            download_dir,
        )?;
        self.event_loop.dispatch(&mut self.pools);
        Ok(id)
    }

    /// Runs a session command at the loop's clock and performs what it produced (see
    /// [`TorrentClient::command`]).
    pub fn command<R>(&mut self, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        let now = self.event_loop.now();
        let r = f(self.event_loop.session(), now);
        self.event_loop.dispatch(&mut self.pools);
        r
    }

    /// Writes the torrent's resume file to `state_dir` (atomically; see
    /// `bitshoal_std::resume`). Best done when no write is in flight (after
    /// [`pause`](Self::pause), or when finished): a write landing after the save changes a
    /// file's time, and the next start then checks the files again.
    pub fn save_resume(&mut self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf> {
        self.roots
            .save_resume(self.event_loop.session(), torrent, state_dir)
    }

    /// Syncs a torrent's files (see [`TorrentClient::sync_files`]).
    pub fn sync_files(&mut self, torrent: TorrentId) {
        self.pools.disk.finish(torrent);
    }

    /// Pauses a torrent (see `Session::pause`).
    pub fn pause(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        self.command(|s, now| s.pause(now, torrent))
    }

    /// Resumes a paused or failed torrent (see `Session::resume`); connect to peers again
    /// afterwards.
    pub fn resume(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        self.command(|s, now| s.resume(now, torrent))
    }

    /// Asks the torrent's trackers for the swarm's counts (see `Session::scrape`); the answers
    /// come as `Event::ScrapeResult` / `Event::ScrapeFailed`.
    pub fn scrape(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        let now = self.event_loop.now();
        let r = self.event_loop.session().scrape(now, torrent);
        self.event_loop.dispatch(&mut self.pools);
        r
    }

    /// Opens a connection to a peer of `torrent`.
    pub fn connect(
        &mut self,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        self.command(|s, now| s.connect(now, torrent, addr))
    }

    /// A snapshot of a torrent.
    pub fn status(&mut self, torrent: TorrentId) -> Option<TorrentStatus> {
        self.event_loop.session().torrent_status(torrent)
    }

    /// The session, for queries.
    pub fn session(&mut self) -> &mut Session {
        self.event_loop.session()
    }

    /// Runs the loop once (waiting at most `max_wait`) and returns what happened. A finished
    /// torrent's files are synced automatically; [`ClientEvent::Synced`] says when.
    pub fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>> {
        self.event_loop.turn(&mut self.pools, max_wait)?;
        let mut out = Vec::new();
        for event in self.event_loop.take_events() {
            if let Event::TorrentFinished { torrent } = event {
                self.pools.disk.finish(torrent);
            }
            self.roots.on_event(self.event_loop.session(), &event);
            out.push(ClientEvent::Session(event));
        }
        while let Ok(completion) = self.side.try_recv() {
            if let Completion::Finished { torrent, result } = completion {
                out.push(ClientEvent::Synced { torrent, result });
            }
        }
        Ok(out)
    }
}

impl TorrentClient for Client {
    fn new(config: ClientConfig) -> io::Result<Self> {
        Self::new(config)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr()
    }

    fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr()
    }

    fn add_torrent_with(
        &mut self,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        self.add_torrent_with(add, download_dir)
    }

    fn command<R>(&mut self, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        self.command(f)
    }

    fn add_magnet(&mut self, add: AddMagnet, download_dir: PathBuf) -> Result<TorrentId, AddError> {
        self.add_magnet(add, download_dir)
    }

    fn view(&mut self) -> &Session {
        self.event_loop.session()
    }

    fn save_resume(&mut self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf> {
        self.save_resume(torrent, state_dir)
    }

    fn sync_files(&mut self, torrent: TorrentId) {
        self.sync_files(torrent);
    }

    fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>> {
        self.turn(max_wait)
    }
}
