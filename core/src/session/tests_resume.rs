//! Resume data saved at any moment of a download, then the process killed at any later moment:
//! every interleaving of block writes, hash results, the save and the kill, on file systems
//! with fine and coarse file times. The restart must keep every piece verified before the kill
//! (no verified piece fetched twice) and trust no piece whose data on disk is not good.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::metainfo::FileSpan;
use crate::resume::{FileStat, ResumeData};
use crate::wire::{Framer, Message, WireLimits};

const PIECE: usize = BLOCK_LEN as usize;
const MS: i64 = 1_000_000;
const SECOND: i64 = 1_000 * MS;

/// Three one-block pieces; the files are cut as `sizes` says.
fn torrent(sizes: &[usize]) -> (Vec<u8>, Arc<Info>) {
    let data: Vec<u8> = (0..3 * PIECE).map(|i| (i * 7 + i / 311) as u8).collect();
    let info = crate::metainfo::testing::multi_file_info(&data, sizes, PIECE as u32);
    (data, Arc::new(info))
}

/// The file system: each file's bytes (growing as written, sparse holes as zeros) and time.
#[derive(Clone)]
struct Disk {
    files: Vec<Option<(Vec<u8>, i64)>>,
    /// The wall clock, nanoseconds.
    clock: i64,
    /// File time granularity, nanoseconds.
    granularity: i64,
}

impl Disk {
    fn write(&mut self, spans: &[FileSpan], data: &[u8]) {
        let mtime = self.clock - self.clock.rem_euclid(self.granularity);
        let mut at = 0;
        for s in spans.iter().filter(|s| !s.pad) {
            let (bytes, time) = self.files[s.file].get_or_insert_with(|| (Vec::new(), 0));
            let end = s.offset as usize + s.length as usize;
            if bytes.len() < end {
                // Not `resize`: it fills byte by byte in a debug build, which would dominate
                // the thousands of cases; `vec!` of zeros allocates them zeroed.
                let mut grown = vec![0; end];
                grown[..bytes.len()].copy_from_slice(bytes);
                *bytes = grown;
            }
            bytes[s.offset as usize..end].copy_from_slice(&data[at..at + s.length as usize]);
            *time = mtime;
            at += s.length as usize;
        }
    }

    fn read(&self, spans: &[FileSpan]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for s in spans {
            let (bytes, _) = self.files[s.file].as_ref()?;
            let end = s.offset as usize + s.length as usize;
            out.extend_from_slice(bytes.get(s.offset as usize..end)?);
        }
        Some(out)
    }

    fn stats(&self) -> Vec<Option<FileStat>> {
        self.files
            .iter()
            .map(|f| {
                f.as_ref().map(|(bytes, mtime)| FileStat {
                    size: bytes.len() as u64,
                    mtime: *mtime,
                })
            })
            .collect()
    }
}

/// What can happen to a piece being downloaded: its block arrives (the session issues its
/// write and its hash at once), its write lands, its hash result arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Receive(u32),
    Write(u32),
    Hash(u32),
}

/// A piece received but not settled: its write and hash, held back.
struct Held {
    write: (RequestId, SmallVec<[FileSpan; 2]>, Bytes),
    hash: (RequestId, Digest),
}

/// The SHA-1 of `bytes` as a hasher would report it, without hashing (SHA-1 in a debug build
/// would make the thousands of cases slow): the torrent's hash of the piece whose data `bytes`
/// is, or zeros when it is no piece's data.
fn digest(info: &Info, data: &[u8], bytes: &[u8]) -> Digest {
    let layout = info.layout();
    let hash = layout
        .pieces()
        .find(|p| {
            let start = p.get() as usize * PIECE;
            data.get(start..start + PIECE) == Some(bytes)
        })
        .and_then(|p| info.piece_hash_v1(p));
    Digest::Sha1(hash.unwrap_or([0; 20]))
}

fn poll_all(session: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| session.poll_output()).collect()
}

/// A first run: its steps; piece 2 arrives corrupt if `corrupt`; the clock moves by `tick`
/// after each step.
struct Case<'a> {
    steps: &'a [Step],
    corrupt: bool,
    tick: i64,
}

/// The first run after some of its steps: the resume data it would save then (encoded and
/// decoded again, as a restart reads it), the pieces verified so far, the disk.
struct Moment {
    saved: ResumeData,
    verified: BTreeSet<u32>,
    disk: Disk,
}

/// The first run: piece 0 is on disk and had; a seed unchokes and the session asks for pieces
/// 1 and 2; then the case's steps. Returns the moment before each step and after the last: a
/// save at moment `i` and a kill at moment `j >= i` is one interleaving. (Saving only reads
/// the session, so one run serves them all.)
fn first_run(info: &Arc<Info>, data: &[u8], mut disk: Disk, case: &Case<'_>) -> Vec<Moment> {
    let layout = info.layout();
    disk.write(
        &layout
            .piece_spans(layout.piece(0).unwrap())
            .collect::<Vec<_>>(),
        &data[..PIECE],
    );
    disk.clock += case.tick;
    let mut have = Bitfield::new(3);
    have.set(0, true);
    let mut session = Session::new(Config {
        rng_seed: 5,
        ..Config::default()
    });
    let now = Instant::ZERO;
    let t = session
        .add_torrent(now, AddTorrent::new(info.clone()).with_have(have))
        .unwrap();
    poll_all(&mut session);

    let addr: SocketAddr = "127.0.0.9:6000".parse().unwrap();
    let conn = session.accept(now, addr).unwrap();
    let mut buf = BytesMut::new();
    Handshake::new(Reserved::FAST, &info.hashes(), PeerId([9; 20])).encode(&mut buf);
    let _ = Message::HaveAll.encode(&mut buf);
    let _ = Message::Unchoke.encode(&mut buf);
    session.handle_input(now, Input::Received { conn, data: buf });
    let mut sent = BytesMut::new();
    for output in poll_all(&mut session) {
        if let Output::Send {
            conn: c,
            head,
            body,
        } = output
        {
            assert_eq!(c, conn);
            sent.extend_from_slice(&head);
            sent.extend_from_slice(body.as_deref().unwrap_or_default());
        }
    }
    let _ = sent.split_to(68); // its handshake
    let mut framer = Framer::new(WireLimits::default());
    let mut requested = Vec::new();
    while let Some(message) = framer.next(&mut sent).unwrap() {
        if let Message::Request(r) = message {
            requested.push(r.index);
        }
    }
    requested.sort_unstable();
    assert_eq!(requested, [1, 2], "one block per piece");

    let mut held: HashMap<u32, Held> = HashMap::new();
    let mut moments = Vec::new();
    let mut verified = BTreeSet::new();
    for step in case.steps {
        moments.push(Moment {
            saved: save(&session, t, &disk),
            verified: verified.clone(),
            disk: disk.clone(),
        });
        match *step {
            Step::Receive(piece) => {
                let start = piece as usize * PIECE;
                let mut block = data[start..start + PIECE].to_vec();
                if case.corrupt && piece == 2 {
                    block[100] ^= 1;
                }
                let mut buf = BytesMut::new();
                let body = Message::Piece {
                    index: piece,
                    begin: 0,
                    data: Bytes::from(block),
                }
                .encode(&mut buf);
                buf.extend_from_slice(&body.expect("a piece's data goes apart"));
                session.handle_input(now, Input::Received { conn, data: buf });
                let (mut write, mut hash) = (None, None);
                for output in poll_all(&mut session) {
                    match output {
                        Output::Disk(DiskCmd::Write {
                            req, spans, data, ..
                        }) => write = Some((req, spans, data)),
                        Output::Hash(job) => {
                            hash = Some((job.req, digest(info, data, &job.data.concat())));
                        }
                        _ => {}
                    }
                }
                match (write, hash) {
                    (Some(write), Some(hash)) => {
                        held.insert(piece, Held { write, hash });
                    }
                    // Piece 2 failed its hash before: its sender, who sent all of it, was
                    // banned (smart ban) and nothing it sends counts any more.
                    (None, None) => assert!(case.corrupt, "the block was taken"),
                    _ => panic!("a block is written and hashed together"),
                }
            }
            Step::Write(piece) => {
                let Some(Held { write, .. }) = held.get(&piece) else {
                    continue;
                };
                let (req, spans, bytes) = write;
                disk.write(spans, bytes);
                let result = Ok(DiskDone::Written);
                session.handle_input(now, Input::DiskDone { req: *req, result });
            }
            Step::Hash(piece) => {
                let Some(Held { hash, .. }) = held.get(&piece) else {
                    continue;
                };
                let (req, digest) = hash.clone();
                session.handle_input(now, Input::Hashed { req, digest });
            }
        }
        for output in poll_all(&mut session) {
            if let Output::Event(Event::PieceVerified { piece, .. }) = output {
                verified.insert(piece);
            }
        }
        disk.clock += case.tick;
    }
    moments.push(Moment {
        saved: save(&session, t, &disk),
        verified,
        disk,
    });
    moments
}

/// Saves resume data as a runtime does: the files' stats, then the time, then the session's
/// pieces (no write issued in between).
fn save(session: &Session, t: TorrentId, disk: &Disk) -> ResumeData {
    let stats = disk.stats();
    let data = session.resume_data(t, stats, disk.clock).unwrap();
    ResumeData::decode(&data.encode()).unwrap()
}

/// The restart: the torrent added with the saved data and the files as they are; the check
/// reads from `disk`. Returns the pieces had once it is done and how many were read.
fn restart(info: &Arc<Info>, data: &[u8], saved: ResumeData, disk: &Disk) -> (Bitfield, usize) {
    let mut session = Session::new(Config {
        rng_seed: 6,
        ..Config::default()
    });
    let now = Instant::ZERO;
    let t = session
        .add_torrent(
            now,
            AddTorrent::new(info.clone()).with_check(CheckMode::Resume {
                data: saved,
                current_files: disk.stats(),
            }),
        )
        .unwrap();
    let mut reads = 0;
    let mut queue = poll_all(&mut session);
    while let Some(output) = queue.pop() {
        match output {
            Output::Disk(DiskCmd::Read { req, spans, .. }) => {
                reads += 1;
                let result = disk
                    .read(&spans)
                    .map(|b| DiskDone::Read(b.into()))
                    .ok_or_else(|| StorageError {
                        file: None,
                        message: "short".into(),
                    });
                session.handle_input(now, Input::DiskDone { req, result });
            }
            Output::Hash(job) => {
                let digest = digest(info, data, &job.data.concat());
                session.handle_input(
                    now,
                    Input::Hashed {
                        req: job.req,
                        digest,
                    },
                );
            }
            _ => {}
        }
        queue.extend(poll_all(&mut session));
    }
    assert!(
        !matches!(
            session.torrent_state(t),
            Some(TorrentState::Checking { .. })
        ),
        "the check finished"
    );
    (session.have(t).unwrap().clone(), reads)
}

/// Every order of the six steps of pieces 1 and 2 in which each piece's block arrives before
/// its write lands and its hash result arrives; the write and the hash complete independently
/// (on a disk worker and a hash worker), in either order.
fn orders() -> Vec<Vec<Step>> {
    let per_piece = |p: u32| {
        [
            [Step::Receive(p), Step::Write(p), Step::Hash(p)],
            [Step::Receive(p), Step::Hash(p), Step::Write(p)],
        ]
    };
    let mut out = Vec::new();
    for one in per_piece(1) {
        for two in per_piece(2) {
            // Which of the six slots piece 1's steps take: every 3-subset, as a bit mask.
            for mask in 0u32..64 {
                if mask.count_ones() != 3 {
                    continue;
                }
                let (mut i, mut j) = (0, 0);
                let order = (0..6)
                    .map(|slot| {
                        if mask & (1 << slot) != 0 {
                            i += 1;
                            one[i - 1]
                        } else {
                            j += 1;
                            two[j - 1]
                        }
                    })
                    .collect();
                out.push(order);
            }
        }
    }
    out
}

/// Runs `case`, and a restart for every moment of saving and later moment of killing; checks
/// both promises each time. Returns how many pieces each restart read, by (save, kill).
fn run_and_restarts(
    (data, info): &(Vec<u8>, Arc<Info>),
    granularity: i64,
    case: &Case<'_>,
) -> HashMap<(usize, usize), usize> {
    let disk = Disk {
        files: vec![None; info.files().len()],
        clock: 10_000 * SECOND + 7,
        granularity,
    };
    let moments = first_run(info, data, disk, case);
    let layout = info.layout();
    let mut reads = HashMap::new();
    for (save_at, save) in moments.iter().enumerate() {
        for (kill_at, kill) in moments.iter().enumerate().skip(save_at) {
            let what = format!(
                "{:?}: tick {}, granularity {granularity}, corrupt {}, {:?}, saved after {} \
                 steps, killed after {}",
                info.files().iter().map(|f| f.length()).collect::<Vec<_>>(),
                case.tick,
                case.corrupt,
                case.steps,
                save_at,
                kill_at
            );
            let (have, read) = restart(info, data, save.saved.clone(), &kill.disk);
            assert!(have.get(0), "piece 0 lost: {what}");
            for piece in &kill.verified {
                assert!(have.get(*piece), "piece {piece} lost: {what}");
            }
            for piece in have.iter_set() {
                let spans: Vec<FileSpan> =
                    layout.piece_spans(layout.piece(piece).unwrap()).collect();
                let start = piece as usize * PIECE;
                assert_eq!(
                    kill.disk.read(&spans).as_deref(),
                    Some(&data[start..start + PIECE]),
                    "piece {piece} trusted with bad data: {what}"
                );
            }
            reads.insert((save_at, kill_at), read);
        }
    }
    reads
}

#[test]
fn no_interleaving_of_save_and_kill_loses_a_verified_piece_or_trusts_a_bad_one() {
    let orders = orders();
    assert_eq!(orders.len(), 80);
    let layouts: [&[usize]; 2] = [&[3 * PIECE], &[2 * PIECE, PIECE]];
    // (time between steps, file time granularity): fine times and a slow download; a fast
    // download on a file system with coarse times (FAT's 2 s; a kernel tick is the same case,
    // shorter).
    let clocks = [(3 * SECOND, 1), (MS, 2 * SECOND)];
    let mut runs = 0;
    for sizes in layouts {
        let torrent = torrent(sizes);
        for (tick, granularity) in clocks {
            for corrupt in [false, true] {
                for steps in &orders {
                    let case = Case {
                        steps,
                        corrupt,
                        tick,
                    };
                    let reads = run_and_restarts(&torrent, granularity, &case);
                    // Saved once everything was verified: nothing is read again.
                    if !corrupt {
                        assert_eq!(reads[&(6, 6)], 0, "{sizes:?} {steps:?}");
                    }
                    runs += reads.len();
                }
            }
        }
    }
    assert_eq!(runs, 2 * 2 * 2 * 80 * 28);
}

#[test]
fn a_piece_written_before_the_save_and_verified_after_it_is_found_on_restart() {
    // The case that used to lose a piece: piece 1's write lands, the data is saved, its hash
    // result arrives (verified), and the process is killed before anything else is written.
    // The file's time is old by the save, so only `unverified` can tell.
    let steps = [Step::Receive(1), Step::Write(1), Step::Hash(1)];
    let case = Case {
        steps: &steps,
        corrupt: false,
        tick: 10 * SECOND,
    };
    let reads = run_and_restarts(&torrent(&[3 * PIECE]), 1, &case);
    // Piece 1 was read; piece 0 was trusted; piece 2 (never arrived) was not looked for.
    assert_eq!(reads[&(2, 3)], 1);
}

#[test]
fn a_piece_written_in_the_same_time_tick_after_the_save_is_found_on_restart() {
    // Piece 2 is verified and the data saved; piece 1 arrives, is written within the file's
    // size and in the same 2 s tick (time and size unchanged) and verified, and the process
    // is killed. Only the racy rule (the file's time is too close to the save) finds it.
    let steps = [
        Step::Receive(2),
        Step::Write(2),
        Step::Hash(2),
        Step::Receive(1),
        Step::Write(1),
        Step::Hash(1),
    ];
    let case = Case {
        steps: &steps,
        corrupt: false,
        tick: MS,
    };
    let reads = run_and_restarts(&torrent(&[3 * PIECE]), 2 * SECOND, &case);
    assert_eq!(reads[&(3, 6)], 3);
}
