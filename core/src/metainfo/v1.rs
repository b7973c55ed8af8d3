//! The BEP 3 half of `info`: `length` or `files`, and the SHA-1 `pieces`.
//!
//! BEP 47 extensions are read here too: `attr` (pad, executable, hidden, symlink), padding files
//! without a `path` (named `.pad/N`, as BEP 47 recommends), and `symlink path`.

use crate::bencode::{Dict, Value};

use super::error::MetainfoError;
use super::info::{opt_bytes, opt_int, opt_list, path_from_list, required, wrong_type};
use super::info::{FileAttributes, FileEntry};
use super::path::SafePath;
use super::Limits;

/// The v1 view of a torrent: its files in order (with offsets) and its piece hashes.
#[derive(Debug)]
pub(super) struct V1Part<'a> {
    pub(super) files: Vec<FileEntry>,
    /// The `pieces` string: 20 bytes per piece, count already checked against the lengths.
    pub(super) pieces: &'a [u8],
    /// `files` (a directory named `name`) rather than `length` (a file named `name`).
    pub(super) multi_file: bool,
}

/// Reads the v1 file list and `pieces` from `info`.
pub(super) fn parse<'a>(
    info: &Dict<'a>,
    name: &SafePath,
    piece_length: u32,
    limits: &Limits,
) -> Result<V1Part<'a>, MetainfoError> {
    let length = opt_int(info, b"length", "info.length")?;
    let list = opt_list(info, b"files", "info.files")?;
    let (files, multi_file) = match (length, list) {
        (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
        (None, None) => return Err(MetainfoError::MissingKey { key: "info.files" }),
        (Some(_), None) => (vec![single_file(info, name, limits)?], false),
        (None, Some(list)) => {
            if list.len() > limits.max_files {
                return Err(MetainfoError::TooManyFiles {
                    count: list.len(),
                    max: limits.max_files,
                });
            }
            let mut files = Vec::with_capacity(list.len());
            let mut offset = 0u64;
            for (index, item) in list.iter().enumerate() {
                let dict = item
                    .as_dict()
                    .ok_or(wrong_type("info.files", "list of dictionaries"))?;
                let file = file_entry(dict, index, name, offset, limits)?;
                offset = offset
                    .checked_add(file.length)
                    .ok_or(MetainfoError::LengthOverflow)?;
                files.push(file);
            }
            (files, true)
        }
    };
    let total = files.last().map_or(0, |f| f.offset + f.length);
    let pieces = required(opt_bytes(info, b"pieces", "info.pieces")?, "info.pieces")?;
    check_pieces(pieces, total, piece_length, limits)?;
    Ok(V1Part {
        files,
        pieces,
        multi_file,
    })
}

/// The piece count implied by `total` bytes, checked against the limit (before anything is
/// allocated for the pieces, so a torrent declaring 2^40 bytes costs nothing).
pub(super) fn piece_count(
    total: u64,
    piece_length: u32,
    limits: &Limits,
) -> Result<u64, MetainfoError> {
    if total == 0 {
        return Err(MetainfoError::EmptyTorrent);
    }
    let count = total.div_ceil(u64::from(piece_length));
    if count > u64::from(limits.max_pieces) {
        return Err(MetainfoError::TooManyPieces {
            count,
            max: limits.max_pieces,
        });
    }
    Ok(count)
}

fn check_pieces(
    pieces: &[u8],
    total: u64,
    piece_length: u32,
    limits: &Limits,
) -> Result<(), MetainfoError> {
    let expected = piece_count(total, piece_length, limits)?;
    if pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20 { len: pieces.len() });
    }
    let actual = (pieces.len() / 20) as u64;
    if actual != expected {
        return Err(MetainfoError::PieceCountMismatch { expected, actual });
    }
    Ok(())
}

/// A single-file torrent: the file is `name`, its attributes are on `info` itself (BEP 47).
fn single_file(
    info: &Dict<'_>,
    name: &SafePath,
    limits: &Limits,
) -> Result<FileEntry, MetainfoError> {
    let attributes = FileAttributes::parse(opt_bytes(info, b"attr", "info.attr")?.unwrap_or(b""));
    let length = required(opt_int(info, b"length", "info.length")?, "info.length")?;
    let length =
        u64::try_from(length).map_err(|_| MetainfoError::NegativeLength { file: 0, length })?;
    let symlink_target = symlink_target(
        info,
        attributes,
        length,
        0,
        None,
        "info.symlink path",
        limits,
    )?;
    Ok(FileEntry {
        path: name.clone(),
        length,
        offset: 0,
        attributes,
        symlink_target,
        pieces_root: None,
    })
}

/// One entry of a multi-file `files` list; paths are prefixed with the torrent's `name`.
fn file_entry(
    dict: &Dict<'_>,
    index: usize,
    name: &SafePath,
    offset: u64,
    limits: &Limits,
) -> Result<FileEntry, MetainfoError> {
    let attributes =
        FileAttributes::parse(opt_bytes(dict, b"attr", "info.files.attr")?.unwrap_or(b""));
    // BEP 47: a symlink's length may be omitted; it is zero.
    let length = match opt_int(dict, b"length", "info.files.length")? {
        Some(length) => u64::try_from(length).map_err(|_| MetainfoError::NegativeLength {
            file: index,
            length,
        })?,
        None if attributes.symlink => 0,
        None => {
            return Err(MetainfoError::MissingKey {
                key: "info.files.length",
            })
        }
    };
    // libtorrent prefers `path.utf-8` to `path` where both are present; so do we.
    let list = match opt_list(dict, b"path.utf-8", "info.files.path.utf-8")? {
        Some(list) => Some((list, "info.files.path.utf-8")),
        None => opt_list(dict, b"path", "info.files.path")?.map(|l| (l, "info.files.path")),
    };
    let path = match list {
        Some((list, key)) => path_from_list(list, Some(name), key, index, limits)?,
        // BEP 47: padding files need not have a path.
        None if attributes.pad => {
            let n = length.to_string();
            let rel = SafePath::from_components([&b".pad"[..], n.as_bytes()], usize::MAX)
                .expect("`.pad` and a decimal number are safe components");
            name.join(&rel)
        }
        None => {
            return Err(MetainfoError::MissingKey {
                key: "info.files.path",
            })
        }
    };
    let symlink_target = symlink_target(
        dict,
        attributes,
        length,
        index,
        Some(name),
        "info.files.symlink path",
        limits,
    )?;
    Ok(FileEntry {
        path,
        length,
        offset,
        attributes,
        symlink_target,
        pieces_root: None,
    })
}

/// The BEP 47 `symlink path` of a file with attribute `l`, relative to the torrent's root
/// directory (`prefix`: the `name` directory of a multi-file torrent).
pub(super) fn symlink_target(
    dict: &Dict<'_>,
    attributes: FileAttributes,
    length: u64,
    index: usize,
    prefix: Option<&SafePath>,
    key: &'static str,
    limits: &Limits,
) -> Result<Option<SafePath>, MetainfoError> {
    if !attributes.symlink {
        return Ok(None);
    }
    if length != 0 {
        return Err(MetainfoError::SymlinkWithLength { file: index });
    }
    match dict.get(b"symlink path") {
        None => Err(MetainfoError::MissingSymlinkTarget { file: index }),
        Some(Value::List(list)) => path_from_list(list, prefix, key, index, limits).map(Some),
        Some(_) => Err(wrong_type(key, "list of strings")),
    }
}
