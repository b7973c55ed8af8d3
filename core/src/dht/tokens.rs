//! Write tokens (BEP 5) and transaction ids, both derived from secrets drawn from the node's
//! [`Rng`].
//!
//! A token is the first [`TOKEN_LEN`] bytes of SHA-1(secret ‖ requester IP). The secret
//! rotates every [`ROTATE_EVERY`]; tokens made with the current or the previous secret are
//! accepted, so a token lives between 5 and 10 minutes (BEP 5 "up to ten minutes").
//!
//! Transaction ids are SHA-1(key ‖ counter), truncated, rather than raw generator output:
//! every remote node sees our transaction ids, and `Rng` (xoshiro256**) is not a cryptographic
//! generator, so its raw output could in principle reveal its state. Hashing under a secret
//! key means ids and tokens are unguessable to anyone who does not know the seed — which is
//! why runtimes must seed the node's `Rng` from the operating system's entropy.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

use super::krpc::{Token, TxId};
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// Bytes in the tokens we hand out.
pub const TOKEN_LEN: usize = 8;

/// Bytes in the transaction ids we send.
pub const TID_LEN: usize = 4;

/// How often the token secret rotates.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);

/// Issues and checks write tokens.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

fn token_for(secret: &[u8; 16], ip: IpAddr) -> Token {
    let mut h = Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    let digest = h.finalize();
    Token::try_from(&digest[..TOKEN_LEN]).expect("TOKEN_LEN fits MAX_TOKEN")
}

impl Tokens {
    /// Fresh secrets from `rng`.
    pub fn new(now: Instant, rng: &mut Rng) -> Self {
        let mut current = [0; 16];
        let mut previous = [0; 16];
        rng.fill(&mut current);
        rng.fill(&mut previous);
        Self {
            current,
            previous,
            rotated_at: now,
        }
    }

    /// Rotates the secret if [`ROTATE_EVERY`] has passed; returns the next rotation time.
    pub fn maintain(&mut self, now: Instant, rng: &mut Rng) -> Instant {
        if now.saturating_duration_since(self.rotated_at) >= ROTATE_EVERY {
            self.previous = self.current;
            rng.fill(&mut self.current);
            self.rotated_at = now;
        }
        self.rotated_at + ROTATE_EVERY
    }

    /// The token for a requester at `ip`.
    pub fn issue(&self, ip: IpAddr) -> Token {
        token_for(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` by the current or the previous secret.
    pub fn verify(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == &token_for(&self.current, ip)[..] || token == &token_for(&self.previous, ip)[..]
    }
}

/// Makes transaction ids: a keyed hash of a counter (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct TidGen {
    key: [u8; 16],
    counter: u64,
}

impl TidGen {
    /// A generator keyed from `rng`.
    pub fn new(rng: &mut Rng) -> Self {
        let mut key = [0; 16];
        rng.fill(&mut key);
        Self { key, counter: 0 }
    }

    /// The next id.
    pub fn next_tid(&mut self) -> TxId {
        self.counter += 1;
        let mut h = Sha1::new();
        h.update(self.key);
        h.update(self.counter.to_le_bytes());
        let digest = h.finalize();
        TxId::try_from(&digest[..TID_LEN]).expect("TID_LEN fits MAX_TID")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_ip_and_live_two_rotations() {
        let mut rng = Rng::from_seed(9);
        let t0 = Instant::ZERO;
        let mut tokens = Tokens::new(t0, &mut rng);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let tok = tokens.issue(a);
        assert_eq!(tok.len(), TOKEN_LEN);
        assert!(tokens.verify(a, &tok));
        assert!(!tokens.verify(b, &tok));
        assert!(!tokens.verify(a, b"garbage"));
        // Not yet due: nothing changes.
        tokens.maintain(t0 + Duration::from_secs(60), &mut rng);
        assert_eq!(tokens.issue(a), tok);
        // One rotation: still accepted, but a new one is issued.
        tokens.maintain(t0 + ROTATE_EVERY, &mut rng);
        assert!(tokens.verify(a, &tok));
        assert_ne!(tokens.issue(a), tok);
        // Two rotations: expired.
        tokens.maintain(t0 + ROTATE_EVERY * 2, &mut rng);
        assert!(!tokens.verify(a, &tok));
    }

    #[test]
    fn tids_differ_and_depend_on_the_seed() {
        let mut g1 = TidGen::new(&mut Rng::from_seed(1));
        let mut g2 = TidGen::new(&mut Rng::from_seed(2));
        let a: Vec<TxId> = (0..100).map(|_| g1.next_tid()).collect();
        let b: Vec<TxId> = (0..100).map(|_| g2.next_tid()).collect();
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert_ne!(a, b);
    }
}
