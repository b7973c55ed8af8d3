use std::os::unix::fs::{symlink, PermissionsExt};

use bitshoal_core::bencode::{decode, Value};
use bitshoal_core::create::PlannedFile;
use sha2::Sha256;
use tempfile::TempDir;

use super::*;

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// The torrent the core makes from the same plan when fed from memory, single-threaded.
fn reference(plan: &Plan, files: &[Vec<u8>]) -> CreatedTorrent {
    let mut c = Creator::new(plan.clone());
    for job in plan.jobs() {
        let mut data = Vec::new();
        for s in &job.spans {
            data.extend_from_slice(
                &files[s.file][s.offset as usize..(s.offset + s.length) as usize],
            );
        }
        let done = hash_work(Work { job, data });
        if let (Some(p), Some(d)) = (done.job.v1_piece, done.v1) {
            c.add_v1_piece(p, d).unwrap();
        }
        if let (Some(p), Some(l)) = (done.job.v2_piece, &done.leaves) {
            c.add_v2_piece(p, l).unwrap();
        }
    }
    c.finish().unwrap()
}

fn options(version: Version, piece_length: u64, threads: usize) -> CreateOptions {
    CreateOptions {
        version,
        piece_length: Some(piece_length),
        threads,
        ..CreateOptions::default()
    }
}

fn info_hash_of(bytes: &[u8]) -> (InfoHashV1Bytes, [u8; 32]) {
    let doc = decode(bytes).unwrap();
    let raw = doc
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap()
        .raw()
        .unwrap();
    (Sha1::digest(raw).into(), Sha256::digest(raw).into())
}

type InfoHashV1Bytes = [u8; 20];

fn file_contents(root: &Path, plan: &Plan) -> Vec<Vec<u8>> {
    plan.files()
        .iter()
        .map(|f: &PlannedFile| {
            let mut p = root.to_path_buf();
            if !plan.is_single_file() {
                p.extend(f.path());
            }
            fs::read(p).unwrap()
        })
        .collect()
}

#[test]
fn multi_file_matches_in_memory_reference_for_each_version_and_thread_count() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("payload");
    write(&root, "b.bin", &content(1, 40_000));
    write(&root, "a/nested/deep.txt", &content(2, 100));
    write(&root, "a/empty", b"");
    write(&root, "exact", &content(3, 16_384)); // exactly one piece
    write(&root, "z", &content(4, 70_001));
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        let plan = plan_for_path(&root, &options(version, 16_384, 1)).unwrap();
        assert_eq!(plan.files().len(), 5);
        assert_eq!(plan.spec().name, "payload");
        let want = reference(&plan, &file_contents(&root, &plan));
        for threads in [1, 3] {
            let got = create_torrent(&root, &options(version, 16_384, threads), |_, _| {}).unwrap();
            assert_eq!(got, want, "{version:?} threads={threads}");
        }
        let (v1, v2) = info_hash_of(&want.bytes);
        assert_eq!(
            want.info_hashes.v1().map(|h| h.0),
            version.has_v1().then_some(v1)
        );
        assert_eq!(
            want.info_hashes.v2().map(|h| h.0),
            version.has_v2().then_some(v2)
        );
    }
}

#[test]
fn v1_pieces_are_sha1_of_the_files_concatenated_in_name_order() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("p");
    let (a, b, c) = (content(5, 30_000), content(6, 5), content(7, 20_000));
    write(&root, "c", &c);
    write(&root, "a", &a);
    write(&root, "b/x", &b);
    let t = create_torrent(&root, &options(Version::V1, 16_384, 2), |_, _| {}).unwrap();
    let stream: Vec<u8> = [a, b, c].concat();
    let want: Vec<u8> = stream
        .chunks(16_384)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let doc = decode(&t.bytes).unwrap();
    let info = doc
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(
        info.get(b"pieces").and_then(Value::as_bytes),
        Some(&want[..])
    );
}

#[test]
fn single_file_and_progress() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("song.ogg");
    let data = content(9, 100_000);
    fs::write(&path, &data).unwrap();
    let mut calls = Vec::new();
    let t = create_torrent(
        &path,
        &options(Version::Hybrid, 32_768, 2),
        |done, total| calls.push((done, total)),
    )
    .unwrap();
    assert_eq!(calls.first(), Some(&(0, 100_000)));
    assert_eq!(calls.last(), Some(&(100_000, 100_000)));
    assert!(
        calls.windows(2).all(|w| w[0].0 < w[1].0),
        "progress grows: {calls:?}"
    );
    let doc = decode(&t.bytes).unwrap();
    let info = doc
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(info.get(b"name").and_then(Value::as_str), Some("song.ogg"));
    assert_eq!(info.get(b"length").and_then(Value::as_int), Some(100_000));
    let plan = plan_for_path(&path, &options(Version::Hybrid, 32_768, 1)).unwrap();
    assert_eq!(t, reference(&plan, &[data]));
}

#[test]
fn name_override_and_executable_bit() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("d");
    write(&root, "run.sh", b"#!/bin/sh\n");
    write(&root, "data", b"x");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let mut opts = options(Version::V2, 16_384, 1);
    opts.name = Some("renamed".into());
    let plan = plan_for_path(&root, &opts).unwrap();
    assert_eq!(plan.spec().name, "renamed");
    let exec: Vec<(String, bool)> = plan
        .files()
        .iter()
        .map(|f| (f.path().join("/"), f.attrs().executable))
        .collect();
    assert_eq!(
        exec,
        [("data".to_string(), false), ("run.sh".to_string(), true)]
    );
}

#[test]
fn symlinks_are_followed_and_bad_ones_refused() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("p");
    write(&root, "real/f", &content(1, 1000));
    symlink(root.join("real/f"), root.join("link-to-file")).unwrap();
    symlink(root.join("real"), root.join("link-to-dir")).unwrap();
    let plan = plan_for_path(&root, &options(Version::V1, 16_384, 1)).unwrap();
    let paths: Vec<String> = plan.files().iter().map(|f| f.path().join("/")).collect();
    assert_eq!(paths, ["link-to-dir/f", "link-to-file", "real/f"]);
    assert!(plan.files().iter().all(|f| f.length() == 1000));

    symlink(&root, root.join("real/loop")).unwrap();
    assert!(matches!(
        plan_for_path(&root, &options(Version::V1, 16_384, 1)),
        Err(CreateTorrentError::SymlinkLoop { .. })
    ));
    fs::remove_file(root.join("real/loop")).unwrap();

    symlink(root.join("nowhere"), root.join("dangling")).unwrap();
    match plan_for_path(&root, &options(Version::V1, 16_384, 1)) {
        Err(CreateTorrentError::Io { path, .. }) => assert_eq!(path, root.join("dangling")),
        other => panic!("expected an IO error, got {other:?}"),
    }
}

#[test]
fn special_files_and_empty_payloads_are_refused() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("p");
    write(&root, "f", b"data");
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    assert!(matches!(
        plan_for_path(&root, &options(Version::V1, 16_384, 1)),
        Err(CreateTorrentError::UnsupportedFileType { path }) if path == root.join("sock")
    ));

    let empty = dir.path().join("empty");
    write(&empty, "a", b"");
    fs::create_dir_all(empty.join("no-files-here")).unwrap();
    assert!(matches!(
        plan_for_path(&empty, &options(Version::Hybrid, 16_384, 1)),
        Err(CreateTorrentError::Spec(CreateError::EmptyPayload))
    ));
    assert!(matches!(
        plan_for_path(&dir.path().join("missing"), &CreateOptions::default()),
        Err(CreateTorrentError::Io { .. })
    ));
}

#[test]
fn a_file_that_shrinks_after_the_walk_is_an_error() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("p");
    write(&root, "a", &content(1, 50_000));
    write(&root, "b", &content(2, 50_000));
    let plan = plan_for_path(&root, &options(Version::V2, 16_384, 2)).unwrap();
    fs::write(root.join("b"), b"short").unwrap();
    match hash_plan(&plan, &root, 2, |_, _| {}) {
        Err(CreateTorrentError::FileChanged { path }) => assert_eq!(path, root.join("b")),
        other => panic!("expected FileChanged, got {other:?}"),
    }
}
