//! Dropping blocking clients ends every thread they started: acceptors, readers, writers,
//! connectors and pool workers. Counted by the operating system (`/proc/self/task`), in a test
//! binary of its own so that no other test's threads come and go meanwhile.

#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_std::blocking::BlockingClient;

use common::{config, make_payload, make_torrent, run_until_synced};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Waits until at most `limit` threads remain, up to 5 s. A joined thread's entry can outlive
/// the join by a moment (the kernel wakes the joiner before it releases the task), so one
/// reading is not enough; a leaked thread never goes.
fn settle_at_most(limit: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = threads();
        if n <= limit || Instant::now() > deadline {
            return n;
        }
        std::thread::yield_now();
    }
}

#[test]
fn dropped_clients_end_every_thread_they_started() {
    let work = tempfile::tempdir().unwrap();
    let payload = make_payload(work.path());
    let info = make_torrent(&payload);
    let pieces = info.layout().piece_count();
    let before = threads();

    let mut seed = BlockingClient::new(config(11, true)).unwrap();
    let mut leech = BlockingClient::new(config(12, true)).unwrap();
    seed.add_torrent(
        info.clone(),
        work.path().to_path_buf(),
        Some(Bitfield::full(pieces)),
    )
    .unwrap();
    let torrent = leech
        .add_torrent(info, work.path().join("leech"), None)
        .unwrap();
    leech.connect(torrent, seed.local_addr().unwrap()).unwrap();
    run_until_synced(&mut seed, &mut leech, torrent, 20_000);

    // One more connection, idle (no handshake yet), so a reader is blocked in `read` and a
    // writer on its queue when the client goes.
    let mut idle = TcpStream::connect(leech.local_addr().unwrap()).unwrap();
    let accepted_before = leech.session().connection_count();
    for _ in 0..2_000 {
        if leech.session().connection_count() > accepted_before {
            break;
        }
        leech.turn(Duration::from_millis(5)).unwrap();
    }
    assert_eq!(leech.session().connection_count(), accepted_before + 1);

    // Per client at least: an acceptor, a disk worker, a hash worker; plus the idle
    // connection's reader and writer. (The seed's and the leecher's connection is gone: once
    // both are seeds they drop each other, BEP 21.) `before` may count a short-lived thread of
    // the test harness, so the named workers are counted too.
    let during = threads();
    let named = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|e| {
            let comm = e.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|c| c.starts_with("bitshoal-"))
        })
        .count();
    assert!(named >= 6, "{named} bitshoal workers running");
    assert!(
        during >= before + 7,
        "{during} threads running, {before} before"
    );

    drop(leech);
    drop(seed);
    let after = settle_at_most(before);
    assert!(
        after <= before,
        "{after} threads after the drop, {before} before"
    );

    // The idle peer's socket was closed, not left open.
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Ok(_) => panic!("a dropped client sent bytes"),
        Err(e) => assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the dropped client's socket is still open"
        ),
    }
}
