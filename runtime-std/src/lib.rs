//! The blocking runtime of bitshoal and the IO services both runtimes share.
//!
//! The IO services perform what the core's `Session` asks for and report back:
//!
//! - [`storage`]: a [`Storage`](storage::Storage) runs `Output::Disk` commands with positional
//!   reads and writes across multi-file layouts.
//! - [`hash`]: SHA-1 / SHA-256 of `Output::Hash` jobs, with the CPU's SHA instructions.
//! - [`workers`]: [`DiskPool`](workers::DiskPool) and [`HashPool`](workers::HashPool) run those
//!   on threads and hand each result to a [`Sink`](workers::Sink), which wakes the event loop.
//! - [`resolve`]: host name lookups on their own threads.
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
pub mod create;
pub mod hash;
pub mod http;
pub mod resolve;
pub mod storage;
pub mod workers;

#[cfg(test)]
mod testutil;
