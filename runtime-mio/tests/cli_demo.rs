//! `bitshoal demo`: a real multi-process-free swarm over 127.0.0.1 that must verify every byte.

use std::process::Command;

#[test]
fn demo_swarm_downloads_and_verifies_over_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_bitshoal"))
        .args([
            "demo",
            "--size-mib",
            "3",
            "--leechers",
            "3",
            "--json",
            "--timeout-secs",
            "120",
        ])
        .output()
        .expect("bitshoal runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let finished = events.iter().filter(|e| e["event"] == "finished").count();
    assert_eq!(finished, 3, "every downloader finished: {stdout}");
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["verified"], true);
    assert_eq!(summary["bytes"], 3 * 1024 * 1024);
}

#[test]
fn demo_refuses_an_empty_swarm() {
    let out = Command::new(env!("CARGO_BIN_EXE_bitshoal"))
        .args(["demo", "--leechers", "0"])
        .output()
        .expect("bitshoal runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("bitshoal: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}
