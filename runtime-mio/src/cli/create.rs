//! `bitshoal create`: make a `.torrent` from a file or directory, with a progress bar.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bitshoal_core::create::Version;
use bitshoal_std::create::{hash_plan, plan_for_path, CreateOptions};
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};

use super::CliResult;

/// Arguments of `bitshoal create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("version").args(["v1", "v2", "hybrid"])))]
pub(crate) struct CreateArgs {
    /// The file or directory to share.
    path: PathBuf,
    /// Where to write the torrent [default: `NAME.torrent` in the current directory].
    #[arg(short, long, value_name = "OUT.torrent")]
    output: Option<PathBuf>,
    /// Make a v1-only torrent (BEP 3).
    #[arg(long)]
    v1: bool,
    /// Make a v2-only torrent (BEP 52).
    #[arg(long)]
    v2: bool,
    /// Make a hybrid v1 + v2 torrent (the default).
    #[arg(long)]
    hybrid: bool,
    /// A tracker URL. Each --tracker is a new tier; URLs joined by commas share a tier.
    #[arg(short, long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// A web seed URL (BEP 19); may be repeated.
    #[arg(short, long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// The piece length: a power of two from 16KiB, as bytes or with a KiB/MiB/GiB suffix
    /// [default: chosen from the total size, as libtorrent does].
    #[arg(short = 'l', long, value_name = "N", value_parser = super::options::parse_size)]
    piece_length: Option<u64>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(short, long)]
    private: bool,
    /// A comment to store in the torrent.
    #[arg(short, long)]
    comment: Option<String>,
    /// The torrent's name [default: the file or directory name].
    #[arg(short, long)]
    name: Option<String>,
    /// The "created by" string; empty to leave it out.
    #[arg(long, value_name = "TEXT", default_value = concat!("bitshoal/", env!("CARGO_PKG_VERSION")))]
    created_by: String,
    /// Leave out the creation date (the same files then always give the same torrent).
    #[arg(long)]
    no_date: bool,
    /// Hashing threads [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
    /// Overwrite the output file if it exists.
    #[arg(short, long)]
    force: bool,
}

/// Runs `bitshoal create`.
pub(crate) fn run(args: CreateArgs) -> CliResult {
    let version = if args.v1 {
        Version::V1
    } else if args.v2 {
        Version::V2
    } else {
        Version::Hybrid
    };
    let creation_date = if args.no_date {
        None
    } else {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(i64::try_from(secs)?)
    };
    let options = CreateOptions {
        version,
        piece_length: args.piece_length,
        name: args.name,
        trackers: args
            .trackers
            .iter()
            .map(|tier| {
                tier.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect(),
        web_seeds: args.web_seeds,
        private: args.private,
        comment: args.comment,
        created_by: (!args.created_by.is_empty()).then_some(args.created_by),
        creation_date,
        threads: args.threads,
    };

    let plan = plan_for_path(&args.path, &options)?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", plan.spec().name)));
    // Open the output before hashing, so a bad path fails at once, not after an hour.
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(args.force)
        .create_new(!args.force)
        .open(&output)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists (use --force to overwrite)", output.display())
            } else {
                format!("{}: {e}", output.display())
            }
        })?;

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(plan.payload_size())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid"),
    );
    let created = hash_plan(&plan, &args.path, options.threads, |done, _| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            drop(out);
            // Do not leave an empty file behind that would block the next try.
            let _ = std::fs::remove_file(&output);
            return Err(e.into());
        }
    };
    out.write_all(&created.bytes)
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("{}: {e}", output.display()))?;

    println!(
        "{}: {} file(s), {} bytes, piece length {}",
        output.display(),
        plan.files().len(),
        plan.payload_size(),
        plan.piece_length()
    );
    if let Some(h) = created.info_hashes.v1() {
        println!("info-hash v1: {h}");
    }
    if let Some(h) = created.info_hashes.v2() {
        println!("info-hash v2: {h}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::options::parse_size;

    #[test]
    fn sizes() {
        for (text, want) in [
            ("262144", 262_144),
            ("256KiB", 262_144),
            ("256k", 262_144),
            ("1MiB", 1 << 20),
            ("2 mib", 2 << 20),
            ("1GiB", 1 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in ["", "MiB", "12XB", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
