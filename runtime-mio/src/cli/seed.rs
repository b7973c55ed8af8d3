//! `bitshoal seed`: serve a torrent's content from `--data DIR` (laid out as `DIR/<name>`, as
//! `download` leaves it) to the peers its trackers bring, dialling them as well as accepting
//! them, until Ctrl-C.
//!
//! The data is checked first: every piece is read and hashed, and only the pieces that match
//! are served (a note says how many, if not all). `--trust-data` skips the check, after making
//! sure every file is there with the right size, and serves every piece as verified. Exit
//! codes: see [`super::transfer`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddTorrent, CheckMode, Event, SuperseedMode, TorrentState};
use bitshoal_mio::client::{Client, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;
use clap::Args;
use serde_json::json;

use super::options::{Discovery, RuntimeChoice};
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
    /// Serve the data as complete without hashing it (only file sizes are checked).
    #[arg(long)]
    trust_data: bool,
    /// Upload limit in bytes per second (500K, 2M, 1.5MiB; K = KiB = 1024; 0: none).
    #[arg(long, value_name = "RATE", value_parser = super::options::parse_rate)]
    max_up: Option<u64>,
    /// Superseed (BEP 16): show each peer one rare piece at a time, so an initial seed
    /// uploads each piece about once. `--superseed strict`: a peer's next piece only once
    /// another peer has its last one (a lone peer gets one piece).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "on", value_name = "MODE")]
    superseed: Option<SuperseedArg>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// What drives the client: one mio event loop, or blocking sockets and threads.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Mio)]
    runtime: RuntimeChoice,
    /// DHT and other discovery (a loopback --listen keeps the DHT off unless
    /// --dht-bootstrap names nodes).
    #[command(flatten)]
    discovery: Discovery,
}

/// `--superseed` modes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SuperseedArg {
    /// The next piece once the peer has the last one (or another peer does).
    On,
    /// The next piece only once another peer has the last one (BEP 16's rule).
    Strict,
}

pub(crate) fn run(args: SeedArgs) -> std::process::ExitCode {
    let json = args.json;
    let result = match args.runtime {
        RuntimeChoice::Mio => seed::<Client>(args),
        RuntimeChoice::Std => seed::<BlockingClient>(args),
    };
    transfer::finish(result, json)
}

fn seed<C: TorrentClient>(args: SeedArgs) -> Result<(), Failure> {
    let meta = transfer::load_torrent(&args.torrent)?;
    let listen = transfer::parse_addr("--listen", &args.listen)?;
    let info = Arc::new(meta.info().clone());
    let pieces = info.layout().piece_count();
    let check = if args.trust_data {
        check_files(&info, &args.data)?;
        CheckMode::Trust(Bitfield::full(pieces))
    } else {
        CheckMode::Full
    };
    let interrupt = transfer::interrupt_flag()?;
    // A seed reaches the trackers in its torrent and the peers they return, wherever it
    // listens: it dials only what those trackers name. Its DHT follows the loopback rule: on
    // a loopback address it runs only with --dht-bootstrap, and then stays on loopback and
    // the nodes named.
    let discovery = args.discovery.plan(listen).map_err(Failure::other)?;
    let dht_state = super::dht_state::seed_path(&args.data);
    let dht = super::dht_state::restore(discovery.dht_settings(), &dht_state);
    let reach = if dht.is_some() {
        discovery.reach(&[])
    } else {
        None
    };
    let mut client: C = transfer::start_client(Some(listen), reach, dht, discovery.lsd)?;
    if args.json {
        transfer::emit(transfer::started_json(
            &meta,
            &args.data,
            client.local_addr(),
        ));
    } else if let Some(addr) = client.local_addr() {
        eprintln!("seeding {} on {addr} until Ctrl-C", meta.info().name());
    }
    let add = AddTorrent::new(info)
        .with_check(check)
        .with_trackers(meta.trackers().to_vec())
        .with_piece_layers(meta.piece_layers().to_vec());
    let torrent = client
        .add_torrent_with(add, args.data.clone())
        .map_err(transfer::add_failure)?;
    if let Some(up) = args.max_up.filter(|r| *r > 0) {
        client
            .command(|s, now| s.set_torrent_limits(now, torrent, up, 0))
            .map_err(|e| Failure::other(e.to_string()))?;
    }
    if let Some(mode) = args.superseed {
        let mode = match mode {
            SuperseedArg::On => SuperseedMode::On,
            SuperseedArg::Strict => SuperseedMode::Strict,
        };
        client
            .command(|s, now| s.set_superseed(now, torrent, mode))
            .map_err(|e| Failure::other(e.to_string()))?;
    }
    let mut reported = false;
    while !transfer::interrupted(&interrupt) {
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        for event in &events {
            transfer::log_event(event);
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
            // Saved once joined too: a seed is often stopped by other means than Ctrl-C.
            if let ClientEvent::Session(Event::DhtBootstrapped { .. }) = event {
                super::dht_state::save(&mut client, &dht_state);
            }
        }
        let Some(status) = client.status(torrent) else {
            return Err(Failure::other("the torrent left the session"));
        };
        if !reported && !matches!(status.state, TorrentState::Checking { .. }) {
            reported = true;
            let (have, total) = (status.pieces_have, status.pieces_total);
            if args.json {
                transfer::emit(json!({"event": "checked", "have": have, "pieces": total}));
            } else if have < total {
                eprintln!(
                    "{have} of {total} pieces found and verified under {}: serving those",
                    args.data.display()
                );
            } else {
                eprintln!("all {total} pieces verified");
            }
        }
    }
    super::dht_state::save(&mut client, &dht_state);
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
