//! Sessions talking to each other and to fake peers in the simulator.

mod common;

use bitshoal_conformance::sim::{
    FakeConfig, LinkProfile, NodeConfig, Sim, SimErrorKind, SwarmBuilder, TestTorrent, TorrentSpec,
};
use bitshoal_core::id::PeerId;
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::Event;
use bitshoal_core::time::Duration;
use bitshoal_core::wire::Message;

use common::{be, frame, Fixture, FAST_EXT, PIECES};

#[test]
fn two_sessions_handshake_and_exchange_every_block() {
    let mut sim = Sim::new(1);
    let spec = TorrentSpec::single(300_000, 32 * 1024);
    let torrent = TestTorrent::build(sim.rng(), &spec);
    // 1 MB/s links with 20 ms one way: bandwidth, not latency, bounds the transfer.
    let link = LinkProfile::symmetric(1_000_000, Duration::from_millis(10));
    let seed = sim.add_node(NodeConfig {
        link,
        ..NodeConfig::default()
    });
    let leech = sim.add_node(NodeConfig {
        link,
        ..NodeConfig::default()
    });
    let st = sim.seed_torrent(seed, &torrent);
    let lt = sim.add_torrent(leech, &torrent);
    let addr = sim.node(seed).addr();
    let conn = sim.connect(leech, lt, addr).unwrap();
    let start = sim.now();
    sim.run_until(|s| s.node(leech).is_finished(lt), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = sim.now() - start;

    // Both sides saw the handshake.
    for (node, peer) in [(seed, leech), (leech, seed)] {
        let peer_id = sim.node(peer).session().peer_id();
        assert!(
            sim.node(node).events().iter().any(
                |(_, e)| matches!(e, Event::PeerConnected { peer_id: p, .. } if *p == peer_id)
            ),
            "{node:?} saw {peer:?} connect"
        );
    }
    assert!(sim.node(leech).events().iter().any(
        |(_, e)| matches!(e, Event::PeerConnected { conn: c, torrent, .. } if *c == conn && *torrent == lt)
    ));
    // Every byte arrived, verified, and was counted.
    assert_eq!(
        sim.node(leech).disk().content(lt).unwrap(),
        &torrent.content[..]
    );
    let verified = sim
        .node(leech)
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::PieceVerified { .. }))
        .count();
    assert_eq!(verified, torrent.piece_count() as usize);
    let size = torrent.content.len() as u64;
    assert_eq!(
        sim.node(leech)
            .session()
            .torrent_status(lt)
            .unwrap()
            .downloaded,
        size
    );
    assert_eq!(
        sim.node(seed)
            .session()
            .torrent_status(st)
            .unwrap()
            .uploaded,
        size
    );
    // The links' bandwidth shaped the transfer: at least size / rate, and not absurdly more.
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Nobody was disconnected before the end; then the leecher, now a seed, dropped the seed
    // (BEP 21: both seeding).
    for node in [seed, leech] {
        assert!(sim.node(node).disconnects().iter().all(|(_, r)| matches!(
            r,
            DisconnectReason::BothSeeding | DisconnectReason::ClosedByRemote
        )));
    }
    assert_eq!(
        sim.node(leech).disconnects(),
        vec![(conn, DisconnectReason::BothSeeding)]
    );
}

#[test]
fn one_seed_three_leechers_end_with_identical_disks() {
    let spec = TorrentSpec {
        files: vec![100_000, 7, 250_000, 60_000],
        piece_length: 32 * 1024,
        pad_files: true,
    };
    let mut swarm = SwarmBuilder::new(spec)
        .seeds(1)
        .leechers(3)
        .seed_link(LinkProfile::symmetric(500_000, Duration::from_millis(15)))
        .leecher_link(LinkProfile::symmetric(2_000_000, Duration::from_millis(5)))
        .build(42);
    assert!(
        swarm.torrent.info.files().iter().any(|f| f.is_pad()),
        "the torrent has pad files"
    );
    swarm
        .run_until_finished(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let seed = swarm.seeds().next().unwrap();
    let reference = swarm.content(seed);
    assert_eq!(reference, &swarm.torrent.content[..]);
    for l in swarm.leechers() {
        assert!(swarm.content(l) == reference, "{l:?} holds the same bytes");
    }
    // Every leecher met the seed and the other leechers, and downloaded each block once.
    let total = swarm.torrent.info.layout().total_length();
    for l in swarm.leechers() {
        let status = swarm
            .sim
            .node(l.node)
            .session()
            .torrent_status(l.torrent)
            .unwrap();
        let met = swarm
            .sim
            .node(l.node)
            .events()
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerConnected { .. }))
            .count();
        assert_eq!(met, 3, "{l:?} was connected to everyone");
        assert_eq!(status.downloaded, total, "{l:?} downloaded no block twice");
    }
    // (With the first-cut picker every leecher picks the same pieces in the same order, so
    // leechers have little to trade; the picker's seeded tie-breaks will change that.)
}

#[test]
fn a_choke_with_the_fast_extension_keeps_allowed_fast_requests() {
    let mut f = Fixture::new(21);
    f.handshake(FAST_EXT);
    let allowed: Vec<u32> = f
        .sim
        .fake(f.fake)
        .messages()
        .filter_map(|m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(
        allowed.len(),
        PIECES as usize,
        "10 pieces: all are allowed-fast"
    );
    assert!(f
        .sim
        .fake(f.fake)
        .messages()
        .any(|m| *m == Message::HaveAll));
    // Become interested: the node unchokes.
    f.sim.fake_send_raw(f.fake, frame(2, &[]));
    let fake = f.fake;
    f.sim
        .run_until(
            |s| s.fake(fake).messages().any(|m| *m == Message::Unchoke),
            Duration::from_secs(1),
        )
        .unwrap();
    f.sim.fake_mut(fake).clear_received();
    // Requests and "not interested" in one packet: the node queues the requests, then chokes
    // (nobody interested), which with BEP 6 rejects every queued request not allowed-fast.
    // Here every piece is allowed-fast, so they are kept and served.
    let mut bytes = Vec::new();
    for i in 0..3 {
        bytes.extend(frame(6, &be(&[i, 0, 16384])));
    }
    bytes.extend(frame(3, &[]));
    f.sim.fake_send_raw(fake, bytes);
    f.sim.run_for(Duration::from_secs(1)).unwrap();
    let got: Vec<Message> = f.sim.fake(fake).messages().cloned().collect();
    assert_eq!(got.first(), Some(&Message::Choke), "{got:?}");
    let pieces: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            Message::Piece { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(
        pieces,
        vec![0, 1, 2],
        "allowed-fast requests survive a choke"
    );
    assert!(!got.iter().any(|m| matches!(m, Message::RejectRequest(_))));
}

#[test]
fn a_choke_rejects_requests_outside_the_allowed_fast_set() {
    // 64 pieces: the allowed-fast set (10) does not cover them all.
    let mut sim = Sim::new(22);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(64 * 16384, 16384));
    let node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(node, &torrent);
    let fake = sim.add_fake(FakeConfig::new(PeerId([3; 20])));
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let hs = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), FAST_EXT);
    sim.fake_send_handshake(fake, &hs);
    sim.fake_send_raw(fake, frame(2, &[]));
    sim.run_until(
        |s| s.fake(fake).messages().any(|m| *m == Message::Unchoke),
        Duration::from_secs(1),
    )
    .unwrap();
    let allowed: Vec<u32> = sim
        .fake(fake)
        .messages()
        .filter_map(|m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(allowed.len(), 10);
    let outside: Vec<u32> = (0..64).filter(|i| !allowed.contains(i)).take(4).collect();
    let inside = allowed[0];
    sim.fake_mut(fake).clear_received();
    let mut bytes = Vec::new();
    for &i in outside.iter().chain([inside].iter()) {
        bytes.extend(frame(6, &be(&[i, 0, 16384])));
    }
    bytes.extend(frame(3, &[]));
    sim.fake_send_raw(fake, bytes);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let got: Vec<Message> = sim.fake(fake).messages().cloned().collect();
    // BEP 6: "choke first and then reject requests".
    assert_eq!(got.first(), Some(&Message::Choke), "{got:?}");
    let rejected: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            Message::RejectRequest(r) => Some(r.index),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, outside);
    let served: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            Message::Piece { index, data, .. } => {
                let at = *index as usize * 16384;
                assert_eq!(data[..], torrent.content[at..at + 16384]);
                Some(*index)
            }
            _ => None,
        })
        .collect();
    assert_eq!(served, vec![inside]);
}

/// BEP 6: a request from a fast-extension peer we choke is rejected (never silently dropped),
/// unless its piece is in the peer's allowed-fast set, which is served while choked.
#[test]
fn requests_while_choked_are_rejected_outside_the_allowed_fast_set() {
    let mut sim = Sim::new(24);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(64 * 16384, 16384));
    let node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(node, &torrent);
    let fake = sim.add_fake(FakeConfig::new(PeerId([4; 20])));
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let hs = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), FAST_EXT);
    sim.fake_send_handshake(fake, &hs);
    sim.run_until(
        |s| {
            s.fake(fake)
                .messages()
                .any(|m| matches!(m, Message::AllowedFast(_)))
        },
        Duration::from_secs(1),
    )
    .unwrap();
    sim.run_for(Duration::from_millis(100)).unwrap();
    let allowed: Vec<u32> = sim
        .fake(fake)
        .messages()
        .filter_map(|m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(allowed.len(), 10);
    // Never interested, so never unchoked: every request arrives while choked.
    let outside: Vec<u32> = (0..64).filter(|i| !allowed.contains(i)).take(3).collect();
    let inside = allowed[0];
    sim.fake_mut(fake).clear_received();
    let mut bytes = Vec::new();
    for &i in outside.iter().chain([inside].iter()) {
        bytes.extend(frame(6, &be(&[i, 0, 16384])));
    }
    sim.fake_send_raw(fake, bytes);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let got: Vec<Message> = sim.fake(fake).messages().cloned().collect();
    assert!(!got.contains(&Message::Unchoke), "never unchoked");
    let rejected: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            Message::RejectRequest(r) => Some(r.index),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected, outside,
        "every request outside the set is rejected"
    );
    let served: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            Message::Piece { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(served, vec![inside], "the allowed-fast request is served");
}

#[test]
fn a_node_downloads_from_a_fake_seed_that_answers_its_requests() {
    let mut f = Fixture::with(23, false);
    let seed = f.sim.add_fake(FakeConfig::new(PeerId([9; 20])).listening());
    let content = f.torrent.content.clone();
    f.sim
        .fake_mut(seed)
        .serve(content, f.torrent.info.piece_length());
    let addr = f.sim.fake(seed).addr();
    f.sim.connect(f.node, f.tid, addr).unwrap();
    f.sim
        .run_until(
            |s| s.fake(seed).handshake().is_some(),
            Duration::from_secs(1),
        )
        .unwrap();
    let hs = f
        .sim
        .fake(seed)
        .handshake_for(&f.torrent.info.hashes(), FAST_EXT);
    f.sim.fake_send_handshake(seed, &hs);
    f.sim.fake_send(seed, &[Message::HaveAll, Message::Unchoke]);
    let (node, tid) = (f.node, f.tid);
    f.sim
        .run_until(|s| s.node(node).is_finished(tid), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        f.sim.node(node).disk().content(tid).unwrap(),
        &f.torrent.content[..]
    );
    let requests = f.sim.fake(seed).requests();
    assert_eq!(
        requests.len(),
        20,
        "each block requested once: {requests:?}"
    );
    assert!(f
        .sim
        .fake(seed)
        .messages()
        .any(|m| *m == Message::Interested));
    // Having everything, the node drops the fake seed: neither wants anything (BEP 21).
    f.sim.run_for(Duration::from_millis(100)).unwrap();
    assert!(f.sim.fake(seed).closed_at().is_some());
    assert!(f
        .sim
        .node(f.node)
        .disconnects()
        .iter()
        .any(|(_, r)| *r == DisconnectReason::BothSeeding));
}

#[test]
fn pipes_follow_bandwidth_and_latency() {
    let mut sim = Sim::new(30);
    let sender = sim.add_fake(FakeConfig {
        link: LinkProfile {
            upload: Some(100_000),
            download: None,
            latency: Duration::from_millis(10),
        },
        ..FakeConfig::new(PeerId([1; 20]))
    });
    let receiver = sim.add_fake(FakeConfig {
        link: LinkProfile {
            upload: None,
            download: None,
            latency: Duration::from_millis(5),
        },
        ..FakeConfig::new(PeerId([2; 20])).listening()
    });
    let addr = sim.fake(receiver).addr();
    sim.fake_connect(sender, addr);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(16384, 16384));
    let hs = sim
        .fake(sender)
        .handshake_for(&torrent.info.hashes(), FAST_EXT);
    sim.fake_send_handshake(sender, &hs);
    let block = bytes::Bytes::from(vec![7u8; 50_000]);
    sim.fake_send(
        sender,
        &[Message::Piece {
            index: 0,
            begin: 0,
            data: block.clone(),
        }],
    );
    sim.run_for(Duration::from_secs(2)).unwrap();
    let got = sim.fake(receiver).received();
    assert_eq!(got.len(), 1);
    // 68 + 50,013 bytes at 100 kB/s leave the uplink at 500.81 ms; 15 ms of path latency.
    assert_eq!(got[0].0.as_micros(), 680 + 500_130 + 15_000);
    assert_eq!(
        got[0].1,
        Message::Piece {
            index: 0,
            begin: 0,
            data: block
        }
    );
    // A close follows the data, one path latency after it was sent.
    sim.fake_close(sender);
    let closing = sim.now();
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(
        sim.fake(receiver).closed_at(),
        Some(closing + Duration::from_millis(15))
    );
}

#[test]
fn a_failing_invariant_stops_the_run_and_names_the_seed() {
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(100_000, 16384))
        .leechers(1)
        .build(77);
    let leech = swarm.leechers().next().unwrap();
    swarm
        .sim
        .add_invariant("no piece is ever verified", move |s| {
            match s
                .node(leech.node)
                .events()
                .iter()
                .any(|(_, e)| matches!(e, Event::PieceVerified { .. }))
            {
                true => Err("a piece was verified".into()),
                false => Ok(()),
            }
        });
    let err = swarm
        .run_until_finished(Duration::from_secs(60))
        .expect_err("the invariant fails once a piece arrives");
    assert_eq!(err.seed, 77);
    assert!(matches!(err.kind, SimErrorKind::Invariant(_)), "{err}");
    assert!(err.to_string().contains("Sim::new(77)"), "{err}");
    assert!(!swarm.all_finished());
}
