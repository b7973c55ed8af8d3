//! [`HttpError`], and the URL form it shows ([`RedactedUrl`]).

use std::fmt;
use std::io;

use bitshoal_core::tracker::TrackerError;
use url::Url;

/// A URL as errors show it: scheme, host, port and the last path segment, with the rest of the
/// path and the query replaced by `…`.
///
/// Private trackers put the user's passkey in the query (`announce.php?passkey=…`) or in the
/// path (`/<passkey>/announce`), and errors end up in logs and bug reports, so neither is ever
/// shown: `https://tracker.example:443/…/announce?…`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// The redacted form of `url`.
    pub fn new(url: &Url) -> Self {
        let mut s = format!("{}://", url.scheme());
        if let Some(host) = url.host_str() {
            s.push_str(host);
        }
        if let Some(port) = url.port_or_known_default() {
            s.push(':');
            s.push_str(&port.to_string());
        }
        let path = url.path();
        let last = path.rsplit('/').next().unwrap_or("");
        if path.len() > last.len() + 1 {
            s.push_str("/…");
        }
        s.push('/');
        s.push_str(last);
        if url.query().is_some() {
            s.push_str("?…");
        }
        Self(s)
    }

    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Which bound a response went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exceeded {
    /// The body, as sent or after gzip decoding ([`HttpOptions::max_body`](super::HttpOptions)).
    Body,
    /// The status line and headers together
    /// ([`HttpOptions::max_head_bytes`](super::HttpOptions)).
    HeadBytes,
    /// The number of headers ([`HttpOptions::max_headers`](super::HttpOptions)).
    HeaderCount,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Body => "body size",
            Self::HeadBytes => "header block size",
            Self::HeaderCount => "header count",
        })
    }
}

/// Why a GET failed. Every variant that has a URL shows it [redacted](RedactedUrl).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL does not parse, or has no host.
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A scheme other than `http` and `https`.
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// A request header in [`HttpOptions::headers`](super::HttpOptions) that cannot be sent (a
    /// name that is not a token, a value with a line break).
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// The host name gave no address.
    Resolve {
        /// The URL.
        url: RedactedUrl,
        /// The resolver's explanation.
        message: String,
    },
    /// No address of the host accepted a connection (refused, unreachable, connect timeout).
    Connect {
        /// The URL.
        url: RedactedUrl,
        /// The last address's failure.
        message: String,
    },
    /// The TLS handshake or record layer failed (untrusted certificate, wrong name, ...).
    Tls {
        /// The URL.
        url: RedactedUrl,
        /// rustls's explanation.
        message: String,
    },
    /// The overall deadline ([`HttpOptions::timeout`](super::HttpOptions)) passed.
    TimedOut {
        /// The URL being fetched when it passed.
        url: RedactedUrl,
    },
    /// The response went over a bound.
    TooLarge {
        /// The URL.
        url: RedactedUrl,
        /// Which bound.
        what: Exceeded,
        /// The bound.
        limit: usize,
    },
    /// The response is not valid HTTP/1.x (or uses an encoding we did not ask for).
    Malformed {
        /// The URL.
        url: RedactedUrl,
        /// What is wrong.
        reason: String,
    },
    /// A redirect whose `Location` does not parse or is not `http`/`https`.
    BadRedirect {
        /// The URL that redirected.
        url: RedactedUrl,
        /// What is wrong with the target (its scheme, not the whole target).
        reason: String,
    },
    /// More redirects than [`HttpOptions::max_redirects`](super::HttpOptions).
    TooManyRedirects {
        /// The URL that redirected once too often.
        url: RedactedUrl,
        /// The bound.
        max: u32,
    },
    /// Another socket error (connection reset, ...). A server that closes before the end of
    /// the body it announced is [`HttpError::Malformed`].
    Io {
        /// The URL.
        url: RedactedUrl,
        /// The kind of error.
        kind: io::ErrorKind,
        /// The OS's explanation.
        message: String,
    },
}

impl HttpError {
    /// The (redacted) URL the error happened at, if it got that far.
    pub fn url(&self) -> Option<&RedactedUrl> {
        match self {
            Self::InvalidUrl { .. }
            | Self::UnsupportedScheme { .. }
            | Self::InvalidHeader { .. } => None,
            Self::Resolve { url, .. }
            | Self::Connect { url, .. }
            | Self::Tls { url, .. }
            | Self::TimedOut { url }
            | Self::TooLarge { url, .. }
            | Self::Malformed { url, .. }
            | Self::BadRedirect { url, .. }
            | Self::TooManyRedirects { url, .. }
            | Self::Io { url, .. } => Some(url),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid URL: {reason}"),
            Self::UnsupportedScheme { scheme } => {
                write!(f, "unsupported URL scheme {scheme:?} (http and https only)")
            }
            Self::InvalidHeader { name } => write!(f, "request header {name:?} cannot be sent"),
            Self::Resolve { url, message } => write!(f, "{url}: cannot resolve host: {message}"),
            Self::Connect { url, message } => write!(f, "{url}: cannot connect: {message}"),
            Self::Tls { url, message } => write!(f, "{url}: TLS: {message}"),
            Self::TimedOut { url } => write!(f, "{url}: timed out"),
            Self::TooLarge { url, what, limit } => {
                write!(f, "{url}: response {what} over the limit of {limit}")
            }
            Self::Malformed { url, reason } => write!(f, "{url}: malformed response: {reason}"),
            Self::BadRedirect { url, reason } => write!(f, "{url}: bad redirect: {reason}"),
            Self::TooManyRedirects { url, max } => {
                write!(f, "{url}: more than {max} redirects")
            }
            Self::Io { url, message, .. } => write!(f, "{url}: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// For the session: a timeout is [`TrackerError::TimedOut`], every other failure a
/// [`TrackerError::Transport`] carrying the (redacted) message.
impl From<HttpError> for TrackerError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::TimedOut { .. } => TrackerError::TimedOut,
            e => TrackerError::Transport {
                message: e.to_string(),
            },
        }
    }
}

/// A failure below the URL level; [`Fail::at`] names the URL.
#[derive(Debug)]
pub(crate) enum Fail {
    Resolve(String),
    Connect(String),
    Tls(String),
    TimedOut,
    TooLarge(Exceeded, usize),
    Malformed(String),
    Io(io::Error),
}

impl Fail {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed(reason.into())
    }

    /// The error for `url`.
    pub(crate) fn at(self, url: &Url) -> HttpError {
        let url = RedactedUrl::new(url);
        match self {
            Self::Resolve(message) => HttpError::Resolve { url, message },
            Self::Connect(message) => HttpError::Connect { url, message },
            Self::Tls(message) => HttpError::Tls { url, message },
            Self::TimedOut => HttpError::TimedOut { url },
            Self::TooLarge(what, limit) => HttpError::TooLarge { url, what, limit },
            Self::Malformed(reason) => HttpError::Malformed { url, reason },
            Self::Io(e) => HttpError::Io {
                url,
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }
}

impl From<io::Error> for Fail {
    /// Socket timeouts are the deadline (the socket's timeout is always the time left), TLS
    /// errors surfacing through `io::Error` are [`Fail::Tls`].
    fn from(e: io::Error) -> Self {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return Self::TimedOut;
        }
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::Tls(tls.to_string());
        }
        Self::Io(e)
    }
}
