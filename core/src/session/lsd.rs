//! BEP 14 local service discovery inside the session: the [`LsdAnnouncer`] policy wired to
//! the session's torrents and connections.
//!
//! - **Configuration**: [`Config::lsd`](super::Config::lsd) (off by default). The announcer is
//!   made once the session knows its listen port (LSD announces it) and at the first call
//!   that needs it; its cookie is drawn from the session's RNG then, so a session with LSD
//!   off draws nothing for it.
//! - **Announcing**: every torrent whose metadata we have, that is active (not paused,
//!   checking or stopped by an error) and not private (BEP 27), is announced every
//!   [`ANNOUNCE_INTERVAL`](crate::lsd::ANNOUNCE_INTERVAL), at most one datagram per group a
//!   minute ([`MIN_SEND_GAP`](crate::lsd::MIN_SEND_GAP)), as [`Output::SendLsd`] to both
//!   groups (the runtime sends on the families it has a socket for). The set is kept in step
//!   with the torrents' states (`note_state`) and removals.
//! - **Receiving**: [`Input::LsdDatagram`](super::Input::LsdDatagram) from the runtime's
//!   multicast socket. Our own announces (by cookie) are ignored; a malformed one is dropped.
//!   At most [`MAX_LSD_DATAGRAMS_PER_MINUTE`] datagrams are parsed a minute (a flood on the
//!   LAN costs nothing beyond that), and one sender's announce of one torrent is acted on at
//!   most once per [`LSD_PEER_GAP`]. Peers announced for our torrents are dialled like a
//!   tracker's, within the per-torrent budget.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::{Output, Session};
use crate::id::TorrentId;
use crate::lsd::{LsdAnnouncer, LsdConfig, LsdGroup};
use crate::time::{Duration, Instant};

/// The most LSD datagrams parsed a minute; later ones in the same minute are dropped unread.
pub const MAX_LSD_DATAGRAMS_PER_MINUTE: u32 = 120;

/// How often one sender's announce of one torrent is acted on (dialled) at most.
pub const LSD_PEER_GAP: Duration = Duration::from_secs(60);

/// The most (sender, torrent) pairs remembered for [`LSD_PEER_GAP`]; beyond it the oldest
/// are forgotten.
const MAX_HEARD: usize = 1024;

/// The session's LSD state.
#[derive(Debug, Default)]
pub(super) struct SessionLsd {
    /// Made once the listen port is known (see the module docs); rebuilt if it changes.
    announcer: Option<LsdAnnouncer>,
    /// The port `announcer` announces.
    port: u16,
    /// The cookie, drawn once.
    cookie: Option<String>,
    /// Torrents in the announcer, by their 20-byte wire id.
    announced: HashMap<TorrentId, [u8; 20]>,
    /// When each (sender, torrent) announce was last acted on.
    heard: HashMap<(IpAddr, [u8; 20]), Instant>,
    /// The start of the current minute of the datagram budget, and datagrams parsed in it.
    window: Option<(Instant, u32)>,
}

impl Session {
    /// Whether local service discovery is on ([`Config::lsd`](super::Config::lsd)): runtimes
    /// open the multicast sockets only then.
    pub fn lsd_enabled(&self) -> bool {
        self.config.lsd
    }

    /// Makes (or remakes, after the listen port changed) the announcer; false if LSD is off
    /// or there is no listen port yet.
    fn lsd_ready(&mut self) -> bool {
        if !self.config.lsd {
            return false;
        }
        let Some(port) = self.config.listen_port.filter(|&p| p != 0) else {
            return false;
        };
        if self.lsd.announcer.is_some() && self.lsd.port == port {
            return true;
        }
        let cookie = match &self.lsd.cookie {
            Some(c) => c.clone(),
            None => {
                let c = format!("{:016x}", self.rng.next_u64());
                self.lsd.cookie = Some(c.clone());
                c
            }
        };
        let mut announcer = LsdAnnouncer::new(LsdConfig {
            listen_port: port,
            cookie,
            groups: vec![LsdGroup::V4, LsdGroup::V6],
        });
        for hash in self.lsd.announced.values() {
            announcer.add_torrent(*hash, false);
        }
        self.lsd.announcer = Some(announcer);
        self.lsd.port = port;
        true
    }

    /// Brings one torrent's place in the announcer in line with its state: announced while it
    /// has metadata, is active and is not private (BEP 27).
    pub(super) fn lsd_sync(&mut self, torrent: TorrentId) {
        if !self.config.lsd {
            return;
        }
        let wanted = self
            .torrents
            .get(torrent.0)
            .filter(|t| t.is_active() && !t.info.is_private())
            .map(|t| t.info.hashes().wire_id());
        let ready = self.lsd_ready();
        match wanted {
            Some(hash) => {
                self.lsd.announced.insert(torrent, hash);
                if let (true, Some(a)) = (ready, self.lsd.announcer.as_mut()) {
                    a.add_torrent(hash, false);
                }
            }
            None => self.lsd_sync_removed(torrent),
        }
    }

    /// A torrent was removed: stop announcing it.
    pub(super) fn lsd_sync_removed(&mut self, torrent: TorrentId) {
        if let Some(hash) = self.lsd.announced.remove(&torrent) {
            if let Some(a) = self.lsd.announcer.as_mut() {
                a.remove_torrent(hash);
            }
        }
    }

    /// The announcer's next deadline.
    pub(super) fn lsd_deadline(&self) -> Option<Instant> {
        match &self.lsd.announcer {
            Some(a) if self.lsd.port == self.config.listen_port.unwrap_or(0) => a.poll_timeout(),
            // Torrents to announce and a listen port, but no announcer for it yet.
            _ if self.config.lsd
                && !self.lsd.announced.is_empty()
                && self.config.listen_port.is_some_and(|p| p != 0) =>
            {
                Some(Instant::ZERO)
            }
            _ => None,
        }
    }

    /// Sends the announces that are due.
    pub(super) fn lsd_timeout(&mut self, now: Instant) {
        if self.lsd.announced.is_empty() || !self.lsd_ready() {
            return;
        }
        let Some(a) = self.lsd.announcer.as_mut() else {
            return;
        };
        if a.poll_timeout().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
        while let Some(t) = a.poll_transmit() {
            self.outputs.push_back(Output::SendLsd {
                to: t.to,
                data: t.data,
            });
        }
    }

    /// A datagram from the LSD multicast socket: dial the peers it announces for our torrents.
    pub(super) fn lsd_datagram(&mut self, now: Instant, from: SocketAddr, data: &Bytes) {
        if !self.lsd_ready() {
            return;
        }
        let (start, count) = match self.lsd.window {
            Some((start, count)) if now < start + Duration::from_secs(60) => (start, count),
            _ => (now, 0),
        };
        if count >= MAX_LSD_DATAGRAMS_PER_MINUTE {
            return;
        }
        self.lsd.window = Some((start, count + 1));
        let Some(a) = self.lsd.announcer.as_ref() else {
            return;
        };
        let Ok(peers) = a.handle_datagram(from, data) else {
            return; // BEP 14 says nothing of errors: a bad datagram is dropped.
        };
        for peer in peers {
            let key = (from.ip(), peer.info_hash);
            if self
                .lsd
                .heard
                .get(&key)
                .is_some_and(|&t| now < t + LSD_PEER_GAP)
            {
                continue;
            }
            if self.lsd.heard.len() >= MAX_HEARD {
                self.lsd.heard.retain(|_, t| now < *t + LSD_PEER_GAP);
                if self.lsd.heard.len() >= MAX_HEARD {
                    continue;
                }
            }
            self.lsd.heard.insert(key, now);
            let Some(&torrent) = self.by_wire_id.get(&peer.info_hash) else {
                continue;
            };
            if self.lsd.announced.contains_key(&torrent) {
                self.dial_peers(now, torrent, &[peer.addr]);
            }
        }
    }
}
