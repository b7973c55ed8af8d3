//! A loopback HTTP server on a test thread, answering each connection with a handler.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A safety net so a broken test fails instead of hanging; no test waits for it.
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads a request head (through the blank line) from `stream`; `None` if it closes first.
pub(crate) fn read_request_head(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A server that accepts a fixed number of connections on 127.0.0.1.
pub(crate) struct TestServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    heads: mpsc::Receiver<String>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `connections` connections in turn: reads the request head, reports it, then calls
    /// `handler(index, server address, stream)`; the connection closes when the handler returns.
    pub(crate) fn start(
        connections: usize,
        mut handler: impl FnMut(usize, SocketAddr, &mut TcpStream) + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (tx, heads) = mpsc::channel();
        let thread = thread::spawn(move || {
            for i in 0..connections {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let _ = stream.set_read_timeout(Some(SERVER_IO_TIMEOUT));
                let _ = stream.set_write_timeout(Some(SERVER_IO_TIMEOUT));
                let Some(head) = read_request_head(&mut stream) else {
                    continue;
                };
                let _ = tx.send(head);
                handler(i, addr, &mut stream);
            }
        });
        Self {
            addr,
            heads,
            thread: Some(thread),
        }
    }

    /// A server answering every one of `connections` connections with the same bytes.
    pub(crate) fn replying(connections: usize, response: Vec<u8>) -> Self {
        Self::start(connections, move |_, _, stream| {
            let _ = std::io::Write::write_all(stream, &response);
        })
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits for the server thread and returns the request heads it read.
    pub(crate) fn join(mut self) -> Vec<String> {
        if let Some(t) = self.thread.take() {
            t.join().expect("the server thread does not panic");
        }
        self.heads.try_iter().collect()
    }
}
