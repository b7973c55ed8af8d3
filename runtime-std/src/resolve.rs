//! Host name resolution on worker threads, for trackers and web seeds given by name.
//!
//! The system resolver (`getaddrinfo`, through [`ToSocketAddrs`]) blocks, sometimes for
//! seconds, so it runs on its own threads and reports through the same [`Sink`] as the other
//! IO services. IP literals are answered without a lookup.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::workers::{Completion, Sink, Workers};

/// Resolver threads when none are configured.
pub const DEFAULT_RESOLVER_THREADS: usize = 2;

/// A lookup to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveRequest {
    /// The caller's id for it, returned in [`Resolved::id`].
    pub id: u64,
    /// A host name or IP literal.
    pub host: String,
    /// The port to put in each address.
    pub port: u16,
}

/// A finished lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The request's id.
    pub id: u64,
    /// The addresses, in the resolver's order (never empty), or why there are none.
    pub result: Result<Vec<SocketAddr>, ResolveError>,
}

/// Why a host name gave no address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveError {
    /// The name looked up.
    pub host: String,
    /// The system resolver's explanation.
    pub message: String,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve {:?}: {}", self.host, self.message)
    }
}

impl std::error::Error for ResolveError {}

/// Resolves `host` on the calling thread (blocking).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let fail = |message: String| ResolveError {
        host: host.to_string(),
        message,
    };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(fail("no addresses".to_string()));
    }
    Ok(addrs)
}

/// Runs lookups on worker threads, delivering [`Completion::Resolved`].
#[derive(Debug)]
pub struct Resolver {
    sink: Sink,
    workers: Workers,
}

impl Resolver {
    /// A resolver with `threads` workers (0: [`DEFAULT_RESOLVER_THREADS`]).
    pub fn new(threads: usize, sink: Sink) -> Self {
        let threads = if threads == 0 {
            DEFAULT_RESOLVER_THREADS
        } else {
            threads
        };
        Self {
            sink,
            workers: Workers::new("bitshoal-dns", threads),
        }
    }

    /// Queues a lookup.
    pub fn resolve(&self, request: ResolveRequest) {
        let sink = self.sink.clone();
        self.workers.spawn(move || {
            let result = resolve(&request.host, request.port);
            sink.deliver(Completion::Resolved(Resolved {
                id: request.id,
                result,
            }));
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;

    #[test]
    fn resolves_literals_and_localhost_and_reports_failures_once_each() {
        let (sink, rx) = Sink::channel(|| {});
        let resolver = Resolver::new(2, sink);
        let requests = [
            (1, "127.0.0.1", 80),
            (2, "::1", 6881),
            (3, "localhost", 443),
            (4, "bad\0name", 1),
        ];
        for (id, host, port) in requests {
            resolver.resolve(ResolveRequest {
                id,
                host: host.to_string(),
                port,
            });
        }
        drop(resolver); // joins: every completion is in the channel
        let mut got: HashMap<u64, Result<Vec<SocketAddr>, ResolveError>> = HashMap::new();
        while let Ok(c) = rx.recv_timeout(Duration::from_secs(30)) {
            let Completion::Resolved(r) = c else {
                panic!("unexpected completion {c:?}")
            };
            assert!(got.insert(r.id, r.result).is_none(), "id {} twice", r.id);
        }
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[&1].as_ref().unwrap(),
            &[SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80)]
        );
        assert_eq!(got[&2].as_ref().unwrap(), &["[::1]:6881".parse().unwrap()]);
        let local = got[&3].as_ref().unwrap();
        assert!(local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 443));
        let err = got[&4].as_ref().unwrap_err();
        assert_eq!(err.host, "bad\0name");
        assert!(!err.message.is_empty());
    }
}
