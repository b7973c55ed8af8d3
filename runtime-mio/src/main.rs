//! The `bitshoal` command-line client.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A BitTorrent client.
#[derive(Debug, Parser)]
#[command(name = "bitshoal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each lives in its own module under `cli/`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a loopback swarm (one seed, several downloaders) and verify every byte.
    Demo(cli::demo::DemoArgs),
    /// Make a .torrent file (v1, v2 or hybrid) from a file or a directory.
    Create(cli::create::CreateArgs),
    /// Describe a .torrent file or a magnet link: hashes, size, pieces, files, trackers.
    Info(cli::info::InfoArgs),
    /// Download a torrent from its trackers and the peers given (exit codes: 0 done, 2 bad
    /// torrent, 3 nothing reachable or timed out, 4 disk error, 5 unsupported, 130 Ctrl-C).
    Download(cli::download::DownloadArgs),
    /// Seed a torrent's content from a directory (checked first) until Ctrl-C.
    Seed(cli::seed::SeedArgs),
    /// Check every piece of a torrent's content on disk (exit codes: 0 all good, 6 bad or
    /// missing pieces, 2 bad torrent).
    Verify(cli::verify::VerifyArgs),
}

fn main() -> ExitCode {
    // Logs go to stderr, as RUST_LOG says (nothing by default).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create(args) => cli::create::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::Info(args) => cli::info::run(args),
        // These report their own exit codes (see cli/transfer.rs).
        Command::Download(args) => return cli::download::run(args),
        Command::Seed(args) => return cli::seed::run(args),
        Command::Verify(args) => return cli::verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bitshoal: {e}");
            ExitCode::FAILURE
        }
    }
}
