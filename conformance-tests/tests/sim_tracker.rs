//! Trackers in the simulator: a swarm that finds itself through an in-sim tracker (HTTP, UDP,
//! and UDP by host name), tier failover and promotion (BEP 12), and the UDP retransmission
//! schedule on the virtual clock (BEP 15: 15·2ⁿ s).

use bitshoal_conformance::sim::{
    LinkProfile, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec, TrackerConfig, TrackerProtocol,
};
use bitshoal_core::id::TorrentId;
use bitshoal_core::session::Event;
use bitshoal_core::time::{Duration, Instant};
use bitshoal_core::tracker::TrackerError;

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
