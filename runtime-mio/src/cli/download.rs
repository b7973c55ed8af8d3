//! `bitshoal download`: fetch a torrent's content from its trackers and the peers given, verify
//! every piece, sync the files, and exit (or keep seeding with `--seed`).
//!
//! Content lands under `-o DIR` (default: the current directory) as the torrent lays it out:
//! `DIR/<name>` for a single file, `DIR/<name>/...` for a folder. Progress shows as a bar on a
//! terminal (nothing when stderr is not one), or as one JSON object per line with `--json`.
//!
//! # Resume
//!
//! The verified pieces are saved to `DIR/.bitshoal/<info-hash>.resume` (or `--state-dir`)
//! when pieces were verified since the last save, at most every two seconds, and when the
//! command ends (done, Ctrl-C, an error). Running the same command again continues: the
//! verified pieces of files unchanged since the save are trusted; the pieces of files written
//! since, and those that were being downloaded at the save, are checked from disk first (see
//! `bitshoal_core::resume`). Whenever a kill lands, no verified piece is fetched again.
//!
//! Exit codes and what the client contacts: see [`super::transfer`] and [`super::options`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_core::id::{ConnId, TorrentId};
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::picker::Priority;
use bitshoal_core::session::{Event, TorrentState};
use bitshoal_mio::client::{Client, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::add_resuming;
use clap::Args;
use serde_json::json;

use super::options::{self, Discovery, RuntimeChoice};
use super::progress::Progress;
use super::transfer::{self, Failure, DEFAULT_LISTEN};

/// The least time between two saves of the resume file while pieces are verified.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Download a torrent from its trackers and the peers given.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The .torrent file, or a magnet link (`magnet:?xt=...`; BEP 9: the metadata comes from
    /// the link's peers and trackers and any --peer, and is saved as
    /// `DIR/.bitshoal/<info-hash>.torrent`).
    torrent: String,
    /// The directory the content goes under (as `DIR/<name>`).
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// A peer to connect to, besides those the trackers return (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<String>,
    /// Where to accept peers (and the UDP socket for trackers: the same IP and port). A
    /// loopback address keeps the client on loopback (see --help of the discovery flags).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Keep seeding once the download is done, until Ctrl-C.
    #[arg(long)]
    seed: bool,
    /// Download only these files: numbers from 1 as `bitshoal info` lists them (pad files
    /// left out), ranges (2-5) and glob patterns (*.txt, docs/*), comma-separated.
    #[arg(long, value_name = "LIST")]
    only: Option<String>,
    /// Download pieces in order (for previews and streaming) instead of rarest first.
    #[arg(long)]
    sequential: bool,
    /// Download limit in bytes per second (500K, 2M, 1.5MiB; K = KiB = 1024; 0: none).
    #[arg(long, value_name = "RATE", value_parser = options::parse_rate)]
    max_down: Option<u64>,
    /// Upload limit in bytes per second (as --max-down).
    #[arg(long, value_name = "RATE", value_parser = options::parse_rate)]
    max_up: Option<u64>,
    #[command(flatten)]
    discovery: Discovery,
    /// Show each file's progress (a bar per file; a `files` array in --json progress lines).
    #[arg(long)]
    files: bool,
    /// Where resume files go [default: DIR/.bitshoal].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print one JSON object per line instead of a progress bar.
    #[arg(long)]
    json: bool,
    /// Give up (exit 3) if the download is not done after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// What drives the client: one mio event loop, or blocking sockets and threads.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Mio)]
    runtime: RuntimeChoice,
}

pub(crate) fn run(args: DownloadArgs) -> std::process::ExitCode {
    let json = args.json;
    let result = match args.runtime {
        RuntimeChoice::Mio => download::<Client>(args),
        RuntimeChoice::Std => download::<BlockingClient>(args),
    };
    transfer::finish(result, json)
}

/// Everything checked and decided before the client starts.
struct Plan {
    meta: Metainfo,
    listen: SocketAddr,
    peers: Vec<SocketAddr>,
    trackers: Vec<Vec<String>>,
    priorities: Vec<Priority>,
    state_dir: PathBuf,
    reach: Option<bitshoal_std::client::Reach>,
    dht: Option<bitshoal_core::session::DhtSettings>,
    /// BEP 14 local service discovery may run.
    lsd: bool,
}

fn plan(args: &DownloadArgs, fetched: Option<Metainfo>) -> Result<Plan, Failure> {
    let meta = match fetched {
        Some(meta) => meta,
        None => transfer::load_torrent(&args.torrent)?,
    };
    let listen = transfer::parse_addr("--listen", &args.listen)?;
    let peers: Vec<SocketAddr> = args
        .peers
        .iter()
        .map(|p| transfer::parse_addr("--peer", p))
        .collect::<Result<_, _>>()?;
    let discovery = args.discovery.plan(listen).map_err(Failure::other)?;
    let mut trackers = Vec::new();
    for tier in meta.trackers() {
        let (kept, skipped): (Vec<String>, Vec<String>) = tier
            .iter()
            .cloned()
            .partition(|url| discovery.tracker_allowed(url));
        for url in skipped {
            note(
                args.json,
                json!({"event": "tracker_skipped", "url": url, "reason": "loopback listen address"}),
                &format!("skipping tracker {url}: --listen is a loopback address"),
            );
        }
        if !kept.is_empty() {
            trackers.push(kept);
        }
    }
    let info = meta.info();
    let priorities = match &args.only {
        Some(list) => options::parse_only(list, info).map_err(Failure::other)?,
        None => vec![Priority::Normal; info.files().len()],
    };
    let state_dir = transfer::state_dir(&args.output, info.name(), args.state_dir.as_deref())?;
    let reach = discovery.reach(&peers);
    let dht = super::dht_state::restore(
        discovery.dht_settings(),
        &super::dht_state::download_path(&args.output, args.state_dir.as_deref()),
    );
    Ok(Plan {
        meta,
        listen,
        peers,
        trackers,
        priorities,
        state_dir,
        reach,
        dht,
        lsd: discovery.lsd,
    })
}

/// A line for the user: JSON with `--json`, text on stderr otherwise.
fn note(json: bool, value: serde_json::Value, text: &str) {
    if json {
        transfer::emit(value);
    } else {
        eprintln!("{text}");
    }
}

fn download<C: TorrentClient>(mut args: DownloadArgs) -> Result<(), Failure> {
    // A magnet link (BEP 9): the metadata first, then as for a .torrent.
    let net = magnet_net(&args)?;
    let fetched = super::magnet::resolve(
        &args.torrent,
        &mut args.peers,
        &args.output,
        &args.listen,
        args.json,
        args.timeout,
        &net,
    )?;
    let plan = plan(&args, fetched)?;
    if plan.trackers.is_empty() && plan.peers.is_empty() && plan.dht.is_none() && !plan.lsd {
        return Err(Failure::unreachable(
            "the torrent has no trackers (that may be used) and no --peer was given: nowhere to \
             download from",
        ));
    }
    std::fs::create_dir_all(&args.output)
        .map_err(|e| Failure::disk(format!("{}: {e}", args.output.display())))?;
    let interrupt = transfer::interrupt_flag()?;
    let mut client: C = transfer::start_client(
        Some(plan.listen),
        plan.reach.clone(),
        plan.dht.clone(),
        plan.lsd,
    )?;
    if args.json {
        let mut started = transfer::started_json(&plan.meta, &args.output, client.local_addr());
        started["state_dir"] = json!(plan.state_dir.display().to_string());
        transfer::emit(started);
    }
    let info = Arc::new(plan.meta.info().clone());
    let add = add_resuming(Arc::clone(&info), &args.output, &plan.state_dir)
        .with_trackers(plan.trackers.clone())
        .with_piece_layers(plan.meta.piece_layers().to_vec());
    let torrent = client
        .add_torrent_with(add, args.output.clone())
        .map_err(transfer::add_failure)?;
    configure(&mut client, torrent, &args, &plan.priorities)?;
    if args.json {
        transfer::emit(configured_json(client.view(), torrent));
    }
    let mut progress = Progress::new(&info, &plan.priorities, args.json, args.files);
    let mut run = Run {
        torrent,
        state_dir: plan.state_dir,
        to_dial: plan.peers,
        dialled: Vec::new(),
        // The DHT, like a tracker, can always bring more peers.
        have_trackers: !plan.trackers.is_empty() || plan.dht.is_some() || plan.lsd,
        json: args.json,
        seed: args.seed,
        last_save: Instant::now(),
        saved_have: None,
        reported_start: false,
        resumed_some: false,
        root: args.output.clone(),
        info: Arc::clone(&info),
        sync_requested: false,
        done: false,
    };
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let result = run.drive(
        &mut client,
        &mut progress,
        &interrupt,
        deadline,
        args.timeout,
    );
    // Whatever happened, what was verified is kept for the next run.
    if let Err(e) = client.save_resume(torrent, &run.state_dir) {
        progress.println(&format!("cannot save the resume file: {e}"));
    }
    super::dht_state::save(&mut client, &net.dht_state);
    result
}

/// The network side of a magnet link's metadata client: the DHT (with its saved state) and
/// the loopback rule, as for the download proper.
fn magnet_net(args: &DownloadArgs) -> Result<super::magnet::Net, Failure> {
    let listen = transfer::parse_addr("--listen", &args.listen)?;
    // The --peer addresses and the link's x.pe peers may be reached.
    let mut peers: Vec<SocketAddr> = args.peers.iter().filter_map(|p| p.parse().ok()).collect();
    if let Ok(link) = bitshoal_core::magnet::Magnet::parse(&args.torrent) {
        for p in link.peers() {
            if let bitshoal_core::magnet::PeerAddr::Ip(addr) = p {
                peers.push(*addr);
            }
        }
    }
    let discovery = args.discovery.plan(listen).map_err(Failure::other)?;
    let dht_state = super::dht_state::download_path(&args.output, args.state_dir.as_deref());
    Ok(super::magnet::Net {
        dht: super::dht_state::restore(discovery.dht_settings(), &dht_state),
        reach: discovery.reach(&peers),
        dht_state,
    })
}

/// Sets the torrent's file priorities, order and rate limits as the flags say.
fn configure<C: TorrentClient>(
    client: &mut C,
    torrent: TorrentId,
    args: &DownloadArgs,
    priorities: &[Priority],
) -> Result<(), Failure> {
    let misuse = |e: bitshoal_core::session::CommandError| Failure::other(e.to_string());
    for (file, &priority) in priorities.iter().enumerate() {
        if priority != Priority::Normal {
            client
                .command(|s, now| s.set_file_priority(now, torrent, file, priority))
                .map_err(misuse)?;
        }
    }
    if args.sequential {
        client
            .command(|s, now| s.set_sequential(now, torrent, true))
            .map_err(misuse)?;
    }
    let (up, down) = (args.max_up.unwrap_or(0), args.max_down.unwrap_or(0));
    if up != 0 || down != 0 {
        client
            .command(|s, now| s.set_torrent_limits(now, torrent, up, down))
            .map_err(misuse)?;
    }
    Ok(())
}

/// The `configured` line: the torrent's settings as the session holds them after
/// [`configure`] (not as the flags said), so scripts and tests see what took effect.
fn configured_json(
    session: &bitshoal_core::session::Session,
    torrent: TorrentId,
) -> serde_json::Value {
    let (max_up, max_down) = session.torrent_limits(torrent).unwrap_or_default();
    json!({
        "event": "configured",
        "sequential": session.is_sequential(torrent).unwrap_or(false),
        "max_down": max_down,
        "max_up": max_up,
    })
}

/// A download in progress.
struct Run {
    torrent: TorrentId,
    state_dir: PathBuf,
    /// `--peer` addresses not dialled yet (the torrent dials once its check is done).
    to_dial: Vec<SocketAddr>,
    /// Connections to `--peer` addresses still open.
    dialled: Vec<ConnId>,
    have_trackers: bool,
    json: bool,
    seed: bool,
    last_save: Instant,
    /// Pieces had at the last save.
    saved_have: Option<u32>,
    /// Whether the `resumed` line (pieces had once checked) was printed.
    reported_start: bool,
    /// Pieces were on disk before this run: files an earlier run wrote (and may not have
    /// synced) are synced here too before the command reports success.
    resumed_some: bool,
    /// The download directory and the torrent's files, for that sync.
    root: PathBuf,
    info: Arc<bitshoal_core::metainfo::Info>,
    /// Whether the files' sync was asked for (by us, or by the client on `TorrentFinished`).
    sync_requested: bool,
    /// Downloaded, verified and synced.
    done: bool,
}

impl Run {
    fn drive<C: TorrentClient>(
        &mut self,
        client: &mut C,
        progress: &mut Progress,
        interrupt: &std::sync::atomic::AtomicBool,
        deadline: Option<Instant>,
        timeout: Option<u64>,
    ) -> Result<(), Failure> {
        loop {
            if transfer::interrupted(interrupt) {
                progress.abandon();
                // Seeding after a finished download is what --seed asked for: a clean stop.
                return if self.done {
                    Ok(())
                } else {
                    Err(Failure::interrupted())
                };
            }
            if !self.done && deadline.is_some_and(|d| Instant::now() >= d) {
                progress.abandon();
                return Err(Failure::unreachable(format!(
                    "the download did not finish within {} seconds",
                    timeout.unwrap_or(0)
                )));
            }
            let events = client
                .turn(Duration::from_millis(200))
                .map_err(|e| Failure::other(format!("event loop: {e}")))?;
            for event in &events {
                if self.on_event(client, progress, event)? {
                    return Ok(());
                }
            }
            let Some(status) = client.status(self.torrent) else {
                return Err(Failure::other("the torrent left the session"));
            };
            let files = client
                .view()
                .file_progress(self.torrent)
                .unwrap_or_default();
            progress.update(&status, &files);
            let checking = matches!(status.state, TorrentState::Checking { .. });
            if !checking && !self.reported_start {
                self.reported_start = true;
                self.resumed_some = status.pieces_have > 0;
                note(
                    self.json,
                    json!({"event": "resumed", "have": status.pieces_have, "pieces": status.pieces_total}),
                    &format!(
                        "{} of {} pieces already here",
                        status.pieces_have, status.pieces_total
                    ),
                );
            }
            if !checking && !self.to_dial.is_empty() && !status.finished {
                for addr in std::mem::take(&mut self.to_dial) {
                    match client.connect(self.torrent, addr) {
                        Ok(conn) => self.dialled.push(conn),
                        Err(e) => return Err(Failure::other(format!("--peer {addr}: {e}"))),
                    }
                }
            }
            if status.finished && !self.sync_requested {
                // Complete without a TorrentFinished (all there after a check or a resume).
                self.sync_requested = true;
                client.sync_files(self.torrent);
            }
            if self.saved_have != Some(status.pieces_have)
                && !checking
                && self.last_save.elapsed() >= SAVE_EVERY
            {
                self.save(client, progress, status.pieces_have);
            }
            // No tracker (or DHT) can bring more peers and every peer given is gone: nothing
            // will change (a peer could still dial in, but nobody told it to).
            if !self.done
                && !checking
                && !status.finished
                && !self.have_trackers
                && self.to_dial.is_empty()
                && self.dialled.is_empty()
                && status.peers == 0
            {
                progress.abandon();
                return Err(Failure::unreachable(
                    "no peer reachable: every --peer failed or left, and the torrent has no trackers",
                ));
            }
        }
    }

    /// Saves the resume file (a failure is reported, not fatal: the next run checks instead).
    fn save<C: TorrentClient>(&mut self, client: &mut C, progress: &Progress, have: u32) {
        self.last_save = Instant::now();
        self.saved_have = Some(have);
        match client.save_resume(self.torrent, &self.state_dir) {
            Ok(path) if self.json => transfer::emit(json!({
                "event": "resume_saved",
                "have": have,
                "path": path.display().to_string(),
            })),
            Ok(_) => {}
            Err(e) => progress.println(&format!("cannot save the resume file: {e}")),
        }
    }

    /// Reports one event; `Ok(true)` when the command is done.
    fn on_event<C: TorrentClient>(
        &mut self,
        client: &mut C,
        progress: &mut Progress,
        event: &ClientEvent,
    ) -> Result<bool, Failure> {
        transfer::log_event(event);
        if self.json {
            if let Some(line) = transfer::event_json(event) {
                transfer::emit(line);
            }
        } else if let Some(line) = transfer::event_text(event) {
            progress.println(&line);
        }
        match event {
            ClientEvent::Session(Event::PeerDisconnected { conn, .. }) => {
                self.dialled.retain(|c| c != conn);
            }
            ClientEvent::Session(Event::TorrentFinished { torrent })
                if *torrent == self.torrent =>
            {
                self.sync_requested = true;
            }
            ClientEvent::Session(Event::StorageFailed { error, .. }) => {
                progress.abandon();
                return Err(Failure::disk(error.to_string()));
            }
            ClientEvent::Synced { result, .. } => match result {
                Err(error) => {
                    progress.abandon();
                    return Err(Failure::disk(error.to_string()));
                }
                Ok(()) if !self.done => {
                    // Storage syncs what this run wrote; an earlier, killed run's writes are
                    // synced here.
                    if self.resumed_some {
                        if let Err(e) = sync_all(&self.root, &self.info) {
                            progress.abandon();
                            return Err(Failure::disk(e));
                        }
                    }
                    self.done = true;
                    progress.finish("verified and synced");
                    let have = client.status(self.torrent).map_or(0, |s| s.pieces_have);
                    self.save(client, progress, have);
                    if !self.seed {
                        return Ok(true);
                    }
                    note(
                        self.json,
                        json!({"event": "seeding"}),
                        "seeding until Ctrl-C",
                    );
                }
                Ok(()) => {}
            },
            _ => {}
        }
        Ok(false)
    }
}

/// Syncs every file of the torrent under `root` to disk (each opened read-only, which is enough
/// for `fsync` on the platforms we run on); pad files and missing files are left out.
fn sync_all(root: &std::path::Path, info: &bitshoal_core::metainfo::Info) -> Result<(), String> {
    for file in info.files().iter().filter(|f| !f.is_pad()) {
        let path = file.path().join_under(root);
        if !path.is_file() {
            continue;
        }
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
