//! The threads behind the sockets. None of them touches the session: each blocks on its socket
//! (or its queue) and reports what happened as a [`Msg`] on the client's one channel.
//!
//! - the **acceptor** blocks in `accept` and sends [`Msg::Accepted`];
//! - a **connector** per outgoing connection blocks in `connect_timeout` and sends
//!   [`Msg::Connected`] or [`Msg::ConnectFailed`], then ends;
//! - per connection, a **reader** blocks in `read` and sends [`Msg::Received`], then
//!   [`Msg::Closed`] at end of stream or on an error; a **writer** blocks on its queue, writes
//!   what it finds with vectored writes, and sends [`Msg::Flushed`] each time the queue is empty.
//!
//! Bounds: a reader stops reading while [`MAX_UNHANDLED_BYTES`] it sent are not yet handled by
//! the session's thread (so a peer that sends faster than the session digests fills its own
//! socket buffers, not our memory), and the acceptor drops connections while
//! [`MAX_PENDING_ACCEPTS`] it sent are waiting.
//!
//! Stopping: [`ConnThreads::shutdown`] shuts the socket down in both directions, which wakes a
//! reader blocked in `read` (it returns 0) and a writer blocked in `write` (it fails), and drops
//! the writer's queue, which wakes a writer blocked on it. The acceptor is woken by a connection
//! to itself after its stop flag is set.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bitshoal_core::id::ConnId;
use bytes::{Buf, Bytes, BytesMut};

use crate::workers::Completion;

/// The buffer a reader fills; received bytes are cut off its front, so one allocation serves
/// several reads.
const READ_BUFFER: usize = 64 * 1024;

/// A reader starts a fresh buffer when less than this is left of the current one.
const MIN_READ: usize = 8 * 1024;

/// The most buffers handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// The most received bytes of one connection in the channel, not yet handled by the session's
/// thread; the reader waits above it.
pub(super) const MAX_UNHANDLED_BYTES: usize = 1024 * 1024;

/// The most accepted connections in the channel, not yet handed to the session; more are
/// closed at once.
pub(super) const MAX_PENDING_ACCEPTS: usize = 64;

/// How long the acceptor rests after a failed `accept` (out of descriptors, usually) before
/// trying again, so a persistent error does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// How long dropping the acceptor waits to connect to it (loopback, so at once in practice).
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything the session's thread hears about, from every other thread.
#[derive(Debug)]
pub(super) enum Msg {
    /// The acceptor accepted a connection.
    Accepted {
        /// The socket.
        stream: TcpStream,
        /// The peer's address.
        addr: SocketAddr,
    },
    /// An outgoing connection is established.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The socket.
        stream: TcpStream,
    },
    /// An outgoing connection could not be established.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes arrived.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: BytesMut,
    },
    /// The writer's queue is empty after writing send number `seq`.
    Flushed {
        /// The connection.
        conn: ConnId,
        /// The number of the last send written.
        seq: u64,
    },
    /// The connection ended (end of stream or an error, reading or writing).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A storage or hashing worker finished a job.
    Completion(Completion),
    /// A datagram arrived on the UDP socket.
    Datagram {
        /// The sender.
        from: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// A datagram arrived on an LSD (BEP 14 multicast) socket.
    LsdDatagram {
        /// The sender.
        from: SocketAddr,
        /// The payload.
        data: Bytes,
    },
}

/// One `Output::Send`, numbered so the session's thread can tell a stale flush from a real one.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// The send's number on its connection, from 1.
    pub(super) seq: u64,
    /// Message headers.
    pub(super) head: Bytes,
    /// A block following them.
    pub(super) body: Option<Bytes>,
}

/// The listener's thread.
#[derive(Debug)]
pub(super) struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `listener`, sending each connection to `tx`.
    pub(super) fn spawn(listener: TcpListener, tx: Sender<Msg>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicUsize::new(0));
        let (stopped, queued) = (Arc::clone(&stop), Arc::clone(&pending));
        let thread = thread::Builder::new()
            .name("bitshoal-accept".into())
            .spawn(move || accept_loop(&listener, &stopped, &queued, &tx))?;
        Ok(Self {
            addr,
            stop,
            pending,
            thread: Some(thread),
        })
    }

    /// The session's thread took one accepted connection off the channel.
    pub(super) fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// The address the listener is bound to.
    pub(super) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread is blocked in `accept`: hand it one more connection so it sees the flag.
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woken =
            TcpStream::connect_timeout(&SocketAddr::new(ip, self.addr.port()), WAKE_TIMEOUT);
        if let (Ok(_), Some(thread)) = (woken, self.thread.take()) {
            let _ = thread.join();
        }
        // Otherwise the thread is left to end on the next connection it accepts.
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, pending: &AtomicUsize, tx: &Sender<Msg>) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            return;
        }
        match accepted {
            // The session's thread is behind: refuse (by closing) rather than queue sockets.
            Ok(_) if pending.load(Ordering::Acquire) >= MAX_PENDING_ACCEPTS => {}
            Ok((stream, addr)) => {
                pending.fetch_add(1, Ordering::AcqRel);
                if tx.send(Msg::Accepted { stream, addr }).is_err() {
                    return; // the client is gone
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => thread::sleep(ACCEPT_BACKOFF),
        }
    }
}

/// Opens a connection on a thread of its own, which reports and ends.
pub(super) fn connect(
    conn: ConnId,
    addr: SocketAddr,
    timeout: Duration,
    tx: Sender<Msg>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("bitshoal-connect".into())
        .spawn(move || {
            let msg = match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => Msg::Connected { conn, stream },
                Err(_) => Msg::ConnectFailed { conn },
            };
            // A client dropped meanwhile drops the socket with the message.
            let _ = tx.send(msg);
        })
}

/// Received bytes of one connection sent to the session's thread and not yet handled there.
#[derive(Debug, Default)]
struct Unhandled {
    /// The byte count, and whether the connection is shut down.
    state: Mutex<(usize, bool)>,
    /// Signalled when the count drops or the connection shuts down.
    changed: Condvar,
}

impl Unhandled {
    /// Waits until there is room for another read; `false` once the connection is shut down.
    fn wait_for_room(&self) -> bool {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let guard = self
            .changed
            .wait_while(guard, |(bytes, closed)| {
                !*closed && *bytes >= MAX_UNHANDLED_BYTES
            })
            .unwrap_or_else(PoisonError::into_inner);
        !guard.1
    }

    fn add(&self, n: usize) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 += n;
    }

    fn handled(&self, n: usize) {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0 = guard.0.saturating_sub(n);
        self.changed.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.changed.notify_one();
    }
}

/// A connection's reader and writer threads, and the way to stop them.
#[derive(Debug)]
pub(super) struct ConnThreads {
    stream: TcpStream,
    unhandled: Arc<Unhandled>,
    queue: Sender<Outgoing>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl ConnThreads {
    /// Starts the reader and the writer of `conn` on `stream`.
    pub(super) fn start(conn: ConnId, stream: TcpStream, tx: &Sender<Msg>) -> io::Result<Self> {
        let _ = stream.set_nodelay(true);
        let read_half = stream.try_clone()?;
        let write_half = stream.try_clone()?;
        let (queue, outgoing) = mpsc::channel();
        let unhandled = Arc::new(Unhandled::default());
        let budget = Arc::clone(&unhandled);
        let to_session = tx.clone();
        let reader = thread::Builder::new()
            .name("bitshoal-read".into())
            .spawn(move || read_loop(conn, read_half, &budget, &to_session))?;
        let to_session = tx.clone();
        let writer = thread::Builder::new()
            .name("bitshoal-write".into())
            .spawn(move || write_loop(conn, write_half, &outgoing, &to_session));
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                // End the reader before giving up on the connection.
                let _ = stream.shutdown(Shutdown::Both);
                let _ = reader.join();
                return Err(e);
            }
        };
        Ok(Self {
            stream,
            unhandled,
            queue,
            reader,
            writer,
        })
    }

    /// The session's thread handled `n` received bytes: the reader may read more.
    pub(super) fn handled(&self, n: usize) {
        self.unhandled.handled(n);
    }

    /// Queues bytes for the writer. A writer that already ended (its socket failed) has
    /// reported [`Msg::Closed`], so a refused send needs no report of its own.
    pub(super) fn send(&self, outgoing: Outgoing) {
        let _ = self.queue.send(outgoing);
    }

    /// Shuts the socket down and stops both threads; returns them, to be joined (each ends
    /// promptly, having nothing left to block on).
    pub(super) fn shutdown(self) -> [JoinHandle<()>; 2] {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.unhandled.close();
        drop(self.queue);
        [self.reader, self.writer]
    }
}

fn read_loop(conn: ConnId, stream: TcpStream, unhandled: &Unhandled, tx: &Sender<Msg>) {
    let mut buf = BytesMut::new();
    loop {
        if !unhandled.wait_for_room() {
            return; // shut down by the session's thread, which needs no report
        }
        if buf.capacity() < MIN_READ {
            buf = BytesMut::with_capacity(READ_BUFFER);
        }
        match read_into_spare(&stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // The bytes read; the rest of the capacity stays for the next read.
                let data = buf.split();
                unhandled.add(n);
                if tx.send(Msg::Received { conn, data }).is_err() {
                    return; // the client is gone
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Msg::Closed { conn });
}

/// Reads from `stream` into the spare capacity of `buf` (empty), without zeroing it first (a
/// zeroed buffer cost a `memset` of every byte received), and makes the bytes read part of
/// `buf`. Returns how many were read.
fn read_into_spare(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    debug_assert!(buf.is_empty());
    let (read, _) = rustix::io::read(stream, buf.spare_capacity_mut())?;
    let n = read.len();
    // SAFETY: `read(2)` initialised the first `n` bytes of the spare capacity (rustix hands
    // back exactly those as `read`), and `n` is at most the spare capacity.
    unsafe { buf.set_len(n) };
    Ok(n)
}

fn write_loop(
    conn: ConnId,
    mut stream: TcpStream,
    outgoing: &Receiver<Outgoing>,
    tx: &Sender<Msg>,
) {
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut written = 0;
    // Ends when the session's thread drops the queue's sender (the connection is closed).
    while let Ok(first) = outgoing.recv() {
        let mut next = Some(first);
        loop {
            // Take everything queued meanwhile, so sends coalesce into few writes.
            while let Some(o) = next.take().or_else(|| outgoing.try_recv().ok()) {
                written = o.seq;
                queue.push_back(o.head);
                queue.extend(o.body);
            }
            if queue.is_empty() {
                break;
            }
            if write_some(&mut stream, &mut queue).is_err() {
                let _ = tx.send(Msg::Closed { conn });
                return;
            }
        }
        if tx.send(Msg::Flushed { conn, seq: written }).is_err() {
            return;
        }
    }
}

/// One vectored write of the front of `queue`, dropping what was written.
fn write_some(stream: &mut TcpStream, queue: &mut VecDeque<Bytes>) -> io::Result<()> {
    // An empty buffer at the front (a zero-length head) would make a write of nothing.
    while queue.front().is_some_and(Bytes::is_empty) {
        queue.pop_front();
    }
    if queue.is_empty() {
        return Ok(());
    }
    let slices: Vec<IoSlice<'_>> = queue
        .iter()
        .take(MAX_IOVECS)
        .map(|b| IoSlice::new(b))
        .collect();
    let mut n = match stream.write_vectored(&slices) {
        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e),
    };
    while n > 0 {
        let front = queue
            .front_mut()
            .expect("the OS wrote no more than was queued");
        if n >= front.len() {
            n -= front.len();
            queue.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
