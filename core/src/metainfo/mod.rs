//! `.torrent` files: v1 (BEP 3), v2 (BEP 52) and hybrid, validated into an owned [`Metainfo`].
//!
//! ```
//! # fn main() -> Result<(), bitshoal_core::metainfo::MetainfoError> {
//! use bitshoal_core::metainfo::Metainfo;
//! let torrent = b"d8:announce20:http://t.invalid/ann4:infod6:lengthi5e4:name5:a.txt\
//!                 12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
//! let meta = Metainfo::from_bytes(torrent)?;
//! let info = meta.info();
//! assert_eq!(info.name(), "a.txt");
//! assert_eq!(info.layout().piece_count(), 1);
//! assert_eq!(meta.trackers(), [vec!["http://t.invalid/ann".to_string()]]);
//! # Ok(()) }
//! ```
//!
//! What is checked, in this order (the first failure is reported):
//! 1. sizes ([`Limits`]) and strict bencode: the info-hash is over the exact bytes of `info`;
//! 2. `meta version` (BEP 52 says first), `piece length`, `name`, `private` (BEP 27);
//! 3. the v1 file list (`length` or `files`, BEP 47 attributes, padding and symlinks) and
//!    `pieces` against the lengths (the piece count is bounded before anything is allocated);
//! 4. the v2 `file tree`, and for hybrids the agreement of both views;
//! 5. duplicate paths and files that are also directories;
//! 6. v2 `piece layers` against each file's `pieces root`.
//!
//! Paths follow one rule, documented on [`SafePath`]: unsafe components are refused,
//! never rewritten. Keys outside `info` that cannot change what is downloaded or where it is
//! written (`announce`, `announce-list`, `url-list`, `httpseeds`, `nodes`, `comment`,
//! `created by`, `creation date`, `similar`, `collections`) are read best-effort: entries of the
//! wrong type are skipped, as libtorrent does.

mod error;
mod hybrid;
mod info;
mod layout;
mod limits;
mod path;
mod v1;
mod v2;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use error::{FileTreeProblem, HybridProblem, MetainfoError, PieceLengthProblem};
pub use info::{FileAttributes, FileEntry, Info, Version};
pub use layout::{Block, FileSpan, FileSpans, Layout, PieceIndex, BLOCK_LEN};
pub use limits::Limits;
pub use path::{check_component, PathError, SafePath, UnsafeComponent};

use bytes::Bytes;

use crate::bencode::{self, DecodeOptions, Dict, Value};
use crate::id::InfoHashes;

/// A DHT node to bootstrap from (BEP 5 `nodes`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DhtNode {
    /// A host name or IP address.
    pub host: String,
    /// The UDP port.
    pub port: u16,
}

/// A validated `.torrent` file: its [`Info`] plus what lies outside `info`. Owned, no borrows.
#[derive(Clone, Debug)]
pub struct Metainfo {
    info: Info,
    piece_layers: Vec<Option<Bytes>>,
    trackers: Vec<Vec<String>>,
    url_list: Vec<String>,
    http_seeds: Vec<String>,
    nodes: Vec<DhtNode>,
    similar: Vec<InfoHashes>,
    collections: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

impl Metainfo {
    /// Parses and validates a `.torrent` file with the default [`Limits`].
    pub fn from_bytes(torrent: &[u8]) -> Result<Self, MetainfoError> {
        Self::from_bytes_with(torrent, &Limits::DEFAULT)
    }

    /// Parses and validates a `.torrent` file with the given limits.
    pub fn from_bytes_with(torrent: &[u8], limits: &Limits) -> Result<Self, MetainfoError> {
        if torrent.len() > limits.max_torrent_size {
            return Err(MetainfoError::TorrentTooLarge {
                size: torrent.len(),
                max: limits.max_torrent_size,
            });
        }
        // One copy; the info bytes, v1 hashes and piece layers are slices of it.
        let buf = Bytes::copy_from_slice(torrent);
        let value = bencode::decode_with(&buf, DecodeOptions::STRICT)?;
        let root = value.as_dict().ok_or(MetainfoError::WrongType {
            key: "<root>",
            expected: "dictionary",
        })?;
        let info_dict = info::required(info::opt_dict(root, b"info", "info")?, "info")?;
        let info = Info::parse(&buf, info_dict, limits)?;
        let piece_layers = match info.version() {
            Version::V1 => Vec::new(),
            Version::V2 | Version::Hybrid => v2::piece_layers(
                &buf,
                info::opt_dict(root, b"piece layers", "piece layers")?,
                info.files(),
                info.piece_length(),
            )?,
        };
        let mut similar = info.similar().to_vec();
        let mut collections = info.collections().to_vec();
        info::read_similar(root, &mut similar, &mut collections);
        Ok(Self {
            trackers: trackers(root),
            url_list: strings(root.get(b"url-list")),
            http_seeds: strings(root.get(b"httpseeds")),
            nodes: nodes(root),
            comment: text(root, b"comment"),
            created_by: text(root, b"created by"),
            creation_date: root.get(b"creation date").and_then(Value::as_int),
            info,
            piece_layers,
            similar,
            collections,
        })
    }

    /// A torrent made of an `info` dictionary alone (fetched from peers, BEP 9) and tracker
    /// tiers. A v2 or hybrid torrent made this way has no piece layers ([`Metainfo::piece_layer`]
    /// is `None`): BEP 52 peers serve them on request.
    pub fn from_info(info: Info, trackers: Vec<Vec<String>>) -> Self {
        let files = info.files().len();
        let similar = info.similar().to_vec();
        let collections = info.collections().to_vec();
        Self {
            piece_layers: match info.version() {
                Version::V1 => Vec::new(),
                Version::V2 | Version::Hybrid => vec![None; files],
            },
            info,
            trackers,
            url_list: Vec::new(),
            http_seeds: Vec::new(),
            nodes: Vec::new(),
            similar,
            collections,
            comment: None,
            created_by: None,
            creation_date: None,
        }
    }

    /// The validated `info` dictionary.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The `info` dictionary, dropping the rest.
    pub fn into_info(self) -> Info {
        self.info
    }

    /// The info-hashes (shorthand for `info().hashes()`).
    pub fn hashes(&self) -> InfoHashes {
        self.info.hashes()
    }

    /// The v2 piece layer of file `file`: 32-byte hashes, one per piece of the file (BEP 52).
    ///
    /// `None` for v1 torrents and for files of at most one piece, whose `pieces root` is their
    /// only piece hash.
    pub fn piece_layer(&self, file: usize) -> Option<&Bytes> {
        self.piece_layers.get(file)?.as_ref()
    }

    /// Every file's v2 piece layer, by file index (see [`Metainfo::piece_layer`]); empty for v1
    /// torrents. What [`AddTorrent::with_piece_layers`](crate::session::AddTorrent) takes.
    pub fn piece_layers(&self) -> &[Option<Bytes>] {
        &self.piece_layers
    }

    /// Tracker tiers (BEP 12 `announce-list`; a single tier of `announce` when that is absent or
    /// empty). Empty for a trackerless torrent.
    pub fn trackers(&self) -> &[Vec<String>] {
        &self.trackers
    }

    /// Web seeds (BEP 19 `url-list`, a string or a list).
    pub fn url_list(&self) -> &[String] {
        &self.url_list
    }

    /// HTTP seeds (BEP 17 `httpseeds`).
    pub fn http_seeds(&self) -> &[String] {
        &self.http_seeds
    }

    /// DHT bootstrap nodes (BEP 5 `nodes`).
    pub fn nodes(&self) -> &[DhtNode] {
        &self.nodes
    }

    /// BEP 38 `similar` torrents, from inside and outside `info`, merged.
    pub fn similar(&self) -> &[InfoHashes] {
        &self.similar
    }

    /// BEP 38 `collections`, from inside and outside `info`, merged.
    pub fn collections(&self) -> &[String] {
        &self.collections
    }

    /// `comment.utf-8` or `comment`.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// `created by`.
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// `creation date`, seconds since the Unix epoch.
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }
}

/// A text key, preferring its `.utf-8` variant; invalid UTF-8 is skipped.
fn text(root: &Dict<'_>, key: &[u8]) -> Option<String> {
    let mut utf8_key = key.to_vec();
    utf8_key.extend_from_slice(b".utf-8");
    root.get(&utf8_key)
        .and_then(Value::as_str)
        .or_else(|| root.get(key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// A string or a list of strings (BEP 19 allows both); empty and non-UTF-8 entries skipped.
fn strings(value: Option<&Value<'_>>) -> Vec<String> {
    let one = |v: &Value<'_>| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    match value {
        Some(Value::List(list)) => list.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// BEP 12: `announce-list` tiers if it has any tracker, otherwise `announce`.
fn trackers(root: &Dict<'_>) -> Vec<Vec<String>> {
    let mut tiers: Vec<Vec<String>> = Vec::new();
    if let Some(list) = root.get(b"announce-list").and_then(Value::as_list) {
        for tier in list.iter().filter_map(Value::as_list) {
            let mut urls = Vec::new();
            for url in tier.iter().filter_map(Value::as_str) {
                let seen = tiers.iter().flatten().chain(&urls).any(|u| u == url);
                if !url.is_empty() && !seen {
                    urls.push(url.to_owned());
                }
            }
            if !urls.is_empty() {
                tiers.push(urls);
            }
        }
    }
    if tiers.is_empty() {
        if let Some(url) = root.get(b"announce").and_then(Value::as_str) {
            if !url.is_empty() {
                tiers.push(vec![url.to_owned()]);
            }
        }
    }
    tiers
}

/// BEP 5 `nodes`: a list of `[host, port]` pairs.
fn nodes(root: &Dict<'_>) -> Vec<DhtNode> {
    let Some(list) = root.get(b"nodes").and_then(Value::as_list) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|pair| match pair.as_list()?.as_slice() {
            [host, port] => Some(DhtNode {
                host: host.as_str().filter(|h| !h.is_empty())?.to_owned(),
                port: u16::try_from(port.as_int()?).ok().filter(|&p| p != 0)?,
            }),
            _ => None,
        })
        .collect()
}
