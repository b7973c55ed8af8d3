//! Interop over a loopback Mainline DHT (BEP 5) with libtorrent (python3-libtorrent 2.0):
//! bitshoal joins a DHT of libtorrent sessions with only a bootstrap address, finds a
//! libtorrent seed through `get_peers` and downloads from it knowing no peer and no tracker;
//! and libtorrent sessions bootstrapped from bitshoal find, through the DHT, a torrent
//! bitshoal announced, and download it. With only a magnet link (BEP 9) and a bootstrap
//! address, bitshoal finds a libtorrent seed and downloads metadata and content; libtorrent
//! finds a hybrid torrent bitshoal seeds under its truncated v2 info-hash (BEP 52); and
//! libtorrent gets, and verifies, a BEP 44 mutable item (a BEP 46 torrent pointer) bitshoal
//! put.
//!
//! Every process listens on 127.0.0.x (libtorrent on .20 and up, bitshoal on .2 and .3: a DHT
//! routing table keeps one node per IP); nothing reaches beyond loopback. The libtorrent side
//! is `interop/lt_dht.py`.

mod interop_common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_conformance::interop::{available, Proc};
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::dht::{bep46, Item, ItemKey, MutableItem};
use bitshoal_core::id::InfoHashV1;
use bitshoal_core::magnet::Magnet;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddMagnet, Config, DhtSettings, Event};
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
/// Starts libtorrent seeding a v1 multi-file payload (made from `payload_seed`) under
/// `work/seed` and announcing it to its DHT; returns it once it announced, with the payload's
/// folder, the torrent and its DHT address (a bootstrap for bitshoal).
fn lt_dht_seed(
    work: &Path,
    payload_seed: u64,
    deadline: Instant,
) -> (Proc, PathBuf, Arc<Info>, String) {
    let payload = work.join("seed/payload");
    make_payload(&payload, Shape::Multi, payload_seed);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let lt = lt_dht(&[
        "seed",
        torrent_path.to_str().unwrap(),
        work.join("seed").to_str().unwrap(),
        "3",
        "-",
    ]);
    let line = lt
        .wait_for("DHT ", deadline)
        .expect("libtorrent's DHT listens");
    let bootstrap = line[4..].trim().to_string();
    lt.wait_for("READY", deadline)
        .expect("libtorrent seeds and announced");
    (lt, payload, info, bootstrap)
}

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
    let deadline = Instant::now() + Duration::from_secs(80);
    let (lt, payload, info, bootstrap) = lt_dht_seed(work.path(), 11, deadline);

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

#[test]
fn bitshoal_downloads_a_magnet_from_a_libtorrent_seed_with_only_a_bootstrap_address() {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(80);
    let (lt, payload, info, bootstrap) = lt_dht_seed(work.path(), 13, deadline);

    // A magnet with the info-hash only (no tr, no x.pe) and a bootstrap address.
    let magnet = Magnet::new(info.hashes());
    assert!(magnet.trackers().is_empty() && magnet.peers().is_empty());
    let mut bitshoal = dht_client(23, [127, 0, 0, 2], vec![bootstrap]);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal
        .add_magnet(AddMagnet::new(magnet), dir.clone())
        .unwrap();
    let (mut metadata, mut found, mut synced) = (false, 0, false);
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(50)).unwrap() {
            match event {
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(Event::MetadataReceived { info: raw, .. }) => {
                    assert_eq!(raw, *info.raw(), "libtorrent's info dictionary, verified");
                    metadata = true;
                }
                ClientEvent::Session(Event::DhtLookupDone {
                    torrent: t, peers, ..
                }) if t == torrent => {
                    found += peers;
                }
                ClientEvent::Session(e) => eprintln!("bitshoal: {e:?}"),
                _ => {}
            }
        }
        for line in lt.drain() {
            eprintln!("libtorrent: {line}");
        }
    }
    assert!(
        synced,
        "bitshoal finished the magnet through the DHT (status {:?})",
        bitshoal.status(torrent)
    );
    assert!(metadata, "the metadata came from libtorrent (BEP 9)");
    assert!(found >= 1, "a DHT lookup found the libtorrent seed");
    assert_same(&payload, &dir.join("payload"), false);
}

#[test]
fn libtorrent_finds_a_hybrid_torrent_under_its_truncated_v2_hash() {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, Shape::Single, 14);
    let (_, info) = make_torrent(&payload, Version::Hybrid);
    let pieces = info.layout().piece_count();
    let v2 = info.hashes().v2().expect("hybrid").truncated();
    let mut bitshoal = dht_client(24, [127, 0, 0, 3], Vec::new());
    let torrent = bitshoal
        .add_torrent(info, work.path().join("seed"), Some(Bitfield::full(pieces)))
        .unwrap();
    let addr = bitshoal.udp_addr().expect("a UDP socket");
    let hex: String = v2.iter().map(|b| format!("{b:02x}")).collect();
    let lt = lt_dht(&["getpeers", &hex, "-", "3", &addr.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(80);
    let mut peers = None;
    while peers.is_none() && Instant::now() < deadline {
        bitshoal.turn(Duration::from_millis(50)).unwrap();
        for line in lt.drain() {
            match line.strip_prefix("PEERS ") {
                Some(list) => peers = Some(list.to_string()),
                None => eprintln!("libtorrent: {line}"),
            }
        }
    }
    let on_dht = bitshoal.session().dht_info_hashes(torrent);
    assert!(on_dht.contains(&InfoHashV1(v2)), "{on_dht:?}");
    let peers = peers.expect("libtorrent's get_peers for the truncated v2 hash answered");
    let listen = bitshoal.local_addr().unwrap();
    assert!(
        peers.split(',').any(|p| p == listen.to_string()),
        "libtorrent found bitshoal ({listen}) under the v2 hash: {peers}"
    );
}

#[test]
fn libtorrent_gets_a_mutable_item_bitshoal_put() {
    if !libtorrent_available() {
        return;
    }
    let mut bitshoal = dht_client(25, [127, 0, 0, 3], Vec::new());
    let addr = bitshoal.udp_addr().expect("a UDP socket");
    // BEP 46: a torrent pointer, signed with a fixed test key, with a salt.
    let key = ItemKey::from_seed(&[0x25; 32]);
    let pointed = InfoHashV1([0x5a; 20]);
    let item = MutableItem::sign(&key, b"tv", 7, bep46::torrent_value(pointed)).unwrap();
    let key_hex: String = key
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let lt = lt_dht(&["mget", &key_hex, "7476", "3", &addr.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(80);
    // Put once libtorrent's nodes have joined through us.
    let mut put = None;
    let mut acked = 0;
    let mut got = None;
    while (got.is_none() || acked == 0) && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(50)).unwrap() {
            if let ClientEvent::Session(Event::DhtPutDone {
                lookup, acked: n, ..
            }) = event
            {
                if Some(lookup) == put {
                    acked = n;
                }
            }
        }
        let joined = bitshoal
            .session()
            .dht_node()
            .map_or(0, |n| n.routing_table(false).len());
        if put.is_none() && joined >= 3 {
            put = bitshoal.command(|s, now| s.dht_put(now, Item::Mutable(item.clone())));
        }
        for line in lt.drain() {
            match line.strip_prefix("ITEM ") {
                Some(rest) => got = Some(rest.to_string()),
                None => eprintln!("libtorrent: {line}"),
            }
        }
    }
    assert!(put.is_some(), "libtorrent nodes joined");
    let got =
        got.unwrap_or_else(|| panic!("libtorrent found the item (put {put:?}, acked {acked})"));
    let (seq, signature) = got.split_once(' ').unwrap();
    assert_eq!(seq, "7");
    let ours: String = item.signature.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        signature, ours,
        "libtorrent verified our signature (over the salt, seq and value) and got our item"
    );
    assert!(acked >= 1, "libtorrent nodes stored the put");
}
