//! The real binary on both runtimes: `bitshoal seed --runtime R1` serves `bitshoal download
//! --runtime R2` over 127.0.0.1 for mio↔mio, mio→std and std→mio, with a single-file and a
//! multi-file torrent; every byte is compared.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use bitshoal_core::create::Version;
use bitshoal_core::rng::Rng;
use bitshoal_std::create::{create_torrent, CreateOptions};

use common::cli::{bitshoal, download_args, json_lines, seed_args, stderr, Running};
use common::compare_trees;

/// Writes pseudo-random content under `dir/data` and its torrent at `dir/t.torrent`: one
/// file `one.bin` (v1), or a folder `tree` with nested files and an empty one (hybrid, so with
/// BEP 47 pad files). Returns the content's path.
fn make(dir: &Path, multi: bool) -> PathBuf {
    let data = dir.join("data");
    let mut rng = Rng::from_seed(41);
    let files: &[(&str, usize)] = if multi {
        &[
            ("tree/a.bin", 200_003),
            ("tree/sub/b.txt", 5_000),
            ("tree/sub/deeper/c.bin", 70_000),
            ("tree/empty.txt", 0),
        ]
    } else {
        &[("one.bin", 300_007)]
    };
    for (path, len) in files {
        let path = data.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = vec![0u8; *len];
        rng.fill(&mut bytes);
        fs::write(path, bytes).unwrap();
    }
    let content = data.join(if multi { "tree" } else { "one.bin" });
    let options = CreateOptions {
        version: if multi { Version::Hybrid } else { Version::V1 },
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let created = create_torrent(&content, &options, |_, _| {}).unwrap();
    fs::write(dir.join("t.torrent"), &created.bytes).unwrap();
    content
}

/// Seeds `torrent` from `data` on `seed_rt`, downloads it into `dir/out-<tag>` on `leech_rt`,
/// and returns that folder once the download exited 0.
fn transfer(dir: &Path, torrent: &Path, data: &Path, seed_rt: &str, leech_rt: &str) -> PathBuf {
    let seed = Running::start(&seed_args(torrent, data, &["--runtime", seed_rt]), dir);
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    let checked = seed.wait_event("checked");
    assert_eq!(checked["have"], checked["pieces"], "{seed_rt} seed");
    let out_dir = dir.join(format!("out-{seed_rt}-{leech_rt}"));
    let out = bitshoal(
        &download_args(
            torrent,
            &out_dir,
            &addr,
            &["--runtime", leech_rt, "--timeout", "100"],
        ),
        dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{seed_rt} -> {leech_rt}: {}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    let synced = lines.iter().find(|l| l["event"] == "synced").unwrap();
    assert_eq!(synced["ok"], true);
    seed.interrupt();
    assert_eq!(seed.exit_code(), 0);
    out_dir
}

const PAIRS: [(&str, &str); 3] = [("mio", "mio"), ("mio", "std"), ("std", "mio")];

fn each_pair(multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let content = make(dir.path(), multi);
    let name = content.file_name().unwrap();
    for (seed_rt, leech_rt) in PAIRS {
        let out = transfer(
            dir.path(),
            &dir.path().join("t.torrent"),
            &dir.path().join("data"),
            seed_rt,
            leech_rt,
        );
        let copy = out.join(name);
        if multi {
            compare_trees(&content, &copy);
            // The empty file exists and nothing else was added (no pad files).
            assert_eq!(fs::metadata(copy.join("empty.txt")).unwrap().len(), 0);
            assert_eq!(count_files(&copy), 4, "{seed_rt} -> {leech_rt}");
        } else {
            let same = fs::read(&copy).unwrap() == fs::read(&content).unwrap();
            assert!(same, "{seed_rt} -> {leech_rt}: one.bin differs");
        }
    }
}

/// How many files are under `dir`, at any depth.
fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn single_file_torrents_move_between_runtimes() {
    each_pair(false);
}

#[test]
fn multi_file_torrents_move_between_runtimes() {
    each_pair(true);
}
