//! The BEP 9 metadata assembler (see [`MetadataAssembler`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::METADATA_PIECE_SIZE;
use crate::error::{Classify, Fault};
use crate::id::InfoHashes;
use crate::metainfo::Limits;
use crate::time::{Duration, Instant};

/// How long a peer has to answer a metadata request before it is asked of someone else.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer that rejected a request or let one time out is left alone.
pub const REJECT_BACKOFF: Duration = Duration::from_secs(30);
/// The most metadata requests one peer has outstanding at a time (in isolated mode, four times
/// as many: the one source fetches everything).
pub const MAX_OUTSTANDING_PER_PEER: u32 = 2;

/// What an answer did to the assembly.
#[derive(Clone, PartialEq, Eq)]
pub enum Progress<P> {
    /// Stored (or ignored, if it was late or already had); more pieces are needed.
    Pending,
    /// Every piece is in and the hash matches: the `info` dictionary, for
    /// [`Info::from_bytes`](crate::metainfo::Info::from_bytes).
    Complete {
        /// The verified `info` dictionary.
        info: Bytes,
        /// Peers that had sent a piece of an earlier, failed round that differs from the
        /// verified bytes: now banned.
        liars: Vec<P>,
    },
    /// Every piece was in but the hash did not match: all pieces are dropped and fetched again.
    HashFailed {
        /// Peers proven to have lied (the sole sender of the failed round), now banned.
        banned: Vec<P>,
    },
}

impl<P: fmt::Debug> fmt::Debug for Progress<P> {
    /// Shows the size of the info dictionary, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending => f.write_str("Pending"),
            Self::Complete { info, liars } => f
                .debug_struct("Complete")
                .field("info_len", &info.len())
                .field("liars", liars)
                .finish(),
            Self::HashFailed { banned } => f
                .debug_struct("HashFailed")
                .field("banned", banned)
                .finish(),
        }
    }
}

/// A metadata answer or a size the assembler refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssemblerError {
    /// The announced metadata size is over the limit.
    TooLarge {
        /// The size announced.
        size: u64,
        /// The most accepted.
        max: usize,
    },
    /// The announced metadata size is zero.
    Empty,
    /// The peer is banned; its answers are ignored.
    Banned,
    /// A `data` message whose `total_size` differs from the size being assembled; the peer is
    /// now banned.
    WrongTotalSize {
        /// The size the message claims.
        announced: u64,
        /// The size being assembled.
        expected: u64,
    },
    /// An answer for a piece we did not ask this peer for.
    Unrequested {
        /// The piece index.
        piece: u32,
    },
    /// A piece of the wrong length (all but the last are 16 KiB); the peer is now banned.
    WrongLength {
        /// The piece index.
        piece: u32,
        /// Its length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
}

impl fmt::Display for AssemblerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, max } => {
                write!(f, "metadata size {size} is over the limit of {max}")
            }
            Self::Empty => f.write_str("metadata size is zero"),
            Self::Banned => f.write_str("peer is banned from the metadata exchange"),
            Self::WrongTotalSize {
                announced,
                expected,
            } => write!(f, "metadata total_size {announced}, expected {expected}"),
            Self::Unrequested { piece } => write!(f, "metadata piece {piece} was not requested"),
            Self::WrongLength {
                piece,
                expected,
                actual,
            } => write!(
                f,
                "metadata piece {piece} has {actual} bytes, expected {expected}"
            ),
        }
    }
}

impl std::error::Error for AssemblerError {}

impl Classify for AssemblerError {
    fn fault(&self) -> Fault {
        match self {
            Self::TooLarge { .. } => Fault::LimitExceeded,
            _ => Fault::PeerMisbehaved,
        }
    }
}

#[derive(Clone, Debug)]
enum Slot<P> {
    Missing,
    Requested { peer: P, deadline: Instant },
    Have { peer: P, data: Bytes },
}

#[derive(Clone, Debug, Default)]
struct PeerState {
    outstanding: u32,
    asked: BTreeSet<u32>,
    backoff_until: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode<P> {
    /// Pieces come from any peer.
    Shared,
    /// A round comes from one peer (after a failed shared round).
    Isolated { source: Option<P> },
}

/// Fetches and verifies an `info` dictionary over BEP 9.
///
/// `P` names a peer (a connection id, an address): anything small, ordered and copyable.
///
/// # How it works
///
/// The assembler is created from the info-hashes (from a magnet link) and the `metadata_size`
/// the first peer announced in its extension handshake, capped at
/// [`Limits::max_metadata_size`] before anything is allocated. It stores each piece as the
/// [`Bytes`] slice the wire decoder handed out (no copy until the final concatenation) and
/// remembers which peer sent it.
///
/// - [`next_request`](MetadataAssembler::next_request) gives a peer a missing piece to ask for,
///   at most [`MAX_OUTSTANDING_PER_PEER`] at a time, each piece asked of one peer at a time, so
///   the pieces spread across the peers that ask.
/// - [`on_data`](MetadataAssembler::on_data), [`on_reject`](MetadataAssembler::on_reject) and
///   [`handle_timeout`](MetadataAssembler::handle_timeout) feed the answers back. A rejecting or
///   timed-out peer is not asked again for [`REJECT_BACKOFF`].
/// - When every piece is in, the concatenation is hashed: SHA-1 against a v1 info-hash, SHA-256
///   against a v2 one, both for a hybrid.
///
/// # Liars
///
/// A peer that announces another `total_size` or sends a piece of the wrong length is banned at
/// once. A hash mismatch cannot say which piece was wrong, so the assembler narrows it down:
///
/// - if one peer sent every piece of the failed round, it is banned;
/// - otherwise the failed round's pieces are kept as *suspects*, and from then on every round is
///   fetched from a single peer (*isolated* mode), so the next failure names its liar. When a
///   round finally verifies, every suspect piece is compared with the verified bytes and the
///   peers that sent a different one are banned too ([`Progress::Complete::liars`]).
///
/// Banned peers are reported once, in the [`Progress`] or error that banned them, and are never
/// asked again; the caller should disconnect them.
///
/// # Invariants
///
/// - A piece is `Requested` from at most one peer, and a peer's `outstanding` count is the number
///   of pieces `Requested` from it.
/// - A peer's `asked` set holds every piece asked of it and not yet answered (timed-out requests
///   included, so a late answer is not mistaken for an unrequested one).
/// - In isolated mode every `Have` piece came from the round's source.
///
/// Hashing runs inline: an `info` dictionary is usually tens of kilobytes and is capped at
/// [`Limits::max_metadata_size`].
#[derive(Clone, Debug)]
pub struct MetadataAssembler<P> {
    hashes: InfoHashes,
    total_size: usize,
    slots: Vec<Slot<P>>,
    have: u32,
    peers: BTreeMap<P, PeerState>,
    banned: BTreeSet<P>,
    mode: Mode<P>,
    /// Pieces of the failed shared round: (piece, sender, bytes).
    suspects: Vec<(u32, P, Bytes)>,
    complete: bool,
}

impl<P: Copy + Ord + fmt::Debug> MetadataAssembler<P> {
    /// Starts assembling `metadata_size` bytes (as a peer announced) named by `hashes`, with the
    /// default limit ([`Limits::DEFAULT`]`.max_metadata_size`).
    pub fn new(hashes: InfoHashes, metadata_size: u64) -> Result<Self, AssemblerError> {
        Self::with_limits(hashes, metadata_size, &Limits::DEFAULT)
    }

    /// Starts assembling with the given limits.
    pub fn with_limits(
        hashes: InfoHashes,
        metadata_size: u64,
        limits: &Limits,
    ) -> Result<Self, AssemblerError> {
        let total_size = usize::try_from(metadata_size)
            .ok()
            .filter(|&s| s <= limits.max_metadata_size)
            .ok_or(AssemblerError::TooLarge {
                size: metadata_size,
                max: limits.max_metadata_size,
            })?;
        if total_size == 0 {
            return Err(AssemblerError::Empty);
        }
        let pieces = total_size.div_ceil(METADATA_PIECE_SIZE);
        Ok(Self {
            hashes,
            total_size,
            slots: vec![Slot::Missing; pieces],
            have: 0,
            peers: BTreeMap::new(),
            banned: BTreeSet::new(),
            mode: Mode::Shared,
            suspects: Vec::new(),
            complete: false,
        })
    }

    /// The size being assembled, in bytes: ask only peers whose handshake announced this
    /// `metadata_size`.
    pub fn total_size(&self) -> u64 {
        self.total_size as u64
    }

    /// The number of 16 KiB pieces.
    pub fn piece_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// How many pieces of the current round are in.
    pub fn pieces_have(&self) -> u32 {
        self.have
    }

    /// Whether the metadata has been verified (nothing more to do).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether `peer` has been banned from the metadata exchange.
    pub fn is_banned(&self, peer: P) -> bool {
        self.banned.contains(&peer)
    }

    /// The length of piece `piece` (16 KiB except the last).
    fn piece_len(&self, piece: u32) -> usize {
        let start = piece as usize * METADATA_PIECE_SIZE;
        (self.total_size - start).min(METADATA_PIECE_SIZE)
    }

    /// The next piece to ask `peer` for, if any; the request is recorded and times out at
    /// `now + REQUEST_TIMEOUT`. Call it again until it gives `None`.
    pub fn next_request(&mut self, now: Instant, peer: P) -> Option<u32> {
        if self.complete || self.banned.contains(&peer) {
            return None;
        }
        let limit = match &mut self.mode {
            Mode::Shared => MAX_OUTSTANDING_PER_PEER,
            Mode::Isolated { source: Some(s) } if *s != peer => return None,
            Mode::Isolated { source } => {
                if source.is_none() && self.peers.get(&peer).is_some_and(|s| in_backoff(s, now)) {
                    return None;
                }
                *source = Some(peer);
                MAX_OUTSTANDING_PER_PEER * 4
            }
        };
        let state = self.peers.entry(peer).or_default();
        if in_backoff(state, now) || state.outstanding >= limit {
            return None;
        }
        // Prefer a piece this peer was not already asked for (one it let time out).
        let missing = |i: &usize| matches!(self.slots[*i], Slot::Missing);
        let piece = (0..self.slots.len())
            .filter(missing)
            .find(|&i| !state.asked.contains(&(i as u32)))
            .or_else(|| (0..self.slots.len()).find(missing))? as u32;
        state.outstanding += 1;
        state.asked.insert(piece);
        self.slots[piece as usize] = Slot::Requested {
            peer,
            deadline: now + REQUEST_TIMEOUT,
        };
        Some(piece)
    }

    /// A `data` message from `peer` (BEP 9 `msg_type` 1).
    ///
    /// An error means the peer misbehaved; for [`AssemblerError::WrongTotalSize`] and
    /// [`AssemblerError::WrongLength`] it is now banned. A late answer (after a timeout, or for
    /// a piece someone else already sent) is `Ok(Pending)`.
    pub fn on_data(
        &mut self,
        peer: P,
        piece: u32,
        total_size: u64,
        data: Bytes,
    ) -> Result<Progress<P>, AssemblerError> {
        if self.banned.contains(&peer) {
            return Err(AssemblerError::Banned);
        }
        if total_size != self.total_size as u64 {
            self.ban(peer);
            return Err(AssemblerError::WrongTotalSize {
                announced: total_size,
                expected: self.total_size as u64,
            });
        }
        let asked = self.peers.get_mut(&peer).map(|s| &mut s.asked);
        if !asked.is_some_and(|a| a.remove(&piece)) {
            return Err(AssemblerError::Unrequested { piece });
        }
        let expected = self.piece_len(piece);
        if data.len() != expected {
            self.ban(peer);
            return Err(AssemblerError::WrongLength {
                piece,
                expected,
                actual: data.len(),
            });
        }
        if self.complete {
            return Ok(Progress::Pending);
        }
        let slot = &mut self.slots[piece as usize];
        if let Slot::Requested { peer: asked, .. } = slot {
            let asked = *asked;
            if let Some(s) = self.peers.get_mut(&asked) {
                s.outstanding -= 1;
            }
            *slot = Slot::Missing;
        }
        let accept = match self.mode {
            Mode::Shared => true,
            Mode::Isolated { source } => source == Some(peer),
        };
        let slot = &mut self.slots[piece as usize];
        if !accept || matches!(slot, Slot::Have { .. }) {
            return Ok(Progress::Pending);
        }
        *slot = Slot::Have { peer, data };
        self.have += 1;
        if self.have as usize == self.slots.len() {
            return Ok(self.verify());
        }
        Ok(Progress::Pending)
    }

    /// A `reject` message from `peer` (BEP 9 `msg_type` 2): the piece goes to someone else and
    /// `peer` is left alone for [`REJECT_BACKOFF`].
    pub fn on_reject(&mut self, now: Instant, peer: P, piece: u32) -> Result<(), AssemblerError> {
        if self.banned.contains(&peer) {
            return Err(AssemblerError::Banned);
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return Err(AssemblerError::Unrequested { piece });
        };
        if !state.asked.remove(&piece) {
            return Err(AssemblerError::Unrequested { piece });
        }
        state.backoff_until = Some(now + REJECT_BACKOFF);
        self.release(peer, Some(piece));
        Ok(())
    }

    /// `peer` disconnected: its requests go back to the pool.
    pub fn remove_peer(&mut self, peer: P) {
        self.release(peer, None);
        self.peers.remove(&peer);
    }

    /// The earliest request deadline, if a request is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Requested { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    /// Expires the requests whose deadline has passed and returns them as `(peer, piece)`. The
    /// peers are left alone for [`REJECT_BACKOFF`]; their late answers are still accepted.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(P, u32)> {
        let expired: Vec<(P, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Requested { peer, deadline } if *deadline <= now => Some((*peer, i as u32)),
                _ => None,
            })
            .collect();
        for &(peer, piece) in &expired {
            if let Some(s) = self.peers.get_mut(&peer) {
                s.backoff_until = Some(now + REJECT_BACKOFF);
            }
            self.release(peer, Some(piece));
        }
        expired
    }

    /// Gives back `peer`'s request for `piece` (or all its requests); a source in isolated mode
    /// that lets go of its round loses it.
    fn release(&mut self, peer: P, piece: Option<u32>) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Slot::Requested { peer: p, .. } = slot {
                if *p == peer && piece.is_none_or(|x| x as usize == i) {
                    *slot = Slot::Missing;
                    if let Some(s) = self.peers.get_mut(&peer) {
                        s.outstanding -= 1;
                    }
                }
            }
        }
        if self.mode == (Mode::Isolated { source: Some(peer) }) {
            self.reset_round();
        }
    }

    fn ban(&mut self, peer: P) {
        self.release(peer, None);
        self.banned.insert(peer);
        self.peers.remove(&peer);
        if let Mode::Isolated { source } = &mut self.mode {
            if *source == Some(peer) {
                *source = None;
            }
        }
    }

    /// Drops every piece of the round; isolated mode waits for a new source.
    fn reset_round(&mut self) {
        for slot in &mut self.slots {
            if let Slot::Requested { peer, .. } = slot {
                if let Some(s) = self.peers.get_mut(peer) {
                    s.outstanding -= 1;
                }
            }
            *slot = Slot::Missing;
        }
        self.have = 0;
        if let Mode::Isolated { source } = &mut self.mode {
            *source = None;
        }
    }

    fn verify(&mut self) -> Progress<P> {
        let mut info = Vec::with_capacity(self.total_size);
        let mut senders = BTreeSet::new();
        for slot in &self.slots {
            if let Slot::Have { peer, data } = slot {
                info.extend_from_slice(data);
                senders.insert(*peer);
            }
        }
        if hash_matches(&self.hashes, &info) {
            self.complete = true;
            let banned = &self.banned;
            let liars: BTreeSet<P> = self
                .suspects
                .drain(..)
                .filter(|(_, peer, _)| !banned.contains(peer))
                .filter(|(piece, _, data)| {
                    let start = *piece as usize * METADATA_PIECE_SIZE;
                    info[start..start + data.len()] != data[..]
                })
                .map(|(_, peer, _)| peer)
                .collect();
            for &p in &liars {
                self.ban(p);
            }
            self.slots.iter_mut().for_each(|s| *s = Slot::Missing);
            return Progress::Complete {
                info: Bytes::from(info),
                liars: liars.into_iter().collect(),
            };
        }
        let mut banned = Vec::new();
        if senders.len() == 1 {
            let liar = *senders.first().expect("one sender");
            banned.push(liar);
        } else if self.mode == Mode::Shared {
            self.suspects = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match s {
                    Slot::Have { peer, data } => Some((i as u32, *peer, data.clone())),
                    _ => None,
                })
                .collect();
            self.mode = Mode::Isolated { source: None };
        }
        self.reset_round();
        for &p in &banned {
            self.ban(p);
        }
        Progress::HashFailed { banned }
    }
}

fn in_backoff(state: &PeerState, now: Instant) -> bool {
    state.backoff_until.is_some_and(|t| now < t)
}

/// Whether `info` hashes to every hash in `hashes` (SHA-1 for v1, SHA-256 for v2).
fn hash_matches(hashes: &InfoHashes, info: &[u8]) -> bool {
    let v1 = hashes
        .v1()
        .is_none_or(|h| Sha1::digest(info).as_slice() == h.0);
    let v2 = hashes
        .v2()
        .is_none_or(|h| Sha256::digest(info).as_slice() == h.0);
    v1 && v2
}
