//! `bitshoal verify`: a full recheck that finds data corrupted or missing on disk, per file,
//! in text and JSON, with exit code 0 only when every piece is good.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use serde_json::Value;

use common::cli::{bitshoal, json_lines, stderr};
use common::Payload;

/// The `verified` line of a `verify --json` run.
fn report(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["event"] == "verified")
        .expect("a verified line")
}

/// The report's entry for the file at `path`.
fn file<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {report}"))
}

#[test]
fn verify_finds_corrupted_and_missing_data_per_file() {
    let payload = Payload::new(31, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    let data = payload.data_dir();
    let data_arg = data.to_str().unwrap();
    let pieces = u64::from(payload.info.layout().piece_count());

    // Intact data: every piece good, exit 0.
    let out = bitshoal(
        &["verify", torrent, "--data", data_arg, "--json"],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let r = report(&lines);
    assert_eq!(r["good"], pieces);
    assert_eq!(r["bad"], 0);
    assert_eq!(r["files"].as_array().unwrap().len(), 3);

    // One byte flipped in piece 3 of a.bin (32 KiB pieces; a.bin comes first).
    let a = data.join("pay/a.bin");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a)
        .unwrap();
    let at = 3 * 32 * 1024 + 100;
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
    drop(f);
    let out = bitshoal(
        &["verify", torrent, "--data", data_arg, "--json"],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let lines = json_lines(&out);
    let r = report(&lines);
    assert_eq!(r["good"], pieces - 1);
    let a_report = file(r, "pay/a.bin");
    assert_eq!(a_report["bad_pieces"], serde_json::json!([3]));
    assert_eq!(a_report["missing"], false);
    assert_eq!(file(r, "pay/c.bin")["bad_pieces"], serde_json::json!([]));
    assert!(stderr(&out).contains("1 of"), "{}", stderr(&out));
    assert_eq!(lines.last().unwrap()["code"], 6);

    // A file removed: its pieces are bad and the file is reported missing; the text report
    // says so too.
    fs::remove_file(data.join("pay/sub/b.txt")).unwrap();
    let out = bitshoal(&["verify", torrent, "--data", data_arg], payload.dir.path());
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stdout);
    let b_line = text.lines().find(|l| l.contains("pay/sub/b.txt")).unwrap();
    assert!(b_line.contains("MISSING"), "{text}");
    let a_line = text.lines().find(|l| l.contains("pay/a.bin")).unwrap();
    assert!(
        a_line.contains("BAD: 1 of") && a_line.contains("(3)"),
        "{text}"
    );
    let c_line = text.lines().find(|l| l.contains("pay/c.bin")).unwrap();
    assert!(c_line.contains("ok"), "{text}");
}

#[test]
fn verify_refuses_a_bad_torrent_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("junk.torrent"), b"not bencode").unwrap();
    let out = bitshoal(&["verify", "junk.torrent", "--data", "."], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
}
