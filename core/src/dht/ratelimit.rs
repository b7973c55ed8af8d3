//! Per-IP rate limiting of incoming queries: a token bucket per source address, in a table of
//! bounded size.
//!
//! When the table is full of addresses that are all still limited, queries from new addresses
//! are refused until [`QueryLimiter::maintain`] clears idle entries: a flood from many
//! (spoofed) addresses costs us a bounded table and no replies, rather than memory.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::time::Instant;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u32,
    refilled: Instant,
}

/// Token buckets for queries, one per source IP address.
#[derive(Clone, Debug)]
pub struct QueryLimiter {
    per_second: u32,
    burst: u32,
    max_ips: usize,
    buckets: BTreeMap<IpAddr, Bucket>,
}

impl QueryLimiter {
    /// At most `per_second` queries a second per address after a burst of `burst`, tracking
    /// at most `max_ips` addresses.
    pub fn new(per_second: u32, burst: u32, max_ips: usize) -> Self {
        Self {
            per_second: per_second.max(1),
            burst: burst.max(1),
            max_ips,
            buckets: BTreeMap::new(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.refilled);
        let micros_per_token = 1_000_000 / u64::from(self.per_second);
        let new = elapsed.as_micros() as u64 / micros_per_token.max(1);
        if new > 0 {
            b.tokens = (u64::from(b.tokens) + new).min(u64::from(self.burst)) as u32;
            b.refilled = b
                .refilled
                .saturating_add(crate::time::Duration::from_micros(new * micros_per_token));
            if b.tokens == self.burst {
                b.refilled = now;
            }
        }
    }

    /// Whether a query from `ip` may be served now (and takes a token if so).
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if let Some(mut b) = self.buckets.get(&ip).copied() {
            self.refill(&mut b, now);
            let ok = b.tokens > 0;
            if ok {
                b.tokens -= 1;
            }
            self.buckets.insert(ip, b);
            return ok;
        }
        if self.buckets.len() >= self.max_ips {
            return false;
        }
        self.buckets.insert(
            ip,
            Bucket {
                tokens: self.burst - 1,
                refilled: now,
            },
        );
        true
    }

    /// Forgets addresses whose bucket has refilled (they are as if never seen).
    pub fn maintain(&mut self, now: Instant) {
        let mut buckets = std::mem::take(&mut self.buckets);
        buckets.retain(|_, b| {
            self.refill(b, now);
            b.tokens < self.burst
        });
        self.buckets = buckets;
    }

    /// The number of addresses tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn limits_per_ip_refills_and_bounds_the_table() {
        let mut l = QueryLimiter::new(10, 5, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        let t0 = Instant::ZERO;
        for _ in 0..5 {
            assert!(l.allow(t0, a));
        }
        assert!(!l.allow(t0, a), "burst spent");
        assert!(l.allow(t0, b), "other addresses are not affected");
        assert!(!l.allow(t0, c), "table full");
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.allow(t1, a), "one token back after 100 ms");
        assert!(!l.allow(t1, a));
        let t2 = t0 + Duration::from_secs(10);
        l.maintain(t2);
        assert_eq!(l.tracked(), 0);
        assert!(l.allow(t2, c));
    }
}
