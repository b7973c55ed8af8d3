//! HTTP announce: the request URL (BEP 3) and the response (BEP 3, 7, 23, 24, 31).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::url::http_base;
use super::{
    bounded_text, AnnounceRequest, AnnounceResponse, PeerSink, RetryIn, TrackerError, TrackerLimits,
};
use crate::bencode::{self, Dict, Value};
use crate::time::Duration;

/// Percent-encoded in query values: everything but the RFC 3986 unreserved characters.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest `tracker id` we keep and send back.
const MAX_TRACKER_ID: usize = 256;

/// Appends `&name=value` (value percent-encoded) to `url`.
pub(crate) fn push_param(url: &mut String, name: &str, value: &[u8]) {
    url.push('&');
    url.push_str(name);
    url.push('=');
    url.extend(percent_encode(value, QUERY_VALUE));
}

/// `base` followed by the separator its next query parameter needs: `?` if there is no query
/// yet, `&` if there is one that does not already end in `&` or `?`. The caller appends the
/// first parameter without a leading `&`.
pub(crate) fn start_query(base: &str) -> String {
    let mut url = String::with_capacity(base.len() + 320);
    url.push_str(base);
    match base.find('?') {
        None => url.push('?'),
        Some(_) if base.ends_with('?') || base.ends_with('&') => {}
        Some(_) => url.push('&'),
    }
    url
}

impl AnnounceRequest {
    /// The HTTP announce URL for this request (BEP 3).
    ///
    /// A query already in `announce_url` (a passkey, say) is kept and the parameters are
    /// appended with `&`; a `#fragment` is dropped. Binary values (`info_hash`, `peer_id`,
    /// `trackerid`) are percent-encoded byte by byte, everything outside the RFC 3986 unreserved
    /// set escaped. Fails for URLs that are not `http://` or `https://`.
    pub fn to_http_url(&self, announce_url: &str) -> Result<String, TrackerError> {
        let base = http_base(announce_url)?;
        let mut url = start_query(base);
        url.push_str("info_hash=");
        url.extend(percent_encode(&self.info_hash, QUERY_VALUE));
        push_param(&mut url, "peer_id", &self.peer_id.0);
        // Writing into a String cannot fail.
        let _ = write!(
            url,
            "&port={}&uploaded={}&downloaded={}&left={}",
            self.port, self.uploaded, self.downloaded, self.left
        );
        if self.compact {
            url.push_str("&compact=1");
        }
        if self.no_peer_id {
            url.push_str("&no_peer_id=1");
        }
        if let Some(event) = self.event {
            url.push_str("&event=");
            url.push_str(event.as_str());
        }
        if let Some(n) = self.numwant {
            let _ = write!(url, "&numwant={n}");
        }
        let _ = write!(url, "&key={:08X}", self.key);
        if let Some(id) = &self.tracker_id {
            push_param(&mut url, "trackerid", id);
        }
        if let Some(ip) = self.ip {
            push_param(&mut url, "ip", ip.to_string().as_bytes());
        }
        Ok(url)
    }
}

/// Parses an HTTP tracker's answer to an announce.
///
/// `status` is the HTTP status code. A body with a `failure reason` is
/// [`TrackerError::Failure`] whatever the status (with BEP 31 `retry in`); any other non-200
/// status is [`TrackerError::HttpStatus`]. The body is decoded leniently within `limits`
/// (size first, then bencode depth and value count). Peers come from `peers` (compact BEP 23
/// string or BEP 3 dictionary list) and `peers6` (BEP 7); dictionary peers whose `ip` is a host
/// name rather than an IP literal are skipped, since resolving them would let a tracker point
/// us at arbitrary names.
pub fn parse_announce_response(
    status: u16,
    body: &[u8],
    limits: &TrackerLimits,
) -> Result<AnnounceResponse, TrackerError> {
    let dict = decode_body(status, body, limits)?;
    let mut peers = PeerSink::new(limits.max_peers);
    match dict.get(b"peers") {
        Some(Value::Bytes(compact)) => peers.push_compact(compact, false),
        Some(Value::List(list)) => {
            for entry in list.iter().filter_map(Value::as_dict) {
                if let Some(addr) = dict_peer(entry) {
                    peers.push(addr);
                }
            }
        }
        Some(_) => return Err(TrackerError::InvalidField { field: "peers" }),
        None => {}
    }
    if let Some(Value::Bytes(compact)) = dict.get(b"peers6") {
        peers.push_compact(compact, true);
    }
    Ok(AnnounceResponse {
        interval: seconds(&dict, b"interval"),
        min_interval: seconds(&dict, b"min interval"),
        peers: peers.finish(),
        tracker_id: dict
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .filter(|id| !id.is_empty() && id.len() <= MAX_TRACKER_ID)
            .map(<[u8]>::to_vec),
        warning: dict
            .get(b"warning message")
            .and_then(Value::as_bytes)
            .map(|w| bounded_text(w, limits.max_text)),
        external_ip: dict
            .get(b"external ip")
            .and_then(Value::as_bytes)
            .and_then(ip_from_bytes),
        seeders: count(&dict, b"complete"),
        leechers: count(&dict, b"incomplete"),
    })
}

/// Checks the size, decodes the body, and turns `failure reason` and bad statuses into errors.
pub(crate) fn decode_body<'a>(
    status: u16,
    body: &'a [u8],
    limits: &TrackerLimits,
) -> Result<Dict<'a>, TrackerError> {
    if body.len() > limits.max_body {
        return Err(TrackerError::BodyTooLarge {
            len: body.len(),
            max: limits.max_body,
        });
    }
    let decoded = bencode::decode_with(body, limits.decode_options());
    if let Ok(Value::Dict(dict)) = &decoded {
        if let Some(reason) = dict.get(b"failure reason") {
            return Err(TrackerError::Failure {
                reason: bounded_text(reason.as_bytes().unwrap_or(b""), limits.max_text),
                retry_in: retry_in(dict),
            });
        }
    }
    if status != 200 {
        return Err(TrackerError::HttpStatus { status });
    }
    match decoded? {
        Value::Dict(dict) => Ok(dict),
        _ => Err(TrackerError::NotADictionary),
    }
}

/// BEP 31: `retry in` is a number of minutes or the string `never`.
fn retry_in(dict: &Dict<'_>) -> Option<RetryIn> {
    match dict.get(b"retry in")? {
        Value::Int(minutes) => {
            let minutes = u64::try_from(*minutes).ok()?;
            // Cap at a year: a tracker cannot make us wait longer than that.
            Some(RetryIn::After(Duration::from_secs(
                minutes.min(365 * 24 * 60) * 60,
            )))
        }
        Value::Bytes(b"never") => Some(RetryIn::Never),
        _ => None,
    }
}

/// A non-negative integer field as seconds; absent, negative or absurd values are `None`.
fn seconds(dict: &Dict<'_>, key: &[u8]) -> Option<Duration> {
    let secs = dict.get(key)?.as_int()?;
    u32::try_from(secs)
        .ok()
        .map(|s| Duration::from_secs(u64::from(s)))
}

/// A count field; negative values are `None`, huge ones saturate.
pub(crate) fn count(dict: &Dict<'_>, key: &[u8]) -> Option<u32> {
    let n = dict.get(key)?.as_int()?;
    (n >= 0).then(|| u32::try_from(n).unwrap_or(u32::MAX))
}

/// BEP 24: 4 bytes for IPv4, 16 for IPv6.
fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// A BEP 3 dictionary peer: `ip` an IPv4 or IPv6 literal (brackets allowed), `port` 1..=65535.
fn dict_peer(entry: &Dict<'_>) -> Option<SocketAddr> {
    let ip = entry.get(b"ip")?.as_str()?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(ip);
    let ip: IpAddr = ip.parse().ok()?;
    let port = u16::try_from(entry.get(b"port")?.as_int()?).ok()?;
    Some(SocketAddr::new(ip, port))
}
