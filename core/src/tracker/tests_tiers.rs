//! The tier policy on a virtual clock: BEP 12 order and promotion, failover, backoff, BEP 31,
//! events, timeouts.

use super::*;
use crate::rng::Rng;
use crate::time::Instant;

fn secs(s: u64) -> Instant {
    Instant::from_micros(s * 1_000_000)
}

fn tiers(spec: &[&[&str]]) -> Vec<Vec<String>> {
    spec.iter()
        .map(|t| t.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

/// A list whose tiers keep their given order (checked, so tests can name trackers).
fn list(spec: &[&[&str]]) -> TrackerList {
    // Find a seed that happens to leave every tier in order: tests then read naturally.
    for seed in 0..10_000 {
        let l = TrackerList::new(
            &tiers(spec),
            false,
            TierConfig::DEFAULT,
            Rng::from_seed(seed),
        );
        let order: Vec<&str> = l.trackers().map(|t| t.url).collect();
        let given: Vec<&str> = spec.iter().flat_map(|t| t.iter().copied()).collect();
        if order == given {
            return l;
        }
    }
    panic!("no seed keeps {spec:?} in order");
}

fn ok(interval: u64) -> AnnounceResponse {
    AnnounceResponse {
        interval: Some(Duration::from_secs(interval)),
        ..Default::default()
    }
}

fn refused() -> TrackerError {
    TrackerError::Failure {
        reason: "no".into(),
        retry_in: None,
    }
}

fn order(l: &TrackerList) -> Vec<&str> {
    l.trackers().map(|t| t.url).collect()
}

#[test]
fn tiers_are_shuffled_once_by_the_seed() {
    let urls: Vec<String> = (0..10).map(|i| format!("http://t{i}/announce")).collect();
    let spec = vec![urls.clone(), vec!["udp://x:1".to_owned()]];
    let shuffled = |seed| {
        let l = TrackerList::new(&spec, false, TierConfig::DEFAULT, Rng::from_seed(seed));
        l.trackers().map(|t| t.url.to_owned()).collect::<Vec<_>>()
    };
    let a = shuffled(1);
    assert_eq!(a, shuffled(1), "the same seed, the same order");
    assert_ne!(a, shuffled(2), "another seed, another order");
    assert_eq!(
        a.last().map(String::as_str),
        Some("udp://x:1"),
        "tiers stay in order"
    );
    let mut sorted = a[..10].to_vec();
    sorted.sort();
    let mut expected = urls;
    expected.sort();
    assert_eq!(sorted, expected, "a permutation within the tier");
}

#[test]
fn duplicates_and_empty_urls_are_dropped() {
    let l = TrackerList::new(
        &tiers(&[&["a", "", "b"], &["a"], &[]]),
        true,
        TierConfig::DEFAULT,
        Rng::from_seed(0),
    );
    assert_eq!(l.trackers().count(), 2);
    assert!(l.is_private());
    assert!(TrackerList::new(&[], false, TierConfig::DEFAULT, Rng::from_seed(0)).is_empty());
}

#[test]
fn started_then_interval_announces_then_min_interval() {
    let mut l = list(&[&["a", "b"]]);
    assert_eq!(l.next_announce(secs(0)), None, "nothing before start");
    assert_eq!(l.poll_timeout(), None);
    l.start(secs(10));
    assert_eq!(l.poll_timeout(), Some(secs(10)));
    let a = l.next_announce(secs(10)).unwrap();
    assert_eq!(
        (a.url.as_str(), a.event),
        ("a", Some(AnnounceEvent::Started))
    );
    assert_eq!(l.next_announce(secs(10)), None, "one at a time");
    let mut response = ok(1800);
    response.min_interval = Some(Duration::from_secs(300));
    response.tracker_id = Some(b"tid".to_vec());
    assert!(l.handle_success(secs(11), a.id, &response));
    assert!(!l.handle_success(secs(11), a.id, &response), "only once");
    assert_eq!(l.poll_timeout(), Some(secs(11 + 1800)));
    assert_eq!(l.next_announce(secs(11 + 1799)), None);
    let b = l.next_announce(secs(11 + 1800)).unwrap();
    assert_eq!((b.url.as_str(), b.event), ("a", None));
    assert_eq!(b.tracker_id.as_deref(), Some(&b"tid"[..]));
    assert_ne!(b.id, a.id);
    // An interval under min interval is raised to it; a forced re-announce waits for it too.
    let mut response = ok(10);
    response.min_interval = Some(Duration::from_secs(120));
    let t = secs(2000);
    assert!(l.handle_success(t, b.id, &response));
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(120)));
    l.force_reannounce(t);
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(120)));
}

#[test]
fn intervals_are_clamped_and_defaulted() {
    for (interval, expected) in [(Some(5), 60), (None, 1800), (Some(999_999), 4 * 3600)] {
        let mut l = list(&[&["a"]]);
        l.start(secs(0));
        let a = l.next_announce(secs(0)).unwrap();
        let response = AnnounceResponse {
            interval: interval.map(Duration::from_secs),
            ..Default::default()
        };
        l.handle_success(secs(0), a.id, &response);
        assert_eq!(l.poll_timeout(), Some(secs(expected)), "{interval:?}");
    }
}

#[test]
fn failover_within_a_tier_then_to_the_next_tier_and_promotion() {
    let mut l = list(&[&["a1", "a2"], &["b1", "b2"]]);
    l.start(secs(0));
    let mut urls = Vec::new();
    for _ in 0..3 {
        let a = l.next_announce(secs(0)).unwrap();
        urls.push(a.url.clone());
        assert!(l.handle_failure(secs(0), a.id, &refused()));
    }
    assert_eq!(urls, ["a1", "a2", "b1"]);
    let b2 = l.next_announce(secs(0)).unwrap();
    assert_eq!(b2.url, "b2");
    assert_eq!(b2.event, Some(AnnounceEvent::Started));
    assert!(l.handle_success(secs(1), b2.id, &ok(600)));
    // BEP 12: b2 moves to the front of its tier; tier order is kept.
    assert_eq!(order(&l), ["a1", "a2", "b2", "b1"]);
    // At the next interval the first tier, whose backoff has passed, is tried first, and gets
    // `started` since it never acknowledged it.
    let next = l.next_announce(secs(601)).unwrap();
    assert_eq!(
        (next.url.as_str(), next.event),
        ("a1", Some(AnnounceEvent::Started))
    );
    assert!(l.handle_success(secs(602), next.id, &ok(600)));
    let status: Vec<(&str, u32)> = l.trackers().map(|t| (t.url, t.fails)).collect();
    assert_eq!(status, [("a1", 0), ("a2", 1), ("b2", 0), ("b1", 1)]);
}

#[test]
fn when_every_tracker_backs_off_the_list_waits_with_growing_jittered_backoff() {
    let mut l = list(&[&["a"]]);
    l.start(secs(0));
    let mut now = secs(0);
    let mut waits = Vec::new();
    for _ in 0..10 {
        let a = l.next_announce(now).expect("due");
        assert!(l.handle_failure(now, a.id, &TrackerError::TimedOut));
        assert_eq!(l.next_announce(now), None, "backing off");
        let due = l.poll_timeout().expect("a retry is scheduled");
        waits.push((due - now).as_secs());
        assert_eq!(l.next_announce(due - Duration::from_millis(1)), None);
        now = due;
    }
    // 15·2ⁿ⁻¹ s plus up to 25 %, capped at an hour.
    for (i, &w) in waits.iter().enumerate() {
        let base = (15u64 << i).min(3600);
        assert!(
            (base..=base + base / 4).contains(&w),
            "wait {i}: {w} s, base {base}"
        );
    }
    let status = l.trackers().next().unwrap();
    assert_eq!(status.fails, 10);
    assert_eq!(status.last_error, Some(&TrackerError::TimedOut));
}

#[test]
fn retry_in_is_honoured_and_never_disables() {
    let mut l = list(&[&["a", "b"]]);
    l.start(secs(0));
    let a = l.next_announce(secs(0)).unwrap();
    let later = TrackerError::Failure {
        reason: "busy".into(),
        retry_in: Some(RetryIn::After(Duration::from_secs(600))),
    };
    l.handle_failure(secs(0), a.id, &later);
    let b = l.next_announce(secs(0)).unwrap();
    assert_eq!(b.url, "b");
    let never = TrackerError::Failure {
        reason: "banned".into(),
        retry_in: Some(RetryIn::Never),
    };
    l.handle_failure(secs(0), b.id, &never);
    assert_eq!(l.next_announce(secs(0)), None);
    assert_eq!(l.poll_timeout(), Some(secs(600)), "a's retry in; b never");
    let again = l.next_announce(secs(600)).unwrap();
    assert_eq!(again.url, "a");
    l.handle_failure(secs(600), again.id, &never);
    assert_eq!(l.next_announce(secs(600)), None);
    assert_eq!(l.poll_timeout(), None, "everyone said never");
    assert!(l.trackers().all(|t| t.disabled));
}

#[test]
fn completed_is_sent_once_and_at_once() {
    let mut l = list(&[&["a"]]);
    l.start(secs(0));
    let a = l.next_announce(secs(0)).unwrap();
    l.handle_success(secs(0), a.id, &ok(1800));
    l.complete(secs(100));
    let c = l.next_announce(secs(100)).unwrap();
    assert_eq!(c.event, Some(AnnounceEvent::Completed));
    // A failed `completed` is retried (here on the same, only, tracker after backoff).
    l.handle_failure(secs(100), c.id, &refused());
    let due = l.poll_timeout().unwrap();
    let c2 = l.next_announce(due).unwrap();
    assert_eq!(c2.event, Some(AnnounceEvent::Completed));
    l.handle_success(due, c2.id, &ok(1800));
    let next = l.next_announce(due + Duration::from_secs(1800)).unwrap();
    assert_eq!(next.event, None);
}

#[test]
fn completed_while_started_is_in_flight_follows_it() {
    let mut l = list(&[&["a"]]);
    l.start(secs(0));
    let a = l.next_announce(secs(0)).unwrap();
    l.complete(secs(1));
    assert_eq!(l.next_announce(secs(1)), None, "started still in flight");
    l.handle_success(secs(2), a.id, &ok(1800));
    let c = l.next_announce(secs(2)).unwrap();
    assert_eq!(c.event, Some(AnnounceEvent::Completed));
}

#[test]
fn stop_sends_stopped_to_each_tracker_that_saw_started_best_effort() {
    let mut l = list(&[&["a"], &["b"], &["c"]]);
    l.start(secs(0));
    // a fails, b succeeds (started); then at the interval a succeeds too.
    let a = l.next_announce(secs(0)).unwrap();
    l.handle_failure(secs(0), a.id, &refused());
    let b = l.next_announce(secs(0)).unwrap();
    l.handle_success(secs(0), b.id, &ok(100));
    let a = l.next_announce(secs(100)).unwrap();
    assert_eq!(a.url, "a");
    l.handle_success(secs(100), a.id, &ok(100));
    // An announce in flight when stopping is cancelled.
    let in_flight = l.next_announce(secs(200)).unwrap();
    l.stop(secs(250));
    assert_eq!(l.poll_cancel(), Some(in_flight.id));
    assert_eq!(l.poll_cancel(), None);
    assert_eq!(l.poll_timeout(), Some(secs(250)));
    let stops: Vec<_> = std::iter::from_fn(|| l.next_announce(secs(250))).collect();
    let urls: Vec<&str> = stops.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["a", "b"]);
    assert!(stops
        .iter()
        .all(|s| s.event == Some(AnnounceEvent::Stopped)));
    // Outcomes of stops are ignored, never retried.
    assert!(!l.handle_failure(secs(251), stops[0].id, &refused()));
    assert!(!l.handle_success(secs(251), in_flight.id, &ok(100)));
    assert_eq!(l.next_announce(secs(10_000)), None);
    assert_eq!(l.poll_timeout(), None);
    assert!(!l.is_running());
    // Resuming starts over with `started`.
    l.start(secs(20_000));
    let again = l.next_announce(secs(20_000)).unwrap();
    assert_eq!(again.event, Some(AnnounceEvent::Started));
}

#[test]
fn an_announce_without_outcome_times_out_and_the_next_tracker_is_tried() {
    let mut l = list(&[&["a", "b"]]);
    l.start(secs(0));
    let a = l.next_announce(secs(0)).unwrap();
    assert_eq!(l.poll_timeout(), Some(secs(120)));
    l.handle_timeout(secs(119));
    assert_eq!(l.poll_cancel(), None);
    l.handle_timeout(secs(120));
    assert_eq!(l.poll_cancel(), Some(a.id));
    let b = l.next_announce(secs(120)).unwrap();
    assert_eq!(b.url, "b");
    // The late answer of the abandoned announce changes nothing.
    assert!(!l.handle_success(secs(121), a.id, &ok(100)));
    let a_status = l.trackers().find(|t| t.url == "a").unwrap();
    assert_eq!(a_status.last_error, Some(&TrackerError::TimedOut));
}

#[test]
fn external_ip_and_counts_are_kept() {
    let mut l = list(&[&["a"]]);
    l.start(secs(0));
    let a = l.next_announce(secs(0)).unwrap();
    let response = AnnounceResponse {
        external_ip: Some("203.0.113.9".parse().unwrap()),
        seeders: Some(4),
        leechers: Some(6),
        warning: Some("be nice".into()),
        ..ok(100)
    };
    l.handle_success(secs(0), a.id, &response);
    assert_eq!(l.external_ip(), Some("203.0.113.9".parse().unwrap()));
    let t = l.trackers().next().unwrap();
    assert_eq!(
        (t.seeders, t.leechers, t.warning),
        (Some(4), Some(6), Some("be nice"))
    );
    assert_eq!(l.url(a.tracker), Some("a"));
}
