//! Wire codec benchmarks: framing a stream of piece messages, and encoding request batches.
//!
//! Framing copies no block (each payload is a slice of the receive buffer), so its throughput,
//! counted in payload bytes, should be orders of magnitude above any network link.

use std::hint::black_box;

use bitshoal_core::wire::{self, BlockRequest, Decoded, Framer, Message, WireLimits};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const BLOCK: usize = 16 * 1024;
const BLOCKS: usize = 1024;

/// `BLOCKS` piece messages of 16 KiB, back to back, as they would arrive from a peer.
fn piece_stream() -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCKS * (BLOCK + 13));
    for i in 0..BLOCKS {
        let msg = Message::Piece {
            index: (i / 16) as u32,
            begin: ((i % 16) * BLOCK) as u32,
            data: Bytes::from(vec![i as u8; BLOCK]),
        };
        if let Some(body) = msg.encode(&mut out) {
            out.extend_from_slice(&body);
        }
    }
    out
}

fn decode_pieces(c: &mut Criterion) {
    let stream = piece_stream();
    let mut group = c.benchmark_group("wire/decode_pieces");
    group.throughput(Throughput::Bytes((BLOCKS * BLOCK) as u64));

    group.bench_function("framer", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut buf| {
                let mut framer = Framer::new(WireLimits::DEFAULT);
                let mut payload = 0usize;
                while let Some(msg) = framer.next(&mut buf).expect("valid stream") {
                    if let Message::Piece { data, .. } = msg {
                        payload += black_box(data).len();
                    }
                }
                assert_eq!(payload, BLOCKS * BLOCK);
                buf
            },
            BatchSize::LargeInput,
        )
    });

    let frozen = Bytes::from(stream.clone());
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut input = frozen.clone();
            let mut payload = 0usize;
            while let Decoded::Ready(msg, consumed) =
                wire::decode(&input, &WireLimits::DEFAULT).expect("valid stream")
            {
                if let Message::Piece { data, .. } = msg {
                    payload += black_box(data).len();
                }
                input = input.slice(consumed..);
                if input.is_empty() {
                    break;
                }
            }
            assert_eq!(payload, BLOCKS * BLOCK);
        })
    });
    group.finish();
}

fn encode_requests(c: &mut Criterion) {
    const BATCH: usize = 256;
    let requests: Vec<BlockRequest> = (0..BATCH)
        .map(|i| BlockRequest {
            index: (i / 16) as u32,
            begin: ((i % 16) * BLOCK) as u32,
            length: BLOCK as u32,
        })
        .collect();
    let mut group = c.benchmark_group("wire/encode_requests");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut buf = Vec::with_capacity(BATCH * 17);
    group.bench_function("batch_256", |b| {
        b.iter(|| {
            buf.clear();
            wire::encode_requests(black_box(&requests).iter().copied(), &mut buf);
            black_box(buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode_pieces, encode_requests);
criterion_main!(benches);
