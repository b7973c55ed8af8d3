//! Interop over a loopback Mainline DHT (BEP 5) with libtorrent (python3-libtorrent 2.0):
//! bitshoal joins a DHT of libtorrent sessions with only a bootstrap address, finds a
//! libtorrent seed through `get_peers` and downloads from it knowing no peer and no tracker;
//! and libtorrent sessions bootstrapped from bitshoal find, through the DHT, a torrent
//! bitshoal announced, and download it.
//!
//! Every process listens on 127.0.0.x (libtorrent on .20 and up, bitshoal on .2 and .3: a DHT
//! routing table keeps one node per IP); nothing reaches beyond loopback. The libtorrent side
//! is `interop/lt_dht.py`.

mod interop_common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bitshoal_conformance::interop::{available, Proc};
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::session::{Config, DhtSettings};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent};
use interop_common::{assert_same, make_payload, make_torrent, Shape};

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

fn lt_dht(args: &[&str]) -> Proc {
    let mut command = Command::new(PYTHON);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_dht.py"))
        .args(args);
    Proc::start("lt_dht", command)
}

/// A bitshoal client on `ip` with the DHT on, bootstrapping from `bootstrap` (loopback).
fn dht_client(seed: u64, ip: [u8; 4], bootstrap: Vec<String>) -> Client {
    Client::new(ClientConfig {
        session: Config {
            rng_seed: seed,
            dht: Some(DhtSettings {
                bootstrap,
                ..DhtSettings::default()
            }),
            ..Config::default()
        },
        listen: Some(SocketAddr::from((ip, 0))),
        ..ClientConfig::default()
    })
    .expect("client starts")
}

#[test]
fn bitshoal_finds_a_libtorrent_seed_through_the_dht() {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, Shape::Multi, 11);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let deadline = Instant::now() + Duration::from_secs(80);
    let lt = lt_dht(&[
        "seed",
        torrent_path.to_str().unwrap(),
        work.path().join("seed").to_str().unwrap(),
        "3",
        "-",
    ]);
    let line = lt
        .wait_for("DHT ", deadline)
        .expect("libtorrent's DHT listens");
    let bootstrap = line[4..].trim().to_string();
    lt.wait_for("READY", deadline)
        .expect("libtorrent seeds and announced");

    // Only the info and a bootstrap address: no tracker, no peer.
    let mut bitshoal = dht_client(21, [127, 0, 0, 2], vec![bootstrap]);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal.add_torrent(info, dir.clone(), None).unwrap();
    let mut synced = false;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(50)).unwrap() {
            match event {
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(e) => eprintln!("bitshoal: {e:?}"),
                _ => {}
            }
        }
        for line in lt.drain() {
            eprintln!("libtorrent: {line}");
        }
    }
    let nodes = bitshoal
        .session()
        .dht_node()
        .map_or(0, |n| n.routing_table(false).len());
    assert!(
        synced,
        "bitshoal finished through the DHT (its table has {nodes} nodes; status {:?})",
        bitshoal.status(torrent)
    );
    assert!(
        nodes >= 2,
        "bitshoal's table holds libtorrent nodes: {nodes}"
    );
    assert_same(&payload, &dir.join("payload"), false);
}

#[test]
fn libtorrent_finds_a_torrent_bitshoal_announced() {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, Shape::Multi, 12);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let pieces = info.layout().piece_count();
    // bitshoal seeds and is the DHT's bootstrap node.
    let mut bitshoal = dht_client(22, [127, 0, 0, 3], Vec::new());
    bitshoal
        .add_torrent(info, work.path().join("seed"), Some(Bitfield::full(pieces)))
        .unwrap();
    let addr = bitshoal.udp_addr().expect("a UDP socket");
    let lt_dir = work.path().join("libtorrent");
    fs::create_dir_all(&lt_dir).unwrap();
    let lt = lt_dht(&[
        "fetch",
        torrent_path.to_str().unwrap(),
        lt_dir.to_str().unwrap(),
        "3",
        &addr.to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(80);
    let mut done = false;
    while !done && Instant::now() < deadline {
        bitshoal.turn(Duration::from_millis(50)).unwrap();
        for line in lt.drain() {
            if line.starts_with("DONE") {
                done = true;
            } else {
                eprintln!("libtorrent: {line}");
            }
        }
    }
    let node = bitshoal.session().dht_node().expect("DHT on");
    let nodes = node.routing_table(false).len();
    assert!(
        done,
        "libtorrent downloaded what bitshoal announced (bitshoal's table: {nodes} nodes)"
    );
    assert!(
        nodes >= 2,
        "libtorrent nodes joined through bitshoal: {nodes}"
    );
    drop(lt);
    assert_same(&payload, &lt_dir.join("payload"), false);
}
