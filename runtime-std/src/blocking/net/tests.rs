//! The connection threads on their own: ordering and flush reports of the writer, the reader's
//! bound on unhandled bytes, and shutdown.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use bitshoal_core::id::ConnId;
use bitshoal_core::session::{Config, Session};
use bitshoal_core::time::Instant;
use bytes::Bytes;

use super::{ConnThreads, Msg, Outgoing, MAX_UNHANDLED_BYTES, READ_BUFFER};

/// A connected pair on 127.0.0.1: our end runs [`ConnThreads`], the other is the test's.
fn pair() -> (ConnThreads, Receiver<Msg>, TcpStream, ConnId) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    let (tx, rx) = mpsc::channel();
    // Ids come only from a session.
    let conn = Session::new(Config::default())
        .accept(Instant::ZERO, peer.local_addr().unwrap())
        .unwrap();
    let threads = ConnThreads::start(conn, ours, &tx).unwrap();
    (threads, rx, peer, conn)
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn the_writer_keeps_order_and_reports_the_last_send_flushed() {
    let (threads, rx, mut peer, conn) = pair();
    let mut expected = Vec::new();
    for seq in 1..=50u64 {
        let head = Bytes::from(vec![seq as u8; 13]);
        let body = (seq % 2 == 0).then(|| Bytes::from(vec![!(seq as u8); 16 * 1024]));
        expected.extend_from_slice(&head);
        if let Some(b) = &body {
            expected.extend_from_slice(b);
        }
        threads.send(Outgoing { seq, head, body });
    }
    // An empty head alone must not stall the queue.
    threads.send(Outgoing {
        seq: 51,
        head: Bytes::new(),
        body: None,
    });
    let mut got = vec![0u8; expected.len()];
    peer.read_exact(&mut got).unwrap();
    assert!(got == expected, "bytes arrive in send order");

    let mut last = 0;
    while last != 51 {
        match rx.recv_timeout(LONG).expect("a flush report") {
            Msg::Flushed { conn: c, seq } => {
                assert_eq!(c, conn);
                assert!(seq > last, "flush reports only move forward");
                last = seq;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for t in threads.shutdown() {
        t.join().unwrap();
    }
}

#[test]
fn the_reader_stops_at_the_unhandled_bound_and_resumes_when_handled() {
    let (threads, rx, mut peer, conn) = pair();
    let total = 3 * MAX_UNHANDLED_BYTES;
    let sender = thread::spawn(move || {
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            peer.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        peer // kept open until joined
    });

    // Take messages without telling the reader they were handled: it must stop.
    let mut received = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(300)) {
            Ok(Msg::Received { conn: c, data }) => {
                assert_eq!(c, conn);
                received += data.len();
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(RecvTimeoutError::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(
            received < MAX_UNHANDLED_BYTES + READ_BUFFER,
            "{received} bytes unhandled: the reader did not wait"
        );
    }
    assert!(received >= MAX_UNHANDLED_BYTES, "reads up to the bound");

    // Now handle them: the rest arrives.
    threads.handled(received);
    while received < total {
        match rx.recv_timeout(LONG).expect("more bytes") {
            Msg::Received { data, .. } => {
                received += data.len();
                threads.handled(data.len());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, total);
    let _peer = sender.join().unwrap();
    for t in threads.shutdown() {
        t.join().unwrap();
    }
}

#[test]
fn a_reader_waiting_for_room_ends_at_shutdown() {
    let (threads, rx, mut peer, _) = pair();
    // On its own thread: the write blocks once the reader stops and the socket buffers fill,
    // and fails once our side is closed.
    let sender = thread::spawn(move || {
        let _ = peer.write_all(&vec![1u8; 4 * MAX_UNHANDLED_BYTES]);
    });
    let mut received = 0;
    while received < MAX_UNHANDLED_BYTES {
        if let Msg::Received { data, .. } = rx.recv_timeout(LONG).expect("bytes") {
            received += data.len();
        }
    }
    // The reader is (or soon will be) waiting for room; shutdown must end it all the same.
    for t in threads.shutdown() {
        t.join().unwrap();
    }
    sender.join().unwrap();
}

#[test]
fn the_peer_closing_is_reported_once_by_the_reader() {
    let (threads, rx, peer, conn) = pair();
    drop(peer);
    match rx.recv_timeout(LONG).expect("a report") {
        Msg::Closed { conn: c } => assert_eq!(c, conn),
        other => panic!("unexpected {other:?}"),
    }
    for t in threads.shutdown() {
        t.join().unwrap();
    }
}
