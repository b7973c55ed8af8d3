//! The blocking runtime's BEP 14 sockets ([`LsdSockets`]): a reader thread per socket, blocked
//! in `recv_from`, sends each datagram to the session's thread as [`Msg::LsdDatagram`]; sends
//! go out from the session's thread.
//!
//! Bounds: at most [`MAX_PENDING`] datagrams wait in the channel, more are dropped (the LAN
//! may flood us; the session bounds what it parses too). Stopping: the stop flag is checked
//! after every read, which times out every [`READ_TIMEOUT`], so dropping waits at most that.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;

use super::net::Msg;
use crate::lsd::{send_lsd, LsdSockets};

/// The most received LSD datagrams in the channel, not yet handled by the session's thread.
pub(super) const MAX_PENDING: usize = 64;

/// How long a reader blocks before looking at its stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// The largest LSD datagram read (larger ones are cut, and then refused by the parser).
const MAX_DATAGRAM: usize = 2048;

/// The LSD sockets and their readers.
#[derive(Debug)]
pub(super) struct Lsd {
    v4: Option<Arc<UdpSocket>>,
    v6: Option<Arc<UdpSocket>>,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Lsd {
    /// Opens the sockets and starts a reader for each.
    pub(super) fn open(tx: &Sender<Msg>) -> io::Result<Self> {
        let (v4, v6) = LsdSockets::open(None)?.into_parts();
        let (v4, v6) = (v4.map(Arc::new), v6.map(Arc::new));
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for socket in v4.iter().chain(&v6) {
            socket.set_read_timeout(Some(READ_TIMEOUT))?;
            let (socket, stop, pending, tx) = (
                Arc::clone(socket),
                Arc::clone(&stop),
                Arc::clone(&pending),
                tx.clone(),
            );
            threads.push(
                thread::Builder::new()
                    .name("bitshoal-lsd".into())
                    .spawn(move || read_loop(&socket, &stop, &pending, &tx))?,
            );
        }
        Ok(Self {
            v4,
            v6,
            stop,
            pending,
            threads,
        })
    }

    /// Sends one announce to a group.
    pub(super) fn send(&self, to: SocketAddr, data: &[u8]) {
        send_lsd(self.v4.as_deref(), self.v6.as_deref(), to, data);
    }

    /// The session's thread took one datagram off the channel.
    pub(super) fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Lsd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn read_loop(socket: &UdpSocket, stop: &AtomicBool, pending: &AtomicUsize, tx: &Sender<Msg>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Acquire) {
        match socket.recv_from(&mut buf) {
            Ok(_) if pending.load(Ordering::Acquire) >= MAX_PENDING => {}
            Ok((n, from)) => {
                pending.fetch_add(1, Ordering::AcqRel);
                let data = Bytes::copy_from_slice(&buf[..n]);
                if tx.send(Msg::LsdDatagram { from, data }).is_err() {
                    return; // the client is gone
                }
            }
            // Timeouts and interruptions: look at the stop flag and read again.
            Err(_) => {}
        }
    }
}
