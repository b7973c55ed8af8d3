//! Opening a connection: resolve, connect within the deadline, TLS; and a buffered reader
//! whose every socket read and write is bounded by the time left.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use url::{Host, Url};

use super::error::Fail;
use crate::resolve::resolve;

/// The time left until `deadline`, or [`Fail::TimedOut`] if none is.
pub(crate) fn remaining(deadline: Instant) -> Result<Duration, Fail> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Fail::TimedOut)
    } else {
        Ok(left)
    }
}

/// The addresses of `url`'s host: IP literals as they are, names through the system resolver.
fn addresses(url: &Url, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Fail> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(Host::Ipv6(ip)) => Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(Host::Domain(name)) => lookup(name, port, deadline),
        None => Err(Fail::Resolve("no host".to_string())),
    }
}

/// Resolves `name` within the deadline.
///
/// `getaddrinfo` has no timeout of its own and can block for many seconds, so it runs on a
/// thread of its own; past the deadline that thread is left to finish on its own and its
/// answer is dropped.
fn lookup(name: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Fail> {
    let left = remaining(deadline)?;
    let (tx, rx) = mpsc::channel();
    let host = name.to_string();
    thread::Builder::new()
        .name("bitshoal-http-dns".to_string())
        .spawn(move || {
            let _ = tx.send(resolve(&host, port));
        })
        .map_err(|e| Fail::Resolve(format!("cannot start a lookup thread: {e}")))?;
    match rx.recv_timeout(left) {
        Ok(result) => result.map_err(|e| Fail::Resolve(e.message)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Fail::TimedOut),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(Fail::Resolve("the lookup thread failed".to_string()))
        }
    }
}

/// The name rustls checks the certificate against (and sends as SNI, for names).
fn server_name(url: &Url) -> Result<ServerName<'static>, Fail> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(ServerName::IpAddress(IpAddr::V4(ip).into())),
        Some(Host::Ipv6(ip)) => Ok(ServerName::IpAddress(IpAddr::V6(ip).into())),
        Some(Host::Domain(name)) => ServerName::try_from(name.to_string())
            .map_err(|e| Fail::Tls(format!("invalid server name: {e}"))),
        None => Err(Fail::Resolve("no host".to_string())),
    }
}

/// A TCP connection to the first of `url`'s addresses that accepts one, each attempt bounded
/// by `connect_timeout` and the deadline.
fn connect_tcp(
    url: &Url,
    port: u16,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, Fail> {
    let addrs = addresses(url, port, deadline)?;
    remaining(deadline)?;
    let mut last = String::new();
    for addr in addrs {
        let Ok(left) = remaining(deadline) else { break };
        match TcpStream::connect_timeout(&addr, left.min(connect_timeout)) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    remaining(deadline)?;
    Err(Fail::Connect(last))
}

/// A plain or TLS stream.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

/// One connection with its deadline and read buffer.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    deadline: Instant,
    /// Bytes read from the socket and not yet consumed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

impl Conn {
    /// Connects to `url` (TLS with `tls` for `https`).
    pub(crate) fn open(
        url: &Url,
        tls: &Arc<ClientConfig>,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<Self, Fail> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Fail::malformed("no port"))?;
        let tcp = connect_tcp(url, port, connect_timeout, deadline)?;
        // Requests are one small write; without this the head could wait for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let stream = if url.scheme() == "https" {
            let name = server_name(url)?;
            let conn = ClientConnection::new(Arc::clone(tls), name)
                .map_err(|e| Fail::Tls(e.to_string()))?;
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let mut conn = Self {
            stream,
            deadline,
            buf: Vec::new(),
            start: 0,
            eof: false,
        };
        conn.handshake()?;
        Ok(conn)
    }

    /// Completes the TLS handshake now, so its failures are told apart from later ones.
    fn handshake(&mut self) -> Result<(), Fail> {
        let deadline = self.deadline;
        if let Stream::Tls(tls) = &mut self.stream {
            while tls.conn.is_handshaking() {
                let left = remaining(deadline)?;
                tls.sock.set_read_timeout(Some(left))?;
                tls.sock.set_write_timeout(Some(left))?;
                let tls = &mut **tls;
                match tls.conn.complete_io(&mut tls.sock) {
                    Ok(_) => {}
                    Err(e) => {
                        return Err(match Fail::from(e) {
                            Fail::Io(e) => Fail::Tls(format!("handshake: {e}")),
                            other => other,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Arms the socket's timeouts with the time left.
    fn arm(&self) -> Result<(), Fail> {
        let left = remaining(self.deadline)?;
        let tcp = self.stream.tcp();
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        Ok(())
    }

    /// Sends all of `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.arm()?;
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes)?,
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()?;
            }
        }
        Ok(())
    }

    /// The buffered bytes not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` buffered bytes consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Whether the server closed the connection (and everything it sent is buffered).
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads more bytes into the buffer, at most `max` (at least 1); returns how many (0 at
    /// end of stream).
    pub(crate) fn fill(&mut self, max: usize) -> Result<usize, Fail> {
        if self.eof {
            return Ok(0);
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = max.clamp(1, READ_CHUNK);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let result = loop {
            if let Err(e) = self.arm() {
                break Err(e);
            }
            let read = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut self.buf[old..]),
                Stream::Tls(s) => s.read(&mut self.buf[old..]),
            };
            match read {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS server that closes without close_notify: taken as the end, as browsers
                // do. Truncation of a Content-Length or chunked body is still detected; a
                // read-to-close body is as trustworthy as it is over plain HTTP.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ok(0),
                other => break other.map_err(Fail::from),
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        if matches!(result, Ok(0)) {
            self.eof = true;
        }
        result
    }
}
