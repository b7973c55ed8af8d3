//! Torrent creation: plan what to hash, then assemble the `.torrent` from the digests.
//!
//! The core reads no files. Creation runs in three steps:
//!
//! 1. [`Plan::new`] validates a [`TorrentSpec`] (files, [`Version`], piece length, metadata),
//!    fixes the file order, inserts BEP 47 pad files for hybrid torrents and chooses the piece
//!    length when none is given ([`auto_piece_length`]).
//! 2. The runtime walks [`Plan::jobs`]: each [`HashJob`] names the file spans to read (in file
//!    order, so reading is sequential) and which digests to compute from those bytes: a SHA-1
//!    piece digest (v1) and/or the SHA-256 16 KiB leaf hashes of one piece of one file (v2).
//! 3. A [`Creator`] takes the digests in any order ([`Creator::add_v1_piece`],
//!    [`Creator::add_v2_piece`]) and [`Creator::finish`] encodes the torrent.
//!
//! Memory stays proportional to the number of pieces, never to the number of 16 KiB blocks: v2
//! leaves are folded into their piece-layer node as soon as a piece's leaves arrive.
//!
//! # Layout rules (what libtorrent 2.0 does, checked against it in the conformance tests)
//!
//! - **Order.** v2 and hybrid torrents list files in the order of the BEP 52 file tree: sorted
//!   by path, component by component, bytewise. v1 torrents keep the caller's order.
//! - **Single file.** [`Contents::SingleFile`] makes a v1 `length` without `files`, and a v2
//!   file tree with one entry named as the torrent.
//! - **Empty files.** Listed in v1 `files` with length 0; in the v2 file tree with `length` 0 and
//!   no `pieces root` (BEP 52). They take no piece space. A torrent whose files are all empty is
//!   refused ([`CreateError::EmptyPayload`]): libtorrent will not load it.
//! - **Pad files (hybrid only, BEP 47 / BEP 52).** After every non-empty file that does not end on
//!   a piece boundary, when a later file has data, a pad file of zeros fills up to the boundary.
//!   It is listed in v1 `files` as `{"attr": "p", "length": N, "path": [".pad", "N"]}` and not in
//!   the file tree. libtorrent 2.0.8 also pads after the last file; that trailing pad carries no
//!   information, BEP 52 does not ask for it, and libtorrent loads hybrids without it.
//!   User paths under a top-level `.pad` directory are refused in hybrid torrents.
//! - **Piece layers (BEP 52).** Only files larger than one piece get a `piece layers` entry,
//!   keyed by their `pieces root`; files with identical contents share one entry.
//! - **Trackers (BEP 12).** `announce` is the first tracker of the first tier; `announce-list`
//!   is written when there is more than one tracker. Empty tiers are dropped.
//! - **Web seeds (BEP 19)** go into `url-list`, always as a list. **Private (BEP 27)** writes
//!   `private: 1` in the info dictionary.

mod assemble;
#[cfg(test)]
mod tests;

pub use assemble::{CreatedTorrent, Creator};

use std::fmt;

use crate::merkle::BLOCK_SIZE;

/// Which info-hash formats the new torrent has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// BEP 3 only: SHA-1 pieces over the concatenated files.
    V1,
    /// BEP 52 only: a file tree with a SHA-256 merkle root per file.
    V2,
    /// Both (BEP 52 "upgrade path"), files aligned to pieces with BEP 47 pad files.
    Hybrid,
}

impl Version {
    /// Whether the torrent carries v1 `pieces`.
    pub fn has_v1(self) -> bool {
        matches!(self, Self::V1 | Self::Hybrid)
    }

    /// Whether the torrent carries a v2 file tree.
    pub fn has_v2(self) -> bool {
        matches!(self, Self::V2 | Self::Hybrid)
    }
}

/// BEP 47 file attributes a creator may record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileAttrs {
    /// The file is executable (`attr` letter `x`).
    pub executable: bool,
    /// The file is hidden (`attr` letter `h`).
    pub hidden: bool,
}

impl FileAttrs {
    /// The BEP 47 `attr` string for these attributes, empty when none is set.
    fn letters(self) -> &'static [u8] {
        match (self.executable, self.hidden) {
            (false, false) => b"",
            (true, false) => b"x",
            (false, true) => b"h",
            (true, true) => b"xh",
        }
    }
}

/// One file of a multi-file torrent, as the caller found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The path below the torrent's directory, one string per component.
    pub path: Vec<String>,
    /// The length in bytes.
    pub length: u64,
    /// BEP 47 attributes.
    pub attrs: FileAttrs,
}

/// What the torrent holds: one file, or a directory of files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// A single-file torrent; the file is named by [`TorrentSpec::name`].
    SingleFile {
        /// The length in bytes.
        length: u64,
        /// BEP 47 attributes.
        attrs: FileAttrs,
    },
    /// A multi-file torrent; [`TorrentSpec::name`] names the directory.
    Directory(Vec<InputFile>),
}

/// Everything a new torrent is made from, except the digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSpec {
    /// The torrent's `name`: the file name, or the directory name.
    pub name: String,
    /// The files.
    pub contents: Contents,
    /// v1, v2 or hybrid.
    pub version: Version,
    /// The piece length: a power of two of at least 16 KiB; `None` chooses one with
    /// [`auto_piece_length`].
    pub piece_length: Option<u64>,
    /// Tracker URLs grouped in tiers (BEP 12).
    pub trackers: Vec<Vec<String>>,
    /// Web seed URLs (BEP 19 `url-list`).
    pub web_seeds: Vec<String>,
    /// Whether the torrent is private (BEP 27).
    pub private: bool,
    /// A free-text `comment`.
    pub comment: Option<String>,
    /// The `created by` string, such as `bitshoal/0.1.0`.
    pub created_by: Option<String>,
    /// The `creation date` in seconds since the Unix epoch; the caller reads the clock.
    pub creation_date: Option<i64>,
}

impl TorrentSpec {
    /// A spec with no trackers, web seeds or optional metadata, and an automatic piece length.
    pub fn new(name: impl Into<String>, contents: Contents, version: Version) -> Self {
        Self {
            name: name.into(),
            contents,
            version,
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
        }
    }
}

/// The smallest piece length [`Plan::new`] accepts: one 16 KiB block (BEP 52).
pub const MIN_PIECE_LENGTH: u64 = BLOCK_SIZE as u64;

/// The largest piece length [`Plan::new`] accepts: 512 MiB (libtorrent refuses more than 1 GiB - 1).
pub const MAX_PIECE_LENGTH: u64 = 512 * 1024 * 1024;

/// The largest piece length [`auto_piece_length`] picks: 16 MiB.
pub const MAX_AUTO_PIECE_LENGTH: u64 = 16 * 1024 * 1024;

/// The piece length libtorrent 2.0 chooses for `total_size` bytes of file data.
///
/// libtorrent aims at a list of piece hashes about `2 * sqrt(total_size)` bytes long: it picks
/// `16 KiB << i` for the smallest `i` in `0..10` with
/// `total_size <= round(2^(28 + 2i) / 100)`, and 16 MiB above that. In practice: up to 2.6 MB
/// gets 16 KiB pieces; each fourfold growth doubles the piece length; 1 GiB gets 512 KiB
/// (2,048 pieces); 10 GiB 1 MiB; 700 GB and more 16 MiB. Pad files are not counted.
/// Matching libtorrent means the same files give the same torrent, byte for byte, in either tool.
pub fn auto_piece_length(total_size: u64) -> u64 {
    for i in 0..10u32 {
        let threshold = ((1u64 << (28 + 2 * i)) + 50) / 100;
        if total_size <= threshold {
            return MIN_PIECE_LENGTH << i;
        }
    }
    MAX_AUTO_PIECE_LENGTH
}

/// Why a torrent could not be created. Every variant is the caller's mistake or a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateError {
    /// A multi-file torrent with no files: add at least one file.
    NoFiles,
    /// All files are empty: a torrent needs at least one byte of data (libtorrent refuses
    /// torrents of total size 0).
    EmptyPayload,
    /// The piece length is not a power of two between [`MIN_PIECE_LENGTH`] and
    /// [`MAX_PIECE_LENGTH`].
    BadPieceLength {
        /// The rejected piece length.
        piece_length: u64,
    },
    /// The torrent name is not a valid path component.
    BadName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A file path is not valid.
    BadPath {
        /// The path, components joined with `/`.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// Two files have the same path.
    DuplicatePath {
        /// The path, components joined with `/`.
        path: String,
    },
    /// One path is a file and also a directory holding another file.
    FileIsDirectory {
        /// The file's path, components joined with `/`.
        file: String,
        /// A path below it, components joined with `/`.
        other: String,
    },
    /// A tracker or web seed URL is empty.
    EmptyUrl,
    /// The torrent would exceed a format limit: more than 2^63 - 1 bytes or 2^32 - 1 pieces.
    TooLarge,
    /// A digest was given for a piece the plan does not have.
    NoSuchPiece {
        /// The file index for v2 pieces, `None` for v1 pieces.
        file: Option<usize>,
        /// The rejected piece index.
        piece: u64,
    },
    /// A v1 digest for a v2-only torrent, or v2 leaves for a v1-only torrent.
    WrongVersion,
    /// The number of leaf hashes given for a v2 piece is not the number of 16 KiB blocks in it.
    WrongLeafCount {
        /// The file index.
        file: usize,
        /// The piece index within the file.
        piece: u32,
        /// How many leaves the piece has.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// [`Creator::finish`] was called before every digest was given.
    MissingDigests {
        /// How many v1 pieces have no digest.
        v1_pieces: u64,
        /// How many v2 pieces (of all files) have no leaves.
        v2_pieces: u64,
    },
}

/// What is wrong with a torrent name or a path component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path has no components.
    NoComponents,
    /// A component is empty.
    EmptyComponent,
    /// A component is `.` or `..`.
    DotComponent,
    /// A component contains `/` or a NUL byte.
    ForbiddenCharacter,
    /// The path lies under `.pad`, reserved for BEP 47 pad files in hybrid torrents.
    ReservedPadDirectory,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoComponents => "it has no components",
            Self::EmptyComponent => "a component is empty",
            Self::DotComponent => "a component is `.` or `..`",
            Self::ForbiddenCharacter => "a component contains `/` or a NUL byte",
            Self::ReservedPadDirectory => {
                "`.pad` is reserved for pad files in hybrid torrents (rename it, or make a v1 or v2 torrent)"
            }
        })
    }
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFiles => f.write_str("no files to put in the torrent"),
            Self::EmptyPayload => {
                f.write_str("all files are empty; a torrent needs at least one byte of data")
            }
            Self::BadPieceLength { piece_length } => write!(
                f,
                "piece length {piece_length} is not a power of two from 16 KiB to 512 MiB"
            ),
            Self::BadName { name, problem } => {
                write!(f, "torrent name {name:?} is not valid: {problem}")
            }
            Self::BadPath { path, problem } => write!(f, "path {path:?} is not valid: {problem}"),
            Self::DuplicatePath { path } => write!(f, "two files have the path {path:?}"),
            Self::FileIsDirectory { file, other } => {
                write!(f, "{file:?} is a file but {other:?} puts a directory there")
            }
            Self::EmptyUrl => f.write_str("a tracker or web seed URL is empty"),
            Self::TooLarge => f.write_str("the torrent is too large for the format"),
            Self::NoSuchPiece {
                file: Some(file),
                piece,
            } => write!(f, "file {file} has no v2 piece {piece}"),
            Self::NoSuchPiece { file: None, piece } => write!(f, "there is no v1 piece {piece}"),
            Self::WrongVersion => f.write_str("digest of a kind this torrent version does not use"),
            Self::WrongLeafCount {
                file,
                piece,
                expected,
                got,
            } => write!(
                f,
                "file {file} piece {piece} has {expected} leaf blocks, {got} leaf hashes given"
            ),
            Self::MissingDigests {
                v1_pieces,
                v2_pieces,
            } => write!(
                f,
                "digests missing for {v1_pieces} v1 pieces and {v2_pieces} v2 pieces"
            ),
        }
    }
}

impl std::error::Error for CreateError {}

/// A file as placed by the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    path: Vec<String>,
    length: u64,
    attrs: FileAttrs,
    offset: u64,
    pad_after: u64,
}

impl PlannedFile {
    /// The path below the torrent's directory; for a single-file torrent, just its name.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// BEP 47 attributes.
    pub fn attrs(&self) -> FileAttrs {
        self.attrs
    }

    /// Where the file starts in the v1 byte stream (counting pad files); 0-based.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The length of the BEP 47 pad file after this one (hybrid torrents), or 0.
    pub fn pad_after(&self) -> u64 {
        self.pad_after
    }

    /// How many v2 pieces the file has: `ceil(length / piece length)`.
    fn v2_pieces(&self, piece_length: u64) -> u64 {
        self.length.div_ceil(piece_length)
    }
}

/// A validated torrent layout: file order, pad files, piece length and the hashing jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    spec: TorrentSpec,
    piece_length: u64,
    files: Vec<PlannedFile>,
    payload_size: u64,
    v1_size: u64,
}

/// A byte range of one planned file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The index into [`Plan::files`].
    pub file: usize,
    /// The first byte, from the start of the file.
    pub offset: u64,
    /// The number of bytes.
    pub length: u64,
}

/// One piece of one file of a v2 tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct V2Piece {
    /// The index into [`Plan::files`].
    pub file: usize,
    /// The piece index within the file (the file's first piece is 0).
    pub piece: u32,
}

/// One unit of hashing work: read the spans, then compute the digests asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashJob {
    /// The file data to read, in order. Consecutive jobs continue where the previous one ended.
    pub spans: Vec<Span>,
    /// Zero bytes that follow the data in the v1 piece (a BEP 47 pad file), never part of v2.
    pub zero_pad: u64,
    /// The v1 piece whose SHA-1 is taken over the data followed by `zero_pad` zero bytes.
    pub v1_piece: Option<u32>,
    /// The v2 piece whose 16 KiB SHA-256 leaves are taken over the data alone.
    pub v2_piece: Option<V2Piece>,
}

impl HashJob {
    /// The number of file bytes the job reads.
    pub fn data_length(&self) -> u64 {
        self.spans.iter().map(|s| s.length).sum()
    }
}

impl Plan {
    /// Validates `spec` and lays the torrent out.
    pub fn new(spec: TorrentSpec) -> Result<Self, CreateError> {
        check_component(&spec.name).map_err(|problem| CreateError::BadName {
            name: spec.name.clone(),
            problem,
        })?;
        if spec
            .trackers
            .iter()
            .flatten()
            .chain(&spec.web_seeds)
            .any(|u| u.is_empty())
        {
            return Err(CreateError::EmptyUrl);
        }
        let mut files: Vec<PlannedFile> = match &spec.contents {
            Contents::SingleFile { length, attrs } => vec![PlannedFile {
                path: vec![spec.name.clone()],
                length: *length,
                attrs: *attrs,
                offset: 0,
                pad_after: 0,
            }],
            Contents::Directory(input) => {
                if input.is_empty() {
                    return Err(CreateError::NoFiles);
                }
                input
                    .iter()
                    .map(|f| PlannedFile {
                        path: f.path.clone(),
                        length: f.length,
                        attrs: f.attrs,
                        offset: 0,
                        pad_after: 0,
                    })
                    .collect()
            }
        };
        if matches!(spec.contents, Contents::Directory(_)) {
            check_paths(&files, spec.version)?;
            if spec.version.has_v2() {
                // The BEP 52 file tree is a dictionary: its order is the sorted path order, and
                // a hybrid's v1 list must describe the same data in the same order.
                files.sort_by(|a, b| a.path.cmp(&b.path));
            }
        }

        let payload_size = files
            .iter()
            .try_fold(0u64, |sum, f| sum.checked_add(f.length))
            .ok_or(CreateError::TooLarge)?;
        if payload_size == 0 {
            return Err(CreateError::EmptyPayload);
        }
        let piece_length = match spec.piece_length {
            Some(p) => p,
            None => auto_piece_length(payload_size),
        };
        if !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length)
            || !piece_length.is_power_of_two()
        {
            return Err(CreateError::BadPieceLength { piece_length });
        }

        // Offsets in the v1 stream, with BEP 47 pad files for hybrids.
        let last_with_data = files
            .iter()
            .rposition(|f| f.length > 0)
            .expect("payload_size > 0, so some file has data");
        let mut offset = 0u64;
        for (i, f) in files.iter_mut().enumerate() {
            f.offset = offset;
            offset = offset.checked_add(f.length).ok_or(CreateError::TooLarge)?;
            let misaligned = offset % piece_length;
            if spec.version == Version::Hybrid
                && i < last_with_data
                && f.length > 0
                && misaligned != 0
            {
                f.pad_after = piece_length - misaligned;
                offset = offset
                    .checked_add(f.pad_after)
                    .ok_or(CreateError::TooLarge)?;
            }
        }
        let v1_size = offset;
        if i64::try_from(v1_size).is_err() || v1_size.div_ceil(piece_length) > u64::from(u32::MAX) {
            return Err(CreateError::TooLarge);
        }
        Ok(Self {
            spec,
            piece_length,
            files,
            payload_size,
            v1_size,
        })
    }

    /// The spec the plan was made from.
    pub fn spec(&self) -> &TorrentSpec {
        &self.spec
    }

    /// v1, v2 or hybrid.
    pub fn version(&self) -> Version {
        self.spec.version
    }

    /// The piece length, chosen or given.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// The files in torrent order, without pad files.
    pub fn files(&self) -> &[PlannedFile] {
        &self.files
    }

    /// Whether this is a single-file torrent.
    pub fn is_single_file(&self) -> bool {
        matches!(self.spec.contents, Contents::SingleFile { .. })
    }

    /// The number of file bytes: what the runtime reads, the total for a progress bar.
    pub fn payload_size(&self) -> u64 {
        self.payload_size
    }

    /// The number of v1 pieces (0 for a v2-only torrent).
    pub fn num_v1_pieces(&self) -> u32 {
        if self.version().has_v1() {
            self.v1_size.div_ceil(self.piece_length) as u32
        } else {
            0
        }
    }

    /// The hashing work, in file order. Reading the spans of successive jobs reads every file
    /// once, front to back.
    pub fn jobs(&self) -> HashJobs<'_> {
        HashJobs {
            plan: self,
            file: 0,
            offset: 0,
            piece: 0,
        }
    }

    /// The number of 16 KiB leaves in piece `piece` of file `file` (v2), if it exists.
    fn v2_piece_leaves(&self, file: usize, piece: u32) -> Option<usize> {
        let f = self.files.get(file)?;
        let start = u64::from(piece) * self.piece_length;
        if start >= f.length {
            return None;
        }
        let len = (f.length - start).min(self.piece_length);
        Some(len.div_ceil(BLOCK_SIZE as u64) as usize)
    }
}

/// The iterator of [`Plan::jobs`].
#[derive(Debug)]
pub struct HashJobs<'p> {
    plan: &'p Plan,
    /// The next file to read from.
    file: usize,
    /// The next byte to read in that file.
    offset: u64,
    /// The next v1 piece (v1-only torrents).
    piece: u32,
}

impl HashJobs<'_> {
    /// v1 only: the next piece runs across file boundaries.
    fn next_v1(&mut self) -> Option<HashJob> {
        let plan = self.plan;
        let mut want = plan.piece_length;
        let mut spans = Vec::new();
        while want > 0 && self.file < plan.files.len() {
            let f = &plan.files[self.file];
            let take = (f.length - self.offset).min(want);
            if take > 0 {
                spans.push(Span {
                    file: self.file,
                    offset: self.offset,
                    length: take,
                });
                want -= take;
                self.offset += take;
            }
            if self.offset == f.length {
                self.file += 1;
                self.offset = 0;
            }
        }
        if spans.is_empty() {
            return None;
        }
        let piece = self.piece;
        self.piece += 1;
        Some(HashJob {
            spans,
            zero_pad: 0,
            v1_piece: Some(piece),
            v2_piece: None,
        })
    }

    /// v2 and hybrid: each piece lies in one file (hybrid files are piece-aligned by pad files).
    fn next_per_file(&mut self) -> Option<HashJob> {
        let plan = self.plan;
        let pl = plan.piece_length;
        while self.file < plan.files.len() && self.offset == plan.files[self.file].length {
            self.file += 1;
            self.offset = 0;
        }
        let f = plan.files.get(self.file)?;
        let length = (f.length - self.offset).min(pl);
        let piece = (self.offset / pl) as u32;
        let is_last = self.offset + length == f.length;
        let job = HashJob {
            spans: vec![Span {
                file: self.file,
                offset: self.offset,
                length,
            }],
            zero_pad: if is_last { f.pad_after } else { 0 },
            v1_piece: plan
                .version()
                .has_v1()
                .then(|| ((f.offset + self.offset) / pl) as u32),
            v2_piece: Some(V2Piece {
                file: self.file,
                piece,
            }),
        };
        self.offset += length;
        Some(job)
    }
}

impl Iterator for HashJobs<'_> {
    type Item = HashJob;

    fn next(&mut self) -> Option<HashJob> {
        match self.plan.version() {
            Version::V1 => self.next_v1(),
            Version::V2 | Version::Hybrid => self.next_per_file(),
        }
    }
}

/// Checks one path component or torrent name.
fn check_component(c: &str) -> Result<(), PathProblem> {
    if c.is_empty() {
        Err(PathProblem::EmptyComponent)
    } else if c == "." || c == ".." {
        Err(PathProblem::DotComponent)
    } else if c.contains(['/', '\0']) {
        Err(PathProblem::ForbiddenCharacter)
    } else {
        Ok(())
    }
}

/// Checks every path, and that no two collide.
fn check_paths(files: &[PlannedFile], version: Version) -> Result<(), CreateError> {
    for f in files {
        let problem = if f.path.is_empty() {
            Some(PathProblem::NoComponents)
        } else if version == Version::Hybrid && f.path[0] == ".pad" {
            Some(PathProblem::ReservedPadDirectory)
        } else {
            f.path.iter().find_map(|c| check_component(c).err())
        };
        if let Some(problem) = problem {
            return Err(CreateError::BadPath {
                path: f.path.join("/"),
                problem,
            });
        }
    }
    let mut sorted: Vec<&[String]> = files.iter().map(|f| f.path.as_slice()).collect();
    sorted.sort();
    // If a path is a prefix of another, every path sorted between them shares that prefix, so
    // comparing neighbours finds every collision.
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a == b {
            return Err(CreateError::DuplicatePath { path: a.join("/") });
        }
        if b.starts_with(a) {
            return Err(CreateError::FileIsDirectory {
                file: a.join("/"),
                other: b.join("/"),
            });
        }
    }
    Ok(())
}
