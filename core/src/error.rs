//! The error taxonomy: every error the core reports says who is at fault.
//!
//! Each module has its own precise error enum (`bencode::DecodeError`, `metainfo::MetainfoError`,
//! ...). Each of them maps to one [`Fault`] through [`Classify`], so an embedder can decide what to
//! do (ban a peer, show a message, fix a call) without matching every variant of every module:
//!
//! | fault | meaning | typical reaction |
//! |---|---|---|
//! | [`Fault::Malformed`] | bytes that don't parse | drop the input or the connection |
//! | [`Fault::PeerMisbehaved`] | well-formed but illegal | disconnect, maybe ban |
//! | [`Fault::Unsupported`] | a feature we or the remote side lack | fall back or skip |
//! | [`Fault::ApiMisuse`] | the embedder's mistake; the message says the fix | fix the calling code |
//! | [`Fault::LimitExceeded`] | a configured bound was hit | raise the limit or refuse the input |
//! | [`Fault::Storage`] | the runtime reported a storage failure | pause the torrent, tell the user |
//!
//! The core never uses `anyhow` or `io::Error`; runtimes convert their IO errors into the typed
//! results the core's inputs carry.

use std::fmt;

/// Who is at fault for an error (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Bytes that do not parse.
    Malformed,
    /// Well-formed input that breaks the protocol's rules.
    PeerMisbehaved,
    /// A feature that we, or the remote side, do not have.
    Unsupported,
    /// The embedder called the API in a way it does not allow.
    ApiMisuse,
    /// A configured bound on something remote input controls was exceeded.
    LimitExceeded,
    /// Storage failed (as reported by the runtime).
    Storage,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed input",
            Self::PeerMisbehaved => "protocol violation",
            Self::Unsupported => "unsupported",
            Self::ApiMisuse => "API misuse",
            Self::LimitExceeded => "limit exceeded",
            Self::Storage => "storage error",
        })
    }
}

/// An error that can say who is at fault.
pub trait Classify {
    /// The party at fault for this error.
    fn fault(&self) -> Fault;
}

impl Classify for crate::bencode::DecodeError {
    fn fault(&self) -> Fault {
        use crate::bencode::DecodeErrorKind as K;
        match self.kind {
            K::DepthExceeded | K::TokenLimitExceeded => Fault::LimitExceeded,
            _ => Fault::Malformed,
        }
    }
}

impl Classify for crate::wire::WireError {
    fn fault(&self) -> Fault {
        use crate::wire::WireError as W;
        match self {
            W::LimitExceeded { .. } | W::TooManyExtensions { .. } => Fault::LimitExceeded,
            _ => Fault::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{decode, decode_with, DecodeOptions};

    #[test]
    fn bencode_errors_are_classified() {
        assert_eq!(decode(b"i1").unwrap_err().fault(), Fault::Malformed);
        let tight = DecodeOptions::STRICT.with_max_depth(1);
        assert_eq!(
            decode_with(b"llee", tight).unwrap_err().fault(),
            Fault::LimitExceeded
        );
    }
}
