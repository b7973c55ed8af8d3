//! Interop with aria2 (Debian's `aria2`, 1.36) over 127.0.0.1 with DHT, LPD and PEX off
//! (see `interop_common::aria2`): bitshoal downloads from an aria2 seed and aria2 downloads
//! from a bitshoal seed, three torrents in one aria2 process each: a single file through
//! opentracker over HTTP, nested folders with a 0-byte file and files smaller than a piece
//! through opentracker over UDP (a hybrid torrent with bitshoal's pad files when bitshoal
//! seeds: aria2 reads it as v1 and fetches the pad bytes), and the same shapes through a direct
//! connection (bitshoal dials aria2). Bytes are compared; aria2 is killed by pid at the end.
//!
//! Without aria2 (or opentracker) the tests fail under `CI=true` and print a loud skip
//! otherwise.

mod interop_common;

use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use interop_common::aria2::{self, Aria2};
use interop_common::{assert_same, Bitshoal, Case, Fixture, Maker, Route, Shape};

fn cases(udp_version: Version) -> [Case; 3] {
    [
        Case {
            label: "http-single",
            shape: Shape::Single,
            maker: Maker::Bitshoal(Version::V1),
            route: Route::Http,
        },
        Case {
            label: "udp-multi",
            shape: Shape::Multi,
            maker: Maker::Bitshoal(udp_version),
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

#[test]
fn bitshoal_downloads_from_aria2_over_http_udp_and_direct() {
    if !aria2::available_() {
        return;
    }
    // aria2 does not know pad files: seeding a hybrid torrent it would look for them on disk.
    let Some(fx) = Fixture::new(&cases(Version::V1), 600) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let torrents: Vec<_> = fx
        .torrents
        .iter()
        .map(|t| (t.path.as_path(), t.data.as_path()))
        .collect();
    let seed = Aria2::start(&fx.dir("aria2"), "aria2-seed", &torrents, &[]);
    if !fx.tracker.as_ref().is_some_and(|t| {
        fx.torrents
            .iter()
            .take(2)
            .all(|x| t.wait_for_peers(x.wire_id(), 1, 0, deadline))
    }) {
        panic!("aria2 did not announce; its log:\n{}", seed.log_summary());
    }

    let mut bitshoal = Bitshoal::new(12, |_| {});
    let out = fx.dir("bitshoal");
    let jobs: Vec<usize> = fx
        .torrents
        .iter()
        .map(|t| {
            let dial = if t.case.route == Route::Direct {
                vec![seed.addr()]
            } else {
                Vec::new()
            };
            bitshoal.leech(t, out.clone(), dial)
        })
        .collect();
    let finished = bitshoal.run_until(deadline, |b| b.all_synced(&jobs));
    assert!(finished, "bitshoal finished downloading from aria2");
    for (t, &j) in fx.torrents.iter().zip(&jobs) {
        assert_same(&t.original(), &out.join(t.name()), false);
        bitshoal.assert_announced(j, t);
    }
    bitshoal.assert_no_violation();
}

#[test]
fn aria2_downloads_from_bitshoal_over_http_udp_and_direct() {
    if !aria2::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&cases(Version::V1), 700) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut bitshoal = Bitshoal::new(13, |_| {});
    let jobs: Vec<usize> = fx
        .torrents
        .iter()
        .map(|t| bitshoal.seed(t, Vec::new()))
        .collect();
    // The seed announces first, so aria2's announces return it.
    assert!(
        bitshoal.run_until(deadline, |b| (0..2)
            .all(|j| !b.jobs[j].announced.is_empty())),
        "bitshoal announced"
    );
    let out = fx.dir("aria2-out");
    let torrents: Vec<_> = fx
        .torrents
        .iter()
        .map(|t| (t.path.as_path(), out.as_path()))
        .collect();
    let leech = Aria2::start(&fx.dir("aria2"), "aria2-leech", &torrents, &[]);
    // Nothing tells aria2 about bitshoal for the direct torrent: bitshoal dials it.
    bitshoal.jobs[2].dial = vec![leech.addr()];
    let all = bitshoal.run_until(deadline, |_| leech.completed() == 3);
    assert!(
        all,
        "aria2 finished {} of 3 downloads from bitshoal; its log:\n{}",
        leech.completed(),
        leech.log_summary()
    );
    drop(leech);
    for (t, &j) in fx.torrents.iter().zip(&jobs) {
        assert_same(&t.original(), &out.join(t.name()), false);
        assert!(
            bitshoal.uploaded(j) > 0,
            "{}: bitshoal uploaded",
            t.case.label
        );
    }
    bitshoal.assert_no_violation();
}
