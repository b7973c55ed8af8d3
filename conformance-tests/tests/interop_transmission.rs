//! Interop with Transmission 3.00 (Debian's transmission-cli) over 127.0.0.1, with DHT, LPD,
//! PEX, uTP and port mapping off (see `interop_common::transmission`): bitshoal downloads from
//! Transmission seeds and Transmission leechers download from a bitshoal seed, one
//! transmission-cli per torrent: a single file through opentracker over HTTP, nested folders
//! with a 0-byte file and files smaller than a piece through opentracker over UDP, and the
//! same shapes through a direct address. Transmission never dials peers in 127.0.0.0/8 (it
//! accepts them), so bitshoal dials it: the peers the tracker returns, or the address given.
//! Bytes are compared; every transmission-cli is killed by pid when the test ends.
//!
//! Without transmission-cli (or opentracker) the tests fail under `CI=true` and print a loud
//! skip otherwise.

mod interop_common;

use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use interop_common::transmission::{self, Transmission};
use interop_common::{assert_same, Bitshoal, Case, Fixture, Maker, Route, Shape};

/// Transmission 3.00 does not know pad files, so every torrent is v1.
const CASES: [Case; 3] = [
    Case {
        label: "http-single",
        shape: Shape::Single,
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Http,
    },
    Case {
        label: "udp-multi",
        shape: Shape::Multi,
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Udp,
    },
    Case {
        label: "direct-multi",
        shape: Shape::Multi,
        maker: Maker::Bitshoal(Version::V1),
        route: Route::Direct,
    },
];

#[test]
fn bitshoal_downloads_from_transmission_over_http_udp_and_direct() {
    if !transmission::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&CASES, 800) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let scratch = fx.dir("transmission");
    let seeds: Vec<Transmission> = fx
        .torrents
        .iter()
        .map(|t| Transmission::start(&scratch, t.case.label, &t.path, &t.data, None))
        .collect();
    for s in &seeds {
        s.wait_listening(deadline);
    }
    // Transmission verifies its data, then announces as a seed.
    fx.wait_announced(1, 0, deadline);

    let mut bitshoal = Bitshoal::new(21, |_| {});
    let out = fx.dir("bitshoal");
    bitshoal.download_all(&fx, &out, |i| seeds[i].addr(), deadline, "transmission");
}

#[test]
fn transmission_downloads_from_bitshoal_over_http_udp_and_direct() {
    if !transmission::available_() {
        return;
    }
    let Some(fx) = Fixture::new(&CASES, 900) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let scratch = fx.dir("transmission");
    let out = fx.dir("transmission-out");
    let leeches: Vec<Transmission> = fx
        .torrents
        .iter()
        .map(|t| Transmission::start(&scratch, t.case.label, &t.path, &out, None))
        .collect();
    for l in &leeches {
        l.wait_listening(deadline);
    }
    // The leechers announce first, so bitshoal's announces return them and bitshoal dials.
    fx.wait_announced(0, 1, deadline);
    let mut bitshoal = Bitshoal::new(22, |_| {});
    let jobs: Vec<usize> = fx
        .torrents
        .iter()
        .zip(&leeches)
        .map(|(t, l)| {
            let dial = if t.case.route == Route::Direct {
                vec![l.addr()]
            } else {
                Vec::new()
            };
            bitshoal.seed(t, dial)
        })
        .collect();
    let all = bitshoal.run_until(deadline, |_| leeches.iter().all(Transmission::finished));
    assert!(
        all,
        "every transmission-cli finished downloading from bitshoal"
    );
    drop(leeches);
    for (t, &j) in fx.torrents.iter().zip(&jobs) {
        // Transmission 3.00 does not create a torrent's 0-byte files.
        assert_same(&t.original(), &out.join(t.name()), true);
        assert!(
            bitshoal.uploaded(j) > 0,
            "{}: bitshoal uploaded",
            t.case.label
        );
        bitshoal.assert_announced(j, t);
    }
    bitshoal.assert_no_violation();
}
