//! The peer wire protocol codec: handshake, messages, extension handshake, peer ids.
//!
//! This module is a pure codec (STYLE.md rule 4): it turns bytes into typed values and back and
//! knows nothing about connections, torrents or time. The `peer` machine drives it.
//!
//! What it covers:
//! - the handshake with its reserved bits ([`Handshake`], [`Reserved`]; BEP 3, 5, 6, 10, 52);
//! - every length-prefixed message ([`Message`]): BEP 3, BEP 5 `port`, BEP 6 fast extension,
//!   BEP 10 `extended`, BEP 52 hash request / hashes / hash reject;
//! - the BEP 10 extension handshake dictionary ([`ExtendedHandshake`]);
//! - the BEP 6 canonical allowed-fast set ([`allowed_fast_set`]);
//! - BEP 20 peer ids ([`client_name`], [`PeerId::generate`](crate::id::PeerId::generate)).
//!
//! # Decoding
//!
//! [`decode`] borrows its input and returns [`Decoded::Ready`]`(message, consumed)`, or
//! [`Decoded::Need`]`(n)` when at least `n` more bytes are needed, or a typed [`WireError`] when
//! the bytes are malformed or over a limit. "Need more" is never an error.
//!
//! Its input is a `&Bytes` rather than a `&[u8]`: the payloads it hands out (piece data above
//! all, but also bitfields and extension payloads) are [`Bytes`] slices of that same buffer, so
//! no payload is ever copied. With a `&[u8]` we would have had to either copy or hand out byte
//! ranges, which means a second message type. A runtime reads into a `BytesMut`; [`Framer`]
//! splits each complete frame off it and freezes it, so piece data travels from the socket
//! buffer to the disk and the hasher as the same allocation (STYLE.md rule 7).
//!
//! Limits come from the caller ([`WireLimits`]) and are checked on the length prefix as soon as
//! the message id is known, before the body is waited for: a peer can never make us buffer more
//! than one frame of the allowed size.
//!
//! Unknown message ids are not an error: they decode to [`Message::Unknown`] (within
//! [`WireLimits::max_payload`]) and the peer machine decides. BEP 3 assigns no meaning to other
//! ids, and clients keep adding them (BEP 52 took 21-23 long after BEP 3), so dropping the
//! connection is a policy decision, not a codec one.
//!
//! # Encoding
//!
//! Encoders write into a caller's [`BufMut`](bytes::BufMut). A piece's block is never copied
//! into the header buffer: [`Message::encode`] returns it so the runtime can send
//! `[head, body]` with one vectored write, and [`encode_piece_header`] writes just the 13-byte
//! header for a block read from disk. [`encode_requests`] writes a batch of requests into one
//! buffer.

mod error;
mod extended;
mod fast;
mod framer;
mod handshake;
mod limits;
mod message;
mod peer_id;

pub use error::WireError;
pub use extended::{ExtendedHandshake, MAX_EXTENSIONS, MAX_EXTENSION_NAME};
pub use fast::allowed_fast_set;
pub use framer::Framer;
pub use handshake::{Handshake, HashVersion, Reserved, PROTOCOL};
pub use limits::WireLimits;
pub use message::{
    decode, encode_piece_header, encode_requests, BlockRequest, HashRequest, Message, MessageId,
};
pub use peer_id::{client_name, Client};

/// The outcome of a decoder call that did not fail: a value, or how many more bytes it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A complete value, and how many input bytes it took.
    Ready(T, usize),
    /// The input ends too early: feed at least this many more bytes (always at least 1).
    Need(usize),
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;
