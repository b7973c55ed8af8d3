//! One `mio::Poll` loop owning a [`Session`]: the TCP listener, the connections, the timer, and
//! the completions that storage and hashing workers send back.
//!
//! The loop is the only thread that touches the session. Disk and hash jobs go to a
//! [`JobSink`] (worker threads in practice); their results come back through an
//! [`std::sync::mpsc`] channel, and the worker wakes the loop with the [`mio::Waker`] from
//! [`EventLoop::completion_sender`].
//!
//! Sockets, tokens and ids: token 0 is the listener, token 1 the waker, token 2 the UDP socket,
//! and every connection has token `3 + key` of a slab whose entries remember the session's
//! [`ConnId`]; the reverse map is a `HashMap<ConnId, key>`.
//!
//! Trackers: `Output::Http` and `Output::Resolve` run on `bitshoal-std`'s
//! [`NetServices`] (worker threads, results through the same channel as disk and hash
//! completions). The one UDP socket (UDP trackers, BEP 15) is bound to the listener's IP and,
//! when free, its port (else an ephemeral one; `0.0.0.0:0` without a listener); datagrams are
//! read until the socket would block and go to the session as `Input::Datagram`, and
//! `Output::SendDatagram` is one `send_to`: when the socket's buffer is full the datagram is
//! dropped, which UDP trackers survive by retransmitting.
//!
//! Back-pressure: each connection keeps a queue of `Bytes` still to write; they go out with one
//! vectored write per readiness event, and when the queue empties the session hears
//! [`Input::Flushed`], which it uses to decide whether to read more blocks for that peer.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Write};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration as StdDuration;

use bitshoal_core::id::ConnId;
use bitshoal_core::session::{DiskCmd, Event, HashJob, Input, Output, Session};
use bitshoal_core::time::Instant;
use bitshoal_std::client::{reachable, NetServices, Reach};
use bitshoal_std::workers::{Completion, Sink};
use bytes::{Buf, Bytes, BytesMut};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const UDP: Token = Token(2);
const FIRST_CONN: usize = 3;
/// The BEP 14 multicast sockets (see `lsd`), at the top of the token space.
const LSD_V4: Token = Token(usize::MAX - 1);
const LSD_V6: Token = Token(usize::MAX - 2);

/// The largest UDP datagram we read (the IPv4 maximum payload).
const MAX_DATAGRAM: usize = 65_536;

/// The largest receive buffer of a connection. Reads fill a buffer front to back and each
/// read's bytes are cut off its front (`split_to`), so consecutive reads sit side by side in one
/// allocation: a message split across two reads is joined without a copy (the peer machine's
/// `BytesMut::unsplit` of adjacent halves), and piece blocks leave as slices of it.
///
/// Kept under glibc's default `mmap` threshold (128 KiB) so buffers come from the heap and are
/// reused warm: freshly mapped ones cost a page fault per 4 KiB the kernel copies into.
const MAX_READ_BUFFER: usize = 120 * 1024;

/// The smallest receive buffer: what a quiet connection gets. A read that fills what was left
/// of its buffer doubles the next buffer's size (up to [`MAX_READ_BUFFER`]); a read of less than
/// a quarter of this halves it.
const MIN_READ_BUFFER: usize = 16 * 1024;

/// A connection starts a fresh receive buffer when less than this is left of the current one.
const MIN_READ: usize = 8 * 1024;

/// How many reads of one connection the loop feeds the session before it performs what they
/// led to (requests to send, blocks to write); the rest when the socket runs dry.
const READS_PER_DISPATCH: usize = 4;

/// Where the loop sends disk and hash jobs. Implementations run them (on worker threads, or
/// inline in tests) and send each completion back as an [`Input`] through the channel from
/// [`EventLoop::completion_sender`], waking the loop.
pub trait JobSink {
    /// Runs a disk command; `Open` and `Close` complete silently, reads and writes with
    /// [`Input::DiskDone`].
    fn disk(&mut self, cmd: DiskCmd);
    /// Runs a hash job, completing with [`Input::Hashed`].
    fn hash(&mut self, job: HashJob);
}

/// Sends completions to the loop and wakes it.
#[derive(Clone, Debug)]
pub struct CompletionSender {
    tx: mpsc::Sender<Input>,
    waker: Arc<Waker>,
    /// Set by the first completion sent since the loop last looked at the channel: later ones
    /// need not wake it again (one `eventfd` write per batch of completions, not per job).
    woken: Arc<AtomicBool>,
}

impl CompletionSender {
    /// Wakes the loop without a completion (for side channels that carry their own).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Hands a completion to the loop. Returns `false` once the loop has gone away.
    pub fn send(&self, input: Input) -> bool {
        if self.tx.send(input).is_err() {
            return false;
        }
        // The loop clears `woken` before it drains the channel, so a completion sent after that
        // drain always finds it clear and wakes the loop (SeqCst orders the send before it).
        if !self.woken.swap(true, Ordering::SeqCst) {
            // A failed wake means the poll is gone too; the send above says so next time.
            let _ = self.waker.wake();
        }
        true
    }
}

struct Connection {
    conn: ConnId,
    stream: TcpStream,
    /// Still connecting: the first writable event tells whether it worked.
    connecting: bool,
    /// Bytes waiting to be written, in order.
    queue: VecDeque<Bytes>,
    /// Whether the session has been told the queue is empty since it last grew.
    flushed: bool,
    /// What is left of the receive buffer (see [`MAX_READ_BUFFER`]): no bytes, the capacity
    /// the next read fills.
    recv: BytesMut,
    /// The size of the next receive buffer.
    recv_size: usize,
}

/// The reference runtime: a session, its sockets, and its clock.
pub struct EventLoop {
    poll: Poll,
    events: Events,
    session: Session,
    listener: Option<TcpListener>,
    udp: UdpSocket,
    net: NetServices,
    conns: Slab<Connection>,
    by_conn: HashMap<ConnId, usize>,
    completions: mpsc::Receiver<Input>,
    sender: CompletionSender,
    epoch: std::time::Instant,
    /// Application events since the last [`EventLoop::take_events`].
    app_events: Vec<Event>,
    /// Inputs discovered while performing outputs; fed once the outputs are drained (the
    /// session's contract: drain everything before the next call).
    deferred: VecDeque<Input>,
    /// Which addresses may be dialled and sent datagrams ([`EventLoop::set_reach`]).
    reach: Option<Reach>,
    /// The BEP 14 sockets (IPv4, IPv6), open only when the session has LSD on.
    lsd: (Option<UdpSocket>, Option<UdpSocket>),
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("connections", &self.conns.len())
            .field("listening", &self.local_addr())
            .finish()
    }
}

impl EventLoop {
    /// A loop around `session`, listening on `listen` if given (and telling the session the
    /// port it got), with its UDP socket beside the listener (see the [module doc](self)).
    pub fn new(mut session: Session, listen: Option<SocketAddr>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = match listen {
            Some(addr) => Some(TcpListener::bind(addr)?),
            None => None,
        };
        let bound = match listener.as_mut() {
            Some(l) => {
                poll.registry().register(l, LISTENER, Interest::READABLE)?;
                let addr = l.local_addr()?;
                session.set_listen_port(addr.port());
                Some(addr)
            }
            None => None,
        };
        let mut udp = bind_udp(bound)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let lsd = crate::lsd::open(&poll, session.lsd_enabled(), LSD_V4, LSD_V6)?;
        let (tx, completions) = mpsc::channel();
        let woken = Arc::new(AtomicBool::new(false));
        let to_loop = CompletionSender {
            tx: tx.clone(),
            waker: Arc::clone(&waker),
            woken: Arc::clone(&woken),
        };
        let net = NetServices::new(Sink::new(move |completion| {
            if let Completion::Input(input) = completion {
                to_loop.send(input);
            }
        }));
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            session,
            listener,
            udp,
            net,
            conns: Slab::new(),
            by_conn: HashMap::new(),
            completions,
            sender: CompletionSender { tx, waker, woken },
            epoch: std::time::Instant::now(),
            app_events: Vec::new(),
            deferred: VecDeque::new(),
            reach: None,
            lsd,
        })
    }

    /// The listening address, if listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the UDP socket (UDP trackers).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.local_addr().ok()
    }

    /// Where workers send completions.
    pub fn completion_sender(&self) -> CompletionSender {
        self.sender.clone()
    }

    /// The session's clock: microseconds since this loop started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Limits the addresses the loop dials and sends datagrams to (`None`: any); a refused
    /// dial fails at once, a refused datagram is dropped (see `ClientConfig::reach`).
    pub fn set_reach(&mut self, reach: Option<Reach>) {
        self.reach = reach;
    }

    /// The session, for commands (`add_torrent`, `connect`, ...). Call
    /// [`EventLoop::dispatch`] right after each command to perform what it produced.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Application events gathered since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.app_events)
    }

    /// Waits for IO, completions or the session's deadline (at most `max_wait`), then feeds
    /// everything that happened to the session and performs its outputs.
    pub fn turn(&mut self, jobs: &mut dyn JobSink, max_wait: StdDuration) -> io::Result<()> {
        let now = self.now();
        let wait = match self.session.poll_timeout() {
            Some(deadline) if deadline <= now => StdDuration::ZERO,
            Some(deadline) => (deadline - now).min(max_wait),
            None => max_wait,
        };
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let ready: Vec<(Token, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable(),
                )
            })
            .collect();
        for (token, readable, writable) in ready {
            match token {
                LISTENER => self.accept_all(jobs)?,
                WAKER => {}
                UDP => self.receive_datagrams(jobs),
                LSD_V4 | LSD_V6 => self.receive_lsd(token == LSD_V4, jobs),
                Token(t) => {
                    let key = t - FIRST_CONN;
                    if writable {
                        self.on_writable(key);
                        self.dispatch(jobs);
                    }
                    if readable {
                        self.on_readable(key, jobs);
                    }
                }
            }
        }
        self.sender.woken.store(false, Ordering::SeqCst);
        while let Ok(input) = self.completions.try_recv() {
            self.feed(input);
        }
        self.dispatch(jobs);
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|d| d <= now) {
            self.session.handle_timeout(now);
            self.dispatch(jobs);
        }
        Ok(())
    }

    /// Performs every output the session has queued, feeds back the inputs that performing
    /// them produced (failed connects, flushes, closes), and repeats until quiet.
    pub fn dispatch(&mut self, jobs: &mut dyn JobSink) {
        loop {
            let outputs: Vec<Output> = std::iter::from_fn(|| self.session.poll_output()).collect();
            for output in outputs {
                self.perform(output, jobs);
            }
            // Sockets are written once every queued input is handled, so what a batch of
            // inputs sends goes out in one vectored write per connection.
            let Some(input) = self.deferred.pop_front() else {
                self.write_pending();
                if self.deferred.is_empty() {
                    return;
                }
                continue;
            };
            let now = self.now();
            self.session.handle_input(now, input);
        }
    }

    /// Queues an input for the session; [`EventLoop::dispatch`] feeds it.
    fn feed(&mut self, input: Input) {
        self.deferred.push_back(input);
    }

    fn perform(&mut self, output: Output, jobs: &mut dyn JobSink) {
        match output {
            Output::Connect { conn, addr } => self.connect(conn, addr),
            Output::Send { conn, head, body } => {
                if let Some(&key) = self.by_conn.get(&conn) {
                    let c = &mut self.conns[key];
                    c.queue.push_back(head);
                    if let Some(body) = body {
                        c.queue.push_back(body);
                    }
                    c.flushed = false;
                    // Written after this batch of outputs, so the session's sends coalesce.
                }
            }
            Output::Close { conn } => self.drop_conn(conn),
            Output::Disk(cmd) => jobs.disk(cmd),
            Output::Hash(job) => jobs.hash(job),
            Output::Event(event) => self.app_events.push(event),
            Output::Http { req, url, max_body } => self.net.http(req, url, max_body),
            Output::Resolve { req, host, port } => self.net.resolve(req, host, port),
            // A full socket buffer or an unreachable destination loses the datagram; UDP
            // trackers retransmit (BEP 15).
            Output::SendDatagram { to, .. } if !reachable(self.reach.as_ref(), to) => {}
            Output::SendDatagram { to, data } => drop(self.udp.send_to(&data, to)),
            Output::SendLsd { to, data } if reachable(self.reach.as_ref(), to) => {
                crate::lsd::send(&self.lsd, to, &data);
            }
            _ => {}
        }
    }

    /// Reads every waiting LSD datagram into the session (BEP 14).
    fn receive_lsd(&mut self, v4: bool, jobs: &mut dyn JobSink) {
        let inputs = crate::lsd::receive(if v4 { &self.lsd.0 } else { &self.lsd.1 });
        for input in inputs {
            self.feed(input);
            self.dispatch(jobs);
        }
    }

    /// Reads every waiting datagram into the session.
    fn receive_datagrams(&mut self, jobs: &mut dyn JobSink) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut errors = 0;
        loop {
            match self.udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    self.feed(Input::Datagram { from, data });
                    self.dispatch(jobs);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors (port unreachable) surface here on Linux, once each: skip them,
                // but never spin on an error that repeats.
                Err(_) => {
                    errors += 1;
                    if errors > 64 {
                        return;
                    }
                }
            }
        }
    }

    fn write_pending(&mut self) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.connecting && (!c.queue.is_empty() || !c.flushed))
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.on_writable(key);
        }
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        if !reachable(self.reach.as_ref(), addr) {
            self.feed(Input::ConnectFailed { conn });
            return;
        }
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(_) => {
                self.feed(Input::ConnectFailed { conn });
                return;
            }
        };
        self.insert(conn, stream, true);
    }

    fn insert(&mut self, conn: ConnId, mut stream: TcpStream, connecting: bool) {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(FIRST_CONN + key), interest)
            .is_err()
        {
            self.feed(if connecting {
                Input::ConnectFailed { conn }
            } else {
                Input::Closed { conn }
            });
            return;
        }
        let _ = stream.set_nodelay(true);
        entry.insert(Connection {
            conn,
            stream,
            connecting,
            queue: VecDeque::new(),
            flushed: true,
            recv: BytesMut::new(),
            recv_size: MIN_READ_BUFFER,
        });
        self.by_conn.insert(conn, key);
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(key) = self.by_conn.remove(&conn) {
            let mut c = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn accept_all(&mut self, jobs: &mut dyn JobSink) -> io::Result<()> {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return Ok(());
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    let now = self.now();
                    match self.session.accept(now, addr) {
                        Ok(conn) => self.insert(conn, stream, false),
                        Err(_) => drop(stream),
                    }
                    self.dispatch(jobs);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors and the like: try again on the next readiness event.
                Err(_) => return Ok(()),
            }
        }
    }

    fn on_readable(&mut self, key: usize, jobs: &mut dyn JobSink) {
        let mut reads = 0usize;
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.connecting {
                return;
            }
            let conn = c.conn;
            if c.recv.capacity() < MIN_READ {
                c.recv = BytesMut::with_capacity(c.recv_size);
            }
            let asked = c.recv.capacity();
            let result = read_into_spare(&c.stream, &mut c.recv);
            if let Ok(n) = result {
                if n == asked {
                    c.recv_size = (c.recv_size * 2).min(MAX_READ_BUFFER);
                } else if n < MIN_READ_BUFFER / 4 {
                    c.recv_size = (c.recv_size / 2).max(MIN_READ_BUFFER);
                }
            }
            match result {
                Ok(0) => {
                    self.close_from_network(conn);
                    self.dispatch(jobs);
                    return;
                }
                Ok(n) => {
                    let data = c.recv.split_to(n);
                    self.feed(Input::Received { conn, data });
                    // Several reads per dispatch: the requests and disk writes they lead to
                    // go out in fewer, larger system calls.
                    reads += 1;
                    if reads % READS_PER_DISPATCH == 0 {
                        self.dispatch(jobs);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    release_if_quiet(c);
                    self.dispatch(jobs);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close_from_network(conn);
                    self.dispatch(jobs);
                    return;
                }
            }
        }
    }

    fn on_writable(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let conn = c.conn;
        if c.connecting {
            // mio: on writable, a pending error means failure; no peer address yet (and no
            // error) means a spurious wake-up while still connecting.
            let failed = !matches!(c.stream.take_error(), Ok(None));
            if failed {
                self.drop_conn(conn);
                self.feed(Input::ConnectFailed { conn });
                return;
            }
            match c.stream.peer_addr() {
                Ok(_) => {
                    c.connecting = false;
                    self.feed(Input::Connected { conn });
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(_) => {
                    self.drop_conn(conn);
                    self.feed(Input::ConnectFailed { conn });
                }
            }
            return;
        }
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.queue.is_empty() {
                if !c.flushed {
                    c.flushed = true;
                    self.feed(Input::Flushed { conn });
                }
                return;
            }
            let slices: Vec<IoSlice<'_>> =
                c.queue.iter().take(64).map(|b| IoSlice::new(b)).collect();
            match c.stream.write_vectored(&slices) {
                Ok(0) => {
                    self.close_from_network(conn);
                    return;
                }
                Ok(mut n) => {
                    while n > 0 {
                        let front = c.queue.front_mut().expect("wrote no more than queued");
                        if n >= front.len() {
                            n -= front.len();
                            c.queue.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close_from_network(conn);
                    return;
                }
            }
        }
    }

    fn close_from_network(&mut self, conn: ConnId) {
        self.drop_conn(conn);
        self.feed(Input::Closed { conn });
    }
}

/// Reads from `stream` into the spare capacity of `buf` (empty, with room), without zeroing it
/// first, and makes the bytes read part of `buf`. Returns how many were read.
/// Gives back the rest of a quiet connection's receive buffer once its socket is drained, so an
/// idle connection holds no buffer (a thousand idle peers would otherwise keep 16 KiB each); it
/// gets a fresh one when it next becomes readable. A busy connection (one whose reads filled
/// their buffers, so `recv_size` grew) keeps it: consecutive reads then share one allocation.
fn release_if_quiet(c: &mut Connection) {
    if c.recv_size <= MIN_READ_BUFFER {
        c.recv = BytesMut::new();
    }
}

fn read_into_spare(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    debug_assert!(buf.is_empty());
    let (read, _) = rustix::io::read(stream, buf.spare_capacity_mut())?;
    let n = read.len();
    // SAFETY: `read(2)` initialised the first `n` bytes of the spare capacity (rustix hands
    // back exactly those as `read`), and `n` is at most the spare capacity.
    unsafe { buf.set_len(n) };
    Ok(n)
}

/// The UDP socket: on the listener's IP and port when that port is free for UDP, else on an
/// ephemeral port of the same IP; without a listener on `0.0.0.0:0`.
fn bind_udp(listener: Option<SocketAddr>) -> io::Result<UdpSocket> {
    let Some(addr) = listener else {
        return UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)));
    };
    UdpSocket::bind(addr).or_else(|_| UdpSocket::bind(SocketAddr::new(addr.ip(), 0)))
}

#[cfg(test)]
#[path = "event_loop_tests.rs"]
mod tests;
