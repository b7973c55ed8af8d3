//! BEP 52 hash requests below the piece layer (leaf hashes) in the simulator: a seed that never
//! downloaded reads the pieces and answers with proofs, a leecher answers from the leaves of
//! pieces it just verified, pieces it lacks are rejected, and a peer's waiting requests are
//! bounded. Smart ban with leaf hashes: a failed v2 piece's leaves are asked of a peer and the
//! sender of the bad block is banned at once. And the hybrid re-check: pieces a hybrid torrent
//! got by their SHA-1 before its piece layers arrived are checked against the layers when they
//! do.

use bitshoal_conformance::sim::{
    FakeConfig, LinkProfile, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec,
};
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::id::PeerId;
use bitshoal_core::merkle::{self, Hash256, HashRange};
use bitshoal_core::session::{AddTorrent, Event, TorrentError, TorrentState, MAX_PENDING_PER_PEER};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{HashRequest, Message, Reserved};

/// 64 KiB pieces (4 leaves each): a file of 19 leaves (5 pieces, the last short) and a file of
/// 3 leaves (smaller than a piece: no layer).
fn spec() -> TorrentSpec {
    TorrentSpec {
        files: vec![300_000, 40_000],
        piece_length: 64 * 1024,
        pad_files: false,
    }
}

/// The index of the file of `length` bytes.
fn file_of(torrent: &TestTorrent, length: u64) -> usize {
    torrent
        .info
        .files()
        .iter()
        .position(|f| !f.is_pad() && f.length() == length)
        .unwrap()
}

fn request(torrent: &TestTorrent, file: usize, range: HashRange) -> HashRequest {
    HashRequest {
        pieces_root: *torrent.info.files()[file].pieces_root().unwrap(),
        base_layer: range.base_layer,
        index: range.index,
        length: range.length,
        proof_layers: range.proof_layers,
    }
}

/// The true nodes of layer `layer` of a file's tree, from its bytes.
fn true_layer(torrent: &TestTorrent, file: usize, layer: u32) -> Vec<Hash256> {
    let entry = &torrent.info.files()[file];
    let start = entry.offset() as usize;
    let bytes = &torrent.content[start..start + entry.length() as usize];
    merkle::layer_from_leaves(&merkle::leaves_of(bytes), layer)
}

/// A fake peer connects to `node` for `torrent`, sends `requests`, and gets the answers.
fn ask(
    sim: &mut Sim,
    node: NodeId,
    torrent: &TestTorrent,
    id: u8,
    requests: &[HashRequest],
) -> Vec<Message> {
    let fake = sim.add_fake(FakeConfig::new(PeerId([id; 20])));
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let handshake = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), Reserved::FAST.union(Reserved::V2));
    sim.fake_send_handshake(fake, &handshake);
    sim.run_for(Duration::from_millis(500)).unwrap();
    let messages: Vec<Message> = requests.iter().copied().map(Message::HashRequest).collect();
    sim.fake_send(fake, &messages);
    sim.run_for(Duration::from_secs(2)).unwrap();
    assert!(sim.fake(fake).closed_at().is_none());
    sim.fake(fake)
        .messages()
        .filter(|m| matches!(m, Message::Hashes { .. } | Message::HashReject(_)))
        .cloned()
        .collect()
}

/// The answer to `request` among `answers`: `Some(hashes)`, or `None` for a reject.
fn answer_to(answers: &[Message], request: &HashRequest) -> Option<Vec<Hash256>> {
    let found = answers.iter().find(|m| match m {
        Message::Hashes { request: r, .. } | Message::HashReject(r) => r == request,
        _ => false,
    });
    match found.unwrap_or_else(|| panic!("no answer to {request:?}: {answers:?}")) {
        Message::Hashes { hashes, .. } => Some(
            hashes
                .chunks_exact(32)
                .map(|h| h.try_into().unwrap())
                .collect(),
        ),
        _ => None,
    }
}

/// Checks an answer against the whole tree built from the file's bytes, and, when its proof
/// reaches the root, against the file's root as a downloader would.
fn check_answer(torrent: &TestTorrent, file: usize, range: HashRange, hashes: &[Hash256]) {
    let entry = &torrent.info.files()[file];
    let height = merkle::tree_height(entry.length());
    let full = merkle::UpperTree::new(true_layer(torrent, file, 0), 0, height).unwrap();
    assert_eq!(Some(hashes.to_vec()), full.hashes(&range), "{range:?}");
    if range.base_layer + range.length.trailing_zeros() + range.uncle_count() == height {
        let base = merkle::verify_hashes(entry.pieces_root().unwrap(), height, &range, hashes)
            .unwrap_or_else(|e| panic!("{range:?}: {e}"));
        assert_eq!(base.len(), range.length as usize);
    }
}

fn range(base_layer: u32, index: u32, length: u32, proof_layers: u32) -> HashRange {
    HashRange {
        base_layer,
        index,
        length,
        proof_layers,
    }
}

/// A seed that never downloaded anything answers leaf-hash requests (reading the pieces), with
/// proofs up to the root, for pieces it has; a piece it lacks is rejected. The same requests to
/// a leecher that just downloaded the torrent are answered from the leaves it kept.
#[test]
fn leaf_hashes_are_served_with_proofs_for_pieces_we_have() {
    for (version, seed) in [(Version::V2, 1), (Version::Hybrid, 2)] {
        let mut sim = Sim::new(seed);
        let torrent = TestTorrent::build_v2(sim.rng(), &spec(), version);
        let big = file_of(&torrent, 300_000);
        let small = file_of(&torrent, 40_000);
        let first_piece = torrent.info.layout().file_pieces(big).unwrap().start;
        // The seed lacks the big file's fourth piece.
        let mut have = Bitfield::full(torrent.piece_count());
        have.set(first_piece + 3, false);
        let seed_node = sim.add_node(NodeConfig::default());
        let st = sim
            .try_add_torrent(seed_node, torrent.add().with_have(have))
            .unwrap();
        sim.disk_mut(seed_node).fill(st, &torrent.content);
        // Height 5 (19 leaves): the full proof of a leaf range has 4 layers.
        let served = [
            (big, range(0, 4, 4, 4)),   // piece 1
            (big, range(0, 0, 8, 4)),   // pieces 0 and 1
            (big, range(0, 16, 4, 4)),  // the short last piece, padded
            (big, range(0, 2, 2, 4)),   // half a piece: an uncle from its other half
            (big, range(1, 2, 2, 3)),   // between the leaves and the piece layer
            (big, range(0, 0, 4, 1)),   // a short proof
            (small, range(0, 0, 4, 1)), // a file without a layer: its whole tree
        ];
        let refused = [
            (big, range(0, 12, 4, 4)), // the piece it lacks
            (big, range(0, 8, 8, 4)),  // ... among others
            (big, range(0, 32, 2, 4)), // outside the tree
        ];
        // Two requests wait at most per peer: ask in batches.
        let all: Vec<(usize, HashRange)> = served.iter().chain(&refused).copied().collect();
        for (batch, chunk) in all.chunks(MAX_PENDING_PER_PEER).enumerate() {
            let requests: Vec<HashRequest> = chunk
                .iter()
                .map(|&(f, r)| request(&torrent, f, r))
                .collect();
            let answers = ask(&mut sim, seed_node, &torrent, 10 + batch as u8, &requests);
            for (&(file, r), req) in chunk.iter().zip(&requests) {
                let got = answer_to(&answers, req);
                if served.contains(&(file, r)) {
                    let hashes = got.unwrap_or_else(|| panic!("{version:?} {r:?} refused"));
                    check_answer(&torrent, file, r, &hashes);
                } else {
                    assert!(got.is_none(), "{version:?} {r:?} answered");
                }
            }
        }
        // A leecher that downloads everything from a full seed answers from its kept leaves.
        let full = sim.add_node(NodeConfig::default());
        sim.seed_torrent(full, &torrent);
        let leech = sim.add_node(NodeConfig::default());
        let lt = sim.add_torrent(leech, &torrent);
        let addr = sim.node(full).addr();
        sim.connect(leech, lt, addr).unwrap();
        sim.run_until(|s| s.node(leech).is_finished(lt), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        for (batch, chunk) in served.chunks(MAX_PENDING_PER_PEER).enumerate() {
            let requests: Vec<HashRequest> = chunk
                .iter()
                .map(|&(f, r)| request(&torrent, f, r))
                .collect();
            let answers = ask(&mut sim, leech, &torrent, 40 + batch as u8, &requests);
            for (&(file, r), req) in chunk.iter().zip(&requests) {
                let hashes = answer_to(&answers, req).expect("answered");
                check_answer(&torrent, file, r, &hashes);
            }
        }
    }
}

/// A peer may have only a few leaf-hash requests waiting for disk reads; more at once are
/// rejected (and it stays connected).
#[test]
fn waiting_leaf_requests_per_peer_are_bounded() {
    let mut sim = Sim::new(3);
    let torrent = TestTorrent::build_v2(sim.rng(), &spec(), Version::V2);
    let big = file_of(&torrent, 300_000);
    let seed_node = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed_node, &torrent);
    let requests: Vec<HashRequest> = (0..5)
        .map(|piece| request(&torrent, big, range(0, piece * 4, 4, 4)))
        .collect();
    let answers = ask(&mut sim, seed_node, &torrent, 9, &requests);
    let served = requests
        .iter()
        .filter(|r| answer_to(&answers, r).is_some())
        .count();
    assert_eq!(served, MAX_PENDING_PER_PEER);
}

/// A hybrid torrent added without its piece layers gets pieces by their SHA-1 from a peer
/// without layers; when the layers arrive from another peer, those pieces are checked against
/// them: a consistent torrent goes on and finishes, one whose v2 tree disagrees with the data
/// (that passed SHA-1) stops with [`TorrentError::HybridConflict`].
#[test]
fn pieces_got_by_sha1_are_rechecked_when_the_layers_arrive() {
    for (bad, seed) in [(false, 4), (true, 5)] {
        let mut sim = Sim::new(seed);
        let spec = TorrentSpec {
            files: vec![600_000],
            piece_length: 64 * 1024,
            pad_files: false,
        };
        let bad_piece = 2;
        let torrent = if bad {
            TestTorrent::build_hybrid_with_bad_v2(sim.rng(), &spec, bad_piece)
        } else {
            TestTorrent::build_v2(sim.rng(), &spec, Version::Hybrid)
        };
        // A peer without the layers that has the first half of the pieces.
        let blind = sim.add_node(NodeConfig::default());
        let mut half = Bitfield::new(torrent.piece_count());
        for p in 0..torrent.piece_count() / 2 {
            half.set(p, true);
        }
        let bt = sim
            .try_add_torrent(blind, AddTorrent::new(torrent.info.clone()).with_have(half))
            .unwrap();
        sim.disk_mut(blind).fill(bt, &torrent.content);
        let leech = sim.add_node(NodeConfig::default());
        let t = sim
            .try_add_torrent(leech, AddTorrent::new(torrent.info.clone()))
            .unwrap();
        let addr = sim.node(blind).addr();
        sim.connect(leech, t, addr).unwrap();
        let half_count = torrent.piece_count() / 2;
        sim.run_until(
            |s| s.node(leech).session().have(t).unwrap().count() == half_count,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(sim.node(leech).session().have(t).unwrap().get(bad_piece));
        // Now a seed with the layers.
        let seed_node = sim.add_node(NodeConfig::default());
        sim.seed_torrent(seed_node, &torrent);
        let addr = sim.node(seed_node).addr();
        sim.connect(leech, t, addr).unwrap();
        if bad {
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
            assert_eq!(
                sim.node(leech).session().torrent_state(t),
                Some(TorrentState::Error(TorrentError::HybridConflict {
                    piece: bad_piece,
                    file: Some(0),
                    v1_ok: true
                }))
            );
            let conflicts: Vec<&Event> = sim
                .node(leech)
                .events()
                .iter()
                .map(|(_, e)| e)
                .filter(|e| matches!(e, Event::HybridConflict { .. }))
                .collect();
            assert_eq!(
                conflicts,
                vec![&Event::HybridConflict {
                    torrent: t,
                    piece: bad_piece,
                    v1_ok: true
                }]
            );
        } else {
            sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                sim.node(leech).disk().content(t).unwrap(),
                &torrent.content[..]
            );
        }
        let layers_in = sim
            .node(leech)
            .events()
            .iter()
            .any(|(_, e)| matches!(e, Event::PieceLayersComplete { torrent } if *torrent == t));
        assert!(layers_in, "bad {bad}");
    }
}

/// A liar's corrupt block in a v2 piece whose other blocks came from an honest peer: the failed
/// piece's leaf hashes are asked of a peer (and checked against the piece layer), the block
/// whose leaf differs names the liar, and it is banned after that one failure, before the
/// piece is downloaded again (the comparison of the v1 route needs a second attempt).
#[test]
fn a_failed_v2_piece_names_its_bad_block_by_leaf_hashes() {
    for (version, seed) in [(Version::V2, 6), (Version::Hybrid, 7)] {
        let mut sim = Sim::new(seed);
        let spec = TorrentSpec::single(1 << 20, 64 * 1024);
        let torrent = TestTorrent::build_v2(sim.rng(), &spec, version);
        let good = sim.add_node(NodeConfig {
            link: LinkProfile::symmetric(500_000, Duration::from_millis(20)),
            ..NodeConfig::default()
        });
        sim.seed_torrent(good, &torrent);
        let leech = sim.add_node(NodeConfig::default());
        let t = sim.add_torrent(leech, &torrent);
        let fake = sim.add_fake(FakeConfig::new(PeerId([0xbb; 20])).listening());
        let f = sim.fake_mut(fake);
        f.greet_as_seed(&torrent.info.hashes());
        // The liar sends the second block of a piece, corrupt, and refuses the rest.
        f.serve_one_corrupt_block_per_piece(
            torrent.content.clone(),
            torrent.info.piece_length(),
            16 * 1024,
        );
        let liar = sim.fake(fake).addr();
        let good_addr = sim.node(good).addr();
        sim.connect(leech, t, good_addr).unwrap();
        sim.connect(leech, t, liar).unwrap();
        sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        assert_eq!(
            sim.node(leech).disk().content(t).unwrap(),
            &torrent.content[..]
        );
        let events: Vec<&Event> = sim.node(leech).events().iter().map(|(_, e)| e).collect();
        let banned_at = events
            .iter()
            .position(|e| matches!(e, Event::PeerBanned { ip, .. } if *ip == liar.ip()))
            .unwrap_or_else(|| panic!("{version:?}: the liar is banned"));
        let failed: Vec<u32> = events[..banned_at]
            .iter()
            .filter_map(|e| match e {
                Event::HashFailed { piece, .. } => Some(*piece),
                _ => None,
            })
            .collect();
        // Pieces in flight together may fail before the first answer; none came twice.
        assert!(!failed.is_empty(), "{version:?}");
        let mut once = failed.clone();
        once.sort_unstable();
        once.dedup();
        assert_eq!(
            once.len(),
            failed.len(),
            "{version:?}: a piece failed twice: {failed:?}"
        );
        let retried = events[..banned_at]
            .iter()
            .any(|e| matches!(e, Event::PieceVerified { piece, .. } if failed.contains(piece)));
        assert!(
            !retried,
            "{version:?}: banned before a failed piece came again"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::PeerBanned { ip, .. } if *ip == good_addr.ip())),
            "{version:?}: the honest peer is not banned"
        );
    }
}
