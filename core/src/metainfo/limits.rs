//! Bounds on what a torrent may ask of us.

/// Bounds applied while parsing a torrent; everything a torrent controls is capped.
///
/// The defaults follow libtorrent's `load_torrent_limits` where it has one (2^21 pieces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest `.torrent` file accepted, in bytes (piece layers included).
    pub max_torrent_size: usize,
    /// The largest `info` dictionary accepted, in bytes (also the BEP 9 metadata size limit).
    pub max_metadata_size: usize,
    /// The most pieces a torrent may have; 2^21 is allowed, 2^21 + 1 is not.
    pub max_pieces: u32,
    /// The largest `piece length`, in bytes.
    pub max_piece_length: u32,
    /// The most files a torrent may list (BEP 47 padding files count).
    pub max_files: usize,
    /// The most components in one file's path (the torrent's `name` counts as one).
    pub max_path_depth: usize,
    /// The longest path component, in bytes (255 is what common file systems allow).
    pub max_component_len: usize,
}

impl Limits {
    /// The default limits.
    pub const DEFAULT: Self = Self {
        max_torrent_size: 128 << 20,
        max_metadata_size: 48 << 20,
        max_pieces: 1 << 21,
        max_piece_length: 1 << 30,
        max_files: 1 << 20,
        max_path_depth: 64,
        max_component_len: 255,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
