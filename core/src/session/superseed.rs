//! BEP 16 superseeding: a seed that masquerades as a peer with nothing and reveals one rare
//! piece at a time to each peer.
//!
//! - [`Session::set_superseed`] sets a torrent's [`SuperseedMode`]. It applies to connections made
//!   while it is on and the torrent has every piece: they get an empty bitfield (`have_none`
//!   with BEP 6), no allowed-fast pieces, `upload_only` unset, and then one `have` for the
//!   piece offered to them.
//! - **Which piece**: among the pieces the peer does not have and was not told of, the one
//!   held by the fewest connected peers (counting pieces offered to others and not yet seen
//!   elsewhere as held), then the one revealed least often, ties broken from a random start.
//! - **When another**: [`SuperseedMode::Strict`], only once the piece offered to a peer is
//!   seen at *another* peer (its `have`, or its bitfield): then the first peer has passed it
//!   on (BEP 16: "the seed will not inform it of any other pieces until it has seen the piece
//!   it had sent previously present on at least one other client"). A lone peer then gets one
//!   piece only: strict mode is for initial seeding into a swarm. [`SuperseedMode::On`] (what
//!   libtorrent does unless `strict_super_seeding` is set) also offers the next piece once the
//!   peer itself has the one offered, so a lone peer still finishes, one piece at a time. A
//!   peer whose own bitfield shows it already had its offered piece gets another at once.
//! - **Off**: every connection still in the dark hears `have` for every piece we have.

use std::collections::BTreeMap;

use super::{CommandError, Session};
use crate::bitfield::Bitfield;
use crate::id::{ConnId, TorrentId};
use crate::time::Instant;

/// Superseeding state of the session.
#[derive(Debug, Default)]
pub(super) struct SuperSeeds {
    torrents: BTreeMap<TorrentId, SuperTorrent>,
}

/// How a torrent seeds (BEP 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SuperseedMode {
    /// A normal seed: every peer is told every piece.
    #[default]
    Off,
    /// Superseeding: one piece at a time per peer; the next once the peer has the one offered
    /// or it is seen at another peer.
    On,
    /// BEP 16's traditional superseeding: the next piece only once the one offered is seen at
    /// another peer (a lone peer gets one piece).
    Strict,
}

#[derive(Debug, Default)]
struct SuperTorrent {
    /// Whether only another peer's `have` frees a peer for its next piece.
    strict: bool,
    /// How often each piece was revealed (index: piece).
    revealed: Vec<u32>,
    /// Connections established while superseeding.
    conns: BTreeMap<ConnId, SuperConn>,
}

#[derive(Debug)]
struct SuperConn {
    /// The piece offered and not yet seen at another peer.
    offered: Option<u32>,
    /// The pieces we told the peer we have.
    told: Bitfield,
}

impl Session {
    /// Sets a torrent's BEP 16 superseeding mode (see the module docs): connections made from
    /// now on while the torrent has every piece see one rare piece at a time; turning it off
    /// tells them every piece. Connections already open keep what they were told.
    pub fn set_superseed(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        mode: SuperseedMode,
    ) -> Result<(), CommandError> {
        self.assert_drained();
        let pieces = self
            .torrents
            .get(torrent.0)
            .ok_or(CommandError::UnknownTorrent)?
            .have
            .len();
        let supers = &mut self.ext.superseed.torrents;
        if mode != SuperseedMode::Off {
            supers
                .entry(torrent)
                .or_insert_with(|| SuperTorrent {
                    strict: false,
                    revealed: vec![0; pieces as usize],
                    conns: BTreeMap::new(),
                })
                .strict = mode == SuperseedMode::Strict;
            return Ok(());
        }
        let Some(st) = supers.remove(&torrent) else {
            return Ok(());
        };
        let have = self.torrents.get(torrent.0).map(|t| t.have.clone());
        for (conn, sc) in st.conns {
            let (Some(c), Some(have)) = (self.conns.get_mut(conn.0), have.as_ref()) else {
                continue;
            };
            for piece in have.iter_set().filter(|&p| !sc.told.get(p)) {
                c.peer.send_have(piece);
            }
            self.flush(now, conn);
        }
        Ok(())
    }

    /// Whether a torrent is in superseeding mode.
    pub fn is_superseeding(&self, torrent: TorrentId) -> bool {
        self.superseed_mode(torrent) != SuperseedMode::Off
    }

    /// A torrent's superseeding mode.
    pub fn superseed_mode(&self, torrent: TorrentId) -> SuperseedMode {
        match self.ext.superseed.torrents.get(&torrent) {
            None => SuperseedMode::Off,
            Some(st) if st.strict => SuperseedMode::Strict,
            Some(_) => SuperseedMode::On,
        }
    }

    /// What a new connection of `torrent` is told we have: nothing while superseeding a
    /// complete torrent, else `have`.
    pub(super) fn superseed_announced(&self, torrent: TorrentId, have: &Bitfield) -> Bitfield {
        if have.is_full() && self.is_superseeding(torrent) {
            Bitfield::new(have.len())
        } else {
            have.clone()
        }
    }

    /// A connection of a superseeding torrent completed the handshake: offer it a piece.
    pub(super) fn superseed_established(&mut self, now: Instant, torrent: TorrentId, conn: ConnId) {
        let full = self
            .torrents
            .get(torrent.0)
            .is_some_and(|t| t.have.is_full());
        let Some(st) = self.ext.superseed.torrents.get_mut(&torrent) else {
            return;
        };
        if !full {
            return;
        }
        st.conns.insert(
            conn,
            SuperConn {
                offered: None,
                told: Bitfield::new(st.revealed.len() as u32),
            },
        );
        self.superseed_offer(now, torrent, conn);
    }

    /// A peer of `torrent` announced `piece` (a `have`), or a whole bitfield: pieces offered
    /// to others and now seen here free those others for their next piece (and, unless
    /// strict, the peer itself when it is its own offered piece).
    pub(super) fn superseed_peer_has(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        from: ConnId,
        piece: Option<u32>,
        bitfield: Option<&Bitfield>,
    ) {
        let Some(st) = self.ext.superseed.torrents.get(&torrent) else {
            return;
        };
        let seen = |p: u32| piece == Some(p) || bitfield.is_some_and(|b| b.get(p));
        let strict = st.strict;
        let freed: Vec<ConnId> = st
            .conns
            .iter()
            .filter(|(&conn, sc)| {
                sc.offered.is_some_and(|p| {
                    // Elsewhere, or the peer's own first bitfield (it had it already), or,
                    // unless strict, the peer's own `have`.
                    seen(p) && (conn != from || bitfield.is_some() || !strict)
                })
            })
            .map(|(&conn, _)| conn)
            .collect();
        for conn in freed {
            self.superseed_offer(now, torrent, conn);
        }
    }

    /// A connection closed: its offer is void.
    pub(super) fn superseed_conn_closed(&mut self, torrent: Option<TorrentId>, conn: ConnId) {
        if let Some(st) = torrent.and_then(|t| self.ext.superseed.torrents.get_mut(&t)) {
            st.conns.remove(&conn);
        }
    }

    /// Offers `conn` the rarest piece it lacks (see the module docs) with a `have`.
    fn superseed_offer(&mut self, now: Instant, torrent: TorrentId, conn: ConnId) {
        let (Some(t), Some(c)) = (self.torrents.get(torrent.0), self.conns.get(conn.0)) else {
            return;
        };
        let Some(st) = self.ext.superseed.torrents.get(&torrent) else {
            return;
        };
        let Some(sc) = st.conns.get(&conn) else {
            return;
        };
        let pieces = st.revealed.len() as u32;
        if pieces == 0 {
            return;
        }
        let mut pending = vec![0u32; pieces as usize];
        for (&other, o) in &st.conns {
            if let (true, Some(p)) = (other != conn, o.offered) {
                pending[p as usize] += 1;
            }
        }
        let peer_has = c.peer.peer_has();
        let start = self.rng.below(u64::from(pieces)) as u32;
        let mut best: Option<((u32, u32), u32)> = None;
        for i in 0..pieces {
            let p = (start + i) % pieces;
            if !t.have.get(p) || sc.told.get(p) || peer_has.is_some_and(|h| h.get(p)) {
                continue;
            }
            let key = (
                t.picker.availability(p) + pending[p as usize],
                st.revealed[p as usize],
            );
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, p));
            }
        }
        let st = self
            .ext
            .superseed
            .torrents
            .get_mut(&torrent)
            .expect("looked up above");
        let sc = st.conns.get_mut(&conn).expect("looked up above");
        sc.offered = best.map(|(_, p)| p);
        let Some((_, piece)) = best else {
            return;
        };
        sc.told.set(piece, true);
        st.revealed[piece as usize] += 1;
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.peer.send_have(piece);
        }
        self.flush(now, conn);
    }
}
