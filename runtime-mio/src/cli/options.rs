//! Flag values the transfer commands share: rates and sizes (`500K`, `1.5MiB`), file
//! selections (`--only 1,3-4,*.txt`), the runtime switch, and the discovery switches with the
//! loopback safety rule.
//!
//! # The loopback safety rule
//!
//! When `--listen` is a loopback address (127.0.0.0/8 or ::1), the client contacts nothing
//! outside loopback unless a flag names it:
//!
//! - trackers whose host is not a loopback address (or `localhost`) are skipped, with a note;
//! - peers are dialled only on loopback addresses and the `--peer` addresses given (peers a
//!   tracker returns elsewhere are refused before any packet leaves), and UDP datagrams go only
//!   to those addresses;
//! - DHT, local service discovery (multicast) and port mapping (UPnP, NAT-PMP) stay off; the
//!   DHT runs only if `--dht-bootstrap` names nodes, and then contacts only those and loopback.
//!
//! [`Discovery`] holds the switches; [`Discovery::plan`] applies the rule for a listen address
//! and is what the discovery features read.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use bitshoal_core::metainfo::Info;
use bitshoal_core::picker::Priority;
use bitshoal_core::session::{DhtSettings, PUBLIC_ROUTERS};
use bitshoal_std::client::{is_loopback, Reach};
use clap::{Args, ValueEnum};

/// Parses a byte count such as `262144`, `256KiB`, `256k`, `1.5MiB` or `2M`. Every unit is a
/// binary multiple, as curl and aria2 read them: 1K = 1KB = 1KiB = 1024 (M and G alike).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size suffix {suffix:?} in {s:?} (use K, M, G, KiB, MiB or GiB)"
            ))
        }
    };
    let bad = || format!("{s:?} is not a size (try 262144, 500K, 1.5MiB or 2M)");
    if let Ok(n) = number.parse::<u64>() {
        return n
            .checked_mul(multiplier)
            .ok_or_else(|| format!("{s:?} is too large"));
    }
    // A fraction: only with a unit, and rounded down to whole bytes.
    let n: f64 = number.parse().map_err(|_| bad())?;
    let bytes = n * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses a rate in bytes per second: a size ([`parse_size`]) with an optional `/s`; `0` means
/// unlimited.
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("/S"))
        .unwrap_or(t);
    parse_size(t)
}

/// What drives a transfer command's client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuntimeChoice {
    /// One mio event loop (the default).
    #[default]
    Mio,
    /// Blocking sockets and threads (`bitshoal-std`).
    Std,
}

/// The discovery switches of `download` and `seed` (see the [module documentation](self) for
/// the loopback rule). The DHT runs by default (bootstrapping from the public routers, or
/// from `--dht-bootstrap`); LSD, UPnP and NAT-PMP arrive with later work (their flags are
/// accepted now so that scripts written today keep working). [`Discovery::plan`] is where the
/// features read whether they may run.
#[derive(Clone, Debug, Default, Args)]
pub(crate) struct Discovery {
    /// Do not use the DHT (BEP 5).
    #[arg(long)]
    pub(crate) no_dht: bool,
    /// A DHT node to bootstrap from instead of the public routers (repeatable; HOST:PORT).
    #[arg(long = "dht-bootstrap", value_name = "ADDR")]
    pub(crate) dht_bootstrap: Vec<String>,
    /// Do not use local service discovery (BEP 14 multicast).
    #[arg(long)]
    pub(crate) no_lsd: bool,
    /// Do not map the listen port with UPnP.
    #[arg(long)]
    pub(crate) no_upnp: bool,
    /// Do not map the listen port with NAT-PMP / PCP.
    #[arg(long)]
    pub(crate) no_natpmp: bool,
}

/// What discovery may do for one listen address, after the loopback rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DiscoveryPlan {
    /// The DHT may run.
    pub(crate) dht: bool,
    /// Nodes to bootstrap the DHT from: the `--dht-bootstrap` addresses, or (empty) the
    /// default routers, which a loopback client never uses.
    pub(crate) dht_bootstrap: Vec<SocketAddr>,
    /// Local service discovery may run.
    pub(crate) lsd: bool,
    /// UPnP may map the port.
    pub(crate) upnp: bool,
    /// NAT-PMP / PCP may map the port.
    pub(crate) natpmp: bool,
    /// The listen address is loopback: the client stays on loopback and the addresses named.
    pub(crate) loopback_only: bool,
}

impl Discovery {
    /// Applies the switches and the loopback rule to `listen`; `--dht-bootstrap` names are
    /// resolved here (an unknown host is an error).
    pub(crate) fn plan(&self, listen: SocketAddr) -> Result<DiscoveryPlan, String> {
        let mut dht_bootstrap = Vec::new();
        for name in &self.dht_bootstrap {
            let mut addrs = name
                .to_socket_addrs()
                .map_err(|e| format!("--dht-bootstrap {name:?}: {e}"))?;
            let addr = addrs
                .next()
                .ok_or_else(|| format!("--dht-bootstrap {name:?}: no address"))?;
            dht_bootstrap.push(addr);
        }
        let loopback_only = is_loopback(listen.ip());
        Ok(DiscoveryPlan {
            dht: !self.no_dht && (!loopback_only || !dht_bootstrap.is_empty()),
            dht_bootstrap,
            lsd: !self.no_lsd && !loopback_only,
            upnp: !self.no_upnp && !loopback_only,
            natpmp: !self.no_natpmp && !loopback_only,
            loopback_only,
        })
    }
}

impl DiscoveryPlan {
    /// The session's DHT settings: `None` when the DHT may not run; else bootstrapping from
    /// the `--dht-bootstrap` nodes, or the public routers when none was named (never for a
    /// loopback client: [`Discovery::plan`] turns its DHT off then).
    pub(crate) fn dht_settings(&self) -> Option<DhtSettings> {
        if !self.dht {
            return None;
        }
        let bootstrap = if self.dht_bootstrap.is_empty() {
            PUBLIC_ROUTERS.iter().map(ToString::to_string).collect()
        } else {
            self.dht_bootstrap.iter().map(ToString::to_string).collect()
        };
        Some(DhtSettings {
            bootstrap,
            ..DhtSettings::default()
        })
    }

    /// The client's reach: loopback and `named` (the `--peer` and `--dht-bootstrap`
    /// addresses) for a loopback client, anything otherwise.
    pub(crate) fn reach(&self, named: &[SocketAddr]) -> Option<Reach> {
        self.loopback_only.then(|| {
            let ips: Vec<IpAddr> = named
                .iter()
                .chain(&self.dht_bootstrap)
                .map(SocketAddr::ip)
                .collect();
            Reach::loopback_and(ips)
        })
    }

    /// Whether the client may announce to the tracker at `url` (always, unless loopback-only;
    /// then only to a loopback IP or `localhost`).
    pub(crate) fn tracker_allowed(&self, url: &str) -> bool {
        if !self.loopback_only {
            return true;
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => is_loopback(IpAddr::V6(ip)),
            // Non-special schemes (udp://) keep IP literals as opaque host names.
            Some(url::Host::Domain(d)) => {
                let literal = d.trim_start_matches('[').trim_end_matches(']');
                match literal.parse::<IpAddr>() {
                    Ok(ip) => is_loopback(ip),
                    Err(_) => d.eq_ignore_ascii_case("localhost"),
                }
            }
            None => false,
        }
    }
}

/// The files a torrent's user sees, numbered from 1 as `--only` and `--files` number them:
/// every file but the BEP 47 pad files, in the torrent's order. Returns their indices in
/// `info.files()`.
pub(crate) fn visible_files(info: &Info) -> Vec<usize> {
    info.files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_pad())
        .map(|(i, _)| i)
        .collect()
}

/// Parses `--only`: a comma-separated list of file numbers (`3`), ranges (`2-5`) and glob
/// patterns (`*.txt`, `docs/*`) matched against each file's path inside the torrent (with or
/// without the torrent's name in front). Returns one [`Priority`] per file of `info.files()`:
/// [`Priority::Normal`] for files selected, [`Priority::Skip`] for the others (pad files too).
pub(crate) fn parse_only(list: &str, info: &Info) -> Result<Vec<Priority>, String> {
    let visible = visible_files(info);
    let mut wanted = vec![false; info.files().len()];
    let multi = info.files().iter().any(|f| f.path().depth() > 1);
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let number = |s: &str| -> Result<Option<usize>, String> {
            match s.trim().parse::<usize>() {
                Ok(n) if n >= 1 && n <= visible.len() => Ok(Some(n)),
                Ok(n) => Err(format!(
                    "--only: there is no file {n} (the torrent has files 1 to {})",
                    visible.len()
                )),
                Err(_) => Ok(None),
            }
        };
        if let Some(n) = number(item)? {
            wanted[visible[n - 1]] = true;
            continue;
        }
        if let Some((a, b)) = item.split_once('-') {
            if let (Some(a), Some(b)) = (number(a)?, number(b)?) {
                if a > b {
                    return Err(format!("--only: the range {item:?} runs backwards"));
                }
                for n in a..=b {
                    wanted[visible[n - 1]] = true;
                }
                continue;
            }
        }
        let pattern =
            glob::Pattern::new(item).map_err(|e| format!("--only: bad pattern {item:?}: {e}"))?;
        let mut matched = false;
        for &i in &visible {
            let path = info.files()[i].path().as_str();
            let inner = if multi {
                path.split_once('/').map_or(path, |(_, rest)| rest)
            } else {
                path
            };
            if pattern.matches(path) || pattern.matches(inner) {
                wanted[i] = true;
                matched = true;
            }
        }
        if !matched {
            return Err(format!("--only: no file matches {item:?}"));
        }
    }
    if !wanted.iter().any(|w| *w) {
        return Err("--only selects no file".to_string());
    }
    Ok(wanted
        .into_iter()
        .map(|w| if w { Priority::Normal } else { Priority::Skip })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_parse_with_binary_units() {
        for (text, want) in [
            ("262144", 262_144),
            ("500K", 512_000),
            ("500k", 512_000),
            ("2M", 2 << 20),
            ("1.5MiB", 1_572_864),
            ("256KiB", 262_144),
            ("1GiB", 1 << 30),
            ("3KB", 3_072),
            ("2.5MB", 2_621_440),
            ("0", 0),
            (" 10 K ", 10_240),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        assert_eq!(parse_rate("500K/s"), Ok(512_000));
        assert_eq!(parse_rate("1.5MiB"), Ok(1_572_864));
        for bad in [
            "",
            "K",
            "fast",
            "1.2.3M",
            "5X",
            "-1",
            "99999999999999999999G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn plan(listen: &str, d: Discovery) -> DiscoveryPlan {
        d.plan(listen.parse().unwrap()).unwrap()
    }

    #[test]
    fn a_loopback_listen_address_turns_discovery_off_unless_named() {
        let p = plan("127.0.0.1:0", Discovery::default());
        assert!(p.loopback_only);
        assert!(!p.dht && !p.lsd && !p.upnp && !p.natpmp);
        assert!(p.tracker_allowed("http://127.0.0.1:1/announce"));
        assert!(p.tracker_allowed("udp://localhost:1"));
        assert!(p.tracker_allowed("udp://127.0.0.1:6969"));
        assert!(p.tracker_allowed("udp://[::1]:6969/announce"));
        assert!(!p.tracker_allowed("udp://[2001:db8::1]:6969"));
        assert!(p.tracker_allowed("http://[::1]:1/announce"));
        assert!(!p.tracker_allowed("http://tracker.example/announce"));
        assert!(!p.tracker_allowed("udp://192.0.2.1:6969"));
        let reach = p.reach(&["192.0.2.5:1".parse().unwrap()]).unwrap();
        assert!(reach.allows("192.0.2.5".parse().unwrap()));
        assert!(!reach.allows("192.0.2.6".parse().unwrap()));
        assert!(reach.allows("127.0.0.1".parse().unwrap()));

        // Named bootstrap nodes switch the DHT on, and only those are reachable.
        let named = Discovery {
            dht_bootstrap: vec!["127.0.0.1:7000".into()],
            ..Discovery::default()
        };
        let p = plan("[::1]:0", named);
        assert!(p.dht && p.loopback_only);
        assert_eq!(p.dht_bootstrap, vec!["127.0.0.1:7000".parse().unwrap()]);
        let off = Discovery {
            no_dht: true,
            dht_bootstrap: vec!["127.0.0.1:7000".into()],
            ..Discovery::default()
        };
        assert!(!plan("127.0.0.1:0", off).dht);
    }

    #[test]
    fn dht_settings_use_the_public_routers_only_off_loopback() {
        let open = plan("0.0.0.0:6881", Discovery::default())
            .dht_settings()
            .unwrap();
        assert_eq!(open.bootstrap, PUBLIC_ROUTERS.map(String::from).to_vec());
        assert_eq!(
            plan("127.0.0.1:0", Discovery::default()).dht_settings(),
            None
        );
        let named = Discovery {
            dht_bootstrap: vec!["127.0.0.1:7000".into()],
            ..Discovery::default()
        };
        let loopback = plan("127.0.0.1:0", named.clone()).dht_settings().unwrap();
        assert_eq!(loopback.bootstrap, vec!["127.0.0.1:7000".to_string()]);
        let elsewhere = plan("0.0.0.0:6881", named).dht_settings().unwrap();
        assert_eq!(elsewhere.bootstrap, vec!["127.0.0.1:7000".to_string()]);
        let off = Discovery {
            no_dht: true,
            ..Discovery::default()
        };
        assert_eq!(plan("0.0.0.0:6881", off).dht_settings(), None);
    }

    #[test]
    fn other_listen_addresses_follow_the_switches() {
        let p = plan("0.0.0.0:6881", Discovery::default());
        assert!(p.dht && p.lsd && p.upnp && p.natpmp && !p.loopback_only);
        assert!(p.reach(&[]).is_none());
        assert!(p.tracker_allowed("http://tracker.example/announce"));
        let off = Discovery {
            no_dht: true,
            no_lsd: true,
            no_upnp: true,
            no_natpmp: true,
            ..Discovery::default()
        };
        let p = plan("0.0.0.0:6881", off);
        assert!(!p.dht && !p.lsd && !p.upnp && !p.natpmp);
    }
}
