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
}
