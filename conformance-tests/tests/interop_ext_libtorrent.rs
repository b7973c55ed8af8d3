//! Extension-protocol interop with libtorrent (Debian's python3-libtorrent, run with
//! /usr/bin/python3) over 127.0.0.1, DHT, LSD, UPnP and NAT-PMP off:
//!
//! - a magnet link (BEP 9): bitshoal fetches the metadata from a libtorrent seed named in the
//!   link's `x.pe`, then the content (v1 and hybrid torrents);
//! - peer exchange (BEP 11): a libtorrent seed tells bitshoal about a libtorrent leech that
//!   bitshoal was never given, and bitshoal connects to it.
//!
//! Each process the test starts is killed by pid when the test ends. Without libtorrent the
//! tests fail under `CI=true` and print a loud skip otherwise.

mod interop_common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use bitshoal_core::magnet::{Magnet, PeerAddr};
use bitshoal_core::session::{AddMagnet, Config, Event};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent};
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

fn magnet_from_libtorrent(version: Version, seed: u64) {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, seed);
    let (torrent_path, info) = make_torrent(&payload, version);
    let deadline = Instant::now() + Duration::from_secs(60);
    let lt = lt_peer(&[
        "seed",
        torrent_path.to_str().unwrap(),
        work.path().join("seed").to_str().unwrap(),
    ]);
    let ready = lt.wait_for("READY", deadline).expect("libtorrent seeds");
    let port: u16 = ready[6..].trim().parse().unwrap();

    // Only the info-hash and the peer: the metadata comes from libtorrent (BEP 9).
    let mut magnet = Magnet::new(info.hashes());
    magnet.add_peer(PeerAddr::Ip(SocketAddr::from(([127, 0, 0, 1], port))));
    let mut bitshoal = client(seed);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal
        .add_magnet(AddMagnet::new(magnet), dir.clone())
        .unwrap();
    let mut metadata = None;
    let mut synced = false;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Session(Event::MetadataReceived { torrent: t, info }) => {
                    assert_eq!(t, torrent);
                    metadata = Some(info);
                }
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(e) => eprintln!("bitshoal: {e:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(
        metadata.as_deref(),
        Some(&info.raw()[..]),
        "the info dictionary came from libtorrent, byte for byte"
    );
    assert!(synced, "bitshoal finished downloading from libtorrent");
    assert_same_tree(&payload, &dir.join("payload"));
}

#[test]
fn bitshoal_downloads_a_magnet_link_from_a_libtorrent_seed() {
    magnet_from_libtorrent(Version::V1, 31);
}

#[test]
fn bitshoal_downloads_a_hybrid_magnet_link_from_a_libtorrent_seed() {
    magnet_from_libtorrent(Version::Hybrid, 32);
}

#[test]
fn a_peer_learned_only_through_libtorrent_pex_gets_connected() {
    if !libtorrent_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 33);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let seed = lt_peer(&[
        "seed",
        torrent_path.to_str().unwrap(),
        work.path().join("seed").to_str().unwrap(),
    ]);
    let ready = seed.wait_for("READY", deadline).expect("libtorrent seeds");
    let seed_port: u16 = ready[6..].trim().parse().unwrap();
    // A slow libtorrent leech of the seed: it stays connected to it, a leech.
    let leech_dir = work.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let leech = lt_peer(&[
        "leech",
        torrent_path.to_str().unwrap(),
        leech_dir.to_str().unwrap(),
        &format!("127.0.0.1:{seed_port}"),
        "--download-limit=2000",
    ]);
    let started = leech
        .wait_for("STARTED", deadline)
        .expect("the leech starts");
    let leech_port: u16 = started[8..].trim().parse().unwrap();
    leech
        .wait_for("CONNECTED", deadline)
        .expect("the leech connects to the seed");

    // bitshoal knows only the seed, and downloads slowly enough to still be a leech when the
    // seed's PEX message comes.
    let mut bitshoal = Client::new(ClientConfig {
        session: Config {
            rng_seed: 34,
            download_rate_limit: 40_000,
            ..Config::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ClientConfig::default()
    })
    .expect("client starts");
    let torrent = bitshoal
        .add_torrent(info, work.path().join("bitshoal"), None)
        .unwrap();
    bitshoal
        .connect(torrent, SocketAddr::from(([127, 0, 0, 1], seed_port)))
        .unwrap();
    let mut met_leech = false;
    while !met_leech && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            if let ClientEvent::Session(Event::PeerConnected { addr, .. }) = &event {
                // We dial its listen port; it may also have dialled us first, having heard of
                // us through the seed's PEX too (then from another port): either way the two
                // met only through PEX.
                met_leech |= addr.port() != seed_port;
            }
            if let ClientEvent::Session(e) = event {
                eprintln!("bitshoal: {e:?}");
            }
        }
    }
    assert!(
        met_leech,
        "bitshoal met the leech (listening at {leech_port}) through the seed's PEX"
    );
}
