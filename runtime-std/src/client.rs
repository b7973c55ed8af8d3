//! What both runtimes' clients are built from and what they report.
//!
//! A client is a session plus the IO it needs: sockets, a [`DiskPool`](crate::workers::DiskPool)
//! and a [`HashPool`](crate::workers::HashPool). The blocking runtime's
//! [`BlockingClient`](crate::blocking::BlockingClient) and the mio runtime's `Client` take the
//! same [`ClientConfig`] and report the same [`ClientEvent`]s, so an application (or a test) can
//! switch runtimes without touching anything else.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bitshoal_core::id::{RequestId, TorrentId};
use bitshoal_core::session::{Config, Event, HttpReply, Input, StorageError};

use crate::http::{HttpDone, HttpOptions, HttpPool, HttpRequest};
use crate::resolve::{ResolveRequest, Resolved, Resolver};
use crate::storage::StorageConfig;
use crate::workers::{Completion, Sink};

/// How to build a client, on either runtime.
///
/// `ClientConfig::default()` draws the session's `rng_seed` from OS entropy (see
/// [`random_seed`]), so every client gets its own peer id and tracker key; tests and
/// simulations that need reproducible runs set a fixed seed.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The session's configuration.
    pub session: Config,
    /// Where to accept peers; `None` for no listener.
    pub listen: Option<SocketAddr>,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Disk worker threads (0: the storage default).
    pub disk_threads: usize,
    /// Hashing threads (0: one per core).
    pub hash_threads: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: Config {
                rng_seed: random_seed(),
                ..Config::default()
            },
            listen: None,
            storage: StorageConfig::default(),
            disk_threads: 0,
            hash_threads: 0,
        }
    }
}

/// A fresh random seed for a session's RNG, from OS entropy.
///
/// std's `RandomState` keys its hasher from the operating system's random source (once per
/// thread, then varied per instance); hashing a process-wide counter and the wall clock with a
/// fresh one gives distinct, unpredictable seeds without another dependency.
pub fn random_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((call, time, std::process::id()))
}

/// A client's tracker-facing IO services: the session's `Output::Http` GETs on an
/// [`HttpPool`] and its `Output::Resolve` lookups on a [`Resolver`], each started on first use
/// (a client without trackers starts no threads for them). Their results reach the client's
/// [`Sink`] as [`Completion::Input`]s (`Input::HttpDone`, `Input::Resolved`), ready for the
/// session.
#[derive(Debug)]
pub struct NetServices {
    sink: Sink,
    http: Option<HttpPool>,
    resolver: Option<Resolver>,
}

impl NetServices {
    /// Services delivering to `sink`.
    pub fn new(sink: Sink) -> Self {
        let inputs = Sink::new(move |completion| match completion {
            Completion::Http(done) => sink.deliver(Completion::Input(http_input(done))),
            Completion::Resolved(done) => sink.deliver(Completion::Input(resolved_input(done))),
            other => sink.deliver(other),
        });
        Self {
            sink: inputs,
            http: None,
            resolver: None,
        }
    }

    /// Performs `Output::Http { req, url, max_body }`: a GET of `url` whose body may not exceed
    /// `max_body` bytes.
    pub fn http(&mut self, req: RequestId, url: String, max_body: usize) {
        let sink = &self.sink;
        let pool = self
            .http
            .get_or_insert_with(|| HttpPool::new(0, sink.clone()));
        pool.submit(HttpRequest {
            id: req.get(),
            url,
            options: HttpOptions {
                max_body,
                ..HttpOptions::default()
            },
        });
    }

    /// Performs `Output::Resolve { req, host, port }`.
    pub fn resolve(&mut self, req: RequestId, host: String, port: u16) {
        let sink = &self.sink;
        let resolver = self
            .resolver
            .get_or_insert_with(|| Resolver::new(0, sink.clone()));
        resolver.resolve(ResolveRequest {
            id: req.get(),
            host,
            port,
        });
    }
}

/// The session's `Input::HttpDone` for a finished GET: the status and body, or the error's
/// `Display` (which never shows a passkey: see [`RedactedUrl`](crate::http::RedactedUrl)).
fn http_input(done: HttpDone) -> Input {
    Input::HttpDone {
        req: RequestId::from_raw(done.id),
        result: done
            .result
            .map(|r| HttpReply {
                status: r.status,
                body: r.body.into(),
            })
            .map_err(|e| e.to_string()),
    }
}

/// The session's `Input::Resolved` for a finished lookup.
fn resolved_input(done: Resolved) -> Input {
    Input::Resolved {
        req: RequestId::from_raw(done.id),
        result: done.result.map_err(|e| e.to_string()),
    }
}

/// What happened, for the application: the session's events, plus storage syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An event from the session.
    Session(Event),
    /// A finished torrent's files are created (empty ones too) and synced to disk, or failed to.
    Synced {
        /// The torrent.
        torrent: TorrentId,
        /// Whether all went well.
        result: Result<(), StorageError>,
    },
}

#[cfg(test)]
mod tests {
    use bitshoal_core::session::Session;

    use super::*;

    #[test]
    fn default_configs_get_distinct_seeds_and_so_distinct_peer_ids() {
        let a = ClientConfig::default();
        let b = ClientConfig::default();
        assert_ne!(a.session.rng_seed, b.session.rng_seed);
        assert_ne!(
            Session::new(a.session).peer_id(),
            Session::new(b.session).peer_id()
        );
    }
}
