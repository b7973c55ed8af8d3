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

/// How the metadata client reaches out: its DHT (with the saved state) and, for a loopback
/// client, what it may reach; where the DHT state is saved.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    /// The DHT settings, `None` when it is off.
    pub(crate) dht: Option<bitshoal_core::session::DhtSettings>,
    /// The loopback rule's reach.
    pub(crate) reach: Option<bitshoal_std::client::Reach>,
    /// Where the DHT state is saved when the metadata client stops.
    pub(crate) dht_state: PathBuf,
}

/// Whether the argument is a magnet link rather than a file name.
pub(crate) fn is_magnet(arg: &str) -> bool {
    arg.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

/// If `torrent` is a magnet link: fetches its metadata, saves it as a `.torrent` under
/// `output` (a v2 or hybrid one without piece layers), and returns it; the link's `x.pe`
/// peers join `peers`. `None` for anything else.
///
/// With the DHT (`net.dht`), the link's info-hash is looked up there too (BEP 5), so a link
/// with no tracker and no peer works; a BEP 46 link (`xs=urn:btpk:`, no `xt`) is resolved to
/// its current info-hash first (see [`super::dht_state`]).
pub(crate) fn resolve(
    torrent: &str,
    peers: &mut Vec<String>,
    output: &Path,
    listen: &str,
    json: bool,
    timeout: Option<u64>,
    net: &Net,
) -> Result<Option<Metainfo>, Failure> {
    if !is_magnet(torrent) {
        return Ok(None);
    }
    let source = super::dht_state::updatable(torrent);
    let magnet = match &source {
        // Resolved below, once the client runs.
        Some(_) => Magnet::new(bitshoal_core::id::InfoHashes::V1(
            bitshoal_core::id::InfoHashV1([0; 20]),
        )),
        None => {
            Magnet::parse(torrent).map_err(|e| Failure::bad_torrent(format!("{torrent}: {e}")))?
        }
    };
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
    if tiers.is_empty() && dial.is_empty() && net.dht.is_none() {
        return Err(Failure::unreachable(
            "the magnet link names no tracker and no peer, no --peer was given and the DHT \
             is off: nowhere to fetch its metadata from",
        ));
    }
    // A port of its own: the download proper listens on --listen afterwards.
    let listen = transfer::parse_addr("--listen", listen)?;
    let mut client: Client = transfer::start_client(
        Some(SocketAddr::new(listen.ip(), 0)),
        net.reach.clone(),
        net.dht.clone(),
        false,
    )?;
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let magnet = match &source {
        Some(source) => {
            let found = super::dht_state::resolve_source(&mut client, source, deadline, json);
            super::dht_state::save(&mut client, &net.dht_state);
            found?
        }
        None => magnet,
    };
    let hashes = magnet.info_hashes();
    let mut link = Magnet::new(hashes);
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
    let mut met: Vec<SocketAddr> = Vec::new();
    let info = loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            super::dht_state::save(&mut client, &net.dht_state);
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
                // Peers met here (through the DHT or trackers) are dialled again by the
                // download proper, which starts on another port and knows none of them.
                ClientEvent::Session(Event::PeerConnected { addr, .. }) => met.push(*addr),
                ClientEvent::Session(Event::DhtLookupDone { .. }) if json => {
                    if let Some(line) = transfer::event_json(event) {
                        transfer::emit(line);
                    }
                }
                _ => {}
            }
        }
        if let Some(info) = got {
            for addr in met {
                let addr = addr.to_string();
                if !peers.contains(&addr) {
                    peers.push(addr);
                }
            }
            break info;
        }
        let peers_now = client.status(id).map_or(0, |s| s.peers);
        if tiers.is_empty() && dialled.is_empty() && peers_now == 0 && net.dht.is_none() {
            return Err(Failure::unreachable(
                "no peer reachable for the metadata: every peer failed or left, and the link \
                 has no trackers",
            ));
        }
    };
    super::dht_state::save(&mut client, &net.dht_state);
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
