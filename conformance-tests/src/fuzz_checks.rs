//! The checks the fuzz targets run, shared with the stable corpus-replay test.
//!
//! Each check feeds arbitrary bytes to a parser and asserts the properties that must hold for
//! any input: no panic, and for input that parses, that formatting and parsing again gives the
//! same value. `fuzz/fuzz_targets/<name>.rs` calls the check of the same name under libFuzzer
//! (`cargo +nightly fuzz run <name>`); `tests/fuzz_replay.rs` runs the same checks over the
//! committed corpus in `fuzz/corpus/<name>/` and seeded mutations of it on stable Rust, so the
//! two cannot drift apart.

use std::path::{Component, Path};

use bitshoal_core::bencode::{self, DecodeOptions, Value};
use bitshoal_core::id::PeerId;
use bitshoal_core::magnet::{Magnet, MAX_URI_LEN};
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{self, Framer, Handshake, Reserved, WireLimits};

use crate::sim::{FakeConfig, NodeConfig, Sim, TestTorrent, TorrentSpec};
use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// A fuzz check: panics if `data` reveals a bug.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the folder under `fuzz/corpus/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("bencode", bencode),
    ("magnet", magnet),
    ("metainfo", metainfo),
    ("wire", wire),
    ("peer", peer),
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
/// Input layout: byte 0 picks the handshake's reserved bits and whether the node seeds; byte 1
/// the number of cuts; the rest is the stream, sent in pieces cut at positions derived from it,
/// with virtual time passing between pieces.
///
/// [`Session`]: bitshoal_core::session::Session
pub fn peer(data: &[u8]) {
    let [mode, cuts, stream @ ..] = data else {
        return;
    };
    let mut sim = Sim::new(u64::from(*mode));
    sim.set_step_cap(100_000);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(5 * 16384 + 100, 16384));
    let node = sim.add_node(NodeConfig::default());
    if mode & 1 == 0 {
        sim.seed_torrent(node, &torrent);
    } else {
        sim.add_torrent(node, &torrent);
    }
    let fake = sim.add_fake(FakeConfig::new(PeerId(*b"-FZ0001-fuzzfuzzfuzz")));
    let reserved = [
        Reserved::NONE,
        Reserved::FAST,
        Reserved::EXTENSION_PROTOCOL,
        Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL),
    ][usize::from(mode >> 1 & 3)];
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let hs = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), reserved);
    sim.fake_send_handshake(fake, &hs);
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
