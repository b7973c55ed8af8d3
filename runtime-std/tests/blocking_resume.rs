//! Resume across restarts with the blocking client: the first start checks the files and
//! saves resume data; a restart with unchanged files trusts it without reading; a changed file
//! makes the next start check again and find the damage.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::id::TorrentId;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddTorrent, Event, TorrentState};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::ClientEvent;

use common::{config, make_payload, make_torrent};

/// Starts a client, adds the torrent with resume, and turns until it is no longer checking.
/// Returns the client, the torrent and the session events seen.
fn start(info: &Arc<Info>, root: &Path, state: &Path) -> (BlockingClient, TorrentId, Vec<Event>) {
    let mut client = BlockingClient::new(config(7, false)).unwrap();
    let t = client
        .add_torrent_resuming(AddTorrent::new(info.clone()), root.to_path_buf(), state)
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..20_000 {
        if !matches!(
            client.status(t).unwrap().state,
            TorrentState::Checking { .. }
        ) {
            break;
        }
        for e in client.turn(Duration::from_millis(5)).unwrap() {
            if let ClientEvent::Session(e) = e {
                events.push(e);
            }
        }
    }
    (client, t, events)
}

fn checked(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::CheckingProgress { .. }))
}

#[test]
fn a_restart_trusts_unchanged_files_and_checks_changed_ones() {
    let work = tempfile::tempdir().unwrap();
    let payload = make_payload(work.path());
    let info = make_torrent(&payload);
    let pieces = info.layout().piece_count();
    let state = work.path().join("state");

    // First start: no resume file, the files are there: a full check finds everything.
    let (client, t, events) = start(&info, work.path(), &state);
    assert!(checked(&events), "the files were checked");
    let status = client.status(t).unwrap();
    assert_eq!(status.state, TorrentState::Seeding);
    assert_eq!(status.pieces_have, pieces);
    let saved = client.save_resume(t, &state).unwrap();
    assert!(saved.starts_with(&state));
    assert!(
        !saved.starts_with(&payload),
        "never inside the download folder"
    );
    drop(client);

    // Restart, nothing changed: seeding at once, nothing read.
    let (client, t, events) = start(&info, work.path(), &state);
    assert!(!checked(&events), "unchanged files are trusted");
    assert_eq!(client.status(t).unwrap().state, TorrentState::Seeding);
    assert_eq!(client.status(t).unwrap().pieces_have, pieces);
    drop(client);

    // A byte of a.bin changes (same size, new modification time): the next start checks
    // everything and finds one piece damaged.
    let file = OpenOptions::new()
        .write(true)
        .open(payload.join("a.bin"))
        .unwrap();
    let old = {
        let mut b = [0u8; 1];
        std::fs::File::open(payload.join("a.bin"))
            .unwrap()
            .read_exact_at(&mut b, 100_000)
            .unwrap();
        b[0]
    };
    file.write_all_at(&[old ^ 0x55], 100_000).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let (client, t, events) = start(&info, work.path(), &state);
    assert!(checked(&events), "changed files are checked");
    let status = client.status(t).unwrap();
    assert_eq!(status.state, TorrentState::Downloading);
    assert_eq!(status.pieces_have, pieces - 1);
}
