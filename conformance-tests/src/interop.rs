//! Helpers for interop tests with real programs on 127.0.0.1: child processes killed by pid
//! when dropped, the "is this program installed" check (a failure under `CI=true`, a loud skip
//! otherwise), free ports, and Debian's `opentracker` with its whitelist.
//!
//! Shared by the interop tests of this crate and the tracker tests of `bitshoal-mio`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bitshoal_core::id::InfoHashes;
use tempfile::TempDir;

/// Whether `probe` runs and exits 0. When it does not, under `CI=true` this panics (a missing
/// client is a failure in CI); otherwise it prints a loud notice naming what was skipped and
/// the Debian package to install, and returns `false`.
pub fn available(mut probe: Command, what: &str, package: &str) -> bool {
    let ok = probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {what} is missing (apt-get install {package}; test.sh does)"
        );
        eprintln!(
            "\n*** SKIPPED: this interop test needs {what}: apt-get install {package} \
             (or run ./test.sh as root) ***\n"
        );
    }
    ok
}

/// A child process killed (by its pid) and reaped when dropped. Its stdout arrives line by
/// line on a channel; its stderr is copied to the test's stderr with `tag` in front.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    tag: String,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `command` (stdin closed, stdout and stderr piped).
    pub fn start(tag: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tag}: the program starts: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_tag = tag.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{err_tag} (stderr): {line}");
            }
        });
        Self {
            child,
            tag: tag.to_string(),
            lines,
        }
    }

    /// The process id (for messages).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line starting with `prefix` (other lines are echoed to stderr), or
    /// `None` at the deadline or when the process closed its stdout.
    pub fn wait_for(&self, prefix: &str, deadline: Instant) -> Option<String> {
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(line) => eprintln!("{}: {line}", self.tag),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// Every stdout line available now, without waiting.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The exit status if the process has ended (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // `Child::kill` signals this child's pid only, never anything matched by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 free right now (bound and released; the caller's program binds it
/// next, so another process could take it in between: readiness checks then fail loudly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A port on 127.0.0.1 free for both TCP and UDP right now.
pub fn free_tcp_udp_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls (bounded by `deadline`) until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20)); // a bounded readiness poll
    }
    false
}

/// Where Debian installs opentracker.
pub const OPENTRACKER: &str = "/usr/bin/opentracker";

/// Debian's opentracker on 127.0.0.1: HTTP and UDP (BEP 15) on one port, serving only the
/// info-hashes on its whitelist.
///
/// Made in two steps because a torrent names its tracker and the whitelist names the torrent:
/// [`Opentracker::new`] picks the port (so [`Opentracker::http_url`] and
/// [`Opentracker::udp_url`] can go into torrents), [`Opentracker::start`] writes the whitelist
/// and starts the program. The process is killed by pid when this is dropped.
#[derive(Debug)]
pub struct Opentracker {
    port: u16,
    dir: TempDir,
    process: Option<Proc>,
}

impl Opentracker {
    /// Whether opentracker is installed (see [`available`]).
    pub fn available() -> bool {
        let mut probe = Command::new("test");
        probe.args(["-x", OPENTRACKER]);
        available(probe, OPENTRACKER, "opentracker")
    }

    /// A tracker-to-be on a free port (not started).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // opentracker drops to `nobody` and chroots here: the directory must be readable.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            port: free_tcp_udp_port(),
            dir,
            process: None,
        }
    }

    /// The HTTP announce URL.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The UDP announce URL.
    pub fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}", self.port)
    }

    /// Writes the whitelist (hex info-hashes: v1 ones, and for hybrid torrents the truncated
    /// v2 one too, which libtorrent also announces), starts opentracker and waits (bounded)
    /// until it accepts connections.
    pub fn start<S: AsRef<str>>(&mut self, hashes: &[S]) {
        let mut list = String::new();
        for h in hashes {
            list.push_str(h.as_ref());
            list.push('\n');
        }
        fs::write(self.dir.path().join("whitelist"), list).unwrap();
        let port = self.port.to_string();
        let mut command = Command::new(OPENTRACKER);
        command
            .args(["-i", "127.0.0.1", "-p", &port, "-P", &port])
            // The whitelist path is read after the chroot into -d.
            .args(["-d", self.dir.path().to_str().unwrap(), "-w", "whitelist"]);
        self.process = Some(Proc::start("opentracker", command));
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(
            wait_listening(addr, deadline),
            "opentracker did not start on {addr}"
        );
        // opentracker loads its whitelist on a thread of its own after it starts listening:
        // wait until it serves the first hash (a `stopped` announce leaves no peer behind).
        if let Some(first) = hashes.first() {
            let hash = unhex(first.as_ref());
            while !self.accepts(hash) {
                assert!(
                    Instant::now() < deadline,
                    "opentracker never loaded its whitelist"
                );
                std::thread::sleep(Duration::from_millis(20)); // a bounded readiness poll
            }
        }
    }

    /// Whether the tracker answers an announce for `hash` without a failure (a `stopped`
    /// announce, so no peer is added).
    fn accepts(&self, hash: [u8; 20]) -> bool {
        let query = format!(
            "/announce?info_hash={}&peer_id=-XX0000-000000000000&port=1&uploaded=0\
             &downloaded=0&left=0&event=stopped&compact=1",
            percent_encoding::percent_encode(&hash, percent_encoding::NON_ALPHANUMERIC)
        );
        self.get(&query)
            .is_some_and(|body| !body.windows(7).any(|w| w == b"failure"))
    }

    /// The body of an HTTP GET of `path_and_query` from the tracker.
    fn get(&self, path_and_query: &str) -> Option<Vec<u8>> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            stream,
            "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let body_at = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        Some(response.split_off(body_at))
    }
}

impl Opentracker {
    /// The whitelist entries for a torrent: its v1 info-hash and its truncated v2 one (a
    /// hybrid torrent is announced under both by libtorrent).
    pub fn whitelist_entries(hashes: InfoHashes) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v1) = hashes.v1() {
            out.push(hex(&v1.0));
        }
        if let Some(v2) = hashes.v2() {
            out.push(hex(&v2.truncated()));
        }
        out
    }

    /// `(complete, incomplete)` peers the tracker knows for a 20-byte info-hash, from an HTTP
    /// scrape; `None` if the scrape failed.
    pub fn scrape(&self, hash: [u8; 20]) -> Option<(i64, i64)> {
        let query = percent_encoding::percent_encode(&hash, percent_encoding::NON_ALPHANUMERIC);
        let body = self.get(&format!("/scrape?info_hash={query}"))?;
        let value = bitshoal_core::bencode::decode(&body).ok()?;
        let files = value.as_dict()?.get(b"files")?.as_dict()?;
        let entry = files.get(&hash)?.as_dict()?;
        Some((
            entry.get(b"complete")?.as_int()?,
            entry.get(b"incomplete")?.as_int()?,
        ))
    }

    /// Waits (polling, bounded by `deadline`) until the tracker knows at least `complete`
    /// seeds and `incomplete` leeches of `hash`: an announce has reached it.
    pub fn wait_for_peers(
        &self,
        hash: [u8; 20],
        complete: i64,
        incomplete: i64,
        deadline: Instant,
    ) -> bool {
        while Instant::now() < deadline {
            if let Some((c, i)) = self.scrape(hash) {
                if c >= complete && i >= incomplete {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100)); // a bounded poll of the tracker
        }
        false
    }
}

/// 20 bytes from 40 hex digits (zeros where the text is not hex).
fn unhex(text: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = text
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for Opentracker {
    fn default() -> Self {
        Self::new()
    }
}
