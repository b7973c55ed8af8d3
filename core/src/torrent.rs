//! One torrent's state inside a session: its files and geometry, the pieces we have, the
//! picker, its peers, and the pieces in flight between the network, the hasher and the disk.
//!
//! A piece's life here: blocks arrive and are written to disk at once (they only ever overwrite
//! bytes of pieces we do not have, so no verified data can be lost) while their `Bytes` stay in
//! [`PieceBuf`] for the hash job; the piece counts as ours once the hash matches *and* every
//! write has completed, and only then do we announce it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::id::ConnId;
use crate::metainfo::Info;
use crate::picker::{Picker, Priority};
use crate::rate::TokenBucket;
use crate::rng::Rng;
use crate::session::checking::Checking;
use crate::session::{StorageError, TorrentState};
use crate::smart_ban::SmartBan;

/// A piece whose blocks are arriving, or being hashed and written.
#[derive(Debug)]
pub(crate) struct PieceBuf {
    /// The blocks received so far, by block index.
    pub(crate) blocks: Vec<Option<Bytes>>,
    /// Who sent each block (smart ban), by block index.
    pub(crate) senders: Vec<Option<IpAddr>>,
    /// Writes issued and not yet completed.
    pub(crate) pending_writes: u32,
    /// `Some(true)` once the hash matched.
    pub(crate) hash_ok: Option<bool>,
    /// A write of this piece failed: it must be downloaded again.
    pub(crate) write_failed: bool,
    /// Blocks thrown away while writes of the piece were in flight. Their old writes may land
    /// after the writes of their replacements (a runtime may run writes on several threads), so
    /// once every write is done and the piece passed, these blocks are written once more.
    pub(crate) rewrite: Vec<u32>,
}

impl PieceBuf {
    /// An empty buffer for a piece of `block_count` blocks.
    pub(crate) fn new(block_count: usize) -> PieceBuf {
        PieceBuf {
            blocks: vec![None; block_count],
            senders: vec![None; block_count],
            pending_writes: 0,
            hash_ok: None,
            write_failed: false,
            rewrite: Vec::new(),
        }
    }

    /// Throws a received block away (its sender is suspect or gone): it will be downloaded
    /// again, and written again after any write of it still in flight.
    pub(crate) fn forget(&mut self, block: usize) {
        self.blocks[block] = None;
        self.senders[block] = None;
        if self.pending_writes > 0 && !self.rewrite.contains(&(block as u32)) {
            self.rewrite.push(block as u32);
        }
    }
}

/// One torrent.
#[derive(Debug)]
pub(crate) struct Torrent {
    pub(crate) info: Arc<Info>,
    pub(crate) have: Bitfield,
    pub(crate) picker: Picker<ConnId>,
    /// Each file's priority; a piece takes the highest of the files it holds bytes of.
    pub(crate) file_priority: Vec<Priority>,
    /// This torrent's upload limit (block reads for peers).
    pub(crate) upload_limit: TokenBucket,
    /// This torrent's download limit (requests to peers).
    pub(crate) download_limit: TokenBucket,
    pub(crate) peers: Vec<ConnId>,
    pub(crate) pieces: HashMap<u32, PieceBuf>,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    /// Whether every wanted piece is verified and stored (as last reported).
    pub(crate) finished: bool,
    /// Lifecycle: checking, paused, error (see `session::lifecycle`).
    pub(crate) checking: Option<Checking>,
    pub(crate) paused: bool,
    pub(crate) error: Option<StorageError>,
    /// The kind of state last reported with `Event::StateChanged`.
    pub(crate) reported_state: Option<std::mem::Discriminant<TorrentState>>,
    /// Smart ban: failed attempts of pieces and the addresses banned for this torrent.
    pub(crate) smart_ban: SmartBan<IpAddr>,
    pub(crate) banned: HashSet<IpAddr>,
    pub(crate) banned_ids: HashSet<crate::id::PeerId>,
    /// Pieces that passed / failed their hash check since the torrent was added (checking
    /// not counted).
    pub(crate) pieces_verified: u32,
    pub(crate) pieces_failed: u32,
    /// BEP 52: the merkle state of a v2 or hybrid torrent (`None` for v1).
    pub(crate) v2: Option<crate::session::v2::V2State>,
}

impl Torrent {
    pub(crate) fn new(info: Arc<Info>, have: Bitfield, rng: Rng) -> Self {
        let picker = Picker::new(info.layout(), &have, rng);
        let finished = picker.is_finished();
        let files = info.files().len();
        Self {
            info,
            have,
            picker,
            file_priority: vec![Priority::Normal; files],
            upload_limit: TokenBucket::UNLIMITED,
            download_limit: TokenBucket::UNLIMITED,
            peers: Vec::new(),
            pieces: HashMap::new(),
            downloaded: 0,
            uploaded: 0,
            finished,
            checking: None,
            paused: false,
            error: None,
            reported_state: None,
            smart_ban: SmartBan::default(),
            banned: HashSet::new(),
            banned_ids: HashSet::new(),
            pieces_verified: 0,
            pieces_failed: 0,
            v2: None,
        }
    }

    /// Whether downloaded pieces can be verified: a v2-only torrent needs its piece layers
    /// (BEP 52); v1 and hybrid torrents have their SHA-1 piece hashes.
    pub(crate) fn can_verify(&self) -> bool {
        self.info.version() != crate::metainfo::Version::V2
            || self
                .v2
                .as_ref()
                .is_some_and(crate::session::v2::V2State::complete)
    }

    /// Whether `peer_has` holds a wanted piece we lack.
    pub(crate) fn wants_from(&self, peer_has: &Bitfield) -> bool {
        self.picker.wants_from(peer_has)
    }

    /// The priority of `piece` from its files' priorities: the highest of the files it holds
    /// bytes of (padding files do not count), so a piece shared with a wanted file is wanted.
    pub(crate) fn piece_priority(&self, piece: u32) -> Priority {
        let layout = self.info.layout();
        let Some(p) = layout.piece(piece) else {
            return Priority::Skip;
        };
        layout
            .piece_spans(p)
            .filter(|s| !s.pad)
            .map(|s| {
                self.file_priority
                    .get(s.file)
                    .copied()
                    .unwrap_or(Priority::Normal)
            })
            .max()
            .unwrap_or(Priority::Skip)
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
