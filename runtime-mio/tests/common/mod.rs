//! Helpers shared by the transfer tests: a payload with its torrent, a seeding client on a
//! thread of its own, and byte-for-byte tree comparison. Everything stays on 127.0.0.1.

#![allow(dead_code, unreachable_pub)] // each test file uses a different part

pub mod cli;

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{AddTorrent, Config};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent, TorrentClient};
use bitshoal_std::blocking::BlockingClient;
use bitshoal_std::create::{create_torrent, CreateOptions};
use tempfile::TempDir;

/// A folder of files, its torrent, and a scratch directory around them.
pub struct Payload {
    /// The scratch directory: `data/<name>/...` is the content, `pay.torrent` the torrent.
    pub dir: TempDir,
    /// The torrent's name (the content folder's name).
    pub name: String,
    /// The `.torrent` file.
    pub torrent_path: PathBuf,
    /// Its info dictionary.
    pub info: Arc<Info>,
    /// Its trackers.
    pub trackers: Vec<Vec<String>>,
}

impl Payload {
    /// A few files of pseudo-random bytes (`seed` picks them) announced to `trackers`.
    pub fn new(seed: u64, trackers: Vec<Vec<String>>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let name = "pay".to_string();
        let root = dir.path().join("data").join(&name);
        fs::create_dir_all(root.join("sub")).unwrap();
        let mut rng = Rng::from_seed(seed);
        for (rel, len) in [
            ("a.bin", 700_001usize),
            ("sub/b.txt", 12_345),
            ("c.bin", 65_536),
        ] {
            let mut bytes = vec![0u8; len];
            rng.fill(&mut bytes);
            fs::write(root.join(rel), bytes).unwrap();
        }
        let options = CreateOptions {
            version: Version::Hybrid,
            piece_length: Some(32 * 1024),
            trackers: trackers.clone(),
            ..CreateOptions::default()
        };
        let created = create_torrent(&root, &options, |_, _| {}).expect("create the torrent");
        let torrent_path = dir.path().join("pay.torrent");
        fs::write(&torrent_path, &created.bytes).unwrap();
        let info = Arc::new(Metainfo::from_bytes(&created.bytes).unwrap().into_info());
        Self {
            dir,
            name,
            torrent_path,
            info,
            trackers,
        }
    }

    /// The directory holding the content folder (what `seed --data` takes).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Checks that `download_dir/<name>` holds exactly the payload.
    pub fn assert_copied_to(&self, download_dir: &Path) {
        compare_trees(
            &self.data_dir().join(&self.name),
            &download_dir.join(&self.name),
        );
    }
}

/// Panics unless `copy` holds the files of `original`, byte for byte.
pub fn compare_trees(original: &Path, copy: &Path) {
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let there = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            compare_trees(&entry.path(), &there);
        } else {
            let want = fs::read(entry.path()).unwrap();
            let got = fs::read(&there).unwrap_or_else(|e| panic!("{}: {e}", there.display()));
            assert!(want == got, "{} differs from the original", there.display());
        }
    }
}

/// A client (on the runtime `C`) listening on `listen`, with session seed `rng_seed`.
pub fn client_on<C: TorrentClient>(rng_seed: u64, listen: SocketAddr) -> io::Result<C> {
    C::new(ClientConfig {
        session: Config {
            rng_seed,
            ..Config::default()
        },
        listen: Some(listen),
        ..ClientConfig::default()
    })
}

/// A client (on the runtime `C`) on 127.0.0.1 with a random port.
pub fn loopback<C: TorrentClient>(rng_seed: u64) -> io::Result<C> {
    client_on(rng_seed, "127.0.0.1:0".parse().unwrap())
}

/// A client seeding a payload on a thread of its own until dropped; every event it sees is
/// forwarded to [`SeedThread::events`].
pub struct SeedThread {
    /// The seed's listening address.
    pub addr: SocketAddr,
    /// Events the seed reported.
    pub events: mpsc::Receiver<ClientEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SeedThread {
    /// Seeds `payload` (announcing to its trackers) on the blocking runtime if `blocking`,
    /// on mio otherwise.
    pub fn start(payload: &Payload, blocking: bool, rng_seed: u64) -> Self {
        if blocking {
            Self::start_on::<BlockingClient>(payload, rng_seed)
        } else {
            Self::start_on::<Client>(payload, rng_seed)
        }
    }

    /// Seeds `payload` (announcing to its trackers) on the runtime `C`.
    pub fn start_on<C: TorrentClient + Send + 'static>(payload: &Payload, rng_seed: u64) -> Self {
        let mut client: C = loopback(rng_seed).expect("start the seed");
        let pieces = payload.info.layout().piece_count();
        let add = AddTorrent::new(Arc::clone(&payload.info))
            .with_have(Bitfield::full(pieces))
            .with_trackers(payload.trackers.clone());
        client
            .add_torrent_with(add, payload.data_dir())
            .expect("the torrent is accepted");
        let addr = client.local_addr().expect("listening");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let (tx, events) = mpsc::channel();
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                for event in client
                    .turn(Duration::from_millis(50))
                    .expect("the seed turns")
                {
                    let _ = tx.send(event);
                }
            }
        });
        Self {
            addr,
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits (at most `max`) for an event `pick` accepts.
    pub fn wait_for(
        &self,
        max: Duration,
        mut pick: impl FnMut(&ClientEvent) -> bool,
    ) -> ClientEvent {
        let deadline = std::time::Instant::now() + max;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if pick(&event) => return event,
                Ok(_) => {}
                Err(e) => panic!("the seed did not report the event in {max:?}: {e}"),
            }
        }
    }
}

impl Drop for SeedThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
