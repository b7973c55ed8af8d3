//! Trackers in the simulator: a swarm that finds itself through an in-sim tracker (HTTP, UDP,
//! and UDP by host name), tier failover and promotion (BEP 12), the UDP retransmission
//! schedule on the virtual clock (BEP 15: 15·2ⁿ s), scrapes (BEP 48 and BEP 15), what a
//! checked, paused or private (BEP 27) torrent announces, and the external address a tracker
//! reports (BEP 24).

use bitshoal_conformance::sim::{
    LinkProfile, NetworkRequest, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec, TrackerConfig,
    TrackerProtocol,
};
use bitshoal_core::create::Version;
use bitshoal_core::id::TorrentId;
use bitshoal_core::session::{AddTorrent, CheckMode, Event, TorrentState};
use bitshoal_core::time::{Duration, Instant};
use bitshoal_core::tracker::{AnnounceEvent, TrackerError};

fn torrent(sim: &mut Sim) -> TestTorrent {
    TestTorrent::build(sim.rng(), &TorrentSpec::single(200_000, 16 * 1024))
}

/// The tracker events of a node, as (time, url, announced?) in order.
fn tracker_events(sim: &Sim, node: NodeId) -> Vec<(Instant, String, bool)> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TrackerAnnounced { url, .. } => Some((*at, url.clone(), true)),
            Event::TrackerFailed { url, .. } => Some((*at, url.clone(), false)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_swarm_finds_itself_through_the_tracker_over_http_udp_and_udp_by_name() {
    let mut sim = Sim::new(41);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig {
        name: Some("tracker.sim".into()),
        ..TrackerConfig::default()
    });
    let urls = [
        sim.tracker(tracker).http_url(),
        sim.tracker(tracker).udp_url(),
        sim.tracker(tracker).udp_url_by_name().unwrap(),
    ];
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent_with_trackers(seed, &t, vec![vec![urls[0].clone()]]);
    let mut leeches: Vec<(NodeId, TorrentId)> = Vec::new();
    for i in 0..4 {
        let node = sim.add_node(NodeConfig::default());
        let url = urls[(i + 1) % urls.len()].clone();
        let id = sim.add_torrent_with_trackers(node, &t, vec![vec![url]]);
        leeches.push((node, id));
    }
    // No connect is ever asked for: every peer comes from the tracker.
    sim.run_until(
        |s| leeches.iter().all(|&(n, id)| s.node(n).is_finished(id)),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for &(node, id) in &leeches {
        assert_eq!(sim.node(node).disk().content(id).unwrap(), &t.content[..]);
        let events = tracker_events(&sim, node);
        assert!(events.iter().all(|e| e.2), "no announce failed: {events:?}");
        assert!(!events.is_empty());
    }
    let tr = sim.tracker(tracker);
    let info_hash = t.info.hashes().wire_id();
    assert_eq!(tr.swarm(&info_hash).len(), 5, "every node announced");
    for protocol in [TrackerProtocol::Http, TrackerProtocol::Udp] {
        assert!(tr
            .log()
            .iter()
            .any(|r| r.protocol == protocol && r.announce));
    }
}

#[test]
fn a_dead_first_tier_fails_over_to_the_second() {
    let mut sim = Sim::new(42);
    let t = torrent(&mut sim);
    let dead = sim.add_tracker(TrackerConfig {
        alive: false,
        ..TrackerConfig::default()
    });
    let live = sim.add_tracker(TrackerConfig::default());
    let tiers = vec![
        vec![sim.tracker(dead).http_url()],
        vec![sim.tracker(live).udp_url()],
    ];
    let seed = sim.add_node(NodeConfig::default());
    sim.seed_torrent_with_trackers(seed, &t, tiers.clone());
    let leech = sim.add_node(NodeConfig::default());
    let id = sim.add_torrent_with_trackers(leech, &t, tiers.clone());
    sim.run_until(|s| s.node(leech).is_finished(id), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    for node in [seed, leech] {
        let events = tracker_events(&sim, node);
        assert!(events.len() >= 2, "{events:?}");
        assert_eq!(
            (events[0].1.as_str(), events[0].2),
            (tiers[0][0].as_str(), false)
        );
        assert_eq!(
            (events[1].1.as_str(), events[1].2),
            (tiers[1][0].as_str(), true)
        );
        // The failure was a refused connection, reported as a transport error.
        let failed = sim.node(node).events().iter().find_map(|(_, e)| match e {
            Event::TrackerFailed { error, .. } => Some(error.clone()),
            _ => None,
        });
        assert!(
            matches!(failed, Some(TrackerError::Transport { .. })),
            "{failed:?}"
        );
    }
    assert_eq!(sim.tracker(dead).announces_from(leech).len(), 1);
    assert!(sim.tracker(dead).log().iter().all(|r| !r.answered));
}

#[test]
fn the_tracker_that_answers_is_promoted_within_its_tier() {
    // One tier of two trackers, shuffled (BEP 12): whichever order the shuffle picked, once
    // the live one answers it moves to the front and the dead one is never asked again.
    let mut dead_tried_first = 0;
    for seed in 0..6 {
        let mut sim = Sim::new(100 + seed);
        let t = torrent(&mut sim);
        let dead = sim.add_tracker(TrackerConfig {
            alive: false,
            ..TrackerConfig::default()
        });
        let live = sim.add_tracker(TrackerConfig {
            interval: 60, // the shortest interval the session accepts
            ..TrackerConfig::default()
        });
        let tier = vec![sim.tracker(dead).http_url(), sim.tracker(live).http_url()];
        let node = sim.add_node(NodeConfig::default());
        sim.add_torrent_with_trackers(node, &t, vec![tier]);
        sim.run_for(Duration::from_secs(10 * 60))
            .unwrap_or_else(|e| panic!("{e}"));
        let live_announces = sim.tracker(live).announces_from(node);
        assert!(
            live_announces.len() >= 9,
            "seed {seed}: a regular announce every minute, got {}",
            live_announces.len()
        );
        let first_success = live_announces[0].at;
        let dead_log = sim.tracker(dead).announces_from(node);
        assert!(dead_log.len() <= 1, "seed {seed}: {dead_log:?}");
        assert!(dead_log.iter().all(|r| r.at < first_success));
        dead_tried_first += dead_log.len();
        // Regular announces keep the tracker's interval, counted from each answer's arrival
        // (a round trip after the announce left).
        let rtt = LinkProfile::LAN.latency * 2;
        for pair in live_announces.windows(2).skip(1) {
            assert_eq!(
                pair[1].at - pair[0].at,
                Duration::from_secs(60) + rtt,
                "seed {seed}"
            );
        }
    }
    // The shuffle put the dead tracker first for some seeds: those runs show the promotion.
    assert!(dead_tried_first > 0, "no seed tried the dead tracker first");
}

#[test]
fn a_dead_udp_tracker_is_retried_at_fifteen_times_two_to_the_n_seconds() {
    let mut sim = Sim::new(43);
    let t = torrent(&mut sim);
    let dead = sim.add_tracker(TrackerConfig {
        alive: false,
        ..TrackerConfig::default()
    });
    let url = sim.tracker(dead).udp_url();
    let node = sim.add_node(NodeConfig::default());
    sim.add_torrent_with_trackers(node, &t, vec![vec![url.clone()]]);
    sim.run_for(Duration::from_secs(119))
        .unwrap_or_else(|e| panic!("{e}"));
    let sent: Vec<Instant> = sim.tracker(dead).log().iter().map(|r| r.at).collect();
    // Connect requests (no connection id ever came) at 0, 15, 45 and 105 s.
    assert_eq!(sent.len(), 4, "{sent:?}");
    let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [15, 30, 60].map(Duration::from_secs).to_vec(),
        "BEP 15 waits 15·2ⁿ s"
    );
    assert!(tracker_events(&sim, node).is_empty(), "not failed yet");
    // The tier policy gives up at its announce timeout (2 min after the first send) and, the
    // only tracker backing off (15 s doubling, up to 25 % jitter), starts over with a fresh
    // connect (attempt n = 0 again).
    sim.run_for(Duration::from_secs(25))
        .unwrap_or_else(|e| panic!("{e}"));
    let sent: Vec<Instant> = sim.tracker(dead).log().iter().map(|r| r.at).collect();
    assert_eq!(sent.len(), 5, "{sent:?}");
    let retry = sent[4] - sent[0];
    let timeout = Duration::from_secs(120);
    // The give-up is reported to the application, with the tracker's URL.
    let failed: Vec<_> = tracker_events(&sim, node)
        .into_iter()
        .filter(|e| !e.2)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].1, url);
    assert!(
        retry >= timeout + Duration::from_secs(15)
            && retry <= timeout + Duration::from_millis(18_750),
        "retried {retry:?} after the first send"
    );

    // Revived, the tracker hears the retry after the backoff and answers it.
    sim.set_tracker_alive(dead, true);
    sim.run_for(Duration::from_secs(10 * 60))
        .unwrap_or_else(|e| panic!("{e}"));
    let events = tracker_events(&sim, node);
    assert!(events.iter().any(|e| e.2), "{events:?}");
}

/// A scrape's outcome: (seeders, leechers, completed downloads) or why it failed.
type Scraped = Result<(u32, u32, u32), TrackerError>;

/// The scrape outcomes of a node, as (time, url, outcome) in order.
fn scrape_events(sim: &Sim, node: NodeId) -> Vec<(Instant, String, Scraped)> {
    sim.node(node)
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            Event::ScrapeResult {
                url,
                complete,
                incomplete,
                downloaded,
                ..
            } => Some((*at, url.clone(), Ok((*complete, *incomplete, *downloaded)))),
            Event::ScrapeFailed { url, error, .. } => Some((*at, url.clone(), Err(error.clone()))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_scrape_over_http_udp_and_udp_by_name_reports_the_swarms_counts() {
    let seed = 44;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig {
        name: Some("tracker.sim".into()),
        ..TrackerConfig::default()
    });
    let tr = sim.tracker(tracker);
    let (http, udp, by_name) = (tr.http_url(), tr.udp_url(), tr.udp_url_by_name().unwrap());
    let seeder = sim.add_node(NodeConfig::default());
    sim.seed_torrent_with_trackers(seeder, &t, vec![vec![http.clone()]]);
    let mut leeches = Vec::new();
    for url in [&http, &udp] {
        let node = sim.add_node(NodeConfig::default());
        let id = sim.add_torrent_with_trackers(node, &t, vec![vec![url.clone()]]);
        leeches.push((node, id));
    }
    sim.run_until(
        |s| leeches.iter().all(|&(n, id)| s.node(n).is_finished(id)),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Let the `completed` announces land.
    sim.run_for(Duration::from_secs(1)).unwrap();

    // An observer seeding the torrent too (so its own announce adds a known count) scrapes
    // the tracker by each of its three names.
    let observer = sim.add_node(NodeConfig::default());
    let tiers = vec![vec![http.clone()], vec![udp.clone()], vec![by_name.clone()]];
    let id = sim.seed_torrent_with_trackers(observer, &t, tiers);
    sim.run_for(Duration::from_secs(1)).unwrap();
    sim.with_session(observer, |s, now| s.scrape(now, id))
        .unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    let mut results = scrape_events(&sim, observer);
    results.sort_by(|a, b| a.1.cmp(&b.1));
    // Three seeds and the observer are complete; two leeches sent `completed`.
    let expected = Ok((4, 0, 2));
    let mut want = vec![http, udp, by_name];
    want.sort();
    assert_eq!(
        results
            .iter()
            .map(|r| (r.1.clone(), r.2.clone()))
            .collect::<Vec<_>>(),
        want.into_iter()
            .map(|u| (u, expected.clone()))
            .collect::<Vec<_>>(),
        "seed {seed}"
    );
    let scrapes = sim.tracker(tracker).scrapes_from(observer);
    assert!(scrapes
        .iter()
        .any(|r| r.protocol == TrackerProtocol::Http && r.answered));
    assert_eq!(
        scrapes
            .iter()
            .filter(|r| r.protocol == TrackerProtocol::Udp)
            .count(),
        2,
        "one UDP scrape per URL: {scrapes:?}"
    );
}

#[test]
fn scrape_failures_are_reported_per_tracker_and_min_request_interval_is_kept() {
    let seed = 45;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let live = sim.add_tracker(TrackerConfig {
        min_scrape_interval: 300,
        ..TrackerConfig::default()
    });
    let dead = sim.add_tracker(TrackerConfig {
        alive: false,
        ..TrackerConfig::default()
    });
    let stranger = sim.add_tracker(TrackerConfig::default());
    let live_url = sim.tracker(live).http_url();
    let dead_url = sim.tracker(dead).udp_url();
    // Not `.../announce`: no scrape URL by BEP 48's convention.
    let odd_url = format!("http://{}/tracker.php", sim.tracker(live).addr());
    // A tracker that never heard of the torrent (nobody announces to it: it is in a tier
    // after a working one).
    let stranger_url = sim.tracker(stranger).http_url();
    let node = sim.add_node(NodeConfig::default());
    let tiers = vec![
        vec![live_url.clone()],
        vec![dead_url.clone()],
        vec![odd_url.clone()],
        vec![stranger_url.clone()],
    ];
    let id = sim.seed_torrent_with_trackers(node, &t, tiers);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let start = sim.now();
    sim.with_session(node, |s, now| s.scrape(now, id)).unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    let outcome = |sim: &Sim, url: &str| {
        scrape_events(sim, node)
            .into_iter()
            .filter(|e| e.1 == url)
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&sim, &live_url).len(), 1);
    assert_eq!(outcome(&sim, &live_url)[0].2, Ok((1, 0, 0)), "seed {seed}");
    assert_eq!(
        outcome(&sim, &odd_url)[0].2,
        Err(TrackerError::NoScrape),
        "seed {seed}"
    );
    assert_eq!(
        outcome(&sim, &stranger_url)[0].2,
        Err(TrackerError::NotListed),
        "seed {seed}"
    );
    assert!(outcome(&sim, &dead_url).is_empty(), "still retransmitting");
    // Asked again at once: the live tracker's pause is kept, without a request; the dead
    // one is still in flight and not asked twice.
    let live_scrapes = sim.tracker(live).scrapes_from(node).len();
    sim.with_session(node, |s, now| s.scrape(now, id)).unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(sim.tracker(live).scrapes_from(node).len(), live_scrapes);
    assert!(matches!(
        outcome(&sim, &live_url)[1].2,
        Err(TrackerError::ScrapeTooSoon { wait }) if wait > Duration::from_secs(290)
    ));
    // The dead UDP tracker: sent at 0, 15 and 45 s, given up after 105 s.
    sim.run_for(Duration::from_secs(110)).unwrap();
    let sent: Vec<Duration> = sim
        .tracker(dead)
        .scrapes_from(node)
        .iter()
        .map(|r| r.at - start)
        .collect();
    assert_eq!(sent.len(), 0, "connects only, never a scrape: {sent:?}");
    let connects: Vec<Instant> = sim
        .tracker(dead)
        .log()
        .iter()
        .filter(|r| r.node == node && !r.announce)
        .map(|r| r.at)
        .collect();
    assert_eq!(connects.len(), 3, "seed {seed}: {connects:?}");
    let gaps: Vec<Duration> = connects.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [15, 30].map(Duration::from_secs).to_vec());
    let dead_outcome = outcome(&sim, &dead_url);
    assert_eq!(dead_outcome.len(), 1, "{dead_outcome:?}");
    assert_eq!(dead_outcome[0].2, Err(TrackerError::TimedOut));
    let gave_up = dead_outcome[0].0 - start;
    assert_eq!(gave_up, Duration::from_secs(105), "seed {seed}");
    // After the pause, the live tracker is scraped again.
    sim.run_for(Duration::from_secs(200)).unwrap();
    sim.with_session(node, |s, now| s.scrape(now, id)).unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(sim.tracker(live).scrapes_from(node).len(), live_scrapes + 1);
    assert_eq!(outcome(&sim, &live_url).last().unwrap().2, Ok((1, 0, 0)));
}

#[test]
fn a_checked_torrent_announces_only_after_the_check_with_what_it_found() {
    let seed = 46;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig::default());
    let url = sim.tracker(tracker).http_url();
    let size = t.content.len() as u64;
    let piece = u64::from(t.info.piece_length());
    // Node a: the first 5 pieces on disk. Node b: everything.
    let mut partial = t.content.to_vec();
    partial[5 * piece as usize..].fill(0);
    let mut nodes = Vec::new();
    for content in [&partial[..], &t.content[..]] {
        let node = sim.add_node(NodeConfig {
            // A slow disk: the check takes a while.
            disk_latency: Duration::from_millis(50),
            ..NodeConfig::default()
        });
        sim.disk_mut(node).stage(&t.info, content);
        let add = AddTorrent::new(t.info.clone())
            .with_check(CheckMode::Full)
            .with_trackers(vec![vec![url.clone()]]);
        let id = sim.try_add_torrent(node, add).unwrap();
        nodes.push((node, id));
    }
    sim.run_until(
        |s| {
            nodes.iter().all(|&(n, id)| {
                !matches!(
                    s.node(n).session().torrent_state(id),
                    Some(TorrentState::Checking { .. })
                )
            })
        },
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(5)).unwrap();
    for (&(node, _), left) in nodes.iter().zip([size - 5 * piece, 0]) {
        let checked_at = sim
            .node(node)
            .events()
            .iter()
            .find_map(|(at, e)| match e {
                Event::CheckingProgress { checked, total, .. } if checked == total => Some(*at),
                _ => None,
            })
            .expect("the check finished");
        assert!(checked_at > Instant::ZERO + Duration::from_millis(100));
        let announces = sim.tracker(tracker).announces_from(node);
        assert!(
            !announces.is_empty(),
            "seed {seed}: node {node:?} announced"
        );
        assert!(
            announces[0].at >= checked_at,
            "seed {seed}: announced at {:?}, during the check (done at {checked_at:?})",
            announces[0].at
        );
        assert_eq!(announces[0].event, Some(AnnounceEvent::Started));
        assert_eq!(announces[0].left, Some(left), "seed {seed}");
    }
    // The complete one found everything: it seeds and never says `completed` (BEP 3), and
    // the partial one fetches the rest from it through the tracker and then does.
    let (partial_node, partial_id) = nodes[0];
    sim.run_until(
        |s| s.node(partial_node).is_finished(partial_id),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(1)).unwrap();
    let completed = |node: NodeId| {
        sim.tracker(tracker)
            .announces_from(node)
            .iter()
            .filter(|r| r.event == Some(AnnounceEvent::Completed))
            .count()
    };
    assert_eq!(completed(nodes[1].0), 0, "seed {seed}");
    assert_eq!(completed(partial_node), 1, "seed {seed}");
    assert_eq!(
        sim.node(partial_node).disk().content(partial_id).unwrap(),
        &t.content[..]
    );
}

#[test]
fn pausing_announces_stopped_and_resuming_announces_started() {
    let seed = 47;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig::default());
    let urls = [
        sim.tracker(tracker).http_url(),
        sim.tracker(tracker).udp_url(),
    ];
    let info_hash = t.info.hashes().wire_id();
    for url in urls {
        let node = sim.add_node(NodeConfig::default());
        let id = sim.seed_torrent_with_trackers(node, &t, vec![vec![url.clone()]]);
        sim.run_for(Duration::from_secs(1)).unwrap();
        let ip = sim.node(node).addr().ip();
        let in_swarm = |sim: &Sim| {
            sim.tracker(tracker)
                .swarm(&info_hash)
                .iter()
                .any(|a| a.ip() == ip)
        };
        assert!(in_swarm(&sim), "seed {seed}: {url}");
        sim.with_session(node, |s, now| s.pause(now, id)).unwrap();
        sim.run_for(Duration::from_secs(1)).unwrap();
        assert!(
            !in_swarm(&sim),
            "seed {seed}: {url}: the tracker forgot the paused node"
        );
        sim.with_session(node, |s, now| s.resume(now, id)).unwrap();
        sim.run_for(Duration::from_secs(1)).unwrap();
        assert!(in_swarm(&sim), "seed {seed}: {url}");
        let events: Vec<Option<AnnounceEvent>> = sim
            .tracker(tracker)
            .announces_from(node)
            .iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(
            events,
            [
                AnnounceEvent::Started,
                AnnounceEvent::Stopped,
                AnnounceEvent::Started
            ]
            .map(Some)
            .to_vec(),
            "seed {seed}: {url}"
        );
    }
}

/// Pausing while the `started` announce is in flight drops it quietly: it is not a tracker
/// failure.
#[test]
fn pausing_during_an_announce_reports_no_tracker_failure() {
    let seed = 51;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig::default());
    for url in [
        sim.tracker(tracker).http_url(),
        sim.tracker(tracker).udp_url(),
    ] {
        let node = sim.add_node(NodeConfig::default());
        let id = sim.seed_torrent_with_trackers(node, &t, vec![vec![url.clone()]]);
        sim.with_session(node, |s, now| s.pause(now, id)).unwrap();
        sim.run_for(Duration::from_secs(300)).unwrap();
        let events = tracker_events(&sim, node);
        assert!(events.iter().all(|e| e.2), "seed {seed}: {url}: {events:?}");
    }
}

#[test]
fn a_storage_error_stops_the_announces() {
    let seed = 48;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let tracker = sim.add_tracker(TrackerConfig::default());
    let url = sim.tracker(tracker).http_url();
    let seeder = sim.add_node(NodeConfig::default());
    sim.seed_torrent_with_trackers(seeder, &t, vec![vec![url.clone()]]);
    let leech = sim.add_node(NodeConfig::default());
    let id = sim.add_torrent_with_trackers(leech, &t, vec![vec![url]]);
    sim.disk_mut(seeder).set_fail_reads(true);
    sim.run_for(Duration::from_secs(5)).unwrap();
    let events: Vec<Option<AnnounceEvent>> = sim
        .tracker(tracker)
        .announces_from(seeder)
        .iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events,
        vec![Some(AnnounceEvent::Started), Some(AnnounceEvent::Stopped)],
        "seed {seed}: the failed seed leaves the swarm"
    );
    assert!(!sim.node(leech).is_finished(id));
}

#[test]
fn a_private_torrent_talks_only_to_its_own_tracker() {
    let seed = 49;
    let mut sim = Sim::new(seed);
    let t = TestTorrent::build_private(sim.rng(), &TorrentSpec::single(200_000, 16 * 1024));
    assert!(t.info.is_private());
    let own = sim.add_tracker(TrackerConfig {
        name: Some("own.sim".into()),
        ..TrackerConfig::default()
    });
    let other = sim.add_tracker(TrackerConfig::default());
    let tiers = vec![vec![sim.tracker(own).udp_url_by_name().unwrap()]];
    let seeder = sim.add_node(NodeConfig::default());
    sim.seed_torrent_with_trackers(seeder, &t, tiers.clone());
    let leech = sim.add_node(NodeConfig::default());
    let id = sim.add_torrent_with_trackers(leech, &t, tiers);
    sim.run_until(|s| s.node(leech).is_finished(id), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    sim.run_for(Duration::from_secs(60)).unwrap();
    let own_addr = sim.tracker(own).addr();
    for node in [seeder, leech] {
        let requests = sim.node(node).network_requests();
        assert!(!requests.is_empty());
        for (_, r) in requests {
            let ok = match r {
                NetworkRequest::Resolve(host) => host == "own.sim",
                NetworkRequest::Datagram(to) => *to == own_addr,
                NetworkRequest::Http(_) => false,
            };
            assert!(ok, "seed {seed}: {node:?} sent {r:?} for a private torrent");
        }
    }
    assert!(sim.tracker(other).log().is_empty());
    assert_eq!(sim.node(leech).disk().content(id).unwrap(), &t.content[..]);
}

#[test]
fn the_external_ip_a_tracker_reports_becomes_the_sessions_view() {
    let seed = 50;
    let mut sim = Sim::new(seed);
    let t = torrent(&mut sim);
    let quiet = sim.add_tracker(TrackerConfig::default());
    let telling = sim.add_tracker(TrackerConfig {
        report_external_ip: true,
        interval: 60,
        ..TrackerConfig::default()
    });
    let node = sim.add_node(NodeConfig::default());
    let quiet_url = sim.tracker(quiet).http_url();
    sim.seed_torrent_with_trackers(node, &t, vec![vec![quiet_url]]);
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(sim.node(node).session().external_ip(), None);
    let telling_url = sim.tracker(telling).http_url();
    let other = TestTorrent::build(sim.rng(), &TorrentSpec::single(50_000, 16 * 1024));
    sim.seed_torrent_with_trackers(node, &other, vec![vec![telling_url.clone()]]);
    // Several announces (one a minute), one change.
    sim.run_for(Duration::from_secs(200)).unwrap();
    assert!(sim.tracker(telling).announces_from(node).len() >= 3);
    let ip = sim.node(node).addr().ip();
    assert_eq!(sim.node(node).session().external_ip(), Some(ip));
    let changes: Vec<_> = sim
        .node(node)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ExternalIpChanged { ip, url } => Some((*ip, url.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![(ip, telling_url)], "seed {seed}");
}

/// BEP 52: a hybrid torrent is one torrent in both swarms. Each announce goes out under the v1
/// hash and under the truncated v2 hash; a seed listed only in the v2 swarm is found through
/// the second, and the application hears one `TrackerAnnounced` per announce, not two.
#[test]
fn a_hybrid_torrent_announces_in_both_swarms_and_finds_a_v2_only_peer() {
    for (seed, protocol) in [(61, TrackerProtocol::Http), (62, TrackerProtocol::Udp)] {
        let mut sim = Sim::new(seed);
        let spec = TorrentSpec::single(300_000, 16 * 1024);
        let t = TestTorrent::build_v2(sim.rng(), &spec, Version::Hybrid);
        let hashes = t.info.hashes();
        let (v1, v2) = (hashes.v1().unwrap().0, hashes.v2().unwrap().truncated());
        let tracker = sim.add_tracker(TrackerConfig::default());
        let url = match protocol {
            TrackerProtocol::Http => sim.tracker(tracker).http_url(),
            _ => sim.tracker(tracker).udp_url(),
        };
        let v2_seed = sim.add_node(NodeConfig::default());
        sim.seed_torrent(v2_seed, &t);
        let seed_addr = sim.node(v2_seed).addr();
        sim.list_in_swarm(tracker, v2, seed_addr, 0);

        let leech = sim.add_node(NodeConfig::default());
        let id = sim.add_torrent_with_trackers(leech, &t, vec![vec![url]]);
        sim.run_until(|s| s.node(leech).is_finished(id), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(sim.node(leech).disk().content(id).unwrap(), &t.content[..]);
        // The `completed` announces get their answers.
        sim.run_for(Duration::from_secs(5)).unwrap();

        let tr = sim.tracker(tracker);
        let leech_addr = sim.node(leech).addr();
        assert!(tr.swarm(&v1).contains(&leech_addr), "seed {seed}: v1 swarm");
        assert!(tr.swarm(&v2).contains(&leech_addr), "seed {seed}: v2 swarm");
        assert!(
            !tr.swarm(&v1).contains(&seed_addr),
            "the seed is in the v2 swarm only"
        );
        let announces = tr.announces_from(leech).len();
        let events = tracker_events(&sim, leech);
        assert!(events.iter().all(|e| e.2), "seed {seed}: {events:?}");
        assert_eq!(
            announces,
            2 * events.len(),
            "seed {seed}: two announces per event"
        );
    }
}
