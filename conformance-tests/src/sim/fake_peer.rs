//! A scripted peer that speaks raw wire bytes, for hostile-input and protocol tests.

use std::net::SocketAddr;

use bitshoal_core::ext::{names, MetadataMessage};
use bitshoal_core::id::{InfoHashes, PeerId};
use bitshoal_core::time::Instant;
use bitshoal_core::wire::{
    BlockRequest, Decoded, ExtendedHandshake, Framer, Handshake, Message, Reserved, WireError,
    WireLimits,
};
use bytes::{Bytes, BytesMut};

/// What a [`FakePeer`] is set up with; see [`Sim::add_fake`](super::Sim::add_fake).
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The peer id it presents in [`FakePeer::handshake_for`].
    pub peer_id: PeerId,
    /// Whether nodes may connect to it (its address is then a listening address).
    pub listen: bool,
    /// Its access link.
    pub link: super::LinkProfile,
    /// A fixed address instead of the next free one (loopback only).
    pub addr: Option<SocketAddr>,
}

impl FakeConfig {
    /// A fake peer with this peer id that does not listen, on a LAN link.
    pub fn new(peer_id: PeerId) -> Self {
        Self {
            peer_id,
            listen: false,
            link: super::LinkProfile::LAN,
            addr: None,
        }
    }

    /// The same, listening for connections from nodes.
    #[must_use]
    pub fn listening(mut self) -> Self {
        self.listen = true;
        self
    }
}

/// Blocks a fake peer answers requests with, from a torrent's content.
#[derive(Clone, Debug)]
pub(crate) struct Serve {
    pub(crate) content: Bytes,
    pub(crate) piece_length: u32,
    /// Flip the first byte of every block sent.
    pub(crate) corrupt: bool,
    /// Serve only requests for blocks at this offset in their piece; reject the others (BEP 6).
    pub(crate) only_begin: Option<u32>,
}

/// The extended message id under which a fake peer receives `ut_metadata` (BEP 9), as its
/// extension handshakes from [`FakePeer::extended_handshake`] say.
pub const FAKE_UT_METADATA: u8 = 3;

/// How a fake peer answers `ut_metadata` requests (see [`FakePeer::serve_metadata`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataServe {
    /// With the right piece.
    Honest,
    /// With the right piece, one byte flipped (a liar the hash check catches).
    Corrupt,
    /// With the right piece but this `total_size`.
    WrongTotalSize(u64),
    /// With a reject.
    Reject,
}

/// A peer under the test's control: it sends whatever bytes the test gives it (see
/// [`Sim::fake_send`](super::Sim::fake_send) and friends) and records what it receives, decoded
/// with the wire codec.
///
/// It decodes the first 68 bytes it receives as a handshake, then length-prefixed messages. A
/// decoding error stops decoding (see [`FakePeer::decode_error`]); the raw byte count goes on.
#[derive(Debug)]
pub struct FakePeer {
    pub(crate) config: FakeConfig,
    pub(crate) addr: SocketAddr,
    /// Its one pipe and its side of it, once connected (or accepted).
    pub(crate) pipe: Option<(usize, usize)>,
    pub(crate) closed_at: Option<Instant>,
    recv: BytesMut,
    handshake: Option<(Instant, Handshake)>,
    framer: Framer,
    received: Vec<(Instant, Message)>,
    decode_error: Option<WireError>,
    bytes_received: u64,
    pub(crate) serve: Option<Serve>,
    /// Bytes sent in answer to the node's handshake (see [`FakePeer::greet_as_seed`]).
    greeting: Option<Bytes>,
    blocks_sent: u64,
    /// The `info` dictionary it serves over `ut_metadata`, and how.
    metadata: Option<(Bytes, MetadataServe)>,
    /// The node's extension handshake, once received.
    remote_extended: Option<ExtendedHandshake>,
    metadata_requests: u32,
}

impl FakePeer {
    pub(crate) fn new(config: FakeConfig, addr: SocketAddr) -> Self {
        Self {
            config,
            addr,
            pipe: None,
            closed_at: None,
            recv: BytesMut::new(),
            handshake: None,
            framer: Framer::new(WireLimits {
                max_block: 1 << 20,
                ..WireLimits::DEFAULT
            }),
            received: Vec::new(),
            decode_error: None,
            bytes_received: 0,
            serve: None,
            greeting: None,
            blocks_sent: 0,
            metadata: None,
            remote_extended: None,
            metadata_requests: 0,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.config.peer_id
    }

    /// A handshake for a torrent with this fake's peer id and the given reserved bits.
    pub fn handshake_for(&self, hashes: &InfoHashes, reserved: Reserved) -> Handshake {
        Handshake::new(reserved, hashes, self.config.peer_id)
    }

    /// Whether it has a connection (connected, or accepted from a node) that it did not close.
    pub fn is_connected(&self) -> bool {
        self.pipe.is_some()
    }

    /// When the other side closed the connection (or refused it), if it did.
    pub fn closed_at(&self) -> Option<Instant> {
        self.closed_at
    }

    /// The handshake received, and when.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref().map(|(_, h)| h)
    }

    /// Every message received after the handshake, with its arrival time, in order.
    pub fn received(&self) -> &[(Instant, Message)] {
        &self.received
    }

    /// The messages received, without times.
    pub fn messages(&self) -> impl Iterator<Item = &Message> + '_ {
        self.received.iter().map(|(_, m)| m)
    }

    /// The requests received, in order.
    pub fn requests(&self) -> Vec<BlockRequest> {
        self.messages()
            .filter_map(|m| match m {
                Message::Request(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    /// Forgets the messages received so far (the handshake is kept).
    pub fn clear_received(&mut self) {
        self.received.clear();
    }

    /// The codec error that stopped decoding, if the node sent bytes it refuses.
    pub fn decode_error(&self) -> Option<&WireError> {
        self.decode_error.as_ref()
    }

    /// Raw bytes received, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Answers every request from now on with the block cut from `content` (a torrent's bytes
    /// in layout order, pieces of `piece_length`), as a seed would.
    pub fn serve(&mut self, content: Bytes, piece_length: u32) {
        self.serve = Some(Serve {
            content,
            piece_length,
            corrupt: false,
            only_begin: None,
        });
    }

    /// Answers every request from now on with a corrupt block: the right one with its first
    /// byte flipped (a peer that only sends bad data).
    pub fn serve_corrupt(&mut self, content: Bytes, piece_length: u32) {
        self.serve = Some(Serve {
            content,
            piece_length,
            corrupt: true,
            only_begin: None,
        });
    }

    /// Answers requests for the block at offset `begin` of each piece with that block corrupt
    /// (first byte flipped), and rejects every other request (BEP 6 `reject request`): the
    /// node gets the rest of each piece elsewhere, so its failed pieces have several senders.
    pub fn serve_one_corrupt_block_per_piece(
        &mut self,
        content: Bytes,
        piece_length: u32,
        begin: u32,
    ) {
        self.serve = Some(Serve {
            content,
            piece_length,
            corrupt: true,
            only_begin: Some(begin),
        });
    }

    /// Answers the node's handshake, when it arrives, as a seed would: its own handshake (BEP 6
    /// and BEP 10 bits), `have all` and `unchoke`. With [`FakePeer::serve`] it is a seed;
    /// without, a peer that never answers requests (a staller).
    pub fn greet_as_seed(&mut self, hashes: &InfoHashes) {
        let mut buf = BytesMut::new();
        self.handshake_for(hashes, Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL))
            .encode(&mut buf);
        for m in [Message::HaveAll, Message::Unchoke] {
            let _ = m.encode(&mut buf);
        }
        self.greeting = Some(buf.freeze());
    }

    /// Answers the node's handshake, when it arrives, as a peer with nothing yet: its own
    /// handshake (BEP 6 and BEP 10 bits) and `have none`.
    pub fn greet_as_leecher(&mut self, hashes: &InfoHashes) {
        let mut buf = BytesMut::new();
        self.handshake_for(hashes, Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL))
            .encode(&mut buf);
        let _ = Message::HaveNone.encode(&mut buf);
        self.greeting = Some(buf.freeze());
    }

    /// An extension handshake offering `ut_metadata` under [`FAKE_UT_METADATA`] (and any
    /// `more` extensions), announcing `metadata_size`.
    pub fn extended_handshake(
        metadata_size: Option<u64>,
        more: &[(&[u8], u8)],
    ) -> ExtendedHandshake {
        let mut ext = ExtendedHandshake {
            metadata_size,
            ..ExtendedHandshake::default()
        };
        ext.extensions
            .insert(names::UT_METADATA.to_vec(), FAKE_UT_METADATA);
        for (name, id) in more {
            ext.extensions.insert(name.to_vec(), *id);
        }
        ext
    }

    /// Answers the node's handshake, when it arrives, with its own handshake (BEP 6 and BEP 10
    /// bits), the extension handshake `extended`, then `after` (say `have all`, `unchoke`).
    pub fn greet_with(
        &mut self,
        hashes: &InfoHashes,
        extended: &ExtendedHandshake,
        after: &[Message],
    ) {
        let mut buf = BytesMut::new();
        self.handshake_for(hashes, Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL))
            .encode(&mut buf);
        let _ = extended.to_message().encode(&mut buf);
        for m in after {
            let _ = m.encode(&mut buf);
        }
        self.greeting = Some(buf.freeze());
    }

    /// Answers every `ut_metadata` request from now on from `info` (the bencoded `info`
    /// dictionary), as `how` says.
    pub fn serve_metadata(&mut self, info: Bytes, how: MetadataServe) {
        self.metadata = Some((info, how));
    }

    /// How many `ut_metadata` messages it received.
    pub fn metadata_requests(&self) -> u32 {
        self.metadata_requests
    }

    /// The node's extension handshake, once received.
    pub fn remote_extended(&self) -> Option<&ExtendedHandshake> {
        self.remote_extended.as_ref()
    }

    /// Blocks sent in answer to requests.
    pub fn blocks_sent(&self) -> u64 {
        self.blocks_sent
    }

    /// Takes delivered bytes; returns the bytes to send back (a greeting, served blocks).
    pub(crate) fn on_bytes(&mut self, now: Instant, data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        self.bytes_received += data.len() as u64;
        if self.decode_error.is_some() {
            return out;
        }
        self.recv.extend_from_slice(data);
        if self.handshake.is_none() {
            match Handshake::decode(&self.recv) {
                Ok(Decoded::Need(_)) => return out,
                Ok(Decoded::Ready(h, consumed)) => {
                    let _ = self.recv.split_to(consumed);
                    self.handshake = Some((now, h));
                    if let Some(greeting) = self.greeting.take() {
                        out.extend_from_slice(&greeting);
                    }
                }
                Err(e) => {
                    self.decode_error = Some(e);
                    return out;
                }
            }
        }
        let mut replies = Vec::new();
        loop {
            match self.framer.next(&mut self.recv) {
                Ok(Some(message)) => {
                    if let (Message::Request(r), Some(serve)) = (&message, &self.serve) {
                        let refused = serve.only_begin.is_some_and(|b| b != r.begin);
                        if refused {
                            replies.push(Message::RejectRequest(*r));
                        }
                        let start =
                            u64::from(r.index) * u64::from(serve.piece_length) + u64::from(r.begin);
                        let end = start + u64::from(r.length);
                        if !refused && end <= serve.content.len() as u64 {
                            let mut data = serve.content.slice(start as usize..end as usize);
                            if serve.corrupt && !data.is_empty() {
                                let mut bad = BytesMut::from(&data[..]);
                                bad[0] ^= 0xff;
                                data = bad.freeze();
                            }
                            replies.push(Message::Piece {
                                index: r.index,
                                begin: r.begin,
                                data,
                            });
                            self.blocks_sent += 1;
                        }
                    }
                    if let Message::Extended { id, payload } = &message {
                        if *id == ExtendedHandshake::ID {
                            self.remote_extended = ExtendedHandshake::decode(payload).ok();
                        } else if *id == FAKE_UT_METADATA {
                            self.metadata_requests += 1;
                            if let Some(reply) = self.metadata_reply(payload) {
                                replies.push(reply);
                            }
                        }
                    }
                    self.received.push((now, message));
                }
                Ok(None) => break,
                Err(e) => {
                    self.decode_error = Some(e);
                    break;
                }
            }
        }
        for m in &replies {
            if let Some(body) = m.encode(&mut out) {
                out.extend_from_slice(&body);
            }
        }
        out
    }

    /// The answer to a `ut_metadata` request, as [`FakePeer::serve_metadata`] set up.
    fn metadata_reply(&self, payload: &Bytes) -> Option<Message> {
        let (info, how) = self.metadata.as_ref()?;
        let remote_id = self
            .remote_extended
            .as_ref()?
            .extension_id(names::UT_METADATA)?;
        let MetadataMessage::Request { piece } = MetadataMessage::decode(payload).ok()? else {
            return None;
        };
        let size = bitshoal_core::ext::METADATA_PIECE_SIZE;
        let start = piece as usize * size;
        let reply = if start >= info.len() || *how == MetadataServe::Reject {
            MetadataMessage::Reject { piece }
        } else {
            let mut data = BytesMut::from(&info[start..(start + size).min(info.len())]);
            if *how == MetadataServe::Corrupt {
                data[0] ^= 0xff;
            }
            let total_size = match how {
                MetadataServe::WrongTotalSize(n) => *n,
                _ => info.len() as u64,
            };
            MetadataMessage::Data {
                piece,
                total_size,
                data: data.freeze(),
            }
        };
        Some(Message::Extended {
            id: remote_id,
            payload: reply.to_payload(),
        })
    }
}
