//! The DHT inside the session (BEP 5), on the simulator: sessions share their UDP socket
//! between the DHT and trackers, announce their torrents, find each other's peers through
//! `get_peers`, exchange `port` messages, and keep their node id across a restart.

use std::net::SocketAddr;

use bitshoal_conformance::sim::{
    NetworkRequest, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec, TrackerConfig,
};
use bitshoal_core::session::{Config, DhtSettings};
use bitshoal_core::time::Duration;

fn dht_node(sim: &mut Sim, bootstrap: &[SocketAddr]) -> NodeId {
    sim.add_node(NodeConfig {
        session: Config {
            dht: Some(DhtSettings {
                bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
                ..DhtSettings::default()
            }),
            ..Config::default()
        },
        ..NodeConfig::default()
    })
}

fn table_len(sim: &Sim, n: NodeId) -> usize {
    sim.node(n)
        .session()
        .dht_node()
        .map_or(0, |d| d.routing_table(false).len())
}

#[test]
fn a_leecher_with_only_the_info_finds_the_seed_through_the_dht() {
    let mut sim = Sim::new(905);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(300_000, 32 * 1024));
    // A DHT-only node to bootstrap from, a few bystanders, a seed and a leecher.
    let router = dht_node(&mut sim, &[]);
    let router_addr = sim.node(router).addr();
    let others: Vec<NodeId> = (0..4).map(|_| dht_node(&mut sim, &[router_addr])).collect();
    let seed = dht_node(&mut sim, &[router_addr]);
    let leech = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    for &n in others.iter().chain([&seed, &leech]) {
        assert!(table_len(&sim, n) >= 1, "node {n:?} joined the DHT");
    }
    sim.seed_torrent(seed, &torrent);
    sim.run_for(Duration::from_secs(5)).unwrap();
    // The leecher knows no tracker and no peer: only the info-hash (and the info).
    let t = sim.add_torrent(leech, &torrent);
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    // The seed's announce reached the DHT with its listen port.
    let seed_addr = sim.node(seed).addr();
    let stored = [router]
        .iter()
        .chain(&others)
        .chain([&leech])
        .filter(|&&n| {
            let node = sim.node(n).session().dht_node().unwrap();
            let mut rng = bitshoal_core::rng::Rng::from_seed(1);
            let ih = torrent.info.hashes().wire_id();
            node.store()
                .peers(&ih, false, false, 50, &mut rng)
                .contains(&seed_addr)
        })
        .count();
    assert!(stored >= 3, "the seed is stored on {stored} nodes");
}

#[test]
fn peers_exchange_dht_ports_and_join_each_others_tables() {
    let mut sim = Sim::new(906);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(64 * 1024, 32 * 1024));
    // No bootstrap nodes at all: the only way to learn of each other is the `port` message.
    let a = dht_node(&mut sim, &[]);
    let b = dht_node(&mut sim, &[]);
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(table_len(&sim, a), 0);
    sim.seed_torrent(a, &torrent);
    let t = sim.add_torrent(b, &torrent);
    let a_addr = sim.node(a).addr();
    sim.connect(b, t, a_addr).unwrap();
    sim.run_until(|s| s.node(b).is_finished(t), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(5)).unwrap();
    let b_addr = sim.node(b).addr();
    let a_table = sim
        .node(a)
        .session()
        .dht_node()
        .unwrap()
        .routing_table(false);
    assert!(a_table.get(&b_addr).is_some(), "a pinged b's DHT port");
    let b_table = sim
        .node(b)
        .session()
        .dht_node()
        .unwrap()
        .routing_table(false);
    assert!(b_table.get(&a_addr).is_some(), "b pinged a's DHT port");
}

#[test]
fn sessions_without_dht_send_no_krpc_and_the_node_id_survives_a_restart() {
    let mut sim = Sim::new(907);
    let plain = sim.add_node(NodeConfig::default());
    sim.run_for(Duration::from_secs(5)).unwrap();
    assert!(sim.node(plain).session().dht_node().is_none());

    let router = dht_node(&mut sim, &[]);
    let router_addr = sim.node(router).addr();
    let a = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    let state = sim.node(a).session().dht_state().expect("DHT on");
    assert!(state.nodes.iter().any(|n| n.addr == router_addr));
    // A new session restored from the state has the same id.
    let restored = sim.add_node(NodeConfig {
        session: Config {
            dht: Some(DhtSettings {
                state: Some(state.clone()),
                ..DhtSettings::default()
            }),
            ..Config::default()
        },
        ..NodeConfig::default()
    });
    sim.run_for(Duration::from_secs(5)).unwrap();
    let node = sim.node(restored).session().dht_node().unwrap();
    assert_eq!(node.node_id(), state.id);
    // With no bootstrap nodes, it joined through the saved contacts.
    assert!(node.routing_table(false).get(&router_addr).is_some());
}

#[test]
fn a_private_torrent_stays_off_the_dht_while_udp_trackers_share_the_socket() {
    let mut sim = Sim::new(908);
    let t = TestTorrent::build_private(sim.rng(), &TorrentSpec::single(200_000, 16 * 1024));
    let tracker = sim.add_tracker(TrackerConfig::default());
    let tiers = vec![vec![sim.tracker(tracker).udp_url()]];
    let router = dht_node(&mut sim, &[]);
    let router_addr = sim.node(router).addr();
    let seed = dht_node(&mut sim, &[router_addr]);
    let leech = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    sim.seed_torrent_with_trackers(seed, &t, tiers.clone());
    let id = sim.add_torrent_with_trackers(leech, &t, tiers);
    // The UDP tracker's answers reach the tracker client, not the DHT, on the shared socket.
    sim.run_until(|s| s.node(leech).is_finished(id), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(60)).unwrap();
    let ih = t.info.hashes().wire_id();
    for n in [router, seed, leech] {
        let node = sim.node(n).session().dht_node().unwrap();
        assert!(!node.routing_table(false).is_empty(), "{n:?} is in the DHT");
        assert_eq!(
            node.counters().malformed,
            0,
            "{n:?} got no tracker datagram"
        );
        let mut rng = bitshoal_core::rng::Rng::from_seed(1);
        assert!(
            node.store()
                .peers(&ih, false, false, 10, &mut rng)
                .is_empty(),
            "BEP 27: nobody announced the private torrent to {n:?}"
        );
    }
    // No DHT datagram went to the tracker.
    let tracker_addr = sim.tracker(tracker).addr();
    for n in [seed, leech] {
        let dht_to_tracker = sim
            .node(n)
            .network_requests()
            .iter()
            .filter(|(_, r)| matches!(r, NetworkRequest::Datagram(to) if *to == tracker_addr))
            .count();
        let log = sim
            .tracker(tracker)
            .log()
            .iter()
            .filter(|r| r.node == n)
            .count();
        assert_eq!(
            dht_to_tracker, log,
            "{n:?}: every datagram to the tracker was a tracker request"
        );
    }
}
