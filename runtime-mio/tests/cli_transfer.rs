//! `bitshoal download` and `bitshoal seed` end to end on 127.0.0.1: a download from a seed
//! given with `--peer` (an in-process client, then the `seed` command), and each documented
//! exit code (2 bad torrent, 3 nothing reachable, 4 disk, 130 Ctrl-C), and a magnet link (BEP 9)
//! fetched from its `x.pe` peer.

mod common;

use std::net::TcpListener;

use common::cli::{bitshoal, download_args, json_lines, seed_args, stderr, Running};
use common::{Payload, SeedThread};

#[test]
fn download_from_a_peer_verifies_syncs_and_exits_zero() {
    let payload = Payload::new(1, Vec::new());
    let seed = SeedThread::start(&payload, false, 11);
    let out_dir = payload.dir.path().join("out");
    let torrent = payload.torrent_path.to_str().unwrap();
    let peer = seed.addr.to_string();
    let out = bitshoal(
        &download_args(torrent, &out_dir, &peer, &["--timeout", "100"]),
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    let lines = json_lines(&out);
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"started"));
    assert!(events.contains(&"peer_connected"), "{events:?}");
    let pieces = payload.info.layout().piece_count() as usize;
    let verified = events.iter().filter(|e| **e == "piece_verified").count();
    assert_eq!(verified, pieces);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "exit");
    assert_eq!(last["code"], 0);
    let synced = lines.iter().find(|l| l["event"] == "synced").unwrap();
    assert_eq!(synced["ok"], true);
}

#[test]
fn seed_command_serves_download_command_and_stops_cleanly_on_ctrl_c() {
    let payload = Payload::new(2, Vec::new());
    let data = payload.data_dir();
    let torrent = payload.torrent_path.to_str().unwrap();
    let seed = Running::start(&seed_args(torrent, &data, &[]), payload.dir.path());
    let started = seed.wait_event("started");
    // The data is checked, not trusted: every piece is found.
    let checked = seed.wait_event("checked");
    assert_eq!(checked["have"], checked["pieces"]);
    let addr = started["listen"]
        .as_str()
        .expect("the listen address")
        .to_string();
    let out_dir = payload.dir.path().join("out");
    let out = bitshoal(
        &[
            "download",
            torrent,
            "-o",
            out_dir.to_str().unwrap(),
            "--peer",
            &addr,
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "100",
        ],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    seed.interrupt();
    assert_eq!(seed.exit_code(), 0, "Ctrl-C stops seeding cleanly");
}

/// `seed --superseed` (BEP 16): a peer that connects is shown one piece (`have none`, then one
/// `have`), not the whole torrent; a download from the seed still completes.
#[test]
fn seed_with_superseed_shows_a_new_peer_one_piece_and_still_serves_a_download() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use bitshoal_core::id::PeerId;
    use bitshoal_core::wire::{Framer, Handshake, Message, Reserved, WireLimits};
    use bytes::BytesMut;

    let payload = Payload::new(7, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    let seed = Running::start(
        &seed_args(torrent, payload.data_dir(), &["--superseed"]),
        payload.dir.path(),
    );
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .expect("the listen address")
        .to_string();
    seed.wait_event("checked");

    let mut peer = std::net::TcpStream::connect(&addr).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let hashes = payload.info.hashes();
    let mut hello = BytesMut::new();
    Handshake::new(Reserved::FAST, &hashes, PeerId([7; 20])).encode(&mut hello);
    peer.write_all(&hello).unwrap();
    let mut theirs = [0u8; 68];
    peer.read_exact(&mut theirs).unwrap();
    let pieces = payload.info.layout().piece_count();
    let mut framer = Framer::new(WireLimits::DEFAULT.with_num_pieces(pieces));
    let (mut buf, mut shown) = (BytesMut::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shown.iter().any(|m| matches!(m, Message::Have(_))) && Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        let n = peer.read(&mut chunk).unwrap();
        assert!(n > 0, "the seed closed the connection: {shown:?}");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(m) = framer.next(&mut buf).unwrap() {
            shown.push(m);
        }
    }
    let haves = shown
        .iter()
        .filter(|m| matches!(m, Message::Have(_)))
        .count();
    assert_eq!(haves, 1, "one piece shown: {shown:?}");
    assert!(
        !shown
            .iter()
            .any(|m| matches!(m, Message::HaveAll | Message::Bitfield(_))),
        "the seed hides its pieces: {shown:?}"
    );
    assert!(pieces > 1, "the payload has several pieces to hide");
    drop(peer);

    let out_dir = payload.dir.path().join("out");
    let out = bitshoal(
        &download_args(torrent, &out_dir, &addr, &["--timeout", "100"]),
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    seed.interrupt();
    assert_eq!(seed.exit_code(), 0);
}

#[test]
fn ctrl_c_before_the_download_is_done_exits_130() {
    let payload = Payload::new(3, Vec::new());
    // A peer that accepts and then says nothing: the download can never finish.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = silent.local_addr().unwrap().to_string();
    let out_dir = payload.dir.path().join("out");
    let run = Running::start(
        &download_args(&payload.torrent_path, &out_dir, &peer, &[]),
        payload.dir.path(),
    );
    run.wait_event("started");
    let _held = silent.accept().expect("the download connects");
    run.interrupt();
    assert_eq!(run.exit_code(), 130);
}

#[test]
fn download_of_a_magnet_link_fetches_the_metadata_from_its_peer() {
    let payload = Payload::new(6, Vec::new());
    let seed = SeedThread::start(&payload, false, 16);
    let out_dir = payload.dir.path().join("out");
    let hash = payload.info.hashes().v1().unwrap();
    // BEP 9: the metadata comes from the x.pe peer, then the content.
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=payload&x.pe={}", seed.addr);
    let out = bitshoal(
        &[
            "download",
            &magnet,
            "-o",
            out_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--timeout",
            "100",
        ],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    payload.assert_copied_to(&out_dir);
    let lines = json_lines(&out);
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"metadata_received"), "{events:?}");
    // The metadata is kept as a .torrent, byte for byte the seed's info dictionary.
    let saved = out_dir.join(format!(".bitshoal/{hash}.torrent"));
    assert_eq!(lines[0]["path"], saved.display().to_string());
    let saved = std::fs::read(&saved).unwrap();
    let raw = payload.info.raw();
    assert!(saved.starts_with(b"d4:info") && saved.ends_with(b"e"));
    assert_eq!(&saved[7..saved.len() - 1], &raw[..]);
    let started = lines.iter().find(|l| l["event"] == "started").unwrap();
    assert_eq!(started["info_hash_v1"], hash.to_string());
    let pieces = payload.info.layout().piece_count() as usize;
    let verified = events.iter().filter(|e| **e == "piece_verified").count();
    assert_eq!(verified, pieces);
    assert_eq!(lines.last().unwrap()["code"], 0);
}

#[test]
fn a_magnet_link_with_nobody_to_ask_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let magnet =
        format!("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe={closed}");
    let out = bitshoal(
        &["download", &magnet, "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no peer reachable"));
    let out = bitshoal(
        &[
            "download",
            "magnet:?xt=urn:btih:nothex",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn bad_or_missing_torrents_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.torrent"), b"d4:infoi3ee").unwrap();
    for file in ["junk.torrent", "missing.torrent"] {
        for command in [
            vec!["download", file, "--listen", "127.0.0.1:0"],
            vec![
                "seed",
                file,
                "--data",
                ".",
                "--trust-data",
                "--listen",
                "127.0.0.1:0",
            ],
        ] {
            let out = bitshoal(&command, dir.path());
            assert_eq!(out.status.code(), Some(2), "{command:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(file));
        }
    }
}

#[test]
fn nothing_to_download_from_exits_3() {
    let payload = Payload::new(4, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    // No trackers in the torrent and no --peer.
    let out = bitshoal(
        &["download", torrent, "--listen", "127.0.0.1:0"],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // A --peer where nobody listens (a port just freed).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = bitshoal(
        &[
            "download",
            torrent,
            "--peer",
            &closed.to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no peer reachable"));
}

#[test]
fn seed_with_trust_data_checks_the_files_exist() {
    let payload = Payload::new(5, Vec::new());
    let torrent = payload.torrent_path.to_str().unwrap();
    let data = payload.data_dir();
    std::fs::remove_file(data.join("pay/sub/b.txt")).unwrap();
    let out = bitshoal(
        &[
            "seed",
            torrent,
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--trust-data",
        ],
        payload.dir.path(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("b.txt"));
}
