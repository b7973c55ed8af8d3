//! `bitshoal download`: fetch a torrent's content from its trackers and the peers given, verify
//! every piece, sync the files, and exit (or keep seeding with `--seed`).
//!
//! Content lands under `-o DIR` (default: the current directory) as the torrent lays it out:
//! `DIR/<name>` for a single file, `DIR/<name>/...` for a folder. Progress shows as a bar on a
//! terminal (nothing when stderr is not one), or as one JSON object per line with `--json`.
//! Exit codes and what the client contacts: see [`super::transfer`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_core::id::ConnId;
use bitshoal_core::session::{AddTorrent, Event};
use bitshoal_mio::client::ClientEvent;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::transfer::{self, Failure, DEFAULT_LISTEN};

/// Download a torrent from its trackers and the peers given.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The .torrent file (magnet links are not supported yet).
    torrent: String,
    /// The directory the content goes under (as `DIR/<name>`).
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// A peer to connect to, besides those the trackers return (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<String>,
    /// Where to accept peers (and the UDP socket for trackers: the same IP and port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Keep seeding once the download is done, until Ctrl-C.
    #[arg(long)]
    seed: bool,
    /// Print one JSON object per line instead of a progress bar.
    #[arg(long)]
    json: bool,
    /// Give up (exit 3) if the download is not done after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

pub(crate) fn run(args: DownloadArgs) -> std::process::ExitCode {
    let json = args.json;
    transfer::finish(download(args), json)
}

fn download(args: DownloadArgs) -> Result<(), Failure> {
    let meta = transfer::load_torrent(&args.torrent)?;
    let listen = transfer::parse_addr("--listen", &args.listen)?;
    let peers: Vec<SocketAddr> = args
        .peers
        .iter()
        .map(|p| transfer::parse_addr("--peer", p))
        .collect::<Result<_, _>>()?;
    let trackers = meta.trackers().to_vec();
    if trackers.is_empty() && peers.is_empty() {
        return Err(Failure::unreachable(
            "the torrent has no trackers and no --peer was given: nowhere to download from",
        ));
    }
    std::fs::create_dir_all(&args.output)
        .map_err(|e| Failure::disk(format!("{}: {e}", args.output.display())))?;
    let interrupt = transfer::interrupt_flag()?;
    let mut client = transfer::start_client(listen)?;
    if args.json {
        transfer::emit(transfer::started_json(
            &meta,
            &args.output,
            client.local_addr(),
        ));
    }
    let info = Arc::new(meta.info().clone());
    let pieces = info.layout().piece_count();
    let add = AddTorrent::from_metainfo(&meta);
    let torrent = client
        .add_torrent_with(add, args.output.clone())
        .map_err(|e| Failure::bad_torrent(e.to_string()))?;
    let mut dialled: Vec<ConnId> = Vec::new();
    for addr in peers {
        match client.connect(torrent, addr) {
            Ok(conn) => dialled.push(conn),
            Err(e) => return Err(Failure::other(format!("--peer {addr}: {e}"))),
        }
    }

    let bar = if args.json {
        ProgressBar::with_draw_target(Some(u64::from(pieces)), ProgressDrawTarget::hidden())
    } else {
        // Draws on stderr, and only when it is a terminal.
        ProgressBar::new(u64::from(pieces))
    };
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {pos}/{len} pieces {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let deadline = args.timeout.map(|s| started + Duration::from_secs(s));
    let mut done = false;
    let mut last_have = 0;
    loop {
        if transfer::interrupted(&interrupt) {
            bar.abandon();
            // Seeding after a finished download is what --seed asked for: a clean stop.
            return if done {
                Ok(())
            } else {
                Err(Failure::interrupted())
            };
        }
        if !done && deadline.is_some_and(|d| Instant::now() >= d) {
            bar.abandon();
            return Err(Failure::unreachable(format!(
                "the download did not finish within {} seconds",
                args.timeout.unwrap_or(0)
            )));
        }
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        for event in &events {
            if args.json {
                if let Some(line) = transfer::event_json(event) {
                    transfer::emit(line);
                }
            } else if let Some(line) = transfer::event_text(event) {
                bar.println(line);
            }
            match event {
                ClientEvent::Session(Event::PeerDisconnected { conn, .. }) => {
                    dialled.retain(|c| c != conn);
                }
                ClientEvent::Session(Event::StorageFailed { error, .. }) => {
                    bar.abandon();
                    return Err(Failure::disk(error.to_string()));
                }
                ClientEvent::Synced { result, .. } => match result {
                    Err(error) => {
                        bar.abandon();
                        return Err(Failure::disk(error.to_string()));
                    }
                    Ok(()) => {
                        done = true;
                        bar.finish_with_message("verified and synced");
                        if !args.seed {
                            return Ok(());
                        }
                        if args.json {
                            transfer::emit(json!({"event": "seeding"}));
                        } else {
                            eprintln!("seeding until Ctrl-C");
                        }
                    }
                },
                _ => {}
            }
        }
        let Some(status) = client.status(torrent) else {
            return Err(Failure::other("the torrent left the session"));
        };
        if args.json && status.pieces_have != last_have {
            last_have = status.pieces_have;
            transfer::emit(transfer::progress_json(&status));
        }
        if !done {
            bar.set_position(u64::from(status.pieces_have));
            bar.set_message(format!("{} peers", status.peers));
            // No tracker can bring more peers and every peer given is gone: nothing will
            // change (no DHT yet; a peer could still dial in, but nobody told it to).
            if trackers.is_empty() && dialled.is_empty() && status.peers == 0 && !status.finished {
                bar.abandon();
                return Err(Failure::unreachable(
                    "no peer reachable: every --peer failed or left, and the torrent has no trackers",
                ));
            }
        }
    }
}
