//! aria2 (Debian's `aria2`, 1.36) on 127.0.0.1 with everything that reaches beyond it off.
//!
//! aria2 has no UPnP or NAT-PMP; local peer discovery, peer exchange and IPv6 DHT are switched
//! off. aria2 only speaks to UDP trackers through its IPv4 DHT socket, so the IPv4 DHT is on,
//! with no entry point and a fresh (empty) routing table file: it knows no node, and its socket
//! is bound to 127.0.0.1. `--interface=127.0.0.1` binds its listening and outgoing sockets to loopback,
//! `--disable-ipv6` keeps it off IPv6, and `--bt-external-ip=127.0.0.1` is the address it
//! reports to trackers. `--stop` bounds its life even if the test's kill never came.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bitshoal_conformance::interop::{available, free_port, free_tcp_udp_port, Proc};

/// Whether `aria2c` runs (see `interop::available`).
pub fn available_() -> bool {
    let mut probe = Command::new("aria2c");
    probe.arg("--version");
    available(probe, "aria2c", "aria2")
}

/// A running aria2c.
pub struct Aria2 {
    /// The process (killed by pid on drop).
    pub proc: Proc,
    /// Its BitTorrent listening port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
    done: PathBuf,
}

impl Aria2 {
    /// Starts aria2c on `torrents` (`(torrent file, folder it downloads into or seeds from)`).
    /// Seeds check their files first (`-V`); every torrent keeps seeding after it completes
    /// (so a leecher uploads in a swarm); [`Aria2::completed`] counts completions. `extra`
    /// options go last (e.g. `--max-upload-limit=100K`). `scratch` holds the input file, the
    /// hook and the log.
    pub fn start(scratch: &Path, name: &str, torrents: &[(&Path, &Path)], extra: &[&str]) -> Self {
        fs::create_dir_all(scratch).unwrap();
        let mut input = String::new();
        for (torrent, dir) in torrents {
            fs::create_dir_all(dir).unwrap();
            input.push_str(&format!("{}\n  dir={}\n", torrent.display(), dir.display()));
        }
        let input_path = scratch.join(format!("{name}.input"));
        fs::write(&input_path, input).unwrap();
        let hook = scratch.join(format!("{name}-done.sh"));
        let done = scratch.join(format!("{name}.done"));
        fs::write(
            &hook,
            format!("#!/bin/sh\necho \"$1 $3\" >> '{}'\n", done.display()),
        )
        .unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let mut command = Command::new("aria2c");
        command
            .args([
                "--no-conf=true",
                "--enable-dht=true",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--interface=127.0.0.1",
                "--disable-ipv6=true",
                "--bt-external-ip=127.0.0.1",
                "--check-integrity=true",
                "--seed-ratio=0.0",
                "--file-allocation=none",
                "--allow-overwrite=true",
                "--auto-save-interval=0",
                "--bt-save-metadata=false",
                "--summary-interval=0",
                "--console-log-level=warn",
                "--log-level=info",
                "--stop=170",
            ])
            .arg(format!("--listen-port={port}"))
            .arg(format!("--dht-listen-port={}", free_tcp_udp_port()))
            .arg(format!(
                "--dht-file-path={}",
                scratch.join(format!("{name}.dht")).display()
            ))
            .arg(format!(
                "--log={}",
                scratch.join(format!("{name}.log")).display()
            ))
            .arg(format!("--on-bt-download-complete={}", hook.display()))
            .arg(format!("--input-file={}", input_path.display()))
            .args(extra);
        Self {
            proc: Proc::start(name, command),
            port,
            log: scratch.join(format!("{name}.log")),
            done,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Its log's notices, warnings and errors (for failure messages).
    pub fn log_summary(&self) -> String {
        let done = fs::read_to_string(&self.done).unwrap_or_default();
        let log = fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                !l.contains("[DEBUG]")
                    && (!l.contains("[INFO]") || l.contains(" - To: ") || l.contains(" - From: "))
                    && !l.contains("request index")
                    && !l.contains("piece index")
                    && !l.contains("allowed fast")
            })
            .take(400)
            .collect::<Vec<_>>()
            .join("\n");
        format!("completed: {done}\n{log}")
    }

    /// How many torrents completed (its completion hook ran).
    pub fn completed(&self) -> usize {
        fs::read_to_string(&self.done).map_or(0, |s| s.lines().count())
    }
}
