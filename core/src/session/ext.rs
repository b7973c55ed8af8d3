//! The extension protocol inside the session (BEP 10): our extension handshake, the dispatch
//! of extended messages, and the small extensions: BEP 11 peer exchange, BEP 21 upload-only,
//! BEP 54 "don't have". (ut_metadata is in `metadata.rs`, holepunch and tracker exchange in
//! `ext_more.rs`.)
//!
//! Per-connection extension state lives in [`ExtState::conns`], created when a connection
//! completes the handshake and dropped when it closes.
//!
//! # Peer exchange (BEP 11)
//!
//! A connection whose peer offers `ut_pex` gets a [`PexState`]; every
//! [`PEX_CHECK_INTERVAL`] the session offers each one the torrent's connected peers (their
//! listen addresses: ours for outgoing connections, the `p` of their extension handshake for
//! incoming ones), and the state sends what changed, at most once per [`PEX_INTERVAL`](crate::ext::pex::PEX_INTERVAL).
//! Received messages are ignored when they come sooner than [`MIN_PEX_GAP`] after the
//! previous one from the same peer (a flood), are capped by the decoder, and their peers are
//! remembered (at most [`MAX_LEARNED`] per torrent) and dialled within the torrent's
//! connection budget, in BEP 40 priority order once our address is known. None of this
//! happens for a private torrent (BEP 27): `ut_pex` is not offered and messages are ignored.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::metadata::MagnetFetch;
use super::{CommandError, Session};
use crate::ext::donthave::DontHave;
use crate::ext::upload_only::UploadOnly;
use crate::ext::{names, peer_priority, PexFlags, PexMessage, PexState};
use crate::id::{ConnId, TorrentId};
use crate::time::{Duration, Instant};
use crate::wire::ExtendedHandshake;

/// How often the session looks for PEX messages to send (each peer still hears at most one
/// per [`PEX_INTERVAL`](crate::ext::pex::PEX_INTERVAL)).
pub const PEX_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How soon after a peer's extension handshake it hears its first PEX message.
const PEX_FIRST_DELAY: Duration = Duration::from_secs(1);
/// The shortest gap between two PEX messages from one peer that we act on (BEP 11 allows one
/// a minute; a little slack for timers).
pub const MIN_PEX_GAP: Duration = Duration::from_secs(45);
/// The most peers remembered per torrent from PEX.
pub const MAX_LEARNED: usize = 1000;

/// The session's extension state.
#[derive(Debug, Default)]
pub(super) struct ExtState {
    /// Torrents added from magnet links, while their metadata is fetched.
    pub(super) magnets: BTreeMap<TorrentId, MagnetFetch>,
    /// Extension state of each established connection.
    pub(super) conns: BTreeMap<ConnId, ConnExt>,
    /// When PEX messages are next looked for; `None` while no connection speaks PEX.
    next_pex: Option<Instant>,
    /// Peers learned from PEX, per torrent, with their flags.
    pub(super) learned: BTreeMap<TorrentId, BTreeMap<SocketAddr, PexFlags>>,
    /// Our address as peers see it (their `yourip`), for BEP 40 priorities.
    pub(super) our_ip: Option<IpAddr>,
    /// Holepunch and tracker exchange.
    pub(super) more: super::ext_more::ExtMore,
}

/// One connection's extension state.
#[derive(Debug, Default)]
pub(super) struct ConnExt {
    /// Metadata pieces served to the peer (BEP 9).
    pub(super) metadata_served: u32,
    /// What PEX has told the peer (BEP 11), if it speaks PEX and the torrent is public.
    pex: Option<PexState>,
    /// When the peer's last PEX message that we acted on arrived.
    last_pex_in: Option<Instant>,
    /// The upload-only state we last told the peer (BEP 21).
    sent_upload_only: Option<bool>,
}

impl Session {
    /// Whether a torrent is private (BEP 27): no PEX, tracker exchange or LSD for it. Magnet
    /// torrents are not known to be private until their metadata arrives.
    pub(super) fn is_private(&self, torrent: TorrentId) -> bool {
        self.torrents
            .get(torrent.0)
            .is_some_and(|t| t.info.is_private())
    }

    /// Whether we only upload a torrent (BEP 21): every piece is stored. (A torrent finished
    /// with skipped files does not say so: seeds would drop it, and the files may be wanted
    /// again.)
    fn upload_only(&self, torrent: TorrentId) -> bool {
        self.torrents
            .get(torrent.0)
            .is_some_and(|t| t.finished && t.have.is_full())
    }

    /// The established connections of a torrent, magnet or not.
    pub(super) fn torrent_conns(&self, torrent: TorrentId) -> Vec<ConnId> {
        match self.torrents.get(torrent.0) {
            Some(t) => t.peers.clone(),
            None => self
                .ext
                .magnets
                .get(&torrent)
                .map(|m| m.conns.clone())
                .unwrap_or_default(),
        }
    }

    /// Our extension handshake for a connection of `torrent`: the extensions we speak (not
    /// `ut_pex` and `lt_tex` for a private torrent, BEP 27), the metadata size once known
    /// (BEP 9), whether we only upload (BEP 21).
    pub(super) fn extended_handshake_for(&self, torrent: TorrentId) -> ExtendedHandshake {
        let mut ext = self.extended_handshake();
        let private = self.is_private(torrent);
        for &(name, id) in names::LOCAL_IDS {
            if private && (name == names::UT_PEX || name == names::LT_TEX) {
                continue;
            }
            ext.extensions.insert(name.to_vec(), id);
        }
        if let Some(t) = self.torrents.get(torrent.0) {
            ext.metadata_size = Some(t.info.raw().len() as u64);
        }
        ext.upload_only = self.upload_only(torrent);
        ext
    }

    /// A connection completed the handshake.
    pub(super) fn ext_conn_established(&mut self, _now: Instant, torrent: TorrentId, conn: ConnId) {
        let upload_only = self.upload_only(torrent);
        let e = self.ext.conns.entry(conn).or_default();
        e.sent_upload_only = Some(upload_only);
    }

    /// A connection closed.
    pub(super) fn ext_conn_closed(
        &mut self,
        now: Instant,
        torrent: Option<TorrentId>,
        conn: ConnId,
    ) {
        self.ext.conns.remove(&conn);
        self.ext_more_conn_closed(conn);
        if let Some(torrent) = torrent {
            self.magnet_conn_closed(now, torrent, conn);
        }
    }

    /// The peer sent its extension handshake.
    pub(super) fn on_extended_handshake(&mut self, now: Instant, torrent: TorrentId, conn: ConnId) {
        let Some(c) = self.conns.get(conn.0) else {
            return;
        };
        let your_ip = c
            .peer
            .remote()
            .and_then(|r| r.extended.as_ref())
            .and_then(|e| e.your_ip);
        let offers_pex = c.peer.remote_extension(names::UT_PEX).is_some();
        if let Some(ip) = your_ip.filter(|ip| !ip.is_unspecified()) {
            self.ext.our_ip = Some(ip);
        }
        // BEP 27: never PEX for a private torrent.
        if offers_pex && !self.is_private(torrent) {
            let addr = c.peer.addr();
            if let Some(e) = self.ext.conns.get_mut(&conn) {
                e.pex.get_or_insert_with(|| PexState::new(addr));
                // The first message goes soon after the handshake.
                let first = now + PEX_FIRST_DELAY;
                self.ext.next_pex = Some(self.ext.next_pex.map_or(first, |t| t.min(first)));
            }
        }
        self.tex_peer_ready(now, torrent, conn);
        if self.is_magnet(torrent) {
            self.magnet_peer_ready(now, torrent);
        }
    }

    /// An extended message other than the handshake, by the id we assigned (BEP 10).
    pub(super) fn on_extended(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        id: u8,
        payload: &Bytes,
    ) {
        match names::local_name(id) {
            Some(name) if name == names::UT_METADATA => {
                self.on_metadata_message(now, torrent, conn, payload);
            }
            Some(name) if name == names::UT_PEX => self.on_pex(now, torrent, conn, payload),
            Some(name) if name == names::UPLOAD_ONLY => {
                if let (Ok(UploadOnly(on)), Some(c)) =
                    (UploadOnly::decode(payload), self.conns.get_mut(conn.0))
                {
                    c.peer.set_remote_upload_only(on);
                }
            }
            Some(name) if name == names::LT_DONTHAVE => {
                if let (Ok(DontHave { piece }), Some(c)) =
                    (DontHave::decode(payload), self.conns.get_mut(conn.0))
                {
                    c.peer.forget_piece(piece);
                }
            }
            Some(name) if name == names::UT_HOLEPUNCH => {
                self.on_holepunch(now, torrent, conn, payload);
            }
            Some(name) if name == names::LT_TEX => self.on_tex(now, torrent, conn, payload),
            // Ids we never assigned are ignored (BEP 10).
            _ => {}
        }
    }

    /// A magnet torrent became a full torrent: a private one stops PEX at once (BEP 27).
    pub(super) fn ext_metadata_installed(&mut self, _now: Instant, torrent: TorrentId) {
        if self.is_private(torrent) {
            for conn in self.torrent_conns(torrent) {
                if let Some(e) = self.ext.conns.get_mut(&conn) {
                    e.pex = None;
                }
            }
            self.ext.learned.remove(&torrent);
        }
    }

    /// The torrent's state changed: tell peers whether we only upload now (BEP 21).
    pub(super) fn ext_state_changed(&mut self, now: Instant, torrent: TorrentId) {
        let upload_only = self.upload_only(torrent);
        for conn in self.torrent_conns(torrent) {
            let Some(e) = self.ext.conns.get_mut(&conn) else {
                continue;
            };
            if e.sent_upload_only == Some(upload_only) {
                continue;
            }
            let Some(c) = self.conns.get_mut(conn.0) else {
                continue;
            };
            let Some(id) = c.peer.remote_extension(names::UPLOAD_ONLY) else {
                continue;
            };
            e.sent_upload_only = Some(upload_only);
            let mut payload = Vec::new();
            UploadOnly(upload_only).encode(&mut payload);
            c.peer.send_extended(id, &payload, None);
            self.flush(now, conn);
        }
    }

    // ---- BEP 54 ---------------------------------------------------------------------------

    /// Tells the session that a file of a torrent is gone or damaged (deleted behind our back,
    /// a failed read): the pieces holding its bytes are no longer had, peers that speak
    /// BEP 54 hear `lt_donthave` for each, and the pieces are downloaded again. Returns how
    /// many pieces were lost.
    pub fn file_lost(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        file: usize,
    ) -> Result<u32, CommandError> {
        let t = self.command_target(torrent)?;
        let files = t.info.files().len();
        let Some(pieces) = t.info.layout().file_pieces(file) else {
            return Err(CommandError::FileOutOfRange { file, files });
        };
        let mut lost = Vec::new();
        for piece in pieces {
            if t.have.get(piece) {
                t.have.set(piece, false);
                t.picker.piece_lost(piece);
                lost.push(piece);
            }
        }
        t.finished = t.picker.is_finished();
        let peers = t.peers.clone();
        for conn in peers {
            let Some(c) = self.conns.get_mut(conn.0) else {
                continue;
            };
            let Some(id) = c.peer.remote_extension(names::LT_DONTHAVE) else {
                continue;
            };
            for &piece in &lost {
                let mut payload = Vec::new();
                DontHave { piece }.encode(&mut payload);
                c.peer.send_extended(id, &payload, None);
            }
        }
        self.pump_torrent(now, torrent);
        Ok(lost.len() as u32)
    }

    // ---- BEP 11 ---------------------------------------------------------------------------

    /// A `ut_pex` message.
    fn on_pex(&mut self, now: Instant, torrent: TorrentId, conn: ConnId, payload: &Bytes) {
        if self.is_private(torrent) {
            return;
        }
        let Some(e) = self.ext.conns.get_mut(&conn) else {
            return;
        };
        if e.last_pex_in.is_some_and(|t| now < t + MIN_PEX_GAP) {
            return; // BEP 11: at most one a minute; more is a flood
        }
        e.last_pex_in = Some(now);
        let Ok(message) = PexMessage::decode(payload) else {
            return;
        };
        let learned = self.ext.learned.entry(torrent).or_default();
        for addr in &message.dropped {
            learned.remove(addr);
        }
        let mut fresh: Vec<SocketAddr> = Vec::new();
        for &(addr, flags) in &message.added {
            if addr.port() == 0 || addr.ip().is_unspecified() {
                continue;
            }
            if learned.len() < MAX_LEARNED || learned.contains_key(&addr) {
                learned.insert(addr, flags);
                fresh.push(addr);
            }
        }
        // BEP 40: the peers with the highest priority for us first.
        if let Some(ip) = self.ext.our_ip {
            let ours = SocketAddr::new(ip, self.config.listen_port.unwrap_or(0));
            fresh.sort_by_key(|a| std::cmp::Reverse(peer_priority(ours, *a)));
        }
        self.dial_peers(now, torrent, &fresh);
    }

    /// Sends the PEX messages that are due.
    fn pex_tick(&mut self, now: Instant) {
        let mut by_torrent: BTreeMap<TorrentId, Vec<(SocketAddr, PexFlags)>> = BTreeMap::new();
        let pex_conns: Vec<ConnId> = self
            .ext
            .conns
            .iter()
            .filter(|(_, e)| e.pex.is_some())
            .map(|(c, _)| *c)
            .collect();
        for &conn in &pex_conns {
            let Some(torrent) = self.conns.get(conn.0).and_then(|c| c.torrent) else {
                continue;
            };
            let list = by_torrent
                .entry(torrent)
                .or_insert_with(|| self.pex_list(torrent))
                .clone();
            let (Some(e), Some(c)) = (self.ext.conns.get_mut(&conn), self.conns.get_mut(conn.0))
            else {
                continue;
            };
            let Some(id) = c.peer.remote_extension(names::UT_PEX) else {
                continue;
            };
            let Some(message) = e.pex.as_mut().and_then(|p| p.next_message(now, list)) else {
                continue;
            };
            let mut payload = Vec::new();
            message.encode(&mut payload);
            c.peer.send_extended(id, &payload, None);
            self.flush(now, conn);
        }
        self.ext.next_pex = (!pex_conns.is_empty()).then(|| now + PEX_CHECK_INTERVAL);
    }

    /// A torrent's connected peers as PEX lists them: listen addresses and flags.
    fn pex_list(&self, torrent: TorrentId) -> Vec<(SocketAddr, PexFlags)> {
        self.torrent_conns(torrent)
            .iter()
            .filter_map(|conn| {
                let c = self.conns.get(conn.0)?;
                let p = &c.peer;
                let ext = p.remote().and_then(|r| r.extended.as_ref());
                let addr = if p.is_outgoing() {
                    p.addr()
                } else {
                    SocketAddr::new(p.addr().ip(), ext?.listen_port?)
                };
                let mut flags = PexFlags::NONE;
                if p.is_outgoing() {
                    flags = flags.union(PexFlags::REACHABLE);
                }
                let seed = p.peer_has().is_some_and(|h| h.is_full());
                if seed || ext.is_some_and(|e| e.upload_only) {
                    flags = flags.union(PexFlags::SEED);
                }
                if p.remote_extension(names::UT_HOLEPUNCH).is_some() {
                    flags = flags.union(PexFlags::HOLEPUNCH);
                }
                Some((addr, flags))
            })
            .collect()
    }

    // ---- timers ---------------------------------------------------------------------------

    /// The earliest extension deadline.
    pub(super) fn ext_deadline(&self) -> Option<Instant> {
        self.magnet_deadline()
            .into_iter()
            .chain(self.ext.next_pex)
            .chain(self.ext_more_deadline())
            .min()
    }

    /// Runs the extension timers due at `now`.
    pub(super) fn ext_timeout(&mut self, now: Instant) {
        if self.magnet_deadline().is_some_and(|t| t <= now) {
            self.magnet_timeout(now);
        }
        if self.ext.next_pex.is_some_and(|t| t <= now) {
            self.pex_tick(now);
        }
        self.ext_more_timeout(now);
    }
}
