//! The validated `info` dictionary: what is downloaded, how it is cut into pieces, where it goes.

use bytes::Bytes;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::bencode::{self, DecodeOptions, Dict, List, Value};
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};

use super::error::{MetainfoError, PieceLengthProblem};
use super::layout::{Layout, PieceIndex};
use super::path::{find_collision, Collision, SafePath};
use super::{hybrid, v1, v2, Limits};

/// BEP 47 file attributes (the `attr` string: `p`, `x`, `h`, `l`; unknown letters ignored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileAttributes {
    /// `p`: a padding file; its bytes are zeros and are never written to disk.
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symlink; [`FileEntry::symlink_target`] says where to.
    pub symlink: bool,
}

impl FileAttributes {
    /// Reads an `attr` string (BEP 47).
    pub fn parse(attr: &[u8]) -> Self {
        Self {
            pad: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }
}

/// One file of a torrent, in torrent order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub(super) path: SafePath,
    pub(super) length: u64,
    pub(super) offset: u64,
    pub(super) attributes: FileAttributes,
    pub(super) symlink_target: Option<SafePath>,
    pub(super) pieces_root: Option<[u8; 32]>,
}

impl FileEntry {
    /// Where the file goes, relative to the download folder (the torrent's `name` is the first
    /// component of a multi-file torrent's paths).
    pub fn path(&self) -> &SafePath {
        &self.path
    }

    /// Its length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Where it starts in the torrent's byte stream (BEP 3; v2 files start on piece boundaries).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Its BEP 47 attributes.
    pub fn attributes(&self) -> FileAttributes {
        self.attributes
    }

    /// Whether this is a padding file (BEP 47), which storage never writes.
    pub fn is_pad(&self) -> bool {
        self.attributes.pad
    }

    /// For a symlink, its target relative to the download folder (always inside it).
    ///
    /// BEP 47's `symlink path` is relative to the torrent's root directory; as libtorrent does,
    /// a target that names nothing in the torrent there but does relative to the link's own
    /// directory (what libtorrent's creator writes) is read that way.
    pub fn symlink_target(&self) -> Option<&SafePath> {
        self.symlink_target.as_ref()
    }

    /// The v2 merkle root of the file's 16 KiB blocks (BEP 52); `None` for v1 and empty files.
    pub fn pieces_root(&self) -> Option<&[u8; 32]> {
        self.pieces_root.as_ref()
    }
}

/// Which formats a torrent is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// BEP 3 only.
    V1,
    /// BEP 52 only.
    V2,
    /// Both, describing the same files (BEP 52 "upgrade path").
    Hybrid,
}

/// A validated `info` dictionary: names, geometry, files and hashes; owned, no borrows.
///
/// What a magnet download fetches with BEP 9; a `.torrent` file's [`Metainfo`](super::Metainfo)
/// holds one.
#[derive(Clone, Debug)]
pub struct Info {
    raw: Bytes,
    hashes: InfoHashes,
    name: String,
    piece_length: u32,
    files: Vec<FileEntry>,
    layout: Layout,
    v1_pieces: Option<Bytes>,
    private: bool,
    similar: Vec<InfoHashes>,
    collections: Vec<String>,
}

impl Info {
    /// Parses an `info` dictionary on its own (as fetched by BEP 9) with the default limits.
    pub fn from_bytes(info: &[u8]) -> Result<Self, MetainfoError> {
        Self::from_bytes_with(info, &Limits::DEFAULT)
    }

    /// Parses an `info` dictionary on its own with the given limits.
    pub fn from_bytes_with(info: &[u8], limits: &Limits) -> Result<Self, MetainfoError> {
        if info.len() > limits.max_metadata_size {
            return Err(MetainfoError::MetadataTooLarge {
                size: info.len(),
                max: limits.max_metadata_size,
            });
        }
        let buf = Bytes::copy_from_slice(info);
        let value = bencode::decode_with(&buf, DecodeOptions::STRICT)?;
        let dict = value.as_dict().ok_or(MetainfoError::WrongType {
            key: "info",
            expected: "dictionary",
        })?;
        Self::parse(&buf, dict, limits)
    }

    /// Parses the decoded `info` dictionary `dict`, which borrows from `buf`.
    pub(super) fn parse(
        buf: &Bytes,
        dict: &Dict<'_>,
        limits: &Limits,
    ) -> Result<Self, MetainfoError> {
        let raw_slice = dict
            .raw()
            .expect("a decoded dictionary keeps the bytes it was decoded from");
        if raw_slice.len() > limits.max_metadata_size {
            return Err(MetainfoError::MetadataTooLarge {
                size: raw_slice.len(),
                max: limits.max_metadata_size,
            });
        }
        // BEP 52: check `meta version` before anything else.
        let v2 = match opt_int(dict, b"meta version", "info.meta version")? {
            None => false,
            Some(2) => true,
            Some(other) => return Err(MetainfoError::UnsupportedMetaVersion(other)),
        };
        let piece_length = piece_length(dict, v2, limits)?;
        let name_bytes = match opt_bytes(dict, b"name.utf-8", "info.name.utf-8")? {
            Some(n) => n,
            None => required(opt_bytes(dict, b"name", "info.name")?, "info.name")?,
        };
        let name = SafePath::from_components([name_bytes], limits.max_component_len)
            .map_err(|error| MetainfoError::UnsafePath { file: None, error })?;
        let private = opt_int(dict, b"private", "info.private")?.is_some_and(|p| p != 0);

        let has_v1 = !v2 || dict.contains_key(b"pieces");
        let v1_part = if has_v1 {
            Some(v1::parse(dict, &name, piece_length, limits)?)
        } else {
            None
        };
        let v2_files = if v2 {
            let tree = required(
                opt_dict(dict, b"file tree", "info.file tree")?,
                "info.file tree",
            )?;
            let multi_file = match &v1_part {
                Some(part) => part.multi_file,
                None => !v2::is_single_file(tree),
            };
            let prefix = multi_file.then_some(&name);
            Some((v2::parse(tree, prefix, limits)?, prefix))
        } else {
            None
        };

        let multi_file = match (&v1_part, &v2_files) {
            (Some(part), _) => part.multi_file,
            (None, Some((_, prefix))) => prefix.is_some(),
            (None, None) => false,
        };
        let (mut files, v1_pieces) = match (v1_part, v2_files) {
            (Some(part), None) => (part.files, Some(buf.slice_ref(part.pieces))),
            (None, Some((files, prefix))) => {
                (v2::align(files, piece_length, prefix, limits)?, None)
            }
            (Some(part), Some((files, _))) => (
                hybrid::merge(part.files, files, piece_length)?,
                Some(buf.slice_ref(part.pieces)),
            ),
            // Not reached: without `meta version` 2 the v1 part is required and parsed above.
            (None, None) => return Err(MetainfoError::MissingKey { key: "info.pieces" }),
        };
        check_collisions(&files)?;
        resolve_symlinks(&mut files, multi_file.then_some(&name), limits);
        let layout = Layout::new(&files, piece_length);

        let raw = buf.slice_ref(raw_slice);
        let hashes = match (has_v1, v2) {
            (true, false) => InfoHashes::V1(sha1_of(&raw)),
            (false, true) => InfoHashes::V2(sha256_of(&raw)),
            _ => InfoHashes::Hybrid(sha1_of(&raw), sha256_of(&raw)),
        };
        let mut similar = Vec::new();
        let mut collections = Vec::new();
        read_similar(dict, &mut similar, &mut collections);
        Ok(Self {
            raw,
            hashes,
            name: name.as_str().to_owned(),
            piece_length,
            files,
            layout,
            v1_pieces,
            private,
            similar,
            collections,
        })
    }

    /// The exact bytes of the `info` dictionary, as hashed and as served by BEP 9.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The info-hashes: SHA-1 for v1, SHA-256 for v2, both for a hybrid.
    pub fn hashes(&self) -> InfoHashes {
        self.hashes
    }

    /// Which formats the torrent is in.
    pub fn version(&self) -> Version {
        match self.hashes {
            InfoHashes::V1(_) => Version::V1,
            InfoHashes::V2(_) => Version::V2,
            InfoHashes::Hybrid(..) => Version::Hybrid,
        }
    }

    /// The torrent's name (`name.utf-8` if present, else `name`), a safe single path component.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The piece length in bytes.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The files in torrent order, BEP 47 padding files included (also the implicit padding
    /// between a v2-only torrent's files, named `.pad/N` as libtorrent does).
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The piece and block geometry and the piece → file mapping.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The sum of the lengths of all non-padding files.
    pub fn content_length(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.is_pad())
            .map(|f| f.length)
            .sum()
    }

    /// The v1 SHA-1 hash of a piece (BEP 3); `None` for v2-only torrents.
    pub fn piece_hash_v1(&self, piece: PieceIndex) -> Option<[u8; 20]> {
        let start = piece.get() as usize * 20;
        let slice = self.v1_pieces.as_ref()?.get(start..start + 20)?;
        let mut out = [0u8; 20];
        out.copy_from_slice(slice);
        Some(out)
    }

    /// Whether the torrent is private (BEP 27): no DHT, PEX or LSD, only its trackers.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// BEP 38 `similar` info-hashes given inside `info` (20 bytes: v1, 32 bytes: v2).
    pub fn similar(&self) -> &[InfoHashes] {
        &self.similar
    }

    /// BEP 38 `collections` given inside `info`.
    pub fn collections(&self) -> &[String] {
        &self.collections
    }
}

fn sha1_of(raw: &[u8]) -> InfoHashV1 {
    InfoHashV1(Sha1::digest(raw).into())
}

fn sha256_of(raw: &[u8]) -> InfoHashV2 {
    InfoHashV2(Sha256::digest(raw).into())
}

fn piece_length(dict: &Dict<'_>, v2: bool, limits: &Limits) -> Result<u32, MetainfoError> {
    let length = required(
        opt_int(dict, b"piece length", "info.piece length")?,
        "info.piece length",
    )?;
    let bad = |reason| MetainfoError::BadPieceLength { length, reason };
    if length <= 0 {
        return Err(bad(PieceLengthProblem::NotPositive));
    }
    if length > i64::from(limits.max_piece_length) {
        return Err(bad(PieceLengthProblem::TooLarge));
    }
    if v2 && crate::merkle::piece_layer_height(length as u64).is_none() {
        return Err(bad(PieceLengthProblem::NotPowerOfTwoAtLeast16KiB));
    }
    Ok(length as u32)
}

fn check_collisions(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let paths = files
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| &f.path)
        .collect();
    match find_collision(paths) {
        None => Ok(()),
        Some(Collision::Duplicate(path)) => Err(MetainfoError::DuplicatePath { path }),
        Some(Collision::FileIsDirectory { path, inside }) => {
            Err(MetainfoError::FileIsDirectory { path, inside })
        }
    }
}

/// Where each symlink points, read as libtorrent 2.0 reads `symlink path` (BEP 47).
///
/// BEP 47 says the target is relative to the torrent's root directory, and that is how it was
/// parsed; but libtorrent's creator writes the link's own target, relative to the link's
/// directory, and libtorrent's reader accepts both: the root-relative file or directory if the
/// torrent has one, otherwise the one relative to the link's directory. So a link `root/lib/link`
/// with `symlink path` `["data.bin"]` points to `root/lib/data.bin` when there is no
/// `root/data.bin`. Targets found in neither place stay root-relative (dangling, but inside the
/// download folder; libtorrent points those at the link itself). `root` is the `name` directory
/// of a multi-file torrent.
fn resolve_symlinks(files: &mut [FileEntry], root: Option<&SafePath>, limits: &Limits) {
    if !files.iter().any(|f| f.symlink_target.is_some()) {
        return;
    }
    // Every file and directory of the torrent, as slices of the file paths.
    let mut known = std::collections::HashSet::new();
    for f in files.iter().filter(|f| !f.is_pad()) {
        let path = f.path.as_str();
        known.insert(path);
        for (i, _) in path.match_indices('/') {
            known.insert(&path[..i]);
        }
    }
    let mut moved = Vec::new();
    for (index, f) in files.iter().enumerate() {
        let Some(target) = &f.symlink_target else {
            continue;
        };
        if known.contains(target.as_str()) {
            continue;
        }
        let relative = match root {
            Some(root) => target
                .as_str()
                .strip_prefix(root.as_str())
                .and_then(|t| t.strip_prefix('/')),
            None => Some(target.as_str()),
        };
        let link_dir = f.path.as_str().rsplit_once('/').map(|(dir, _)| dir);
        let (Some(relative), Some(link_dir)) = (relative, link_dir) else {
            continue;
        };
        let candidate = format!("{link_dir}/{relative}");
        if !known.contains(candidate.as_str()) {
            continue;
        }
        // Both halves are made of checked components; only the depth can be new.
        if let Ok(path) = SafePath::from_components(
            candidate.split('/').map(str::as_bytes),
            limits.max_component_len,
        ) {
            if path.depth() <= limits.max_path_depth {
                moved.push((index, path));
            }
        }
    }
    for (index, path) in moved {
        files[index].symlink_target = Some(path);
    }
}

/// Reads BEP 38 `similar` and `collections` from `dict` (inside or outside `info`), skipping
/// malformed entries: they are hints and cannot change what is downloaded.
pub(super) fn read_similar(
    dict: &Dict<'_>,
    similar: &mut Vec<InfoHashes>,
    collections: &mut Vec<String>,
) {
    if let Some(list) = dict.get(b"similar").and_then(Value::as_list) {
        for item in list.iter().filter_map(Value::as_bytes) {
            let hash = match item.len() {
                20 => InfoHashes::V1(InfoHashV1(item.try_into().expect("length checked"))),
                32 => InfoHashes::V2(InfoHashV2(item.try_into().expect("length checked"))),
                _ => continue,
            };
            if !similar.contains(&hash) {
                similar.push(hash);
            }
        }
    }
    if let Some(list) = dict.get(b"collections").and_then(Value::as_list) {
        for item in list.iter().filter_map(Value::as_str) {
            if !collections.iter().any(|c| c == item) {
                collections.push(item.to_owned());
            }
        }
    }
}

/// `dict[key]` as an integer, if present.
pub(super) fn opt_int(
    dict: &Dict<'_>,
    key: &[u8],
    name: &'static str,
) -> Result<Option<i64>, MetainfoError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(_) => Err(wrong_type(name, "integer")),
    }
}

/// `dict[key]` as a byte string, if present.
pub(super) fn opt_bytes<'a>(
    dict: &Dict<'a>,
    key: &[u8],
    name: &'static str,
) -> Result<Option<&'a [u8]>, MetainfoError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(wrong_type(name, "string")),
    }
}

/// `dict[key]` as a list, if present.
pub(super) fn opt_list<'d, 'a>(
    dict: &'d Dict<'a>,
    key: &[u8],
    name: &'static str,
) -> Result<Option<&'d List<'a>>, MetainfoError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(wrong_type(name, "list")),
    }
}

/// `dict[key]` as a dictionary, if present.
pub(super) fn opt_dict<'d, 'a>(
    dict: &'d Dict<'a>,
    key: &[u8],
    name: &'static str,
) -> Result<Option<&'d Dict<'a>>, MetainfoError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::Dict(d)) => Ok(Some(d)),
        Some(_) => Err(wrong_type(name, "dictionary")),
    }
}

/// A present value, or [`MetainfoError::MissingKey`].
pub(super) fn required<T>(value: Option<T>, name: &'static str) -> Result<T, MetainfoError> {
    value.ok_or(MetainfoError::MissingKey { key: name })
}

pub(super) fn wrong_type(key: &'static str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType { key, expected }
}

/// A list of path components (each a byte string) checked by the path rule, after `prefix`.
pub(super) fn path_from_list(
    list: &List<'_>,
    prefix: Option<&SafePath>,
    key: &'static str,
    file: usize,
    limits: &Limits,
) -> Result<SafePath, MetainfoError> {
    let depth = list.len() + prefix.map_or(0, SafePath::depth);
    if depth > limits.max_path_depth {
        return Err(MetainfoError::PathTooDeep {
            file,
            depth,
            max: limits.max_path_depth,
        });
    }
    let mut components = Vec::with_capacity(list.len());
    for item in list.iter() {
        components.push(item.as_bytes().ok_or(wrong_type(key, "list of strings"))?);
    }
    let path =
        SafePath::from_components(components, limits.max_component_len).map_err(|error| {
            MetainfoError::UnsafePath {
                file: Some(file),
                error,
            }
        })?;
    Ok(match prefix {
        Some(p) => p.join(&path),
        None => path,
    })
}
