//! Tracker URLs: HTTP(S) or UDP, and the parts of a UDP URL.

use std::net::Ipv6Addr;

use super::TrackerError;

/// The longest BEP 41 URL data (path and query) sent to a UDP tracker.
const MAX_URL_DATA: usize = 1024;

/// The longest tracker URL accepted.
const MAX_URL_LEN: usize = 4096;

/// A tracker URL, by the protocol that reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerUrl {
    /// An `http://` or `https://` tracker; announce with
    /// [`AnnounceRequest::to_http_url`](super::AnnounceRequest::to_http_url).
    Http {
        /// The announce URL without any `#fragment`.
        url: String,
    },
    /// A `udp://host:port/path?query` tracker (BEP 15): resolve `host`, then talk to it with a
    /// [`UdpTrackerClient`](super::UdpTrackerClient).
    Udp {
        /// The host name or IP literal (IPv6 without its brackets).
        host: String,
        /// The port (required: UDP trackers have no default).
        port: u16,
        /// The path and query (BEP 41 URL data), e.g. `/announce?passkey=x`; empty if the URL
        /// has neither or only `/`.
        url_data: String,
    },
}

impl TrackerUrl {
    /// Parses a tracker URL; schemes are matched without regard to case.
    pub fn parse(url: &str) -> Result<Self, TrackerError> {
        if let Some(rest) = strip_scheme(url, "udp://") {
            return parse_udp(rest);
        }
        http_base(url).map(|base| Self::Http {
            url: base.to_owned(),
        })
    }
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])
}

/// Checks an HTTP(S) tracker URL and returns it without its `#fragment`.
pub(crate) fn http_base(url: &str) -> Result<&str, TrackerError> {
    if url.len() > MAX_URL_LEN {
        return Err(TrackerError::InvalidUrl {
            reason: "longer than 4096 bytes",
        });
    }
    let rest = match strip_scheme(url, "http://").or_else(|| strip_scheme(url, "https://")) {
        Some(rest) => rest,
        None if url.contains("://") => return Err(TrackerError::UnsupportedScheme),
        None => {
            return Err(TrackerError::InvalidUrl {
                reason: "no scheme",
            })
        }
    };
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(TrackerError::InvalidUrl {
            reason: "whitespace or control characters",
        });
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if authority_end == 0 {
        return Err(TrackerError::InvalidUrl { reason: "no host" });
    }
    let base = url.split('#').next().unwrap_or(url);
    Ok(base)
}

fn parse_udp(rest: &str) -> Result<TrackerUrl, TrackerError> {
    if rest.len() > MAX_URL_LEN {
        return Err(TrackerError::InvalidUrl {
            reason: "longer than 4096 bytes",
        });
    }
    if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(TrackerError::InvalidUrl {
            reason: "whitespace or control characters",
        });
    }
    let rest = rest.split('#').next().unwrap_or(rest);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, url_data) = rest.split_at(authority_end);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or(TrackerError::InvalidUrl {
            reason: "unclosed IPv6 literal",
        })?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| TrackerError::InvalidUrl {
                reason: "bad IPv6 literal",
            })?;
        let port = after.strip_prefix(':').ok_or(TrackerError::InvalidUrl {
            reason: "UDP tracker without a port",
        })?;
        (ip, port)
    } else {
        authority.rsplit_once(':').ok_or(TrackerError::InvalidUrl {
            reason: "UDP tracker without a port",
        })?
    };
    let host_ok = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return Err(TrackerError::InvalidUrl { reason: "bad host" });
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(TrackerError::InvalidUrl { reason: "bad port" }),
    };
    if url_data.len() > MAX_URL_DATA {
        return Err(TrackerError::InvalidUrl {
            reason: "path and query longer than 1024 bytes",
        });
    }
    let url_data = if url_data == "/" { "" } else { url_data };
    Ok(TrackerUrl::Udp {
        host: host.to_owned(),
        port,
        url_data: url_data.to_owned(),
    })
}
