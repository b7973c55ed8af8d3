//! Why a `.torrent` file or an `info` dictionary was refused.

use std::fmt;

use crate::bencode::DecodeError;

use super::path::PathError;

/// Why a `.torrent` file (or an `info` dictionary fetched by BEP 9) was refused.
///
/// Keys are named with their place in the file, e.g. `"info.piece length"` or
/// `"info.files.path"`; files are named by their index in torrent order and, once known, their
/// path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The bytes are not strict bencode (BEP 3; BEP 52 forbids hashing a re-encoded `info`).
    Bencode(DecodeError),
    /// The whole `.torrent` file is bigger than [`Limits::max_torrent_size`](super::Limits).
    TorrentTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The `info` dictionary is bigger than [`Limits::max_metadata_size`](super::Limits).
    MetadataTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A required key is absent.
    MissingKey {
        /// Which key.
        key: &'static str,
    },
    /// A key holds a value of the wrong bencode type.
    WrongType {
        /// Which key.
        key: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// `meta version` is not 2 (BEP 52: checked before anything else in `info`).
    UnsupportedMetaVersion(i64),
    /// `piece length` is not usable.
    BadPieceLength {
        /// The declared value.
        length: i64,
        /// Why it is refused.
        reason: PieceLengthProblem,
    },
    /// `pieces` is not a whole number of 20-byte SHA-1 hashes.
    PiecesNotMultipleOf20 {
        /// Its length in bytes.
        len: usize,
    },
    /// `pieces` holds another number of hashes than the total length implies.
    PieceCountMismatch {
        /// ceil(total length / piece length).
        expected: u64,
        /// The number of hashes present.
        actual: u64,
    },
    /// The torrent has more pieces than [`Limits::max_pieces`](super::Limits).
    TooManyPieces {
        /// How many pieces the lengths imply.
        count: u64,
        /// The limit.
        max: u32,
    },
    /// The torrent has more files than [`Limits::max_files`](super::Limits).
    TooManyFiles {
        /// How many were found (counting stops just past the limit).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A file length is negative.
    NegativeLength {
        /// The file's index in torrent order.
        file: usize,
        /// The declared length.
        length: i64,
    },
    /// The file lengths (with alignment padding) add up past `u64`.
    LengthOverflow,
    /// The torrent describes no data: no files, or only empty ones.
    EmptyTorrent,
    /// A v1 `info` has both `length` (single file) and `files` (multi-file).
    BothLengthAndFiles,
    /// A path or one of its components breaks the path rule (see [`SafePath`](super::SafePath)).
    UnsafePath {
        /// The file's index in torrent order (`None` for the torrent's `name`).
        file: Option<usize>,
        /// What was wrong with which component.
        error: PathError,
    },
    /// A path has more components than [`Limits::max_path_depth`](super::Limits).
    PathTooDeep {
        /// The file's index in torrent order.
        file: usize,
        /// Its number of components.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// Two files have the same path.
    DuplicatePath {
        /// The path, components joined with `/`.
        path: String,
    },
    /// A file's path is also a directory holding another file.
    FileIsDirectory {
        /// The file's path.
        path: String,
        /// The path of a file inside it.
        inside: String,
    },
    /// A symlink (BEP 47 attribute `l`) has a non-zero length.
    SymlinkWithLength {
        /// The file's index in torrent order.
        file: usize,
    },
    /// A symlink (BEP 47 attribute `l`) has no `symlink path`.
    MissingSymlinkTarget {
        /// The file's index in torrent order.
        file: usize,
    },
    /// The v2 `file tree` is malformed (BEP 52).
    BadFileTree {
        /// Where, components joined with `/` (empty for the root).
        path: String,
        /// What is wrong there.
        problem: FileTreeProblem,
    },
    /// A non-empty v2 file has no `pieces root`, or it is not 32 bytes.
    BadPiecesRoot {
        /// The file's index in torrent order.
        file: usize,
    },
    /// A file bigger than one piece has no entry in `piece layers` (BEP 52).
    MissingPieceLayer {
        /// The file's index in torrent order.
        file: usize,
    },
    /// A `piece layers` entry has the wrong number of bytes.
    PieceLayerLength {
        /// The file's index in torrent order.
        file: usize,
        /// 32 × ceil(file length / piece length).
        expected: usize,
        /// Its length in bytes.
        actual: usize,
    },
    /// A `piece layers` entry does not hash up to the file's `pieces root` (BEP 52).
    PieceLayerMismatch {
        /// The file's index in torrent order.
        file: usize,
    },
    /// The v1 and v2 halves of a hybrid torrent describe different content (BEP 52 upgrade path).
    HybridMismatch(HybridProblem),
}

/// Why a `piece length` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PieceLengthProblem {
    /// Zero or negative.
    NotPositive,
    /// Above [`Limits::max_piece_length`](super::Limits).
    TooLarge,
    /// A v2 (or hybrid) piece length that is not a power of two of at least 16 KiB (BEP 52).
    NotPowerOfTwoAtLeast16KiB,
}

/// What is wrong in a v2 `file tree` (BEP 52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileTreeProblem {
    /// The root itself is a file (has a `""` key).
    RootIsFile,
    /// A file entry (`""` key) has sibling keys: it would be a file and a directory at once.
    FileWithSiblings,
    /// A directory with nothing in it.
    EmptyDirectory,
    /// A `""` entry without `length`.
    MissingLength,
}

/// How the v1 and v2 views of a hybrid torrent disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HybridProblem {
    /// They list a different number of (non-padding) files.
    FileCount {
        /// Files in the v1 `files` list, without padding files.
        v1: usize,
        /// Files in the v2 `file tree`.
        v2: usize,
    },
    /// The `index`-th non-padding file differs in path.
    Path {
        /// Index among non-padding files.
        index: usize,
        /// The v1 path.
        v1: String,
        /// The v2 path.
        v2: String,
    },
    /// The `index`-th non-padding file differs in length.
    Length {
        /// Index among non-padding files.
        index: usize,
        /// The v1 length.
        v1: u64,
        /// The v2 length.
        v2: u64,
    },
    /// The `index`-th non-padding file differs in attributes or symlink target.
    Attributes {
        /// Index among non-padding files.
        index: usize,
    },
    /// A non-empty file does not start on a piece boundary in the v1 list, as v2 requires.
    Unaligned {
        /// Index among non-padding files.
        index: usize,
        /// Its offset in the v1 byte stream.
        offset: u64,
    },
    /// The v1 byte stream (with padding) has another number of pieces than the v2 files.
    PieceCount {
        /// Pieces in the v1 stream.
        v1: u64,
        /// Pieces in the v2 layout.
        v2: u64,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bencode(e) => write!(f, "not a valid torrent: {e}"),
            Self::TorrentTooLarge { size, max } => {
                write!(f, "torrent file of {size} bytes exceeds the limit of {max}")
            }
            Self::MetadataTooLarge { size, max } => {
                write!(
                    f,
                    "info dictionary of {size} bytes exceeds the limit of {max}"
                )
            }
            Self::MissingKey { key } => write!(f, "missing key `{key}`"),
            Self::WrongType { key, expected } => write!(f, "`{key}` is not a {expected}"),
            Self::UnsupportedMetaVersion(v) => write!(f, "unsupported `meta version` {v}"),
            Self::BadPieceLength { length, reason } => {
                write!(f, "bad `piece length` {length}: {reason}")
            }
            Self::PiecesNotMultipleOf20 { len } => {
                write!(f, "`pieces` is {len} bytes, not a multiple of 20")
            }
            Self::PieceCountMismatch { expected, actual } => write!(
                f,
                "`pieces` holds {actual} hashes but the lengths make {expected} pieces"
            ),
            Self::TooManyPieces { count, max } => {
                write!(f, "{count} pieces exceed the limit of {max}")
            }
            Self::TooManyFiles { count, max } => {
                write!(f, "{count} files exceed the limit of {max}")
            }
            Self::NegativeLength { file, length } => {
                write!(f, "file {file} has negative length {length}")
            }
            Self::LengthOverflow => f.write_str("file lengths add up past 2^64"),
            Self::EmptyTorrent => f.write_str("the torrent holds no data"),
            Self::BothLengthAndFiles => f.write_str("`info` has both `length` and `files`"),
            Self::UnsafePath { file: None, error } => write!(f, "unsafe torrent name: {error}"),
            Self::UnsafePath {
                file: Some(i),
                error,
            } => write!(f, "unsafe path in file {i}: {error}"),
            Self::PathTooDeep { file, depth, max } => write!(
                f,
                "file {file} has a path of {depth} components, more than {max}"
            ),
            Self::DuplicatePath { path } => write!(f, "two files have the path {path:?}"),
            Self::FileIsDirectory { path, inside } => {
                write!(f, "file {path:?} is also the directory of {inside:?}")
            }
            Self::SymlinkWithLength { file } => {
                write!(f, "file {file} is a symlink with a non-zero length")
            }
            Self::MissingSymlinkTarget { file } => {
                write!(f, "file {file} is a symlink without `symlink path`")
            }
            Self::BadFileTree { path, problem } => {
                write!(f, "bad `file tree` at {path:?}: {problem}")
            }
            Self::BadPiecesRoot { file } => {
                write!(f, "file {file} has a missing or malformed `pieces root`")
            }
            Self::MissingPieceLayer { file } => {
                write!(f, "file {file} has no entry in `piece layers`")
            }
            Self::PieceLayerLength {
                file,
                expected,
                actual,
            } => write!(
                f,
                "piece layer of file {file} is {actual} bytes, expected {expected}"
            ),
            Self::PieceLayerMismatch { file } => write!(
                f,
                "piece layer of file {file} does not match its `pieces root`"
            ),
            Self::HybridMismatch(p) => write!(f, "hybrid torrent's v1 and v2 views differ: {p}"),
        }
    }
}

impl fmt::Display for PieceLengthProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotPositive => "not positive",
            Self::TooLarge => "too large",
            Self::NotPowerOfTwoAtLeast16KiB => "v2 needs a power of two of at least 16 KiB",
        })
    }
}

impl fmt::Display for FileTreeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RootIsFile => "the root is a file",
            Self::FileWithSiblings => "a file entry has siblings",
            Self::EmptyDirectory => "empty directory",
            Self::MissingLength => "file entry without `length`",
        })
    }
}

impl fmt::Display for HybridProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FileCount { v1, v2 } => write!(f, "{v1} files in v1, {v2} in v2"),
            Self::Path { index, v1, v2 } => write!(f, "file {index} is {v1:?} in v1, {v2:?} in v2"),
            Self::Length { index, v1, v2 } => {
                write!(f, "file {index} is {v1} bytes in v1, {v2} in v2")
            }
            Self::Attributes { index } => write!(f, "file {index} has other attributes in v1"),
            Self::Unaligned { index, offset } => {
                write!(
                    f,
                    "file {index} starts at {offset}, not on a piece boundary"
                )
            }
            Self::PieceCount { v1, v2 } => write!(f, "{v1} pieces in v1, {v2} in v2"),
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bencode(e) => Some(e),
            Self::UnsafePath { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<DecodeError> for MetainfoError {
    fn from(e: DecodeError) -> Self {
        Self::Bencode(e)
    }
}
