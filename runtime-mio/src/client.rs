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

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, TorrentId};
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{
    AddError, AddTorrent, CheckMode, CommandError, ConnectError, DiskCmd, Event, HashJob, Session,
    TorrentStatus,
};
pub use bitshoal_std::client::{ClientConfig, ClientEvent};
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
    roots: HashMap<TorrentId, (PathBuf, Arc<Info>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("event_loop", &self.event_loop)
            .field("torrents", &self.roots.len())
            .finish()
    }
}

impl Client {
    /// A client with no torrents, listening if configured.
    pub fn new(config: ClientConfig) -> io::Result<Self> {
        let event_loop = EventLoop::new(Session::new(config.session), config.listen)?;
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
            roots: HashMap::new(),
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
        let check = match have {
            Some(have) => CheckMode::Trust(have),
            None => CheckMode::Trust(Bitfield::new(info.layout().piece_count())),
        };
        self.add_torrent_with(AddTorrent::new(info).with_check(check), download_dir)
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
        let check = bitshoal_std::resume::check_mode(&download_dir, &info, state_dir);
        self.add_torrent_with(AddTorrent::new(info).with_check(check), download_dir)
    }

    /// Adds a torrent described by `add` (its trackers, how to check what is on disk) whose
    /// content lives (or will live) under `download_dir` as the torrent lays it out.
    pub fn add_torrent_with(
        &mut self,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let info = Arc::clone(&add.info);
        let now = self.event_loop.now();
        let id = self.event_loop.session().add_torrent(now, add)?;
        // Storage must know the directory before it sees the torrent's `Open`.
        self.pools.disk.storage().register(id, download_dir.clone());
        self.roots.insert(id, (download_dir, info));
        self.event_loop.dispatch(&mut self.pools);
        Ok(id)
    }

    /// Writes the torrent's resume file to `state_dir` (atomically; see
    /// `bitshoal_std::resume`). Best done when no write is in flight (after
    /// [`pause`](Self::pause), or when finished): a write landing after the save changes a
    /// file's time, and the next start then checks the files again.
    pub fn save_resume(&mut self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf> {
        let (root, info) = self
            .roots
            .get(&torrent)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown torrent"))?;
        let files = bitshoal_std::resume::file_stats(root, info);
        let data = self
            .event_loop
            .session()
            .resume_data(torrent, files)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown torrent"))?;
        bitshoal_std::resume::save(state_dir, &data)
    }

    /// Pauses a torrent (see `Session::pause`).
    pub fn pause(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        let now = self.event_loop.now();
        let r = self.event_loop.session().pause(now, torrent);
        self.event_loop.dispatch(&mut self.pools);
        r
    }

    /// Resumes a paused or failed torrent (see `Session::resume`); connect to peers again
    /// afterwards.
    pub fn resume(&mut self, torrent: TorrentId) -> Result<(), CommandError> {
        let now = self.event_loop.now();
        let r = self.event_loop.session().resume(now, torrent);
        self.event_loop.dispatch(&mut self.pools);
        r
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
        let now = self.event_loop.now();
        let conn = self.event_loop.session().connect(now, torrent, addr)?;
        self.event_loop.dispatch(&mut self.pools);
        Ok(conn)
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
