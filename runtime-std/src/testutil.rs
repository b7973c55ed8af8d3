//! Fixtures for the IO services' tests: real torrents made from files in a temporary
//! directory, opened through a real `Session` so ids and `DiskCmd::Open` come from the core.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bitshoal_core::create::Version;
use bitshoal_core::id::{RequestId, TorrentId};
use bitshoal_core::metainfo::{FileSpan, Info, Metainfo};
use bitshoal_core::session::{
    AddTorrent, Config, DiskCmd, DiskDone, Input, Output, Session, StorageError,
};
use bitshoal_core::time::Instant;
use bytes::Bytes;
use smallvec::SmallVec;
use tempfile::TempDir;

use crate::create::{create_torrent, CreateOptions};

/// Deterministic file contents, different per `seed`.
pub(crate) fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// A torrent over source files, and a session that has added it.
pub(crate) struct Fixture {
    /// Holds the source files (the torrent's paths are relative to it).
    pub(crate) source: TempDir,
    /// The download directory to register.
    pub(crate) download: TempDir,
    pub(crate) info: Arc<Info>,
    /// The torrent's byte stream: every file in order, pad files as zeros.
    pub(crate) stream: Vec<u8>,
    pub(crate) torrent: TorrentId,
    /// The session's `DiskCmd::Open`, until taken.
    pub(crate) open: Option<DiskCmd>,
}

impl Fixture {
    /// A multi-file torrent named `name` of `files` (relative path, length), or a single-file
    /// torrent when `files` is one entry with the path `""`.
    pub(crate) fn new(name: &str, files: &[(&str, usize)], version: Version, piece: u64) -> Self {
        let source = tempfile::tempdir().unwrap();
        let top = source.path().join(name);
        for (i, (rel, len)) in files.iter().enumerate() {
            let path = if rel.is_empty() {
                top.clone()
            } else {
                top.join(rel)
            };
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content(i as u8 + 1, *len)).unwrap();
        }
        let options = CreateOptions {
            version,
            piece_length: Some(piece),
            threads: 1,
            ..CreateOptions::default()
        };
        let created = create_torrent(&top, &options, |_, _| {}).unwrap();
        let info = Arc::new(Metainfo::from_bytes(&created.bytes).unwrap().into_info());
        let mut stream = Vec::new();
        for f in info.files() {
            if f.is_pad() {
                stream.resize(stream.len() + f.length() as usize, 0);
            } else {
                stream.extend(fs::read(f.path().join_under(source.path())).unwrap());
            }
        }
        let mut session = Session::new(Config::default());
        let torrent = session
            .add_torrent(Instant::ZERO, AddTorrent::new(Arc::clone(&info)))
            .unwrap();
        let mut open = None;
        while let Some(out) = session.poll_output() {
            if let Output::Disk(cmd @ DiskCmd::Open { .. }) = out {
                open = Some(cmd);
            }
        }
        assert!(open.is_some(), "add_torrent announces the storage");
        Self {
            source,
            download: tempfile::tempdir().unwrap(),
            info,
            stream,
            torrent,
            open,
        }
    }

    /// The download directory.
    pub(crate) fn root(&self) -> PathBuf {
        self.download.path().to_path_buf()
    }

    /// The session's `Open` command (once).
    pub(crate) fn take_open(&mut self) -> DiskCmd {
        self.open.take().expect("Open taken once")
    }

    /// Where file `i` is stored under the download directory.
    pub(crate) fn stored(&self, i: usize) -> PathBuf {
        self.info.files()[i].path().join_under(self.download.path())
    }

    /// Where file `i` came from.
    pub(crate) fn original(&self, i: usize) -> PathBuf {
        self.info.files()[i].path().join_under(self.source.path())
    }

    /// Every block of the torrent: its spans and its bytes from the stream.
    pub(crate) fn blocks(&self) -> Vec<(SmallVec<[FileSpan; 2]>, Bytes)> {
        let layout = self.info.layout();
        let mut out = Vec::new();
        for piece in layout.pieces() {
            for block in layout.blocks(piece) {
                let start = (layout.piece_offset(piece) + u64::from(block.offset)) as usize;
                let data = &self.stream[start..start + block.length as usize];
                out.push((
                    layout.block_spans(block).collect(),
                    Bytes::copy_from_slice(data),
                ));
            }
        }
        out
    }

    /// The indices of the non-pad files.
    pub(crate) fn data_files(&self) -> Vec<usize> {
        (0..self.info.files().len())
            .filter(|&i| !self.info.files()[i].is_pad())
            .collect()
    }

    /// A write command for this torrent.
    pub(crate) fn write(&self, req: u64, spans: &[FileSpan], data: Bytes) -> DiskCmd {
        DiskCmd::Write {
            req: RequestId::from_raw(req),
            torrent: self.torrent,
            spans: spans.iter().copied().collect(),
            data,
        }
    }

    /// A read command for this torrent.
    pub(crate) fn read(&self, req: u64, spans: &[FileSpan]) -> DiskCmd {
        DiskCmd::Read {
            req: RequestId::from_raw(req),
            torrent: self.torrent,
            spans: spans.iter().copied().collect(),
            length: spans.iter().map(|s| s.length).sum(),
        }
    }
}

/// The result of a read or write, checking the request id.
pub(crate) fn disk_result(req: u64, input: Option<Input>) -> Result<DiskDone, StorageError> {
    match input {
        Some(Input::DiskDone { req: r, result }) => {
            assert_eq!(r, RequestId::from_raw(req));
            result
        }
        other => panic!("expected DiskDone for {req}, got {other:?}"),
    }
}

/// Whether `path` exists (as anything).
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
