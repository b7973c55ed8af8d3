//! `bitshoal download MAGNET`: the torrent's metadata first, from the link's peers (`x.pe`
//! and `--peer`) and trackers (BEP 9); it is saved as `DIR/.bitshoal/<info-hash>.torrent`
//! (for a v2 or hybrid torrent without the piece layers, which BEP 52 peers serve), and the
//! download then goes on exactly as for a `.torrent` file (resume, priorities, seeding),
//! dialling the same peers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bitshoal_core::bencode::{put_bytes, DictWriter};
use bitshoal_core::magnet::{Magnet, PeerAddr};
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::session::{AddMagnet, Event};
use bitshoal_mio::client::{Client, ClientEvent};
use serde_json::json;

use super::transfer::{self, Failure};

/// Whether the argument is a magnet link rather than a file name.
pub(crate) fn is_magnet(arg: &str) -> bool {
    arg.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

/// If `torrent` is a magnet link: fetches its metadata, saves it as a `.torrent` under
/// `output` (a v2 or hybrid one without piece layers), and returns it; the link's `x.pe`
/// peers join `peers`. `None` for anything else.
pub(crate) fn resolve(
    torrent: &str,
    peers: &mut Vec<String>,
    output: &Path,
    listen: &str,
    json: bool,
    timeout: Option<u64>,
) -> Result<Option<Metainfo>, Failure> {
    if !is_magnet(torrent) {
        return Ok(None);
    }
    let magnet =
        Magnet::parse(torrent).map_err(|e| Failure::bad_torrent(format!("{torrent}: {e}")))?;
    for p in magnet.peers() {
        if let PeerAddr::Ip(addr) = p {
            peers.push(addr.to_string());
        }
    }
    let dial: Vec<SocketAddr> = peers
        .iter()
        .map(|p| transfer::parse_addr("--peer", p))
        .collect::<Result<_, _>>()?;
    let tiers: Vec<Vec<String>> = magnet.trackers().iter().map(|t| vec![t.clone()]).collect();
    if tiers.is_empty() && dial.is_empty() {
        return Err(Failure::unreachable(
            "the magnet link names no tracker and no peer, and no --peer was given: nowhere \
             to fetch its metadata from",
        ));
    }
    // A port of its own: the download proper listens on --listen afterwards.
    let listen = transfer::parse_addr("--listen", listen)?;
    let mut client: Client =
        transfer::start_client(Some(SocketAddr::new(listen.ip(), 0)), None, None)?;
    let mut link = Magnet::new(magnet.info_hashes());
    link.set_select_only(magnet.select_only().cloned());
    let id = client
        .add_magnet(
            AddMagnet::new(link).with_trackers(tiers.clone()),
            output.to_path_buf(),
        )
        .map_err(|e| Failure::bad_torrent(e.to_string()))?;
    let mut dialled = Vec::new();
    for addr in dial {
        match client.connect(id, addr) {
            Ok(conn) => dialled.push(conn),
            Err(e) => return Err(Failure::other(format!("--peer {addr}: {e}"))),
        }
    }
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let info = loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Failure::unreachable(
                "the metadata did not arrive in the time allowed",
            ));
        }
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        let mut got = None;
        for event in &events {
            transfer::log_event(event);
            match event {
                ClientEvent::Session(Event::MetadataReceived { info, .. }) => {
                    got = Some(info.clone());
                }
                ClientEvent::Session(Event::PeerDisconnected { conn, .. }) => {
                    dialled.retain(|c| c != conn);
                }
                _ => {}
            }
        }
        if let Some(info) = got {
            break info;
        }
        let peers_now = client.status(id).map_or(0, |s| s.peers);
        if tiers.is_empty() && dialled.is_empty() && peers_now == 0 {
            return Err(Failure::unreachable(
                "no peer reachable for the metadata: every peer failed or left, and the link \
                 has no trackers",
            ));
        }
    };
    drop(client);
    let path = save_torrent(output, &magnet, &tiers, &info)?;
    if json {
        transfer::emit(json!({"event": "metadata_received", "path": path.display().to_string()}));
    } else {
        eprintln!("metadata received, saved as {}", path.display());
    }
    let info = Info::from_bytes(&info).map_err(|e| Failure::bad_torrent(e.to_string()))?;
    Ok(Some(Metainfo::from_info(info, tiers)))
}

/// Writes `DIR/.bitshoal/<info-hash>.torrent` with the link's trackers and the verified
/// `info` dictionary, byte for byte.
fn save_torrent(
    output: &Path,
    magnet: &Magnet,
    tiers: &[Vec<String>],
    info: &[u8],
) -> Result<PathBuf, Failure> {
    let dir = output.join(".bitshoal");
    std::fs::create_dir_all(&dir).map_err(|e| Failure::disk(format!("{}: {e}", dir.display())))?;
    let hashes = magnet.info_hashes();
    let name = match (hashes.v1(), hashes.v2()) {
        (Some(v1), _) => v1.to_string(),
        (None, Some(v2)) => v2.to_string(),
        (None, None) => unreachable!("a magnet link has an info-hash"),
    };
    let mut bytes = Vec::new();
    let mut d = DictWriter::new(&mut bytes);
    if let Some(first) = tiers.first().and_then(|t| t.first()) {
        d.bytes(b"announce", first.as_bytes());
        let list = d.value(b"announce-list");
        list.push(b'l');
        for tier in tiers {
            list.push(b'l');
            for url in tier {
                put_bytes(list, url.as_bytes());
            }
            list.push(b'e');
        }
        list.push(b'e');
    }
    d.raw(b"info", info);
    d.finish();
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, &bytes).map_err(|e| Failure::disk(format!("{}: {e}", path.display())))?;
    Ok(path)
}
