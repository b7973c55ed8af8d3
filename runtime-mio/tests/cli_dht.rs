//! `bitshoal download` and `seed` over a loopback DHT (BEP 5): a download that knows no
//! tracker and no peer finds the seed through `--dht-bootstrap`; `--no-dht` (or a loopback
//! listen address with no bootstrap node named) leaves it nowhere to download from.

mod common;

use std::fs;

use bitshoal_core::create::Version;
use bitshoal_core::rng::Rng;
use bitshoal_std::create::{create_torrent, CreateOptions};

use common::cli::{bitshoal, stderr, Running};

#[test]
fn a_download_finds_its_seed_through_the_dht_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let mut bytes = vec![0u8; 200_000];
    Rng::from_seed(46).fill(&mut bytes);
    fs::write(data.join("one.bin"), &bytes).unwrap();
    let options = CreateOptions {
        version: Version::V1,
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let created = create_torrent(&data.join("one.bin"), &options, |_, _| {}).unwrap();
    let torrent = dir.join("t.torrent");
    fs::write(&torrent, &created.bytes).unwrap();
    let torrent = torrent.to_str().unwrap();

    // Without a DHT, nothing to download from: exit 3 at once.
    for flags in [&["--no-dht", "--dht-bootstrap", "127.0.0.1:9"][..], &[]] {
        let mut args = vec![
            "download",
            torrent,
            "-o",
            "nowhere",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(flags);
        let out = bitshoal(&args, dir);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {}", stderr(&out));
    }

    // The seed's DHT is on (a bootstrap node is named, though nothing listens there); the
    // downloader bootstraps from the seed's address and knows nothing else.
    let seed = Running::start(
        &[
            "seed",
            torrent,
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.52:0",
            "--dht-bootstrap",
            "127.0.0.53:9",
            "--json",
        ],
        dir,
    );
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    seed.wait_event("checked");
    let out_dir = dir.join("out");
    let out = bitshoal(
        &[
            "download",
            torrent,
            "-o",
            out_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.53:0",
            "--dht-bootstrap",
            &addr,
            "--json",
            "--timeout",
            "60",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(out_dir.join("one.bin")).unwrap(), bytes);
}
