//! Every malformed or illegal input a peer can send ends its connection with the right typed
//! `DisconnectReason`, and the node closes the socket.

mod common;

use bitshoal_conformance::sim::FakeConfig;
use bitshoal_core::id::{InfoHashV1, InfoHashes, PeerId};
use bitshoal_core::peer::{DisconnectReason, PeerConfig, Violation};
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{BlockRequest, Handshake, Message, Reserved, WireError, WireLimits};
use bytes::Bytes;

use common::{be, frame, Fixture, FAST_EXT, PIECES};

fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
    BlockRequest {
        index,
        begin,
        length,
    }
}

/// One case: the handshake's reserved bits, the bytes sent after the handshake, the reason.
struct Case {
    name: &'static str,
    reserved: Reserved,
    bytes: Vec<u8>,
    expected: DisconnectReason,
}

fn violation(v: Violation) -> DisconnectReason {
    DisconnectReason::Violation(v)
}

fn wire(e: WireError) -> DisconnectReason {
    DisconnectReason::Wire(e)
}

fn cases() -> Vec<Case> {
    let limits = WireLimits::DEFAULT;
    let max_frame = limits.max_block + 9;
    let none = Reserved::NONE;
    let ext_only = Reserved::EXTENSION_PROTOCOL;
    let interested = frame(2, &[]);
    let mut flood = interested.clone();
    let reqq = PeerConfig::DEFAULT.max_inbound_requests;
    for i in 0..2 * reqq {
        // Refused: choked (the unchoke is decided after the batch), or a duplicate of one
        // queued for an allowed-fast piece (the torrent has only 20 blocks).
        flood.extend(frame(6, &be(&[i % PIECES, 0, 16384])));
    }
    let mut c = vec![
        Case {
            name: "frame length over the limit",
            reserved: FAST_EXT,
            bytes: vec![0xff, 0xff, 0xff, 0xff],
            expected: wire(WireError::LimitExceeded {
                id: None,
                length: u32::MAX,
                limit: max_frame,
            }),
        },
        Case {
            // The piece limit is the largest: refused on the prefix, before the id arrives.
            name: "piece frame over the block limit",
            reserved: FAST_EXT,
            bytes: [(max_frame + 1).to_be_bytes().as_slice(), &[7]].concat(),
            expected: wire(WireError::LimitExceeded {
                id: None,
                length: max_frame + 1,
                limit: max_frame,
            }),
        },
        Case {
            name: "extended frame over the payload limit",
            reserved: FAST_EXT,
            bytes: [(limits.max_payload + 3).to_be_bytes().as_slice(), &[20]].concat(),
            expected: wire(WireError::LimitExceeded {
                id: Some(20),
                length: limits.max_payload + 3,
                limit: limits.max_payload + 2,
            }),
        },
        Case {
            name: "choke with a payload",
            reserved: FAST_EXT,
            bytes: frame(0, &[0]),
            expected: wire(WireError::BadLength { id: 0, length: 2 }),
        },
        Case {
            name: "have of three bytes",
            reserved: FAST_EXT,
            bytes: frame(4, &[0, 0, 1]),
            expected: wire(WireError::BadLength { id: 4, length: 4 }),
        },
        Case {
            name: "request of twelve bytes",
            reserved: FAST_EXT,
            bytes: frame(6, &[0; 11]),
            expected: wire(WireError::BadLength { id: 6, length: 12 }),
        },
        Case {
            name: "have-all with a payload",
            reserved: FAST_EXT,
            bytes: frame(14, &[1]),
            expected: wire(WireError::BadLength { id: 14, length: 2 }),
        },
        Case {
            name: "bitfield of the wrong length",
            reserved: FAST_EXT,
            bytes: frame(5, &[0xff, 0xc0, 0]),
            expected: wire(WireError::BitfieldLength {
                expected: 2,
                actual: 3,
            }),
        },
        Case {
            name: "bitfield with spare bits set",
            reserved: none,
            bytes: frame(5, &[0xff, 0xff]),
            expected: wire(WireError::BitfieldSpareBits),
        },
        Case {
            name: "bitfield after other messages",
            reserved: none,
            bytes: [interested.clone(), frame(5, &[0xff, 0xc0])].concat(),
            expected: violation(Violation::BitfieldNotFirst),
        },
        Case {
            name: "have-none after other messages",
            reserved: FAST_EXT,
            bytes: [frame(4, &be(&[1])), frame(15, &[])].concat(),
            expected: violation(Violation::BitfieldNotFirst),
        },
        Case {
            name: "have out of range",
            reserved: none,
            bytes: frame(4, &be(&[PIECES])),
            expected: violation(Violation::PieceOutOfRange(PIECES)),
        },
        Case {
            name: "suggest out of range",
            reserved: FAST_EXT,
            bytes: frame(13, &be(&[PIECES + 7])),
            expected: violation(Violation::PieceOutOfRange(PIECES + 7)),
        },
        Case {
            name: "allowed-fast out of range",
            reserved: FAST_EXT,
            bytes: frame(17, &be(&[u32::MAX])),
            expected: violation(Violation::PieceOutOfRange(u32::MAX)),
        },
        Case {
            name: "request for a piece out of range",
            reserved: FAST_EXT,
            bytes: frame(6, &be(&[PIECES, 0, 16384])),
            expected: violation(Violation::BadRequest(req(PIECES, 0, 16384))),
        },
        Case {
            name: "request past the end of the last piece",
            reserved: FAST_EXT,
            bytes: frame(6, &be(&[PIECES - 1, 16384, 16384])),
            expected: violation(Violation::BadRequest(req(PIECES - 1, 16384, 16384))),
        },
        Case {
            name: "request past the end of a piece",
            reserved: none,
            bytes: frame(6, &be(&[0, 32768, 16384])),
            expected: violation(Violation::BadRequest(req(0, 32768, 16384))),
        },
        Case {
            name: "request of zero length",
            reserved: FAST_EXT,
            bytes: frame(6, &be(&[0, 0, 0])),
            expected: violation(Violation::BadRequest(req(0, 0, 0))),
        },
        Case {
            name: "request over 16 KiB",
            reserved: FAST_EXT,
            bytes: frame(6, &be(&[0, 0, 32768])),
            expected: violation(Violation::BadRequest(req(0, 0, 32768))),
        },
        Case {
            name: "request flood far past reqq (fast)",
            reserved: FAST_EXT,
            bytes: flood.clone(),
            expected: violation(Violation::RequestFlood),
        },
        Case {
            name: "request flood far past reqq (no fast)",
            reserved: none,
            bytes: flood,
            expected: violation(Violation::RequestFlood),
        },
        Case {
            name: "unrequested block with the fast extension",
            reserved: FAST_EXT,
            bytes: frame(7, &[be(&[0, 0]), vec![0xab; 16384]].concat()),
            expected: violation(Violation::UnrequestedBlock(req(0, 0, 16384))),
        },
        Case {
            name: "reject for a request never sent",
            reserved: FAST_EXT,
            bytes: frame(16, &be(&[2, 16384, 16384])),
            expected: violation(Violation::UnrequestedReject(req(2, 16384, 16384))),
        },
        Case {
            name: "extended message without BEP 10",
            reserved: Reserved::FAST,
            bytes: frame(20, b"\x00de"),
            expected: violation(Violation::ExtensionNotNegotiated),
        },
    ];
    // BEP 6 messages on a connection without the fast extension.
    for (name, bytes) in [
        ("have-all without fast", frame(14, &[])),
        ("have-none without fast", frame(15, &[])),
        ("suggest without fast", frame(13, &be(&[1]))),
        ("reject without fast", frame(16, &be(&[1, 0, 16384]))),
        ("allowed-fast without fast", frame(17, &be(&[1]))),
    ] {
        c.push(Case {
            name,
            reserved: ext_only,
            bytes,
            expected: violation(Violation::FastNotNegotiated),
        });
    }
    c
}

#[test]
fn every_malformed_message_gets_its_typed_reason() {
    for (i, case) in cases().into_iter().enumerate() {
        let mut f = Fixture::new(100 + i as u64);
        f.handshake(case.reserved);
        assert!(
            f.sim.node(f.node).disconnects().is_empty(),
            "{}: the handshake was accepted",
            case.name
        );
        f.sim.fake_send_raw(f.fake, case.bytes);
        let (_, reason) = f.run_until_disconnect(Duration::from_secs(10));
        assert_eq!(reason, case.expected, "{}", case.name);
        assert!(
            reason.fault().is_some(),
            "{}: a peer's fault is classified",
            case.name
        );
        // The node closed the socket: the fake sees the close.
        let fake = f.fake;
        f.sim
            .run_until(
                |s| s.fake(fake).closed_at().is_some(),
                Duration::from_secs(1),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(f.sim.node(f.node).session().connection_count(), 0);
    }
}

#[test]
fn the_same_bytes_split_anywhere_give_the_same_reason() {
    // One case per kind, each byte sent on its own.
    for case in cases().into_iter().filter(|c| c.bytes.len() < 64) {
        let mut f = Fixture::new(7);
        f.handshake(case.reserved);
        for b in &case.bytes {
            f.sim.fake_send_raw(f.fake, vec![*b]);
        }
        let (_, reason) = f.run_until_disconnect(Duration::from_secs(10));
        assert_eq!(reason, case.expected, "{} (byte by byte)", case.name);
    }
}

#[test]
fn legal_but_odd_inputs_keep_the_connection() {
    let reqq = PeerConfig::DEFAULT.max_inbound_requests;
    let mut choked_requests = frame(2, &[]);
    for i in 0..reqq {
        choked_requests.extend(frame(6, &be(&[i % PIECES, 0, 16384])));
    }
    for (name, reserved, bytes) in [
        // Without BEP 6 an unrequested block is only wasted bytes.
        (
            "unrequested block without fast",
            Reserved::NONE,
            frame(7, &[be(&[0, 0]), vec![1; 16384]].concat()),
        ),
        // Requests that crossed our choke on the wire, up to our queue size.
        ("reqq requests while choked", FAST_EXT, choked_requests),
        // Unknown ids are ignored (BEP 3 peers do).
        ("unknown message id", FAST_EXT, frame(99, b"hello")),
        // Keep-alives, a port, an allowed-fast grant, then the bitfield.
        (
            "bitfield after keep-alive, port and allowed-fast",
            FAST_EXT,
            [
                vec![0, 0, 0, 0],
                frame(9, &[0x1a, 0xe1]),
                frame(17, &be(&[3])),
                // Not every piece: a seed would be dropped by our seed (BEP 21, both seeding).
                frame(5, &[0xff, 0x80]),
            ]
            .concat(),
        ),
        // A bad extension handshake is ignored (BEP 10).
        (
            "garbage extension handshake",
            FAST_EXT,
            frame(20, b"\x00not bencode"),
        ),
    ] {
        let mut f = Fixture::new(11);
        f.handshake(reserved);
        f.sim.fake_send_raw(f.fake, bytes);
        f.sim
            .run_for(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            f.sim.node(f.node).disconnects(),
            vec![],
            "{name}: still connected"
        );
        assert_eq!(f.sim.node(f.node).session().connection_count(), 1);
    }
}

#[test]
fn wrong_protocol_string_in_the_handshake() {
    let mut f = Fixture::new(1);
    let addr = f.sim.node(f.node).addr();
    f.sim.fake_connect(f.fake, addr);
    let mut bytes = b"\x13BitTorrent protocoX".to_vec();
    bytes.extend([0u8; 48]);
    f.sim.fake_send_raw(f.fake, bytes);
    let (_, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!(
        reason,
        DisconnectReason::Wire(WireError::BadProtocol { offset: 19 })
    );
    assert!(
        f.sim.fake(f.fake).handshake().is_none(),
        "we never answered"
    );
}

#[test]
fn handshake_for_an_unknown_info_hash() {
    let mut f = Fixture::new(2);
    let addr = f.sim.node(f.node).addr();
    f.sim.fake_connect(f.fake, addr);
    let hs = f
        .sim
        .fake(f.fake)
        .handshake_for(&InfoHashes::V1(InfoHashV1([0x5a; 20])), FAST_EXT);
    f.sim.fake_send_handshake(f.fake, &hs);
    let (_, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!(reason, DisconnectReason::UnknownTorrent);
    assert!(f.sim.fake(f.fake).handshake().is_none());
}

#[test]
fn handshake_from_ourselves() {
    let mut f = Fixture::new(3);
    let addr = f.sim.node(f.node).addr();
    let own = f.sim.node(f.node).session().peer_id();
    let me = f.sim.add_fake(FakeConfig::new(own));
    f.sim.fake_connect(me, addr);
    let hs = Handshake::new(FAST_EXT, &f.torrent.info.hashes(), own);
    f.sim.fake_send_handshake(me, &hs);
    let (_, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!(reason, DisconnectReason::SelfConnection);
}

#[test]
fn duplicate_peer_id() {
    let mut f = Fixture::new(4);
    f.handshake(FAST_EXT);
    let addr = f.sim.node(f.node).addr();
    let twin = f
        .sim
        .add_fake(FakeConfig::new(f.sim.fake(f.fake).peer_id()));
    f.sim.fake_connect(twin, addr);
    let hs = f
        .sim
        .fake(twin)
        .handshake_for(&f.torrent.info.hashes(), FAST_EXT);
    f.sim.fake_send_handshake(twin, &hs);
    let (conn, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!(reason, DisconnectReason::DuplicatePeer);
    f.sim
        .run_until(
            |s| s.fake(twin).closed_at().is_some(),
            Duration::from_secs(1),
        )
        .unwrap_or_else(|e| panic!("the twin is closed: {e}"));
    assert!(f.sim.fake(f.fake).closed_at().is_none(), "the first stays");
    let peers = f.sim.node(f.node).session().peers(f.sim.now(), f.tid);
    assert_eq!(peers.len(), 1);
    assert_ne!(peers[0].conn, conn);
}

#[test]
fn silent_peer_hits_the_handshake_timeout() {
    let mut f = Fixture::new(5);
    let addr = f.sim.node(f.node).addr();
    f.sim.fake_connect(f.fake, addr);
    // Let the connection be accepted, then measure from there.
    f.sim.run_for(Duration::from_millis(10)).unwrap();
    assert_eq!(f.sim.node(f.node).session().connection_count(), 1);
    let accepted = f.sim.now() - Duration::from_millis(8);
    let (_, reason) = f.run_until_disconnect(Duration::from_secs(60));
    assert_eq!(reason, DisconnectReason::HandshakeTimeout);
    let at = f.sim.node(f.node).events().last().unwrap().0;
    let timeout = PeerConfig::DEFAULT.handshake_timeout;
    assert!(
        at >= accepted + timeout && at <= accepted + timeout + Duration::from_millis(10),
        "closed at {at:?}, accepted about {accepted:?}"
    );
}

#[test]
fn silent_established_peer_gets_keepalives_then_the_idle_timeout() {
    let mut f = Fixture::new(6);
    f.handshake(FAST_EXT);
    let quiet_from = f.sim.now();
    f.sim.fake_mut(f.fake).clear_received();
    let (_, reason) = f.run_until_disconnect(Duration::from_secs(600));
    assert_eq!(reason, DisconnectReason::IdleTimeout);
    let cfg = PeerConfig::DEFAULT;
    let closed_at = f.sim.node(f.node).events().last().unwrap().0;
    assert!(closed_at >= quiet_from + cfg.idle_timeout - Duration::from_millis(100));
    assert!(closed_at <= quiet_from + cfg.idle_timeout + Duration::from_millis(100));
    // The node kept talking while it waited: one keep-alive after the interval of silence.
    let keepalives: Vec<_> = f
        .sim
        .fake(f.fake)
        .received()
        .iter()
        .filter(|(_, m)| *m == Message::KeepAlive)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(keepalives.len(), 1, "{keepalives:?}");
    let k = keepalives[0];
    assert!(k >= quiet_from + cfg.keepalive_interval - Duration::from_millis(100));
    assert!(k <= quiet_from + cfg.keepalive_interval + Duration::from_millis(100));
}

#[test]
fn a_peer_answering_for_another_torrent_is_refused() {
    let mut f = Fixture::with(8, false);
    let listener = f.sim.add_fake(FakeConfig::new(PeerId([7; 20])).listening());
    let addr = f.sim.fake(listener).addr();
    let conn = f.sim.connect(f.node, f.tid, addr).unwrap();
    f.sim
        .run_until(
            |s| s.fake(listener).handshake().is_some(),
            Duration::from_secs(5),
        )
        .unwrap();
    let other = InfoHashes::V1(InfoHashV1([1; 20]));
    let hs = f.sim.fake(listener).handshake_for(&other, FAST_EXT);
    f.sim.fake_send_handshake(listener, &hs);
    let (c, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!((c, reason), (conn, DisconnectReason::InfoHashMismatch));
}

#[test]
fn connecting_where_nobody_listens_fails() {
    let mut f = Fixture::with(9, false);
    let conn = f
        .sim
        .connect(f.node, f.tid, "127.0.0.200:1".parse().unwrap())
        .unwrap();
    let (c, reason) = f.run_until_disconnect(Duration::from_secs(5));
    assert_eq!((c, reason), (conn, DisconnectReason::ConnectFailed));
    let _ = Bytes::new();
}
