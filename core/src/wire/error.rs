//! The wire codec's error type.

use std::fmt;

use crate::bencode::DecodeError;

/// Bytes from a peer that the wire codec refuses, and why.
///
/// Every variant is the remote peer's fault; by the taxonomy in DESIGN.md they are `Malformed`
/// (bytes that do not parse) except [`WireError::LimitExceeded`] and
/// [`WireError::TooManyExtensions`], which are `LimitExceeded`. In every case the connection
/// should be closed: the stream can no longer be framed reliably, except after an
/// [`WireError::ExtendedHandshake`] or [`WireError::TooManyExtensions`] error, which concern one
/// already-framed message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake does not start with `\x13BitTorrent protocol` (BEP 3). Reported as soon as
    /// the first wrong byte arrives.
    BadProtocol {
        /// Offset of the first byte that differs from the expected protocol header.
        offset: usize,
    },
    /// A message whose length prefix does not fit its id: a fixed-size message of another size,
    /// a piece or hashes message too short for its header, or a hashes message whose hash list
    /// is not a whole number of 32-byte hashes.
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix (id byte included).
        length: u32,
    },
    /// A length prefix larger than the caller's [`WireLimits`](super::WireLimits) allow. Reported
    /// before the body is buffered.
    LimitExceeded {
        /// The message id, if it had arrived (the longest limit is checked before it has).
        id: Option<u8>,
        /// The length prefix.
        length: u32,
        /// The largest length prefix allowed for this message.
        limit: u32,
    },
    /// A bitfield whose size does not match the torrent's piece count (BEP 3: "Clients should
    /// drop the connection if they receive bitfields that are not of the correct size").
    BitfieldLength {
        /// The bitfield size the piece count implies, in bytes.
        expected: u32,
        /// The bitfield size received, in bytes.
        actual: u32,
    },
    /// A bitfield with spare bits set after the last piece (BEP 3: a reason to drop the
    /// connection).
    BitfieldSpareBits,
    /// A BEP 10 extension handshake payload that is not valid bencode.
    ExtendedHandshake(DecodeError),
    /// A BEP 10 extension handshake payload that is bencode but not a dictionary.
    ExtendedHandshakeNotDict,
    /// A BEP 10 extension handshake whose `m` dictionary has more entries than we keep.
    TooManyExtensions {
        /// The most entries accepted ([`MAX_EXTENSIONS`](super::MAX_EXTENSIONS)).
        limit: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadProtocol { offset } => {
                write!(
                    f,
                    "not a BitTorrent handshake (wrong byte at offset {offset})"
                )
            }
            Self::BadLength { id, length } => {
                write!(f, "message id {id} cannot have length {length}")
            }
            Self::LimitExceeded {
                id: Some(id),
                length,
                limit,
            } => write!(
                f,
                "message id {id} of length {length} is over the limit of {limit}"
            ),
            Self::LimitExceeded {
                id: None,
                length,
                limit,
            } => write!(f, "message of length {length} is over the limit of {limit}"),
            Self::BitfieldLength { expected, actual } => write!(
                f,
                "bitfield of {actual} bytes, the torrent needs {expected}"
            ),
            Self::BitfieldSpareBits => f.write_str("bitfield has spare bits set"),
            Self::ExtendedHandshake(e) => write!(f, "extension handshake: {e}"),
            Self::ExtendedHandshakeNotDict => {
                f.write_str("extension handshake is not a dictionary")
            }
            Self::TooManyExtensions { limit } => {
                write!(f, "extension handshake lists more than {limit} extensions")
            }
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ExtendedHandshake(e) => Some(e),
            _ => None,
        }
    }
}
