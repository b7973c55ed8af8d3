//! `scale peers`: many simultaneous peer connections to one runtime-mio seed over 127.0.0.1.
//!
//! The seed is this binary started again as a child (`scale __child seed TORRENT DIR COUNT`):
//! a `bitshoal_mio::client::Client` seeding one payload on tmpfs, with its connection limits
//! and unchoke slots raised to the peer count. The fake peers are driven from this process on
//! one `mio` poll: each connects, sends its handshake (BEP 3, no extension bits) and waits for
//! the seed's handshake and bitfield. With every connection established and idle, the seed's
//! resident memory is read again: the growth over the seed with no connection, divided by the
//! count, is the memory per idle connection. Then every peer sends `interested` and, once
//! unchoked, keeps `pipeline` block requests (16 KiB, random pieces) in flight until
//! `--total` bytes have arrived across all connections; the seed's CPU time (user + system,
//! `/proc/<pid>/stat`) over that transfer, per GiB moved, and its peak memory are reported.

use std::io::BufRead;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bitshoal_core::id::PeerId;
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::rng::Rng;
use bitshoal_core::wire::{
    encode_requests, BlockRequest, Framer, Handshake, Message, Reserved, WireLimits,
};
use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::payload::{self, PIECE_LENGTH};
use crate::stats::{self, Mem};

/// The block size requested (BEP 3's de-facto 16 KiB).
const BLOCK: u32 = 16 * 1024;

/// How long the whole benchmark may take before it gives up.
const LIMIT: Duration = Duration::from_secs(600);

/// What the run is asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) count: usize,
    pub(crate) size: u64,
    pub(crate) total: u64,
    pub(crate) pipeline: u32,
    pub(crate) dir: std::path::PathBuf,
}

/// One fake peer.
struct Peer {
    sock: TcpStream,
    connected: bool,
    /// Bytes waiting to be written.
    out: BytesMut,
    inbuf: BytesMut,
    framer: Framer,
    /// The seed's handshake arrived.
    shaken: bool,
    /// The seed's bitfield (or have-all) arrived.
    established: bool,
    unchoked: bool,
    in_flight: u32,
    closed: bool,
}

/// The driver's view of all peers.
struct Swarm {
    poll: Poll,
    peers: Vec<Peer>,
    handshake: [u8; 68],
    pieces: u32,
    pipeline: u32,
    /// Whether peers request blocks (phase two).
    requesting: bool,
    received: u64,
    target: u64,
    rng: Rng,
}

impl Swarm {
    fn connect(count: usize, seed: SocketAddr, meta: &Metainfo, pipeline: u32) -> io::Result<Self> {
        let poll = Poll::new()?;
        let hashes = meta.info().hashes();
        let mut rng = Rng::from_seed(0x9ee2);
        let mut handshake = [0u8; 68];
        let mut peers = Vec::with_capacity(count);
        for i in 0..count {
            let mut sock = TcpStream::connect(seed)?;
            poll.registry().register(
                &mut sock,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let mut random = [0u8; 12];
            rng.fill(&mut random);
            let mut out = BytesMut::with_capacity(68);
            Handshake::new(
                Reserved::NONE,
                &hashes,
                PeerId::generate(b"-SC0001-", random),
            )
            .encode(&mut out);
            handshake.copy_from_slice(&out);
            peers.push(Peer {
                sock,
                connected: false,
                out,
                inbuf: BytesMut::with_capacity(64 * 1024),
                framer: Framer::new(WireLimits::DEFAULT),
                shaken: false,
                established: false,
                unchoked: false,
                in_flight: 0,
                closed: false,
            });
        }
        let pieces = meta.info().layout().piece_count();
        Ok(Self {
            poll,
            peers,
            handshake,
            pieces,
            pipeline,
            requesting: false,
            received: 0,
            target: 0,
            rng,
        })
    }

    fn established(&self) -> usize {
        self.peers.iter().filter(|p| p.established).count()
    }

    fn closed(&self) -> usize {
        self.peers.iter().filter(|p| p.closed).count()
    }

    /// Polls once and handles every ready peer.
    fn turn(&mut self, events: &mut Events, wait: Duration) -> io::Result<()> {
        self.poll.poll(events, Some(wait))?;
        let ready: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        for i in ready {
            self.service(i);
        }
        Ok(())
    }

    /// Starts phase two: every established peer says it is interested.
    fn start_requesting(&mut self, target: u64) {
        self.requesting = true;
        self.target = target;
        for i in 0..self.peers.len() {
            if self.peers[i].established && !self.peers[i].closed {
                let _no_body = Message::Interested.encode(&mut self.peers[i].out);
                self.fill(i);
                self.flush(i);
            }
        }
    }

    fn service(&mut self, i: usize) {
        if self.peers[i].closed {
            return;
        }
        self.peers[i].connected = true;
        if self.read(i).is_err() {
            self.peers[i].closed = true;
            return;
        }
        self.fill(i);
        self.flush(i);
    }

    fn read(&mut self, i: usize) -> io::Result<()> {
        loop {
            let p = &mut self.peers[i];
            p.inbuf.reserve(64 * 1024);
            // Read into initialised bytes (zeroing costs the driver, not the seed).
            let start = p.inbuf.len();
            p.inbuf.resize(start + 64 * 1024, 0);
            match p.sock.read(&mut p.inbuf[start..]) {
                Ok(0) => {
                    p.inbuf.truncate(start);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => {
                    p.inbuf.truncate(start + n);
                    self.parse(i)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    p.inbuf.truncate(start);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => p.inbuf.truncate(start),
                Err(e) => return Err(e),
            }
        }
    }

    fn parse(&mut self, i: usize) -> io::Result<()> {
        let p = &mut self.peers[i];
        if !p.shaken {
            if p.inbuf.len() < Handshake::LEN {
                return Ok(());
            }
            if p.inbuf[..28] != self.handshake[..28] && p.inbuf[..20] != self.handshake[..20] {
                return Err(io::Error::other("bad handshake"));
            }
            let _ = p.inbuf.split_to(Handshake::LEN);
            p.shaken = true;
        }
        loop {
            let p = &mut self.peers[i];
            let msg = p.framer.next(&mut p.inbuf).map_err(io::Error::other)?;
            let Some(msg) = msg else { return Ok(()) };
            match msg {
                Message::Bitfield(_) | Message::HaveAll => p.established = true,
                Message::Unchoke => p.unchoked = true,
                Message::Choke => {
                    p.unchoked = false;
                    p.in_flight = 0;
                }
                Message::Piece { data, .. } => {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    self.received += data.len() as u64;
                }
                _ => {}
            }
        }
    }

    /// Keeps `pipeline` requests in flight on peer `i` while more bytes are wanted.
    fn fill(&mut self, i: usize) {
        let want = self.requesting && self.received < self.target;
        let p = &mut self.peers[i];
        if !want || !p.unchoked || p.closed {
            return;
        }
        let blocks_per_piece = (PIECE_LENGTH as u32) / BLOCK;
        let n = self.pipeline.saturating_sub(p.in_flight);
        let rng = &mut self.rng;
        let pieces = self.pieces;
        encode_requests(
            (0..n).map(|_| BlockRequest {
                index: rng.below(u64::from(pieces)) as u32,
                begin: rng.below(u64::from(blocks_per_piece)) as u32 * BLOCK,
                length: BLOCK,
            }),
            &mut p.out,
        );
        p.in_flight += n;
    }

    fn flush(&mut self, i: usize) {
        let p = &mut self.peers[i];
        if !p.connected {
            return;
        }
        while !p.out.is_empty() {
            match p.sock.write(&p.out) {
                Ok(n) => {
                    let _ = p.out.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    p.closed = true;
                    return;
                }
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub(crate) fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid pointer to a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid pointer to a local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// Runs the benchmark and prints its table.
pub(crate) fn run(opts: &Options) -> io::Result<()> {
    let nofile = raise_nofile()?;
    if nofile < opts.count as u64 + 64 {
        return Err(io::Error::other(format!(
            "the open-file limit is {nofile}; {} connections need more (ulimit -Hn)",
            opts.count
        )));
    }
    if opts.size % PIECE_LENGTH != 0 {
        return Err(io::Error::other("--size must be a multiple of 1 MiB"));
    }
    let seed_dir = opts.dir.join("seed");
    let made = payload::make(
        &opts.dir,
        &seed_dir,
        "scale-peers.bin",
        opts.size,
        "http://127.0.0.1:9/announce",
    )?;
    let meta = Metainfo::from_bytes(&std::fs::read(&made.torrent)?)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.arg("__child")
        .arg("seed")
        .arg(&made.torrent)
        .arg(&seed_dir)
        .arg(opts.count.to_string());
    let mut seed = Seed::start(cmd)?;
    let line = seed.wait_line("READY ")?;
    let port: u16 = line["READY ".len()..]
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let pid = seed.pid();
    std::thread::sleep(Duration::from_millis(400));
    let idle = Mem::of(pid);
    let idle_heap = seed_heap(&opts.dir);
    let load_before = stats::loadavg();

    let deadline = Instant::now() + LIMIT;
    let started = Instant::now();
    let mut swarm = Swarm::connect(opts.count, addr, &meta, opts.pipeline)?;
    let mut events = Events::with_capacity(1024);
    while swarm.established() + swarm.closed() < opts.count {
        if Instant::now() > deadline {
            return Err(io::Error::other("connections not established in time"));
        }
        swarm.turn(&mut events, Duration::from_millis(50))?;
    }
    let connect_time = started.elapsed();
    // Let the seed settle (its loop drains, nothing more arrives, it writes its heap size
    // again), then read its memory.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        swarm.turn(&mut events, Duration::from_millis(50))?;
    }
    let connected = Mem::of(pid);
    let connected_heap = seed_heap(&opts.dir);
    let established = swarm.established()
        - swarm
            .peers
            .iter()
            .filter(|p| p.established && p.closed)
            .count();

    let cpu0 = seed.cpu_so_far();
    let t0 = Instant::now();
    swarm.start_requesting(opts.total);
    let mut peak = connected;
    let mut peak_heap = connected_heap;
    let mut last_sample = Instant::now();
    while swarm.received < opts.total {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "transfer did not finish in time ({} of {} bytes)",
                swarm.received, opts.total
            )));
        }
        if swarm.closed() == opts.count {
            return Err(io::Error::other("every connection closed"));
        }
        swarm.turn(&mut events, Duration::from_millis(50))?;
        if last_sample.elapsed() > Duration::from_millis(20) {
            let m = Mem::of(pid);
            peak.rss = peak.rss.max(m.rss);
            peak.anon = peak.anon.max(m.anon);
            let h = seed_heap(&opts.dir);
            peak_heap = (peak_heap.0.max(h.0), peak_heap.1.max(h.1));
            last_sample = Instant::now();
        }
    }
    let wall = t0.elapsed();
    let cpu = seed.cpu_so_far().saturating_sub(cpu0);
    let unchoked = swarm.peers.iter().filter(|p| p.unchoked).count();
    let closed = swarm.closed();
    let hwm = stats::status_field(&pid.to_string(), "VmHWM:").unwrap_or(0);
    drop(swarm);
    drop(seed);

    let gib = swarm_bytes_gib(opts.total);
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / opts.count as f64 / 1024.0;
    println!(
        "load average before: {load_before}; after: {}",
        stats::loadavg()
    );
    println!();
    println!("| connections | established | connect s | seed RSS idle MiB | RSS with conns MiB | KiB/conn (RSS) | KiB/conn (anon) | heap B/conn | heap blocks/conn | peak KiB/conn (anon, transfer) | peak heap KiB/conn (transfer) | peak RSS MiB (VmHWM) | moved MiB | MiB/s | unchoked | seed CPU s | CPU s/GiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {} | {:.2} | {:.2} |",
        opts.count,
        established,
        connect_time.as_secs_f64(),
        idle.rss as f64 / 1048576.0,
        connected.rss as f64 / 1048576.0,
        per(connected.rss, idle.rss),
        per(connected.anon, idle.anon),
        per(connected_heap.0, idle_heap.0) * 1024.0,
        connected_heap.1.saturating_sub(idle_heap.1) as f64 / opts.count as f64,
        per(peak.anon, idle.anon),
        per(peak_heap.0, idle_heap.0),
        hwm as f64 / 1048576.0,
        opts.total >> 20,
        (opts.total as f64 / 1048576.0) / wall.as_secs_f64(),
        unchoked,
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / gib,
    );
    if closed > 0 {
        println!("({closed} connections were closed by the seed)");
    }
    if let Err(e) = std::fs::remove_dir_all(&opts.dir) {
        eprintln!("scale: removing {}: {e}", opts.dir.display());
    }
    Ok(())
}

fn swarm_bytes_gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The seed child: prints `READY <port>` and serves until killed.
pub(crate) fn seed_child(torrent: &Path, data: &Path, count: usize) -> io::Result<()> {
    use bitshoal_core::bitfield::Bitfield;
    use bitshoal_core::session::Config;
    use bitshoal_mio::client::{Client, ClientConfig};
    use std::sync::Arc;

    raise_nofile()?;
    let meta = Metainfo::from_bytes(&std::fs::read(torrent)?)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let info = Arc::new(meta.into_info());
    let pieces = info.layout().piece_count();
    let mut client = Client::new(ClientConfig {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        session: Config {
            max_connections: count + 16,
            max_peers_per_torrent: count + 16,
            unchoke_slots: count,
            ..ClientConfig::default().session
        },
        ..ClientConfig::default()
    })?;
    client
        .add_torrent(info, data.to_path_buf(), Some(Bitfield::full(pieces)))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let port = client.local_addr().map_or(0, |a| a.port());
    let mut stdout = io::stdout();
    writeln!(stdout, "READY {port}")?;
    stdout.flush()?;
    // The heap this process holds (the counting allocator), for the parent to read.
    let heap_file = data.with_file_name("seed-heap");
    let mut written = Instant::now();
    loop {
        client.turn(Duration::from_millis(100))?;
        if written.elapsed() >= Duration::from_millis(100) {
            let line = format!(
                "{} {}\n",
                crate::alloc::live_bytes(),
                crate::alloc::live_blocks()
            );
            std::fs::write(&heap_file, line)?;
            written = Instant::now();
        }
    }
}

/// The seed's heap (bytes, blocks) as it last wrote it.
fn seed_heap(dir: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(dir.join("seed-heap")).unwrap_or_default();
    let mut it = text.split_whitespace().map(|w| w.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The seed child process, killed (by its pid) and reaped when dropped.
struct Seed {
    child: Child,
    stdout: io::BufReader<std::process::ChildStdout>,
}

impl Seed {
    fn start(mut cmd: Command) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                // The seed dies with the benchmark, even if the benchmark is killed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .map(io::BufReader::new)
            .ok_or_else(|| io::Error::other("seed: no stdout"))?;
        Ok(Self { child, stdout })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads stdout lines until one starts with `prefix`.
    fn wait_line(&mut self, prefix: &str) -> io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(io::Error::other(format!("seed ended before {prefix:?}")));
            }
            if line.starts_with(prefix) {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    /// User plus system CPU the seed used so far, from `/proc/<pid>/stat` (clock ticks).
    fn cpu_so_far(&self) -> Duration {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return Duration::ZERO;
        };
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 12th and 13th after the state.
        let Some(close) = stat.rfind(')') else {
            return Duration::ZERO;
        };
        let fields: Vec<u64> = stat[close + 2..]
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_micros(ticks * 1_000_000 / hz)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        // Our own child, not yet reaped: its pid cannot have been reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
