//! Session tests with a minimal in-test driver: a few sessions joined by instant pipes, disk
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

/// One node: a session, its disk (the torrent's byte stream), and the events it reported.
struct Node {
    session: Session,
    disk: Vec<u8>,
    /// The torrent's files, from `DiskCmd::Open`: where each file starts in `disk`.
    info: Option<Arc<Info>>,
    events: Vec<Event>,
    /// Outputs produced while another node's outputs were being performed.
    pending: Vec<Output>,
}

struct Pair {
    now: Instant,
    nodes: Vec<Node>,
    /// (node, conn) -> (peer node, peer conn) once both ends exist.
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Bytes in flight: (to node, conn, data).
    wire: Vec<(usize, ConnId, Bytes)>,
    /// Outgoing connects waiting to be accepted: (from node, conn, to node).
    connects: Vec<(usize, ConnId, usize)>,
    /// Tampering: flip a byte of every piece payload sent by this node.
    corrupt_from: Option<usize>,
    /// A stalled node: piece payloads it sends are lost.
    stall_from: Option<usize>,
    /// An HTTP tracker answering every node's announces.
    tracker: Option<TestTracker>,
}

/// A minimal HTTP tracker: remembers the port each announce gives and answers with the other
/// announcers (compact IPv4 peers on 127.0.0.1, BEP 23), recording every query.
#[derive(Default)]
struct TestTracker {
    ports: Vec<u16>,
    queries: Vec<String>,
}

impl TestTracker {
    fn announce(&mut self, url: &str) -> HttpReply {
        let query = url.split_once('?').map_or("", |(_, q)| q).to_string();
        let port: u16 = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
            .expect("every announce carries its port");
        self.queries.push(query);
        let mut peers = Vec::new();
        for &p in self.ports.iter().filter(|&&p| p != port) {
            peers.extend_from_slice(&[127, 0, 0, 1]);
            peers.extend_from_slice(&p.to_be_bytes());
        }
        if !self.ports.contains(&port) {
            self.ports.push(port);
        }
        let mut body = Vec::new();
        let mut d = DictWriter::new(&mut body);
        d.int(b"interval", 1800);
        d.bytes(b"peers", &peers);
        d.finish();
        HttpReply {
            status: 200,
            body: body.into(),
        }
    }
}

const A_ADDR: &str = "127.0.0.1:6881";
const B_ADDR: &str = "127.0.0.1:6882";

impl Pair {
    fn new(seed: u64, disk_a: Vec<u8>, disk_b: Vec<u8>) -> Self {
        let config = |s| Config {
            rng_seed: s,
            ..Config::default()
        };
        Self::with_nodes(vec![(config(seed), disk_a), (config(seed + 1), disk_b)])
    }

    fn with_nodes(nodes: Vec<(Config, Vec<u8>)>) -> Self {
        Self {
            now: Instant::ZERO,
            nodes: nodes
                .into_iter()
                .map(|(config, disk)| Node {
                    session: Session::new(config),
                    disk,
                    info: None,
                    events: Vec::new(),
                    pending: Vec::new(),
                })
                .collect(),
            links: HashMap::new(),
            wire: Vec::new(),
            connects: Vec::new(),
            corrupt_from: None,
            stall_from: None,
            tracker: None,
        }
    }

    fn addr(node: usize) -> SocketAddr {
        match node {
            0 => A_ADDR.parse().unwrap(),
            1 => B_ADDR.parse().unwrap(),
            n => SocketAddr::from(([127, 0, 0, 1], 6881 + n as u16)),
        }
    }

    fn node_at(addr: SocketAddr) -> usize {
        usize::from(addr.port() - 6881)
    }

    /// Where span bytes of `file` at `offset` lie in node `n`'s disk.
    fn disk_offset(&self, n: usize, file: usize, offset: u64) -> usize {
        let info = self.nodes[n]
            .info
            .as_ref()
            .expect("DiskCmd::Open came first");
        (info.files()[file].offset() + offset) as usize
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
                Output::Connect { conn, addr } => {
                    self.connects.push((n, conn, Self::node_at(addr)));
                }
                Output::Send { conn, head, body } => {
                    if let Some(&(peer, peer_conn)) = self.links.get(&(n, conn)) {
                        let mut bytes = BytesMut::from(&head[..]);
                        if let Some(body) = body {
                            if self.stall_from == Some(n) {
                                continue;
                            }
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
                        let off = self.disk_offset(n, span.file, span.offset);
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
                        let off = self.disk_offset(n, span.file, span.offset);
                        out.extend_from_slice(&self.nodes[n].disk[off..off + span.length as usize]);
                    }
                    let result = Ok(DiskDone::Read(out.into()));
                    self.feed(n, Input::DiskDone { req, result }, &mut queue);
                }
                Output::Disk(DiskCmd::Open { info, .. }) => self.nodes[n].info = Some(info),
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
                Output::Http { req, url, .. } => {
                    let reply = self
                        .tracker
                        .as_mut()
                        .map_or(Err("no tracker in this test".to_string()), |tracker| {
                            Ok(tracker.announce(&url))
                        });
                    self.feed(n, Input::HttpDone { req, result: reply }, &mut queue);
                }
                Output::SendDatagram { .. } | Output::SendLsd { .. } | Output::Resolve { .. } => {}
            }
        }
    }

    /// Delivers everything in flight until quiet, advancing time by 10 ms per round.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.step();
        }
    }

    /// Runs until `done` holds, at most `rounds` rounds; returns whether it held.
    fn run_until(&mut self, rounds: usize, mut done: impl FnMut(&Self) -> bool) -> bool {
        for _ in 0..rounds {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn step(&mut self) {
        {
            for n in 0..self.nodes.len() {
                self.drain(n);
            }
            for (n, conn, peer) in std::mem::take(&mut self.connects) {
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
            for n in 0..self.nodes.len() {
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
    // [seed uploaded, seed downloaded, leecher uploaded, leecher downloaded] per connection.
    let mut counters = [0u64; 4];
    pair.run_until(200, |p| {
        for (n, t) in [(0, seed), (1, leech)] {
            for info in p.nodes[n].session.peers(p.now, t) {
                counters[2 * n] = counters[2 * n].max(info.uploaded);
                counters[2 * n + 1] = counters[2 * n + 1].max(info.downloaded);
            }
        }
        false
    });

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
    // The connections' own counters (sampled while they lasted: the leecher parts as it
    // finishes, before its last blocks are sampled): every byte went over the one connection,
    // one way.
    let [seed_up, seed_down, leech_up, leech_down] = counters;
    assert_eq!((seed_up, seed_down, leech_up), (data.len() as u64, 0, 0));
    assert!(leech_down > 0 && leech_down <= seed_up, "{counters:?}");
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

/// A v1 multi-file torrent over `data`, cut into files of `sizes` bytes.
fn multi_file_info(data: &[u8], sizes: &[usize], piece_length: u32) -> Arc<Info> {
    Arc::new(crate::metainfo::testing::multi_file_info(
        data,
        sizes,
        piece_length,
    ))
}

fn config(seed: u64) -> Config {
    Config {
        rng_seed: seed,
        ..Config::default()
    }
}

fn finished(pair: &Pair, node: usize, torrent: TorrentId) -> bool {
    pair.nodes[node]
        .session
        .torrent_status(torrent)
        .is_some_and(|s| s.finished)
}

/// Adds `info` to every node (the nodes in `seeds` with every piece) and drains.
fn add_everywhere(pair: &mut Pair, info: &Arc<Info>, seeds: &[usize]) -> Vec<TorrentId> {
    let pieces = info.layout().piece_count();
    let ids = (0..pair.nodes.len())
        .map(|n| {
            let add = AddTorrent::new(info.clone());
            let add = if seeds.contains(&n) {
                add.with_have(Bitfield::full(pieces))
            } else {
                add
            };
            pair.nodes[n].session.add_torrent(pair.now, add).unwrap()
        })
        .collect();
    for n in 0..pair.nodes.len() {
        pair.drain(n);
    }
    ids
}

#[test]
fn a_swarm_of_one_seed_and_three_leechers_completes_with_two_upload_slots() {
    let data = payload(24 * 16384 + 500);
    let info = info_for(&data, 32768);
    let mut seed_config = config(10);
    seed_config.unchoke_slots = 2;
    let mut nodes = vec![(seed_config, data.clone())];
    for n in 1..4 {
        nodes.push((config(10 + n), vec![0; data.len()]));
    }
    let mut pair = Pair::with_nodes(nodes);
    let ids = add_everywhere(&mut pair, &info, &[0]);
    // Leechers 1..3 connect to the seed; 3 also to 1 and 2, so blocks flow between leechers.
    for (from, to) in [(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)] {
        pair.nodes[from]
            .session
            .connect(pair.now, ids[from], Pair::addr(to))
            .unwrap();
        pair.drain(from);
    }
    let mut most_unchoked = 0;
    let done = pair.run_until(20_000, |p| {
        most_unchoked = most_unchoked.max(
            p.nodes[0]
                .session
                .peers(p.now, ids[0])
                .iter()
                .filter(|i| !i.am_choking)
                .count(),
        );
        (1..4).all(|n| finished(p, n, ids[n]))
    });
    assert!(done, "every leecher finished");
    for n in 1..4 {
        assert!(pair.nodes[n].disk == data, "node {n} holds the payload");
    }
    assert!(most_unchoked <= 2, "the seed never exceeds its slots");
    let uploaded: Vec<u64> = (0..4)
        .map(|n| {
            pair.nodes[n]
                .session
                .torrent_status(ids[n])
                .unwrap()
                .uploaded
        })
        .collect();
    assert!(
        uploaded[0] >= data.len() as u64,
        "the seed uploaded at least one copy: {uploaded:?}"
    );
    let total = uploaded.iter().sum::<u64>();
    let needed = 3 * data.len() as u64;
    assert!(
        total >= needed && total <= needed + 8 * 16384,
        "each leecher got every byte, endgame duplicated at most a few blocks: {uploaded:?}"
    );
}

#[test]
fn a_stalled_seeds_blocks_return_to_the_pool_and_come_from_another_seed() {
    let data = payload(16 * 16384);
    let info = info_for(&data, 65536);
    let mut leech_config = config(21);
    leech_config.peer.request_timeout = Duration::from_secs(2);
    let mut pair = Pair::with_nodes(vec![
        (config(20), data.clone()),
        (leech_config, vec![0; data.len()]),
        (config(22), data.clone()),
    ]);
    pair.stall_from = Some(0);
    let ids = add_everywhere(&mut pair, &info, &[0, 2]);
    let stalled = pair.nodes[1]
        .session
        .connect(pair.now, ids[1], Pair::addr(0))
        .unwrap();
    pair.run(50);
    let picker_holds = |pair: &Pair| {
        pair.nodes[1]
            .session
            .torrents
            .get(ids[1].0)
            .unwrap()
            .picker
            .requested_from(stalled)
    };
    let before = picker_holds(&pair);
    assert!(before > 1, "requests went to the stalled seed");
    let snubbed = |pair: &Pair| {
        pair.nodes[1]
            .session
            .peers(pair.now, ids[1])
            .iter()
            .any(|p| p.conn == stalled && p.snubbed)
    };
    assert!(!snubbed(&pair));
    assert!(pair.run_until(300, snubbed), "the request timeout snubs it");
    // A snubbed peer keeps one request in flight (to notice when it recovers).
    assert!(
        picker_holds(&pair) <= 1,
        "its {before} blocks are back in the pool"
    );
    assert!(!finished(&pair, 1, ids[1]));
    // A healthy seed arrives and serves everything.
    pair.nodes[1]
        .session
        .connect(pair.now, ids[1], Pair::addr(2))
        .unwrap();
    assert!(pair.run_until(2_000, |p| finished(p, 1, ids[1])));
    assert!(pair.nodes[1].disk == data);
    assert_eq!(
        pair.nodes[2]
            .session
            .torrent_status(ids[2])
            .unwrap()
            .uploaded,
        data.len() as u64,
        "the healthy seed sent every block"
    );
}

#[test]
fn an_upload_limit_paces_the_seed() {
    let data = payload(32 * 16384);
    let info = info_for(&data, 65536);
    let mut seed_config = config(30);
    seed_config.upload_rate_limit = 128 * 1024;
    let mut pair = Pair::with_nodes(vec![
        (seed_config, data.clone()),
        (config(31), vec![0; data.len()]),
    ]);
    let ids = add_everywhere(&mut pair, &info, &[0]);
    pair.nodes[1]
        .session
        .connect(pair.now, ids[1], Pair::addr(0))
        .unwrap();
    assert!(pair.run_until(2_000, |p| finished(p, 1, ids[1])));
    assert!(pair.nodes[1].disk == data);
    // 512 KiB at 128 KiB/s with a 26 KiB burst: at least 3.7 s, and not much more than 4 s.
    let elapsed = pair.now - Instant::ZERO;
    assert!(
        elapsed >= Duration::from_millis(3700) && elapsed <= Duration::from_millis(4600),
        "took {elapsed:?}"
    );
}

#[test]
fn a_per_torrent_download_limit_paces_the_leecher() {
    let data = payload(16 * 16384);
    let info = info_for(&data, 65536);
    let mut pair = Pair::new(40, data.clone(), vec![0; data.len()]);
    let ids = add_everywhere(&mut pair, &info, &[0]);
    pair.nodes[1]
        .session
        .set_torrent_limits(pair.now, ids[1], 0, 64 * 1024)
        .unwrap();
    pair.drain(1);
    let session = &pair.nodes[1].session;
    assert_eq!(session.torrent_limits(ids[1]), Some((0, 64 * 1024)));
    assert_eq!(session.is_sequential(ids[1]), Some(false));
    pair.nodes[1]
        .session
        .connect(pair.now, ids[1], Pair::addr(0))
        .unwrap();
    assert!(pair.run_until(2_000, |p| finished(p, 1, ids[1])));
    // 256 KiB at 64 KiB/s with a one-block burst: about 3.75 s.
    let elapsed = pair.now - Instant::ZERO;
    assert!(
        elapsed >= Duration::from_millis(3500) && elapsed <= Duration::from_millis(4500),
        "took {elapsed:?}"
    );
    assert_eq!(
        pair.nodes[1].session.set_torrent_limits(
            pair.now,
            TorrentId(crate::slots::SlotKey {
                slot: 9,
                generation: 9
            }),
            0,
            0
        ),
        Err(CommandError::UnknownTorrent)
    );
}

#[test]
fn skipped_files_are_not_downloaded_and_the_torrent_finishes_without_them() {
    // Three files over 6 pieces of 32 KiB: f0 = pieces 0-1, f1 = pieces 2-3 (and the first
    // bytes of piece 4), f2 = the rest of piece 4 and piece 5.
    let piece = 32768;
    let sizes = [2 * piece, 2 * piece + 100, 2 * piece - 100];
    let data = payload(6 * piece);
    let info = multi_file_info(&data, &sizes, piece as u32);
    let mut pair = Pair::new(50, data.clone(), vec![0; data.len()]);
    let ids = add_everywhere(&mut pair, &info, &[0]);
    pair.nodes[1]
        .session
        .set_file_priority(pair.now, ids[1], 1, Priority::Skip)
        .unwrap();
    pair.drain(1);
    assert_eq!(
        pair.nodes[1]
            .session
            .set_file_priority(pair.now, ids[1], 3, Priority::Skip),
        Err(CommandError::FileOutOfRange { file: 3, files: 3 })
    );
    pair.nodes[1]
        .session
        .connect(pair.now, ids[1], Pair::addr(0))
        .unwrap();
    assert!(pair.run_until(1_000, |p| finished(p, 1, ids[1])));
    pair.run(20);
    let have = pair.nodes[1].session.have(ids[1]).unwrap().clone();
    assert_eq!(
        (0..6).map(|i| have.get(i)).collect::<Vec<_>>(),
        [true, true, false, false, true, true],
        "piece 4 is shared with the wanted f2"
    );
    let finished_events = pair.nodes[1]
        .events
        .iter()
        .filter(|e| matches!(e, Event::TorrentFinished { .. }))
        .count();
    assert_eq!(finished_events, 1);
    // Wanting the file again resumes the download.
    pair.nodes[1]
        .session
        .set_file_priority(pair.now, ids[1], 1, Priority::Normal)
        .unwrap();
    assert!(!finished(&pair, 1, ids[1]));
    pair.drain(1);
    assert!(pair.run_until(1_000, |p| finished(p, 1, ids[1])));
    assert!(pair.nodes[1].disk == data);
}

/// Regression: when a peer's have-none and the haves that completed its set arrived in one
/// read, the session judged "the peer is now a seed" from the peer's set at the end of the
/// batch instead of at each message, and the picker's availability counts went below zero
/// (a panic in debug builds, corrupt counts in release). Same for a bitfield followed by haves
/// and then a disconnect.
#[test]
fn haves_completing_a_set_in_one_read_keep_availability_exact() {
    let data = payload(8 * 16384);
    let info = info_for(&data, 16384);
    for fast in [true, false] {
        let mut s = Session::new(Config::default());
        let torrent = s
            .add_torrent(Instant::ZERO, AddTorrent::new(info.clone()))
            .unwrap();
        let _ = std::iter::from_fn(|| s.poll_output()).count();
        let conn = s.accept(Instant::ZERO, Pair::addr(0)).unwrap();
        let reserved = if fast { Reserved::FAST } else { Reserved::NONE };
        let mut bytes = BytesMut::new();
        Handshake::new(reserved, &info.hashes(), PeerId([7; 20])).encode(&mut bytes);
        let first = if fast {
            crate::wire::Message::HaveNone
        } else {
            crate::wire::Message::Bitfield(Bytes::from_static(&[0b1000_0000]))
        };
        let _ = first.encode(&mut bytes);
        for piece in 0..8 {
            let _ = crate::wire::Message::Have(piece).encode(&mut bytes);
        }
        s.handle_input(Instant::ZERO, Input::Received { conn, data: bytes });
        let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Event(Event::PeerDisconnected { .. }))),
            "the peer stays connected"
        );
        let t = s.torrents.get(torrent.0).unwrap();
        for piece in 0..8 {
            assert_eq!(
                t.picker.availability(piece),
                1,
                "piece {piece}, fast {fast}"
            );
        }
        assert!(s.disconnect(Instant::ZERO, conn));
        let _ = std::iter::from_fn(|| s.poll_output()).count();
        let t = s.torrents.get(torrent.0).unwrap();
        for piece in 0..8 {
            assert_eq!(
                t.picker.availability(piece),
                0,
                "piece {piece} after leaving"
            );
        }
    }
}

#[test]
fn peers_found_through_an_http_tracker_exchange_the_torrent() {
    let data = payload(6 * 16384 + 77);
    let info = info_for(&data, 16384);
    let pieces = info.layout().piece_count();
    let config = |seed: u64, port: u16| Config {
        rng_seed: seed,
        listen_port: Some(port),
        ..Config::default()
    };
    let mut pair = Pair::with_nodes(vec![
        (config(10, 6881), data.clone()),
        (config(11, 6882), vec![0; data.len()]),
    ]);
    pair.tracker = Some(TestTracker::default());
    let tiers = vec![vec!["http://127.0.0.1:6969/announce".to_string()]];
    pair.nodes[0]
        .session
        .add_torrent(
            pair.now,
            AddTorrent::new(info.clone())
                .with_have(Bitfield::full(pieces))
                .with_trackers(tiers.clone()),
        )
        .unwrap();
    pair.drain(0);
    let leech = pair.nodes[1]
        .session
        .add_torrent(pair.now, AddTorrent::new(info.clone()).with_trackers(tiers))
        .unwrap();
    pair.drain(1);
    pair.run(300);

    assert!(
        pair.nodes[1].disk == data,
        "the leecher found the seed and downloaded"
    );
    let tracker = pair.tracker.as_ref().unwrap();
    // RFC 3986: unreserved bytes stay as they are, every other byte is %XX.
    let hash: String = info
        .hashes()
        .v1()
        .unwrap()
        .0
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    assert!(
        tracker.queries[0].contains(&format!("info_hash={hash}")),
        "{}",
        tracker.queries[0]
    );
    assert!(tracker.queries.iter().any(|q| q.contains("event=started")));
    // The leecher finished after starting incomplete: it says `completed`, once.
    let completed = tracker
        .queries
        .iter()
        .filter(|q| q.contains("event=completed"))
        .count();
    assert_eq!(completed, 1, "{:?}", tracker.queries);
    assert!(pair.nodes[1].events.iter().any(|e| matches!(
        e,
        Event::TrackerAnnounced { torrent, peers: 1, .. } if *torrent == leech
    )));
}

/// Regression (found against aria2 1.36, which sends its bitfield or have-all twice in a row,
/// or a bitfield after have-none): a repeated announcement adds its pieces like haves instead
/// of closing the connection, and the picker's counts stay exact.
#[test]
fn a_repeated_bitfield_is_read_as_haves() {
    let data = payload(8 * 16384);
    let info = info_for(&data, 16384);
    for fast in [true, false] {
        let mut s = Session::new(Config::default());
        let torrent = s
            .add_torrent(Instant::ZERO, AddTorrent::new(info.clone()))
            .unwrap();
        let _ = std::iter::from_fn(|| s.poll_output()).count();
        let conn = s.accept(Instant::ZERO, Pair::addr(0)).unwrap();
        let reserved = if fast { Reserved::FAST } else { Reserved::NONE };
        let mut bytes = BytesMut::new();
        Handshake::new(reserved, &info.hashes(), PeerId([7; 20])).encode(&mut bytes);
        let first = if fast {
            crate::wire::Message::HaveNone
        } else {
            crate::wire::Message::Bitfield(Bytes::from_static(&[0b1000_0000]))
        };
        let _ = first.encode(&mut bytes);
        let _ = crate::wire::Message::Interested.encode(&mut bytes);
        let _ =
            crate::wire::Message::Bitfield(Bytes::from_static(&[0b0011_0000])).encode(&mut bytes);
        let _ =
            crate::wire::Message::Bitfield(Bytes::from_static(&[0b0011_0001])).encode(&mut bytes);
        s.handle_input(Instant::ZERO, Input::Received { conn, data: bytes });
        let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Event(Event::PeerDisconnected { .. }))),
            "the peer stays connected (fast {fast})"
        );
        let t = s.torrents.get(torrent.0).unwrap();
        let want: [u32; 8] = if fast {
            [0, 0, 1, 1, 0, 0, 0, 1]
        } else {
            [1, 0, 1, 1, 0, 0, 0, 1]
        };
        for (piece, &count) in want.iter().enumerate() {
            assert_eq!(
                t.picker.availability(piece as u32),
                count,
                "piece {piece}, fast {fast}"
            );
        }
        assert!(s.disconnect(Instant::ZERO, conn));
        let _ = std::iter::from_fn(|| s.poll_output()).count();
        let t = s.torrents.get(torrent.0).unwrap();
        for piece in 0..8 {
            assert_eq!(
                t.picker.availability(piece),
                0,
                "piece {piece} after leaving"
            );
        }
    }
}
