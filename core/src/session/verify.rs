//! Piece verification: a downloaded piece's hash result and writes decide whether it is had,
//! re-downloaded, or convicts a peer (smart ban, see [`crate::smart_ban`]).
//!
//! - Hash matched and every write succeeded: the piece is had, `have` goes to every peer of
//!   the torrent once, and earlier failed attempts of the piece are compared block by block with
//!   the good data: senders of differing blocks are banned.
//! - Hash failed: the piece is downloaded again. If one peer sent every block it is banned at
//!   once; otherwise each block's digest and sender are remembered and the next attempt takes
//!   all blocks from a single peer ([`Picker::set_exclusive`](crate::picker::Picker::set_exclusive)),
//!   so a peer that only sends bad data is found within two attempts and never stalls the
//!   download.
//! - A write failed: the piece is not had (it is downloaded again once the torrent resumes);
//!   the storage error itself stopped the torrent already.
//!
//! A banned peer's blocks of pieces still in progress are thrown away and downloaded again
//! from others ([`Picker::forget_block`](crate::picker::Picker::forget_block)), so no later
//! attempt mixes its data with an honest peer's. A thrown-away block whose write may still be
//! in flight is written once more after every write of its piece has landed, before the piece
//! counts as had: a runtime may run writes on several threads, and the suspect data must not
//! land last.
//!
//! A banned peer is disconnected with [`DisconnectReason::Banned`], reported with
//! [`Event::PeerBanned`], and its IP address and peer id are refused for this torrent from
//! then on (outgoing: [`ConnectError::Banned`](super::ConnectError::Banned); incoming, or an
//! outgoing connection answered by the banned peer id: at the handshake). Addresses are what
//! libtorrent bans too; peers sharing the address are refused with it.

use std::net::IpAddr;

use crate::id::{ConnId, TorrentId};
use crate::peer::DisconnectReason;
use crate::time::Instant;
use crate::torrent::PieceBuf;

use super::v2::Verdict;
use super::{Digest, Event, Output, Session};

/// The most addresses banned per torrent; past it the ban list stops growing (each entry
/// costs a peer a piece of bad data, so this is far beyond any real swarm).
const MAX_BANNED: usize = 65_536;

impl Session {
    /// A downloaded piece's hash result.
    pub(super) fn on_piece_hashed(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        digest: Digest,
    ) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(index) = t.info.layout().piece(piece) else {
            return;
        };
        let ok = match super::v2::verdict(&t.info, t.v2.as_ref(), index, &digest) {
            Verdict::Pass => true,
            Verdict::Fail => false,
            Verdict::Conflict { v1_ok } => {
                t.pieces.remove(&piece);
                t.picker.piece_failed(piece);
                self.hybrid_conflict(now, torrent, piece, v1_ok);
                return;
            }
        };
        if let Some(buf) = t.pieces.get_mut(&piece) {
            buf.hash_ok = Some(ok);
        }
        if ok {
            // BEP 52: peers we sent its blocks may ask for its leaf hashes.
            self.leaves_verified(torrent, piece, digest);
        } else {
            // Ask peers for the piece's leaf hashes to find its bad blocks (v2).
            self.v2_piece_failed(torrent, piece, &digest);
        }
        self.settle_piece(now, torrent, piece);
    }

    /// Decides a piece once its hash result is in and its writes are done.
    pub(super) fn settle_piece(&mut self, now: Instant, torrent: TorrentId, piece: u32) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(buf) = t.pieces.get(&piece) else {
            return;
        };
        let Some(hash_ok) = buf.hash_ok else {
            return;
        };
        if buf.pending_writes > 0 {
            return;
        }
        if hash_ok && !buf.write_failed && !buf.rewrite.is_empty() {
            // Every earlier write has landed: the kept data of thrown-away blocks goes last.
            self.rewrite_blocks(torrent, piece);
            return;
        }
        let buf = t.pieces.remove(&piece).expect("looked up above");
        if !hash_ok {
            self.hash_failed(now, torrent, piece, &buf);
        } else if buf.write_failed {
            // Not had; the storage error stopped the torrent already.
            t.picker.piece_failed(piece);
        } else {
            self.piece_passed(now, torrent, piece, &buf);
        }
        self.pump_torrent(now, torrent);
    }

    fn piece_passed(&mut self, now: Instant, torrent: TorrentId, piece: u32, buf: &PieceBuf) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        t.picker.piece_done(piece);
        t.have.set(piece, true);
        t.pieces_verified += 1;
        self.outputs
            .push_back(Output::Event(Event::PieceVerified { torrent, piece }));
        let blocks: Vec<&[u8]> = buf.blocks.iter().flatten().map(|b| &b[..]).collect();
        let guilty = t.smart_ban.piece_passed(piece, &blocks);
        let newly_finished = t.picker.is_finished() && !t.finished;
        if newly_finished {
            t.finished = true;
            self.outputs
                .push_back(Output::Event(Event::TorrentFinished { torrent }));
        }
        // BEP 3: every peer hears `have` once, when the piece is verified and stored.
        let peers = t.peers.clone();
        for p in &peers {
            if let Some(c) = self.conns.get_mut(p.0) {
                c.peer.send_have(piece);
            }
        }
        for ip in guilty {
            self.ban(now, torrent, ip);
        }
        if newly_finished {
            self.drop_seeds(now, torrent);
        }
    }

    fn hash_failed(&mut self, now: Instant, torrent: TorrentId, piece: u32, buf: &PieceBuf) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        t.picker.piece_failed(piece);
        t.pieces_failed += 1;
        self.outputs
            .push_back(Output::Event(Event::HashFailed { torrent, piece }));
        let blocks: Vec<Option<(IpAddr, &[u8])>> = buf
            .blocks
            .iter()
            .zip(&buf.senders)
            .map(|(b, s)| Some(((*s)?, &b.as_ref()?[..])))
            .collect();
        let failed = t.smart_ban.piece_failed(piece, &blocks);
        if failed.retry_exclusive {
            t.picker.set_exclusive(piece);
        }
        for ip in failed.guilty {
            self.ban(now, torrent, ip);
        }
    }

    /// A hybrid torrent's two views disagree about a piece (BEP 52 "Upgrade Path"): the
    /// torrent is inconsistent, not the peer, so it stops in the error state with the reason.
    pub(super) fn hybrid_conflict(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: u32,
        v1_ok: bool,
    ) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        if t.error.is_some() {
            return;
        }
        let file = t
            .info
            .layout()
            .piece(piece)
            .and_then(|p| super::v2::piece_file(&t.info, p))
            .map(|(f, _)| f);
        t.error = Some(super::TorrentError::HybridConflict { piece, file, v1_ok });
        self.outputs.push_back(Output::Event(Event::HybridConflict {
            torrent,
            piece,
            v1_ok,
        }));
        self.close_torrent_conns(now, torrent, DisconnectReason::TorrentStopped);
        self.note_state(torrent);
    }

    /// Bans `ip` from `torrent`: disconnects its connections and refuses it from now on.
    pub(super) fn ban(&mut self, now: Instant, torrent: TorrentId, ip: IpAddr) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        if t.banned.contains(&ip) {
            return;
        }
        if t.banned.len() < MAX_BANNED {
            t.banned.insert(ip);
        }
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(torrent) && c.peer.addr().ip() == ip)
            .map(|(k, _)| ConnId(k))
            .collect();
        let peer_id = conns
            .iter()
            .find_map(|c| self.conns.get(c.0)?.peer.remote().map(|r| r.peer_id));
        if let (Some(id), Some(t)) = (peer_id, self.torrents.get_mut(torrent.0)) {
            if t.banned_ids.len() < MAX_BANNED {
                t.banned_ids.insert(id);
            }
        }
        self.outputs.push_back(Output::Event(Event::PeerBanned {
            torrent,
            ip,
            peer_id,
        }));
        // Its blocks of pieces still in progress (from any of its connections, gone ones too)
        // are suspect: download them again from others.
        if let Some(t) = self.torrents.get_mut(torrent.0) {
            for (&piece, buf) in t.pieces.iter_mut() {
                for block in 0..buf.senders.len() {
                    if buf.senders[block] == Some(ip) && t.picker.forget_block(piece, block as u32)
                    {
                        buf.forget(block);
                    }
                }
            }
        }
        for conn in conns {
            self.close_conn(now, conn, DisconnectReason::Banned, true);
        }
    }

    /// Whether `ip` or `peer_id` is banned from `torrent`.
    pub(super) fn is_banned(
        &self,
        torrent: TorrentId,
        ip: Option<IpAddr>,
        peer_id: &crate::id::PeerId,
    ) -> bool {
        self.torrents.get(torrent.0).is_some_and(|t| {
            ip.is_some_and(|ip| t.banned.contains(&ip)) || t.banned_ids.contains(peer_id)
        })
    }
}
