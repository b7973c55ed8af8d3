//! BEP 52 merkle trees: SHA-256 over 16 KiB blocks, branching factor 2.
//!
//! A file's tree has one leaf per 16 KiB block (the last may be shorter and is hashed as it is).
//! Leaves past the end of the file, needed only to make the leaf count a power of two, are all-zero
//! hashes; a node whose subtree lies wholly past the end is therefore the root of an all-zero
//! subtree of its height ([`pad_hash`]). The "piece layer" is the layer at which one node covers
//! `piece length` bytes.

use sha2::{Digest, Sha256};

/// The size of a merkle leaf block (BEP 52): 16 KiB.
pub const BLOCK_SIZE: usize = 16 * 1024;

/// A SHA-256 digest.
pub type Hash256 = [u8; 32];

/// The SHA-256 of one block of data (a leaf).
pub fn block_hash(data: &[u8]) -> Hash256 {
    Sha256::digest(data).into()
}

/// The parent of two nodes: SHA-256 of their concatenation.
///
/// A 64-byte message is always exactly two SHA-256 blocks, the second one constant (the
/// padding), so this calls the compression function directly on both instead of going through
/// the streaming `Digest` API. Verifying a large v2 torrent's piece layers is hundreds of
/// thousands of these; the shortcut makes each about a third cheaper.
pub fn hash_pair(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut blocks = [sha2::digest::generic_array::GenericArray::default(); 2];
    blocks[0][..32].copy_from_slice(left);
    blocks[0][32..].copy_from_slice(right);
    blocks[1].copy_from_slice(&PAIR_PADDING);
    let mut state = SHA256_IV;
    sha2::compress256(&mut state, &blocks);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-256's initial hash value (FIPS 180-4, section 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The padding block of a 64-byte message: 0x80, zeros, and the length in bits (512).
const PAIR_PADDING: [u8; 64] = {
    let mut block = [0u8; 64];
    block[0] = 0x80;
    block[62] = 0x02; // 512 = 0x0200, big-endian in the last eight bytes
    block
};

/// The root of a subtree of `2^height` all-zero leaves: what stands in for data past the end.
pub fn pad_hash(height: u32) -> Hash256 {
    let mut h = [0u8; 32];
    for _ in 0..height {
        h = hash_pair(&h, &h);
    }
    h
}

/// The root over `nodes` taken as one layer of a tree, the layer `height` levels above the leaves.
///
/// The layer is padded to a power of two with [`pad_hash`]`(height)`. With `height` 0 this is the
/// root of a file's tree from its leaf hashes; with the piece layer's height it is the check of a
/// `piece layers` entry against its `pieces root`. An empty layer has the all-zero root.
pub fn root_from_layer(nodes: &[Hash256], height: u32) -> Hash256 {
    if nodes.is_empty() {
        return [0u8; 32];
    }
    let mut layer: Vec<Hash256> = nodes.to_vec();
    let mut pad = pad_hash(height);
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
            .collect();
        pad = hash_pair(&pad, &pad);
    }
    layer[0]
}

/// The layer `height` levels above `leaves`: each node is the root over `2^height` leaves, the
/// last group padded with zero leaves. Nodes wholly past the end are omitted (BEP 52 piece layers).
pub fn layer_from_leaves(leaves: &[Hash256], height: u32) -> Vec<Hash256> {
    let group = 1usize << height;
    leaves
        .chunks(group)
        .map(|chunk| {
            let mut layer: Vec<Hash256> = chunk.to_vec();
            layer.resize(group, [0u8; 32]);
            while layer.len() > 1 {
                layer = layer
                    .chunks(2)
                    .map(|pair| hash_pair(&pair[0], &pair[1]))
                    .collect();
            }
            layer[0]
        })
        .collect()
}

/// The height of the piece layer above the leaves: log2(piece length / 16 KiB).
///
/// `None` unless `piece_length` is a power of two of at least 16 KiB (BEP 52).
pub fn piece_layer_height(piece_length: u64) -> Option<u32> {
    if piece_length < BLOCK_SIZE as u64 || !piece_length.is_power_of_two() {
        return None;
    }
    Some((piece_length / BLOCK_SIZE as u64).trailing_zeros())
}

/// The leaf hashes of `data`, one per 16 KiB block.
pub fn leaves_of(data: &[u8]) -> Vec<Hash256> {
    data.chunks(BLOCK_SIZE).map(block_hash).collect()
}

/// The leaf hashes of the first `len` bytes of the concatenation of `data`: SHA-256 of each
/// 16 KiB block, the last one possibly shorter (BEP 52). The chunks of `data` may be split
/// anywhere (blocks as they arrived, or one whole piece read from disk); bytes past `len` (the
/// alignment padding after a file's last piece) are not hashed.
///
/// This is the heavy part of v2 verification; runtimes run it on their hash workers
/// (`HashAlgorithm::Sha256Blocks`), and the session folds the few resulting hashes.
pub fn block_hashes(data: &[bytes::Bytes], len: usize) -> Vec<Hash256> {
    let mut out = Vec::with_capacity(len.div_ceil(BLOCK_SIZE));
    let mut hasher = Sha256::new();
    let mut in_block = 0usize;
    let mut left = len;
    for chunk in data {
        let mut chunk = &chunk[..chunk.len().min(left)];
        left -= chunk.len();
        while !chunk.is_empty() {
            let take = (BLOCK_SIZE - in_block).min(chunk.len());
            if in_block == 0 && take == BLOCK_SIZE {
                // A whole aligned block: one call, no streaming state.
                out.push(Sha256::digest(&chunk[..take]).into());
            } else {
                hasher.update(&chunk[..take]);
                in_block += take;
                if in_block == BLOCK_SIZE {
                    out.push(hasher.finalize_reset().into());
                    in_block = 0;
                }
            }
            chunk = &chunk[take..];
        }
        if left == 0 {
            break;
        }
    }
    if in_block > 0 {
        out.push(hasher.finalize().into());
    }
    out
}

/// The root of `nodes`, a run of nodes `node_height` levels above the leaves starting at a
/// multiple of `2^(target_height - node_height)`, taken as the subtree of height
/// `target_height`: missing nodes on the right are padding ([`pad_hash`]).
///
/// With leaf hashes and the piece layer's height this is a v2 piece hash (the last piece of a
/// file has fewer leaves than a whole piece; BEP 52 pads them with zero hashes). `nodes` longer
/// than the subtree give `None`.
pub fn subtree_root(nodes: &[Hash256], node_height: u32, target_height: u32) -> Option<Hash256> {
    let levels = target_height.checked_sub(node_height)?;
    if levels >= usize::BITS || nodes.len() > 1usize << levels {
        return None;
    }
    if nodes.is_empty() {
        return Some(pad_hash(target_height));
    }
    let mut layer: Vec<Hash256> = nodes.to_vec();
    let mut pad = pad_hash(node_height);
    for _ in 0..levels {
        layer = layer
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
            .collect();
        pad = hash_pair(&pad, &pad);
    }
    Some(layer[0])
}

/// The height of a file's tree (its root's layer): log2 of its block count rounded up to a
/// power of two. A file of one block has height 0 (its root is the block's hash).
pub fn tree_height(file_length: u64) -> u32 {
    let blocks = file_length.div_ceil(BLOCK_SIZE as u64).max(1);
    blocks.next_power_of_two().trailing_zeros()
}

/// The range of hashes of a BEP 52 `hash request` (without the root that names the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashRange {
    /// The layer of the requested hashes, counted from the leaves (0).
    pub base_layer: u32,
    /// The first requested node of that layer: a multiple of `length`.
    pub index: u32,
    /// How many nodes: a power of two, at least 2.
    pub length: u32,
    /// How many ancestor layers of uncle hashes; the first `log2(length) - 1` of them are
    /// implied by the base nodes and not sent (BEP 52).
    pub proof_layers: u32,
}

/// Why a hash range or its proof is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The range breaks BEP 52's rules (length not a power of two of at least 2, index not a
    /// multiple of it) or does not fit in the file's tree.
    BadRange,
    /// More or fewer hashes than the range and its proof layers call for.
    WrongCount {
        /// How many the range calls for.
        expected: usize,
        /// How many came.
        actual: usize,
    },
    /// The proof does not reach the root: too few proof layers to check the hashes.
    ShortProof,
    /// The hashes and their uncles do not hash up to the file's root.
    RootMismatch,
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadRange => f.write_str("hash range outside the file's tree or malformed"),
            Self::WrongCount { expected, actual } => {
                write!(f, "expected {expected} hashes, got {actual}")
            }
            Self::ShortProof => f.write_str("proof does not reach the root"),
            Self::RootMismatch => f.write_str("hashes do not match the file's root"),
        }
    }
}

impl std::error::Error for ProofError {}

impl HashRange {
    /// `log2(length)`: how many layers the base nodes span by themselves.
    fn span(&self) -> u32 {
        self.length.trailing_zeros()
    }

    /// Checks the range against a tree of height `tree_height` (BEP 52): the length is a power
    /// of two of at least 2, the index a multiple of it, the base layer below the root, the
    /// nodes inside their layer, and the proof no longer than the way to the root.
    pub fn check(&self, tree_height: u32) -> Result<(), ProofError> {
        let ok = self.length >= 2
            && self.length.is_power_of_two()
            && self.index % self.length == 0
            && self.base_layer < tree_height
            && u64::from(self.index) + u64::from(self.length)
                <= 1u64 << (tree_height - self.base_layer).min(63)
            && self.proof_layers < tree_height - self.base_layer;
        if ok {
            Ok(())
        } else {
            Err(ProofError::BadRange)
        }
    }

    /// How many uncle hashes follow the base nodes in a `hashes` answer.
    pub fn uncle_count(&self) -> u32 {
        (self.proof_layers + 1).saturating_sub(self.span())
    }
}

/// Checks a BEP 52 `hashes` answer against a file's `root`: the base nodes folded into their
/// subtree, then the uncles folded in by the index's bits, must give the root. The proof must
/// reach the root (this is how hashes from an untrusted peer are trusted). Returns the base
/// nodes.
pub fn verify_hashes<'h>(
    root: &Hash256,
    tree_height: u32,
    range: &HashRange,
    hashes: &'h [Hash256],
) -> Result<&'h [Hash256], ProofError> {
    range.check(tree_height)?;
    let uncles = range.uncle_count() as usize;
    let expected = range.length as usize + uncles;
    if hashes.len() != expected {
        return Err(ProofError::WrongCount {
            expected,
            actual: hashes.len(),
        });
    }
    if range.base_layer + range.span() + uncles as u32 != tree_height {
        return Err(ProofError::ShortProof);
    }
    let (base, uncle_hashes) = hashes.split_at(range.length as usize);
    let mut node = subtree_root(base, range.base_layer, range.base_layer + range.span())
        .ok_or(ProofError::BadRange)?;
    let mut position = range.index >> range.span();
    for uncle in uncle_hashes {
        node = if position & 1 == 0 {
            hash_pair(&node, uncle)
        } else {
            hash_pair(uncle, &node)
        };
        position >>= 1;
    }
    if node == *root {
        Ok(base)
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// A file's tree from one layer up to the root, for answering hash requests (BEP 52).
///
/// Only nodes over file data are stored; nodes wholly past the end are padding, computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpperTree {
    /// The layer of `layers[0]`, counted from the leaves.
    base_height: u32,
    /// The root's layer.
    tree_height: u32,
    /// `layers[k]`: the nodes of layer `base_height + k` over file data; the last is the root.
    layers: Vec<Vec<Hash256>>,
}

impl UpperTree {
    /// The tree above `nodes`, the nodes of layer `base_height` of a tree of height
    /// `tree_height` (e.g. a file's piece layer). `None` if they do not fit that tree.
    pub fn new(nodes: Vec<Hash256>, base_height: u32, tree_height: u32) -> Option<Self> {
        let levels = tree_height.checked_sub(base_height)?;
        if nodes.is_empty() || levels >= usize::BITS || nodes.len() > 1usize << levels {
            return None;
        }
        let mut layers = Vec::with_capacity(levels as usize + 1);
        let mut pad = pad_hash(base_height);
        let mut layer = nodes;
        for _ in 0..levels {
            let next: Vec<Hash256> = layer
                .chunks(2)
                .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
                .collect();
            layers.push(layer);
            layer = next;
            pad = hash_pair(&pad, &pad);
        }
        layers.push(layer);
        Some(Self {
            base_height,
            tree_height,
            layers,
        })
    }

    /// The root.
    pub fn root(&self) -> Hash256 {
        self.layers.last().expect("at least the root layer")[0]
    }

    /// The node `index` of layer `layer`: stored, padding, or `None` outside the tree or below
    /// the stored layers.
    pub fn node(&self, layer: u32, index: u64) -> Option<Hash256> {
        let k = layer.checked_sub(self.base_height)?;
        let nodes = self.layers.get(k as usize)?;
        if index >= 1u64 << (self.tree_height - layer).min(63) {
            return None;
        }
        Some(
            usize::try_from(index)
                .ok()
                .and_then(|i| nodes.get(i).copied())
                .unwrap_or_else(|| pad_hash(layer)),
        )
    }

    /// The answer to a hash request for `range`: its base nodes, then the uncles the proof
    /// layers ask for. `None` if the range is malformed or reaches below the stored layers.
    pub fn hashes(&self, range: &HashRange) -> Option<Vec<Hash256>> {
        if range.base_layer < self.base_height {
            return None;
        }
        answer(range, self.tree_height, |layer, index| {
            self.node(layer, index)
        })
    }
}

/// The answer to a hash request for `range` in a tree of height `tree_height`, its nodes
/// given by `node(layer, index)`: the base nodes, then the uncles the proof layers ask for.
fn answer(
    range: &HashRange,
    tree_height: u32,
    node: impl Fn(u32, u64) -> Option<Hash256>,
) -> Option<Vec<Hash256>> {
    range.check(tree_height).ok()?;
    let mut out = Vec::with_capacity(range.length as usize + range.uncle_count() as usize);
    for i in 0..range.length {
        out.push(node(
            range.base_layer,
            u64::from(range.index) + u64::from(i),
        )?);
    }
    let first = range.base_layer + range.span();
    let mut position = u64::from(range.index >> range.span());
    for layer in (first..tree_height).take(range.uncle_count() as usize) {
        out.push(node(layer, position ^ 1)?);
        position >>= 1;
    }
    Some(out)
}

/// The leaf hashes of a run of whole pieces of one file, and the tree above its piece layer:
/// enough to answer hash requests below the piece layer (BEP 52 lets a peer ask for the leaf
/// layer, e.g. to find the bad block of a piece that failed) for ranges inside those pieces.
#[derive(Clone, Copy, Debug)]
pub struct LeafSpan<'a> {
    /// The file's tree height ([`tree_height`]).
    pub tree_height: u32,
    /// The piece layer's height ([`piece_layer_height`]).
    pub piece_height: u32,
    /// How many leaves the file has (its 16 KiB blocks); leaves past them are padding.
    pub file_leaves: u64,
    /// The index of `leaves[0]` in the file: the first leaf of a piece.
    pub first_leaf: u64,
    /// Consecutive leaf hashes of whole pieces (the file's last piece may be short).
    pub leaves: &'a [Hash256],
    /// The tree from the piece layer up, for a file longer than a piece; `None` for a file of
    /// one piece, whose whole tree is under `leaves`.
    pub upper: Option<&'a UpperTree>,
}

impl LeafSpan<'_> {
    /// The node `index` of layer `layer`: from the upper tree at the piece layer and above,
    /// folded from the leaves below it, padding past the file's end; `None` where the leaves
    /// given do not reach.
    pub fn node(&self, layer: u32, index: u64) -> Option<Hash256> {
        if layer >= self.piece_height {
            if let Some(upper) = self.upper {
                return upper.node(layer, index);
            }
        }
        if layer > self.tree_height || layer >= u64::BITS {
            return None;
        }
        let start = index.checked_shl(layer)?;
        if start >= self.file_leaves {
            return Some(pad_hash(layer));
        }
        let end = start.saturating_add(1u64 << layer).min(self.file_leaves);
        let have_end = self.first_leaf + self.leaves.len() as u64;
        if start < self.first_leaf || end > have_end {
            return None;
        }
        let from = usize::try_from(start - self.first_leaf).ok()?;
        let to = usize::try_from(end - self.first_leaf).ok()?;
        subtree_root(&self.leaves[from..to], 0, layer)
    }

    /// The answer to a hash request for `range`: its base nodes, then the uncles its proof
    /// layers ask for. `None` if the range is malformed or needs leaves not given.
    pub fn hashes(&self, range: &HashRange) -> Option<Vec<Hash256>> {
        answer(range, self.tree_height, |layer, index| {
            self.node(layer, index)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference construction: pad the leaves with zeros to a power of two, fold up.
    fn naive_root(leaves: &[Hash256]) -> Hash256 {
        let mut layer = leaves.to_vec();
        layer.resize(leaves.len().next_power_of_two(), [0u8; 32]);
        while layer.len() > 1 {
            layer = layer.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
        }
        layer[0]
    }

    #[test]
    fn root_from_any_layer_agrees_with_the_leaf_root() {
        for n in 1..40usize {
            let leaves: Vec<Hash256> = (0..n).map(|i| block_hash(&[i as u8; 3])).collect();
            let root = naive_root(&leaves);
            assert_eq!(root_from_layer(&leaves, 0), root, "n={n}");
            for height in 1..4 {
                if (1usize << height) >= n {
                    continue; // a file no bigger than a piece has no piece layer
                }
                let layer = layer_from_leaves(&leaves, height);
                assert_eq!(layer.len(), n.div_ceil(1 << height));
                assert_eq!(root_from_layer(&layer, height), root, "n={n} h={height}");
            }
        }
    }

    #[test]
    fn hash_pair_is_sha256_of_the_concatenation() {
        for seed in 0..8u8 {
            let left = block_hash(&[seed; 7]);
            let right = block_hash(&[seed ^ 0x5a; 9]);
            let mut joined = left.to_vec();
            joined.extend_from_slice(&right);
            let expected: Hash256 = Sha256::digest(&joined).into();
            assert_eq!(hash_pair(&left, &right), expected);
        }
    }

    #[test]
    fn single_block_root_is_its_hash() {
        let data = b"hello";
        assert_eq!(root_from_layer(&leaves_of(data), 0), block_hash(data));
    }

    #[test]
    fn piece_layer_heights() {
        assert_eq!(piece_layer_height(16384), Some(0));
        assert_eq!(piece_layer_height(131072), Some(3));
        assert_eq!(piece_layer_height(8192), None);
        assert_eq!(piece_layer_height(49152), None);
    }

    #[test]
    fn pad_hash_is_the_root_of_zero_leaves() {
        assert_eq!(pad_hash(0), [0u8; 32]);
        assert_eq!(pad_hash(2), naive_root(&[[0u8; 32]; 4]));
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn block_hashes_ignore_how_the_data_is_split_and_stop_at_len() {
        let whole = data(3 * BLOCK_SIZE + 1000, 1);
        let expected = leaves_of(&whole);
        for cut in [1usize, 999, BLOCK_SIZE, BLOCK_SIZE + 7, 2 * BLOCK_SIZE] {
            let chunks = vec![
                bytes::Bytes::copy_from_slice(&whole[..cut]),
                bytes::Bytes::copy_from_slice(&whole[cut..]),
            ];
            assert_eq!(block_hashes(&chunks, whole.len()), expected, "cut {cut}");
        }
        // Padding after the data (the last piece of a file) is not hashed.
        let mut padded = whole.clone();
        padded.resize(4 * BLOCK_SIZE, 0);
        let chunks = [bytes::Bytes::from(padded)];
        assert_eq!(block_hashes(&chunks, whole.len()), expected);
        assert_eq!(block_hashes(&chunks, 0), Vec::<Hash256>::new());
    }

    #[test]
    fn tree_heights() {
        assert_eq!(tree_height(0), 0);
        assert_eq!(tree_height(1), 0);
        assert_eq!(tree_height(BLOCK_SIZE as u64), 0);
        assert_eq!(tree_height(BLOCK_SIZE as u64 + 1), 1);
        assert_eq!(tree_height(5 * BLOCK_SIZE as u64), 3);
        assert_eq!(tree_height(8 * BLOCK_SIZE as u64), 3);
    }

    /// Per-file piece hashes from leaves agree with the piece layer, including the last piece
    /// of a file (fewer leaves, padded with zero hashes) and a file smaller than a piece (its
    /// root is its minimal tree, not one padded to a whole piece).
    #[test]
    fn piece_hashes_from_leaves_match_the_layer_and_the_root() {
        let height = 2; // 64 KiB pieces
        for len in [
            1usize,
            5000,
            BLOCK_SIZE,
            3 * BLOCK_SIZE + 1,
            4 * BLOCK_SIZE,
            9 * BLOCK_SIZE + 3,
        ] {
            let bytes = data(len, 7);
            let leaves = leaves_of(&bytes);
            let root = naive_root(&leaves);
            if leaves.len() <= 1 << height {
                // No piece layer: the piece hash is the file's root, over its minimal tree.
                assert_eq!(
                    subtree_root(&leaves, 0, tree_height(len as u64)),
                    Some(root)
                );
                if leaves.len() < 1 << height && leaves.len() > 1 {
                    assert_ne!(subtree_root(&leaves, 0, height), Some(root), "len {len}");
                }
                continue;
            }
            let layer = layer_from_leaves(&leaves, height);
            for (i, piece) in leaves.chunks(1 << height).enumerate() {
                assert_eq!(
                    subtree_root(piece, 0, height),
                    Some(layer[i]),
                    "len {len} piece {i}"
                );
            }
            assert_eq!(
                subtree_root(&layer, height, tree_height(len as u64)),
                Some(root)
            );
        }
        assert_eq!(subtree_root(&[[1; 32]; 5], 0, 2), None);
        assert_eq!(subtree_root(&[], 0, 3), Some(pad_hash(3)));
    }

    /// Every valid range served from a tree verifies against the root, and any change to the
    /// answer is refused.
    #[test]
    fn served_ranges_verify_and_tampering_is_caught() {
        for blocks in [2usize, 3, 5, 8, 13, 64, 100] {
            let leaves: Vec<Hash256> = (0..blocks).map(|i| block_hash(&[i as u8; 5])).collect();
            let root = naive_root(&leaves);
            let height = tree_height((blocks * BLOCK_SIZE) as u64);
            let tree = UpperTree::new(leaves.clone(), 0, height).expect("fits");
            assert_eq!(tree.root(), root);
            for base in 0..height {
                for span in 1..=(height - base) {
                    let length = 1u32 << span;
                    let mut index = 0;
                    while u64::from(index + length) <= 1u64 << (height - base) {
                        let full = height - base - 1;
                        let range = HashRange {
                            base_layer: base,
                            index,
                            length,
                            proof_layers: full,
                        };
                        let answer = tree.hashes(&range).expect("valid range");
                        let base_nodes =
                            verify_hashes(&root, height, &range, &answer).expect("verifies");
                        assert_eq!(base_nodes.len(), length as usize);
                        if base == 0 && (index as usize) < blocks {
                            assert_eq!(base_nodes[0], leaves[index as usize]);
                        }
                        let mut bad = answer.clone();
                        let last = bad.len() - 1;
                        bad[last][0] ^= 1;
                        assert_eq!(
                            verify_hashes(&root, height, &range, &bad),
                            Err(ProofError::RootMismatch)
                        );
                        if span + 1 < height - base {
                            let short = HashRange {
                                proof_layers: span,
                                ..range
                            };
                            let answer = tree.hashes(&short).expect("valid range");
                            assert_eq!(
                                verify_hashes(&root, height, &short, &answer),
                                Err(ProofError::ShortProof)
                            );
                        }
                        assert!(matches!(
                            verify_hashes(&root, height, &range, &answer[1..]),
                            Err(ProofError::WrongCount { .. })
                        ));
                        index += length;
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_ranges_are_refused() {
        let leaves: Vec<Hash256> = (0..8).map(|i| block_hash(&[i; 2])).collect();
        let tree = UpperTree::new(leaves, 0, 3).expect("fits");
        let ok = HashRange {
            base_layer: 0,
            index: 4,
            length: 4,
            proof_layers: 2,
        };
        assert!(tree.hashes(&ok).is_some());
        for bad in [
            HashRange { length: 1, ..ok },
            HashRange { length: 3, ..ok },
            HashRange { index: 2, ..ok },
            HashRange { index: 8, ..ok },
            HashRange {
                base_layer: 3,
                ..ok
            },
            HashRange {
                proof_layers: 3,
                ..ok
            },
            HashRange {
                length: 1 << 31,
                index: 0,
                ..ok
            },
        ] {
            assert_eq!(bad.check(3), Err(ProofError::BadRange), "{bad:?}");
            assert!(tree.hashes(&bad).is_none(), "{bad:?}");
        }
        // A tree stored from a higher layer cannot answer for lower ones.
        let upper = UpperTree::new(vec![[1; 32]; 3], 1, 3).expect("fits");
        assert!(upper.hashes(&ok).is_none());
        assert!(upper
            .hashes(&HashRange {
                base_layer: 1,
                index: 0,
                length: 4,
                proof_layers: 1
            })
            .is_some());
        assert!(UpperTree::new(vec![[1; 32]; 5], 1, 3).is_none());
    }

    /// Answers from the leaves of some pieces plus the tree above the piece layer agree with
    /// the full tree wherever those leaves reach, and need them: a range outside the given
    /// pieces is not answered.
    #[test]
    fn leaf_spans_answer_like_the_full_tree_inside_their_pieces() {
        for (blocks, piece_height) in [(13usize, 2u32), (16, 2), (5, 3), (3, 2), (40, 1)] {
            let leaves: Vec<Hash256> = (0..blocks).map(|i| block_hash(&[i as u8; 3])).collect();
            let height = tree_height((blocks * BLOCK_SIZE) as u64);
            let full = UpperTree::new(leaves.clone(), 0, height).expect("fits");
            let layer = layer_from_leaves(&leaves, piece_height);
            let upper = (height > piece_height)
                .then(|| UpperTree::new(layer.clone(), piece_height, height).expect("fits"));
            let per_piece = 1usize << piece_height;
            for piece in 0..layer.len() {
                let first = piece * per_piece;
                let end = (first + per_piece).min(blocks);
                let span = LeafSpan {
                    tree_height: height,
                    piece_height,
                    file_leaves: blocks as u64,
                    first_leaf: first as u64,
                    leaves: &leaves[first..end],
                    upper: upper.as_ref(),
                };
                for length in [2u32, 4, 8] {
                    let index = (first as u32) & !(length - 1);
                    for proof_layers in 0..height {
                        let range = HashRange {
                            base_layer: 0,
                            index,
                            length,
                            proof_layers,
                        };
                        let inside = u64::from(index) + u64::from(length)
                            <= (first + per_piece) as u64
                            || end == blocks && (index as usize) >= first;
                        let got = span.hashes(&range);
                        if range.check(height).is_err() {
                            assert!(got.is_none());
                        } else if inside && index as usize >= first {
                            assert_eq!(got, full.hashes(&range), "{blocks} {piece} {range:?}");
                        } else if (index as usize) < first {
                            assert!(got.is_none(), "{blocks} {piece} {range:?}");
                        }
                    }
                }
            }
        }
    }
}
