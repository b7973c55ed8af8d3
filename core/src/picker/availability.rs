//! Pieces ordered by availability, in buckets, with a position index (libtorrent's
//! `m_pieces` / `m_priority_boundaries` idea).
//!
//! Each priority level keeps one array of piece indices grouped into buckets by peer count:
//! bucket `a` holds the pieces `a` peers have, and `starts[a]` is where it begins. A piece's
//! count changing by one moves it across one bucket boundary with a swap: O(1). Entering or
//! leaving a level walks the boundaries above its bucket: O(buckets), bounded by the peer count.
//! Inside a bucket the order is random: a piece entering a bucket swaps with a random member
//! (drawn from the picker's seeded [`Rng`]), so equally rare pieces are tried in a shuffled,
//! reproducible order.

use crate::rng::Rng;

/// `pos` of a piece in no list.
pub(super) const NOWHERE: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Level {
    pieces: Vec<u32>,
    /// `starts[a]`: index of the first piece of bucket `a`; `starts[0] == 0`.
    starts: Vec<u32>,
}

impl Level {
    fn end(&self, bucket: usize) -> usize {
        self.starts
            .get(bucket + 1)
            .map_or(self.pieces.len(), |&s| s as usize)
    }

    fn grow(&mut self, bucket: usize) {
        while self.starts.len() <= bucket {
            self.starts.push(self.pieces.len() as u32);
        }
    }
}

/// The pieces that may be started, per priority level, ordered by peer count.
#[derive(Clone, Debug)]
pub(super) struct Lists {
    levels: Vec<Level>,
    /// Each piece's index in its level's array, or [`NOWHERE`].
    pos: Vec<u32>,
}

impl Lists {
    pub(super) fn new(piece_count: u32, levels: usize) -> Self {
        Self {
            levels: (0..levels)
                .map(|_| Level {
                    pieces: Vec::new(),
                    starts: vec![0],
                })
                .collect(),
            pos: vec![NOWHERE; piece_count as usize],
        }
    }

    pub(super) fn contains(&self, piece: u32) -> bool {
        self.pos[piece as usize] != NOWHERE
    }

    pub(super) fn is_empty(&self) -> bool {
        self.levels.iter().all(|l| l.pieces.is_empty())
    }

    /// The piece at `index` of `level`'s array.
    pub(super) fn at(&self, level: usize, index: usize) -> Option<u32> {
        self.levels[level].pieces.get(index).copied()
    }

    /// Where bucket `bucket` of `level` begins (the array's length past the last bucket).
    pub(super) fn bucket_start(&self, level: usize, bucket: usize) -> usize {
        let l = &self.levels[level];
        l.starts.get(bucket).map_or(l.pieces.len(), |&s| s as usize)
    }

    fn swap(&mut self, level: usize, i: usize, j: usize) {
        if i == j {
            return;
        }
        let l = &mut self.levels[level];
        l.pieces.swap(i, j);
        self.pos[l.pieces[i] as usize] = i as u32;
        self.pos[l.pieces[j] as usize] = j as u32;
    }

    /// Swaps the piece at `at` with a random member of `bucket`.
    fn shuffle_in(&mut self, level: usize, bucket: usize, at: usize, rng: &mut Rng) {
        let l = &self.levels[level];
        let start = l.starts[bucket] as usize;
        let len = l.end(bucket) - start;
        if len > 1 {
            let j = start + rng.below(len as u64) as usize;
            self.swap(level, at, j);
        }
    }

    /// Adds `piece` (with `count` peers) to `level`.
    pub(super) fn insert(&mut self, piece: u32, level: usize, count: u32, rng: &mut Rng) {
        debug_assert!(!self.contains(piece));
        let bucket = count as usize;
        self.levels[level].grow(bucket);
        let l = &mut self.levels[level];
        l.pieces.push(piece);
        let mut at = l.pieces.len() - 1;
        self.pos[piece as usize] = at as u32;
        let top = self.levels[level].starts.len() - 1;
        for b in (bucket + 1..=top).rev() {
            // The piece is the last of bucket b: swap it to the front and shrink b by one.
            let first = self.levels[level].starts[b] as usize;
            self.swap(level, at, first);
            self.levels[level].starts[b] += 1;
            at = first;
        }
        self.shuffle_in(level, bucket, at, rng);
    }

    /// Takes `piece` (with `count` peers) out of `level`.
    pub(super) fn remove(&mut self, piece: u32, level: usize, count: u32) {
        let bucket = count as usize;
        let mut at = self.pos[piece as usize] as usize;
        debug_assert!(at != NOWHERE as usize);
        let last = self.levels[level].end(bucket) - 1;
        self.swap(level, at, last);
        at = last;
        let top = self.levels[level].starts.len() - 1;
        for b in bucket + 1..=top {
            // The piece is just before bucket b: make it b's first, then b's last.
            self.levels[level].starts[b] -= 1;
            let last = self.levels[level].end(b) - 1;
            self.swap(level, at, last);
            at = last;
        }
        let l = &mut self.levels[level];
        debug_assert_eq!(at, l.pieces.len() - 1);
        l.pieces.pop();
        self.pos[piece as usize] = NOWHERE;
    }

    /// One more peer has `piece`, which had `count`.
    pub(super) fn increment(&mut self, piece: u32, level: usize, count: u32, rng: &mut Rng) {
        let bucket = count as usize;
        self.levels[level].grow(bucket + 1);
        let at = self.pos[piece as usize] as usize;
        let last = self.levels[level].end(bucket) - 1;
        self.swap(level, at, last);
        self.levels[level].starts[bucket + 1] -= 1;
        self.shuffle_in(level, bucket + 1, last, rng);
    }

    /// One peer fewer has `piece`, which had `count` (at least 1).
    pub(super) fn decrement(&mut self, piece: u32, level: usize, count: u32, rng: &mut Rng) {
        let bucket = count as usize;
        debug_assert!(bucket >= 1);
        let at = self.pos[piece as usize] as usize;
        let first = self.levels[level].starts[bucket] as usize;
        self.swap(level, at, first);
        self.levels[level].starts[bucket] += 1;
        self.shuffle_in(level, bucket - 1, first, rng);
    }

    /// Every piece's count dropped by one (a peer that had them all became a seed, counted
    /// apart): bucket `a` becomes bucket `a - 1`. Bucket 0 must be empty.
    pub(super) fn shift_down(&mut self) {
        for l in &mut self.levels {
            debug_assert!(l.end(0) == 0, "bucket 0 must be empty to shift");
            if l.starts.len() > 1 {
                l.starts.remove(0);
            }
        }
    }

    /// Checks that every listed piece sits in the bucket of its count and `pos` is right.
    #[cfg(test)]
    pub(super) fn check(&self, counts: &[u32], level_of: impl Fn(u32) -> Option<usize>) {
        let mut listed = 0;
        for (li, l) in self.levels.iter().enumerate() {
            assert_eq!(l.starts[0], 0);
            assert!(l.starts.windows(2).all(|w| w[0] <= w[1]));
            for b in 0..l.starts.len() {
                for i in l.starts[b] as usize..l.end(b) {
                    let p = l.pieces[i];
                    assert_eq!(self.pos[p as usize] as usize, i, "pos of piece {p}");
                    assert_eq!(counts[p as usize] as usize, b, "bucket of piece {p}");
                    assert_eq!(level_of(p), Some(li), "level of piece {p}");
                    listed += 1;
                }
            }
        }
        let expected = (0..counts.len() as u32)
            .filter(|&p| level_of(p).is_some())
            .count();
        assert_eq!(listed, expected, "listed pieces");
    }
}
