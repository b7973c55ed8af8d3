//! A minimal HTTP tracker on 127.0.0.1 for the clients that find peers only through trackers
//! (aria2 has no "connect to this peer" option).
//!
//! Every announce gets the same answer: the peers currently set with [`Tracker::set_peers`]
//! (compact form, BEP 23), so the benchmark decides who a client may download from. Between
//! aria2 runs the list is empty, so the other clients (which are given their peer directly)
//! never learn a second source through it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// The tracker: its address and the peer list it hands out.
pub(crate) struct Tracker {
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddrV4>>>,
}

impl Tracker {
    /// Starts answering on an ephemeral port of 127.0.0.1 (a detached thread that ends with the
    /// process).
    pub(crate) fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let peers = Arc::new(Mutex::new(Vec::new()));
        let list = Arc::clone(&peers);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let peers = list.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let _ = answer(stream, &peers);
            }
        });
        Ok(Self { addr, peers })
    }

    /// The announce URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// Sets the peers every announce gets from now on.
    pub(crate) fn set_peers(&self, peers: Vec<SocketAddrV4>) {
        *self.peers.lock().unwrap_or_else(PoisonError::into_inner) = peers;
    }
}

/// Reads the request head and answers with the peer list.
fn answer(mut stream: TcpStream, peers: &[SocketAddrV4]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut compact = Vec::with_capacity(peers.len() * 6);
    for p in peers {
        compact.extend_from_slice(&p.ip().octets());
        compact.extend_from_slice(&p.port().to_be_bytes());
    }
    let mut body = format!("d8:intervali60e5:peers{}:", compact.len()).into_bytes();
    body.extend_from_slice(&compact);
    body.push(b'e');
    let mut reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    stream.write_all(&reply)
}
