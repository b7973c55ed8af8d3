//! Which blocks to request next, and from whom (DESIGN.md, `picker`).
//!
//! The picker is a policy unit: it sees piece indices, peer ids (`P`, the session's
//! [`ConnId`](crate::id::ConnId)) and snapshots of a peer's pieces ([`PeerPieces`]), never
//! connections or time sources. Its order of preference for one peer:
//!
//! 1. pieces with a deadline (streaming), earliest first;
//! 2. free blocks of pieces in progress (finish what is started), by index;
//! 3. pieces the peer suggested (BEP 6);
//! 4. new pieces: the lowest index in sequential mode, otherwise the rarest of the highest
//!    priority, ties broken by a seeded random order. While the peer chokes us only its
//!    allowed-fast pieces (BEP 6) are candidates;
//! 5. endgame: once every wanted piece is in progress, a peer with no request in flight gets
//!    one block already requested from others (libtorrent's rule; at most three peers per
//!    block, fewest first); when one copy arrives, [`Picker::block_received`] names the peers to cancel.
//!
//! # Costs
//!
//! A `have` is O(1); a bitfield of n pieces is n O(1) updates; a peer with every piece (a seed)
//! is counted apart in O(1). Picking never sorts: it walks pieces in availability order from
//! bucketed lists (module `availability`) and stops at the first the peer has.
//!
//! # Piece states
//!
//! Free (listed by availability if wanted) → Partial (blocks free / requested / received;
//! stays Partial while hashed and written) → Have. A failed hash or write puts a Partial piece
//! back to Free. Pieces of priority [`Priority::Skip`] are never started; the torrent is
//! finished when every other piece is Have ([`Picker::is_finished`]).

mod availability;
mod blocks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::metainfo::Layout;
use crate::rng::Rng;
use crate::time::Instant;
use crate::wire::BlockRequest;

use availability::Lists;
use blocks::{Geometry, Partial, Slot, ENDGAME_MAX_REQUESTERS};

/// How much a piece or file is wanted. Pieces take the highest priority of the files they
/// hold bytes of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// Do not download.
    Skip,
    /// Download after everything of higher priority.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Download before everything of lower priority.
    High,
}

impl Priority {
    /// The list level of a wanted priority (`None` for skip).
    fn level(self) -> Option<usize> {
        match self {
            Self::Skip => None,
            Self::Low => Some(0),
            Self::Normal => Some(1),
            Self::High => Some(2),
        }
    }
}

const LEVELS: usize = 3;

/// A snapshot of what one peer offers, for [`Picker::pick`].
#[derive(Clone, Copy, Debug)]
pub struct PeerPieces<'a> {
    /// The peer's pieces.
    pub has: &'a Bitfield,
    /// `Some(pieces)` while the peer chokes us: only these allowed-fast pieces (BEP 6) may be
    /// requested. `None` when it unchokes us.
    pub allowed_fast: Option<&'a [u32]>,
    /// Pieces the peer suggested (BEP 6 `suggest piece`), preferred when starting a piece.
    pub suggested: &'a [u32],
    /// Our requests in flight to the peer; endgame duplicates go only to idle peers.
    pub outstanding: usize,
}

impl PeerPieces<'_> {
    /// Whether we may request blocks of `piece` from this peer now. O(1) when unchoked; the
    /// allowed-fast list is short (the peer machine bounds it).
    pub fn may_request(&self, piece: u32) -> bool {
        self.has.get(piece) && self.allowed_fast.is_none_or(|a| a.contains(&piece))
    }
}

/// What [`Picker::block_received`] made of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received<P> {
    /// The block completed its piece: hash it.
    pub piece_complete: bool,
    /// Other peers the block was also requested from (endgame): send them `cancel`.
    pub cancel: SmallVec<[P; 2]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Partial,
    Have,
}

/// Piece availability, priorities and the block states of pieces in progress, for one
/// torrent. `P` identifies peers (the session uses [`ConnId`](crate::id::ConnId)).
#[derive(Clone, Debug)]
pub struct Picker<P> {
    geometry: Geometry,
    /// Peers that have each piece, not counting `seeds`.
    peer_count: Vec<u32>,
    /// Peers that have every piece: counted here, not per piece.
    seeds: u32,
    priority: Vec<Priority>,
    state: Vec<State>,
    /// Free pieces of wanted priority, by level and availability.
    lists: Lists,
    partials: BTreeMap<u32, Partial<P>>,
    /// Pieces we have or skip: a peer is interesting when it has a piece outside this set.
    unneeded: Bitfield,
    /// Wanted pieces not yet Have.
    wanted_left: u32,
    sequential: bool,
    /// In sequential mode, every piece below this is Have.
    seq_cursor: u32,
    deadlines: BTreeSet<(Instant, u32)>,
    deadline_of: HashMap<u32, Instant>,
    /// Pieces whose next attempt takes every block from one peer (smart ban).
    exclusive: BTreeSet<u32>,
    rng: Rng,
}

impl<P: Copy + Eq> Picker<P> {
    /// A picker for a torrent of `layout`'s geometry, where we already have `have`, every
    /// piece at [`Priority::Normal`]. `rng` breaks ties between equally rare pieces.
    pub fn new(layout: &Layout, have: &Bitfield, rng: Rng) -> Self {
        let piece_count = layout.piece_count();
        let last_piece_size = layout
            .piece(piece_count.saturating_sub(1))
            .map_or(0, |p| layout.piece_size(p));
        let mut picker = Self {
            geometry: Geometry {
                piece_count,
                piece_length: layout.piece_length(),
                last_piece_size,
            },
            peer_count: vec![0; piece_count as usize],
            seeds: 0,
            priority: vec![Priority::Normal; piece_count as usize],
            state: vec![State::Free; piece_count as usize],
            lists: Lists::new(piece_count, LEVELS),
            partials: BTreeMap::new(),
            unneeded: Bitfield::new(piece_count),
            wanted_left: 0,
            sequential: false,
            seq_cursor: 0,
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            exclusive: BTreeSet::new(),
            rng,
        };
        let level = Priority::Normal.level().expect("normal is wanted");
        for piece in 0..piece_count {
            if have.get(piece) {
                picker.state[piece as usize] = State::Have;
                picker.unneeded.set(piece, true);
            } else {
                picker.wanted_left += 1;
                picker.lists.insert(piece, level, 0, &mut picker.rng);
            }
        }
        picker
    }

    // ---- availability --------------------------------------------------------------------

    fn is_seed(&self, pieces: &Bitfield) -> bool {
        self.geometry.piece_count > 0
            && pieces.len() == self.geometry.piece_count
            && pieces.is_full()
    }

    fn inc(&mut self, piece: u32) {
        let Some(count) = self.peer_count.get(piece as usize).copied() else {
            return;
        };
        self.peer_count[piece as usize] = count + 1;
        if self.lists.contains(piece) {
            let level = self.priority[piece as usize].level().expect("listed");
            self.lists.increment(piece, level, count, &mut self.rng);
        }
    }

    fn dec(&mut self, piece: u32) {
        let Some(count) = self.peer_count.get(piece as usize).copied() else {
            return;
        };
        if count == 0 {
            debug_assert!(false, "availability of piece {piece} below zero");
            return;
        }
        self.peer_count[piece as usize] = count - 1;
        if self.lists.contains(piece) {
            let level = self.priority[piece as usize].level().expect("listed");
            self.lists.decrement(piece, level, count, &mut self.rng);
        }
    }

    /// A peer's pieces changed from `old` to `new` (a bitfield, have-all or have-none replaced
    /// them; `old` is empty for a new peer). O(pieces set), O(1) for a seed.
    pub fn replace_peer_pieces(&mut self, old: &Bitfield, new: &Bitfield) {
        if self.is_seed(old) {
            self.seeds -= 1;
        } else {
            for piece in old.iter_set() {
                self.dec(piece);
            }
        }
        if self.is_seed(new) {
            self.seeds += 1;
        } else {
            for piece in new.iter_set() {
                self.inc(piece);
            }
        }
    }

    /// A peer announced `piece`; `now_full` says whether the peer now has every piece (it
    /// then counts as a seed: one O(n) conversion in the peer's lifetime).
    pub fn peer_has(&mut self, piece: u32, now_full: bool) {
        self.inc(piece);
        if now_full && self.geometry.piece_count > 0 {
            for count in &mut self.peer_count {
                *count -= 1;
            }
            self.lists.shift_down();
            self.seeds += 1;
        }
    }

    /// A peer that had `pieces` left.
    pub fn peer_left(&mut self, pieces: &Bitfield) {
        self.replace_peer_pieces(pieces, &Bitfield::new(pieces.len()));
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.peer_count
            .get(piece as usize)
            .map_or(0, |c| c + self.seeds)
    }

    // ---- what we want --------------------------------------------------------------------

    /// Sets a piece's priority. Pieces of priority [`Priority::Skip`] are never requested.
    pub fn set_priority(&mut self, piece: u32, priority: Priority) {
        let Some(&old) = self.priority.get(piece as usize) else {
            return;
        };
        if old == priority {
            return;
        }
        let i = piece as usize;
        let count = self.peer_count[i];
        if let Some(level) = old.level().filter(|_| self.lists.contains(piece)) {
            self.lists.remove(piece, level, count);
        }
        self.priority[i] = priority;
        if self.state[i] == State::Free {
            if let Some(level) = priority.level() {
                self.lists.insert(piece, level, count, &mut self.rng);
            }
        }
        if self.state[i] != State::Have {
            match (old.level().is_some(), priority.level().is_some()) {
                (true, false) => self.wanted_left -= 1,
                (false, true) => self.wanted_left += 1,
                _ => {}
            }
        }
        self.unneeded.set(
            piece,
            self.state[i] == State::Have || priority == Priority::Skip,
        );
        self.seq_cursor = self.seq_cursor.min(piece);
    }

    /// The priority of `piece` (`Skip` past the end).
    pub fn priority(&self, piece: u32) -> Priority {
        self.priority
            .get(piece as usize)
            .copied()
            .unwrap_or(Priority::Skip)
    }

    /// Sequential mode: start pieces in index order instead of rarest first.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.sequential = sequential;
        self.seq_cursor = 0;
    }

    /// Whether sequential mode is on.
    pub fn is_sequential(&self) -> bool {
        self.sequential
    }

    /// Sets or clears a deadline for `piece` (streaming): pieces with a deadline are picked
    /// before all others, earliest first. A piece of priority `Skip` is still not downloaded.
    pub fn set_deadline(&mut self, piece: u32, deadline: Option<Instant>) {
        if piece >= self.geometry.piece_count {
            return;
        }
        if let Some(old) = self.deadline_of.remove(&piece) {
            self.deadlines.remove(&(old, piece));
        }
        if let Some(d) = deadline.filter(|_| self.state[piece as usize] != State::Have) {
            self.deadline_of.insert(piece, d);
            self.deadlines.insert((d, piece));
        }
    }

    /// Whether `peer_has` holds a wanted piece we lack (so we are interested).
    pub fn wants_from(&self, peer_has: &Bitfield) -> bool {
        self.wanted_left > 0 && self.unneeded.lacks_any_of(peer_has)
    }

    /// Whether every wanted piece is verified and stored.
    pub fn is_finished(&self) -> bool {
        self.wanted_left == 0
    }

    /// Whether every wanted piece we lack is in progress: blocks may be requested from more
    /// than one peer.
    pub fn in_endgame(&self) -> bool {
        self.wanted_left > 0 && self.lists.is_empty()
    }

    // ---- picking -------------------------------------------------------------------------

    fn start(&mut self, piece: u32) {
        let i = piece as usize;
        debug_assert_eq!(self.state[i], State::Free);
        if let Some(level) = self.priority[i].level() {
            self.lists.remove(piece, level, self.peer_count[i]);
        }
        self.state[i] = State::Partial;
        let exclusive = self.exclusive.contains(&piece);
        self.partials.insert(
            piece,
            Partial::new(self.geometry.block_count(piece), exclusive),
        );
    }

    /// Starts `piece` if it is free, then requests its free blocks from `peer`.
    fn take(&mut self, peer: P, piece: u32, goal: usize, out: &mut Vec<BlockRequest>) {
        if self.priority[piece as usize] == Priority::Skip {
            return;
        }
        if self.state[piece as usize] == State::Free {
            self.start(piece);
        }
        if let Some(partial) = self.partials.get_mut(&piece) {
            partial.take_free(peer, piece, self.geometry, goal, out);
        }
    }

    fn startable(&self, piece: u32) -> bool {
        piece < self.geometry.piece_count && self.lists.contains(piece)
    }

    /// Picks up to `max` blocks to request from `peer`, which offers `pieces`, and records
    /// them as requested from it. See the module documentation for the order.
    pub fn pick(
        &mut self,
        peer: P,
        pieces: &PeerPieces<'_>,
        max: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let goal = out.len() + max;
        if max == 0 || self.wanted_left == 0 {
            return;
        }
        // 1. Deadlines.
        if !self.deadlines.is_empty() {
            let urgent: SmallVec<[u32; 32]> = self.deadlines.iter().map(|&(_, p)| p).collect();
            for piece in urgent {
                if out.len() >= goal {
                    return;
                }
                if pieces.may_request(piece) && self.state[piece as usize] != State::Have {
                    self.take(peer, piece, goal, out);
                }
            }
        }
        // 2. Pieces in progress.
        for (&piece, partial) in self.partials.iter_mut() {
            if out.len() >= goal {
                return;
            }
            if partial.free > 0
                && self.priority[piece as usize] != Priority::Skip
                && pieces.may_request(piece)
            {
                partial.take_free(peer, piece, self.geometry, goal, out);
            }
        }
        // 3. Suggestions (BEP 6).
        for &piece in pieces.suggested {
            if out.len() >= goal {
                return;
            }
            if self.startable(piece) && pieces.may_request(piece) {
                self.take(peer, piece, goal, out);
            }
        }
        // 4. New pieces.
        if let Some(allowed) = pieces.allowed_fast {
            self.pick_allowed_fast(peer, pieces.has, allowed, goal, out);
        } else if self.sequential {
            self.pick_sequential(peer, pieces.has, goal, out);
        } else {
            self.pick_rarest(peer, pieces.has, goal, out);
        }
        // 5. Endgame: one busy block for an idle peer.
        if out.len() == goal - max && pieces.outstanding == 0 && self.lists.is_empty() {
            let goal = out.len() + 1;
            for requesters in 1..ENDGAME_MAX_REQUESTERS {
                for (&piece, partial) in self.partials.iter_mut() {
                    if out.len() >= goal {
                        return;
                    }
                    if self.priority[piece as usize] != Priority::Skip && pieces.may_request(piece)
                    {
                        partial.take_busy(peer, piece, requesters, self.geometry, goal, out);
                    }
                }
            }
        }
    }

    fn pick_rarest(&mut self, peer: P, has: &Bitfield, goal: usize, out: &mut Vec<BlockRequest>) {
        // Nobody has pieces in bucket 0 unless seeds are counted apart.
        let first_bucket = usize::from(self.seeds == 0);
        for level in (0..LEVELS).rev() {
            let mut i = self.lists.bucket_start(level, first_bucket);
            while let Some(piece) = self.lists.at(level, i) {
                if out.len() >= goal {
                    return;
                }
                if has.get(piece) {
                    // Starting removes the piece; only positions from `i` on move, and the
                    // one now at `i` has not been looked at.
                    self.take(peer, piece, goal, out);
                } else {
                    i += 1;
                }
            }
        }
    }

    fn pick_sequential(
        &mut self,
        peer: P,
        has: &Bitfield,
        goal: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        while self
            .state
            .get(self.seq_cursor as usize)
            .is_some_and(|s| *s == State::Have)
        {
            self.seq_cursor += 1;
        }
        for piece in self.seq_cursor..self.geometry.piece_count {
            if out.len() >= goal {
                return;
            }
            if self.lists.contains(piece) && has.get(piece) {
                self.take(peer, piece, goal, out);
            }
        }
    }

    fn pick_allowed_fast(
        &mut self,
        peer: P,
        has: &Bitfield,
        allowed: &[u32],
        goal: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        while out.len() < goal {
            let best = allowed
                .iter()
                .copied()
                .filter(|&p| self.startable(p) && has.get(p))
                .min_by_key(|&p| {
                    (
                        self.priority[p as usize].level().map(|l| LEVELS - l),
                        self.peer_count[p as usize],
                    )
                });
            let Some(piece) = best else {
                return;
            };
            self.take(peer, piece, goal, out);
        }
    }

    // ---- results -------------------------------------------------------------------------

    /// `peer` will not answer `request` (choke, reject, timeout, disconnect): the block goes
    /// back to the pool unless another peer still has it requested (endgame).
    pub fn request_dropped(&mut self, peer: P, request: BlockRequest) {
        let Some(block) = self.geometry.block_of(request) else {
            return;
        };
        if let Some(partial) = self.partials.get_mut(&request.index) {
            partial.drop_request(peer, block);
        }
    }

    /// `peer` sent the block for `request`. `None` when the block is not wanted (a duplicate,
    /// not a block of a piece in progress, or not a whole block).
    pub fn block_received(&mut self, peer: P, request: BlockRequest) -> Option<Received<P>> {
        let block = self.geometry.block_of(request)?;
        let partial = self.partials.get_mut(&request.index)?;
        let slot = &mut partial.blocks[block as usize];
        let cancel = match slot {
            Slot::Received(_) => return None,
            Slot::Free => {
                partial.free -= 1;
                SmallVec::new()
            }
            Slot::Requested(peers) => peers.iter().copied().filter(|p| *p != peer).collect(),
        };
        *slot = Slot::Received(peer);
        partial.received += 1;
        Some(Received {
            piece_complete: partial.is_complete(),
            cancel,
        })
    }

    /// The peers that sent blocks of `piece` (for attributing a failed hash).
    pub fn contributors(&self, piece: u32) -> Vec<P> {
        self.partials
            .get(&piece)
            .map_or_else(Vec::new, Partial::contributors)
    }

    /// The piece's hash check or a write of it failed: download all of it again. Returns the
    /// peers that sent its blocks.
    pub fn piece_failed(&mut self, piece: u32) -> Vec<P> {
        let Some(partial) = self.partials.remove(&piece) else {
            return Vec::new();
        };
        let i = piece as usize;
        self.state[i] = State::Free;
        if let Some(level) = self.priority[i].level() {
            self.lists
                .insert(piece, level, self.peer_count[i], &mut self.rng);
        }
        self.seq_cursor = self.seq_cursor.min(piece);
        partial.contributors()
    }

    /// Smart ban: the piece failed with blocks from several peers, so its next attempts take
    /// every block from a single peer (other peers skip it while one holds blocks of it, and
    /// endgame does not duplicate its blocks). A later failure then names the one sender; a
    /// success gives good data to compare the failed attempts' blocks with. Cleared when the
    /// piece is done. Call it after [`Picker::piece_failed`].
    pub fn set_exclusive(&mut self, piece: u32) {
        if piece < self.geometry.piece_count && self.state[piece as usize] != State::Have {
            self.exclusive.insert(piece);
            if let Some(partial) = self.partials.get_mut(&piece) {
                partial.exclusive = true;
            }
        }
    }

    /// Whether the next attempt at `piece` takes all its blocks from one peer.
    pub fn is_exclusive(&self, piece: u32) -> bool {
        self.exclusive.contains(&piece)
    }

    /// `peer` left: blocks it sent of exclusive pieces become free again, so that another
    /// peer can take the whole piece (its requests are returned by
    /// [`Picker::request_dropped`]). A complete piece (being hashed) is left alone: its hash
    /// result decides it. Returns the (piece, block) pairs freed, whose data the caller drops.
    pub fn peer_gone(&mut self, peer: P) -> Vec<(u32, u32)> {
        let mut freed = Vec::new();
        for (&piece, partial) in self.partials.iter_mut() {
            if !partial.exclusive {
                continue;
            }
            let before: Vec<bool> = partial
                .blocks
                .iter()
                .map(|s| *s == Slot::Received(peer))
                .collect();
            if partial.forget_received_from(peer) > 0 {
                freed.extend(
                    before
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b)
                        .map(|(i, _)| (piece, i as u32)),
                );
            }
        }
        freed
    }

    /// A piece we had is gone (its file was deleted or damaged): it is wanted again as if
    /// never downloaded (BEP 54 `lt_donthave` tells peers).
    pub fn piece_lost(&mut self, piece: u32) {
        let i = piece as usize;
        if self.state.get(i) != Some(&State::Have) {
            return;
        }
        self.state[i] = State::Free;
        self.unneeded.set(piece, self.priority[i] == Priority::Skip);
        if let Some(level) = self.priority[i].level() {
            self.lists
                .insert(piece, level, self.peer_count[i], &mut self.rng);
        }
        if self.priority[i] != Priority::Skip {
            self.wanted_left += 1;
        }
        self.seq_cursor = self.seq_cursor.min(piece);
    }

    /// Smart ban: a block received for a piece still in progress came from a peer convicted
    /// of sending bad data: it becomes free again, to be downloaded from someone else (else an
    /// honest peer completing the piece would fail it again). Returns whether the block was
    /// freed; a complete piece (being hashed) is left alone, its hash result decides it.
    pub fn forget_block(&mut self, piece: u32, block: u32) -> bool {
        self.partials
            .get_mut(&piece)
            .is_some_and(|p| p.forget_block(block as usize))
    }

    /// The piece is verified and stored.
    pub fn piece_done(&mut self, piece: u32) {
        let Some(&state) = self.state.get(piece as usize) else {
            return;
        };
        let i = piece as usize;
        match state {
            State::Have => return,
            State::Partial => {
                self.partials.remove(&piece);
            }
            State::Free => {
                if let Some(level) = self.priority[i].level() {
                    self.lists.remove(piece, level, self.peer_count[i]);
                }
            }
        }
        self.state[i] = State::Have;
        self.exclusive.remove(&piece);
        self.unneeded.set(piece, true);
        if self.priority[i] != Priority::Skip {
            self.wanted_left -= 1;
        }
        self.set_deadline(piece, None);
    }

    /// How many blocks are requested from `peer` (tests).
    #[cfg(test)]
    pub(crate) fn requested_from(&self, peer: P) -> usize {
        self.partials
            .values()
            .flat_map(|p| &p.blocks)
            .filter(|s| matches!(s, Slot::Requested(peers) if peers.contains(&peer)))
            .count()
    }

    /// Checks the internal invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        self.lists.check(&self.peer_count, |p| {
            (self.state[p as usize] == State::Free)
                .then(|| self.priority[p as usize].level())
                .flatten()
        });
        let wanted_left = (0..self.geometry.piece_count)
            .filter(|&p| {
                self.state[p as usize] != State::Have && self.priority[p as usize] != Priority::Skip
            })
            .count();
        assert_eq!(self.wanted_left as usize, wanted_left);
        for (&piece, partial) in &self.partials {
            assert_eq!(self.state[piece as usize], State::Partial);
            let free = partial.blocks.iter().filter(|s| **s == Slot::Free).count();
            let received = partial
                .blocks
                .iter()
                .filter(|s| matches!(s, Slot::Received(_)))
                .count();
            assert_eq!(partial.free as usize, free);
            assert_eq!(partial.received as usize, received);
        }
    }
}
