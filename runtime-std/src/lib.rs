//! The blocking runtime of bitshoal and the IO services both runtimes share.
//!
//! # The blocking runtime
//!
//! [`BlockingClient`](blocking::BlockingClient) drives the session with blocking sockets and
//! plain threads: no event loop, no async. The thread that owns it calls
//! [`turn`](blocking::BlockingClient::turn) in a loop; everything else happens on threads it
//! starts and joins. Embedding it takes a few lines:
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use bitshoal_core::metainfo::Metainfo;
//! use bitshoal_std::blocking::BlockingClient;
//! use bitshoal_std::client::{ClientConfig, ClientEvent};
//!
//! fn download(torrent: &[u8], peer: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//!     let info = Arc::new(Metainfo::from_bytes(torrent)?.into_info());
//!     let config = ClientConfig {
//!         listen: Some("0.0.0.0:6881".parse()?),
//!         ..ClientConfig::default() // a random `session.rng_seed`, so a fresh peer id
//!     };
//!     let mut client = BlockingClient::new(config)?;
//!     let torrent = client.add_torrent(info, "downloads".into(), None)?;
//!     client.connect(torrent, peer)?;
//!     loop {
//!         for event in client.turn(Duration::from_secs(1))? {
//!             if let ClientEvent::Synced { result, .. } = event {
//!                 return Ok(result?); // every piece verified, the files synced
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! The mio runtime (`bitshoal-mio`) runs the same [`ClientConfig`](client::ClientConfig) and
//! reports the same [`ClientEvent`](client::ClientEvent)s with one event-loop thread instead of
//! a reader and a writer per connection; prefer it for many connections.
//!
//! # The IO services
//!
//! The IO services perform what the core's `Session` asks for and report back:
//!
//! - [`storage`]: a [`Storage`](storage::Storage) runs `Output::Disk` commands with positional
//!   reads and writes across multi-file layouts.
//! - [`hash`]: SHA-1 / SHA-256 of `Output::Hash` jobs, with the CPU's SHA instructions.
//! - [`workers`]: [`DiskPool`](workers::DiskPool) and [`HashPool`](workers::HashPool) run those
//!   on threads and hand each result to a [`Sink`](workers::Sink), which wakes the event loop.
//! - [`resolve`]: host name lookups on their own threads.
//! - [`resume`]: resume files (`<state dir>/<info-hash>.resume`, written atomically) and the
//!   file sizes and times they are checked against.
//! - [`http`]: an HTTP(S) GET client for trackers and web seeds, blocking or on worker threads.
//!
//! A runtime wires them like this:
//!
//! ```no_run
//! use bitshoal_core::session::{Output, Session};
//! use bitshoal_std::storage::{Storage, StorageConfig};
//! use bitshoal_std::workers::{Completion, DiskPool, HashPool, Sink};
//!
//! # fn wake_the_loop() {}
//! # fn run(session: &mut Session, now: bitshoal_core::time::Instant) {
//! let (sink, completions) = Sink::channel(wake_the_loop); // e.g. move || waker.wake()
//! let disk = DiskPool::new(Storage::new(StorageConfig::default()), 0, sink.clone());
//! let hash = HashPool::new(0, sink);
//! // After `let id = session.add_torrent(..)?`: disk.storage().register(id, download_dir);
//! while let Some(output) = session.poll_output() {
//!     match output {
//!         Output::Disk(cmd) => disk.submit(cmd),
//!         Output::Hash(job) => hash.submit(job),
//!         _ => { /* sockets, events ... */ }
//!     }
//! }
//! // When woken:
//! for completion in completions.try_iter() {
//!     if let Completion::Input(input) = completion {
//!         session.handle_input(now, input);
//!         // ... and drain poll_output() again.
//!     }
//! }
//! # }
//! ```
pub mod blocking;
pub mod client;
pub mod create;
pub mod hash;
pub mod http;
pub mod lsd;
pub mod resolve;
pub mod resume;
pub mod storage;
pub mod workers;

#[cfg(test)]
mod testutil;
