//! Transmission 3.00 (Debian's `transmission-cli`) on 127.0.0.1, with DHT, LPD, PEX, uTP, port
//! mapping and encryption off in its settings.
//!
//! Transmission 3.00 never dials peers whose address is in 127.0.0.0/8 (it accepts them), so
//! on loopback the other side always dials it.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bitshoal_conformance::interop::{available, free_port, wait_listening, Proc};

/// Whether `transmission-cli` runs (see `interop::available`).
pub fn available_() -> bool {
    let mut probe = Command::new("transmission-cli");
    probe.arg("--version");
    available(probe, "transmission-cli", "transmission-cli")
}

/// A running transmission-cli with one torrent.
pub struct Transmission {
    /// The process (killed by pid on drop).
    pub proc: Proc,
    /// Its peer port on 127.0.0.1.
    pub port: u16,
    /// Created by its completion script when the torrent completes.
    pub done: PathBuf,
}

impl Transmission {
    /// Starts transmission-cli on `torrent` with `download_dir` (where it seeds from or
    /// downloads into); `scratch` holds its configuration. `upload_kib`: an upload limit.
    pub fn start(
        scratch: &Path,
        name: &str,
        torrent: &Path,
        download_dir: &Path,
        upload_kib: Option<u32>,
    ) -> Self {
        let config = scratch.join(name);
        fs::create_dir_all(&config).unwrap();
        fs::create_dir_all(download_dir).unwrap();
        let port = free_port();
        let settings = format!(
            r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
                "utp-enabled": false, "port-forwarding-enabled": false, "rpc-enabled": false,
                "encryption": 0, "peer-port": {port}, "bind-address-ipv4": "127.0.0.1",
                "bind-address-ipv6": "::1", "message-level": 1}}"#
        );
        fs::write(config.join("settings.json"), settings).unwrap();
        let done = scratch.join(format!("{name}.done"));
        let script = config.join("done.sh");
        fs::write(&script, format!("#!/bin/sh\ntouch '{}'\n", done.display())).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let mut command = Command::new("transmission-cli");
        command
            .arg("-g")
            .arg(&config)
            .arg("-w")
            .arg(download_dir)
            .args(["-p", &port.to_string(), "-et", "-M", "-f"])
            .arg(&script);
        if let Some(kib) = upload_kib {
            command.args(["-u", &kib.to_string()]);
        }
        command.arg(torrent);
        Self {
            proc: Proc::start(name, command),
            port,
            done,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Waits (bounded) until it listens.
    pub fn wait_listening(&self, deadline: Instant) {
        assert!(
            wait_listening(self.addr(), deadline),
            "transmission listens on {}",
            self.addr()
        );
    }

    /// Whether its torrent completed.
    pub fn finished(&self) -> bool {
        self.done.exists()
    }
}
