//! Cutting messages off a connection's receive buffer without copying them.

use bytes::BytesMut;

use super::message::{frame_len, parse_frame};
use super::{Decoded, Message, WireError, WireLimits};

/// Splits complete messages off a receive buffer, handing out payloads that share its memory.
///
/// The runtime reads into a `BytesMut`; each complete frame is `split_to` off its front and
/// frozen, so a piece's block comes out as a [`Bytes`](bytes::Bytes) slice of the receive buffer,
/// and the same allocation then goes to the disk and the hasher (STYLE.md rule 7). Decoding
/// itself is [`decode`](super::decode); the framer only owns the buffer handling and the limits.
///
/// The handshake comes before any message and is decoded with
/// [`Handshake::decode`](super::Handshake::decode); hand the buffer to the framer after it.
///
/// ```
/// use bitshoal_core::wire::{Framer, Message, WireLimits};
/// use bytes::BytesMut;
///
/// let mut framer = Framer::new(WireLimits::DEFAULT);
/// // A `have 3` message, then the first half of a `piece` header.
/// let mut buf = BytesMut::from(&[0, 0, 0, 5, 4, 0, 0, 0, 3, 0, 0, 0, 12, 7][..]);
/// assert_eq!(framer.next(&mut buf).unwrap(), Some(Message::Have(3)));
/// assert_eq!(framer.next(&mut buf).unwrap(), None);
/// assert_eq!(framer.need(), 11); // the rest of the 16-byte frame
/// buf.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, b'a', b'b', b'c']);
/// let Some(Message::Piece { index, data, .. }) = framer.next(&mut buf).unwrap() else {
///     unreachable!()
/// };
/// assert_eq!((index, &data[..]), (1, &b"abc"[..]));
/// ```
#[derive(Clone, Debug)]
pub struct Framer {
    limits: WireLimits,
    need: usize,
}

impl Framer {
    /// A framer enforcing `limits`.
    pub fn new(limits: WireLimits) -> Self {
        Self { limits, need: 4 }
    }

    /// The limits in force.
    pub fn limits(&self) -> &WireLimits {
        &self.limits
    }

    /// Changes the limits, for instance to set the piece count once the metadata is known.
    /// Applies from the next frame on.
    pub fn set_limits(&mut self, limits: WireLimits) {
        self.limits = limits;
    }

    /// How many more bytes the last call to [`Framer::next`] that returned `None` needed: a hint
    /// for sizing the next read.
    pub fn need(&self) -> usize {
        self.need
    }

    /// How many more bytes the frame at the front of `buf` lacks: the rest of its 4-byte length
    /// prefix while that is incomplete, else the rest of the frame (0 when it is complete).
    ///
    /// For joining a frame split across two receive buffers by copying only its missing bytes.
    /// Limits are not checked here: [`Framer::next`] checks them on the same bytes.
    pub fn missing(buf: &[u8]) -> usize {
        match buf.first_chunk::<4>() {
            None => 4 - buf.len(),
            Some(prefix) => {
                let total = 4 + u64::from(u32::from_be_bytes(*prefix));
                usize::try_from(total.saturating_sub(buf.len() as u64)).unwrap_or(usize::MAX)
            }
        }
    }

    /// Splits the next complete message off the front of `buf`, or returns `None` (leaving `buf`
    /// untouched) if it does not hold one yet.
    ///
    /// After an error the stream cannot be framed any more: close the connection.
    #[allow(clippy::should_implement_trait)] // not an Iterator: it takes the buffer
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let total = match frame_len(buf, &self.limits)? {
            Decoded::Need(n) => {
                self.need = n;
                return Ok(None);
            }
            Decoded::Ready((), total) if total > buf.len() => {
                self.need = total - buf.len();
                return Ok(None);
            }
            Decoded::Ready((), total) => total,
        };
        let frame = buf.split_to(total).freeze();
        self.need = 4;
        parse_frame(frame, &self.limits).map(Some)
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new(WireLimits::DEFAULT)
    }
}
