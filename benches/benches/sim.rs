//! Whole-simulation speed: a swarm of simulated sessions sharing one torrent, run to the end
//! in the deterministic simulator. Not a criterion benchmark (one run is the measurement):
//! it prints virtual seconds simulated per wall-clock second and simulator events per second.
//!
//! `cargo bench -p bitshoal-benches --bench sim` runs 1,000 peers sharing 100 MiB. Set
//! `BITSHOAL_SIM_PEERS` and `BITSHOAL_SIM_MIB` for another size, `BITSHOAL_SIM_SEED` for
//! another swarm.
//!
//! The swarm: one seed and N leechers on symmetric 10 MB/s links with 20 ms latency, 256 KiB
//! pieces. Each leecher connects to 10 random earlier peers (the first 40 also to the seed),
//! so the swarm is a random graph, as trackers make one. Every node serves the torrent from
//! one shared copy of its content (`MemDisk::share`: writes are dropped, reads are slices), so
//! memory does not grow with the number of peers; every block still crosses the simulated
//! network and every piece is SHA-1 hashed by its receiver.

use std::time::Instant as WallClock;

use bitshoal_conformance::sim::{LinkProfile, NodeConfig, Sim, TestTorrent, TorrentSpec};
use bitshoal_core::time::Duration;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects a
    // quick run.
    let benching = std::env::args().any(|a| a == "--bench");
    let peers = env("BITSHOAL_SIM_PEERS", if benching { 1000 } else { 20 }) as usize;
    let mib = env("BITSHOAL_SIM_MIB", if benching { 100 } else { 2 });
    let seed = env("BITSHOAL_SIM_SEED", 1);

    let setup = WallClock::now();
    let mut sim = Sim::new(seed);
    sim.set_step_cap(u64::MAX);
    sim.set_tracing(false);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(mib << 20, 256 * 1024));
    let link = LinkProfile::symmetric(10_000_000, Duration::from_millis(20));
    let config = NodeConfig {
        link,
        ..NodeConfig::default()
    };
    let origin = sim.add_node(config.clone());
    sim.disk_mut(origin)
        .share(&torrent.info, torrent.content.clone());
    let seed_torrent = sim.seed_torrent(origin, &torrent);
    let mut nodes = vec![(origin, seed_torrent)];
    for i in 0..peers {
        let node = sim.add_node(config.clone());
        sim.disk_mut(node)
            .share(&torrent.info, torrent.content.clone());
        let t = sim.add_torrent(node, &torrent);
        let mut targets = Vec::new();
        if i < 40 {
            targets.push(0);
        }
        for _ in 0..10.min(nodes.len()) {
            let k = sim.rng().below(nodes.len() as u64) as usize;
            if !targets.contains(&k) {
                targets.push(k);
            }
        }
        for k in targets {
            let addr = sim.node(nodes[k].0).addr();
            // A full peer refuses; the swarm is still connected through the others.
            let _ = sim.connect(node, t, addr);
        }
        nodes.push((node, t));
    }
    let setup = setup.elapsed();

    let start_virtual = sim.now();
    let start_steps = sim.steps();
    let wall = WallClock::now();
    let leechers = nodes[1..].to_vec();
    sim.run_until(
        |s| leechers.iter().all(|&(n, t)| s.node(n).is_finished(t)),
        Duration::from_secs(3600),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let wall = wall.elapsed().as_secs_f64();
    let virtual_secs = (sim.now() - start_virtual).as_micros() as f64 / 1e6;
    let steps = sim.steps() - start_steps;
    println!(
        "sim swarm: {peers} leechers + 1 seed, {mib} MiB, seed {seed}: setup {:.1} s; \
         {virtual_secs:.1} virtual s in {wall:.1} wall s = {:.2} virtual s per wall s; \
         {steps} events = {:.0} events per s; {} outputs",
        setup.as_secs_f64(),
        virtual_secs / wall,
        steps as f64 / wall,
        sim.output_count(),
    );
}
