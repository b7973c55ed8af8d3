//! Worker threads for the IO services, and how their completions reach the event loop.
//!
//! [`DiskPool`] runs [`DiskCmd`]s on a [`Storage`], [`HashPool`] runs [`HashJob`]s, and
//! [`Resolver`](crate::resolve::Resolver) resolves host names, [`HttpPool`](crate::http::HttpPool)
//! runs HTTP GETs; each on its own threads, so a
//! slow disk never holds up hashing and a slow name server holds up neither. Every finished job
//! becomes one [`Completion`] handed to a [`Sink`]: a callback, or a channel plus a wake
//! function (`mio::Waker::wake` for the mio runtime, a condvar or nothing for a thread that
//! blocks on the channel).
//!
//! # Queues
//!
//! Queues are unbounded: the session bounds the work it hands out (reads by
//! `Config::max_disk_read_bytes`; writes and hashes by the blocks it requested from peers), so
//! a second bound here would only duplicate it, or deadlock an event loop that blocks on a full
//! queue while the workers wait for it to drain their completions.
//!
//! # Shutdown
//!
//! Dropping a pool lets its workers finish every job already submitted, delivers their
//! completions, then joins the threads.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use bitshoal_core::id::TorrentId;
use bitshoal_core::session::{DiskCmd, HashJob, Input, StorageError};

use crate::hash;
use crate::http::HttpDone;
use crate::resolve::Resolved;
use crate::storage::{DiskJob, Storage};

/// Disk worker threads when none are configured: disk jobs wait on the device, not the CPU, so
/// a few more threads than cores keep it busy.
pub const DEFAULT_DISK_THREADS: usize = 4;

/// A finished job, for the thread that owns the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Completion {
    /// A disk or hash result: hand it to `Session::handle_input`.
    Input(Input),
    /// [`DiskPool::finish`] is done.
    Finished {
        /// The torrent.
        torrent: TorrentId,
        /// Whether its files are all created and synced.
        result: Result<(), StorageError>,
    },
    /// A host name lookup is done.
    Resolved(Resolved),
    /// An HTTP GET is done.
    Http(HttpDone),
}

/// Where workers deliver completions; called on worker threads, cheap to clone.
#[derive(Clone)]
pub struct Sink(Arc<dyn Fn(Completion) + Send + Sync>);

impl Sink {
    /// Calls `deliver` with each completion, on the worker that finished it.
    pub fn new(deliver: impl Fn(Completion) + Send + Sync + 'static) -> Self {
        Self(Arc::new(deliver))
    }

    /// Sends each completion on a channel, then calls `wake` (e.g. `mio::Waker::wake`) so the
    /// receiving loop notices. Completions sent after the receiver is dropped are discarded.
    pub fn channel(wake: impl Fn() + Send + Sync + 'static) -> (Self, mpsc::Receiver<Completion>) {
        let (tx, rx) = mpsc::channel();
        let sink = Self::new(move |c| {
            if tx.send(c).is_ok() {
                wake();
            }
        });
        (sink, rx)
    }

    /// Hands over one completion.
    pub fn deliver(&self, completion: Completion) {
        (self.0)(completion);
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sink(..)")
    }
}

type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of threads taking tasks from one queue, in submission order.
pub(crate) struct Workers {
    queue: Option<mpsc::Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// `count` threads (at least one) named `name-N`.
    pub(crate) fn new(name: &str, count: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..count.max(1))
            .map(|i| {
                let rx = Arc::clone(&rx);
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || loop {
                        // The lock is held only while waiting for a task, not while running it.
                        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            // A panicking task is a bug (its completion is lost, the panic
                            // hook reports it); the worker lives on for the other tasks.
                            Ok(task) => {
                                let _ = panic::catch_unwind(AssertUnwindSafe(task));
                            }
                            Err(_) => break, // the pool was dropped and the queue is empty
                        }
                    })
                    .expect("the OS can start a worker thread")
            })
            .collect();
        Self {
            queue: Some(tx),
            threads,
        }
    }

    /// Queues `task` for the next free thread.
    pub(crate) fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        if let Some(queue) = &self.queue {
            // Workers outlive the sender, so the queue is open while `self` lives.
            let _ = queue.send(Box::new(task));
        }
    }

    /// A handle that queues tasks from anywhere, a running task included. Tasks queued through
    /// it still run before the pool's threads end.
    pub(crate) fn spawner(&self) -> Option<Spawner> {
        self.queue.clone().map(Spawner)
    }

    /// The number of threads.
    pub(crate) fn len(&self) -> usize {
        self.threads.len()
    }
}

/// Queues tasks on a [`Workers`] pool (see [`Workers::spawner`]).
#[derive(Clone)]
pub(crate) struct Spawner(mpsc::Sender<Task>);

impl Spawner {
    /// Queues `task` for the next free thread.
    pub(crate) fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        // The threads take tasks until every sender is gone, this one included.
        let _ = self.0.send(Box::new(task));
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The number of threads for a configured count: 0 means one per available core.
fn threads_or_cores(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Runs [`DiskCmd`]s on worker threads.
///
/// Commands are bound to their torrent on the submitting thread, in submission order, so a
/// torrent's `Close` releases its files only after every command submitted before it is done
/// (see [`storage`](crate::storage)'s ordering rules).
///
/// Jobs are run in batches: submitted jobs wait in a queue, and a worker that picks up the
/// queue takes everything in it (up to [`MAX_DISK_BATCH`] jobs) and runs it with
/// [`DiskJob::run_batch`], which writes a piece's consecutive blocks with one vectored write.
/// While one worker runs a batch, jobs submitted meanwhile form the next batch for another
/// worker, so the pool stays as parallel as before and batches grow exactly when the disk is
/// the slower side.
#[derive(Debug)]
pub struct DiskPool {
    storage: Storage,
    sink: Sink,
    workers: Workers,
    /// Prepared jobs no worker has taken yet; a drain task is queued whenever it is not empty.
    pending: Arc<Mutex<Vec<DiskJob>>>,
}

/// The most jobs one worker takes from the queue at once (the rest go to the next worker).
pub const MAX_DISK_BATCH: usize = 256;

impl DiskPool {
    /// A pool of `threads` workers (0: [`DEFAULT_DISK_THREADS`]) on `storage`.
    pub fn new(storage: Storage, threads: usize, sink: Sink) -> Self {
        let threads = if threads == 0 {
            DEFAULT_DISK_THREADS
        } else {
            threads
        };
        Self {
            storage,
            sink,
            workers: Workers::new("bitshoal-disk", threads),
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Queues a command; reads and writes deliver [`Completion::Input`] with
    /// [`Input::DiskDone`].
    pub fn submit(&self, cmd: DiskCmd) {
        let job = self.storage.prepare(cmd);
        let was_empty = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.push(job);
            pending.len() == 1
        };
        if was_empty {
            self.spawn_drain();
        }
    }

    /// Queues a task that takes a batch from `pending` and runs it (and queues another such
    /// task if it left jobs behind), so a non-empty queue always has a drain on its way.
    fn spawn_drain(&self) {
        if let Some(spawner) = self.workers.spawner() {
            spawn_drain(spawner, Arc::clone(&self.pending), self.sink.clone());
        }
    }

    /// Queues [`Storage::finish`] for `torrent`, delivering [`Completion::Finished`].
    pub fn finish(&self, torrent: TorrentId) {
        let storage = self.storage.clone();
        let sink = self.sink.clone();
        self.workers.spawn(move || {
            let result = storage.finish(torrent);
            sink.deliver(Completion::Finished { torrent, result });
        });
    }

    /// The storage the pool runs on (to [`register`](Storage::register) download directories).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

/// Queues a task that takes up to [`MAX_DISK_BATCH`] jobs from `pending` and runs them,
/// queueing another such task first if it left jobs behind.
fn spawn_drain(spawner: Spawner, pending: Arc<Mutex<Vec<DiskJob>>>, sink: Sink) {
    let again = spawner.clone();
    spawner.spawn(move || {
        let batch: Vec<DiskJob> = {
            let mut queue = pending.lock().unwrap_or_else(PoisonError::into_inner);
            let take = queue.len().min(MAX_DISK_BATCH);
            let batch = queue.drain(..take).collect();
            if !queue.is_empty() {
                spawn_drain(again, Arc::clone(&pending), sink.clone());
            }
            batch
        };
        DiskJob::run_batch(batch, |input| sink.deliver(Completion::Input(input)));
    });
}

/// Runs [`HashJob`]s on worker threads.
#[derive(Debug)]
pub struct HashPool {
    sink: Sink,
    workers: Workers,
}

impl HashPool {
    /// A pool of `threads` workers (0: one per available core).
    pub fn new(threads: usize, sink: Sink) -> Self {
        Self {
            sink,
            workers: Workers::new("bitshoal-hash", threads_or_cores(threads)),
        }
    }

    /// Queues a job; delivers [`Completion::Input`] with [`Input::Hashed`].
    pub fn submit(&self, job: HashJob) {
        let sink = self.sink.clone();
        self.workers.spawn(move || {
            if let Some(input) = hash::run(job) {
                sink.deliver(Completion::Input(input));
            }
        });
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

#[cfg(test)]
mod tests;
