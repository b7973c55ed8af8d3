//! The small extensions in the simulator: BEP 11 PEX (a peer learned through it gets
//! connected; floods are bounded), BEP 21 upload-only, BEP 54 lt_donthave, BEP 55 holepunch
//! (two nodes behind NATs meet through a third; connects to unknown addresses are ignored),
//! BEP 28 tracker exchange, and BEP 27 private torrents that use none of them.

use std::net::SocketAddr;

use bitshoal_conformance::sim::{
    FakeConfig, FakeId, FakePeer, LinkProfile, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec,
    TrackerConfig,
};
use bitshoal_core::ext::donthave::DontHave;
use bitshoal_core::ext::holepunch::HolepunchMessage;
use bitshoal_core::ext::upload_only::UploadOnly;
use bitshoal_core::ext::{names, PexFlags, PexMessage};
use bitshoal_core::id::{PeerId, TorrentId};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::{Config, Event, TorrentState};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{Message, Reserved};

/// Ids under which the fakes receive the extensions.
const F_PEX: u8 = 11;
const F_UPLOAD_ONLY: u8 = 12;
const F_DONTHAVE: u8 = 13;
const F_HOLEPUNCH: u8 = 14;

fn small(sim: &mut Sim) -> TestTorrent {
    TestTorrent::build(sim.rng(), &TorrentSpec::single(200_000, 32 * 1024))
}

/// A node on a 50 kB/s link: a small download takes seconds, time for the extensions to talk.
fn slow() -> NodeConfig {
    NodeConfig {
        link: LinkProfile::symmetric(50_000, Duration::from_millis(10)),
        ..NodeConfig::default()
    }
}

fn peer_ids(sim: &Sim, node: NodeId) -> Vec<PeerId> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerConnected { peer_id, .. } => Some(*peer_id),
            _ => None,
        })
        .collect()
}

fn connect_failures(sim: &Sim, node: NodeId) -> Vec<SocketAddr> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerDisconnected {
                addr,
                reason: DisconnectReason::ConnectFailed,
                ..
            } => Some(*addr),
            _ => None,
        })
        .collect()
}

/// A fake that connects to `node` for `torrent`, offering `extensions`, with `pieces` as its
/// first message; runs until the node's extension handshake is in.
fn fake_peer(
    sim: &mut Sim,
    n: u8,
    node: NodeId,
    torrent: &TestTorrent,
    extensions: &[(&[u8], u8)],
    pieces: Message,
    upload_only: bool,
) -> FakeId {
    let mut id = *b"-FK0001-extensions00";
    id[19] = b'0' + n;
    let fake = sim.add_fake(FakeConfig::new(PeerId(id)));
    sim.fake_connect(fake, sim.node(node).addr());
    let hs = sim.fake(fake).handshake_for(
        &torrent.info.hashes(),
        Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL),
    );
    sim.fake_send_handshake(fake, &hs);
    let mut ext = FakePeer::extended_handshake(None, extensions);
    ext.upload_only = upload_only;
    ext.listen_port = Some(7000 + u16::from(n));
    sim.fake_send(fake, &[ext.to_message(), pieces]);
    sim.run_until(
        |s| s.fake(fake).remote_extended().is_some() || s.fake(fake).closed_at().is_some(),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fake
}

/// The extended messages a fake received under `id`.
fn extended(sim: &Sim, fake: FakeId, id: u8) -> Vec<bytes::Bytes> {
    sim.fake(fake)
        .messages()
        .filter_map(|m| match m {
            Message::Extended { id: i, payload } if *i == id => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn pex_spreads_a_peer_that_then_gets_connected() {
    let mut sim = Sim::new(21);
    let torrent = small(&mut sim);
    let seed = sim.add_node(slow());
    let a = sim.add_node(slow());
    let b = sim.add_node(slow());
    sim.seed_torrent(seed, &torrent);
    let ta = sim.add_torrent(a, &torrent);
    let tb = sim.add_torrent(b, &torrent);
    let seed_addr = sim.node(seed).addr();
    sim.connect(a, ta, seed_addr).unwrap();
    sim.connect(b, tb, seed_addr).unwrap();
    // Nobody tells a about b but the seed's PEX.
    let b_id = sim.node(b).session().peer_id();
    sim.run_until(|s| peer_ids(s, a).contains(&b_id), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sim.node(a).events().iter().any(|(_, e)| matches!(
        e,
        Event::PeerConnected { peer_id, torrent, .. } if *peer_id == b_id && *torrent == ta
    )));
}

#[test]
fn a_pex_flood_is_bounded() {
    let mut sim = Sim::new(22);
    let torrent = small(&mut sim);
    let node = sim.add_node(NodeConfig {
        session: Config {
            max_peers_per_torrent: 20,
            ..Config::default()
        },
        ..NodeConfig::default()
    });
    let t = sim.add_torrent(node, &torrent);
    let _ = t;
    let fake = fake_peer(
        &mut sim,
        1,
        node,
        &torrent,
        &[(names::UT_PEX, F_PEX)],
        Message::HaveNone,
        false,
    );
    let id = sim
        .fake(fake)
        .remote_extended()
        .unwrap()
        .extension_id(names::UT_PEX)
        .expect("the node offers ut_pex");
    // Five messages of 200 peers each, nobody listening at any of them.
    let mut messages = Vec::new();
    for round in 0..5u8 {
        let added = (0..200u16)
            .map(|i| {
                let addr = SocketAddr::from(([127, 0, 50 + round, (i % 250) as u8], 9000 + i));
                (addr, PexFlags::NONE)
            })
            .collect();
        let mut payload = Vec::new();
        PexMessage {
            added,
            dropped: Vec::new(),
        }
        .encode(&mut payload);
        messages.push(Message::Extended {
            id,
            payload: payload.into(),
        });
    }
    sim.fake_send(fake, &messages);
    sim.run_for(Duration::from_secs(20)).unwrap();
    let failed = connect_failures(&sim, node);
    assert!(!failed.is_empty(), "the first message's peers are dialled");
    assert!(
        failed.len() <= 20,
        "at most the torrent's connection budget is dialled: {}",
        failed.len()
    );
    assert!(
        failed
            .iter()
            .all(|a| a.ip().to_string().starts_with("127.0.50.")),
        "messages after the first within a minute are ignored"
    );
}

#[test]
fn a_private_torrent_offers_no_pex_and_ignores_it() {
    let mut sim = Sim::new(23);
    let torrent = TestTorrent::build_private(sim.rng(), &TorrentSpec::single(100_000, 32 * 1024));
    assert!(torrent.info.is_private());
    let node = sim.add_node(NodeConfig::default());
    sim.add_torrent(node, &torrent);
    let fake = fake_peer(
        &mut sim,
        1,
        node,
        &torrent,
        &[(names::UT_PEX, F_PEX), (names::LT_TEX, 15)],
        Message::HaveNone,
        false,
    );
    let theirs = sim.fake(fake).remote_extended().unwrap().clone();
    assert_eq!(theirs.extension_id(names::UT_PEX), None);
    assert_eq!(theirs.extension_id(names::LT_TEX), None);
    assert!(theirs.extension_id(names::UT_METADATA).is_some());
    // A PEX message under the id a public torrent would use is ignored.
    let mut payload = Vec::new();
    PexMessage {
        added: vec![(SocketAddr::from(([127, 0, 60, 1], 9000)), PexFlags::NONE)],
        dropped: Vec::new(),
    }
    .encode(&mut payload);
    sim.fake_send(
        fake,
        &[Message::Extended {
            id: names::LOCAL_UT_PEX,
            payload: payload.into(),
        }],
    );
    sim.run_for(Duration::from_secs(70)).unwrap();
    assert!(connect_failures(&sim, node).is_empty());
    assert!(extended(&sim, fake, F_PEX).is_empty(), "no PEX is sent");
}

#[test]
fn upload_only_is_sent_when_finished_and_honoured() {
    let mut sim = Sim::new(24);
    let torrent = small(&mut sim);
    let seed = sim.add_node(NodeConfig::default());
    let leech = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    let t = sim.add_torrent(leech, &torrent);
    // A fake with nothing, watching the leech.
    let watcher = fake_peer(
        &mut sim,
        1,
        leech,
        &torrent,
        &[(names::UPLOAD_ONLY, F_UPLOAD_ONLY)],
        Message::HaveNone,
        false,
    );
    assert!(!sim.fake(watcher).remote_extended().unwrap().upload_only);
    let seed_addr = sim.node(seed).addr();
    sim.connect(leech, t, seed_addr).unwrap();
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_millis(100)).unwrap();
    let sent: Vec<UploadOnly> = extended(&sim, watcher, F_UPLOAD_ONLY)
        .iter()
        .map(|p| UploadOnly::decode(p).unwrap())
        .collect();
    assert_eq!(
        sent,
        vec![UploadOnly(true)],
        "the leech says it only uploads now"
    );
    // Honoured: an upload-only peer and a seed want nothing from each other.
    let lazy = fake_peer(
        &mut sim,
        2,
        leech,
        &torrent,
        &[(names::UPLOAD_ONLY, F_UPLOAD_ONLY)],
        Message::HaveNone,
        true,
    );
    sim.run_for(Duration::from_millis(100)).unwrap();
    assert!(sim.fake(lazy).closed_at().is_some());
    assert!(sim.fake(watcher).closed_at().is_none(), "a leecher is kept");
}

#[test]
fn donthave_is_sent_for_lost_pieces_and_honoured() {
    let mut sim = Sim::new(25);
    let torrent = small(&mut sim);
    let node = sim.add_node(NodeConfig::default());
    let t = sim.seed_torrent(node, &torrent);
    let watcher = fake_peer(
        &mut sim,
        1,
        node,
        &torrent,
        &[(names::LT_DONTHAVE, F_DONTHAVE)],
        Message::HaveNone,
        false,
    );
    let lost = sim
        .with_session(node, |s, now| s.file_lost(now, t, 0))
        .unwrap();
    assert_eq!(lost, torrent.piece_count());
    sim.run_for(Duration::from_millis(100)).unwrap();
    let pieces: Vec<u32> = extended(&sim, watcher, F_DONTHAVE)
        .iter()
        .map(|p| DontHave::decode(p).unwrap().piece)
        .collect();
    assert_eq!(pieces, (0..torrent.piece_count()).collect::<Vec<_>>());
    assert_eq!(
        sim.node(node).session().torrent_state(t),
        Some(TorrentState::Downloading)
    );

    // Honoured: a seed that says it lost a piece no longer counts as having it.
    let leech = sim.add_node(NodeConfig::default());
    let lt = sim.add_torrent(leech, &torrent);
    let seed = fake_peer(
        &mut sim,
        2,
        leech,
        &torrent,
        &[(names::LT_DONTHAVE, F_DONTHAVE)],
        Message::HaveAll,
        false,
    );
    let id = sim
        .fake(seed)
        .remote_extended()
        .unwrap()
        .extension_id(names::LT_DONTHAVE)
        .unwrap();
    let mut payload = Vec::new();
    DontHave { piece: 2 }.encode(&mut payload);
    sim.fake_send(
        seed,
        &[Message::Extended {
            id,
            payload: payload.into(),
        }],
    );
    sim.run_for(Duration::from_millis(100)).unwrap();
    let now = sim.now();
    let peers = sim.node(leech).session().peers(now, lt);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].pieces, torrent.piece_count() - 1);
}

#[test]
fn two_nodes_behind_nats_meet_through_a_relay() {
    let mut sim = Sim::new(26);
    let torrent = small(&mut sim);
    let relay = sim.add_node(slow());
    let natted = NodeConfig {
        no_incoming: true,
        ..slow()
    };
    let a = sim.add_node(natted.clone());
    let b = sim.add_node(natted);
    sim.seed_torrent(relay, &torrent);
    let ta = sim.add_torrent(a, &torrent);
    let tb = sim.add_torrent(b, &torrent);
    let relay_addr = sim.node(relay).addr();
    let via = sim.connect(a, ta, relay_addr).unwrap();
    sim.connect(b, tb, relay_addr).unwrap();
    let (a_id, b_id) = (
        sim.node(a).session().peer_id(),
        sim.node(b).session().peer_id(),
    );
    let b_addr = sim.node(b).addr();
    // PEX tells each about the other, but neither can accept the other's connection.
    sim.run_until(
        |s| connect_failures(s, a).contains(&b_addr),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!peer_ids(&sim, a).contains(&b_id));
    sim.with_session(a, |s, now| s.holepunch(now, via, b_addr))
        .unwrap();
    sim.run_until(
        |s| peer_ids(s, a).contains(&b_id) && peer_ids(s, b).contains(&a_id),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Both dialled at once: both sides agree on one connection, which lasts until both are
    // seeds (BEP 21), the other one going as a duplicate.
    sim.run_until(
        |s| s.node(a).is_finished(ta) && s.node(b).is_finished(tb),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(1)).unwrap();
    let b_ip = b_addr.ip();
    let reasons: Vec<DisconnectReason> = sim
        .node(a)
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            Event::PeerDisconnected { addr, reason, .. } if addr.ip() == b_ip => {
                Some((*at, reason.clone()))
            }
            _ => None,
        })
        .filter(|(_, r)| *r != DisconnectReason::ConnectFailed)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == DisconnectReason::BothSeeding)
            .count(),
        1,
        "{reasons:?}"
    );
    assert!(reasons.iter().all(|r| matches!(
        r,
        DisconnectReason::BothSeeding
            | DisconnectReason::DuplicatePeer
            | DisconnectReason::ClosedByRemote
    )));
}

#[test]
fn holepunch_connects_to_unknown_addresses_are_ignored_and_bad_rendezvous_answered() {
    let mut sim = Sim::new(27);
    let torrent = small(&mut sim);
    let node = sim.add_node(NodeConfig::default());
    sim.add_torrent(node, &torrent);
    let relay = fake_peer(
        &mut sim,
        1,
        node,
        &torrent,
        &[(names::UT_HOLEPUNCH, F_HOLEPUNCH)],
        Message::HaveNone,
        false,
    );
    let id = sim
        .fake(relay)
        .remote_extended()
        .unwrap()
        .extension_id(names::UT_HOLEPUNCH)
        .unwrap();
    let unknown = SocketAddr::from(([127, 0, 70, 1], 6000));
    let mut messages = Vec::new();
    for m in [
        HolepunchMessage::Connect(unknown),
        HolepunchMessage::Rendezvous(SocketAddr::from(([127, 0, 70, 2], 6000))),
    ] {
        let mut payload = Vec::new();
        m.encode(&mut payload);
        messages.push(Message::Extended {
            id,
            payload: payload.into(),
        });
    }
    sim.fake_send(relay, &messages);
    sim.run_for(Duration::from_secs(5)).unwrap();
    assert!(
        connect_failures(&sim, node).is_empty(),
        "a relay cannot make us dial an address we never heard of"
    );
    let answers: Vec<HolepunchMessage> = extended(&sim, relay, F_HOLEPUNCH)
        .iter()
        .map(|p| HolepunchMessage::decode(p).unwrap())
        .collect();
    assert!(
        matches!(answers.as_slice(), [HolepunchMessage::Error { .. }]),
        "{answers:?}"
    );
}

#[test]
fn tracker_exchange_adds_a_tracker_learned_from_a_peer() {
    let mut sim = Sim::new(28);
    let torrent = small(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig::default());
    let url = sim.tracker(tracker).http_url();
    let seed = sim.add_node(slow());
    let leech = sim.add_node(slow());
    sim.seed_torrent_with_trackers(seed, &torrent, vec![vec![url.clone()]]);
    let t: TorrentId = sim.add_torrent(leech, &torrent);
    // The seed's announce succeeds first.
    sim.run_until(
        |s| !s.tracker(tracker).announces_from(seed).is_empty(),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(1)).unwrap();
    let seed_addr = sim.node(seed).addr();
    sim.connect(leech, t, seed_addr).unwrap();
    // The leech had no trackers: it learns the seed's from tracker exchange and announces.
    sim.run_until(
        |s| {
            s.node(leech)
                .events()
                .iter()
                .any(|(_, e)| matches!(e, Event::TrackerAnnounced { url: u, .. } if *u == url))
        },
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!sim.tracker(tracker).announces_from(leech).is_empty());
}
