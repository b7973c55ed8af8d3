//! Tests of the BEP 9 metadata assembler, with honest peers and liars.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::*;
use crate::bencode::DictWriter;
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::metainfo::{Info, Limits};
use crate::rng::Rng;
use crate::time::{Duration, Instant};

const PIECE: usize = METADATA_PIECE_SIZE;

fn v1(data: &[u8]) -> InfoHashes {
    InfoHashes::V1(InfoHashV1(Sha1::digest(data).into()))
}

fn hybrid(data: &[u8]) -> InfoHashes {
    InfoHashes::Hybrid(
        InfoHashV1(Sha1::digest(data).into()),
        InfoHashV2(Sha256::digest(data).into()),
    )
}

fn piece(data: &[u8], i: u32) -> Bytes {
    let start = i as usize * PIECE;
    Bytes::copy_from_slice(&data[start..data.len().min(start + PIECE)])
}

fn corrupt(mut b: Vec<u8>) -> Bytes {
    b[0] ^= 0xff;
    Bytes::from(b)
}

/// A real v1 info dictionary of about `pieces_len` bytes of piece hashes.
fn info_dict(pieces_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = DictWriter::new(&mut out);
    d.int(b"length", (pieces_len / 20 * 16384) as i64);
    d.bytes(b"name", b"file.bin");
    d.int(b"piece length", 16384);
    let hashes: Vec<u8> = (0..pieces_len / 20 * 20).map(|i| (i * 7) as u8).collect();
    d.bytes(b"pieces", &hashes);
    d.finish();
    out
}

fn t(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

#[test]
fn one_honest_peer_fetches_a_real_info_dict() {
    let info = info_dict(40_000);
    let hashes = v1(&info);
    let mut a = MetadataAssembler::new(hashes, info.len() as u64).unwrap();
    assert_eq!(a.piece_count() as usize, info.len().div_ceil(PIECE));
    let mut result = None;
    while result.is_none() {
        let mut asked = Vec::new();
        while let Some(p) = a.next_request(t(0), 1u32) {
            asked.push(p);
        }
        assert!(!asked.is_empty(), "the peer always gets work until done");
        assert!(asked.len() as u32 <= MAX_OUTSTANDING_PER_PEER);
        for p in asked {
            match a.on_data(1, p, info.len() as u64, piece(&info, p)).unwrap() {
                Progress::Pending => {}
                Progress::Complete { info, liars } => {
                    assert!(liars.is_empty());
                    result = Some(info);
                }
                Progress::HashFailed { .. } => panic!("honest data fails"),
            }
        }
    }
    let bytes = result.unwrap();
    assert_eq!(&bytes[..], &info[..]);
    assert!(a.is_complete());
    assert_eq!(a.next_request(t(0), 1), None);
    let parsed = Info::from_bytes(&bytes).expect("the verified bytes parse");
    assert_eq!(parsed.hashes(), hashes);
}

#[test]
fn sizes_are_capped_before_allocating() {
    let h = v1(b"x");
    let limit = Limits::DEFAULT.max_metadata_size as u64;
    assert!(MetadataAssembler::<u32>::new(h, limit).is_ok());
    assert_eq!(
        MetadataAssembler::<u32>::new(h, limit + 1).unwrap_err(),
        AssemblerError::TooLarge {
            size: limit + 1,
            max: Limits::DEFAULT.max_metadata_size
        }
    );
    assert!(matches!(
        MetadataAssembler::<u32>::new(h, u64::MAX),
        Err(AssemblerError::TooLarge { .. })
    ));
    assert_eq!(
        MetadataAssembler::<u32>::new(h, 0).unwrap_err(),
        AssemblerError::Empty
    );
}

#[test]
fn requests_spread_across_peers() {
    let data = vec![7u8; 4 * PIECE];
    let mut a = MetadataAssembler::new(v1(&data), data.len() as u64).unwrap();
    assert_eq!(a.next_request(t(0), 1u32), Some(0));
    assert_eq!(a.next_request(t(0), 1), Some(1));
    assert_eq!(a.next_request(t(0), 1), None, "two per peer");
    assert_eq!(a.next_request(t(0), 2), Some(2));
    assert_eq!(a.next_request(t(0), 2), Some(3));
    assert_eq!(
        a.next_request(t(0), 3),
        None,
        "every piece is asked of someone"
    );
}

#[test]
fn wrong_total_size_and_length_ban_the_sender() {
    let data = vec![1u8; PIECE + 10];
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(v1(&data), size).unwrap();
    assert_eq!(a.next_request(t(0), 1u32), Some(0));
    assert_eq!(
        a.on_data(1, 0, size + 1, piece(&data, 0)),
        Err(AssemblerError::WrongTotalSize {
            announced: size + 1,
            expected: size
        })
    );
    assert!(a.is_banned(1));
    assert_eq!(a.next_request(t(0), 1), None);
    assert_eq!(
        a.on_data(1, 0, size, piece(&data, 0)),
        Err(AssemblerError::Banned)
    );
    // Its piece went back to the pool.
    assert_eq!(a.next_request(t(0), 2), Some(0));
    assert_eq!(a.next_request(t(0), 2), Some(1));
    assert_eq!(
        a.on_data(2, 1, size, Bytes::from_static(b"short")),
        Err(AssemblerError::WrongLength {
            piece: 1,
            expected: 10,
            actual: 5
        })
    );
    assert!(a.is_banned(2));
}

#[test]
fn unrequested_pieces_are_errors() {
    let data = vec![1u8; 3 * PIECE];
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(v1(&data), size).unwrap();
    assert_eq!(
        a.on_data(1u32, 0, size, piece(&data, 0)),
        Err(AssemblerError::Unrequested { piece: 0 })
    );
    assert_eq!(a.next_request(t(0), 1), Some(0));
    assert_eq!(
        a.on_data(1, 1, size, piece(&data, 1)),
        Err(AssemblerError::Unrequested { piece: 1 })
    );
    assert_eq!(
        a.on_data(1, 99, size, piece(&data, 1)),
        Err(AssemblerError::Unrequested { piece: 99 })
    );
    assert_eq!(
        a.on_reject(t(0), 1, 2),
        Err(AssemblerError::Unrequested { piece: 2 })
    );
    // Answering twice: the second answer was not asked for any more.
    assert_eq!(
        a.on_data(1, 0, size, piece(&data, 0)),
        Ok(Progress::Pending)
    );
    assert_eq!(
        a.on_data(1, 0, size, piece(&data, 0)),
        Err(AssemblerError::Unrequested { piece: 0 })
    );
}

#[test]
fn rejects_and_timeouts_back_off_and_late_data_is_kept() {
    let data = vec![3u8; 2 * PIECE];
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(v1(&data), size).unwrap();
    assert_eq!(a.next_request(t(0), 1u32), Some(0));
    assert_eq!(a.poll_timeout(), Some(t(0) + REQUEST_TIMEOUT));
    a.on_reject(t(1), 1, 0).unwrap();
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(a.next_request(t(2), 1), None, "backing off after a reject");
    assert_eq!(a.next_request(t(2), 2), Some(0));
    // Peer 2's request times out; it is reported and the piece goes to peer 1.
    assert!(a.handle_timeout(t(21)).is_empty(), "not yet due");
    assert_eq!(a.handle_timeout(t(22)), vec![(2, 0)]);
    assert_eq!(
        a.next_request(t(23), 2),
        None,
        "backing off after a timeout"
    );
    let backoff_end = t(1) + REJECT_BACKOFF;
    assert_eq!(
        a.next_request(backoff_end - Duration::from_secs(1), 1),
        None
    );
    assert_eq!(a.next_request(backoff_end, 1), Some(0));
    assert_eq!(a.next_request(backoff_end, 1), Some(1));
    // Peer 2 answers late: accepted, and peer 1's answer is then a harmless duplicate.
    assert_eq!(
        a.on_data(2, 0, size, piece(&data, 0)),
        Ok(Progress::Pending)
    );
    assert_eq!(a.pieces_have(), 1);
    assert_eq!(
        a.on_data(1, 0, size, piece(&data, 0)),
        Ok(Progress::Pending)
    );
    let done = a.on_data(1, 1, size, piece(&data, 1)).unwrap();
    assert!(matches!(done, Progress::Complete { .. }));
}

#[test]
fn a_sole_liar_is_banned_at_once() {
    let data = vec![5u8; PIECE + 1];
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(hybrid(&data), size).unwrap();
    a.next_request(t(0), 9u32).unwrap();
    a.next_request(t(0), 9).unwrap();
    a.on_data(9, 0, size, piece(&data, 0)).unwrap();
    let lie = corrupt(piece(&data, 1).to_vec());
    assert_eq!(
        a.on_data(9, 1, size, lie),
        Ok(Progress::HashFailed { banned: vec![9] })
    );
    assert!(a.is_banned(9));
    assert_eq!(a.pieces_have(), 0, "all pieces dropped");
}

#[test]
fn a_liar_among_many_is_found_after_isolation() {
    let data: Vec<u8> = (0..4 * PIECE).map(|i| i as u8).collect();
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(v1(&data), size).unwrap();
    // Round 1: peers 1 (honest) and 2 (liar on every piece) share the work.
    let p1: Vec<u32> = std::iter::from_fn(|| a.next_request(t(0), 1u32)).collect();
    let p2: Vec<u32> = std::iter::from_fn(|| a.next_request(t(0), 2)).collect();
    assert_eq!((p1.len(), p2.len()), (2, 2));
    for &p in &p1 {
        a.on_data(1, p, size, piece(&data, p)).unwrap();
    }
    a.on_data(2, p2[0], size, corrupt(piece(&data, p2[0]).to_vec()))
        .unwrap();
    let failed = a
        .on_data(2, p2[1], size, corrupt(piece(&data, p2[1]).to_vec()))
        .unwrap();
    assert_eq!(
        failed,
        Progress::HashFailed { banned: vec![] },
        "no proof yet"
    );
    // Round 2 is isolated: the first peer to ask gets the whole round.
    let round: Vec<u32> = std::iter::from_fn(|| a.next_request(t(1), 1)).collect();
    assert_eq!(round, vec![0, 1, 2, 3]);
    assert_eq!(a.next_request(t(1), 2), None, "one source per round");
    let mut last = Progress::Pending;
    for p in round {
        last = a.on_data(1, p, size, piece(&data, p)).unwrap();
    }
    let Progress::Complete { info, liars } = last else {
        panic!("the honest round does not verify");
    };
    assert_eq!(&info[..], &data[..]);
    assert_eq!(liars, vec![2], "the suspect whose pieces differ");
    assert!(a.is_banned(2) && !a.is_banned(1));
}

#[test]
fn an_isolated_liar_is_banned_and_the_next_source_completes() {
    let data: Vec<u8> = (0..2 * PIECE).map(|i| (i / 3) as u8).collect();
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(v1(&data), size).unwrap();
    // Round 1: one piece each from 1 (honest) and 2 (liar).
    let x = a.next_request(t(0), 1u32).unwrap();
    let _ = a.next_request(t(0), 1).unwrap();
    a.remove_peer(1);
    assert_eq!(a.next_request(t(0), 1), Some(0), "its requests went back");
    let y = a.next_request(t(0), 2).unwrap();
    assert_ne!(x, y);
    a.on_data(1, x, size, piece(&data, x)).unwrap();
    let r = a.on_data(2, y, size, corrupt(piece(&data, y).to_vec()));
    assert_eq!(r, Ok(Progress::HashFailed { banned: vec![] }));
    // Round 2 from the liar alone.
    let round: Vec<u32> = std::iter::from_fn(|| a.next_request(t(1), 2)).collect();
    a.on_data(2, round[0], size, piece(&data, round[0]))
        .unwrap();
    let r = a.on_data(2, round[1], size, corrupt(piece(&data, round[1]).to_vec()));
    assert_eq!(r, Ok(Progress::HashFailed { banned: vec![2] }));
    // Round 3 from peer 1.
    let round: Vec<u32> = std::iter::from_fn(|| a.next_request(t(2), 1)).collect();
    let mut last = Progress::Pending;
    for p in round {
        last = a.on_data(1, p, size, piece(&data, p)).unwrap();
    }
    assert!(
        matches!(last, Progress::Complete { ref liars, .. } if liars.is_empty()),
        "completes, and the liar banned in round 2 is not reported again"
    );
}

#[test]
fn hybrid_needs_both_hashes_to_match() {
    let data = b"d4:name1:xe".to_vec();
    let wrong_v2 = InfoHashes::Hybrid(InfoHashV1(Sha1::digest(&data).into()), InfoHashV2([0; 32]));
    let mut a = MetadataAssembler::new(wrong_v2, data.len() as u64).unwrap();
    a.next_request(t(0), 1u32).unwrap();
    let r = a.on_data(1, 0, data.len() as u64, Bytes::from(data.clone()));
    assert_eq!(r, Ok(Progress::HashFailed { banned: vec![1] }));
    let v2_only = InfoHashes::V2(InfoHashV2(Sha256::digest(&data).into()));
    let mut a = MetadataAssembler::new(v2_only, data.len() as u64).unwrap();
    a.next_request(t(0), 1u32).unwrap();
    let r = a.on_data(1, 0, data.len() as u64, Bytes::from(data));
    assert!(matches!(r, Ok(Progress::Complete { .. })));
}

/// How a simulated peer answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Honest,
    /// Flips a byte of every piece.
    Corrupts,
    /// Flips a byte of one piece only.
    CorruptsOne(u32),
    /// Claims another total size.
    WrongSize,
    /// Sends pieces one byte short.
    WrongLength,
    /// Never answers.
    Silent,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Honest),
        2 => Just(Kind::Corrupts),
        2 => (0u32..4).prop_map(Kind::CorruptsOne),
        1 => Just(Kind::WrongSize),
        1 => Just(Kind::WrongLength),
        1 => Just(Kind::Silent),
    ]
}

/// Runs a swarm of `kinds` against an assembler until it completes; returns every peer reported
/// banned along the way.
fn simulate(data: &[u8], hashes: InfoHashes, kinds: &[Kind], seed: u64) -> BTreeSet<u32> {
    let size = data.len() as u64;
    let mut a = MetadataAssembler::new(hashes, size).unwrap();
    let mut rng = Rng::from_seed(seed);
    let mut now = Instant::ZERO;
    let mut inflight: Vec<(u32, u32)> = Vec::new();
    let mut banned = BTreeSet::new();
    let n = kinds.len() as u64;
    for _ in 0..200_000 {
        match rng.below(10) {
            0..=3 => {
                let peer = rng.below(n) as u32;
                if let Some(p) = a.next_request(now, peer) {
                    inflight.push((peer, p));
                }
            }
            4..=8 if !inflight.is_empty() => {
                let (peer, p) = inflight.swap_remove(rng.below(inflight.len() as u64) as usize);
                let good = piece(data, p);
                let answer = match kinds[peer as usize] {
                    Kind::Honest if rng.below(8) == 0 => {
                        let _ = a.on_reject(now, peer, p);
                        continue;
                    }
                    Kind::Honest => a.on_data(peer, p, size, good),
                    Kind::Corrupts => a.on_data(peer, p, size, corrupt(good.to_vec())),
                    Kind::CorruptsOne(bad) if bad == p => {
                        a.on_data(peer, p, size, corrupt(good.to_vec()))
                    }
                    Kind::CorruptsOne(_) => a.on_data(peer, p, size, good),
                    Kind::WrongSize => a.on_data(peer, p, size + 1, good),
                    Kind::WrongLength => a.on_data(peer, p, size, good.slice(1..)),
                    Kind::Silent => continue,
                };
                match answer {
                    Ok(Progress::Pending) | Err(AssemblerError::Banned) => {}
                    Ok(Progress::HashFailed { banned: b }) => banned.extend(b),
                    Ok(Progress::Complete { info, liars }) => {
                        assert_eq!(&info[..], data, "only verified bytes come out");
                        banned.extend(liars);
                        return banned;
                    }
                    Err(
                        AssemblerError::WrongTotalSize { .. } | AssemblerError::WrongLength { .. },
                    ) => {
                        banned.insert(peer);
                    }
                    Err(e) => panic!("{:?} peer {peer} got {e:?}", kinds[peer as usize]),
                }
                for (p, kind) in kinds.iter().enumerate() {
                    if *kind == Kind::Honest {
                        assert!(!a.is_banned(p as u32), "honest peer {p} banned");
                    }
                }
            }
            _ => {
                now += Duration::from_secs(5);
                a.handle_timeout(now);
            }
        }
    }
    panic!("no completion with {kinds:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn liars_never_win_and_honest_peers_are_never_banned(
        len in 1usize..(4 * PIECE),
        mut kinds in proptest::collection::vec(kind(), 1..6),
        honest_at in 0usize..6,
        seed: u64,
        use_hybrid: bool,
    ) {
        let honest_at = honest_at % kinds.len();
        kinds[honest_at] = Kind::Honest;
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        let hashes = if use_hybrid { hybrid(&data) } else { v1(&data) };
        let banned = simulate(&data, hashes, &kinds, seed);
        for p in &banned {
            let k = kinds[*p as usize];
            prop_assert!(k != Kind::Honest && k != Kind::Silent, "peer {} ({:?}) banned", p, k);
        }
    }
}
