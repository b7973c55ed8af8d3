//! Picker table tests with compact fixtures (STYLE.md rule 9): an availability string gives the
//! number of peers per piece ("1123011"), a have string our pieces, a peer string the pieces of
//! the peer we pick for.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::rng::Rng;

use super::*;
use crate::bencode::DictWriter;
use crate::metainfo::{Info, BLOCK_LEN};

/// A layout of `pieces` pieces of `blocks` 16 KiB blocks (the last piece one block shorter
/// when `short_tail`).
fn layout(pieces: u32, blocks: u32) -> Layout {
    let piece_length = blocks * BLOCK_LEN;
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", i64::from(pieces) * i64::from(piece_length));
    d.bytes(b"name", b"t");
    d.int(b"piece length", i64::from(piece_length));
    d.bytes(b"pieces", &vec![0u8; pieces as usize * 20]);
    d.finish();
    Info::from_bytes(&raw)
        .expect("fixture torrent is valid")
        .layout()
        .clone()
}

fn bits(s: &str) -> Bitfield {
    let mut b = Bitfield::new(s.len() as u32);
    for (i, c) in s.chars().enumerate() {
        b.set(i as u32, c == '1');
    }
    b
}

/// A picker over `availability.len()` pieces of `blocks` blocks: digit `i` of `availability`
/// is how many (fixture) peers have piece `i`; `have` marks the pieces we have.
fn setup(availability: &str, have: &str, blocks: u32, seed: u64) -> Picker<u32> {
    let n = availability.len() as u32;
    let have = if have.is_empty() {
        Bitfield::new(n)
    } else {
        bits(have)
    };
    let mut p = Picker::new(&layout(n, blocks), &have, Rng::from_seed(seed));
    let counts: Vec<u32> = availability.bytes().map(|c| u32::from(c - b'0')).collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    for peer in 0..max {
        let mut b = Bitfield::new(n);
        for (i, &c) in counts.iter().enumerate() {
            b.set(i as u32, c > peer);
        }
        p.replace_peer_pieces(&Bitfield::new(n), &b);
    }
    for (i, &c) in counts.iter().enumerate() {
        assert_eq!(p.availability(i as u32), c);
    }
    p.check();
    p
}

fn unchoked(has: &Bitfield) -> PeerPieces<'_> {
    PeerPieces {
        has,
        allowed_fast: None,
        suggested: &[],
        outstanding: 0,
    }
}

fn pick(p: &mut Picker<u32>, peer: u32, view: &PeerPieces<'_>, max: usize) -> Vec<BlockRequest> {
    let mut out = Vec::new();
    p.pick(peer, view, max, &mut out);
    p.check();
    out
}

fn pieces_of(requests: &[BlockRequest]) -> BTreeSet<u32> {
    requests.iter().map(|r| r.index).collect()
}

fn set(pieces: &[u32]) -> BTreeSet<u32> {
    pieces.iter().copied().collect()
}

#[test]
fn rarest_first_table() {
    // (availability, have, peer has, blocks to pick, pieces expected) — one block per piece.
    let table: &[(&str, &str, &str, usize, &[u32])] = &[
        ("1123011", "", "1111111", 4, &[0, 1, 5, 6]),
        ("1123011", "", "1111111", 5, &[0, 1, 2, 5, 6]),
        ("1123011", "", "0011111", 2, &[5, 6]),
        ("1123011", "1000010", "1111111", 2, &[1, 6]),
        ("3333333", "1111110", "1111111", 3, &[6]),
        ("2222222", "", "0000000", 3, &[]),
        ("0000000", "", "1111111", 3, &[]),
        ("9111119", "", "1000001", 2, &[0, 6]),
    ];
    for &(avail, have, peer, max, expected) in table {
        let mut p = setup(avail, have, 1, 7);
        let peer_has = bits(peer);
        let got = pick(&mut p, 1, &unchoked(&peer_has), max);
        assert_eq!(
            pieces_of(&got),
            set(expected),
            "availability {avail}, have {have:?}, peer {peer}"
        );
        assert_eq!(got.len(), expected.len(), "one block per piece, once");
    }
}

#[test]
fn have_changes_move_pieces_between_buckets() {
    let mut p = setup("2120", "", 1, 1);
    // Two peers announce piece 3: piece 1 is now the only rarest one.
    p.peer_has(3, false);
    p.peer_has(3, false);
    p.check();
    let all = bits("1111");
    assert_eq!(pieces_of(&pick(&mut p, 9, &unchoked(&all), 1)), set(&[1]));
    // A peer leaving lowers availability again.
    p.peer_left(&bits("1010"));
    p.check();
    assert_eq!(
        (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
        [1, 1, 1, 2]
    );
}

#[test]
fn seeds_are_counted_apart_and_convert_once() {
    let mut p = setup("1000", "", 1, 1);
    p.replace_peer_pieces(&Bitfield::new(4), &Bitfield::full(4));
    assert_eq!(
        (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
        [2, 1, 1, 1]
    );
    p.check();
    // The fixture peer (has piece 0) completes via haves: it becomes a seed.
    p.peer_has(1, false);
    p.peer_has(2, false);
    p.peer_has(3, true);
    p.check();
    assert_eq!(
        (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
        [2, 2, 2, 2]
    );
    p.peer_left(&Bitfield::full(4));
    p.peer_left(&Bitfield::full(4));
    p.check();
    assert_eq!((0..4).map(|i| p.availability(i)).sum::<u32>(), 0);
}

#[test]
fn partial_pieces_are_finished_first() {
    // Four blocks per piece. Peer 1 starts the rarest piece (3), taking two blocks.
    let mut p = setup("2221", "", 4, 3);
    let all = bits("1111");
    let first = pick(&mut p, 1, &unchoked(&all), 2);
    assert_eq!(pieces_of(&first), set(&[3]));
    // Peer 2 gets the rest of piece 3 before anything new, then a new piece.
    let second = pick(&mut p, 2, &unchoked(&all), 3);
    assert_eq!(
        second.iter().filter(|r| r.index == 3).count(),
        2,
        "{second:?}"
    );
    assert_eq!(second.len(), 3);
    assert_ne!(second[2].index, 3);
}

#[test]
fn priorities_order_before_rarity_and_skip_is_never_picked() {
    let mut p = setup("1239", "", 1, 5);
    p.set_priority(3, Priority::High);
    p.set_priority(0, Priority::Low);
    p.set_priority(1, Priority::Skip);
    p.check();
    let all = bits("1111");
    let order: Vec<u32> = (0..4)
        .flat_map(|_| pick(&mut p, 1, &unchoked(&all), 1))
        .map(|r| r.index)
        .collect();
    assert_eq!(order, [3, 2, 0], "high, then normal, then low; skip never");
    assert!(
        !p.wants_from(&bits("0100")),
        "a skipped piece is not interesting"
    );
    assert!(p.wants_from(&bits("0010")));
}

#[test]
fn finished_counts_wanted_pieces_only() {
    let mut p = setup("1111", "", 1, 5);
    p.set_priority(2, Priority::Skip);
    for piece in [0, 1, 3] {
        assert!(!p.is_finished());
        p.piece_done(piece);
    }
    p.check();
    assert!(p.is_finished());
    p.set_priority(2, Priority::Normal);
    assert!(!p.is_finished(), "wanting a piece again unfinishes");
    p.check();
}

#[test]
fn tie_breaks_are_random_but_seeded() {
    let order = |seed| {
        let mut p = setup(&"1".repeat(64), "", 1, seed);
        let all = Bitfield::full(64);
        (0..64)
            .flat_map(|_| pick(&mut p, 1, &unchoked(&all), 1))
            .map(|r| r.index)
            .collect::<Vec<_>>()
    };
    let a = order(11);
    assert_eq!(a, order(11), "the same seed picks the same order");
    assert_ne!(a, order(12), "another seed picks another order");
    assert_ne!(a, (0..64).collect::<Vec<_>>(), "not index order");
    assert_eq!(set(&a), (0..64).collect(), "every piece once");
}

#[test]
fn sequential_mode_ignores_rarity() {
    let mut p = setup("9991", "1000", 1, 5);
    assert!(!p.is_sequential());
    p.set_sequential(true);
    assert!(p.is_sequential());
    let all = bits("1111");
    let order: Vec<u32> = (0..3)
        .flat_map(|_| pick(&mut p, 1, &unchoked(&all), 1))
        .map(|r| r.index)
        .collect();
    assert_eq!(order, [1, 2, 3]);
    // A failed piece goes back to the front.
    p.piece_failed(1);
    assert_eq!(pieces_of(&pick(&mut p, 1, &unchoked(&all), 1)), set(&[1]));
}

#[test]
fn deadlines_come_first_earliest_first() {
    let mut p = setup("1199", "", 1, 5);
    let at = |s: u64| Instant::from_micros(s * 1_000_000);
    p.set_deadline(3, Some(at(5)));
    p.set_deadline(2, Some(at(2)));
    let all = bits("1111");
    let order: Vec<u32> = (0..3)
        .flat_map(|_| pick(&mut p, 1, &unchoked(&all), 1))
        .map(|r| r.index)
        .collect();
    assert_eq!(
        order[..2],
        [2, 3],
        "deadlines before the rarer pieces 0 and 1"
    );
    p.piece_done(2);
    assert!(!p.deadlines.iter().any(|&(_, q)| q == 2), "done clears it");
}

#[test]
fn suggested_pieces_are_preferred_when_nothing_is_partial() {
    let mut p = setup("1199", "", 1, 5);
    let all = bits("1111");
    let view = PeerPieces {
        has: &all,
        allowed_fast: None,
        suggested: &[3, 9],
        outstanding: 0,
    };
    assert_eq!(pieces_of(&pick(&mut p, 1, &view, 1)), set(&[3]));
}

#[test]
fn choked_peers_serve_only_allowed_fast_pieces_rarest_first() {
    let mut p = setup("1122", "", 1, 5);
    let all = bits("1111");
    let view = PeerPieces {
        has: &all,
        allowed_fast: Some(&[3, 2, 7]),
        suggested: &[0],
        outstanding: 0,
    };
    let got = pick(&mut p, 1, &view, 4);
    assert_eq!(pieces_of(&got), set(&[2, 3]), "suggestion 0 is not allowed");
}

#[test]
fn dropped_requests_return_to_the_pool_for_other_peers() {
    let mut p = setup("22", "", 2, 5);
    let all = bits("11");
    let a = pick(&mut p, 1, &unchoked(&all), 4);
    assert_eq!(a.len(), 4);
    // Peer 1 times out on one block (snubbed): it is free again, and peer 3 gets it as a free
    // block, not as a duplicate.
    p.request_dropped(1, a[0]);
    p.check();
    let c = pick(&mut p, 3, &unchoked(&all), 1);
    assert_eq!(c, vec![a[0]]);
    let r = p.block_received(3, a[0]).expect("wanted");
    assert!(r.cancel.is_empty(), "nobody else had it requested");
}

#[test]
fn endgame_duplicates_the_last_blocks_and_cancels_the_others() {
    let mut p = setup("33", "", 2, 5);
    let all = bits("11");
    let a = pick(&mut p, 1, &unchoked(&all), 10);
    assert_eq!(a.len(), 4, "all four blocks to peer 1");
    assert!(p.in_endgame());
    let busy = |outstanding| PeerPieces {
        outstanding,
        ..unchoked(&all)
    };
    assert!(
        pick(&mut p, 2, &busy(1), 10).is_empty(),
        "no duplicates for a peer with requests in flight"
    );
    // Idle peers get one duplicate per pick, blocks with the fewest requesters first.
    let b: Vec<BlockRequest> = (0..4).flat_map(|_| pick(&mut p, 2, &busy(0), 10)).collect();
    assert_eq!(
        b.iter()
            .map(|r| r.begin + r.index * 1000)
            .collect::<BTreeSet<_>>()
            .len(),
        4,
        "each block once: {b:?}"
    );
    let c: Vec<BlockRequest> = (0..4).flat_map(|_| pick(&mut p, 3, &busy(0), 10)).collect();
    assert_eq!(c.len(), 4, "and a third time");
    assert!(
        pick(&mut p, 4, &busy(0), 10).is_empty(),
        "at most {ENDGAME_MAX_REQUESTERS} requesters per block"
    );
    assert!(
        pick(&mut p, 1, &busy(0), 10).is_empty(),
        "never twice to one peer"
    );

    let r = p.block_received(2, a[0]).expect("first copy is wanted");
    assert_eq!(
        r.cancel.iter().copied().collect::<BTreeSet<_>>(),
        set(&[1, 3])
    );
    assert!(!r.piece_complete);
    assert_eq!(
        p.block_received(1, a[0]),
        None,
        "a late duplicate is ignored"
    );
    p.request_dropped(3, a[0]);
    p.check();
    let r = p.block_received(1, a[1]).expect("wanted");
    assert!(r.piece_complete, "piece 0 had two blocks");
    assert_eq!(p.contributors(a[0].index), vec![2, 1]);
}

#[test]
fn failed_pieces_name_contributors_and_are_picked_again() {
    let mut p = setup("1", "", 2, 5);
    let all = bits("1");
    let got = pick(&mut p, 1, &unchoked(&all), 1);
    let rest = pick(&mut p, 2, &unchoked(&all), 1);
    assert!(p.block_received(1, got[0]).is_some());
    assert!(p.block_received(2, rest[0]).unwrap().piece_complete);
    assert_eq!(p.piece_failed(0), vec![1, 2]);
    p.check();
    assert_eq!(pick(&mut p, 3, &unchoked(&all), 2).len(), 2);
}

#[test]
fn a_banned_peers_blocks_of_unfinished_pieces_are_forgotten() {
    // Piece 0: 3 blocks, two received (from peers 1 and 2), one requested. Piece 1: complete.
    let mut p = setup("11", "", 3, 5);
    let all = bits("11");
    let got = pick(&mut p, 1, &unchoked(&all), 6);
    assert_eq!(got.len(), 6);
    assert!(p.block_received(1, got[0]).is_some());
    assert!(p.block_received(2, got[1]).is_some());
    for r in &got[3..] {
        p.block_received(1, *r);
    }
    let (piece0, piece1) = (got[0].index, got[3].index);
    assert_ne!(piece0, piece1);
    // Peer 1 is banned: its block of the unfinished piece is free again; the requested and
    // the other peer's blocks are untouched; the complete piece waits for its hash.
    assert!(p.forget_block(piece0, 0));
    assert!(!p.forget_block(piece0, 0), "already free");
    assert!(!p.forget_block(piece0, 2), "requested, not received");
    assert!(!p.forget_block(piece1, 0), "complete: being hashed");
    assert!(!p.forget_block(7, 0), "no such piece");
    p.check();
    assert_eq!(pick(&mut p, 3, &unchoked(&all), 1), vec![got[0]]);
    assert_eq!(p.contributors(piece0), vec![2]);
}

#[test]
fn malformed_block_reports_are_ignored() {
    let mut p = setup("1", "", 2, 5);
    let all = bits("1");
    let got = pick(&mut p, 1, &unchoked(&all), 2);
    let mut odd = got[0];
    odd.begin += 1;
    assert_eq!(p.block_received(1, odd), None);
    odd = got[0];
    odd.length -= 1;
    assert_eq!(p.block_received(1, odd), None);
    odd.index = 5;
    assert_eq!(p.block_received(1, odd), None);
    p.request_dropped(1, odd);
    p.check();
}

#[derive(Clone, Debug)]
enum Op {
    Bitfield(Vec<bool>),
    Have(u32),
    Leave(usize),
    Priority(u32, u8),
    Pick(usize),
    Done(u32),
}

fn op(n: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<bool>(), n as usize).prop_map(Op::Bitfield),
        (0..n).prop_map(Op::Have),
        (0usize..8).prop_map(Op::Leave),
        (0..n, 0u8..4).prop_map(|(p, q)| Op::Priority(p, q)),
        (0usize..8).prop_map(Op::Pick),
        (0..n).prop_map(Op::Done),
    ]
}

proptest! {
    /// Random peers come and go, announce pieces, priorities change, pieces are picked and
    /// completed: the bucket lists always match the counts, and availability matches a model.
    #[test]
    fn lists_stay_consistent(ops in proptest::collection::vec(op(12), 1..80)) {
        let n = 12;
        let mut p: Picker<u32> = Picker::new(&layout(n, 1), &Bitfield::new(n), Rng::from_seed(1));
        let mut peers: Vec<Bitfield> = Vec::new();
        for o in ops {
            match o {
                Op::Bitfield(v) => {
                    let mut b = Bitfield::new(n);
                    for (i, x) in v.into_iter().enumerate() { b.set(i as u32, x); }
                    p.replace_peer_pieces(&Bitfield::new(n), &b);
                    peers.push(b);
                }
                Op::Have(i) => {
                    if let Some(b) = peers.last_mut() {
                        if b.set(i, true) { p.peer_has(i, b.is_full()); }
                    }
                }
                Op::Leave(k) => {
                    if !peers.is_empty() {
                        let b = peers.remove(k % peers.len());
                        p.peer_left(&b);
                    }
                }
                Op::Priority(i, q) => {
                    let q = [Priority::Skip, Priority::Low, Priority::Normal, Priority::High][q as usize];
                    p.set_priority(i, q);
                }
                Op::Pick(k) => {
                    if !peers.is_empty() {
                        let k = k % peers.len();
                        let b = peers[k].clone();
                        let mut out = Vec::new();
                        p.pick(k as u32, &unchoked(&b), 3, &mut out);
                        for r in out {
                            prop_assert!(b.get(r.index));
                            prop_assert!(p.priority(r.index) != Priority::Skip);
                        }
                    }
                }
                Op::Done(i) => p.piece_done(i),
            }
            p.check();
            for i in 0..n {
                let model = peers.iter().filter(|b| b.get(i)).count() as u32;
                prop_assert_eq!(p.availability(i), model);
            }
        }
    }
}

#[test]
fn an_exclusive_piece_is_taken_by_one_peer_only() {
    // One piece of four blocks, two peers that have it.
    let mut p = setup("2", "", 4, 1);
    let all = bits("1");
    let view = unchoked(&all);
    // First attempt: peers 1 and 2 share the piece; it fails.
    assert_eq!(pick(&mut p, 1, &view, 2).len(), 2);
    assert_eq!(pick(&mut p, 2, &view, 2).len(), 2);
    for (peer, begin) in [(1, 0), (1, 1), (2, 2), (2, 3)] {
        let r = BlockRequest {
            index: 0,
            begin: begin * BLOCK_LEN,
            length: BLOCK_LEN,
        };
        assert!(p.block_received(peer, r).is_some());
    }
    let mut contributors = p.piece_failed(0);
    contributors.sort_unstable();
    assert_eq!(contributors, vec![1, 2]);
    p.set_exclusive(0);
    assert!(p.is_exclusive(0));
    // Second attempt: peer 1 starts it, so peer 2 gets nothing, not even in endgame.
    assert_eq!(pick(&mut p, 1, &view, 2).len(), 2);
    assert!(pick(&mut p, 2, &view, 4).is_empty());
    // Peer 1 takes the rest.
    assert_eq!(pick(&mut p, 1, &view, 4).len(), 2);
    // Peer 1 received one block and left: the block is free again, for peer 2 alone.
    let r0 = BlockRequest {
        index: 0,
        begin: 0,
        length: BLOCK_LEN,
    };
    assert!(p.block_received(1, r0).is_some());
    for b in 1..4 {
        p.request_dropped(
            1,
            BlockRequest {
                index: 0,
                begin: b * BLOCK_LEN,
                length: BLOCK_LEN,
            },
        );
    }
    assert_eq!(p.peer_gone(1), vec![(0, 0)]);
    p.check();
    assert_eq!(pick(&mut p, 2, &view, 8).len(), 4);
    assert!(pick(&mut p, 1, &view, 8).is_empty());
    // Complete (its hash pending): the sender leaving frees nothing, the hash decides.
    for b in 0..4 {
        let r = BlockRequest {
            index: 0,
            begin: b * BLOCK_LEN,
            length: BLOCK_LEN,
        };
        assert!(p.block_received(2, r).is_some());
    }
    assert!(p.peer_gone(2).is_empty());
    p.check();
    // Done: no longer exclusive.
    p.piece_done(0);
    assert!(!p.is_exclusive(0));
    p.check();
}
