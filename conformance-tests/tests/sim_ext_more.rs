//! BEP 16 superseeding (a superseeding seed uploads less before the swarm holds one full
//! copy, and everyone still finishes), BEP 40 canonical peer priority (which candidates are
//! dialled, whom a better one replaces at the limit), and BEP 55 holepunching started by
//! itself when dialling a PEX-learned, holepunch-flagged peer fails.

use std::net::SocketAddr;

use bitshoal_conformance::sim::{LinkProfile, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec};
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::ext::peer_priority;
use bitshoal_core::id::{PeerId, TorrentId};
use bitshoal_core::lsd::{LsdAnnounce, LsdGroup};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::{Config, Event, Input, SuperseedMode};
use bitshoal_core::time::Duration;
use bytes::Bytes;

fn disconnects(sim: &Sim, node: NodeId) -> Vec<(SocketAddr, DisconnectReason)> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerDisconnected { addr, reason, .. } => Some((*addr, reason.clone())),
            _ => None,
        })
        .collect()
}

fn connected_ids(sim: &Sim, node: NodeId) -> Vec<PeerId> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerConnected { peer_id, .. } => Some(*peer_id),
            _ => None,
        })
        .collect()
}

// ---- BEP 16 ---------------------------------------------------------------------------------

/// One seed on a slow uplink and `leechers` leechers meshed with it and each other. Returns
/// the seed's upload when the leechers first held every piece between them, and the seed's
/// total upload once all finished.
fn seed_upload(seed_value: u64, mode: SuperseedMode, leechers: usize) -> (u64, u64, u64) {
    let mut sim = Sim::new(seed_value);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(24 * 16 * 1024, 16 * 1024));
    let seed = sim.add_node(NodeConfig {
        link: LinkProfile {
            upload: Some(64 * 1024),
            download: None,
            latency: Duration::from_millis(5),
        },
        ..NodeConfig::default()
    });
    let ts = sim.seed_torrent(seed, &torrent);
    sim.with_session(seed, |s, now| s.set_superseed(now, ts, mode))
        .unwrap();
    assert_eq!(sim.node(seed).session().superseed_mode(ts), mode);
    let fast = NodeConfig {
        link: LinkProfile::symmetric(256 * 1024, Duration::from_millis(5)),
        ..NodeConfig::default()
    };
    let nodes: Vec<(NodeId, TorrentId)> = (0..leechers)
        .map(|_| {
            let n = sim.add_node(fast.clone());
            let t = sim.add_torrent(n, &torrent);
            (n, t)
        })
        .collect();
    let seed_addr = sim.node(seed).addr();
    for (i, &(n, t)) in nodes.iter().enumerate() {
        sim.connect(n, t, seed_addr).unwrap();
        for &(m, _) in &nodes[..i] {
            let addr = sim.node(m).addr();
            sim.connect(n, t, addr).unwrap();
        }
    }
    let pieces = torrent.piece_count();
    let union_full = |s: &Sim| {
        let mut all = Bitfield::new(pieces);
        for &(n, t) in &nodes {
            if let Some(h) = s.node(n).session().have(t) {
                for p in h.iter_set() {
                    all.set(p, true);
                }
            }
        }
        all.is_full()
    };
    sim.run_until(union_full, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let at_copy = sim
        .node(seed)
        .session()
        .torrent_status(ts)
        .unwrap()
        .uploaded;
    sim.run_until(
        |s| nodes.iter().all(|&(n, t)| s.node(n).is_finished(t)),
        Duration::from_secs(300),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for &(n, t) in &nodes {
        assert_eq!(sim.node(n).disk().content(t).unwrap(), &torrent.content[..]);
    }
    let total = sim
        .node(seed)
        .session()
        .torrent_status(ts)
        .unwrap()
        .uploaded;
    (at_copy, total, torrent.content.len() as u64)
}

#[test]
fn a_superseeding_seed_uploads_less_before_the_swarm_has_a_copy() {
    for (s, mode) in [
        (160, SuperseedMode::Strict),
        (161, SuperseedMode::Strict),
        (162, SuperseedMode::On),
    ] {
        let (normal, normal_total, size) = seed_upload(s, SuperseedMode::Off, 5);
        let (superseed, super_total, _) = seed_upload(s, mode, 5);
        println!(
            "seed {s}: size {size}, normal seed uploaded {normal} before one copy ({normal_total} \
             in all), superseeding {superseed} ({super_total})"
        );
        assert!(superseed >= size, "a copy needs every byte once");
        assert!(
            superseed < normal,
            "superseeding {superseed} >= normal {normal} (size {size})"
        );
        // Each piece goes out once until every piece is out (blocks in flight aside).
        assert!(superseed <= size + size / 4, "{superseed} for {size}");
    }
}

/// A lone leecher of a superseeding seed: in [`SuperseedMode::On`] it is offered its next
/// piece each time it has the last one, and finishes; in strict mode (BEP 16's traditional
/// rule) no other peer ever shows the piece, so it is offered one piece and no more.
#[test]
fn a_lone_leecher_finishes_from_a_superseeding_seed_unless_strict() {
    for (seed_value, mode) in [(170, SuperseedMode::On), (171, SuperseedMode::Strict)] {
        let mut sim = Sim::new(seed_value);
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(8 * 16 * 1024, 16 * 1024));
        let seed = sim.add_node(NodeConfig::default());
        let ts = sim.seed_torrent(seed, &torrent);
        sim.with_session(seed, |s, now| s.set_superseed(now, ts, mode))
            .unwrap();
        let leech = sim.add_node(NodeConfig::default());
        let t = sim.add_torrent(leech, &torrent);
        let addr = sim.node(seed).addr();
        sim.connect(leech, t, addr).unwrap();
        let finished = sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(30));
        let had = sim.node(leech).session().have(t).unwrap().count();
        if mode == SuperseedMode::Strict {
            assert!(
                finished.is_err(),
                "seed {seed_value}: strict lets one piece out"
            );
            assert_eq!(had, 1, "seed {seed_value}");
        } else {
            finished.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                sim.node(leech).disk().content(t).unwrap(),
                &torrent.content[..]
            );
            // One piece at a time: about each piece once.
            let up = sim
                .node(seed)
                .session()
                .torrent_status(ts)
                .unwrap()
                .uploaded;
            assert!(
                up <= torrent.content.len() as u64 * 5 / 4,
                "seed {seed_value}: {up}"
            );
        }
    }
}

// ---- BEP 40 ---------------------------------------------------------------------------------

#[test]
fn at_the_limit_a_better_ranked_peer_replaces_the_worst_and_a_worse_one_does_not() {
    let mut sim = Sim::new(170);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(2 << 20, 64 * 1024));
    let a = sim.add_node(NodeConfig {
        session: Config {
            max_peers_per_torrent: 2,
            lsd: true,
            ..Config::default()
        },
        // Slow: the download lasts the whole test.
        link: LinkProfile::symmetric(20_000, Duration::from_millis(5)),
        ..NodeConfig::default()
    });
    let ta = sim.add_torrent(a, &torrent);
    let ours = sim.node(a).addr();
    let mut seeds: Vec<(u32, NodeId, SocketAddr)> = (0..5)
        .map(|_| {
            let n = sim.add_node(NodeConfig::default());
            sim.seed_torrent(n, &torrent);
            let addr = sim.node(n).addr();
            (peer_priority(ours, addr), n, addr)
        })
        .collect();
    seeds.sort();
    let rank = |i: usize| seeds[i].2;
    // Connected by hand (the application's connects ignore the limit) to the middle two;
    // their `yourip` tells A its address.
    sim.connect(a, ta, rank(1)).unwrap();
    sim.connect(a, ta, rank(2)).unwrap();
    sim.run_for(Duration::from_secs(2)).unwrap();
    assert_eq!(sim.node(a).session().torrent_status(ta).unwrap().peers, 2);
    let announce = |sim: &mut Sim, addr: SocketAddr| {
        let mut data = Vec::new();
        LsdAnnounce {
            port: addr.port(),
            info_hashes: vec![torrent.info.hashes().wire_id()],
            cookie: None,
        }
        .encode(LsdGroup::V4, &mut data);
        let from = SocketAddr::new(addr.ip(), 6771);
        sim.with_session(a, |s, now| {
            s.handle_input(
                now,
                Input::LsdDatagram {
                    from,
                    data: Bytes::from(data),
                },
            )
        });
        sim.run_for(Duration::from_secs(2)).unwrap();
    };
    // Worse than both: not dialled.
    announce(&mut sim, rank(0));
    assert!(disconnects(&sim, a).is_empty());
    let peers = |sim: &Sim| -> Vec<SocketAddr> {
        let mut p: Vec<SocketAddr> = sim
            .node(a)
            .session()
            .peers(sim.now(), ta)
            .iter()
            .map(|p| p.addr)
            .collect();
        p.sort();
        p
    };
    let mut expected = vec![rank(1), rank(2)];
    expected.sort();
    assert_eq!(peers(&sim), expected);
    // Better than the worst: it takes the worst one's place.
    announce(&mut sim, rank(4));
    assert_eq!(
        disconnects(&sim, a),
        vec![(rank(1), DisconnectReason::TooManyConnections)]
    );
    let mut expected = vec![rank(2), rank(4)];
    expected.sort();
    // A's downlink is busy with blocks: the new handshake queues behind them.
    sim.run_until(|s| peers(s) == expected, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}: {:?}", peers(&sim)));
    assert_eq!(disconnects(&sim, a).len(), 1);
}

#[test]
fn tracker_peers_are_dialled_best_ranked_first() {
    use bitshoal_conformance::sim::TrackerConfig;
    let mut sim = Sim::new(171);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(2 << 20, 64 * 1024));
    let tracker = sim.add_tracker(TrackerConfig {
        report_external_ip: true,
        ..TrackerConfig::default()
    });
    let url = sim.tracker(tracker).http_url();
    let seeds: Vec<SocketAddr> = (0..6)
        .map(|_| {
            let n = sim.add_node(NodeConfig::default());
            sim.seed_torrent_with_trackers(n, &torrent, vec![vec![url.clone()]]);
            sim.node(n).addr()
        })
        .collect();
    sim.run_for(Duration::from_secs(1)).unwrap();
    let a = sim.add_node(NodeConfig {
        session: Config {
            max_peers_per_torrent: 2,
            ..Config::default()
        },
        link: LinkProfile::symmetric(20_000, Duration::from_millis(5)),
        ..NodeConfig::default()
    });
    let ta = sim.add_torrent_with_trackers(a, &torrent, vec![vec![url]]);
    sim.run_for(Duration::from_secs(2)).unwrap();
    let ours = sim.node(a).addr();
    let mut ranked = seeds.clone();
    ranked.sort_by_key(|s| std::cmp::Reverse(peer_priority(ours, *s)));
    let mut expected = ranked[..2].to_vec();
    expected.sort();
    let mut got: Vec<SocketAddr> = sim
        .node(a)
        .session()
        .peers(sim.now(), ta)
        .iter()
        .map(|p| p.addr)
        .collect();
    got.sort();
    assert_eq!(got, expected);
}

// ---- BEP 55 ---------------------------------------------------------------------------------

#[test]
fn a_failed_dial_of_a_holepunch_flagged_pex_peer_starts_a_rendezvous_by_itself() {
    let mut sim = Sim::new(180);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(200_000, 32 * 1024));
    let slow = NodeConfig {
        link: LinkProfile::symmetric(50_000, Duration::from_millis(10)),
        ..NodeConfig::default()
    };
    let relay = sim.add_node(slow.clone());
    let natted = NodeConfig {
        no_incoming: true,
        ..slow
    };
    let a = sim.add_node(natted.clone());
    let b = sim.add_node(natted);
    sim.seed_torrent(relay, &torrent);
    let ta = sim.add_torrent(a, &torrent);
    let tb = sim.add_torrent(b, &torrent);
    let relay_addr = sim.node(relay).addr();
    sim.connect(a, ta, relay_addr).unwrap();
    sim.connect(b, tb, relay_addr).unwrap();
    let (a_id, b_id) = (
        sim.node(a).session().peer_id(),
        sim.node(b).session().peer_id(),
    );
    let b_addr = sim.node(b).addr();
    let a_addr = sim.node(a).addr();
    // PEX names each to the other; the first dials fail at the NAT, and the session asks
    // the relay for a rendezvous by itself.
    sim.run_until(
        |s| connected_ids(s, a).contains(&b_id) && connected_ids(s, b).contains(&a_id),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let failed = |sim: &Sim, n: NodeId, to: SocketAddr| {
        disconnects(sim, n)
            .iter()
            .any(|(addr, r)| *addr == to && *r == DisconnectReason::ConnectFailed)
    };
    assert!(
        failed(&sim, a, b_addr) || failed(&sim, b, a_addr),
        "a direct dial failed first"
    );
    sim.run_until(
        |s| s.node(a).is_finished(ta) && s.node(b).is_finished(tb),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
