//! The blocking runtime: the session driven by blocking sockets and plain threads.
//!
//! [`BlockingClient`] has the same shape as the mio runtime's `Client` (the same
//! [`ClientConfig`], the same [`ClientEvent`]s, `add_torrent`, `connect`, `turn`), so either
//! can run a torrent; it needs no event loop, no readiness API and no `unsafe`.
//!
//! # Threads
//!
//! The thread that calls [`BlockingClient::turn`] owns the [`Session`] and is the only one that
//! touches it. It waits on one [`mpsc`] channel, at most until the session's deadline. Every
//! other thread only sends it messages (see the `net` module): an acceptor thread per listener,
//! a reader and a writer thread per connection, a short-lived thread per outgoing connect, a
//! reader on the UDP socket (UDP trackers; bound beside the listener, see the `udp` module),
//! the storage and hashing workers of [`DiskPool`] and [`HashPool`] through their [`Sink`], and
//! the HTTP and DNS workers of [`NetServices`] (tracker announces).
//!
//! Each message becomes one session call, after which every output is drained and performed;
//! inputs that performing produces (a connect thread that could not start) are fed only after
//! the drain, as the session's contract requires. [`Output::Close`] shuts the socket down in
//! both directions, which ends its reader and writer; their threads are joined once finished,
//! and all of them when the client is dropped.
//!
//! # Flushes
//!
//! Each `Output::Send` gets a number on its connection. The writer reports the number of the
//! last send it wrote whenever its queue runs empty, and the session hears
//! [`Input::Flushed`] only if no send was queued since: the session's count of unflushed bytes
//! (its back-pressure on reading blocks for a peer) stays exact although the writer runs on
//! another thread.
//!
//! # Bounds
//!
//! Channels are unbounded, but what flows into them is not: a reader stops reading while 1 MiB
//! it received waits unhandled (the peer's bytes back up into the socket, as they would in an
//! event loop that does not read), accepted sockets beyond 64 waiting are closed at once, and
//! the session bounds everything else (connections, outstanding disk and hash jobs, unflushed
//! sends).

mod lsd;
mod net;
mod udp;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, TorrentId};
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{
    AddError, AddMagnet, AddTorrent, CommandError, ConnectError, Event, Input, Output, Session,
    TorrentStatus,
};
use bitshoal_core::time::Instant;

use crate::client::{
    add_trusting, reachable, ClientConfig, ClientEvent, NetServices, Reach, TorrentClient,
    TorrentRoots,
};
use crate::storage::Storage;
use crate::workers::{Completion, DiskPool, HashPool, Sink};

use net::{Acceptor, ConnThreads, Msg, Outgoing};
use udp::Udp;

/// The most messages handled in one [`BlockingClient::turn`], so timers still run under a flood.
const MAX_MESSAGES_PER_TURN: usize = 1024;

/// A BitTorrent client on blocking sockets, threads and real files.
///
/// Create it, add torrents, then call [`turn`](Self::turn) in a loop on the thread that owns
/// it. Dropping it closes every connection and joins the threads it started (a connect still
/// in progress is left to time out on its own thread, holding nothing but its socket).
pub struct BlockingClient {
    session: Session,
    epoch: std::time::Instant,
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
    acceptor: Option<Acceptor>,
    /// The UDP socket (UDP trackers) and its reader.
    udp: Udp,
    /// The BEP 14 multicast sockets and their readers, when `Config::lsd` is set.
    lsd: Option<lsd::Lsd>,
    /// HTTP GETs and name lookups for trackers.
    net: NetServices,
    conns: HashMap<ConnId, Connection>,
    /// Outgoing connections whose connect thread has not reported yet.
    connecting: HashMap<ConnId, JoinHandle<()>>,
    /// Connect threads of connections the session closed before they reported; dropped (not
    /// joined) once finished.
    abandoned: Vec<JoinHandle<()>>,
    /// Reader and writer threads of closed connections, joined once finished.
    retired: Vec<JoinHandle<()>>,
    disk: DiskPool,
    hash: HashPool,
    /// Inputs found while performing outputs, fed once the outputs are drained.
    deferred: VecDeque<Input>,
    /// Events since the last [`BlockingClient::turn`] returned.
    events: Vec<ClientEvent>,
    /// How long a connect may take: the session's handshake timeout.
    connect_timeout: Duration,
    /// Each torrent's download directory and files, for resume data.
    torrents: TorrentRoots,
    /// Which addresses may be dialled and sent datagrams ([`ClientConfig::reach`]).
    reach: Option<Reach>,
}

/// An established connection.
#[derive(Debug)]
struct Connection {
    threads: ConnThreads,
    /// The number of the last send queued.
    sent: u64,
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient")
            .field("listening", &self.local_addr())
            .field("connections", &self.conns.len())
            .field("connecting", &self.connecting.len())
            .finish_non_exhaustive()
    }
}

impl BlockingClient {
    /// A client with no torrents, listening if configured.
    pub fn new(config: ClientConfig) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let acceptor = match config.listen {
            Some(addr) => Some(Acceptor::spawn(TcpListener::bind(addr)?, tx.clone())?),
            None => None,
        };
        let connect_timeout = config
            .session
            .peer
            .handshake_timeout
            .max(Duration::from_millis(1));
        let lsd = if config.session.lsd {
            Some(lsd::Lsd::open(&tx)?)
        } else {
            None
        };
        let mut session = Session::new(config.session);
        if let Some(acceptor) = &acceptor {
            session.set_listen_port(acceptor.local_addr().port());
        }
        let udp = Udp::bind(acceptor.as_ref().map(Acceptor::local_addr), tx.clone())?;
        let to_session = tx.clone();
        let sink = Sink::new(move |completion| {
            // After the client is dropped, completions have nowhere to go.
            let _ = to_session.send(Msg::Completion(completion));
        });
        Ok(Self {
            session,
            epoch: std::time::Instant::now(),
            rx,
            tx,
            acceptor,
            udp,
            lsd,
            net: NetServices::new(sink.clone()),
            conns: HashMap::new(),
            connecting: HashMap::new(),
            abandoned: Vec::new(),
            retired: Vec::new(),
            disk: DiskPool::new(
                Storage::new(config.storage),
                config.disk_threads,
                sink.clone(),
            ),
            hash: HashPool::new(config.hash_threads, sink),
            deferred: VecDeque::new(),
            events: Vec::new(),
            connect_timeout,
            torrents: TorrentRoots::default(),
            reach: config.reach,
        })
    }

    /// The address peers can connect to, if listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.acceptor.as_ref().map(Acceptor::local_addr)
    }

    /// The address of the client's UDP socket (UDP trackers).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        Some(self.udp.local_addr())
    }

    /// The session's clock: microseconds since the client was created.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
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
    /// `state_dir` (see [`crate::resume`]): unchanged files are trusted, changed ones
    /// checked piece by piece; without a resume file, existing files are checked.
    pub fn add_torrent_resuming(
        &mut self,
        info: Arc<Info>,
        download_dir: PathBuf,
        state_dir: &Path,
    ) -> Result<TorrentId, AddError> {
        TorrentClient::add_torrent_resuming(self, info, download_dir, state_dir)
    }

    /// Adds a torrent from a magnet link (BEP 9; see `Session::add_magnet`): its metadata is
    /// fetched from peers first ([`Event::MetadataReceived`]), then its content goes under
    /// `download_dir` as for [`Self::add_torrent_with`].
    pub fn add_magnet(
        &mut self,
        add: AddMagnet,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let now = self.now();
        let id = self.torrents.add_magnet(
            &mut self.session,
            now,
            self.disk.storage(),
            add,
            download_dir,
        )?;
        self.dispatch();
        Ok(id)
    }

    /// Adds a torrent described by `add` (its trackers, how to check what is on disk) whose
    /// content lives (or will live) under `download_dir` as the torrent lays it out.
    pub fn add_torrent_with(
        &mut self,
        add: AddTorrent,
        download_dir: PathBuf,
    ) -> Result<TorrentId, AddError> {
        let now = self.now();
        let id = self.torrents.add(
            &mut self.session,
            now,
            self.disk.storage(),
            add,
            download_dir,
        )?;
        self.dispatch();
        Ok(id)
    }

    /// Runs a session command at the client's clock and performs what it produced (see
    /// [`TorrentClient::command`]).
    pub fn command<R>(&mut self, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        let now = self.now();
        let r = f(&mut self.session, now);
        self.dispatch();
        r
    }

    /// Writes the torrent's resume file to `state_dir` (atomically; see [`crate::resume`]).
    /// Best done when no write is in flight (after [`pause`](Self::pause), or when finished):
    /// a write landing after the save changes a file's time, and the next start then checks
    /// the files again.
    pub fn save_resume(&self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf> {
        self.torrents.save_resume(&self.session, torrent, state_dir)
    }

    /// Syncs a torrent's files (see [`TorrentClient::sync_files`]).
    pub fn sync_files(&mut self, torrent: TorrentId) {
        self.disk.finish(torrent);
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
        let r = self.session.scrape(self.now(), torrent);
        self.dispatch();
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
    pub fn status(&self, torrent: TorrentId) -> Option<TorrentStatus> {
        self.session.torrent_status(torrent)
    }

    /// The session, for queries (commands go through the client's methods, which perform
    /// what they produce).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Waits for something to happen (at most `max_wait`, less if the session has a timer due
    /// sooner), feeds it to the session, performs the session's outputs, and returns the
    /// events since the last call. A finished torrent's files are synced automatically;
    /// [`ClientEvent::Synced`] says when.
    ///
    /// Nothing here fails at present: the `Result` keeps the shape of the mio runtime's
    /// `Client::turn`, whose poll can.
    pub fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>> {
        let wait = if self.events.is_empty() {
            self.wait_time(max_wait)
        } else {
            Duration::ZERO
        };
        match self.rx.recv_timeout(wait) {
            Ok(msg) => {
                self.handle(msg);
                for _ in 1..MAX_MESSAGES_PER_TURN {
                    let Ok(msg) = self.rx.try_recv() else {
                        break;
                    };
                    self.handle(msg);
                }
            }
            // The client holds a sender itself, so the channel never disconnects.
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|d| d <= now) {
            self.session.handle_timeout(now);
            self.dispatch();
        }
        self.reap();
        Ok(std::mem::take(&mut self.events))
    }

    /// How long to block: until the session's deadline, at most `max_wait`.
    fn wait_time(&self, max_wait: Duration) -> Duration {
        let now = self.now();
        match self.session.poll_timeout() {
            Some(deadline) if deadline <= now => Duration::ZERO,
            Some(deadline) => (deadline - now).min(max_wait),
            None => max_wait,
        }
    }

    /// Turns one message into (at most) one session call, then performs its outputs.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Accepted { stream, addr } => {
                if let Some(acceptor) = &self.acceptor {
                    acceptor.taken();
                }
                // On a refusal (too many connections) the socket is dropped, closing it.
                if let Ok(conn) = self.session.accept(self.now(), addr) {
                    if !self.attach(conn, stream) {
                        self.deferred.push_back(Input::Closed { conn });
                    }
                }
            }
            Msg::Connected { conn, stream } => {
                // Not connecting any more: the session closed it meanwhile; drop the socket.
                let Some(thread) = self.connecting.remove(&conn) else {
                    return;
                };
                let _ = thread.join(); // it has sent its one message and is returning
                let input = if self.attach(conn, stream) {
                    Input::Connected { conn }
                } else {
                    Input::ConnectFailed { conn }
                };
                self.deferred.push_back(input);
            }
            Msg::ConnectFailed { conn } => {
                let Some(thread) = self.connecting.remove(&conn) else {
                    return;
                };
                let _ = thread.join();
                self.deferred.push_back(Input::ConnectFailed { conn });
            }
            Msg::Received { conn, data } => {
                if let Some(c) = self.conns.get(&conn) {
                    // Handed to the session now, so the reader may go on (its bytes are the
                    // session's to bound from here).
                    c.threads.handled(data.len());
                    self.deferred.push_back(Input::Received { conn, data });
                }
            }
            Msg::Flushed { conn, seq } => {
                if self.conns.get(&conn).is_some_and(|c| c.sent == seq) {
                    self.deferred.push_back(Input::Flushed { conn });
                }
            }
            Msg::Closed { conn } => {
                // Unknown: the session closed it first, or the reader and the writer both
                // reported the end.
                if let Some(c) = self.conns.remove(&conn) {
                    self.retired.extend(c.threads.shutdown());
                    self.deferred.push_back(Input::Closed { conn });
                }
            }
            Msg::Completion(Completion::Input(input)) => self.deferred.push_back(input),
            Msg::Completion(Completion::Finished { torrent, result }) => {
                self.events.push(ClientEvent::Synced { torrent, result });
            }
            Msg::Completion(_) => {}
            Msg::Datagram { from, data } => {
                self.udp.taken();
                self.deferred.push_back(Input::Datagram { from, data });
            }
            Msg::LsdDatagram { from, data } => {
                if let Some(lsd) = &self.lsd {
                    lsd.taken();
                }
                self.deferred.push_back(Input::LsdDatagram { from, data });
            }
        }
        self.dispatch();
    }

    /// Starts a connection's reader and writer; `false` if the threads could not start.
    fn attach(&mut self, conn: ConnId, stream: TcpStream) -> bool {
        match ConnThreads::start(conn, stream, &self.tx) {
            Ok(threads) => {
                self.conns.insert(conn, Connection { threads, sent: 0 });
                true
            }
            Err(_) => false,
        }
    }

    /// Feeds the deferred inputs one by one, draining and performing every output after each
    /// call, until nothing is left.
    fn dispatch(&mut self) {
        loop {
            while let Some(output) = self.session.poll_output() {
                self.perform(output);
            }
            let Some(input) = self.deferred.pop_front() else {
                return;
            };
            let now = self.now();
            self.session.handle_input(now, input);
        }
    }

    fn perform(&mut self, output: Output) {
        match output {
            Output::Connect { conn, addr } if !reachable(self.reach.as_ref(), addr) => {
                self.deferred.push_back(Input::ConnectFailed { conn });
            }
            Output::SendDatagram { to, .. } if !reachable(self.reach.as_ref(), to) => {}
            Output::Connect { conn, addr } => {
                match net::connect(conn, addr, self.connect_timeout, self.tx.clone()) {
                    Ok(thread) => {
                        self.connecting.insert(conn, thread);
                    }
                    Err(_) => self.deferred.push_back(Input::ConnectFailed { conn }),
                }
            }
            Output::Send { conn, head, body } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.sent += 1;
                    c.threads.send(Outgoing {
                        seq: c.sent,
                        head,
                        body,
                    });
                }
            }
            Output::Close { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.retired.extend(c.threads.shutdown());
                }
                if let Some(thread) = self.connecting.remove(&conn) {
                    self.abandoned.push(thread);
                }
            }
            Output::Disk(cmd) => self.disk.submit(cmd),
            Output::Hash(job) => self.hash.submit(job),
            Output::Event(event) => {
                if let Event::TorrentFinished { torrent } = event {
                    self.disk.finish(torrent);
                }
                self.torrents.on_event(&self.session, &event);
                self.events.push(ClientEvent::Session(event));
            }
            Output::Http { req, url, max_body } => self.net.http(req, url, max_body),
            Output::Resolve { req, host, port } => self.net.resolve(req, host, port),
            Output::SendDatagram { to, data } => self.udp.send_to(&data, to),
            Output::SendLsd { to, data } => {
                if let Some(lsd) = &self.lsd {
                    if reachable(self.reach.as_ref(), to) {
                        lsd.send(to, &data);
                    }
                }
            }
            _ => {}
        }
    }

    /// Joins the threads of closed connections that have ended; forgets finished connect
    /// threads nobody waits for.
    fn reap(&mut self) {
        for thread in extract_finished(&mut self.retired) {
            let _ = thread.join();
        }
        drop(extract_finished(&mut self.abandoned));
    }
}

/// Removes and returns the handles of threads that have ended.
fn extract_finished(threads: &mut Vec<JoinHandle<()>>) -> Vec<JoinHandle<()>> {
    let (done, running) = std::mem::take(threads)
        .into_iter()
        .partition(JoinHandle::is_finished);
    *threads = running;
    done
}

impl TorrentClient for BlockingClient {
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
        &self.session
    }

    fn save_resume(&mut self, torrent: TorrentId, state_dir: &Path) -> io::Result<PathBuf> {
        Self::save_resume(self, torrent, state_dir)
    }

    fn sync_files(&mut self, torrent: TorrentId) {
        self.sync_files(torrent);
    }

    fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>> {
        self.turn(max_wait)
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        // Stops accepting first, so no new connection arrives while the others close.
        self.acceptor = None;
        for (_, c) in self.conns.drain() {
            self.retired.extend(c.threads.shutdown());
        }
        for thread in self.retired.drain(..) {
            let _ = thread.join();
        }
        // Connect threads end within the connect timeout; waiting for them could take that long.
        // The pools, dropped next, finish their queued jobs and join their workers.
    }
}
