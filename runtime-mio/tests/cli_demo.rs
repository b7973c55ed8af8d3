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
    // Progress: each downloader's pieces only grow, and never past the torrent's.
    let mut last = [0u64; 4];
    for p in events.iter().filter(|e| e["event"] == "progress") {
        let client = p["client"].as_u64().unwrap() as usize;
        let have = p["have"].as_u64().unwrap();
        assert!((1..=3).contains(&client), "{p}");
        assert!(
            have > last[client] && have <= p["pieces"].as_u64().unwrap(),
            "{p}"
        );
        last[client] = have;
    }
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["verified"], true);
    assert_eq!(summary["bytes"], 3 * 1024 * 1024);
}

/// Runs `bitshoal demo --json` with `args` and returns its JSON lines; fails if it fails.
fn demo_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_bitshoal"))
        .arg("demo")
        .args(args)
        .arg("--json")
        .output()
        .expect("bitshoal runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The runtime each finished downloader reports, by client index.
fn finished_runtimes(events: &[serde_json::Value]) -> Vec<(u64, String)> {
    let mut runtimes: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            let client = e["client"].as_u64().expect("a client index");
            let runtime = e["runtime"].as_str().expect("a runtime name");
            (client, runtime.to_string())
        })
        .collect();
    runtimes.sort();
    runtimes
}

#[test]
fn demo_swarm_runs_on_the_blocking_runtime() {
    let events = demo_json(&["--size-mib", "2", "--leechers", "2", "--runtime", "std"]);
    assert_eq!(
        finished_runtimes(&events),
        [(1, "std".to_string()), (2, "std".to_string())]
    );
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["verified"], true);
}

#[test]
fn demo_swarm_mixes_both_runtimes() {
    let events = demo_json(&["--size-mib", "2", "--leechers", "3", "--runtime", "mixed"]);
    // The seed is on mio; downloaders alternate std, mio, std.
    assert_eq!(
        finished_runtimes(&events),
        [
            (1, "std".to_string()),
            (2, "mio".to_string()),
            (3, "std".to_string())
        ]
    );
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["verified"], true);
}

#[test]
fn demo_refuses_an_unknown_runtime() {
    let out = Command::new(env!("CARGO_BIN_EXE_bitshoal"))
        .args(["demo", "--runtime", "tokio"])
        .output()
        .expect("bitshoal runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tokio"), "{stderr}");
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
