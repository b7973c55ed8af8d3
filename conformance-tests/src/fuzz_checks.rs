//! The checks the fuzz targets run, shared with the stable corpus-replay test.
//!
//! Each check feeds arbitrary bytes to a parser and asserts the properties that must hold for
//! any input: no panic, and for input that parses, that formatting and parsing again gives the
//! same value. `fuzz/fuzz_targets/<name>.rs` calls the check of the same name under libFuzzer
//! (`cargo +nightly fuzz run <name>`); `tests/fuzz_replay.rs` runs the same checks over the
//! committed corpus in `fuzz/corpus/<name>/` and seeded mutations of it on stable Rust, so the
//! two cannot drift apart.

use std::path::{Component, Path};
use std::sync::OnceLock;

use bitshoal_core::bencode::{self, DecodeOptions, Value};
use bitshoal_core::ext::donthave::DontHave;
use bitshoal_core::ext::holepunch::HolepunchMessage;
use bitshoal_core::ext::tex::{TexMessage, MAX_TEX_URLS, MAX_TEX_URL_LEN};
use bitshoal_core::ext::upload_only::UploadOnly;
use bitshoal_core::ext::{
    pex, MetadataAssembler, MetadataMessage, PexMessage, PexState, Progress, METADATA_PIECE_SIZE,
};
use bitshoal_core::id::{InfoHashV1, InfoHashes, PeerId};
use bitshoal_core::lsd::{LsdAnnounce, LsdAnnouncer, LsdConfig, LsdGroup, MAX_INFOHASHES};
use bitshoal_core::magnet::{Magnet, MAX_URI_LEN};
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::time::Duration;
use bitshoal_core::time::Instant;
use bitshoal_core::wire::{self, Framer, Handshake, Reserved, WireLimits};

use bitshoal_core::tracker::{
    self, AnnounceRequest, TrackerLimits, TrackerUrl, UdpClientConfig, UdpEvent, UdpRequest,
    UdpResponse, UdpTrackerClient,
};
use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::sim::{FakeConfig, NodeConfig, Sim, TestTorrent, TorrentSpec};

mod dht;
pub use dht::{dht_krpc, dht_node, TID_PLACEHOLDER};

/// A fuzz check: panics if `data` reveals a bug.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the folder under `fuzz/corpus/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("bencode", bencode),
    ("magnet", magnet),
    ("metainfo", metainfo),
    ("wire", wire),
    ("peer", peer),
    ("tracker_http", tracker_http),
    ("tracker_udp", tracker_udp),
    ("resume", resume),
    ("dht_krpc", dht_krpc),
    ("dht_node", dht_node),
    ("ext_metadata", ext_metadata),
    ("ext_pex", ext_pex),
    ("ext_misc", ext_misc),
    ("lsd", lsd),
    ("merkle_proof", merkle_proof),
];

/// Bencode: decode strictly and leniently; whatever decodes re-encodes to a strict document
/// that decodes to the same value, and a strict document is its own canonical encoding.
pub fn bencode(data: &[u8]) {
    let strict = bencode::decode(data);
    let lenient = bencode::decode_with(data, DecodeOptions::LENIENT);
    if let Ok(value) = &strict {
        assert_eq!(
            lenient.as_ref().ok(),
            Some(value),
            "strict and lenient decoding disagree"
        );
        assert_eq!(
            value.to_vec(),
            data,
            "a strictly valid document is not its own canonical encoding"
        );
        let raw = match value {
            Value::Dict(d) => d.raw(),
            Value::List(l) => l.raw(),
            _ => Some(data),
        };
        assert_eq!(raw, Some(data), "raw span of the top-level value");
    }
    for value in [strict, lenient].iter().flatten() {
        let encoded = value.to_vec();
        let again = bencode::decode(&encoded).expect("a re-encoded value decodes strictly");
        assert_eq!(&again, value, "re-encoding changed the value");
    }
}

/// Magnet links: parse (bytes as lossy UTF-8); a link that parses formats to one that parses to
/// the same magnet and formats the same again.
pub fn magnet(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(magnet) = Magnet::parse(&text) else {
        return;
    };
    let formatted = magnet.to_string();
    if formatted.len() > MAX_URI_LEN {
        // Percent-encoding can triple a value's size; such a link is over the parse limit.
        return;
    }
    let again = Magnet::parse(&formatted)
        .unwrap_or_else(|e| panic!("formatted magnet {formatted:?} does not parse: {e}"));
    assert_eq!(again, magnet, "format then parse changed the magnet");
    assert_eq!(again.to_string(), formatted, "formatting is not stable");
}

/// Metainfo: whatever parses is self-consistent. The info-hashes are the digests of the raw
/// `info` bytes, the info dictionary alone parses to the same torrent (BEP 9), the files tile
/// the layout, every piece maps onto spans inside its files, and every path stays inside the
/// download folder.
pub fn metainfo(data: &[u8]) {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    let info = meta.info();
    let raw = info.raw();
    let hashes = info.hashes();
    if let Some(v1) = hashes.v1() {
        assert_eq!(v1.0, <[u8; 20]>::from(Sha1::digest(raw)), "v1 info-hash");
    }
    if let Some(v2) = hashes.v2() {
        assert_eq!(v2.0, <[u8; 32]>::from(Sha256::digest(raw)), "v2 info-hash");
    }
    let alone = Info::from_bytes(raw).expect("the info dictionary of a valid torrent parses alone");
    assert_eq!(alone.hashes(), hashes, "info alone names the same torrent");

    let layout = info.layout();
    let mut offset = 0u64;
    for f in info.files() {
        assert_eq!(f.offset(), offset, "files lie end to end");
        offset += f.length();
        let joined = f.path().join_under(Path::new("/dl"));
        assert!(
            joined.starts_with("/dl"),
            "{joined:?} escapes the download folder"
        );
        assert!(
            joined
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
            "{joined:?} has a component other than a plain name"
        );
    }
    assert_eq!(offset, layout.total_length(), "the files cover the layout");
    // Spot-check the first and last pieces: spans add up and stay inside their files.
    let count = layout.piece_count();
    for index in [0, count / 2, count.saturating_sub(1)] {
        let Some(piece) = layout.piece(index) else {
            continue;
        };
        let mut covered = 0u64;
        for span in layout.piece_spans(piece) {
            let file = &info.files()[span.file];
            assert!(
                span.offset + u64::from(span.length) <= file.length(),
                "span past file end"
            );
            covered += u64::from(span.length);
        }
        assert_eq!(
            covered,
            u64::from(layout.piece_size(piece)),
            "spans cover the piece"
        );
    }
}

/// The wire codec: the handshake decoder and the framer take arbitrary bytes without panicking,
/// never hand out a frame over the limits, and every message they decode encodes back to the
/// bytes it came from.
pub fn wire(data: &[u8]) {
    let _ = Handshake::decode(data);
    let limits = WireLimits::DEFAULT.with_num_pieces(1000);
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        match framer.next(&mut buf) {
            Ok(Some(message)) => {
                let used = before.len() - buf.len();
                let mut encoded = BytesMut::new();
                if let Some(body) = message.encode(&mut encoded) {
                    encoded.extend_from_slice(&body);
                }
                assert_eq!(&encoded[..], &before[..used], "re-encoding {message:?}");
                let again = wire::decode(&Bytes::from(encoded.to_vec()), &limits);
                assert_eq!(
                    again,
                    Ok(wire::Decoded::Ready(message, used)),
                    "decode again"
                );
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// A peer connection: arbitrary bytes after a valid handshake, fed to a [`Session`] through the
/// simulator, never panic it or break a simulator invariant.
///
/// Input layout: byte 0 picks whether the node seeds (bit 0), the handshake's reserved bits
/// (bits 1-2), the torrent (bits 3-4: v1; v2-only; hybrid; v2-only with the leecher's piece
/// layers withheld, so BEP 52 `hashes` answers are checked), whether the node has the torrent
/// from a magnet link only (bit 5: the connection runs before the metadata is known, BEP 9) and
/// whether the fake first sends an extension handshake offering every extension the session
/// speaks (bit 6: extended messages then reach PEX, ut_metadata, holepunch...); byte 1 the
/// number of cuts; the rest is the stream, sent in pieces cut at positions derived from it, with
/// virtual time passing between pieces. Every run of 32 `R` bytes in the stream becomes the v2
/// file's `pieces root`, so hash requests and answers can name the real file.
///
/// [`Session`]: bitshoal_core::session::Session
pub fn peer(data: &[u8]) {
    let [mode, cuts, stream @ ..] = data else {
        return;
    };
    let mut sim = Sim::new(u64::from(*mode));
    sim.set_step_cap(100_000);
    let kind = mode >> 3 & 3;
    let v1_spec = TorrentSpec::single(5 * 16384 + 100, 16384);
    let torrent = match kind {
        0 => TestTorrent::build(sim.rng(), &v1_spec),
        _ => {
            // Bit 7: 32 KiB pieces, so leaf-hash requests (below the piece layer) are served.
            let spec = TorrentSpec {
                files: vec![5 * 16384 + 100, 3000],
                piece_length: if mode & 128 != 0 { 32768 } else { 16384 },
                pad_files: false,
            };
            let version = if kind == 2 {
                bitshoal_core::create::Version::Hybrid
            } else {
                bitshoal_core::create::Version::V2
            };
            TestTorrent::build_v2(sim.rng(), &spec, version)
        }
    };
    let node = sim.add_node(NodeConfig::default());
    if mode & 32 != 0 {
        let magnet = bitshoal_core::magnet::Magnet::new(torrent.info.hashes());
        let add = bitshoal_core::session::AddMagnet::new(magnet);
        if let Err(e) = sim.with_session(node, |s, now| s.add_magnet(now, add)) {
            panic!("a fresh magnet is accepted: {e}");
        }
    } else if mode & 1 == 0 {
        sim.seed_torrent(node, &torrent);
    } else if kind == 3 {
        let add = bitshoal_core::session::AddTorrent::new(torrent.info.clone());
        sim.try_add_torrent(node, add)
            .expect("a fresh test torrent is accepted");
    } else {
        sim.add_torrent(node, &torrent);
    }
    let root = torrent
        .info
        .files()
        .iter()
        .find_map(|f| f.pieces_root().copied());
    let mut stream = stream.to_vec();
    if let Some(root) = root {
        let mut i = 0;
        while i + 32 <= stream.len() {
            if stream[i..i + 32].iter().all(|&b| b == b'R') {
                stream[i..i + 32].copy_from_slice(&root);
                i += 32;
            } else {
                i += 1;
            }
        }
    }
    let stream = &stream[..];
    let fake = sim.add_fake(FakeConfig::new(PeerId(*b"-FZ0001-fuzzfuzzfuzz")));
    let reserved = [
        Reserved::NONE,
        Reserved::FAST,
        Reserved::EXTENSION_PROTOCOL,
        Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL),
    ][usize::from(mode >> 1 & 3)];
    let reserved = if kind == 0 {
        reserved
    } else {
        reserved.union(Reserved::V2)
    };
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let hs = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), reserved);
    sim.fake_send_handshake(fake, &hs);
    if mode & 64 != 0 {
        let mut ext = crate::sim::FakePeer::extended_handshake(
            Some(torrent.info.raw().len() as u64),
            bitshoal_core::ext::names::LOCAL_IDS,
        );
        ext.listen_port = Some(6881);
        sim.fake_send(fake, &[ext.to_message()]);
    }
    // Cut the stream into pieces; time passes between them.
    let pieces = usize::from(*cuts % 16) + 1;
    let step = stream.len().div_ceil(pieces).max(1);
    for chunk in stream.chunks(step) {
        sim.fake_send_raw(fake, chunk.to_vec());
        if let Err(e) = sim.run_for(Duration::from_millis(u64::from(chunk[0]))) {
            panic!("{e}");
        }
    }
    if let Err(e) = sim.run_for(Duration::from_secs(1)) {
        panic!("{e}");
    }
}

/// HTTP tracker responses: announce and scrape parsing take any body under any status without
/// panicking and stay within the limits (peers bounded, unique and connectable; text bounded;
/// scrape entries bounded). The bytes as text also go through the URL functions.
pub fn tracker_http(data: &[u8]) {
    let tight = TrackerLimits {
        max_peers: 3,
        max_scrape_entries: 2,
        max_depth: 3,
        max_text: 5,
        ..TrackerLimits::DEFAULT
    };
    // An error status on some inputs; the tight limits on announces only (kept cheap: the stable
    // replay runs this a quarter of a million times in a debug build).
    let status = if data.len() % 5 == 0 { 503 } else { 200 };
    let limit_sets: &[(TrackerLimits, bool)] = if data.len() % 2 == 0 {
        &[(TrackerLimits::DEFAULT, true), (tight, false)]
    } else {
        &[(TrackerLimits::DEFAULT, true)]
    };
    for &(limits, scrape) in limit_sets {
        match tracker::parse_announce_response(status, data, &limits) {
            Ok(r) => {
                assert_eq!(status, 200, "success only with status 200");
                assert!(r.peers.len() <= limits.max_peers, "peer limit");
                let mut unique = r.peers.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), r.peers.len(), "duplicate peers");
                assert!(
                    r.peers
                        .iter()
                        .all(|p| p.port() != 0 && !p.ip().is_unspecified()),
                    "unusable peer"
                );
                assert!(r.warning.is_none_or(|w| w.len() <= limits.max_text));
            }
            Err(e) => check_error(&e, &limits),
        }
        if !scrape {
            continue;
        }
        match tracker::parse_scrape_response(status, data, &limits) {
            Ok(r) => {
                assert!(r.files.len() <= limits.max_scrape_entries, "scrape limit");
                assert!(r
                    .files
                    .iter()
                    .all(|(_, s)| s.name.as_ref().is_none_or(|n| n.len() <= limits.max_text)));
            }
            Err(e) => check_error(&e, &limits),
        }
    }
    let url_like = data
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"htt") || p.eq_ignore_ascii_case(b"udp"));
    if !url_like {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let _ = TrackerUrl::parse(&text);
    let request = AnnounceRequest::new([7; 20], bitshoal_core::id::PeerId([8; 20]), 6881, 1);
    if let Ok(url) = request.to_http_url(&text) {
        let base = text.split('#').next().unwrap_or_default();
        assert!(url.starts_with(base), "the announce URL keeps its base");
    }
    if let Some(scrape) = tracker::scrape_url(&text) {
        assert!(scrape.contains("/scrape"), "{scrape}");
        assert_eq!(
            scrape.len() + 2,
            text.split('#').next().unwrap_or_default().len()
        );
    }
}

fn check_error(e: &tracker::TrackerError, limits: &TrackerLimits) {
    use bitshoal_core::error::Classify as _;
    let _ = e.fault();
    let _ = e.to_string();
    if let tracker::TrackerError::Failure { reason, .. } = e {
        assert!(reason.len() <= limits.max_text, "failure text bound");
    }
}

/// UDP tracker packets: responses (both address families) and requests decode without
/// panicking, and what decodes encodes to a packet that decodes to the same value. Then the
/// bytes drive a `UdpTrackerClient` as a conversation: each chunk is a datagram (with the
/// waiting transaction id patched in, to get past the first check) or a timeout, and the client
/// only ever sends valid requests and reports each operation at most once.
pub fn tracker_udp(data: &[u8]) {
    let limits = TrackerLimits::DEFAULT;
    // One address family per input, chosen by its length, keeps the check cheap.
    let ipv6 = data.len() % 2 == 1;
    if let Ok(response) = UdpResponse::decode(data, ipv6, &limits) {
        let mut packet = Vec::new();
        response.encode(&mut packet);
        assert_eq!(
            UdpResponse::decode(&packet, ipv6, &limits).as_ref(),
            Ok(&response),
            "response round trip"
        );
    }
    if let Ok(request) = UdpRequest::decode(data) {
        let mut packet = Vec::new();
        request
            .encode(&mut packet)
            .expect("a decoded request encodes");
        assert_eq!(
            UdpRequest::decode(&packet).as_ref(),
            Ok(&request),
            "request round trip"
        );
    }

    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut client = UdpTrackerClient::new(
        flags & 1 == 1,
        "/announce?k=v",
        UdpClientConfig::BEP15,
        limits,
        bitshoal_core::rng::Rng::from_seed(u64::from(flags)),
    );
    let mut now = bitshoal_core::time::Instant::ZERO;
    let request = AnnounceRequest::new([1; 20], bitshoal_core::id::PeerId([2; 20]), 6881, 3);
    if flags & 2 == 0 {
        client.announce(now, request);
    } else {
        client.scrape(now, &[[1; 20], [4; 20]]).expect("two hashes");
    }
    let mut waiting_tid = None;
    let mut steps = 0;
    while let Some((&len, tail)) = rest.split_first() {
        steps += 1;
        if steps > 16 {
            break;
        }
        while let Some(packet) = client.poll_transmit() {
            let sent = UdpRequest::decode(&packet).expect("the client sends valid requests");
            waiting_tid = Some(sent.transaction_id());
        }
        let mut events = 0;
        while let Some(event) = client.poll_event() {
            events += 1;
            assert!(!client.is_busy(), "an operation reported while still busy");
            if let UdpEvent::Announced(r) = event {
                assert!(r.peers.len() <= limits.max_peers);
            }
        }
        assert!(events <= 1, "one report per operation");
        if len == 0 {
            if let Some(deadline) = client.poll_timeout() {
                assert!(deadline >= now, "deadlines are not in the past");
                now = deadline;
            }
            client.handle_timeout(now);
            rest = tail;
            continue;
        }
        let take = usize::from(len).min(tail.len());
        let mut datagram = tail[..take].to_vec();
        rest = &tail[take..];
        if len & 0x80 == 0 && datagram.len() >= 8 {
            if let Some(tid) = waiting_tid {
                datagram[4..8].copy_from_slice(&tid.to_be_bytes());
            }
        }
        let busy = client.is_busy();
        let answered = client.handle_datagram(now, &datagram);
        assert!(busy || !answered, "an idle client takes no answers");
    }
}

/// Resume data: decoding never panics; whatever decodes re-encodes to bytes that decode to the
/// same value and are their own encoding (the encoder is canonical).
pub fn resume(data: &[u8]) {
    let Ok(decoded) = bitshoal_core::resume::ResumeData::decode(data) else {
        return;
    };
    let encoded = decoded.encode();
    let again = bitshoal_core::resume::ResumeData::decode(&encoded)
        .expect("re-encoded resume data decodes");
    assert_eq!(again, decoded, "re-encoding changed the resume data");
    assert_eq!(again.encode(), encoded, "the encoding is not canonical");
}

/// BEP 9 `ut_metadata`: a payload that decodes re-encodes (dictionary, then data) to one that
/// decodes to the same message. Then the bytes drive a [`MetadataAssembler`] (three-byte
/// commands: request, data, corrupt data, wrong size, reject, timeout, disconnect from four
/// peers, two of them liars): it never panics, only hands out pieces that exist, and anything it
/// completes with is the real metadata.
pub fn ext_metadata(data: &[u8]) {
    let payload = Bytes::copy_from_slice(data);
    if let Ok(msg) = MetadataMessage::decode(&payload) {
        let again = MetadataMessage::decode(&msg.to_payload()).expect("re-encoded message decodes");
        assert_eq!(again, msg, "ut_metadata round trip");
        if let MetadataMessage::Data { data: d, .. } = &msg {
            assert!(d.len() <= METADATA_PIECE_SIZE);
        }
    }

    // Two pieces (the second 100 bytes), built once: the replay runs this many times. The
    // liars' copy differs in the first byte of each piece.
    static META: OnceLock<(Bytes, Bytes, InfoHashes)> = OnceLock::new();
    let (meta, lies, hashes) = META.get_or_init(|| {
        let meta: Vec<u8> = (0..METADATA_PIECE_SIZE + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        let hashes = InfoHashes::V1(InfoHashV1(Sha1::digest(&meta).into()));
        let mut lies = meta.clone();
        lies[0] ^= 1;
        lies[METADATA_PIECE_SIZE] ^= 1;
        (Bytes::from(meta), Bytes::from(lies), hashes)
    });
    let total = meta.len() as u64;
    let mut a = MetadataAssembler::<u8>::new(*hashes, total).expect("a small size is accepted");
    let mut now = Instant::ZERO;
    // At most 64 commands: enough for several rounds (each of which hashes the metadata).
    let commands = || data.chunks_exact(3).take(64);
    for cmd in commands() {
        let (op, peer, piece) = (cmd[0] % 7, cmd[1] % 4, u32::from(cmd[2] % 3));
        let start = (piece as usize * METADATA_PIECE_SIZE).min(meta.len());
        let range = start..meta.len().min(start + METADATA_PIECE_SIZE);
        let liar = peer >= 2;
        let result = match op {
            0 => {
                if let Some(p) = a.next_request(now, peer) {
                    assert!(p < a.piece_count(), "piece {p} out of range");
                }
                continue;
            }
            1 if liar => a.on_data(peer, piece, total, lies.slice(range)),
            1 | 2 => a.on_data(peer, piece, total, meta.slice(range)),
            3 => a.on_data(peer, piece, total + u64::from(cmd[2]), meta.slice(range)),
            4 => {
                let _ = a.on_reject(now, peer, piece);
                continue;
            }
            5 => {
                now += Duration::from_secs(u64::from(cmd[2]));
                if let Some(deadline) = a.poll_timeout() {
                    let expired = a.handle_timeout(now);
                    assert_eq!(
                        expired.is_empty(),
                        deadline > now,
                        "timeouts fire at deadlines"
                    );
                }
                continue;
            }
            _ => {
                a.remove_peer(peer);
                continue;
            }
        };
        match result {
            Ok(Progress::Complete { info, liars }) => {
                assert_eq!(&info[..], &meta[..], "only verified metadata comes out");
                assert!(
                    liars.iter().all(|&p| p >= 2),
                    "an honest peer called a liar"
                );
            }
            Ok(Progress::HashFailed { banned }) => {
                assert!(banned.iter().all(|&p| p >= 2), "an honest peer banned");
            }
            Ok(Progress::Pending) | Err(_) => {}
        }
        for honest in 0..2 {
            if a.is_banned(honest) {
                // Only a wrong total size or length bans a peer that sends true data, and
                // command 3 sends a wrong size on purpose.
                assert!(commands().any(|c| c[0] % 7 == 3 && c[1] % 4 == honest));
            }
        }
    }
}

/// BEP 11 `ut_pex`: a payload that decodes stays within the bounds and re-encodes to one that
/// decodes to the same message; the decoded peers fed to a [`PexState`] give a message within
/// the send bounds.
pub fn ext_pex(data: &[u8]) {
    let Ok(msg) = PexMessage::decode(data) else {
        return;
    };
    assert!(msg.added.len() <= pex::MAX_ADDED && msg.dropped.len() <= pex::MAX_DROPPED);
    let mut buf = Vec::new();
    msg.encode(&mut buf);
    assert_eq!(
        PexMessage::decode(&buf).expect("re-encoded PEX decodes"),
        msg,
        "ut_pex round trip"
    );
    let mut state = PexState::new("127.0.0.1:1".parse().expect("an address"));
    if let Some(out) = state.next_message(Instant::ZERO, msg.added.iter().copied()) {
        assert!(out.added.len() <= pex::MAX_SENT_INITIAL && out.dropped.is_empty());
        let mut buf = Vec::new();
        out.encode(&mut buf);
        assert_eq!(PexMessage::decode(&buf).as_ref(), Ok(&out));
    }
}

/// The small extension payloads, each decoder on the same bytes: BEP 54 `lt_donthave`, BEP 21
/// `upload_only`, BEP 55 `ut_holepunch` and BEP 28 `lt_tex`. What decodes re-encodes to what
/// decodes to the same value.
pub fn ext_misc(data: &[u8]) {
    if let Ok(m) = DontHave::decode(data) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(buf, data, "lt_donthave is its own encoding");
    }
    if let Ok(m) = UploadOnly::decode(data) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(UploadOnly::decode(&buf), Ok(m));
    }
    if let Ok(m) = HolepunchMessage::decode(data) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(HolepunchMessage::decode(&buf), Ok(m));
        assert_eq!(buf.len(), data.len(), "ut_holepunch has a fixed layout");
    }
    if let Ok(m) = TexMessage::decode(data) {
        assert!(m.added.len() <= MAX_TEX_URLS);
        assert!(m.added.iter().all(|u| u.len() <= MAX_TEX_URL_LEN));
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(TexMessage::decode(&buf), Ok(m), "lt_tex round trip");
    }
}

/// BEP 14 LSD: a datagram that decodes re-encodes (for either group) to one that decodes to
/// the same announce; an [`LsdAnnouncer`] given the datagram learns at most one peer per
/// announced torrent, on the announced port; a session with LSD on, fed the datagram (and,
/// when it decodes, the same announce naming the session's torrent), never panics and dials
/// at most the one announced address.
pub fn lsd(data: &[u8]) {
    lsd_session(data);
    let Ok(announce) = LsdAnnounce::decode(data) else {
        return;
    };
    assert!(!announce.info_hashes.is_empty() && announce.info_hashes.len() <= MAX_INFOHASHES);
    for group in [LsdGroup::V4, LsdGroup::V6] {
        let mut buf = Vec::new();
        announce.encode(group, &mut buf);
        assert_eq!(
            LsdAnnounce::decode(&buf).as_ref(),
            Ok(&announce),
            "LSD round trip"
        );
    }
    let mut lsd = LsdAnnouncer::new(LsdConfig {
        listen_port: 6881,
        cookie: "fuzz".into(),
        groups: vec![LsdGroup::V4],
    });
    for h in &announce.info_hashes {
        lsd.add_torrent(*h, false);
    }
    let from = "127.0.0.1:6771".parse().expect("an address");
    let peers = lsd
        .handle_datagram(from, data)
        .expect("decoded once, decodes again");
    assert!(peers.len() <= announce.info_hashes.len());
    assert!(peers.iter().all(|p| p.addr.port() == announce.port));
}

/// The session half of [`lsd`]: a bare session (no simulator, so it stays cheap per input).
fn lsd_session(data: &[u8]) {
    use bitshoal_core::session::{AddTorrent, Config, Input, Output, Session};
    static TORRENT: OnceLock<TestTorrent> = OnceLock::new();
    let torrent = TORRENT.get_or_init(|| {
        let mut rng = bitshoal_core::rng::Rng::from_seed(14);
        TestTorrent::build(&mut rng, &TorrentSpec::single(16384, 16384))
    });
    let mut session = Session::new(Config {
        lsd: true,
        listen_port: Some(6881),
        ..Config::default()
    });
    let mut now = Instant::ZERO;
    let mut dialled = std::collections::BTreeSet::new();
    let mut drain = |s: &mut Session| {
        while let Some(out) = s.poll_output() {
            if let Output::Connect { addr, .. } = out {
                dialled.insert(addr);
            }
        }
    };
    if session
        .add_torrent(now, AddTorrent::new(torrent.info.clone()))
        .is_err()
    {
        panic!("a fresh torrent is accepted");
    }
    drain(&mut session);
    let from: std::net::SocketAddr = "127.0.0.77:6771".parse().expect("an address");
    let mut datagrams = vec![Bytes::copy_from_slice(data)];
    if let Ok(mut announce) = LsdAnnounce::decode(data) {
        announce.info_hashes[0] = torrent.info.hashes().wire_id();
        let mut buf = Vec::new();
        announce.encode(LsdGroup::V4, &mut buf);
        datagrams.push(buf.into());
    }
    for data in datagrams {
        now += Duration::from_millis(10);
        session.handle_input(now, Input::LsdDatagram { from, data });
        drain(&mut session);
    }
    assert!(dialled.len() <= 1, "{dialled:?}");
    assert!(dialled.iter().all(|a| a.ip() == from.ip()));
}

/// BEP 52 hash proofs: a tree of 1 to 64 leaves answers a range (fields from the input, valid
/// or not) exactly when the range is valid; every full-proof answer it gives verifies against
/// the root; and whatever hashes the input supplies (raw, or the true answer with one hash
/// overwritten) verify only if they are the true nodes: a peer cannot slip a wrong hash past
/// [`merkle::verify_hashes`](bitshoal_core::merkle::verify_hashes).
///
/// Input layout: byte 0 the leaf count, byte 1 the base layer, bytes 2-3 the index, byte 4 the
/// length (high bit set: a power of two `1 << (b & 15)`, and the index is then taken as a
/// multiple of it), byte 5 the proof layers, byte 6 which hash to overwrite; the rest hashes.
pub fn merkle_proof(data: &[u8]) {
    use bitshoal_core::merkle::{self, HashRange, UpperTree, BLOCK_SIZE};
    let [leaves, base, i0, i1, len, proof, victim, rest @ ..] = data else {
        return;
    };
    // The trees are built once: hashing them is most of the cost in a debug build.
    static TREES: OnceLock<Vec<(u32, UpperTree)>> = OnceLock::new();
    let trees = TREES.get_or_init(|| {
        (1..=64usize)
            .map(|n| {
                let leaves = (0..n).map(|i| merkle::block_hash(&[i as u8; 3])).collect();
                let height = merkle::tree_height((n * BLOCK_SIZE) as u64);
                let tree = UpperTree::new(leaves, 0, height).expect("leaves fit their own tree");
                (height, tree)
            })
            .collect()
    });
    let (height, tree) = &trees[usize::from(*leaves % 64)];
    let (height, root) = (*height, tree.root());
    let raw_index = u32::from(u16::from_le_bytes([*i0, *i1]));
    let (length, index) = if len & 0x80 != 0 {
        let length = 1u32 << (len & 15);
        (length, raw_index.wrapping_mul(length))
    } else {
        (u32::from(*len), raw_index)
    };
    let range = HashRange {
        base_layer: u32::from(*base % 8),
        index,
        length,
        proof_layers: u32::from(*proof % 8),
    };
    let truth = tree.hashes(&range);
    assert_eq!(
        truth.is_some(),
        range.check(height).is_ok(),
        "answered exactly the valid ranges: {range:?}"
    );
    let Some(truth) = truth else {
        return;
    };
    assert_eq!(truth.len(), (range.length + range.uncle_count()) as usize);
    let reaches_root =
        range.base_layer + range.length.trailing_zeros() + range.uncle_count() == height;
    let verified = merkle::verify_hashes(&root, height, &range, &truth);
    assert_eq!(verified.is_ok(), reaches_root, "{range:?}: {verified:?}");
    let true_base = &truth[..range.length as usize];
    // The same answer from the leaves and the tree above a piece layer (leaf-hash serving).
    let leaf_count = usize::from(*leaves % 64) + 1;
    let all: Vec<[u8; 32]> = (0..leaf_count as u64)
        .map(|i| tree.node(0, i).expect("a leaf of the tree"))
        .collect();
    let piece_height = u32::from(*victim % 4).min(height);
    let upper = (height > piece_height).then(|| {
        let layer = merkle::layer_from_leaves(&all, piece_height);
        UpperTree::new(layer, piece_height, height).expect("a layer fits its tree")
    });
    let span = merkle::LeafSpan {
        tree_height: height,
        piece_height,
        file_leaves: leaf_count as u64,
        first_leaf: 0,
        leaves: &all,
        upper: upper.as_ref(),
    };
    assert_eq!(span.hashes(&range).as_ref(), Some(&truth), "{range:?}");
    // Arbitrary hashes from the input.
    let supplied: Vec<[u8; 32]> = rest
        .chunks_exact(32)
        .map(|h| h.try_into().expect("chunks of 32"))
        .collect();
    if let Ok(base) = merkle::verify_hashes(&root, height, &range, &supplied) {
        assert_eq!(base, true_base, "forged hashes verified");
    }
    // The true answer with one hash replaced.
    if let Some(first) = supplied.first() {
        let mut tampered = truth.clone();
        let at = usize::from(*victim) % tampered.len();
        tampered[at] = *first;
        if let Ok(base) = merkle::verify_hashes(&root, height, &range, &tampered) {
            assert_eq!(base, true_base, "a tampered answer verified");
            assert_eq!(tampered[at], truth[at], "only an unchanged hash may verify");
        }
    }
}
