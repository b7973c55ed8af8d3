//! The bitshoal side of the benchmark: this same binary, started again as a child process
//! (`e2e __child ...`), so its CPU time and memory are measured exactly like any other client's.
//!
//! ```text
//! e2e __child download <mio|std> TORRENT OUT_DIR PEER   exits 0 once verified and synced
//! e2e __child seed     <mio|std> TORRENT DATA_DIR        prints "READY <port>", runs until killed
//! ```
//!
//! `mio` is the reference client (`bitshoal_mio::client::Client`, what the `bitshoal` binary
//! runs); `std` is the blocking runtime (`bitshoal_std::blocking::BlockingClient`). Both use the
//! default [`ClientConfig`], listen on 127.0.0.1 and contact only the peer given.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::{ConnId, TorrentId};
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::session::{AddError, ConnectError, Event};
use bitshoal_mio::client::Client;
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::client::{ClientConfig, ClientEvent};

/// The longest a child download may take before it gives up.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(600);

/// How long after losing the seed a child download dials it again.
const REDIAL_AFTER: Duration = Duration::from_millis(100);

/// A client on either runtime.
enum AnyClient {
    Mio(Box<Client>),
    Std(Box<BlockingClient>),
}

impl AnyClient {
    fn new(runtime: &str) -> io::Result<Self> {
        let mut config = ClientConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..ClientConfig::default()
        };
        // Experiment knobs (profiling only; the benchmark never sets them).
        let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(mib) = knob("E2E_MAX_DISK_WRITE_MIB") {
            config.session.max_disk_write_bytes = mib << 20;
        }
        if let Some(n) = knob("E2E_DISK_THREADS") {
            config.disk_threads = n as usize;
        }
        if let Some(n) = knob("E2E_HASH_THREADS") {
            config.hash_threads = n as usize;
        }
        match runtime {
            "mio" => Ok(Self::Mio(Box::new(Client::new(config)?))),
            "std" => Ok(Self::Std(Box::new(BlockingClient::new(config)?))),
            other => Err(io::Error::other(format!("unknown runtime {other:?}"))),
        }
    }

    fn add_torrent(
        &mut self,
        (info, layers): Loaded,
        dir: PathBuf,
        have: Option<Bitfield>,
    ) -> Result<TorrentId, AddError> {
        // A v2 or hybrid torrent's piece layers come with it (BEP 52), as from a .torrent file.
        let add = bitshoal_std::client::add_trusting(info, have).with_piece_layers(layers);
        match self {
            Self::Mio(c) => c.add_torrent_with(add, dir),
            Self::Std(c) => c.add_torrent_with(add, dir),
        }
    }

    fn connect(&mut self, torrent: TorrentId, addr: SocketAddr) -> Result<ConnId, ConnectError> {
        match self {
            Self::Mio(c) => c.connect(torrent, addr),
            Self::Std(c) => c.connect(torrent, addr),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Mio(c) => c.local_addr(),
            Self::Std(c) => c.local_addr(),
        }
    }

    fn turn(&mut self, max_wait: Duration) -> io::Result<Vec<ClientEvent>> {
        match self {
            Self::Mio(c) => c.turn(max_wait),
            Self::Std(c) => c.turn(max_wait),
        }
    }
}

/// Runs the child mode named by `args` (the arguments after `__child`).
pub(crate) fn run(args: &[String]) -> ExitCode {
    let result = match args {
        [mode, runtime, torrent, out, peer] if mode == "download" => {
            download(runtime, torrent, out, peer)
        }
        [mode, runtime, torrent, data] if mode == "seed" => seed(runtime, torrent, data),
        _ => Err(io::Error::other(format!("bad child arguments {args:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A torrent's info dictionary and its piece layers by file (empty for v1).
type Loaded = (Arc<Info>, Vec<Option<bytes::Bytes>>);

fn load(torrent: &str) -> io::Result<Loaded> {
    let bytes = std::fs::read(torrent)?;
    let meta = Metainfo::from_bytes(&bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let layers = meta.piece_layers().to_vec();
    Ok((Arc::new(meta.into_info()), layers))
}

fn download(runtime: &str, torrent: &str, out: &str, peer: &str) -> io::Result<()> {
    let info = load(torrent)?;
    let peer: SocketAddr = peer.parse().map_err(io::Error::other)?;
    let mut client = AnyClient::new(runtime)?;
    let id = client
        .add_torrent(info, PathBuf::from(out), None)
        .map_err(|e| io::Error::other(e.to_string()))?;
    client
        .connect(id, peer)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let deadline = Instant::now() + DOWNLOAD_LIMIT;
    let debug = std::env::var_os("E2E_DEBUG").is_some();
    // A seed that has only just started may drop the first connection (libtorrent does, right
    // after its listen socket opens): dial again, as other clients do.
    let mut redial: Option<Instant> = None;
    while Instant::now() < deadline {
        for event in client.turn(Duration::from_millis(50))? {
            if debug {
                eprintln!("e2e child: {event:?}");
            }
            match event {
                ClientEvent::Synced { result, .. } => {
                    return result.map_err(|e| io::Error::other(e.to_string()));
                }
                ClientEvent::Session(Event::PeerDisconnected { .. }) => {
                    redial = Some(Instant::now() + REDIAL_AFTER);
                }
                _ => {}
            }
        }
        if redial.is_some_and(|at| Instant::now() >= at) {
            redial = None;
            client
                .connect(id, peer)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
    }
    Err(io::Error::other("download did not finish in time"))
}

fn seed(runtime: &str, torrent: &str, data: &str) -> io::Result<()> {
    let info = load(torrent)?;
    let pieces = info.0.layout().piece_count();
    let mut client = AnyClient::new(runtime)?;
    client
        .add_torrent(info, PathBuf::from(data), Some(Bitfield::full(pieces)))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let port = client.local_addr().map_or(0, |a| a.port());
    let mut stdout = io::stdout();
    writeln!(stdout, "READY {port}")?;
    stdout.flush()?;
    loop {
        client.turn(Duration::from_secs(1))?;
    }
}
