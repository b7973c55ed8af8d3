//! Who we upload to: a pure function over a snapshot of one torrent's peers (DESIGN.md,
//! `choker`; BEP 3 "Choking and optimistic unchoking").
//!
//! - **Leeching, tit-for-tat**: the interested peers that upload to us fastest get the regular
//!   slots. A peer that snubs us (no block for the request timeout) does not count for
//!   reciprocation (anti-snubbing); it can still win the optimistic slot.
//! - **Seeding, rotation**: peers holding a slot keep it for one turn
//!   ([`ChokerConfig::seed_turn`]), fastest first; then peers waiting longest for a slot; then
//!   peers whose turn is over. Every interested peer gets its turn.
//! - **Optimistic unchoke**: one slot rotates every [`ChokerConfig::optimistic_interval`]
//!   (30 s) to a random interested peer outside the regular set; peers connected within
//!   [`ChokerConfig::new_peer_window`] are three times as likely to be chosen (they have no
//!   pieces to trade yet).
//!
//! The session runs it every 10 s and applies the [`UnchokeSet`]; randomness comes from the
//! caller's seeded [`Rng`], ties between equal rates are broken by it too.

use std::cmp::Reverse;

use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// The choker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Upload slots, the optimistic one included (0: upload to nobody).
    pub slots: usize,
    /// How long the optimistic slot stays with one peer.
    pub optimistic_interval: Duration,
    /// Peers connected this recently are favoured for the optimistic slot.
    pub new_peer_window: Duration,
    /// How long a seed keeps uploading to a peer before letting a waiting peer have the slot.
    pub seed_turn: Duration,
}

impl ChokerConfig {
    /// 8 slots, 30 s optimistic interval, new peers for 90 s, 30 s seeding turns.
    pub const DEFAULT: Self = Self {
        slots: 8,
        optimistic_interval: Duration::from_secs(30),
        new_peer_window: Duration::from_secs(90),
        seed_turn: Duration::from_secs(30),
    };
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One peer as the choker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSnapshot<Id> {
    /// The peer.
    pub id: Id,
    /// Whether it wants pieces we have.
    pub interested: bool,
    /// Whether we choke it now.
    pub am_choking: bool,
    /// Block payload bytes per second it sends us.
    pub download_rate: u64,
    /// Block payload bytes per second we send it.
    pub upload_rate: u64,
    /// Whether it left our requests unanswered for the request timeout.
    pub snubbed: bool,
    /// When the connection was established.
    pub connected_at: Instant,
    /// When we last unchoked it (the start of its current slot, if unchoked).
    pub last_unchoked: Option<Instant>,
    /// When it got the optimistic slot, if it holds it.
    pub optimistic_since: Option<Instant>,
}

/// The peers to unchoke; every other peer is choked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnchokeSet<Id> {
    /// The regular slots, best first.
    pub regular: Vec<Id>,
    /// The optimistic slot.
    pub optimistic: Option<Id>,
}

impl<Id: Copy + Eq> UnchokeSet<Id> {
    /// Whether `id` is unchoked.
    pub fn contains(&self, id: Id) -> bool {
        self.optimistic == Some(id) || self.regular.contains(&id)
    }

    /// How many peers are unchoked.
    pub fn len(&self) -> usize {
        self.regular.len() + usize::from(self.optimistic.is_some())
    }

    /// Whether nobody is unchoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Chooses the peers to unchoke. `seeding` is true when we have every wanted piece.
/// O(P log P) for P peers.
pub fn unchoke<Id: Copy + Eq>(
    peers: &[PeerSnapshot<Id>],
    seeding: bool,
    config: &ChokerConfig,
    now: Instant,
    rng: &mut Rng,
) -> UnchokeSet<Id> {
    let mut set = UnchokeSet {
        regular: Vec::new(),
        optimistic: None,
    };
    if config.slots == 0 {
        return set;
    }
    let mut order: Vec<usize> = (0..peers.len())
        .filter(|&i| peers[i].interested && (seeding || !peers[i].snubbed))
        .collect();
    // A random order first: the stable sort keeps it among equals.
    rng.shuffle(&mut order);
    if seeding {
        order.sort_by_key(|&i| seed_rank(&peers[i], config, now));
    } else {
        order.sort_by_key(|&i| Reverse(peers[i].download_rate));
    }
    let mut chosen = vec![false; peers.len()];
    for &i in order.iter().take(config.slots - 1) {
        chosen[i] = true;
        set.regular.push(peers[i].id);
    }

    let eligible = |i: usize| peers[i].interested && !chosen[i];
    // The optimistic peer keeps its slot for the interval.
    let current = (0..peers.len()).find(|&i| {
        eligible(i)
            && peers[i]
                .optimistic_since
                .is_some_and(|since| now < since + config.optimistic_interval)
    });
    if let Some(i) = current {
        set.optimistic = Some(peers[i].id);
        return set;
    }
    let mut candidates: Vec<usize> = (0..peers.len())
        .filter(|&i| eligible(i) && peers[i].optimistic_since.is_none())
        .collect();
    if candidates.is_empty() {
        // Only the previous optimistic peer is left: it may stay.
        candidates = (0..peers.len()).filter(|&i| eligible(i)).collect();
    }
    let weight = |i: usize| {
        if now < peers[i].connected_at + config.new_peer_window {
            3
        } else {
            1
        }
    };
    let total: u64 = candidates.iter().map(|&i| weight(i)).sum();
    if total > 0 {
        let mut ticket = rng.below(total);
        for &i in &candidates {
            if ticket < weight(i) {
                set.optimistic = Some(peers[i].id);
                break;
            }
            ticket -= weight(i);
        }
    }
    set
}

/// Seeding order: peers in their turn (fastest first), then waiting peers (longest wait
/// first, never unchoked before all), then peers whose turn is over (fastest first).
fn seed_rank<Id>(p: &PeerSnapshot<Id>, config: &ChokerConfig, now: Instant) -> (u8, u64) {
    let in_turn = p
        .last_unchoked
        .is_some_and(|at| now < at + config.seed_turn);
    // The optimistic peer is not in a regular turn: it waits like a choked one.
    let waiting = p.am_choking || p.optimistic_since.is_some();
    match (waiting, in_turn) {
        (false, true) => (0, u64::MAX - p.upload_rate),
        (true, _) => (1, p.last_unchoked.map_or(0, |t| t.as_micros() + 1)),
        (false, false) => (2, u64::MAX - p.upload_rate),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    fn peer(id: u32, download_rate: u64) -> PeerSnapshot<u32> {
        PeerSnapshot {
            id,
            interested: true,
            am_choking: true,
            download_rate,
            upload_rate: 0,
            snubbed: false,
            connected_at: at(0),
            last_unchoked: None,
            optimistic_since: None,
        }
    }

    fn config(slots: usize) -> ChokerConfig {
        ChokerConfig {
            slots,
            ..ChokerConfig::DEFAULT
        }
    }

    /// Parses a rate table: one peer per entry, `"rate"`, `"rate s"` (snubbed) or `"-"`
    /// (not interested); ids are positions.
    fn table(rows: &[&str]) -> Vec<PeerSnapshot<u32>> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let mut p = peer(i as u32, 0);
                let mut parts = row.split(' ');
                match parts.next() {
                    Some("-") => p.interested = false,
                    Some(rate) => p.download_rate = rate.parse().unwrap(),
                    None => {}
                }
                p.snubbed = parts.next() == Some("s");
                p
            })
            .collect()
    }

    #[test]
    fn leeching_unchokes_the_fastest_uploaders_to_us() {
        // (rates, slots, expected regular set)
        let cases: &[(&[&str], usize, &[u32])] = &[
            (&["10", "50", "30", "20", "40"], 4, &[1, 4, 2]),
            (&["10", "50", "30", "20", "40"], 2, &[1]),
            (&["10", "50 s", "30", "20", "40"], 4, &[4, 2, 3]),
            (&["10", "-", "30", "-", "40"], 4, &[4, 2, 0]),
            (&["-", "-"], 4, &[]),
            (&["5", "6"], 1, &[]),
            (&["5", "6"], 0, &[]),
        ];
        for &(rows, slots, expected) in cases {
            let peers = table(rows);
            let set = unchoke(
                &peers,
                false,
                &config(slots),
                at(100),
                &mut Rng::from_seed(1),
            );
            assert_eq!(set.regular, expected, "rates {rows:?}, {slots} slots");
            assert!(set.len() <= slots);
            if let Some(o) = set.optimistic {
                assert!(peers[o as usize].interested && !set.regular.contains(&o));
            }
        }
    }

    #[test]
    fn snubbed_peers_only_get_the_optimistic_slot() {
        let peers = table(&["100 s", "1", "2"]);
        let mut seen = BTreeSet::new();
        for seed in 0..20 {
            let set = unchoke(
                &peers,
                false,
                &config(2),
                at(100),
                &mut Rng::from_seed(seed),
            );
            assert_eq!(set.regular, [2]);
            seen.extend(set.optimistic);
        }
        assert_eq!(
            seen,
            BTreeSet::from([0, 1]),
            "the snubbed peer can be optimistic"
        );
    }

    #[test]
    fn equal_rates_are_broken_by_the_seed() {
        let peers = table(&["7", "7", "7", "7", "7", "7"]);
        let pick = |seed| {
            unchoke(
                &peers,
                false,
                &config(3),
                at(100),
                &mut Rng::from_seed(seed),
            )
        };
        assert_eq!(pick(4), pick(4));
        let distinct: BTreeSet<Vec<u32>> = (0..10).map(|s| pick(s).regular).collect();
        assert!(
            distinct.len() > 1,
            "ties are not always broken the same way"
        );
    }

    /// Applies sets round after round (every 10 s) like the session does.
    fn run_rounds(
        peers: &mut [PeerSnapshot<u32>],
        seeding: bool,
        slots: usize,
        rounds: u64,
        rng: &mut Rng,
    ) -> Vec<UnchokeSet<u32>> {
        let mut sets = Vec::new();
        for round in 0..rounds {
            let now = at(100 + round * 10);
            let set = unchoke(peers, seeding, &config(slots), now, rng);
            for p in peers.iter_mut() {
                let on = set.contains(p.id);
                if on && p.am_choking {
                    p.last_unchoked = Some(now);
                }
                p.am_choking = !on;
                if set.optimistic == Some(p.id) {
                    p.optimistic_since.get_or_insert(now);
                } else {
                    p.optimistic_since = None;
                }
            }
            sets.push(set);
        }
        sets
    }

    #[test]
    fn optimistic_slot_rotates_every_30_seconds() {
        let mut peers = table(&["90", "80", "1", "1", "1", "1", "1"]);
        let sets = run_rounds(&mut peers, false, 3, 12, &mut Rng::from_seed(3));
        let optimistic: Vec<u32> = sets.iter().map(|s| s.optimistic.unwrap()).collect();
        for (round, chunk) in optimistic.chunks(3).enumerate() {
            assert!(
                chunk.iter().all(|&o| o == chunk[0]),
                "kept for 30 s: {optimistic:?}"
            );
            if round > 0 {
                assert_ne!(chunk[0], optimistic[(round - 1) * 3], "then rotated");
            }
        }
        assert!(sets.iter().all(|s| s.regular == [0, 1]));
    }

    #[test]
    fn new_peers_are_favoured_for_the_optimistic_slot() {
        let mut peers = table(&["1", "1", "1", "1"]);
        peers[3].connected_at = at(95); // new at t = 100
        let mut wins: BTreeMap<u32, u32> = BTreeMap::new();
        for seed in 0..600 {
            let set = unchoke(
                &peers,
                false,
                &config(1),
                at(100),
                &mut Rng::from_seed(seed),
            );
            *wins.entry(set.optimistic.unwrap()).or_default() += 1;
        }
        // Expected shares: 3/6 for the new peer, 1/6 for each other.
        assert!(wins[&3] > 240, "{wins:?}");
        assert!(wins[&0] < 150, "{wins:?}");
    }

    #[test]
    fn seeding_rotates_slots_through_all_interested_peers() {
        let mut peers = table(&["0", "0", "0", "0", "0", "0"]);
        for (i, p) in peers.iter_mut().enumerate() {
            p.upload_rate = 100 * (i as u64 + 1);
            p.connected_at = at(0);
        }
        let sets = run_rounds(&mut peers, true, 3, 18, &mut Rng::from_seed(9));
        let mut served = BTreeSet::new();
        for s in &sets {
            assert_eq!(s.regular.len(), 2);
            served.extend(s.regular.iter().copied());
        }
        assert_eq!(served.len(), 6, "every peer gets a regular slot: {sets:?}");
        // A regular peer keeps its slot through its 30 s turn.
        let first = &sets[0].regular;
        assert!(first.iter().all(|id| sets[1].regular.contains(id)));
        assert!(first.iter().all(|id| sets[2].regular.contains(id)));
    }

    #[test]
    fn seeding_ignores_snubbing_and_interest_matters() {
        let peers = table(&["0 s", "-", "0"]);
        let set = unchoke(&peers, true, &config(3), at(100), &mut Rng::from_seed(1));
        assert_eq!(
            set.regular.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([0, 2])
        );
        assert!(!set.contains(1));
    }
}
