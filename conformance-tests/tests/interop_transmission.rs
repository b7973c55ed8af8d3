//! Interop with Transmission 3.00 (Debian's transmission-cli) over 127.0.0.1, with DHT, LPD,
//! PEX, uTP and port mapping off in its settings: bitshoal downloads from a Transmission seed, and
//! a bitshoal seed uploads to a Transmission leecher. Transmission never dials peers in
//! 127.0.0.0/8 (it does accept them), so bitshoal dials in both directions. Bytes are compared;
//! the transmission-cli process is killed by pid when the test ends.
//!
//! Without transmission-cli the tests fail under `CI=true` and print a loud skip otherwise.

mod interop_common;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_mio::client::ClientEvent;
use interop_common::{
    assert_same_tree, assert_same_tree_but_empty_files, available, client, make_payload,
    make_torrent, Proc,
};

fn transmission_available() -> bool {
    let mut probe = Command::new("transmission-cli");
    probe.arg("--version");
    available(probe, "transmission-cli", "transmission-cli")
}

/// A free TCP port on 127.0.0.1 (bound and released; Transmission binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts transmission-cli on `torrent` with `download_dir`, listening on `port`, with every
/// discovery and port-mapping feature off. `done_marker` is created when the torrent completes.
fn transmission(
    config: &Path,
    torrent: &Path,
    download_dir: &Path,
    port: u16,
    done_marker: &Path,
) -> Proc {
    fs::create_dir_all(config).unwrap();
    let settings = format!(
        r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
            "utp-enabled": false, "port-forwarding-enabled": false, "rpc-enabled": false,
            "encryption": 0, "peer-port": {port}, "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1", "message-level": 1}}"#
    );
    fs::write(config.join("settings.json"), settings).unwrap();
    let script = config.join("done.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", done_marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = Command::new("transmission-cli");
    command
        .arg("-g")
        .arg(config)
        .arg("-w")
        .arg(download_dir)
        .args(["-p", &port.to_string(), "-et", "-M", "-f"])
        .arg(&script)
        .arg(torrent);
    Proc::start(command)
}

/// Waits until something accepts TCP connections on `addr` (bounded).
fn wait_listening(addr: SocketAddr, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(50));
    }
    false
}

#[test]
fn bitshoal_downloads_from_a_transmission_seed() {
    if !transmission_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 11);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let port = free_port();
    let seeded = work.path().join("seeded");
    let _tr = transmission(
        &work.path().join("tr-config"),
        &torrent_path,
        &work.path().join("seed"),
        port,
        &seeded,
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(wait_listening(addr, deadline), "transmission listens");

    let mut bitshoal = client(21);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal.add_torrent(info, dir.clone(), None).unwrap();
    let mut synced = false;
    let mut next_dial = Instant::now();
    while !synced && Instant::now() < deadline {
        // Transmission verifies its data before it serves; redial until it does.
        if Instant::now() >= next_dial && bitshoal.status(torrent).is_some_and(|s| s.peers == 0) {
            let _ = bitshoal.connect(torrent, addr);
            next_dial = Instant::now() + Duration::from_secs(2);
        }
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            if let ClientEvent::Synced { result, .. } = event {
                result.expect("files synced");
                synced = true;
            }
        }
    }
    assert!(synced, "bitshoal finished downloading from transmission");
    assert_same_tree(&payload, &dir.join("payload"));
}

#[test]
fn a_transmission_leecher_downloads_from_a_bitshoal_seed() {
    if !transmission_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 12);
    let (torrent_path, info) = make_torrent(&payload, Version::V1);
    let pieces = info.layout().piece_count();
    let port = free_port();
    let finished = work.path().join("finished");
    let tr_dir = work.path().join("transmission");
    fs::create_dir_all(&tr_dir).unwrap();
    let _tr = transmission(
        &work.path().join("tr-config"),
        &torrent_path,
        &tr_dir,
        port,
        &finished,
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(wait_listening(addr, deadline), "transmission listens");

    let mut bitshoal = client(22);
    let torrent = bitshoal
        .add_torrent(info, work.path().join("seed"), Some(Bitfield::full(pieces)))
        .unwrap();
    let mut next_dial = Instant::now();
    while !finished.exists() && Instant::now() < deadline {
        if Instant::now() >= next_dial && bitshoal.status(torrent).is_some_and(|s| s.peers == 0) {
            let _ = bitshoal.connect(torrent, addr);
            next_dial = Instant::now() + Duration::from_secs(2);
        }
        bitshoal.turn(Duration::from_millis(20)).unwrap();
    }
    assert!(
        finished.exists(),
        "transmission reported the torrent complete"
    );
    let uploaded = bitshoal.status(torrent).unwrap().uploaded;
    assert!(uploaded > 0, "bitshoal uploaded");
    assert_same_tree_but_empty_files(&payload, &tr_dir.join("payload"));
}
