//! The blocking runtime's UDP socket (UDP trackers, BEP 15): a reader thread blocked in
//! `recv_from` sends each datagram to the session's thread as [`Msg::Datagram`]; sends go out
//! from the session's thread with `send_to`.
//!
//! Bounds: at most [`MAX_PENDING_DATAGRAMS`] datagrams wait in the channel; more are dropped
//! (UDP promises nothing, and trackers retransmit). Stopping: the stop flag is set and a
//! datagram is sent to the socket itself, which wakes the reader; a read timeout ends it
//! anyway should that datagram be lost.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;

use super::net::Msg;

/// The most received datagrams in the channel, not yet handled by the session's thread.
pub(super) const MAX_PENDING_DATAGRAMS: usize = 256;

/// The largest datagram read (the IPv4 maximum payload).
const MAX_DATAGRAM: usize = 65_536;

/// How long the reader blocks before looking at its stop flag, in case the wake-up datagram
/// is lost.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The UDP socket and its reader thread.
#[derive(Debug)]
pub(super) struct Udp {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Udp {
    /// Binds beside the TCP listener (its IP, and its port when free; else an ephemeral port),
    /// or on `0.0.0.0:0` without one, and starts the reader.
    pub(super) fn bind(listener: Option<SocketAddr>, tx: Sender<Msg>) -> io::Result<Self> {
        let socket = match listener {
            Some(addr) => {
                UdpSocket::bind(addr).or_else(|_| UdpSocket::bind(SocketAddr::new(addr.ip(), 0)))?
            }
            None => UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))?,
        };
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        let addr = socket.local_addr()?;
        let socket = Arc::new(socket);
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicUsize::new(0));
        let (reader, stopped, queued) =
            (Arc::clone(&socket), Arc::clone(&stop), Arc::clone(&pending));
        let thread = thread::Builder::new()
            .name("bitshoal-udp".into())
            .spawn(move || read_loop(&reader, &stopped, &queued, &tx))?;
        Ok(Self {
            socket,
            addr,
            stop,
            pending,
            thread: Some(thread),
        })
    }

    /// The socket's address.
    pub(super) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one datagram; a failure (full buffer, unreachable) loses it, as UDP may.
    pub(super) fn send_to(&self, data: &[u8], to: SocketAddr) {
        let _ = self.socket.send_to(data, to);
    }

    /// The session's thread took one datagram off the channel.
    pub(super) fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        // Wakes the reader; if this is lost, its read timeout ends the wait.
        let _ = self
            .socket
            .send_to(&[], SocketAddr::new(ip, self.addr.port()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_loop(socket: &UdpSocket, stop: &AtomicBool, pending: &AtomicUsize, tx: &Sender<Msg>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = socket.recv_from(&mut buf);
        if stop.load(Ordering::Acquire) {
            return;
        }
        match received {
            Ok(_) if pending.load(Ordering::Acquire) >= MAX_PENDING_DATAGRAMS => {}
            Ok((n, from)) => {
                pending.fetch_add(1, Ordering::AcqRel);
                let data = Bytes::copy_from_slice(&buf[..n]);
                if tx.send(Msg::Datagram { from, data }).is_err() {
                    return; // the client is gone
                }
            }
            // Timeouts, interruptions, and ICMP errors from earlier sends (port unreachable):
            // none of them is the socket's end.
            Err(_) => {}
        }
    }
}
