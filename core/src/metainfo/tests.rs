//! Unit tests with small inline torrents built by a test-only encoder.

use proptest::prelude::*;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::*;
use crate::merkle;

/// A bencode value with owned contents; dictionaries are encoded with sorted keys.
#[derive(Clone, Debug)]
enum B {
    I(i64),
    S(Vec<u8>),
    L(Vec<B>),
    D(Vec<(Vec<u8>, B)>),
}

fn s(v: impl AsRef<[u8]>) -> B {
    B::S(v.as_ref().to_vec())
}

fn d(entries: Vec<(&str, B)>) -> B {
    B::D(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn path(components: &[&str]) -> B {
    B::L(components.iter().map(s).collect())
}

impl B {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            B::I(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::S(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            B::L(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.encode(out));
                out.push(b'e');
            }
            B::D(entries) => {
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'd');
                for (k, v) in sorted {
                    B::S(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Sets `key` in a dictionary (replacing it).
    fn set(&mut self, key: &str, value: B) -> &mut Self {
        let B::D(entries) = self else {
            panic!("not a dict")
        };
        entries.retain(|(k, _)| k != key.as_bytes());
        entries.push((key.as_bytes().to_vec(), value));
        self
    }

    fn remove(&mut self, key: &str) -> &mut Self {
        let B::D(entries) = self else {
            panic!("not a dict")
        };
        entries.retain(|(k, _)| k != key.as_bytes());
        self
    }

    fn get_mut(&mut self, key: &str) -> &mut B {
        let B::D(entries) = self else {
            panic!("not a dict")
        };
        &mut entries
            .iter_mut()
            .find(|(k, _)| k == key.as_bytes())
            .expect("key present")
            .1
    }
}

fn torrent(info: B) -> B {
    d(vec![("announce", s("http://t.invalid/a")), ("info", info)])
}

fn parse(t: &B) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&t.bytes())
}

fn v1_single(length: i64, piece_length: i64) -> B {
    let pieces = (length.max(0) as u64).div_ceil(piece_length.max(1) as u64) as usize;
    d(vec![
        ("name", s("file.bin")),
        ("length", B::I(length)),
        ("piece length", B::I(piece_length)),
        ("pieces", s(vec![7u8; pieces * 20])),
    ])
}

/// A v1 multi-file info with these (path, length, attr) files.
fn v1_multi(files: &[(&[&str], i64, &str)], piece_length: i64) -> B {
    let total: i64 = files.iter().map(|f| f.1).sum();
    let list = files
        .iter()
        .map(|(p, len, attr)| {
            let mut f = d(vec![("path", path(p)), ("length", B::I(*len))]);
            if !attr.is_empty() {
                f.set("attr", s(attr));
            }
            f
        })
        .collect();
    d(vec![
        ("name", s("root")),
        ("files", B::L(list)),
        ("piece length", B::I(piece_length)),
        (
            "pieces",
            s(vec![
                1u8;
                (total as u64).div_ceil(piece_length as u64) as usize
                    * 20
            ]),
        ),
    ])
}

/// Deterministic file contents.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

struct V2File {
    path: Vec<&'static str>,
    data: Vec<u8>,
}

/// The root and piece layer of `data` for `piece_length`.
fn merkle_of(data: &[u8], piece_length: u64) -> ([u8; 32], Vec<u8>) {
    let leaves = merkle::leaves_of(data);
    let root = merkle::root_from_layer(&leaves, 0);
    let height = merkle::piece_layer_height(piece_length).expect("power of two");
    let layer = merkle::layer_from_leaves(&leaves, height).concat();
    (root, layer)
}

/// A v2 torrent (info with `file tree`, and `piece layers`) for these files.
fn v2_torrent(files: &[V2File], piece_length: u64) -> B {
    let mut tree = d(vec![]);
    let mut layers = d(vec![]);
    for f in files {
        let mut leaf = d(vec![("length", B::I(f.data.len() as i64))]);
        if !f.data.is_empty() {
            let (root, layer) = merkle_of(&f.data, piece_length);
            leaf.set("pieces root", s(root));
            if f.data.len() as u64 > piece_length {
                let B::D(entries) = &mut layers else {
                    unreachable!()
                };
                entries.push((root.to_vec(), s(layer)));
            }
        }
        let mut node = &mut tree;
        for c in &f.path {
            let B::D(entries) = node else {
                panic!("file inside a file")
            };
            if !entries.iter().any(|(k, _)| k == c.as_bytes()) {
                entries.push((c.as_bytes().to_vec(), d(vec![])));
            }
            node = node.get_mut(c);
        }
        node.set("", leaf);
    }
    d(vec![
        ("announce", s("http://t.invalid/a")),
        (
            "info",
            d(vec![
                ("name", s("root")),
                ("meta version", B::I(2)),
                ("piece length", B::I(piece_length as i64)),
                ("file tree", tree),
            ]),
        ),
        ("piece layers", layers),
    ])
}

/// Adds the v1 half to a v2 torrent: `files` with padding after every unaligned file but the
/// last, and the SHA-1 of each piece of the padded stream.
fn make_hybrid(v2: &mut B, files: &[V2File], piece_length: u64) {
    let mut stream = Vec::new();
    let mut list = Vec::new();
    for (i, f) in files.iter().enumerate() {
        list.push(d(vec![
            ("path", path(&f.path)),
            ("length", B::I(f.data.len() as i64)),
        ]));
        stream.extend_from_slice(&f.data);
        let gap = (piece_length - stream.len() as u64 % piece_length) % piece_length;
        if gap > 0 && i + 1 < files.len() {
            list.push(d(vec![
                ("path", path(&[".pad", &gap.to_string()])),
                ("length", B::I(gap as i64)),
                ("attr", s("p")),
            ]));
            stream.resize(stream.len() + gap as usize, 0);
        }
    }
    let pieces: Vec<u8> = stream
        .chunks(piece_length as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    let info = v2.get_mut("info");
    info.set("files", B::L(list));
    info.set("pieces", s(pieces));
}

fn sample_v2_files() -> Vec<V2File> {
    vec![
        V2File {
            path: vec!["a.bin"],
            data: content(40_000, 1),
        },
        V2File {
            path: vec!["empty"],
            data: vec![],
        },
        V2File {
            path: vec!["sub", "big.bin"],
            data: content(150_000, 2),
        },
        V2File {
            path: vec!["sub", "c.txt"],
            data: content(5, 3),
        },
    ]
}

#[test]
fn v1_single_file() {
    let info = v1_single(100_000, 32_768);
    let meta = parse(&torrent(info.clone())).expect("valid");
    let i = meta.info();
    assert_eq!(i.version(), Version::V1);
    assert_eq!(i.name(), "file.bin");
    assert_eq!(i.raw().as_ref(), info.bytes().as_slice());
    let sha1: [u8; 20] = Sha1::digest(info.bytes()).into();
    assert_eq!(
        meta.hashes(),
        crate::id::InfoHashes::V1(crate::id::InfoHashV1(sha1))
    );
    assert_eq!(i.files().len(), 1);
    assert_eq!(i.files()[0].path().as_str(), "file.bin");
    assert_eq!(i.layout().piece_count(), 4);
    let last = i.layout().piece(3).expect("four pieces");
    assert_eq!(i.piece_hash_v1(last), Some([7u8; 20]));
    assert_eq!(i.layout().piece(4), None);
    assert_eq!(meta.trackers(), [vec!["http://t.invalid/a".to_string()]]);
    // The info dict alone (BEP 9) gives the same Info.
    let alone = Info::from_bytes(&info.bytes()).expect("valid");
    assert_eq!(alone.hashes(), i.hashes());
    assert_eq!(alone.files(), i.files());
}

#[test]
fn v1_multi_file_paths_and_offsets() {
    let info = v1_multi(
        &[
            (&["a", "x.txt"], 10, "x"),
            (&["b.txt"], 0, ""),
            (&[".pad", "6"], 6, "p"),
            (&["c.txt"], 20, "h"),
        ],
        16,
    );
    let meta = parse(&torrent(info)).expect("valid");
    let files = meta.info().files();
    let summary: Vec<_> = files
        .iter()
        .map(|f| (f.path().as_str(), f.offset(), f.length(), f.is_pad()))
        .collect();
    assert_eq!(
        summary,
        [
            ("root/a/x.txt", 0, 10, false),
            ("root/b.txt", 10, 0, false),
            ("root/.pad/6", 10, 6, true),
            ("root/c.txt", 16, 20, false),
        ]
    );
    assert!(files[0].attributes().executable);
    assert!(files[3].attributes().hidden);
    assert_eq!(meta.info().content_length(), 30);
    assert_eq!(meta.info().layout().piece_count(), 3);
}

/// BEP 47 `symlink path` is root-relative, but libtorrent 2.0 writes the link's own (link-relative)
/// target and reads both: root-relative first, then relative to the link's directory. The expected
/// targets are what libtorrent 2.0.8's `file_storage::symlink()` reports for the same torrents,
/// except for a target found nowhere, which libtorrent points at the link itself.
#[test]
fn symlink_targets_resolve_as_libtorrent_does() {
    for (symlink_path, want) in [
        (&["data.bin"][..], "root/lib/data.bin"),
        (&["lib", "data.bin"], "root/lib/data.bin"),
        (&["x.bin"], "root/x.bin"),
        (&["sub", "y.bin"], "root/lib/sub/y.bin"),
        (&["sub"], "root/lib/sub"),
        (&["lib"], "root/lib"),
        (&["nothere"], "root/nothere"),
    ] {
        let mut info = v1_multi(
            &[
                (&["lib", "x.bin"], 100, ""),
                (&["x.bin"], 100, ""),
                (&["lib", "sub", "y.bin"], 100, ""),
                (&["lib", "data.bin"], 100, ""),
                (&["lib", "link"], 0, "l"),
            ],
            16384,
        );
        let B::L(files) = info.get_mut("files") else {
            panic!("files is a list")
        };
        files
            .last_mut()
            .expect("the link")
            .set("symlink path", path(symlink_path));
        let meta = parse(&torrent(info)).expect("valid");
        let link = &meta.info().files()[4];
        assert_eq!(
            link.symlink_target().map(SafePath::as_str),
            Some(want),
            "{symlink_path:?}"
        );
    }
}

#[test]
fn utf8_variants_are_preferred() {
    let mut info = v1_multi(&[(&["\u{fffd}bad"], 5, "")], 16);
    info.set("name", s(b"\xff\xfe"));
    info.set("name.utf-8", s("good"));
    let B::L(files) = info.get_mut("files") else {
        unreachable!()
    };
    files[0].set("path", B::L(vec![s(b"\xc3\x28")]));
    files[0].set("path.utf-8", path(&["fine.txt"]));
    let meta = parse(&torrent(info.clone())).expect("valid");
    assert_eq!(meta.info().name(), "good");
    assert_eq!(meta.info().files()[0].path().as_str(), "good/fine.txt");
    // Without the UTF-8 variant the legacy bytes are refused, not mangled.
    info.remove("name.utf-8");
    assert_eq!(
        parse(&torrent(info)).unwrap_err(),
        MetainfoError::UnsafePath {
            file: None,
            error: PathError {
                component: "\u{fffd}\u{fffd}".into(),
                reason: UnsafeComponent::InvalidUtf8
            }
        }
    );
}

#[test]
fn outer_keys() {
    let mut t = torrent(v1_single(10, 16_384));
    t.set(
        "announce-list",
        B::L(vec![
            B::L(vec![s("http://a/1"), s("http://a/2"), B::I(3)]),
            B::L(vec![]),
            B::I(7),
            B::L(vec![s("udp://b/1"), s("http://a/1")]),
        ]),
    );
    t.set("url-list", s("http://seed/"));
    t.set("httpseeds", B::L(vec![s("http://hs/"), B::I(1)]));
    t.set(
        "nodes",
        B::L(vec![
            B::L(vec![s("127.0.0.1"), B::I(6881)]),
            B::L(vec![s("host"), B::I(70_000)]),
            B::L(vec![s("x")]),
        ]),
    );
    t.set("comment", s("plain"));
    t.set("comment.utf-8", s("utf8"));
    t.set(
        "similar",
        B::L(vec![s([1u8; 20]), s([2u8; 32]), s([3u8; 7])]),
    );
    t.set("collections", B::L(vec![s("c1"), s("c2")]));
    let info = t.get_mut("info");
    info.set("private", B::I(1));
    info.set("similar", B::L(vec![s([1u8; 20]), s([4u8; 20])]));
    info.set("collections", B::L(vec![s("c2"), s("c0")]));
    let meta = parse(&t).expect("valid");
    assert_eq!(
        meta.trackers(),
        [
            vec!["http://a/1".to_string(), "http://a/2".to_string()],
            vec!["udp://b/1".to_string()]
        ]
    );
    assert_eq!(meta.url_list(), ["http://seed/"]);
    assert_eq!(meta.http_seeds(), ["http://hs/"]);
    assert_eq!(
        meta.nodes(),
        [DhtNode {
            host: "127.0.0.1".into(),
            port: 6881
        }]
    );
    assert_eq!(meta.comment(), Some("utf8"));
    assert!(meta.info().is_private());
    use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
    assert_eq!(
        meta.similar(),
        [
            InfoHashes::V1(InfoHashV1([1; 20])),
            InfoHashes::V1(InfoHashV1([4; 20])),
            InfoHashes::V2(InfoHashV2([2; 32]))
        ]
    );
    assert_eq!(meta.info().similar().len(), 2);
    assert_eq!(meta.collections(), ["c2", "c0", "c1"]);

    // An empty announce-list falls back to announce (BEP 12).
    let mut t = torrent(v1_single(10, 16_384));
    t.set("announce-list", B::L(vec![B::L(vec![])]));
    t.set("url-list", B::L(vec![s("http://m1/"), s("http://m2/")]));
    let meta = parse(&t).expect("valid");
    assert_eq!(meta.trackers(), [vec!["http://t.invalid/a".to_string()]]);
    assert_eq!(meta.url_list(), ["http://m1/", "http://m2/"]);
    assert!(!meta.info().is_private());
}

#[test]
fn v2_torrent_with_piece_layers() {
    let files = sample_v2_files();
    let t = v2_torrent(&files, 32_768);
    let meta = parse(&t).expect("valid");
    let info = meta.info();
    assert_eq!(info.version(), Version::V2);
    let sha256: [u8; 32] = Sha256::digest(info.raw()).into();
    assert_eq!(info.hashes().v2().map(|h| h.0), Some(sha256));
    assert_eq!(info.hashes().v1(), None);
    let summary: Vec<_> = info
        .files()
        .iter()
        .map(|f| (f.path().as_str(), f.offset(), f.length(), f.is_pad()))
        .collect();
    assert_eq!(
        summary,
        [
            ("root/a.bin", 0, 40_000, false),
            ("root/.pad/25536", 40_000, 25_536, true),
            ("root/empty", 65_536, 0, false),
            ("root/sub/big.bin", 65_536, 150_000, false),
            ("root/.pad/13840", 215_536, 13_840, true),
            ("root/sub/c.txt", 229_376, 5, false),
            ("root/.pad/32763", 229_381, 32_763, true),
        ]
    );
    let layout = info.layout();
    assert_eq!(layout.piece_count(), 8);
    assert_eq!(layout.file_pieces(0), Some(0..2));
    assert_eq!(layout.file_pieces(3), Some(2..7));
    assert_eq!(layout.file_pieces(2), Some(0..0));
    let last_of_big = layout.piece(6).expect("exists");
    assert_eq!(layout.piece_size(last_of_big), 32_768);
    assert_eq!(layout.piece_data_size(last_of_big), 150_000 - 4 * 32_768);
    // Layers: files over one piece have one, checked against their roots.
    let (_, layer) = merkle_of(&files[2].data, 32_768);
    assert_eq!(meta.piece_layer(3).map(|b| b.to_vec()), Some(layer));
    assert!(meta.piece_layer(5).is_none());
    assert_eq!(
        info.files()[5].pieces_root(),
        Some(&merkle::block_hash(&files[3].data))
    );
}

#[test]
fn v2_piece_layer_errors() {
    let files = sample_v2_files();
    let good = v2_torrent(&files, 16_384);
    let (root, layer) = merkle_of(&files[0].data, 16_384);

    let mut t = good.clone();
    t.get_mut("piece layers")
        .set_raw_key(&root, s(&layer[..64]));
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::PieceLayerLength {
            file: 0,
            expected: 96,
            actual: 64
        }
    );
    let mut bad = layer.clone();
    bad[40] ^= 1;
    let mut t = good.clone();
    t.get_mut("piece layers").set_raw_key(&root, s(bad));
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::PieceLayerMismatch { file: 0 }
    );
    let mut t = good.clone();
    t.remove("piece layers");
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::MissingPieceLayer { file: 0 }
    );
    // The info dict alone (BEP 9) has no piece layers and needs none.
    let info_bytes = good.clone().get_mut("info").bytes();
    assert!(Info::from_bytes(&info_bytes).is_ok());
}

impl B {
    fn set_raw_key(&mut self, key: &[u8], value: B) {
        let B::D(entries) = self else {
            panic!("not a dict")
        };
        entries.retain(|(k, _)| k != key);
        entries.push((key.to_vec(), value));
    }
}

#[test]
fn v2_single_file_is_named_by_its_key() {
    let files = [V2File {
        path: vec!["movie.mkv"],
        data: content(20_000, 9),
    }];
    let meta = parse(&v2_torrent(&files, 16_384)).expect("valid");
    let f = meta.info().files();
    assert_eq!(f[0].path().as_str(), "movie.mkv");
    // The last piece is padded to a whole piece, as libtorrent 2.0 lays out a single-file v2
    // torrent (it requests blocks of that padding).
    assert_eq!(f.len(), 2);
    assert!(f[1].is_pad());
    assert_eq!(f[1].path().as_str(), ".pad/12768");
    assert_eq!(meta.info().layout().total_length(), 32_768);
    assert_eq!(meta.info().content_length(), 20_000);
}

#[test]
fn hybrid_torrent() {
    let files = sample_v2_files();
    let mut t = v2_torrent(&files, 16_384);
    make_hybrid(&mut t, &files, 16_384);
    let meta = parse(&t).expect("valid");
    let info = meta.info();
    assert_eq!(info.version(), Version::Hybrid);
    let raw = info.raw();
    let sha1: [u8; 20] = Sha1::digest(raw).into();
    let sha256: [u8; 32] = Sha256::digest(raw).into();
    assert_eq!(info.hashes().v1().map(|h| h.0), Some(sha1));
    assert_eq!(info.hashes().v2().map(|h| h.0), Some(sha256));
    // Same geometry as the v2-only twin: the padding is where v2 puts it.
    let twin = parse(&v2_torrent(&files, 16_384)).expect("valid");
    let strip = |i: &Info| {
        i.files()
            .iter()
            .filter(|f| !f.is_pad())
            .map(|f| {
                (
                    f.path().clone(),
                    f.offset(),
                    f.length(),
                    f.pieces_root().copied(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(info), strip(twin.info()));
    assert_eq!(
        info.layout().piece_count(),
        twin.info().layout().piece_count()
    );
}

#[test]
fn hybrid_mismatches() {
    let files = sample_v2_files();
    let mut base = v2_torrent(&files, 16_384);
    make_hybrid(&mut base, &files, 16_384);
    let with_files = |edit: &dyn Fn(&mut Vec<B>)| {
        let mut t = base.clone();
        let B::L(list) = t.get_mut("info").get_mut("files") else {
            unreachable!()
        };
        edit(list);
        parse(&t).unwrap_err()
    };
    assert_eq!(
        with_files(&|l| {
            l[0].set("path", path(&["other.bin"]));
        }),
        MetainfoError::HybridMismatch(HybridProblem::Path {
            index: 0,
            v1: "root/other.bin".into(),
            v2: "root/a.bin".into()
        })
    );
    assert_eq!(
        with_files(&|l| {
            // Move the padding after a.bin to the end: same piece count, big.bin unaligned.
            let pad = l.remove(1);
            l.push(pad);
        }),
        MetainfoError::HybridMismatch(HybridProblem::Unaligned {
            index: 2,
            offset: 40_000
        })
    );
    assert_eq!(
        with_files(&|l| {
            l.remove(2); // the empty file: the byte stream is unchanged
        }),
        MetainfoError::HybridMismatch(HybridProblem::FileCount { v1: 3, v2: 4 })
    );
    assert_eq!(
        with_files(&|l| {
            l[0].set("attr", s("x"));
        }),
        MetainfoError::HybridMismatch(HybridProblem::Attributes { index: 0 })
    );
}

#[test]
fn structural_errors() {
    let cases: Vec<(B, MetainfoError)> = vec![
        (
            torrent(v1_single(10, 16_384)).remove("info").clone(),
            MetainfoError::MissingKey { key: "info" },
        ),
        (
            torrent(v1_single(10, 0)),
            MetainfoError::BadPieceLength {
                length: 0,
                reason: PieceLengthProblem::NotPositive,
            },
        ),
        (
            torrent(v1_single(10, 16_384).set("files", B::L(vec![])).clone()),
            MetainfoError::BothLengthAndFiles,
        ),
        (torrent(v1_single(0, 16_384)), MetainfoError::EmptyTorrent),
        (
            torrent(v1_single(10, 16_384).set("meta version", B::I(3)).clone()),
            MetainfoError::UnsupportedMetaVersion(3),
        ),
        (
            torrent(v1_multi(&[(&["a"], 1, ""), (&["a", "b"], 1, "")], 16)),
            MetainfoError::FileIsDirectory {
                path: "root/a".into(),
                inside: "root/a/b".into(),
            },
        ),
        (
            torrent(v1_multi(&[(&["a"], 1, ""), (&["a"], 1, "")], 16)),
            MetainfoError::DuplicatePath {
                path: "root/a".into(),
            },
        ),
        (
            torrent(v1_multi(&[(&["a"], 1, "l")], 16)),
            MetainfoError::SymlinkWithLength { file: 0 },
        ),
    ];
    for (t, want) in cases {
        assert_eq!(parse(&t).unwrap_err(), want);
    }
}

#[test]
fn piece_limit_is_inclusive() {
    let limits = Limits {
        max_pieces: 4,
        ..Limits::DEFAULT
    };
    let ok = torrent(v1_single(4 * 16_384, 16_384)).bytes();
    assert!(Metainfo::from_bytes_with(&ok, &limits).is_ok());
    // Five pieces declared, only one hash: the count is refused before the hashes are looked at.
    let mut info = v1_single(4 * 16_384 + 1, 16_384);
    info.set("pieces", s([0u8; 20]));
    let err = Metainfo::from_bytes_with(&torrent(info).bytes(), &limits).unwrap_err();
    assert_eq!(err, MetainfoError::TooManyPieces { count: 5, max: 4 });
}

#[test]
fn other_limits() {
    let limits = Limits {
        max_files: 2,
        max_path_depth: 3,
        max_torrent_size: 1_000,
        max_metadata_size: 300,
        ..Limits::DEFAULT
    };
    let three = torrent(v1_multi(
        &[(&["a"], 1, ""), (&["b"], 1, ""), (&["c"], 1, "")],
        16,
    ));
    assert_eq!(
        Metainfo::from_bytes_with(&three.bytes(), &limits).unwrap_err(),
        MetainfoError::TooManyFiles { count: 3, max: 2 }
    );
    let deep = torrent(v1_multi(&[(&["a", "b", "c"], 1, "")], 16));
    assert_eq!(
        Metainfo::from_bytes_with(&deep.bytes(), &limits).unwrap_err(),
        MetainfoError::PathTooDeep {
            file: 0,
            depth: 4,
            max: 3
        }
    );
    let big = torrent(v1_single(10, 16).set("x", s([0u8; 300])).clone());
    assert_eq!(
        Metainfo::from_bytes_with(&big.bytes(), &limits).unwrap_err(),
        MetainfoError::MetadataTooLarge {
            size: big.clone().get_mut("info").bytes().len(),
            max: 300
        }
    );
    let bigger = torrent(v1_single(10, 16)).set("x", s([0u8; 1_000])).bytes();
    assert!(matches!(
        Metainfo::from_bytes_with(&bigger, &limits),
        Err(MetainfoError::TorrentTooLarge { max: 1_000, .. })
    ));
}

#[test]
fn layout_geometry() {
    // Piece length not a multiple of the block size; last piece short.
    let meta = parse(&torrent(v1_single(50_000, 20_000))).expect("valid");
    let layout = meta.info().layout();
    assert_eq!(layout.piece_count(), 3);
    let last = layout.piece(2).expect("exists");
    assert_eq!(layout.piece(3), None);
    assert_eq!(layout.piece_size(last), 10_000);
    let first = layout.piece(0).expect("exists");
    let blocks: Vec<_> = layout.blocks(first).map(|b| (b.offset, b.length)).collect();
    assert_eq!(blocks, [(0, 16_384), (16_384, 3_616)]);
    assert_eq!(layout.block(first, 2), None);
    assert_eq!(layout.block_count(last), 1);
    assert!(layout.request(2, 0, 10_000).is_some());
    assert!(layout.request(2, 1, 10_000).is_none());
    assert!(layout.request(0, 0, 16_385).is_none());
    assert!(layout.request(0, 0, 0).is_none());
    assert!(layout.request(3, 0, 1).is_none());
    assert!(layout.request(0, u32::MAX, 1).is_none());
}

#[test]
fn layout_spans_cross_files_and_mark_padding() {
    let info = v1_multi(
        &[
            (&["a"], 10, ""),
            (&["e"], 0, ""),
            (&[".pad", "6"], 6, "p"),
            (&["b"], 20, ""),
        ],
        16,
    );
    let meta = parse(&torrent(info)).expect("valid");
    let layout = meta.info().layout();
    let p0 = layout.piece(0).expect("exists");
    let spans: Vec<_> = layout
        .piece_spans(p0)
        .map(|s| (s.file, s.offset, s.length, s.pad))
        .collect();
    assert_eq!(spans, [(0, 0, 10, false), (2, 0, 6, true)]);
    assert_eq!(layout.piece_data_size(p0), 10);
    let spans: Vec<_> = layout
        .spans(p0, 8, 100)
        .map(|s| (s.file, s.offset, s.length))
        .collect();
    assert_eq!(spans, [(0, 8, 2), (2, 0, 6)]);
    let p2 = layout.piece(2).expect("exists");
    let spans: Vec<_> = layout
        .piece_spans(p2)
        .map(|s| (s.file, s.offset, s.length))
        .collect();
    assert_eq!(spans, [(3, 16, 4)]);
    assert_eq!(layout.file_at(10), Some(2));
    assert_eq!(layout.file_at(36), None);
}

fn arb_files() -> impl Strategy<Value = (Vec<(u8, i64, bool)>, i64)> {
    (
        proptest::collection::vec((any::<u8>(), 0i64..5_000, any::<bool>()), 1..8),
        prop_oneof![Just(16_384i64), 1i64..3_000],
    )
}

proptest! {
    #[test]
    fn spans_tile_every_file_exactly_once((files, piece_length) in arb_files()) {
        let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}")).collect();
        let paths: Vec<[&str; 1]> = names.iter().map(|n| [n.as_str()]).collect();
        let list: Vec<(&[&str], i64, &str)> = files
            .iter()
            .zip(&paths)
            .map(|((_, len, pad), p)| (&p[..], *len, if *pad { "p" } else { "" }))
            .collect();
        let total: i64 = files.iter().map(|f| f.1).sum();
        let parsed = parse(&torrent(v1_multi(&list, piece_length)));
        if total == 0 {
            prop_assert_eq!(parsed.unwrap_err(), MetainfoError::EmptyTorrent);
            return Ok(());
        }
        let meta = parsed.expect("valid");
        let layout = meta.info().layout();
        let mut covered = vec![0u64; files.len()];
        let mut sum = 0u64;
        for piece in layout.pieces() {
            let mut in_piece = 0u32;
            for span in layout.piece_spans(piece) {
                prop_assert_eq!(span.offset, covered[span.file]);
                covered[span.file] += u64::from(span.length);
                prop_assert_eq!(span.pad, files[span.file].2);
                in_piece += span.length;
            }
            prop_assert_eq!(in_piece, layout.piece_size(piece));
            let blocks: u32 = layout.blocks(piece).map(|b| b.length).sum();
            prop_assert_eq!(blocks, in_piece);
            sum += u64::from(in_piece);
        }
        prop_assert_eq!(sum, total as u64);
        for (i, f) in files.iter().enumerate() {
            prop_assert_eq!(covered[i], f.1 as u64);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Metainfo::from_bytes(&bytes);
        let _ = Info::from_bytes(&bytes);
    }

    #[test]
    fn mutated_torrents_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let files = sample_v2_files();
        let mut t = v2_torrent(&files, 16_384);
        match which {
            0 => make_hybrid(&mut t, &files, 16_384),
            1 => {}
            _ => t = torrent(v1_multi(&[(&["a"], 10, ""), (&[".pad", "6"], 6, "p"), (&["b"], 20, "")], 16)),
        }
        let mut bytes = t.bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(meta) = Metainfo::from_bytes(&bytes) {
            // Whatever parses is internally consistent.
            let layout = meta.info().layout();
            let sum: u64 = layout.pieces().map(|p| u64::from(layout.piece_size(p))).sum();
            prop_assert_eq!(sum, layout.total_length());
        }
    }
}
