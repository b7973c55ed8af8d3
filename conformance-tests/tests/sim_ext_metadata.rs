//! Magnet links in the simulator (BEP 9): fetching the `info` dictionary from several peers,
//! liars and absurd sizes, serving our metadata to others, BEP 53 select-only.

use bitshoal_conformance::sim::{
    FakeConfig, FakeId, FakePeer, MetadataServe, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec,
    FAKE_UT_METADATA,
};
use bitshoal_core::ext::{MetadataMessage, METADATA_PIECE_SIZE};
use bitshoal_core::id::{PeerId, TorrentId};
use bitshoal_core::magnet::{Magnet, PeerAddr, SelectOnly};
use bitshoal_core::peer::{DisconnectReason, Violation};
use bitshoal_core::session::{AddMagnet, Event, TorrentState};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{Message, Reserved};

/// A torrent whose `info` dictionary spans several 16 KiB metadata pieces: many small files.
fn many_files(sim: &mut Sim) -> TestTorrent {
    let spec = TorrentSpec {
        files: vec![100; 1500],
        piece_length: 16 * 1024,
        pad_files: false,
    };
    let t = TestTorrent::build(sim.rng(), &spec);
    assert!(
        t.info.raw().len() > 3 * METADATA_PIECE_SIZE,
        "the test needs at least four metadata pieces"
    );
    t
}

/// A listening fake that serves the metadata as `how` says and has no pieces.
fn metadata_fake(
    sim: &mut Sim,
    n: u8,
    torrent: &TestTorrent,
    size: u64,
    how: MetadataServe,
) -> FakeId {
    let mut id = *b"-FK0001-metadata0000";
    id[19] = b'0' + n;
    let fake = sim.add_fake(FakeConfig::new(PeerId(id)).listening());
    let ext = FakePeer::extended_handshake(Some(size), &[]);
    let f = sim.fake_mut(fake);
    f.greet_with(&torrent.info.hashes(), &ext, &[Message::HaveNone]);
    f.serve_metadata(torrent.info.raw().clone(), how);
    fake
}

/// Adds a magnet for `torrent` naming `peers` to `node`.
fn add_magnet(
    sim: &mut Sim,
    node: NodeId,
    torrent: &TestTorrent,
    peers: &[std::net::SocketAddr],
    so: Option<SelectOnly>,
) -> TorrentId {
    let mut magnet = Magnet::new(torrent.info.hashes());
    for p in peers {
        magnet.add_peer(PeerAddr::Ip(*p));
    }
    magnet.set_select_only(so);
    sim.with_session(node, |s, now| s.add_magnet(now, AddMagnet::new(magnet)))
        .expect("a fresh magnet is accepted")
}

fn metadata_events(sim: &Sim, node: NodeId) -> Vec<bytes::Bytes> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MetadataReceived { info, .. } => Some(info.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn magnet_from_a_seed_fetches_metadata_then_downloads() {
    let mut sim = Sim::new(11);
    let torrent = many_files(&mut sim);
    let seed = sim.add_node(NodeConfig::default());
    let leech = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    let seed_addr = sim.node(seed).addr();
    let t = add_magnet(&mut sim, leech, &torrent, &[seed_addr], None);
    assert_eq!(
        sim.node(leech).session().torrent_state(t),
        Some(TorrentState::FetchingMetadata)
    );
    let status = sim.node(leech).session().torrent_status(t).unwrap();
    assert_eq!(status.hashes, torrent.info.hashes());
    assert_eq!(status.pieces_total, 0);
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        metadata_events(&sim, leech),
        vec![torrent.info.raw().clone()]
    );
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    let info = sim.node(leech).session().torrent_info(t).unwrap();
    assert_eq!(info.hashes(), torrent.info.hashes());
    // The state went FetchingMetadata -> Downloading -> Seeding.
    let states: Vec<TorrentState> = sim
        .node(leech)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::StateChanged { torrent, state } if *torrent == t => Some(state.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            TorrentState::FetchingMetadata,
            TorrentState::Downloading,
            TorrentState::Seeding
        ]
    );
}

#[test]
fn metadata_comes_from_several_peers_despite_a_liar_and_an_absurd_size() {
    let mut sim = Sim::new(12);
    let torrent = many_files(&mut sim);
    let size = torrent.info.raw().len() as u64;
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    let honest1 = metadata_fake(&mut sim, 1, &torrent, size, MetadataServe::Honest);
    let honest2 = metadata_fake(&mut sim, 2, &torrent, size, MetadataServe::Honest);
    let liar = metadata_fake(&mut sim, 3, &torrent, size, MetadataServe::Corrupt);
    // Announces a terabyte of metadata: never allocated, never asked.
    let huge = metadata_fake(&mut sim, 4, &torrent, 1 << 40, MetadataServe::Honest);
    let leech = sim.add_node(NodeConfig::default());
    let peers: Vec<_> = [
        sim.fake(huge).addr(),
        sim.fake(liar).addr(),
        sim.fake(honest1).addr(),
        sim.fake(honest2).addr(),
        sim.node(seed).addr(),
    ]
    .to_vec();
    let t = add_magnet(&mut sim, leech, &torrent, &peers, None);
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        metadata_events(&sim, leech),
        vec![torrent.info.raw().clone()]
    );
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    assert_eq!(
        sim.fake(huge).metadata_requests(),
        0,
        "the absurd size is never fetched"
    );
    let asked: Vec<u32> = [honest1, honest2, liar]
        .iter()
        .map(|f| sim.fake(*f).metadata_requests())
        .collect();
    assert!(
        asked.iter().filter(|n| **n > 0).count() >= 2,
        "the pieces spread over several peers: {asked:?}"
    );
    let liar_addr = sim.fake(liar).addr();
    assert!(
        sim.fake(liar).metadata_requests() > 0,
        "the liar was asked too (seed 12)"
    );
    assert!(
        sim.node(leech).events().iter().any(|(_, e)| matches!(
            e,
            Event::PeerDisconnected {
                addr,
                reason: DisconnectReason::Violation(Violation::BadMetadata),
                ..
            } if *addr == liar_addr
        )),
        "a peer that sent corrupt metadata is disconnected"
    );
}

#[test]
fn a_peer_that_only_lies_cannot_stall_the_fetch() {
    let mut sim = Sim::new(13);
    let torrent = many_files(&mut sim);
    let size = torrent.info.raw().len() as u64;
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    // The first peer lies about the size itself; the second sends the wrong total_size.
    let wrong_size = metadata_fake(&mut sim, 1, &torrent, size + 7, MetadataServe::Honest);
    let wrong_total = metadata_fake(
        &mut sim,
        2,
        &torrent,
        size,
        MetadataServe::WrongTotalSize(size + 1),
    );
    let rejecter = metadata_fake(&mut sim, 3, &torrent, size, MetadataServe::Reject);
    let leech = sim.add_node(NodeConfig::default());
    let peers = [
        sim.fake(wrong_size).addr(),
        sim.fake(wrong_total).addr(),
        sim.fake(rejecter).addr(),
        sim.node(seed).addr(),
    ];
    let t = add_magnet(&mut sim, leech, &torrent, &peers, None);
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        metadata_events(&sim, leech),
        vec![torrent.info.raw().clone()]
    );
    // The first peer's size was tried first; its answers (with the real total_size) gave it
    // away, and the fetch went on with the size the other peers announce.
    assert!(sim.fake(wrong_size).metadata_requests() > 0);
    assert!(sim.fake(rejecter).metadata_requests() > 0);
    assert!(sim.fake(wrong_total).metadata_requests() > 0);
    for liar in [wrong_size, wrong_total] {
        let liar_addr = sim.fake(liar).addr();
        assert!(
            sim.node(leech).events().iter().any(|(_, e)| matches!(
                e,
                Event::PeerDisconnected {
                    addr,
                    reason: DisconnectReason::Violation(Violation::BadMetadata),
                    ..
                } if *addr == liar_addr
            )),
            "{liar:?} is disconnected"
        );
    }
}

#[test]
fn a_seed_serves_its_metadata_and_rejects_pieces_past_the_end() {
    let mut sim = Sim::new(14);
    let torrent = many_files(&mut sim);
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    let fake = sim.add_fake(FakeConfig::new(PeerId(*b"-FK0001-asksmetadata")));
    sim.fake_connect(fake, sim.node(seed).addr());
    let hs = sim.fake(fake).handshake_for(
        &torrent.info.hashes(),
        Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL),
    );
    sim.fake_send_handshake(fake, &hs);
    let ext = FakePeer::extended_handshake(None, &[]);
    sim.fake_send(fake, &[ext.to_message(), Message::HaveNone]);
    sim.run_until(
        |s| s.fake(fake).remote_extended().is_some(),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let theirs = sim.fake(fake).remote_extended().unwrap().clone();
    let raw = torrent.info.raw().clone();
    assert_eq!(theirs.metadata_size, Some(raw.len() as u64));
    let id = theirs
        .extension_id(b"ut_metadata")
        .expect("the seed offers ut_metadata");
    let pieces = raw.len().div_ceil(METADATA_PIECE_SIZE) as u32;
    let requests: Vec<Message> = (0..=pieces)
        .map(|piece| Message::Extended {
            id,
            payload: MetadataMessage::Request { piece }.to_payload(),
        })
        .collect();
    sim.fake_send(fake, &requests);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let answers: Vec<MetadataMessage> = sim
        .fake(fake)
        .messages()
        .filter_map(|m| match m {
            Message::Extended { id, payload } if *id == FAKE_UT_METADATA => {
                MetadataMessage::decode(payload).ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), pieces as usize + 1);
    let mut assembled = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match a {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                assert_eq!(*piece, i as u32);
                assert_eq!(*total_size, raw.len() as u64);
                assembled.extend_from_slice(data);
            }
            MetadataMessage::Reject { piece } => assert_eq!(*piece, pieces),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(assembled, &raw[..]);
}

#[test]
fn select_only_skips_the_files_the_link_does_not_name() {
    let mut sim = Sim::new(15);
    // Whole pieces per file: no piece holds bytes of two files.
    let spec = TorrentSpec {
        files: vec![32 * 1024, 48 * 1024, 16 * 1024],
        piece_length: 16 * 1024,
        pad_files: false,
    };
    let torrent = TestTorrent::build(sim.rng(), &spec);
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    let leech = sim.add_node(NodeConfig::default());
    let so = SelectOnly::from_ranges([1..=1]).unwrap();
    let seed_addr = sim.node(seed).addr();
    let t = add_magnet(&mut sim, leech, &torrent, &[seed_addr], Some(so));
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let progress = sim.node(leech).session().file_progress(t).unwrap();
    assert_eq!(progress, vec![0, 48 * 1024, 0], "only file 1 is downloaded");
    let status = sim.node(leech).session().torrent_status(t).unwrap();
    assert_eq!(status.pieces_have, 3);
}
