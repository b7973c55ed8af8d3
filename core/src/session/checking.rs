//! Checking the data already on disk: every piece to check (all of them, or those resume data
//! leaves in doubt) is read ([`DiskCmd::Read`] of the whole piece) and hashed ([`HashJob`]);
//! pieces whose hash matches are had.
//!
//! At most [`MAX_CHECKS_IN_FLIGHT`] pieces are read or hashed at once, within the session's
//! disk-read budget ([`Config::max_disk_read_bytes`](super::Config), shared with uploads; one
//! piece always goes, however large). A read that fails (the file is missing, shorter than
//! the piece, unreadable) means the piece is missing, not that the torrent failed: checking
//! is how we find out what is there. Progress is reported with [`Event::CheckingProgress`]
//! whenever the whole percentage changes, and at the end.

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::id::{RequestId, TorrentId};
use crate::time::Instant;

use super::v2::Verdict;
use super::{DiskCmd, DiskDone, Event, HashJob, Job, Output, Session, StorageError};

/// The most pieces being read or hashed at once per torrent.
pub(crate) const MAX_CHECKS_IN_FLIGHT: u32 = 4;

/// A check in progress.
#[derive(Clone, Debug)]
pub(crate) struct Checking {
    /// The pieces not checked yet (in flight included).
    pub(crate) todo: Bitfield,
    /// Where to look for the next piece to read.
    next: u32,
    /// Pieces read or hashed now.
    in_flight: u32,
    /// Pieces done.
    pub(crate) checked: u32,
    /// Pieces to check in all.
    pub(crate) total: u32,
    /// The last percentage reported.
    reported: Option<u32>,
}

impl Session {
    /// Starts checking `pieces` of a torrent's files (called when it is added).
    pub(super) fn start_check(&mut self, now: Instant, torrent: TorrentId, pieces: Bitfield) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        t.checking = Some(Checking {
            total: pieces.count(),
            todo: pieces,
            next: 0,
            in_flight: 0,
            checked: 0,
            reported: None,
        });
        self.note_state(torrent);
        self.issue_checks(now, torrent);
    }

    /// Issues reads for the next pieces to check, within the bounds.
    pub(super) fn issue_checks(&mut self, now: Instant, torrent: TorrentId) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        if t.paused || t.error.is_some() {
            return;
        }
        let Some(c) = t.checking.as_mut() else {
            return;
        };
        let layout = t.info.layout();
        if c.checked >= c.total {
            self.finish_check(now, torrent);
            return;
        }
        let count = layout.piece_count();
        while c.in_flight < MAX_CHECKS_IN_FLIGHT {
            while c.next < count && !c.todo.get(c.next) {
                c.next += 1;
            }
            let Some(piece) = layout.piece(c.next) else {
                break;
            };
            let length = layout.piece_size(piece);
            let budget_left = self.disk_read_bytes < self.config.max_disk_read_bytes
                && self.config.max_disk_read_bytes - self.disk_read_bytes >= u64::from(length);
            if c.in_flight > 0 && !budget_left {
                break;
            }
            c.next += 1;
            c.in_flight += 1;
            self.disk_read_bytes += u64::from(length);
            let req = RequestId(self.next_request);
            self.next_request += 1;
            self.jobs.insert(
                req,
                Job::CheckRead {
                    torrent,
                    piece: piece.get(),
                    length,
                },
            );
            self.outputs.push_back(Output::Disk(DiskCmd::Read {
                req,
                torrent,
                spans: layout.piece_spans(piece).collect(),
                length,
            }));
        }
    }

    /// A checking read finished: hash what was read, or count the piece as missing.
    pub(super) fn on_check_read(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        length: u32,
        result: Result<DiskDone, StorageError>,
    ) {
        self.disk_read_bytes = self.disk_read_bytes.saturating_sub(u64::from(length));
        match result {
            Ok(DiskDone::Read(data)) if data.len() == length as usize => {
                self.hash_for_check(torrent, piece, data);
            }
            // A missing or short file, or anything unreadable: the piece is not there.
            _ => self.piece_checked(now, torrent, piece, false),
        }
        // The read budget is shared: uploads waiting for it may go now.
        self.issue_checks(now, torrent);
    }

    fn hash_for_check(&mut self, torrent: TorrentId, piece: u32, data: Bytes) {
        let req = RequestId(self.next_request);
        self.next_request += 1;
        let Some(index) = self
            .torrents
            .get(torrent.0)
            .and_then(|t| t.info.layout().piece(piece))
        else {
            return;
        };
        let algorithm =
            super::v2::algorithm(&self.torrents.get(torrent.0).expect("above").info, index);
        self.jobs.insert(req, Job::CheckHash { torrent, piece });
        self.outputs.push_back(Output::Hash(HashJob {
            req,
            algorithm,
            data: vec![data],
        }));
    }

    /// A checking hash finished.
    pub(super) fn on_check_hashed(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        digest: super::Digest,
    ) {
        let verdict = self.torrents.get(torrent.0).and_then(|t| {
            let index = t.info.layout().piece(piece)?;
            Some(super::v2::verdict(&t.info, t.v2.as_ref(), index, &digest))
        });
        let ok = verdict == Some(Verdict::Pass);
        self.piece_checked(now, torrent, piece, ok);
        if let Some(Verdict::Conflict { v1_ok }) = verdict {
            // Data on disk that matches one view only: the torrent itself is inconsistent.
            self.hybrid_conflict(now, torrent, piece, v1_ok);
            return;
        }
        self.issue_checks(now, torrent);
    }

    fn piece_checked(&mut self, now: Instant, torrent: TorrentId, piece: u32, have: bool) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(c) = t.checking.as_mut() else {
            return;
        };
        c.in_flight = c.in_flight.saturating_sub(1);
        c.checked += 1;
        c.todo.set(piece, false);
        let (checked, total) = (c.checked, c.total);
        let percent = (u64::from(checked) * 100 / u64::from(total.max(1))) as u32;
        let report = c.reported != Some(percent);
        c.reported = Some(percent);
        if have && !t.have.get(piece) {
            t.have.set(piece, true);
            t.picker.piece_done(piece);
        }
        if report {
            self.outputs
                .push_back(Output::Event(Event::CheckingProgress {
                    torrent,
                    checked,
                    total,
                }));
        }
        if checked >= total {
            self.finish_check(now, torrent);
        }
    }

    /// Every piece is checked: the torrent downloads or seeds.
    fn finish_check(&mut self, now: Instant, torrent: TorrentId) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        if t.checking.take().is_none() {
            return;
        }
        t.finished = t.picker.is_finished();
        self.note_state(torrent);
        self.pump_torrent(now, torrent);
    }
}
