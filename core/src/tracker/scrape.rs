//! HTTP scrape (BEP 48): the scrape URL, the request, and the response.

use percent_encoding::percent_encode;

use super::http::{count, decode_body, start_query, QUERY_VALUE};
use super::url::http_base;
use super::{bounded_text, ScrapeStats, TrackerError, TrackerLimits};
use crate::bencode::Value;
use crate::time::Duration;

/// A tracker's answer to a scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// Counts per info-hash, in the order the tracker sent them; entries whose key is not a
    /// 20-byte hash or whose value is not a dictionary are skipped, and at most
    /// [`TrackerLimits::max_scrape_entries`] are kept.
    pub files: Vec<([u8; 20], ScrapeStats)>,
    /// `flags` → `min_request_interval`: do not scrape again sooner.
    pub min_request_interval: Option<Duration>,
}

impl ScrapeResponse {
    /// The counts for `info_hash`, if the tracker sent them.
    pub fn get(&self, info_hash: &[u8; 20]) -> Option<&ScrapeStats> {
        self.files
            .iter()
            .find(|(h, _)| h == info_hash)
            .map(|(_, s)| s)
    }
}

/// The scrape URL of an HTTP announce URL, if the tracker has one by convention (BEP 48).
///
/// Only when the last path component starts with `announce`: that `announce` becomes `scrape`
/// and everything else (the rest of the component, the query) stays. `None` otherwise, and for
/// non-HTTP URLs.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let base = http_base(announce_url).ok()?;
    let path_end = base.find('?').unwrap_or(base.len());
    let slash = base[..path_end].rfind('/')?;
    // The slash must be in the path, not the `//` after the scheme.
    let scheme_end = base.find("://")? + 3;
    if slash < scheme_end {
        return None;
    }
    let last = &base[slash + 1..path_end];
    if !last.starts_with("announce") {
        return None;
    }
    let mut url = String::with_capacity(base.len());
    url.push_str(&base[..slash + 1]);
    url.push_str("scrape");
    url.push_str(&base[slash + 1 + "announce".len()..]);
    Some(url)
}

/// The request URL to scrape `info_hashes` at `scrape_url` (each as an `info_hash` parameter;
/// an existing query is kept).
pub fn scrape_request_url(
    scrape_url: &str,
    info_hashes: &[[u8; 20]],
) -> Result<String, TrackerError> {
    let base = http_base(scrape_url)?;
    let mut url = start_query(base);
    for (i, hash) in info_hashes.iter().enumerate() {
        if i > 0 {
            url.push('&');
        }
        url.push_str("info_hash=");
        url.extend(percent_encode(hash, QUERY_VALUE));
    }
    Ok(url)
}

/// Parses an HTTP tracker's answer to a scrape (BEP 48), within `limits`.
///
/// `failure reason` and error statuses are handled as for announces
/// ([`parse_announce_response`](super::parse_announce_response)).
pub fn parse_scrape_response(
    status: u16,
    body: &[u8],
    limits: &TrackerLimits,
) -> Result<ScrapeResponse, TrackerError> {
    let dict = decode_body(status, body, limits)?;
    let files = match dict.get(b"files") {
        Some(Value::Dict(files)) => files,
        Some(_) => return Err(TrackerError::InvalidField { field: "files" }),
        None => return Ok(ScrapeResponse::default()),
    };
    let mut out = Vec::new();
    for (key, value) in files.iter() {
        if out.len() >= limits.max_scrape_entries {
            break;
        }
        let (Ok(hash), Some(entry)) = (<[u8; 20]>::try_from(*key), value.as_dict()) else {
            continue;
        };
        out.push((
            hash,
            ScrapeStats {
                complete: count(entry, b"complete").unwrap_or(0),
                downloaded: count(entry, b"downloaded").unwrap_or(0),
                incomplete: count(entry, b"incomplete").unwrap_or(0),
                name: entry
                    .get(b"name")
                    .and_then(Value::as_bytes)
                    .map(|n| bounded_text(n, limits.max_text)),
            },
        ));
    }
    let min_request_interval = dict
        .get(b"flags")
        .and_then(Value::as_dict)
        .and_then(|flags| flags.get(b"min_request_interval"))
        .and_then(Value::as_int)
        .and_then(|s| u32::try_from(s).ok())
        .map(|s| Duration::from_secs(u64::from(s)));
    Ok(ScrapeResponse {
        files: out,
        min_request_interval,
    })
}
