//! Shared by the blocking runtime's tests: a multi-file payload on disk, its torrent, a driver
//! that turns two clients until one has its torrent synced, and a byte-for-byte comparison.

#![allow(dead_code)] // each test binary uses its own part

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::create::Version;
use bitshoal_core::id::TorrentId;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{Config, Event};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::{ClientConfig, ClientEvent};
use bitshoal_std::create::{create_torrent, CreateOptions};

/// Writes a folder of files of pseudo-random bytes under `dir/payload`, nested, odd-sized and
/// with an empty file, and returns the folder.
pub(crate) fn make_payload(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("payload");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    let mut rng = Rng::from_seed(0xb10c);
    for (path, len) in [
        ("a.bin", 700_001),
        ("sub/b.bin", 333_333),
        ("sub/deeper/c.txt", 12_345),
        ("empty.txt", 0),
        ("z.bin", 100_000),
    ] {
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        fs::write(root.join(path), bytes).unwrap();
    }
    root
}

/// A hybrid torrent (so with BEP 47 pad files) of `path`, in 32 KiB pieces.
pub(crate) fn make_torrent(path: &Path) -> Arc<Info> {
    let options = CreateOptions {
        version: Version::Hybrid,
        piece_length: Some(32 * 1024),
        threads: 1,
        ..CreateOptions::default()
    };
    let created = create_torrent(path, &options, |_, _| {}).unwrap();
    Arc::new(Metainfo::from_bytes(&created.bytes).unwrap().into_info())
}

/// A client configuration on 127.0.0.1 with a distinct RNG seed (so a distinct peer id).
pub(crate) fn config(seed: u64, listen: bool) -> ClientConfig {
    ClientConfig {
        session: Config {
            rng_seed: seed,
            ..Config::default()
        },
        listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
        disk_threads: 1,
        hash_threads: 1,
        ..ClientConfig::default()
    }
}

/// Turns both clients in alternation (each waiting at most 2 ms) until `leech` reports its
/// torrent synced; returns every session event the leecher saw. Bounded: at most `turns`
/// rounds.
pub(crate) fn run_until_synced(
    seed: &mut BlockingClient,
    leech: &mut BlockingClient,
    torrent: TorrentId,
    turns: usize,
) -> Vec<Event> {
    let wait = Duration::from_millis(2);
    let mut seen = Vec::new();
    for _ in 0..turns {
        seed.turn(wait).unwrap();
        for event in leech.turn(wait).unwrap() {
            match event {
                ClientEvent::Synced { torrent: t, result } if t == torrent => {
                    result.expect("the leecher's files sync");
                    return seen;
                }
                ClientEvent::Session(e) => seen.push(e),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    panic!("the leecher did not finish within {turns} rounds; it saw {seen:?}");
}

/// Asserts that `copy` holds exactly the files of `original`, byte for byte.
pub(crate) fn assert_same_tree(original: &Path, copy: &Path) {
    let mut count = 0;
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let there = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &there);
        } else {
            let want = fs::read(entry.path()).unwrap();
            let got =
                fs::read(&there).unwrap_or_else(|e| panic!("{} is missing: {e}", there.display()));
            assert!(want == got, "{} differs from the original", there.display());
        }
        count += 1;
    }
    assert!(count > 0, "{} is empty", original.display());
}
