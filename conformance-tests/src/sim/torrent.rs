//! Test torrents: v1 metainfo over random payload bytes.

use std::sync::Arc;

use bitshoal_core::bencode::{put_bytes, put_int, DictWriter};
use bitshoal_core::metainfo::Info;
use bitshoal_core::rng::Rng;
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
        }
    }

    /// The piece count.
    pub fn piece_count(&self) -> u32 {
        self.info.layout().piece_count()
    }
}
