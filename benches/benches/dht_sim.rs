//! The 10,000-node simulated DHT network: wall time of one whole scenario (join, announce,
//! 200 lookups), with its lookup statistics.
//!
//! `cargo bench -p bitshoal-benches --bench dht_sim` (one run of each of three scenarios;
//! `BITSHOAL_DHT_NODES=<n>` for another size). Not a criterion benchmark: one run takes tens
//! of seconds. Under `cargo test` it runs a 200-node network instead.

use std::time::Instant as WallClock;

use bitshoal_conformance::sim::dht::{run_scenario, Scenario};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then a small
    // network checks that the benchmark still runs.
    let benching = std::env::args().any(|a| a == "--bench");
    let nodes = std::env::var("BITSHOAL_DHT_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 10_000 } else { 200 });
    for (name, scenario) in [
        ("baseline", Scenario::new(10, nodes)),
        (
            "churn 20 %",
            Scenario {
                churn: 0.2,
                ..Scenario::new(11, nodes)
            },
        ),
        (
            "malicious 10 %",
            Scenario {
                malicious: 0.1,
                ..Scenario::new(12, nodes)
            },
        ),
    ] {
        let started = WallClock::now();
        let r = run_scenario(&scenario);
        let wall = started.elapsed();
        println!(
            "dht_sim/{nodes}/{name}: wall {wall:.2?}; found {}/{} ({:.1} %); hops {:.2}; \
             messages/lookup {:.1}; time to peer {:.0?} (p95 {:.0?}); lookup {:.0?}; \
             {} datagrams",
            r.found,
            r.lookups,
            100.0 * r.success_rate(),
            r.mean_hops,
            r.mean_messages,
            r.mean_time_to_peer,
            r.p95_time_to_peer,
            r.mean_duration,
            r.datagrams
        );
    }
}
