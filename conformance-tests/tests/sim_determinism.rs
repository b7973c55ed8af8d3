//! The same seed gives the same run, output for output; another seed gives another run.

use bitshoal_conformance::sim::{LinkProfile, SwarmBuilder, TorrentSpec};
use bitshoal_core::time::Duration;

/// A swarm of one seed and three leechers over bandwidth-limited links; returns the trace
/// hash, the finishing time and the number of outputs.
fn run(seed: u64) -> ([u8; 20], u64, u64) {
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(200_000, 16 * 1024))
        .seeds(1)
        .leechers(3)
        .seed_link(LinkProfile::symmetric(400_000, Duration::from_millis(7)))
        .leecher_link(LinkProfile::symmetric(1_000_000, Duration::from_millis(3)))
        .build(seed);
    swarm
        .run_until_finished(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    // Let the last haves and interest changes settle, so the trace covers them too.
    swarm.sim.run_for(Duration::from_secs(1)).unwrap();
    (
        swarm.sim.trace_hash(),
        swarm.sim.now().as_micros(),
        swarm.sim.output_count(),
    )
}

#[test]
fn the_same_seed_replays_the_same_trace() {
    let a = run(5);
    let b = run(5);
    assert!(a.2 > 100, "the scenario did something");
    assert_eq!(a, b);
}

#[test]
fn different_seeds_give_different_traces() {
    let a = run(5);
    let b = run(6);
    assert_ne!(a.0, b.0);
}
