//! Block states of pieces in progress, with the peers each block was requested from or
//! received from (endgame cancels now, smart-ban attribution later), and endgame picking.

use smallvec::SmallVec;

use crate::metainfo::BLOCK_LEN;
use crate::wire::BlockRequest;

/// The most peers one block is requested from at once in endgame.
pub(super) const ENDGAME_MAX_REQUESTERS: usize = 3;

/// Piece sizes, enough to cut pieces into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) piece_count: u32,
    pub(super) piece_length: u32,
    pub(super) last_piece_size: u32,
}

impl Geometry {
    pub(super) fn piece_size(&self, piece: u32) -> u32 {
        if piece + 1 == self.piece_count {
            self.last_piece_size
        } else {
            self.piece_length
        }
    }

    pub(super) fn block_count(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_LEN)
    }

    pub(super) fn block(&self, piece: u32, block: u32) -> BlockRequest {
        let begin = block * BLOCK_LEN;
        BlockRequest {
            index: piece,
            begin,
            length: (self.piece_size(piece) - begin).min(BLOCK_LEN),
        }
    }

    /// The block index of a request, if it is exactly one of the piece's blocks.
    pub(super) fn block_of(&self, r: BlockRequest) -> Option<u32> {
        if r.index >= self.piece_count || r.begin % BLOCK_LEN != 0 {
            return None;
        }
        let block = r.begin / BLOCK_LEN;
        (block < self.block_count(r.index) && self.block(r.index, block) == r).then_some(block)
    }
}

/// One block of a piece in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Slot<P> {
    Free,
    /// Requested from these peers (more than one only in endgame).
    Requested(SmallVec<[P; 2]>),
    /// Arrived from this peer.
    Received(P),
}

/// A piece with at least one block requested or received.
#[derive(Clone, Debug)]
pub(super) struct Partial<P> {
    pub(super) blocks: Vec<Slot<P>>,
    /// Blocks in [`Slot::Free`].
    pub(super) free: u32,
    /// Blocks in [`Slot::Received`].
    pub(super) received: u32,
    /// Smart ban: the piece failed its hash with blocks from several peers, so this attempt
    /// takes all its blocks from one peer (see [`Partial::open_to`]).
    pub(super) exclusive: bool,
}

impl<P: Copy + Eq> Partial<P> {
    pub(super) fn new(block_count: u32, exclusive: bool) -> Self {
        Self {
            blocks: vec![Slot::Free; block_count as usize],
            free: block_count,
            received: 0,
            exclusive,
        }
    }

    /// Whether `peer` may take blocks of this piece: always, unless the piece is exclusive and
    /// another peer has blocks of it requested or received. O(blocks), only for exclusive
    /// pieces (rare: pieces that failed their hash).
    pub(super) fn open_to(&self, peer: P) -> bool {
        !self.exclusive
            || self.blocks.iter().all(|s| match s {
                Slot::Free => true,
                Slot::Requested(peers) => peers.iter().all(|p| *p == peer),
                Slot::Received(p) => *p == peer,
            })
    }

    /// An exclusive piece's blocks received from `peer`, which left, become free again, so
    /// another peer can take the whole piece. Returns how many were freed.
    pub(super) fn forget_received_from(&mut self, peer: P) -> u32 {
        if !self.exclusive || self.is_complete() {
            return 0;
        }
        let mut freed = 0;
        for slot in &mut self.blocks {
            if *slot == Slot::Received(peer) {
                *slot = Slot::Free;
                freed += 1;
            }
        }
        self.free += freed;
        self.received -= freed;
        freed
    }

    /// Frees one received block of a piece not yet complete; whether it did.
    pub(super) fn forget_block(&mut self, block: usize) -> bool {
        if self.is_complete() || !matches!(self.blocks.get(block), Some(Slot::Received(_))) {
            return false;
        }
        self.blocks[block] = Slot::Free;
        self.free += 1;
        self.received -= 1;
        true
    }

    pub(super) fn is_complete(&self) -> bool {
        self.received as usize == self.blocks.len()
    }

    /// Requests free blocks from `peer` until `out` holds `goal` requests.
    pub(super) fn take_free(
        &mut self,
        peer: P,
        piece: u32,
        geometry: Geometry,
        goal: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        if self.free == 0 || !self.open_to(peer) {
            return;
        }
        for (i, slot) in self.blocks.iter_mut().enumerate() {
            if out.len() >= goal {
                return;
            }
            if *slot == Slot::Free {
                *slot = Slot::Requested(smallvec::smallvec![peer]);
                self.free -= 1;
                out.push(geometry.block(piece, i as u32));
            }
        }
    }

    /// Endgame: also requests from `peer` blocks already requested from exactly `requesters`
    /// other peers.
    pub(super) fn take_busy(
        &mut self,
        peer: P,
        piece: u32,
        requesters: usize,
        geometry: Geometry,
        goal: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        if self.exclusive {
            return; // one peer per attempt: no endgame duplicates
        }
        for (i, slot) in self.blocks.iter_mut().enumerate() {
            if out.len() >= goal {
                return;
            }
            if let Slot::Requested(peers) = slot {
                if peers.len() == requesters && !peers.contains(&peer) {
                    peers.push(peer);
                    out.push(geometry.block(piece, i as u32));
                }
            }
        }
    }

    /// The request for block `block` from `peer` will not be answered.
    pub(super) fn drop_request(&mut self, peer: P, block: u32) {
        if let Some(Slot::Requested(peers)) = self.blocks.get_mut(block as usize) {
            peers.retain(|p| *p != peer);
            if peers.is_empty() {
                self.blocks[block as usize] = Slot::Free;
                self.free += 1;
            }
        }
    }

    /// The peers that sent blocks of this piece, each once.
    pub(super) fn contributors(&self) -> Vec<P> {
        let mut out = Vec::new();
        for slot in &self.blocks {
            if let Slot::Received(p) = slot {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        out
    }
}
