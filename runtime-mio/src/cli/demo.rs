//! `bitshoal demo`: a whole swarm on loopback, in one command.
//!
//! Builds a payload in a temporary folder, makes a hybrid torrent of it, starts one seeding
//! client and several downloading clients (each its own event loop on its own thread, each
//! listening on 127.0.0.1), connects every downloader to the seed and to the downloaders
//! started before it, shows progress, then checks every downloaded byte against the payload
//! and prints a summary. Nothing leaves 127.0.0.1.
//!
//! `--runtime` picks what drives each client: the mio event loop (the default), the blocking
//! runtime of `bitshoal-std` (threads and blocking sockets), or both in one swarm (`mixed`:
//! the seed on mio, the downloaders alternating std, mio, std, ...).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::id::TorrentId;
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{AddTorrent, Config, Event};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::add_trusting;
use bitshoal_std::create::{create_torrent, CreateOptions};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CliResult;

/// Run a loopback swarm: one seed and several downloaders, all bitshoal.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Payload size in MiB.
    #[arg(long, default_value_t = 32)]
    size_mib: u64,
    /// How many downloading clients.
    #[arg(long, default_value_t = 3)]
    leechers: usize,
    /// Print one JSON object per line instead of progress bars.
    #[arg(long)]
    json: bool,
    /// Keep the temporary folder (payload, torrent, downloads) and print its path.
    #[arg(long)]
    keep: bool,
    /// Give up (exit non-zero) if the swarm has not finished after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// What drives the clients.
    #[arg(long, value_enum, default_value_t = Runtime::Mio)]
    runtime: Runtime,
}

/// The runtimes a demo swarm can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// Every client on a mio event loop.
    Mio,
    /// Every client on blocking sockets and threads (`bitshoal-std`).
    Std,
    /// The seed on mio; the downloaders alternate std, mio, std, ...
    Mixed,
}

impl Runtime {
    /// Whether client `index` (0 is the seed) runs on the blocking runtime.
    fn blocking(self, index: usize) -> bool {
        match self {
            Self::Mio => false,
            Self::Std => true,
            Self::Mixed => index % 2 == 1,
        }
    }
}

/// What each client thread reports.
enum Report {
    Progress {
        client: usize,
        have: u32,
        downloaded: u64,
    },
    Done {
        client: usize,
        runtime: &'static str,
        uploaded: u64,
        downloaded: u64,
    },
    Failed {
        client: usize,
        error: String,
    },
}

pub(crate) fn run(args: DemoArgs) -> CliResult {
    if args.leechers == 0 || args.size_mib == 0 {
        return Err("--leechers and --size-mib must be at least 1".into());
    }
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("bitshoal-demo-")
        .tempdir()?;
    let source_dir = work.path().join("seed");
    let payload = source_dir.join("demo-payload");
    make_payload(&payload, args.size_mib * 1024 * 1024)?;

    let options = CreateOptions {
        version: Version::Hybrid,
        created_by: Some(concat!("bitshoal/", env!("CARGO_PKG_VERSION")).into()),
        ..CreateOptions::default()
    };
    let created = create_torrent(&payload, &options, |_, _| {})?;
    fs::write(work.path().join("demo.torrent"), &created.bytes)?;
    let info = Arc::new(Metainfo::from_bytes(&created.bytes)?.into_info());
    let pieces = info.layout().piece_count();
    let total = info.content_length();
    say(
        &args,
        &format!(
            "payload: {} in {} files, {} pieces of {} KiB, info-hash {}",
            human(total),
            info.files().iter().filter(|f| !f.is_pad()).count(),
            pieces,
            info.piece_length() / 1024,
            info.hashes()
                .v1()
                .map(|h| h.to_string())
                .unwrap_or_default()
        ),
    );

    let (tx, rx) = mpsc::channel();
    let mut addrs = Vec::new();
    let mut handles = Vec::new();
    let mut runtimes = Vec::new();
    let clients = args.leechers + 1;
    for index in 0..clients {
        let seed = index == 0;
        let config = ClientConfig {
            session: Config {
                rng_seed: 0x5eed_0000 + index as u64,
                ..Config::default()
            },
            listen: Some("127.0.0.1:0".parse().expect("a literal address")),
            ..ClientConfig::default()
        };
        let dir = if seed {
            source_dir.clone()
        } else {
            work.path().join(format!("leecher-{index}"))
        };
        let joining = Joining {
            index,
            config,
            add: add_trusting(info.clone(), seed.then(|| Bitfield::full(pieces))),
            dir,
            peers: &addrs,
            tx: tx.clone(),
        };
        let (addr, runtime, handle) = if args.runtime.blocking(index) {
            start::<BlockingClient>(joining, "std")?
        } else {
            start::<Client>(joining, "mio")?
        };
        addrs.push(addr);
        runtimes.push(runtime);
        handles.push(handle);
    }
    drop(tx);
    say(
        &args,
        &format!("runtimes (seed first): {}", runtimes.join(", ")),
    );

    let mut bars = Bars::new(&args, clients, pieces);
    let mut done = 0;
    let mut downloaded_total = 0;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while done < args.leechers {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Report::Progress {
                client,
                have,
                downloaded,
            }) => bars.set(client, have, downloaded),
            Ok(Report::Done {
                client,
                runtime,
                downloaded,
                uploaded,
            }) => {
                bars.finish(client, downloaded);
                downloaded_total += downloaded;
                done += 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "finished", "client": client, "runtime": runtime, "downloaded": downloaded, "uploaded": uploaded})
                    );
                }
            }
            Ok(Report::Failed { client, error }) => {
                return Err(format!("client {client}: {error}").into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => {
                return Err(format!(
                    "the swarm did not finish within {} seconds",
                    args.timeout_secs
                )
                .into())
            }
        }
    }
    let elapsed = started.elapsed();
    bars.clear();

    for index in 1..clients {
        let dir = work.path().join(format!("leecher-{index}"));
        compare_trees(&payload, &dir.join("demo-payload"))?;
    }
    // The client threads keep serving each other; they end with the process.
    drop(handles);
    let summary = format!(
        "{} downloaders each got {} ({} pieces) in {:.2} s, {} in all ({}/s); every byte verified",
        args.leechers,
        human(total),
        pieces,
        elapsed.as_secs_f64(),
        human(downloaded_total),
        human((downloaded_total as f64 / elapsed.as_secs_f64()) as u64),
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"event": "summary", "leechers": args.leechers, "bytes": total, "seconds": elapsed.as_secs_f64(), "verified": true})
        );
    } else {
        println!("{summary}");
    }
    if args.keep {
        let kept = work.keep();
        say(&args, &format!("kept {}", kept.display()));
    }
    Ok(())
}

/// A client about to join the swarm: its number (0 is the seed), configuration, torrent,
/// download folder, the clients to connect to, and where to report.
struct Joining<'a> {
    index: usize,
    config: ClientConfig,
    add: AddTorrent,
    dir: PathBuf,
    peers: &'a [SocketAddr],
    tx: mpsc::Sender<Report>,
}

/// Starts a client on runtime `C` (named `runtime`), adds the torrent, connects it to the
/// clients before it and runs it on its own thread. Returns where it listens, the runtime's
/// name and the thread.
fn start<C: TorrentClient + Send + 'static>(
    joining: Joining<'_>,
    runtime: &'static str,
) -> Result<(SocketAddr, &'static str, thread::JoinHandle<()>), Box<dyn std::error::Error>> {
    let Joining {
        index,
        config,
        add,
        dir,
        peers,
        tx,
    } = joining;
    let mut client = C::new(config)?;
    let torrent = client.add_torrent_with(add, dir)?;
    for &addr in peers {
        client.connect(torrent, addr)?;
    }
    let addr = client.local_addr().expect("clients listen");
    let stop_when_synced = index != 0;
    let handle = thread::spawn(move || {
        // A client that panics must end the demo with an error, not leave it waiting.
        let reporter = tx.clone();
        let run = std::panic::AssertUnwindSafe(|| {
            drive(index, runtime, client, torrent, stop_when_synced, tx)
        });
        if std::panic::catch_unwind(run).is_err() {
            let _ = reporter.send(Report::Failed {
                client: index,
                error: "the client panicked (a bug: please report it)".into(),
            });
        }
    });
    Ok((addr, runtime, handle))
}

/// Runs one client until its torrent is downloaded and synced (downloaders) or forever (the
/// seed, whose thread ends with the process).
fn drive<C: TorrentClient>(
    index: usize,
    runtime: &'static str,
    mut client: C,
    torrent: TorrentId,
    stop_when_synced: bool,
    tx: mpsc::Sender<Report>,
) {
    let mut last = Instant::now();
    loop {
        let events = match client.turn(Duration::from_millis(50)) {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Report::Failed {
                    client: index,
                    error: e.to_string(),
                });
                return;
            }
        };
        for event in events {
            match event {
                ClientEvent::Synced { result: Ok(()), .. } if stop_when_synced => {
                    let status = client
                        .status(torrent)
                        .expect("the torrent is in the session");
                    let _ = tx.send(Report::Done {
                        client: index,
                        runtime,
                        uploaded: status.uploaded,
                        downloaded: status.downloaded,
                    });
                    // Keep serving the others until the process ends.
                }
                ClientEvent::Synced { result: Err(e), .. }
                | ClientEvent::Session(Event::StorageFailed { error: e, .. }) => {
                    let _ = tx.send(Report::Failed {
                        client: index,
                        error: e.to_string(),
                    });
                    return;
                }
                _ => {}
            }
        }
        if last.elapsed() >= Duration::from_millis(100) {
            last = Instant::now();
            if let Some(status) = client.status(torrent) {
                let report = Report::Progress {
                    client: index,
                    have: status.pieces_have,
                    downloaded: status.downloaded,
                };
                if tx.send(report).is_err() {
                    return; // the demo is over
                }
            }
        }
    }
}

/// Writes a few files of pseudo-random bytes adding up to `size`.
fn make_payload(dir: &Path, size: u64) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("docs"))?;
    let mut rng = Rng::from_seed(0xd3_4d0);
    let parts = [
        (dir.join("video.bin"), size * 6 / 10),
        (dir.join("docs/readme.txt"), 12_345),
        (dir.join("docs/archive.bin"), size * 3 / 10),
        (dir.join("empty.txt"), 0),
    ];
    let used: u64 = parts.iter().map(|p| p.1).sum();
    let mut files: Vec<(PathBuf, u64)> = parts.to_vec();
    files.push((dir.join("rest.bin"), size.saturating_sub(used)));
    for (path, len) in files {
        let mut bytes = vec![0u8; len as usize];
        rng.fill(&mut bytes);
        fs::write(path, bytes)?;
    }
    Ok(())
}

/// Checks that `copy` holds exactly the files of `original`, byte for byte.
fn compare_trees(original: &Path, copy: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for entry in fs::read_dir(original)? {
        let entry = entry?;
        let there = copy.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            compare_trees(&entry.path(), &there)?;
        } else if fs::read(entry.path())? != fs::read(&there)? {
            return Err(format!("{} differs from the original", there.display()).into());
        }
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn say(args: &DemoArgs, line: &str) {
    if args.json {
        println!("{}", serde_json::json!({"event": "info", "message": line}));
    } else {
        eprintln!("{line}");
    }
}

/// One progress bar per downloader (hidden when stderr is not a terminal, or with `--json`).
/// The downloaders' progress: a bar each on a terminal, or with `--json` a `progress` line
/// whenever a downloader has more pieces.
struct Bars {
    bars: Vec<ProgressBar>,
    multi: MultiProgress,
    /// With `--json`: the pieces last reported per client.
    json: Option<Vec<u32>>,
}

impl Bars {
    fn new(args: &DemoArgs, clients: usize, pieces: u32) -> Self {
        let multi = if args.json {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let style =
            ProgressStyle::with_template("{prefix:>11} [{bar:40}] {pos}/{len} pieces {msg}")
                .expect("a valid template")
                .progress_chars("=> ");
        let bars = (0..clients)
            .map(|i| {
                let bar = multi.add(ProgressBar::new(u64::from(pieces)));
                bar.set_style(style.clone());
                bar.set_prefix(if i == 0 {
                    "seed".to_string()
                } else {
                    format!("leecher {i}")
                });
                if i == 0 {
                    bar.set_position(u64::from(pieces));
                    bar.set_message("seeding");
                }
                bar
            })
            .collect();
        Self {
            bars,
            multi,
            json: args.json.then(|| vec![0; clients]),
        }
    }

    fn set(&mut self, client: usize, have: u32, downloaded: u64) {
        if let Some(last) = self.json.as_mut().and_then(|l| l.get_mut(client)) {
            if client > 0 && have > *last {
                *last = have;
                let pieces = self.bars[client].length().unwrap_or(0);
                println!(
                    "{}",
                    serde_json::json!({"event": "progress", "client": client, "have": have, "pieces": pieces, "downloaded": downloaded})
                );
            }
        }
        if client > 0 {
            self.bars[client].set_position(u64::from(have));
            self.bars[client].set_message(human(downloaded));
        }
    }

    fn finish(&self, client: usize, downloaded: u64) {
        let bar = &self.bars[client];
        bar.set_position(bar.length().unwrap_or(0));
        bar.finish_with_message(format!("{} verified", human(downloaded)));
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}
