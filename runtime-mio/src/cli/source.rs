//! What `bitshoal download` downloads: a `.torrent` file or a magnet link (BEP 9).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bitshoal_core::id::TorrentId;
use bitshoal_core::magnet::{Magnet, PeerAddr};
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::session::{AddMagnet, AddTorrent};
use bitshoal_mio::client::Client;
use serde_json::{json, Value};

use super::transfer::{self, Failure};

/// A `.torrent` file's contents, or a magnet link whose metadata comes from peers.
#[derive(Debug)]
pub(crate) enum Source {
    /// A `.torrent` file.
    Torrent(Box<Metainfo>),
    /// A magnet link.
    Magnet(Box<Magnet>),
}

impl Source {
    /// Reads the command-line argument: a magnet link (`magnet:?...`) or a `.torrent` file.
    pub(crate) fn load(arg: &str) -> Result<Self, Failure> {
        let magnet = arg
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"));
        if magnet {
            let m = Magnet::parse(arg).map_err(|e| Failure::bad_torrent(format!("{arg}: {e}")))?;
            return Ok(Self::Magnet(Box::new(m)));
        }
        transfer::load_torrent(arg).map(|m| Self::Torrent(Box::new(m)))
    }

    /// Its tracker tiers (a magnet's `tr`s, each its own tier).
    pub(crate) fn trackers(&self) -> Vec<Vec<String>> {
        match self {
            Self::Torrent(meta) => meta.trackers().to_vec(),
            Self::Magnet(m) => m.trackers().iter().map(|t| vec![t.clone()]).collect(),
        }
    }

    /// The peers a magnet names (`x.pe`, IP literals; host names are not resolved yet).
    pub(crate) fn peers(&self) -> Vec<SocketAddr> {
        match self {
            Self::Torrent(_) => Vec::new(),
            Self::Magnet(m) => m
                .peers()
                .iter()
                .filter_map(|p| match p {
                    PeerAddr::Ip(addr) => Some(*addr),
                    PeerAddr::Host(_) => None,
                })
                .collect(),
        }
    }

    /// The piece count, or 0 while a magnet's metadata is unknown.
    pub(crate) fn pieces(&self) -> u32 {
        match self {
            Self::Torrent(meta) => meta.info().layout().piece_count(),
            Self::Magnet(_) => 0,
        }
    }

    /// The `started` JSON line.
    pub(crate) fn started_json(&self, dir: &Path, listen: Option<SocketAddr>) -> Value {
        match self {
            Self::Torrent(meta) => transfer::started_json(meta, dir, listen),
            Self::Magnet(m) => {
                let hashes = m.info_hashes();
                json!({
                    "event": "started",
                    "name": m.display_name(),
                    "info_hash_v1": hashes.v1().map(|h| h.to_string()),
                    "info_hash_v2": hashes.v2().map(|h| h.to_string()),
                    "pieces": null,
                    "bytes": m.exact_length(),
                    "path": null,
                    "listen": listen.map(|a| a.to_string()),
                    "trackers": self.trackers(),
                })
            }
        }
    }

    /// Adds it to the client, announcing to `trackers`; the content goes under `dir`. A
    /// magnet's peers are left to the caller to dial (see [`Source::peers`]).
    pub(crate) fn add(
        &self,
        client: &mut Client,
        trackers: Vec<Vec<String>>,
        dir: PathBuf,
    ) -> Result<TorrentId, Failure> {
        let added = match self {
            Self::Torrent(meta) => {
                let info = Arc::new(meta.info().clone());
                client.add_torrent_with(AddTorrent::new(info).with_trackers(trackers), dir)
            }
            Self::Magnet(m) => {
                let mut link = Magnet::new(m.info_hashes());
                link.set_display_name(m.display_name().map(str::to_string));
                link.set_select_only(m.select_only().cloned());
                client.add_magnet(AddMagnet::new(link).with_trackers(trackers), dir)
            }
        };
        added.map_err(|e| Failure::bad_torrent(e.to_string()))
    }
}
