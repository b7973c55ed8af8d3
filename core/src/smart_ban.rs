//! Smart ban: finding the peer that sent a bad block when a piece fails its hash check.
//!
//! A failed piece whose blocks all came from one peer convicts that peer at once: the SHA-1 was
//! computed over its bytes alone. A failed piece with blocks from several peers convicts nobody
//! yet. libtorrent's idea (its `smart_ban` plugin) is to remember a digest of every block of
//! the failed attempt with its sender, download the piece again, and when it finally passes,
//! compare: a sender whose block differs from the good block sent corrupt data. Until then the
//! session re-downloads such a piece from a single peer
//! ([`Picker::set_exclusive`](crate::picker::Picker::set_exclusive)), so a second failure names
//! one sender too.
//!
//! Memory is bounded: attempts are kept for at most [`MAX_PIECES`] pieces (the oldest piece's
//! records are dropped first) and [`MAX_ATTEMPTS`] attempts per piece, 20 bytes per block.
//!
//! This is a policy unit (STYLE.md rule 9): it sees piece indices, sender keys (`K`, the
//! session uses the peer's IP address, as libtorrent bans addresses) and block bytes.

use std::collections::{BTreeMap, VecDeque};

use sha1::{Digest as _, Sha1};

/// The most pieces whose failed attempts are remembered.
pub(crate) const MAX_PIECES: usize = 256;
/// The most failed attempts remembered per piece (the oldest is dropped).
pub(crate) const MAX_ATTEMPTS: usize = 4;

/// One failed attempt: each block's sender and digest.
type Attempt<K> = Vec<Option<(K, [u8; 20])>>;

/// What to do after a piece failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failed<K> {
    /// Senders proven guilty: the sole sender of the failed piece.
    pub(crate) guilty: Vec<K>,
    /// The piece had several senders: download it again from one peer.
    pub(crate) retry_exclusive: bool,
}

/// Failed attempts of pieces, for one torrent.
#[derive(Clone, Debug)]
pub(crate) struct SmartBan<K> {
    attempts: BTreeMap<u32, VecDeque<Attempt<K>>>,
    /// Pieces with records, oldest first (for eviction).
    order: VecDeque<u32>,
}

impl<K> Default for SmartBan<K> {
    fn default() -> Self {
        Self {
            attempts: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

impl<K: Copy + Eq> SmartBan<K> {
    /// `piece` failed its hash check; `blocks` are its blocks in order, each with its sender
    /// (`None` for a block whose sender is unknown).
    pub(crate) fn piece_failed(&mut self, piece: u32, blocks: &[Option<(K, &[u8])>]) -> Failed<K> {
        let mut senders: Vec<K> = Vec::new();
        for (k, _) in blocks.iter().flatten() {
            if !senders.contains(k) {
                senders.push(*k);
            }
        }
        if senders.len() == 1 && blocks.iter().all(Option::is_some) {
            return Failed {
                guilty: senders,
                retry_exclusive: false,
            };
        }
        let attempt: Attempt<K> = blocks
            .iter()
            .map(|b| b.map(|(k, bytes)| (k, digest(bytes))))
            .collect();
        if !self.attempts.contains_key(&piece) {
            if self.order.len() >= MAX_PIECES {
                if let Some(old) = self.order.pop_front() {
                    self.attempts.remove(&old);
                }
            }
            self.order.push_back(piece);
        }
        let list = self.attempts.entry(piece).or_default();
        if list.len() >= MAX_ATTEMPTS {
            list.pop_front();
        }
        list.push_back(attempt);
        Failed {
            guilty: Vec::new(),
            retry_exclusive: true,
        }
    }

    /// `piece` passed its hash check with `blocks` (in order): returns the senders of blocks
    /// in its earlier failed attempts that differ from the good ones, each once.
    pub(crate) fn piece_passed(&mut self, piece: u32, blocks: &[&[u8]]) -> Vec<K> {
        let Some(attempts) = self.attempts.remove(&piece) else {
            return Vec::new();
        };
        self.order.retain(|p| *p != piece);
        let good: Vec<[u8; 20]> = blocks.iter().map(|b| digest(b)).collect();
        let mut guilty = Vec::new();
        for attempt in &attempts {
            for (i, block) in attempt.iter().enumerate() {
                let Some((k, d)) = block else { continue };
                if good.get(i).is_some_and(|g| g != d) && !guilty.contains(k) {
                    guilty.push(*k);
                }
            }
        }
        guilty
    }

    /// How many pieces have failed attempts on record.
    #[cfg(test)]
    pub(crate) fn pieces_on_record(&self) -> usize {
        self.attempts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [&[u8]; 3] = [b"aaaa", b"bbbb", b"cccc"];

    #[test]
    fn a_sole_sender_is_guilty_at_once() {
        let mut ban = SmartBan::default();
        let blocks = [
            Some((7u8, &b"xxxx"[..])),
            Some((7, GOOD[1])),
            Some((7, GOOD[2])),
        ];
        let failed = ban.piece_failed(0, &blocks);
        assert_eq!(failed.guilty, vec![7]);
        assert!(!failed.retry_exclusive);
        assert_eq!(ban.pieces_on_record(), 0);
    }

    #[test]
    fn several_senders_are_resolved_when_the_piece_passes() {
        let mut ban = SmartBan::default();
        // Peer 2 corrupts block 1; peers 1 and 3 are honest.
        let blocks = [
            Some((1u8, GOOD[0])),
            Some((2, &b"bad!"[..])),
            Some((3, GOOD[2])),
        ];
        let failed = ban.piece_failed(5, &blocks);
        assert!(failed.guilty.is_empty());
        assert!(failed.retry_exclusive);
        // A second failed attempt, peer 2 alone on block 0 this time, the rest unknown.
        let blocks = [Some((2u8, &b"bad?"[..])), None, Some((3, GOOD[2]))];
        assert!(ban.piece_failed(5, &blocks).guilty.is_empty());
        // The piece passes: only peer 2 sent blocks that differ.
        assert_eq!(ban.piece_passed(5, &GOOD), vec![2]);
        assert_eq!(ban.pieces_on_record(), 0);
        // Nothing on record: nobody is guilty.
        assert!(ban.piece_passed(5, &GOOD).is_empty());
    }

    #[test]
    fn honest_senders_of_a_failed_piece_are_never_convicted() {
        let mut ban = SmartBan::default();
        let blocks = [Some((1u8, GOOD[0])), Some((3, GOOD[1])), Some((1, GOOD[2]))];
        // Failed for a reason that is not in the blocks we compare (e.g. a block that was
        // replaced): nobody sent a differing block.
        assert!(ban.piece_failed(9, &blocks).guilty.is_empty());
        assert!(ban.piece_passed(9, &GOOD).is_empty());
    }

    #[test]
    fn records_are_bounded() {
        let mut ban = SmartBan::default();
        let blocks = [Some((1u8, GOOD[0])), Some((2, GOOD[1]))];
        for piece in 0..(MAX_PIECES as u32 + 10) {
            for _ in 0..MAX_ATTEMPTS + 2 {
                ban.piece_failed(piece, &blocks);
            }
        }
        assert_eq!(ban.pieces_on_record(), MAX_PIECES);
        assert!(ban.attempts.values().all(|a| a.len() == MAX_ATTEMPTS));
        // The oldest pieces were dropped.
        assert!(!ban.attempts.contains_key(&0));
        assert!(ban.attempts.contains_key(&(MAX_PIECES as u32 + 9)));
    }
}
