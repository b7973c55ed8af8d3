//! Our BEP 10 extension handshake as a peer receives it, independent of any other client:
//! the `m` dictionary names every extension we speak, and the basics (`yourip`, `reqq`, `v`,
//! `p`, `metadata_size`) are there.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha1::{Digest as _, Sha1};

use super::*;
use crate::bencode::{self, DictWriter};
use crate::ext::names;
use crate::id::PeerId;
use crate::time::Instant;
use crate::wire::{self, Decoded, Message, WireLimits};

fn info(private: bool) -> Arc<Info> {
    let data = vec![7u8; 40_000];
    let mut pieces = Vec::new();
    for chunk in data.chunks(16_384) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", data.len() as i64);
    d.bytes(b"name", b"ext.bin");
    d.int(b"piece length", 16_384);
    d.bytes(b"pieces", &pieces);
    if private {
        d.int(b"private", 1);
    }
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("test torrent is valid"))
}

/// The payload of the extension handshake a session sends to a peer at `from` that dials it
/// for a torrent (a seed when `seed`).
fn handshake_sent(info: &Arc<Info>, from: SocketAddr) -> Bytes {
    let mut s = Session::new(Config {
        rng_seed: 5,
        listen_port: Some(6881),
        ..Config::default()
    });
    let now = Instant::ZERO;
    s.add_torrent(now, AddTorrent::new(Arc::clone(info)))
        .expect("fresh torrent");
    while s.poll_output().is_some() {}
    let conn = s.accept(now, from).expect("room for a peer");
    while s.poll_output().is_some() {}
    let reserved = Reserved::EXTENSION_PROTOCOL.union(Reserved::FAST);
    let theirs = Handshake::new(reserved, &info.hashes(), PeerId(*b"-XX0001-abcdefghijkl"));
    let mut buf = BytesMut::new();
    theirs.encode(&mut buf);
    s.handle_input(now, Input::Received { conn, data: buf });
    let mut sent = BytesMut::new();
    while let Some(out) = s.poll_output() {
        if let Output::Send { head, body, .. } = out {
            sent.extend_from_slice(&head);
            if let Some(b) = body {
                sent.extend_from_slice(&b);
            }
        }
    }
    let mut bytes = sent.freeze();
    match Handshake::decode(&bytes).expect("our handshake parses") {
        Decoded::Ready(_, used) => bytes = bytes.slice(used..),
        Decoded::Need(_) => panic!("no handshake sent"),
    }
    while !bytes.is_empty() {
        match wire::decode(&bytes, &WireLimits::DEFAULT).expect("our messages parse") {
            Decoded::Ready(Message::Extended { id: 0, payload }, _) => return payload,
            Decoded::Ready(_, used) => bytes = bytes.slice(used..),
            Decoded::Need(_) => break,
        }
    }
    panic!("no extension handshake sent");
}

#[test]
fn our_extension_handshake_names_every_extension_and_the_basics() {
    let info = info(false);
    let from: SocketAddr = "127.0.0.9:50123".parse().unwrap();
    let payload = handshake_sent(&info, from);
    let value = bencode::decode(&payload).expect("bencoded");
    let dict = value.as_dict().expect("a dictionary");
    let m = dict
        .get(b"m")
        .and_then(|m| m.as_dict())
        .expect("an `m` dictionary (BEP 10)");
    for &(name, id) in names::LOCAL_IDS {
        assert_eq!(
            m.get(name).and_then(|v| v.as_int()),
            Some(i64::from(id)),
            "`m` lacks {}",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(
        dict.get(b"yourip").and_then(|v| v.as_bytes()),
        Some(&[127, 0, 0, 9][..])
    );
    assert_eq!(dict.get(b"p").and_then(|v| v.as_int()), Some(6881));
    assert!(dict
        .get(b"reqq")
        .and_then(|v| v.as_int())
        .is_some_and(|q| q > 0));
    let v = dict.get(b"v").and_then(|v| v.as_bytes()).expect("`v`");
    assert!(v.starts_with(b"bitshoal"), "{}", String::from_utf8_lossy(v));
    assert_eq!(
        dict.get(b"metadata_size").and_then(|v| v.as_int()),
        Some(info.raw().len() as i64)
    );
    // And our own decoder reads it back the same way.
    let ext = ExtendedHandshake::decode(&payload).unwrap();
    assert_eq!(ext.extensions.len(), names::LOCAL_IDS.len());
}

#[test]
fn a_private_torrents_handshake_offers_neither_pex_nor_tex() {
    let info = info(true);
    let payload = handshake_sent(&info, "[::1]:50000".parse().unwrap());
    let ext = ExtendedHandshake::decode(&payload).unwrap();
    assert_eq!(ext.extension_id(names::UT_PEX), None);
    assert_eq!(ext.extension_id(names::LT_TEX), None);
    assert!(ext.extension_id(names::UT_METADATA).is_some());
    assert_eq!(
        ext.your_ip,
        Some(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
    );
}
