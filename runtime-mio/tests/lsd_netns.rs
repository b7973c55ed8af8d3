//! BEP 14 local service discovery over a real multicast link, inside two network namespaces
//! this test makes (a veth pair between them; nothing touches the host's interfaces): the
//! `bitshoal seed` in one and the `bitshoal download` in the other are given no tracker and
//! no peer, and find each other through LSD announces alone.
//!
//! Needs root (`ip netns add`). Without the permission the test says loudly that it skipped,
//! and fails in CI (`CI=true`). The namespaces are deleted (with the veth pair) by a guard,
//! and the seed, started by this test, is killed by its pid.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::cli::{json_lines, stderr};
use common::Payload;

/// Two namespaces joined by a veth pair, deleted on drop.
struct Netns {
    names: [String; 2],
    /// Which test made them (tests in one binary share a pid).
    k: u32,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Namespaces `bsl<pid>k<k>a` (10.177.<n>.1/24) and `...b` (.2), with multicast routed
    /// to the veth; `k` tells apart the tests of one process.
    fn create(k: u32) -> Result<Self, String> {
        let pid = std::process::id();
        let names = [format!("bsl{pid}k{k}a"), format!("bsl{pid}k{k}b")];
        ip(&["netns", "add", &names[0]])?;
        let ns = Self { names, k };
        ns.setup(pid)?;
        Ok(ns)
    }

    fn setup(&self, pid: u32) -> Result<(), String> {
        let [a, b] = &self.names;
        let k = self.k;
        let (va, vb) = (format!("bs{pid}k{k}a"), format!("bs{pid}k{k}b"));
        ip(&["netns", "add", b])?;
        // Made inside namespace a, so no device ever exists on the host.
        ip(&[
            "-n", a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", b,
        ])?;
        for (ns, dev, addr) in [(a, &va, self.addr(0)), (b, &vb, self.addr(1))] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
        }
        Ok(())
    }

    fn addr(&self, i: usize) -> String {
        let n = (std::process::id() * 2 + self.k) % 250;
        format!("10.177.{n}.{}", i + 1)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// A process this test started, killed by its pid on drop.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mio_seed_and_std_download_find_each_other_through_lsd_in_network_namespaces() {
    meet_through_lsd(0, "mio", "std");
}

#[test]
fn std_seed_and_mio_download_find_each_other_through_lsd_in_network_namespaces() {
    meet_through_lsd(1, "std", "mio");
}

fn meet_through_lsd(k: u32, seed_runtime: &str, download_runtime: &str) {
    let ns = match Netns::create(k) {
        Ok(ns) => ns,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI must be able to make network namespaces (run as root): {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED lsd_netns: cannot make network namespaces ({e}); run as root to test \
                 LSD over a real multicast link"
            );
            return;
        }
    };
    let payload = Payload::new(14, Vec::new());
    let data = payload.data_dir();
    let torrent = payload.torrent_path.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_bitshoal");
    let seed_listen = format!("{}:6881", ns.addr(0));
    let _seed = Started(
        Command::new("ip")
            .args(["netns", "exec", &ns.names[0], bin, "seed", torrent])
            .args(["--data", data.to_str().unwrap(), "--trust-data"])
            .args(["--listen", &seed_listen, "--no-dht", "--json"])
            .args(["--runtime", seed_runtime])
            .current_dir(payload.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the seed"),
    );
    let out_dir = payload.dir.path().join("out");
    let leech_listen = format!("{}:6881", ns.addr(1));
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", "100", "ip", "netns", "exec", &ns.names[1], bin])
        .args(["download", torrent, "-o", out_dir.to_str().unwrap()])
        .args(["--listen", &leech_listen, "--no-dht", "--json"])
        .args(["--timeout", "90", "--runtime", download_runtime])
        .current_dir(payload.dir.path())
        .output()
        .expect("run the download");
    assert_eq!(
        out.status.code(),
        Some(0),
        "after {:?}; stderr: {}",
        started.elapsed(),
        stderr(&out)
    );
    payload.assert_copied_to(&out_dir);
    // The only way the two could meet: one heard the other's announce and dialled it.
    let lines = json_lines(&out);
    let seed_ip = format!("{}:", ns.addr(0));
    assert!(
        lines.iter().any(|l| l["event"] == "peer_connected"
            && l["addr"].as_str().is_some_and(|a| a.starts_with(&seed_ip))),
        "the seed, in the other namespace, was the peer: {lines:?}"
    );
}
