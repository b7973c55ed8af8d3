//! What both runtimes' clients are built from and what they report.
//!
//! A client is a session plus the IO it needs: sockets, a [`DiskPool`](crate::workers::DiskPool)
//! and a [`HashPool`](crate::workers::HashPool). The blocking runtime's
//! [`BlockingClient`](crate::blocking::BlockingClient) and the mio runtime's `Client` take the
//! same [`ClientConfig`] and report the same [`ClientEvent`]s, so an application (or a test) can
//! switch runtimes without touching anything else.

use std::net::SocketAddr;

use bitshoal_core::id::TorrentId;
use bitshoal_core::session::{Config, Event, StorageError};

use crate::storage::StorageConfig;

/// How to build a client, on either runtime.
#[derive(Clone, Debug, Default)]
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
