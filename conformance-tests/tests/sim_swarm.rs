//! Swarm scenarios in the simulator: verification and smart ban, storage faults, checking,
//! churn, rate limits and streaming. Every scenario is deterministic by its seed: a failure
//! prints the seed (`SimError` names it; the tests' own assertions say it too), and running the
//! same scenario with that seed replays it exactly.
//!
//! The simulated pipes are reliable ordered streams (TCP), so packet loss is not modelled as
//! lost bytes: a lossy path is a path with less bandwidth and more latency (a
//! [`LinkProfile`]), which is how loss shows to a TCP application.

use std::net::IpAddr;

use bitshoal_conformance::sim::{
    FakeConfig, FakeId, LinkProfile, NodeConfig, NodeId, Sim, SwarmBuilder, TestTorrent,
    TorrentSpec,
};
use bitshoal_core::id::{PeerId, TorrentId};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::{AddTorrent, CheckMode, Config, Event, TorrentError, TorrentState};
use bitshoal_core::time::{Duration, Instant};
use bitshoal_core::wire::Message;
use sha1::{Digest as _, Sha1};

/// A fake peer (listening) that greets a connecting node as a seed and answers requests with
/// corrupt blocks (`corrupt`), good blocks, or not at all (`serve: false`).
fn fake_seed(sim: &mut Sim, torrent: &TestTorrent, id: u8, serve: bool, corrupt: bool) -> FakeId {
    let fake = sim.add_fake(FakeConfig::new(PeerId([id; 20])).listening());
    let f = sim.fake_mut(fake);
    f.greet_as_seed(&torrent.info.hashes());
    let (content, len) = (torrent.content.clone(), torrent.info.piece_length());
    match (serve, corrupt) {
        (true, true) => f.serve_corrupt(content, len),
        (true, false) => f.serve(content, len),
        (false, _) => {}
    }
    fake
}

fn events(sim: &Sim, node: NodeId) -> impl Iterator<Item = &Event> + '_ {
    sim.node(node).events().iter().map(|(_, e)| e)
}

fn hash_failures(sim: &Sim, node: NodeId) -> usize {
    events(sim, node)
        .filter(|e| matches!(e, Event::HashFailed { .. }))
        .count()
}

fn banned(sim: &Sim, node: NodeId) -> Vec<IpAddr> {
    events(sim, node)
        .filter_map(|e| match e {
            Event::PeerBanned { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect()
}

/// Every piece the node has is on its disk with the right hash (nothing unverified is had).
fn assert_had_pieces_are_good(sim: &Sim, node: NodeId, t: TorrentId, torrent: &TestTorrent) {
    let content = sim.node(node).disk().content(t).unwrap();
    let layout = torrent.info.layout();
    let have = sim.node(node).session().have(t).unwrap();
    for piece in have.iter_set() {
        let p = layout.piece(piece).unwrap();
        let at = layout.piece_offset(p) as usize;
        let bytes = &content[at..at + layout.piece_size(p) as usize];
        let digest: [u8; 20] = Sha1::digest(bytes).into();
        assert_eq!(
            Some(digest),
            torrent.info.piece_hash_v1(p),
            "seed {}: piece {piece} is had but its bytes on disk are wrong",
            sim.seed()
        );
    }
}

/// The known bug: a fast fake peer serving corrupt data was asked for the same piece again and
/// again (13,201 hash failures in 8 virtual seconds), and the download never finished although
/// a good seed was connected. Now the fake is banned after its first bad piece.
#[test]
fn a_fast_corrupt_peer_is_banned_and_the_download_finishes_from_the_good_seed() {
    for seed in [1, 2, 3] {
        let mut sim = Sim::new(seed);
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(1 << 20, 32 * 1024));
        let good = sim.add_node(NodeConfig {
            link: LinkProfile::symmetric(500_000, Duration::from_millis(20)),
            ..NodeConfig::default()
        });
        sim.seed_torrent(good, &torrent);
        let leech = sim.add_node(NodeConfig::default());
        let t = sim.add_torrent(leech, &torrent);
        let liar = fake_seed(&mut sim, &torrent, 0xbb, true, true);
        let liar_addr = sim.fake(liar).addr();
        sim.connect(leech, t, liar_addr).unwrap();
        let good_addr = sim.node(good).addr();
        sim.connect(leech, t, good_addr).unwrap();
        sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sim.node(leech).disk().content(t).unwrap(),
            &torrent.content[..],
            "seed {seed}"
        );
        assert_eq!(banned(&sim, leech), vec![liar_addr.ip()], "seed {seed}");
        assert!(
            hash_failures(&sim, leech) <= 2,
            "seed {seed}: {} hash failures",
            hash_failures(&sim, leech)
        );
        assert!(sim
            .node(leech)
            .disconnects()
            .iter()
            .any(|(_, r)| *r == DisconnectReason::Banned));
        // The banned address is refused from now on.
        let again = sim.connect(leech, t, liar_addr);
        assert!(again.is_err(), "seed {seed}: {again:?}");
        let status = sim.node(leech).session().torrent_status(t).unwrap();
        assert_eq!(status.pieces_failed as usize, hash_failures(&sim, leech));
        assert_eq!(status.pieces_verified, torrent.piece_count());
    }
}

/// A node configured by `leech` downloads a torrent of `spec` from an honest fake seed and a
/// liar (corrupt blocks) until it finishes; checks its bytes and that the liar, and only the
/// liar, was banned. Returns the simulation, the node and its torrent, and the torrent.
fn honest_and_liar(
    seed: u64,
    spec: &TorrentSpec,
    leech: NodeConfig,
) -> (Sim, (NodeId, TorrentId), TestTorrent) {
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), spec);
    let node = sim.add_node(leech);
    let t = sim.add_torrent(node, &torrent);
    let honest = fake_seed(&mut sim, &torrent, 0xaa, true, false);
    let liar = fake_seed(&mut sim, &torrent, 0xbb, true, true);
    for f in [honest, liar] {
        let addr = sim.fake(f).addr();
        sim.connect(node, t, addr).unwrap();
    }
    sim.run_until(|s| s.node(node).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(
        sim.node(node).disk().content(t).unwrap(),
        &torrent.content[..],
        "seed {seed}"
    );
    assert_eq!(
        banned(&sim, node),
        vec![sim.fake(liar).addr().ip()],
        "seed {seed}: only the liar is banned"
    );
    (sim, (node, t), torrent)
}

/// A liar and an honest seed serve blocks of the same pieces (large pieces, so both get
/// requests for one piece): the failed piece is downloaded again from one peer, and the liar is
/// convicted either way (alone on the retry, or by comparing its blocks with the good piece).
/// The honest seed is never banned.
#[test]
fn a_corrupt_peer_sharing_pieces_with_an_honest_one_is_found_by_smart_ban() {
    for seed in 4..10 {
        let spec = TorrentSpec::single(1 << 20, 256 * 1024);
        let (sim, (leech, _), torrent) = honest_and_liar(seed, &spec, NodeConfig::default());
        // Each piece fails at most once with mixed senders before its single-peer retry, and
        // the liar's first single-peer failure bans it.
        assert!(
            hash_failures(&sim, leech) <= torrent.piece_count() as usize + 1,
            "seed {seed}: {} hash failures",
            hash_failures(&sim, leech)
        );
    }
}

/// Writes land out of order (a disk pool of several threads): the blocks a banned liar sent of
/// pieces still in progress are thrown away while their writes are in flight, and downloaded
/// again from the honest peer. The liar's late writes must not land over the honest data of a
/// piece that passed its hash: every piece the node has is good on its disk.
#[test]
fn late_writes_of_thrown_away_blocks_never_overwrite_a_verified_piece() {
    for seed in 42..48 {
        let leech_config = NodeConfig {
            disk_latency: Duration::from_millis(1),
            disk_jitter: Duration::from_millis(40),
            ..NodeConfig::default()
        };
        let spec = TorrentSpec::single(4 << 20, 64 * 1024);
        let (mut sim, (leech, t), torrent) = honest_and_liar(seed, &spec, leech_config);
        // Writes still in flight when the last piece passed land too.
        sim.run_for(Duration::from_secs(1)).unwrap();
        assert_had_pieces_are_good(&sim, leech, t, &torrent);
        assert_eq!(
            sim.node(leech).disk().content(t).unwrap(),
            &torrent.content[..],
            "seed {seed}"
        );
    }
}

/// A piece that fails its hash with blocks from one peer convicts that peer, and is then
/// downloaded again from the other peers only: every block of every failed piece is requested
/// from them after the failure, none from the banned peer. Blocks the banned peer sent of
/// pieces still in progress are thrown away with it, so no later attempt mixes its data with
/// an honest peer's (which would cost another failed piece).
#[test]
fn a_failed_piece_is_downloaded_again_only_from_the_peers_not_blamed() {
    for seed in [13, 14, 15, 16] {
        let mut sim = Sim::new(seed);
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(1 << 20, 64 * 1024));
        // Hashing takes a while: blocks of the next pieces keep arriving meanwhile.
        let leech = sim.add_node(NodeConfig {
            hash_latency: Duration::from_millis(20),
            ..NodeConfig::default()
        });
        let t = sim.add_torrent(leech, &torrent);
        let liar = fake_seed(&mut sim, &torrent, 0xbb, true, true);
        let liar_addr = sim.fake(liar).addr();
        sim.connect(leech, t, liar_addr).unwrap();
        // The liar alone first: it sends whole pieces, and the first to fail convicts it.
        sim.run_until(|s| !banned(s, leech).is_empty(), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let honest: Vec<FakeId> = [0xa1, 0xa2]
            .into_iter()
            .map(|id| fake_seed(&mut sim, &torrent, id, true, false))
            .collect();
        for &h in &honest {
            let addr = sim.fake(h).addr();
            sim.connect(leech, t, addr).unwrap();
        }
        sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sim.node(leech).disk().content(t).unwrap(),
            &torrent.content[..],
            "seed {seed}"
        );
        assert_eq!(banned(&sim, leech), vec![liar_addr.ip()], "seed {seed}");
        let failures: Vec<(Instant, u32)> = sim
            .node(leech)
            .events()
            .iter()
            .filter_map(|(at, e)| match e {
                Event::HashFailed { piece, .. } => Some((*at, *piece)),
                _ => None,
            })
            .collect();
        assert!(!failures.is_empty(), "seed {seed}");
        let requests_for = |fake: FakeId, piece: u32| -> Vec<(Instant, u32)> {
            sim.fake(fake)
                .received()
                .iter()
                .filter_map(|(at, m)| match m {
                    Message::Request(r) if r.index == piece => Some((*at, r.begin)),
                    _ => None,
                })
                .collect()
        };
        let blocks_per_piece = torrent.info.piece_length() / (16 * 1024);
        for &(failed_at, piece) in &failures {
            // The failed attempt was the liar's alone: no honest peer had sent a block of it.
            for &h in &honest {
                let before: Vec<_> = requests_for(h, piece)
                    .into_iter()
                    .filter(|(at, _)| *at <= failed_at)
                    .collect();
                assert!(
                    before.is_empty(),
                    "seed {seed}: piece {piece} failed at {failed_at:?} with honest blocks \
                     requested at {before:?}"
                );
            }
            // Downloaded again: every block from the honest peers, none from the liar.
            let liar_after = requests_for(liar, piece)
                .into_iter()
                .filter(|(at, _)| *at > failed_at)
                .count();
            assert_eq!(liar_after, 0, "seed {seed}: piece {piece}");
            let mut again: Vec<u32> = honest
                .iter()
                .flat_map(|&h| requests_for(h, piece))
                .filter(|(at, _)| *at > failed_at)
                .map(|(_, begin)| begin)
                .collect();
            again.sort_unstable();
            again.dedup();
            assert_eq!(
                again.len() as u32,
                blocks_per_piece,
                "seed {seed}: piece {piece} again from the honest peers"
            );
        }
        let mut pieces: Vec<u32> = failures.iter().map(|f| f.1).collect();
        pieces.sort_unstable();
        pieces.dedup();
        assert_eq!(
            pieces.len(),
            failures.len(),
            "seed {seed}: no piece failed twice"
        );
    }
}

/// A peer that says it has everything and never answers: its requests time out and go to the
/// good seed, and every block is downloaded once.
#[test]
fn a_stalling_peers_requests_are_reissued() {
    let seed = 11;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(512 * 1024, 32 * 1024));
    let config = NodeConfig {
        session: Config {
            peer: bitshoal_core::peer::PeerConfig {
                request_timeout: Duration::from_secs(5),
                ..bitshoal_core::peer::PeerConfig::DEFAULT
            },
            ..Config::default()
        },
        ..NodeConfig::default()
    };
    let good = sim.add_node(NodeConfig {
        link: LinkProfile::symmetric(300_000, Duration::from_millis(20)),
        ..NodeConfig::default()
    });
    sim.seed_torrent(good, &torrent);
    let leech = sim.add_node(config);
    let t = sim.add_torrent(leech, &torrent);
    let staller = fake_seed(&mut sim, &torrent, 0xcc, false, false);
    let addr = sim.fake(staller).addr();
    sim.connect(leech, t, addr).unwrap();
    // Let the staller take requests first.
    sim.run_for(Duration::from_millis(200)).unwrap();
    assert!(!sim.fake(staller).requests().is_empty(), "seed {seed}");
    let good_addr = sim.node(good).addr();
    sim.connect(leech, t, good_addr).unwrap();
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    let status = sim.node(leech).session().torrent_status(t).unwrap();
    assert_eq!(
        status.downloaded,
        torrent.content.len() as u64,
        "seed {seed}: every block once"
    );
    assert_eq!(sim.fake(staller).blocks_sent(), 0);
}

/// `have` goes to every peer once per piece, when it is verified, and never for a piece
/// whose hash failed.
#[test]
fn have_goes_to_every_peer_exactly_once() {
    let seed = 12;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(400_000, 32 * 1024));
    let good = sim.add_node(NodeConfig::default());
    sim.seed_torrent(good, &torrent);
    let leech = sim.add_node(NodeConfig::default());
    let t = sim.add_torrent(leech, &torrent);
    let mut watchers = Vec::new();
    for id in [1u8, 2] {
        let w = sim.add_fake(FakeConfig::new(PeerId([id; 20])).listening());
        sim.fake_mut(w).greet_as_leecher(&torrent.info.hashes());
        let addr = sim.fake(w).addr();
        sim.connect(leech, t, addr).unwrap();
        watchers.push(w);
    }
    sim.run_for(Duration::from_millis(100)).unwrap();
    let good_addr = sim.node(good).addr();
    sim.connect(leech, t, good_addr).unwrap();
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_millis(100)).unwrap();
    for w in watchers {
        let mut haves: Vec<u32> = sim
            .fake(w)
            .messages()
            .filter_map(|m| match m {
                Message::Have(i) => Some(*i),
                _ => None,
            })
            .collect();
        haves.sort_unstable();
        let all: Vec<u32> = (0..torrent.piece_count()).collect();
        assert_eq!(haves, all, "seed {seed}: each piece announced once");
    }
}

/// One leecher's disk fills up: its torrent stops in Error with the reason, nothing it failed
/// to write is had, and the other leechers finish.
#[test]
fn a_full_disk_stops_that_torrent_and_the_others_finish() {
    let seed = 21;
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(1 << 20, 32 * 1024))
        .seeds(1)
        .leechers(3)
        .seed_link(LinkProfile::symmetric(2_000_000, Duration::from_millis(5)))
        .leecher_link(LinkProfile::symmetric(1_000_000, Duration::from_millis(5)))
        .build(seed);
    let victim = swarm.leechers().next().unwrap();
    swarm
        .sim
        .disk_mut(victim.node)
        .set_write_budget(Some(300 * 1024));
    let others: Vec<_> = swarm
        .nodes
        .iter()
        .copied()
        .filter(|n| *n != victim)
        .collect();
    swarm
        .sim
        .run_until(
            |s| {
                others.iter().all(|n| s.node(n.node).is_finished(n.torrent))
                    && matches!(
                        s.node(victim.node).session().torrent_state(victim.torrent),
                        Some(TorrentState::Error(_))
                    )
            },
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let state = swarm
        .sim
        .node(victim.node)
        .session()
        .torrent_state(victim.torrent)
        .unwrap();
    let TorrentState::Error(TorrentError::Storage(error)) = state else {
        panic!("a storage error: {state:?}")
    };
    assert!(error.message.contains("No space"), "{error}");
    let failures: Vec<_> = events(&swarm.sim, victim.node)
        .filter(|e| matches!(e, Event::StorageFailed { .. }))
        .collect();
    assert_eq!(failures.len(), 1, "seed {seed}: reported once");
    let status = swarm
        .sim
        .node(victim.node)
        .session()
        .torrent_status(victim.torrent)
        .unwrap();
    assert_eq!(
        status.peers, 0,
        "seed {seed}: a stopped torrent has no peers"
    );
    assert!(status.pieces_have < swarm.torrent.piece_count());
    assert_had_pieces_are_good(&swarm.sim, victim.node, victim.torrent, &swarm.torrent);
    for n in others.iter().filter(|n| !n.seed) {
        assert!(
            swarm.content(*n) == swarm.torrent.content[..],
            "seed {seed}"
        );
    }
    // Freeing space and resuming finishes it.
    swarm.sim.disk_mut(victim.node).set_write_budget(None);
    swarm
        .sim
        .with_session(victim.node, |s, now| s.resume(now, victim.torrent))
        .unwrap();
    let seed_addr = swarm.sim.node(swarm.nodes[0].node).addr();
    swarm
        .sim
        .connect(victim.node, victim.torrent, seed_addr)
        .unwrap();
    swarm
        .sim
        .run_until(
            |s| s.node(victim.node).is_finished(victim.torrent),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(swarm.content(victim) == swarm.torrent.content[..]);
}

/// A seed whose reads fail stops with the error; its leecher finishes from another seed.
#[test]
fn failing_reads_stop_a_seed() {
    let seed = 22;
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(512 * 1024, 32 * 1024))
        .seeds(2)
        .leechers(1)
        .build(seed);
    let bad = swarm.seeds().next().unwrap();
    swarm.sim.disk_mut(bad.node).set_fail_reads(true);
    swarm
        .run_until_finished(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        swarm
            .sim
            .node(bad.node)
            .session()
            .torrent_state(bad.torrent),
        Some(TorrentState::Error(_))
    ));
    let l = swarm.leechers().next().unwrap();
    assert!(swarm.content(l) == swarm.torrent.content[..]);
}

/// Data already on disk is found by a full check at add time, and the node then seeds it.
#[test]
fn a_node_checks_its_files_then_seeds_them() {
    let seed = 31;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(
        sim.rng(),
        &TorrentSpec {
            files: vec![100_000, 60_000, 200_000],
            piece_length: 32 * 1024,
            pad_files: false,
        },
    );
    let checker = sim.add_node(NodeConfig::default());
    // Half of the content is there; one byte in piece 1 is damaged.
    let mut content = torrent.content.to_vec();
    let half = content.len() / 2;
    content[half..].fill(0);
    content[40_000] ^= 1;
    sim.disk_mut(checker).stage(&torrent.info, &content);
    let t = sim
        .try_add_torrent(
            checker,
            AddTorrent::new(torrent.info.clone()).with_check(CheckMode::Full),
        )
        .unwrap();
    sim.run_until(
        |s| {
            matches!(
                s.node(checker).session().torrent_state(t),
                Some(TorrentState::Downloading)
            )
        },
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let have = sim.node(checker).session().have(t).unwrap().clone();
    let full_pieces = half as u32 / torrent.info.piece_length();
    for p in 0..torrent.piece_count() {
        assert_eq!(
            have.get(p),
            p < full_pieces && p != 1,
            "seed {seed}: piece {p}"
        );
    }
    assert!(events(&sim, checker).any(|e| matches!(
        e,
        Event::CheckingProgress { checked, total, .. } if checked == total
    )));
    let progress = sim.node(checker).session().file_progress(t).unwrap();
    assert_eq!(progress.len(), 3);
    assert!(progress[0] < 100_000, "piece 1 is in file 0 and missing");
    // It downloads the rest from a seed and ends with the right bytes.
    let src = sim.add_node(NodeConfig::default());
    sim.seed_torrent(src, &torrent);
    let addr = sim.node(src).addr();
    sim.connect(checker, t, addr).unwrap();
    sim.run_until(|s| s.node(checker).is_finished(t), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(checker).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    let status = sim.node(checker).session().torrent_status(t).unwrap();
    assert_eq!(
        status.downloaded,
        u64::from(torrent.piece_count() - have.count()) * 32 * 1024
            - (u64::from(torrent.piece_count()) * 32 * 1024 - torrent.content.len() as u64),
        "seed {seed}: only the missing pieces were downloaded"
    );
    assert_eq!(
        sim.node(checker).session().file_progress(t).unwrap(),
        vec![100_000, 60_000, 200_000]
    );
}

/// 1 seed and 30 leechers all finish with the right bytes, and the seed uploads far fewer than
/// 30 copies: the leechers trade among themselves.
#[test]
fn thirty_leechers_finish_and_trade_among_themselves() {
    let seed = 41;
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(2 << 20, 32 * 1024))
        .seeds(1)
        .leechers(30)
        .seed_link(LinkProfile::symmetric(1_000_000, Duration::from_millis(20)))
        .leecher_link(LinkProfile::symmetric(1_000_000, Duration::from_millis(20)))
        .build(seed);
    swarm
        .run_until_finished(Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    for l in swarm.leechers() {
        assert!(
            swarm.content(l) == swarm.torrent.content[..],
            "seed {seed}: {l:?}"
        );
    }
    let s = swarm.seeds().next().unwrap();
    let uploaded = swarm
        .sim
        .node(s.node)
        .session()
        .torrent_status(s.torrent)
        .unwrap()
        .uploaded;
    let copies = uploaded as f64 / swarm.torrent.content.len() as f64;
    println!(
        "seed {seed}: the seed uploaded {copies:.2} copies; finished at {:?}",
        swarm.sim.now()
    );
    assert!(
        copies < 8.0,
        "seed {seed}: the seed uploaded {copies:.2} copies"
    );
}

/// Leechers leave mid-download and new ones join: everyone still there finishes.
#[test]
fn churn_leavers_and_joiners() {
    let seed = 51;
    let link = LinkProfile::symmetric(500_000, Duration::from_millis(15));
    let mut swarm = SwarmBuilder::new(TorrentSpec::single(1 << 20, 32 * 1024))
        .seeds(1)
        .leechers(8)
        .seed_link(link)
        .leecher_link(link)
        .build(seed);
    swarm.sim.run_for(Duration::from_secs(1)).unwrap();
    // Three leechers leave.
    let leaving: Vec<_> = swarm.leechers().take(3).collect();
    for l in &leaving {
        assert!(swarm
            .sim
            .with_session(l.node, |s, now| s.remove_torrent(now, l.torrent)));
    }
    swarm.nodes.retain(|n| !leaving.contains(n));
    // Three join, each connecting to the seed and to the remaining leechers.
    let mut joined = Vec::new();
    for _ in 0..3 {
        let node = swarm.sim.add_node(NodeConfig {
            link,
            ..NodeConfig::default()
        });
        let t = swarm.sim.add_torrent(node, &swarm.torrent);
        let peers: Vec<_> = swarm
            .nodes
            .iter()
            .map(|n| swarm.sim.node(n.node).addr())
            .collect();
        for addr in peers {
            swarm.sim.connect(node, t, addr).unwrap();
        }
        joined.push(bitshoal_conformance::sim::SwarmNode {
            node,
            torrent: t,
            seed: false,
        });
        swarm.sim.run_for(Duration::from_millis(300)).unwrap();
    }
    swarm.nodes.extend(joined);
    swarm
        .run_until_finished(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in swarm.leechers() {
        assert!(swarm.content(n) == swarm.torrent.content[..], "seed {seed}");
    }
}

/// Upload and download limits hold within 10 % over a transfer.
#[test]
fn rate_limits_hold_within_ten_percent() {
    let seed = 61;
    for (up, down) in [(200_000u64, 0u64), (0, 300_000)] {
        let mut sim = Sim::new(seed);
        let size = 2 << 20;
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(size, 32 * 1024));
        let src = sim.add_node(NodeConfig {
            session: Config {
                upload_rate_limit: up,
                ..Config::default()
            },
            ..NodeConfig::default()
        });
        sim.seed_torrent(src, &torrent);
        let dst = sim.add_node(NodeConfig {
            session: Config {
                download_rate_limit: down,
                ..Config::default()
            },
            ..NodeConfig::default()
        });
        let t = sim.add_torrent(dst, &torrent);
        let addr = sim.node(src).addr();
        let start = sim.now();
        sim.connect(dst, t, addr).unwrap();
        sim.run_until(|s| s.node(dst).is_finished(t), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let took = (sim.now() - start).as_micros() as f64 / 1e6;
        let rate = size as f64 / took;
        let limit = up.max(down) as f64;
        assert!(
            (rate - limit).abs() / limit < 0.10,
            "seed {seed}: {rate:.0} B/s against a limit of {limit} B/s"
        );
    }
}

/// A streaming reader sets deadlines on the pieces it reads next: they arrive before the rest.
#[test]
fn deadline_pieces_arrive_first() {
    let seed = 71;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(2 << 20, 32 * 1024));
    let link = LinkProfile::symmetric(500_000, Duration::from_millis(20));
    let mut seeds = Vec::new();
    for _ in 0..2 {
        let s = sim.add_node(NodeConfig {
            link,
            ..NodeConfig::default()
        });
        sim.seed_torrent(s, &torrent);
        seeds.push(s);
    }
    let player = sim.add_node(NodeConfig::default());
    let t = sim.add_torrent(player, &torrent);
    // The player reads from the middle of the file.
    let wanted: Vec<u32> = (30..36).collect();
    for (i, &p) in wanted.iter().enumerate() {
        let at = Instant::ZERO + Duration::from_millis(500 * (i as u64 + 1));
        sim.with_session(player, |s, now| s.set_piece_deadline(now, t, p, Some(at)))
            .unwrap();
    }
    for s in seeds {
        let addr = sim.node(s).addr();
        sim.connect(player, t, addr).unwrap();
    }
    sim.run_until(|s| s.node(player).is_finished(t), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<u32> = events(&sim, player)
        .filter_map(|e| match e {
            Event::PieceVerified { piece, .. } => Some(*piece),
            _ => None,
        })
        .collect();
    let last_wanted = order
        .iter()
        .rposition(|p| wanted.contains(p))
        .expect("the wanted pieces were verified");
    // Requests for a few other pieces may be in flight in the same round trips; the wanted
    // pieces come first nonetheless.
    assert!(
        last_wanted < wanted.len() + 4,
        "seed {seed}: the wanted pieces came at positions up to {last_wanted}: {order:?}"
    );
}

/// The corrupt-peer scenario, twice with one seed: the same trace, bit for bit; and a
/// banned peer id is refused from another address too.
#[test]
fn the_smart_ban_scenario_replays_and_the_banned_id_stays_out() {
    let run = |seed: u64| {
        let mut sim = Sim::new(seed);
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(512 * 1024, 32 * 1024));
        let good = sim.add_node(NodeConfig::default());
        sim.seed_torrent(good, &torrent);
        let leech = sim.add_node(NodeConfig::default());
        let t = sim.add_torrent(leech, &torrent);
        let liar = fake_seed(&mut sim, &torrent, 0xbb, true, true);
        let addr = sim.fake(liar).addr();
        sim.connect(leech, t, addr).unwrap();
        let addr = sim.node(good).addr();
        sim.connect(leech, t, addr).unwrap();
        sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        (sim, torrent, leech, t)
    };
    let (a, ..) = run(81);
    let (mut b, torrent, leech, t) = run(81);
    assert_eq!(a.trace_hash(), b.trace_hash(), "seed 81 replays exactly");
    // The liar comes back from another address with the same peer id: refused.
    let again = fake_seed(&mut b, &torrent, 0xbb, true, false);
    let addr = b.fake(again).addr();
    b.connect(leech, t, addr).unwrap();
    b.run_for(Duration::from_secs(1)).unwrap();
    assert!(b.fake(again).closed_at().is_some(), "seed 81");
    let last = b.node(leech).disconnects().last().cloned().unwrap();
    assert_eq!(last.1, DisconnectReason::Banned);
}

/// How long (virtual time) a node configured by `tune` takes to download 1 MiB in 32 KiB pieces
/// from one seed; checks the bytes it wrote.
fn download_time(seed: u64, tune: impl FnOnce(&mut NodeConfig)) -> Duration {
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(1 << 20, 32 * 1024));
    let src = sim.add_node(NodeConfig::default());
    sim.seed_torrent(src, &torrent);
    let mut config = NodeConfig::default();
    tune(&mut config);
    let dst = sim.add_node(config);
    let t = sim.add_torrent(dst, &torrent);
    let addr = sim.node(src).addr();
    sim.connect(dst, t, addr).unwrap();
    sim.run_until(|s| s.node(dst).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(dst).disk().content(t).unwrap(),
        &torrent.content[..],
        "seed {seed}"
    );
    sim.now() - Instant::ZERO
}

/// A slow disk with a small write cap holds the download back (no new requests while the
/// writes in flight are over the cap); without the cap the same disk keeps up.
#[test]
fn the_write_cap_holds_requests_back_while_the_disk_is_slow() {
    let seed = 91;
    let took = |cap: u64| {
        download_time(seed, |node| {
            node.session.max_disk_write_bytes = cap;
            node.disk_latency = Duration::from_millis(100);
        })
    };
    let free = took(16 << 20);
    let capped = took(64 * 1024);
    // 64 blocks; capped, only the cap's 4 blocks plus the requests already in flight land
    // per 100 ms disk round, so it takes several rounds; uncapped, about one.
    assert!(free < Duration::from_millis(300), "seed {seed}: {free:?}");
    assert!(
        capped > free * 3 && capped > Duration::from_millis(400),
        "seed {seed}: capped {capped:?}, free {free:?}"
    );
}

/// The torrent status reports the transfer rates while blocks flow.
#[test]
fn status_reports_rates_during_a_transfer() {
    let seed = 92;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(4 << 20, 32 * 1024));
    let limit = 500_000;
    let src = sim.add_node(NodeConfig {
        session: Config {
            upload_rate_limit: limit,
            ..Config::default()
        },
        ..NodeConfig::default()
    });
    let st = sim.seed_torrent(src, &torrent);
    let dst = sim.add_node(NodeConfig::default());
    let t = sim.add_torrent(dst, &torrent);
    let addr = sim.node(src).addr();
    sim.connect(dst, t, addr).unwrap();
    sim.run_for(Duration::from_secs(6)).unwrap();
    let down = sim.node(dst).session().torrent_status(t).unwrap();
    let up = sim.node(src).session().torrent_status(st).unwrap();
    for (what, rate) in [("download", down.download_rate), ("upload", up.upload_rate)] {
        assert!(
            rate > limit / 2 && rate < limit * 3 / 2,
            "seed {seed}: {what} rate {rate} against a limit of {limit}"
        );
    }
    assert_eq!(down.state, TorrentState::Downloading);
    assert_eq!(up.state, TorrentState::Seeding);
    assert!(down.pieces_verified > 0 && down.pieces_failed == 0);
}

/// Pieces waiting for their digest count against the write cap: with a slow hasher and a small
/// cap the download is held back (finished pieces cannot pile up in memory); without the cap
/// the same hasher keeps up, its jobs overlapping.
#[test]
fn the_write_cap_also_holds_requests_back_while_hashing_is_slow() {
    let seed = 93;
    let took = |cap: u64| {
        download_time(seed, |node| {
            node.session.max_disk_write_bytes = cap;
            node.hash_latency = Duration::from_millis(100);
        })
    };
    let free = took(16 << 20);
    let capped = took(64 * 1024);
    // 32 pieces; capped, about two are hashed per 100 ms round; uncapped, all overlap.
    assert!(
        capped > free * 3 && capped > Duration::from_millis(600),
        "seed {seed}: capped {capped:?}, free {free:?}"
    );
}

/// Blocks requested and not yet received count against the write cap too: with a slow disk,
/// a fast peer and a small cap, the requests in flight never exceed what the cap leaves, so
/// the memory a download holds stays within the cap however deep the peer's pipeline could go.
#[test]
fn requests_in_flight_stay_within_the_write_cap() {
    let seed = 94;
    let cap: u64 = 256 * 1024;
    let mut sim = Sim::new(seed);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(4 << 20, 64 * 1024));
    let src = sim.add_node(NodeConfig::default());
    sim.seed_torrent(src, &torrent);
    let dst = sim.add_node(NodeConfig {
        session: Config {
            max_disk_write_bytes: cap,
            ..Config::default()
        },
        disk_latency: Duration::from_millis(20),
        ..NodeConfig::default()
    });
    let t = sim.add_torrent(dst, &torrent);
    let addr = sim.node(src).addr();
    sim.connect(dst, t, addr).unwrap();
    let mut most = 0;
    let mut steps = 0u64;
    while !sim.node(dst).is_finished(t) {
        assert!(sim.step().unwrap(), "seed {seed}: the simulation ran dry");
        steps += 1;
        assert!(steps < 5_000_000, "seed {seed}: no end in sight");
        let now = sim.now();
        for p in sim.node(dst).session().peers(now, t) {
            most = most.max(p.requests_outstanding);
        }
    }
    assert_eq!(
        sim.node(dst).disk().content(t).unwrap(),
        &torrent.content[..],
        "seed {seed}"
    );
    let blocks = (cap / 16_384) as usize;
    assert!(
        most > 0 && most <= blocks,
        "seed {seed}: {most} requests in flight against a cap of {blocks} blocks"
    );
}
