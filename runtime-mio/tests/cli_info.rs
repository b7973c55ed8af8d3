//! `bitshoal info` end to end: for torrents made by libtorrent, mktorrent and transmission-create,
//! the text and `--json` show what libtorrent itself saw (the `.expected` sidecars next to them);
//! hostile torrents and bad magnet links fail with one line on stderr and a non-zero exit; magnet
//! links are described; the README's sample works and is reproducible.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bitshoal_core::magnet::Magnet;
use bitshoal_core::metainfo::Metainfo;
use bitshoal_std::create::{create_torrent, CreateOptions};
use serde_json::Value;

fn bitshoal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bitshoal"))
        .args(args)
        .output()
        .expect("run bitshoal")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn torrents_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "torrent"))
        .collect();
    out.sort();
    out
}

/// The libtorrent-made fixtures of core and the valid corpus, each with its sidecar.
fn sidecar_torrents() -> Vec<PathBuf> {
    let mut all = torrents_in(&repo().join("core/tests/fixtures"));
    all.extend(torrents_in(&repo().join("conformance-tests/corpus/valid")));
    assert!(all.len() >= 28, "only {} torrents with sidecars", all.len());
    all
}

/// One file line of a sidecar: offset, size, BEP 47 flags (`-` for none), path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SidecarFile {
    offset: u64,
    size: u64,
    flags: String,
    path: String,
}

/// libtorrent's view of a torrent, from its sidecar (formats of `gen-lt-fixtures.py` and
/// `lt_view.py`; the second has more keys).
#[derive(Debug, Default)]
struct Sidecar {
    v1: Option<String>,
    v2: Option<String>,
    name: String,
    piece_length: u64,
    pieces: u64,
    total: u64,
    files: Vec<SidecarFile>,
    private: Option<bool>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    trackers: Vec<(usize, String)>,
    web_seeds: Vec<String>,
    http_seeds: Vec<String>,
    nodes: Vec<(String, u64)>,
    similar: Vec<String>,
    collections: Vec<String>,
}

fn sidecar(torrent: &Path) -> Sidecar {
    let path = torrent.with_extension("expected");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut s = Sidecar::default();
    let hash = |h: &str| (h != "-").then(|| h.to_string());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, rest) = line.split_once(' ').expect("key value");
        let num = || rest.parse::<u64>().expect("number");
        match key {
            "v1" => s.v1 = hash(rest),
            "v2" => s.v2 = hash(rest),
            "name" => s.name = rest.into(),
            "piece_length" => s.piece_length = num(),
            "pieces" => s.pieces = num(),
            "total" => s.total = num(),
            "num_files" => {}
            "private" => s.private = Some(rest == "1"),
            "creation_date" => s.creation_date = Some(rest.parse().expect("date")),
            "comment" => s.comment = Some(rest.into()),
            "created_by" => s.created_by = Some(rest.into()),
            "tracker" => {
                let (tier, url) = rest.split_once(' ').expect("tier url");
                s.trackers.push((tier.parse().expect("tier"), url.into()));
            }
            "web_seed" => s.web_seeds.push(rest.into()),
            "http_seed" => s.http_seeds.push(rest.into()),
            "node" => {
                let (host, port) = rest.rsplit_once(' ').expect("host port");
                s.nodes.push((host.into(), port.parse().expect("port")));
            }
            "similar" => s.similar.push(rest.into()),
            "collection" => s.collections.push(rest.into()),
            "file" => {
                let mut parts = rest.splitn(4, ' ');
                let mut next = || parts.next().expect("file field").to_string();
                let (offset, size, flags, path) = (next(), next(), next(), next());
                s.files.push(SidecarFile {
                    offset: offset.parse().expect("offset"),
                    size: size.parse().expect("size"),
                    flags,
                    path,
                });
            }
            "symlink" => {}
            other => panic!("{}: unknown key {other}", path.display()),
        }
    }
    s
}

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The value after `key:` on its line of the text output.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn text_shows_libtorrents_hashes_sizes_and_files() {
    for path in sidecar_torrents() {
        let what = path.display().to_string();
        let want = sidecar(&path);
        let text = stdout_of(&bitshoal(&["info", &what]), &what);

        assert_eq!(field(&text, "name"), Some(want.name.as_str()), "{what}");
        assert_eq!(
            field(&text, "info-hash v1"),
            want.v1.as_deref(),
            "{what}\n{text}"
        );
        assert_eq!(
            field(&text, "info-hash v2"),
            want.v2.as_deref(),
            "{what}\n{text}"
        );
        let version = match (&want.v1, &want.v2) {
            (Some(_), None) => "v1",
            (None, Some(_)) => "v2",
            _ => "hybrid",
        };
        assert!(
            field(&text, "version").is_some_and(|v| v.starts_with(version)),
            "{what}"
        );
        let content: u64 = want
            .files
            .iter()
            .filter(|f| !f.flags.contains('p'))
            .map(|f| f.size)
            .sum();
        let size = field(&text, "size").expect("size line");
        assert!(
            size.ends_with(&format!("({content} bytes)")) || size == format!("{content} bytes"),
            "{what}: size {size}, want {content}"
        );
        let pieces = field(&text, "pieces").expect("pieces line");
        assert!(
            pieces.starts_with(&format!("{} × ", want.pieces))
                && pieces.contains(&format!("{} bytes", want.piece_length)),
            "{what}: pieces {pieces}"
        );
        if let Some(private) = want.private {
            assert_eq!(
                field(&text, "private"),
                Some(if private { "yes" } else { "no" }),
                "{what}"
            );
        }
        // Every real file is listed with its exact size; padding files are not, by default.
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
        for f in &want.files {
            let listed = rows.iter().any(|row| {
                let mut cols = row.split_whitespace();
                cols.next() == Some(f.size.to_string().as_str())
                    && (row.ends_with(&format!("  {}", f.path))
                        || row.contains(&format!("  {} -> ", f.path)))
            });
            assert_eq!(listed, !f.flags.contains('p'), "{what}: {f:?}\n{text}");
        }
        for (_, url) in &want.trackers {
            assert!(
                text.contains(&format!(": {url}\n")),
                "{what}: tracker {url}"
            );
        }
        for url in want.web_seeds.iter().chain(&want.http_seeds) {
            assert!(text.contains(&format!("  {url}\n")), "{what}: seed {url}");
        }
    }
}

/// The file list of `--json`, as sidecar file lines.
fn json_files(v: &Value) -> Vec<SidecarFile> {
    v["files"]
        .as_array()
        .expect("files array")
        .iter()
        .map(|f| {
            let flag = |key: &str| f[key].as_bool().expect("bool attribute");
            let flags: String = [
                (flag("pad"), 'p'),
                (flag("hidden"), 'h'),
                (flag("executable"), 'x'),
                (flag("symlink"), 'l'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            SidecarFile {
                offset: f["offset"].as_u64().expect("offset"),
                size: f["size"].as_u64().expect("size"),
                flags: if flags.is_empty() { "-".into() } else { flags },
                path: f["path"].as_str().expect("path").into(),
            }
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn json_has_libtorrents_values_for_corpus_torrents() {
    let corpus = repo().join("conformance-tests/corpus/valid");
    for name in [
        "mk-multi-tiers",
        "mk-private-webseeds",
        "tr-multi-s32-comment",
        "tr-private",
        "lt-v1-seeds-similar",
        "lt-v1-canonical-pad",
        "lt-v2-deep-32k",
        "lt-hybrid-symlink-exec",
    ] {
        let path = corpus.join(format!("{name}.torrent"));
        let want = sidecar(&path);
        let out = bitshoal(&["info", "--json", path.to_str().expect("UTF-8 path")]);
        let v: Value = serde_json::from_str(&stdout_of(&out, name)).expect("valid JSON");

        assert_eq!(v["kind"], "torrent", "{name}");
        assert_eq!(v["name"], want.name.as_str(), "{name}");
        assert_eq!(v["info_hash_v1"].as_str(), want.v1.as_deref(), "{name}");
        assert_eq!(v["info_hash_v2"].as_str(), want.v2.as_deref(), "{name}");
        assert_eq!(v["piece_length"], want.piece_length, "{name}");
        assert_eq!(v["piece_count"], want.pieces, "{name}");
        assert_eq!(v["total_size"], want.total, "{name}");
        let content: u64 = want
            .files
            .iter()
            .filter(|f| !f.flags.contains('p'))
            .map(|f| f.size)
            .sum();
        assert_eq!(v["content_size"], content, "{name}");
        assert_eq!(json_files(&v), want.files, "{name}");
        assert_eq!(
            v["private"],
            want.private.expect("lt_view sidecar"),
            "{name}"
        );
        assert_eq!(v["comment"].as_str(), want.comment.as_deref(), "{name}");
        assert_eq!(
            v["created_by"].as_str(),
            want.created_by.as_deref(),
            "{name}"
        );
        let date = want.creation_date.expect("lt_view sidecar");
        assert_eq!(v["creation_date"].as_i64().unwrap_or(0), date, "{name}");
        assert_eq!(v["creation_date_iso"].is_string(), date != 0, "{name}");

        // Tiers as sets (libtorrent shuffles within a tier).
        let tiers: Vec<BTreeSet<String>> = v["trackers"]
            .as_array()
            .expect("tiers")
            .iter()
            .map(|t| strings(t).into_iter().collect())
            .collect();
        let mut want_tiers: Vec<BTreeSet<String>> = Vec::new();
        for (tier, url) in &want.trackers {
            if want_tiers.len() <= *tier {
                want_tiers.resize(tier + 1, BTreeSet::new());
            }
            want_tiers[*tier].insert(url.clone());
        }
        assert_eq!(tiers, want_tiers, "{name}");
        assert_eq!(strings(&v["web_seeds"]), want.web_seeds, "{name}");
        assert_eq!(strings(&v["http_seeds"]), want.http_seeds, "{name}");
        let nodes: Vec<(String, u64)> = v["dht_nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["host"].as_str().expect("host").into(),
                    n["port"].as_u64().expect("port"),
                )
            })
            .collect();
        assert_eq!(nodes, want.nodes, "{name}");
        assert_eq!(strings(&v["similar"]), want.similar, "{name}");
        assert_eq!(strings(&v["collections"]), want.collections, "{name}");
    }
}

#[test]
fn padding_files_are_counted_unless_shown_and_the_list_can_be_cut() {
    let path = repo().join("core/tests/fixtures/lt-hybrid-64k-symlink.torrent");
    let path = path.to_str().expect("UTF-8 path");
    let want = sidecar(Path::new(path));
    let pads: Vec<&SidecarFile> = want.files.iter().filter(|f| f.flags == "p").collect();
    assert!(pads.len() >= 2, "the fixture has padding");
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  ") && !l.contains("tier") && !l.contains("://"))
            .filter(|l| !l.trim_start().starts_with("127.0.0.1"))
            .map(String::from)
            .collect()
    };

    let text = stdout_of(&bitshoal(&["info", path]), "default");
    assert!(!text.contains("/.pad/"), "{text}");
    assert!(
        field(&text, "files").is_some_and(|f| f.contains(&format!("{} pad files", pads.len()))),
        "{text}"
    );
    assert_eq!(rows(&text).len(), want.files.len() - pads.len(), "{text}");

    let text = stdout_of(&bitshoal(&["info", "--show-pad", path]), "--show-pad");
    assert_eq!(rows(&text).len(), want.files.len(), "{text}");
    for pad in pads {
        assert!(
            text.lines()
                .any(|l| l.ends_with(&format!("p---  {}", pad.path))),
            "{pad:?}\n{text}"
        );
    }

    let text = stdout_of(
        &bitshoal(&["info", "--files-limit", "2", path]),
        "--files-limit",
    );
    let shown = rows(&text);
    assert_eq!(shown.len(), 3, "two files and the rest line:\n{text}");
    let rest = want.files.len() - want.files.iter().filter(|f| f.flags == "p").count() - 2;
    assert!(
        shown[2].contains(&format!("and {rest} more")),
        "{}",
        shown[2]
    );

    // --files-limit only applies to text.
    let out = bitshoal(&["info", "--json", "--files-limit", "2", path]);
    assert!(!out.status.success());
}

#[test]
fn hostile_torrents_fail_with_one_line_naming_the_file() {
    let torrents = torrents_in(&repo().join("conformance-tests/corpus/hostile"));
    assert!(
        torrents.len() >= 60,
        "only {} hostile torrents",
        torrents.len()
    );
    for path in torrents {
        let arg = path.to_str().expect("UTF-8 path");
        let bytes = fs::read(&path).expect("readable");
        let error = Metainfo::from_bytes(&bytes).expect_err("hostile torrents are refused");
        let out = bitshoal(&["info", arg]);
        assert_eq!(out.status.code(), Some(1), "{arg}");
        assert!(out.stdout.is_empty(), "{arg}: nothing on stdout");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("bitshoal: {arg}: {error}\n"),
            "{arg}"
        );
        // --json fails the same way.
        let out = bitshoal(&["info", "--json", arg]);
        assert_eq!(out.status.code(), Some(1), "{arg}");
        assert!(out.stdout.is_empty(), "{arg}");
    }
}

#[test]
fn unreadable_files_fail_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.torrent");
    let missing = missing.to_str().expect("UTF-8 path");
    let out = bitshoal(&["info", missing]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("bitshoal: {missing}: ")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A name with a newline stays on one line.
    let out = bitshoal(&["info", "bad\nname.torrent"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("bitshoal: bad\\nname.torrent: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn control_characters_from_the_torrent_are_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("payload.bin"), vec![7u8; 1000]).expect("payload");
    let options = CreateOptions {
        comment: Some("clear\x1b[2Jscreen\nnext".into()),
        trackers: vec![vec!["http://t.example/\x07ann".into()]],
        threads: 1,
        ..CreateOptions::default()
    };
    let made = create_torrent(&dir.path().join("payload.bin"), &options, |_, _| {})
        .expect("create a torrent");
    let torrent = dir.path().join("t.torrent");
    fs::write(&torrent, &made.bytes).expect("write torrent");
    let text = stdout_of(
        &bitshoal(&["info", torrent.to_str().expect("UTF-8 path")]),
        "control characters",
    );
    assert!(!text.contains(['\x1b', '\x07']), "{text:?}");
    assert_eq!(
        field(&text, "comment"),
        Some("clear\\u{1b}[2Jscreen\\nnext")
    );
    assert!(text.contains("http://t.example/\\u{7}ann"), "{text}");
    // JSON keeps the exact text (escaped by JSON itself).
    let out = bitshoal(&["info", "--json", torrent.to_str().expect("UTF-8 path")]);
    let v: Value = serde_json::from_str(&stdout_of(&out, "json")).expect("valid JSON");
    assert_eq!(v["comment"], "clear\x1b[2Jscreen\nnext");
}

#[test]
fn magnet_links_are_described() {
    // The hashes of a corpus torrent, so they are real ones.
    let want = sidecar(&repo().join("conformance-tests/corpus/valid/lt-hybrid-big-128k.torrent"));
    let (v1, v2) = (want.v1.expect("hybrid"), want.v2.expect("hybrid"));
    let link = format!(
        "magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=blob+file&xl=1048593\
         &tr=http%3A%2F%2Ft1.example%2Fann&tr=udp://t2.example:6969&ws=http://ws.example/\
         &x.pe=127.0.0.9:6881&x.pe=[::1]:7000&so=0,2-3"
    );
    let parsed = Magnet::parse(&link).expect("a valid link");

    let text = stdout_of(&bitshoal(&["info", &link]), "magnet text");
    assert_eq!(field(&text, "name"), Some("blob file"));
    assert_eq!(field(&text, "version"), Some("hybrid (v1 + v2)"));
    assert_eq!(field(&text, "info-hash v1"), Some(v1.as_str()));
    assert_eq!(field(&text, "info-hash v2"), Some(v2.as_str()));
    assert_eq!(field(&text, "size"), Some("1.0 MiB (1048593 bytes)"));
    assert!(text.contains("  tier 1: http://t1.example/ann\n"), "{text}");
    assert!(text.contains("  tier 2: udp://t2.example:6969\n"), "{text}");
    assert!(text.contains("  http://ws.example/\n"), "{text}");
    assert!(text.contains("  127.0.0.9:6881\n") && text.contains("  [::1]:7000\n"));
    assert_eq!(field(&text, "select only"), Some("files 0,2-3 (BEP 53)"));

    let out = bitshoal(&["info", "--json", &link]);
    let v: Value = serde_json::from_str(&stdout_of(&out, "magnet json")).expect("valid JSON");
    assert_eq!(v["kind"], "magnet");
    assert_eq!(v["name"], "blob file");
    assert_eq!(v["version"], "hybrid");
    assert_eq!(v["info_hash_v1"], v1.as_str());
    assert_eq!(v["info_hash_v2"], v2.as_str());
    assert_eq!(v["exact_length"], 1_048_593);
    assert_eq!(
        v["trackers"],
        serde_json::json!([["http://t1.example/ann"], ["udp://t2.example:6969"]])
    );
    assert_eq!(strings(&v["web_seeds"]), parsed.web_seeds());
    let peers: Vec<String> = parsed.peers().iter().map(ToString::to_string).collect();
    assert_eq!(strings(&v["peers"]), peers);
    assert_eq!(v["select_only"], serde_json::json!([[0, 0], [2, 3]]));

    // A v1 link with nothing else: nulls and empty lists, not missing keys.
    let out = bitshoal(&["info", "--json", &format!("magnet:?xt=urn:btih:{v1}")]);
    let v: Value = serde_json::from_str(&stdout_of(&out, "bare magnet")).expect("valid JSON");
    assert_eq!(v["version"], "v1");
    for key in ["name", "info_hash_v2", "exact_length", "select_only"] {
        assert!(v[key].is_null(), "{key}: {}", v[key]);
    }
    for key in ["trackers", "web_seeds", "peers"] {
        assert_eq!(v[key], serde_json::json!([]), "{key}");
    }
}

#[test]
fn bad_magnet_links_fail_with_the_parsers_error() {
    for link in [
        "magnet:?xt=urn:btih:zz",
        "magnet:?dn=no+hash",
        "MAGNET:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&so=5-1",
    ] {
        let error = Magnet::parse(link).expect_err("a bad link");
        let out = bitshoal(&["info", link]);
        assert_eq!(out.status.code(), Some(1), "{link}");
        assert!(out.stdout.is_empty(), "{link}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("bitshoal: {link}: {error}\n"),
        );
    }
    // A long link is shortened in the error line.
    let long = format!("magnet:?xt=urn:btih:zz&dn={}", "x".repeat(5000));
    let out = bitshoal(&["info", &long]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.len() < 300 && err.contains("…: magnet: "), "{err}");
}

#[test]
fn the_readme_sample_works_and_is_reproducible() {
    let sample = repo().join("runtime-mio/samples/sample.torrent");
    let bytes = fs::read(&sample).expect("the bundled sample");
    let meta = Metainfo::from_bytes(&bytes).expect("a valid sample");
    let text = stdout_of(
        &bitshoal(&["info", sample.to_str().expect("UTF-8 path")]),
        "sample",
    );
    assert_eq!(
        field(&text, "info-hash v1"),
        meta.hashes().v1().map(|h| h.to_string()).as_deref()
    );
    assert_eq!(
        field(&text, "info-hash v2"),
        meta.hashes().v2().map(|h| h.to_string()).as_deref()
    );
    assert_eq!(field(&text, "version"), Some("hybrid (v1 + v2)"));

    // make-sample.sh, run with this binary, writes the same bytes.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(repo().join("runtime-mio/samples/make-sample.sh"))
        .arg(dir.path())
        .env("BITSHOAL", env!("CARGO_BIN_EXE_bitshoal"))
        .output()
        .expect("run make-sample.sh");
    assert!(
        out.status.success(),
        "make-sample.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remade = fs::read(dir.path().join("sample.torrent")).expect("remade sample");
    assert!(
        remade == bytes,
        "runtime-mio/samples/sample.torrent is stale: rerun runtime-mio/samples/make-sample.sh"
    );
}
