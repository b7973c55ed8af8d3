//! The error type of the extension payload decoders.

use std::fmt;

use crate::bencode::DecodeError;
use crate::error::{Classify, Fault};

/// An extension payload that a decoder refuses, and why.
///
/// Every variant is the remote peer's fault. None of them means the wire stream is out of step
/// (the payload was already framed), so the caller may ignore the message rather than drop the
/// connection; [`Fault::Unsupported`] ones (an unknown message type) must be ignored (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtError {
    /// The payload is not valid bencode, or is over the bencode limits.
    Bencode(DecodeError),
    /// The payload is bencode but not a dictionary.
    NotADict,
    /// A required key is absent.
    MissingKey(&'static str),
    /// A key holds a value of the wrong type or out of range.
    BadValue(&'static str),
    /// A message type this implementation does not know (BEP 9 and BEP 55 say: ignore it).
    UnknownMessageType(i64),
    /// A binary payload of the wrong size.
    BadLength {
        /// What the payload is.
        what: &'static str,
        /// The size expected (for variable payloads, the smallest).
        expected: usize,
        /// The size received.
        actual: usize,
    },
    /// A list holds more entries than we accept.
    TooMany {
        /// Which list.
        what: &'static str,
        /// The most entries accepted.
        limit: usize,
    },
    /// A string is longer than we accept.
    TooLong {
        /// Which string.
        what: &'static str,
        /// The most bytes accepted.
        limit: usize,
    },
    /// A BEP 55 address type other than 0 (IPv4) or 1 (IPv6).
    BadAddressType(u8),
    /// A BEP 55 error code outside the four the BEP defines.
    UnknownErrorCode(u32),
}

impl fmt::Display for ExtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bencode(e) => write!(f, "extension payload: {e}"),
            Self::NotADict => f.write_str("extension payload is not a dictionary"),
            Self::MissingKey(k) => write!(f, "extension payload lacks key {k:?}"),
            Self::BadValue(k) => write!(f, "extension payload key {k:?} has a bad value"),
            Self::UnknownMessageType(t) => write!(f, "unknown extension message type {t}"),
            Self::BadLength {
                what,
                expected,
                actual,
            } => write!(f, "{what}: {actual} bytes, expected {expected}"),
            Self::TooMany { what, limit } => write!(f, "{what}: more than {limit} entries"),
            Self::TooLong { what, limit } => write!(f, "{what}: longer than {limit} bytes"),
            Self::BadAddressType(t) => write!(f, "holepunch: unknown address type {t}"),
            Self::UnknownErrorCode(c) => write!(f, "holepunch: unknown error code {c}"),
        }
    }
}

impl std::error::Error for ExtError {}

impl Classify for ExtError {
    fn fault(&self) -> Fault {
        match self {
            Self::Bencode(e) => e.fault(),
            Self::UnknownMessageType(_) => Fault::Unsupported,
            Self::TooMany { .. } | Self::TooLong { .. } => Fault::LimitExceeded,
            _ => Fault::Malformed,
        }
    }
}
