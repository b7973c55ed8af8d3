//! Interop with libtorrent (Debian's python3-libtorrent 2.0, driven by `interop/lt_peer.py`)
//! over 127.0.0.1, with DHT, LSD, UPnP, NAT-PMP and uTP off.
//!
//! - bitshoal downloads from a libtorrent seed, and libtorrent from a bitshoal seed, three
//!   torrents at once in one process each: a single file through opentracker over HTTP, a
//!   multi-file hybrid torrent (nested folders, a 0-byte file, files smaller than a piece, pad
//!   files — made by libtorrent when libtorrent seeds) through opentracker over UDP, and a
//!   multi-file v1 torrent through a direct peer address. libtorrent's peer log shows the fast
//!   extension (HAVE_ALL / HAVE_NONE) and the BEP 10 handshakes in both directions.
//! - choke/unchoke cycles and rejected requests: a libtorrent seed with one unchoke slot
//!   rotating between bitshoal and a second libtorrent leecher;
//! - a libtorrent peer that disconnects and reconnects mid-download, as leecher and as seed.
//!
//! Every transfer compares the bytes; every process is killed by pid when the test ends.
//! Without libtorrent (or opentracker) the tests fail under `CI=true` and print a loud skip
//! otherwise.

mod interop_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use interop_common::libtorrent::{self as lt, Report};
use interop_common::{assert_same, Bitshoal, Case, Fixture, Maker, Route, Shape};
use serde_json::json;

/// Peer-log messages the transfer tests ask libtorrent to report.
const LOGGED: [&str; 7] = [
    "HAVE_ALL",
    "HAVE_NONE",
    "EXTENDED_HANDSHAKE",
    "ALLOWED_FAST",
    "REJECT_PIECE",
    "CHOKE",
    "UNCHOKE",
];

fn loopback(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// The cases of the two transfer tests; `maker` makes the UDP-tracked hybrid torrent.
fn transfer_cases(maker: Maker) -> [Case; 3] {
    [
        Case {
            label: "http-single",
            shape: Shape::Single,
            maker: Maker::Bitshoal(Version::V1),
            route: Route::Http,
        },
        Case {
            label: "udp-hybrid",
            shape: Shape::Multi,
            maker,
            route: Route::Udp,
        },
        Case {
            label: "direct-multi",
            shape: Shape::Multi,
            maker: Maker::Bitshoal(Version::V1),
            route: Route::Direct,
        },
    ]
}

/// libtorrent read bitshoal's BEP 10 handshake: its client name, listen port and request
/// queue length. (bitshoal offers no extension messages yet, so its handshake has no `m`.)
fn assert_understood_bitshoal_handshake(report: &Report, bitshoal_port: u16) {
    let handshakes = report.logged("in", "EXTENDED_HANDSHAKE", "");
    let ours = handshakes
        .iter()
        .find(|l| l.contains("'v': 'bitshoal"))
        .unwrap_or_else(|| panic!("libtorrent logged no handshake from bitshoal: {handshakes:?}"));
    assert!(ours.contains(&format!("'p': {bitshoal_port}")), "{ours}");
    assert!(ours.contains("'reqq':"), "{ours}");
}

#[test]
fn bitshoal_downloads_from_libtorrent_over_http_udp_and_direct() {
    if !lt::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&transfer_cases(Maker::Libtorrent), 100) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let specs: Vec<_> = fx
        .torrents
        .iter()
        .map(|t| lt::torrent(&t.path, &t.data, true, &[]))
        .collect();
    let seed = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({"torrents": specs, "log": LOGGED}),
    );
    let port = lt::ready(&seed, deadline);
    fx.wait_announced(1, 0, deadline);

    let mut bitshoal = Bitshoal::new(7, |_| {});
    let out = fx.dir("bitshoal");
    bitshoal.download_all(&fx, &out, |_| loopback(port), deadline, "libtorrent");

    // BEP 6: libtorrent announced all its pieces with HAVE_ALL; bitshoal, empty, with
    // HAVE_NONE. BEP 10: libtorrent read bitshoal's handshake.
    let mut report = Report::default();
    let logged = report.wait(&seed, deadline, |r| {
        !r.logged("out", "HAVE_ALL", "").is_empty()
            && !r.logged("in", "HAVE_NONE", "").is_empty()
            && !r.logged("in", "EXTENDED_HANDSHAKE", "").is_empty()
    });
    assert!(logged, "{report:?}");
    assert_understood_bitshoal_handshake(&report, bitshoal.addr().port());
}

#[test]
fn libtorrent_downloads_from_bitshoal_over_http_udp_and_direct() {
    if !lt::available_() {
        return;
    }
    let cases = transfer_cases(Maker::Bitshoal(Version::Hybrid));
    let Some(fx) = Fixture::new(&cases, 200) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut bitshoal = Bitshoal::new(8, |_| {});
    let jobs: Vec<usize> = fx
        .torrents
        .iter()
        .map(|t| bitshoal.seed(t, Vec::new()))
        .collect();
    // The seed announces first, so libtorrent's announce returns it.
    let tracked: Vec<usize> = (0..2).collect();
    assert!(
        bitshoal.run_until(deadline, |b| tracked
            .iter()
            .all(|&j| !b.jobs[j].announced.is_empty())),
        "bitshoal announced"
    );
    let lt_dir = fx.dir("libtorrent");
    let peer = vec![bitshoal.addr().to_string()];
    let specs: Vec<_> = fx
        .torrents
        .iter()
        .map(|t| {
            let peers: &[String] = if t.case.route == Route::Direct {
                &peer
            } else {
                &[]
            };
            lt::torrent(&t.path, &lt_dir, false, peers)
        })
        .collect();
    let leech = lt::start(
        fx.work.path(),
        "lt-leech",
        json!({"torrents": specs, "log": LOGGED}),
    );
    let mut report = Report::default();
    let done = bitshoal.run_until(deadline, |_| {
        report.absorb(&leech);
        report.done.len() == 3
    });
    assert!(
        done,
        "libtorrent finished downloading from bitshoal: {report:?}"
    );
    drop(leech); // libtorrent has written its files; stop it before reading them
    for (t, &j) in fx.torrents.iter().zip(&jobs) {
        assert_same(&t.original(), &lt_dir.join(t.name()), false);
        assert!(
            bitshoal.uploaded(j) > 0,
            "{}: bitshoal uploaded",
            t.case.label
        );
    }
    bitshoal.assert_no_violation();
    // BEP 6 both ways: bitshoal, a seed, sent HAVE_ALL; libtorrent, empty, HAVE_NONE.
    assert!(
        !report.logged("in", "HAVE_ALL", "").is_empty(),
        "{report:?}"
    );
    assert!(
        !report.logged("out", "HAVE_NONE", "").is_empty(),
        "{report:?}"
    );
    assert_understood_bitshoal_handshake(&report, bitshoal.addr().port());
}

/// A libtorrent seed with one unchoke slot, rotated every piece between bitshoal and a
/// libtorrent leecher: bitshoal is choked and unchoked again and again (requests in flight at a
/// choke come back rejected under the fast extension), re-requests, and finishes intact.
#[test]
fn bitshoal_survives_choke_unchoke_cycles_and_rejects_from_libtorrent() {
    if !lt::available_() {
        return;
    }
    let case = Case {
        label: "choked",
        shape: Shape::Big(1024),
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Direct,
    };
    let Some(fx) = Fixture::new(&[case], 300) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(90);
    let seed = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({
            "torrents": [lt::torrent(&t.path, &t.data, true, &[])],
            "log": ["CHOKE", "UNCHOKE", "REJECT_PIECE", "ALLOWED_FAST"],
            "settings": {
                "unchoke_slots_limit": 1,
                "seed_choking_algorithm": 0,
                "seeding_piece_quota": 1,
                "unchoke_interval": 1,
                "upload_rate_limit": 150_000,
            },
        }),
    );
    let port = lt::ready(&seed, deadline);
    let other = lt::start(
        fx.work.path(),
        "lt-leech",
        json!({"torrents": [lt::torrent(&t.path, &fx.dir("lt-leech"), false,
                                        &[format!("127.0.0.1:{port}")])]}),
    );

    let mut bitshoal = Bitshoal::new(9, |_| {});
    let out = fx.dir("bitshoal");
    let job = bitshoal.leech(t, out.clone(), vec![loopback(port)]);
    let (mut unchokes, mut chokes, mut was_choking) = (0, 0, true);
    let finished = bitshoal.run_until(deadline, |b| {
        let id = b.jobs[job].id;
        let now = b
            .client
            .session()
            .peers(bitshoal_core::time::Instant::ZERO, id);
        if let Some(p) = now.iter().find(|p| p.addr.port() == port) {
            if was_choking && !p.peer_choking {
                unchokes += 1;
            } else if !was_choking && p.peer_choking {
                chokes += 1;
            }
            was_choking = p.peer_choking;
        }
        b.all_synced(&[job])
    });
    assert!(finished, "bitshoal finished through the choke cycles");
    assert_same(&t.original(), &out.join(t.name()), false);
    bitshoal.assert_no_violation();
    // libtorrent names bitshoal "BTSlave" (its table maps the peer id prefix `-BS` to that).
    let mut report = Report::default();
    report.wait(&seed, Instant::now() + Duration::from_secs(3), |r| {
        r.logged("out", "CHOKE", "BTSlave").len() >= chokes
    });
    let to_bitshoal = |name| report.logged("out", name, "BTSlave").len();
    eprintln!(
        "bitshoal saw {unchokes} unchokes, {chokes} chokes; libtorrent sent it {} CHOKE, {} \
         UNCHOKE, {} REJECT_PIECE",
        to_bitshoal("CHOKE"),
        to_bitshoal("UNCHOKE"),
        to_bitshoal("REJECT_PIECE")
    );
    assert!(
        unchokes >= 2 && chokes >= 1,
        "bitshoal went through a choke cycle"
    );
    assert!(to_bitshoal("CHOKE") >= 1, "{report:?}");
    // BEP 6: requests queued at a choke are rejected, and bitshoal asked again elsewhere.
    assert!(to_bitshoal("REJECT_PIECE") >= 1, "{report:?}");
    drop(other);
}

/// A libtorrent leecher pauses (closing its connection) a third of the way through a download
/// from a rate-limited bitshoal seed, resumes, dials again and finishes.
#[test]
fn a_libtorrent_leecher_disconnects_and_reconnects_mid_download() {
    if !lt::available_() {
        return;
    }
    let case = Case {
        label: "reconnect-leech",
        shape: Shape::Big(1024),
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Direct,
    };
    let Some(fx) = Fixture::new(&[case], 400) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut bitshoal = Bitshoal::new(10, |c| c.upload_rate_limit = 200_000);
    let job = bitshoal.seed(t, Vec::new());
    let lt_dir = fx.dir("libtorrent");
    let leech = lt::start(
        fx.work.path(),
        "lt-leech",
        json!({
            "torrents": [lt::torrent(&t.path, &lt_dir, false, &[bitshoal.addr().to_string()])],
            "pause": {"index": 0, "after_bytes": 350_000, "seconds": 1.0},
            // libtorrent waits min_reconnect_time (60 s) before dialing a peer again.
            "settings": {"min_reconnect_time": 1},
        }),
    );
    let mut report = Report::default();
    let done = bitshoal.run_until(deadline, |_| {
        report.absorb(&leech);
        !report.done.is_empty()
    });
    assert!(done, "libtorrent finished after reconnecting: {report:?}");
    drop(leech);
    assert_same(&t.original(), &lt_dir.join(t.name()), false);
    assert!(
        report.other.iter().any(|l| l.starts_with("PAUSED")),
        "{report:?}"
    );
    assert!(
        report.other.iter().any(|l| l.starts_with("RESUMED")),
        "{report:?}"
    );
    let connections = bitshoal.connected.get(&job).map_or(0, Vec::len);
    assert!(connections >= 2, "libtorrent connected {connections} times");
    bitshoal.assert_no_violation();
}

/// A libtorrent seed pauses (closing every connection) a third of the way through; bitshoal
/// dials it again and finishes the download intact.
#[test]
fn a_libtorrent_seed_disconnects_and_bitshoal_reconnects_mid_download() {
    if !lt::available_() {
        return;
    }
    let case = Case {
        label: "reconnect-seed",
        shape: Shape::Big(1024),
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Direct,
    };
    let Some(fx) = Fixture::new(&[case], 500) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(90);
    let seed = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({
            "torrents": [lt::torrent(&t.path, &t.data, true, &[])],
            "settings": {"upload_rate_limit": 200_000},
            "pause": {"index": 0, "after_bytes": 300_000, "seconds": 1.0},
        }),
    );
    let port = lt::ready(&seed, deadline);
    let mut bitshoal = Bitshoal::new(11, |_| {});
    let out = fx.dir("bitshoal");
    let job = bitshoal.leech(t, out.clone(), vec![loopback(port)]);
    let finished = bitshoal.run_until(deadline, |b| b.all_synced(&[job]));
    assert!(finished, "bitshoal finished after reconnecting");
    assert_same(&t.original(), &out.join(t.name()), false);
    let mut report = Report::default();
    report.absorb(&seed);
    assert!(
        report.other.iter().any(|l| l.starts_with("RESUMED")),
        "{report:?}"
    );
    let connections = bitshoal.connected.get(&job).map_or(0, Vec::len);
    assert!(connections >= 2, "bitshoal connected {connections} times");
    bitshoal.assert_no_violation();
}
