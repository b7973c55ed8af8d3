//! Simulated DHT networks (BEP 5): lookups succeed after bootstrap, under churn and with
//! malicious nodes; runs are deterministic. The 10,000-node runs are `#[ignore]`d (run them
//! with `cargo test --release -p bitshoal-conformance --test sim_dht -- --ignored --nocapture`).

use bitshoal_conformance::sim::dht::{run_scenario, Scenario, ScenarioReport};

fn show(name: &str, r: &ScenarioReport) {
    println!(
        "{name}: {}/{} found ({:.1} %), finished {}, hops {:.2}, messages/lookup {:.1}, \
         time to peer {:?} (p95 {:?}), lookup duration {:?}, table {:.0}, announces acked {}, \
         datagrams {}",
        r.found,
        r.lookups,
        100.0 * r.success_rate(),
        r.finished,
        r.mean_hops,
        r.mean_messages,
        r.mean_time_to_peer,
        r.p95_time_to_peer,
        r.mean_duration,
        r.mean_table_size,
        r.announces_acked,
        r.datagrams
    );
}

const N: usize = 1_000;

#[test]
fn lookups_succeed_after_bootstrap() {
    let r = run_scenario(&Scenario::new(1, N));
    show("baseline", &r);
    assert_eq!(r.announces_acked, 20);
    assert_eq!(r.finished, r.lookups);
    assert!(r.success_rate() >= 0.99, "{r:?}");
}

#[test]
fn lookups_succeed_with_20_percent_churn() {
    let s = Scenario {
        churn: 0.2,
        ..Scenario::new(2, N)
    };
    let r = run_scenario(&s);
    show("churn 20 %", &r);
    assert_eq!(r.finished, r.lookups);
    assert!(r.success_rate() >= 0.99, "{r:?}");
}

#[test]
fn lookups_succeed_with_10_percent_malicious_nodes() {
    let s = Scenario {
        malicious: 0.1,
        ..Scenario::new(3, N)
    };
    let r = run_scenario(&s);
    show("malicious 10 %", &r);
    assert_eq!(r.finished, r.lookups);
    assert!(r.success_rate() >= 0.99, "{r:?}");
}

#[test]
fn lookups_succeed_with_loss_churn_and_malice_together() {
    let mut s = Scenario {
        churn: 0.2,
        malicious: 0.1,
        lookups: 100,
        ..Scenario::new(4, N / 2)
    };
    s.net.loss = 0.02;
    let r = run_scenario(&s);
    show("loss 2 % + churn 20 % + malicious 10 %", &r);
    assert!(r.success_rate() >= 0.97, "{r:?}");
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let s = Scenario {
        lookups: 20,
        announcers: 5,
        churn: 0.1,
        malicious: 0.1,
        ..Scenario::new(5, 150)
    };
    let a = run_scenario(&s);
    let b = run_scenario(&s);
    assert_eq!(a, b);
    let c = run_scenario(&Scenario { seed: 6, ..s });
    assert_ne!(a.trace_hash, c.trace_hash);
}

fn big(s: Scenario) {
    let started = std::time::Instant::now();
    let r = run_scenario(&s);
    show(
        &format!(
            "{} nodes, churn {}, malicious {}",
            s.nodes, s.churn, s.malicious
        ),
        &r,
    );
    println!("wall time {:?}", started.elapsed());
    assert!(r.success_rate() >= 0.99, "{r:?}");
}

#[test]
#[ignore = "10,000 nodes: run in release with --ignored"]
fn ten_thousand_nodes_baseline() {
    big(Scenario::new(10, 10_000));
}

#[test]
#[ignore = "10,000 nodes: run in release with --ignored"]
fn ten_thousand_nodes_with_churn() {
    big(Scenario {
        churn: 0.2,
        ..Scenario::new(11, 10_000)
    });
}

#[test]
#[ignore = "10,000 nodes: run in release with --ignored"]
fn ten_thousand_nodes_with_malicious_nodes() {
    big(Scenario {
        malicious: 0.1,
        ..Scenario::new(12, 10_000)
    });
}
