//! BEP 52 hash transfer: answering `hash request`s from our trees, and fetching the piece
//! layers a v2 or hybrid torrent was added without (a magnet link gives the info dictionary
//! only; the layers live outside it).
//!
//! # Serving
//!
//! A request naming a file's `pieces root` is answered from the tree above that file's piece
//! layer ([`UpperTree`](crate::merkle::UpperTree)): hashes at the piece layer or above, with the uncle hashes its proof
//! layers ask for. Requests below the piece layer (leaf hashes) are served from the pieces'
//! leaves by [`super::leaf_hashes`]. Anything else (unknown roots; malformed ranges; more than
//! [`MAX_HASH_REQUEST_LEN`] hashes) gets a `hash reject`. Each peer has a
//! budget of [`HASH_REQUEST_BURST`] requests refilled at [`HASH_REQUEST_RATE`] a second;
//! requests over it are rejected, and [`MAX_OVER_BUDGET`] of them in a row close the
//! connection ([`Violation::HashRequestFlood`]).
//!
//! # Fetching
//!
//! While a file's layer is missing, its layer is asked for in chunks of up to 512 hashes (as
//! libtorrent asks), each with the proof layers that reach the file's root, from one
//! v2-capable peer at a time per chunk, preferring peers that have a piece of the chunk
//! (BEP 52: they "must" be able to answer). An answer is trusted only once its hashes and uncles
//! hash up to the root from the info dictionary ([`merkle::verify_hashes`]); a wrong answer
//! is dropped and the chunk asked of someone else. When a file's chunks are all in, its layer is
//! stored; when every layer is in, [`Event::PieceLayersComplete`] is reported. A v2-only
//! torrent requests no blocks until then (nothing could be verified); a hybrid downloads by
//! its v1 hashes meanwhile.

use std::collections::HashMap;

use bytes::Bytes;

use crate::id::{ConnId, TorrentId};
use crate::merkle::{self, Hash256, HashRange};
use crate::metainfo::Version;
use crate::peer::{DisconnectReason, Violation};
use crate::rate::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::{Handshake, HashRequest, HashVersion, Message, Reserved};

use super::{Event, Output, Session};

/// The most hashes we answer in one request (BEP 52: "SHOULD NOT be greater than 512").
pub const MAX_HASH_REQUEST_LEN: u32 = 512;
/// Hash requests a peer may send at once.
pub const HASH_REQUEST_BURST: u64 = 512;
/// Hash requests a peer may send per second, on average, past the burst.
pub const HASH_REQUEST_RATE: u64 = 128;
/// Requests over the budget in a row that close the connection.
pub const MAX_OVER_BUDGET: u32 = 256;
/// How many hashes we ask for per request: one chunk of a piece layer.
const CHUNK: u32 = 512;
/// How long a hash request of ours may go unanswered before another peer is asked.
const HASH_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Our hash requests in flight to one peer.
const MAX_OUTSTANDING_PER_PEER: usize = 4;

/// The session's hash-transfer state: per connection, and per torrent being fetched.
#[derive(Debug, Default)]
pub(crate) struct HashTransfer {
    conns: HashMap<ConnId, ConnHashes>,
    fetches: HashMap<TorrentId, LayerFetch>,
}

/// One connection's side of hash transfer.
#[derive(Debug)]
struct ConnHashes {
    /// Whether the peer speaks v2: a v2 torrent, the v2 hash named, or the upgrade bit set.
    v2: bool,
    /// The peer's budget of requests to us.
    budget: TokenBucket,
    /// Requests over budget in a row.
    over_budget: u32,
    /// Our requests to the peer that it has not answered.
    outstanding: Vec<HashRequest>,
    /// Chunks it refused or answered wrongly: not asked of it again.
    refused: Vec<(usize, u32)>,
}

/// A torrent's missing layers being fetched, chunk by chunk.
#[derive(Debug, Default)]
struct LayerFetch {
    /// Per file: the chunks received so far (base nodes, verified), by chunk index.
    chunks: HashMap<usize, Vec<Option<Vec<Hash256>>>>,
    /// Chunks asked for: (file, chunk) → who and when.
    in_flight: HashMap<(usize, u32), (ConnId, Instant)>,
}

impl Session {
    /// Our handshake for `torrent`: the wire id with the BEP 52 upgrade bit for v2-capable
    /// torrents; as the responder to `theirs`, the hash it named, upgraded to the v2 hash when
    /// it set the upgrade bit for a hybrid (BEP 52 "Upgrade Path").
    pub(super) fn handshake_for(
        &self,
        t: &crate::torrent::Torrent,
        theirs: Option<&Handshake>,
    ) -> Handshake {
        let mut reserved = self.reserved();
        let hashes = t.info.hashes();
        if hashes.v2().is_some() {
            reserved = reserved.union(Reserved::V2);
        }
        let mut ours = Handshake::new(reserved, &hashes, self.peer_id);
        if let (Some(theirs), Some(v2)) = (theirs, hashes.v2()) {
            let named = theirs.names(&hashes);
            if named == Some(HashVersion::V2) || theirs.reserved.contains(Reserved::V2) {
                ours.info_hash = v2.truncated();
            }
        }
        ours
    }

    /// A connection completed its handshake: note whether it speaks v2.
    pub(super) fn hashes_conn_established(&mut self, conn: ConnId, theirs: &Handshake) {
        let Some(t) = self
            .conns
            .get(conn.0)
            .and_then(|c| c.torrent)
            .and_then(|t| self.torrents.get(t.0))
        else {
            return;
        };
        let hashes = t.info.hashes();
        let v2 = match t.info.version() {
            Version::V1 => false,
            Version::V2 => true,
            Version::Hybrid => {
                theirs.names(&hashes) == Some(HashVersion::V2)
                    || theirs.reserved.contains(Reserved::V2)
            }
        };
        self.hash_transfer.conns.insert(
            conn,
            ConnHashes {
                v2,
                budget: TokenBucket::new(HASH_REQUEST_RATE, HASH_REQUEST_BURST),
                over_budget: 0,
                outstanding: Vec::new(),
                refused: Vec::new(),
            },
        );
    }

    /// A connection closed: its chunks in flight go back to be asked of others.
    pub(super) fn hashes_conn_closed(&mut self, conn: ConnId) {
        self.hash_transfer.conns.remove(&conn);
        self.leaf_hashes.conn_closed(conn);
        for fetch in self.hash_transfer.fetches.values_mut() {
            fetch.in_flight.retain(|_, (c, _)| *c != conn);
        }
    }

    /// A torrent left the session.
    pub(super) fn hashes_torrent_removed(&mut self, torrent: TorrentId) {
        self.hash_transfer.fetches.remove(&torrent);
        self.leaf_hashes.torrent_removed(torrent);
        self.v2_suspects_removed(torrent);
    }

    /// A peer's `hash request`: answer it from our tree, or reject it; a flood closes the
    /// connection.
    pub(super) fn on_hash_request(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        request: HashRequest,
    ) {
        let Some(state) = self.hash_transfer.conns.get_mut(&conn) else {
            return;
        };
        if !state.budget.take(now, 1) {
            state.over_budget += 1;
            if state.over_budget > MAX_OVER_BUDGET {
                self.close_conn(
                    now,
                    conn,
                    DisconnectReason::Violation(Violation::HashRequestFlood),
                    true,
                );
                return;
            }
            self.send_to(conn, &Message::HashReject(request));
            return;
        }
        state.over_budget = 0;
        if self.is_leaf_request(torrent, &request) {
            self.serve_leaf_request(now, torrent, conn, request);
            return;
        }
        let answer = self.answer_hash_request(torrent, &request);
        let message = match answer {
            Some(hashes) => Message::Hashes {
                request,
                hashes: Bytes::from(hashes.concat()),
            },
            None => Message::HashReject(request),
        };
        self.send_to(conn, &message);
    }

    fn answer_hash_request(
        &mut self,
        torrent: TorrentId,
        request: &HashRequest,
    ) -> Option<Vec<Hash256>> {
        if request.length > MAX_HASH_REQUEST_LEN {
            return None;
        }
        let t = self.torrents.get_mut(torrent.0)?;
        let info = t.info.clone();
        let state = t.v2.as_mut()?;
        let file = state.file_by_root(&info, &request.pieces_root)?;
        let tree = state.tree(&info, file)?;
        tree.hashes(&range_of(request))
    }

    pub(super) fn send_to(&mut self, conn: ConnId, message: &Message) {
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.peer.send_message(message);
        }
    }

    /// A peer's `hashes`: if they answer our request and prove themselves against the file's
    /// root, keep them; complete layers are stored.
    pub(super) fn on_hashes(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        request: HashRequest,
        hashes: &Bytes,
    ) {
        let Some(state) = self.hash_transfer.conns.get_mut(&conn) else {
            return;
        };
        // BEP 52: hashes "MUST correlate with a hash request"; others are ignored.
        let Some(at) = state.outstanding.iter().position(|r| *r == request) else {
            return;
        };
        state.outstanding.remove(at);
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let Some(v2) = t.v2.as_ref() else { return };
        if request.base_layer < v2.piece_height {
            // Leaf hashes we asked for to find a failed piece's bad blocks.
            self.on_leaf_answer(now, torrent, &request, hashes);
            return;
        }
        let Some(file) = v2.file_by_root(&t.info, &request.pieces_root) else {
            return;
        };
        let chunk = request.index / CHUNK;
        let fetch = self.hash_transfer.fetches.entry(torrent).or_default();
        fetch.in_flight.remove(&(file, chunk));
        let entry = &t.info.files()[file];
        let height = merkle::tree_height(entry.length());
        let nodes: Vec<Hash256> = hashes
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect();
        let verified = hashes.len() % 32 == 0
            && request.base_layer == v2.piece_height
            && merkle::verify_hashes(
                entry.pieces_root().expect("a file with a layer has a root"),
                height,
                &range_of(&request),
                &nodes,
            )
            .is_ok();
        if !verified {
            // A wrong answer: ask someone else (the peer is not punished further: it may
            // simply have a different tree in mind, e.g. after our request timed out).
            if let Some(s) = self.hash_transfer.conns.get_mut(&conn) {
                s.refused.push((file, chunk));
            }
            return;
        }
        let pieces = entry.length().div_ceil(u64::from(t.info.piece_length())) as usize;
        let chunks_total = pieces.div_ceil(CHUNK as usize);
        let start = (chunk * CHUNK) as usize;
        let keep = (pieces - start.min(pieces)).min(request.length as usize);
        let chunks = fetch
            .chunks
            .entry(file)
            .or_insert_with(|| vec![None; chunks_total]);
        if let Some(slot) = chunks.get_mut(chunk as usize) {
            *slot = Some(nodes[..keep].to_vec());
        }
        if chunks.iter().all(Option::is_some) {
            let layer: Vec<Hash256> = chunks.iter().flatten().flatten().copied().collect();
            fetch.chunks.remove(&file);
            let t = self.torrents.get_mut(torrent.0).expect("looked up above");
            let v2 = t.v2.as_mut().expect("looked up above");
            let new = v2.set_layer(file, layer);
            if new {
                // A hybrid's pieces of this file passed by SHA-1 alone so far.
                self.recheck_file(now, torrent, file);
            }
            let t = self.torrents.get_mut(torrent.0).expect("looked up above");
            let v2 = t.v2.as_mut().expect("looked up above");
            if new && v2.complete() {
                self.hash_transfer.fetches.remove(&torrent);
                self.outputs
                    .push_back(Output::Event(Event::PieceLayersComplete { torrent }));
                // A v2-only torrent may request blocks now.
                self.pump_torrent(now, torrent);
            }
        }
    }

    /// Sends a hash request of ours that is not a layer chunk (leaf hashes of a failed piece,
    /// see `v2_ban`) to `conn`, if it speaks v2 and has room; whether it went.
    pub(super) fn send_own_hash_request(&mut self, conn: ConnId, request: HashRequest) -> bool {
        let Some(state) = self.hash_transfer.conns.get_mut(&conn) else {
            return false;
        };
        if !state.v2 || state.outstanding.len() >= MAX_OUTSTANDING_PER_PEER {
            return false;
        }
        state.outstanding.push(request);
        self.send_to(conn, &Message::HashRequest(request));
        true
    }

    /// A peer refused a hash request of ours: ask another peer.
    pub(super) fn on_hash_reject(
        &mut self,
        torrent: TorrentId,
        conn: ConnId,
        request: HashRequest,
    ) {
        let Some(state) = self.hash_transfer.conns.get_mut(&conn) else {
            return;
        };
        let Some(at) = state.outstanding.iter().position(|r| *r == request) else {
            return;
        };
        state.outstanding.remove(at);
        let leaves = self
            .torrents
            .get(torrent.0)
            .and_then(|t| t.v2.as_ref())
            .is_some_and(|v2| request.base_layer < v2.piece_height);
        if leaves {
            // A failed piece's leaf hashes: another peer was asked too (see `v2_ban`).
            return;
        }
        let Some(file) = self
            .torrents
            .get(torrent.0)
            .and_then(|t| t.v2.as_ref()?.file_by_root(&t.info, &request.pieces_root))
        else {
            return;
        };
        let chunk = request.index / CHUNK;
        state.refused.push((file, chunk));
        if let Some(fetch) = self.hash_transfer.fetches.get_mut(&torrent) {
            fetch.in_flight.remove(&(file, chunk));
        }
    }

    /// Asks `conn` for chunks of missing piece layers, if its torrent lacks some.
    pub(super) fn pump_hashes(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get(conn.0) else {
            return;
        };
        let Some(torrent) = c.torrent else { return };
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let Some(v2) = t.v2.as_ref().filter(|v| !v.complete()) else {
            return;
        };
        if !c.peer.is_established() || !t.is_active() {
            return;
        }
        let Some(state) = self.hash_transfer.conns.get_mut(&conn) else {
            return;
        };
        if !state.v2 || state.outstanding.len() >= MAX_OUTSTANDING_PER_PEER {
            return;
        }
        let peer_has = c.peer.peer_has();
        let fetch = self.hash_transfer.fetches.entry(torrent).or_default();
        let info = &t.info;
        let piece_length = u64::from(info.piece_length());
        let mut requests = Vec::new();
        'files: for file in v2.missing_files() {
            let entry = &info.files()[file];
            let pieces = entry.length().div_ceil(piece_length);
            let first_piece = entry.offset() / piece_length;
            let chunks = pieces.div_ceil(u64::from(CHUNK)) as u32;
            let done = fetch.chunks.get(&file);
            for chunk in 0..chunks {
                if state.outstanding.len() + requests.len() >= MAX_OUTSTANDING_PER_PEER {
                    break 'files;
                }
                if done.is_some_and(|d| d.get(chunk as usize).is_some_and(Option::is_some)) {
                    continue;
                }
                let stale = fetch.in_flight.get(&(file, chunk)).is_some_and(|(_, at)| {
                    now.saturating_duration_since(*at) >= HASH_REQUEST_TIMEOUT
                });
                if fetch.in_flight.contains_key(&(file, chunk)) && !stale {
                    continue;
                }
                if state.refused.contains(&(file, chunk)) {
                    continue;
                }
                // BEP 52: prefer peers certain to have the hashes: those with a piece of the chunk.
                let start = u64::from(chunk * CHUNK);
                let end = pieces.min(start + u64::from(CHUNK));
                let has_some = peer_has.is_some_and(|h| {
                    (first_piece + start..first_piece + end).any(|p| h.get(p as u32))
                });
                if !has_some {
                    continue;
                }
                let remaining = (pieces - start) as u32;
                let length = remaining.next_power_of_two().clamp(2, CHUNK);
                let height = merkle::tree_height(entry.length());
                let request = HashRequest {
                    pieces_root: *entry
                        .pieces_root()
                        .expect("a file needing a layer has a root"),
                    base_layer: v2.piece_height,
                    index: chunk * CHUNK,
                    length,
                    proof_layers: height - v2.piece_height - 1,
                };
                fetch.in_flight.insert((file, chunk), (conn, now));
                requests.push(request);
            }
        }
        if requests.is_empty() {
            return;
        }
        state.outstanding.extend_from_slice(&requests);
        let c = self.conns.get_mut(conn.0).expect("looked up above");
        for r in requests {
            c.peer.send_message(&Message::HashRequest(r));
        }
    }
}

/// A wire hash request's range, for the merkle module.
pub(super) fn range_of(r: &HashRequest) -> HashRange {
    HashRange {
        base_layer: r.base_layer,
        index: r.index,
        length: r.length,
        proof_layers: r.proof_layers,
    }
}
