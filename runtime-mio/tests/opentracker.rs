//! Interop with a real tracker: Debian's `opentracker` on 127.0.0.1 (HTTP and UDP on one
//! port), with bitshoal seeds and leeches that find each other only through it:
//!
//! - over HTTP: a mio seed and a blocking-runtime leech;
//! - over UDP (BEP 15): a blocking-runtime seed and a mio leech;
//! - the `bitshoal download` binary against a seed found through the tracker;
//! - scrapes (BEP 48 over HTTP, BEP 15 over UDP) after a leech finished, counting the swarm.
//!
//! Debian builds opentracker in whitelist mode: the test writes the torrent's v1 info-hash to
//! a whitelist file in a scratch directory (readable by the `nobody` user it drops to, and the
//! directory it chroots to). The launcher (`bitshoal_conformance::interop::Opentracker`) is
//! shared with the interop tests; it kills the tracker by pid when the test ends.
//! Without opentracker the tests fail under `CI=true` and are skipped loudly otherwise.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_conformance::interop::Opentracker;
use bitshoal_core::session::{AddTorrent, Event};
use bitshoal_mio::client::{Client, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;

use common::{Payload, SeedThread};

/// Bounds every wait in these tests.
const WAIT: Duration = Duration::from_secs(60);

/// A payload whose torrent announces to `url`, and a started tracker that allows it.
fn setup(seed: u64, url: impl Fn(&Opentracker) -> String) -> Option<(Opentracker, Payload)> {
    if !Opentracker::available() {
        return None;
    }
    let mut tracker = Opentracker::new();
    let payload = Payload::new(seed, vec![vec![url(&tracker)]]);
    let hash = payload
        .info
        .hashes()
        .v1()
        .expect("a hybrid torrent")
        .to_string();
    tracker.start(&[hash]);
    Some((tracker, payload))
}

/// The seed has announced to the tracker (so a leech announcing later gets it).
fn seed_announced(seed: &SeedThread, url: &str) {
    let event = seed.wait_for(WAIT, |e| {
        matches!(
            e,
            ClientEvent::Session(Event::TrackerAnnounced { .. } | Event::TrackerFailed { .. })
        )
    });
    match event {
        ClientEvent::Session(Event::TrackerAnnounced { url: u, .. }) => assert_eq!(u, url),
        other => panic!("the seed's announce failed: {other:?}"),
    }
}

/// Runs a leech (no peers given: only the tracker) until its download is verified and synced.
fn leech_through_tracker<C: TorrentClient>(payload: &Payload, url: &str) {
    let mut leech: C = common::loopback(0x1ee7).unwrap();
    let out = payload.dir.path().join("leech");
    let add = AddTorrent::new(Arc::clone(&payload.info)).with_trackers(payload.trackers.clone());
    leech.add_torrent_with(add, out.clone()).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut announced = None;
    'run: loop {
        assert!(
            Instant::now() < deadline,
            "the leech did not finish in {WAIT:?}"
        );
        for event in leech.turn(Duration::from_millis(100)).unwrap() {
            match event {
                ClientEvent::Session(Event::TrackerAnnounced { url, peers, .. }) => {
                    announced = Some((url, peers));
                }
                ClientEvent::Session(Event::TrackerFailed { url, error, .. }) => {
                    panic!("announce to {url} failed: {error}")
                }
                ClientEvent::Synced { result, .. } => {
                    result.expect("the files sync");
                    break 'run;
                }
                _ => {}
            }
        }
    }
    let (announced_url, peers) = announced.expect("the leech announced");
    assert_eq!(announced_url, url);
    assert!(peers >= 1, "the tracker returned the seed");
    payload.assert_copied_to(&out);
}

#[test]
fn seed_and_leech_find_each_other_through_opentracker_over_http() {
    let Some((tracker, payload)) = setup(21, Opentracker::http_url) else {
        return;
    };
    let url = tracker.http_url();
    let seed = SeedThread::start(&payload, false, 0x5eed);
    seed_announced(&seed, &url);
    leech_through_tracker::<BlockingClient>(&payload, &url);
}

#[test]
fn seed_and_leech_find_each_other_through_opentracker_over_udp() {
    let Some((tracker, payload)) = setup(22, Opentracker::udp_url) else {
        return;
    };
    let url = tracker.udp_url();
    let seed = SeedThread::start(&payload, true, 0x5eed);
    seed_announced(&seed, &url);
    leech_through_tracker::<Client>(&payload, &url);
}

#[test]
fn download_command_finds_a_seed_through_opentracker() {
    let Some((tracker, payload)) = setup(23, Opentracker::udp_url) else {
        return;
    };
    let url = tracker.udp_url();
    let seed = SeedThread::start(&payload, false, 0x5eed);
    seed_announced(&seed, &url);
    let out_dir = payload.dir.path().join("out");
    let out = Command::new("timeout")
        .args(["-k", "5", "120", env!("CARGO_BIN_EXE_bitshoal"), "download"])
        .arg(&payload.torrent_path)
        .arg("-o")
        .arg(&out_dir)
        .args(["--listen", "127.0.0.1:0", "--json", "--timeout", "100"])
        .output()
        .expect("run bitshoal download");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"tracker_announced\"") && l.contains(&url)),
        "{stdout}"
    );
    payload.assert_copied_to(&out_dir);
    drop(seed);
    drop(tracker);
}

#[test]
fn scrape_over_http_and_udp_counts_the_swarm() {
    let Some((tracker, payload)) = setup(24, Opentracker::http_url) else {
        return;
    };
    let (http, udp) = (tracker.http_url(), tracker.udp_url());
    let seed = SeedThread::start(&payload, true, 0x5eed);
    seed_announced(&seed, &http);
    // A mio leech that knows the tracker by both protocols (announces go to the first tier).
    let mut leech: Client = common::loopback(0x1ee7).unwrap();
    let out = payload.dir.path().join("scraper");
    let add = AddTorrent::new(Arc::clone(&payload.info))
        .with_trackers(vec![vec![http.clone()], vec![udp.clone()]]);
    let t = leech.add_torrent_with(add, out.clone()).unwrap();
    let deadline = Instant::now() + WAIT;
    // Run until the download is done, synced, and the `completed` announce was answered.
    let mut finished = false;
    let mut completed_acked = false;
    let mut synced = false;
    while !(completed_acked && synced) {
        assert!(
            Instant::now() < deadline,
            "the leech did not finish in time"
        );
        for event in leech.turn(Duration::from_millis(100)).unwrap() {
            match event {
                ClientEvent::Session(Event::TorrentFinished { .. }) => finished = true,
                ClientEvent::Session(Event::TrackerAnnounced { .. }) if finished => {
                    completed_acked = true;
                }
                ClientEvent::Synced { result, .. } => {
                    result.expect("the files sync");
                    synced = true;
                }
                ClientEvent::Session(Event::TrackerFailed { url, error, .. }) => {
                    panic!("announce to {url} failed: {error}")
                }
                _ => {}
            }
        }
    }
    leech.scrape(t).unwrap();
    let mut results = Vec::new();
    while results.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "scrapes did not come back: {results:?}"
        );
        for event in leech.turn(Duration::from_millis(100)).unwrap() {
            match event {
                ClientEvent::Session(Event::ScrapeResult {
                    url,
                    complete,
                    incomplete,
                    downloaded,
                    ..
                }) => results.push((url, Ok((complete, incomplete, downloaded)))),
                ClientEvent::Session(Event::ScrapeFailed { url, error, .. }) => {
                    results.push((url, Err(error.to_string())));
                }
                _ => {}
            }
        }
    }
    results.sort();
    // Two seeds (the seed, and the leech after `completed`), nobody leeching, one download.
    let mut want = vec![(http, Ok((2, 0, 1))), (udp, Ok((2, 0, 1)))];
    want.sort();
    assert_eq!(results, want);
    payload.assert_copied_to(&out);
}
