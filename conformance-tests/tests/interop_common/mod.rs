//! Helpers shared by the interop tests: payloads, torrents, tree comparison, clients, and child
//! processes that are killed by pid when dropped.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bitshoal_core::create::Version;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::Config;
use bitshoal_mio::client::{Client, ClientConfig};
use bitshoal_std::create::{create_torrent, CreateOptions};

/// Whether `program` can run; under `CI=true` a missing one fails the test, otherwise the test
/// prints a loud skip notice naming the package to install.
pub(crate) fn available(mut probe: Command, what: &str, package: &str) -> bool {
    let ok = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {what} is missing (apt-get install {package})"
        );
        eprintln!(
            "\n*** SKIPPED: this interop test needs {what} (apt-get install {package}) ***\n"
        );
    }
    ok
}

/// A child process killed (by pid) and reaped when dropped, with its stdout lines on a channel.
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    pub(crate) fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the program starts");
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
    pub(crate) fn wait_for(&self, prefix: &str, deadline: Instant) -> Option<String> {
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(line) => eprintln!("peer: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    pub(crate) fn try_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A payload with nested folders, a 0-byte file, small files and a few pieces' worth of data.
pub(crate) fn make_payload(root: &Path, seed: u64) {
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

pub(crate) fn make_torrent(payload: &Path, version: Version) -> (PathBuf, Arc<Info>) {
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
pub(crate) fn assert_same_tree(original: &Path, copy: &Path) {
    compare_tree(original, copy, false);
}

/// As [`assert_same_tree`], but an empty file may be missing from `copy`: Transmission 3.00 does
/// not create 0-byte files of a torrent.
pub(crate) fn assert_same_tree_but_empty_files(original: &Path, copy: &Path) {
    compare_tree(original, copy, true);
}

fn compare_tree(original: &Path, copy: &Path, empty_may_be_missing: bool) {
    for entry in fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let there = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            compare_tree(&entry.path(), &there, empty_may_be_missing);
        } else {
            let a = fs::read(entry.path()).unwrap();
            if a.is_empty() && empty_may_be_missing && !there.exists() {
                continue;
            }
            let b = fs::read(&there).unwrap_or_else(|e| panic!("{}: {e}", there.display()));
            assert!(a == b, "{} differs", there.display());
        }
    }
}

pub(crate) fn client(seed: u64) -> Client {
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
