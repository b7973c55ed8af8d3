use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bitshoal_core::create::Version;
use bitshoal_core::id::RequestId;
use bitshoal_core::session::{Digest, DiskDone, HashAlgorithm};
use bytes::Bytes;
use sha1::{Digest as _, Sha1};

use super::*;
use crate::storage::StorageConfig;
use crate::testutil::{content, Fixture};

/// Every completion left in `rx` once all senders are gone (the pools were dropped, which
/// joins their workers); the timeout only turns a bug into a failure instead of a hang.
fn drain(rx: &mpsc::Receiver<Completion>) -> Vec<Completion> {
    let mut out = Vec::new();
    while let Ok(c) = rx.recv_timeout(Duration::from_secs(60)) {
        out.push(c);
    }
    out
}

/// A sink on a channel that counts its wake-ups.
fn counting_sink() -> (Sink, mpsc::Receiver<Completion>, Arc<AtomicUsize>) {
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = Arc::clone(&wakes);
    let (sink, rx) = Sink::channel(move || {
        w.fetch_add(1, Ordering::SeqCst);
    });
    (sink, rx, wakes)
}

#[test]
fn disk_pool_delivers_every_completion_once_and_wakes_for_each() {
    let mut f = Fixture::new(
        "pool",
        &[("a", 100_000), ("b", 77_777), ("c/d", 150_000)],
        Version::V1,
        32_768,
    );
    let (sink, rx, wakes) = counting_sink();
    let pool = DiskPool::new(Storage::new(StorageConfig::default()), 3, sink);
    assert_eq!(pool.threads(), 3);
    pool.storage().register(f.torrent, f.root());
    pool.submit(f.take_open());
    let blocks = f.blocks();
    for (n, (spans, data)) in blocks.iter().enumerate() {
        pool.submit(f.write(n as u64, spans, data.clone()));
    }
    pool.finish(f.torrent); // may run before some writes: it only syncs what is written
    drop(pool);
    let done = drain(&rx);
    assert_eq!(wakes.load(Ordering::SeqCst), done.len());
    let mut seen = HashMap::new();
    let mut finished = 0;
    for c in done {
        match c {
            Completion::Input(Input::DiskDone { req, result }) => {
                assert!(
                    matches!(result, Ok(DiskDone::Written)),
                    "{req:?}: {result:?}"
                );
                *seen.entry(req.get()).or_insert(0) += 1;
            }
            Completion::Finished { torrent, result } => {
                assert_eq!(torrent, f.torrent);
                result.unwrap();
                finished += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(finished, 1);
    assert_eq!(seen.len(), blocks.len());
    assert!(seen.values().all(|&n| n == 1), "a completion came twice");
    for i in f.data_files() {
        assert_eq!(
            fs::read(f.stored(i)).unwrap(),
            fs::read(f.original(i)).unwrap()
        );
    }
}

#[test]
fn disk_pool_runs_close_after_the_jobs_submitted_before_it() {
    let mut f = Fixture::new("closing", &[("a", 300_000)], Version::V1, 65_536);
    let (sink, rx) = Sink::channel(|| {});
    let storage = Storage::new(StorageConfig::default());
    let pool = DiskPool::new(storage.clone(), 4, sink);
    storage.register(f.torrent, f.root());
    pool.submit(f.take_open());
    let blocks = f.blocks();
    for (n, (spans, data)) in blocks.iter().enumerate() {
        pool.submit(f.write(n as u64, spans, data.clone()));
    }
    pool.submit(DiskCmd::Close { torrent: f.torrent });
    let (spans, data) = &blocks[0];
    pool.submit(f.write(999, spans, data.clone()));
    drop(pool);
    let mut ok = 0;
    for c in drain(&rx) {
        let Completion::Input(Input::DiskDone { req, result }) = c else {
            panic!("unexpected {c:?}")
        };
        if req == RequestId::from_raw(999) {
            assert!(result.is_err(), "a write after Close must fail");
        } else {
            result.unwrap();
            ok += 1;
        }
    }
    assert_eq!(ok, blocks.len());
    assert_eq!(storage.open_files(), 0, "Close released the handles");
    assert_eq!(fs::read(f.stored(0)).unwrap(), content(1, 300_000));
}

#[test]
fn hash_pool_digests_equal_sha1_of_the_concatenation() {
    let (sink, rx, wakes) = counting_sink();
    let pool = HashPool::new(0, sink);
    assert!(pool.threads() >= 1);
    let mut expected = HashMap::new();
    for n in 0..40u64 {
        // Pieces of 1 to 5 blocks, the last one short.
        let blocks: Vec<Bytes> = (0..1 + n % 5)
            .map(|b| {
                let len = if b == n % 5 {
                    1 + (n as usize * 97) % 16_384
                } else {
                    16_384
                };
                Bytes::from(content((n + b) as u8, len))
            })
            .collect();
        let joined: Vec<u8> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
        expected.insert(n, <[u8; 20]>::from(Sha1::digest(&joined)));
        pool.submit(HashJob {
            req: RequestId::from_raw(n),
            algorithm: HashAlgorithm::Sha1,
            data: blocks,
        });
    }
    drop(pool);
    let done = drain(&rx);
    assert_eq!(done.len(), 40);
    assert_eq!(wakes.load(Ordering::SeqCst), 40);
    for c in done {
        let Completion::Input(Input::Hashed { req, digest }) = c else {
            panic!("unexpected {c:?}")
        };
        let want = expected.remove(&req.get()).expect("each id once");
        assert_eq!(digest, Digest::Sha1(want));
    }
    assert!(expected.is_empty());
}

#[test]
fn a_callback_sink_receives_completions_on_worker_threads() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = Arc::clone(&names);
    let sink = Sink::new(move |c| {
        assert!(matches!(c, Completion::Input(Input::Hashed { .. })));
        let name = thread::current().name().unwrap_or_default().to_string();
        n.lock().unwrap().push(name);
    });
    let pool = HashPool::new(2, sink);
    for n in 0..4 {
        pool.submit(HashJob {
            req: RequestId::from_raw(n),
            algorithm: HashAlgorithm::Sha1,
            data: vec![Bytes::from_static(b"x")],
        });
    }
    drop(pool);
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 4);
    assert!(
        names.iter().all(|n| n.starts_with("bitshoal-hash-")),
        "{names:?}"
    );
}

#[test]
fn thread_counts_default_sensibly() {
    let (sink, _rx) = Sink::channel(|| {});
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(HashPool::new(0, sink.clone()).threads(), cores);
    assert_eq!(HashPool::new(3, sink.clone()).threads(), 3);
    let disk = DiskPool::new(Storage::new(StorageConfig::default()), 0, sink);
    assert_eq!(disk.threads(), DEFAULT_DISK_THREADS);
}

#[test]
fn a_panicking_task_does_not_stop_its_worker() {
    let (sink, rx) = Sink::channel(|| {});
    let workers = Workers::new("test", 1);
    workers.spawn(|| panic!("a bug in one task (expected in this test)"));
    let s = sink.clone();
    workers.spawn(move || {
        s.deliver(Completion::Input(Input::Hashed {
            req: RequestId::from_raw(1),
            digest: Digest::Sha1([0; 20]),
        }))
    });
    drop((workers, sink));
    assert_eq!(drain(&rx).len(), 1);
}
