//! The bounded peer store: who announced which info-hash to us (BEP 5 `announce_peer`), with
//! seed flags and bloom filters for scrapes (BEP 33) and samples for BEP 51.
//!
//! Bounds: at most `max_torrents` info-hashes and `max_peers` peers per info-hash, one entry
//! per IP address per info-hash (BEP 33 "sets of unique IPs"), each expiring `peer_ttl` after
//! its last announce. When the store is full, a new info-hash evicts the one with the fewest
//! peers if that has fewer than two; otherwise the new one is refused. A full info-hash
//! refuses new IPs (and, BEP 33, the node then stops handing out tokens for it).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::bloom::ScrapeBloom;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// The peer store's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Info-hashes kept.
    pub max_torrents: usize,
    /// Peers kept per info-hash (BEP 33 suggests staying below 6,000).
    pub max_peers: usize,
    /// How long an announce is kept.
    pub peer_ttl: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_torrents: 2_000,
            max_peers: 500,
            peer_ttl: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Clone, Debug)]
struct StoredPeer {
    addr: SocketAddr,
    seed: bool,
    expires: Instant,
}

#[derive(Clone, Debug, Default)]
struct Swarm {
    peers: Vec<StoredPeer>,
}

/// What [`PeerStore::announce`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A new peer was stored.
    Added,
    /// An existing entry for that IP was refreshed.
    Refreshed,
    /// The store or the info-hash is full.
    Full,
}

/// Peers announced to this node, by info-hash.
#[derive(Clone, Debug, Default)]
pub struct PeerStore {
    limits: StoreLimits,
    swarms: BTreeMap<[u8; 20], Swarm>,
}

impl PeerStore {
    /// An empty store with these bounds.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            swarms: BTreeMap::new(),
        }
    }

    /// The number of info-hashes stored.
    pub fn len(&self) -> usize {
        self.swarms.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.swarms.is_empty()
    }

    /// Whether a new announce for `info_hash` from `ip` would be stored (so a token is worth
    /// handing out: BEP 33 "changed announce accounting").
    pub fn would_accept(&self, info_hash: &[u8; 20], ip: IpAddr) -> bool {
        match self.swarms.get(info_hash) {
            Some(s) => {
                s.peers.len() < self.limits.max_peers || s.peers.iter().any(|p| p.addr.ip() == ip)
            }
            None => true,
        }
    }

    /// Stores (or refreshes) `addr` as a peer of `info_hash`.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: [u8; 20],
        addr: SocketAddr,
        seed: bool,
    ) -> Stored {
        let expires = now + self.limits.peer_ttl;
        if !self.swarms.contains_key(&info_hash) {
            if self.swarms.len() >= self.limits.max_torrents && !self.evict_smallest() {
                return Stored::Full;
            }
            self.swarms.insert(info_hash, Swarm::default());
        }
        let swarm = self.swarms.get_mut(&info_hash).expect("inserted above");
        if let Some(p) = swarm.peers.iter_mut().find(|p| p.addr.ip() == addr.ip()) {
            *p = StoredPeer {
                addr,
                seed,
                expires,
            };
            return Stored::Refreshed;
        }
        if swarm.peers.len() >= self.limits.max_peers {
            return Stored::Full;
        }
        swarm.peers.push(StoredPeer {
            addr,
            seed,
            expires,
        });
        Stored::Added
    }

    fn evict_smallest(&mut self) -> bool {
        let smallest = self
            .swarms
            .iter()
            .min_by_key(|(_, s)| s.peers.len())
            .map(|(k, s)| (*k, s.peers.len()));
        match smallest {
            Some((key, n)) if n < 2 => {
                self.swarms.remove(&key);
                true
            }
            _ => false,
        }
    }

    /// Up to `max` peers of `info_hash` in the family of `ipv6`, chosen at random; with
    /// `noseed`, non-seeds first (BEP 33).
    pub fn peers(
        &self,
        info_hash: &[u8; 20],
        ipv6: bool,
        noseed: bool,
        max: usize,
        rng: &mut Rng,
    ) -> Vec<SocketAddr> {
        let Some(swarm) = self.swarms.get(info_hash) else {
            return Vec::new();
        };
        let mut candidates: Vec<&StoredPeer> = swarm
            .peers
            .iter()
            .filter(|p| p.addr.is_ipv6() == ipv6)
            .collect();
        rng.shuffle(&mut candidates);
        if noseed {
            candidates.sort_by_key(|p| p.seed);
        }
        candidates.iter().take(max).map(|p| p.addr).collect()
    }

    /// BEP 33: bloom filters of the seeds' and the other peers' addresses, if `info_hash` is
    /// stored.
    pub fn scrape(&self, info_hash: &[u8; 20]) -> Option<(ScrapeBloom, ScrapeBloom)> {
        let swarm = self.swarms.get(info_hash)?;
        let mut seeds = ScrapeBloom::new();
        let mut peers = ScrapeBloom::new();
        for p in &swarm.peers {
            if p.seed {
                seeds.insert(p.addr.ip());
            } else {
                peers.insert(p.addr.ip());
            }
        }
        Some((seeds, peers))
    }

    /// BEP 51: up to `max` stored info-hashes, chosen at random.
    pub fn sample(&self, max: usize, rng: &mut Rng) -> Vec<[u8; 20]> {
        let mut all: Vec<[u8; 20]> = self.swarms.keys().copied().collect();
        rng.shuffle(&mut all);
        all.truncate(max);
        all
    }

    /// Drops expired peers and empty info-hashes.
    pub fn expire(&mut self, now: Instant) {
        self.swarms.retain(|_, s| {
            s.peers.retain(|p| p.expires > now);
            !s.peers.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, i], port))
    }

    #[test]
    fn one_entry_per_ip_bounded_and_expiring() {
        let limits = StoreLimits {
            max_torrents: 2,
            max_peers: 3,
            peer_ttl: Duration::from_secs(60),
        };
        let mut store = PeerStore::new(limits);
        let t0 = Instant::ZERO;
        let h = [1; 20];
        assert_eq!(store.announce(t0, h, addr(1, 1000), false), Stored::Added);
        assert_eq!(
            store.announce(t0, h, addr(1, 2000), true),
            Stored::Refreshed
        );
        assert_eq!(store.announce(t0, h, addr(2, 1000), false), Stored::Added);
        assert_eq!(store.announce(t0, h, addr(3, 1000), false), Stored::Added);
        assert!(!store.would_accept(&h, addr(4, 1).ip()));
        assert!(store.would_accept(&h, addr(3, 1).ip()));
        assert_eq!(store.announce(t0, h, addr(4, 1000), false), Stored::Full);
        let mut rng = Rng::from_seed(1);
        let mut got = store.peers(&h, false, false, 10, &mut rng);
        got.sort();
        assert_eq!(got, vec![addr(1, 2000), addr(2, 1000), addr(3, 1000)]);
        // noseed puts the seed last.
        let ordered = store.peers(&h, false, true, 10, &mut rng);
        assert_eq!(ordered.last(), Some(&addr(1, 2000)));
        assert!(store.peers(&h, true, false, 10, &mut rng).is_empty());
        let (seeds, peers) = store.scrape(&h).unwrap();
        assert!((seeds.estimate() - 1.0).abs() < 0.1);
        assert!((peers.estimate() - 2.0).abs() < 0.1);

        // Torrent limit: a single-peer swarm is evicted for a new one, a larger one is not.
        assert_eq!(
            store.announce(t0, [2; 20], addr(1, 1), false),
            Stored::Added
        );
        assert_eq!(
            store.announce(t0, [3; 20], addr(1, 1), false),
            Stored::Added
        );
        assert_eq!(store.len(), 2);
        assert!(store.scrape(&[2; 20]).is_none());
        store.announce(t0, [3; 20], addr(2, 1), false);
        assert_eq!(store.announce(t0, [4; 20], addr(1, 1), false), Stored::Full);

        assert_eq!(store.sample(10, &mut rng).len(), 2);
        store.expire(t0 + Duration::from_secs(61));
        assert!(store.is_empty());
    }
}
