//! Unit tests of the event loop's connection buffers, over 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use bitshoal_core::bencode::DictWriter;
use bitshoal_core::id::PeerId;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddTorrent, Config, DiskCmd, HashJob, Session};
use bitshoal_core::time::Instant;
use bitshoal_core::wire::{Handshake, Reserved};

use super::{EventLoop, JobSink};

/// Drops every job: the test needs no storage.
struct NoJobs;

impl JobSink for NoJobs {
    fn disk(&mut self, _cmd: DiskCmd) {}
    fn hash(&mut self, _job: HashJob) {}
}

fn small_info() -> Arc<Info> {
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", 4 * 16384);
    d.bytes(b"name", b"quiet.bin");
    d.int(b"piece length", 16384);
    d.bytes(b"pieces", &[0u8; 4 * 20]);
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("test torrent is valid"))
}

#[test]
fn an_idle_connection_holds_no_receive_buffer() {
    let info = small_info();
    let mut session = Session::new(Config {
        rng_seed: 7,
        ..Config::default()
    });
    session
        .add_torrent(Instant::ZERO, AddTorrent::new(Arc::clone(&info)))
        .expect("a fresh session takes the torrent");
    let mut event_loop =
        EventLoop::new(session, Some(([127, 0, 0, 1], 0).into())).expect("loop on loopback");
    let mut jobs = NoJobs;
    event_loop.dispatch(&mut jobs);
    let addr = event_loop.local_addr().expect("listening");

    let mut peer = StdTcpStream::connect(addr).expect("connect over loopback");
    let mut hs = Vec::new();
    Handshake::new(Reserved::NONE, &info.hashes(), PeerId([9; 20])).encode(&mut hs);
    peer.write_all(&hs).expect("send the handshake");
    peer.set_nonblocking(true).expect("nonblocking");

    // The loop read our handshake once its own arrives (it answers only after reading ours).
    let deadline = WallClock::now() + Duration::from_secs(10);
    let mut answer = Vec::new();
    while answer.len() < Handshake::LEN {
        assert!(WallClock::now() < deadline, "no handshake came back");
        event_loop
            .turn(&mut jobs, Duration::from_millis(20))
            .expect("a turn of the loop");
        let mut buf = [0u8; 1024];
        match peer.read(&mut buf) {
            Ok(0) => panic!("the loop closed the connection"),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    assert_eq!(event_loop.conns.len(), 1);
    for (_, c) in &event_loop.conns {
        assert_eq!(
            c.recv.capacity(),
            0,
            "a drained, quiet connection gave its receive buffer back"
        );
    }
}
