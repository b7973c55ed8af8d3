//! Interop with libtorrent (Debian's python3-libtorrent, run with /usr/bin/python3) over
//! 127.0.0.1, with DHT, LSD, UPnP and NAT-PMP off: bitshoal downloads from a libtorrent seed and
//! libtorrent downloads from a bitshoal seed, for v1 and hybrid torrents with nested folders, a
//! 0-byte file, files smaller than a piece, and pad files (hybrid). Every transfer compares the
//! bytes. Each process the test starts is killed by pid when the test ends.
//!
//! Without libtorrent the tests fail under `CI=true` and print a loud skip otherwise.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::create::Version;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::Config;
use bitshoal_mio::client::{Client, ClientConfig, ClientEvent};
use bitshoal_std::create::{create_torrent, CreateOptions};

const PYTHON: &str = "/usr/bin/python3";

fn libtorrent_available() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but /usr/bin/python3 cannot import libtorrent (apt-get install python3-libtorrent)"
        );
        eprintln!(
            "\n*** SKIPPED: libtorrent interop tests need /usr/bin/python3 with libtorrent \
             (apt-get install python3-libtorrent) ***\n"
        );
    }
    ok
}

/// A child process killed (by pid) and reaped when dropped, with its stdout lines on a channel.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    fn start(args: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_peer.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line starting with `prefix`, or `None` at the deadline or if the process ended.
    fn wait_for(&self, prefix: &str, deadline: Instant) -> Option<String> {
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(line) => eprintln!("libtorrent peer: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    fn try_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A payload with nested folders, a 0-byte file, small files and a few pieces' worth of data.
fn make_payload(root: &Path, seed: u64) {
    let mut rng = Rng::from_seed(seed);
    let files: &[(&str, usize)] = &[
        ("big.bin", 700_000),
        ("a/small.txt", 1_234),
        ("a/b/c/deep.bin", 90_001),
        ("a/b/empty.txt", 0),
        ("z-last.bin", 33_333),
    ];
    for (path, len) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = vec![0u8; *len];
        rng.fill(&mut bytes);
        fs::write(path, bytes).unwrap();
    }
}

fn make_torrent(payload: &Path, version: Version) -> (PathBuf, Arc<Info>) {
    let options = CreateOptions {
        version,
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let created = create_torrent(payload, &options, |_, _| {}).expect("torrent created");
    let path = payload.with_extension("torrent");
    fs::write(&path, &created.bytes).unwrap();
    let info = Metainfo::from_bytes(&created.bytes).unwrap().into_info();
    (path, Arc::new(info))
}

/// Every file under `original` exists under `copy` with the same bytes.
fn assert_same_tree(original: &Path, copy: &Path) {
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let there = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &there);
        } else {
            let a = fs::read(entry.path()).unwrap();
            let b = fs::read(&there).unwrap_or_else(|e| panic!("{}: {e}", there.display()));
            assert!(a == b, "{} differs", there.display());
        }
    }
}

fn client(seed: u64) -> Client {
    Client::new(ClientConfig {
        session: Config {
            rng_seed: seed,
            ..Config::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ClientConfig::default()
    })
    .expect("client starts")
}

fn bitshoal_downloads_from_libtorrent(version: Version) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 1);
    let (torrent_path, info) = make_torrent(&payload, version);
    let seed_dir = work.path().join("seed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let lt = Peer::start(&[
        "seed",
        torrent_path.to_str().unwrap(),
        seed_dir.to_str().unwrap(),
    ]);
    let ready = lt.wait_for("READY", deadline).expect("libtorrent seeds");
    let port: u16 = ready[6..].trim().parse().unwrap();

    let mut bitshoal = client(7);
    let dir = work.path().join("bitshoal");
    let torrent = bitshoal.add_torrent(info, dir.clone(), None).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    bitshoal.connect(torrent, addr).unwrap();
    let mut synced = false;
    while !synced && Instant::now() < deadline {
        for event in bitshoal.turn(Duration::from_millis(20)).unwrap() {
            match event {
                ClientEvent::Synced { result, .. } => {
                    result.expect("files synced");
                    synced = true;
                }
                ClientEvent::Session(e) => eprintln!("bitshoal: {e:?}"),
                _ => {}
            }
        }
    }
    assert!(synced, "bitshoal finished downloading from libtorrent");
    assert_same_tree(&payload, &dir.join("payload"));
}

fn libtorrent_downloads_from_bitshoal(version: Version) {
    let work = tempfile::tempdir().unwrap();
    let payload = work.path().join("seed/payload");
    make_payload(&payload, 2);
    let (torrent_path, info) = make_torrent(&payload, version);
    let pieces = info.layout().piece_count();
    let mut bitshoal = client(8);
    bitshoal
        .add_torrent(info, work.path().join("seed"), Some(Bitfield::full(pieces)))
        .unwrap();
    let addr = bitshoal.local_addr().unwrap();
    let lt_dir = work.path().join("libtorrent");
    fs::create_dir_all(&lt_dir).unwrap();
    let lt = Peer::start(&[
        "leech",
        torrent_path.to_str().unwrap(),
        lt_dir.to_str().unwrap(),
        &addr.to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = false;
    while !done && Instant::now() < deadline {
        bitshoal.turn(Duration::from_millis(20)).unwrap();
        while let Some(line) = lt.try_line() {
            if line.starts_with("DONE") {
                done = true;
            } else {
                eprintln!("libtorrent peer: {line}");
            }
        }
    }
    assert!(done, "libtorrent finished downloading from bitshoal");
    drop(lt); // libtorrent flushes its files before printing DONE; stop it before reading
    assert_same_tree(&payload, &lt_dir.join("payload"));
}

#[test]
fn bitshoal_downloads_a_v1_torrent_from_libtorrent() {
    if libtorrent_available() {
        bitshoal_downloads_from_libtorrent(Version::V1);
    }
}

#[test]
fn bitshoal_downloads_a_hybrid_torrent_with_pad_files_from_libtorrent() {
    if libtorrent_available() {
        bitshoal_downloads_from_libtorrent(Version::Hybrid);
    }
}

#[test]
fn libtorrent_downloads_a_v1_torrent_from_bitshoal() {
    if libtorrent_available() {
        libtorrent_downloads_from_bitshoal(Version::V1);
    }
}

#[test]
fn libtorrent_downloads_a_hybrid_torrent_from_bitshoal() {
    if libtorrent_available() {
        libtorrent_downloads_from_bitshoal(Version::Hybrid);
    }
}
