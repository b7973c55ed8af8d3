use proptest::prelude::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::*;
use crate::bencode::{decode, Dict, Value};
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::merkle::{block_hash, hash_pair, leaves_of, Hash256};

const KIB: u64 = 1024;

/// Deterministic, position-dependent file contents.
fn data(seed: u8, len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).rotate_left(3))
        .collect()
}

fn file(path: &str, len: u64) -> InputFile {
    InputFile {
        path: path.split('/').map(String::from).collect(),
        length: len,
        attrs: FileAttrs::default(),
    }
}

/// Runs the plan's jobs over in-memory files (indexed like `Plan::files`), in `order`.
fn run_jobs(plan: &Plan, contents: &[Vec<u8>], reverse: bool) -> CreatedTorrent {
    let mut jobs: Vec<HashJob> = plan.jobs().collect();
    if reverse {
        jobs.reverse();
    }
    let mut creator = Creator::new(plan.clone());
    for job in jobs {
        let mut bytes = Vec::new();
        for s in &job.spans {
            let f = &contents[s.file];
            bytes.extend_from_slice(&f[s.offset as usize..(s.offset + s.length) as usize]);
        }
        if let Some(v2) = job.v2_piece {
            creator.add_v2_piece(v2, &leaves_of(&bytes)).unwrap();
        }
        if let Some(p) = job.v1_piece {
            bytes.resize(bytes.len() + job.zero_pad as usize, 0);
            creator
                .add_v1_piece(p, Sha1::digest(&bytes).into())
                .unwrap();
        }
    }
    creator.finish().unwrap()
}

/// Plans `spec` and hashes files whose contents are given by path, in input order.
fn create(spec: TorrentSpec, by_path: &[(Vec<String>, Vec<u8>)]) -> CreatedTorrent {
    let plan = Plan::new(spec).unwrap();
    let contents: Vec<Vec<u8>> = plan
        .files()
        .iter()
        .map(|f| {
            by_path
                .iter()
                .find(|(p, _)| p.as_slice() == f.path())
                .map(|(_, d)| d.clone())
                .unwrap_or_default()
        })
        .collect();
    run_jobs(&plan, &contents, false)
}

/// File contents by path.
type ByPath = Vec<(Vec<String>, Vec<u8>)>;

fn multi(version: Version, files: &[(&str, u64)], piece_length: u64) -> (TorrentSpec, ByPath) {
    let input: Vec<InputFile> = files.iter().map(|(p, l)| file(p, *l)).collect();
    let by_path = input
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.clone(), data(i as u8, f.length)))
        .collect();
    let mut spec = TorrentSpec::new("t", Contents::Directory(input), version);
    spec.piece_length = Some(piece_length);
    (spec, by_path)
}

/// The reference merkle root: leaves padded with zero hashes to a power of two, folded.
fn naive_root(data: &[u8]) -> Hash256 {
    let mut layer: Vec<Hash256> = data.chunks(16384).map(block_hash).collect();
    layer.resize(layer.len().next_power_of_two(), [0u8; 32]);
    while layer.len() > 1 {
        layer = layer.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
    }
    layer[0]
}

/// The reference piece layer: each piece's data padded with zero leaves to a whole piece.
fn naive_layer(data: &[u8], piece_length: usize) -> Vec<u8> {
    data.chunks(piece_length)
        .flat_map(|piece| {
            let mut leaves: Vec<Hash256> = piece.chunks(16384).map(block_hash).collect();
            leaves.resize(piece_length / 16384, [0u8; 32]);
            while leaves.len() > 1 {
                leaves = leaves.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
            }
            leaves[0]
        })
        .collect()
}

fn sha1_pieces(stream: &[u8], piece_length: usize) -> Vec<u8> {
    stream
        .chunks(piece_length)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect()
}

fn dict<'a>(v: &'a Value<'_>, key: &str) -> &'a Dict<'a> {
    v.as_dict()
        .unwrap()
        .get(key.as_bytes())
        .unwrap()
        .as_dict()
        .unwrap()
}

fn get<'a>(d: &'a Dict<'a>, key: &str) -> Option<&'a Value<'a>> {
    d.get(key.as_bytes())
}

fn paths_of(files: &Value<'_>) -> Vec<String> {
    files
        .as_list()
        .unwrap()
        .iter()
        .map(|f| {
            let parts: Vec<&str> = get(f.as_dict().unwrap(), "path")
                .unwrap()
                .as_list()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            parts.join("/")
        })
        .collect()
}

/// Walks a BEP 52 file tree into (path, leaf dict) pairs.
fn tree_leaves<'a>(tree: &'a Dict<'a>, prefix: &str, out: &mut Vec<(String, &'a Dict<'a>)>) {
    for (name, node) in tree.iter() {
        let name = std::str::from_utf8(name).unwrap();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let node = node.as_dict().unwrap();
        match node.get(b"") {
            Some(leaf) => out.push((path, leaf.as_dict().unwrap())),
            None => tree_leaves(node, &path, out),
        }
    }
}

#[test]
fn auto_piece_length_matches_libtorrent_thresholds() {
    // Boundaries observed with libtorrent 2.0.8's create_torrent(piece_size = 0).
    let table = [
        (1, 16 * KIB),
        (2_684_355, 16 * KIB),
        (2_684_356, 32 * KIB),
        (10_737_418, 32 * KIB),
        (10_737_419, 64 * KIB),
        (104_857_600, 128 * KIB),
        (1 << 30, 512 * KIB),
        (3 << 30, 1024 * KIB),
        (703_687_441_777, 8192 * KIB),
        (703_687_441_778, 16384 * KIB),
        (1 << 40, 16384 * KIB),
        (u64::MAX, 16384 * KIB),
    ];
    for (total, want) in table {
        assert_eq!(auto_piece_length(total), want, "total {total}");
    }
}

#[test]
fn v1_multi_file_pieces_run_across_files_in_caller_order() {
    let (spec, by_path) = multi(
        Version::V1,
        &[("z", 20_000), ("a/b", 0), ("m", 30_000)],
        16 * KIB,
    );
    let t = create(spec, &by_path);
    let doc = decode(&t.bytes).unwrap();
    let info = dict(&doc, "info");
    assert_eq!(paths_of(get(info, "files").unwrap()), ["z", "a/b", "m"]);
    let stream: Vec<u8> = by_path.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(
        get(info, "pieces").unwrap().as_bytes().unwrap(),
        sha1_pieces(&stream, 16384)
    );
    assert!(get(info, "file tree").is_none());
    assert!(get(info, "meta version").is_none());
    assert!(doc.as_dict().unwrap().get(b"piece layers").is_none());
    assert_eq!(
        t.info_hashes,
        InfoHashes::V1(InfoHashV1(Sha1::digest(info.raw().unwrap()).into()))
    );
}

#[test]
fn hybrid_pads_every_file_but_the_last_with_data() {
    let files = [
        ("b", 20_000),
        ("a/x", 40_000),
        ("c", 16_384),
        ("d", 100),
        ("e", 0),
    ];
    let (spec, by_path) = multi(Version::Hybrid, &files, 16 * KIB);
    let t = create(spec, &by_path);
    let doc = decode(&t.bytes).unwrap();
    let info = dict(&doc, "info");
    // Sorted order; pad after a/x (40,000 -> 49,152) and b (20,000 -> 32,768); c ends on a
    // boundary; d is the last file with data, so no pad after it.
    assert_eq!(
        paths_of(get(info, "files").unwrap()),
        ["a/x", ".pad/9152", "b", ".pad/12768", "c", "d", "e"]
    );
    let pad = get(info, "files").unwrap().as_list().unwrap().as_slice()[1].clone();
    let pad = pad.as_dict().unwrap();
    assert_eq!(get(pad, "attr").unwrap().as_bytes(), Some(&b"p"[..]));
    assert_eq!(get(pad, "length").unwrap().as_int(), Some(9152));

    let content = |p: &str| {
        by_path
            .iter()
            .find(|(q, _)| q.join("/") == p)
            .unwrap()
            .1
            .clone()
    };
    let mut stream = Vec::new();
    for (p, pad) in [("a/x", 9152), ("b", 12768), ("c", 0), ("d", 0)] {
        stream.extend(content(p));
        stream.resize(stream.len() + pad, 0);
    }
    assert_eq!(
        get(info, "pieces").unwrap().as_bytes().unwrap(),
        sha1_pieces(&stream, 16384)
    );

    let mut leaves = Vec::new();
    tree_leaves(
        get(info, "file tree").unwrap().as_dict().unwrap(),
        "",
        &mut leaves,
    );
    let names: Vec<&str> = leaves.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["a/x", "b", "c", "d", "e"]);
    for (p, leaf) in &leaves {
        let d = content(p);
        assert_eq!(get(leaf, "length").unwrap().as_int(), Some(d.len() as i64));
        let root = get(leaf, "pieces root").and_then(Value::as_bytes);
        if d.is_empty() {
            assert_eq!(root, None, "{p}: empty files have no pieces root");
        } else {
            assert_eq!(root, Some(&naive_root(&d)[..]), "{p}");
        }
    }
    let raw = info.raw().unwrap();
    assert_eq!(
        t.info_hashes,
        InfoHashes::Hybrid(
            InfoHashV1(Sha1::digest(raw).into()),
            InfoHashV2(Sha256::digest(raw).into())
        )
    );
}

#[test]
fn v2_piece_layers_only_for_files_larger_than_a_piece_and_deduplicated() {
    let piece = 32 * KIB;
    let (spec, mut by_path) = multi(
        Version::V2,
        &[
            ("big", 100_000),
            ("one", 32_768),
            ("small", 5),
            ("twin", 100_000),
        ],
        piece,
    );
    by_path[3].1 = by_path[0].1.clone(); // twin has big's contents
    let t = create(spec, &by_path);
    let doc = decode(&t.bytes).unwrap();
    let info = dict(&doc, "info");
    assert!(get(info, "pieces").is_none());
    assert!(get(info, "files").is_none());
    assert_eq!(get(info, "meta version").unwrap().as_int(), Some(2));
    let layers = dict(&doc, "piece layers");
    assert_eq!(
        layers.len(),
        1,
        "only `big` (and its twin) exceed one piece"
    );
    let big = &by_path[0].1;
    let (key, layer) = layers.iter().next().unwrap();
    assert_eq!(*key, &naive_root(big)[..]);
    assert_eq!(layer.as_bytes().unwrap(), naive_layer(big, piece as usize));
    assert_eq!(
        t.info_hashes,
        InfoHashes::V2(InfoHashV2(Sha256::digest(info.raw().unwrap()).into()))
    );
}

#[test]
fn single_file_layouts() {
    let content = data(7, 50_000);
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        let mut spec = TorrentSpec::new(
            "movie.mkv",
            Contents::SingleFile {
                length: 50_000,
                attrs: FileAttrs {
                    executable: true,
                    hidden: false,
                },
            },
            version,
        );
        spec.piece_length = Some(16 * KIB);
        let t = create(spec, &[(vec!["movie.mkv".into()], content.clone())]);
        let doc = decode(&t.bytes).unwrap();
        let info = dict(&doc, "info");
        assert!(get(info, "files").is_none(), "{version:?}");
        assert_eq!(get(info, "name").unwrap().as_str(), Some("movie.mkv"));
        if version.has_v1() {
            assert_eq!(get(info, "length").unwrap().as_int(), Some(50_000));
            assert_eq!(
                get(info, "pieces").unwrap().as_bytes().unwrap(),
                sha1_pieces(&content, 16384)
            );
        } else {
            assert!(get(info, "length").is_none());
        }
        if version.has_v2() {
            let mut leaves = Vec::new();
            tree_leaves(
                get(info, "file tree").unwrap().as_dict().unwrap(),
                "",
                &mut leaves,
            );
            assert_eq!(leaves.len(), 1);
            assert_eq!(leaves[0].0, "movie.mkv");
            assert_eq!(
                get(leaves[0].1, "pieces root").unwrap().as_bytes(),
                Some(&naive_root(&content)[..])
            );
            assert_eq!(
                get(leaves[0].1, "attr").unwrap().as_bytes(),
                Some(&b"x"[..])
            );
        }
    }
}

#[test]
fn v2_tree_order_is_by_component() {
    // Bytewise on whole paths "a.txt" < "a/b"; by component "a" < "a.txt".
    let (spec, by_path) = multi(Version::Hybrid, &[("a.txt", 10), ("a/b", 10)], 16 * KIB);
    let plan = Plan::new(spec.clone()).unwrap();
    let order: Vec<String> = plan.files().iter().map(|f| f.path().join("/")).collect();
    assert_eq!(order, ["a/b", "a.txt"]);
    let t = create(spec, &by_path);
    let doc = decode(&t.bytes).unwrap();
    assert_eq!(
        paths_of(get(dict(&doc, "info"), "files").unwrap()),
        ["a/b", ".pad/16374", "a.txt"]
    );
}

#[test]
fn metadata_keys() {
    let (mut spec, by_path) = multi(Version::V1, &[("f", 1000)], 16 * KIB);
    spec.trackers = vec![
        vec!["http://a/ann".into(), "udp://b:1".into()],
        vec![],
        vec!["http://c/ann".into()],
    ];
    spec.web_seeds = vec!["http://seed/".into(), "http://seed2/".into()];
    spec.private = true;
    spec.comment = Some("hello".into());
    spec.created_by = Some("bitshoal/test".into());
    spec.creation_date = Some(1_700_000_000);
    let t = create(spec.clone(), &by_path);
    let doc = decode(&t.bytes).unwrap();
    let top = doc.as_dict().unwrap();
    assert_eq!(get(top, "announce").unwrap().as_str(), Some("http://a/ann"));
    let tiers: Vec<Vec<&str>> = get(top, "announce-list")
        .unwrap()
        .as_list()
        .unwrap()
        .iter()
        .map(|t| {
            t.as_list()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        tiers,
        [vec!["http://a/ann", "udp://b:1"], vec!["http://c/ann"]]
    );
    let seeds: Vec<&str> = get(top, "url-list")
        .unwrap()
        .as_list()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(seeds, ["http://seed/", "http://seed2/"]);
    assert_eq!(get(top, "comment").unwrap().as_str(), Some("hello"));
    assert_eq!(
        get(top, "created by").unwrap().as_str(),
        Some("bitshoal/test")
    );
    assert_eq!(
        get(top, "creation date").unwrap().as_int(),
        Some(1_700_000_000)
    );
    assert_eq!(
        get(dict(&doc, "info"), "private").unwrap().as_int(),
        Some(1)
    );

    // One tracker: `announce` alone. Nothing optional: none of the keys.
    spec.trackers = vec![vec!["http://only/".into()]];
    let t = create(spec, &by_path);
    let doc = decode(&t.bytes).unwrap();
    assert_eq!(
        get(doc.as_dict().unwrap(), "announce").unwrap().as_str(),
        Some("http://only/")
    );
    assert!(get(doc.as_dict().unwrap(), "announce-list").is_none());
    let (bare, by_path) = multi(Version::V1, &[("f", 1000)], 16 * KIB);
    let t = create(bare, &by_path);
    let doc = decode(&t.bytes).unwrap();
    let keys: Vec<&[u8]> = doc.as_dict().unwrap().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, [&b"info"[..]]);
    assert!(get(dict(&doc, "info"), "private").is_none());
}

#[test]
fn digest_order_does_not_matter() {
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        let (spec, by_path) = multi(
            version,
            &[("a", 70_000), ("b", 3), ("c", 0), ("d", 40_000)],
            32 * KIB,
        );
        let plan = Plan::new(spec).unwrap();
        let contents: Vec<Vec<u8>> = plan
            .files()
            .iter()
            .map(|f| {
                by_path
                    .iter()
                    .find(|(p, _)| p.as_slice() == f.path())
                    .unwrap()
                    .1
                    .clone()
            })
            .collect();
        assert_eq!(
            run_jobs(&plan, &contents, false),
            run_jobs(&plan, &contents, true),
            "{version:?}"
        );
    }
}

#[test]
fn spec_errors() {
    let ok = |files: Vec<InputFile>, version| {
        Plan::new(TorrentSpec::new("t", Contents::Directory(files), version))
    };
    assert_eq!(ok(vec![], Version::V1).unwrap_err(), CreateError::NoFiles);
    assert_eq!(
        ok(vec![file("a", 0), file("b", 0)], Version::V2).unwrap_err(),
        CreateError::EmptyPayload
    );
    let single = |len| {
        Plan::new(TorrentSpec::new(
            "t",
            Contents::SingleFile {
                length: len,
                attrs: FileAttrs::default(),
            },
            Version::V1,
        ))
    };
    assert_eq!(single(0).unwrap_err(), CreateError::EmptyPayload);
    for bad in [0, 8 * KIB, 48 * KIB, 1 << 30] {
        let mut spec = TorrentSpec::new("t", Contents::Directory(vec![file("a", 1)]), Version::V1);
        spec.piece_length = Some(bad);
        assert_eq!(
            Plan::new(spec).unwrap_err(),
            CreateError::BadPieceLength { piece_length: bad }
        );
    }
    for (name, problem) in [
        ("", PathProblem::EmptyComponent),
        ("..", PathProblem::DotComponent),
        ("a/b", PathProblem::ForbiddenCharacter),
        ("a\0", PathProblem::ForbiddenCharacter),
    ] {
        let spec = TorrentSpec::new(name, Contents::Directory(vec![file("a", 1)]), Version::V1);
        assert_eq!(
            Plan::new(spec).unwrap_err(),
            CreateError::BadName {
                name: name.into(),
                problem
            }
        );
    }
    let path_err = |path: Vec<&str>, version| {
        let f = InputFile {
            path: path.into_iter().map(String::from).collect(),
            length: 1,
            attrs: FileAttrs::default(),
        };
        match ok(vec![f], version).unwrap_err() {
            CreateError::BadPath { problem, .. } => problem,
            e => panic!("unexpected {e:?}"),
        }
    };
    assert_eq!(path_err(vec![], Version::V1), PathProblem::NoComponents);
    assert_eq!(
        path_err(vec!["a", ""], Version::V1),
        PathProblem::EmptyComponent
    );
    assert_eq!(
        path_err(vec!["a", "."], Version::V1),
        PathProblem::DotComponent
    );
    assert_eq!(
        path_err(vec!["a", "x/y"], Version::V2),
        PathProblem::ForbiddenCharacter
    );
    assert_eq!(
        path_err(vec![".pad", "1"], Version::Hybrid),
        PathProblem::ReservedPadDirectory
    );
    assert!(
        ok(vec![file(".pad/1", 1)], Version::V1).is_ok(),
        ".pad is only reserved in hybrids"
    );
    assert_eq!(
        ok(vec![file("x/y", 1), file("x/y", 2)], Version::V1).unwrap_err(),
        CreateError::DuplicatePath { path: "x/y".into() }
    );
    assert_eq!(
        ok(
            vec![file("x/y/z", 1), file("x/a", 1), file("x/y", 2)],
            Version::V2
        )
        .unwrap_err(),
        CreateError::FileIsDirectory {
            file: "x/y".into(),
            other: "x/y/z".into()
        }
    );
    let mut spec = TorrentSpec::new("t", Contents::Directory(vec![file("a", 1)]), Version::V1);
    spec.web_seeds = vec![String::new()];
    assert_eq!(Plan::new(spec).unwrap_err(), CreateError::EmptyUrl);
}

#[test]
fn digest_errors() {
    let (spec, _) = multi(Version::Hybrid, &[("a", 40_000), ("b", 10)], 16 * KIB);
    let plan = Plan::new(spec).unwrap();
    assert_eq!(plan.num_v1_pieces(), 4);
    let mut c = Creator::new(plan.clone());
    assert_eq!(
        c.add_v1_piece(4, [0; 20]),
        Err(CreateError::NoSuchPiece {
            file: None,
            piece: 4
        })
    );
    assert_eq!(
        c.add_v2_piece(V2Piece { file: 0, piece: 3 }, &[[0; 32]]),
        Err(CreateError::NoSuchPiece {
            file: Some(0),
            piece: 3
        })
    );
    assert_eq!(
        c.add_v2_piece(V2Piece { file: 2, piece: 0 }, &[[0; 32]]),
        Err(CreateError::NoSuchPiece {
            file: Some(2),
            piece: 0
        })
    );
    // a's last piece holds 40,000 - 32,768 = 7,232 bytes: one leaf.
    assert_eq!(
        c.add_v2_piece(V2Piece { file: 0, piece: 2 }, &[[0; 32]; 2]),
        Err(CreateError::WrongLeafCount {
            file: 0,
            piece: 2,
            expected: 1,
            got: 2
        })
    );
    c.add_v1_piece(0, [1; 20]).unwrap();
    c.add_v2_piece(V2Piece { file: 1, piece: 0 }, &[[0; 32]])
        .unwrap();
    assert_eq!(
        c.finish().unwrap_err(),
        CreateError::MissingDigests {
            v1_pieces: 3,
            v2_pieces: 3
        }
    );

    let (spec, _) = multi(Version::V1, &[("a", 10)], 16 * KIB);
    let mut c = Creator::new(Plan::new(spec).unwrap());
    assert_eq!(
        c.add_v2_piece(V2Piece { file: 0, piece: 0 }, &[[0; 32]]),
        Err(CreateError::WrongVersion)
    );
    let (spec, _) = multi(Version::V2, &[("a", 10)], 16 * KIB);
    let mut c = Creator::new(Plan::new(spec).unwrap());
    assert_eq!(c.add_v1_piece(0, [0; 20]), Err(CreateError::WrongVersion));
}

fn arb_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V1), Just(Version::V2), Just(Version::Hybrid)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Jobs read every file once, front to back; v1 pieces and v2 roots match the references.
    #[test]
    fn jobs_cover_files_and_digests_match_references(
        sizes in prop::collection::vec(prop_oneof![Just(0u64), 1u64..70_000], 1..6),
        version in arb_version(),
        shift in 0u32..2,
    ) {
        prop_assume!(sizes.iter().any(|&s| s > 0));
        let piece = (16 * KIB) << shift;
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("d{}/f{i}", i % 2)).collect();
        let files: Vec<(&str, u64)> = names.iter().map(String::as_str).zip(sizes.iter().copied()).collect();
        let (spec, by_path) = multi(version, &files, piece);
        let plan = Plan::new(spec).unwrap();
        let contents: Vec<Vec<u8>> = plan
            .files()
            .iter()
            .map(|f| by_path.iter().find(|(p, _)| p.as_slice() == f.path()).unwrap().1.clone())
            .collect();

        // Sequential coverage.
        let mut next = vec![0u64; contents.len()];
        let mut last_file = 0;
        let mut total = 0;
        for job in plan.jobs() {
            for s in &job.spans {
                prop_assert!(s.file >= last_file);
                prop_assert_eq!(s.offset, next[s.file]);
                prop_assert!(s.length > 0);
                next[s.file] += s.length;
                last_file = s.file;
            }
            total += job.data_length();
        }
        prop_assert_eq!(total, plan.payload_size());
        for (f, n) in plan.files().iter().zip(&next) {
            prop_assert_eq!(f.length(), *n);
        }

        let t = run_jobs(&plan, &contents, false);
        let doc = decode(&t.bytes).unwrap();
        let info = dict(&doc, "info");
        if version.has_v1() {
            let mut stream = Vec::new();
            for (f, d) in plan.files().iter().zip(&contents) {
                stream.extend_from_slice(d);
                stream.resize(stream.len() + f.pad_after() as usize, 0);
            }
            prop_assert_eq!(get(info, "pieces").unwrap().as_bytes().unwrap(), &sha1_pieces(&stream, piece as usize)[..]);
        }
        if version.has_v2() {
            let mut leaves = Vec::new();
            tree_leaves(get(info, "file tree").unwrap().as_dict().unwrap(), "", &mut leaves);
            prop_assert_eq!(leaves.len(), contents.len());
            for ((_, leaf), d) in leaves.iter().zip(&contents) {
                let root = get(leaf, "pieces root").and_then(Value::as_bytes);
                if d.is_empty() {
                    prop_assert!(root.is_none());
                } else {
                    prop_assert_eq!(root, Some(&naive_root(d)[..]));
                }
            }
        }
        if version == Version::Hybrid {
            // Every file with data starts on a piece boundary.
            for f in plan.files().iter().filter(|f| f.length() > 0) {
                prop_assert_eq!(f.offset() % piece, 0);
            }
        }
    }
}
