//! Torrents made by bitshoal load in libtorrent with the same info-hashes, and libtorrent
//! verifies the data against their piece hashes and piece layers (v1, v2 and hybrid).
//!
//! Runs `/usr/bin/python3` with libtorrent's bindings (`apt-get install python3-libtorrent`).
//! When they are missing the test fails under CI (`CI=true`) and otherwise says loudly what it
//! skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use bitshoal_core::bencode::decode;
use bitshoal_core::create::{CreatedTorrent, Version};
use bitshoal_std::create::{create_torrent, plan_for_path, CreateOptions};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use tempfile::TempDir;

const PYTHON: &str = "/usr/bin/python3";

/// Loads each torrent, then adds them all to one session (loopback only, no DHT/LSD/UPnP/NAT-PMP)
/// over their `save_path`s, waits for the file checks and reports the pieces libtorrent found
/// valid. All checks run at once: libtorrent starts queued checks only on its one-second tick.
const CHECK_SCRIPT: &str = r#"
import json, sys, time
import libtorrent as lt

jobs = json.loads(sys.argv[1])
ses = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'active_checking': len(jobs),
    'alert_mask': lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
})
results = []
handles = []
for job in jobs:
    ti = lt.torrent_info(job['torrent'])
    ih = ti.info_hashes()
    fs = ti.files()
    results.append({
        'v1': str(ih.v1) if ih.has_v1() else None,
        'v2': str(ih.v2) if ih.has_v2() else None,
        'files': [fs.file_path(i) for i in range(fs.num_files())
                  if not fs.file_flags(i) & lt.file_storage.flag_pad_file],
        'num_pieces': ti.num_pieces(),
        'checked': False,
    })
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = job['save_path']
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    handles.append(ses.add_torrent(atp))
pending = set(range(len(jobs)))
deadline = time.time() + 120
while pending and time.time() < deadline:
    ses.wait_for_alert(100)
    for a in ses.pop_alerts():
        if isinstance(a, (lt.torrent_checked_alert, lt.torrent_error_alert)):
            for i in list(pending):
                if handles[i] == a.handle:
                    pending.discard(i)
                    results[i]['checked'] = isinstance(a, lt.torrent_checked_alert)
                    if isinstance(a, lt.torrent_error_alert):
                        results[i]['error'] = a.message()
for res, h in zip(results, handles):
    s = h.status()
    res['have'] = s.num_pieces
    res['seeding'] = s.is_seeding
print(json.dumps(results))
"#;

/// Whether libtorrent can be used; panics under CI when it cannot.
fn libtorrent_available() -> bool {
    let ok = Command::new("timeout")
        .args(["-k", "5", "60", PYTHON, "-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{PYTHON} cannot import libtorrent; install it: apt-get install python3-libtorrent"
            );
        }
        eprintln!();
        eprintln!("!!! SKIPPED create_libtorrent: {PYTHON} cannot import libtorrent.");
        eprintln!("!!! Install it with: apt-get install python3-libtorrent");
        eprintln!();
    }
    ok
}

/// Runs [`CHECK_SCRIPT`] on `(torrent, save_path)` pairs, with a hard time limit.
fn libtorrent_check(jobs: &[(PathBuf, PathBuf)]) -> Vec<Value> {
    let arg: Vec<Value> = jobs
        .iter()
        .map(|(t, s)| json!({"torrent": t, "save_path": s}))
        .collect();
    let out = Command::new("timeout")
        .args(["-k", "5", "300", PYTHON, "-c", CHECK_SCRIPT])
        .arg(Value::Array(arg).to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "libtorrent check failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().expect("the script prints its results");
    serde_json::from_str::<Vec<Value>>(last).unwrap()
}

fn write(root: &Path, rel: &str, len: usize, seed: u8) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let data: Vec<u8> = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    fs::write(p, data).unwrap();
}

/// The info-hashes computed from the raw `info` bytes, as hex.
fn hashes_from_bytes(bytes: &[u8]) -> (String, String) {
    let doc = decode(bytes).unwrap();
    let raw = doc
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap()
        .raw()
        .unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    (hex(&Sha1::digest(raw)), hex(&Sha256::digest(raw)))
}

struct Case {
    label: String,
    payload: PathBuf,
    torrent: PathBuf,
    created: CreatedTorrent,
    files: Vec<String>,
}

fn make_case(
    dir: &Path,
    payload: &Path,
    version: Version,
    options: CreateOptions,
    tag: &str,
) -> Case {
    let options = CreateOptions { version, ..options };
    let plan = plan_for_path(payload, &options).unwrap();
    let name = plan.spec().name.clone();
    let files = plan
        .files()
        .iter()
        .map(|f| {
            if plan.is_single_file() {
                name.clone()
            } else {
                format!("{name}/{}", f.path().join("/"))
            }
        })
        .collect();
    let created = create_torrent(payload, &options, |_, _| {}).unwrap();
    let label = format!("{tag} {version:?}");
    let torrent = dir.join(format!("{}.torrent", label.replace(' ', "-")));
    fs::write(&torrent, &created.bytes).unwrap();
    Case {
        label,
        payload: payload.to_path_buf(),
        torrent,
        created,
        files,
    }
}

/// Flips one byte of `path` at `offset`.
fn flip(path: &Path, offset: usize) {
    let mut data = fs::read(path).unwrap();
    data[offset] ^= 0x5a;
    fs::write(path, data).unwrap();
}

#[test]
fn bitshoal_torrents_load_and_verify_in_libtorrent() {
    if !libtorrent_available() {
        return;
    }
    let dir = TempDir::new().unwrap();

    let single = dir.path().join("single").join("video.bin");
    fs::create_dir_all(single.parent().unwrap()).unwrap();
    write(single.parent().unwrap(), "video.bin", 100_003, 1);

    let multi = dir.path().join("multi").join("album");
    write(&multi, "a.flac", 70_001, 2);
    write(&multi, "b/cover.jpg", 16_384, 3); // exactly one piece at 16 KiB
    write(&multi, "b/deep/notes.txt", 977, 4);
    write(&multi, "b/empty", 0, 0);
    write(&multi, "c.cue", 40_000, 5);
    write(&multi, "z", 33_333, 6);

    let loopback = CreateOptions {
        trackers: vec![
            vec!["http://127.0.0.1:1/announce".into()],
            vec!["udp://127.0.0.1:1".into()],
        ],
        web_seeds: vec!["http://127.0.0.1:1/seed/".into()],
        comment: Some("made by the conformance test".into()),
        created_by: Some("bitshoal/test".into()),
        creation_date: Some(1_700_000_000),
        private: true,
        ..CreateOptions::default()
    };
    let with_piece = |p: u64| CreateOptions {
        piece_length: Some(p),
        ..CreateOptions::default()
    };

    let mut cases = Vec::new();
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        cases.push(make_case(
            dir.path(),
            &single,
            version,
            with_piece(16_384),
            "single",
        ));
        cases.push(make_case(
            dir.path(),
            &multi,
            version,
            with_piece(16_384),
            "multi-16k",
        ));
        cases.push(make_case(
            dir.path(),
            &multi,
            version,
            with_piece(32_768),
            "multi-32k",
        ));
        cases.push(make_case(
            dir.path(),
            &multi,
            version,
            loopback.clone(),
            "multi-auto-meta",
        ));
    }
    let jobs: Vec<(PathBuf, PathBuf)> = cases
        .iter()
        .map(|c| (c.torrent.clone(), c.payload.parent().unwrap().to_path_buf()))
        .collect();

    let results = libtorrent_check(&jobs);
    assert_eq!(results.len(), cases.len());
    for (case, r) in cases.iter().zip(&results) {
        let (v1, v2) = hashes_from_bytes(&case.created.bytes);
        let ours_v1 = case.created.info_hashes.v1().map(|h| h.to_string());
        let ours_v2 = case.created.info_hashes.v2().map(|h| h.to_string());
        let lt_v1 = r["v1"].as_str().map(String::from);
        let lt_v2 = r["v2"].as_str().map(String::from);
        assert_eq!(lt_v1, ours_v1, "{}: v1 info-hash", case.label);
        assert_eq!(lt_v2, ours_v2, "{}: v2 info-hash", case.label);
        if let Some(h) = &ours_v1 {
            assert_eq!(h, &v1, "{}: v1 is SHA-1 of the raw info dict", case.label);
        }
        if let Some(h) = &ours_v2 {
            assert_eq!(h, &v2, "{}: v2 is SHA-256 of the raw info dict", case.label);
        }
        let lt_files: Vec<&str> = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(lt_files, case.files, "{}: files", case.label);
        assert_eq!(r["error"], Value::Null, "{}", case.label);
        assert_eq!(
            r["checked"], true,
            "{}: libtorrent finished checking",
            case.label
        );
        assert!(r["num_pieces"].as_u64().unwrap() > 0);
        assert_eq!(
            r["have"], r["num_pieces"],
            "{}: every piece verifies",
            case.label
        );
        assert_eq!(r["seeding"], true, "{}", case.label);
    }

    // One flipped byte must cost exactly one piece, in every format: the check is real.
    flip(&single, 50_000);
    flip(&multi.join("c.cue"), 20_000);
    let results = libtorrent_check(&jobs);
    for (case, r) in cases.iter().zip(&results) {
        let total = r["num_pieces"].as_u64().unwrap();
        assert_eq!(r["checked"], true, "{}", case.label);
        assert_eq!(
            r["have"].as_u64(),
            Some(total - 1),
            "{}: the damaged piece fails",
            case.label
        );
    }
}
