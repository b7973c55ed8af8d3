//! Test torrents: v1, v2 and hybrid metainfo over random payload bytes.

use std::sync::Arc;

use bitshoal_core::bencode::{put_bytes, put_int, DictWriter};
use bitshoal_core::create::{
    Contents, Creator, FileAttrs, InputFile, Plan, TorrentSpec as CreateSpec, Version,
};
use bitshoal_core::merkle;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::AddTorrent;
use bytes::Bytes;
use sha1::{Digest as _, Sha1};

/// The shape of a test torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSpec {
    /// File lengths in bytes; one file makes a single-file torrent.
    pub files: Vec<u64>,
    /// The piece length (a power of two, at least 16 KiB).
    pub piece_length: u32,
    /// Whether to insert BEP 47 pad files so each file (but the last) ends on a piece boundary.
    pub pad_files: bool,
}

impl TorrentSpec {
    /// A single-file torrent of `size` bytes.
    pub fn single(size: u64, piece_length: u32) -> Self {
        Self {
            files: vec![size],
            piece_length,
            pad_files: false,
        }
    }
}

/// A v1 torrent and its content.
#[derive(Clone, Debug)]
pub struct TestTorrent {
    /// The validated info dictionary.
    pub info: Arc<Info>,
    /// Every byte of the torrent in layout order (pad files as zeros).
    pub content: Bytes,
    /// BEP 52 piece layers by file index (empty for v1 torrents).
    pub piece_layers: Vec<Option<Bytes>>,
}

impl TestTorrent {
    /// Builds a torrent of random bytes drawn from `rng`.
    pub fn build(rng: &mut Rng, spec: &TorrentSpec) -> Self {
        Self::build_inner(rng, spec, false)
    }

    /// Builds a private torrent (BEP 27: `private: 1` in the info dictionary) of random bytes
    /// drawn from `rng`.
    pub fn build_private(rng: &mut Rng, spec: &TorrentSpec) -> Self {
        Self::build_inner(rng, spec, true)
    }

    fn build_inner(rng: &mut Rng, spec: &TorrentSpec, private: bool) -> Self {
        assert!(!spec.files.is_empty(), "a torrent has at least one file");
        let piece = u64::from(spec.piece_length);
        // (length, is_pad) in layout order.
        let mut entries: Vec<(u64, bool)> = Vec::new();
        let mut offset = 0u64;
        for (i, &len) in spec.files.iter().enumerate() {
            entries.push((len, false));
            offset += len;
            let last = i + 1 == spec.files.len();
            if spec.pad_files && !last && offset % piece != 0 {
                let pad = piece - offset % piece;
                entries.push((pad, true));
                offset += pad;
            }
        }
        let mut content = vec![0u8; offset as usize];
        let mut at = 0usize;
        for &(len, pad) in &entries {
            if !pad {
                rng.fill(&mut content[at..at + len as usize]);
            }
            at += len as usize;
        }
        let mut pieces = Vec::new();
        for chunk in content.chunks(spec.piece_length as usize) {
            pieces.extend_from_slice(&Sha1::digest(chunk));
        }
        let mut raw = Vec::new();
        let mut d = DictWriter::new(&mut raw);
        if spec.files.len() == 1 {
            d.int(b"length", spec.files[0] as i64);
        } else {
            let mut list = vec![b'l'];
            let mut n = 0;
            for &(len, pad) in &entries {
                let mut f = DictWriter::new(&mut list);
                if pad {
                    f.bytes(b"attr", b"p");
                }
                f.int(b"length", len as i64);
                if !pad {
                    let path = f.value(b"path");
                    path.push(b'l');
                    put_bytes(path, format!("file{n}.bin").as_bytes());
                    path.push(b'e');
                    n += 1;
                }
                f.finish();
            }
            list.push(b'e');
            d.raw(b"files", &list);
        }
        d.bytes(b"name", b"sim");
        let pl = d.value(b"piece length");
        put_int(pl, i64::from(spec.piece_length));
        d.bytes(b"pieces", &pieces);
        if private {
            d.int(b"private", 1);
        }
        d.finish();
        let info = Info::from_bytes(&raw).expect("the simulator builds valid torrents");
        Self {
            info: Arc::new(info),
            content: content.into(),
            piece_layers: Vec::new(),
        }
    }

    /// Builds a v2-only or hybrid torrent (BEP 52) of random bytes with the core's torrent
    /// creator: files `file0.bin`, `file1.bin`, ... of `spec.files` lengths (`pad_files` is
    /// ignored: v2 aligns files by itself, hybrids get the pad files they need).
    pub fn build_v2(rng: &mut Rng, spec: &TorrentSpec, version: Version) -> Self {
        Self::build_v2_inner(rng, spec, version, None, None)
    }

    /// An inconsistent hybrid torrent: like [`TestTorrent::build_v2`], but the v1 SHA-1 of piece
    /// `bad_v1_piece` is of other data, so that piece's content matches its v2 tree only.
    pub fn build_inconsistent_hybrid(rng: &mut Rng, spec: &TorrentSpec, bad_v1_piece: u32) -> Self {
        Self::build_v2_inner(rng, spec, Version::Hybrid, Some(bad_v1_piece), None)
    }

    /// An inconsistent hybrid torrent the other way round: the v2 tree (piece layer and root)
    /// of piece `bad_v2_piece` is of other data, so that piece's content matches its v1 SHA-1
    /// only.
    pub fn build_hybrid_with_bad_v2(rng: &mut Rng, spec: &TorrentSpec, bad_v2_piece: u32) -> Self {
        Self::build_v2_inner(rng, spec, Version::Hybrid, None, Some(bad_v2_piece))
    }

    fn build_v2_inner(
        rng: &mut Rng,
        spec: &TorrentSpec,
        version: Version,
        bad_v1_piece: Option<u32>,
        bad_v2_piece: Option<u32>,
    ) -> Self {
        assert!(version.has_v2(), "build_v2 builds v2 and hybrid torrents");
        let mut data: Vec<Vec<u8>> = spec
            .files
            .iter()
            .map(|&len| {
                let mut d = vec![0u8; len as usize];
                rng.fill(&mut d);
                d
            })
            .collect();
        let contents = if spec.files.len() == 1 {
            Contents::SingleFile {
                length: spec.files[0],
                attrs: FileAttrs::default(),
            }
        } else {
            Contents::Directory(
                spec.files
                    .iter()
                    .enumerate()
                    .map(|(i, &length)| InputFile {
                        path: vec![format!("file{i}.bin")],
                        length,
                        attrs: FileAttrs::default(),
                    })
                    .collect(),
            )
        };
        let mut create = CreateSpec::new("sim", contents, version);
        create.piece_length = Some(u64::from(spec.piece_length));
        let plan = Plan::new(create).expect("a valid simulator torrent");
        // The plan's files by name (it sorts v2 files by path), as bytes.
        let planned: Vec<Vec<u8>> = plan
            .files()
            .iter()
            .map(|f| {
                if f.length() == 0 {
                    return Vec::new();
                }
                let name = f.path().last().expect("a path");
                let i = if spec.files.len() == 1 {
                    0
                } else {
                    name.trim_start_matches("file")
                        .trim_end_matches(".bin")
                        .parse::<usize>()
                        .expect("file<i>.bin")
                };
                std::mem::take(&mut data[i])
            })
            .collect();
        let mut creator = Creator::new(plan.clone());
        for job in plan.jobs() {
            let mut bytes = Vec::new();
            for span in &job.spans {
                let f = &planned[span.file];
                bytes.extend_from_slice(
                    &f[span.offset as usize..(span.offset + span.length) as usize],
                );
            }
            let data_len = bytes.len();
            if let Some(piece) = job.v1_piece {
                let mut padded = bytes.clone();
                padded.resize(data_len + job.zero_pad as usize, 0);
                if bad_v1_piece == Some(piece) {
                    padded[0] ^= 0xff;
                }
                creator
                    .add_v1_piece(piece, Sha1::digest(&padded).into())
                    .expect("a planned piece");
            }
            if let Some(at) = job.v2_piece {
                let mut leaves = merkle::leaves_of(&bytes);
                if bad_v2_piece.is_some() && bad_v2_piece == job.v1_piece {
                    leaves[0] = merkle::block_hash(b"other data");
                }
                creator.add_v2_piece(at, &leaves).expect("a planned piece");
            }
        }
        let created = creator.finish().expect("every digest given");
        let meta = Metainfo::from_bytes(&created.bytes).expect("the creator makes valid torrents");
        let info = meta.info().clone();
        // The content in the info's layout order: each file's bytes at its offset, padding zero.
        let layout_len = info.layout().total_length() as usize;
        let mut content = vec![0u8; layout_len];
        for entry in info.files() {
            if entry.is_pad() || entry.length() == 0 {
                continue;
            }
            let path = entry.path().as_str();
            let name = path.rsplit('/').next().expect("a path");
            let source = plan
                .files()
                .iter()
                .position(|f| f.path().last().map(String::as_str) == Some(name))
                .expect("the same files");
            let at = entry.offset() as usize;
            content[at..at + entry.length() as usize].copy_from_slice(&planned[source]);
        }
        let files = info.files().len();
        Self {
            piece_layers: (0..files).map(|f| meta.piece_layer(f).cloned()).collect(),
            info: Arc::new(info),
            content: content.into(),
        }
    }

    /// An [`AddTorrent`] for this torrent, its piece layers included.
    pub fn add(&self) -> AddTorrent {
        AddTorrent::new(self.info.clone()).with_piece_layers(self.piece_layers.clone())
    }

    /// The piece count.
    pub fn piece_count(&self) -> u32 {
        self.info.layout().piece_count()
    }
}
