use std::fs;
use std::path::Path;

use bitshoal_core::create::Version;
use bitshoal_core::metainfo::BLOCK_LEN;
use bitshoal_core::session::DiskDone;

use super::*;
use crate::testutil::{content, disk_result, exists, Fixture};

const PIECE: u64 = 32 * 1024;

fn storage(max_open_files: usize, preallocate: Preallocate) -> Storage {
    Storage::new(StorageConfig {
        max_open_files,
        preallocate,
    })
}

/// Storage with the fixture's torrent registered and opened.
fn opened(f: &mut Fixture, config: StorageConfig) -> Storage {
    let s = Storage::new(config);
    s.register(f.torrent, f.root());
    assert!(s.execute(f.take_open()).is_none(), "Open reports nothing");
    s
}

fn hybrid_fixture() -> Fixture {
    Fixture::new(
        "multi",
        &[
            ("a.bin", 50_000),
            ("b/c.bin", 3 * 16_384),
            ("b/d.bin", 1),
            ("empty.txt", 0),
            ("z.bin", 70_001),
        ],
        Version::Hybrid,
        PIECE,
    )
}

#[test]
fn hybrid_multi_file_round_trip_skips_pads_and_creates_empty_files_on_finish() {
    let mut f = hybrid_fixture();
    let pads: Vec<usize> = (0..f.info.files().len())
        .filter(|&i| f.info.files()[i].is_pad())
        .collect();
    assert!(
        !pads.is_empty(),
        "a hybrid torrent of unaligned files has pad files"
    );
    let s = opened(&mut f, StorageConfig::default());
    let blocks = f.blocks();
    assert!(blocks.iter().any(|(spans, _)| spans.iter().any(|s| s.pad)));

    // Written last block first, as a swarm might deliver them.
    for (n, (spans, data)) in blocks.iter().enumerate().rev() {
        let r = disk_result(n as u64, s.execute(f.write(n as u64, spans, data.clone())));
        assert!(matches!(r, Ok(DiskDone::Written)), "block {n}: {r:?}");
    }
    for (n, (spans, data)) in blocks.iter().enumerate() {
        let req = 1000 + n as u64;
        match disk_result(req, s.execute(f.read(req, spans))) {
            Ok(DiskDone::Read(read)) => assert_eq!(read, data, "block {n}"),
            other => panic!("block {n}: {other:?}"),
        }
    }
    let empty = f
        .data_files()
        .into_iter()
        .find(|&i| f.info.files()[i].length() == 0)
        .unwrap();
    assert!(!exists(&f.stored(empty)), "no write creates an empty file");
    s.finish(f.torrent).unwrap();

    for i in f.data_files() {
        assert_eq!(
            fs::read(f.stored(i)).unwrap(),
            fs::read(f.original(i)).unwrap(),
            "file {i}"
        );
    }
    for i in pads {
        assert!(!exists(&f.stored(i)), "pad file {i} was created");
    }
    // Nothing but the torrent's folder was made in the download directory.
    let top: Vec<_> = fs::read_dir(f.download.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["multi"]);
}

#[test]
fn single_file_torrent_lives_at_its_name() {
    let mut f = Fixture::new("one.bin", &[("", 40_000)], Version::V1, PIECE);
    let s = opened(&mut f, StorageConfig::default());
    for (n, (spans, data)) in f.blocks().into_iter().enumerate() {
        disk_result(n as u64, s.execute(f.write(n as u64, &spans, data))).unwrap();
    }
    assert_eq!(
        fs::read(f.root().join("one.bin")).unwrap(),
        content(1, 40_000)
    );
}

/// Bytes the file system allocated for `path`.
#[cfg(unix)]
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().blocks() * 512
}

#[cfg(unix)]
#[test]
fn one_late_block_leaves_the_file_sparse() {
    const LEN: usize = 8 << 20;
    let mut f = Fixture::new("sparse.bin", &[("", LEN)], Version::V1, 1 << 20);
    let s = opened(&mut f, StorageConfig::default());
    let (spans, data) = f.blocks().pop().unwrap();
    disk_result(0, s.execute(f.write(0, &spans, data))).unwrap();
    let path = f.stored(0);
    assert_eq!(fs::metadata(&path).unwrap().len(), LEN as u64);
    assert!(
        allocated(&path) < (LEN / 4) as u64,
        "one 16 KiB block allocated {} bytes",
        allocated(&path)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn full_preallocation_reserves_the_whole_file() {
    const LEN: usize = 4 << 20;
    let mut f = Fixture::new("full.bin", &[("", LEN)], Version::V1, 1 << 20);
    let s = opened(
        &mut f,
        StorageConfig {
            preallocate: Preallocate::Full,
            ..StorageConfig::default()
        },
    );
    let (spans, data) = f.blocks().swap_remove(0);
    disk_result(0, s.execute(f.write(0, &spans, data))).unwrap();
    let path = f.stored(0);
    assert_eq!(fs::metadata(&path).unwrap().len(), LEN as u64);
    assert!(allocated(&path) >= LEN as u64, "{}", allocated(&path));
}

#[test]
fn more_files_than_the_cache_holds_all_land() {
    let files: Vec<(String, usize)> = (0..20)
        .map(|i| (format!("f{i:02}"), 5_000 + i * 999))
        .collect();
    let refs: Vec<(&str, usize)> = files.iter().map(|(p, l)| (p.as_str(), *l)).collect();
    let mut f = Fixture::new("many", &refs, Version::V1, 16_384);
    let s = opened(
        &mut f,
        StorageConfig {
            max_open_files: 3,
            ..StorageConfig::default()
        },
    );
    let blocks = f.blocks();
    // Interleave the front and the back so files are reopened after eviction.
    let order: Vec<usize> = (0..blocks.len())
        .map(|i| {
            if i % 2 == 0 {
                i / 2
            } else {
                blocks.len() - 1 - i / 2
            }
        })
        .collect();
    for &n in &order {
        let (spans, data) = &blocks[n];
        disk_result(n as u64, s.execute(f.write(n as u64, spans, data.clone()))).unwrap();
        assert!(s.open_files() <= 3, "{} files open", s.open_files());
    }
    for &n in &order {
        let (spans, data) = &blocks[n];
        match disk_result(n as u64, s.execute(f.read(n as u64, spans))) {
            Ok(DiskDone::Read(read)) => assert_eq!(&read, data),
            other => panic!("{other:?}"),
        }
        assert!(s.open_files() <= 3);
    }
    for i in f.data_files() {
        assert_eq!(
            fs::read(f.stored(i)).unwrap(),
            fs::read(f.original(i)).unwrap()
        );
    }
}

/// The first block that touches file `file`, and the span of it in that file.
fn block_in(f: &Fixture, file: usize) -> (SmallVec<[FileSpan; 2]>, Bytes) {
    f.blocks()
        .into_iter()
        .find(|(spans, _)| spans.iter().any(|s| s.file == file))
        .unwrap()
}

#[test]
fn a_file_where_a_directory_must_go_is_a_storage_error_naming_the_file() {
    let mut f = hybrid_fixture();
    let s = opened(&mut f, StorageConfig::default());
    // "multi/b" must be a directory for multi/b/c.bin; make it a file.
    let c = f
        .data_files()
        .into_iter()
        .find(|&i| f.info.files()[i].path().as_str() == "multi/b/c.bin")
        .unwrap();
    fs::create_dir_all(f.root().join("multi")).unwrap();
    fs::write(f.root().join("multi/b"), b"in the way").unwrap();
    let (spans, data) = f
        .blocks()
        .into_iter()
        .find(|(spans, _)| spans.len() == 1 && spans[0].file == c)
        .unwrap();
    let err = disk_result(7, s.execute(f.write(7, &spans, data))).unwrap_err();
    assert_eq!(err.file, Some(c));
    assert!(err.message.contains("c.bin"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_is_a_storage_error_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new("ro", &[("x.bin", 1000)], Version::V1, 16_384);
    let s = opened(&mut f, StorageConfig::default());
    let dir = f.root().join("ro");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(dir.join("probe"), b"").is_ok() {
        // Privileged (root, CAP_DAC_OVERRIDE): permissions are not enforced, nothing to test.
        // The error path itself is covered by the not-a-directory test.
        return;
    }
    let (spans, data) = block_in(&f, 0);
    let err = disk_result(1, s.execute(f.write(1, &spans, data))).unwrap_err();
    assert_eq!(err.file, Some(0));
    assert!(err.message.contains("x.bin"), "{err}");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn reading_what_was_never_written_is_an_error() {
    let mut f = Fixture::new("r", &[("a", 40_000), ("b", 40_000)], Version::V1, 16_384);
    let s = opened(&mut f, StorageConfig::default());
    let blocks = f.blocks();
    // Missing file.
    let err = disk_result(1, s.execute(f.read(1, &blocks[0].0))).unwrap_err();
    assert_eq!(err.file, Some(0));
    // A file whose end was not written yet is too short.
    disk_result(2, s.execute(f.write(2, &blocks[0].0, blocks[0].1.clone()))).unwrap();
    let (spans, _) = &blocks[1];
    let err = disk_result(3, s.execute(f.read(3, spans))).unwrap_err();
    assert_eq!(err.file, Some(0));
    assert!(err.message.contains("shorter"), "{err}");
}

#[test]
fn a_file_deleted_while_in_use_is_reported_vanished() {
    let mut f = Fixture::new("v", &[("a", 40_000), ("b", 40_000)], Version::V1, 16_384);
    let s = opened(
        &mut f,
        StorageConfig {
            max_open_files: 1,
            ..StorageConfig::default()
        },
    );
    let blocks = f.blocks();
    let first_b = blocks.iter().position(|(sp, _)| sp[0].file == 1).unwrap();
    disk_result(1, s.execute(f.write(1, &blocks[0].0, blocks[0].1.clone()))).unwrap();
    // Evicts file 0's handle.
    let (spans, data) = &blocks[first_b];
    disk_result(2, s.execute(f.write(2, spans, data.clone()))).unwrap();
    fs::remove_file(f.stored(0)).unwrap();

    // Not silently created again empty on the next write...
    let err = disk_result(3, s.execute(f.write(3, &blocks[1].0, blocks[1].1.clone()))).unwrap_err();
    assert_eq!(err.file, Some(0));
    assert!(err.message.contains("vanished"), "{err}");
    assert!(!exists(&f.stored(0)));
    // ...nor read.
    let err = disk_result(4, s.execute(f.read(4, &blocks[0].0))).unwrap_err();
    assert_eq!(err.file, Some(0));

    // File 1 is still open in the cache when it is deleted: finish notices.
    fs::remove_file(f.stored(1)).unwrap();
    let err = s.finish(f.torrent).unwrap_err();
    assert!(err.file == Some(0) || err.file == Some(1), "{err}");
    assert!(err.message.contains("vanished"), "{err}");
}

#[test]
fn finish_reports_a_cached_file_that_was_deleted() {
    let mut f = Fixture::new("w", &[("a", 20_000)], Version::V1, 16_384);
    let s = opened(&mut f, StorageConfig::default());
    let (spans, data) = block_in(&f, 0);
    disk_result(1, s.execute(f.write(1, &spans, data))).unwrap();
    assert_eq!(s.open_files(), 1);
    fs::remove_file(f.stored(0)).unwrap();
    let err = s.finish(f.torrent).unwrap_err();
    assert_eq!(err.file, Some(0));
    assert!(err.message.contains("vanished"), "{err}");
}

#[test]
fn commands_for_a_torrent_not_open_fail_without_panicking() {
    let mut f = Fixture::new("n", &[("a", 20_000)], Version::V1, 16_384);
    let (spans, data) = block_in(&f, 0);
    let s = Storage::new(StorageConfig::default());
    // Before Open.
    let err = disk_result(1, s.execute(f.write(1, &spans, data.clone()))).unwrap_err();
    assert_eq!(err.file, None);
    assert!(s.finish(f.torrent).is_err());
    // Opened without a registered directory.
    assert!(s.execute(f.take_open()).is_none());
    let err = disk_result(2, s.execute(f.write(2, &spans, data.clone()))).unwrap_err();
    assert_eq!(err.file, Some(0));
    assert!(err.message.contains("register"), "{err}");
    // After Close.
    assert!(s.execute(DiskCmd::Close { torrent: f.torrent }).is_none());
    let err = disk_result(3, s.execute(f.read(3, &spans))).unwrap_err();
    assert_eq!(err.file, None);
    assert!(!exists(&f.stored(0)));
}

#[test]
fn spans_that_do_not_fit_are_refused() {
    let mut f = Fixture::new("bad", &[("a", 20_000), ("b", 100)], Version::V1, 16_384);
    let s = opened(&mut f, StorageConfig::default());
    let span = |file, offset, length| FileSpan {
        file,
        offset,
        length,
        pad: false,
    };
    let cases: Vec<(Vec<FileSpan>, usize, Option<usize>)> = vec![
        // Data longer than the spans.
        (vec![span(0, 0, 10)], 11, None),
        // Past the end of the file.
        (vec![span(1, 90, 11)], 11, Some(1)),
        // Offset overflow.
        (vec![span(1, u64::MAX, 1)], 1, Some(1)),
        // No such file.
        (vec![span(9, 0, 1)], 1, None),
        // Claims padding where the torrent has a data file.
        (
            vec![FileSpan {
                pad: true,
                ..span(0, 0, 1)
            }],
            1,
            Some(0),
        ),
    ];
    for (n, (spans, len, file)) in cases.into_iter().enumerate() {
        let err = disk_result(
            n as u64,
            s.execute(f.write(n as u64, &spans, Bytes::from(vec![1; len]))),
        )
        .unwrap_err();
        assert_eq!(err.file, file, "case {n}: {err}");
    }
    assert!(
        !exists(&f.stored(0)) && !exists(&f.stored(1)),
        "nothing written"
    );
}

#[test]
fn close_releases_files_only_after_jobs_prepared_before_it() {
    let mut f = Fixture::new("c", &[("a", 40_000)], Version::V1, 16_384);
    let s = opened(&mut f, StorageConfig::default());
    let blocks = f.blocks();
    let early = s.prepare(f.write(1, &blocks[0].0, blocks[0].1.clone()));
    assert_eq!(early.torrent(), Some(f.torrent));
    let close = s.prepare(DiskCmd::Close { torrent: f.torrent });
    let late = s.prepare(f.write(2, &blocks[1].0, blocks[1].1.clone()));
    assert!(close.run().is_none());
    // The write prepared before Close still runs against the torrent's files...
    disk_result(1, early.run()).unwrap();
    // ...and its end released them; the one prepared after Close finds no torrent.
    assert_eq!(s.open_files(), 0);
    let err = disk_result(2, late.run()).unwrap_err();
    assert_eq!(err.file, None);
    assert_eq!(
        fs::read(f.stored(0)).unwrap(),
        blocks[0].1.to_vec(),
        "only the early block was written"
    );
}

#[test]
fn joined_paths_must_lie_strictly_inside_the_root() {
    let root = Path::new("/data/downloads");
    let inside = ["/data/downloads/a", "/data/downloads/t/b/c.bin"];
    let outside = [
        "/data/downloads",
        "/data/downloads/../etc/passwd",
        "/data/downloads/t/../../x",
        "/data/downloads-evil/a",
        "/etc/passwd",
        "relative/a",
    ];
    for p in inside {
        assert!(is_strictly_inside(root, Path::new(p)), "{p}");
    }
    for p in outside {
        assert!(!is_strictly_inside(root, Path::new(p)), "{p}");
    }
    // Every path storage derives from a real torrent passes.
    let f = hybrid_fixture();
    for e in f.info.files() {
        let p = path_under(&f.root(), e.path()).unwrap();
        assert!(p.starts_with(f.root()) && p != f.root());
    }
}

#[test]
fn storage_never_writes_outside_the_download_directory() {
    // Torrents whose names or paths try to climb out are refused before storage sees them.
    for name in ["..", "/abs", "a/../.."] {
        let mut raw = Vec::new();
        let mut d = bitshoal_core::bencode::DictWriter::new(&mut raw);
        d.int(b"length", 1);
        d.bytes(b"name", name.as_bytes());
        d.int(b"piece length", 16_384);
        d.bytes(b"pieces", &[0; 20]);
        d.finish();
        assert!(Info::from_bytes(&raw).is_err(), "{name:?} accepted");
    }
    // A real torrent written in full leaves nothing beside its folder, in or above the root.
    let mut f = hybrid_fixture();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    fs::create_dir(&root).unwrap();
    let s = Storage::new(StorageConfig::default());
    s.register(f.torrent, root.clone());
    assert!(s.execute(f.take_open()).is_none());
    for (n, (spans, data)) in f.blocks().into_iter().enumerate() {
        disk_result(n as u64, s.execute(f.write(n as u64, &spans, data))).unwrap();
    }
    s.finish(f.torrent).unwrap();
    let above: Vec<_> = fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(above, ["root"]);
    let inside: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(inside, ["multi"]);
}

#[test]
fn reopening_a_torrent_closes_the_old_opening() {
    let mut f = Fixture::new("re", &[("a", 20_000)], Version::V1, 16_384);
    let open = f.take_open();
    let DiskCmd::Open { torrent, info } = &open else {
        unreachable!()
    };
    let again = DiskCmd::Open {
        torrent: *torrent,
        info: Arc::clone(info),
    };
    let s = opened_with(&f, open);
    let (spans, data) = block_in(&f, 0);
    disk_result(1, s.execute(f.write(1, &spans, data.clone()))).unwrap();
    assert_eq!(s.open_files(), 1);
    // The second Open finds no registered directory and replaces the first.
    assert!(s.execute(again).is_none());
    assert_eq!(s.open_files(), 0);
    let err = disk_result(2, s.execute(f.write(2, &spans, data))).unwrap_err();
    assert!(err.message.contains("register"), "{err}");
}

fn opened_with(f: &Fixture, open: DiskCmd) -> Storage {
    let s = storage(8, Preallocate::Sparse);
    s.register(f.torrent, f.root());
    assert!(s.execute(open).is_none());
    s
}

/// Checking reads every piece of a torrent whose files may not exist yet: a read of a missing
/// file is an error (the session counts the piece as missing) and creates nothing.
#[test]
fn reading_a_missing_file_fails_and_creates_nothing() {
    let mut f = hybrid_fixture();
    let s = opened(&mut f, StorageConfig::default());
    let layout = f.info.layout();
    let piece = layout.piece(0).unwrap();
    let spans: Vec<FileSpan> = layout.piece_spans(piece).collect();
    let r = disk_result(1, s.execute(f.read(1, &spans)));
    let error = r.expect_err("nothing is there to read");
    assert_eq!(error.file, Some(spans[0].file));
    for i in f.data_files() {
        assert!(!exists(&f.stored(i)), "file {i} was not created by a read");
    }
    assert_eq!(fs::read_dir(f.download.path()).unwrap().count(), 0);
}

/// A batch mixing runs of consecutive blocks, blocks crossing files and padding, out-of-order
/// blocks and a read: every job gets exactly one completion with its own id, jobs run in
/// order, and every file ends up byte for byte as the original.
#[test]
fn a_batch_coalesces_consecutive_writes_and_completes_each_job() {
    let mut f = hybrid_fixture();
    let s = opened(&mut f, StorageConfig::default());
    let blocks = f.blocks();
    // In order, except the last two swapped (a break in a run), then a read.
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    let n = order.len();
    order.swap(n - 1, n - 2);
    let mut jobs: Vec<DiskJob> = order
        .iter()
        .map(|&i| s.prepare(f.write(i as u64, &blocks[i].0, blocks[i].1.clone())))
        .collect();
    jobs.push(s.prepare(f.read(9999, &blocks[0].0)));
    let mut done = Vec::new();
    DiskJob::run_batch(jobs, |input| match input {
        Input::DiskDone { req, result } => done.push((req, result)),
        other => panic!("unexpected {other:?}"),
    });
    let mut ids: Vec<RequestId> = done.iter().map(|(r, _)| *r).collect();
    ids.sort();
    let mut want: Vec<RequestId> = (0..blocks.len() as u64).map(RequestId::from_raw).collect();
    want.push(RequestId::from_raw(9999));
    assert_eq!(ids, want, "one completion per job");
    for (req, result) in &done {
        if *req == RequestId::from_raw(9999) {
            let Ok(DiskDone::Read(read)) = result else {
                panic!("the read after the writes: {result:?}");
            };
            assert_eq!(read, &blocks[0].1, "runs in order: the read sees the write");
        } else {
            assert!(
                matches!(result, Ok(DiskDone::Written)),
                "{req:?}: {result:?}"
            );
        }
    }
    s.finish(f.torrent).unwrap();
    for i in f.data_files() {
        assert_eq!(
            fs::read(f.stored(i)).unwrap(),
            fs::read(f.original(i)).unwrap(),
            "file {i}"
        );
    }
}

#[test]
fn block_read_buffers_are_reused_and_pad_bytes_read_as_zeros() {
    let mut f = hybrid_fixture();
    let s = opened(&mut f, StorageConfig::default());
    let blocks = f.blocks();
    for (n, (spans, data)) in blocks.iter().enumerate() {
        disk_result(n as u64, s.execute(f.write(n as u64, spans, data.clone()))).unwrap();
    }
    let full = |pad: bool| {
        blocks
            .iter()
            .find(|(spans, data)| {
                data.len() == BLOCK_LEN as usize && spans.iter().any(|s| s.pad) == pad
            })
            .expect("the fixture has full blocks with and without pad spans")
    };
    let (plain_spans, plain) = full(false);
    let (padded_spans, padded) = full(true);
    let read = |req: u64, spans: &[FileSpan]| match disk_result(req, s.execute(f.read(req, spans)))
    {
        Ok(DiskDone::Read(bytes)) => bytes,
        other => panic!("read {req}: {other:?}"),
    };
    let first = read(1, plain_spans);
    assert_eq!(&first, plain);
    assert!(first.iter().any(|&b| b != 0), "the reused buffer is dirty");
    let buffer = first.as_ptr();
    drop(first);
    assert_eq!(s.inner.read_bufs.free_count(), 1, "the buffer went back");
    let second = read(2, padded_spans);
    assert_eq!(
        second.as_ptr(),
        buffer,
        "the freed buffer is read into again"
    );
    assert_eq!(
        &second, padded,
        "pad bytes read as zeros, not the old bytes"
    );
    assert_eq!(s.inner.read_bufs.free_count(), 0);
}
