//! One torrent's state inside a session: its files and geometry, the pieces we have, the
//! picker, its peers, and the pieces in flight between the network, the hasher and the disk.
//!
//! A piece's life here: blocks arrive and are written to disk at once (they only ever overwrite
//! bytes of pieces we do not have, so no verified data can be lost) while their `Bytes` stay in
//! [`PieceBuf`] for the hash job; the piece counts as ours once the hash matches *and* every
//! write has completed, and only then do we announce it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::id::ConnId;
use crate::metainfo::Info;
use crate::picker::Picker;

/// A piece whose blocks are arriving, or being hashed and written.
#[derive(Debug)]
pub(crate) struct PieceBuf {
    /// The blocks received so far, by block index.
    pub(crate) blocks: Vec<Option<Bytes>>,
    /// Writes issued and not yet completed.
    pub(crate) pending_writes: u32,
    /// `Some(true)` once the hash matched.
    pub(crate) hash_ok: Option<bool>,
    /// A write of this piece failed: it must be downloaded again.
    pub(crate) write_failed: bool,
}

/// One torrent.
#[derive(Debug)]
pub(crate) struct Torrent {
    pub(crate) info: Arc<Info>,
    pub(crate) have: Bitfield,
    pub(crate) picker: Picker,
    pub(crate) peers: Vec<ConnId>,
    pub(crate) pieces: HashMap<u32, PieceBuf>,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) finished: bool,
}

impl Torrent {
    pub(crate) fn new(info: Arc<Info>, have: Bitfield) -> Self {
        let piece_count = info.layout().piece_count();
        let finished = have.is_full();
        Self {
            info,
            have,
            picker: Picker::new(piece_count),
            peers: Vec::new(),
            pieces: HashMap::new(),
            downloaded: 0,
            uploaded: 0,
            finished,
        }
    }

    /// Whether `peer_has` holds a piece we lack.
    pub(crate) fn wants_from(&self, peer_has: &Bitfield) -> bool {
        !self.have.is_full() && self.have.lacks_any_of(peer_has)
    }

    /// Bytes of the torrent we still lack (padding counted, as trackers expect).
    pub(crate) fn left(&self) -> u64 {
        let layout = self.info.layout();
        layout
            .pieces()
            .filter(|p| !self.have.get(p.get()))
            .map(|p| u64::from(layout.piece_size(p)))
            .sum()
    }
}
