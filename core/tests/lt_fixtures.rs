//! Torrents made by libtorrent 2.0 (`tests/fixtures/lt-*.torrent`, made by
//! `gen-lt-fixtures.py`) must parse to what libtorrent itself reported for them: info-hashes,
//! name, geometry and the file list with padding, offsets and attributes (`lt-*.expected`).

use std::fs;
use std::path::{Path, PathBuf};

use bitshoal_core::id::parse_hex;
use bitshoal_core::metainfo::{Metainfo, Version};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(Debug, Default)]
struct Expected {
    v1: Option<[u8; 20]>,
    v2: Option<[u8; 32]>,
    name: String,
    piece_length: u32,
    pieces: u32,
    total: u64,
    /// (offset, size, flags, path)
    files: Vec<(u64, u64, String, String)>,
}

fn read_expected(path: &Path) -> Expected {
    let text = fs::read_to_string(path).expect("sidecar readable");
    let mut e = Expected::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, rest) = line.split_once(' ').expect("key value");
        match key {
            "v1" => e.v1 = parse_hex(rest),
            "v2" => e.v2 = parse_hex(rest),
            "name" => e.name = rest.to_string(),
            "piece_length" => e.piece_length = rest.parse().expect("number"),
            "pieces" => e.pieces = rest.parse().expect("number"),
            "total" => e.total = rest.parse().expect("number"),
            "file" => {
                let mut parts = rest.splitn(4, ' ');
                let mut next = || parts.next().expect("file field").to_string();
                let (offset, size, flags, path) = (next(), next(), next(), next());
                e.files.push((
                    offset.parse().expect("offset"),
                    size.parse().expect("size"),
                    flags,
                    path,
                ));
            }
            other => panic!("unknown sidecar key {other}"),
        }
    }
    e
}

fn flags_of(f: &bitshoal_core::metainfo::FileEntry) -> String {
    let a = f.attributes();
    let s: String = [
        (a.pad, 'p'),
        (a.hidden, 'h'),
        (a.executable, 'x'),
        (a.symlink, 'l'),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, c)| *c)
    .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

#[test]
fn libtorrent_made_torrents_match_libtorrents_view() {
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(fixtures())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "torrent"))
        .collect();
    entries.sort();
    for path in entries {
        let bytes = fs::read(&path).expect("torrent readable");
        let expected = read_expected(&path.with_extension("expected"));
        let meta =
            Metainfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let info = meta.info();
        let what = path.display();
        assert_eq!(info.hashes().v1().map(|h| h.0), expected.v1, "{what}");
        assert_eq!(info.hashes().v2().map(|h| h.0), expected.v2, "{what}");
        assert_eq!(info.name(), expected.name, "{what}");
        assert_eq!(info.piece_length(), expected.piece_length, "{what}");
        assert_eq!(info.layout().piece_count(), expected.pieces, "{what}");
        assert_eq!(info.layout().total_length(), expected.total, "{what}");
        let ours: Vec<_> = info
            .files()
            .iter()
            .map(|f| (f.offset(), f.length(), flags_of(f), f.path().to_string()))
            .collect();
        assert_eq!(ours, expected.files, "{what}");

        // Everything the generator put outside `info`.
        assert_eq!(
            meta.trackers(),
            [
                vec!["http://127.0.0.1:6969/announce".to_string()],
                vec!["udp://127.0.0.1:6969".to_string()]
            ],
            "{what}"
        );
        assert_eq!(meta.url_list(), ["http://127.0.0.1:8080/seed/"], "{what}");
        assert_eq!(meta.nodes().len(), 1, "{what}");
        assert_eq!(meta.nodes()[0].host, "127.0.0.1");
        assert_eq!(meta.nodes()[0].port, 6881);
        assert_eq!(meta.comment(), Some("bitshoal fixture"));
        assert_eq!(meta.creation_date(), Some(1_700_000_000));
        assert!(meta
            .created_by()
            .is_some_and(|c| c.starts_with("libtorrent")));

        // v2: every file bigger than a piece has its piece layer, one hash per piece.
        if info.version() != Version::V1 {
            for (i, f) in info.files().iter().enumerate() {
                let layer = meta.piece_layer(i);
                if f.length() > u64::from(info.piece_length()) {
                    let pieces = info.layout().file_pieces(i).expect("file exists");
                    assert_eq!(layer.map(|l| l.len() / 32), Some(pieces.len()), "{what}");
                } else {
                    assert!(layer.is_none(), "{what}");
                }
                assert_eq!(f.pieces_root().is_some(), !f.is_pad() && f.length() > 0);
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} fixtures found");
}

#[test]
fn libtorrent_symlinks_point_inside_the_torrent() {
    for name in ["lt-hybrid-64k-symlink", "lt-v2-64k-symlink"] {
        let bytes = fs::read(fixtures().join(format!("{name}.torrent"))).expect("fixture");
        let meta = Metainfo::from_bytes(&bytes).expect("valid");
        let link = &meta.info().files()[0];
        assert!(link.attributes().symlink, "{name}");
        assert_eq!(
            link.symlink_target().map(|t| t.as_str()),
            Some("big/x/one.bin"),
            "{name}"
        );
        let root = Path::new("/downloads");
        assert_eq!(
            link.symlink_target().expect("target").join_under(root),
            root.join("big").join("x").join("one.bin")
        );
    }
}
