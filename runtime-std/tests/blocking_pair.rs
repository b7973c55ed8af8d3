//! Two blocking clients on 127.0.0.1 exchange a multi-file torrent through real files; and the
//! blocking runtime's handling of failed connects and misbehaving peers.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::session::Event;
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::ClientEvent;

use common::{assert_same_tree, config, make_payload, make_torrent, run_until_synced};

/// Seeds from the payload's own folder and downloads into another; `seed_dials` says which side
/// opens the connection (so both the connect and the accept paths carry the transfer).
fn transfer(seed_dials: bool) {
    let work = tempfile::tempdir().unwrap();
    let payload = make_payload(work.path());
    let info = make_torrent(&payload);
    let pieces = info.layout().piece_count();
    assert!(pieces > 30, "enough pieces to pipeline: {pieces}");

    let mut seed = BlockingClient::new(config(1, !seed_dials)).unwrap();
    let mut leech = BlockingClient::new(config(2, seed_dials)).unwrap();
    let seeded = seed
        .add_torrent(
            info.clone(),
            work.path().to_path_buf(),
            Some(Bitfield::full(pieces)),
        )
        .unwrap();
    let leech_dir = work.path().join("leech");
    let torrent = leech
        .add_torrent(info.clone(), leech_dir.clone(), None)
        .unwrap();
    if seed_dials {
        seed.connect(seeded, leech.local_addr().unwrap()).unwrap();
    } else {
        leech.connect(torrent, seed.local_addr().unwrap()).unwrap();
    }

    let events = run_until_synced(&mut seed, &mut leech, torrent, 20_000);

    assert_same_tree(&payload, &leech_dir.join("payload"));
    let verified = events
        .iter()
        .filter(|e| matches!(e, Event::PieceVerified { .. }))
        .count();
    assert_eq!(verified, pieces as usize, "each piece verified once");
    assert!(events.contains(&Event::TorrentFinished { torrent }));
    let status = leech.status(torrent).unwrap();
    assert!(status.finished);
    assert_eq!(status.left, 0);
    assert_eq!(leech.session().have(torrent), Some(&Bitfield::full(pieces)));
}

#[test]
fn blocking_clients_transfer_a_multi_file_torrent() {
    transfer(false);
}

#[test]
fn blocking_clients_transfer_when_the_seed_dials() {
    transfer(true);
}

#[test]
fn a_refused_connect_is_reported_as_a_failed_connection() {
    let work = tempfile::tempdir().unwrap();
    let payload = make_payload(work.path());
    let info = make_torrent(&payload);
    // A port that was just free: nothing listens there now.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = BlockingClient::new(config(3, false)).unwrap();
    let torrent = client
        .add_torrent(info, work.path().join("dl"), None)
        .unwrap();
    let conn = client.connect(torrent, closed).unwrap();
    assert_eq!(client.session().connection_count(), 1);

    let mut reason = None;
    for _ in 0..2_000 {
        for event in client.turn(Duration::from_millis(5)).unwrap() {
            if let ClientEvent::Session(Event::PeerDisconnected {
                conn: c, reason: r, ..
            }) = event
            {
                assert_eq!(c, conn);
                reason = Some(r);
            }
        }
        if reason.is_some() {
            break;
        }
    }
    assert_eq!(reason, Some(DisconnectReason::ConnectFailed));
    assert_eq!(client.session().connection_count(), 0);
}

#[test]
fn a_peer_sending_garbage_is_disconnected_and_its_socket_closed() {
    let mut client = BlockingClient::new(config(4, true)).unwrap();
    let mut peer = TcpStream::connect(client.local_addr().unwrap()).unwrap();
    // Not a BitTorrent handshake: the first byte must be 19 (BEP 3).
    peer.write_all(&[0xff; 68]).unwrap();

    let mut disconnected = false;
    for _ in 0..2_000 {
        let events = client.turn(Duration::from_millis(5)).unwrap();
        if events.iter().any(|e| {
            matches!(
                e,
                ClientEvent::Session(Event::PeerDisconnected { torrent: None, .. })
            )
        }) {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "the session dropped the peer");
    assert_eq!(client.session().connection_count(), 0);

    // The runtime shut the socket down: the peer reads the end of the stream (or a reset),
    // not a timeout.
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    match peer.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the runtime sent {n} bytes to a peer it dropped"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "the socket was left open: {e}"
        ),
    }
}
