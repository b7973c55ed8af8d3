//! A connection of a torrent whose metadata we do not have yet (a magnet link, BEP 9).
//!
//! Until the `info` dictionary arrives the piece count is unknown, so nothing about pieces can
//! be checked. The connection still speaks the protocol: it sends its handshake, extension
//! handshake and (with BEP 6) `have none`, keeps the peer's bitfield, `have`, `have all` and
//! `have none` as they came ([`PendingPieces`], bounded), refuses every request, and hands
//! extended messages to the session (ut_metadata). Once the metadata is known,
//! [`PeerConn::metadata_known`] checks what was kept against the piece count and the
//! connection carries on as any other.

use bytes::Bytes;

use super::{DisconnectReason, Message, PeerConn, PeerEvent, Violation};
use crate::bitfield::Bitfield;
use crate::time::Instant;
use crate::wire::{ExtendedHandshake, Handshake, Reserved, WireLimits};

/// The most `have` messages kept before the metadata is known; later ones are dropped (a peer
/// with that many pieces sends a bitfield).
const MAX_PENDING_HAVES: usize = 4096;

/// What the peer said about its pieces before we knew how many there are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PendingPieces {
    /// The bitfield, `have all` or `have none` (its length is checked later).
    base: PendingBase,
    /// Pieces announced with `have`, in order, at most [`MAX_PENDING_HAVES`].
    haves: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum PendingBase {
    /// Nothing (or `have none`).
    #[default]
    Nothing,
    /// A raw bitfield.
    Bitfield(Bytes),
    /// `have all` (BEP 6).
    All,
}

impl PeerConn {
    /// The peer's handshake was accepted for a torrent whose metadata we lack. Sends our
    /// handshake (if the peer connected to us), our extension handshake and, with BEP 6,
    /// `have none`.
    pub(crate) fn establish_pending(
        &mut self,
        now: Instant,
        theirs: &Handshake,
        ours: &Handshake,
        extended: &ExtendedHandshake,
    ) {
        self.accept_handshake(now, theirs, ours);
        self.framer.set_limits(WireLimits::DEFAULT);
        self.peer_has = None;
        self.pending = Some(PendingPieces::default());
        if self.shared.contains(Reserved::EXTENSION_PROTOCOL) {
            self.queue(&extended.to_message());
        }
        if self.fast() {
            self.queue(&Message::HaveNone);
        }
    }

    /// Whether the connection waits for the torrent's metadata.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Frames and handles every complete message received so far, before the metadata is
    /// known. On a protocol error the connection closes and the error is returned.
    pub(crate) fn process_messages_pending(&mut self) -> Result<(), DisconnectReason> {
        while self.is_established() {
            let message = match self.framer.next(&mut self.recv) {
                Ok(Some(message)) => message,
                // A frame split across two receive buffers (see `on_received`).
                Ok(None) if self.refill() => continue,
                Ok(None) => break,
                Err(e) => {
                    let reason = DisconnectReason::Wire(e);
                    self.close(reason.clone());
                    return Err(reason);
                }
            };
            if let Err(reason) = self.handle_pending_message(message) {
                self.close(reason.clone());
                return Err(reason);
            }
        }
        Ok(())
    }

    fn handle_pending_message(&mut self, message: Message) -> Result<(), DisconnectReason> {
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
        let violation = |v| Err(DisconnectReason::Violation(v));
        let fast = self.fast();
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        match message {
            Message::Bitfield(bytes) => {
                if !first && !self.set_announced {
                    return violation(Violation::BitfieldNotFirst);
                }
                if first {
                    self.set_announced = true;
                    pending.base = PendingBase::Bitfield(bytes);
                } else {
                    // Announced again (aria2 does): pieces never leave, so unite the two.
                    pending.base = match std::mem::take(&mut pending.base) {
                        PendingBase::Bitfield(old) if old.len() == bytes.len() => {
                            let united: Vec<u8> =
                                old.iter().zip(&bytes[..]).map(|(a, b)| a | b).collect();
                            PendingBase::Bitfield(Bytes::from(united))
                        }
                        PendingBase::Nothing => PendingBase::Bitfield(bytes),
                        other => other,
                    };
                }
            }
            Message::HaveAll | Message::HaveNone => {
                if !fast {
                    return violation(Violation::FastNotNegotiated);
                }
                if !first && !self.set_announced {
                    return violation(Violation::BitfieldNotFirst);
                }
                let all = matches!(message, Message::HaveAll);
                if first {
                    self.set_announced = true;
                    pending.base = if all {
                        PendingBase::All
                    } else {
                        PendingBase::Nothing
                    };
                } else if all {
                    pending.base = PendingBase::All;
                }
            }
            Message::Have(i) if pending.haves.len() < MAX_PENDING_HAVES => pending.haves.push(i),
            Message::Request(r) => {
                // We have nothing to give: refuse, and count it like any refused request.
                self.refused_requests = self.refused_requests.saturating_add(1);
                if self.refused_requests > self.config.max_inbound_requests {
                    return violation(Violation::RequestFlood);
                }
                if self.fast() {
                    self.queue(&Message::RejectRequest(r));
                }
            }
            Message::Piece { index, begin, data } if self.fast() => {
                // We request nothing before the metadata: BEP 6 says close.
                return violation(Violation::UnrequestedBlock(crate::wire::BlockRequest {
                    index,
                    begin,
                    length: data.len() as u32,
                }));
            }
            Message::SuggestPiece(_) | Message::RejectRequest(_) | Message::AllowedFast(_)
                if !self.fast() =>
            {
                return violation(Violation::FastNotNegotiated);
            }
            Message::Choke => self.peer_choking = true,
            Message::Unchoke => self.peer_choking = false,
            Message::Interested | Message::NotInterested => {
                let interested = matches!(message, Message::Interested);
                if self.peer_interested != interested {
                    self.peer_interested = interested;
                    self.events.push_back(PeerEvent::InterestChanged);
                }
            }
            Message::Extended { id, payload } => self.on_extended(id, payload)?,
            Message::Port(port) => self.events.push_back(PeerEvent::DhtPort(port)),
            // Suggestions and allowed-fast grants cannot be checked without the piece count
            // and are only advice; cancels and unrequested pieces without BEP 6 are harmless.
            _ => {}
        }
        Ok(())
    }

    /// The torrent's metadata arrived: checks what the peer said about its pieces against
    /// `num_pieces` and starts treating the connection as any other. On a violation the
    /// connection closes and the reason is returned.
    pub(crate) fn metadata_known(&mut self, num_pieces: u32) -> Result<(), DisconnectReason> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        if !self.is_established() {
            return Ok(());
        }
        let result = (|| {
            let mut has = match &pending.base {
                PendingBase::Nothing => Bitfield::new(num_pieces),
                PendingBase::All => Bitfield::full(num_pieces),
                PendingBase::Bitfield(bytes) => Bitfield::from_bytes(bytes, num_pieces)
                    .map_err(|e| DisconnectReason::Violation(Violation::BadBitfield(e)))?,
            };
            for &piece in &pending.haves {
                if piece >= num_pieces {
                    return Err(DisconnectReason::Violation(Violation::PieceOutOfRange(
                        piece,
                    )));
                }
                has.set(piece, true);
            }
            Ok(has)
        })();
        match result {
            Ok(has) => {
                self.framer
                    .set_limits(WireLimits::DEFAULT.with_num_pieces(num_pieces));
                self.peer_has = Some(Bitfield::new(num_pieces));
                if !has.is_clear() {
                    self.replace_bitfield(has);
                }
                Ok(())
            }
            Err(reason) => {
                self.close(reason.clone());
                Err(reason)
            }
        }
    }
}
