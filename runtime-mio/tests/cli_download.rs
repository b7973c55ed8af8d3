//! `bitshoal download`'s flags end to end on 127.0.0.1, with real processes: resume after
//! kill -9 (no verified piece fetched twice, resume state outside the content folder), a full
//! disk ending with exit 4, `--only`, `--files`, `--sequential` (pieces in order) and the rate
//! limits (reaching the session), the loopback rule for trackers, and a client reach that
//! refuses dials on both runtimes.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::cli::{bitshoal, download_args, json_lines, seed_args, stderr, Running};
use common::{Payload, SeedThread};

/// The piece numbers of the `piece_verified` lines among `lines`.
fn verified(lines: &[Value]) -> BTreeSet<u64> {
    lines
        .iter()
        .filter(|l| l["event"] == "piece_verified")
        .map(|l| l["piece"].as_u64().expect("a piece number"))
        .collect()
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn kill_9_then_the_same_command_resumes_without_fetching_verified_pieces_again() {
    let payload = Payload::new(21, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    let data = payload.data_dir();
    // A slow seed, so that the kill lands mid-way (24 pieces of 32 KiB at 128 KiB/s).
    let seed = Running::start(
        &seed_args(torrent, &data, &["--max-up", "128K"]),
        payload.dir.path(),
    );
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    seed.wait_event("checked");
    let out_dir = payload.dir.path().join("out");
    let args = download_args(torrent, &out_dir, &addr, &[]);
    let pieces = payload.info.layout().piece_count() as usize;

    let first = Running::start(&args, payload.dir.path());
    // A resume file saved with some pieces, then two more pieces written after it: the kill
    // lands between saves, as it would in real life.
    let mut lines = first.lines_until(|l| l["event"] == "resume_saved" && l["have"] != 0);
    let saved_at = verified(&lines).len();
    lines.extend(first.lines_until({
        let mut more = 0;
        move |l| {
            if l["event"] == "piece_verified" {
                more += 1;
            }
            more == 2
        }
    }));
    lines.extend(first.kill9());
    let before = verified(&lines);
    assert!(
        before.len() > saved_at && before.len() < pieces,
        "the kill landed mid-way: {} of {pieces} verified",
        before.len()
    );
    let resume_path = lines
        .iter()
        .rfind(|l| l["event"] == "resume_saved")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let resume_path = PathBuf::from(resume_path);
    assert_eq!(resume_path.parent().unwrap(), out_dir.join(".bitshoal"));
    assert!(resume_path.is_file());

    // The same command again.
    let out = bitshoal(&args, payload.dir.path());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    let again = json_lines(&out);
    let resumed = again.iter().find(|l| l["event"] == "resumed").unwrap();
    assert!(
        resumed["have"].as_u64().unwrap() >= before.len() as u64,
        "{resumed} after {} verified",
        before.len()
    );
    let fetched = verified(&again);
    assert!(
        fetched.is_disjoint(&before),
        "fetched again: {:?}",
        fetched.intersection(&before).collect::<Vec<_>>()
    );
    assert!(fetched.len() <= pieces - before.len());
    assert_eq!(
        fetched.len() as u64 + resumed["have"].as_u64().unwrap(),
        pieces as u64
    );
    // Resume state never lands inside the content folder.
    assert_eq!(
        files_under(&out_dir.join(&payload.name)),
        files_under(&data.join(&payload.name))
    );
    // A third run finds everything there, syncs and exits 0 without a peer to talk to.
    let out = bitshoal(&args, payload.dir.path());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let third = json_lines(&out);
    assert!(verified(&third).is_empty());
    let resumed = third.iter().find(|l| l["event"] == "resumed").unwrap();
    assert_eq!(resumed["have"], pieces);
}

#[test]
fn sequential_downloads_in_order_and_the_rate_limits_reach_the_session() {
    let payload = Payload::new(28, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    // A slow seed (24 pieces of 32 KiB at 512 KiB/s): pieces arrive one after another, so the
    // order they are verified in is the order the leecher asked for them.
    let seed = Running::start(
        &seed_args(torrent, payload.data_dir(), &["--max-up", "512K"]),
        payload.dir.path(),
    );
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    seed.wait_event("checked");
    let out_dir = payload.dir.path().join("out");
    let extra = ["--sequential", "--max-down", "1.5MiB", "--max-up", "300K"];
    let out = bitshoal(
        &download_args(torrent, &out_dir, &addr, &extra),
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    let lines = json_lines(&out);
    // The settings as the session holds them (not as the flags said). Speeds themselves are
    // not asserted here: the session's own tests pace transfers in virtual time.
    let configured = lines
        .iter()
        .find(|l| l["event"] == "configured")
        .expect("a configured line");
    assert_eq!(configured["sequential"], true, "{configured}");
    assert_eq!(configured["max_down"], 1024 * 1024 * 3 / 2, "{configured}");
    assert_eq!(configured["max_up"], 300 * 1024, "{configured}");
    let order: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "piece_verified")
        .map(|l| l["piece"].as_u64().expect("a piece number"))
        .collect();
    let pieces = payload.info.layout().piece_count();
    assert_eq!(order.len(), pieces as usize);
    // Before unchoking, the seed grants BEP 6 allowed-fast pieces (10 of them, picked from the
    // leecher's address and the info-hash), which the leecher may fetch first while choked.
    // Every other piece comes in index order; one may overtake one or two just before it
    // (disk reads and hashes complete on worker pools), never more. Rarest first on one seed
    // would pick at random.
    let fast = bitshoal_core::wire::allowed_fast_set(
        std::net::Ipv4Addr::LOCALHOST,
        &payload.info.hashes().wire_id(),
        pieces,
        10,
    );
    let rest: Vec<u64> = order
        .iter()
        .copied()
        .filter(|p| !fast.contains(&(*p as u32)))
        .collect();
    assert!(rest.len() >= pieces as usize - 10);
    let mut sorted = rest.clone();
    sorted.sort_unstable();
    for (i, &piece) in rest.iter().enumerate() {
        let place = sorted.binary_search(&piece).unwrap();
        assert!(
            place <= i + 2,
            "verified in the order {order:?} (allowed fast: {fast:?})"
        );
    }
}

/// Breaks a download folder before the download starts.
type Fault = Box<dyn Fn(&Path)>;

#[test]
fn a_full_disk_ends_the_download_with_exit_4() {
    let payload = Payload::new(22, Vec::new());
    let seed = SeedThread::start(&payload, false, 23);
    let torrent = payload.torrent_path.to_str().unwrap();
    let peer = seed.addr.to_string();
    // Two real faults: the biggest file's path leads to /dev/full (every write fails with
    // ENOSPC, "No space left on device"), and a path blocked by a directory.
    let mut cases: Vec<(&str, Fault)> = Vec::new();
    if Path::new("/dev/full").exists() {
        cases.push((
            "No space left on device",
            Box::new(|dir: &Path| {
                std::os::unix::fs::symlink("/dev/full", dir.join("a.bin")).unwrap()
            }),
        ));
    } else {
        eprintln!("SKIPPED: no /dev/full on this machine; only the blocked path is tested");
    }
    cases.push((
        "a.bin",
        Box::new(|dir: &Path| fs::create_dir_all(dir.join("a.bin/x")).unwrap()),
    ));
    for (i, (expect, fault)) in cases.into_iter().enumerate() {
        let out_dir = payload.dir.path().join(format!("out{i}"));
        let content = out_dir.join(&payload.name);
        fs::create_dir_all(&content).unwrap();
        fault(&content);
        let out = bitshoal(
            &download_args(torrent, &out_dir, &peer, &[]),
            payload.dir.path(),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains(expect), "{err}");
        let lines = json_lines(&out);
        assert!(lines.iter().any(|l| l["event"] == "storage_failed"));
        assert_eq!(lines.last().unwrap()["code"], 4);
    }
}

#[test]
fn only_downloads_the_files_selected_and_files_reports_each() {
    let payload = Payload::new(24, Vec::new());
    let seed = SeedThread::start(&payload, false, 25);
    let torrent = payload.torrent_path.to_str().unwrap();
    let peer = seed.addr.to_string();
    let out_dir = payload.dir.path().join("out");
    let out = bitshoal(
        &download_args(
            torrent,
            &out_dir,
            &peer,
            &[
                "--only",
                "*.txt",
                "--files",
                "--sequential",
                "--max-down",
                "8M",
            ],
        ),
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let want = fs::read(payload.data_dir().join("pay/sub/b.txt")).unwrap();
    assert_eq!(fs::read(out_dir.join("pay/sub/b.txt")).unwrap(), want);
    let lines = json_lines(&out);
    let pieces = payload.info.layout().piece_count() as usize;
    let got = verified(&lines);
    assert!(!got.is_empty() && got.len() < pieces, "{got:?}");
    // --files: the progress lines list the selected file only, complete at the end.
    let last = lines
        .iter()
        .rfind(|l| l["event"] == "progress")
        .expect("progress lines");
    let files = last["files"].as_array().expect("a files array");
    assert_eq!(files.len(), 1, "{last}");
    assert_eq!(files[0]["path"], "pay/sub/b.txt");
    assert_eq!(files[0]["have"], files[0]["length"]);

    // A selection that matches nothing is refused before anything starts.
    for (only, error) in [("*.iso", "no file matches"), ("9", "there is no file 9")] {
        let out = bitshoal(
            &[
                "download",
                torrent,
                "--peer",
                &peer,
                "--listen",
                "127.0.0.1:0",
                "--only",
                only,
            ],
            payload.dir.path(),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(error), "{}", stderr(&out));
    }
}

#[test]
fn a_loopback_client_skips_trackers_elsewhere_and_still_downloads_from_its_peers() {
    // The torrent names a tracker under the reserved `.invalid` domain (never contacted).
    let payload = Payload::new(
        26,
        vec![vec!["http://tracker.invalid:6969/announce".into()]],
    );
    let seed = SeedThread::start(&payload, false, 27);
    let out_dir = payload.dir.path().join("out");
    let out = bitshoal(
        &download_args(
            &payload.torrent_path,
            &out_dir,
            &seed.addr.to_string(),
            &["--no-dht", "--no-lsd", "--no-upnp", "--no-natpmp"],
        ),
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    let lines = json_lines(&out);
    let skipped = lines
        .iter()
        .find(|l| l["event"] == "tracker_skipped")
        .expect("a tracker_skipped line");
    assert_eq!(skipped["url"], "http://tracker.invalid:6969/announce");
    assert!(!lines
        .iter()
        .any(|l| l["event"] == "tracker_failed" || l["event"] == "tracker_announced"));
}

/// Dials a listener of ours on 127.0.0.1 from a client whose reach allows no address at all:
/// the dial must fail without a connection ever reaching the listener.
fn refused_dial<C: bitshoal_mio::client::TorrentClient>() {
    use bitshoal_core::session::{Config, Event};
    use bitshoal_mio::client::{ClientConfig, ClientEvent};
    use bitshoal_std::client::{add_trusting, Reach};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let payload = Payload::new(28, Vec::new());
    let config = ClientConfig {
        session: Config {
            rng_seed: 28,
            ..Config::default()
        },
        reach: Some(Reach::new(|_| false)),
        ..ClientConfig::default()
    };
    let mut client = C::new(config).unwrap();
    let torrent = client
        .add_torrent_with(
            add_trusting(std::sync::Arc::clone(&payload.info), None),
            payload.dir.path().join("out"),
        )
        .unwrap();
    let conn = client
        .connect(torrent, listener.local_addr().unwrap())
        .unwrap();
    let deadline = std::time::Instant::now() + common::cli::WAIT;
    'wait: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the dial never failed"
        );
        for event in client.turn(std::time::Duration::from_millis(50)).unwrap() {
            if let ClientEvent::Session(Event::PeerDisconnected { conn: c, .. }) = event {
                if c == conn {
                    break 'wait;
                }
            }
        }
    }
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a refused address was dialled"
    );
}

#[test]
fn a_client_never_dials_what_its_reach_refuses_on_either_runtime() {
    refused_dial::<bitshoal_mio::client::Client>();
    refused_dial::<bitshoal_std::blocking::BlockingClient>();
}
