//! `bitshoal seed`: serve a torrent's content from `--data DIR` (laid out as `DIR/<name>`, as
//! `download` leaves it) to the peers its trackers bring, until Ctrl-C.
//!
//! The session cannot check existing data yet (a checking state is coming to the core); until
//! then `seed` serves the files only with `--trust-data`, after checking that every file is
//! there with the right size, and treats every piece as verified. Without the flag it refuses
//! with a message saying so. Exit codes: see [`super::transfer`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddTorrent, Event};
use bitshoal_mio::client::ClientEvent;
use clap::Args;

use super::transfer::{self, Failure, DEFAULT_LISTEN};

/// Seed a torrent's content from a directory, until Ctrl-C.
#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// The .torrent file.
    torrent: String,
    /// The directory holding the content (as `DIR/<name>`).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Where to accept peers (and the UDP socket for trackers: the same IP and port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Serve the data as complete without hashing it (required until recheck exists).
    #[arg(long)]
    trust_data: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SeedArgs) -> std::process::ExitCode {
    let json = args.json;
    transfer::finish(seed(args), json)
}

fn seed(args: SeedArgs) -> Result<(), Failure> {
    let meta = transfer::load_torrent(&args.torrent)?;
    let listen = transfer::parse_addr("--listen", &args.listen)?;
    if !args.trust_data {
        return Err(Failure::other(
            "seed cannot verify existing data yet (recheck is coming to the session); pass \
             --trust-data to serve the files under --data as complete without checking them",
        ));
    }
    check_files(meta.info(), &args.data)?;
    let interrupt = transfer::interrupt_flag()?;
    let mut client = transfer::start_client(listen)?;
    if args.json {
        transfer::emit(transfer::started_json(
            &meta,
            &args.data,
            client.local_addr(),
        ));
    } else if let Some(addr) = client.local_addr() {
        eprintln!("seeding {} on {addr} until Ctrl-C", meta.info().name());
    }
    let info = Arc::new(meta.info().clone());
    let pieces = info.layout().piece_count();
    let add = AddTorrent::from_metainfo(&meta).with_have(Bitfield::full(pieces));
    client
        .add_torrent_with(add, args.data.clone())
        .map_err(|e| Failure::bad_torrent(e.to_string()))?;
    while !transfer::interrupted(&interrupt) {
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        for event in &events {
            if args.json {
                if let Some(line) = transfer::event_json(event) {
                    transfer::emit(line);
                }
            } else if let Some(line) = transfer::event_text(event) {
                eprintln!("{line}");
            }
            if let ClientEvent::Session(Event::StorageFailed { error, .. }) = event {
                return Err(Failure::disk(error.to_string()));
            }
        }
    }
    Ok(())
}

/// Checks that every file of the torrent is under `dir` with its length (exit 4 if not).
fn check_files(info: &Info, dir: &std::path::Path) -> Result<(), Failure> {
    for file in info.files().iter().filter(|f| !f.is_pad()) {
        let path = file.path().join_under(dir);
        let len = std::fs::metadata(&path)
            .map_err(|e| Failure::disk(format!("{}: {e}", path.display())))?
            .len();
        if len != file.length() {
            return Err(Failure::disk(format!(
                "{} is {len} bytes, the torrent says {}",
                path.display(),
                file.length()
            )));
        }
    }
    Ok(())
}
