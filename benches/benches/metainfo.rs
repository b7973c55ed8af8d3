//! Bencode decoding and metainfo loading of large torrents.
//!
//! `cargo bench -p bitshoal-benches --bench metainfo`; for libtorrent's figures on the same files,
//! `cargo run --release -p bitshoal-benches --bin fixtures -- target/bench-fixtures` and then
//! `/usr/bin/python3 benches/scripts/lt_load.py target/bench-fixtures`.

use bitshoal_core::bencode;
use bitshoal_core::metainfo::Metainfo;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn bencode_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("bencode_decode");
    for (name, bytes) in [
        (
            "v1-100k-pieces",
            bitshoal_benches::large_v1_torrent(100_000),
        ),
        ("v2-10k-files", bitshoal_benches::large_v2_torrent(10_000)),
    ] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| bencode::decode(black_box(&bytes)).expect("fixture decodes"))
        });
    }
    group.finish();
}

/// A full load: decode, validate every file and path, check v2 piece layers against their
/// roots, hash the info dictionary (SHA-1 and/or SHA-256), and build the layout. What
/// libtorrent's `torrent_info(bytes)` does.
fn metainfo_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("metainfo_load");
    for (name, bytes) in [
        (
            "v1-100k-pieces",
            bitshoal_benches::large_v1_torrent(100_000),
        ),
        ("v2-10k-files", bitshoal_benches::large_v2_torrent(10_000)),
    ] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| Metainfo::from_bytes(black_box(&bytes)).expect("fixture loads"))
        });
    }
    group.finish();
}

criterion_group!(benches, bencode_decode, metainfo_load);
criterion_main!(benches);
