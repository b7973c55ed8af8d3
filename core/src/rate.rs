//! Rate limits: a token bucket per direction, globally and per torrent.
//!
//! A [`TokenBucket`] fills at `rate` bytes per second up to `burst` bytes. Taking `n` bytes
//! succeeds when the bucket holds at least `min(n, burst)` tokens and may leave it in debt, so
//! a block larger than the burst still goes out, and the debt delays the next one: over any
//! long interval the bytes taken stay within `rate × time + burst`.
//!
//! Time is an argument (STYLE.md rule 1); tokens are kept in byte-microseconds so no fraction
//! of a token is ever lost to rounding.

use crate::time::{Duration, Instant};

const MICROS: i128 = 1_000_000;

/// A token bucket: at most `rate` bytes per second on average, `burst` bytes at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    burst: u64,
    /// Tokens × 1,000,000 (byte-microseconds); negative while in debt.
    scaled: i128,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that grants everything at once.
    pub const UNLIMITED: Self = Self {
        rate: 0,
        burst: 0,
        scaled: 0,
        last: Instant::ZERO,
    };

    /// A bucket of `rate` bytes per second (0 = unlimited) holding up to `burst` bytes,
    /// starting full.
    pub fn new(rate: u64, burst: u64) -> Self {
        let burst = burst.max(1);
        Self {
            rate,
            burst,
            scaled: i128::from(burst) * MICROS,
            last: Instant::ZERO,
        }
    }

    /// A bucket of `rate` bytes per second with the burst a limiter of block transfers wants:
    /// a fifth of a second's worth, at least one 16 KiB block.
    pub fn with_rate(rate: u64) -> Self {
        Self::new(rate, (rate / 5).max(u64::from(crate::metainfo::BLOCK_LEN)))
    }

    /// The rate in bytes per second; 0 means unlimited.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether the bucket grants everything.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let elapsed = i128::from((now - self.last).as_micros() as u64);
        self.last = now;
        let cap = i128::from(self.burst) * MICROS;
        self.scaled = (self.scaled + elapsed * i128::from(self.rate)).min(cap);
    }

    fn needed(&self, n: u64) -> i128 {
        i128::from(n.min(self.burst)) * MICROS
    }

    /// Takes `n` bytes' worth of tokens if the bucket holds at least `min(n, burst)`; returns
    /// whether it did. Always `true` when unlimited.
    pub fn take(&mut self, now: Instant, n: u64) -> bool {
        if self.is_unlimited() {
            return true;
        }
        self.refill(now);
        if self.scaled < self.needed(n) {
            return false;
        }
        self.scaled -= i128::from(n) * MICROS;
        true
    }

    /// Returns `n` bytes' worth of tokens taken but not used (capped at the burst).
    pub fn give_back(&mut self, n: u64) {
        if self.is_unlimited() {
            return;
        }
        let cap = i128::from(self.burst) * MICROS;
        self.scaled = (self.scaled + i128::from(n) * MICROS).min(cap);
    }

    /// The earliest instant at which [`take`](Self::take) of `n` bytes would succeed (`now` if
    /// it would now).
    pub fn next_available(&self, now: Instant, n: u64) -> Instant {
        if self.is_unlimited() {
            return now;
        }
        let mut b = self.clone();
        b.refill(now);
        let missing = b.needed(n) - b.scaled;
        if missing <= 0 {
            return now;
        }
        let rate = i128::from(self.rate);
        let micros = (missing + rate - 1) / rate;
        now + Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// Takes `n` from both buckets or from neither (a global and a per-torrent limit).
pub(crate) fn take_both(now: Instant, a: &mut TokenBucket, b: &mut TokenBucket, n: u64) -> bool {
    if !a.take(now, n) {
        return false;
    }
    if !b.take(now, n) {
        a.give_back(n);
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(m: u64) -> Instant {
        Instant::from_micros(m * 1000)
    }

    #[test]
    fn unlimited_grants_everything() {
        let mut b = TokenBucket::UNLIMITED;
        assert!(b.take(ms(0), u64::MAX));
        assert_eq!(b.next_available(ms(5), 1 << 40), ms(5));
    }

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        // 1000 bytes/s, burst 500.
        let mut b = TokenBucket::new(1000, 500);
        assert!(b.take(ms(0), 500));
        assert!(!b.take(ms(0), 1), "empty");
        assert_eq!(b.next_available(ms(0), 100), ms(100));
        assert!(!b.take(ms(99), 100));
        assert!(b.take(ms(100), 100));
        // Refill caps at the burst.
        assert!(b.take(ms(10_000), 500));
        assert!(!b.take(ms(10_000), 1));
    }

    #[test]
    fn a_take_larger_than_the_burst_goes_into_debt() {
        let mut b = TokenBucket::new(1000, 500);
        assert!(b.take(ms(0), 2000), "a full bucket grants a large take");
        // 1500 bytes of debt, then 500 needed for the next large take: 2 s.
        assert_eq!(b.next_available(ms(0), 2000), ms(2000));
        assert!(!b.take(ms(1999), 2000));
        assert!(b.take(ms(2000), 2000));
    }

    #[test]
    fn long_run_average_stays_within_rate_and_burst() {
        let mut b = TokenBucket::with_rate(100_000);
        let mut now = ms(0);
        let mut sent = 0u64;
        while now < ms(10_000) {
            if b.take(now, 16384) {
                sent += 16384;
            } else {
                now = b.next_available(now, 16384);
            }
        }
        let bound = 100_000 * 10 + 20_000 + 16384;
        assert!(sent <= bound, "sent {sent} > {bound}");
        assert!(sent >= 100_000 * 10 - 16384, "sent {sent}: starved");
    }

    #[test]
    fn give_back_and_take_both() {
        let mut a = TokenBucket::new(1000, 1000);
        let mut b = TokenBucket::new(1000, 100);
        assert!(b.take(ms(0), 100));
        assert!(!take_both(ms(0), &mut a, &mut b, 50), "b is empty");
        assert!(a.take(ms(0), 1000), "a got its tokens back");
        a.give_back(10_000);
        assert!(
            a.take(ms(0), 1000) && !a.take(ms(0), 1),
            "give_back caps at the burst"
        );
    }
}
