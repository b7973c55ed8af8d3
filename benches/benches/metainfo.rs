//! Bencode decoding and metainfo loading of large torrents.
//!
//! `cargo bench -p bitshoal-benches --bench metainfo`; for libtorrent's figures on the same files,
//! `cargo run --release -p bitshoal-benches --bin fixtures -- target/bench-fixtures` and then
//! `/usr/bin/python3 benches/scripts/lt_load.py target/bench-fixtures`.

use bitshoal_core::bencode;
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

criterion_group!(benches, bencode_decode);
criterion_main!(benches);
