//! Collecting digests and encoding the `.torrent` (BEP 3, 12, 19, 27, 47, 52).

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::{CreateError, Plan, PlannedFile, V2Piece, Version};
use crate::bencode::{put_bytes, DictWriter};
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::merkle::{layer_from_leaves, piece_layer_height, root_from_layer, Hash256};

/// A finished torrent: the `.torrent` bytes and its info-hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTorrent {
    /// The bencoded `.torrent` file.
    pub bytes: Vec<u8>,
    /// The SHA-1 and/or SHA-256 of the `info` dictionary, as the version asks.
    pub info_hashes: InfoHashes,
}

/// The v2 hashes of one file, filled in as pieces arrive.
#[derive(Clone, Debug)]
enum FileHashes {
    /// An empty file: no `pieces root` (BEP 52).
    Empty,
    /// A file of at most one piece: its root is the merkle root of its own leaves.
    OnePiece(Option<Hash256>),
    /// A larger file: its piece layer, one node per piece.
    Layer {
        nodes: Vec<Hash256>,
        have: Vec<bool>,
    },
}

/// Collects the digests a [`Plan`] asks for, in any order, and assembles the torrent.
///
/// Each digest may be given again; the last one given counts.
#[derive(Clone, Debug)]
pub struct Creator {
    plan: Plan,
    v1_pieces: Vec<[u8; 20]>,
    v1_have: Vec<bool>,
    v2_files: Vec<FileHashes>,
    /// log2(piece length / 16 KiB).
    layer_height: u32,
}

impl Creator {
    /// A creator waiting for every digest of `plan`.
    pub fn new(plan: Plan) -> Self {
        let n1 = plan.num_v1_pieces() as usize;
        let pl = plan.piece_length();
        let v2_files = if plan.version().has_v2() {
            plan.files()
                .iter()
                .map(|f| match f.v2_pieces(pl) {
                    0 => FileHashes::Empty,
                    1 => FileHashes::OnePiece(None),
                    n => FileHashes::Layer {
                        nodes: vec![[0u8; 32]; n as usize],
                        have: vec![false; n as usize],
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let layer_height =
            piece_layer_height(pl).expect("Plan::new checked the piece length is a power of two");
        Self {
            v1_pieces: vec![[0u8; 20]; n1],
            v1_have: vec![false; n1],
            v2_files,
            layer_height,
            plan,
        }
    }

    /// The plan this creator fills in.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Records the SHA-1 of v1 piece `piece` (the piece's bytes, pad zeros included).
    pub fn add_v1_piece(&mut self, piece: u32, digest: [u8; 20]) -> Result<(), CreateError> {
        if !self.plan.version().has_v1() {
            return Err(CreateError::WrongVersion);
        }
        let i = piece as usize;
        if i >= self.v1_pieces.len() {
            return Err(CreateError::NoSuchPiece {
                file: None,
                piece: piece.into(),
            });
        }
        self.v1_pieces[i] = digest;
        self.v1_have[i] = true;
        Ok(())
    }

    /// Records the SHA-256 leaf hashes of one v2 piece: one per 16 KiB block of the file's data
    /// in that piece (the last block may be short), in order.
    pub fn add_v2_piece(&mut self, at: V2Piece, leaves: &[Hash256]) -> Result<(), CreateError> {
        if !self.plan.version().has_v2() {
            return Err(CreateError::WrongVersion);
        }
        let expected =
            self.plan
                .v2_piece_leaves(at.file, at.piece)
                .ok_or(CreateError::NoSuchPiece {
                    file: Some(at.file),
                    piece: at.piece.into(),
                })?;
        if leaves.len() != expected {
            return Err(CreateError::WrongLeafCount {
                file: at.file,
                piece: at.piece,
                expected,
                got: leaves.len(),
            });
        }
        match &mut self.v2_files[at.file] {
            FileHashes::Empty => {
                unreachable!("v2_piece_leaves found a piece, so the file has data")
            }
            // A file of one piece or less: its tree has next_power_of_two(leaves) leaves.
            FileHashes::OnePiece(root) => *root = Some(root_from_layer(leaves, 0)),
            // BEP 52: a piece-layer node covers a whole piece; leaves past the end are zero.
            FileHashes::Layer { nodes, have } => {
                let node = layer_from_leaves(leaves, self.layer_height);
                nodes[at.piece as usize] = node[0];
                have[at.piece as usize] = true;
            }
        }
        Ok(())
    }

    /// Encodes the torrent. Fails if any digest is missing.
    pub fn finish(self) -> Result<CreatedTorrent, CreateError> {
        let missing_v1 = self.v1_have.iter().filter(|h| !**h).count() as u64;
        let missing_v2 = self
            .v2_files
            .iter()
            .map(|f| match f {
                FileHashes::Empty => 0,
                FileHashes::OnePiece(root) => u64::from(root.is_none()),
                FileHashes::Layer { have, .. } => have.iter().filter(|h| !**h).count() as u64,
            })
            .sum::<u64>();
        if missing_v1 > 0 || missing_v2 > 0 {
            return Err(CreateError::MissingDigests {
                v1_pieces: missing_v1,
                v2_pieces: missing_v2,
            });
        }

        let roots: Vec<Option<Hash256>> = self
            .v2_files
            .iter()
            .map(|f| match f {
                FileHashes::Empty => None,
                FileHashes::OnePiece(root) => *root,
                FileHashes::Layer { nodes, .. } => Some(root_from_layer(nodes, self.layer_height)),
            })
            .collect();
        let info = self.encode_info(&roots);
        let info_hashes = match self.plan.version() {
            Version::V1 => InfoHashes::V1(InfoHashV1(Sha1::digest(&info).into())),
            Version::V2 => InfoHashes::V2(InfoHashV2(Sha256::digest(&info).into())),
            Version::Hybrid => InfoHashes::Hybrid(
                InfoHashV1(Sha1::digest(&info).into()),
                InfoHashV2(Sha256::digest(&info).into()),
            ),
        };

        // BEP 52 piece layers: files larger than one piece, keyed (and so deduplicated) by root.
        let mut layers: BTreeMap<Hash256, &[Hash256]> = BTreeMap::new();
        for (f, root) in self.v2_files.iter().zip(&roots) {
            if let (FileHashes::Layer { nodes, .. }, Some(root)) = (f, root) {
                layers.insert(*root, nodes);
            }
        }

        let spec = self.plan.spec();
        let tiers: Vec<&Vec<String>> = spec.trackers.iter().filter(|t| !t.is_empty()).collect();
        let mut out = Vec::with_capacity(info.len() + 32 * layers.len() + 256);
        let mut d = DictWriter::new(&mut out);
        // BEP 12: `announce` is the first tracker; the tiers only when there is a choice.
        if let Some(first) = tiers.first().and_then(|t| t.first()) {
            d.bytes(b"announce", first.as_bytes());
        }
        if tiers.iter().map(|t| t.len()).sum::<usize>() > 1 {
            let buf = d.value(b"announce-list");
            buf.push(b'l');
            for tier in &tiers {
                buf.push(b'l');
                for url in tier.iter() {
                    put_bytes(buf, url.as_bytes());
                }
                buf.push(b'e');
            }
            buf.push(b'e');
        }
        if let Some(comment) = &spec.comment {
            d.bytes(b"comment", comment.as_bytes());
        }
        if let Some(created_by) = &spec.created_by {
            d.bytes(b"created by", created_by.as_bytes());
        }
        if let Some(date) = spec.creation_date {
            d.int(b"creation date", date);
        }
        d.raw(b"info", &info);
        if self.plan.version().has_v2() {
            let buf = d.value(b"piece layers");
            buf.push(b'd');
            for (root, nodes) in &layers {
                put_bytes(buf, root);
                put_bytes(buf, &nodes.concat());
            }
            buf.push(b'e');
        }
        // BEP 19.
        if !spec.web_seeds.is_empty() {
            let buf = d.value(b"url-list");
            buf.push(b'l');
            for url in &spec.web_seeds {
                put_bytes(buf, url.as_bytes());
            }
            buf.push(b'e');
        }
        d.finish();
        Ok(CreatedTorrent {
            bytes: out,
            info_hashes,
        })
    }

    /// The bencoded `info` dictionary, keys in order.
    fn encode_info(&self, roots: &[Option<Hash256>]) -> Vec<u8> {
        let plan = &self.plan;
        let spec = plan.spec();
        let version = plan.version();
        let mut info = Vec::with_capacity(self.v1_pieces.len() * 20 + plan.files().len() * 64);
        let mut d = DictWriter::new(&mut info);
        if version.has_v2() {
            let buf = d.value(b"file tree");
            let entries: Vec<(&PlannedFile, Option<&Hash256>)> = plan
                .files()
                .iter()
                .zip(roots)
                .map(|(f, r)| (f, r.as_ref()))
                .collect();
            write_tree(buf, &entries, 0);
        }
        if version.has_v1() {
            if plan.is_single_file() {
                d.int(b"length", plan.files()[0].length() as i64);
            } else {
                write_v1_files(d.value(b"files"), plan.files());
            }
        }
        if version.has_v2() {
            d.int(b"meta version", 2);
        }
        d.bytes(b"name", spec.name.as_bytes());
        d.int(b"piece length", plan.piece_length() as i64);
        if version.has_v1() {
            d.bytes(b"pieces", &self.v1_pieces.concat());
        }
        if spec.private {
            d.int(b"private", 1);
        }
        d.finish();
        info
    }
}

/// The v1 `files` list (BEP 3), with BEP 47 attributes and pad files.
fn write_v1_files(buf: &mut Vec<u8>, files: &[PlannedFile]) {
    buf.push(b'l');
    for f in files {
        let mut d = DictWriter::new(buf);
        let attr = f.attrs().letters();
        if !attr.is_empty() {
            d.bytes(b"attr", attr);
        }
        d.int(b"length", f.length() as i64);
        let path = d.value(b"path");
        path.push(b'l');
        for c in f.path() {
            put_bytes(path, c.as_bytes());
        }
        path.push(b'e');
        d.finish();
        if f.pad_after() > 0 {
            // BEP 47: the recommended path is [".pad", "<length>"].
            let len = f.pad_after().to_string();
            let mut d = DictWriter::new(buf);
            d.bytes(b"attr", b"p");
            d.int(b"length", f.pad_after() as i64);
            let path = d.value(b"path");
            path.push(b'l');
            put_bytes(path, b".pad");
            put_bytes(path, len.as_bytes());
            path.push(b'e');
            d.finish();
        }
    }
    buf.push(b'e');
}

/// The BEP 52 file tree over `entries`, sorted by path, all sharing their first `depth`
/// components.
fn write_tree(buf: &mut Vec<u8>, entries: &[(&PlannedFile, Option<&Hash256>)], depth: usize) {
    buf.push(b'd');
    let mut rest = entries;
    while let Some((first, _)) = rest.first() {
        let name = &first.path()[depth];
        let n = rest
            .iter()
            .take_while(|(f, _)| &f.path()[depth] == name)
            .count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        put_bytes(buf, name.as_bytes());
        if first.path().len() == depth + 1 {
            // A file (Plan::new refused a file that is also a directory, so it is alone).
            let (f, root) = group[0];
            buf.push(b'd');
            put_bytes(buf, b"");
            let mut d = DictWriter::new(buf);
            let attr = f.attrs().letters();
            if !attr.is_empty() {
                d.bytes(b"attr", attr);
            }
            d.int(b"length", f.length() as i64);
            if let Some(root) = root {
                d.bytes(b"pieces root", root);
            }
            d.finish();
            buf.push(b'e');
        } else {
            write_tree(buf, group, depth + 1);
        }
    }
    buf.push(b'e');
}
