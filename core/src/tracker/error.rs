//! Tracker errors, each classified by who is at fault.

use std::fmt;

use super::RetryIn;
use crate::bencode::DecodeError;
use crate::error::{Classify, Fault};
use crate::time::Duration;

/// Why an announce or scrape failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackerError {
    /// The tracker URL is not one we can use (from the torrent, so `Malformed`).
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tracker URL scheme we do not speak (`wss://`, ...).
    UnsupportedScheme,
    /// The HTTP body is larger than [`TrackerLimits::max_body`](super::TrackerLimits).
    BodyTooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not bencode (or is over the depth or value limits).
    Bencode(DecodeError),
    /// The body is bencode but not a dictionary.
    NotADictionary,
    /// A field has the wrong type or an impossible value.
    InvalidField {
        /// The field's name.
        field: &'static str,
    },
    /// The tracker refused: BEP 3 `failure reason`, or the BEP 15 error action.
    Failure {
        /// The tracker's reason, for the user (bounded, lossy UTF-8).
        reason: String,
        /// When the tracker wants to hear from us again (BEP 31).
        retry_in: Option<RetryIn>,
    },
    /// The tracker answered with an HTTP error status and no `failure reason`.
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The request never reached the tracker or no answer came back (as the runtime reported
    /// it: DNS failure, connection refused, ...).
    Transport {
        /// The runtime's description.
        message: String,
    },
    /// No answer within the retransmission schedule (BEP 15) or the announce timeout.
    TimedOut,
    /// A UDP tracker datagram too short for its action.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
    /// A UDP tracker datagram with an action we did not expect or do not know.
    UnexpectedAction {
        /// The action number.
        action: u32,
    },
    /// A UDP scrape of more info-hashes than fit in one request
    /// ([`MAX_SCRAPE_HASHES`](super::MAX_SCRAPE_HASHES)), or of none.
    ScrapeSize {
        /// The number of hashes asked for.
        count: usize,
    },
    /// The tracker has no scrape URL: its announce URL's last path component does not start
    /// with `announce`, so BEP 48's convention does not apply.
    NoScrape,
    /// The tracker asked for a pause between scrapes (BEP 48 `flags.min_request_interval`)
    /// that is not over yet.
    ScrapeTooSoon {
        /// How much longer to wait.
        wait: Duration,
    },
    /// The tracker answered the scrape without the torrent: it does not track it.
    NotListed,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid tracker URL: {reason}"),
            Self::UnsupportedScheme => f.write_str("unsupported tracker URL scheme"),
            Self::BodyTooLarge { len, max } => {
                write!(
                    f,
                    "tracker response of {len} bytes is over the {max}-byte limit"
                )
            }
            Self::Bencode(e) => write!(f, "tracker response: {e}"),
            Self::NotADictionary => f.write_str("tracker response is not a dictionary"),
            Self::InvalidField { field } => write!(f, "tracker response: invalid `{field}`"),
            Self::Failure { reason, .. } => write!(f, "tracker refused: {reason}"),
            Self::HttpStatus { status } => write!(f, "tracker answered HTTP status {status}"),
            Self::Transport { message } => write!(f, "tracker unreachable: {message}"),
            Self::TimedOut => f.write_str("tracker did not answer in time"),
            Self::Truncated { needed, got } => {
                write!(f, "UDP tracker packet of {got} bytes, needed {needed}")
            }
            Self::UnexpectedAction { action } => {
                write!(f, "UDP tracker packet with unexpected action {action}")
            }
            Self::ScrapeSize { count } => write!(
                f,
                "a UDP scrape takes 1 to {} info-hashes, not {count}; split the request",
                super::MAX_SCRAPE_HASHES
            ),
            Self::NoScrape => f.write_str(
                "the tracker has no scrape URL (BEP 48: its announce URL does not end in \
                 /announce...)",
            ),
            Self::ScrapeTooSoon { wait } => write!(
                f,
                "the tracker asked for a pause between scrapes: {} s more",
                wait.as_secs()
            ),
            Self::NotListed => f.write_str("the tracker does not list the torrent"),
        }
    }
}

impl std::error::Error for TrackerError {}

impl From<DecodeError> for TrackerError {
    fn from(e: DecodeError) -> Self {
        Self::Bencode(e)
    }
}

impl Classify for TrackerError {
    fn fault(&self) -> Fault {
        match self {
            Self::InvalidUrl { .. }
            | Self::NotADictionary
            | Self::InvalidField { .. }
            | Self::Truncated { .. }
            | Self::UnexpectedAction { .. } => Fault::Malformed,
            Self::Bencode(e) => e.fault(),
            Self::BodyTooLarge { .. } => Fault::LimitExceeded,
            Self::UnsupportedScheme
            | Self::Failure { .. }
            | Self::HttpStatus { .. }
            | Self::Transport { .. }
            | Self::TimedOut
            | Self::NoScrape
            | Self::NotListed => Fault::Unsupported,
            Self::ScrapeSize { .. } | Self::ScrapeTooSoon { .. } => Fault::ApiMisuse,
        }
    }
}

impl TrackerError {
    /// The tracker's BEP 31 `retry in`, if this is a refusal that carried one.
    pub fn retry_in(&self) -> Option<RetryIn> {
        match self {
            Self::Failure { retry_in, .. } => *retry_in,
            _ => None,
        }
    }
}
