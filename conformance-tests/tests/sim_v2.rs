//! BitTorrent v2 and hybrid torrents (BEP 52) in the simulator: swarms of v2-only and hybrid
//! torrents, corrupt peers (smart ban on v2), piece layers fetched with hash requests when a
//! torrent was added without them, serving hash requests and the flood limit, the handshake's
//! upgrade bit, full rechecks, and an inconsistent hybrid stopping with an error.

use std::net::IpAddr;

use bitshoal_conformance::sim::{
    FakeConfig, FakeId, LinkProfile, NodeConfig, NodeId, Sim, SwarmBuilder, TestTorrent,
    TorrentSpec,
};
use bitshoal_core::create::Version;
use bitshoal_core::id::{PeerId, TorrentId};
use bitshoal_core::merkle::{self, HashRange};
use bitshoal_core::peer::{DisconnectReason, Violation};
use bitshoal_core::session::{AddTorrent, CheckMode, Event, TorrentError, TorrentState};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{HashRequest, HashVersion, Message, Reserved};

/// Files that exercise every v2 alignment rule at 64 KiB pieces: a file with a short last
/// piece, one smaller than a block, one smaller than a piece but of several blocks, one of
/// exactly two pieces, and an empty one.
fn mixed_files() -> TorrentSpec {
    TorrentSpec {
        files: vec![200_000, 1_000, 40_000, 131_072, 0],
        piece_length: 64 * 1024,
        pad_files: false,
    }
}

fn events(sim: &Sim, node: NodeId) -> impl Iterator<Item = &Event> + '_ {
    sim.node(node).events().iter().map(|(_, e)| e)
}

fn banned(sim: &Sim, node: NodeId) -> Vec<IpAddr> {
    events(sim, node)
        .filter_map(|e| match e {
            Event::PeerBanned { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect()
}

fn fake_seed(sim: &mut Sim, torrent: &TestTorrent, id: u8, corrupt: bool) -> FakeId {
    let fake = sim.add_fake(FakeConfig::new(PeerId([id; 20])).listening());
    let f = sim.fake_mut(fake);
    f.greet_as_seed(&torrent.info.hashes());
    let (content, len) = (torrent.content.clone(), torrent.info.piece_length());
    if corrupt {
        f.serve_corrupt(content, len);
    } else {
        f.serve(content, len);
    }
    fake
}

#[test]
fn v2_only_and_hybrid_swarms_finish_with_the_right_bytes() {
    for (version, seed) in [(Version::V2, 1), (Version::V2, 2), (Version::Hybrid, 3)] {
        let mut swarm = SwarmBuilder::new(mixed_files())
            .version(version)
            .seeds(1)
            .leechers(3)
            .build(seed);
        assert_eq!(
            swarm.torrent.info.version() == bitshoal_core::metainfo::Version::V2,
            version == Version::V2
        );
        swarm
            .run_until_finished(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        for n in swarm.leechers() {
            assert_eq!(
                swarm.content(n),
                swarm.torrent.content[..],
                "{version:?} seed {seed}"
            );
            let status = swarm
                .sim
                .node(n.node)
                .session()
                .torrent_status(n.torrent)
                .unwrap();
            assert_eq!(status.pieces_failed, 0);
        }
    }
}

/// A peer serving corrupt blocks of a v2 torrent is banned (it alone, within two attempts per
/// piece), and everyone finishes from the honest peers.
#[test]
fn a_corrupt_peer_in_a_v2_or_hybrid_swarm_is_banned_and_everyone_finishes() {
    for (version, seed) in [
        (Version::V2, 10),
        (Version::V2, 11),
        (Version::Hybrid, 12),
        (Version::Hybrid, 13),
    ] {
        let mut sim = Sim::new(seed);
        let spec = TorrentSpec::single(1 << 20, 256 * 1024);
        let torrent = TestTorrent::build_v2(sim.rng(), &spec, version);
        let good = sim.add_node(NodeConfig {
            link: LinkProfile::symmetric(500_000, Duration::from_millis(20)),
            ..NodeConfig::default()
        });
        sim.seed_torrent(good, &torrent);
        let leeches: Vec<(NodeId, TorrentId)> = (0..2)
            .map(|_| {
                let n = sim.add_node(NodeConfig::default());
                (n, sim.add_torrent(n, &torrent))
            })
            .collect();
        let liar = fake_seed(&mut sim, &torrent, 0xbb, true);
        let liar_addr = sim.fake(liar).addr();
        let good_addr = sim.node(good).addr();
        for &(n, t) in &leeches {
            sim.connect(n, t, good_addr).unwrap();
        }
        // The liar reaches the first leecher (a fake peer has one connection).
        sim.connect(leeches[0].0, leeches[0].1, liar_addr).unwrap();
        sim.run_until(
            |s| leeches.iter().all(|&(n, t)| s.node(n).is_finished(t)),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        for &(n, t) in &leeches {
            assert_eq!(
                sim.node(n).disk().content(t).unwrap(),
                &torrent.content[..],
                "seed {seed}"
            );
        }
        assert_eq!(
            banned(&sim, leeches[0].0),
            vec![liar_addr.ip()],
            "{version:?} seed {seed}"
        );
        assert!(banned(&sim, leeches[1].0).is_empty());
        let failed = sim
            .node(leeches[0].0)
            .session()
            .torrent_status(leeches[0].1)
            .unwrap()
            .pieces_failed;
        assert!(
            (1..=8).contains(&failed),
            "{version:?} seed {seed}: {failed} failures"
        );
    }
}

/// A v2 torrent added without its piece layers (as from a `btmh` magnet once the info
/// dictionary is known) fetches them with hash requests, checks them against the file roots,
/// and then downloads; a peer that lacks the layers too just rejects.
#[test]
fn withheld_piece_layers_are_fetched_from_peers_and_checked() {
    for (version, seed) in [(Version::V2, 20), (Version::Hybrid, 21)] {
        let mut sim = Sim::new(seed);
        let spec = TorrentSpec {
            files: vec![700_000, 20_000, 300_000],
            piece_length: 16 * 1024,
            pad_files: false,
        };
        let torrent = TestTorrent::build_v2(sim.rng(), &spec, version);
        let seed_node = sim.add_node(NodeConfig::default());
        sim.seed_torrent(seed_node, &torrent);
        // A second seed without the layers: it serves blocks, and rejects hash requests.
        let blind = sim.add_node(NodeConfig::default());
        let blind_t = sim
            .try_add_torrent(
                blind,
                AddTorrent::new(torrent.info.clone()).with_have(
                    bitshoal_core::bitfield::Bitfield::full(torrent.piece_count()),
                ),
            )
            .unwrap();
        sim.disk_mut(blind).fill(blind_t, &torrent.content);
        let leech = sim.add_node(NodeConfig::default());
        let t = sim
            .try_add_torrent(leech, AddTorrent::new(torrent.info.clone()))
            .unwrap();
        for n in [blind, seed_node] {
            let addr = sim.node(n).addr();
            sim.connect(leech, t, addr).unwrap();
        }
        sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        assert_eq!(
            sim.node(leech).disk().content(t).unwrap(),
            &torrent.content[..]
        );
        let complete = events(&sim, leech)
            .filter(|e| matches!(e, Event::PieceLayersComplete { .. }))
            .count();
        assert_eq!(complete, 1, "{version:?}");
        if version == Version::V2 {
            // Nothing was downloaded before the layers were in: no piece could be verified.
            let first_layers = sim
                .node(leech)
                .events()
                .iter()
                .position(|(_, e)| matches!(e, Event::PieceLayersComplete { .. }))
                .unwrap();
            let first_piece = sim
                .node(leech)
                .events()
                .iter()
                .position(|(_, e)| matches!(e, Event::PieceVerified { .. }))
                .unwrap();
            assert!(first_layers < first_piece);
        }
        let status = sim.node(leech).session().torrent_status(t).unwrap();
        assert_eq!(status.pieces_failed, 0);
    }
}

fn hash_request(torrent: &TestTorrent, file: usize, range: HashRange) -> HashRequest {
    HashRequest {
        pieces_root: *torrent.info.files()[file].pieces_root().unwrap(),
        base_layer: range.base_layer,
        index: range.index,
        length: range.length,
        proof_layers: range.proof_layers,
    }
}

/// A seed answers a hash request with hashes that prove themselves against the file's root,
/// rejects what it cannot serve, and closes the connection of a peer that floods it.
#[test]
fn a_seed_serves_hash_requests_and_a_flood_costs_the_connection() {
    let mut sim = Sim::new(30);
    let spec = TorrentSpec::single(2 << 20, 16 * 1024); // 128 pieces, a tree of height 7
    let torrent = TestTorrent::build_v2(sim.rng(), &spec, Version::V2);
    let seed_node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed_node, &torrent);
    let fake = sim.add_fake(FakeConfig::new(PeerId([0x77; 20])));
    let addr = sim.node(seed_node).addr();
    sim.fake_connect(fake, addr);
    let handshake = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), Reserved::FAST);
    sim.fake_send_handshake(fake, &handshake);
    let root = *torrent.info.files()[0].pieces_root().unwrap();
    let good = HashRange {
        base_layer: 0,
        index: 64,
        length: 32,
        proof_layers: 6,
    };
    let leaves = HashRange {
        base_layer: 0,
        index: 0,
        length: 1024,
        proof_layers: 0,
    };
    let outside = HashRange {
        base_layer: 0,
        index: 128,
        length: 2,
        proof_layers: 0,
    };
    sim.fake_send(
        fake,
        &[
            Message::HashRequest(hash_request(&torrent, 0, good)),
            Message::HashRequest(hash_request(&torrent, 0, leaves)),
            Message::HashRequest(hash_request(&torrent, 0, outside)),
        ],
    );
    sim.run_for(Duration::from_secs(1)).unwrap();
    let answers: Vec<&Message> = sim
        .fake(fake)
        .messages()
        .filter(|m| matches!(m, Message::Hashes { .. } | Message::HashReject(_)))
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    let Message::Hashes { request, hashes } = answers[0] else {
        panic!("the valid request is answered: {:?}", answers[0]);
    };
    assert_eq!(*request, hash_request(&torrent, 0, good));
    let nodes: Vec<[u8; 32]> = hashes
        .chunks_exact(32)
        .map(|h| h.try_into().unwrap())
        .collect();
    let base = merkle::verify_hashes(&root, 7, &good, &nodes).expect("a valid proof");
    let content_leaves = merkle::leaves_of(&torrent.content[..]);
    assert_eq!(base, &content_leaves[64..96]);
    assert!(
        matches!(answers[1], Message::HashReject(_)),
        "over 512 hashes"
    );
    assert!(
        matches!(answers[2], Message::HashReject(_)),
        "outside the tree"
    );
    assert!(sim.fake(fake).closed_at().is_none());
    // A flood: far more requests at once than any download needs.
    let flood: Vec<Message> = (0..2000)
        .map(|_| Message::HashRequest(hash_request(&torrent, 0, good)))
        .collect();
    sim.fake_send(fake, &flood);
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert!(
        sim.fake(fake).closed_at().is_some(),
        "the flooder is disconnected"
    );
    assert!(sim
        .node(seed_node)
        .disconnects()
        .iter()
        .any(|(_, r)| *r == DisconnectReason::Violation(Violation::HashRequestFlood)));
}

/// BEP 52 upgrade path: a peer naming a hybrid's v1 hash with the v2 bit gets the v2 hash back;
/// a v1-only peer (no bit) gets the v1 hash; our own handshake sets the bit.
#[test]
fn the_upgrade_bit_is_set_and_honoured() {
    let mut sim = Sim::new(40);
    let torrent = TestTorrent::build_v2(sim.rng(), &mixed_files(), Version::Hybrid);
    let node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(node, &torrent);
    let addr = sim.node(node).addr();
    let hashes = torrent.info.hashes();
    for (id, bit, expected) in [(1u8, true, HashVersion::V2), (2, false, HashVersion::V1)] {
        let fake = sim.add_fake(FakeConfig::new(PeerId([id; 20])));
        sim.fake_connect(fake, addr);
        let reserved = if bit {
            Reserved::FAST.union(Reserved::V2)
        } else {
            Reserved::FAST
        };
        let handshake = sim.fake(fake).handshake_for(&hashes, reserved);
        assert_eq!(handshake.names(&hashes), Some(HashVersion::V1));
        sim.fake_send_handshake(fake, &handshake);
        sim.run_for(Duration::from_secs(1)).unwrap();
        let theirs = sim.fake(fake).handshake().expect("the node answered");
        assert_eq!(theirs.names(&hashes), Some(expected), "bit {bit}");
        assert!(theirs.reserved.contains(Reserved::V2));
    }
}

/// A hybrid torrent swarm with a v1-only peer (a fake seed that knows nothing of v2) and
/// v2-capable nodes: the leecher downloads from both and finishes.
#[test]
fn a_hybrid_torrent_talks_to_v1_only_and_v2_peers_at_once() {
    let mut sim = Sim::new(50);
    let spec = TorrentSpec {
        files: vec![300_000, 500_000, 40_000],
        piece_length: 32 * 1024,
        pad_files: false,
    };
    let torrent = TestTorrent::build_v2(sim.rng(), &spec, Version::Hybrid);
    let v2_seed = sim.add_node(NodeConfig {
        link: LinkProfile::symmetric(200_000, Duration::from_millis(20)),
        ..NodeConfig::default()
    });
    sim.seed_torrent(v2_seed, &torrent);
    let v1_seed = sim.add_fake(FakeConfig {
        link: LinkProfile::symmetric(200_000, Duration::from_millis(20)),
        ..FakeConfig::new(PeerId([0x11; 20])).listening()
    });
    // It knows only the v1 hash and never sets the v2 bit.
    let f = sim.fake_mut(v1_seed);
    f.greet_as_seed(&torrent.info.hashes());
    f.serve(torrent.content.clone(), torrent.info.piece_length());
    let leech = sim.add_node(NodeConfig::default());
    let t = sim.add_torrent(leech, &torrent);
    let (a, b) = (sim.node(v2_seed).addr(), sim.fake(v1_seed).addr());
    sim.connect(leech, t, a).unwrap();
    sim.connect(leech, t, b).unwrap();
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    assert!(
        sim.fake(v1_seed).blocks_sent() > 0,
        "the v1-only peer served blocks"
    );
    let connected: Vec<_> = events(&sim, leech)
        .filter_map(|e| match e {
            Event::PeerConnected { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect();
    assert!(
        connected.contains(&a) && connected.contains(&b),
        "{connected:?}"
    );
}

/// A full recheck of v2 and hybrid data on disk: good pieces are had, a corrupted byte loses its
/// piece only.
#[test]
fn a_full_recheck_verifies_v2_trees() {
    for (version, seed) in [(Version::V2, 60), (Version::Hybrid, 61)] {
        let mut sim = Sim::new(seed);
        let torrent = TestTorrent::build_v2(sim.rng(), &mixed_files(), version);
        let node = sim.add_node(NodeConfig::default());
        let mut content = torrent.content.to_vec();
        // Corrupt one byte of the second piece (file data, not padding).
        let layout = torrent.info.layout();
        let p1 = layout.piece(1).unwrap();
        content[layout.piece_offset(p1) as usize + 5] ^= 1;
        sim.disk_mut(node).stage(&torrent.info, &content);
        let t = sim
            .try_add_torrent(node, torrent.add().with_check(CheckMode::Full))
            .unwrap();
        sim.run_until(
            |s| {
                !matches!(
                    s.node(node).session().torrent_state(t),
                    Some(TorrentState::Checking { .. })
                )
            },
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let have = sim.node(node).session().have(t).unwrap();
        assert_eq!(have.count(), torrent.piece_count() - 1, "{version:?}");
        assert!(!have.get(1));
    }
}

/// An inconsistent hybrid (a piece whose v1 hash is of other data than its v2 tree) stops with
/// an error naming the piece, instead of serving data that one swarm would reject.
#[test]
fn a_hybrid_whose_hashes_disagree_stops_with_an_error() {
    let mut sim = Sim::new(70);
    let spec = TorrentSpec::single(256 * 1024, 64 * 1024);
    let torrent = TestTorrent::build_inconsistent_hybrid(sim.rng(), &spec, 2);
    let seed_node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed_node, &torrent);
    let leech = sim.add_node(NodeConfig::default());
    let t = sim.add_torrent(leech, &torrent);
    let addr = sim.node(seed_node).addr();
    sim.connect(leech, t, addr).unwrap();
    sim.run_until(
        |s| {
            matches!(
                s.node(leech).session().torrent_state(t),
                Some(TorrentState::Error(_))
            )
        },
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let conflict: Vec<&Event> = events(&sim, leech)
        .filter(|e| matches!(e, Event::HybridConflict { .. }))
        .collect();
    assert_eq!(
        conflict,
        vec![&Event::HybridConflict {
            torrent: t,
            piece: 2,
            v1_ok: false
        }]
    );
    assert!(banned(&sim, leech).is_empty(), "the seed is not to blame");
    let state = sim.node(leech).session().torrent_state(t);
    assert_eq!(
        state,
        Some(TorrentState::Error(TorrentError::HybridConflict {
            piece: 2,
            file: Some(0),
            v1_ok: false
        }))
    );
    assert!(state.unwrap().to_string().contains("piece 2"));
    assert!(!sim.node(leech).session().have(t).unwrap().get(2));
}

/// Piece layers fetched from peers go into the resume data; a restart from it has them at once
/// (no fetch) and can serve them to a peer that lacks them.
#[test]
fn fetched_piece_layers_survive_a_restart_through_resume_data() {
    let mut sim = Sim::new(80);
    let spec = TorrentSpec {
        files: vec![200_000, 100_000],
        piece_length: 16 * 1024,
        pad_files: false,
    };
    let torrent = TestTorrent::build_v2(sim.rng(), &spec, Version::V2);
    let seed_node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed_node, &torrent);
    let first = sim.add_node(NodeConfig::default());
    let t1 = sim
        .try_add_torrent(first, AddTorrent::new(torrent.info.clone()))
        .unwrap();
    let addr = sim.node(seed_node).addr();
    sim.connect(first, t1, addr).unwrap();
    sim.run_until(|s| s.node(first).is_finished(t1), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    // The files as a runtime would read them (the simulator's disk has no times).
    let files: Vec<_> = torrent
        .info
        .files()
        .iter()
        .map(|f| {
            Some(bitshoal_core::resume::FileStat {
                size: f.length(),
                mtime: 0,
            })
        })
        .collect();
    let data = sim
        .node(first)
        .session()
        .resume_data(t1, files.clone(), 1)
        .unwrap();
    assert_eq!(
        data.piece_layers.len(),
        2,
        "both files' layers were fetched"
    );
    let data = bitshoal_core::resume::ResumeData::decode(&data.encode()).unwrap();
    // The restart: a new node with the same files and the resume data, and no seed around.
    let second = sim.add_node(NodeConfig::default());
    let t2 = sim
        .try_add_torrent(
            second,
            AddTorrent::new(torrent.info.clone()).with_check(CheckMode::Resume {
                data,
                current_files: files,
            }),
        )
        .unwrap();
    sim.disk_mut(second).fill(t2, &torrent.content);
    assert!(sim.node(second).is_finished(t2));
    // A third peer without the layers gets them from the restarted one.
    let third = sim.add_node(NodeConfig::default());
    let t3 = sim
        .try_add_torrent(third, AddTorrent::new(torrent.info.clone()))
        .unwrap();
    let addr = sim.node(second).addr();
    sim.connect(third, t3, addr).unwrap();
    sim.run_until(|s| s.node(third).is_finished(t3), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(third).disk().content(t3).unwrap(),
        &torrent.content[..]
    );
    assert!(!events(&sim, second).any(|e| matches!(e, Event::PieceLayersComplete { .. })));
}
