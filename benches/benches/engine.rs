//! Torrent-engine policy benchmarks: the piece picker on a large torrent with many peers, and
//! one choker round over many peers.
//!
//! `cargo bench -p bitshoal-benches --bench engine`.
//!
//! - `picker/pick_and_receive_block`: 100,000 pieces of 256 KiB (16 blocks), 200 peers with
//!   random half-full bitfields; each step picks up to 16 blocks for the next peer and marks
//!   them received (completing pieces). Reported per picked block.
//! - `picker/have`: one `have` (availability +1 of a random piece), per message.
//! - `picker/bitfield_100k`: a peer's whole bitfield joining and leaving.
//! - `choker/round_1000_peers`: one leeching and one seeding round over 1,000 peers.

use std::time::{Duration, Instant as WallClock};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::choker::{self, ChokerConfig, PeerSnapshot};
use bitshoal_core::metainfo::{Layout, Metainfo};
use bitshoal_core::picker::{PeerPieces, Picker};
use bitshoal_core::rng::Rng;
use bitshoal_core::time::Instant;
use bitshoal_core::wire::BlockRequest;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const PIECES: u32 = 100_000;
const PEERS: usize = 200;

fn layout() -> Layout {
    let torrent = bitshoal_benches::large_v1_torrent(PIECES as usize);
    Metainfo::from_bytes(&torrent)
        .expect("fixture torrent loads")
        .info()
        .layout()
        .clone()
}

fn random_bitfield(rng: &mut Rng, density_percent: u64) -> Bitfield {
    let mut b = Bitfield::new(PIECES);
    for i in 0..PIECES {
        if rng.below(100) < density_percent {
            b.set(i, true);
        }
    }
    b
}

/// A picker with `PEERS` peers of random half-full bitfields.
fn swarm(layout: &Layout, rng: &mut Rng) -> (Picker<u32>, Vec<Bitfield>) {
    let mut picker = Picker::new(layout, &Bitfield::new(PIECES), rng.fork());
    let peers: Vec<Bitfield> = (0..PEERS).map(|_| random_bitfield(rng, 50)).collect();
    for b in &peers {
        picker.replace_peer_pieces(&Bitfield::new(PIECES), b);
    }
    (picker, peers)
}

fn picker_benches(c: &mut Criterion) {
    let layout = layout();
    let mut group = c.benchmark_group("picker");

    let mut rng = Rng::from_seed(1);
    let (template, peers) = swarm(&layout, &mut rng);
    let mut picker = template.clone();
    let mut peer = 0usize;
    let mut out: Vec<BlockRequest> = Vec::with_capacity(16);
    group.bench_function("pick_and_receive_block", |b| {
        b.iter_custom(|blocks| {
            let mut done = 0u64;
            let mut elapsed = Duration::ZERO;
            while done < blocks {
                if picker.is_finished() {
                    picker = template.clone();
                }
                let start = WallClock::now();
                out.clear();
                let view = PeerPieces {
                    has: &peers[peer],
                    allowed_fast: None,
                    suggested: &[],
                    outstanding: 0,
                };
                picker.pick(peer as u32, &view, 16, &mut out);
                for r in &out {
                    if let Some(received) = picker.block_received(peer as u32, *r) {
                        if received.piece_complete {
                            picker.piece_done(r.index);
                        }
                    }
                }
                elapsed += start.elapsed();
                done += out.len().max(1) as u64;
                peer = (peer + 1) % PEERS;
            }
            elapsed
        })
    });

    group.bench_function("have", |b| {
        let mut rng = Rng::from_seed(2);
        let (mut picker, _) = swarm(&layout, &mut rng);
        b.iter(|| {
            let piece = rng.below(u64::from(PIECES)) as u32;
            picker.peer_has(black_box(piece), false);
        })
    });

    group.bench_function("bitfield_100k_join_and_leave", |b| {
        let mut rng = Rng::from_seed(3);
        let (mut picker, _) = swarm(&layout, &mut rng);
        let joining = random_bitfield(&mut rng, 50);
        b.iter(|| {
            picker.replace_peer_pieces(&Bitfield::new(PIECES), black_box(&joining));
            picker.peer_left(&joining);
        })
    });
    group.finish();
}

fn choker_benches(c: &mut Criterion) {
    let mut rng = Rng::from_seed(4);
    let now = Instant::from_micros(3_600_000_000);
    let peers: Vec<PeerSnapshot<u32>> = (0..1000u32)
        .map(|id| PeerSnapshot {
            id,
            interested: rng.below(4) != 0,
            am_choking: rng.below(10) != 0,
            download_rate: rng.below(1_000_000),
            upload_rate: rng.below(1_000_000),
            snubbed: rng.below(20) == 0,
            connected_at: Instant::from_micros(rng.below(now.as_micros())),
            last_unchoked: (rng.below(2) == 0)
                .then(|| Instant::from_micros(rng.below(now.as_micros()))),
            optimistic_since: None,
        })
        .collect();
    let config = ChokerConfig::DEFAULT;
    let mut group = c.benchmark_group("choker");
    for (name, seeding) in [
        ("round_1000_peers_leeching", false),
        ("round_1000_peers_seeding", true),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| choker::unchoke(black_box(&peers), seeding, &config, now, &mut rng))
        });
    }
    group.finish();
}

criterion_group!(benches, picker_benches, choker_benches);
criterion_main!(benches);
