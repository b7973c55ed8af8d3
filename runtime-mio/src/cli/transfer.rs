//! What `bitshoal download` and `bitshoal seed` share: loading the torrent, starting the
//! client, the exit codes, Ctrl-C, and reporting events as text or JSON lines.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (downloaded, verified and synced; or seeding stopped by Ctrl-C) |
//! | 1 | anything else (a listen address in use, a bad flag value...) |
//! | 2 | the torrent file is missing or invalid |
//! | 3 | nothing reachable (no tracker and every `--peer` failed), or `--timeout` passed |
//! | 4 | a disk error (writing, syncing, disk full, `seed --trust-data`'s data missing) |
//! | 5 | not supported yet (v2-only torrents; `seed` of a magnet link) |
//! | 6 | `verify` found bad or missing pieces |
//! | 130 | interrupted by Ctrl-C before the download finished |
//!
//! # Where the client reaches
//!
//! The torrent's trackers, the `--peer` addresses, the peers those trackers return, and the
//! Mainline DHT (BEP 5; on by default with the public routers, `--no-dht` turns it off,
//! `--dht-bootstrap ADDR` names other nodes). No local service discovery or NAT mapping yet.
//! With `--listen` on a loopback address the client stays on loopback and the
//! addresses flags name: see [`super::options`] for the rule and how it is enforced.
//!
//! # Resume state
//!
//! `download` keeps each torrent's resume file in `DIR/.bitshoal/<info-hash>.resume` (`-o
//! DIR`; `--state-dir` moves it), outside the content folder `DIR/<name>`; see
//! [`state_dir`].
//!
//! The DHT node's id and contacts are kept in `DIR/.bitshoal/dht.dat` (`seed`: in `--data
//! DIR`'s) so the node id survives restarts (BEP 5); see [`super::dht_state`].

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::session::{Event, TorrentState, TorrentStatus};
use bitshoal_mio::client::{ClientConfig, ClientEvent, TorrentClient};
use bitshoal_std::client::Reach;
use serde_json::{json, Value};

/// The default listen address of `download` and `seed`.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:6881";

/// Why a transfer command stopped, with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit code 1: anything not listed below.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::with_code(1, message)
    }

    /// Exit code 2: the torrent file is missing or invalid.
    pub(crate) fn bad_torrent(message: impl Into<String>) -> Self {
        Self::with_code(2, message)
    }

    /// Exit code 3: no peer or tracker answered, or the time allowed ran out.
    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Self::with_code(3, message)
    }

    /// Exit code 4: storage failed.
    pub(crate) fn disk(message: impl Into<String>) -> Self {
        Self::with_code(4, message)
    }

    /// Exit code 5: something the client cannot do yet.
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::with_code(5, message)
    }

    /// Exit code 6: `verify` found pieces that are bad or missing.
    pub(crate) fn bad_data(message: impl Into<String>) -> Self {
        Self::with_code(6, message)
    }

    /// Exit code 130 (128 + SIGINT, as shells report it): Ctrl-C before the work was done.
    pub(crate) fn interrupted() -> Self {
        Self::with_code(130, "interrupted")
    }

    fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Prints the outcome (one line on stderr for a failure, and a JSON `exit` line with `--json`)
/// and turns it into the process's exit code.
pub(crate) fn finish(result: Result<(), Failure>, json: bool) -> ExitCode {
    let (code, error) = match &result {
        Ok(()) => (0, None),
        Err(f) => (f.code, Some(f.message.as_str())),
    };
    if json {
        emit(json!({"event": "exit", "code": code, "error": error}));
    }
    if let Some(message) = error {
        eprintln!("bitshoal: {message}");
    }
    ExitCode::from(code)
}

/// Prints one JSON object on its own line.
pub(crate) fn emit(value: Value) {
    println!("{value}");
}

/// Whether the argument is a magnet link rather than a file name.
fn is_magnet(arg: &str) -> bool {
    arg.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

/// Reads and validates a `.torrent` file; magnet links are refused (exit 5).
pub(crate) fn load_torrent(arg: &str) -> Result<Metainfo, Failure> {
    if is_magnet(arg) {
        return Err(Failure::unsupported(
            "magnet links need BEP 9 metadata download, not implemented yet",
        ));
    }
    let bytes = std::fs::read(arg).map_err(|e| Failure::bad_torrent(format!("{arg}: {e}")))?;
    Metainfo::from_bytes(&bytes).map_err(|e| Failure::bad_torrent(format!("{arg}: {e}")))
}

/// Why the session refused the torrent: exit 2 (a duplicate, or piece layers that do not
/// match the torrent; v1, v2 and hybrid torrents are all supported).
pub(crate) fn add_failure(error: bitshoal_core::session::AddError) -> Failure {
    Failure::bad_torrent(error.to_string())
}

/// Parses a socket address flag.
pub(crate) fn parse_addr(flag: &str, value: &str) -> Result<SocketAddr, Failure> {
    value
        .parse()
        .map_err(|_| Failure::other(format!("{flag} {value:?} is not an IP address and port")))
}

/// A client on runtime `C` listening on `listen` (its session seeded from OS entropy), reaching
/// only what `reach` allows.
pub(crate) fn start_client<C: TorrentClient>(
    listen: Option<SocketAddr>,
    reach: Option<Reach>,
    dht: Option<bitshoal_core::session::DhtSettings>,
    lsd: bool,
) -> Result<C, Failure> {
    let mut config = ClientConfig {
        listen,
        reach,
        ..ClientConfig::default()
    };
    config.session.dht = dht;
    // BEP 14: the client joins the multicast group only when asked to.
    config.session.lsd = lsd;
    C::new(config).map_err(|e| match listen {
        Some(listen) => Failure::other(format!("cannot listen on {listen}: {e}")),
        None => Failure::other(format!("cannot start the client: {e}")),
    })
}

/// The name of the folder, beside the content, that holds resume files.
pub(crate) const STATE_DIR_NAME: &str = ".bitshoal";

/// Where `download -o output` keeps its resume files: `--state-dir` if given, else
/// `output/.bitshoal` (beside the content folder `output/<name>`, never inside it). A torrent
/// whose own name is `.bitshoal` would put its content there: it needs `--state-dir`.
pub(crate) fn state_dir(
    output: &Path,
    name: &str,
    flag: Option<&Path>,
) -> Result<std::path::PathBuf, Failure> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if name == STATE_DIR_NAME {
        return Err(Failure::other(format!(
            "the torrent is named {STATE_DIR_NAME:?}, where resume files go by default: pass \
             --state-dir DIR"
        )));
    }
    Ok(output.join(STATE_DIR_NAME))
}

/// Logs a client event (`RUST_LOG=debug` shows every one, `info` the notable ones).
pub(crate) fn log_event(event: &ClientEvent) {
    match event {
        ClientEvent::Session(
            Event::TrackerFailed { .. } | Event::StorageFailed { .. } | Event::PeerBanned { .. },
        ) => log::warn!("{event:?}"),
        ClientEvent::Session(
            Event::TorrentFinished { .. }
            | Event::StateChanged { .. }
            | Event::TrackerAnnounced { .. }
            | Event::PeerConnected { .. },
        )
        | ClientEvent::Synced { .. } => log::info!("{event:?}"),
        _ => log::debug!("{event:?}"),
    }
}

/// Set by Ctrl-C.
pub(crate) fn interrupt_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    ctrlc::set_handler(move || set.store(true, Ordering::Release))
        .map_err(|e| Failure::other(format!("cannot handle Ctrl-C: {e}")))?;
    Ok(flag)
}

/// Whether Ctrl-C was pressed.
pub(crate) fn interrupted(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}

/// The `started` JSON line.
pub(crate) fn started_json(
    meta: &Metainfo,
    torrent_dir: &Path,
    listen: Option<SocketAddr>,
) -> Value {
    let hashes = meta.hashes();
    json!({
        "event": "started",
        "name": meta.info().name(),
        "info_hash_v1": hashes.v1().map(|h| h.to_string()),
        "info_hash_v2": hashes.v2().map(|h| h.to_string()),
        "pieces": meta.info().layout().piece_count(),
        "bytes": meta.info().content_length(),
        "path": torrent_dir.join(meta.info().name()).display().to_string(),
        "listen": listen.map(|a| a.to_string()),
        "trackers": meta.trackers(),
    })
}

/// A client event as one JSON object, or `None` for events not worth a line.
pub(crate) fn event_json(event: &ClientEvent) -> Option<Value> {
    let value = match event {
        ClientEvent::Session(Event::PeerConnected { addr, peer_id, .. }) => json!({
            "event": "peer_connected",
            "addr": addr.to_string(),
            "client": bitshoal_core::wire::client_name(peer_id).map(|c| c.to_string()),
        }),
        ClientEvent::Session(Event::PeerDisconnected { addr, reason, .. }) => json!({
            "event": "peer_disconnected",
            "addr": addr.to_string(),
            "reason": format!("{reason:?}"),
        }),
        ClientEvent::Session(Event::PieceVerified { piece, .. }) => {
            json!({"event": "piece_verified", "piece": piece})
        }
        ClientEvent::Session(Event::HashFailed { piece, .. }) => {
            json!({"event": "hash_failed", "piece": piece})
        }
        ClientEvent::Session(Event::TorrentFinished { .. }) => json!({"event": "finished"}),
        ClientEvent::Session(Event::StateChanged { state, .. }) => json!({
            "event": "state",
            "state": state_name(state),
            "error": match state {
                TorrentState::Error(e) => Some(e.to_string()),
                _ => None,
            },
        }),
        ClientEvent::Session(Event::PeerBanned { ip, .. }) => json!({
            "event": "peer_banned",
            "ip": ip.to_string(),
        }),
        ClientEvent::Session(Event::TrackerAnnounced {
            url,
            peers,
            seeders,
            leechers,
            ..
        }) => json!({
            "event": "tracker_announced",
            "url": url,
            "peers": peers,
            "seeders": seeders,
            "leechers": leechers,
        }),
        ClientEvent::Session(Event::TrackerFailed { url, error, .. }) => json!({
            "event": "tracker_failed",
            "url": url,
            "error": error.to_string(),
        }),
        ClientEvent::Session(Event::TrackerWarning { url, message, .. }) => json!({
            "event": "tracker_warning",
            "url": url,
            "message": message,
        }),
        ClientEvent::Session(Event::StorageFailed { error, .. }) => json!({
            "event": "storage_failed",
            "error": error.to_string(),
        }),
        ClientEvent::Session(Event::DhtBootstrapped { nodes }) => json!({
            "event": "dht_bootstrapped",
            "nodes": nodes,
        }),
        ClientEvent::Session(Event::DhtLookupDone {
            info_hash,
            peers,
            responses,
            ..
        }) => json!({
            "event": "dht_lookup",
            "info_hash": info_hash.to_string(),
            "peers": peers,
            "responses": responses,
        }),
        ClientEvent::Synced { result, .. } => json!({
            "event": "synced",
            "ok": result.is_ok(),
            "error": result.as_ref().err().map(ToString::to_string),
        }),
        _ => return None,
    };
    Some(value)
}

/// The one-line text form of the events a terminal user wants to see (trackers, storage).
pub(crate) fn event_text(event: &ClientEvent) -> Option<String> {
    match event {
        ClientEvent::Session(Event::TrackerAnnounced { url, peers, .. }) => {
            Some(format!("tracker {url}: {peers} peers"))
        }
        ClientEvent::Session(Event::TrackerFailed { url, error, .. }) => {
            Some(format!("tracker {url} failed: {error}"))
        }
        ClientEvent::Session(Event::TrackerWarning { url, message, .. }) => {
            Some(format!("tracker {url} warns: {message}"))
        }
        _ => None,
    }
}

/// The `progress` JSON line: a torrent's counters.
pub(crate) fn progress_json(status: &TorrentStatus) -> Value {
    json!({
        "event": "progress",
        "state": state_name(&status.state),
        "have": status.pieces_have,
        "pieces": status.pieces_total,
        "downloaded": status.downloaded,
        "uploaded": status.uploaded,
        "download_rate": status.download_rate,
        "upload_rate": status.upload_rate,
        "peers": status.peers,
    })
}

/// A torrent state's one-word name in JSON lines.
pub(crate) fn state_name(state: &TorrentState) -> &'static str {
    match state {
        TorrentState::Checking { .. } => "checking",
        TorrentState::Downloading => "downloading",
        TorrentState::Seeding => "seeding",
        TorrentState::Paused => "paused",
        TorrentState::Error(_) => "error",
        _ => "other",
    }
}
