//! BitTorrent v2 interop with libtorrent 2.0 (Debian's python3-libtorrent, run with
//! /usr/bin/python3) over 127.0.0.1, DHT, LSD, UPnP and NAT-PMP off (BEP 52):
//!
//! - bitshoal downloads v2-only and hybrid torrents from a libtorrent seed, verifying every piece
//!   against the SHA-256 merkle trees (and, for the hybrid, the SHA-1 pieces too);
//! - bitshoal downloads a v2-only torrent added *without* its piece layers (as after a `btmh`
//!   magnet's metadata fetch): the layers come from libtorrent with BEP 52 hash requests, each
//!   checked against the file roots;
//! - libtorrent downloads v2-only and hybrid torrents from a bitshoal seed;
//! - libtorrent, whose piece failed (one of two bitshoal seeds has a corrupt block), asks the
//!   bitshoal seeds for that piece's leaf hashes (BEP 52 base layer 0) and gets them, and
//!   finishes with the right bytes (ignored by default: libtorrent's timing decides whether the
//!   bad piece happens);
//! - libtorrent downloads a single-file v2 torrent (its last piece padded to a whole piece, as
//!   libtorrent lays it out) from a bitshoal seed.
//!
//! Every torrent is made by bitshoal's creator (`bitshoal create --v2/--hybrid` runs the same
//! `bitshoal_std::create::create_torrent`), so the libtorrent seeds also check that libtorrent
//! loads and seeds what bitshoal created. Every transfer compares the bytes. Each process the test
//! starts is killed by pid when the test ends. Without libtorrent the tests fail under `CI=true`
//! and print a loud skip otherwise.

mod interop_common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::session::{AddTorrent, Event};
use bitshoal_mio::client::ClientEvent;
use bitshoal_std::create::{create_torrent, CreateOptions};
use interop_common::libtorrent::{self as lt, Report};
use interop_common::{assert_same, client, make_payload, Shape, PIECE};
use serde_json::json;

/// Creates a torrent of `payload` with bitshoal's creator; returns its path and metainfo.
fn make_torrent(payload: &Path, version: Version) -> (PathBuf, Metainfo) {
    let options = CreateOptions {
        version,
        piece_length: Some(PIECE),
        ..CreateOptions::default()
    };
    let created = create_torrent(payload, &options, |_, _| {}).expect("torrent created");
    let path = payload.with_extension("torrent");
    fs::write(&path, &created.bytes).unwrap();
    (path, Metainfo::from_bytes(&created.bytes).unwrap())
}

/// bitshoal downloads from a libtorrent seed; with `layers` false, the torrent is added from
/// its info dictionary alone and the piece layers must come from libtorrent.
fn bitshoal_downloads_from_libtorrent(version: Version, layers: bool, seed: u64) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, Shape::Multi, seed);
    let (torrent_path, meta) = make_torrent(&payload, version);
    let seed_dir = work.path().join("seed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let spec = json!({
        "torrents": [lt::torrent(&torrent_path, &seed_dir, true, &[])],
        "log": ["HASH_REQUEST", "HASHES", "HASH_REJECT"],
        "deadline": 70,
    });
    let lt_seed = lt::start(work.path(), "lt-seed", spec);
    let port = lt::ready(&lt_seed, deadline);

    let mut bitshoal = client(seed, |_| {});
    let dir = work.path().join("bitshoal");
    let add = if layers {
        AddTorrent::from_metainfo(&meta)
    } else {
        AddTorrent::new(std::sync::Arc::new(meta.info().clone()))
    };
    let torrent = bitshoal.add_torrent_with(add, dir.clone()).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    bitshoal.connect(torrent, addr).unwrap();
    let mut synced = false;
    let mut layers_fetched = false;
    let mut failed = 0;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(Event::PieceLayersComplete { .. }) => layers_fetched = true,
                ClientEvent::Session(Event::HashFailed { .. }) => failed += 1,
                _ => {}
            }
        }
    }
    assert!(synced, "bitshoal finished downloading from libtorrent");
    assert_eq!(failed, 0, "no piece failed verification");
    assert_eq!(
        layers_fetched, !layers,
        "piece layers are fetched exactly when they were withheld"
    );
    assert_same(&payload, &dir.join("payload"), false);
    if !layers {
        // libtorrent's peer log shows our hash requests and its answers.
        let mut report = Report::default();
        let seen = report.wait(&lt_seed, Instant::now() + Duration::from_secs(5), |r| {
            !r.logged("in", "HASH_REQUEST", "").is_empty()
        });
        assert!(seen, "libtorrent logged no hash request: {report:?}");
        assert!(
            report.logged("out", "HASH_REJECT", "").is_empty(),
            "{report:?}"
        );
    }
}

fn libtorrent_downloads_from_bitshoal(version: Version, shape: Shape, seed: u64) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, shape, seed);
    let (torrent_path, meta) = make_torrent(&payload, version);
    let pieces = meta.info().layout().piece_count();
    let mut bitshoal = client(seed, |_| {});
    bitshoal
        .add_torrent_with(
            AddTorrent::from_metainfo(&meta).with_have(Bitfield::full(pieces)),
            work.path().join("seed"),
        )
        .unwrap();
    let addr = bitshoal.local_addr().unwrap();
    let lt_dir = work.path().join("libtorrent");
    fs::create_dir_all(&lt_dir).unwrap();
    let spec = json!({
        "torrents": [lt::torrent(&torrent_path, &lt_dir, false, &[addr.to_string()])],
        "deadline": 70,
    });
    let lt_leech = lt::start(work.path(), "lt-leech", spec);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut report = Report::default();
    while report.done.is_empty() && Instant::now() < deadline {
        bitshoal.turn(Duration::from_millis(20)).unwrap();
        report.absorb(&lt_leech);
    }
    assert_eq!(
        report.done,
        vec![0],
        "libtorrent finished downloading from bitshoal"
    );
    drop(lt_leech); // libtorrent flushed its files before DONE; stop it before reading
    assert_same(&payload, &lt_dir.join("payload"), false);
}

#[test]
fn bitshoal_downloads_a_v2_torrent_from_libtorrent() {
    if lt::available_() {
        bitshoal_downloads_from_libtorrent(Version::V2, true, 21);
    }
}

#[test]
fn bitshoal_downloads_a_hybrid_torrent_from_libtorrent_checking_both_hashes() {
    if lt::available_() {
        bitshoal_downloads_from_libtorrent(Version::Hybrid, true, 22);
    }
}

#[test]
fn bitshoal_fetches_withheld_piece_layers_from_libtorrent() {
    if lt::available_() {
        bitshoal_downloads_from_libtorrent(Version::V2, false, 23);
    }
}

#[test]
fn libtorrent_downloads_a_v2_torrent_from_bitshoal() {
    if lt::available_() {
        libtorrent_downloads_from_bitshoal(Version::V2, Shape::Multi, 24);
    }
}

#[test]
fn libtorrent_downloads_a_hybrid_torrent_from_bitshoal() {
    if lt::available_() {
        libtorrent_downloads_from_bitshoal(Version::Hybrid, Shape::Multi, 25);
    }
}

/// A single-file v2 torrent whose last piece is short: libtorrent pads that piece to a whole
/// piece and requests blocks of the padding; bitshoal's layout pads it the same way and serves
/// zeros there (it used to refuse those requests and close the connection).
#[test]
fn libtorrent_downloads_a_single_file_v2_torrent_from_bitshoal() {
    if lt::available_() {
        libtorrent_downloads_from_bitshoal(Version::V2, Shape::Single, 29);
    }
}

/// libtorrent downloads a v2 torrent from two bitshoal seeds, one of which serves a piece with
/// a corrupt block (its file has a flipped byte it trusts). libtorrent's piece fails; it asks
/// for the piece's leaf hashes (base layer 0): the honest seed answers with hashes (read and
/// hashed from disk, proofs to the root), the corrupt one rejects (its data does not match its
/// own tree). libtorrent finishes with the right bytes.
///
/// Ignored by default: whether libtorrent takes the bad block at all, and whether it keeps the
/// honest seed's connection after the failure (it redials only after 60 s), depends on its own
/// timing; of four runs one passed (libtorrent asked the honest seed for piece 5's leaves, got
/// two leaves and an uncle, banned the liar, finished), one never fetched the bad block, and two
/// stalled with both connections closed by libtorrent. Run it with `--ignored`.
#[test]
#[ignore = "libtorrent's choice of blocks and peers makes the bad piece happen only sometimes"]
fn libtorrent_gets_leaf_hashes_from_bitshoal_after_a_bad_piece() {
    if !lt::available_() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, Shape::Big(512), 26);
    let (torrent_path, meta) = make_torrent(&payload, Version::V2);
    let pieces = meta.info().layout().piece_count();
    // The liar's copy: the second 16 KiB block of piece 5 has a flipped byte.
    let bad_dir = work.path().join("bad");
    fs::create_dir_all(&bad_dir).unwrap();
    let mut bytes = fs::read(&payload).unwrap();
    bytes[5 * PIECE as usize + 16 * 1024 + 100] ^= 0xff;
    fs::write(bad_dir.join("payload"), &bytes).unwrap();
    let mut seeds: Vec<_> = [(work.path().join("seed"), 27), (bad_dir, 28)]
        .into_iter()
        .map(|(dir, seed)| {
            let mut c = client(seed, |_| {});
            c.add_torrent_with(
                AddTorrent::from_metainfo(&meta).with_have(Bitfield::full(pieces)),
                dir,
            )
            .unwrap();
            c
        })
        .collect();
    let addrs: Vec<String> = seeds
        .iter()
        .map(|c| c.local_addr().unwrap().to_string())
        .collect();
    let lt_dir = work.path().join("libtorrent");
    fs::create_dir_all(&lt_dir).unwrap();
    let spec = json!({
        "torrents": [lt::torrent(&torrent_path, &lt_dir, false, &addrs)],
        "log": ["HASH_REQUEST", "HASHES", "HASH_REJECT"],
        "deadline": 70,
    });
    let lt_leech = lt::start(work.path(), "lt-leech", spec);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut report = Report::default();
    while report.done.is_empty() && Instant::now() < deadline {
        for c in &mut seeds {
            c.turn(Duration::from_millis(10)).unwrap();
        }
        report.absorb(&lt_leech);
    }
    assert_eq!(report.done, vec![0], "libtorrent finished: {report:?}");
    drop(lt_leech);
    assert_same(&payload, &lt_dir.join("payload"), false);
    let asked = report.logged("out", "HASH_REQUEST", "");
    assert!(
        !asked.is_empty(),
        "libtorrent asked for leaf hashes: {report:?}"
    );
    let answered = report.logged("in", "HASHES", "");
    assert!(
        !answered.is_empty(),
        "a bitshoal seed sent hashes: {report:?}"
    );
}
