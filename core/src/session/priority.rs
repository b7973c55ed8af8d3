//! BEP 40 canonical peer priority in the session: which candidates are dialled first, and
//! whom to drop for a better one when a torrent is at its connection limit.
//!
//! Our address for the priority is the one a tracker reported (BEP 24 `external ip`), else
//! the one peers told us (BEP 10 `yourip`), with our listen port. Until we know it, candidates
//! keep the order they came in and nobody is dropped.
//!
//! At the limit ([`Config::max_peers_per_torrent`](super::Config::max_peers_per_torrent)),
//! a candidate that ranks above the lowest-ranked established connection of the torrent
//! replaces it (closed with [`DisconnectReason::TooManyConnections`]), at most once per
//! [`EVICT_INTERVAL`] per torrent so that a stream of candidates cannot churn the peer set.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::Session;
use crate::ext::peer_priority;
use crate::id::{ConnId, TorrentId};
use crate::peer::DisconnectReason;
use crate::time::{Duration, Instant};

/// The shortest time between two connections dropped for better-ranked candidates, per
/// torrent.
pub const EVICT_INTERVAL: Duration = Duration::from_secs(30);

/// When each torrent last dropped a peer for a better-ranked one.
#[derive(Debug, Default)]
pub(super) struct Evictions {
    last: BTreeMap<TorrentId, Instant>,
}

impl Session {
    /// Our address as peers see it, for BEP 40, if known.
    pub(super) fn bep40_self(&self) -> Option<SocketAddr> {
        let ip = self.external_ip().or(self.ext.our_ip)?;
        Some(SocketAddr::new(ip, self.config.listen_port.unwrap_or(0)))
    }

    /// Candidates in BEP 40 order, highest priority first (as given while our address is
    /// unknown; the sort is stable).
    pub(super) fn by_priority(&self, peers: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut sorted = peers.to_vec();
        if let Some(ours) = self.bep40_self() {
            sorted.sort_by_key(|a| std::cmp::Reverse(peer_priority(ours, *a)));
        }
        sorted
    }

    /// `torrent` is at its limit and `candidate` wants in: drops the lowest-ranked established
    /// connection if it ranks below the candidate (see the module docs). Returns whether one
    /// was dropped.
    pub(super) fn evict_for(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        candidate: SocketAddr,
    ) -> bool {
        let Some(ours) = self.bep40_self() else {
            return false;
        };
        let evictions = &self.ext.more.evictions;
        if evictions
            .last
            .get(&torrent)
            .is_some_and(|&t| now < t + EVICT_INTERVAL)
        {
            return false;
        }
        let worst: Option<(u32, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(torrent) && c.peer.is_established())
            .map(|(k, c)| {
                let addr = super::ext_more::listen_addr(&c.peer).unwrap_or(c.peer.addr());
                (peer_priority(ours, addr), ConnId(k))
            })
            .min();
        let Some((rank, conn)) = worst else {
            return false;
        };
        if rank >= peer_priority(ours, candidate) {
            return false;
        }
        self.ext.more.evictions.last.insert(torrent, now);
        self.close_conn(now, conn, DisconnectReason::TooManyConnections, true);
        true
    }
}
