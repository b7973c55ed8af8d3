//! The BEP 52 half: `file tree`, the implicit per-file piece alignment, and `piece layers`.
//!
//! File order is the order of the tree's keys, which strict bencode keeps sorted. A tree with one
//! file at its top level is a single-file torrent whose file is named by that key (libtorrent
//! ignores `name` there too); otherwise paths are placed under the `name` directory, as
//! libtorrent does.

use bytes::Bytes;

use crate::bencode::{Dict, Value};
use crate::merkle::{self, Hash256};

use super::error::{FileTreeProblem, MetainfoError};
use super::info::{opt_bytes, opt_int, wrong_type, FileAttributes, FileEntry};
use super::path::{check_component, SafePath};
use super::{v1, Limits};

/// Whether the tree is a single file at its top level.
pub(super) fn is_single_file(tree: &Dict<'_>) -> bool {
    let mut entries = tree.iter();
    match (entries.next(), entries.next()) {
        (Some((_, Value::Dict(node))), None) => node.contains_key(b""),
        _ => false,
    }
}

/// The files of `file tree` in tree order, with offsets not yet assigned (see [`align`]).
pub(super) fn parse(
    tree: &Dict<'_>,
    prefix: Option<&SafePath>,
    limits: &Limits,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let problem = |problem| MetainfoError::BadFileTree {
        path: String::new(),
        problem,
    };
    if tree.contains_key(b"") {
        return Err(problem(FileTreeProblem::RootIsFile));
    }
    if tree.is_empty() {
        return Err(problem(FileTreeProblem::EmptyDirectory));
    }
    let mut walker = Walker {
        prefix,
        limits,
        stack: Vec::new(),
        files: Vec::new(),
    };
    walker.directory(tree)?;
    Ok(walker.files)
}

struct Walker<'p, 'a> {
    prefix: Option<&'p SafePath>,
    limits: &'p Limits,
    stack: Vec<&'a str>,
    files: Vec<FileEntry>,
}

impl<'a> Walker<'_, 'a> {
    fn here(&self) -> String {
        self.stack.join("/")
    }

    /// Recursion is bounded by the bencode depth limit the tree was decoded with.
    fn directory(&mut self, dir: &Dict<'a>) -> Result<(), MetainfoError> {
        for (key, value) in dir.iter() {
            let index = self.files.len();
            let component =
                check_component(key, self.limits.max_component_len).map_err(|error| {
                    MetainfoError::UnsafePath {
                        file: Some(index),
                        error,
                    }
                })?;
            let node = value
                .as_dict()
                .ok_or(wrong_type("info.file tree", "dictionary"))?;
            self.stack.push(component);
            let depth = self.stack.len() + self.prefix.map_or(0, SafePath::depth);
            if depth > self.limits.max_path_depth {
                return Err(MetainfoError::PathTooDeep {
                    file: index,
                    depth,
                    max: self.limits.max_path_depth,
                });
            }
            let bad = |problem| MetainfoError::BadFileTree {
                path: self.here(),
                problem,
            };
            match node.get(b"") {
                Some(_) if node.len() != 1 => return Err(bad(FileTreeProblem::FileWithSiblings)),
                Some(leaf) => {
                    let leaf = leaf
                        .as_dict()
                        .ok_or(wrong_type("info.file tree.\"\"", "dictionary"))?;
                    self.file(leaf, index)?;
                }
                None if node.is_empty() => return Err(bad(FileTreeProblem::EmptyDirectory)),
                None => self.directory(node)?,
            }
            self.stack.pop();
        }
        Ok(())
    }

    fn file(&mut self, leaf: &Dict<'_>, index: usize) -> Result<(), MetainfoError> {
        if index >= self.limits.max_files {
            return Err(MetainfoError::TooManyFiles {
                count: index + 1,
                max: self.limits.max_files,
            });
        }
        let mut attributes =
            FileAttributes::parse(opt_bytes(leaf, b"attr", "info.file tree.attr")?.unwrap_or(b""));
        // BEP 47: a symlink's length may be omitted (libtorrent omits it in the file tree).
        let length = match opt_int(leaf, b"length", "info.file tree.length")? {
            Some(length) => u64::try_from(length).map_err(|_| MetainfoError::NegativeLength {
                file: index,
                length,
            })?,
            None if attributes.symlink => 0,
            None => {
                return Err(MetainfoError::BadFileTree {
                    path: self.here(),
                    problem: FileTreeProblem::MissingLength,
                })
            }
        };
        // BEP 52 has no padding files: a `p` here must not hide a real file from storage.
        attributes.pad = false;
        let pieces_root = if length == 0 {
            None
        } else {
            match opt_bytes(leaf, b"pieces root", "info.file tree.pieces root")? {
                Some(root) if root.len() == 32 => {
                    Some(root.try_into().expect("length checked above"))
                }
                _ => return Err(MetainfoError::BadPiecesRoot { file: index }),
            }
        };
        let symlink_target = v1::symlink_target(
            leaf,
            attributes,
            length,
            index,
            self.prefix,
            "info.file tree.symlink path",
            self.limits,
        )?;
        let rel = SafePath::from_components(self.stack.iter().map(|c| c.as_bytes()), usize::MAX)
            .expect("every component was checked on the way down, and there is at least one");
        let path = match self.prefix {
            Some(p) => p.join(&rel),
            None => rel,
        };
        self.files.push(FileEntry {
            path,
            length,
            offset: 0,
            attributes,
            symlink_target,
            pieces_root,
        });
        Ok(())
    }
}

/// The length of the byte stream in which each file starts on a piece boundary (BEP 52).
pub(super) fn aligned_total(files: &[FileEntry], piece_length: u32) -> Result<u64, MetainfoError> {
    let mut offset = 0u64;
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            offset = align_up(offset, piece_length)?;
        }
        offset = offset
            .checked_add(file.length)
            .ok_or(MetainfoError::LengthOverflow)?;
    }
    Ok(offset)
}

fn align_up(offset: u64, piece_length: u32) -> Result<u64, MetainfoError> {
    let rem = offset % u64::from(piece_length);
    if rem == 0 {
        return Ok(offset);
    }
    offset
        .checked_add(u64::from(piece_length) - rem)
        .ok_or(MetainfoError::LengthOverflow)
}

/// Places a v2-only torrent's files in one byte stream, each starting on a piece boundary, with
/// explicit padding entries where the gaps are, exactly as libtorrent 2.0 lists them: in a
/// multi-file torrent, a padding file `name/.pad/N` after every file whose end is not on a piece
/// boundary, the last one included; in a single-file torrent, `.pad/N` after the file (libtorrent
/// pads a single file's last piece to a whole piece too, and requests blocks in that padding). One [`Layout`](super::Layout) then serves v1, v2 and hybrids
/// alike, and a v2-only torrent maps pieces to files as its libtorrent-made hybrid twin does.
pub(super) fn align(
    files: Vec<FileEntry>,
    piece_length: u32,
    prefix: Option<&SafePath>,
    limits: &Limits,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let total = aligned_total(&files, piece_length)?;
    v1::piece_count(total, piece_length, limits)?;
    let mut out = Vec::with_capacity(files.len() * 2);
    let mut offset = 0u64;
    for mut file in files {
        file.offset = offset;
        offset += file.length;
        out.push(file);
        let aligned = align_up(offset, piece_length)?;
        if aligned != offset {
            let gap = aligned - offset;
            let n = gap.to_string();
            let rel = SafePath::from_components([&b".pad"[..], n.as_bytes()], usize::MAX)
                .expect("`.pad` and a decimal number are safe components");
            out.push(FileEntry {
                // A single-file torrent's tail padding has no folder to live in; it is never
                // written, only counted.
                path: prefix.map_or(rel.clone(), |p| p.join(&rel)),
                length: gap,
                offset,
                attributes: FileAttributes {
                    pad: true,
                    ..FileAttributes::default()
                },
                symlink_target: None,
                pieces_root: None,
            });
            offset = aligned;
        }
    }
    Ok(out)
}

/// Checks `piece layers` against every file bigger than a piece and returns, per file index,
/// the file's layer (BEP 52: required, of exactly ceil(length / piece length) hashes, and
/// hashing up to `pieces root`). Files of at most one piece need none: their root is the piece
/// hash. Entries for no file are ignored.
pub(super) fn piece_layers(
    buf: &Bytes,
    layers: Option<&Dict<'_>>,
    files: &[FileEntry],
    piece_length: u32,
) -> Result<Vec<Option<Bytes>>, MetainfoError> {
    let height = merkle::piece_layer_height(u64::from(piece_length))
        .expect("a v2 piece length was checked to be a power of two of at least 16 KiB");
    // Find every file's layer with one merge of two sorted lists (the files' roots, the
    // dictionary's keys) rather than a binary search per file: with thousands of files the
    // searches' cache misses dominated the whole load.
    let needs_layer = |file: &FileEntry| {
        file.pieces_root
            .filter(|_| file.length > u64::from(piece_length))
    };
    let mut wanted: Vec<(Hash256, usize)> = files
        .iter()
        .enumerate()
        .filter_map(|(index, file)| needs_layer(file).map(|root| (root, index)))
        .collect();
    wanted.sort_unstable();
    let mut found: Vec<Option<&Value<'_>>> = vec![None; files.len()];
    if let Some(layers) = layers {
        let mut entries = layers.sorted_entries().peekable();
        for (root, index) in &wanted {
            while entries.next_if(|(key, _)| *key < &root[..]).is_some() {}
            if let Some((key, value)) = entries.peek() {
                if *key == &root[..] {
                    found[*index] = Some(value);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let Some(root) = needs_layer(file) else {
            out.push(None);
            continue;
        };
        let layer = match found[index] {
            None => return Err(MetainfoError::MissingPieceLayer { file: index }),
            Some(Value::Bytes(b)) => *b,
            Some(_) => return Err(wrong_type("piece layers", "dictionary of strings")),
        };
        let expected = file.length.div_ceil(u64::from(piece_length)) as usize * 32;
        if layer.len() != expected {
            return Err(MetainfoError::PieceLayerLength {
                file: index,
                expected,
                actual: layer.len(),
            });
        }
        let hashes: Vec<Hash256> = layer
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect();
        if merkle::root_from_layer(&hashes, height) != root {
            return Err(MetainfoError::PieceLayerMismatch { file: index });
        }
        out.push(Some(buf.slice_ref(layer)));
    }
    Ok(out)
}
