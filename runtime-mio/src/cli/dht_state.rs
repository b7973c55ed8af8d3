//! The DHT across runs, and updatable torrents (BEP 46) for `bitshoal download`.
//!
//! # The node id survives restarts (BEP 5)
//!
//! `download -o DIR` keeps its DHT node's id and contacts in `DIR/.bitshoal/dht.dat`
//! (`--state-dir S` moves it to `S/dht.dat`); `seed --data DIR` in `DIR/.bitshoal/dht.dat`.
//! The file is the bencoded [`DhtState`] (`d2:id20:…5:nodes…6:nodes6…e`, compact node
//! infos), written when the command ends (done, timed out or interrupted) through a temporary
//! file and a rename, and read when it starts: the node keeps its id and asks the saved
//! contacts first, besides the bootstrap nodes. A missing or unreadable file starts afresh.
//!
//! # `magnet:?xs=urn:btpk:<public key>&s=<salt>`
//!
//! A link with a BEP 46 source and no `xt` is looked up on the DHT first (a BEP 44 mutable
//! item signed by that key); the info-hash its newest version points at is then downloaded
//! as the magnet `magnet:?xt=urn:btih:<info-hash>`. Without the DHT (`--no-dht`, or a
//! loopback `--listen` without `--dht-bootstrap`) such a link has nowhere to come from (exit
//! 3).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bitshoal_core::dht::{DhtState, TorrentSource};
use bitshoal_core::id::InfoHashes;
use bitshoal_core::magnet::Magnet;
use bitshoal_core::session::{DhtSettings, Event};
use bitshoal_mio::client::{ClientEvent, TorrentClient};
use serde_json::json;

use super::transfer::{self, Failure, STATE_DIR_NAME};

/// The file's name in the state directory.
pub(crate) const DHT_STATE_FILE: &str = "dht.dat";

/// Where `download -o output [--state-dir S]` keeps the DHT state.
pub(crate) fn download_path(output: &Path, state_dir: Option<&Path>) -> PathBuf {
    state_dir
        .map_or_else(|| output.join(STATE_DIR_NAME), Path::to_path_buf)
        .join(DHT_STATE_FILE)
}

/// Where `seed --data DIR` keeps the DHT state.
pub(crate) fn seed_path(data: &Path) -> PathBuf {
    data.join(STATE_DIR_NAME).join(DHT_STATE_FILE)
}

/// `settings` with the state saved at `path`, if there is a readable one.
pub(crate) fn restore(settings: Option<DhtSettings>, path: &Path) -> Option<DhtSettings> {
    let mut settings = settings?;
    match std::fs::read(path) {
        Ok(bytes) => match DhtState::decode(&bytes) {
            Ok(state) => settings.state = Some(state),
            Err(e) => log::warn!("{}: not a DHT state ({e}); starting afresh", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("{}: {e}; starting the DHT afresh", path.display()),
    }
    Some(settings)
}

/// Writes the client's DHT state to `path` (nothing without a DHT). Failing to save is
/// reported, not fatal: the next run only starts afresh.
pub(crate) fn save<C: TorrentClient>(client: &mut C, path: &Path) {
    let Some(state) = client.view().dht_state() else {
        return;
    };
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("dat.tmp");
        std::fs::write(&tmp, state.encode())?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        eprintln!("cannot save the DHT state to {}: {e}", path.display());
    }
}

/// The BEP 46 source of a link that has one and no `xt` (an updatable torrent).
pub(crate) fn updatable(link: &str) -> Option<TorrentSource> {
    let query = link.get(8..).filter(|_| link.starts_with("magnet:?"))?;
    if query.split('&').any(|p| p.starts_with("xt=")) {
        return None;
    }
    TorrentSource::from_magnet(link)
}

/// Looks `source` up on the client's DHT (BEP 46) and returns the magnet link of the
/// info-hash it points at now.
pub(crate) fn resolve_source<C: TorrentClient>(
    client: &mut C,
    source: &TorrentSource,
    deadline: Option<Instant>,
    json: bool,
) -> Result<Magnet, Failure> {
    // The bootstrap may still be under way: a lookup that reached nobody is tried again.
    let mut lookup = None;
    let mut tries = 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Failure::unreachable(
                "the updatable torrent was not found on the DHT in the time allowed",
            ));
        }
        if lookup.is_none() {
            tries += 1;
            lookup = client.command(|s, now| s.dht_resolve_torrent(now, source));
            if lookup.is_none() {
                return Err(Failure::unreachable(
                    "an updatable torrent (BEP 46 xs=urn:btpk:) is found through the DHT, \
                     which is off",
                ));
            }
        }
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        for event in &events {
            transfer::log_event(event);
            let ClientEvent::Session(Event::DhtTorrentResolved {
                lookup: l,
                info_hash,
                seq,
            }) = event
            else {
                continue;
            };
            if Some(*l) != lookup {
                continue;
            }
            match info_hash {
                Some(ih) => {
                    if json {
                        transfer::emit(json!({
                            "event": "dht_resolved",
                            "info_hash": ih.to_string(),
                            "seq": seq,
                        }));
                    } else {
                        eprintln!("the updatable torrent points at {ih} (seq {seq:?})");
                    }
                    return Ok(Magnet::new(InfoHashes::V1(*ih)));
                }
                None if tries < MAX_TRIES => lookup = None,
                None => {
                    return Err(Failure::unreachable(
                        "no DHT node has the updatable torrent's item",
                    ))
                }
            }
        }
        if lookup.is_none() {
            // Give the bootstrap a moment before asking again.
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                client
                    .turn(Duration::from_millis(200))
                    .map_err(|e| Failure::other(format!("event loop: {e}")))?;
            }
        }
    }
}

/// How many lookups a BEP 46 source gets before giving up.
const MAX_TRIES: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updatable_links_need_a_key_and_no_info_hash() {
        let key = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e";
        let src = updatable(&format!("magnet:?xs=urn:btpk:{key}&s=6e")).unwrap();
        assert_eq!(src.salt, b"n");
        assert_eq!(src.public_key[0], 0x85);
        // An xt wins: an ordinary magnet.
        let both = format!("magnet:?xt=urn:btih:{}&xs=urn:btpk:{key}", "a".repeat(40));
        assert!(updatable(&both).is_none());
        assert!(updatable("magnet:?xs=urn:btpk:zz").is_none());
        assert!(updatable("http://example/?xs=urn:btpk:00").is_none());
    }

    #[test]
    fn the_state_round_trips_through_its_file_and_garbage_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = download_path(dir.path(), None);
        assert_eq!(path, dir.path().join(".bitshoal").join("dht.dat"));
        assert_eq!(
            download_path(dir.path(), Some(Path::new("/s"))),
            Path::new("/s/dht.dat")
        );
        assert_eq!(restore(None, &path), None);
        let fresh = restore(Some(DhtSettings::default()), &path).unwrap();
        assert_eq!(fresh.state, None);
        let state = DhtState {
            id: bitshoal_core::dht::NodeId([9; 20]),
            nodes: Vec::new(),
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, state.encode()).unwrap();
        let restored = restore(Some(DhtSettings::default()), &path).unwrap();
        assert_eq!(restored.state, Some(state));
        std::fs::write(&path, b"not bencode").unwrap();
        assert_eq!(
            restore(Some(DhtSettings::default()), &path).unwrap().state,
            None
        );
    }
}
