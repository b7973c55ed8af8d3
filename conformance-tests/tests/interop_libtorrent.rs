//! Interop with libtorrent (Debian's python3-libtorrent, run with /usr/bin/python3) over
//! 127.0.0.1, with DHT, LSD, UPnP and NAT-PMP off: bitshoal downloads from a libtorrent seed and
//! libtorrent downloads from a bitshoal seed, for v1 and hybrid torrents with nested folders, a
//! 0-byte file, files smaller than a piece, and pad files (hybrid). Every transfer compares the
//! bytes. Each process the test starts is killed by pid when the test ends.
//!
//! Without libtorrent the tests fail under `CI=true` and print a loud skip otherwise.

mod interop_common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_mio::client::ClientEvent;
use interop_common::{assert_same_tree, available, client, make_payload, make_torrent, Proc};

const PYTHON: &str = "/usr/bin/python3";

fn libtorrent_available() -> bool {
    let mut probe = Command::new(PYTHON);
    probe.args(["-c", "import libtorrent"]);
    available(
        probe,
        "/usr/bin/python3 with libtorrent",
        "python3-libtorrent",
    )
}

/// Starts `interop/lt_peer.py` with `args`.
fn lt_peer(args: &[&str]) -> Proc {
    let mut command = Command::new(PYTHON);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_peer.py"))
        .args(args);
    Proc::start(command)
}

fn bitshoal_downloads_from_libtorrent(version: Version) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 1);
    let (torrent_path, info) = make_torrent(&payload, version);
    let seed_dir = work.path().join("seed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let lt = lt_peer(&[
        "seed",
        torrent_path.to_str().unwrap(),
        seed_dir.to_str().unwrap(),
    ]);
    let ready = lt.wait_for("READY", deadline).expect("libtorrent seeds");
    let port: u16 = ready[6..].trim().parse().unwrap();

    let mut bitshoal = client(7);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal.add_torrent(info, dir.clone(), None).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    bitshoal.connect(torrent, addr).unwrap();
    let mut synced = false;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(e) => eprintln!("bitshoal: {e:?}"),
                _ => {}
            }
        }
    }
    assert!(synced, "bitshoal finished downloading from libtorrent");
    assert_same_tree(&payload, &dir.join("payload"));
}

fn libtorrent_downloads_from_bitshoal(version: Version) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 2);
    let (torrent_path, info) = make_torrent(&payload, version);
    let pieces = info.layout().piece_count();
    let mut bitshoal = client(8);
    bitshoal
        .add_torrent(info, work.path().join("seed"), Some(Bitfield::full(pieces)))
        .unwrap();
    let addr = bitshoal.local_addr().unwrap();
    let lt_dir = work.path().join("libtorrent");
    fs::create_dir_all(&lt_dir).unwrap();
    let lt = lt_peer(&[
        "leech",
        torrent_path.to_str().unwrap(),
        lt_dir.to_str().unwrap(),
        &addr.to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = false;
    while !done && Instant::now() < deadline {
        bitshoal.turn(Duration::from_millis(20)).unwrap();
        while let Some(line) = lt.try_line() {
            if line.starts_with("DONE") {
                done = true;
            } else {
                eprintln!("libtorrent peer: {line}");
            }
        }
    }
    assert!(done, "libtorrent finished downloading from bitshoal");
    drop(lt); // libtorrent flushes its files before printing DONE; stop it before reading
    assert_same_tree(&payload, &lt_dir.join("payload"));
}

#[test]
fn bitshoal_downloads_a_v1_torrent_from_libtorrent() {
    if libtorrent_available() {
        bitshoal_downloads_from_libtorrent(Version::V1);
    }
}

#[test]
fn bitshoal_downloads_a_hybrid_torrent_with_pad_files_from_libtorrent() {
    if libtorrent_available() {
        bitshoal_downloads_from_libtorrent(Version::Hybrid);
    }
}

#[test]
fn libtorrent_downloads_a_v1_torrent_from_bitshoal() {
    if libtorrent_available() {
        libtorrent_downloads_from_bitshoal(Version::V1);
    }
}

#[test]
fn libtorrent_downloads_a_hybrid_torrent_from_bitshoal() {
    if libtorrent_available() {
        libtorrent_downloads_from_bitshoal(Version::Hybrid);
    }
}
