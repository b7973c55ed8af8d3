//! Magnet links agree with libtorrent 2.0 both ways: libtorrent reads what we format, and we
//! read what libtorrent formats. Needs `/usr/bin/python3` with `libtorrent` (installed by
//! `test.sh`); nothing touches the network.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bitshoal_core::id::{InfoHashV1, InfoHashV2, InfoHashes};
use bitshoal_core::magnet::{Magnet, PeerAddr, SelectOnly};
use serde_json::{json, Value};

/// Reads JSON requests from stdin, one per line; answers each with one JSON line.
const SCRIPT: &str = r#"
import json, sys
import libtorrent as lt
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "parse":
        p = lt.parse_magnet_uri(req["uri"])
        out = {
            "v1": str(p.info_hashes.v1) if p.info_hashes.has_v1() else None,
            "v2": str(p.info_hashes.v2) if p.info_hashes.has_v2() else None,
            "name": p.name,
            "trackers": list(p.trackers),
            "web_seeds": list(p.url_seeds),
            "peers": ["[%s]:%d" % (h, port) if ":" in h else "%s:%d" % (h, port) for h, port in p.peers],
            "priorities": list(p.file_priorities),
        }
    else:
        p = lt.add_torrent_params()
        v1 = lt.sha1_hash(bytes.fromhex(req["v1"])) if req["v1"] else lt.sha1_hash()
        v2 = lt.sha256_hash(bytes.fromhex(req["v2"])) if req["v2"] else lt.sha256_hash()
        p.info_hashes = lt.info_hash_t(v1, v2)
        p.name = req["name"]
        p.trackers = req["trackers"]
        p.url_seeds = req["web_seeds"]
        p.peers = [(h, port) for h, port in req["peers"]]
        p.file_priorities = req["priorities"]
        out = {"uri": lt.make_magnet_uri(p)}
    print(json.dumps(out), flush=True)
"#;

/// Runs the requests through one libtorrent process.
fn libtorrent(requests: &[Value]) -> Vec<Value> {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (test.sh installs python3-libtorrent)");
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        for r in requests {
            writeln!(stdin, "{r}").expect("write request");
        }
    }
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "python3 libtorrent failed");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), requests.len());
    lines
}

fn v1(seed: u8) -> InfoHashV1 {
    InfoHashV1(std::array::from_fn(|i| {
        seed.wrapping_mul(31).wrapping_add(i as u8)
    }))
}

fn v2(seed: u8) -> InfoHashV2 {
    InfoHashV2(std::array::from_fn(|i| {
        seed.wrapping_mul(17) ^ (i as u8 * 3)
    }))
}

/// Magnets using every field libtorrent models (it drops host-name peers, so none here).
fn samples() -> Vec<Magnet> {
    let names = [
        "plain",
        "a b+c&d=e%f#g?",
        "\u{e9}t\u{e9} \u{2713} \u{1f600}",
        "",
    ];
    let trackers = [
        "udp://tracker.example.org:1337/announce",
        "http://t.example/announce?key=a+b&x=%41",
        "https://[::1]:8443/announce",
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let seed = i as u8;
        let hashes = match i % 3 {
            0 => InfoHashes::V1(v1(seed)),
            1 => InfoHashes::V2(v2(seed)),
            _ => InfoHashes::Hybrid(v1(seed), v2(seed)),
        };
        let mut m = Magnet::new(hashes);
        m.set_display_name(Some((*name).to_owned()));
        for t in &trackers[..i.min(trackers.len())] {
            m.add_tracker(*t);
        }
        if i % 2 == 1 {
            m.add_web_seed("http://seed.example/files/a b");
            m.add_peer("127.1.2.3:6881".parse().unwrap());
            m.add_peer("[::1]:51413".parse().unwrap());
            m.set_select_only(Some(
                SelectOnly::from_ranges([0..=0, 2..=4, 9..=9]).unwrap(),
            ));
        }
        out.push(m);
    }
    out
}

fn priorities(so: Option<&SelectOnly>) -> Vec<i64> {
    let Some(so) = so else { return Vec::new() };
    let last = *so.ranges().last().expect("non-empty").end();
    (0..=last)
        .map(|i| if so.contains(i) { 4 } else { 0 })
        .collect()
}

fn peers_text(m: &Magnet) -> Vec<String> {
    m.peers().iter().map(PeerAddr::to_string).collect()
}

#[test]
fn libtorrent_reads_what_we_format() {
    let magnets = samples();
    let requests: Vec<Value> = magnets
        .iter()
        .map(|m| json!({"op": "parse", "uri": m.to_string()}))
        .collect();
    for (m, got) in magnets.iter().zip(libtorrent(&requests)) {
        let uri = m.to_string();
        let h = m.info_hashes();
        assert_eq!(got["v1"], json!(h.v1().map(|h| h.to_string())), "{uri}");
        assert_eq!(got["v2"], json!(h.v2().map(|h| h.to_string())), "{uri}");
        assert_eq!(got["name"], json!(m.display_name().unwrap_or("")), "{uri}");
        assert_eq!(got["trackers"], json!(m.trackers()), "{uri}");
        assert_eq!(got["web_seeds"], json!(m.web_seeds()), "{uri}");
        assert_eq!(got["peers"], json!(peers_text(m)), "{uri}");
        assert_eq!(
            got["priorities"],
            json!(priorities(m.select_only())),
            "{uri}"
        );
    }
}

#[test]
fn we_read_what_libtorrent_formats() {
    let magnets = samples();
    let requests: Vec<Value> = magnets
        .iter()
        .map(|m| {
            let h = m.info_hashes();
            let peers: Vec<Value> = m
                .peers()
                .iter()
                .map(|p| match p {
                    PeerAddr::Ip(SocketAddr::V4(a)) => json!([a.ip().to_string(), a.port()]),
                    PeerAddr::Ip(SocketAddr::V6(a)) => json!([a.ip().to_string(), a.port()]),
                    PeerAddr::Host(_) => unreachable!("samples have no host names"),
                })
                .collect();
            json!({
                "op": "make",
                "v1": h.v1().map(|h| h.to_string()),
                "v2": h.v2().map(|h| h.to_string()),
                "name": m.display_name().unwrap_or(""),
                "trackers": m.trackers(),
                "web_seeds": m.web_seeds(),
                "peers": peers,
                "priorities": priorities(m.select_only()),
            })
        })
        .collect();
    for (m, got) in magnets.iter().zip(libtorrent(&requests)) {
        let uri = got["uri"].as_str().expect("uri string");
        assert_eq!(Magnet::parse(uri).as_ref(), Ok(m), "{uri}");
    }
}
