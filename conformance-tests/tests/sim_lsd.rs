//! BEP 14 local service discovery in the simulator: nodes on one multicast group find each
//! other with no tracker and no address given; private torrents are never announced; our
//! own announces and floods from one sender are ignored; a node with LSD off says nothing.

use std::net::SocketAddr;

use bitshoal_conformance::sim::{NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec};
use bitshoal_core::lsd::{LsdAnnounce, LsdGroup, LSD_GROUP_V4};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::{Config, Event, Input};
use bitshoal_core::time::Duration;
use bytes::Bytes;

fn lsd_node(lsd: bool) -> NodeConfig {
    NodeConfig {
        session: Config {
            lsd,
            ..Config::default()
        },
        ..NodeConfig::default()
    }
}

fn group() -> SocketAddr {
    SocketAddr::V4(LSD_GROUP_V4)
}

/// The info-hashes a node announced, over all its datagrams.
fn announced_by(sim: &Sim, node: NodeId) -> Vec<[u8; 20]> {
    sim.multicast_sent()
        .iter()
        .filter(|d| d.from == node)
        .flat_map(|d| {
            LsdAnnounce::decode(&d.data)
                .expect("we send valid announces")
                .info_hashes
        })
        .collect()
}

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

#[test]
fn two_nodes_find_each_other_through_lsd() {
    let mut sim = Sim::new(140);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(100_000, 16 * 1024));
    let seed = sim.add_node(lsd_node(true));
    let leech = sim.add_node(lsd_node(true));
    // In the group but with LSD off: it hears the announces and does nothing with them.
    let quiet = sim.add_node(lsd_node(false));
    for n in [seed, leech, quiet] {
        sim.join_group(n, group());
    }
    sim.seed_torrent(seed, &torrent);
    let t = sim.add_torrent(leech, &torrent);
    let tq = sim.add_torrent(quiet, &torrent);
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    let wire_id = torrent.info.hashes().wire_id();
    assert!(announced_by(&sim, seed).contains(&wire_id));
    assert!(announced_by(&sim, leech).contains(&wire_id));
    assert!(
        announced_by(&sim, quiet).is_empty(),
        "LSD off sends nothing"
    );
    assert_eq!(
        sim.node(quiet).session().torrent_status(tq).unwrap().peers,
        0
    );
    // Each heard its own announce looped back and ignored it (the cookie): never dialled
    // itself.
    for n in [seed, leech] {
        assert!(
            disconnects(&sim, n)
                .iter()
                .all(|(_, r)| *r != DisconnectReason::SelfConnection),
            "{:?}",
            disconnects(&sim, n)
        );
    }
    // Both groups are announced to (the runtime drops what it has no socket for), at most
    // one datagram per group a minute.
    sim.run_for(Duration::from_secs(11 * 60)).unwrap();
    let sent: Vec<_> = sim
        .multicast_sent()
        .iter()
        .filter(|d| d.from == seed && d.group == LsdGroup::V4.addr())
        .collect();
    assert!(sim
        .multicast_sent()
        .iter()
        .any(|d| d.from == seed && d.group == LsdGroup::V6.addr()));
    assert!((3..=4).contains(&sent.len()), "{} announces", sent.len());
    for w in sent.windows(2) {
        assert!(w[1].at >= w[0].at + Duration::from_secs(60));
    }
}

#[test]
fn private_torrents_are_never_announced_nor_learned_through_lsd() {
    let mut sim = Sim::new(141);
    let spec = TorrentSpec::single(50_000, 16 * 1024);
    let public = TestTorrent::build(sim.rng(), &spec);
    let private = TestTorrent::build_private(sim.rng(), &spec);
    let a = sim.add_node(lsd_node(true));
    let b = sim.add_node(lsd_node(true));
    for n in [a, b] {
        sim.join_group(n, group());
    }
    sim.seed_torrent(a, &private);
    sim.seed_torrent(a, &public);
    let bp = sim.add_torrent(b, &private);
    sim.run_for(Duration::from_secs(15 * 60)).unwrap();
    let private_id = private.info.hashes().wire_id();
    assert!(announced_by(&sim, a).contains(&public.info.hashes().wire_id()));
    for n in [a, b] {
        assert!(!announced_by(&sim, n).contains(&private_id));
    }
    // An announce for the private torrent (a hostile or misconfigured peer) is not acted on.
    let mut data = Vec::new();
    LsdAnnounce {
        port: sim.node(a).addr().port(),
        info_hashes: vec![private_id],
        cookie: None,
    }
    .encode(LsdGroup::V4, &mut data);
    let from = SocketAddr::new(sim.node(a).addr().ip(), 6771);
    sim.with_session(b, |s, now| {
        s.handle_input(
            now,
            Input::LsdDatagram {
                from,
                data: Bytes::from(data),
            },
        )
    });
    sim.run_for(Duration::from_secs(5)).unwrap();
    assert_eq!(sim.node(b).session().torrent_status(bp).unwrap().peers, 0);
    assert!(disconnects(&sim, b).is_empty());
}

#[test]
fn repeated_and_malformed_announces_are_bounded() {
    let mut sim = Sim::new(142);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(50_000, 16 * 1024));
    let node = sim.add_node(lsd_node(true));
    sim.add_torrent(node, &torrent);
    sim.run_for(Duration::from_secs(1)).unwrap();
    // Nobody listens at this address: every dial of it shows as a failed connect.
    let ghost: SocketAddr = "127.0.0.200:7000".parse().unwrap();
    let mut announce = Vec::new();
    LsdAnnounce {
        port: ghost.port(),
        info_hashes: vec![torrent.info.hashes().wire_id()],
        cookie: Some("someone-else".into()),
    }
    .encode(LsdGroup::V4, &mut announce);
    let announce = Bytes::from(announce);
    let from = SocketAddr::new(ghost.ip(), 6771);
    for i in 0..300 {
        let data = if i % 3 == 0 {
            Bytes::from_static(b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n\r\n")
        } else {
            announce.clone()
        };
        sim.with_session(node, |s, now| {
            s.handle_input(now, Input::LsdDatagram { from, data })
        });
        sim.run_for(Duration::from_millis(10)).unwrap();
    }
    let dials = |sim: &Sim| {
        disconnects(sim, node)
            .iter()
            .filter(|(a, r)| *a == ghost && *r == DisconnectReason::ConnectFailed)
            .count()
    };
    assert_eq!(
        dials(&sim),
        1,
        "one sender's announce is acted on once a minute"
    );
    // A minute later the same announce counts again.
    sim.run_for(Duration::from_secs(60)).unwrap();
    sim.with_session(node, |s, now| {
        s.handle_input(
            now,
            Input::LsdDatagram {
                from,
                data: announce.clone(),
            },
        )
    });
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(dials(&sim), 2);
}
