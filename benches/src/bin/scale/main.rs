//! Scale benchmarks: many idle torrents in one session, many peer connections to one client.
//!
//! ```text
//! cargo run --release -p bitshoal-benches --bin scale -- torrents --count 10000
//! cargo run --release -p bitshoal-benches --bin scale -- peers --count 1000
//! ```
//!
//! `torrents` adds `--count` generated torrents (no peers, no trackers, DHT and LSD off) to a
//! core `Session` and to a runtime-mio `Client`, each in its own process, and prints the time
//! per add and the memory per torrent (exact heap bytes from this binary's counting allocator,
//! and resident memory from `/proc/self/status`). `peers` starts a runtime-mio seed as a child
//! and connects `--count` fake peers to it over 127.0.0.1 from this process; it prints the
//! seed's memory per connection and its CPU time per GiB moved. Only loopback is used; the seed
//! is killed by pid when the run ends. See `benches/README.md`.

mod alloc;
#[path = "../e2e/payload.rs"]
#[allow(dead_code)] // shared with `e2e`; this benchmark uses only `make`
mod payload;
mod peers;
mod stats;
mod torrents;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Scale benchmarks of bitshoal: many torrents, many connections.
#[derive(Debug, Parser)]
#[command(name = "scale")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Idle torrents added to one session: time per add, memory per torrent.
    Torrents {
        /// How many torrents.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Each torrent has 1 to this many pieces (of 16 to 256 KiB).
        #[arg(long, default_value_t = 8)]
        max_pieces: u64,
        /// Add the torrents complete (every piece trusted as on disk) instead of empty.
        #[arg(long)]
        seeding: bool,
        /// Where each runs, comma-separated: core (the sans-IO `Session`), mio (the client).
        #[arg(long, default_value = "core,mio", value_delimiter = ',', value_parser = torrents::Runtime::parse)]
        runtime: Vec<torrents::Runtime>,
        /// The runtime-mio client's download directory (nothing is written there).
        #[arg(long, default_value = "/dev/shm/bitshoal-scale/torrents")]
        dir: PathBuf,
    },
    /// Fake peers connected to one runtime-mio seed: memory per connection, CPU per GiB.
    Peers {
        /// How many connections.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// The seeded payload (a multiple of 1 MiB; KiB, MiB or GiB suffix).
        #[arg(long, default_value = "64MiB", value_parser = payload::parse_size)]
        size: u64,
        /// Bytes to move across all connections.
        #[arg(long, default_value = "1GiB", value_parser = payload::parse_size)]
        total: u64,
        /// Block requests each peer keeps in flight.
        #[arg(long, default_value_t = 8)]
        pipeline: u32,
        /// Working directory (tmpfs); removed at the end.
        #[arg(long, default_value = "/dev/shm/bitshoal-scale/peers")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("__child") => child(&argv[2..]),
        _ => run(Args::parse()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    match args.bench {
        Bench::Torrents {
            count,
            max_pieces,
            seeding,
            runtime,
            dir,
        } => {
            println!("load average: {}", stats::loadavg());
            println!();
            println!("{}", torrents::HEADER);
            // Each runtime in a fresh process, so resident memory starts from the same point.
            for r in runtime {
                let name = match r {
                    torrents::Runtime::Core => "core",
                    torrents::Runtime::Mio => "mio",
                };
                let status = Command::new(std::env::current_exe()?)
                    .args(["__child", "torrents", name, &count.to_string()])
                    .arg(max_pieces.to_string())
                    .arg(if seeding { "seeding" } else { "empty" })
                    .arg(&dir)
                    .status()?;
                if !status.success() {
                    return Err(std::io::Error::other(format!("torrents on {name} failed")));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            println!();
            println!("load average after: {}", stats::loadavg());
            Ok(())
        }
        Bench::Peers {
            count,
            size,
            total,
            pipeline,
            dir,
        } => peers::run(&peers::Options {
            count,
            size,
            total,
            pipeline,
            dir,
        }),
    }
}

/// `__child torrents <core|mio> COUNT MAX_PIECES <seeding|empty> DIR` and `__child seed TORRENT DATA COUNT`.
fn child(args: &[String]) -> std::io::Result<()> {
    match args {
        [mode, runtime, count, max_pieces, have, dir] if mode == "torrents" => {
            let runtime = torrents::Runtime::parse(runtime).map_err(std::io::Error::other)?;
            let count = count.parse().map_err(std::io::Error::other)?;
            let max_pieces = max_pieces.parse().map_err(std::io::Error::other)?;
            torrents::run(
                runtime,
                count,
                max_pieces,
                have == "seeding",
                Path::new(dir),
            )
        }
        [mode, torrent, data, count] if mode == "seed" => {
            let count = count.parse().map_err(std::io::Error::other)?;
            peers::seed_child(Path::new(torrent), Path::new(data), count)
        }
        _ => Err(std::io::Error::other(format!(
            "bad child arguments {args:?}"
        ))),
    }
}
