//! `bitshoal create --v2` and `--hybrid` against libtorrent (BEP 52): the real binary makes a
//! torrent of a multi-file folder, libtorrent (/usr/bin/python3, `conformance-tests/interop/
//! lt_peer.py`) checks the data against it and seeds it, and `bitshoal download` fetches it from
//! libtorrent alone, every piece verified against the merkle trees (and the SHA-1 pieces for the
//! hybrid); the copy is compared byte for byte. Everything stays on 127.0.0.1; libtorrent is
//! killed by pid when the test ends. Without libtorrent the test fails under `CI=true` and says
//! loudly what it skipped otherwise.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bitshoal_conformance::interop::{available, Proc};
use common::cli::{bitshoal, download_args, json_lines, stderr};
use serde_json::json;

const PYTHON: &str = "/usr/bin/python3";

fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance-tests/interop/lt_peer.py")
}

/// Files that exercise the v2 layout: several pieces with a short last one, a file smaller
/// than a block, one of a few blocks, one of exactly two pieces.
fn payload(root: &Path) {
    for (rel, len) in [
        ("big.bin", 300_000usize),
        ("sub/tiny.txt", 700),
        ("sub/few.bin", 40_000),
        ("two.bin", 65_536),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..len)
            .map(|i| (i * 31 % 253) as u8 ^ rel.len() as u8)
            .collect();
        fs::write(p, data).unwrap();
    }
}

fn same_tree(a: &Path, b: &Path) {
    for entry in fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            same_tree(&entry.path(), &other);
        } else {
            assert_eq!(
                fs::read(entry.path()).unwrap(),
                fs::read(&other).unwrap_or_else(|e| panic!("{}: {e}", other.display())),
                "{}",
                other.display()
            );
        }
    }
}

fn created_then_seeded_by_libtorrent_then_downloaded(flag: &str) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    payload(&data.join("payload"));
    let out = bitshoal(
        &[
            "create",
            "payload",
            "-o",
            "../made.torrent",
            flag,
            "--piece-length",
            "32KiB",
        ],
        &data,
    );
    assert!(out.status.success(), "{flag}: {}", stderr(&out));
    let torrent = work.path().join("made.torrent");

    let spec = json!({
        "torrents": [{"torrent": torrent, "save": data, "seed": true, "peers": []}],
        "deadline": 70,
    });
    let spec_path = work.path().join("lt.json");
    fs::write(&spec_path, spec.to_string()).unwrap();
    let mut command = Command::new(PYTHON);
    command.arg(lt_script()).arg("run").arg(&spec_path);
    let lt_seed = Proc::start("lt-seed", command);
    // READY comes once libtorrent has checked every piece of our torrent against the data.
    let ready = lt_seed
        .wait_for("READY", Instant::now() + Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{flag}: libtorrent seeds what bitshoal created"));
    let port: u16 = ready[6..].trim().parse().unwrap();

    let copy = work.path().join("copy");
    let out = bitshoal(
        &download_args(&torrent, &copy, &format!("127.0.0.1:{port}"), &[]),
        work.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
    let lines = json_lines(&out);
    let failed = lines.iter().filter(|l| l["event"] == "hash_failed").count();
    assert_eq!(failed, 0, "{flag}: no piece failed verification");
    let verified = lines
        .iter()
        .filter(|l| l["event"] == "piece_verified")
        .count();
    assert!(verified > 0, "{flag}: pieces verified");
    same_tree(&data.join("payload"), &copy.join("payload"));
    drop(lt_seed);
}

#[test]
fn libtorrent_seeds_what_bitshoal_create_made_and_bitshoal_downloads_it() {
    let mut probe = Command::new(PYTHON);
    probe.args(["-c", "import libtorrent"]);
    if !available(
        probe,
        "/usr/bin/python3 with libtorrent",
        "python3-libtorrent",
    ) {
        return;
    }
    for flag in ["--v2", "--hybrid"] {
        created_then_seeded_by_libtorrent_then_downloaded(flag);
    }
}
