//! Hybrid torrents (BEP 52 "upgrade path"): one `info` with both a v1 and a v2 view.
//!
//! The views must describe the same content: the v1 `files` list without its BEP 47 padding
//! files has the same paths, lengths, attributes and symlink targets, in the same order, as the
//! v2 `file tree`; every non-empty file starts on a piece boundary of the v1 byte stream (the
//! padding files provide that); and both views have the same number of pieces. libtorrent's
//! hybrids (a padding file after every file but the last, where needed) are the reference.

use super::error::{HybridProblem, MetainfoError};
use super::info::{FileAttributes, FileEntry};
use super::v2;

fn without_pad(a: FileAttributes) -> FileAttributes {
    FileAttributes { pad: false, ..a }
}

/// Checks that the views agree and returns the v1 list (with padding) carrying the v2 roots.
pub(super) fn merge(
    mut v1_files: Vec<FileEntry>,
    v2_files: Vec<FileEntry>,
    piece_length: u32,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let mismatch = |p| Err(MetainfoError::HybridMismatch(p));
    let real = v1_files.iter().filter(|f| !f.is_pad()).count();
    if real != v2_files.len() {
        return mismatch(HybridProblem::FileCount {
            v1: real,
            v2: v2_files.len(),
        });
    }
    let pl = u64::from(piece_length);
    let pairs = v1_files.iter().filter(|f| !f.is_pad()).zip(&v2_files);
    for (index, (a, b)) in pairs.enumerate() {
        if a.path != b.path {
            return mismatch(HybridProblem::Path {
                index,
                v1: a.path.as_str().to_owned(),
                v2: b.path.as_str().to_owned(),
            });
        }
        if a.length != b.length {
            return mismatch(HybridProblem::Length {
                index,
                v1: a.length,
                v2: b.length,
            });
        }
        if without_pad(a.attributes) != without_pad(b.attributes)
            || a.symlink_target != b.symlink_target
        {
            return mismatch(HybridProblem::Attributes { index });
        }
        if a.length > 0 && a.offset % pl != 0 {
            return mismatch(HybridProblem::Unaligned {
                index,
                offset: a.offset,
            });
        }
    }
    let v1_total = v1_files.last().map_or(0, |f| f.offset + f.length);
    let v1_pieces = v1_total.div_ceil(pl);
    let v2_pieces = v2::aligned_total(&v2_files, piece_length)?.div_ceil(pl);
    if v1_pieces != v2_pieces {
        return mismatch(HybridProblem::PieceCount {
            v1: v1_pieces,
            v2: v2_pieces,
        });
    }
    let real = v1_files.iter_mut().filter(|f| !f.is_pad());
    for (a, b) in real.zip(v2_files) {
        a.pieces_root = b.pieces_root;
    }
    Ok(v1_files)
}
