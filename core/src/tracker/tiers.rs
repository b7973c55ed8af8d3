//! One torrent's tracker policy: BEP 12 tiers, events, intervals, backoff, BEP 31 `retry in`.
//!
//! The rules are documented on the machine's type.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::{AnnounceEvent, AnnounceResponse, RetryIn, TrackerError};
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// Timing of a [`TrackerList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierConfig {
    /// The announce interval when a tracker does not give one.
    pub default_interval: Duration,
    /// The shortest interval we accept from a tracker.
    pub min_interval: Duration,
    /// The longest interval we accept from a tracker (so a torrent is never forgotten).
    pub max_interval: Duration,
    /// The first backoff of a failing tracker; it doubles with each further failure.
    pub backoff_base: Duration,
    /// The longest backoff (before jitter).
    pub backoff_max: Duration,
    /// How long an announce may go without an outcome before it counts as failed.
    pub announce_timeout: Duration,
}

impl TierConfig {
    /// Defaults: 30 min interval when none is given, accepted 1 min to 4 h, backoff 15 s
    /// doubling to 1 h, 2 min announce timeout (enough for four UDP transmissions).
    pub const DEFAULT: Self = Self {
        default_interval: Duration::from_secs(30 * 60),
        min_interval: Duration::from_secs(60),
        max_interval: Duration::from_secs(4 * 3600),
        backoff_base: Duration::from_secs(15),
        backoff_max: Duration::from_secs(3600),
        announce_timeout: Duration::from_secs(120),
    };
}

impl Default for TierConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A tracker of a [`TrackerList`]; stable while tiers are reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerIndex(u32);

impl TrackerIndex {
    /// The position of the tracker in the order the tiers were given (before shuffling).
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// One announce handed out by [`TrackerList::next_announce`]; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnounceId(u64);

/// An announce to send: fill an [`AnnounceRequest`](super::AnnounceRequest) with `event` and
/// `tracker_id`, send it to `url`, and report the outcome under `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Announce {
    /// Report the outcome under this id.
    pub id: AnnounceId,
    /// The tracker.
    pub tracker: TrackerIndex,
    /// The tracker's announce URL.
    pub url: String,
    /// The event to send.
    pub event: Option<AnnounceEvent>,
    /// The `tracker id` this tracker gave us before, to send back.
    pub tracker_id: Option<Vec<u8>>,
}

/// What the list knows about one tracker, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerStatus<'a> {
    /// The tracker.
    pub index: TrackerIndex,
    /// Its announce URL.
    pub url: &'a str,
    /// Its tier (0 first).
    pub tier: usize,
    /// Failures since its last success.
    pub fails: u32,
    /// Not before this instant (backing off), if it failed.
    pub retry_at: Option<Instant>,
    /// Whether it said `retry in: never` (BEP 31).
    pub disabled: bool,
    /// Its last error since its last success.
    pub last_error: Option<&'a TrackerError>,
    /// Its last `warning message`.
    pub warning: Option<&'a str>,
    /// Seeders it last reported.
    pub seeders: Option<u32>,
    /// Leechers it last reported.
    pub leechers: Option<u32>,
}

#[derive(Clone, Debug)]
struct Entry {
    url: String,
    tier: usize,
    fails: u32,
    retry_at: Option<Instant>,
    disabled: bool,
    started_acked: bool,
    tracker_id: Option<Vec<u8>>,
    last_error: Option<TrackerError>,
    warning: Option<String>,
    seeders: Option<u32>,
    leechers: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: AnnounceId,
    tracker: usize,
    event: Option<AnnounceEvent>,
    deadline: Instant,
}

/// One torrent's trackers and when to announce to which.
///
/// The list hands out one [`Announce`] at a time ([`TrackerList::next_announce`]) and is told how
/// it went ([`TrackerList::handle_success`], [`TrackerList::handle_failure`]). Rules:
///
/// - **Tiers (BEP 12).** Each tier is shuffled once, when the list is built, with the seeded
///   [`Rng`]. An announce goes to the first tracker, in tier order, that is not backing off; when
///   it fails the next one is tried at once (the rest of the tier, then the next tiers). A tracker
///   that answers is moved to the front of its tier, so it is asked first next time.
/// - **Timing.** After a success the next regular announce is due after the tracker's `interval`
///   ([`TierConfig::default_interval`] if it gave none), clamped to
///   [`TierConfig::min_interval`]..=[`TierConfig::max_interval`] and never sooner than its
///   `min interval`. A failed tracker backs off exponentially
///   ([`TierConfig::backoff_base`]·2ⁿ⁻¹ plus up to 25 % random jitter, capped at
///   [`TierConfig::backoff_max`]), or as long as its BEP 31 `retry in` says; `retry in: never`
///   disables it for good. When every tracker is backing off, the announce waits for the first
///   one to come back. An announce with no outcome after [`TierConfig::announce_timeout`] fails
///   with [`TrackerError::TimedOut`] and its id comes out of [`TrackerList::poll_cancel`].
/// - **Events.** A tracker that has not acknowledged `started` since the last start gets
///   `started`; after [`TrackerList::complete`], the next announce to a tracker that has gets
///   `completed` (once, for the torrent: whichever tracker acknowledges it). Events go out at
///   once, without waiting for the interval. [`TrackerList::stop`] hands out one `stopped` per
///   tracker that acknowledged `started`, best-effort: their outcomes are ignored and never
///   retried.
/// - **Private torrents (BEP 27).** [`TrackerList::is_private`]: the session must use only these
///   trackers (the torrent's own) and never DHT, PEX or LSD for the torrent.
/// - **External address (BEP 24).** The last `external ip` a tracker reported is kept in
///   [`TrackerList::external_ip`], for the session's view of its own address.
///
/// At most one announce (other than `stopped`) is in flight.
///
/// Driving it: after [`start`](Self::start), [`complete`](Self::complete),
/// [`stop`](Self::stop), [`force_reannounce`](Self::force_reannounce), `handle_*`, call
/// [`next_announce`](Self::next_announce) until `None` and [`poll_cancel`](Self::poll_cancel)
/// until `None`, then read [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct TrackerList {
    entries: Vec<Entry>,
    /// Entry indices per tier, in announce order.
    tiers: Vec<Vec<usize>>,
    private: bool,
    config: TierConfig,
    rng: Rng,
    running: bool,
    completed_pending: bool,
    /// When the next announce (regular or event) is due, while running.
    next_due: Option<Instant>,
    /// Not sooner than this for forced re-announces (the tracker's `min interval`).
    earliest_allowed: Instant,
    in_flight: Option<InFlight>,
    /// Trackers owed a `stopped`, and when it was asked for.
    stops: VecDeque<usize>,
    stop_requested: Instant,
    cancels: VecDeque<AnnounceId>,
    next_id: u64,
    external_ip: Option<IpAddr>,
}

impl TrackerList {
    /// The list for a torrent's tiers (`Metainfo::trackers()`, or a magnet's `tr` as one tier
    /// each), shuffling each tier once (BEP 12). Empty URLs and repeats are dropped.
    ///
    /// `private` is the torrent's BEP 27 flag; see [`is_private`](Self::is_private).
    pub fn new(tiers: &[Vec<String>], private: bool, config: TierConfig, mut rng: Rng) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        let mut order = Vec::new();
        for urls in tiers {
            let mut tier = Vec::new();
            for url in urls {
                if url.is_empty() || entries.iter().any(|e| e.url == *url) {
                    continue;
                }
                tier.push(entries.len());
                entries.push(Entry {
                    url: url.clone(),
                    tier: order.len(),
                    fails: 0,
                    retry_at: None,
                    disabled: false,
                    started_acked: false,
                    tracker_id: None,
                    last_error: None,
                    warning: None,
                    seeders: None,
                    leechers: None,
                });
            }
            if !tier.is_empty() {
                rng.shuffle(&mut tier);
                order.push(tier);
            }
        }
        Self {
            entries,
            tiers: order,
            private,
            config,
            rng,
            running: false,
            completed_pending: false,
            next_due: None,
            earliest_allowed: Instant::ZERO,
            in_flight: None,
            stops: VecDeque::new(),
            stop_requested: Instant::ZERO,
            cancels: VecDeque::new(),
            next_id: 0,
            external_ip: None,
        }
    }

    /// Adds a tracker as a tier of its own after the others (BEP 28: a tracker a peer told us
    /// about). Returns `false`, adding nothing, for a private list (BEP 27), an empty URL or
    /// one already listed.
    pub fn add_tracker(&mut self, url: &str) -> bool {
        if self.private || url.is_empty() || self.entries.iter().any(|e| e.url == url) {
            return false;
        }
        self.tiers.push(vec![self.entries.len()]);
        self.entries.push(Entry {
            url: url.to_string(),
            tier: self.tiers.len() - 1,
            fails: 0,
            retry_at: None,
            disabled: false,
            started_acked: false,
            tracker_id: None,
            last_error: None,
            warning: None,
            seeders: None,
            leechers: None,
        });
        true
    }

    /// Whether the torrent is private (BEP 27): announce only to these trackers, the torrent's
    /// own, and never use DHT, PEX or LSD for it.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Whether the list has no trackers at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the torrent is started (between [`start`](Self::start) and [`stop`](Self::stop)).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The last `external ip` a tracker reported (BEP 24): our address as the world sees it.
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.external_ip
    }

    /// A tracker's announce URL.
    pub fn url(&self, tracker: TrackerIndex) -> Option<&str> {
        self.entries.get(tracker.get()).map(|e| e.url.as_str())
    }

    /// Every tracker, tier by tier in announce order.
    pub fn trackers(&self) -> impl Iterator<Item = TrackerStatus<'_>> + '_ {
        self.tiers.iter().flatten().map(|&i| {
            let e = &self.entries[i];
            TrackerStatus {
                index: TrackerIndex(i as u32),
                url: &e.url,
                tier: e.tier,
                fails: e.fails,
                retry_at: e.retry_at,
                disabled: e.disabled,
                last_error: e.last_error.as_ref(),
                warning: e.warning.as_deref(),
                seeders: e.seeders,
                leechers: e.leechers,
            }
        })
    }

    /// The torrent started (or resumed): announce `started` now. No-op while running.
    pub fn start(&mut self, now: Instant) {
        if self.running {
            return;
        }
        self.running = true;
        self.stops.clear();
        for e in &mut self.entries {
            e.started_acked = false;
        }
        self.next_due = Some(now);
    }

    /// The download finished: announce `completed` now (once). Do not call when a torrent
    /// starts out complete; it then just announces `started` with `left = 0`.
    pub fn complete(&mut self, now: Instant) {
        self.completed_pending = true;
        if self.running {
            self.next_due = Some(now);
        }
    }

    /// The torrent is paused or removed: drops the announce in flight (its id comes out of
    /// [`poll_cancel`](Self::poll_cancel)) and hands out one `stopped` per tracker that
    /// acknowledged `started`. No-op when not running.
    pub fn stop(&mut self, now: Instant) {
        if !self.running {
            return;
        }
        self.running = false;
        self.next_due = None;
        if let Some(flight) = self.in_flight.take() {
            self.cancels.push_back(flight.id);
        }
        self.stop_requested = now;
        let owed: Vec<usize> = self
            .tiers
            .iter()
            .flatten()
            .copied()
            .filter(|&i| self.entries[i].started_acked)
            .collect();
        self.stops.extend(owed);
        for e in &mut self.entries {
            e.started_acked = false;
        }
    }

    /// Announce again as soon as the last tracker's `min interval` allows (to get more peers).
    pub fn force_reannounce(&mut self, now: Instant) {
        if !self.running {
            return;
        }
        let at = self.earliest_allowed.max(now);
        self.next_due = Some(self.next_due.map_or(at, |due| due.min(at)));
    }

    /// The next announce to send, if one is due at `now`.
    pub fn next_announce(&mut self, now: Instant) -> Option<Announce> {
        if let Some(i) = self.stops.pop_front() {
            return Some(self.announce(i, Some(AnnounceEvent::Stopped)));
        }
        if !self.running || self.in_flight.is_some() || self.next_due.is_none_or(|d| d > now) {
            return None;
        }
        let Some(i) = self.first_available(now) else {
            self.retry_soonest(now);
            return None;
        };
        let entry = &self.entries[i];
        let event = if !entry.started_acked {
            Some(AnnounceEvent::Started)
        } else if self.completed_pending {
            Some(AnnounceEvent::Completed)
        } else {
            None
        };
        let announce = self.announce(i, event);
        self.in_flight = Some(InFlight {
            id: announce.id,
            tracker: i,
            event,
            deadline: now + self.config.announce_timeout,
        });
        Some(announce)
    }

    /// The announce `id` succeeded. Returns `false` (and changes nothing) for ids that are not
    /// in flight: `stopped` announces, cancelled or timed-out ones.
    pub fn handle_success(
        &mut self,
        now: Instant,
        id: AnnounceId,
        response: &AnnounceResponse,
    ) -> bool {
        let Some(flight) = self.in_flight.filter(|f| f.id == id) else {
            return false;
        };
        self.in_flight = None;
        let entry = &mut self.entries[flight.tracker];
        entry.fails = 0;
        entry.retry_at = None;
        entry.last_error = None;
        entry.started_acked = true;
        entry.warning.clone_from(&response.warning);
        entry.seeders = response.seeders.or(entry.seeders);
        entry.leechers = response.leechers.or(entry.leechers);
        if response.tracker_id.is_some() {
            entry.tracker_id.clone_from(&response.tracker_id);
        }
        if flight.event == Some(AnnounceEvent::Completed) {
            self.completed_pending = false;
        }
        if let Some(ip) = response.external_ip {
            self.external_ip = Some(ip);
        }
        // BEP 12: a tracker that answered moves to the front of its tier.
        let tier = &mut self.tiers[self.entries[flight.tracker].tier];
        if let Some(pos) = tier.iter().position(|&i| i == flight.tracker) {
            tier[..=pos].rotate_right(1);
        }
        let min = response.min_interval.unwrap_or(Duration::ZERO);
        let interval = response
            .interval
            .unwrap_or(self.config.default_interval)
            .clamp(self.config.min_interval, self.config.max_interval)
            .max(min);
        self.earliest_allowed = now + min.max(self.config.min_interval);
        self.next_due = Some(if self.completed_pending {
            now
        } else {
            now + interval
        });
        true
    }

    /// The announce `id` failed: back the tracker off (or disable it for BEP 31 `never`) and try
    /// the next one at once. Returns `false` (and changes nothing) for ids not in flight.
    pub fn handle_failure(&mut self, now: Instant, id: AnnounceId, error: &TrackerError) -> bool {
        let Some(flight) = self.in_flight.filter(|f| f.id == id) else {
            return false;
        };
        self.in_flight = None;
        self.fail(now, flight.tracker, error.clone());
        true
    }

    /// Times out the announce in flight if its deadline passed; harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(flight) = self.in_flight.filter(|f| f.deadline <= now) {
            self.in_flight = None;
            self.cancels.push_back(flight.id);
            self.fail(now, flight.tracker, TrackerError::TimedOut);
        }
    }

    /// An announce the list gave up on (timed out, or dropped by [`stop`](Self::stop)): cancel
    /// its transport; its outcome, if it comes, is ignored.
    #[must_use]
    pub fn poll_cancel(&mut self) -> Option<AnnounceId> {
        self.cancels.pop_front()
    }

    /// When [`next_announce`](Self::next_announce) or [`handle_timeout`](Self::handle_timeout)
    /// next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.stops.is_empty() {
            return Some(self.stop_requested);
        }
        match self.in_flight {
            Some(flight) => Some(flight.deadline),
            None if self.running => self.next_due,
            None => None,
        }
    }

    fn announce(&mut self, i: usize, event: Option<AnnounceEvent>) -> Announce {
        let id = AnnounceId(self.next_id);
        self.next_id += 1;
        let entry = &self.entries[i];
        Announce {
            id,
            tracker: TrackerIndex(i as u32),
            url: entry.url.clone(),
            event,
            tracker_id: entry.tracker_id.clone(),
        }
    }

    fn first_available(&self, now: Instant) -> Option<usize> {
        self.tiers.iter().flatten().copied().find(|&i| {
            let e = &self.entries[i];
            !e.disabled && e.retry_at.is_none_or(|t| t <= now)
        })
    }

    fn fail(&mut self, now: Instant, i: usize, error: TrackerError) {
        let backoff = self.backoff(self.entries[i].fails + 1);
        let entry = &mut self.entries[i];
        entry.fails = entry.fails.saturating_add(1);
        match error.retry_in() {
            Some(RetryIn::Never) => entry.disabled = true,
            Some(RetryIn::After(d)) => entry.retry_at = Some(now + d),
            None => entry.retry_at = Some(now + backoff),
        }
        entry.last_error = Some(error);
        // BEP 12: try the next tracker at once.
        self.retry_soonest(now);
    }

    /// Schedules the next announce for now if a tracker is available, else for when the first
    /// one stops backing off (or never, if all are disabled).
    fn retry_soonest(&mut self, now: Instant) {
        self.next_due = if self.first_available(now).is_some() {
            Some(now)
        } else {
            self.entries
                .iter()
                .filter(|e| !e.disabled)
                .filter_map(|e| e.retry_at)
                .min()
        };
    }

    /// `backoff_base`·2^(fails−1), capped, plus up to 25 % jitter.
    fn backoff(&mut self, fails: u32) -> Duration {
        let factor = 1u32
            .checked_shl(fails.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let delay = self
            .config
            .backoff_base
            .saturating_mul(factor)
            .min(self.config.backoff_max);
        let jitter_ms = u64::try_from(delay.as_millis() / 4).unwrap_or(u64::MAX);
        delay + Duration::from_millis(self.rng.below(jitter_ms.saturating_add(1)))
    }
}
