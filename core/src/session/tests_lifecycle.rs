//! Lifecycle tests on one session with an inline disk and hasher: checking, resume data,
//! pause and resume, file progress. Swarm-level behaviour (smart ban, storage errors during a
//! download, write back-pressure) is tested in the conformance simulator.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};

use super::*;
use crate::metainfo::Info;
use crate::resume::{FileStat, ResumeData};
use crate::wire::Message;

const PIECE: usize = 16384;

/// A multi-file v1 torrent over `data`, cut into files of `sizes` bytes.
fn info_for(data: &[u8], sizes: &[usize]) -> Arc<Info> {
    Arc::new(crate::metainfo::testing::multi_file_info(
        data,
        sizes,
        PIECE as u32,
    ))
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
}

/// One session, its files (`None`: missing) and what it reported.
struct Node {
    session: Session,
    now: Instant,
    files: Vec<Option<Vec<u8>>>,
    events: Vec<Event>,
    /// The most disk reads outstanding at once.
    max_reads_in_flight: usize,
    /// Sends per connection.
    sent: Vec<(ConnId, Bytes)>,
    closed: Vec<ConnId>,
}

impl Node {
    fn new(files: Vec<Option<Vec<u8>>>) -> Self {
        Self {
            session: Session::new(Config {
                rng_seed: 3,
                ..Config::default()
            }),
            now: Instant::ZERO,
            files,
            events: Vec::new(),
            max_reads_in_flight: 0,
            sent: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// Performs every output, feeding disk and hash results back, until quiet. Reads complete
    /// in order, one batch of outputs at a time, so several are in flight together.
    fn drain(&mut self) {
        let mut queue: VecDeque<Output> =
            std::iter::from_fn(|| self.session.poll_output()).collect();
        let mut reads: VecDeque<(RequestId, Result<DiskDone, StorageError>)> = VecDeque::new();
        loop {
            while let Some(output) = queue.pop_front() {
                match output {
                    Output::Disk(DiskCmd::Read { req, spans, .. }) => {
                        let mut out = Vec::new();
                        let mut result = Ok(());
                        for s in spans {
                            match self.files[s.file].as_ref() {
                                Some(f) if f.len() as u64 >= s.offset + u64::from(s.length) => {
                                    let at = s.offset as usize;
                                    out.extend_from_slice(&f[at..at + s.length as usize]);
                                }
                                _ => {
                                    result = Err(StorageError {
                                        file: Some(s.file),
                                        message: "missing or short".into(),
                                    })
                                }
                            }
                        }
                        reads.push_back((req, result.map(|()| DiskDone::Read(out.into()))));
                        self.max_reads_in_flight = self.max_reads_in_flight.max(reads.len());
                    }
                    Output::Hash(job) => {
                        let mut h = Sha1::new();
                        for b in &job.data {
                            h.update(b);
                        }
                        let digest = Digest::Sha1(h.finalize().into());
                        self.session.handle_input(
                            self.now,
                            Input::Hashed {
                                req: job.req,
                                digest,
                            },
                        );
                        queue.extend(std::iter::from_fn(|| self.session.poll_output()));
                    }
                    Output::Event(e) => self.events.push(e),
                    Output::Send { conn, head, .. } => self.sent.push((conn, head)),
                    Output::Close { conn } => self.closed.push(conn),
                    _ => {}
                }
            }
            let Some((req, result)) = reads.pop_front() else {
                break;
            };
            self.session
                .handle_input(self.now, Input::DiskDone { req, result });
            queue.extend(std::iter::from_fn(|| self.session.poll_output()));
        }
    }

    fn add(&mut self, add: AddTorrent) -> Result<TorrentId, AddError> {
        let id = self.session.add_torrent(self.now, add);
        self.drain();
        id
    }

    fn stats(&self) -> Vec<Option<FileStat>> {
        self.files
            .iter()
            .map(|f| {
                f.as_ref().map(|f| FileStat {
                    size: f.len() as u64,
                    mtime: 1000 + f.len() as i64,
                })
            })
            .collect()
    }
}

/// Four pieces over two files: f0 = pieces 0-1 and half of 2, f1 = the rest.
fn fixture() -> (Vec<u8>, Arc<Info>, [usize; 2]) {
    let data = payload(4 * PIECE - 100);
    let sizes = [2 * PIECE + PIECE / 2, 2 * PIECE - PIECE / 2 - 100];
    let info = info_for(&data, &sizes);
    (data, info, sizes)
}

fn split(data: &[u8], sizes: [usize; 2]) -> Vec<Option<Vec<u8>>> {
    vec![
        Some(data[..sizes[0]].to_vec()),
        Some(data[sizes[0]..].to_vec()),
    ]
}

fn have_list(s: &Session, t: TorrentId) -> Vec<bool> {
    let have = s.have(t).unwrap();
    (0..have.len()).map(|i| have.get(i)).collect()
}

#[test]
fn a_full_check_finds_the_good_pieces_and_counts_missing_files_as_missing() {
    let (data, info, sizes) = fixture();
    // Piece 1 corrupt; f1 missing (so pieces 2 and 3, which hold f1 bytes, are missing).
    let mut files = split(&data, sizes);
    files[0].as_mut().unwrap()[PIECE + 5] ^= 1;
    files[1] = None;
    let mut node = Node::new(files);
    let t = node
        .add(AddTorrent::new(info.clone()).with_check(CheckMode::Full))
        .unwrap();
    assert_eq!(have_list(&node.session, t), [true, false, false, false]);
    let status = node.session.torrent_status(t).unwrap();
    assert_eq!(status.state, TorrentState::Downloading);
    assert!(!status.finished);
    assert!(node.max_reads_in_flight >= 2, "reads overlap");
    assert!(node.max_reads_in_flight <= checking::MAX_CHECKS_IN_FLIGHT as usize);
    // No storage error: missing files are simply missing.
    assert!(!node
        .events
        .iter()
        .any(|e| matches!(e, Event::StorageFailed { .. })));
    let states: Vec<&TorrentState> = node
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            &TorrentState::Checking {
                checked: 0,
                total: 4
            },
            &TorrentState::Downloading
        ]
    );
    let progress: Vec<u32> = node
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CheckingProgress { checked, total, .. } => {
                assert_eq!(*total, 4);
                Some(*checked)
            }
            _ => None,
        })
        .collect();
    assert_eq!(progress, [1, 2, 3, 4]);
    // Per-file progress: piece 0 is all in f0.
    assert_eq!(node.session.file_progress(t), Some(vec![PIECE as u64, 0]));
}

#[test]
fn a_full_check_of_complete_files_seeds() {
    let (data, info, sizes) = fixture();
    let mut node = Node::new(split(&data, sizes));
    let t = node
        .add(AddTorrent::new(info).with_check(CheckMode::Full))
        .unwrap();
    let status = node.session.torrent_status(t).unwrap();
    assert_eq!(status.state, TorrentState::Seeding);
    assert_eq!(status.pieces_have, 4);
    assert_eq!(status.left, 0);
    assert_eq!(
        node.session.file_progress(t),
        Some(sizes.iter().map(|&s| s as u64).collect())
    );
}

#[test]
fn resume_data_is_trusted_only_for_unchanged_files() {
    let (data, info, sizes) = fixture();
    let mut node = Node::new(split(&data, sizes));
    let t = node
        .add(AddTorrent::new(info.clone()).with_check(CheckMode::Full))
        .unwrap();
    // Read long after the files' times (1000 + size): not "racy".
    let saved = node
        .session
        .resume_data(t, node.stats(), 1_000_000_000_000)
        .unwrap();
    let bytes = saved.encode();
    assert!(node.session.remove_torrent(node.now, t));
    node.drain();

    // Unchanged: no read at all.
    let data_back = ResumeData::decode(&bytes).unwrap();
    node.events.clear();
    node.max_reads_in_flight = 0;
    let t = node
        .add(AddTorrent::new(info.clone()).with_check(CheckMode::Resume {
            data: data_back.clone(),
            current_files: node.stats(),
        }))
        .unwrap();
    assert_eq!(node.max_reads_in_flight, 0, "nothing was read");
    assert_eq!(node.session.torrent_state(t), Some(TorrentState::Seeding));
    assert!(node.session.remove_torrent(node.now, t));
    node.drain();

    // f1 changed (its size, so its stat): the pieces in it (2 and 3) are checked, and the
    // damage found; f0's pieces are trusted.
    node.files[1].as_mut().unwrap().truncate(10);
    node.events.clear();
    let t = node
        .add(AddTorrent::new(info.clone()).with_check(CheckMode::Resume {
            data: data_back.clone(),
            current_files: node.stats(),
        }))
        .unwrap();
    assert!(node.max_reads_in_flight > 0, "the files were read");
    assert!(node.events.iter().any(|e| matches!(
        e,
        Event::CheckingProgress {
            checked: 2,
            total: 2,
            ..
        }
    )));
    assert_eq!(have_list(&node.session, t), [true, true, false, false]);
    assert!(node.session.remove_torrent(node.now, t));
    node.drain();

    // Resume data of another torrent is refused.
    let other = info_for(&payload(PIECE), &[PIECE]);
    assert_eq!(
        node.add(AddTorrent::new(other).with_check(CheckMode::Resume {
            data: data_back,
            current_files: vec![None],
        })),
        Err(AddError::ResumeForAnotherTorrent)
    );
}

/// Connects a peer to torrent `t` through the handshake; returns the connection.
fn connect_peer(node: &mut Node, info: &Info, addr: SocketAddr) -> ConnId {
    let conn = node.session.accept(node.now, addr).unwrap();
    let hs = Handshake::new(Reserved::FAST, &info.hashes(), PeerId([9; 20]));
    let mut buf = BytesMut::new();
    hs.encode(&mut buf);
    let _ = Message::HaveNone.encode(&mut buf);
    node.session
        .handle_input(node.now, Input::Received { conn, data: buf });
    node.drain();
    conn
}

#[test]
fn pause_closes_connections_and_refuses_new_ones_until_resumed() {
    let (data, info, sizes) = fixture();
    let mut node = Node::new(split(&data, sizes));
    let t = node
        .add(AddTorrent::new(info.clone()).with_have(Bitfield::full(4)))
        .unwrap();
    let addr: SocketAddr = "127.0.0.9:5000".parse().unwrap();
    let conn = connect_peer(&mut node, &info, addr);
    assert_eq!(node.session.torrent_status(t).unwrap().peers, 1);

    node.session.pause(node.now, t).unwrap();
    node.drain();
    assert_eq!(node.closed, [conn]);
    assert!(node.events.iter().any(|e| matches!(
        e,
        Event::PeerDisconnected { conn: c, reason: DisconnectReason::TorrentStopped, .. } if *c == conn
    )));
    assert_eq!(node.session.torrent_state(t), Some(TorrentState::Paused));
    assert_eq!(
        node.session.connect(node.now, t, addr),
        Err(ConnectError::TorrentInactive)
    );
    // An incoming peer is refused at the handshake.
    let refused = connect_peer(&mut node, &info, addr);
    assert!(node.closed.contains(&refused));
    assert_eq!(node.session.torrent_status(t).unwrap().peers, 0);
    // Pausing twice is harmless; resuming allows connections again.
    node.session.pause(node.now, t).unwrap();
    node.drain();
    node.session.resume(node.now, t).unwrap();
    node.drain();
    assert_eq!(node.session.torrent_state(t), Some(TorrentState::Seeding));
    assert!(node.session.connect(node.now, t, addr).is_ok());
    node.drain();
    assert_eq!(
        node.session.pause(
            node.now,
            TorrentId(crate::slots::SlotKey {
                slot: 77,
                generation: 0
            })
        ),
        Err(CommandError::UnknownTorrent)
    );
}

#[test]
fn a_checking_torrent_makes_no_connections_and_a_paused_check_waits() {
    let data = payload(6 * PIECE);
    let info = info_for(&data, &[6 * PIECE]);
    let mut node = Node::new(vec![Some(data)]);
    // Add and pause before the reads complete: take the outputs by hand.
    let t = node
        .session
        .add_torrent(
            node.now,
            AddTorrent::new(info.clone()).with_check(CheckMode::Full),
        )
        .unwrap();
    let mut reads = Vec::new();
    while let Some(o) = node.session.poll_output() {
        if let Output::Disk(DiskCmd::Read { req, .. }) = o {
            reads.push(req);
        }
    }
    assert_eq!(reads.len(), checking::MAX_CHECKS_IN_FLIGHT as usize);
    assert!(matches!(
        node.session.torrent_state(t),
        Some(TorrentState::Checking {
            checked: 0,
            total: 6
        })
    ));
    let addr: SocketAddr = "127.0.0.9:5000".parse().unwrap();
    assert_eq!(
        node.session.connect(node.now, t, addr),
        Err(ConnectError::TorrentInactive)
    );
    node.session.pause(node.now, t).unwrap();
    node.drain();
    // The reads in flight complete (as missing pieces here); nothing new is issued.
    for req in reads {
        let result = Err(StorageError {
            file: None,
            message: "gone".into(),
        });
        node.session
            .handle_input(node.now, Input::DiskDone { req, result });
        node.drain();
    }
    assert_eq!(node.max_reads_in_flight, 0);
    assert_eq!(node.session.torrent_state(t), Some(TorrentState::Paused));
    // Resuming checks the rest.
    node.session.resume(node.now, t).unwrap();
    node.drain();
    assert_eq!(node.max_reads_in_flight, 2);
    assert_eq!(
        have_list(&node.session, t),
        [false, false, false, false, true, true]
    );
    assert_eq!(
        node.session.torrent_state(t),
        Some(TorrentState::Downloading)
    );
}
