//! The extension protocol inside the session (BEP 10): our extension handshake, and the
//! dispatch of extended messages to the extensions (ut_metadata in [`super::metadata`]).
//!
//! Per-connection extension state lives in [`ExtState::conns`], created when a connection
//! completes the handshake and dropped when it closes.

use std::collections::HashMap;

use bytes::Bytes;

use super::metadata::MagnetFetch;
use super::Session;
use crate::ext::names;
use crate::id::{ConnId, TorrentId};
use crate::time::Instant;
use crate::wire::ExtendedHandshake;

/// The session's extension state.
#[derive(Debug, Default)]
pub(super) struct ExtState {
    /// Torrents added from magnet links, while their metadata is fetched.
    pub(super) magnets: HashMap<TorrentId, MagnetFetch>,
    /// Extension state of each established connection.
    pub(super) conns: HashMap<ConnId, ConnExt>,
}

/// One connection's extension state.
#[derive(Debug, Default)]
pub(super) struct ConnExt {
    /// Metadata pieces served to the peer (BEP 9).
    pub(super) metadata_served: u32,
}

impl Session {
    /// Whether a torrent is private (BEP 27): no PEX, tracker exchange or LSD for it. Magnet
    /// torrents are not known to be private until their metadata arrives.
    pub(super) fn is_private(&self, torrent: TorrentId) -> bool {
        self.torrents
            .get(torrent.0)
            .is_some_and(|t| t.info.is_private())
    }

    /// Our extension handshake for a connection of `torrent`: the extensions we speak (not
    /// `ut_pex` and `lt_tex` for a private torrent, BEP 27) and the metadata size once known
    /// (BEP 9).
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
        ext
    }

    /// A connection completed the handshake.
    pub(super) fn ext_conn_established(
        &mut self,
        _now: Instant,
        _torrent: TorrentId,
        conn: ConnId,
    ) {
        self.ext.conns.entry(conn).or_default();
    }

    /// A connection closed.
    pub(super) fn ext_conn_closed(
        &mut self,
        now: Instant,
        torrent: Option<TorrentId>,
        conn: ConnId,
    ) {
        self.ext.conns.remove(&conn);
        if let Some(torrent) = torrent {
            self.magnet_conn_closed(now, torrent, conn);
        }
    }

    /// The peer sent its extension handshake.
    pub(super) fn on_extended_handshake(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        _conn: ConnId,
    ) {
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
            // Extensions we do not speak, and ids we never assigned, are ignored (BEP 10).
            _ => {}
        }
    }

    /// A magnet torrent became a full torrent.
    pub(super) fn ext_metadata_installed(&mut self, _now: Instant, _torrent: TorrentId) {}

    /// The earliest extension deadline.
    pub(super) fn ext_deadline(&self) -> Option<Instant> {
        self.magnet_deadline()
    }

    /// Runs the extension timers due at `now`.
    pub(super) fn ext_timeout(&mut self, now: Instant) {
        if self.ext_deadline().is_some_and(|t| t <= now) {
            self.magnet_timeout(now);
        }
    }
}
