//! libtorrent (Debian's python3-libtorrent 2.0, run with /usr/bin/python3) through
//! `interop/lt_peer.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bitshoal_conformance::interop::{available, Proc};
use serde_json::{json, Value};

/// The Python that has libtorrent's bindings.
pub const PYTHON: &str = "/usr/bin/python3";

/// Whether libtorrent can be imported (see `interop::available`).
pub fn available_() -> bool {
    let mut probe = Command::new(PYTHON);
    probe.args(["-c", "import libtorrent"]);
    available(
        probe,
        "/usr/bin/python3 with libtorrent",
        "python3-libtorrent",
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_peer.py")
}

/// Makes a torrent of `src` with libtorrent: hybrid, or v1-only with `v1_only`; either way it
/// pads every file to a piece boundary with BEP 47 pad files.
pub fn create(src: &Path, out: &Path, tracker: Option<&String>, v1_only: bool) {
    let mut command = Command::new(PYTHON);
    let verb = if v1_only { "create-v1" } else { "create" };
    command.arg(script()).arg(verb).arg(src).arg(out);
    if let Some(t) = tracker {
        command.arg(t);
    }
    let output = command.output().expect("lt_peer.py create runs");
    assert!(
        output.status.success(),
        "libtorrent could not make a torrent: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One torrent for [`start`]: `(torrent file, save folder, seeding?, peers to dial)`.
pub fn torrent(path: &Path, save: &Path, seed: bool, peers: &[String]) -> Value {
    json!({"torrent": path, "save": save, "seed": seed, "peers": peers})
}

/// Starts `lt_peer.py run` with `spec` (see the script's docstring), written next to `dir`.
pub fn start(dir: &Path, name: &str, spec: Value) -> Proc {
    let spec_path = dir.join(format!("{name}.json"));
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let mut command = Command::new(PYTHON);
    command.arg(script()).arg("run").arg(&spec_path);
    Proc::start(name, command)
}

/// Waits for `READY <port>` and returns the port.
pub fn ready(lt: &Proc, deadline: Instant) -> u16 {
    let line = lt
        .wait_for("READY", deadline)
        .expect("libtorrent is ready (its torrents checked)");
    line[6..].trim().parse().expect("a port after READY")
}

/// What a running `lt_peer.py` reported: downloads done, peer-log lines, latest stats.
#[derive(Debug, Default)]
pub struct Report {
    /// Indices of torrents that completed.
    pub done: Vec<usize>,
    /// `LOG` lines without the prefix: `<in|out> <NAME> <client> <args>`.
    pub log: Vec<String>,
    /// `PEER` lines without the prefix.
    pub peers: Vec<String>,
    /// Latest `(downloaded, uploaded)` per torrent.
    pub stats: Vec<(u64, u64)>,
    /// Other lines (PAUSED, RESUMED, ERROR, TIMEOUT).
    pub other: Vec<String>,
}

impl Report {
    /// Reads every line available now.
    pub fn absorb(&mut self, lt: &Proc) {
        for line in lt.drain() {
            let mut words = line.splitn(2, ' ');
            let (kind, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match kind {
                "DONE" => self
                    .done
                    .push(rest.split(' ').next().unwrap().parse().unwrap()),
                "LOG" => self.log.push(rest.to_string()),
                "PEER" => self.peers.push(rest.to_string()),
                "STATS" => {
                    let v: Vec<u64> = rest.split(' ').map(|w| w.parse().unwrap()).collect();
                    let i = v[0] as usize;
                    if self.stats.len() <= i {
                        self.stats.resize(i + 1, (0, 0));
                    }
                    self.stats[i] = (v[1], v[2]);
                }
                "ALLDONE" | "READY" => {}
                _ => {
                    eprintln!("libtorrent: {line}");
                    self.other.push(line);
                }
            }
        }
    }

    /// Reads lines until `cond` holds or the deadline passes (the script reports what it saw
    /// a little after it happened); whether `cond` held.
    pub fn wait(&mut self, lt: &Proc, deadline: Instant, cond: impl Fn(&Self) -> bool) -> bool {
        loop {
            self.absorb(lt);
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(50)); // a bounded poll
        }
    }

    /// Log lines `<dir> <name> ...` whose client contains `client`.
    pub fn logged(&self, dir: &str, name: &str, client: &str) -> Vec<&String> {
        let prefix = format!("{dir} {name} ");
        self.log
            .iter()
            .filter(|l| l.starts_with(&prefix) && l[prefix.len()..].contains(client))
            .collect()
    }
}
