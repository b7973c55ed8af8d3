//! The session's torrent-engine policies: the choker tick, rate-limit tokens, and the commands
//! that steer the picker (priorities, sequential mode, deadlines) and the limits.

use std::fmt;

use crate::choker::{self, ChokerConfig, PeerSnapshot};
use crate::id::{ConnId, TorrentId};
use crate::metainfo::BLOCK_LEN;
use crate::picker::Priority;
use crate::rate::{take_both, TokenBucket};
use crate::time::{Duration, Instant};

use super::{Event, Output, Session};

/// How often the choker runs.
pub(super) const CHOKE_INTERVAL: Duration = Duration::from_secs(10);

/// Why a command about a torrent was refused (`ApiMisuse`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The torrent id is stale or was never issued.
    UnknownTorrent,
    /// The torrent has no file with this index (it has `files`).
    FileOutOfRange {
        /// The index given.
        file: usize,
        /// How many files the torrent has.
        files: usize,
    },
    /// The torrent has no piece with this index (it has `pieces`).
    PieceOutOfRange {
        /// The index given.
        piece: u32,
        /// How many pieces the torrent has.
        pieces: u32,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownTorrent => {
                f.write_str("unknown torrent id: it was removed, or comes from another session")
            }
            Self::FileOutOfRange { file, files } => {
                write!(
                    f,
                    "file {file} does not exist: the torrent has {files} files"
                )
            }
            Self::PieceOutOfRange { piece, pieces } => {
                write!(
                    f,
                    "piece {piece} does not exist: the torrent has {pieces} pieces"
                )
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// A bucket for a configured limit (0 = unlimited).
pub(super) fn bucket(rate: u64) -> TokenBucket {
    if rate == 0 {
        TokenBucket::UNLIMITED
    } else {
        TokenBucket::with_rate(rate)
    }
}

/// Takes tokens for up to `want` blocks from both buckets; returns how many were granted.
pub(super) fn grant_blocks(
    now: Instant,
    global: &mut TokenBucket,
    local: &mut TokenBucket,
    want: usize,
) -> usize {
    if global.is_unlimited() && local.is_unlimited() {
        return want;
    }
    let mut granted = 0;
    while granted < want && take_both(now, global, local, u64::from(BLOCK_LEN)) {
        granted += 1;
    }
    granted
}

/// Returns unused tokens to both buckets.
pub(super) fn give_back(global: &mut TokenBucket, local: &mut TokenBucket, bytes: u64) {
    global.give_back(bytes);
    local.give_back(bytes);
}

/// When both buckets will grant a block again.
pub(super) fn tokens_at(now: Instant, global: &TokenBucket, local: &TokenBucket) -> Instant {
    let n = u64::from(BLOCK_LEN);
    global
        .next_available(now, n)
        .max(local.next_available(now, n))
}

impl Session {
    // ---- commands ------------------------------------------------------------------------

    /// Sets a file's priority. Pieces take the highest priority of the files they hold bytes
    /// of, so a piece shared with a wanted file is still downloaded; pieces only of files set
    /// to [`Priority::Skip`] are never requested. The torrent is finished (and
    /// [`Event::TorrentFinished`] is reported) when every wanted piece is stored.
    pub fn set_file_priority(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        file: usize,
        priority: Priority,
    ) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        let files = t.file_priority.len();
        if file >= files {
            return Err(CommandError::FileOutOfRange { file, files });
        }
        t.file_priority[file] = priority;
        let pieces = t.info.layout().file_pieces(file).unwrap_or(0..0);
        for piece in pieces {
            let p = t.piece_priority(piece);
            t.picker.set_priority(piece, p);
        }
        let finished = t.picker.is_finished();
        let newly = finished && !t.finished;
        t.finished = finished;
        if newly {
            self.outputs
                .push_back(Output::Event(Event::TorrentFinished { torrent }));
        }
        self.pump_torrent(now, torrent);
        Ok(())
    }

    /// Downloads pieces in index order (for streaming or previews) instead of rarest first.
    pub fn set_sequential(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        sequential: bool,
    ) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        t.picker.set_sequential(sequential);
        self.pump_torrent(now, torrent);
        Ok(())
    }

    /// Whether a torrent downloads in index order ([`Session::set_sequential`]), or `None`
    /// for an unknown torrent.
    pub fn is_sequential(&self, torrent: TorrentId) -> Option<bool> {
        Some(self.torrents.get(torrent.0)?.picker.is_sequential())
    }

    /// Sets (or with `None` clears) the instant by which a piece is needed, for streaming:
    /// pieces with a deadline are requested before all others, earliest deadline first. A
    /// player sets deadlines for the pieces after its read position (see
    /// [`Layout::file_pieces`](crate::metainfo::Layout::file_pieces)) and clears them on seek.
    /// A deadline does not override [`Priority::Skip`]; it is dropped once the piece is stored.
    pub fn set_piece_deadline(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        deadline: Option<Instant>,
    ) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        let pieces = t.have.len();
        if piece >= pieces {
            return Err(CommandError::PieceOutOfRange { piece, pieces });
        }
        t.picker.set_deadline(piece, deadline);
        self.pump_torrent(now, torrent);
        Ok(())
    }

    /// Limits one torrent's upload and download, in bytes per second of block payload (0 means
    /// unlimited). The session-wide limits ([`Config::upload_rate_limit`](super::Config),
    /// [`Config::download_rate_limit`](super::Config)) apply on top.
    pub fn set_torrent_limits(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        upload: u64,
        download: u64,
    ) -> Result<(), CommandError> {
        let t = self.command_target(torrent)?;
        if t.upload_limit.rate() != upload {
            t.upload_limit = bucket(upload);
        }
        if t.download_limit.rate() != download {
            t.download_limit = bucket(download);
        }
        self.pump_torrent(now, torrent);
        Ok(())
    }

    /// A torrent's own (upload, download) limits in bytes per second, 0 for none
    /// ([`Session::set_torrent_limits`]), or `None` for an unknown torrent.
    pub fn torrent_limits(&self, torrent: TorrentId) -> Option<(u64, u64)> {
        let t = self.torrents.get(torrent.0)?;
        Some((t.upload_limit.rate(), t.download_limit.rate()))
    }

    // ---- choking -------------------------------------------------------------------------

    /// Every [`CHOKE_INTERVAL`]: runs the choker for every torrent.
    pub(super) fn choke_tick(&mut self, now: Instant) {
        let torrents: Vec<TorrentId> = self.torrents.iter().map(|(k, _)| TorrentId(k)).collect();
        for torrent in torrents {
            self.run_choker(now, torrent);
        }
        self.next_choke = (self.conns.len() > 0).then(|| now + CHOKE_INTERVAL);
    }

    /// Runs the choker over a torrent's peers and applies its unchoke set.
    fn run_choker(&mut self, now: Instant, torrent: TorrentId) {
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let snapshot: Vec<PeerSnapshot<ConnId>> = t
            .peers
            .iter()
            .filter_map(|&id| {
                let c = self.conns.get(id.0)?;
                Some(PeerSnapshot {
                    id,
                    interested: c.peer.peer_is_interested(),
                    am_choking: c.peer.is_choking_peer(),
                    download_rate: c.peer.download_rate(now),
                    upload_rate: c.peer.upload_rate(now),
                    snubbed: c.peer.is_snubbed(),
                    connected_at: c.peer.connected_at(),
                    last_unchoked: c.last_unchoked,
                    optimistic_since: c.optimistic_since,
                })
            })
            .collect();
        let config = ChokerConfig {
            slots: self.config.unchoke_slots,
            ..ChokerConfig::DEFAULT
        };
        let seeding = t.picker.is_finished();
        let set = choker::unchoke(&snapshot, seeding, &config, now, &mut self.rng);
        for p in &snapshot {
            let Some(c) = self.conns.get_mut(p.id.0) else {
                continue;
            };
            c.optimistic_since = if set.optimistic == Some(p.id) {
                c.optimistic_since.or(Some(now))
            } else {
                None
            };
            let unchoke = set.contains(p.id);
            if unchoke == c.peer.is_choking_peer() {
                if unchoke {
                    c.last_unchoked = Some(now);
                }
                c.peer.set_choking(!unchoke);
                self.pump(now, p.id);
                self.flush(now, p.id);
            }
        }
    }

    /// The cheap adjustment between choker runs (a peer's interest changed or it left):
    /// chokes peers that lost interest and gives free slots to interested peers.
    pub(super) fn rechoke(&mut self, now: Instant, torrent: TorrentId) {
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let peers = t.peers.clone();
        let mut changed = Vec::new();
        let mut unchoked = peers
            .iter()
            .filter(|p| {
                self.conns
                    .get(p.0)
                    .is_some_and(|c| !c.peer.is_choking_peer())
            })
            .count();
        for p in peers {
            let Some(c) = self.conns.get_mut(p.0) else {
                continue;
            };
            let interested = c.peer.peer_is_interested();
            if !interested && !c.peer.is_choking_peer() {
                c.peer.set_choking(true);
                c.optimistic_since = None;
                unchoked -= 1;
                changed.push(p);
            } else if interested && c.peer.is_choking_peer() && unchoked < self.config.unchoke_slots
            {
                c.peer.set_choking(false);
                c.last_unchoked = Some(now);
                unchoked += 1;
                changed.push(p);
            }
        }
        for p in changed {
            self.pump(now, p);
            self.flush(now, p);
        }
    }

    // ---- rate limits ---------------------------------------------------------------------

    /// `conn` ran out of rate-limit tokens: pump it again at `at`.
    pub(super) fn wait_for_tokens(&mut self, conn: ConnId, at: Instant) {
        if !self.rate_waiters.contains(&conn) {
            self.rate_waiters.push(conn);
        }
        self.rate_wakeup = Some(self.rate_wakeup.map_or(at, |w| w.min(at)));
    }

    /// Tokens are back: the waiting connections may request and read again.
    pub(super) fn rate_wake(&mut self, now: Instant) {
        self.rate_wakeup = None;
        for conn in std::mem::take(&mut self.rate_waiters) {
            self.pump(now, conn);
            self.flush(now, conn);
        }
    }

    /// The torrent a command names, after the drain check every command starts with.
    pub(super) fn command_target(
        &mut self,
        torrent: TorrentId,
    ) -> Result<&mut crate::torrent::Torrent, CommandError> {
        self.assert_drained();
        self.torrents
            .get_mut(torrent.0)
            .ok_or(CommandError::UnknownTorrent)
    }

    /// Keeps every connection of a torrent busy after its settings changed.
    pub(super) fn pump_torrent(&mut self, now: Instant, torrent: TorrentId) {
        let peers = self
            .torrents
            .get(torrent.0)
            .map(|t| t.peers.clone())
            .unwrap_or_default();
        for p in peers {
            self.pump(now, p);
            self.flush(now, p);
        }
        self.note_state(torrent);
    }
}
