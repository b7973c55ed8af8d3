//! Length-prefixed peer messages: BEP 3, BEP 5 `port`, BEP 6, BEP 10 `extended`, BEP 52 hashes.
//!
//! Every message is `<length: u32 big-endian><id: u8><payload>`, except the keep-alive, which is a
//! zero length and nothing else. All integers are four bytes big-endian (BEP 3).

use bytes::{BufMut, Bytes};

use super::{Decoded, WireError, WireLimits};

/// The id byte of each message this codec knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum MessageId {
    /// BEP 3 `choke`.
    Choke = 0,
    /// BEP 3 `unchoke`.
    Unchoke = 1,
    /// BEP 3 `interested`.
    Interested = 2,
    /// BEP 3 `not interested`.
    NotInterested = 3,
    /// BEP 3 `have`.
    Have = 4,
    /// BEP 3 `bitfield`.
    Bitfield = 5,
    /// BEP 3 `request`.
    Request = 6,
    /// BEP 3 `piece`.
    Piece = 7,
    /// BEP 3 `cancel`.
    Cancel = 8,
    /// BEP 5 `port`.
    Port = 9,
    /// BEP 6 `suggest piece`.
    SuggestPiece = 13,
    /// BEP 6 `have all`.
    HaveAll = 14,
    /// BEP 6 `have none`.
    HaveNone = 15,
    /// BEP 6 `reject request`.
    RejectRequest = 16,
    /// BEP 6 `allowed fast`.
    AllowedFast = 17,
    /// BEP 10 `extended`.
    Extended = 20,
    /// BEP 52 `hash request`.
    HashRequest = 21,
    /// BEP 52 `hashes`.
    Hashes = 22,
    /// BEP 52 `hash reject`.
    HashReject = 23,
}

impl MessageId {
    /// The id for a byte, if this codec knows it.
    pub fn from_u8(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::Choke,
            1 => Self::Unchoke,
            2 => Self::Interested,
            3 => Self::NotInterested,
            4 => Self::Have,
            5 => Self::Bitfield,
            6 => Self::Request,
            7 => Self::Piece,
            8 => Self::Cancel,
            9 => Self::Port,
            13 => Self::SuggestPiece,
            14 => Self::HaveAll,
            15 => Self::HaveNone,
            16 => Self::RejectRequest,
            17 => Self::AllowedFast,
            20 => Self::Extended,
            21 => Self::HashRequest,
            22 => Self::Hashes,
            23 => Self::HashReject,
            _ => return None,
        })
    }
}

/// One block of a piece, as named by `request`, `cancel` and `reject request` (BEP 3, BEP 6).
///
/// The index is a plain `u32`: the wire layer does not know the torrent; the peer machine
/// validates it into a `PieceIndex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    /// The piece index.
    pub index: u32,
    /// The byte offset within the piece.
    pub begin: u32,
    /// The block length in bytes.
    pub length: u32,
}

/// The payload shared by BEP 52 `hash request`, `hashes` and `hash reject`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The root of the file's merkle tree (`pieces root`).
    pub pieces_root: [u8; 32],
    /// How many layers above the leaves the requested hashes are (0: the 16 KiB block hashes).
    pub base_layer: u32,
    /// The offset, in hashes, of the first requested hash in the base layer (a multiple of
    /// `length`).
    pub index: u32,
    /// How many hashes of the base layer (a power of two, at least 2).
    pub length: u32,
    /// How many ancestor layers of uncle hashes to include.
    pub proof_layers: u32,
}

/// One peer wire message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A zero-length message, sent to keep the connection open (BEP 3).
    KeepAlive,
    /// The sender will not answer requests (BEP 3).
    Choke,
    /// The sender will answer requests (BEP 3).
    Unchoke,
    /// The sender wants pieces the receiver has (BEP 3).
    Interested,
    /// The sender wants nothing the receiver has (BEP 3).
    NotInterested,
    /// The sender has completed and checked a piece (BEP 3).
    Have(u32),
    /// The pieces the sender has, high bit of the first byte first (BEP 3). Only ever the first
    /// message; its size is checked against [`WireLimits::num_pieces`] when that is known.
    Bitfield(Bytes),
    /// Asks for a block (BEP 3).
    Request(BlockRequest),
    /// A block of data (BEP 3). `data` is a slice of the receive buffer, never a copy.
    Piece {
        /// The piece index.
        index: u32,
        /// The byte offset within the piece.
        begin: u32,
        /// The block.
        data: Bytes,
    },
    /// Withdraws a request (BEP 3).
    Cancel(BlockRequest),
    /// The sender's DHT node listens on this UDP port (BEP 5).
    Port(u16),
    /// "You might like to download this piece" (BEP 6).
    SuggestPiece(u32),
    /// The sender has every piece; replaces the bitfield (BEP 6).
    HaveAll,
    /// The sender has no piece; replaces the bitfield (BEP 6).
    HaveNone,
    /// The sender will not serve this request (BEP 6).
    RejectRequest(BlockRequest),
    /// The sender will serve requests for this piece even while choking (BEP 6).
    AllowedFast(u32),
    /// A BEP 10 extension message: `id` 0 is the extension handshake
    /// ([`ExtendedHandshake`](super::ExtendedHandshake)), others are as that handshake assigned.
    Extended {
        /// The extended message id.
        id: u8,
        /// The payload after the extended id.
        payload: Bytes,
    },
    /// Asks for merkle tree hashes (BEP 52).
    HashRequest(HashRequest),
    /// Answers a hash request (BEP 52): the base layer hashes, then one uncle hash per proof
    /// layer not implied by them, each 32 bytes.
    Hashes {
        /// The request being answered.
        request: HashRequest,
        /// The hashes, concatenated; the length is a multiple of 32.
        hashes: Bytes,
    },
    /// The sender will not serve this hash request (BEP 52).
    HashReject(HashRequest),
    /// A message with an id this codec does not know; the peer machine decides whether to ignore
    /// it.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload after the id.
        payload: Bytes,
    },
}

/// The length prefix of a `request`, `cancel` or `reject request`: id byte and three integers.
const BLOCK_REQUEST_LEN: u32 = 13;
/// The length prefix of a `hash request` or `hash reject`: id, 32-byte root, four integers.
const HASH_REQUEST_LEN: u32 = 49;
/// The length prefix of a `piece` message before its data: id, index, begin.
const PIECE_HEADER_LEN: u32 = 9;

impl Message {
    /// The message id byte, or `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Self::KeepAlive => return None,
            Self::Choke => MessageId::Choke as u8,
            Self::Unchoke => MessageId::Unchoke as u8,
            Self::Interested => MessageId::Interested as u8,
            Self::NotInterested => MessageId::NotInterested as u8,
            Self::Have(_) => MessageId::Have as u8,
            Self::Bitfield(_) => MessageId::Bitfield as u8,
            Self::Request(_) => MessageId::Request as u8,
            Self::Piece { .. } => MessageId::Piece as u8,
            Self::Cancel(_) => MessageId::Cancel as u8,
            Self::Port(_) => MessageId::Port as u8,
            Self::SuggestPiece(_) => MessageId::SuggestPiece as u8,
            Self::HaveAll => MessageId::HaveAll as u8,
            Self::HaveNone => MessageId::HaveNone as u8,
            Self::RejectRequest(_) => MessageId::RejectRequest as u8,
            Self::AllowedFast(_) => MessageId::AllowedFast as u8,
            Self::Extended { .. } => MessageId::Extended as u8,
            Self::HashRequest(_) => MessageId::HashRequest as u8,
            Self::Hashes { .. } => MessageId::Hashes as u8,
            Self::HashReject(_) => MessageId::HashReject as u8,
            Self::Unknown { id, .. } => *id,
        })
    }

    /// The value of the length prefix: every byte after it, id included.
    fn length(&self) -> usize {
        match self {
            Self::KeepAlive => 0,
            Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => 1,
            Self::Have(_) | Self::SuggestPiece(_) | Self::AllowedFast(_) => 5,
            Self::Port(_) => 3,
            Self::Request(_) | Self::Cancel(_) | Self::RejectRequest(_) => {
                BLOCK_REQUEST_LEN as usize
            }
            Self::HashRequest(_) | Self::HashReject(_) => HASH_REQUEST_LEN as usize,
            Self::Bitfield(b) => 1 + b.len(),
            Self::Piece { data, .. } => PIECE_HEADER_LEN as usize + data.len(),
            Self::Extended { payload, .. } => 2 + payload.len(),
            Self::Hashes { hashes, .. } => HASH_REQUEST_LEN as usize + hashes.len(),
            Self::Unknown { payload, .. } => 1 + payload.len(),
        }
    }

    /// The whole message's size on the wire, length prefix and any piece data included.
    pub fn encoded_len(&self) -> usize {
        4 + self.length()
    }

    /// Writes the message into `buf`, except a piece's block, which it returns to be sent right
    /// after what it wrote (a vectored write: `Send { head, body }`), so blocks are never copied.
    ///
    /// # Panics
    ///
    /// If a payload is longer than a length prefix can say (4 GiB): our own data, never the
    /// peer's, and far over any [`WireLimits`].
    #[must_use = "a piece's block must be sent right after the header"]
    pub fn encode(&self, buf: &mut impl BufMut) -> Option<Bytes> {
        let length = u32::try_from(self.length())
            .expect("message payloads we send are far under 4 GiB (WireLimits)");
        if let Self::Piece { index, begin, data } = self {
            encode_piece_header(*index, *begin, length - PIECE_HEADER_LEN, buf);
            return Some(data.clone());
        }
        buf.put_u32(length);
        let Some(id) = self.id() else {
            return None; // keep-alive
        };
        buf.put_u8(id);
        match self {
            Self::KeepAlive
            | Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone
            | Self::Piece { .. } => {}
            Self::Have(i) | Self::SuggestPiece(i) | Self::AllowedFast(i) => buf.put_u32(*i),
            Self::Port(p) => buf.put_u16(*p),
            Self::Request(r) | Self::Cancel(r) | Self::RejectRequest(r) => put_block(buf, r),
            Self::HashRequest(r) | Self::HashReject(r) => put_hash_request(buf, r),
            Self::Hashes { request, hashes } => {
                put_hash_request(buf, request);
                buf.put_slice(hashes);
            }
            Self::Bitfield(payload) | Self::Unknown { payload, .. } => buf.put_slice(payload),
            Self::Extended { id, payload } => {
                buf.put_u8(*id);
                buf.put_slice(payload);
            }
        }
        None
    }
}

fn put_block(buf: &mut impl BufMut, r: &BlockRequest) {
    buf.put_u32(r.index);
    buf.put_u32(r.begin);
    buf.put_u32(r.length);
}

fn put_hash_request(buf: &mut impl BufMut, r: &HashRequest) {
    buf.put_slice(&r.pieces_root);
    buf.put_u32(r.base_layer);
    buf.put_u32(r.index);
    buf.put_u32(r.length);
    buf.put_u32(r.proof_layers);
}

/// Writes the 13-byte header of a `piece` message whose `len`-byte block the caller sends next.
pub fn encode_piece_header(index: u32, begin: u32, len: u32, buf: &mut impl BufMut) {
    buf.put_u32(len.saturating_add(PIECE_HEADER_LEN));
    buf.put_u8(MessageId::Piece as u8);
    buf.put_u32(index);
    buf.put_u32(begin);
}

/// Writes a batch of `request` messages into one buffer (17 bytes each), for one send.
pub fn encode_requests(requests: impl IntoIterator<Item = BlockRequest>, buf: &mut impl BufMut) {
    for r in requests {
        buf.put_u32(BLOCK_REQUEST_LEN);
        buf.put_u8(MessageId::Request as u8);
        put_block(buf, &r);
    }
}

/// The size of the next frame, or how many more bytes are needed to know whether it is allowed.
///
/// Checks the length prefix against the limits as soon as the id byte is there, so a frame that
/// is too long or the wrong size for its id is refused before its body is buffered.
pub(super) fn frame_len(buf: &[u8], limits: &WireLimits) -> Result<Decoded<()>, WireError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(Decoded::Need(4 - buf.len()));
    };
    let length = u32::from_be_bytes(*prefix);
    if length == 0 {
        return Ok(Decoded::Ready((), 4));
    }
    let max = limits.max_frame();
    if length > max {
        return Err(WireError::LimitExceeded {
            id: None,
            length,
            limit: max,
        });
    }
    let Some(&id) = buf.get(4) else {
        return Ok(Decoded::Need(1));
    };
    check_length(id, length, limits)?;
    // `length <= max_frame()`, a u32, so this only saturates on 16-bit targets.
    let total = (length as usize).saturating_add(4);
    Ok(Decoded::Ready((), total))
}

/// Checks a length prefix against the layout of message `id` and the caller's limits.
fn check_length(id: u8, length: u32, limits: &WireLimits) -> Result<(), WireError> {
    let bad = || Err(WireError::BadLength { id, length });
    let over = |limit: u32| {
        if length > limit {
            Err(WireError::LimitExceeded {
                id: Some(id),
                length,
                limit,
            })
        } else {
            Ok(())
        }
    };
    let Some(known) = MessageId::from_u8(id) else {
        return over(limits.max_unknown_frame());
    };
    let fixed = |expected: u32| if length == expected { Ok(()) } else { bad() };
    match known {
        MessageId::Choke
        | MessageId::Unchoke
        | MessageId::Interested
        | MessageId::NotInterested
        | MessageId::HaveAll
        | MessageId::HaveNone => fixed(1),
        MessageId::Have | MessageId::SuggestPiece | MessageId::AllowedFast => fixed(5),
        MessageId::Port => fixed(3),
        MessageId::Request | MessageId::Cancel | MessageId::RejectRequest => {
            fixed(BLOCK_REQUEST_LEN)
        }
        MessageId::HashRequest | MessageId::HashReject => fixed(HASH_REQUEST_LEN),
        MessageId::Bitfield => match limits.bitfield_len() {
            Some(expected) if length - 1 != expected => Err(WireError::BitfieldLength {
                expected,
                actual: length - 1,
            }),
            Some(_) => Ok(()),
            None => over(limits.max_bitfield_frame()),
        },
        MessageId::Piece => {
            if length < PIECE_HEADER_LEN {
                return bad();
            }
            over(limits.max_piece_frame())
        }
        MessageId::Extended => {
            if length < 2 {
                return bad();
            }
            over(limits.max_extended_frame())
        }
        MessageId::Hashes => {
            if length < HASH_REQUEST_LEN || (length - HASH_REQUEST_LEN) % 32 != 0 {
                return bad();
            }
            over(limits.max_hashes_frame())
        }
    }
}

/// Decodes the message at the start of `buf`.
///
/// Returns [`Decoded::Ready`]`(message, consumed)` for a complete message, [`Decoded::Need`]
/// when `buf` ends inside one (at least that many more bytes are needed), or an error for a
/// frame that is malformed or over `limits`; see the [module documentation](super) for why the
/// input is a `&Bytes`. Payloads are slices of `buf` (a reference count, not a copy).
pub fn decode(buf: &Bytes, limits: &WireLimits) -> Result<Decoded<Message>, WireError> {
    match frame_len(buf, limits)? {
        Decoded::Need(n) => Ok(Decoded::Need(n)),
        Decoded::Ready((), total) if total > buf.len() => Ok(Decoded::Need(total - buf.len())),
        Decoded::Ready((), total) => {
            let message = parse_frame(buf.slice(..total), limits)?;
            Ok(Decoded::Ready(message, total))
        }
    }
}

/// Parses one whole frame (length prefix included) whose length [`frame_len`] has accepted.
pub(super) fn parse_frame(frame: Bytes, limits: &WireLimits) -> Result<Message, WireError> {
    let Some(&id) = frame.get(4) else {
        return Ok(Message::KeepAlive);
    };
    let body = &frame[5..];
    let u32_at = |at: usize| {
        let bytes = body[at..at + 4]
            .try_into()
            .expect("frame_len checked the body is long enough for this id");
        u32::from_be_bytes(bytes)
    };
    let block = || BlockRequest {
        index: u32_at(0),
        begin: u32_at(4),
        length: u32_at(8),
    };
    let hash_request = || HashRequest {
        pieces_root: body[..32]
            .try_into()
            .expect("frame_len checked the body holds a pieces root"),
        base_layer: u32_at(32),
        index: u32_at(36),
        length: u32_at(40),
        proof_layers: u32_at(44),
    };
    let Some(known) = MessageId::from_u8(id) else {
        return Ok(Message::Unknown {
            id,
            payload: frame.slice(5..),
        });
    };
    Ok(match known {
        MessageId::Choke => Message::Choke,
        MessageId::Unchoke => Message::Unchoke,
        MessageId::Interested => Message::Interested,
        MessageId::NotInterested => Message::NotInterested,
        MessageId::HaveAll => Message::HaveAll,
        MessageId::HaveNone => Message::HaveNone,
        MessageId::Have => Message::Have(u32_at(0)),
        MessageId::SuggestPiece => Message::SuggestPiece(u32_at(0)),
        MessageId::AllowedFast => Message::AllowedFast(u32_at(0)),
        MessageId::Port => Message::Port(u16::from_be_bytes([body[0], body[1]])),
        MessageId::Request => Message::Request(block()),
        MessageId::Cancel => Message::Cancel(block()),
        MessageId::RejectRequest => Message::RejectRequest(block()),
        MessageId::HashRequest => Message::HashRequest(hash_request()),
        MessageId::HashReject => Message::HashReject(hash_request()),
        MessageId::Hashes => Message::Hashes {
            request: hash_request(),
            hashes: frame.slice(5 + 48..),
        },
        MessageId::Piece => Message::Piece {
            index: u32_at(0),
            begin: u32_at(4),
            data: frame.slice(5 + 8..),
        },
        MessageId::Extended => Message::Extended {
            id: body[0],
            payload: frame.slice(6..),
        },
        MessageId::Bitfield => {
            if let Some(n) = limits.num_pieces {
                // BEP 3: spare bits at the end are zero. `frame_len` checked the size, so the
                // last byte exists whenever n is not a multiple of 8.
                let spare = (8 - n % 8) % 8;
                if spare != 0 && body.last().is_some_and(|&b| b & ((1u8 << spare) - 1) != 0) {
                    return Err(WireError::BitfieldSpareBits);
                }
            }
            Message::Bitfield(frame.slice(5..))
        }
    })
}
