//! `bitshoal verify`: a full recheck of a torrent's content under `--data DIR` (as
//! `DIR/<name>`), reporting the good and bad pieces of every file.
//!
//! The check is the session's own ([`CheckMode::Full`]): every piece is read through the
//! storage that downloads use and hashed on the hashing pool; a piece that cannot be read (a
//! file missing or short) counts as bad. Nothing is contacted: the client has no listener, no
//! trackers and no peers. A piece spanning two files is listed under both.
//!
//! Exit codes: 0 every piece good, 6 some piece bad or missing, 2 a bad torrent, 5 a torrent
//! the session cannot check (v2-only), 130 Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{AddTorrent, CheckMode, Event, TorrentState};
use bitshoal_mio::client::{Client, ClientEvent};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::options::visible_files;
use super::transfer::{self, Failure};

/// Check every piece of a torrent's content on disk.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The .torrent file.
    torrent: String,
    /// The directory holding the content (as `DIR/<name>`).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Print one JSON object (and an `exit` line) instead of text.
    #[arg(long)]
    json: bool,
    /// In the text report, list at most this many bad piece numbers per file.
    #[arg(long, value_name = "N", default_value_t = 20)]
    list_limit: usize,
}

pub(crate) fn run(args: VerifyArgs) -> std::process::ExitCode {
    let json = args.json;
    transfer::finish(verify(args), json)
}

/// One file's result.
struct FileReport {
    number: usize,
    path: String,
    pieces: u32,
    bad: Vec<u32>,
    missing: bool,
}

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let meta = transfer::load_torrent(&args.torrent)?;
    let info = Arc::new(meta.info().clone());
    let interrupt = transfer::interrupt_flag()?;
    let mut client: Client = transfer::start_client(None, None, None)?;
    let add = AddTorrent::new(Arc::clone(&info))
        .with_piece_layers(meta.piece_layers().to_vec())
        .with_check(CheckMode::Full);
    let torrent = client
        .add_torrent_with(add, args.data.clone())
        .map_err(transfer::add_failure)?;
    let total = info.layout().piece_count();
    let bar = if args.json {
        ProgressBar::with_draw_target(Some(u64::from(total)), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(u64::from(total))
    };
    bar.set_style(
        ProgressStyle::with_template("checking [{bar:40}] {pos}/{len} pieces")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    loop {
        if transfer::interrupted(&interrupt) {
            bar.abandon();
            return Err(Failure::interrupted());
        }
        let events = client
            .turn(Duration::from_millis(200))
            .map_err(|e| Failure::other(format!("event loop: {e}")))?;
        for event in &events {
            transfer::log_event(event);
            match event {
                ClientEvent::Session(Event::CheckingProgress { checked, .. }) => {
                    bar.set_position(u64::from(*checked));
                }
                ClientEvent::Session(Event::StorageFailed { error, .. }) => {
                    bar.abandon();
                    return Err(Failure::disk(error.to_string()));
                }
                _ => {}
            }
        }
        let state = client.session().torrent_state(torrent);
        if !matches!(state, Some(TorrentState::Checking { .. })) {
            break;
        }
    }
    bar.finish_and_clear();
    let have = client
        .session()
        .have(torrent)
        .cloned()
        .ok_or_else(|| Failure::other("the torrent left the session"))?;
    let reports = file_reports(&info, &have, &args.data);
    let good = have.count();
    if args.json {
        transfer::emit(report_json(&meta, &reports, good, total));
    } else {
        print_report(&reports, good, total, args.list_limit);
    }
    if good == total {
        Ok(())
    } else {
        Err(Failure::bad_data(format!(
            "{} of {total} pieces are bad or missing",
            total - good
        )))
    }
}

/// Each visible file's pieces that are not in `have`.
fn file_reports(info: &Info, have: &Bitfield, data: &std::path::Path) -> Vec<FileReport> {
    let layout = info.layout();
    visible_files(info)
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            let file = &info.files()[i];
            let range = layout.file_pieces(i).unwrap_or(0..0);
            let path = file.path().join_under(data);
            FileReport {
                number: n + 1,
                path: file.path().as_str().to_string(),
                pieces: range.len() as u32,
                bad: range.filter(|p| !have.get(*p)).collect(),
                missing: file.length() > 0 && !path.is_file(),
            }
        })
        .collect()
}

fn report_json(
    meta: &bitshoal_core::metainfo::Metainfo,
    reports: &[FileReport],
    good: u32,
    total: u32,
) -> Value {
    let hashes = meta.hashes();
    json!({
        "event": "verified",
        "name": meta.info().name(),
        "info_hash_v1": hashes.v1().map(|h| h.to_string()),
        "pieces": total,
        "good": good,
        "bad": total - good,
        "files": reports.iter().map(|r| json!({
            "file": r.number,
            "path": r.path,
            "pieces": r.pieces,
            "good": r.pieces - r.bad.len() as u32,
            "bad_pieces": r.bad,
            "missing": r.missing,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(reports: &[FileReport], good: u32, total: u32, limit: usize) {
    for r in reports {
        let status = if r.missing {
            "MISSING".to_string()
        } else if r.bad.is_empty() {
            format!("ok ({} pieces)", r.pieces)
        } else {
            let mut list: Vec<String> = r.bad.iter().take(limit).map(u32::to_string).collect();
            if r.bad.len() > limit {
                list.push(format!("... {} more", r.bad.len() - limit));
            }
            format!(
                "BAD: {} of {} pieces ({})",
                r.bad.len(),
                r.pieces,
                list.join(", ")
            )
        };
        println!("{:>4}  {}: {status}", r.number, r.path);
    }
    println!("{good} of {total} pieces good");
}
