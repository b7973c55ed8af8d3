//! Magnet URIs (BEP 9, BEP 52, BEP 53): parsing and formatting.
//!
//! ```text
//! magnet:?xt=urn:btih:<40 hex or 32 base32>&xt=urn:btmh:1220<64 hex>&dn=<name>&xl=<bytes>
//!        &tr=<tracker>&tr=...&ws=<web seed>&x.pe=<host:port>&so=0,2,4-6
//! ```
//!
//! [`Magnet::parse`] reads a link into a [`Magnet`]; [`Magnet`]'s `Display` writes one back, and
//! the two round-trip: `Magnet::parse(&m.to_string()) == Ok(m)`.
//!
//! What is understood:
//! - `xt`: `urn:btih:` with a v1 info-hash in hex (40 digits, either case) or base32 (32
//!   characters, either case; BEP 9), and `urn:btmh:` with a v2 info-hash as a sha2-256 multihash,
//!   `1220` followed by 64 hex digits (BEP 9, BEP 52). Both in one link make a hybrid torrent.
//!   The same hash given twice (say in hex and in base32) is fine; two different v1 or two
//!   different v2 hashes are [`MagnetError::ConflictingInfoHash`]. `xt`s with other URNs
//!   (`urn:sha1:`, `urn:ed2k:`, ...) are ignored; a link with no btih or btmh is
//!   [`MagnetError::MissingInfoHash`].
//! - `dn`: the display name (the first one counts). Invalid UTF-8 after percent-decoding is
//!   replaced with U+FFFD, since the name is only shown, never used as a path.
//! - `tr` (and libtorrent's `tr.1`, `tr.2`, ...): trackers, in order, duplicates dropped.
//! - `ws`: web seeds (BEP 19), in order, duplicates dropped.
//! - `x.pe`: peer addresses (BEP 9), see [`PeerAddr`], in order, duplicates dropped.
//! - `so`: select-only file indices (BEP 53), see [`SelectOnly`]; several `so` are united.
//! - `xl`: the exact length in bytes (decimal); several must agree.
//!
//! Decisions, for a parser that is fed links from anywhere:
//! - The scheme and the parameter names are matched case-insensitively (RFC 3986 makes schemes
//!   case-insensitive; libtorrent rejects `MAGNET:`, we accept it). Surrounding ASCII whitespace
//!   is trimmed, since links are pasted.
//! - Values are percent-decoded, and `+` decodes to a space, as in libtorrent (so a literal `+`
//!   must be written `%2B`). A `%` not followed by two hex digits is
//!   [`MagnetError::BadPercentEncoding`], as is invalid UTF-8 in any value but `dn`.
//! - A parameter with an empty value (`tr=`, `so=`, or no `=` at all) is ignored.
//! - Unknown parameters (`xs`, `as`, `kt`, `mt`, other `x.*`, ...) are ignored and not kept, as
//!   libtorrent does: a formatted link carries only what [`Magnet`] models.
//! - Bounds: at most [`MAX_URI_LEN`] bytes and [`MAX_PARAMS`] parameters, so hostile input costs
//!   memory proportional to a small, fixed input size.
//!
//! Formatting percent-encodes everything in a value except ASCII letters, digits and `-._~`
//! (RFC 3986 unreserved), which every parser in the wild reads back; `x.pe` keeps `:`, `[` and
//! `]` literal because libtorrent (2.0) does not percent-decode `x.pe` (nor `so`, whose digits,
//! `,` and `-` need no encoding).

mod peer;
mod select;

pub use peer::{HostPort, PeerAddr};
pub use select::SelectOnly;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::id::{parse_hex, InfoHashV1, InfoHashV2, InfoHashes};

/// The longest magnet URI [`Magnet::parse`] accepts, in bytes (64 KiB).
pub const MAX_URI_LEN: usize = 64 * 1024;

/// The most `&`-separated parameters [`Magnet::parse`] accepts, counting empty and unknown ones.
pub const MAX_PARAMS: usize = 1024;

/// The multihash prefix of a sha2-256 digest: function code 0x12, length 0x20 (BEP 52 `btmh`).
const SHA2_256_MULTIHASH: &str = "1220";

/// What is percent-encoded when formatting: all but RFC 3986 unreserved characters.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What is percent-encoded in an `x.pe` value: as [`ENCODE`], but `host:port` and `[v6]:port`
/// stay literal for libtorrent, which reads `x.pe` without decoding it.
const ENCODE_PEER: &AsciiSet = &ENCODE.remove(b':').remove(b'[').remove(b']');

/// A parsed magnet link (BEP 9, 52, 53).
///
/// Built by [`Magnet::parse`] or [`Magnet::new`] and the setters, which keep the invariants that
/// make formatting round-trip: no empty strings, no duplicate trackers, web seeds or peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    info_hashes: InfoHashes,
    display_name: Option<String>,
    trackers: Vec<String>,
    web_seeds: Vec<String>,
    peers: Vec<PeerAddr>,
    select_only: Option<SelectOnly>,
    exact_length: Option<u64>,
}

/// Which kind of exact topic (`xt`) an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashUrn {
    /// `urn:btih:`, a v1 info-hash (BEP 9).
    Btih,
    /// `urn:btmh:`, a v2 info-hash as a multihash (BEP 9, BEP 52).
    Btmh,
}

impl fmt::Display for HashUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Btih => "urn:btih",
            Self::Btmh => "urn:btmh",
        })
    }
}

/// Why a magnet link was rejected. All are the link's fault (malformed input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    NotAMagnet,
    /// The link is longer than [`MAX_URI_LEN`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The link has more than [`MAX_PARAMS`] parameters.
    TooManyParameters,
    /// A `%` not followed by two hex digits, or a value (other than `dn`) that is not UTF-8.
    BadPercentEncoding,
    /// No `xt=urn:btih:` or `xt=urn:btmh:` parameter.
    MissingInfoHash,
    /// An info-hash of the wrong length or alphabet, or a `btmh` that is not sha2-256.
    BadInfoHash {
        /// Which kind of hash.
        urn: HashUrn,
    },
    /// Two different hashes of the same kind.
    ConflictingInfoHash {
        /// Which kind of hash.
        urn: HashUrn,
    },
    /// An `x.pe` value that is not `host:port`, `ipv4:port` or `[ipv6]:port` with a port > 0.
    BadPeerAddress,
    /// An `so` value that is not a list of indices and ranges, has a range ending before it
    /// starts, or names an index above [`SelectOnly::MAX_INDEX`].
    BadSelectOnly,
    /// An `xl` value that is not a decimal `u64`, or two `xl` that disagree.
    BadExactLength,
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAMagnet => f.write_str("magnet: not a magnet link (no \"magnet:?\")"),
            Self::TooLong { len } => {
                write!(f, "magnet: link of {len} bytes exceeds {MAX_URI_LEN}")
            }
            Self::TooManyParameters => {
                write!(f, "magnet: more than {MAX_PARAMS} parameters")
            }
            Self::BadPercentEncoding => f.write_str("magnet: bad percent-encoding"),
            Self::MissingInfoHash => f.write_str("magnet: no urn:btih or urn:btmh exact topic"),
            Self::BadInfoHash { urn } => write!(f, "magnet: malformed {urn} info-hash"),
            Self::ConflictingInfoHash { urn } => {
                write!(f, "magnet: two different {urn} info-hashes")
            }
            Self::BadPeerAddress => f.write_str("magnet: malformed x.pe peer address"),
            Self::BadSelectOnly => f.write_str("magnet: malformed so (select-only) list"),
            Self::BadExactLength => f.write_str("magnet: malformed or conflicting xl length"),
        }
    }
}

impl std::error::Error for MagnetError {}

impl Magnet {
    /// A magnet with only info-hashes; add the rest with the setters.
    pub fn new(info_hashes: InfoHashes) -> Self {
        Self {
            info_hashes,
            display_name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            peers: Vec::new(),
            select_only: None,
            exact_length: None,
        }
    }

    /// Parses a magnet link; see the [module documentation](self) for what is accepted.
    ///
    /// ```
    /// use bitshoal_core::magnet::Magnet;
    ///
    /// let m = Magnet::parse(
    ///     "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=demo+1\
    ///      &tr=udp%3A%2F%2Ft.example%3A80&so=2,0-1",
    /// )?;
    /// assert_eq!(m.display_name(), Some("demo 1"));
    /// assert_eq!(m.trackers(), ["udp://t.example:80"]);
    /// assert_eq!(m.select_only().map(|so| so.to_string()).as_deref(), Some("0-2"));
    /// assert_eq!(Magnet::parse(&m.to_string())?, m);
    /// # Ok::<(), bitshoal_core::magnet::MagnetError>(())
    /// ```
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        if uri.len() > MAX_URI_LEN {
            return Err(MagnetError::TooLong { len: uri.len() });
        }
        let uri = uri.trim_matches(|c: char| c.is_ascii_whitespace());
        let query = strip_prefix_ignore_case(uri, "magnet:?").ok_or(MagnetError::NotAMagnet)?;
        if query.split('&').nth(MAX_PARAMS).is_some() {
            return Err(MagnetError::TooManyParameters);
        }

        let mut v1: Option<InfoHashV1> = None;
        let mut v2: Option<InfoHashV2> = None;
        let mut display_name = None;
        // The hashes are placeholders until every `xt` has been seen (set below).
        let mut fields = Self::new(InfoHashes::V1(InfoHashV1([0; 20])));
        let mut select_only: Vec<SelectOnly> = Vec::new();
        for param in query.split('&') {
            let (name, raw) = param.split_once('=').unwrap_or((param, ""));
            if raw.is_empty() {
                continue;
            }
            let Some(kind) = Param::from_name(name) else {
                continue;
            };
            if kind == Param::DisplayName {
                if display_name.is_none() {
                    display_name = Some(decode_lossy(raw)?);
                }
                continue;
            }
            let value = decode(raw)?;
            match kind {
                Param::ExactTopic => match parse_exact_topic(&value)? {
                    Some(Topic::V1(h)) => set_once(&mut v1, h, HashUrn::Btih)?,
                    Some(Topic::V2(h)) => set_once(&mut v2, h, HashUrn::Btmh)?,
                    None => {}
                },
                Param::DisplayName => {}
                Param::Tracker => {
                    fields.add_tracker(value);
                }
                Param::WebSeed => {
                    fields.add_web_seed(value);
                }
                Param::Peer => {
                    fields.add_peer(value.parse()?);
                }
                Param::SelectOnly => select_only.push(value.parse()?),
                Param::ExactLength => {
                    let len = parse_decimal(&value).ok_or(MagnetError::BadExactLength)?;
                    if fields.exact_length.is_some_and(|l| l != len) {
                        return Err(MagnetError::BadExactLength);
                    }
                    fields.exact_length = Some(len);
                }
            }
        }
        fields.info_hashes = match (v1, v2) {
            (Some(a), Some(b)) => InfoHashes::Hybrid(a, b),
            (Some(a), None) => InfoHashes::V1(a),
            (None, Some(b)) => InfoHashes::V2(b),
            (None, None) => return Err(MagnetError::MissingInfoHash),
        };
        fields.set_display_name(display_name);
        if !select_only.is_empty() {
            let ranges = select_only.iter().flat_map(|s| s.ranges().iter().cloned());
            fields.select_only = Some(SelectOnly::from_ranges(ranges)?);
        }
        Ok(fields)
    }

    /// The info-hashes: v1 (`btih`), v2 (`btmh`) or both (hybrid).
    pub fn info_hashes(&self) -> InfoHashes {
        self.info_hashes
    }

    /// The display name (`dn`), if any.
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// Sets or clears the display name; an empty name clears it.
    pub fn set_display_name(&mut self, name: Option<String>) {
        self.display_name = name.filter(|n| !n.is_empty());
    }

    /// The tracker URLs (`tr`), in order of appearance.
    pub fn trackers(&self) -> &[String] {
        &self.trackers
    }

    /// Appends a tracker URL unless it is empty or already present; returns whether it was added.
    pub fn add_tracker(&mut self, url: impl Into<String>) -> bool {
        push_unique(&mut self.trackers, url.into())
    }

    /// The web seed URLs (`ws`, BEP 19), in order of appearance.
    pub fn web_seeds(&self) -> &[String] {
        &self.web_seeds
    }

    /// Appends a web seed URL unless it is empty or already present; returns whether it was added.
    pub fn add_web_seed(&mut self, url: impl Into<String>) -> bool {
        push_unique(&mut self.web_seeds, url.into())
    }

    /// The peer addresses (`x.pe`), in order of appearance.
    pub fn peers(&self) -> &[PeerAddr] {
        &self.peers
    }

    /// Appends a peer address unless already present; returns whether it was added.
    pub fn add_peer(&mut self, peer: PeerAddr) -> bool {
        if self.peers.contains(&peer) {
            return false;
        }
        self.peers.push(peer);
        true
    }

    /// The files to download (`so`, BEP 53), if the link restricts them.
    pub fn select_only(&self) -> Option<&SelectOnly> {
        self.select_only.as_ref()
    }

    /// Sets or clears the select-only list.
    pub fn set_select_only(&mut self, select_only: Option<SelectOnly>) {
        self.select_only = select_only;
    }

    /// The total length of the torrent's files in bytes (`xl`), if given.
    pub fn exact_length(&self) -> Option<u64> {
        self.exact_length
    }

    /// Sets or clears the exact length.
    pub fn set_exact_length(&mut self, len: Option<u64>) {
        self.exact_length = len;
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    /// Same as [`Magnet::parse`].
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        Self::parse(s)
    }
}

impl fmt::Display for Magnet {
    /// Writes the link: `xt` (btih, then btmh), `dn`, `xl`, `tr`s, `ws`s, `x.pe`s, `so`.
    ///
    /// [`Magnet::parse`] reads the result back to an equal `Magnet`, unless percent-encoding made
    /// it longer than [`MAX_URI_LEN`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "&" };
            first = false;
            f.write_str(s)
        };
        if let Some(h) = self.info_hashes.v1() {
            sep(f)?;
            write!(f, "xt=urn:btih:{h}")?;
        }
        if let Some(h) = self.info_hashes.v2() {
            sep(f)?;
            write!(f, "xt=urn:btmh:{SHA2_256_MULTIHASH}{h}")?;
        }
        if let Some(name) = &self.display_name {
            sep(f)?;
            write!(f, "dn={}", utf8_percent_encode(name, ENCODE))?;
        }
        if let Some(len) = self.exact_length {
            sep(f)?;
            write!(f, "xl={len}")?;
        }
        for tr in &self.trackers {
            sep(f)?;
            write!(f, "tr={}", utf8_percent_encode(tr, ENCODE))?;
        }
        for ws in &self.web_seeds {
            sep(f)?;
            write!(f, "ws={}", utf8_percent_encode(ws, ENCODE))?;
        }
        for peer in &self.peers {
            sep(f)?;
            let text = peer.to_string();
            write!(f, "x.pe={}", utf8_percent_encode(&text, ENCODE_PEER))?;
        }
        if let Some(so) = &self.select_only {
            sep(f)?;
            write!(f, "so={so}")?;
        }
        Ok(())
    }
}

/// The parameters [`Magnet`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    ExactTopic,
    DisplayName,
    Tracker,
    WebSeed,
    Peer,
    SelectOnly,
    ExactLength,
}

impl Param {
    /// Recognises a parameter name, case-insensitively; `tr.<digits>` counts as `tr`.
    fn from_name(name: &str) -> Option<Self> {
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        Some(if is("xt") {
            Self::ExactTopic
        } else if is("dn") {
            Self::DisplayName
        } else if is("tr") || is_numbered_tracker(name) {
            Self::Tracker
        } else if is("ws") {
            Self::WebSeed
        } else if is("x.pe") {
            Self::Peer
        } else if is("so") {
            Self::SelectOnly
        } else if is("xl") {
            Self::ExactLength
        } else {
            return None;
        })
    }
}

/// libtorrent (and some link generators) number trackers: `tr.1=...&tr.2=...`.
fn is_numbered_tracker(name: &str) -> bool {
    strip_prefix_ignore_case(name, "tr.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One recognised exact topic.
enum Topic {
    V1(InfoHashV1),
    V2(InfoHashV2),
}

/// Reads an `xt` value: `Some` for `urn:btih:`/`urn:btmh:`, `None` for other URNs.
fn parse_exact_topic(value: &str) -> Result<Option<Topic>, MagnetError> {
    if let Some(hash) = strip_prefix_ignore_case(value, "urn:btih:") {
        let bad = MagnetError::BadInfoHash { urn: HashUrn::Btih };
        return match hash.len() {
            40 => parse_hex::<20>(hash).map(|h| Some(Topic::V1(InfoHashV1(h)))),
            32 => parse_base32(hash).map(|h| Some(Topic::V1(InfoHashV1(h)))),
            _ => None,
        }
        .ok_or(bad);
    }
    if let Some(multihash) = strip_prefix_ignore_case(value, "urn:btmh:") {
        // BEP 52: the only multihash a v2 torrent uses is sha2-256.
        return strip_prefix_ignore_case(multihash, SHA2_256_MULTIHASH)
            .and_then(parse_hex::<32>)
            .map(|h| Some(Topic::V2(InfoHashV2(h))))
            .ok_or(MagnetError::BadInfoHash { urn: HashUrn::Btmh });
    }
    Ok(None)
}

/// Decodes a 32-character RFC 4648 base32 v1 info-hash, either case (BEP 9).
fn parse_base32(s: &str) -> Option<[u8; 20]> {
    let mut upper = [0u8; 32];
    if s.len() != upper.len() {
        return None;
    }
    for (dst, src) in upper.iter_mut().zip(s.bytes()) {
        *dst = src.to_ascii_uppercase();
    }
    let mut out = [0u8; 20];
    match data_encoding::BASE32.decode_mut(&upper, &mut out) {
        Ok(20) => Some(out),
        _ => None,
    }
}

/// Records a hash; the same one again is fine, a different one is a conflict.
fn set_once<T: PartialEq>(slot: &mut Option<T>, h: T, urn: HashUrn) -> Result<(), MagnetError> {
    match slot {
        Some(old) if *old != h => Err(MagnetError::ConflictingInfoHash { urn }),
        Some(_) => Ok(()),
        None => {
            *slot = Some(h);
            Ok(())
        }
    }
}

/// Parses ASCII decimal digits (no sign, no spaces) into a `u64`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Appends `s` unless it is empty or already present.
fn push_unique(list: &mut Vec<String>, s: String) -> bool {
    if s.is_empty() || list.contains(&s) {
        return false;
    }
    list.push(s);
    true
}

/// `s` without `prefix`, compared ASCII-case-insensitively.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Checks that every `%` is followed by two hex digits, and turns `+` into a space.
fn unplus_checked(raw: &str) -> Result<Cow<'_, str>, MagnetError> {
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            return Err(MagnetError::BadPercentEncoding);
        }
    }
    Ok(if raw.contains('+') {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    })
}

/// Percent-decodes a value that must be UTF-8.
fn decode(raw: &str) -> Result<String, MagnetError> {
    let unplussed = unplus_checked(raw)?;
    percent_decode_str(&unplussed)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| MagnetError::BadPercentEncoding)
}

/// Percent-decodes a value, replacing invalid UTF-8 with U+FFFD.
fn decode_lossy(raw: &str) -> Result<String, MagnetError> {
    let unplussed = unplus_checked(raw)?;
    Ok(percent_decode_str(&unplussed)
        .decode_utf8_lossy()
        .into_owned())
}

#[cfg(test)]
mod tests;
