//! Mixed swarms over 127.0.0.1: one seed that is not bitshoal, bitshoal and two other clients
//! leeching at once. The seed's upload is rate-limited, so the leechers must trade pieces among
//! themselves to finish in time. Everyone finishes with the right bytes, and bitshoal uploads
//! to each of the other leechers (per-connection payload totals, grouped by the BEP 20 client
//! prefix of the peer id).
//!
//! - a libtorrent seed; bitshoal, aria2 and a second libtorrent leeching (HTTP tracker);
//! - a libtorrent seed; bitshoal, Transmission and aria2 leeching (UDP tracker). Transmission
//!   3.00 never dials 127.0.0.0/8, so it only trades with those who dial it: bitshoal and aria2
//!   learn its address from the tracker and do.
//!
//! bitshoal joins last, when the tracker knows every other peer, and dials them all from its
//! announce (the others would only learn bitshoal at their next announce). Every process is
//! killed by pid when its test ends. Without the clients or opentracker the tests fail under
//! `CI=true` and print a loud skip otherwise.

mod interop_common;

use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use interop_common::aria2::{self, Aria2};
use interop_common::libtorrent::{self as lt, Report};
use interop_common::transmission::{self, Transmission};
use interop_common::{assert_same, Bitshoal, Case, Fixture, Maker, Route, Shape};
use serde_json::json;

/// The seed's upload limit in bytes per second: a copy of the payload takes it about 10 s, so
/// most pieces reach a leecher through another leecher.
const SEED_RATE: u64 = 200_000;

/// A 2 MiB v1 torrent (aria2 1.36 and Transmission 3.00 do not read hybrids) on `route`.
fn case(route: Route) -> Case {
    Case {
        label: "swarm",
        shape: Shape::Big(2048),
        maker: Maker::Bitshoal(Version::V1),
        route,
    }
}

/// Panics unless bitshoal uploaded to peers of `client`; prints what it traded.
fn assert_uploaded_to(bitshoal: &Bitshoal, client: &str) {
    let (down, up) = bitshoal.traded_with(client);
    eprintln!("bitshoal traded with {client}: downloaded {down} B, uploaded {up} B");
    assert!(
        up > 0,
        "bitshoal uploaded nothing to {client}: {:?}",
        bitshoal.per_conn
    );
}

#[test]
fn a_libtorrent_seed_with_bitshoal_aria2_and_libtorrent_leeching() {
    if !lt::available_() || !aria2::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&[case(Route::Http)], 1000) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(120);
    let seed = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({
            "torrents": [lt::torrent(&t.path, &t.data, true, &[])],
            "settings": {"upload_rate_limit": SEED_RATE, "unchoke_slots_limit": 2},
            "deadline": 120,
        }),
    );
    lt::ready(&seed, deadline);
    fx.wait_announced(1, 0, deadline);
    let lt_out = fx.dir("lt-leech");
    let lt_leech = lt::start(
        fx.work.path(),
        "lt-leech",
        json!({"torrents": [lt::torrent(&t.path, &lt_out, false, &[])], "deadline": 120}),
    );
    let aria2_out = fx.dir("aria2-out");
    let aria2 = Aria2::start(
        &fx.dir("aria2"),
        "aria2-leech",
        &[(t.path.as_path(), aria2_out.as_path())],
        &[],
    );
    fx.wait_announced(1, 2, deadline);

    let mut bitshoal = Bitshoal::new(30, |_| {});
    let out = fx.dir("bitshoal");
    let job = bitshoal.leech(t, out.clone(), Vec::new());
    let mut report = Report::default();
    let all = bitshoal.run_until(deadline, |b| {
        b.sample_peers();
        report.absorb(&lt_leech);
        b.all_synced(&[job]) && !report.done.is_empty() && aria2.completed() == 1
    });
    assert!(
        all,
        "everyone finished: bitshoal {}, libtorrent {:?}, aria2 {}; aria2's log:\n{}",
        bitshoal.all_synced(&[job]),
        report,
        aria2.completed(),
        aria2.log_summary()
    );
    drop((lt_leech, aria2, seed));
    assert_same(&t.original(), &out.join(t.name()), false);
    assert_same(&t.original(), &lt_out.join(t.name()), false);
    assert_same(&t.original(), &aria2_out.join(t.name()), false);
    bitshoal.assert_announced(job, t);
    bitshoal.assert_no_violation();
    assert_uploaded_to(&bitshoal, "aria2");
    // The libtorrent seed never downloads: what went to libtorrent went to the leecher.
    assert_uploaded_to(&bitshoal, "libtorrent");
}

#[test]
fn a_libtorrent_seed_with_bitshoal_transmission_and_aria2_leeching() {
    if !lt::available_() || !aria2::available_() || !transmission::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&[case(Route::Udp)], 1100) else {
        return;
    };
    let t = &fx.torrents[0];
    let deadline = Instant::now() + Duration::from_secs(120);
    let seed = lt::start(
        fx.work.path(),
        "lt-seed",
        json!({
            "torrents": [lt::torrent(&t.path, &t.data, true, &[])],
            "settings": {"upload_rate_limit": SEED_RATE, "unchoke_slots_limit": 2},
            "deadline": 120,
        }),
    );
    lt::ready(&seed, deadline);
    fx.wait_announced(1, 0, deadline);
    // Transmission first, so the others' announces return it and they dial it.
    let tr_out = fx.dir("transmission-out");
    let tr = Transmission::start(&fx.dir("transmission"), "tr-leech", &t.path, &tr_out, None);
    tr.wait_listening(deadline);
    fx.wait_announced(1, 1, deadline);
    let aria2_out = fx.dir("aria2-out");
    let aria2 = Aria2::start(
        &fx.dir("aria2"),
        "aria2-leech",
        &[(t.path.as_path(), aria2_out.as_path())],
        &[],
    );
    fx.wait_announced(1, 2, deadline);

    let mut bitshoal = Bitshoal::new(31, |_| {});
    let out = fx.dir("bitshoal");
    let job = bitshoal.leech(t, out.clone(), Vec::new());
    let all = bitshoal.run_until(deadline, |b| {
        b.sample_peers();
        b.all_synced(&[job]) && tr.finished() && aria2.completed() == 1
    });
    assert!(
        all,
        "everyone finished: bitshoal {}, transmission {}, aria2 {}; aria2's log:\n{}",
        bitshoal.all_synced(&[job]),
        tr.finished(),
        aria2.completed(),
        aria2.log_summary()
    );
    drop((tr, aria2, seed));
    assert_same(&t.original(), &out.join(t.name()), false);
    assert_same(&t.original(), &tr_out.join(t.name()), false);
    assert_same(&t.original(), &aria2_out.join(t.name()), false);
    bitshoal.assert_announced(job, t);
    bitshoal.assert_no_violation();
    assert_uploaded_to(&bitshoal, "transmission");
    assert_uploaded_to(&bitshoal, "aria2");
}
