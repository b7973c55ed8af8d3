//! Helpers shared by the interop tests: payload shapes and their torrents, the tracker, tree
//! comparison, a bitshoal client driven until its transfers finish, and launchers for the real
//! clients (each process killed by pid when dropped; see `bitshoal_conformance::interop`).
#![allow(dead_code, unreachable_pub)] // each test binary uses its own subset

pub mod aria2;
pub mod libtorrent;
pub mod transmission;

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_conformance::interop::Opentracker;
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::id::{ConnId, InfoHashes, TorrentId};
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{AddTorrent, CheckMode, Config, Event};
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent};
use bitshoal_std::create::{create_torrent, CreateOptions};

/// The piece length of every test torrent: small, so payloads span many pieces.
pub const PIECE: u64 = 32 * 1024;

/// What files a torrent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One file whose length is not a multiple of the piece length.
    Single,
    /// Nested folders, a 0-byte file, files smaller than a piece, a few pieces of data.
    Multi,
    /// One file of about `n` KiB (mixed swarms, rate-limited transfers).
    Big(usize),
}

/// Who makes the torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Maker {
    /// bitshoal (`bitshoal_std::create`), v1 or hybrid (hybrid pads files to pieces).
    Bitshoal(Version),
    /// libtorrent (`lt_peer.py create`): hybrid, with its own pad files.
    Libtorrent,
    /// libtorrent (`lt_peer.py create-v1`): v1 only, still with BEP 47 pad files (which a
    /// client that does not know them downloads as ordinary files of zeros).
    LibtorrentV1Pads,
}

/// How the peers find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Through opentracker over HTTP.
    Http,
    /// Through opentracker over UDP (BEP 15).
    Udp,
    /// A peer address given to one side.
    Direct,
}

/// One torrent of a test: its shape, maker and route.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// A short label (folder names, messages).
    pub label: &'static str,
    /// The files.
    pub shape: Shape,
    /// Who makes the torrent.
    pub maker: Maker,
    /// How peers find each other.
    pub route: Route,
}

/// A torrent made for a [`Case`], with its original files.
#[derive(Debug)]
pub struct Torrent {
    /// The case.
    pub case: Case,
    /// The `.torrent` file.
    pub path: PathBuf,
    /// Its info dictionary.
    pub info: Arc<Info>,
    /// Its trackers (empty for [`Route::Direct`]).
    pub trackers: Vec<Vec<String>>,
    /// The folder holding the content (`data/<name>`): what a seed is pointed at.
    pub data: PathBuf,
}

impl Torrent {
    /// The torrent's name (file or top folder).
    pub fn name(&self) -> &str {
        self.info.name()
    }

    /// The content as laid out under `data`.
    pub fn original(&self) -> PathBuf {
        self.data.join(self.name())
    }

    /// The 20-byte id peers and trackers use (v1 info-hash when there is one).
    pub fn wire_id(&self) -> [u8; 20] {
        self.info.hashes().wire_id()
    }

    /// The piece count.
    pub fn pieces(&self) -> u32 {
        self.info.layout().piece_count()
    }
}

/// Everything a test's torrents need: a scratch folder, the tracker (if a case uses one) and
/// the torrents.
pub struct Fixture {
    /// The scratch folder.
    pub work: tempfile::TempDir,
    /// The tracker, started with every torrent on its whitelist.
    pub tracker: Option<Opentracker>,
    /// One torrent per case, in order.
    pub torrents: Vec<Torrent>,
}

impl Fixture {
    /// Makes the payloads and torrents of `cases` (`seed` picks the bytes) and starts the
    /// tracker if a case needs it. `None` (after a loud skip) when opentracker is missing
    /// outside CI.
    pub fn new(cases: &[Case], seed: u64) -> Option<Self> {
        let work = tempfile::tempdir().expect("a temporary directory");
        let needs_tracker = cases.iter().any(|c| c.route != Route::Direct);
        if needs_tracker && !Opentracker::available() {
            return None;
        }
        let mut tracker = needs_tracker.then(Opentracker::new);
        let mut torrents = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let trackers = match (case.route, &tracker) {
                (Route::Http, Some(t)) => vec![vec![t.http_url()]],
                (Route::Udp, Some(t)) => vec![vec![t.udp_url()]],
                _ => Vec::new(),
            };
            let data = work.path().join("data").join(case.label);
            let name = match case.shape {
                Shape::Single => format!("{}.bin", case.label),
                _ => format!("{}-files", case.label),
            };
            make_payload(&data.join(&name), case.shape, seed + i as u64);
            let path = work.path().join(format!("{}.torrent", case.label));
            match case.maker {
                Maker::Bitshoal(version) => {
                    let options = CreateOptions {
                        version,
                        piece_length: Some(PIECE),
                        trackers: trackers.clone(),
                        ..CreateOptions::default()
                    };
                    let created = create_torrent(&data.join(&name), &options, |_, _| {})
                        .expect("torrent created");
                    fs::write(&path, &created.bytes).unwrap();
                }
                Maker::Libtorrent | Maker::LibtorrentV1Pads => libtorrent::create(
                    &data.join(&name),
                    &path,
                    trackers.first().map(|t| &t[0]),
                    case.maker == Maker::LibtorrentV1Pads,
                ),
            }
            let bytes = fs::read(&path).unwrap();
            let info = Arc::new(Metainfo::from_bytes(&bytes).unwrap().into_info());
            torrents.push(Torrent {
                case: *case,
                path,
                info,
                trackers,
                data,
            });
        }
        if let Some(t) = &mut tracker {
            let hashes: Vec<String> = torrents
                .iter()
                .flat_map(|t| Opentracker::whitelist_entries(t.info.hashes()))
                .collect();
            t.start(&hashes);
        }
        Some(Self {
            work,
            tracker,
            torrents,
        })
    }

    /// A fresh folder under the scratch folder.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.work.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits (bounded) until the tracker has seen `complete` seeds and `incomplete` leeches of
    /// every tracked torrent: their announces arrived, so a later announce returns them.
    pub fn wait_announced(&self, complete: i64, incomplete: i64, deadline: Instant) {
        let Some(tracker) = &self.tracker else {
            return;
        };
        for t in self
            .torrents
            .iter()
            .filter(|t| t.case.route != Route::Direct)
        {
            assert!(
                tracker.wait_for_peers(t.wire_id(), complete, incomplete, deadline),
                "the tracker never saw {complete} seeds and {incomplete} leeches of {}",
                t.case.label
            );
        }
    }
}

/// Writes a payload of `shape` at `root` (a file for [`Shape::Single`] / [`Shape::Big`], a
/// folder otherwise).
pub fn make_payload(root: &Path, shape: Shape, seed: u64) {
    let mut rng = Rng::from_seed(seed);
    let mut write = |path: &Path, len: usize| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        fs::write(path, bytes).unwrap();
    };
    match shape {
        Shape::Single => write(root, 300_001),
        Shape::Big(kib) => write(root, kib * 1024 + 123),
        Shape::Multi => {
            for (path, len) in [
                ("big.bin", 400_000),
                ("a/small.txt", 1_234),
                ("a/b/c/deep.bin", 90_001),
                ("a/b/empty.txt", 0),
                ("a/b/tiny.txt", 7),
                ("z-last.bin", 33_333),
            ] {
                write(&root.join(path), len);
            }
        }
    }
}

/// Makes a torrent of `payload` (bitshoal's creator, [`PIECE`]-sized pieces, no trackers),
/// written beside it as `<payload>.torrent`; returns its path and info.
pub fn make_torrent(payload: &Path, version: Version) -> (PathBuf, Arc<Info>) {
    let options = CreateOptions {
        version,
        piece_length: Some(PIECE),
        ..CreateOptions::default()
    };
    let created = create_torrent(payload, &options, |_, _| {}).expect("torrent created");
    let path = payload.with_extension("torrent");
    fs::write(&path, &created.bytes).unwrap();
    let info = Metainfo::from_bytes(&created.bytes).unwrap().into_info();
    (path, Arc::new(info))
}

/// Every file under `original` (a file or a folder) exists at `copy` with the same bytes.
/// With `empty_may_be_missing`, a 0-byte file may be absent (Transmission 3.00 does not create
/// the empty files of a torrent).
pub fn assert_same(original: &Path, copy: &Path, empty_may_be_missing: bool) {
    if original.is_file() {
        let a = fs::read(original).unwrap();
        if a.is_empty() && empty_may_be_missing && !copy.exists() {
            return;
        }
        let b = fs::read(copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        assert!(a == b, "{} differs from the original", copy.display());
        return;
    }
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        assert_same(
            &entry.path(),
            &copy.join(entry.file_name()),
            empty_may_be_missing,
        );
    }
}

/// A bitshoal client on 127.0.0.1 with an OS-assigned port.
pub fn client(seed: u64, tune: impl FnOnce(&mut Config)) -> Client {
    let mut session = Config {
        rng_seed: seed,
        ..Config::default()
    };
    tune(&mut session);
    Client::new(ClientConfig {
        session,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ClientConfig::default()
    })
    .expect("client starts")
}

/// One torrent in a [`Bitshoal`] driver.
#[derive(Debug)]
pub struct Job {
    /// The session's id for it.
    pub id: TorrentId,
    /// Its label.
    pub label: &'static str,
    /// Its download folder.
    pub dir: PathBuf,
    /// Addresses to dial while it has no peer.
    pub dial: Vec<SocketAddr>,
    /// Whether its files were synced after finishing (downloads only).
    pub synced: bool,
    /// Successful announces: (url, peers returned).
    pub announced: Vec<(String, usize)>,
}

/// A bitshoal client with its torrents, driven turn by turn; records what happened.
pub struct Bitshoal {
    /// The client.
    pub client: Client,
    /// Its torrents, in the order added.
    pub jobs: Vec<Job>,
    /// Peer connections that completed the handshake, by torrent index.
    pub connected: HashMap<usize, Vec<SocketAddr>>,
    /// Connections that ended: (torrent index, reason as text).
    pub disconnected: Vec<(Option<usize>, String)>,
    /// Payload totals per connection as last seen by [`Bitshoal::sample_peers`]: the peer's
    /// client (BEP 20 peer-id prefix), bytes downloaded from it and uploaded to it.
    pub per_conn: HashMap<ConnId, (String, u64, u64)>,
    next_dial: Instant,
}

impl Bitshoal {
    /// A client with no torrents (`tune` adjusts its session config).
    pub fn new(seed: u64, tune: impl FnOnce(&mut Config)) -> Self {
        Self {
            client: client(seed, tune),
            jobs: Vec::new(),
            connected: HashMap::new(),
            disconnected: Vec::new(),
            per_conn: HashMap::new(),
            next_dial: Instant::now(),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.client.local_addr().expect("listening")
    }

    /// Adds `t` to download into `dir`, announcing to its trackers and dialing `dial`.
    pub fn leech(&mut self, t: &Torrent, dir: PathBuf, dial: Vec<SocketAddr>) -> usize {
        let add = AddTorrent::new(Arc::clone(&t.info)).with_trackers(t.trackers.clone());
        self.add(t.case.label, add, dir, dial)
    }

    /// Downloads every torrent of `fx` into `out` (cases routed [`Route::Direct`] dial
    /// `seed_of(case index)`, the others find their seed through their tracker), then checks
    /// every byte, every announce and that no peer broke the protocol. `from` names the seed
    /// in the failure message.
    pub fn download_all(
        &mut self,
        fx: &Fixture,
        out: &Path,
        seed_of: impl Fn(usize) -> SocketAddr,
        deadline: Instant,
        from: &str,
    ) {
        let jobs: Vec<usize> = fx
            .torrents
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let dial = if t.case.route == Route::Direct {
                    vec![seed_of(i)]
                } else {
                    Vec::new()
                };
                self.leech(t, out.to_path_buf(), dial)
            })
            .collect();
        let finished = self.run_until(deadline, |b| b.all_synced(&jobs));
        assert!(finished, "bitshoal finished downloading from {from}");
        for (t, &j) in fx.torrents.iter().zip(&jobs) {
            assert_same(&t.original(), &out.join(t.name()), false);
            self.assert_announced(j, t);
        }
        self.assert_no_violation();
    }

    /// Adds `t` to seed from its original data, announcing to its trackers and dialing `dial`.
    pub fn seed(&mut self, t: &Torrent, dial: Vec<SocketAddr>) -> usize {
        let add = AddTorrent::new(Arc::clone(&t.info))
            .with_trackers(t.trackers.clone())
            .with_check(CheckMode::Trust(Bitfield::full(t.pieces())));
        self.add(t.case.label, add, t.data.clone(), dial)
    }

    fn add(
        &mut self,
        label: &'static str,
        add: AddTorrent,
        dir: PathBuf,
        dial: Vec<SocketAddr>,
    ) -> usize {
        let id = self
            .client
            .add_torrent_with(add, dir.clone())
            .expect("the torrent is accepted");
        self.jobs.push(Job {
            id,
            label,
            dir,
            dial,
            synced: false,
            announced: Vec::new(),
        });
        self.next_dial = Instant::now();
        self.jobs.len() - 1
    }

    fn index(&self, id: TorrentId) -> Option<usize> {
        self.jobs.iter().position(|j| j.id == id)
    }

    /// One turn of the loop (at most 20 ms): dials the given addresses of torrents without
    /// peers (once a second), records events. Panics on a failed announce or sync.
    pub fn turn(&mut self) {
        if Instant::now() >= self.next_dial {
            self.next_dial = Instant::now() + Duration::from_secs(1);
            for j in &self.jobs {
                if self.client.status(j.id).is_some_and(|s| s.peers == 0) {
                    for &addr in &j.dial {
                        let _ = self.client.connect(j.id, addr);
                    }
                }
            }
        }
        for event in self.client.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Synced { torrent, result } => {
                    result.expect("files synced");
                    if let Some(i) = self.index(torrent) {
                        self.jobs[i].synced = true;
                    }
                }
                ClientEvent::Session(Event::TrackerAnnounced {
                    torrent,
                    url,
                    peers,
                    ..
                }) => {
                    if let Some(i) = self.index(torrent) {
                        self.jobs[i].announced.push((url, peers));
                    }
                }
                ClientEvent::Session(Event::TrackerFailed { url, error, .. }) => {
                    panic!("bitshoal's announce to {url} failed: {error}")
                }
                ClientEvent::Session(Event::PeerConnected { torrent, addr, .. }) => {
                    if let Some(i) = self.index(torrent) {
                        eprintln!("bitshoal: torrent {i} connected to {addr}");
                        self.connected.entry(i).or_default().push(addr);
                    }
                }
                ClientEvent::Session(Event::PeerDisconnected {
                    torrent, reason, ..
                }) => {
                    let i = torrent.and_then(|t| self.index(t));
                    eprintln!("bitshoal: a connection of torrent {i:?} ended: {reason:?}");
                    self.disconnected.push((i, format!("{reason:?}")));
                }
                _ => {}
            }
        }
    }

    /// Turns until `done` holds or the deadline passes; whether `done` held.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            self.turn();
        }
        done(self)
    }

    /// Whether every download finished and synced its files.
    pub fn all_synced(&self, jobs: &[usize]) -> bool {
        jobs.iter().all(|&j| self.jobs[j].synced)
    }

    /// Records the payload totals of every connection of every torrent now (a connection's
    /// totals end with it, so call this every turn to keep them).
    pub fn sample_peers(&mut self) {
        for job in &self.jobs {
            let now = bitshoal_core::time::Instant::ZERO; // rates are not read, only totals
            for p in self.client.session().peers(now, job.id) {
                let client = client_of(&p.peer_id.0);
                let entry = self.per_conn.entry(p.conn).or_insert((client, 0, 0));
                entry.1 = entry.1.max(p.downloaded);
                entry.2 = entry.2.max(p.uploaded);
            }
        }
    }

    /// `(downloaded from, uploaded to)` peers whose client is `client` (see [`client_of`]),
    /// over every connection [`Bitshoal::sample_peers`] saw.
    pub fn traded_with(&self, client: &str) -> (u64, u64) {
        self.per_conn
            .values()
            .filter(|(c, ..)| c == client)
            .fold((0, 0), |(d, u), (_, down, up)| (d + down, u + up))
    }

    /// Bytes bitshoal uploaded for torrent `job`.
    pub fn uploaded(&mut self, job: usize) -> u64 {
        let id = self.jobs[job].id;
        self.client.status(id).map_or(0, |s| s.uploaded)
    }

    /// Panics unless torrent `job` announced to its tracker and got a peer back, for tracked
    /// cases.
    pub fn assert_announced(&self, job: usize, t: &Torrent) {
        if t.case.route == Route::Direct {
            return;
        }
        let url = &t.trackers[0][0];
        assert!(
            self.jobs[job]
                .announced
                .iter()
                .any(|(u, peers)| u == url && *peers >= 1),
            "{}: bitshoal's announces to {url} returned no peer: {:?}",
            t.case.label,
            self.jobs[job].announced
        );
    }

    /// Panics if a connection ended with a protocol violation (wire errors are allowed:
    /// libtorrent first tries an encrypted handshake, which bitshoal does not speak).
    pub fn assert_no_violation(&self) {
        for (job, reason) in &self.disconnected {
            assert!(
                !reason.contains("Violation"),
                "a connection of torrent {job:?} ended with {reason}"
            );
        }
    }
}

/// The client a peer id names, by its BEP 20 prefix: `libtorrent` (`-LT`), `aria2` (`A2-`),
/// `transmission` (`-TR`), `bitshoal` (`-BS`), or the first 8 bytes as text.
pub fn client_of(peer_id: &[u8; 20]) -> String {
    let name = match &peer_id[..3] {
        b"-LT" => "libtorrent",
        b"A2-" => "aria2",
        b"-TR" => "transmission",
        b"-BS" => "bitshoal",
        _ => return String::from_utf8_lossy(&peer_id[..8]).into_owned(),
    };
    name.to_string()
}

/// The info-hashes of a torrent as lower-case hex (for messages).
pub fn hashes_hex(h: InfoHashes) -> String {
    format!("{h:?}")
}
