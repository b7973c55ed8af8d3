//! End-to-end loopback benchmark: bitshoal side by side with real clients, in one run.
//!
//! ```text
//! cargo run --release -p bitshoal-benches --bin e2e -- --size 1GiB
//! ```
//!
//! It writes a single-file payload of `--size` bytes (1 MiB pieces) under `--dir` (tmpfs by
//! default), seeds it with a tuned libtorrent seed (`/usr/bin/python3`, `scripts/lt_bench.py`)
//! on 127.0.0.1, and in interleaved rounds (A B C, A B C, ...) downloads it with each client of
//! `--clients`: bitshoal on runtime-mio, bitshoal on runtime-std, libtorrent (tuned leecher),
//! aria2. Every client is a child process reaped with `wait4`, so its CPU time and peak RSS are
//! its own. In the same rounds: bitshoal seeding to a libtorrent leecher (against libtorrent
//! seeding to libtorrent), bitshoal downloading from bitshoal, and a small download
//! (`--startup-size`, start-up cost). Before the rounds, one core's SHA-1 throughput with the
//! `sha1` crate. The result is printed as markdown tables with ratios against the best other
//! client. Only loopback is used; every child is killed by pid when the run ends.
//!
//! See `benches/README.md` for what each column means.

mod child;
mod payload;
mod proc;
mod report;
mod tracker;

use std::fs;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use clap::Parser;
use sha1::{Digest, Sha1};

use payload::Payload;
use proc::Proc;
use report::{Row, Sample};
use tracker::Tracker;

const PYTHON: &str = "/usr/bin/python3";

/// End-to-end loopback benchmark of bitshoal against libtorrent and aria2.
#[derive(Debug, Parser)]
#[command(name = "e2e")]
struct Args {
    /// Payload size of the main transfers (KiB, MiB or GiB suffix).
    #[arg(long, default_value = "1GiB", value_parser = payload::parse_size)]
    size: u64,
    /// Payload size of the start-up-cost download.
    #[arg(long, default_value = "64MiB", value_parser = payload::parse_size)]
    startup_size: u64,
    /// Rounds; each client runs once per round, interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Downloading clients, comma-separated: mio, std, libtorrent, aria2.
    #[arg(
        long,
        default_value = "mio,std,libtorrent,aria2",
        value_delimiter = ','
    )]
    clients: Vec<String>,
    /// Parts to run, comma-separated: download, reverse, b2b, startup.
    #[arg(
        long,
        default_value = "download,reverse,b2b,startup",
        value_delimiter = ','
    )]
    parts: Vec<String>,
    /// Working directory (payloads, downloads); removed at the end unless --keep.
    #[arg(long, default_value = "/dev/shm/bitshoal-e2e")]
    dir: PathBuf,
    /// Keep the working directory.
    #[arg(long)]
    keep: bool,
    /// BitTorrent v2-only torrents (BEP 52): libtorrent seeds them; aria2 (v1 only) is left out.
    #[arg(long, conflicts_with = "hybrid")]
    v2: bool,
    /// Hybrid v1+v2 torrents (BEP 52); aria2 1.36 misreads their info-hash and is left out.
    #[arg(long)]
    hybrid: bool,
}

impl Args {
    /// The torrent kind the flags ask for.
    fn version(&self) -> bitshoal_core::create::Version {
        use bitshoal_core::create::Version;
        match (self.v2, self.hybrid) {
            (true, _) => Version::V2,
            (_, true) => Version::Hybrid,
            _ => Version::V1,
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__child") {
        return child::run(&argv[2..]);
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A downloading client of the main comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Mio,
    Std,
    Libtorrent,
    Aria2,
}

impl Client {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "mio" => Ok(Self::Mio),
            "std" => Ok(Self::Std),
            "libtorrent" | "lt" => Ok(Self::Libtorrent),
            "aria2" | "aria2c" => Ok(Self::Aria2),
            other => Err(format!(
                "unknown client {other:?} (mio, std, libtorrent, aria2; rqbit is not wired up)"
            )),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Mio => "bitshoal (runtime-mio)",
            Self::Std => "bitshoal (runtime-std)",
            Self::Libtorrent => "libtorrent 2.0 (tuned)",
            Self::Aria2 => "aria2",
        }
    }

    fn ours(self) -> bool {
        matches!(self, Self::Mio | Self::Std)
    }
}

/// Everything a round needs.
struct Bench {
    dir: PathBuf,
    tracker: Tracker,
    script: PathBuf,
    exe: PathBuf,
}

impl Bench {
    /// The command that downloads `payload` from `seed` into `out` with `client`.
    fn download_command(
        &self,
        client: Client,
        payload: &Payload,
        out: &Path,
        seed: SocketAddr,
    ) -> Command {
        let torrent = payload.torrent.as_os_str();
        match client {
            Client::Mio | Client::Std => {
                let mut c = Command::new(&self.exe);
                c.arg("__child")
                    .arg("download")
                    .arg(if client == Client::Mio { "mio" } else { "std" })
                    .arg(torrent)
                    .arg(out)
                    .arg(seed.to_string());
                c
            }
            Client::Libtorrent => {
                let mut c = Command::new(PYTHON);
                c.arg(&self.script)
                    .arg("leech")
                    .arg(out)
                    .arg(torrent)
                    .arg(seed.to_string());
                c
            }
            Client::Aria2 => {
                let mut c = Command::new("aria2c");
                let port = free_port();
                c.arg(format!("--dir={}", out.display()))
                    .args([
                        "--seed-time=0",
                        "--enable-dht=false",
                        "--enable-dht6=false",
                        "--bt-enable-lpd=false",
                        "--enable-peer-exchange=false",
                        "--file-allocation=none",
                        "--summary-interval=0",
                        "--console-log-level=error",
                        "--quiet=true",
                        "--auto-save-interval=0",
                        "--bt-save-metadata=false",
                        "--bt-tracker-connect-timeout=5",
                        "--bt-tracker-timeout=5",
                    ])
                    .arg(format!("--listen-port={port}"))
                    .arg(torrent)
                    .stdout(Stdio::null());
                c
            }
        }
    }

    /// Downloads `payload` from `seed` with `client` once, checks the bytes, and returns the
    /// sample (with the seed's CPU over the transfer).
    fn download_once(
        &self,
        client: Client,
        payload: &Payload,
        seed: &Proc,
        seed_addr: SocketAddr,
    ) -> io::Result<Sample> {
        let out = self.dir.join("download");
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out)?;
        if client == Client::Aria2 {
            if let SocketAddr::V4(v4) = seed_addr {
                self.tracker.set_peers(vec![v4]);
            }
        }
        let seed_cpu = seed.cpu_so_far();
        let command = self.download_command(client, payload, &out, seed_addr);
        let result = Proc::start(client.label(), command).and_then(Proc::wait);
        let seed_cpu = seed.cpu_so_far().saturating_sub(seed_cpu);
        self.tracker.set_peers(Vec::new());
        let usage = result?;
        let got = out.join(&payload.name);
        let same = payload::same_content(&payload.file, &got)?;
        let _ = fs::remove_dir_all(&out);
        if !same {
            return Err(io::Error::other("downloaded bytes differ from the payload"));
        }
        Ok(Sample::new(&usage, payload.size, seed_cpu.as_secs_f64()))
    }
}

/// A port nobody listens on right now (for aria2's listen port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

fn ready_port(line: &str) -> io::Result<u16> {
    line.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad READY line {line:?}")))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new([127, 0, 0, 1].into(), port))
}

fn run(args: &Args) -> io::Result<()> {
    let clients: Vec<Client> = args
        .clients
        .iter()
        .map(|c| Client::parse(c.trim()))
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    let part = |p: &str| args.parts.iter().any(|x| x.trim() == p);
    let clients: Vec<Client> = clients
        .into_iter()
        .filter(|c| match c {
            Client::Aria2 if !on_path("aria2c") => {
                eprintln!("e2e: SKIPPING aria2: aria2c not found (apt-get install -y aria2)");
                false
            }
            Client::Aria2 if args.v2 || args.hybrid => {
                eprintln!("e2e: SKIPPING aria2: it cannot download v2 or hybrid torrents");
                false
            }
            _ => true,
        })
        .collect();
    if !Path::new(PYTHON).exists() {
        return Err(io::Error::other(
            "/usr/bin/python3 (with libtorrent) is needed for the seed",
        ));
    }
    if on_path("rqbit") {
        eprintln!("e2e: rqbit is installed but not wired up in this benchmark; not measured");
    }

    println!("## bitshoal end-to-end loopback benchmark\n");
    println!(
        "- date: {}",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    println!("- machine: {}", machine());
    println!("- load average at start: {}", load_average());
    println!(
        "- payload: {} MiB single file, {} KiB pieces, on {}; {} rounds, interleaved",
        args.size >> 20,
        payload::PIECE_LENGTH >> 10,
        args.dir.display(),
        args.rounds
    );
    println!("- torrent: {:?}", args.version());

    let _ = fs::remove_dir_all(&args.dir);
    fs::create_dir_all(&args.dir)?;
    let cleanup = Cleanup {
        dir: args.dir.clone(),
        keep: args.keep,
    };
    let bench = Bench {
        dir: args.dir.clone(),
        tracker: Tracker::start()?,
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lt_bench.py"),
        exe: std::env::current_exe()?,
    };
    let seed_dir = args.dir.join("seed");
    let url = bench.tracker.url();
    let big = payload::make_version(
        &args.dir,
        &seed_dir,
        &format!("payload-{}MiB.bin", args.size >> 20),
        args.size,
        &url,
        args.version(),
    )?;
    let small = if part("startup") {
        Some(payload::make_version(
            &args.dir,
            &seed_dir,
            &format!("payload-{}MiB.bin", args.startup_size >> 20),
            args.startup_size,
            &url,
            args.version(),
        )?)
    } else {
        None
    };

    let sha1 = sha1_rate();
    println!("- SHA-1, one core, `sha1` crate, 1 MiB pieces: {sha1:.0} MiB/s");
    if args.version() != bitshoal_core::create::Version::V1 {
        println!(
            "- SHA-256 of 16 KiB blocks (v2 leaves), one core: {:.0} MiB/s",
            sha256_leaves_rate()
        );
    }

    // The tuned libtorrent seed, both payloads.
    let mut lt_seed = {
        let mut c = Command::new(PYTHON);
        c.arg(&bench.script)
            .arg("seed")
            .arg(&seed_dir)
            .arg(&big.torrent);
        if let Some(small) = &small {
            c.arg(&small.torrent);
        }
        Proc::start("libtorrent seed", c)?
    };
    let lt_addr = loopback(ready_port(&lt_seed.wait_line("READY")?)?);
    // The bitshoal seed (runtime-mio), the big payload.
    let mut bs_seed = if part("reverse") || part("b2b") {
        let mut c = Command::new(&bench.exe);
        c.args(["__child", "seed", "mio"])
            .arg(&big.torrent)
            .arg(&seed_dir);
        Some(Proc::start("bitshoal seed", c)?)
    } else {
        None
    };
    let bs_addr = match bs_seed.as_mut() {
        Some(p) => Some(loopback(ready_port(&p.wait_line("READY")?)?)),
        None => None,
    };

    let mut download: Vec<Row> = clients
        .iter()
        .map(|c| Row::new(c.label(), c.ours(), *c == Client::Libtorrent))
        .collect();
    let mut startup: Vec<Row> = clients
        .iter()
        .map(|c| Row::new(c.label(), c.ours(), *c == Client::Libtorrent))
        .collect();
    let mut reverse = vec![
        Row::new("libtorrent seed → libtorrent", false, true),
        Row::new("bitshoal seed (runtime-mio) → libtorrent", true, false),
    ];
    let mut b2b = vec![Row::new(
        "bitshoal seed → bitshoal (runtime-mio)",
        true,
        false,
    )];

    let busy_start = cpu_busy();
    let started = Instant::now();
    for round in 1..=args.rounds {
        eprintln!(
            "e2e: round {round}/{} (load {})",
            args.rounds,
            load_average()
        );
        if part("download") {
            for (i, &client) in clients.iter().enumerate() {
                record(
                    &mut download[i],
                    bench.download_once(client, &big, &lt_seed, lt_addr),
                );
            }
        }
        if part("reverse") {
            if !part("download") || !clients.contains(&Client::Libtorrent) {
                record(
                    &mut reverse[0],
                    bench
                        .download_once(Client::Libtorrent, &big, &lt_seed, lt_addr)
                        .map(seed_view),
                );
            }
            if let (Some(seed), Some(addr)) = (&bs_seed, bs_addr) {
                let sample = bench.download_once(Client::Libtorrent, &big, seed, addr);
                record(&mut reverse[1], sample.map(seed_view));
            }
        }
        if part("b2b") {
            if let (Some(seed), Some(addr)) = (&bs_seed, bs_addr) {
                record(
                    &mut b2b[0],
                    bench.download_once(Client::Mio, &big, seed, addr),
                );
            }
        }
        if let Some(small) = &small {
            for (i, &client) in clients.iter().enumerate() {
                record(
                    &mut startup[i],
                    bench.download_once(client, small, &lt_seed, lt_addr),
                );
            }
        }
    }
    // libtorrent seeding to libtorrent: the libtorrent rounds of the main comparison, seen from
    // the seed.
    if part("reverse") && part("download") {
        if let Some(i) = clients.iter().position(|&c| c == Client::Libtorrent) {
            reverse[0].samples = download[i].samples.iter().map(|s| seed_view(*s)).collect();
            reverse[0].failures = download[i].failures.clone();
        }
    }
    let busy = cpu_busy_since(busy_start);
    let (lt_hwm, lt_anon) = lt_seed.memory_so_far();
    let bs_mem = bs_seed.as_ref().map(Proc::memory_so_far);
    drop(bs_seed.take());
    drop(lt_seed);

    println!(
        "- whole machine busy {:.0} % of {} cores during the {:.0} s of rounds (the benchmark's own processes included); load average at end: {}",
        busy * 100.0,
        cores(),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!(
        "- seeds: libtorrent peak RSS {:.0} MiB, peak anon {:.0} MiB{}\n",
        mib(lt_hwm),
        mib(lt_anon),
        bs_mem.map_or(String::new(), |(h, a)| format!(
            "; bitshoal peak RSS {:.0} MiB, peak anon {:.0} MiB",
            mib(h),
            mib(a)
        ))
    );
    if part("download") {
        println!(
            "{}",
            report::table(
                &format!(
                    "Download {} MiB from a tuned libtorrent seed",
                    args.size >> 20
                ),
                "seed",
                &download
            )
        );
        println!("{}", report::ratios(&download));
    }
    if part("reverse") {
        println!("{}", report::table(&format!("Seeding {} MiB to a libtorrent leecher (the figures are the seed's; MiB/s is the transfer's)", args.size >> 20), "leecher", &reverse));
    }
    if part("b2b") {
        println!(
            "{}",
            report::table(
                &format!(
                    "bitshoal → bitshoal, {} MiB (runtime-mio both sides)",
                    args.size >> 20
                ),
                "seed",
                &b2b
            )
        );
    }
    if small.is_some() {
        println!(
            "{}",
            report::table(
                &format!(
                    "Start-up cost: download {} MiB from the libtorrent seed",
                    args.startup_size >> 20
                ),
                "seed",
                &startup
            )
        );
    }
    drop(cleanup);
    Ok(())
}

/// Turns a download sample into the seed's view: its CPU becomes the main figure, the
/// leecher's the other; the seed's memory is reported once, outside the table.
fn seed_view(s: Sample) -> Sample {
    Sample {
        cpu_per_gib: s.other_cpu_per_gib,
        other_cpu_per_gib: s.cpu_per_gib,
        rss: f64::NAN,
        anon: f64::NAN,
        ..s
    }
}

fn record(row: &mut Row, result: io::Result<Sample>) {
    match result {
        Ok(sample) => {
            eprintln!(
                "e2e:   {}: {:.0} MiB/s, {:.2} CPU s/GiB, {:.1} MiB RSS, {:.1} MiB anon",
                row.client, sample.rate, sample.cpu_per_gib, sample.rss, sample.anon
            );
            row.samples.push(sample);
        }
        Err(e) => {
            eprintln!("e2e:   {}: FAILED: {e}", row.client);
            row.failures.push(e.to_string());
        }
    }
}

/// One core's SHA-1 throughput over 1 MiB pieces, MiB/s.
fn sha1_rate() -> f64 {
    one_core_rate(|piece| Sha1::digest(piece)[0])
}

/// One core's rate of hashing 16 KiB leaves (BEP 52 v2 verification's cost), MiB/s.
fn sha256_leaves_rate() -> f64 {
    one_core_rate(|piece| bitshoal_core::merkle::leaves_of(piece)[0][0])
}

/// MiB/s of `hash` over a 1 MiB piece on this thread: the best of three passes over 256 MiB.
fn one_core_rate(hash: impl Fn(&[u8]) -> u8) -> f64 {
    let piece: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut acc = 0u8;
        for _ in 0..256 {
            acc ^= hash(&piece);
        }
        std::hint::black_box(acc);
        best = best.max(256.0 / start.elapsed().as_secs_f64());
    }
    best
}

/// Removes the working directory when dropped.
struct Cleanup {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let sha = if cpuinfo.contains(" sha_ni") {
        ", SHA-NI"
    } else {
        ""
    };
    let kernel = command_line("uname", &["-r"]);
    format!("{model}, {} cores{sha}, Linux {kernel}", cores())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// (busy, total) jiffies of all CPUs.
fn cpu_busy() -> (u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn cpu_busy_since(start: (u64, u64)) -> f64 {
    let now = cpu_busy();
    let total = now.1.saturating_sub(start.1).max(1);
    now.0.saturating_sub(start.0) as f64 / total as f64
}
