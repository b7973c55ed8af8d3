//! Running the `bitshoal` binary in tests: one-shot runs with a time limit, and long-running
//! ones whose JSON lines arrive on a channel (killed by pid when dropped).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// Bounds every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn bitshoal(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    Command::new("timeout")
        .args(["-k", "5", "120", env!("CARGO_BIN_EXE_bitshoal")])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run bitshoal")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

/// `download TORRENT -o OUT --peer PEER --listen 127.0.0.1:0 --json`, then `extra`.
pub fn download_args(
    torrent: impl AsRef<Path>,
    out: impl AsRef<Path>,
    peer: &str,
    extra: &[&str],
) -> Vec<String> {
    let (torrent, out) = (path(torrent.as_ref()), path(out.as_ref()));
    let mut args: Vec<String> = vec!["download".into(), torrent, "-o".into(), out];
    args.extend(["--peer", peer, "--listen", "127.0.0.1:0", "--json"].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// `seed TORRENT --data DATA --listen 127.0.0.1:0 --json`, then `extra`.
pub fn seed_args(torrent: impl AsRef<Path>, data: impl AsRef<Path>, extra: &[&str]) -> Vec<String> {
    let (torrent, data) = (path(torrent.as_ref()), path(data.as_ref()));
    let mut args: Vec<String> = vec!["seed".into(), torrent, "--data".into(), data];
    args.extend(["--listen", "127.0.0.1:0", "--json"].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn path(p: &Path) -> String {
    p.to_str().expect("a UTF-8 test path").to_string()
}

/// A running `bitshoal` with its JSON lines arriving on a channel.
pub struct Running {
    child: Option<Child>,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    pub fn start(args: &[impl AsRef<OsStr>], cwd: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bitshoal"))
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bitshoal");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).expect("a JSON line");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self {
            child: Some(child),
            lines,
        }
    }

    /// The first line whose `event` is `name` (panics after [`WAIT`]).
    pub fn wait_event(&self, name: &str) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no {name:?} line: {e}"));
            if line["event"] == name {
                return line;
            }
        }
    }

    /// Every line until (and with) the first that `pick` accepts (panics after [`WAIT`]).
    pub fn lines_until(&self, mut pick: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no awaited line after {seen:?}: {e}"));
            let done = pick(&line);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }

    /// Kills the process with SIGKILL (no chance to save anything), waits for it, and returns
    /// the lines it printed that were not read yet.
    pub fn kill9(mut self) -> Vec<Value> {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        let _ = child.wait();
        // The reader thread ends at the pipe's end: every line printed before the kill.
        self.lines.iter().collect()
    }

    pub fn interrupt(&self) {
        let ok = Command::new("kill")
            .args([
                "-INT",
                &self.child.as_ref().expect("running").id().to_string(),
            ])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -INT failed");
    }

    /// Waits for the exit (at most [`WAIT`], then kills it) and returns the code.
    pub fn exit_code(mut self) -> i32 {
        let mut child = self.child.take().expect("not waited for yet");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(WAIT) {
            Ok(status) => status.unwrap().code().expect("exited, not killed"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("bitshoal did not exit within {WAIT:?}");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
