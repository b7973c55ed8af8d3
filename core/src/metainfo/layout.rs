//! Piece and block geometry, and the mapping of pieces onto file spans.
//!
//! One linear model serves v1, v2 and hybrid torrents: the files, BEP 47 padding files included,
//! lie end to end in one byte stream cut into `piece length` pieces (BEP 3). For v2-only
//! torrents the padding that aligns each file to a piece boundary is listed explicitly (BEP 52),
//! so a v2 file's pieces are a contiguous range and its last piece ends in padding.
//!
//! Padding bytes are zeros: v1 hashes them, v2 does not ([`Layout::piece_data_size`]), and
//! storage never writes them ([`FileSpan::pad`]). Lookups binary-search the file offsets and
//! return iterators, so mapping a piece allocates nothing.

use std::ops::Range;

use crate::merkle::BLOCK_SIZE;

use super::info::FileEntry;

/// The size of a request block: 16 KiB (the last block of a piece may be shorter).
pub const BLOCK_LEN: u32 = BLOCK_SIZE as u32;

/// A piece index checked against a [`Layout`]: it exists only for pieces that exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// The index as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A block: the unit of a request (BEP 3 `request` / `piece`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    /// The piece it is in.
    pub piece: PieceIndex,
    /// Its offset in the piece.
    pub offset: u32,
    /// Its length: [`BLOCK_LEN`] except at the end of a piece.
    pub length: u32,
}

/// A run of bytes of one file that a piece (or part of one) covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileSpan {
    /// The file's index in [`Info::files`](super::Info::files).
    pub file: usize,
    /// The offset in the file.
    pub offset: u64,
    /// The number of bytes.
    pub length: u32,
    /// Whether the file is padding: zeros that are never written or read from disk.
    pub pad: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    offset: u64,
    length: u64,
    pad: bool,
}

impl Extent {
    fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// The geometry of a torrent: pieces, blocks, and which file bytes each piece covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    piece_length: u32,
    piece_count: u32,
    total_length: u64,
    extents: Vec<Extent>,
}

impl Layout {
    /// The layout of `files`, which lie end to end (as [`Info`](super::Info) guarantees), with
    /// a total length of at most `max_pieces × piece_length` checked by the caller.
    pub(super) fn new(files: &[FileEntry], piece_length: u32) -> Self {
        let extents: Vec<Extent> = files
            .iter()
            .map(|f| Extent {
                offset: f.offset,
                length: f.length,
                pad: f.is_pad(),
            })
            .collect();
        let total_length = extents.last().map_or(0, Extent::end);
        let piece_count = total_length.div_ceil(u64::from(piece_length)) as u32;
        Self {
            piece_length,
            piece_count,
            total_length,
            extents,
        }
    }

    /// The nominal piece length.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The length of the whole byte stream, padding included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The piece with this index, if there is one.
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// All pieces in order.
    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> {
        (0..self.piece_count).map(PieceIndex)
    }

    /// Where the piece starts in the byte stream.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_length)
    }

    /// The piece's size in the byte stream, padding included: the piece length, except for the
    /// last piece. This is what a v1 SHA-1 piece hash covers.
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let start = self.piece_offset(piece);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// The piece's size without padding bytes. For v2 (BEP 52) the last piece of each file is
    /// shorter by the alignment gap after it, and this is what its piece-layer hash covers.
    pub fn piece_data_size(&self, piece: PieceIndex) -> u32 {
        self.piece_spans(piece)
            .filter(|s| !s.pad)
            .map(|s| s.length)
            .sum()
    }

    /// The number of 16 KiB blocks in the piece (padding included).
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_LEN)
    }

    /// Block `index` of the piece, if there is one.
    pub fn block(&self, piece: PieceIndex, index: u32) -> Option<Block> {
        let size = self.piece_size(piece);
        let offset = index.checked_mul(BLOCK_LEN).filter(|&o| o < size)?;
        Some(Block {
            piece,
            offset,
            length: (size - offset).min(BLOCK_LEN),
        })
    }

    /// The blocks of the piece in order.
    pub fn blocks(&self, piece: PieceIndex) -> impl Iterator<Item = Block> + '_ {
        (0..self.block_count(piece)).map_while(move |i| self.block(piece, i))
    }

    /// Checks a peer's request (piece, begin, length) against the geometry: the piece exists,
    /// the length is between 1 and [`BLOCK_LEN`], and the range lies inside the piece.
    pub fn request(&self, index: u32, begin: u32, length: u32) -> Option<Block> {
        let piece = self.piece(index)?;
        if length == 0 || length > BLOCK_LEN {
            return None;
        }
        let end = begin.checked_add(length)?;
        (end <= self.piece_size(piece)).then_some(Block {
            piece,
            offset: begin,
            length,
        })
    }

    /// The file spans of the whole piece, in order.
    pub fn piece_spans(&self, piece: PieceIndex) -> FileSpans<'_> {
        self.spans(piece, 0, self.piece_size(piece))
    }

    /// The file spans of `length` bytes at `offset` in the piece (clamped to the piece).
    pub fn spans(&self, piece: PieceIndex, offset: u32, length: u32) -> FileSpans<'_> {
        let size = self.piece_size(piece);
        let offset = offset.min(size);
        let length = length.min(size - offset);
        let start = self.piece_offset(piece) + u64::from(offset);
        FileSpans {
            extents: &self.extents,
            next: self.extents.partition_point(|e| e.end() <= start),
            pos: start,
            end: start + u64::from(length),
        }
    }

    /// The block's file spans.
    pub fn block_spans(&self, block: Block) -> FileSpans<'_> {
        self.spans(block.piece, block.offset, block.length)
    }

    /// The pieces that hold bytes of file `file` (empty for an empty file; `None` if there is
    /// no such file). For v2 files these pieces hold that file only (and padding).
    pub fn file_pieces(&self, file: usize) -> Option<Range<u32>> {
        let e = self.extents.get(file)?;
        if e.length == 0 {
            return Some(0..0);
        }
        let pl = u64::from(self.piece_length);
        Some((e.offset / pl) as u32..e.end().div_ceil(pl) as u32)
    }

    /// The file holding the byte at `offset` of the stream (never an empty file).
    pub fn file_at(&self, offset: u64) -> Option<usize> {
        let i = self.extents.partition_point(|e| e.end() <= offset);
        (i < self.extents.len()).then_some(i)
    }
}

/// The file spans of a range of a piece; see [`Layout::spans`].
#[derive(Clone, Debug)]
pub struct FileSpans<'l> {
    extents: &'l [Extent],
    next: usize,
    pos: u64,
    end: u64,
}

impl Iterator for FileSpans<'_> {
    type Item = FileSpan;

    fn next(&mut self) -> Option<FileSpan> {
        while self.pos < self.end {
            let file = self.next;
            let e = self.extents.get(file)?;
            self.next += 1;
            if e.end() <= self.pos {
                continue; // an empty file at this offset
            }
            let until = e.end().min(self.end);
            let span = FileSpan {
                file,
                offset: self.pos - e.offset,
                length: (until - self.pos) as u32,
                pad: e.pad,
            };
            self.pos = until;
            return Some(span);
        }
        None
    }
}
