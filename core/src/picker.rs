//! Which blocks to request next: piece availability, partial pieces, rarest first.
//!
//! This is the first cut the Session needs to move data; the torrent-engine issue grows it
//! (O(1) availability buckets, seeded tie-breaks, priorities, streaming deadlines, endgame).
//!
//! Block states per piece being downloaded: free, requested (by one peer), received. A piece
//! leaves the picker's partial set when all its blocks are received (it is then hashed); a hash
//! failure puts all its blocks back to free.

use std::collections::BTreeMap;

use crate::bitfield::Bitfield;
use crate::metainfo::{Layout, BLOCK_LEN};
use crate::wire::BlockRequest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockState {
    Free,
    Requested,
    Received,
}

#[derive(Clone, Debug)]
struct Partial {
    blocks: Vec<BlockState>,
    received: u32,
}

/// Piece availability and the block states of pieces in progress.
#[derive(Clone, Debug)]
pub(crate) struct Picker {
    /// How many connected peers have each piece.
    availability: Vec<u32>,
    /// Pieces with at least one block requested or received, by index.
    partial: BTreeMap<u32, Partial>,
    /// Pieces fully received and being hashed or written.
    complete: Bitfield,
}

impl Picker {
    pub(crate) fn new(piece_count: u32) -> Self {
        Self {
            availability: vec![0; piece_count as usize],
            partial: BTreeMap::new(),
            complete: Bitfield::new(piece_count),
        }
    }

    /// A peer's pieces changed from `old` to `new` (bitfield, have-all, or disconnect with
    /// `new` empty).
    pub(crate) fn replace_peer_pieces(&mut self, old: &Bitfield, new: &Bitfield) {
        for i in old.iter_set() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a = a.saturating_sub(1);
            }
        }
        for i in new.iter_set() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a += 1;
            }
        }
    }

    /// A peer announced `piece`.
    pub(crate) fn peer_has(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// A peer left that had `pieces`.
    pub(crate) fn peer_left(&mut self, pieces: &Bitfield) {
        self.replace_peer_pieces(pieces, &Bitfield::new(0));
    }

    /// How many peers have `piece`.
    #[allow(dead_code)] // used by the choker and tests
    pub(crate) fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Picks up to `max` blocks from the pieces `peer_has` and we lack: free blocks of partial
    /// pieces first (to finish what is started), then the rarest new pieces.
    pub(crate) fn pick(
        &mut self,
        layout: &Layout,
        we_have: &Bitfield,
        may_request: impl Fn(u32) -> bool,
        max: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let start = out.len();
        for (&index, partial) in self.partial.iter_mut() {
            if out.len() - start >= max {
                return;
            }
            if !may_request(index) {
                continue;
            }
            take_free_blocks(layout, index, partial, max - (out.len() - start), out);
        }
        while out.len() - start < max {
            // Rarest first among pieces we lack, nobody has started, and the peer may serve.
            let candidate = (0..self.availability.len() as u32)
                .filter(|&i| {
                    !we_have.get(i)
                        && !self.complete.get(i)
                        && !self.partial.contains_key(&i)
                        && may_request(i)
                })
                .min_by_key(|&i| (self.availability[i as usize], i));
            let Some(index) = candidate else {
                return;
            };
            let Some(piece) = layout.piece(index) else {
                return;
            };
            let mut partial = Partial {
                blocks: vec![BlockState::Free; layout.block_count(piece) as usize],
                received: 0,
            };
            take_free_blocks(layout, index, &mut partial, max - (out.len() - start), out);
            self.partial.insert(index, partial);
        }
    }

    /// A requested block will not arrive from that peer: make it free again.
    pub(crate) fn request_dropped(&mut self, request: BlockRequest) {
        if let Some(state) = self.block_state(request) {
            if *state == BlockState::Requested {
                *state = BlockState::Free;
            }
        }
    }

    /// A block arrived. Returns `Some(true)` when it completed its piece, `Some(false)` when
    /// the piece still lacks blocks, and `None` when the block was not wanted (a duplicate, or
    /// not a block of a piece in progress).
    pub(crate) fn block_received(&mut self, request: BlockRequest) -> Option<bool> {
        let state = self.block_state(request)?;
        if *state == BlockState::Received {
            return None;
        }
        *state = BlockState::Received;
        let partial = self.partial.get_mut(&request.index)?;
        partial.received += 1;
        if partial.received as usize == partial.blocks.len() {
            self.partial.remove(&request.index);
            self.complete.set(request.index, true);
            Some(true)
        } else {
            Some(false)
        }
    }

    /// The piece's hash check failed: download all of it again.
    pub(crate) fn piece_failed(&mut self, piece: u32) {
        self.complete.set(piece, false);
        self.partial.remove(&piece);
    }

    /// The piece is verified and stored: it no longer needs the picker.
    pub(crate) fn piece_done(&mut self, piece: u32) {
        self.complete.set(piece, false);
    }

    fn block_state(&mut self, request: BlockRequest) -> Option<&mut BlockState> {
        if request.begin % BLOCK_LEN != 0 {
            return None;
        }
        self.partial
            .get_mut(&request.index)?
            .blocks
            .get_mut((request.begin / BLOCK_LEN) as usize)
    }
}

fn take_free_blocks(
    layout: &Layout,
    index: u32,
    partial: &mut Partial,
    max: usize,
    out: &mut Vec<BlockRequest>,
) {
    let Some(piece) = layout.piece(index) else {
        return;
    };
    let mut taken = 0;
    for (i, state) in partial.blocks.iter_mut().enumerate() {
        if taken >= max {
            break;
        }
        if *state != BlockState::Free {
            continue;
        }
        let Some(block) = layout.block(piece, i as u32) else {
            break;
        };
        *state = BlockState::Requested;
        out.push(BlockRequest {
            index,
            begin: block.offset,
            length: block.length,
        });
        taken += 1;
    }
}
