//! The receive path: messages split across reads arrive whole, whether the reads share one
//! buffer (joined without a copy) or come in separate buffers (only the split frame's missing
//! bytes are copied), and in any grouping of reads between two `process_messages` calls.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;

use super::*;
use crate::bencode::DictWriter;
use crate::metainfo::Info;

const PIECES: u32 = 2000;

fn info() -> Arc<Info> {
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", i64::from(PIECES) * 16384);
    d.bytes(b"name", b"recv.bin");
    d.int(b"piece length", 16384);
    d.bytes(b"pieces", &vec![0u8; PIECES as usize * 20]);
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("test torrent is valid"))
}

/// An established incoming connection to a peer that has nothing yet.
fn established(info: &Info) -> PeerConn {
    let addr: SocketAddr = ([127, 0, 0, 1], 6881).into();
    let mut conn = PeerConn::incoming(Instant::ZERO, addr, PeerConfig::DEFAULT);
    let theirs = Handshake::new(Reserved::NONE, &info.hashes(), PeerId([1; 20]));
    let mut hs = BytesMut::new();
    theirs.encode(&mut hs);
    conn.on_received(Instant::ZERO, hs);
    let theirs = conn.take_handshake().unwrap().expect("a whole handshake");
    let ours = Handshake::new(Reserved::NONE, &info.hashes(), PeerId([2; 20]));
    conn.establish(Instant::ZERO, &theirs, &ours, None, &Bitfield::new(PIECES));
    conn
}

/// A bitfield (even pieces), then `have` for the first odd pieces and a keep-alive, and the
/// pieces the peer has after them.
fn stream() -> (Vec<u8>, Bitfield) {
    let mut has = Bitfield::new(PIECES);
    for i in (0..PIECES).step_by(2) {
        has.set(i, true);
    }
    let mut out = BytesMut::new();
    let _ = Message::Bitfield(Bytes::copy_from_slice(has.as_bytes())).encode(&mut out);
    for i in (1..60).step_by(2) {
        let _ = Message::Have(i).encode(&mut out);
        has.set(i, true);
    }
    let _ = Message::KeepAlive.encode(&mut out);
    let _ = Message::Have(1999).encode(&mut out);
    has.set(1999, true);
    (out.to_vec(), has)
}

/// Feeds `parts` (each its own buffer), processing after each part when `process_each`.
fn feed(info: &Info, parts: &[&[u8]], process_each: bool) -> PeerConn {
    let mut conn = established(info);
    let we_have = Bitfield::new(PIECES);
    for part in parts {
        conn.on_received(Instant::ZERO, BytesMut::from(*part));
        if process_each {
            conn.process_messages(Instant::ZERO, info.layout(), &we_have)
                .expect("a valid stream");
        }
    }
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .expect("a valid stream");
    conn
}

#[test]
fn frames_split_across_separate_buffers_arrive_whole() {
    let (bytes, has) = stream();
    let info = info();
    for a in 0..=bytes.len() {
        // Every first cut; second cuts spread over the rest (all of them would be slow).
        for b in (a..=bytes.len()).step_by(41).chain([a + 1, a + 4, a + 5]) {
            let b = b.min(bytes.len());
            for process_each in [true, false] {
                let conn = feed(
                    &info,
                    &[&bytes[..a], &bytes[a..b], &bytes[b..]],
                    process_each,
                );
                assert_eq!(conn.peer_has(), Some(&has), "split at {a} and {b}");
                assert!(conn.closed_reason().is_none());
                assert!(conn.recv.is_empty() && conn.recv_next.is_empty());
            }
        }
    }
}

#[test]
fn adjacent_reads_of_one_buffer_join_without_a_copy() {
    let (bytes, has) = stream();
    let info = info();
    let mut conn = established(&info);
    let we_have = Bitfield::new(PIECES);
    // One receive buffer, cut into reads the way a runtime does (`split_to`).
    let mut buffer = BytesMut::from(&bytes[..]);
    let split = 100; // inside the bitfield frame
    let first = buffer.split_to(split);
    conn.on_received(Instant::ZERO, first);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    let held = conn.recv.as_ptr();
    conn.on_received(Instant::ZERO, buffer);
    assert_eq!(conn.recv.as_ptr(), held, "joined in place");
    assert!(conn.recv_next.is_empty(), "nothing set aside");
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.peer_has(), Some(&has));
}

#[test]
fn a_split_frame_takes_only_its_missing_bytes_from_the_next_buffer() {
    let (bytes, has) = stream();
    let info = info();
    let mut conn = established(&info);
    let we_have = Bitfield::new(PIECES);
    let bitfield_frame = 4 + 1 + (PIECES as usize).div_ceil(8);
    conn.on_received(Instant::ZERO, BytesMut::from(&bytes[..2]));
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    conn.on_received(Instant::ZERO, BytesMut::from(&bytes[2..]));
    assert_eq!(conn.recv.len(), 2, "the rest waits in its own buffer");
    assert!(conn.refill());
    assert_eq!(conn.recv.len(), bitfield_frame, "exactly the split frame");
    assert_eq!(conn.recv_next.len(), bytes.len() - bitfield_frame);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.peer_has(), Some(&has));
}

#[test]
fn a_frame_split_across_buffers_is_joined_in_a_buffer_of_its_own_length() {
    let (bytes, has) = stream();
    let info = info();
    let mut conn = established(&info);
    let we_have = Bitfield::new(PIECES);
    let bitfield_frame = 4 + 1 + (PIECES as usize).div_ceil(8);
    // A runtime's large read buffer: the first read's bytes are cut off its front while the
    // runtime keeps the rest of it for the reads to come.
    let mut runtime_buf = BytesMut::with_capacity(120 * 1024);
    runtime_buf.extend_from_slice(&bytes[..100]);
    let first = runtime_buf.split_to(100);
    conn.on_received(Instant::ZERO, first);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    // The next read landed in a fresh buffer.
    conn.on_received(Instant::ZERO, BytesMut::from(&bytes[100..]));
    assert!(conn.refill());
    assert_eq!(conn.recv.len(), bitfield_frame, "exactly the split frame");
    assert!(
        conn.recv.capacity() <= 2 * bitfield_frame,
        "the joined frame holds {} bytes for a {bitfield_frame}-byte frame",
        conn.recv.capacity()
    );
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.peer_has(), Some(&has));
    drop(runtime_buf);
}

#[test]
fn a_drained_connection_lets_go_of_the_runtimes_read_buffer() {
    let (bytes, has) = stream();
    let info = info();
    let mut conn = established(&info);
    let we_have = Bitfield::new(PIECES);
    // A runtime's read buffer: one read filled its front; the rest waits for the next read.
    let capacity = 64 * 1024;
    let mut buffer = BytesMut::with_capacity(capacity);
    buffer.extend_from_slice(&bytes);
    let read = buffer.split_to(bytes.len());
    conn.on_received(Instant::ZERO, read);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.peer_has(), Some(&has));
    // `try_reclaim` gets the whole allocation back only when `buffer` is its sole owner: an
    // idle connection holds no part of it.
    assert!(
        buffer.try_reclaim(capacity),
        "the drained connection still holds the read buffer"
    );
}

#[test]
fn a_frame_still_arriving_keeps_its_bytes() {
    let (bytes, has) = stream();
    let info = info();
    let mut conn = established(&info);
    let we_have = Bitfield::new(PIECES);
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    buffer.extend_from_slice(&bytes);
    let first = buffer.split_to(100); // inside the bitfield frame
    conn.on_received(Instant::ZERO, first);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.recv.len(), 100, "the partial frame is kept");
    assert!(!buffer.try_reclaim(64 * 1024), "and with it the buffer");
    let rest = buffer.split_to(bytes.len() - 100);
    conn.on_received(Instant::ZERO, rest);
    conn.process_messages(Instant::ZERO, info.layout(), &we_have)
        .unwrap();
    assert_eq!(conn.peer_has(), Some(&has));
    assert!(buffer.try_reclaim(64 * 1024), "released once drained");
}
