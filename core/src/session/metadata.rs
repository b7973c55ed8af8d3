//! Torrents added from a magnet link (BEP 9): fetching the `info` dictionary from peers over
//! `ut_metadata`, and serving ours to others.
//!
//! # A magnet torrent's life
//!
//! ```text
//! add_magnet ──▶ FetchingMetadata ──info verified──▶ (as add_torrent: Downloading / Seeding)
//! ```
//!
//! [`Session::add_magnet`] issues a [`TorrentId`] at once (a reserved slot: the torrent itself
//! exists only once its files are known), announces to the link's trackers and dials its
//! `x.pe` peers. Connections to the torrent complete the handshake, advertise `ut_metadata` in
//! the extension handshake and keep what the peer says about its pieces for later (see
//! `peer::pending`). The first peer whose handshake announces a `metadata_size` within
//! [`Limits::max_metadata_size`] starts a [`MetadataAssembler`] (nothing bigger is ever
//! allocated); peers announcing that size are asked for 16 KiB pieces, a few at a time each,
//! so the pieces spread across them. A peer that sends a piece of the wrong length or another
//! `total_size` is disconnected; when the assembled dictionary does not hash to the
//! info-hash (SHA-1 for v1, SHA-256 for v2, both for a hybrid) the assembler narrows the liar
//! down (see its documentation), and the liars are disconnected and refused from then on. If
//! no connected peer announces the size being assembled any more (the first peer lied about
//! it), the assembly restarts with the size most peers announce.
//!
//! Once verified, the torrent is installed under the same id exactly as
//! [`Session::add_torrent`] would (storage [`DiskCmd::Open`], nothing had yet), the magnet's
//! `so=` selects files (BEP 53: the others get [`Priority::Skip`]), the application hears
//! [`Event::MetadataReceived`] with the dictionary (to save a `.torrent`), and every
//! connection carries on with the pieces its peer announced meanwhile.
//!
//! Serving: a `ut_metadata` request for a torrent whose metadata we have is answered with the
//! piece, at most [`MAX_SERVED_PER_CONN`] pieces per connection beyond one full copy; others
//! are rejected (BEP 9).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;

use super::{
    AddError, ConnectError, DiskCmd, Event, Output, Priority, Session, TorrentState, TorrentStatus,
};
use crate::bitfield::Bitfield;
use crate::ext::{names, AssemblerError, MetadataAssembler, MetadataMessage, Progress};
use crate::id::{ConnId, InfoHashes, TorrentId};
use crate::magnet::{Magnet, PeerAddr, SelectOnly};
use crate::metainfo::{Info, Limits};
use crate::peer::{DisconnectReason, PeerConn, Violation};
use crate::time::Instant;
use crate::torrent::Torrent;
use crate::wire::Handshake;

/// How many metadata pieces one connection may ask of us beyond a full copy; later requests
/// are rejected (a peer asking for the same pieces again and again only wastes our upload).
pub const MAX_SERVED_PER_CONN: u32 = 16;

/// What `left` a magnet torrent announces before its size is known (libtorrent announces a
/// non-zero value too, so trackers treat us as a leecher and return seeds).
const UNKNOWN_LEFT: u64 = 16 * 1024;

/// How soon peers are asked again for metadata when no request is in flight.
const RETRY_INTERVAL: crate::time::Duration = crate::time::Duration::from_secs(5);

/// A torrent to add from a magnet link with [`Session::add_magnet`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AddMagnet {
    /// The link: its info-hashes, trackers (`tr`, each its own tier), peers (`x.pe`: IP
    /// literals are dialled at once; host names are the runtime's to resolve and
    /// [`Session::connect`]) and select-only files (`so`, BEP 53).
    pub magnet: Magnet,
    /// More tracker tiers, announced besides the link's own.
    pub trackers: Vec<Vec<String>>,
}

impl AddMagnet {
    /// The torrent the link names, with the link's trackers and peers.
    pub fn new(magnet: Magnet) -> Self {
        Self {
            magnet,
            trackers: Vec::new(),
        }
    }

    /// The same link with more tracker tiers (BEP 12).
    #[must_use]
    pub fn with_trackers(mut self, tiers: Vec<Vec<String>>) -> Self {
        self.trackers = tiers;
        self
    }
}

/// A torrent whose metadata is being fetched.
#[derive(Debug)]
pub(super) struct MagnetFetch {
    pub(super) hashes: InfoHashes,
    select_only: Option<SelectOnly>,
    /// Connections that completed the handshake.
    pub(super) conns: Vec<ConnId>,
    assembler: Option<MetadataAssembler<ConnId>>,
    /// Addresses caught lying about the metadata: refused until the torrent is installed.
    banned: HashSet<IpAddr>,
    /// The dictionary was verified but does not parse as a torrent we can use.
    failed: Option<String>,
    /// When to ask the peers again though no request is outstanding (peers that rejected us
    /// come out of their back-off).
    retry_at: Option<Instant>,
}

impl Session {
    // ---- commands ------------------------------------------------------------------------

    /// Adds a torrent from a magnet link (BEP 9): it starts in
    /// [`TorrentState::FetchingMetadata`], announces to the link's trackers, dials the link's
    /// peers, and fetches the `info` dictionary from the peers it meets. When the dictionary
    /// is verified, [`Event::MetadataReceived`] reports it and the torrent carries on under
    /// the same id as if added with [`Session::add_torrent`] (with [`DiskCmd::Open`] then).
    ///
    /// Until then the id is valid for [`Session::connect`], [`Session::remove_torrent`],
    /// [`Session::torrent_status`] and [`Session::torrent_state`]; other commands answer
    /// `UnknownTorrent`.
    pub fn add_magnet(&mut self, now: Instant, add: AddMagnet) -> Result<TorrentId, AddError> {
        self.assert_drained();
        let magnet = add.magnet;
        let hashes = magnet.info_hashes();
        // A v2 torrent arrives without its piece layers: they are fetched from peers with BEP 52
        // hash requests once the metadata is in.
        let wire_ids: Vec<[u8; 20]> =
            [hashes.v1().map(|h| h.0), hashes.v2().map(|h| h.truncated())]
                .into_iter()
                .flatten()
                .collect();
        if let Some(existing) = wire_ids.iter().find_map(|w| self.by_wire_id.get(w)) {
            return Err(AddError::Duplicate(*existing));
        }
        let id = TorrentId(self.torrents.reserve());
        for w in wire_ids {
            self.by_wire_id.insert(w, id);
        }
        self.ext.magnets.insert(
            id,
            MagnetFetch {
                hashes,
                select_only: magnet.select_only().cloned(),
                conns: Vec::new(),
                assembler: None,
                banned: HashSet::new(),
                failed: None,
                retry_at: None,
            },
        );
        self.outputs.push_back(Output::Event(Event::StateChanged {
            torrent: id,
            state: TorrentState::FetchingMetadata,
        }));
        let mut tiers: Vec<Vec<String>> =
            magnet.trackers().iter().map(|t| vec![t.clone()]).collect();
        tiers.extend(add.trackers);
        self.trackers_start(now, id, &tiers);
        self.dht_torrent_added(now, id);
        for peer in magnet.peers() {
            if let PeerAddr::Ip(addr) = peer {
                let _ = self.connect_inner(now, id, *addr);
            }
        }
        Ok(id)
    }

    /// A torrent's `info` dictionary, once known (right after [`Event::MetadataReceived`] for
    /// a magnet link).
    pub fn torrent_info(&self, torrent: TorrentId) -> Option<Arc<Info>> {
        self.torrents.get(torrent.0).map(|t| Arc::clone(&t.info))
    }

    // ---- hooks ---------------------------------------------------------------------------

    /// Whether `torrent` is a magnet link still fetching its metadata.
    pub(super) fn is_magnet(&self, torrent: TorrentId) -> bool {
        self.ext.magnets.contains_key(&torrent)
    }

    /// [`Session::connect`] for a torrent still fetching its metadata.
    pub(super) fn magnet_connect(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        addr: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        let m = self
            .ext
            .magnets
            .get(&torrent)
            .ok_or(ConnectError::UnknownTorrent)?;
        if m.failed.is_some() {
            return Err(ConnectError::TorrentInactive);
        }
        if m.banned.contains(&addr.ip()) {
            return Err(ConnectError::Banned);
        }
        self.dial(now, torrent, addr)
    }

    /// The info-hashes of a torrent, magnet or not.
    pub(super) fn torrent_hashes(&self, torrent: TorrentId) -> Option<InfoHashes> {
        match self.torrents.get(torrent.0) {
            Some(t) => Some(t.info.hashes()),
            None => self.ext.magnets.get(&torrent).map(|m| m.hashes),
        }
    }

    /// What a magnet torrent announces to trackers: its wire id, and a non-zero `left`.
    pub(super) fn magnet_announce(&self, torrent: TorrentId) -> Option<([u8; 20], u64)> {
        let m = self.ext.magnets.get(&torrent)?;
        Some((m.hashes.wire_id(), UNKNOWN_LEFT))
    }

    /// The handshake of a connection to a torrent still fetching its metadata.
    pub(super) fn route_magnet_handshake(
        &mut self,
        now: Instant,
        conn: ConnId,
        torrent: TorrentId,
        theirs: &Handshake,
    ) -> Result<(), DisconnectReason> {
        let m = self
            .ext
            .magnets
            .get(&torrent)
            .ok_or(DisconnectReason::TorrentStopped)?;
        if m.failed.is_some() {
            return Err(DisconnectReason::TorrentStopped);
        }
        let addr = self
            .conns
            .get(conn.0)
            .map(|c| c.peer.addr())
            .ok_or(DisconnectReason::TorrentStopped)?;
        if m.banned.contains(&addr.ip()) {
            return Err(DisconnectReason::Banned);
        }
        if theirs.names(&m.hashes).is_none() {
            return Err(DisconnectReason::InfoHashMismatch);
        }
        if theirs.peer_id == self.peer_id {
            return Err(DisconnectReason::SelfConnection);
        }
        let duplicate = m.conns.iter().copied().find(|p| {
            self.conns
                .get(p.0)
                .and_then(|c| c.peer.remote())
                .is_some_and(|r| r.peer_id == theirs.peer_id)
        });
        let hashes = m.hashes;
        if let Some(existing) = duplicate {
            if !self.keep_new_duplicate(conn, existing, &theirs.peer_id) {
                return Err(DisconnectReason::DuplicatePeer);
            }
            self.close_conn(now, existing, DisconnectReason::DuplicatePeer, true);
        }
        let ours = Handshake::new(self.magnet_reserved(&hashes), &hashes, self.peer_id);
        let extended = self.extended_handshake_for(torrent, conn);
        let c = self
            .conns
            .get_mut(conn.0)
            .expect("route_magnet_handshake is called for a live connection");
        c.torrent = Some(torrent);
        c.peer.establish_pending(now, theirs, &ours, &extended);
        self.next_choke
            .get_or_insert(now + super::engine::CHOKE_INTERVAL);
        if let Some(m) = self.ext.magnets.get_mut(&torrent) {
            m.conns.push(conn);
        }
        self.ext_conn_established(now, torrent, conn);
        self.outputs.push_back(Output::Event(Event::PeerConnected {
            torrent,
            conn,
            addr,
            peer_id: theirs.peer_id,
        }));
        Ok(())
    }

    /// Our reserved bits for a magnet torrent's connection: the BEP 52 upgrade bit too when
    /// the link names a v2 hash, so that the piece layers can be asked of the peer once the
    /// metadata is in.
    pub(super) fn magnet_reserved(&self, hashes: &InfoHashes) -> crate::wire::Reserved {
        let reserved = self.reserved();
        if hashes.v2().is_some() {
            reserved.union(crate::wire::Reserved::V2)
        } else {
            reserved
        }
    }

    /// A connection of a magnet torrent sent its extension handshake: it may bring the
    /// metadata size, and pieces to ask it for.
    pub(super) fn magnet_peer_ready(&mut self, now: Instant, torrent: TorrentId) {
        self.metadata_pick_size(torrent);
        self.metadata_request_more(now, torrent);
    }

    /// A connection of a magnet torrent closed.
    pub(super) fn magnet_conn_closed(&mut self, now: Instant, torrent: TorrentId, conn: ConnId) {
        let Some(m) = self.ext.magnets.get_mut(&torrent) else {
            return;
        };
        m.conns.retain(|c| *c != conn);
        if let Some(a) = m.assembler.as_mut() {
            a.remove_peer(conn);
        }
        self.metadata_pick_size(torrent);
        self.metadata_request_more(now, torrent);
    }

    /// Removes a magnet torrent still fetching its metadata; `false` if `torrent` is not one.
    pub(super) fn remove_magnet(&mut self, now: Instant, torrent: TorrentId) -> bool {
        if !self.ext.magnets.contains_key(&torrent) {
            return false;
        }
        self.close_torrent_conns(now, torrent, DisconnectReason::TorrentStopped);
        self.trackers_stop(now, torrent);
        self.by_wire_id.retain(|_, id| *id != torrent);
        self.ext.magnets.remove(&torrent);
        self.torrents.unreserve(torrent.0);
        true
    }

    /// A status snapshot of a magnet torrent (no pieces known yet).
    pub(super) fn magnet_status(&self, torrent: TorrentId) -> Option<TorrentStatus> {
        let m = self.ext.magnets.get(&torrent)?;
        Some(TorrentStatus {
            hashes: m.hashes,
            pieces_have: 0,
            pieces_total: 0,
            left: 0,
            downloaded: 0,
            uploaded: 0,
            peers: m.conns.len(),
            finished: false,
            state: self.magnet_state(torrent)?,
            download_rate: 0,
            upload_rate: 0,
            pieces_verified: 0,
            pieces_failed: 0,
        })
    }

    /// The state of a magnet torrent.
    pub(super) fn magnet_state(&self, torrent: TorrentId) -> Option<TorrentState> {
        let m = self.ext.magnets.get(&torrent)?;
        Some(match &m.failed {
            None => TorrentState::FetchingMetadata,
            Some(message) => TorrentState::Error(super::StorageError {
                file: None,
                message: message.clone(),
            }),
        })
    }

    /// The earliest metadata request deadline of any magnet torrent.
    pub(super) fn magnet_deadline(&self) -> Option<Instant> {
        self.ext
            .magnets
            .values()
            .flat_map(|m| {
                let requests = m
                    .assembler
                    .as_ref()
                    .and_then(MetadataAssembler::poll_timeout);
                requests.into_iter().chain(m.retry_at)
            })
            .min()
    }

    /// Runs the metadata request timers due at `now`, and asks peers again (those that
    /// rejected us wait out their back-off).
    pub(super) fn magnet_timeout(&mut self, now: Instant) {
        let torrents: Vec<TorrentId> = self.ext.magnets.keys().copied().collect();
        for torrent in torrents {
            let Some(m) = self.ext.magnets.get_mut(&torrent) else {
                continue;
            };
            let mut due = m.retry_at.is_some_and(|t| t <= now);
            if let Some(a) = m.assembler.as_mut() {
                if a.poll_timeout().is_some_and(|t| t <= now) {
                    a.handle_timeout(now);
                    due = true;
                }
            }
            if due {
                m.retry_at = None;
                self.metadata_request_more(now, torrent);
            }
        }
    }

    // ---- ut_metadata messages ------------------------------------------------------------

    /// A `ut_metadata` message from `conn`.
    pub(super) fn on_metadata_message(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        payload: &Bytes,
    ) {
        // Unknown message types are ignored (BEP 9), and so are malformed ones: the framing
        // is intact, and a peer that cannot speak ut_metadata is simply not asked.
        let Ok(message) = MetadataMessage::decode(payload) else {
            return;
        };
        match message {
            MetadataMessage::Request { piece } => self.serve_metadata(torrent, conn, piece),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.on_metadata_data(now, torrent, conn, piece, total_size, data),
            MetadataMessage::Reject { piece } => {
                if let Some(a) = self
                    .ext
                    .magnets
                    .get_mut(&torrent)
                    .and_then(|m| m.assembler.as_mut())
                {
                    let _ = a.on_reject(now, conn, piece);
                }
                self.metadata_request_more(now, torrent);
            }
        }
    }

    /// Answers a peer's request for a piece of our metadata (BEP 9).
    fn serve_metadata(&mut self, torrent: TorrentId, conn: ConnId, piece: u32) {
        let raw = self.torrents.get(torrent.0).map(|t| t.info.raw().clone());
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        let Some(remote_id) = c.peer.remote_extension(names::UT_METADATA) else {
            return;
        };
        let served = self
            .ext
            .conns
            .get_mut(&conn)
            .map(|e| &mut e.metadata_served);
        let size = crate::ext::METADATA_PIECE_SIZE;
        let answer = raw.and_then(|raw| {
            let pieces = raw.len().div_ceil(size) as u32;
            let served = served?;
            if *served >= pieces.saturating_add(MAX_SERVED_PER_CONN) {
                return None;
            }
            let start = (piece as usize).checked_mul(size)?;
            if start >= raw.len() {
                return None;
            }
            *served += 1;
            let end = (start + size).min(raw.len());
            Some(MetadataMessage::Data {
                piece,
                total_size: raw.len() as u64,
                data: raw.slice(start..end),
            })
        });
        let message = answer.unwrap_or(MetadataMessage::Reject { piece });
        let mut head = Vec::new();
        let body = message.encode(&mut head);
        c.peer.send_extended(remote_id, &head, body.as_deref());
    }

    fn on_metadata_data(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        piece: u32,
        total_size: u64,
        data: Bytes,
    ) {
        let Some(m) = self.ext.magnets.get_mut(&torrent) else {
            return; // late answers after the metadata arrived
        };
        let Some(a) = m.assembler.as_mut() else {
            return;
        };
        match a.on_data(conn, piece, total_size, data) {
            Ok(Progress::Pending) => {}
            Ok(Progress::Complete { info, liars }) => {
                self.metadata_liars(now, torrent, &liars);
                self.install_metadata(now, torrent, info);
                return;
            }
            Ok(Progress::HashFailed { banned }) => self.metadata_liars(now, torrent, &banned),
            Err(AssemblerError::WrongTotalSize { .. } | AssemblerError::WrongLength { .. }) => {
                self.metadata_liars(now, torrent, &[conn]);
            }
            // Unrequested or from a banned peer: ignored.
            Err(_) => {}
        }
        self.metadata_pick_size(torrent);
        self.metadata_request_more(now, torrent);
    }

    /// Disconnects peers that lied about the metadata and refuses their addresses.
    fn metadata_liars(&mut self, now: Instant, torrent: TorrentId, liars: &[ConnId]) {
        for &liar in liars {
            let Some(addr) = self.conns.get(liar.0).map(|c| c.peer.addr()) else {
                continue;
            };
            if let Some(m) = self.ext.magnets.get_mut(&torrent) {
                if m.banned.len() < 4096 {
                    m.banned.insert(addr.ip());
                }
            }
            self.close_conn(
                now,
                liar,
                DisconnectReason::Violation(Violation::BadMetadata),
                true,
            );
        }
    }

    /// Starts the assembly with a size a connected peer announced, or restarts it when no
    /// connected peer announces the size being assembled any more.
    fn metadata_pick_size(&mut self, torrent: TorrentId) {
        let Some(m) = self.ext.magnets.get(&torrent) else {
            return;
        };
        let limit = Limits::DEFAULT.max_metadata_size as u64;
        let mut votes: HashMap<u64, usize> = HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        for conn in &m.conns {
            let Some(size) = self.conns.get(conn.0).and_then(|c| metadata_offer(&c.peer)) else {
                continue;
            };
            if size == 0 || size > limit {
                continue; // never allocated: BEP 9 peers announce the real size
            }
            let n = votes.entry(size).or_insert(0);
            if *n == 0 {
                order.push(size);
            }
            *n += 1;
        }
        let current = m.assembler.as_ref().map(MetadataAssembler::total_size);
        if current.is_some_and(|s| votes.contains_key(&s)) {
            return;
        }
        // The most announced size; ties go to the first peer that announced one.
        let mut best: Option<(u64, usize)> = None;
        for size in order {
            let n = votes[&size];
            if best.is_none_or(|(_, most)| n > most) {
                best = Some((size, n));
            }
        }
        let Some((size, _)) = best else {
            return;
        };
        let hashes = m.hashes;
        if let Ok(a) = MetadataAssembler::new(hashes, size) {
            if let Some(m) = self.ext.magnets.get_mut(&torrent) {
                m.assembler = Some(a);
            }
        }
    }

    /// Sends metadata requests to every peer that can take more.
    fn metadata_request_more(&mut self, now: Instant, torrent: TorrentId) {
        let Some(m) = self.ext.magnets.get_mut(&torrent) else {
            return;
        };
        let Some(a) = m.assembler.as_mut() else {
            return;
        };
        let size = a.total_size();
        for &conn in &m.conns {
            let Some(c) = self.conns.get_mut(conn.0) else {
                continue;
            };
            if metadata_offer(&c.peer) != Some(size) {
                continue;
            }
            let Some(remote_id) = c.peer.remote_extension(names::UT_METADATA) else {
                continue;
            };
            let mut sent = false;
            while let Some(piece) = a.next_request(now, conn) {
                let mut head = Vec::new();
                let _ = MetadataMessage::Request { piece }.encode(&mut head);
                c.peer.send_extended(remote_id, &head, None);
                sent = true;
            }
            if sent {
                while let Some((head, body)) = c.peer.poll_send(now) {
                    c.unflushed += (head.len() + body.as_ref().map_or(0, |b| b.len())) as u64;
                    self.outputs.push_back(Output::Send { conn, head, body });
                }
            }
        }
        // Nothing in flight but pieces missing: try again once back-offs may have passed.
        m.retry_at = (a.poll_timeout().is_none() && !a.is_complete() && !m.conns.is_empty())
            .then(|| now + RETRY_INTERVAL);
    }

    /// The metadata is verified: installs the torrent under the magnet's id.
    fn install_metadata(&mut self, now: Instant, torrent: TorrentId, raw: Bytes) {
        if !self.ext.magnets.contains_key(&torrent) {
            return;
        }
        let info = match Info::from_bytes(&raw) {
            Ok(info) => info,
            Err(e) => {
                self.metadata_failed(now, torrent, &format!("the metadata is invalid: {e}"));
                return;
            }
        };
        let m = self.ext.magnets.remove(&torrent).expect("looked up above");
        let info = Arc::new(info);
        let pieces = info.layout().piece_count();
        let rng = self.rng.fork();
        let mut t = Torrent::new(Arc::clone(&info), Bitfield::new(pieces), rng);
        // BEP 52: a v2 or hybrid torrent's piece layers are not in the info dictionary; they
        // are fetched from peers with hash requests.
        match super::v2::V2State::new(&info, &[]) {
            Ok(state) => t.v2 = state,
            Err(e) => {
                self.metadata_failed(now, torrent, &format!("the metadata is unusable: {e}"));
                return;
            }
        }
        // BEP 53: files the link does not select are skipped.
        if let Some(so) = &m.select_only {
            for (file, p) in t.file_priority.iter_mut().enumerate() {
                if u32::try_from(file).map_or(true, |f| !so.contains(f)) {
                    *p = Priority::Skip;
                }
            }
            for piece in 0..pieces {
                let p = t.piece_priority(piece);
                t.picker.set_priority(piece, p);
            }
            t.finished = t.picker.is_finished();
        }
        if !self.torrents.fill(torrent.0, t) {
            return;
        }
        // A hybrid's truncated v2 id routes to it too (the magnet may have named only v1).
        if let Some(v2) = info.hashes().v2() {
            self.by_wire_id.entry(v2.truncated()).or_insert(torrent);
        }
        self.outputs.push_back(Output::Disk(DiskCmd::Open {
            torrent,
            info: Arc::clone(&info),
        }));
        self.outputs
            .push_back(Output::Event(Event::MetadataReceived {
                torrent,
                info: raw,
            }));
        self.note_state(torrent);
        for conn in m.conns {
            let Some(c) = self.conns.get_mut(conn.0) else {
                continue;
            };
            if c.peer.metadata_known(pieces).is_err() {
                let reason = c
                    .peer
                    .closed_reason()
                    .cloned()
                    .unwrap_or(DisconnectReason::TorrentStopped);
                self.close_conn(now, conn, reason, true);
                continue;
            }
            if let Some(t) = self.torrents.get_mut(torrent.0) {
                t.peers.push(conn);
            }
            // BEP 52: note whether the peer speaks v2, as for a connection made now (we set
            // the upgrade bit for a link with a v2 hash).
            let theirs = self
                .conns
                .get(conn.0)
                .and_then(|c| c.peer.remote())
                .map(|r| Handshake::new(r.reserved, &info.hashes(), r.peer_id));
            if let Some(theirs) = theirs {
                self.hashes_conn_established(conn, &theirs);
            }
            self.after_activity(now, conn);
        }
        self.ext_metadata_installed(now, torrent);
        self.dht_metadata_installed(now, torrent);
        self.pump_torrent(now, torrent);
    }

    /// The verified metadata cannot be used: the torrent stops in an error state.
    fn metadata_failed(&mut self, now: Instant, torrent: TorrentId, message: &str) {
        if let Some(m) = self.ext.magnets.get_mut(&torrent) {
            m.failed = Some(message.to_string());
            m.assembler = None;
        }
        let conns: Vec<ConnId> = self
            .ext
            .magnets
            .get(&torrent)
            .map(|m| m.conns.clone())
            .unwrap_or_default();
        for conn in conns {
            self.close_conn(now, conn, DisconnectReason::TorrentStopped, true);
        }
        if let Some(state) = self.magnet_state(torrent) {
            self.outputs
                .push_back(Output::Event(Event::StateChanged { torrent, state }));
        }
    }
}

/// The metadata size a peer offers over `ut_metadata`, if it offers the extension.
fn metadata_offer(peer: &PeerConn) -> Option<u64> {
    peer.remote_extension(names::UT_METADATA)?;
    peer.remote()?.extended.as_ref()?.metadata_size
}
