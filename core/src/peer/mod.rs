//! One peer connection's machine: handshake phases, choke and interest state both ways, the
//! request pipeline and its timeouts, and every per-peer limit (DESIGN.md, "A connection, layer
//! by layer").
//!
//! The machine is transport-agnostic (TCP or uTP, encrypted or not: it sees plaintext bytes) and
//! never chooses pieces: the torrent hands it blocks to request (`PeerConn::request`) and
//! blocks to send (`PeerConn::send_block`). It reports what the peer did as peer events.
//!
//! # States
//!
//! ```text
//! Connecting ──connected──▶ AwaitingHandshake ──handshake──▶ Established ──▶ Closed
//!                 (incoming connections start in AwaitingHandshake)
//! ```
//!
//! Invariants, checked by `debug_assert_invariants` in tests:
//! - `outstanding` holds each of our requests at most once, and only while `Established`;
//! - `inbound` holds at most `max_inbound` requests, each valid for the torrent's geometry;
//! - nothing is queued for sending after `Closed`;
//! - the peer's bitfield, once known, has the torrent's piece count.

mod pending;
mod reason;
mod requests;

pub use reason::{DisconnectReason, Violation};

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::bitfield::Bitfield;
use crate::id::PeerId;
use crate::metainfo::{Layout, BLOCK_LEN};
use crate::picker::PeerPieces;
use crate::time::{Duration, Instant};
use crate::wire::{
    encode_piece_header, BlockRequest, Decoded, ExtendedHandshake, Framer, Handshake, HashRequest,
    Message, Reserved, WireLimits,
};

use requests::{Outstanding, Rate};

/// Timeouts and bounds of one connection; part of the session's `Config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// How long a connection may take from accept/connect to a complete handshake.
    pub handshake_timeout: Duration,
    /// How long a connection may stay silent before it is closed (BEP 3 suggests two minutes).
    pub idle_timeout: Duration,
    /// How long after our last message we send a keep-alive.
    pub keepalive_interval: Duration,
    /// How long a request may go unanswered before the peer counts as snubbing us and its
    /// requests go back to the pool.
    pub request_timeout: Duration,
    /// The most requests from the peer we queue; advertised as BEP 10 `reqq`.
    pub max_inbound_requests: u32,
    /// How long the outgoing pipeline should take to drain at the peer's measured rate; the
    /// pipeline depth follows from it.
    pub pipeline_time: Duration,
}

impl PeerConfig {
    /// Defaults close to libtorrent's: 20 s handshake, 120 s idle, 90 s keep-alive, 30 s request
    /// timeout, 500 queued inbound requests, a 3 s pipeline.
    pub const DEFAULT: Self = Self {
        handshake_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(120),
        keepalive_interval: Duration::from_secs(90),
        request_timeout: Duration::from_secs(30),
        max_inbound_requests: 500,
        pipeline_time: Duration::from_secs(3),
    };
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The largest block a peer may request from us (BEP 3: 16 KiB).
pub const MAX_REQUEST_LEN: u32 = BLOCK_LEN;

/// The `reqq` we assume for a peer that does not say (libtorrent's default, BEP 10).
const DEFAULT_PEER_REQQ: u32 = 250;

/// The fewest and most requests we keep in flight to one peer.
const MIN_PIPELINE: u32 = 4;
const MAX_PIPELINE: u32 = 2000;

/// How many withdrawn requests we remember (enough for a full pipeline).
const MAX_WITHDRAWN: usize = MAX_PIPELINE as usize;

/// How many allowed-fast pieces we grant a peer that has few pieces (BEP 6 suggests 10).
pub(crate) const ALLOWED_FAST_COUNT: usize = 10;

/// How many of the peer's `suggest piece` messages we remember (the most recent).
const MAX_SUGGESTED: usize = 16;

/// What the peer did, for the session and the torrent to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerEvent {
    /// The peer's set of pieces changed: a bitfield, have-all or have-none replaced it
    /// (`old` is the set before, usually empty; `new` the set as of this message: later
    /// messages in the same batch may already have changed the peer's current set).
    BitfieldReplaced { old: Bitfield, new: Bitfield },
    /// The peer announced a piece; `now_full` says whether that completed its set (as of
    /// this message, not of the end of the batch).
    Have { piece: u32, now_full: bool },
    /// The peer unchoked us, or allowed-fast pieces arrived: requests may go out.
    CanRequest,
    /// The peer's interest in our pieces changed.
    InterestChanged,
    /// A block we requested arrived.
    Block { request: BlockRequest, data: Bytes },
    /// Requests that will not be answered any more (choke without fast extension, reject,
    /// timeout): their blocks go back to the pool.
    RequestsDropped(Vec<BlockRequest>),
    /// The peer wants a block that we must read from disk before [`PeerConn::send_block`].
    WantsBlock(BlockRequest),
    /// The peer sent a BEP 10 extended message other than the handshake.
    Extended { id: u8, payload: Bytes },
    /// The peer's DHT port (BEP 5).
    DhtPort(u16),
    /// The peer asks for merkle hashes (BEP 52); the session answers with `hashes` or
    /// `hash reject` ([`PeerConn::send_message`]).
    HashRequest(HashRequest),
    /// The peer answered a hash request of ours (BEP 52); unchecked.
    Hashes { request: HashRequest, hashes: Bytes },
    /// The peer will not answer a hash request of ours (BEP 52).
    HashReject(HashRequest),
    /// The peer sent (or updated) its BEP 10 extension handshake: see [`PeerConn::remote`].
    ExtendedHandshake,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// We asked the runtime to connect.
    Connecting,
    /// The transport is up; we wait for the peer's handshake.
    AwaitingHandshake,
    /// Handshakes exchanged.
    Established,
    /// Finished; only the reason is left.
    Closed(DisconnectReason),
}

/// What we learned from the peer's handshake and extension handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) peer_id: PeerId,
    pub(crate) reserved: Reserved,
    pub(crate) extended: Option<ExtendedHandshake>,
}

/// One peer connection.
#[derive(Debug)]
pub(crate) struct PeerConn {
    addr: SocketAddr,
    outgoing: bool,
    phase: Phase,
    config: PeerConfig,
    recv: BytesMut,
    /// Bytes received after those in `recv` that arrived in a separate buffer while `recv` held
    /// part of a frame (see [`PeerConn::on_received`]); framing moves on to them once `recv`'s
    /// frame is complete.
    recv_next: BytesMut,
    framer: Framer,
    remote: Option<Remote>,
    /// The extensions both sides set.
    shared: Reserved,
    /// Whether a message that ends the bitfield window has arrived (a bitfield must come first).
    first_message_seen: bool,
    /// Whether the peer announced its pieces (bitfield, have-all or have-none).
    set_announced: bool,

    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    /// The peer's pieces; `None` until the torrent's piece count is known.
    peer_has: Option<Bitfield>,

    /// Our requests to the peer, oldest first.
    outstanding: VecDeque<Outstanding>,
    /// Pieces the peer lets us request while it chokes us (BEP 6).
    allowed_fast_in: Vec<u32>,
    /// Pieces we let the peer request while we choke it (BEP 6).
    allowed_fast_out: Vec<u32>,
    /// Pieces the peer suggested we download (BEP 6), oldest first.
    suggested_in: Vec<u32>,
    /// The peer's requests we have not answered yet, oldest first.
    inbound: VecDeque<BlockRequest>,
    /// Of `inbound`, those handed to the torrent for reading.
    reading: Vec<BlockRequest>,
    /// Requests we withdrew (cancel, snub, choke without BEP 6) whose blocks may still arrive.
    withdrawn: VecDeque<BlockRequest>,

    /// Requests from the peer refused in a row (choked, not ours, or queue full) since the
    /// last one we queued or our last unchoke: far more than our queue means a flood.
    refused_requests: u32,

    snubbed: bool,
    download: Rate,
    upload: Rate,
    connected_at: Instant,
    last_received: Instant,
    last_sent: Instant,
    last_block: Instant,

    /// Small messages not yet handed to the runtime; coalesced into one send.
    send_buf: BytesMut,
    /// What the peer said about its pieces while the torrent's metadata is unknown (BEP 9);
    /// `None` once it is known (see `pending`).
    pending: Option<pending::PendingPieces>,
    /// Sends ready for the runtime, in order: a head and, for a piece, its block.
    sends: VecDeque<(Bytes, Option<Bytes>)>,
    events: VecDeque<PeerEvent>,
}

impl PeerConn {
    /// A connection we are opening to `addr`.
    pub(crate) fn outgoing(now: Instant, addr: SocketAddr, config: PeerConfig) -> Self {
        Self::new(now, addr, true, config)
    }

    /// A connection the runtime accepted from `addr`.
    pub(crate) fn incoming(now: Instant, addr: SocketAddr, config: PeerConfig) -> Self {
        let mut conn = Self::new(now, addr, false, config);
        conn.phase = Phase::AwaitingHandshake;
        conn
    }

    fn new(now: Instant, addr: SocketAddr, outgoing: bool, config: PeerConfig) -> Self {
        Self {
            addr,
            outgoing,
            phase: Phase::Connecting,
            config,
            recv: BytesMut::new(),
            recv_next: BytesMut::new(),
            framer: Framer::new(WireLimits::DEFAULT),
            remote: None,
            shared: Reserved::NONE,
            first_message_seen: false,
            set_announced: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            peer_has: None,
            outstanding: VecDeque::new(),
            allowed_fast_in: Vec::new(),
            allowed_fast_out: Vec::new(),
            suggested_in: Vec::new(),
            inbound: VecDeque::new(),
            reading: Vec::new(),
            withdrawn: VecDeque::new(),
            refused_requests: 0,
            snubbed: false,
            download: Rate::default(),
            upload: Rate::default(),
            connected_at: now,
            last_received: now,
            last_sent: now,
            last_block: now,
            send_buf: BytesMut::new(),
            pending: None,
            sends: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ---- getters -------------------------------------------------------------------------

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn is_outgoing(&self) -> bool {
        self.outgoing
    }

    pub(crate) fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    pub(crate) fn is_awaiting_handshake(&self) -> bool {
        self.phase == Phase::AwaitingHandshake
    }

    pub(crate) fn closed_reason(&self) -> Option<&DisconnectReason> {
        match &self.phase {
            Phase::Closed(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    pub(crate) fn peer_has(&self) -> Option<&Bitfield> {
        self.peer_has.as_ref()
    }

    pub(crate) fn is_choking_peer(&self) -> bool {
        self.am_choking
    }

    pub(crate) fn is_interested(&self) -> bool {
        self.am_interested
    }

    pub(crate) fn peer_is_choking(&self) -> bool {
        self.peer_choking
    }

    pub(crate) fn peer_is_interested(&self) -> bool {
        self.peer_interested
    }

    pub(crate) fn is_snubbed(&self) -> bool {
        self.snubbed
    }

    pub(crate) fn fast(&self) -> bool {
        self.shared.contains(Reserved::FAST)
    }

    /// Bytes per second of block payload received, averaged over the last few seconds.
    pub(crate) fn download_rate(&self, now: Instant) -> u64 {
        self.download.per_second(now)
    }

    /// Bytes per second of block payload sent.
    pub(crate) fn upload_rate(&self, now: Instant) -> u64 {
        self.upload.per_second(now)
    }

    /// Block payload bytes received on this connection.
    pub(crate) fn downloaded_total(&self) -> u64 {
        self.download.total()
    }

    /// Block payload bytes sent on this connection.
    pub(crate) fn uploaded_total(&self) -> u64 {
        self.upload.total()
    }

    pub(crate) fn outstanding_count(&self) -> usize {
        self.outstanding.len()
    }

    /// When the transport connected (or the connection was accepted).
    pub(crate) fn connected_at(&self) -> Instant {
        self.connected_at
    }

    /// What the peer offers us now, for the picker: its pieces, its allowed-fast pieces while
    /// it chokes us, its suggestions. `None` before the handshake.
    pub(crate) fn pieces(&self) -> Option<PeerPieces<'_>> {
        Some(PeerPieces {
            has: self.peer_has.as_ref()?,
            allowed_fast: self.peer_choking.then_some(&self.allowed_fast_in[..]),
            suggested: &self.suggested_in,
            outstanding: self.outstanding.len(),
        })
    }

    /// Whether the peer has requests we have not started reading.
    pub(crate) fn has_blocks_to_read(&self) -> bool {
        self.inbound.len() > self.reading.len()
    }

    // ---- transport -----------------------------------------------------------------------

    /// The transport connected: send our handshake.
    pub(crate) fn on_connected(&mut self, now: Instant, ours: &Handshake) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.phase = Phase::AwaitingHandshake;
        self.connected_at = now;
        self.last_received = now;
        self.send_handshake(now, ours);
    }

    /// Appends received bytes; call [`PeerConn::take_handshake`] or
    /// [`PeerConn::process_messages`] next.
    pub(crate) fn on_received(&mut self, now: Instant, data: BytesMut) {
        if matches!(self.phase, Phase::Closed(_)) || data.is_empty() {
            return;
        }
        self.last_received = now;
        let adjacent = self.recv.as_ptr().wrapping_add(self.recv.len()) == data.as_ptr();
        if !self.recv_next.is_empty() {
            self.recv_next.unsplit(data);
        } else if self.recv.is_empty() {
            // Keep the runtime's buffer: no copy on the common path.
            self.recv = data;
        } else if adjacent || !self.is_established() {
            // Adjacent halves of one buffer join without a copy; before the handshake is done
            // there are only a few bytes to copy.
            self.recv.unsplit(data);
        } else {
            // A frame split across two separate buffers: rather than copying all of `data`
            // behind it, `refill` copies only the frame's missing bytes.
            self.recv_next = data;
        }
    }

    /// When `recv` holds no complete frame, moves bytes from `recv_next` into it: all of them
    /// (without a copy) if `recv` is empty, else just enough to complete its frame (a copy of
    /// less than one frame). Returns whether anything moved.
    fn refill(&mut self) -> bool {
        if self.recv_next.is_empty() {
            return false;
        }
        if self.recv.is_empty() {
            self.recv = std::mem::take(&mut self.recv_next);
            return true;
        }
        let mut moved = false;
        while !self.recv_next.is_empty() {
            let missing = Framer::missing(&self.recv);
            if missing == 0 {
                break;
            }
            let take = missing.min(self.recv_next.len());
            let head = self.recv_next.split_to(take);
            join_frame(&mut self.recv, head);
            moved = true;
        }
        moved
    }

    /// Lets go of receive buffers whose bytes are all framed. An empty `BytesMut` split off
    /// the runtime's read buffer still holds that whole allocation alive (16 KiB or more); an
    /// idle connection keeping it would cost the full buffer per connection.
    fn release_drained(&mut self) {
        if self.recv.is_empty() {
            self.recv = BytesMut::new();
        }
        if self.recv_next.is_empty() {
            self.recv_next = BytesMut::new();
        }
    }

    /// Decodes the peer's handshake if all of it has arrived.
    pub(crate) fn take_handshake(&mut self) -> Result<Option<Handshake>, DisconnectReason> {
        debug_assert_eq!(self.phase, Phase::AwaitingHandshake);
        match Handshake::decode(&self.recv).map_err(DisconnectReason::Wire)? {
            Decoded::Need(_) => Ok(None),
            Decoded::Ready(handshake, consumed) => {
                let _ = self.recv.split_to(consumed);
                self.release_drained();
                Ok(Some(handshake))
            }
        }
    }

    /// The peer's handshake was accepted for a torrent of `num_pieces` pieces. Sends our
    /// handshake (if the peer connected to us), our extension handshake and our pieces.
    pub(crate) fn establish(
        &mut self,
        now: Instant,
        theirs: &Handshake,
        ours: &Handshake,
        extended: Option<&ExtendedHandshake>,
        our_pieces: &Bitfield,
    ) {
        self.accept_handshake(now, theirs, ours);
        self.framer
            .set_limits(WireLimits::DEFAULT.with_num_pieces(our_pieces.len()));
        self.peer_has = Some(Bitfield::new(our_pieces.len()));
        if let (Some(ext), true) = (extended, self.shared.contains(Reserved::EXTENSION_PROTOCOL)) {
            self.queue(&ext.to_message());
        }
        // BEP 6: have-all / have-none replace an all-ones or empty bitfield; BEP 3: a peer with
        // no pieces may skip the bitfield.
        if self.fast() && our_pieces.is_full() {
            self.queue(&Message::HaveAll);
        } else if self.fast() && our_pieces.is_clear() {
            self.queue(&Message::HaveNone);
        } else if !our_pieces.is_clear() {
            self.queue(&Message::Bitfield(Bytes::copy_from_slice(
                our_pieces.as_bytes(),
            )));
        }
    }

    /// The handshake exchange is complete: answers an incoming peer with `ours`, records the
    /// peer and the reserved bits both sides set.
    fn accept_handshake(&mut self, now: Instant, theirs: &Handshake, ours: &Handshake) {
        if !self.outgoing {
            self.send_handshake(now, ours);
        }
        self.phase = Phase::Established;
        self.shared = ours.reserved.intersection(theirs.reserved);
        self.remote = Some(Remote {
            peer_id: theirs.peer_id,
            reserved: theirs.reserved,
            extended: None,
        });
    }

    fn send_handshake(&mut self, now: Instant, ours: &Handshake) {
        ours.encode(&mut self.send_buf);
        self.last_sent = now;
    }

    /// Ends the connection for `reason`. Our requests still outstanding are reported as dropped.
    pub(crate) fn close(&mut self, reason: DisconnectReason) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        let dropped: Vec<BlockRequest> = self.outstanding.drain(..).map(|o| o.request).collect();
        if !dropped.is_empty() {
            self.events.push_back(PeerEvent::RequestsDropped(dropped));
        }
        self.phase = Phase::Closed(reason);
        self.send_buf.clear();
        self.sends.clear();
        self.inbound.clear();
        self.reading.clear();
    }

    // ---- sending -------------------------------------------------------------------------

    fn queue(&mut self, message: &Message) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        if let Some(body) = message.encode(&mut self.send_buf) {
            let head = self.send_buf.split().freeze();
            self.sends.push_back((head, Some(body)));
        }
    }

    /// The next bytes for the runtime to send: a head and, for a block, the block itself.
    pub(crate) fn poll_send(&mut self, now: Instant) -> Option<(Bytes, Option<Bytes>)> {
        if let Some(send) = self.sends.pop_front() {
            self.last_sent = now;
            return Some(send);
        }
        if self.send_buf.is_empty() {
            return None;
        }
        self.last_sent = now;
        Some((self.send_buf.split().freeze(), None))
    }

    pub(crate) fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Sends a message the session composed (BEP 52 hash messages), once established.
    pub(crate) fn send_message(&mut self, message: &Message) {
        if self.is_established() {
            self.queue(message);
        }
    }

    /// Sends `have` for a piece we just verified.
    pub(crate) fn send_have(&mut self, piece: u32) {
        if self.is_established() {
            self.queue(&Message::Have(piece));
        }
    }

    /// BEP 5: sends our DHT port, if both sides set the DHT bit in the handshake.
    pub(crate) fn send_dht_port(&mut self, port: u16) {
        if self.is_established() && self.shared.contains(Reserved::DHT) {
            self.queue(&Message::Port(port));
        }
    }

    /// Tells the peer whether we want anything it has.
    pub(crate) fn set_interested(&mut self, interested: bool) {
        if !self.is_established() || self.am_interested == interested {
            return;
        }
        self.am_interested = interested;
        self.queue(&if interested {
            Message::Interested
        } else {
            Message::NotInterested
        });
    }

    /// Chokes or unchokes the peer. Choking rejects (fast extension) or forgets its queued
    /// requests, except those for allowed-fast pieces (BEP 6).
    pub(crate) fn set_choking(&mut self, choking: bool) {
        if !self.is_established() || self.am_choking == choking {
            return;
        }
        self.am_choking = choking;
        if !choking {
            self.refused_requests = 0;
            self.queue(&Message::Unchoke);
            return;
        }
        self.queue(&Message::Choke);
        // BEP 6: "choke first and then reject requests".
        let allowed = std::mem::take(&mut self.allowed_fast_out);
        let (keep, drop): (VecDeque<_>, VecDeque<_>) = self
            .inbound
            .drain(..)
            .partition(|r| allowed.contains(&r.index));
        self.allowed_fast_out = allowed;
        self.inbound = keep;
        self.reading.retain(|r| self.inbound.contains(r));
        if self.fast() {
            for r in drop {
                self.queue(&Message::RejectRequest(r));
            }
        }
    }

    /// Grants the peer pieces it may request while choked (BEP 6).
    pub(crate) fn allow_fast(&mut self, pieces: &[u32]) {
        if !self.fast() {
            return;
        }
        for &piece in pieces {
            if !self.allowed_fast_out.contains(&piece) {
                self.allowed_fast_out.push(piece);
                self.queue(&Message::AllowedFast(piece));
            }
        }
    }

    /// Sends a block the torrent read for one of the peer's requests, unless the request was
    /// cancelled or rejected meanwhile. Returns whether it was sent.
    pub(crate) fn send_block(&mut self, now: Instant, request: BlockRequest, data: Bytes) -> bool {
        let Some(at) = self.inbound.iter().position(|r| *r == request) else {
            return false;
        };
        self.inbound.remove(at);
        self.reading.retain(|r| *r != request);
        if data.len() != request.length as usize {
            return false;
        }
        encode_piece_header(
            request.index,
            request.begin,
            request.length,
            &mut self.send_buf,
        );
        let head = self.send_buf.split().freeze();
        self.sends.push_back((head, Some(data)));
        self.upload.add(now, u64::from(request.length));
        true
    }

    /// The torrent could not read a requested block: reject it (fast extension) or drop it.
    pub(crate) fn refuse_block(&mut self, request: BlockRequest) {
        if let Some(at) = self.inbound.iter().position(|r| *r == request) {
            self.inbound.remove(at);
            self.reading.retain(|r| *r != request);
            if self.fast() {
                self.queue(&Message::RejectRequest(request));
            }
        }
    }

    /// Requests the peer's blocks the torrent should now read, and marks them as being read.
    pub(crate) fn take_blocks_to_read(&mut self, max: usize, out: &mut Vec<BlockRequest>) {
        for r in self.inbound.iter() {
            if out.len() >= max {
                break;
            }
            if !self.reading.contains(r) {
                self.reading.push(*r);
                out.push(*r);
            }
        }
    }

    /// Remembers withdrawn requests, so their late blocks are not taken for unrequested ones.
    fn withdraw(&mut self, requests: &[BlockRequest]) {
        for r in requests {
            if self.withdrawn.len() >= MAX_WITHDRAWN {
                self.withdrawn.pop_front();
            }
            self.withdrawn.push_back(*r);
        }
    }

    // ---- timers --------------------------------------------------------------------------

    /// The earliest instant at which [`PeerConn::handle_timeout`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed(_) => None,
            Phase::Connecting | Phase::AwaitingHandshake => {
                Some(self.connected_at + self.config.handshake_timeout)
            }
            Phase::Established => {
                let mut deadline = (self.last_received + self.config.idle_timeout)
                    .min(self.last_sent + self.config.keepalive_interval);
                if let Some(oldest) = self.outstanding.front() {
                    if !self.snubbed {
                        deadline = deadline
                            .min(self.last_block.max(oldest.sent) + self.config.request_timeout);
                    }
                }
                Some(deadline)
            }
        }
    }

    /// Runs the timers due at `now`: handshake and idle timeouts close the connection, a
    /// stalled pipeline marks the peer snubbed and drops its requests, and a keep-alive goes
    /// out when we have been quiet.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed(_) => {}
            Phase::Connecting | Phase::AwaitingHandshake => {
                if now >= self.connected_at + self.config.handshake_timeout {
                    self.close(DisconnectReason::HandshakeTimeout);
                }
            }
            Phase::Established => {
                if now >= self.last_received + self.config.idle_timeout {
                    self.close(DisconnectReason::IdleTimeout);
                    return;
                }
                if let Some(oldest) = self.outstanding.front() {
                    let since = self.last_block.max(oldest.sent);
                    if !self.snubbed && now >= since + self.config.request_timeout {
                        self.snub();
                    }
                }
                if now >= self.last_sent + self.config.keepalive_interval && self.sends.is_empty() {
                    self.queue(&Message::KeepAlive);
                }
            }
        }
    }

    /// The peer stopped answering our requests: hand them back so other peers can serve them,
    /// and cancel them here. With the fast extension each cancelled request is still answered
    /// (by the block or a reject), which we then ignore.
    fn snub(&mut self) {
        self.snubbed = true;
        let dropped: Vec<BlockRequest> = self.outstanding.drain(..).map(|o| o.request).collect();
        for r in &dropped {
            self.queue(&Message::Cancel(*r));
        }
        self.withdraw(&dropped);
        if !dropped.is_empty() {
            self.events.push_back(PeerEvent::RequestsDropped(dropped));
        }
    }

    // ---- receiving -----------------------------------------------------------------------

    /// Frames and handles every complete message received so far. On a protocol error the
    /// connection closes and the error is returned.
    pub(crate) fn process_messages(
        &mut self,
        now: Instant,
        layout: &Layout,
        we_have: &Bitfield,
    ) -> Result<(), DisconnectReason> {
        debug_assert!(self.is_established() || self.closed_reason().is_some());
        while self.is_established() {
            let message = match self.framer.next(&mut self.recv) {
                Ok(Some(message)) => message,
                Ok(None) if self.refill() => continue,
                Ok(None) => {
                    self.release_drained();
                    break;
                }
                Err(e) => {
                    let reason = DisconnectReason::Wire(e);
                    self.close(reason.clone());
                    return Err(reason);
                }
            };
            if let Err(reason) = self.handle_message(now, message, layout, we_have) {
                self.close(reason.clone());
                return Err(reason);
            }
        }
        Ok(())
    }

    fn handle_message(
        &mut self,
        now: Instant,
        message: Message,
        layout: &Layout,
        we_have: &Bitfield,
    ) -> Result<(), DisconnectReason> {
        // BEP 3 / BEP 6: the bitfield (or have-all / have-none) comes first. Clients put the
        // BEP 10 handshake, allowed-fast grants and a DHT port before or after it, so those
        // (and keep-alives) do not end the window; any other message does.
        let first = !self.first_message_seen;
        if !matches!(
            message,
            Message::KeepAlive
                | Message::Extended { .. }
                | Message::AllowedFast(_)
                | Message::Port(_)
                | Message::Unknown { .. }
        ) {
            self.first_message_seen = true;
        }
        let num_pieces = layout.piece_count();
        let violation = |v| Err(DisconnectReason::Violation(v));
        let check_piece = |i: u32| {
            if i < num_pieces {
                Ok(())
            } else {
                Err(DisconnectReason::Violation(Violation::PieceOutOfRange(i)))
            }
        };
        match message {
            Message::KeepAlive => {}
            Message::Choke if !self.peer_choking => {
                self.peer_choking = true;
                // BEP 6: with the fast extension a choke no longer discards requests; the peer
                // rejects them one by one. Without it, everything outstanding is gone.
                if !self.fast() {
                    let dropped: Vec<BlockRequest> =
                        self.outstanding.drain(..).map(|o| o.request).collect();
                    self.withdraw(&dropped);
                    if !dropped.is_empty() {
                        self.events.push_back(PeerEvent::RequestsDropped(dropped));
                    }
                }
            }
            Message::Unchoke if self.peer_choking => {
                self.peer_choking = false;
                self.events.push_back(PeerEvent::CanRequest);
            }
            Message::Choke | Message::Unchoke => {}
            Message::Interested | Message::NotInterested => {
                let interested = matches!(message, Message::Interested);
                if self.peer_interested != interested {
                    self.peer_interested = interested;
                    self.events.push_back(PeerEvent::InterestChanged);
                }
            }
            Message::Have(i) => {
                check_piece(i)?;
                if let Some(has) = self.peer_has.as_mut() {
                    if has.set(i, true) {
                        let now_full = has.is_full();
                        self.events
                            .push_back(PeerEvent::Have { piece: i, now_full });
                    }
                }
            }
            Message::Bitfield(bytes) => {
                if !first && !self.set_announced {
                    return violation(Violation::BitfieldNotFirst);
                }
                let bitfield = Bitfield::from_bytes(&bytes, num_pieces)
                    .map_err(|e| DisconnectReason::Violation(Violation::BadBitfield(e)))?;
                if first {
                    self.set_announced = true;
                    self.replace_bitfield(bitfield);
                } else {
                    // aria2 1.36 announces its pieces again later in the connection (a second
                    // bitfield or have-all right after the first, or a bitfield after
                    // have-none). Read it as haves: pieces never leave a peer within a
                    // connection.
                    self.merge_bitfield(&bitfield);
                }
            }
            Message::HaveAll | Message::HaveNone => {
                if !self.fast() {
                    return violation(Violation::FastNotNegotiated);
                }
                if !first && !self.set_announced {
                    return violation(Violation::BitfieldNotFirst);
                }
                let all = matches!(message, Message::HaveAll);
                if first {
                    self.set_announced = true;
                    self.replace_bitfield(if all {
                        Bitfield::full(num_pieces)
                    } else {
                        Bitfield::new(num_pieces)
                    });
                } else if all {
                    // Repeated, as aria2 1.36 does (see the bitfield above).
                    self.merge_bitfield(&Bitfield::full(num_pieces));
                }
            }
            Message::Request(r) => self.on_request(r, layout, we_have)?,
            Message::Cancel(r) => {
                if let Some(at) = self.inbound.iter().position(|x| *x == r) {
                    // A block already being read is still sent: BEP 6 lets requests being
                    // processed complete, and without BEP 6 a late block is harmless.
                    if !self.reading.contains(&r) {
                        self.inbound.remove(at);
                        if self.fast() {
                            self.queue(&Message::RejectRequest(r));
                        }
                    }
                }
            }
            Message::Piece { index, begin, data } => {
                let request = BlockRequest {
                    index,
                    begin,
                    length: data.len() as u32,
                };
                match self.outstanding.iter().position(|o| o.request == request) {
                    Some(at) => {
                        self.outstanding.remove(at);
                        self.last_block = now;
                        self.snubbed = false;
                        self.download.add(now, u64::from(request.length));
                        self.events.push_back(PeerEvent::Block { request, data });
                    }
                    None => match self.withdrawn.iter().position(|w| *w == request) {
                        // A block we withdrew was already on its way: ignore it.
                        Some(at) => {
                            self.withdrawn.remove(at);
                        }
                        // BEP 6: "if a peer receives a piece that was never requested, the peer
                        // MUST close the connection". Without BEP 6 it is merely wasted bytes.
                        None if self.fast() => {
                            return violation(Violation::UnrequestedBlock(request));
                        }
                        None => {}
                    },
                }
            }
            Message::Port(port) => self.events.push_back(PeerEvent::DhtPort(port)),
            Message::SuggestPiece(i) => {
                if !self.fast() {
                    return violation(Violation::FastNotNegotiated);
                }
                check_piece(i)?;
                if !self.suggested_in.contains(&i) {
                    if self.suggested_in.len() >= MAX_SUGGESTED {
                        self.suggested_in.remove(0);
                    }
                    self.suggested_in.push(i);
                }
            }
            Message::RejectRequest(r) => {
                if !self.fast() {
                    return violation(Violation::FastNotNegotiated);
                }
                match self.outstanding.iter().position(|o| o.request == r) {
                    Some(at) => {
                        self.outstanding.remove(at);
                        self.events.push_back(PeerEvent::RequestsDropped(vec![r]));
                    }
                    // Rejects of requests we withdrew are expected.
                    None if self.withdrawn.contains(&r) => {}
                    None => return violation(Violation::UnrequestedReject(r)),
                }
            }
            Message::AllowedFast(i) => {
                if !self.fast() {
                    return violation(Violation::FastNotNegotiated);
                }
                check_piece(i)?;
                if !self.allowed_fast_in.contains(&i) && self.allowed_fast_in.len() < 64 {
                    self.allowed_fast_in.push(i);
                    if self.peer_choking {
                        self.events.push_back(PeerEvent::CanRequest);
                    }
                }
            }
            Message::Extended { id, payload } => self.on_extended(id, payload)?,
            // BEP 52: the session answers and checks hashes (it holds the trees).
            Message::HashRequest(r) => self.events.push_back(PeerEvent::HashRequest(r)),
            Message::Hashes { request, hashes } => {
                self.events.push_back(PeerEvent::Hashes { request, hashes });
            }
            Message::HashReject(r) => self.events.push_back(PeerEvent::HashReject(r)),
            // Unknown ids: ignoring an unknown message is what BEP 3 peers do.
            _ => {}
        }
        Ok(())
    }

    /// A BEP 10 extended message: the handshake is kept, others go to the session.
    fn on_extended(&mut self, id: u8, payload: Bytes) -> Result<(), DisconnectReason> {
        if !self.shared.contains(Reserved::EXTENSION_PROTOCOL) {
            return Err(DisconnectReason::Violation(
                Violation::ExtensionNotNegotiated,
            ));
        }
        if id == ExtendedHandshake::ID {
            // BEP 10: a bad extension handshake is ignored, not fatal.
            if let Ok(ext) = ExtendedHandshake::decode(&payload) {
                if let Some(remote) = self.remote.as_mut() {
                    remote.extended = Some(ext);
                    self.events.push_back(PeerEvent::ExtendedHandshake);
                }
            }
        } else {
            self.events.push_back(PeerEvent::Extended { id, payload });
        }
        Ok(())
    }

    /// Sends a BEP 10 extended message under the id the peer assigned to the extension
    /// (`remote_id`), if the extension protocol was negotiated. `body` follows `payload`
    /// (a ut_metadata piece).
    pub(crate) fn send_extended(&mut self, remote_id: u8, payload: &[u8], body: Option<&[u8]>) {
        if !self.is_established() || !self.shared.contains(Reserved::EXTENSION_PROTOCOL) {
            return;
        }
        let mut bytes = Vec::with_capacity(payload.len() + body.map_or(0, <[u8]>::len));
        bytes.extend_from_slice(payload);
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        self.queue(&Message::Extended {
            id: remote_id,
            payload: Bytes::from(bytes),
        });
    }

    /// The id the peer assigned to extension `name` in its extension handshake, if any.
    pub(crate) fn remote_extension(&self, name: &[u8]) -> Option<u8> {
        self.remote.as_ref()?.extended.as_ref()?.extension_id(name)
    }

    /// The peer no longer has `piece` (BEP 54 `lt_donthave`); returns whether it had it.
    pub(crate) fn forget_piece(&mut self, piece: u32) -> bool {
        let Some(has) = self
            .peer_has
            .as_ref()
            .filter(|h| piece < h.len() && h.get(piece))
        else {
            return false;
        };
        let mut new = has.clone();
        new.set(piece, false);
        self.replace_bitfield(new);
        true
    }

    /// The peer said whether it only uploads (BEP 21 `upload_only` message), after its
    /// extension handshake.
    pub(crate) fn set_remote_upload_only(&mut self, upload_only: bool) {
        if let Some(ext) = self.remote.as_mut().and_then(|r| r.extended.as_mut()) {
            ext.upload_only = upload_only;
        }
    }

    /// Adds the pieces of a repeated bitfield as if each came in a have message.
    fn merge_bitfield(&mut self, bitfield: &Bitfield) {
        let Some(has) = self.peer_has.as_mut() else {
            return;
        };
        for piece in bitfield.iter_set() {
            if has.set(piece, true) {
                let now_full = has.is_full();
                self.events.push_back(PeerEvent::Have { piece, now_full });
            }
        }
    }

    fn replace_bitfield(&mut self, bitfield: Bitfield) {
        let new = bitfield.clone();
        let old = self
            .peer_has
            .replace(bitfield)
            .unwrap_or_else(|| Bitfield::new(0));
        self.events
            .push_back(PeerEvent::BitfieldReplaced { old, new });
    }

    fn on_request(
        &mut self,
        r: BlockRequest,
        layout: &Layout,
        we_have: &Bitfield,
    ) -> Result<(), DisconnectReason> {
        if r.length == 0
            || r.length > MAX_REQUEST_LEN
            || layout.request(r.index, r.begin, r.length).is_none()
        {
            return Err(DisconnectReason::Violation(Violation::BadRequest(r)));
        }
        let allowed = !self.am_choking || self.allowed_fast_out.contains(&r.index);
        let max = self.config.max_inbound_requests as usize;
        // A duplicate of a queued request is answered once, by the block already coming.
        let duplicate = self.inbound.contains(&r);
        if duplicate || !allowed || !we_have.get(r.index) || self.inbound.len() >= max {
            // BEP 6: reject what we will not serve. A peer that keeps requesting far past our
            // advertised queue is flooding us: up to `max` refused requests in a row can be
            // ones that crossed our choke on the wire, more cannot. (The queue itself never
            // holds more than `max`, so it cannot tell a flood on its own.)
            self.refused_requests = self.refused_requests.saturating_add(1);
            if self.refused_requests > self.config.max_inbound_requests {
                return Err(DisconnectReason::Violation(Violation::RequestFlood));
            }
            if self.fast() && !duplicate {
                self.queue(&Message::RejectRequest(r));
            }
            return Ok(());
        }
        self.refused_requests = 0;
        self.inbound.push_back(r);
        self.events.push_back(PeerEvent::WantsBlock(r));
        Ok(())
    }

    // ---- our requests --------------------------------------------------------------------

    /// Whether we may send requests for `piece` now.
    pub(crate) fn may_request(&self, piece: u32) -> bool {
        self.is_established()
            && self.am_interested
            && (!self.peer_choking || self.allowed_fast_in.contains(&piece))
            && self.peer_has.as_ref().is_some_and(|b| b.get(piece))
    }

    /// Whether the peer is choking us with no allowed-fast pieces to fall back on.
    pub(crate) fn fully_choked(&self) -> bool {
        self.peer_choking && self.allowed_fast_in.is_empty()
    }

    /// How many more requests the pipeline wants, from the peer's rate, bounded by its `reqq`.
    pub(crate) fn request_slots(&self, now: Instant) -> u32 {
        if !self.is_established() || self.snubbed {
            return u32::from(self.is_established() && self.outstanding.is_empty());
        }
        let reqq = self
            .remote
            .as_ref()
            .and_then(|r| r.extended.as_ref())
            .and_then(|e| e.request_queue)
            .unwrap_or(DEFAULT_PEER_REQQ)
            .max(1);
        let by_rate = (self.download.per_second(now) as u128
            * self.config.pipeline_time.as_millis()
            / 1000
            / u128::from(BLOCK_LEN)) as u32;
        let depth = by_rate.clamp(MIN_PIPELINE, MAX_PIPELINE).min(reqq);
        depth.saturating_sub(self.outstanding.len() as u32)
    }

    /// Sends requests for blocks the torrent picked.
    pub(crate) fn request(&mut self, now: Instant, requests: &[BlockRequest]) {
        if !self.is_established() {
            return;
        }
        for r in requests {
            debug_assert!(
                !self.outstanding.iter().any(|o| o.request == *r),
                "the picker never hands a peer a block twice"
            );
            debug_assert!(
                self.may_request(r.index),
                "the picker only picks pieces the peer may serve"
            );
            self.outstanding.push_back(Outstanding {
                request: *r,
                sent: now,
            });
            self.queue(&Message::Request(*r));
        }
    }

    /// Withdraws one of our requests (another peer delivered the block in endgame): sends
    /// `cancel` and ignores the block if it still arrives. Returns whether it was outstanding.
    pub(crate) fn cancel(&mut self, request: BlockRequest) -> bool {
        let Some(at) = self.outstanding.iter().position(|o| o.request == request) else {
            return false;
        };
        self.outstanding.remove(at);
        self.queue(&Message::Cancel(request));
        self.withdraw(&[request]);
        true
    }

    /// Checks the invariants in the module documentation.
    #[cfg(debug_assertions)]
    pub(crate) fn debug_assert_invariants(&self) {
        let mut seen = std::collections::HashSet::new();
        for o in &self.outstanding {
            assert!(
                seen.insert(o.request),
                "request outstanding twice: {:?}",
                o.request
            );
        }
        assert!(self.inbound.len() <= self.config.max_inbound_requests as usize);
        if !self.is_established() {
            assert!(self.outstanding.is_empty() || self.phase == Phase::Connecting);
        }
        if matches!(self.phase, Phase::Closed(_)) {
            assert!(self.sends.is_empty() && self.send_buf.is_empty());
        }
        for r in &self.reading {
            assert!(
                self.inbound.contains(r),
                "reading a request no longer queued"
            );
        }
    }
}

/// Appends `head` (the start of the next buffer) to `recv` (the tail of a frame).
///
/// Halves of one buffer join in place. Otherwise the frame is copied into a buffer of exactly
/// its length: `BytesMut::unsplit` would copy into a new buffer sized after the one `recv` was
/// cut from (64 KiB for a runtime's 120 KiB read buffer), and a piece block cut from it holds
/// all of that until it is written and hashed, about one block in seven at full speed.
fn join_frame(recv: &mut BytesMut, head: BytesMut) {
    let adjacent = recv.as_ptr().wrapping_add(recv.len()) == head.as_ptr();
    if adjacent || recv.is_empty() || recv.capacity() - recv.len() >= head.len() {
        recv.unsplit(head);
        return;
    }
    let mut joined = BytesMut::with_capacity(recv.len() + head.len());
    joined.extend_from_slice(recv);
    joined.extend_from_slice(&head);
    *recv = joined;
}

#[cfg(test)]
mod tests_recv;
