//! The caller's limits on what a peer may send.

/// How large a peer's messages may be; checked on the length prefix, before the body is buffered.
///
/// The wire layer does not know the torrent, so the caller passes what it knows: the piece count
/// once it has the metadata, the largest block it requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireLimits {
    /// The largest block a `piece` message may carry, in bytes. Requests are 16 KiB in practice
    /// (BEP 3, BEP 52); the default of 128 KiB leaves room for peers we ask for larger blocks.
    pub max_block: u32,
    /// The torrent's piece count, once known: a bitfield must then be exactly
    /// `ceil(num_pieces / 8)` bytes with the spare bits clear (BEP 3).
    pub num_pieces: Option<u32>,
    /// The largest bitfield accepted while the piece count is unknown (a magnet link before the
    /// metadata arrives), in bytes. The default of 256 KiB covers 2^21 pieces.
    pub max_bitfield: u32,
    /// The largest payload (after the extended id) of a BEP 10 extended message, and of a message
    /// with an unknown id (after the id). The default is 16 KiB plus 1 KiB: a BEP 9 metadata
    /// piece is 16 KiB plus a small dictionary, and nothing else in use comes close.
    pub max_payload: u32,
    /// The most hashes a BEP 52 `hashes` message may carry. BEP 52 says a request SHOULD NOT ask
    /// for more than 512; the default adds room for 64 proof layers.
    pub max_hashes: u32,
}

impl WireLimits {
    /// The default limits: 128 KiB blocks, unknown piece count, 256 KiB bitfields, 17 KiB
    /// extension payloads, 576 hashes.
    pub const DEFAULT: Self = Self {
        max_block: 128 * 1024,
        num_pieces: None,
        max_bitfield: 256 * 1024,
        max_payload: 17 * 1024,
        max_hashes: 512 + 64,
    };

    /// These limits with the torrent's piece count known.
    #[must_use]
    pub const fn with_num_pieces(self, num_pieces: u32) -> Self {
        Self {
            num_pieces: Some(num_pieces),
            ..self
        }
    }

    /// The bitfield length in bytes that `num_pieces` implies, if known.
    pub(super) fn bitfield_len(&self) -> Option<u32> {
        self.num_pieces.map(|n| n.div_ceil(8))
    }

    /// The largest length prefix a `piece` message may have.
    pub(super) fn max_piece_frame(&self) -> u32 {
        self.max_block.saturating_add(9)
    }

    /// The largest length prefix a `bitfield` message may have.
    pub(super) fn max_bitfield_frame(&self) -> u32 {
        self.bitfield_len()
            .unwrap_or(self.max_bitfield)
            .saturating_add(1)
    }

    /// The largest length prefix an `extended` message may have.
    pub(super) fn max_extended_frame(&self) -> u32 {
        self.max_payload.saturating_add(2)
    }

    /// The largest length prefix a message with an unknown id may have.
    pub(super) fn max_unknown_frame(&self) -> u32 {
        self.max_payload.saturating_add(1)
    }

    /// The largest length prefix a `hashes` message may have.
    pub(super) fn max_hashes_frame(&self) -> u32 {
        self.max_hashes.saturating_mul(32).saturating_add(49)
    }

    /// The largest length prefix any message may have: checked before the id has arrived.
    pub(super) fn max_frame(&self) -> u32 {
        self.max_piece_frame()
            .max(self.max_bitfield_frame())
            .max(self.max_extended_frame())
            .max(self.max_hashes_frame())
    }
}

impl Default for WireLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
