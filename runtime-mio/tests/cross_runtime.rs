//! The two runtimes interoperate: a seed on one and a leecher on the other exchange a
//! multi-file torrent over 127.0.0.1 through real files, in both directions.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::id::TorrentId;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{Config, Event};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::add_trusting;
use bitshoal_std::create::{create_torrent, CreateOptions};

/// Writes nested, odd-sized files (one empty) of pseudo-random bytes under `dir/payload`.
fn make_payload(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("payload");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    let mut rng = Rng::from_seed(0xc405);
    for (path, len) in [
        ("a.bin", 900_001),
        ("sub/b.bin", 250_000),
        ("sub/deeper/c.txt", 4_321),
        ("empty.txt", 0),
    ] {
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        fs::write(root.join(path), bytes).unwrap();
    }
    root
}

/// A hybrid torrent (with BEP 47 pad files) of `path`, in 32 KiB pieces.
fn make_torrent(path: &Path) -> Arc<Info> {
    let options = CreateOptions {
        version: Version::Hybrid,
        piece_length: Some(32 * 1024),
        threads: 1,
        ..CreateOptions::default()
    };
    let created = create_torrent(path, &options, |_, _| {}).unwrap();
    Arc::new(Metainfo::from_bytes(&created.bytes).unwrap().into_info())
}

fn config(seed: u64) -> ClientConfig {
    ClientConfig {
        session: Config {
            rng_seed: seed,
            ..Config::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        disk_threads: 1,
        hash_threads: 1,
        ..ClientConfig::default()
    }
}

fn assert_same_tree(original: &Path, copy: &Path) {
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let there = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &there);
        } else {
            let same = fs::read(entry.path()).unwrap() == fs::read(&there).unwrap();
            assert!(same, "{} differs from the original", there.display());
        }
    }
}

/// Turns the seed and the leecher in alternation (each waiting at most 2 ms) until the
/// leecher's torrent is synced; at most 20,000 rounds. Returns the leecher's session events.
fn run_until_synced(
    mut seed_turn: impl FnMut() -> Vec<ClientEvent>,
    mut leech_turn: impl FnMut() -> Vec<ClientEvent>,
    torrent: TorrentId,
) -> Vec<Event> {
    let mut seen = Vec::new();
    for _ in 0..20_000 {
        seed_turn();
        for event in leech_turn() {
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
    panic!("the leecher did not finish; it saw {seen:?}");
}

const WAIT: Duration = Duration::from_millis(2);

#[test]
fn a_blocking_leecher_downloads_from_a_mio_seed() {
    leech_from_seed::<Client, BlockingClient>(21);
}

#[test]
fn a_mio_leecher_downloads_from_a_blocking_seed() {
    leech_from_seed::<BlockingClient, Client>(31);
}

/// A seed on runtime `S` (session seed `rng_seed`) and a leecher on `L` exchange the payload.
fn leech_from_seed<S: TorrentClient, L: TorrentClient>(rng_seed: u64) {
    let work = tempfile::tempdir().unwrap();
    let payload = make_payload(work.path());
    let info = make_torrent(&payload);
    let pieces = info.layout().piece_count();

    let mut seed = S::new(config(rng_seed)).unwrap();
    let seeded = seed
        .add_torrent_with(
            add_trusting(info.clone(), Some(Bitfield::full(pieces))),
            work.path().to_path_buf(),
        )
        .unwrap();
    let mut leech = L::new(config(rng_seed + 1)).unwrap();
    let leech_dir = work.path().join("leech");
    let torrent = leech
        .add_torrent_with(add_trusting(info, None), leech_dir.clone())
        .unwrap();
    leech.connect(torrent, seed.local_addr().unwrap()).unwrap();

    let events = run_until_synced(
        || seed.turn(WAIT).unwrap(),
        || leech.turn(WAIT).unwrap(),
        torrent,
    );

    assert_same_tree(&payload, &leech_dir.join("payload"));
    let verified = events
        .iter()
        .filter(|e| matches!(e, Event::PieceVerified { .. }))
        .count();
    assert_eq!(verified, pieces as usize);
    assert!(seed.status(seeded).unwrap().uploaded > 0);
    assert!(leech.status(torrent).unwrap().finished);
}
