//! The outgoing request pipeline's bookkeeping and transfer-rate measurement.

use crate::time::Instant;
use crate::wire::BlockRequest;

/// One of our requests in flight to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Outstanding {
    pub(super) request: BlockRequest,
    pub(super) sent: Instant,
}

/// Bytes per second over a sliding window of one-second buckets.
///
/// Costs O(1) per sample and a few words of memory per connection.
#[derive(Clone, Debug, Default)]
pub(super) struct Rate {
    /// Bytes in each of the last `WINDOW` whole seconds, indexed by second modulo `WINDOW`.
    buckets: [u64; WINDOW],
    /// The second (since the epoch) the newest bucket belongs to.
    newest: u64,
    total: u64,
}

const WINDOW: usize = 5;

impl Rate {
    fn advance(&mut self, now: Instant) {
        let second = now.as_micros() / 1_000_000;
        if second <= self.newest {
            return;
        }
        let gap = (second - self.newest).min(WINDOW as u64);
        for s in 1..=gap {
            self.buckets[((self.newest + s) % WINDOW as u64) as usize] = 0;
        }
        self.newest = second;
    }

    /// Counts `bytes` transferred at `now`.
    pub(super) fn add(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.buckets[(self.newest % WINDOW as u64) as usize] += bytes;
        self.total += bytes;
    }

    /// The average over the window (the current, partial second counts as a whole one).
    pub(super) fn per_second(&self, now: Instant) -> u64 {
        let second = now.as_micros() / 1_000_000;
        let age = second.saturating_sub(self.newest);
        if age >= WINDOW as u64 {
            return 0;
        }
        // Buckets older than the window as seen from `now` no longer count.
        let sum: u64 = (0..WINDOW as u64 - age)
            .map(|back| {
                self.buckets[((self.newest + WINDOW as u64 - back) % WINDOW as u64) as usize]
            })
            .sum();
        sum / WINDOW as u64
    }

    /// All bytes ever counted.
    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    #[test]
    fn rate_averages_over_the_window_and_decays() {
        let mut r = Rate::default();
        for s in 0..10 {
            r.add(at(s), 1000);
        }
        assert_eq!(r.per_second(at(9)), 1000);
        assert_eq!(
            r.per_second(at(11)),
            600,
            "two quiet seconds leave three buckets"
        );
        assert_eq!(r.per_second(at(20)), 0);
        assert_eq!(r.total(), 10_000);
        r.add(at(30), 500);
        assert_eq!(r.per_second(at(30)), 100);
    }
}
