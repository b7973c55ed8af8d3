//! BEP 52 hash requests below the piece layer (down to the 16 KiB leaves), and the re-check of
//! a hybrid torrent's pieces against piece layers that arrived after them.
//!
//! # Serving leaf hashes
//!
//! BEP 52 lets a peer ask for any layer of a file's tree; a peer whose piece failed asks for its
//! leaf hashes to find the bad block (libtorrent does), and "MUST NOT" be refused for a piece
//! we have. We keep no whole trees, only the piece layers, so a request below the piece layer
//! is answered from the leaf hashes of the pieces it covers:
//!
//! - the leaves of the last [`MAX_CACHED_LEAVES`] leaves' worth of pieces verified (downloaded or
//!   re-read) are kept, most recent last (an LRU by piece);
//! - otherwise each missing piece is read from disk ([`DiskCmd::Read`]) and its leaves hashed on
//!   a hash worker ([`HashAlgorithm::Sha256Blocks`]); the request waits, and is answered (or
//!   rejected, if the data no longer matches the tree) when the last piece is in.
//!
//! The answer's uncles come from those leaves up to the piece layer and from the tree above it
//! ([`merkle::LeafSpan`]). A request is rejected at once if it names a file we do not know, a
//! piece we lack, a file whose layer we lack, or would read more than
//! [`MAX_LEAF_READ_BYTES`] beside the reads already waiting; a peer has at most
//! [`MAX_PENDING_PER_PEER`] such requests waiting. The per-peer request budget of
//! [`super::hashes`] applies to these as to every hash request.
//!
//! # Hybrid re-check
//!
//! A hybrid torrent added without its piece layers (a magnet link) downloads by its v1 SHA-1
//! hashes meanwhile. When a file's layer arrives, every piece of that file we already have is
//! read again and checked against the layer: a piece that passed SHA-1 but fails its v2 hash
//! means the torrent's two views describe different data, and the torrent stops with
//! [`TorrentError::HybridConflict`](super::TorrentError::HybridConflict) (BEP 52 "Upgrade
//! Path").

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::id::{ConnId, RequestId, TorrentId};
use crate::merkle::{self, Hash256, LeafSpan};
use crate::metainfo::{Info, Version};
use crate::time::Instant;
use crate::wire::{HashRequest, Message};

use super::v2::Verdict;
use super::{Digest, DiskCmd, DiskDone, HashAlgorithm, HashJob, Job, Output, Session};
use super::{StorageError, MAX_HASH_REQUEST_LEN};

/// The most leaf hashes kept from verified pieces (1 MiB of hashes, 512 MiB of data).
pub const MAX_CACHED_LEAVES: usize = 32 * 1024;
/// The most bytes read from disk at once for leaf hashes (serving and re-checking); one piece
/// always goes, however large.
pub const MAX_LEAF_READ_BYTES: u64 = 32 << 20;
/// Leaf-hash requests of one peer waiting for disk reads.
pub const MAX_PENDING_PER_PEER: usize = 2;
/// Pieces of one torrent being re-checked at once.
const MAX_RECHECKS_IN_FLIGHT: usize = 4;

/// The session's leaf-hash state: the cache, reads in flight, waiting requests, re-checks.
#[derive(Debug, Default)]
pub(crate) struct LeafHashes {
    /// Leaves of verified pieces, with when each was last used (a stamp from `clock`).
    cache: HashMap<(TorrentId, u32), (u64, Vec<Hash256>)>,
    /// The pieces of `cache` by last use, least recent first.
    by_use: BTreeMap<u64, (TorrentId, u32)>,
    /// Stamps for `cache`, counting up.
    clock: u64,
    /// Leaves in `cache`.
    cached: usize,
    /// Pieces being read or hashed, with their read length.
    in_flight: HashMap<(TorrentId, u32), u64>,
    /// Bytes of the pieces in flight.
    in_flight_bytes: u64,
    /// Requests waiting for pieces to be read.
    pending: Vec<Pending>,
    /// Per torrent: pieces to re-check against newly arrived layers, and those being checked.
    rechecks: HashMap<TorrentId, Recheck>,
}

/// A leaf-hash request waiting for its pieces.
#[derive(Debug)]
struct Pending {
    conn: ConnId,
    torrent: TorrentId,
    request: HashRequest,
    cover: Cover,
}

/// A hybrid torrent's pieces to re-check.
#[derive(Debug, Default)]
struct Recheck {
    todo: VecDeque<u32>,
    checking: HashSet<u32>,
}

/// The pieces (of one file) a request below the piece layer needs the leaves of.
#[derive(Clone, Copy, Debug)]
struct Cover {
    file: usize,
    /// The torrent's piece holding the file's first piece.
    file_first_piece: u32,
    /// The first and last local (within the file) pieces.
    first: u32,
    last: u32,
}

impl Cover {
    fn pieces(&self) -> impl Iterator<Item = u32> {
        let base = self.file_first_piece;
        (self.first..=self.last).map(move |p| base + p)
    }
}

/// Why a leaf-hash request cannot be answered (it is rejected).
#[derive(Debug)]
struct Refused;

impl LeafHashes {
    /// A piece's cached leaves, which become the most recently used.
    fn cached(&mut self, key: (TorrentId, u32)) -> Option<&[Hash256]> {
        self.clock += 1;
        let (stamp, leaves) = self.cache.get_mut(&key)?;
        self.by_use.remove(stamp);
        *stamp = self.clock;
        self.by_use.insert(self.clock, key);
        Some(leaves)
    }

    fn contains(&self, key: (TorrentId, u32)) -> bool {
        self.cache.contains_key(&key)
    }

    /// Caches a piece's leaves as the most recently used, dropping the least recently used
    /// pieces past [`MAX_CACHED_LEAVES`].
    fn insert(&mut self, key: (TorrentId, u32), leaves: Vec<Hash256>) {
        self.clock += 1;
        self.cached += leaves.len();
        if let Some((stamp, old)) = self.cache.insert(key, (self.clock, leaves)) {
            self.by_use.remove(&stamp);
            self.cached -= old.len();
        }
        self.by_use.insert(self.clock, key);
        while self.cached > MAX_CACHED_LEAVES {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, old)) = self.cache.remove(&oldest) {
                self.cached -= old.len();
            }
        }
    }

    /// Whether a read of `length` more bytes fits the budget (one always does).
    fn may_read(&self, length: u64) -> bool {
        self.in_flight.is_empty() || self.in_flight_bytes + length <= MAX_LEAF_READ_BYTES
    }

    /// Forgets a connection (its waiting requests).
    pub(crate) fn conn_closed(&mut self, conn: ConnId) {
        self.pending.retain(|p| p.conn != conn);
    }

    /// Forgets a torrent (cache, waiting requests, re-checks; reads in flight are dropped with
    /// its jobs).
    pub(crate) fn torrent_removed(&mut self, torrent: TorrentId) {
        self.cache.retain(|(t, _), _| *t != torrent);
        self.by_use.retain(|_, (t, _)| *t != torrent);
        self.cached = self.cache.values().map(|(_, l)| l.len()).sum();
        self.pending.retain(|p| p.torrent != torrent);
        self.rechecks.remove(&torrent);
        let bytes: u64 = self
            .in_flight
            .iter()
            .filter(|((t, _), _)| *t == torrent)
            .map(|(_, b)| *b)
            .sum();
        self.in_flight.retain(|(t, _), _| *t != torrent);
        self.in_flight_bytes -= bytes;
    }
}

fn r_checking_remove(state: &mut LeafHashes, torrent: TorrentId, piece: u32) {
    if let Some(r) = state.rechecks.get_mut(&torrent) {
        r.checking.remove(&piece);
    }
}

/// The file whose tree has `root` (any file with data; pad files have none).
fn file_by_root(info: &Info, root: &Hash256) -> Option<usize> {
    info.files()
        .iter()
        .position(|f| f.pieces_root() == Some(root))
}

impl Session {
    /// Whether `request` asks for hashes below `torrent`'s piece layer (served here).
    pub(super) fn is_leaf_request(&self, torrent: TorrentId, request: &HashRequest) -> bool {
        self.torrents
            .get(torrent.0)
            .and_then(|t| t.v2.as_ref())
            .is_some_and(|v2| request.base_layer < v2.piece_height)
    }

    /// Notes the leaves of a piece that just passed its hash (BEP 52: a peer that got blocks
    /// of it from us may ask for them).
    pub(super) fn leaves_verified(&mut self, torrent: TorrentId, piece: u32, digest: Digest) {
        // Only leaves the verdict checked against the tree are kept: a hybrid's piece passes by
        // its SHA-1 alone while its layer is missing.
        let (leaves, checked) = match digest {
            Digest::Sha256Blocks(leaves) => (leaves, true),
            Digest::Sha1AndSha256Blocks { blocks, .. } => {
                let known = self.torrents.get(torrent.0).is_some_and(|t| {
                    let (Some(v2), Some(index)) = (t.v2.as_ref(), t.info.layout().piece(piece))
                    else {
                        return false;
                    };
                    super::v2::v2_node_known(&t.info, v2, index)
                });
                (blocks, known)
            }
            Digest::Sha1(_) => return,
        };
        if checked && !leaves.is_empty() {
            self.leaf_hashes.insert((torrent, piece), leaves);
        }
    }

    /// A hash request below the piece layer: answered now from cached leaves, answered later
    /// once the pieces are read and hashed, or rejected.
    pub(super) fn serve_leaf_request(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        request: HashRequest,
    ) {
        let answer = self.leaf_cover(torrent, &request).and_then(|cover| {
            match self.answer_leaves(torrent, &request, cover) {
                Some(answer) => Ok(Some(answer)),
                None => self
                    .read_for(now, torrent, conn, request, cover)
                    .map(|()| None),
            }
        });
        match answer {
            Ok(Some(hashes)) => self.send_hashes(conn, request, Some(hashes)),
            Ok(None) => {}
            Err(Refused) => self.send_hashes(conn, request, None),
        }
    }

    fn send_hashes(&mut self, conn: ConnId, request: HashRequest, hashes: Option<Vec<Hash256>>) {
        let message = match hashes {
            Some(hashes) => Message::Hashes {
                request,
                hashes: bytes::Bytes::from(hashes.concat()),
            },
            None => Message::HashReject(request),
        };
        self.send_to(conn, &message);
    }

    /// The pieces a leaf request needs, if it is one we may answer: a valid range of a known
    /// file whose pieces we all have (and whose layer we know, for proofs above it).
    fn leaf_cover(&self, torrent: TorrentId, request: &HashRequest) -> Result<Cover, Refused> {
        if request.length > MAX_HASH_REQUEST_LEN {
            return Err(Refused);
        }
        let t = self.torrents.get(torrent.0).ok_or(Refused)?;
        let v2 = t.v2.as_ref().ok_or(Refused)?;
        let file = file_by_root(&t.info, &request.pieces_root).ok_or(Refused)?;
        let entry = &t.info.files()[file];
        let height = merkle::tree_height(entry.length());
        super::hashes::range_of(request)
            .check(height)
            .map_err(|_| Refused)?;
        let file_leaves = entry.length().div_ceil(merkle::BLOCK_SIZE as u64);
        // The leaves under the requested nodes (the base layer is below the piece layer).
        let start = u64::from(request.index) << request.base_layer;
        if start >= file_leaves {
            // Only padding: nothing of the file to prove.
            return Err(Refused);
        }
        let end = ((u64::from(request.index) + u64::from(request.length)) << request.base_layer)
            .min(file_leaves);
        let first = (start >> v2.piece_height) as u32;
        let last = ((end - 1) >> v2.piece_height) as u32;
        let file_first_piece = t.info.layout().file_pieces(file).ok_or(Refused)?.start;
        let cover = Cover {
            file,
            file_first_piece,
            first,
            last,
        };
        if !cover.pieces().all(|p| t.have.get(p)) {
            return Err(Refused);
        }
        if v2.needs_layer(file) && v2.layer(file).is_none() {
            return Err(Refused);
        }
        Ok(cover)
    }

    /// The answer from cached leaves, if every piece of `cover` is cached.
    fn answer_leaves(
        &mut self,
        torrent: TorrentId,
        request: &HashRequest,
        cover: Cover,
    ) -> Option<Vec<Hash256>> {
        if !cover
            .pieces()
            .all(|p| self.leaf_hashes.contains((torrent, p)))
        {
            return None;
        }
        let mut leaves = Vec::new();
        for p in cover.pieces() {
            leaves.extend_from_slice(self.leaf_hashes.cached((torrent, p))?);
        }
        let t = self.torrents.get_mut(torrent.0)?;
        let info = t.info.clone();
        let v2 = t.v2.as_mut()?;
        let piece_height = v2.piece_height;
        let entry = &info.files()[cover.file];
        let upper = if v2.needs_layer(cover.file) {
            Some(v2.tree(&info, cover.file)?)
        } else {
            None
        };
        let span = LeafSpan {
            tree_height: merkle::tree_height(entry.length()),
            piece_height,
            file_leaves: entry.length().div_ceil(merkle::BLOCK_SIZE as u64),
            first_leaf: u64::from(cover.first) << piece_height,
            leaves: &leaves,
            upper,
        };
        span.hashes(&super::hashes::range_of(request))
    }

    /// Queues `request` and reads the pieces of `cover` not cached or in flight.
    fn read_for(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        request: HashRequest,
        cover: Cover,
    ) -> Result<(), Refused> {
        let waiting = self
            .leaf_hashes
            .pending
            .iter()
            .filter(|p| p.conn == conn)
            .count();
        if waiting >= MAX_PENDING_PER_PEER {
            return Err(Refused);
        }
        if cover
            .pieces()
            .all(|p| self.leaf_hashes.contains((torrent, p)))
        {
            // Every leaf is here and still no answer: nothing to wait for.
            return Err(Refused);
        }
        let t = self.torrents.get(torrent.0).ok_or(Refused)?;
        let layout = t.info.layout();
        let to_read: Vec<u32> = cover
            .pieces()
            .filter(|&p| {
                !self.leaf_hashes.contains((torrent, p))
                    && !self.leaf_hashes.in_flight.contains_key(&(torrent, p))
            })
            .collect();
        let bytes: u64 = to_read
            .iter()
            .filter_map(|&p| Some(u64::from(layout.piece_size(layout.piece(p)?))))
            .sum();
        if !self.leaf_hashes.may_read(bytes) {
            return Err(Refused);
        }
        self.leaf_hashes.pending.push(Pending {
            conn,
            torrent,
            request,
            cover,
        });
        for piece in to_read {
            self.read_leaves(now, torrent, piece);
        }
        Ok(())
    }

    /// Reads a whole piece to hash its leaves.
    fn read_leaves(&mut self, _now: Instant, torrent: TorrentId, piece: u32) {
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let layout = t.info.layout();
        let Some(index) = layout.piece(piece) else {
            return;
        };
        let length = layout.piece_size(index);
        let req = RequestId(self.next_request);
        self.next_request += 1;
        self.disk_read_bytes += u64::from(length);
        self.leaf_hashes
            .in_flight
            .insert((torrent, piece), u64::from(length));
        self.leaf_hashes.in_flight_bytes += u64::from(length);
        self.jobs.insert(
            req,
            Job::LeafRead {
                torrent,
                piece,
                length,
            },
        );
        self.outputs.push_back(Output::Disk(DiskCmd::Read {
            req,
            torrent,
            spans: layout.piece_spans(index).collect(),
            length,
        }));
    }

    /// A piece read for its leaves: hash them, or give up on the piece.
    pub(super) fn on_leaf_read(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        length: u32,
        result: Result<DiskDone, StorageError>,
    ) {
        self.disk_read_bytes = self.disk_read_bytes.saturating_sub(u64::from(length));
        let len = self.torrents.get(torrent.0).and_then(|t| {
            Some(
                t.info
                    .layout()
                    .piece_data_size(t.info.layout().piece(piece)?),
            )
        });
        match (result, len) {
            (Ok(DiskDone::Read(data)), Some(len)) if data.len() == length as usize => {
                let req = RequestId(self.next_request);
                self.next_request += 1;
                self.jobs.insert(req, Job::LeafHash { torrent, piece });
                self.outputs.push_back(Output::Hash(HashJob {
                    req,
                    algorithm: HashAlgorithm::Sha256Blocks { len },
                    data: vec![data],
                }));
            }
            _ => self.leaves_done(now, torrent, piece, None),
        }
    }

    /// A piece's leaves, hashed from disk.
    pub(super) fn on_leaf_hashed(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        digest: Digest,
    ) {
        let Digest::Sha256Blocks(leaves) = digest else {
            self.leaves_done(now, torrent, piece, None);
            return;
        };
        self.leaves_done(now, torrent, piece, Some(leaves));
    }

    /// A piece read for its leaves is done (`None`: unreadable): check it against the tree,
    /// keep its leaves if they match, and answer or reject the requests waiting for it.
    fn leaves_done(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        leaves: Option<Vec<Hash256>>,
    ) {
        if let Some(bytes) = self.leaf_hashes.in_flight.remove(&(torrent, piece)) {
            self.leaf_hashes.in_flight_bytes -= bytes;
        }
        let verdict = leaves
            .clone()
            .and_then(|leaves| self.v2_verdict(torrent, piece, leaves));
        let rechecked = self
            .leaf_hashes
            .rechecks
            .get_mut(&torrent)
            .is_some_and(|r| r.checking.remove(&piece));
        match (verdict, leaves) {
            (Some(Verdict::Pass), Some(leaves)) => {
                self.leaf_hashes.insert((torrent, piece), leaves)
            }
            (Some(Verdict::Fail), _) if rechecked => {
                // Had by its SHA-1, and not what the v2 tree says: the torrent is inconsistent.
                self.hybrid_conflict(now, torrent, piece, true);
            }
            _ => {}
        }
        self.answer_pending(now, torrent, piece);
        if rechecked {
            self.pump_rechecks(now, torrent);
        }
    }

    /// Answers (or rejects) the requests that were waiting for `piece`, if nothing else.
    fn answer_pending(&mut self, now: Instant, torrent: TorrentId, piece: u32) {
        let mut i = 0;
        while i < self.leaf_hashes.pending.len() {
            let p = &self.leaf_hashes.pending[i];
            let waits_for_piece = p.torrent == torrent && p.cover.pieces().any(|q| q == piece);
            let still_reading = p
                .cover
                .pieces()
                .any(|q| self.leaf_hashes.in_flight.contains_key(&(torrent, q)));
            if !waits_for_piece || still_reading {
                i += 1;
                continue;
            }
            let p = self.leaf_hashes.pending.swap_remove(i);
            let answer = self.answer_leaves(torrent, &p.request, p.cover);
            self.send_hashes(p.conn, p.request, answer);
            self.after_activity(now, p.conn);
        }
    }

    /// A file's piece layer arrived for a hybrid torrent: the pieces of it we have were
    /// verified by SHA-1 only, so each is read again and checked against the layer.
    pub(super) fn recheck_file(&mut self, now: Instant, torrent: TorrentId, file: usize) {
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        if t.info.version() != Version::Hybrid {
            return;
        }
        let Some(range) = t.info.layout().file_pieces(file) else {
            return;
        };
        let had: Vec<u32> = range.filter(|&p| t.have.get(p)).collect();
        if had.is_empty() {
            return;
        }
        self.leaf_hashes
            .rechecks
            .entry(torrent)
            .or_default()
            .todo
            .extend(had);
        self.pump_rechecks(now, torrent);
    }

    /// Issues re-check reads, a few at a time.
    fn pump_rechecks(&mut self, now: Instant, torrent: TorrentId) {
        loop {
            let active = self
                .torrents
                .get(torrent.0)
                .is_some_and(|t| t.error.is_none());
            let Some(r) = self.leaf_hashes.rechecks.get_mut(&torrent) else {
                return;
            };
            if !active || (r.todo.is_empty() && r.checking.is_empty()) {
                self.leaf_hashes.rechecks.remove(&torrent);
                return;
            }
            if r.checking.len() >= MAX_RECHECKS_IN_FLIGHT {
                return;
            }
            let Some(piece) = r.todo.pop_front() else {
                return;
            };
            r.checking.insert(piece);
            if self.leaf_hashes.in_flight.contains_key(&(torrent, piece)) {
                // Being read for a request already: its result is checked then.
                continue;
            }
            if let Some(leaves) = self.leaf_hashes.cached((torrent, piece)).map(<[_]>::to_vec) {
                // Leaves kept since the piece verified: check them without reading it again.
                r_checking_remove(&mut self.leaf_hashes, torrent, piece);
                if self.v2_verdict(torrent, piece, leaves) == Some(Verdict::Fail) {
                    self.hybrid_conflict(now, torrent, piece, true);
                }
                continue;
            }
            self.read_leaves(now, torrent, piece);
        }
    }

    /// What `leaves` say about `piece` against its v2 tree.
    fn v2_verdict(&self, torrent: TorrentId, piece: u32, leaves: Vec<Hash256>) -> Option<Verdict> {
        let t = self.torrents.get(torrent.0)?;
        let index = t.info.layout().piece(piece)?;
        Some(super::v2::verdict(
            &t.info,
            t.v2.as_ref(),
            index,
            &Digest::Sha256Blocks(leaves),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache keeps at most [`MAX_CACHED_LEAVES`] leaves, dropping the least recently used
    /// piece first; a lookup makes a piece recent.
    #[test]
    fn the_leaf_cache_is_bounded_and_least_recently_used_goes_first() {
        let t = TorrentId(crate::slots::SlotKey {
            slot: 0,
            generation: 0,
        });
        let mut cache = LeafHashes::default();
        let per_piece = 256; // a 4 MiB piece
        let fits = MAX_CACHED_LEAVES / per_piece;
        for piece in 0..fits as u32 {
            cache.insert((t, piece), vec![[piece as u8; 32]; per_piece]);
        }
        assert_eq!(cache.cached, MAX_CACHED_LEAVES);
        assert_eq!(cache.cached((t, 0)).map(|l| l[0]), Some([0; 32]));
        cache.insert((t, 1000), vec![[9; 32]; per_piece]);
        assert!(cache.cached <= MAX_CACHED_LEAVES);
        assert!(cache.contains((t, 0)), "used recently");
        assert!(!cache.contains((t, 1)), "the least recently used");
        assert!(cache.contains((t, 1000)));
        // Replacing a piece's leaves does not count them twice.
        cache.insert((t, 1000), vec![[8; 32]; per_piece]);
        assert_eq!(cache.cached, MAX_CACHED_LEAVES);
        cache.torrent_removed(t);
        assert_eq!(
            (cache.cached, cache.cache.len(), cache.by_use.len()),
            (0, 0, 0)
        );
    }
}
