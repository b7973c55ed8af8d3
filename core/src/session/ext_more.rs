//! BEP 55 holepunching and BEP 28 tracker exchange inside the session.
//!
//! # Holepunch (BEP 55)
//!
//! - As a **relay**: a `rendezvous` for address T from peer A is answered with `connect` to
//!   both sides (T learns A's listen address, A learns T) when T is connected to us on the
//!   same torrent and offers `ut_holepunch`; otherwise A hears `error` (no such peer, not
//!   connected... as the BEP numbers them; T being ourselves is `NoSelf`).
//! - As an **initiator**: [`Session::holepunch`] asks a connected peer that offers the
//!   extension to introduce us to an address.
//! - On a **connect** for address X: we dial X, but only if we heard of X before (PEX, a
//!   rendezvous we asked for, a tracker): a relay cannot make us connect anywhere it likes.
//!   At most [`MAX_HOLEPUNCH_CONNECTS`] per relay connection are acted on.
//! - **Errors** end our pending rendezvous for that address.
//!
//! # Tracker exchange (BEP 28)
//!
//! Peers that offer `lt_tex` (never for a private torrent) hear the trackers that answered our
//! announces, at most every [`TEX_INTERVAL`](crate::ext::tex::TEX_INTERVAL); trackers they
//! tell us are added, each as a tier of its own, up to [`MAX_TEX_TRACKERS`] per torrent, and
//! only `http`, `https` and `udp` URLs.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;

use super::{ConnectError, Session};
use crate::ext::holepunch::{HolepunchError, HolepunchMessage};
use crate::ext::names;
use crate::ext::tex::{TexMessage, TexState};
use crate::id::{ConnId, TorrentId};
use crate::time::{Duration, Instant};
use crate::tracker::TrackerUrl;

/// The most trackers tracker exchange adds to one torrent.
pub const MAX_TEX_TRACKERS: usize = 10;
/// The most `connect` messages acted on per relay connection.
pub const MAX_HOLEPUNCH_CONNECTS: u32 = 32;
/// How long a rendezvous we asked for waits for its `connect`.
const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often tracker exchange looks for trackers to tell.
const TEX_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Holepunch and tracker-exchange state of the session.
#[derive(Debug, Default)]
pub(super) struct ExtMore {
    /// Rendezvous we asked for, per torrent and address, until when.
    rendezvous: BTreeMap<(TorrentId, SocketAddr), Instant>,
    /// `connect` messages acted on, per relay connection.
    connects: BTreeMap<ConnId, u32>,
    /// Tracker-exchange state per connection whose peer offers `lt_tex`.
    tex: BTreeMap<ConnId, TexState>,
    /// Trackers added from tracker exchange, per torrent.
    tex_added: BTreeMap<TorrentId, usize>,
    next_tex: Option<Instant>,
}

impl Session {
    /// Asks `relay` (a connection of `torrent` whose peer offers `ut_holepunch`) to introduce
    /// us to `target`, a peer it is connected to that cannot accept our connections (BEP 55).
    /// When the relay answers with `connect`, we dial `target` while it dials us.
    pub fn holepunch(
        &mut self,
        now: Instant,
        relay: ConnId,
        target: SocketAddr,
    ) -> Result<(), ConnectError> {
        self.assert_drained();
        let c = self
            .conns
            .get_mut(relay.0)
            .ok_or(ConnectError::UnknownTorrent)?;
        let torrent = c.torrent.ok_or(ConnectError::UnknownTorrent)?;
        let id = c
            .peer
            .remote_extension(names::UT_HOLEPUNCH)
            .ok_or(ConnectError::TorrentInactive)?;
        let mut payload = Vec::new();
        HolepunchMessage::Rendezvous(target).encode(&mut payload);
        c.peer.send_extended(id, &payload, None);
        if self.ext.more.rendezvous.len() < 1024 {
            self.ext
                .more
                .rendezvous
                .insert((torrent, target), now + RENDEZVOUS_TIMEOUT);
        }
        self.flush(now, relay);
        Ok(())
    }

    /// A `ut_holepunch` message.
    pub(super) fn on_holepunch(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        payload: &Bytes,
    ) {
        let Ok(message) = HolepunchMessage::decode(payload) else {
            return; // unknown types and bad lengths are ignored (BEP 55)
        };
        match message {
            HolepunchMessage::Rendezvous(target) => self.relay(now, torrent, conn, target),
            HolepunchMessage::Connect(addr) => {
                let asked = self.ext.more.rendezvous.remove(&(torrent, addr)).is_some();
                let heard = asked
                    || self
                        .ext
                        .learned
                        .get(&torrent)
                        .is_some_and(|l| l.contains_key(&addr));
                let n = self.ext.more.connects.entry(conn).or_insert(0);
                if !heard || *n >= MAX_HOLEPUNCH_CONNECTS {
                    return; // never dial an address only the relay names
                }
                *n += 1;
                let connected = self.conns.iter().any(|(_, c)| {
                    c.torrent == Some(torrent)
                        && (c.peer.addr() == addr || listen_addr(&c.peer) == Some(addr))
                });
                if !connected {
                    let _ = self.connect_inner(now, torrent, addr);
                }
            }
            HolepunchMessage::Error { addr, .. } => {
                self.ext.more.rendezvous.remove(&(torrent, addr));
            }
        }
    }

    /// We relay a rendezvous from `from` to the peer at `target`.
    fn relay(&mut self, now: Instant, torrent: TorrentId, from: ConnId, target: SocketAddr) {
        let ours = self
            .ext
            .our_ip
            .zip(self.config.listen_port)
            .map(|(ip, port)| SocketAddr::new(ip, port));
        let from_addr = self.conns.get(from.0).and_then(|c| listen_addr(&c.peer));
        let found = self.torrent_conns(torrent).into_iter().find(|&c| {
            c != from
                && self.conns.get(c.0).is_some_and(|c| {
                    listen_addr(&c.peer) == Some(target) || c.peer.addr() == target
                })
        });
        let error = if ours == Some(target) {
            Some(HolepunchError::NoSelf)
        } else {
            match (found, from_addr) {
                (None, _) => Some(HolepunchError::NotConnected),
                (Some(t), Some(_))
                    if self.conns.get(t.0).is_some_and(|c| {
                        c.peer.remote_extension(names::UT_HOLEPUNCH).is_some()
                    }) =>
                {
                    None
                }
                (Some(_), Some(_)) => Some(HolepunchError::NoSupport),
                // We cannot tell the target where the initiator listens.
                (Some(_), None) => Some(HolepunchError::NoSuchPeer),
            }
        };
        let send = |s: &mut Self, to: ConnId, m: HolepunchMessage| {
            if let Some(c) = s.conns.get_mut(to.0) {
                if let Some(id) = c.peer.remote_extension(names::UT_HOLEPUNCH) {
                    let mut payload = Vec::new();
                    m.encode(&mut payload);
                    c.peer.send_extended(id, &payload, None);
                }
            }
            s.flush(now, to);
        };
        match (error, found, from_addr) {
            (None, Some(t), Some(from_addr)) => {
                send(self, t, HolepunchMessage::Connect(from_addr));
                send(self, from, HolepunchMessage::Connect(target));
            }
            (Some(error), _, _) => send(
                self,
                from,
                HolepunchMessage::Error {
                    addr: target,
                    error,
                },
            ),
            _ => {}
        }
    }

    // ---- BEP 28 ---------------------------------------------------------------------------

    /// The peer sent its extension handshake: start tracker exchange if it offers it.
    pub(super) fn tex_peer_ready(&mut self, now: Instant, torrent: TorrentId, conn: ConnId) {
        let offers = self
            .conns
            .get(conn.0)
            .is_some_and(|c| c.peer.remote_extension(names::LT_TEX).is_some());
        if offers && !self.is_private(torrent) {
            self.ext.more.tex.entry(conn).or_default();
            // The first message goes soon after the handshake.
            let first = now + Duration::from_secs(1);
            let next = &mut self.ext.more.next_tex;
            *next = Some(next.map_or(first, |t| t.min(first)));
        }
    }

    /// An `lt_tex` message: add the trackers, within limits.
    pub(super) fn on_tex(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        _conn: ConnId,
        payload: &Bytes,
    ) {
        if self.is_private(torrent) {
            return;
        }
        let Ok(message) = TexMessage::decode(payload) else {
            return;
        };
        for url in message.added {
            let added = self.ext.more.tex_added.get(&torrent).copied().unwrap_or(0);
            if added >= MAX_TEX_TRACKERS {
                break;
            }
            if TrackerUrl::parse(&url).is_err() {
                continue;
            }
            if self.trackers_add(now, torrent, &url) {
                *self.ext.more.tex_added.entry(torrent).or_insert(0) += 1;
            }
        }
    }

    /// Sends the tracker-exchange messages that are due.
    fn tex_tick(&mut self, now: Instant) {
        let conns: Vec<ConnId> = self.ext.more.tex.keys().copied().collect();
        for conn in &conns {
            let Some(torrent) = self.conns.get(conn.0).and_then(|c| c.torrent) else {
                continue;
            };
            if self.is_private(torrent) {
                self.ext.more.tex.remove(conn);
                continue;
            }
            let working = self.trackers_working(torrent);
            let Some(state) = self.ext.more.tex.get_mut(conn) else {
                continue;
            };
            let Some(message) = state.next_message(now, working.iter().map(String::as_str)) else {
                continue;
            };
            let Some(c) = self.conns.get_mut(conn.0) else {
                continue;
            };
            if let Some(id) = c.peer.remote_extension(names::LT_TEX) {
                let mut payload = Vec::new();
                message.encode(&mut payload);
                c.peer.send_extended(id, &payload, None);
                self.flush(now, *conn);
            }
        }
        self.ext.more.next_tex = (!self.ext.more.tex.is_empty()).then(|| now + TEX_CHECK_INTERVAL);
    }

    /// Of two connections to the same peer (both sides dialled at once, as after a BEP 55
    /// `connect`), whether the new one `conn` should replace `existing`: both sides keep the
    /// connection opened by the peer with the lower peer id, so they agree on which survives.
    pub(super) fn keep_new_duplicate(
        &self,
        conn: ConnId,
        existing: ConnId,
        theirs: &crate::id::PeerId,
    ) -> bool {
        let (Some(new), Some(old)) = (self.conns.get(conn.0), self.conns.get(existing.0)) else {
            return false;
        };
        if new.peer.is_outgoing() == old.peer.is_outgoing() {
            return false;
        }
        let we_are_lower = self.peer_id.0 < theirs.0;
        new.peer.is_outgoing() == we_are_lower
    }

    /// A connection closed: forget its holepunch and tracker-exchange state.
    pub(super) fn ext_more_conn_closed(&mut self, conn: ConnId) {
        self.ext.more.tex.remove(&conn);
        self.ext.more.connects.remove(&conn);
    }

    /// The earliest holepunch or tracker-exchange deadline.
    pub(super) fn ext_more_deadline(&self) -> Option<Instant> {
        self.ext
            .more
            .rendezvous
            .values()
            .copied()
            .chain(self.ext.more.next_tex)
            .min()
    }

    /// Runs the holepunch and tracker-exchange timers due at `now`.
    pub(super) fn ext_more_timeout(&mut self, now: Instant) {
        self.ext.more.rendezvous.retain(|_, until| *until > now);
        if self.ext.more.next_tex.is_some_and(|t| t <= now) {
            self.tex_tick(now);
        }
    }
}

/// Where a connected peer accepts connections: the address we dialled, or for a peer that
/// dialled us, its address with the `p` of its extension handshake.
pub(super) fn listen_addr(peer: &crate::peer::PeerConn) -> Option<SocketAddr> {
    if peer.is_outgoing() {
        return Some(peer.addr());
    }
    let port = peer.remote()?.extended.as_ref()?.listen_port?;
    Some(SocketAddr::new(peer.addr().ip(), port))
}
