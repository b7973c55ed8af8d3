//! BitTorrent v2 piece verification (BEP 52): SHA-256 merkle trees of 16 KiB blocks.
//!
//! Every non-empty file of a v2 or hybrid torrent starts on a piece boundary, so each piece
//! holds data of one file only (and, after a file's last piece, alignment padding that no tree
//! covers). A piece is checked by hashing its file data into 16 KiB leaves on a hash worker
//! ([`HashAlgorithm::Sha256Blocks`]) and folding the leaves here into the piece's node:
//!
//! - a file longer than a piece has a *piece layer* (from the `.torrent`'s `piece layers`, or
//!   fetched from peers, see `hashes`): piece `i` of the file must hash to node `i`, its leaves
//!   padded with zero hashes to a whole piece (the last piece of the file is short);
//! - a file of at most one piece has no layer: its one piece must hash to the file's
//!   `pieces root`, over the file's own minimal tree (not padded to a whole piece).
//!
//! A hybrid torrent's piece is checked both ways in one hash job
//! ([`HashAlgorithm::Sha1AndSha256Blocks`]); if one check passes and the other fails the
//! torrent's two views describe different data, and the torrent stops with an error (BEP 52
//! "Upgrade Path": "If any inconsistency is detected they may ... abort"). Padding bytes
//! received from peers are replaced by zeros before hashing (they are never written either), so a
//! peer cannot fake such a disagreement with garbage in the padding: it can only fail both.
//!
//! Smart ban needs nothing special: a failed v2 piece is retried from one peer and its blocks are
//! compared with the good ones, as for v1 ([`crate::smart_ban`]): a peer that sent every block
//! of a failed piece is banned at once, otherwise the exclusive retry convicts it within two
//! attempts. v2 adds a faster route for pieces with several senders: the failed piece's leaf
//! hashes are asked of peers and checked against the piece layer, and the sender of each block
//! whose leaf differs is banned at once ([`super::v2_ban`]). We answer such requests too
//! ([`super::leaf_hashes`]), as BEP 52 requires and libtorrent relies on.
//!
//! A hybrid piece that passed by SHA-1 while its file's layer was missing is checked again
//! when the layer arrives ([`super::leaf_hashes`]); a disagreement stops the torrent with
//! [`TorrentError::HybridConflict`](super::TorrentError::HybridConflict).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::merkle::{self, Hash256, UpperTree};
use crate::metainfo::{Block, Info, PieceIndex, Version};

use super::{AddError, Digest, HashAlgorithm};

/// Zeros for padding blocks.
static ZEROS: [u8; crate::metainfo::BLOCK_LEN as usize] = [0; crate::metainfo::BLOCK_LEN as usize];

/// A v2 or hybrid torrent's merkle state: the piece layers known so far.
#[derive(Debug)]
pub(crate) struct V2State {
    /// log2(piece length / 16 KiB).
    pub(crate) piece_height: u32,
    /// Per file: its piece layer, for files longer than a piece whose layer is known.
    layers: Vec<Option<Vec<Hash256>>>,
    /// Per file: whether the file needs a layer (longer than one piece).
    needs_layer: Vec<bool>,
    /// Files that need a layer and lack one.
    missing: usize,
    /// Trees above the piece layers, built when a peer first asks for hashes of a file.
    trees: HashMap<usize, UpperTree>,
    /// Whether some layer came from peers (so resume data should keep it).
    pub(crate) fetched_any: bool,
}

/// What a piece's digest says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every hash the torrent has for the piece matched.
    Pass,
    /// No hash matched (or the v2 hash is not known for a v2-only torrent).
    Fail,
    /// Hybrid: one view matched and the other did not.
    Conflict {
        /// Whether the v1 SHA-1 matched.
        v1_ok: bool,
    },
}

impl V2State {
    /// The state for `info`, with the piece layers given (indexed by file; missing layers are
    /// fetched from peers later). `None` for a v1 torrent. Layers that do not hash to their
    /// file's root are refused.
    pub(crate) fn new(info: &Info, given: &[Option<Bytes>]) -> Result<Option<Self>, AddError> {
        if info.version() == Version::V1 {
            return Ok(None);
        }
        let piece_length = u64::from(info.piece_length());
        let piece_height = merkle::piece_layer_height(piece_length)
            .expect("a v2 piece length is a power of two of at least 16 KiB (checked at parse)");
        let files = info.files();
        let mut layers = Vec::with_capacity(files.len());
        let mut needs_layer = Vec::with_capacity(files.len());
        let mut missing = 0;
        for (index, file) in files.iter().enumerate() {
            let needs = file.pieces_root().is_some() && file.length() > piece_length;
            needs_layer.push(needs);
            let layer = match given.get(index).and_then(Option::as_ref) {
                Some(bytes) if needs => {
                    let layer = parse_layer(bytes, file.length(), piece_length)
                        .ok_or(AddError::BadPieceLayer { file: index })?;
                    let root = file.pieces_root().expect("needs a layer only with a root");
                    let height = merkle::tree_height(file.length());
                    if merkle::subtree_root(&layer, piece_height, height) != Some(*root) {
                        return Err(AddError::BadPieceLayer { file: index });
                    }
                    Some(layer)
                }
                _ => None,
            };
            if needs && layer.is_none() {
                missing += 1;
            }
            layers.push(layer);
        }
        Ok(Some(Self {
            piece_height,
            layers,
            needs_layer,
            missing,
            trees: HashMap::new(),
            fetched_any: false,
        }))
    }

    /// Whether every file's piece layer is known.
    pub(crate) fn complete(&self) -> bool {
        self.missing == 0
    }

    /// Whether `file` is longer than a piece (its tree has a piece layer).
    pub(crate) fn needs_layer(&self, file: usize) -> bool {
        self.needs_layer.get(file).copied().unwrap_or(false)
    }

    /// Files that need a layer and lack one.
    pub(crate) fn missing_files(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.layers.len()).filter(|&f| self.needs_layer[f] && self.layers[f].is_none())
    }

    /// The known piece layer of `file`.
    pub(crate) fn layer(&self, file: usize) -> Option<&[Hash256]> {
        self.layers.get(file)?.as_deref()
    }

    /// Stores a layer of `file` that was checked against its root. Returns whether it was new.
    pub(crate) fn set_layer(&mut self, file: usize, layer: Vec<Hash256>) -> bool {
        let Some(slot) = self.layers.get_mut(file) else {
            return false;
        };
        if slot.is_some() || !self.needs_layer[file] {
            return false;
        }
        *slot = Some(layer);
        self.missing -= 1;
        self.fetched_any = true;
        true
    }

    /// Takes layers saved in resume data ((root, layer) pairs) for files still lacking one;
    /// layers that do not hash to their root are ignored (they are fetched again).
    pub(crate) fn adopt_layers(&mut self, info: &Info, saved: &[(Hash256, Bytes)]) {
        let piece_length = u64::from(info.piece_length());
        for file in self.missing_files().collect::<Vec<_>>() {
            let entry = &info.files()[file];
            let Some(root) = entry.pieces_root() else {
                continue;
            };
            let Some((_, bytes)) = saved.iter().find(|(r, _)| r == root) else {
                continue;
            };
            let Some(layer) = parse_layer(bytes, entry.length(), piece_length) else {
                continue;
            };
            let height = merkle::tree_height(entry.length());
            if merkle::subtree_root(&layer, self.piece_height, height) == Some(*root) {
                self.set_layer(file, layer);
            }
        }
    }

    /// The layers that came from peers (or from resume data holding them), for resume data:
    /// (root, layer) pairs. Empty when the torrent was added with all its layers.
    pub(crate) fn fetched_layers(&self, info: &Info) -> Vec<(Hash256, Bytes)> {
        if !self.fetched_any {
            return Vec::new();
        }
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(file, layer)| {
                let root = *info.files().get(file)?.pieces_root()?;
                Some((root, Bytes::from(layer.as_ref()?.concat())))
            })
            .collect()
    }

    /// The tree above `file`'s piece layer (built once), for answering hash requests.
    pub(crate) fn tree(&mut self, info: &Info, file: usize) -> Option<&UpperTree> {
        if !self.trees.contains_key(&file) {
            let entry = info.files().get(file)?;
            let height = merkle::tree_height(entry.length());
            let tree = match self.layers.get(file)? {
                Some(layer) => UpperTree::new(layer.clone(), self.piece_height, height)?,
                // A file of one piece: nothing above the root to serve (requests need a
                // base layer below the root, and its leaves are not kept).
                None => return None,
            };
            self.trees.insert(file, tree);
        }
        self.trees.get(&file)
    }

    /// The file whose tree has this root, if it needs a layer (hash requests name files so).
    pub(crate) fn file_by_root(&self, info: &Info, root: &Hash256) -> Option<usize> {
        info.files()
            .iter()
            .enumerate()
            .find(|(i, f)| self.needs_layer[*i] && f.pieces_root() == Some(root))
            .map(|(i, _)| i)
    }
}

/// A layer's bytes as hashes, if it has exactly one hash per piece of the file.
pub(crate) fn parse_layer(
    bytes: &[u8],
    file_length: u64,
    piece_length: u64,
) -> Option<Vec<Hash256>> {
    let count = file_length.div_ceil(piece_length);
    if bytes.len() as u64 != count.checked_mul(32)? {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect(),
    )
}

/// The file a piece of a v2 or hybrid torrent holds data of, and the piece's index within
/// that file. `None` for a piece of padding only (which no tree covers).
pub(crate) fn piece_file(info: &Info, piece: PieceIndex) -> Option<(usize, u32)> {
    let layout = info.layout();
    let offset = layout.piece_offset(piece);
    let file = layout.file_at(offset)?;
    let entry = info.files().get(file)?;
    if entry.is_pad() || entry.pieces_root().is_none() {
        return None;
    }
    let local = (offset - entry.offset()) / u64::from(info.piece_length());
    Some((file, u32::try_from(local).ok()?))
}

/// The hash job's algorithm for a piece of `info`.
pub(crate) fn algorithm(info: &Info, piece: PieceIndex) -> HashAlgorithm {
    let len = info.layout().piece_data_size(piece);
    match info.version() {
        Version::V1 => HashAlgorithm::Sha1,
        Version::V2 => HashAlgorithm::Sha256Blocks { len },
        Version::Hybrid => HashAlgorithm::Sha1AndSha256Blocks { len },
    }
}

/// What `digest` says about `piece`: against the v1 piece hash and/or the v2 tree.
pub(crate) fn verdict(
    info: &Info,
    v2: Option<&V2State>,
    piece: PieceIndex,
    digest: &Digest,
) -> Verdict {
    let v1 = |d: &[u8; 20]| info.piece_hash_v1(piece).as_ref() == Some(d);
    let v2_check = |leaves: &[Hash256]| v2.and_then(|s| v2_matches(info, s, piece, leaves));
    match digest {
        Digest::Sha1(d) => pass_if(v1(d)),
        Digest::Sha256Blocks(leaves) => pass_if(v2_check(leaves) == Some(true)),
        Digest::Sha1AndSha256Blocks { sha1, blocks } => {
            let v1_ok = v1(sha1);
            match v2_check(blocks) {
                // The v2 hash is not known yet (layers being fetched): SHA-1 decides.
                None => pass_if(v1_ok),
                Some(v2_ok) if v2_ok == v1_ok => pass_if(v1_ok),
                Some(_) => Verdict::Conflict { v1_ok },
            }
        }
    }
}

fn pass_if(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// Whether `piece`'s node in its file's tree is known, so its leaves can be checked (the
/// file's layer has arrived, or the file needs none): when [`verdict`] passes a piece whose
/// node is known, its leaves were checked against the tree.
pub(crate) fn v2_node_known(info: &Info, state: &V2State, piece: PieceIndex) -> bool {
    let Some((file, local)) = piece_file(info, piece) else {
        return false;
    };
    info.files()[file].pieces_root().is_some()
        && (!state.needs_layer[file]
            || state
                .layer(file)
                .is_some_and(|l| (local as usize) < l.len()))
}

/// Whether the leaves of `piece` hash to its node in the file's tree; `None` when that node is
/// not known (the file's layer is missing) or the piece holds no file data.
fn v2_matches(info: &Info, state: &V2State, piece: PieceIndex, leaves: &[Hash256]) -> Option<bool> {
    let (file, local) = piece_file(info, piece)?;
    let entry = &info.files()[file];
    let root = entry.pieces_root()?;
    if state.needs_layer[file] {
        let expected = state.layer(file)?.get(local as usize)?;
        Some(merkle::subtree_root(leaves, 0, state.piece_height).as_ref() == Some(expected))
    } else {
        let height = merkle::tree_height(entry.length());
        Some(merkle::subtree_root(leaves, 0, height).as_ref() == Some(root))
    }
}

/// A received block with its padding bytes (BEP 47 pad files, BEP 52 alignment gaps) replaced
/// by zeros: padding is never written, and hashing zeros means a peer's garbage there cannot
/// make a hybrid's two checks disagree. Blocks without padding are returned as they are.
pub(crate) fn zero_padding(info: &Info, block: Block, data: Bytes) -> Bytes {
    let layout = info.layout();
    let mut spans = layout.block_spans(block).peekable();
    if spans.peek().is_none() || layout.block_spans(block).all(|s| !s.pad) {
        return data;
    }
    if layout.block_spans(block).all(|s| s.pad) {
        return Bytes::from_static(&ZEROS[..data.len().min(ZEROS.len())]);
    }
    let mut out = BytesMut::from(&data[..]);
    let mut at = 0usize;
    for span in layout.block_spans(block) {
        let end = (at + span.length as usize).min(out.len());
        if span.pad {
            out[at..end].fill(0);
        }
        at = end;
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{block_hash, layer_from_leaves, leaves_of, root_from_layer, BLOCK_SIZE};

    /// A v2-only info dictionary with the given files (name, bytes) and piece length, plus its
    /// piece layers, built by hand from the BEP 52 rules.
    pub(crate) fn v2_info(
        files: &[(&str, Vec<u8>)],
        piece_length: u32,
    ) -> (Info, Vec<Option<Bytes>>) {
        use crate::bencode::{put_bytes, put_int, DictWriter};
        let height = merkle::piece_layer_height(u64::from(piece_length)).unwrap();
        let mut tree = vec![b'd'];
        let mut dir = Vec::new();
        let mut layers_by_root = Vec::new();
        for (name, data) in files {
            let leaves = leaves_of(data);
            let root = root_from_layer(&leaves, 0);
            if data.len() as u64 > u64::from(piece_length) {
                let layer: Vec<u8> = layer_from_leaves(&leaves, height).concat();
                layers_by_root.push((root, layer));
            }
            let mut entry = Vec::new();
            let mut leaf = DictWriter::new(&mut entry);
            let inner = leaf.value(b"");
            let mut d = DictWriter::new(inner);
            d.int(b"length", data.len() as i64);
            if !data.is_empty() {
                d.bytes(b"pieces root", &root);
            }
            d.finish();
            leaf.finish();
            dir.push((name.as_bytes().to_vec(), entry));
        }
        dir.sort();
        put_bytes(&mut tree, b"dir");
        tree.push(b'd');
        for (name, entry) in &dir {
            put_bytes(&mut tree, name);
            tree.extend_from_slice(entry);
        }
        tree.push(b'e');
        tree.push(b'e');
        let mut raw = Vec::new();
        let mut d = DictWriter::new(&mut raw);
        d.raw(b"file tree", &tree);
        d.int(b"meta version", 2);
        d.bytes(b"name", b"dir");
        let pl = d.value(b"piece length");
        put_int(pl, i64::from(piece_length));
        d.finish();
        let info = Info::from_bytes(&raw).expect("valid v2 info");
        let layers = info
            .files()
            .iter()
            .map(|f| {
                let root = f.pieces_root()?;
                layers_by_root
                    .iter()
                    .find(|(r, _)| r == root)
                    .map(|(_, l)| Bytes::from(l.clone()))
            })
            .collect();
        (info, layers)
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13) ^ seed)
            .collect()
    }

    /// Every piece of a multi-file v2 torrent verifies from its own file data: whole pieces, a
    /// file's short last piece (padded), and files smaller than a piece (their root).
    #[test]
    fn each_piece_verifies_against_its_files_tree() {
        let pl = 4 * BLOCK_SIZE as u32;
        let files = [
            ("a", data(9 * BLOCK_SIZE + 100, 1)), // 3 pieces, the last short
            ("b", data(1000, 2)),                 // smaller than a block
            ("c", data(3 * BLOCK_SIZE, 3)),       // smaller than a piece, 3 leaves
            ("d", data(8 * BLOCK_SIZE, 4)),       // exactly 2 pieces
        ];
        let (info, layers) = v2_info(&files, pl);
        let state = V2State::new(&info, &layers).unwrap().unwrap();
        assert!(state.complete());
        let layout = info.layout();
        let mut checked = 0;
        for piece in layout.pieces() {
            let Some((file, local)) = piece_file(&info, piece) else {
                continue;
            };
            let name = info.files()[file]
                .path()
                .as_str()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            let content = &files.iter().find(|(n, _)| *n == name).unwrap().1;
            let start = local as usize * pl as usize;
            let end = (start + pl as usize).min(content.len());
            assert_eq!(layout.piece_data_size(piece) as usize, end - start);
            let HashAlgorithm::Sha256Blocks { len } = algorithm(&info, piece) else {
                panic!()
            };
            let mut padded = content[start..end].to_vec();
            padded.resize(layout.piece_size(piece) as usize, 0);
            let leaves = merkle::block_hashes(&[Bytes::from(padded)], len as usize);
            let digest = Digest::Sha256Blocks(leaves.clone());
            assert_eq!(
                verdict(&info, Some(&state), piece, &digest),
                Verdict::Pass,
                "{name} {local}"
            );
            let mut bad = leaves;
            bad[0] = block_hash(b"not it");
            let digest = Digest::Sha256Blocks(bad);
            assert_eq!(verdict(&info, Some(&state), piece, &digest), Verdict::Fail);
            checked += 1;
        }
        assert_eq!(checked, 3 + 1 + 1 + 2);
    }

    #[test]
    fn missing_and_bad_layers() {
        let pl = 2 * BLOCK_SIZE as u32;
        let files = [("a", data(5 * BLOCK_SIZE, 1)), ("b", data(10, 2))];
        let (info, layers) = v2_info(&files, pl);
        let mut state = V2State::new(&info, &[]).unwrap().unwrap();
        assert!(!state.complete());
        let missing: Vec<usize> = state.missing_files().collect();
        assert_eq!(missing.len(), 1);
        let file = missing[0];
        // Without the layer, pieces of that file cannot pass.
        let piece = layout_first_piece(&info, file);
        let leaves = leaves_of(&files[0].1[..pl as usize]);
        assert_eq!(
            verdict(
                &info,
                Some(&state),
                piece,
                &Digest::Sha256Blocks(leaves.clone())
            ),
            Verdict::Fail
        );
        let layer = parse_layer(
            layers[file].as_ref().unwrap(),
            5 * BLOCK_SIZE as u64,
            u64::from(pl),
        )
        .unwrap();
        assert!(state.set_layer(file, layer.clone()));
        assert!(!state.set_layer(file, layer));
        assert!(state.complete());
        assert_eq!(
            verdict(&info, Some(&state), piece, &Digest::Sha256Blocks(leaves)),
            Verdict::Pass
        );
        // A layer that does not hash to the root is refused at add.
        let mut wrong = layers.clone();
        let mut bytes = wrong[file].as_ref().unwrap().to_vec();
        bytes[0] ^= 1;
        wrong[file] = Some(Bytes::from(bytes));
        assert_eq!(
            V2State::new(&info, &wrong).unwrap_err(),
            AddError::BadPieceLayer { file }
        );
        let mut short = layers;
        short[file] = Some(Bytes::from_static(&[0; 32]));
        assert_eq!(
            V2State::new(&info, &short).unwrap_err(),
            AddError::BadPieceLayer { file }
        );
    }

    fn layout_first_piece(info: &Info, file: usize) -> PieceIndex {
        let range = info.layout().file_pieces(file).unwrap();
        info.layout().piece(range.start).unwrap()
    }

    #[test]
    fn the_tree_serves_the_layer_with_a_proof() {
        let pl = BLOCK_SIZE as u32;
        let files = [("a", data(5 * BLOCK_SIZE, 9))];
        let (info, layers) = v2_info(&files, pl);
        let mut state = V2State::new(&info, &layers).unwrap().unwrap();
        let root = *info.files()[0].pieces_root().unwrap();
        assert_eq!(state.file_by_root(&info, &root), Some(0));
        let tree = state.tree(&info, 0).unwrap();
        let range = merkle::HashRange {
            base_layer: 0,
            index: 4,
            length: 2,
            proof_layers: 2,
        };
        let hashes = tree.hashes(&range).unwrap();
        let base = merkle::verify_hashes(&root, 3, &range, &hashes).unwrap();
        assert_eq!(base[0], leaves_of(&files[0].1)[4]);
        assert_eq!(base[1], [0; 32]);
    }
}
