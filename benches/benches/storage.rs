//! The IO services: piece hashing (inline and on the pool) and storage writes and reads.
//!
//! `cargo bench -p bitshoal-benches --bench storage`. Hashing should run at the speed of the
//! CPU's SHA extensions (well above 1 GB/s per core with SHA-NI); storage figures measure the
//! path to the OS page cache (positional writes of 16 KiB blocks), not the device.

use std::sync::Arc;

use bitshoal_core::bencode::DictWriter;
use bitshoal_core::id::RequestId;
use bitshoal_core::metainfo::{FileSpan, Info};
use bitshoal_core::session::{
    AddTorrent, Config, DiskCmd, HashAlgorithm, HashJob, Input, Output, Session,
};
use bitshoal_core::time::Instant;
use bitshoal_std::hash;
use bitshoal_std::storage::{DiskJob, Storage, StorageConfig};
use bitshoal_std::workers::{HashPool, Sink};
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const BLOCK: usize = 16 * 1024;

/// A piece of `blocks` 16 KiB blocks, as the session hands it to the hasher.
fn piece(blocks: usize) -> Vec<Bytes> {
    (0..blocks)
        .map(|i| Bytes::from(vec![i as u8; BLOCK]))
        .collect()
}

fn hashing(c: &mut Criterion) {
    let data = piece(64); // 1 MiB
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Bytes((64 * BLOCK) as u64));
    group.bench_function("sha1-1MiB", |b| b.iter(|| hash::sha1_of(black_box(&data))));
    group.bench_function("sha256-1MiB", |b| {
        b.iter(|| hash::sha256_of(black_box(&data)))
    });
    // BEP 52: a v2 piece's worker job (64 leaves) and the whole check with the session's fold
    // of the leaves into the piece-layer node; the one-core bound is `sha256-1MiB`.
    let len = (64 * BLOCK) as u32;
    group.bench_function("v2-leaves-1MiB", |b| {
        b.iter(|| hash::digest(HashAlgorithm::Sha256Blocks { len }, black_box(&data)))
    });
    group.bench_function("v2-verify-1MiB", |b| {
        b.iter(|| {
            let leaves = bitshoal_core::merkle::block_hashes(black_box(&data), len as usize);
            bitshoal_core::merkle::subtree_root(&leaves, 0, 6)
        })
    });
    group.bench_function("hybrid-1MiB", |b| {
        b.iter(|| hash::digest(HashAlgorithm::Sha1AndSha256Blocks { len }, black_box(&data)))
    });
    group.finish();

    // The pool over 64 pieces of 256 KiB, one thread per core, completions on a channel.
    let pieces: Vec<Vec<Bytes>> = (0..64).map(|_| piece(16)).collect();
    let mut group = c.benchmark_group("hash_pool");
    group.throughput(Throughput::Bytes((64 * 16 * BLOCK) as u64));
    group.sample_size(20);
    let (sink, rx) = Sink::channel(|| {});
    let pool = HashPool::new(0, sink);
    group.bench_function(format!("sha1-16MiB-{}-threads", pool.threads()), |b| {
        b.iter(|| {
            for (n, p) in pieces.iter().enumerate() {
                pool.submit(HashJob {
                    req: RequestId::from_raw(n as u64),
                    algorithm: HashAlgorithm::Sha1,
                    data: p.clone(),
                });
            }
            for _ in 0..pieces.len() {
                black_box(rx.recv().expect("the pool is alive"));
            }
        })
    });
    group.finish();
}

/// A single-file v1 torrent of `length` bytes (piece hashes are not checked by storage).
fn torrent(length: usize) -> Arc<Info> {
    let piece_length = 256 * 1024;
    let pieces = vec![0u8; length.div_ceil(piece_length) * 20];
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", length as i64);
    d.bytes(b"name", b"bench.bin");
    d.int(b"piece length", piece_length as i64);
    d.bytes(b"pieces", &pieces);
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("bench torrent is valid"))
}

fn storage(c: &mut Criterion) {
    const LEN: usize = 16 << 20;
    let info = torrent(LEN);
    let mut session = Session::new(Config::default());
    let id = session
        .add_torrent(Instant::ZERO, AddTorrent::new(Arc::clone(&info)))
        .expect("torrent adds");
    let open = std::iter::from_fn(|| session.poll_output())
        .find_map(|o| match o {
            Output::Disk(cmd @ DiskCmd::Open { .. }) => Some(cmd),
            _ => None,
        })
        .expect("add_torrent announces storage");
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = Storage::new(StorageConfig::default());
    storage.register(id, dir.path().to_path_buf());
    let _ = storage.execute(open);
    let block = Bytes::from(vec![0xa5u8; BLOCK]);
    let span = |i: usize| FileSpan {
        file: 0,
        offset: (i * BLOCK) as u64,
        length: BLOCK as u32,
        pad: false,
    };

    // Every write and read must succeed, or the figures would time error paths.
    for i in 0..LEN / BLOCK {
        for cmd in [
            DiskCmd::Write {
                req: RequestId::from_raw(i as u64),
                torrent: id,
                spans: [span(i)].into_iter().collect(),
                data: block.clone(),
            },
            DiskCmd::Read {
                req: RequestId::from_raw(i as u64),
                torrent: id,
                spans: [span(i)].into_iter().collect(),
                length: BLOCK as u32,
            },
        ] {
            match storage.execute(cmd) {
                Some(Input::DiskDone { result: Ok(_), .. }) => {}
                other => panic!("storage failed in the bench setup: {other:?}"),
            }
        }
    }

    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(20);
    group.bench_function("write-16MiB-16KiB-blocks", |b| {
        b.iter(|| {
            for i in 0..LEN / BLOCK {
                let out = storage.execute(DiskCmd::Write {
                    req: RequestId::from_raw(i as u64),
                    torrent: id,
                    spans: [span(i)].into_iter().collect(),
                    data: block.clone(),
                });
                black_box(out);
            }
        })
    });
    group.bench_function("write-16MiB-16KiB-blocks-batched", |b| {
        b.iter(|| {
            // As the disk pool runs them: a batch, consecutive blocks in one `pwritev`.
            let jobs: Vec<_> = (0..LEN / BLOCK)
                .map(|i| {
                    storage.prepare(DiskCmd::Write {
                        req: RequestId::from_raw(i as u64),
                        torrent: id,
                        spans: [span(i)].into_iter().collect(),
                        data: block.clone(),
                    })
                })
                .collect();
            DiskJob::run_batch(jobs, |input| {
                black_box(input);
            });
        })
    });
    group.bench_function("read-16MiB-16KiB-blocks", |b| {
        b.iter(|| {
            for i in 0..LEN / BLOCK {
                let out = storage.execute(DiskCmd::Read {
                    req: RequestId::from_raw(i as u64),
                    torrent: id,
                    spans: [span(i)].into_iter().collect(),
                    length: BLOCK as u32,
                });
                black_box(out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hashing, storage);
criterion_main!(benches);
