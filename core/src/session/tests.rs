//! Session tests with a minimal in-test driver: two sessions joined by an instant pipe, disk
//! and hashing done inline. The conformance-tests simulator does this with latency, bandwidth
//! and many nodes; these tests pin down the session's own contract.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};

use super::*;
use crate::bencode::DictWriter;
use crate::metainfo::Info;
use crate::time::Duration;

/// A v1 single-file torrent over `data`.
fn info_for(data: &[u8], piece_length: u32) -> Arc<Info> {
    let mut pieces = Vec::new();
    for chunk in data.chunks(piece_length as usize) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", data.len() as i64);
    d.bytes(b"name", b"test.bin");
    d.int(b"piece length", i64::from(piece_length));
    d.bytes(b"pieces", &pieces);
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("test torrent is valid"))
}

/// One node: a session, its single-file disk, and the events it reported.
struct Node {
    session: Session,
    disk: Vec<u8>,
    events: Vec<Event>,
    /// Outputs produced while another node's outputs were being performed.
    pending: Vec<Output>,
}

struct Pair {
    now: Instant,
    nodes: [Node; 2],
    /// (node, conn) -> (peer node, peer conn) once both ends exist.
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Bytes in flight: (to node, conn, data).
    wire: Vec<(usize, ConnId, Bytes)>,
    /// Outgoing connects waiting to be accepted by the other node.
    connects: Vec<(usize, ConnId)>,
    /// Tampering: flip a byte of every piece payload sent by this node.
    corrupt_from: Option<usize>,
}

const A_ADDR: &str = "127.0.0.1:6881";
const B_ADDR: &str = "127.0.0.1:6882";

impl Pair {
    fn new(seed: u64, disk_a: Vec<u8>, disk_b: Vec<u8>) -> Self {
        let node = |s: u64, disk| Node {
            session: Session::new(Config {
                rng_seed: s,
                ..Config::default()
            }),
            disk,
            events: Vec::new(),
            pending: Vec::new(),
        };
        Self {
            now: Instant::ZERO,
            nodes: [node(seed, disk_a), node(seed + 1, disk_b)],
            links: HashMap::new(),
            wire: Vec::new(),
            connects: Vec::new(),
            corrupt_from: None,
        }
    }

    fn addr(node: usize) -> SocketAddr {
        [A_ADDR, B_ADDR][node].parse().unwrap()
    }

    /// Feeds an input to node `n` and takes its outputs at once, as the contract requires.
    fn feed(&mut self, n: usize, input: Input, queue: &mut VecDeque<Output>) {
        self.nodes[n].session.handle_input(self.now, input);
        queue.extend(std::iter::from_fn(|| self.nodes[n].session.poll_output()));
    }

    /// Performs every output of node `n`, and the outputs those cause, until quiet.
    fn drain(&mut self, n: usize) {
        let mut queue: VecDeque<Output> = self.nodes[n].pending.drain(..).collect();
        queue.extend(std::iter::from_fn(|| self.nodes[n].session.poll_output()));
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Connect { conn, .. } => self.connects.push((n, conn)),
                Output::Send { conn, head, body } => {
                    if let Some(&(peer, peer_conn)) = self.links.get(&(n, conn)) {
                        let mut bytes = BytesMut::from(&head[..]);
                        if let Some(body) = body {
                            let mut body = BytesMut::from(&body[..]);
                            if self.corrupt_from == Some(n) {
                                body[0] ^= 0xff;
                            }
                            bytes.extend_from_slice(&body);
                        }
                        self.wire.push((peer, peer_conn, bytes.freeze()));
                    }
                }
                Output::Close { conn } => {
                    if let Some((peer, peer_conn)) = self.links.remove(&(n, conn)) {
                        self.links.remove(&(peer, peer_conn));
                        let mut peer_queue = VecDeque::new();
                        self.feed(peer, Input::Closed { conn: peer_conn }, &mut peer_queue);
                        self.nodes[peer].pending.extend(peer_queue);
                    }
                }
                Output::Disk(DiskCmd::Write {
                    req, spans, data, ..
                }) => {
                    let mut at = 0;
                    for span in spans {
                        let off = span.offset as usize;
                        let len = span.length as usize;
                        self.nodes[n].disk[off..off + len].copy_from_slice(&data[at..at + len]);
                        at += len;
                    }
                    let result = Ok(DiskDone::Written);
                    self.feed(n, Input::DiskDone { req, result }, &mut queue);
                }
                Output::Disk(DiskCmd::Read { req, spans, .. }) => {
                    let mut out = Vec::new();
                    for span in spans {
                        let off = span.offset as usize;
                        out.extend_from_slice(&self.nodes[n].disk[off..off + span.length as usize]);
                    }
                    let result = Ok(DiskDone::Read(out.into()));
                    self.feed(n, Input::DiskDone { req, result }, &mut queue);
                }
                Output::Disk(_) => {}
                Output::Hash(job) => {
                    let mut h = Sha1::new();
                    for b in &job.data {
                        h.update(b);
                    }
                    let digest = Digest::Sha1(h.finalize().into());
                    self.feed(
                        n,
                        Input::Hashed {
                            req: job.req,
                            digest,
                        },
                        &mut queue,
                    );
                }
                Output::Event(e) => self.nodes[n].events.push(e),
            }
        }
    }

    /// Delivers everything in flight until quiet, advancing time by 10 ms per round.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.drain(0);
            self.drain(1);
            for (n, conn) in std::mem::take(&mut self.connects) {
                let peer = 1 - n;
                let accepted = self.nodes[peer]
                    .session
                    .accept(self.now, Self::addr(n))
                    .expect("under the connection limit");
                self.links.insert((n, conn), (peer, accepted));
                self.links.insert((peer, accepted), (n, conn));
                self.nodes[n]
                    .session
                    .handle_input(self.now, Input::Connected { conn });
                self.drain(n);
            }
            for (to, conn, data) in std::mem::take(&mut self.wire) {
                self.nodes[to].session.handle_input(
                    self.now,
                    Input::Received {
                        conn,
                        data: BytesMut::from(&data[..]),
                    },
                );
                self.drain(to);
                self.nodes[to]
                    .session
                    .handle_input(self.now, Input::Flushed { conn });
                self.drain(to);
            }
            self.now += Duration::from_millis(10);
            for n in 0..2 {
                if self.nodes[n]
                    .session
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.nodes[n].session.handle_timeout(self.now);
                    self.drain(n);
                }
            }
        }
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_leecher_downloads_everything_from_a_seed() {
    let data = payload(5 * 32768 + 1000);
    let info = info_for(&data, 32768);
    let pieces = info.layout().piece_count();
    let mut pair = Pair::new(1, data.clone(), vec![0; data.len()]);
    let seed = pair.nodes[0]
        .session
        .add_torrent(
            pair.now,
            AddTorrent::new(info.clone()).with_have(Bitfield::full(pieces)),
        )
        .unwrap();
    let leech = pair.nodes[1]
        .session
        .add_torrent(pair.now, AddTorrent::new(info.clone()))
        .unwrap();
    pair.drain(0);
    pair.drain(1);
    pair.nodes[1]
        .session
        .connect(pair.now, leech, Pair::addr(0))
        .unwrap();
    pair.run(200);

    assert!(
        pair.nodes[1].disk == data,
        "the leecher's disk holds the payload"
    );
    let status = pair.nodes[1].session.torrent_status(leech).unwrap();
    assert!(status.finished);
    assert_eq!(status.pieces_have, pieces);
    assert_eq!(status.downloaded, data.len() as u64);
    assert_eq!(
        pair.nodes[0].session.torrent_status(seed).unwrap().uploaded,
        data.len() as u64
    );
    let verified = pair.nodes[1]
        .events
        .iter()
        .filter(|e| matches!(e, Event::PieceVerified { .. }))
        .count();
    assert_eq!(verified, pieces as usize);
    assert!(pair.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::TorrentFinished { torrent } if *torrent == leech)));
}

#[test]
fn corrupt_pieces_fail_the_hash_and_are_not_kept() {
    let data = payload(3 * 16384);
    let info = info_for(&data, 16384);
    let mut pair = Pair::new(2, data.clone(), vec![0; data.len()]);
    pair.corrupt_from = Some(0);
    pair.nodes[0]
        .session
        .add_torrent(
            pair.now,
            AddTorrent::new(info.clone()).with_have(Bitfield::full(3)),
        )
        .unwrap();
    let leech = pair.nodes[1]
        .session
        .add_torrent(pair.now, AddTorrent::new(info))
        .unwrap();
    pair.drain(0);
    pair.drain(1);
    pair.nodes[1]
        .session
        .connect(pair.now, leech, Pair::addr(0))
        .unwrap();
    pair.run(20);
    let status = pair.nodes[1].session.torrent_status(leech).unwrap();
    assert_eq!(status.pieces_have, 0);
    assert!(pair.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::HashFailed { .. })));
}

#[test]
fn handshake_for_an_unknown_torrent_is_refused() {
    let mut s = Session::new(Config::default());
    let conn = s.accept(Instant::ZERO, Pair::addr(0)).unwrap();
    let mut hs = BytesMut::new();
    Handshake::new(
        Reserved::NONE,
        &InfoHashes::V1(crate::id::InfoHashV1([9; 20])),
        PeerId([1; 20]),
    )
    .encode(&mut hs);
    s.handle_input(Instant::ZERO, Input::Received { conn, data: hs });
    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(matches!(outputs[0], Output::Close { conn: c } if c == conn));
    assert!(matches!(
        &outputs[1],
        Output::Event(Event::PeerDisconnected {
            reason: DisconnectReason::UnknownTorrent,
            ..
        })
    ));
    assert_eq!(s.connection_count(), 0);
    // Inputs for the closed connection's id are ignored.
    s.handle_input(
        Instant::ZERO,
        Input::Received {
            conn,
            data: BytesMut::from(&b"x"[..]),
        },
    );
    assert!(s.poll_output().is_none());
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let mut s = Session::new(Config::default());
    let conn = s.accept(Instant::ZERO, Pair::addr(0)).unwrap();
    let deadline = s.poll_timeout().expect("a handshake deadline");
    assert_eq!(
        deadline,
        Instant::ZERO + PeerConfig::DEFAULT.handshake_timeout
    );
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(s.poll_output().is_none(), "nothing happens early");
    s.handle_timeout(deadline);
    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(matches!(
        &outputs[1],
        Output::Event(Event::PeerDisconnected { conn: c, reason: DisconnectReason::HandshakeTimeout, .. }) if *c == conn
    ));
}

/// Regression: the flood check compared the request queue (never above `max`) with `2 * max`,
/// so a peer requesting without end while choked was never cut off.
#[test]
fn a_request_flood_while_choked_is_cut_off() {
    let data = payload(4 * 16384);
    let info = info_for(&data, 16384);
    let mut s = Session::new(Config::default());
    s.add_torrent(
        Instant::ZERO,
        AddTorrent::new(info.clone()).with_have(Bitfield::full(4)),
    )
    .unwrap();
    let _ = std::iter::from_fn(|| s.poll_output()).count();
    let conn = s.accept(Instant::ZERO, Pair::addr(0)).unwrap();
    let mut bytes = BytesMut::new();
    Handshake::new(Reserved::NONE, &info.hashes(), PeerId([1; 20])).encode(&mut bytes);
    s.handle_input(Instant::ZERO, Input::Received { conn, data: bytes });
    let _ = std::iter::from_fn(|| s.poll_output()).count();
    let max = PeerConfig::DEFAULT.max_inbound_requests;
    let request = BlockRequest {
        index: 0,
        begin: 0,
        length: 16384,
    };
    let mut flood = BytesMut::new();
    for _ in 0..max {
        let _ = crate::wire::Message::Request(request).encode(&mut flood);
    }
    s.handle_input(Instant::ZERO, Input::Received { conn, data: flood });
    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::PeerDisconnected { .. }))),
        "requests that may have crossed a choke are tolerated"
    );
    let mut more = BytesMut::new();
    let _ = crate::wire::Message::Request(request).encode(&mut more);
    s.handle_input(Instant::ZERO, Input::Received { conn, data: more });
    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Event(Event::PeerDisconnected {
            reason: DisconnectReason::Violation(crate::peer::Violation::RequestFlood),
            ..
        })
    )));
}
