//! A torrent's life in the session: checking, downloading, seeding, paused, error; the
//! commands that move it ([`Session::pause`], [`Session::resume`]); storage errors; resume data
//! and the statistics that come with it.
//!
//! # States
//!
//! ```text
//!            add (CheckMode::Full, or Resume with pieces to check)
//!   add ──▶ Checking ──all pieces read and hashed──▶ Downloading ──last wanted piece──▶ Seeding
//!    │                                                   ▲   │
//!    └── (Trust / Resume with nothing to check) ─────────┘   └── pause ──▶ Paused ── resume ─┐
//!                         any state ── storage error ──▶ Error ── resume ──▶ (as before) ◀───┘
//! ```
//!
//! Only a torrent that is neither checking, paused nor in error is *active*: it has
//! connections, requests blocks and serves them. Pausing or an error closes its connections
//! ([`DisconnectReason::TorrentStopped`]) and refuses new ones, but keeps everything else
//! (pieces, priorities, limits); jobs already running complete and are accounted for (a piece
//! whose hash and writes finish while paused is still verified). Pieces are marked had only
//! when their hash matched *and* every write of them succeeded, so an error never leaves
//! unverified data marked as had.

use std::fmt;
use std::mem::{discriminant, Discriminant};

use crate::bitfield::Bitfield;
use crate::id::{ConnId, TorrentId};
use crate::metainfo::Info;
use crate::peer::DisconnectReason;
use crate::resume::{FileStat, ResumeData};
use crate::time::Instant;
use crate::torrent::Torrent;

use super::{AddError, CommandError, Event, Output, Session, StorageError};

/// Where a torrent is in its life; see [`Session::torrent_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorrentState {
    /// Reading and hashing the files already on disk; `checked` of `total` pieces done.
    Checking {
        /// Pieces read and hashed so far.
        checked: u32,
        /// Pieces to check (all of them, or those resume data left in doubt).
        total: u32,
    },
    /// Downloading: some wanted piece is missing.
    Downloading,
    /// Every wanted piece is verified and stored; uploading only.
    Seeding,
    /// Stopped by [`Session::pause`]: no connections, nothing transferred.
    Paused,
    /// A magnet link's torrent fetching its `info` dictionary from peers (BEP 9); nothing is
    /// known about its files yet.
    FetchingMetadata,
    /// Stopped by a storage failure (disk full, permission denied, a file vanished); the
    /// reason is the runtime's. [`Session::resume`] clears it and tries again.
    Error(StorageError),
}

impl fmt::Display for TorrentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checking { checked, total } => write!(f, "checking {checked}/{total}"),
            Self::Downloading => f.write_str("downloading"),
            Self::Seeding => f.write_str("seeding"),
            Self::Paused => f.write_str("paused"),
            Self::FetchingMetadata => f.write_str("fetching metadata"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// How [`Session::add_torrent`](super::Session::add_torrent) learns which pieces are already
/// on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckMode {
    /// Trust this set as verified and stored, without reading anything (an empty set for a
    /// new download). Its length must be the torrent's piece count.
    Trust(Bitfield),
    /// Read and hash every piece from disk first ([`TorrentState::Checking`]). Missing or
    /// short files just mean missing pieces. For files of unknown state.
    Full,
    /// Resume data from an earlier run, and the files' sizes and modification times now, as
    /// the runtime reads them (one entry per file of the torrent, `None` for a missing file or
    /// a pad file). Pieces verified in the earlier run whose files are unchanged are trusted;
    /// the pieces of changed files, and those that may have been verified after the data was
    /// saved, are checked from disk ([`ResumeData::plan`]).
    Resume {
        /// The resume data saved earlier ([`Session::resume_data`]).
        data: ResumeData,
        /// The files as they are now.
        current_files: Vec<Option<FileStat>>,
    },
}

/// The pieces to start with, and those to check from disk first (`None`: none).
pub(super) fn initial_have(
    info: &Info,
    check: CheckMode,
) -> Result<(Bitfield, Option<Bitfield>), AddError> {
    let pieces = info.layout().piece_count();
    let fits = |have: &Bitfield| {
        if have.len() == pieces {
            Ok(())
        } else {
            Err(AddError::HaveLength {
                expected: pieces,
                actual: have.len(),
            })
        }
    };
    match check {
        CheckMode::Trust(have) => {
            fits(&have)?;
            Ok((have, None))
        }
        CheckMode::Full => Ok((Bitfield::new(pieces), Some(Bitfield::full(pieces)))),
        CheckMode::Resume {
            data,
            current_files,
        } => {
            if data.info_hashes != info.hashes() {
                return Err(AddError::ResumeForAnotherTorrent);
            }
            fits(&data.have)?;
            let plan = data.plan(info, &current_files);
            let check = (!plan.check.is_clear()).then_some(plan.check);
            Ok((plan.trusted, check))
        }
    }
}

impl Torrent {
    /// The torrent's state (see the module documentation).
    pub(crate) fn state(&self) -> TorrentState {
        if let Some(e) = &self.error {
            TorrentState::Error(e.clone())
        } else if self.paused {
            TorrentState::Paused
        } else if let Some(c) = &self.checking {
            TorrentState::Checking {
                checked: c.checked,
                total: c.total,
            }
        } else if self.finished {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        }
    }

    /// Whether the torrent may have connections and transfer blocks.
    pub(crate) fn is_active(&self) -> bool {
        self.error.is_none() && !self.paused && self.checking.is_none()
    }

    fn state_kind(&self) -> Discriminant<TorrentState> {
        discriminant(&self.state())
    }
}

impl Session {
    // ---- commands ------------------------------------------------------------------------

    /// Pauses a torrent: closes its connections ([`DisconnectReason::TorrentStopped`]), stops
    /// requesting and serving blocks and checking files, and refuses new connections. Pieces,
    /// priorities and limits are kept; [`Session::resume`] continues. Pausing a paused torrent
    /// does nothing.
    pub fn pause(&mut self, now: Instant, torrent: TorrentId) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        if !t.paused {
            t.paused = true;
            self.close_torrent_conns(now, torrent, DisconnectReason::TorrentStopped);
            self.note_state(torrent);
            self.trackers_sync(now, torrent);
        }
        Ok(())
    }

    /// Resumes a paused torrent, or one stopped by a storage error (clearing the error: pieces
    /// whose writes failed were never marked had and are downloaded again). A check that was
    /// interrupted continues. The runtime connects to peers again afterwards.
    pub fn resume(&mut self, now: Instant, torrent: TorrentId) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        t.paused = false;
        t.error = None;
        self.note_state(torrent);
        self.issue_checks(now, torrent);
        self.trackers_sync(now, torrent);
        Ok(())
    }

    // ---- getters -------------------------------------------------------------------------

    /// A torrent's state, or `None` for an unknown id.
    pub fn torrent_state(&self, torrent: TorrentId) -> Option<TorrentState> {
        match self.torrents.get(torrent.0) {
            Some(t) => Some(t.state()),
            None => self.magnet_state(torrent),
        }
    }

    /// Bytes of verified pieces per file, by file index (pad files are always 0): a file is
    /// complete when its entry equals its length.
    pub fn file_progress(&self, torrent: TorrentId) -> Option<Vec<u64>> {
        let t = self.torrents.get(torrent.0)?;
        let layout = t.info.layout();
        let mut out = vec![0u64; t.info.files().len()];
        for piece in t.have.iter_set() {
            let Some(p) = layout.piece(piece) else {
                continue;
            };
            for span in layout.piece_spans(p).filter(|s| !s.pad) {
                if let Some(slot) = out.get_mut(span.file) {
                    *slot += u64::from(span.length);
                }
            }
        }
        Some(out)
    }

    /// Resume data for a torrent: its verified pieces now, the pieces that may have data on
    /// disk without being verified (blocks written or being written, pieces still to check),
    /// and `files` as the runtime read them just now (each file's size and modification time,
    /// `None` if missing), at `files_read_at` (read after them, on the clock of the times; see
    /// [`ResumeData`]). Save it at any moment: a restart with it loses no piece verified before
    /// the process ended and trusts none that was not verified (see [`crate::resume`]). The
    /// runtime must not let the session issue writes between reading the files and this call.
    pub fn resume_data(
        &self,
        torrent: TorrentId,
        files: Vec<Option<FileStat>>,
        files_read_at: i64,
    ) -> Option<ResumeData> {
        let t = self.torrents.get(torrent.0)?;
        let mut unverified = Bitfield::new(t.have.len());
        for &piece in t.pieces.keys() {
            if !t.have.get(piece) {
                unverified.set(piece, true);
            }
        }
        if let Some(c) = &t.checking {
            for piece in c.todo.iter_set() {
                unverified.set(piece, true);
            }
        }
        Some(ResumeData {
            info_hashes: t.info.hashes(),
            have: t.have.clone(),
            unverified,
            files,
            files_read_at,
            piece_layers: t
                .v2
                .as_ref()
                .map(|v| v.fetched_layers(&t.info))
                .unwrap_or_default(),
        })
    }

    // ---- internals -----------------------------------------------------------------------

    /// Reports [`Event::StateChanged`] if the torrent's state changed kind since last reported.
    pub(super) fn note_state(&mut self, torrent: TorrentId) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let kind = t.state_kind();
        if t.reported_state == Some(kind) {
            return;
        }
        t.reported_state = Some(kind);
        let state = t.state();
        self.outputs
            .push_back(Output::Event(Event::StateChanged { torrent, state }));
        // BEP 21: peers hear whether we only upload now.
        self.ext_state_changed(self.clock, torrent);
        // BEP 14: only active torrents are announced on the LAN.
        self.lsd_sync(torrent);
    }

    /// Closes every connection of a torrent (magnet or not), reporting `reason`.
    pub(super) fn close_torrent_conns(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        reason: DisconnectReason,
    ) {
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(torrent))
            .map(|(k, _)| ConnId(k))
            .collect();
        for conn in conns {
            self.close_conn(now, conn, reason.clone(), true);
        }
    }

    /// A read or write for the torrent failed: it stops in [`TorrentState::Error`] with the
    /// runtime's reason (reported once, with [`Event::StorageFailed`]).
    pub(super) fn storage_failed(&mut self, now: Instant, torrent: TorrentId, error: StorageError) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        if t.error.is_some() {
            return;
        }
        t.error = Some(error.clone());
        self.outputs
            .push_back(Output::Event(Event::StorageFailed { torrent, error }));
        self.close_torrent_conns(now, torrent, DisconnectReason::TorrentStopped);
        self.note_state(torrent);
    }

    /// BEP 21: when we have every piece and the peer is a seed or upload-only, neither side
    /// wants anything from the other: mark the connection closed (the caller reaps it). A
    /// torrent finished with skipped files keeps its seeds, in case the files are wanted again.
    pub(super) fn close_if_both_seeding(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        let Some(t) = c.torrent.and_then(|t| self.torrents.get(t.0)) else {
            return;
        };
        if !t.have.is_full() || !c.peer.is_established() {
            return;
        }
        let seed = c.peer.peer_has().is_some_and(Bitfield::is_full);
        let upload_only = c
            .peer
            .remote()
            .and_then(|r| r.extended.as_ref())
            .is_some_and(|e| e.upload_only);
        if seed || upload_only {
            c.peer.close(DisconnectReason::BothSeeding);
        }
    }

    /// The torrent just finished: drops the peers that want nothing from us either.
    pub(super) fn drop_seeds(&mut self, now: Instant, torrent: TorrentId) {
        let peers = self
            .torrents
            .get(torrent.0)
            .map(|t| t.peers.clone())
            .unwrap_or_default();
        for conn in peers {
            self.close_if_both_seeding(conn);
            let closed = self
                .conns
                .get(conn.0)
                .and_then(|c| c.peer.closed_reason().cloned());
            if let Some(reason) = closed {
                self.close_conn(now, conn, reason, true);
            }
        }
    }

    /// A block write of `length` bytes completed: if requests were held back by the write cap
    /// and the queue is below it again, every torrent requests again.
    pub(super) fn write_completed(&mut self, now: Instant, length: u64) {
        self.disk_write_bytes = self.disk_write_bytes.saturating_sub(length);
        if self.write_blocked && self.disk_write_bytes < self.config.max_disk_write_bytes {
            self.write_blocked = false;
            let torrents: Vec<TorrentId> =
                self.torrents.iter().map(|(k, _)| TorrentId(k)).collect();
            for t in torrents {
                self.pump_torrent(now, t);
            }
        }
    }

    /// Block payload bytes per second to and from a torrent's peers, as of the latest input.
    pub(super) fn torrent_rates(&self, t: &Torrent) -> (u64, u64) {
        t.peers
            .iter()
            .filter_map(|p| self.conns.get(p.0))
            .fold((0, 0), |(down, up), c| {
                (
                    down + c.peer.download_rate(self.clock),
                    up + c.peer.upload_rate(self.clock),
                )
            })
    }
}
