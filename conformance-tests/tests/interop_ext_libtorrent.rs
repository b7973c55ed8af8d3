//! Extension-protocol interop with libtorrent (Debian's python3-libtorrent, run with
//! /usr/bin/python3 through `interop/lt_peer.py`) over 127.0.0.1, DHT, LSD, UPnP and NAT-PMP
//! off:
//!
//! - a magnet link (BEP 9): bitshoal fetches the metadata from a libtorrent seed named in the
//!   link's `x.pe`, then the content (a v1 and a hybrid torrent);
//! - peer exchange (BEP 11): a libtorrent seed tells bitshoal about a libtorrent leech that
//!   bitshoal was never given, and the two meet.
//!
//! Each process the test starts is killed by pid when the test ends. Without libtorrent the
//! tests fail under `CI=true` and print a loud skip otherwise.

mod interop_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use bitshoal_core::magnet::{Magnet, PeerAddr};
use bitshoal_core::session::{AddMagnet, Event};
use bitshoal_mio::client::ClientEvent;
use serde_json::json;

use interop_common::libtorrent::{self as lt, available_ as libtorrent_available};
use interop_common::{assert_same, client, Case, Fixture, Maker, Route, Shape};

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn magnet_from_libtorrent(version: Version, seed: u64) {
    if !libtorrent_available() {
        return;
    }
    let case = Case {
        label: "magnet",
        shape: Shape::Multi,
        maker: Maker::Bitshoal(version),
        route: Route::Direct,
    };
    let Some(fx) = Fixture::new(&[case], seed) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let seeder = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({"torrents": [lt::torrent(&t.path, &t.data, true, &[])]}),
    );
    let port = lt::ready(&seeder, deadline);

    // Only the info-hash and the peer: the metadata comes from libtorrent (BEP 9).
    let mut magnet = Magnet::new(t.info.hashes());
    magnet.add_peer(PeerAddr::Ip(loopback(port)));
    let mut bitshoal = client(seed, |_| {});
    let dir = fx.dir("bitshoal");
    let torrent = bitshoal
        .add_magnet(AddMagnet::new(magnet), dir.clone())
        .unwrap();
    let mut metadata = None;
    let mut synced = false;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Session(Event::MetadataReceived { torrent: id, info }) => {
                    assert_eq!(id, torrent);
                    metadata = Some(info);
                }
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        metadata.as_deref(),
        Some(&t.info.raw()[..]),
        "the info dictionary came from libtorrent, byte for byte"
    );
    assert!(synced, "bitshoal finished downloading from libtorrent");
    assert_same(&t.original(), &dir.join(t.name()), false);
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
    let case = Case {
        label: "pex",
        shape: Shape::Big(1024),
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Direct,
    };
    let Some(fx) = Fixture::new(&[case], 33) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let seeder = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({"torrents": [lt::torrent(&t.path, &t.data, true, &[])]}),
    );
    let seed_port = lt::ready(&seeder, deadline);
    // A slow libtorrent leech of the seed: it stays connected to it, a leech.
    let leech_dir = fx.dir("lt-leech");
    let leech = lt::start(
        fx.work.path(),
        "lt-leech",
        json!({
            "torrents": [lt::torrent(&t.path, &leech_dir, false, &[format!("127.0.0.1:{seed_port}")])],
            "settings": {"download_rate_limit": 2000},
        }),
    );
    let leech_port = lt::ready(&leech, deadline);

    // bitshoal knows only the seed, and downloads slowly enough to still be a leech when the
    // seed's PEX message comes.
    let mut bitshoal = client(34, |c| c.download_rate_limit = 40_000);
    let torrent = bitshoal
        .add_torrent(t.info.clone(), fx.dir("bitshoal"), None)
        .unwrap();
    bitshoal.connect(torrent, loopback(seed_port)).unwrap();
    let mut met_leech = false;
    while !met_leech && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            if let ClientEvent::Session(Event::PeerConnected { addr, .. }) = &event {
                // We dial its listen port; it may also have dialled us first, having heard of
                // us through the seed's PEX too (then from another port): either way the two
                // met only through PEX.
                met_leech |= addr.port() != seed_port;
            }
        }
    }
    assert!(
        met_leech,
        "bitshoal met the leech (listening at {leech_port}) through the seed's PEX"
    );
}
