//! The simulated network: reliable ordered pipes (TCP-like) between hosts, with per-host
//! bandwidth and latency.
//!
//! # Model
//!
//! Every host (node or fake peer) has a [`LinkProfile`]: an upload rate, a download rate and a
//! one-way latency of its access link. A path between two hosts has the latency of both access
//! links added (or an override set with [`Sim::set_path_latency`]).
//!
//! A send is cut into chunks of at most [`CHUNK`] bytes. Each chunk occupies the sender's uplink
//! for `len / upload` (one FIFO queue per host, shared by all its connections), travels the
//! path's latency, then occupies the receiver's downlink for `len / download`; it is delivered
//! as one [`Input::Received`](bitshoal_core::session::Input::Received) when it has fully
//! arrived. Downlink time is reserved in the order chunks are sent, and a pipe never delivers
//! out of order. When a send has left the sender's uplink the sender gets
//! [`Input::Flushed`](bitshoal_core::session::Input::Flushed) (the runtime's "handed to the
//! operating system").
//!
//! A close travels like data: the other end gets `Input::Closed` after everything sent before
//! it was delivered. Bytes still in flight towards a closed end are dropped.

use bitshoal_core::id::ConnId;
use bitshoal_core::time::{Duration, Instant};
use bytes::Bytes;

use super::{Ev, HostKind, Sim};

/// The largest piece of a send delivered at once (one `Input::Received`).
pub const CHUNK: usize = 16 * 1024;

/// A host's access link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkProfile {
    /// Upload bytes per second, `None` for unlimited.
    pub upload: Option<u64>,
    /// Download bytes per second, `None` for unlimited.
    pub download: Option<u64>,
    /// One-way latency of the access link.
    pub latency: Duration,
}

impl LinkProfile {
    /// Unlimited bandwidth, 1 ms latency: a LAN.
    pub const LAN: Self = Self {
        upload: None,
        download: None,
        latency: Duration::from_millis(1),
    };

    /// A symmetric link of `rate` bytes per second each way and `latency` one way.
    pub const fn symmetric(rate: u64, latency: Duration) -> Self {
        Self {
            upload: Some(rate),
            download: Some(rate),
            latency,
        }
    }
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self::LAN
    }
}

/// How long `len` bytes take at `rate` bytes per second.
fn transmit(len: usize, rate: Option<u64>) -> Duration {
    match rate {
        None | Some(0) => Duration::ZERO,
        Some(rate) => Duration::from_micros((len as u64 * 1_000_000).div_ceil(rate)),
    }
}

/// One end of a pipe.
#[derive(Debug)]
pub(crate) struct End {
    pub(crate) host: usize,
    /// The node's connection id (`None` for a fake peer, or before a node accepted).
    pub(crate) conn: Option<ConnId>,
    /// Whether this end still reads and writes.
    pub(crate) open: bool,
    /// For the connecting end: whether it was told the connection is up.
    pub(crate) connected: bool,
}

/// One direction of a pipe.
#[derive(Debug, Default)]
pub(crate) struct Dir {
    /// When the last chunk sent this way left the sender's uplink.
    pub(crate) sent_done: Instant,
    /// When the last chunk sent this way is delivered.
    pub(crate) last_arrival: Instant,
}

/// A reliable ordered byte pipe; side 0 connected, side 1 listened.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) ends: [End; 2],
    /// `dirs[s]` carries bytes from side `s` to side `1 - s`.
    pub(crate) dirs: [Dir; 2],
}

impl Sim {
    /// The one-way latency between two hosts.
    pub(crate) fn latency(&self, a: usize, b: usize) -> Duration {
        let key = (a.min(b), a.max(b));
        self.path_latency
            .get(&key)
            .copied()
            .unwrap_or_else(|| self.hosts[a].link.latency + self.hosts[b].link.latency)
    }

    /// Sets the one-way latency between two hosts, instead of the sum of their links'.
    pub fn set_path_latency(&mut self, a: impl Into<HostRef>, b: impl Into<HostRef>, d: Duration) {
        let (a, b) = (a.into().0, b.into().0);
        self.path_latency.insert((a.min(b), a.max(b)), d);
    }

    /// Opens a pipe from host `from` (whose end is `conn` for a node) to the host listening at
    /// `addr`, or schedules a connect failure.
    pub(crate) fn open_pipe(
        &mut self,
        from: usize,
        conn: Option<ConnId>,
        addr: std::net::SocketAddr,
    ) -> Option<usize> {
        // A NAT'd node's attempt opens a pinhole for the host it dials (NodeConfig::no_incoming).
        let now = self.now;
        if let super::HostKind::Node(n) = &mut self.hosts[from].kind {
            if let Some(p) = n.pinholes.as_mut() {
                p.insert(addr.ip(), now);
            }
        }
        let listener = self.listeners.get(&addr).copied();
        let Some(to) = listener.filter(|&to| to != from) else {
            // Nobody listens: a refusal comes back after a round trip.
            let rtt = self.hosts[from].link.latency * 2;
            if let Some(conn) = conn {
                self.schedule(self.now + rtt, Ev::ConnectFailed { host: from, conn });
            }
            return None;
        };
        let pipe = self.pipes.len();
        self.pipes.push(Pipe {
            ends: [
                End {
                    host: from,
                    conn,
                    open: true,
                    connected: false,
                },
                End {
                    host: to,
                    conn: None,
                    open: true,
                    connected: true,
                },
            ],
            dirs: [Dir::default(), Dir::default()],
        });
        if let Some(conn) = conn {
            self.conn_pipes.insert((from, conn), (pipe, 0));
        }
        let at = self.now + self.latency(from, to);
        self.schedule(at, Ev::Accept { pipe });
        Some(pipe)
    }

    /// Queues `data` from side `side` of `pipe`.
    pub(crate) fn pipe_send(&mut self, pipe: usize, side: usize, data: Bytes) {
        let from = self.pipes[pipe].ends[side].host;
        let to = self.pipes[pipe].ends[1 - side].host;
        let latency = self.latency(from, to);
        let mut sent_done = self.now;
        let mut offset = 0;
        while offset < data.len() {
            let chunk = data.slice(offset..(offset + CHUNK).min(data.len()));
            offset += chunk.len();
            let up = self.hosts[from].link.upload;
            let start = self.now.max(self.hosts[from].up_free);
            sent_done = start + transmit(chunk.len(), up);
            self.hosts[from].up_free = sent_done;
            let down = self.hosts[to].link.download;
            let start = (sent_done + latency).max(self.hosts[to].down_free);
            let arrived = start + transmit(chunk.len(), down);
            self.hosts[to].down_free = arrived;
            let dir = &mut self.pipes[pipe].dirs[side];
            let at = arrived.max(dir.last_arrival);
            dir.last_arrival = at;
            self.schedule(
                at,
                Ev::Deliver {
                    pipe,
                    to: 1 - side,
                    data: chunk,
                },
            );
        }
        self.pipes[pipe].dirs[side].sent_done = sent_done;
        if matches!(self.hosts[from].kind, HostKind::Node(_)) {
            self.schedule(sent_done, Ev::Flushed { pipe, from: side });
        }
    }

    /// Closes side `side` of `pipe`; the other side learns it after the bytes before it.
    pub(crate) fn pipe_close(&mut self, pipe: usize, side: usize) {
        let end = &mut self.pipes[pipe].ends[side];
        if !end.open {
            return;
        }
        end.open = false;
        if let Some(conn) = end.conn {
            self.conn_pipes.remove(&(end.host, conn));
        }
        let (from, to) = (
            self.pipes[pipe].ends[side].host,
            self.pipes[pipe].ends[1 - side].host,
        );
        let at = (self.now + self.latency(from, to)).max(self.pipes[pipe].dirs[side].last_arrival);
        self.schedule(at, Ev::Fin { pipe, to: 1 - side });
    }
}

/// A host (node or fake peer), for APIs that take either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostRef(pub(crate) usize);

impl From<super::NodeId> for HostRef {
    fn from(n: super::NodeId) -> Self {
        Self(n.0)
    }
}

impl From<super::FakeId> for HostRef {
    fn from(f: super::FakeId) -> Self {
        Self(f.0)
    }
}
