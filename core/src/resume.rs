//! Resume data: what a restart needs to skip re-checking a torrent's files.
//!
//! [`ResumeData`] records the pieces verified and stored, the pieces that may have data on
//! disk without being verified yet, and each file's size and modification time as the runtime
//! read them when the data was saved (and when it read them). On the next start the runtime
//! reads the files' current sizes and times and adds the torrent with
//! [`CheckMode::Resume`](crate::session::CheckMode::Resume); [`ResumeData::plan`] decides,
//! file by file, what is trusted and what is read and hashed again.
//!
//! # What a restart trusts
//!
//! The data may be saved at any moment of a download, and the process may be killed at any
//! moment after: writes land after the save, pieces are verified after it. The rule keeps two
//! promises in every such interleaving: *no piece is trusted that was not verified*, and *no
//! piece verified before the process ended is lost* (fetched again).
//!
//! A file is **settled** when it is as recorded (same size and time, or missing then and now)
//! and nothing can have written to it since unnoticed: either every piece it holds bytes of
//! was verified at the save (nothing of ours writes it again), or its time is older than the
//! moment the files were read by at least [`RACY_WINDOW_NANOS`]. The second condition is
//! git's "racy clean" rule: file times have a coarse granularity (a kernel tick, one or two
//! seconds on some file systems), so a write in the same tick as the last one before the save
//! leaves time and size unchanged; a file written that recently is treated as changed.
//!
//! Then, per piece:
//! - verified at the save, and every file it lies in is settled and present: **trusted**,
//!   not read;
//! - otherwise, if it was verified at the save, or *unverified* then (some of its blocks were
//!   written or being written, or it was still to be checked: it may have been verified after
//!   the save), or it lies in a file that is not settled (written after the save): **checked**
//!   (read and hashed; only a matching hash makes it had);
//! - otherwise it is missing: no write of it happened before the save (it was not unverified)
//!   nor after (its files are settled).
//!
//! A changed file thus costs a check of the pieces in it, not of the whole torrent.
//!
//! # Encoding
//!
//! A bencoded dictionary (keys in ascending order, as bencode requires):
//!
//! | key | value |
//! |---|---|
//! | `files` | a list with one entry per file of the torrent: `[size, mtime]` (two integers), or an empty list for a file that did not exist (and for pad files) |
//! | `files-read-at` | when the runtime read the files' sizes and times, in the unit and clock of the times (nanoseconds since the Unix epoch) |
//! | `have` | the verified pieces, as a BEP 3 bitfield (high bit first, spare bits zero) |
//! | `info-hash` | the v1 info-hash (20 bytes), if the torrent has one |
//! | `info-hash2` | the v2 info-hash (32 bytes), if the torrent has one |
//! | `piece layers` | BEP 52 piece layers the session fetched from peers (a torrent added without them, e.g. from a magnet link): a dictionary from a file's `pieces root` (32 bytes) to its layer (32 bytes per piece); absent when there are none. They are checked against the roots again when the torrent is added |
//! | `pieces` | the torrent's piece count |
//! | `unverified` | the pieces that may have data on disk without being verified, as a bitfield like `have` |
//! | `version` | `2` (version 1, without `unverified` and `files-read-at`, is refused: the runtime then checks the files) |
//!
//! Decoding never panics and allocates in proportion to the input only: it is fuzzed (target
//! `resume`).

use std::fmt;

use crate::bencode::{self, put_bytes, put_int, DecodeError, DecodeOptions, DictWriter, Value};
use crate::bitfield::{Bitfield, BitfieldError};
use crate::error::Fault;
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::metainfo::Info;
use bytes::Bytes;

/// The format version written, and the only one read.
pub const RESUME_VERSION: i64 = 2;

/// How recent a file's time may be, before the moment the files were read, for the file to
/// count as changed anyway (3 s: FAT's 2 s granularity plus a kernel tick; see the
/// [module documentation](self)).
pub const RACY_WINDOW_NANOS: i64 = 3_000_000_000;

/// A file's size and modification time, as the runtime reads them from the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStat {
    /// The file's length in bytes.
    pub size: u64,
    /// Its modification time in nanoseconds since the Unix epoch (negative before it), on the
    /// clock of [`ResumeData::files_read_at`].
    pub mtime: i64,
}

/// What a restart needs to trust a torrent's files without re-checking them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent.
    pub info_hashes: InfoHashes,
    /// The pieces verified and stored when the data was saved.
    pub have: Bitfield,
    /// The pieces that may have data on disk without being verified when the data was saved:
    /// blocks of them written or being written, or still to be checked. A restart checks them.
    pub unverified: Bitfield,
    /// Each file's size and modification time when the data was saved, `None` for a file that
    /// did not exist (and for pad files, which are never created).
    pub files: Vec<Option<FileStat>>,
    /// When the runtime read `files` (nanoseconds since the Unix epoch, on the clock file
    /// times come from), read after them.
    pub files_read_at: i64,
    /// BEP 52 piece layers fetched from peers, as (`pieces root`, layer) sorted by root, so a
    /// restart need not fetch them again (the session checks them against the roots).
    pub piece_layers: Vec<([u8; 32], Bytes)>,
}

/// What a restart does with each piece: see [`ResumeData::plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePlan {
    /// Pieces trusted as verified and stored, not read.
    pub trusted: Bitfield,
    /// Pieces to read and hash; the rest are missing.
    pub check: Bitfield,
}

/// Why bytes are not resume data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumeError {
    /// Not bencode.
    Bencode(DecodeError),
    /// The top-level value is not a dictionary.
    NotADict,
    /// A required key is missing or has the wrong type.
    Missing(&'static str),
    /// A value is out of range or malformed (which key).
    Invalid(&'static str),
    /// Written by a version of the format this build does not read.
    UnsupportedVersion(i64),
    /// The `have` bitfield does not fit the piece count.
    Have(BitfieldError),
}

impl ResumeError {
    /// Who is at fault: resume data is read from a file the user (or another program) may
    /// have damaged, so every error means malformed input.
    pub fn fault(&self) -> Fault {
        match self {
            Self::UnsupportedVersion(_) => Fault::Unsupported,
            _ => Fault::Malformed,
        }
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bencode(e) => write!(f, "resume data is not bencode: {e}"),
            Self::NotADict => f.write_str("resume data is not a dictionary"),
            Self::Missing(key) => write!(f, "resume data lacks a valid `{key}`"),
            Self::Invalid(key) => write!(f, "resume data has an invalid `{key}`"),
            Self::UnsupportedVersion(v) => write!(f, "resume data version {v} is not supported"),
            Self::Have(e) => write!(f, "resume data `have`: {e}"),
        }
    }
}

impl std::error::Error for ResumeError {}

/// Limits for decoding: a flat dictionary with one list of two-integer lists.
const OPTIONS: DecodeOptions = DecodeOptions::STRICT.with_max_depth(4);

impl ResumeData {
    /// Encodes the data as a bencoded dictionary (see the [module documentation](self)).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(96 + 2 * self.have.as_bytes().len() + self.files.len() * 24);
        let mut files = Vec::with_capacity(2 + self.files.len() * 24);
        files.push(b'l');
        for f in &self.files {
            files.push(b'l');
            if let Some(f) = f {
                put_int(&mut files, i64::try_from(f.size).unwrap_or(i64::MAX));
                put_int(&mut files, f.mtime);
            }
            files.push(b'e');
        }
        files.push(b'e');
        let mut d = DictWriter::new(&mut out);
        d.raw(b"files", &files);
        d.int(b"files-read-at", self.files_read_at);
        d.bytes(b"have", self.have.as_bytes());
        if let Some(v1) = self.info_hashes.v1() {
            d.bytes(b"info-hash", &v1.0);
        }
        if let Some(v2) = self.info_hashes.v2() {
            put_bytes(d.value(b"info-hash2"), &v2.0);
        }
        if !self.piece_layers.is_empty() {
            let mut layers = self.piece_layers.clone();
            layers.sort_by_key(|a| a.0);
            layers.dedup_by(|a, b| a.0 == b.0);
            let mut dict = Vec::new();
            let mut l = DictWriter::new(&mut dict);
            for (root, layer) in &layers {
                l.bytes(root, layer);
            }
            l.finish();
            d.raw(b"piece layers", &dict);
        }
        d.int(b"pieces", i64::from(self.have.len()));
        d.bytes(b"unverified", self.unverified.as_bytes());
        d.int(b"version", RESUME_VERSION);
        d.finish();
        out
    }

    /// Decodes data written by [`ResumeData::encode`]. Never panics; any damage is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, ResumeError> {
        let value = bencode::decode_with(bytes, OPTIONS).map_err(ResumeError::Bencode)?;
        let Value::Dict(dict) = value else {
            return Err(ResumeError::NotADict);
        };
        let version = dict
            .get(b"version")
            .and_then(Value::as_int)
            .ok_or(ResumeError::Missing("version"))?;
        if version != RESUME_VERSION {
            return Err(ResumeError::UnsupportedVersion(version));
        }
        let v1 = match dict.get(b"info-hash") {
            None => None,
            Some(v) => {
                let b = v.as_bytes().ok_or(ResumeError::Missing("info-hash"))?;
                Some(InfoHashV1(
                    b.try_into()
                        .map_err(|_| ResumeError::Invalid("info-hash"))?,
                ))
            }
        };
        let v2 = match dict.get(b"info-hash2") {
            None => None,
            Some(v) => {
                let b = v.as_bytes().ok_or(ResumeError::Missing("info-hash2"))?;
                Some(InfoHashV2(
                    b.try_into()
                        .map_err(|_| ResumeError::Invalid("info-hash2"))?,
                ))
            }
        };
        let info_hashes = match (v1, v2) {
            (Some(a), Some(b)) => InfoHashes::Hybrid(a, b),
            (Some(a), None) => InfoHashes::V1(a),
            (None, Some(b)) => InfoHashes::V2(b),
            (None, None) => return Err(ResumeError::Missing("info-hash")),
        };
        let pieces = dict
            .get(b"pieces")
            .and_then(Value::as_int)
            .ok_or(ResumeError::Missing("pieces"))?;
        let pieces = u32::try_from(pieces).map_err(|_| ResumeError::Invalid("pieces"))?;
        let have_bytes = dict
            .get(b"have")
            .and_then(Value::as_bytes)
            .ok_or(ResumeError::Missing("have"))?;
        // `from_bytes` checks the length first, so `pieces` cannot make it allocate more than
        // the input holds.
        let have = Bitfield::from_bytes(have_bytes, pieces).map_err(ResumeError::Have)?;
        let unverified_bytes = dict
            .get(b"unverified")
            .and_then(Value::as_bytes)
            .ok_or(ResumeError::Missing("unverified"))?;
        let unverified =
            Bitfield::from_bytes(unverified_bytes, pieces).map_err(ResumeError::Have)?;
        let files_read_at = dict
            .get(b"files-read-at")
            .and_then(Value::as_int)
            .ok_or(ResumeError::Missing("files-read-at"))?;
        let list = dict
            .get(b"files")
            .and_then(Value::as_list)
            .ok_or(ResumeError::Missing("files"))?;
        let mut files = Vec::with_capacity(list.len());
        for entry in list.iter() {
            let e = entry.as_list().ok_or(ResumeError::Invalid("files"))?;
            files.push(match e.as_slice() {
                [] => None,
                [size, mtime] => {
                    let size = size
                        .as_int()
                        .and_then(|s| u64::try_from(s).ok())
                        .ok_or(ResumeError::Invalid("files"))?;
                    let mtime = mtime.as_int().ok_or(ResumeError::Invalid("files"))?;
                    Some(FileStat { size, mtime })
                }
                _ => return Err(ResumeError::Invalid("files")),
            });
        }
        let mut piece_layers = Vec::new();
        if let Some(v) = dict.get(b"piece layers") {
            let layers = v.as_dict().ok_or(ResumeError::Invalid("piece layers"))?;
            for (root, layer) in layers.iter() {
                let root: [u8; 32] = (*root)
                    .try_into()
                    .map_err(|_| ResumeError::Invalid("piece layers"))?;
                let layer = layer
                    .as_bytes()
                    .filter(|l| !l.is_empty() && l.len() % 32 == 0)
                    .ok_or(ResumeError::Invalid("piece layers"))?;
                piece_layers.push((root, Bytes::copy_from_slice(layer)));
            }
        }
        Ok(Self {
            info_hashes,
            have,
            unverified,
            files,
            files_read_at,
            piece_layers,
        })
    }

    /// What a restart trusts and checks, given the files' sizes and times now (one entry per
    /// file of `info`, `None` for a missing file or a pad file); see the
    /// [module documentation](self). Data that does not fit `info` (another piece or file
    /// count) trusts nothing and checks everything.
    pub fn plan(&self, info: &Info, current_files: &[Option<FileStat>]) -> ResumePlan {
        let layout = info.layout();
        let pieces = layout.piece_count();
        let file_count = info.files().len();
        let mut plan = ResumePlan {
            trusted: Bitfield::new(pieces),
            check: Bitfield::new(pieces),
        };
        let fits = self.have.len() == pieces
            && self.unverified.len() == pieces
            && self.files.len() == file_count
            && current_files.len() == file_count;
        if !fits {
            plan.check = Bitfield::full(pieces);
            return plan;
        }
        // Files every piece of which was verified at the save: nothing of ours writes them.
        let mut complete = vec![true; file_count];
        for piece in layout.pieces() {
            if !self.have.get(piece.get()) {
                for span in layout.piece_spans(piece).filter(|s| !s.pad) {
                    complete[span.file] = false;
                }
            }
        }
        let racy_after = self.files_read_at.saturating_sub(RACY_WINDOW_NANOS);
        let settled: Vec<bool> = (0..file_count)
            .map(|i| match (self.files[i], current_files[i]) {
                (None, None) => true,
                (Some(saved), Some(now)) => {
                    saved == now && (complete[i] || saved.mtime < racy_after)
                }
                _ => false,
            })
            .collect();
        for piece in layout.pieces() {
            let index = piece.get();
            let (mut all_settled, mut all_present) = (true, true);
            for span in layout.piece_spans(piece).filter(|s| !s.pad) {
                all_settled &= settled[span.file];
                all_present &= current_files[span.file].is_some();
            }
            let had = self.have.get(index);
            if had && all_settled && all_present {
                plan.trusted.set(index, true);
            } else if had || self.unverified.get(index) || !all_settled {
                plan.check.set(index, true);
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ResumeData {
        let mut have = Bitfield::new(11);
        have.set(0, true);
        have.set(10, true);
        let mut unverified = Bitfield::new(11);
        unverified.set(3, true);
        ResumeData {
            info_hashes: InfoHashes::V1(InfoHashV1([7; 20])),
            have,
            unverified,
            files_read_at: 1_700_000_001_000_000_000,
            files: vec![
                Some(FileStat {
                    size: 100,
                    mtime: 1_700_000_000_123_456_789,
                }),
                None,
                Some(FileStat { size: 0, mtime: -5 }),
            ],
            piece_layers: Vec::new(),
        }
    }

    #[test]
    fn piece_layers_round_trip_sorted_and_damage_is_an_error() {
        let mut data = sample();
        data.piece_layers = vec![
            ([9; 32], Bytes::from(vec![1u8; 64])),
            ([3; 32], Bytes::from(vec![2u8; 32])),
        ];
        let decoded = ResumeData::decode(&data.encode()).unwrap();
        data.piece_layers.sort_by_key(|a| a.0);
        assert_eq!(decoded, data);
        // A layer that is not whole hashes, or a root that is not 32 bytes, is refused.
        let mut bad = sample();
        bad.piece_layers = vec![([1; 32], Bytes::from(vec![0u8; 33]))];
        assert_eq!(
            ResumeData::decode(&bad.encode()),
            Err(ResumeError::Invalid("piece layers"))
        );
    }

    #[test]
    fn round_trips() {
        let data = sample();
        let bytes = data.encode();
        assert_eq!(ResumeData::decode(&bytes), Ok(data));
        // The encoding is canonical bencode (strict decoding accepts it).
        assert!(bencode::decode(&bytes).is_ok());
    }

    const PIECE: u64 = 16384;
    const SECOND: i64 = 1_000_000_000;
    /// When the files were read in the plan tests.
    const READ_AT: i64 = 1_000 * SECOND;

    /// Four pieces over three files: f0 = pieces 0-1, f1 = piece 2 and half of 3, f2 = the
    /// other half of 3.
    fn plan_info() -> Info {
        let sizes = [2 * PIECE, PIECE + PIECE / 2, PIECE / 2].map(|s| s as usize);
        let data = vec![0; sizes.iter().sum()];
        crate::metainfo::testing::multi_file_info(&data, &sizes, PIECE as u32)
    }

    fn bits(list: [bool; 4]) -> Bitfield {
        let mut b = Bitfield::new(4);
        for (i, v) in list.into_iter().enumerate() {
            b.set(i as u32, v);
        }
        b
    }

    /// Resume data with `have` and `unverified`, every file written long before the save.
    fn plan_data(have: [bool; 4], unverified: [bool; 4]) -> ResumeData {
        let old = READ_AT - 60 * SECOND;
        ResumeData {
            info_hashes: InfoHashes::V1(InfoHashV1([7; 20])),
            have: bits(have),
            unverified: bits(unverified),
            files: [2 * PIECE, PIECE + PIECE / 2, PIECE / 2]
                .iter()
                .map(|&size| Some(FileStat { size, mtime: old }))
                .collect(),
            files_read_at: READ_AT,
            piece_layers: Vec::new(),
        }
    }

    fn plan_of(data: &ResumeData, now: &[Option<FileStat>]) -> ([bool; 4], [bool; 4]) {
        let plan = data.plan(&plan_info(), now);
        let list = |b: &Bitfield| std::array::from_fn(|i| b.get(i as u32));
        (list(&plan.trusted), list(&plan.check))
    }

    #[test]
    fn unchanged_files_trust_the_verified_pieces_and_check_the_unverified_ones() {
        let data = plan_data([true, false, true, false], [false, true, false, false]);
        assert_eq!(
            plan_of(&data, &data.files),
            ([true, false, true, false], [false, true, false, false])
        );
    }

    #[test]
    fn a_changed_file_checks_only_the_pieces_in_it() {
        let data = plan_data([true, true, true, false], [false, false, false, true]);
        // f1 written after the save (a piece not yet verified): pieces 2 and 3 are checked,
        // piece 2 although it was verified; f0's pieces are still trusted.
        let mut now = data.files.clone();
        now[1] = Some(FileStat {
            size: PIECE + PIECE / 2,
            mtime: READ_AT + SECOND,
        });
        assert_eq!(
            plan_of(&data, &now),
            ([true, true, false, false], [false, false, true, true])
        );
        // Everything verified and f2 changed (its size): only piece 3 (partly in f2) is
        // checked.
        let all = plan_data([true; 4], [false; 4]);
        let mut now = all.files.clone();
        now[2] = Some(FileStat {
            size: 7,
            mtime: READ_AT - 60 * SECOND,
        });
        assert_eq!(
            plan_of(&all, &now),
            ([true, true, true, false], [false, false, false, true])
        );
        // f0 gone: its verified pieces are checked (and will be found missing).
        let mut now = data.files.clone();
        now[0] = None;
        assert_eq!(
            plan_of(&data, &now),
            ([false, false, true, false], [true, true, false, true])
        );
    }

    #[test]
    fn a_file_written_just_before_the_save_counts_as_changed_unless_complete() {
        // f0 written within the racy window before the files were read: a write after the
        // save may have left its time unchanged (same tick), so piece 1 (neither verified nor
        // unverified at the save) may be on disk now: f0's pieces are checked.
        let mut data = plan_data([true, false, true, false], [false; 4]);
        data.files[0] = Some(FileStat {
            size: 2 * PIECE,
            mtime: READ_AT - SECOND,
        });
        assert_eq!(
            plan_of(&data, &data.files),
            ([false, false, true, false], [true, true, false, false])
        );
        // Just outside the window: settled.
        data.files[0] = Some(FileStat {
            size: 2 * PIECE,
            mtime: READ_AT - RACY_WINDOW_NANOS - 1,
        });
        assert_eq!(
            plan_of(&data, &data.files),
            ([true, false, true, false], [false; 4])
        );
        // Every piece of f0 verified at the save: nothing writes it again, however recent.
        let mut data = plan_data([true, true, false, false], [false; 4]);
        data.files[0] = Some(FileStat {
            size: 2 * PIECE,
            mtime: READ_AT,
        });
        assert_eq!(
            plan_of(&data, &data.files),
            ([true, true, false, false], [false; 4])
        );
    }

    #[test]
    fn files_missing_then_and_now_are_settled_and_appearing_ones_are_not() {
        let mut data = plan_data([true, false, false, false], [false; 4]);
        data.files[1] = None;
        data.files[2] = None;
        assert_eq!(
            plan_of(&data, &data.files),
            ([true, false, false, false], [false; 4])
        );
        let mut now = data.files.clone();
        now[2] = Some(FileStat {
            size: PIECE / 2,
            mtime: READ_AT + SECOND,
        });
        assert_eq!(
            plan_of(&data, &now),
            ([true, false, false, false], [false, false, false, true])
        );
    }

    #[test]
    fn data_that_does_not_fit_checks_everything() {
        let data = plan_data([true; 4], [false; 4]);
        assert_eq!(plan_of(&data, &data.files[..2]), ([false; 4], [true; 4]));
        let mut short = data.clone();
        short.files.pop();
        assert_eq!(plan_of(&short, &data.files), ([false; 4], [true; 4]));
    }

    #[test]
    fn hybrid_hashes_round_trip() {
        let mut data = sample();
        data.info_hashes = InfoHashes::Hybrid(InfoHashV1([1; 20]), InfoHashV2([2; 32]));
        assert_eq!(ResumeData::decode(&data.encode()), Ok(data));
    }

    /// `haystack` with the first `from` replaced by `to`.
    fn replace(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
        let from = from.as_bytes();
        let at = haystack
            .windows(from.len())
            .position(|w| w == from)
            .expect("the pattern is in the encoding");
        [&haystack[..at], to.as_bytes(), &haystack[at + from.len()..]].concat()
    }

    #[test]
    fn damage_is_a_typed_error() {
        let good = sample().encode();
        let cases: Vec<(Vec<u8>, ResumeError)> = vec![
            (b"le".to_vec(), ResumeError::NotADict),
            (
                replace(&good, "7:versioni2e", "7:versioni1e"),
                ResumeError::UnsupportedVersion(1),
            ),
            (
                replace(&good, "6:piecesi11e", "6:piecesi9e"),
                ResumeError::Have(BitfieldError::SpareBitsSet),
            ),
            (
                replace(&good, "6:piecesi11e", "6:piecesi99e"),
                ResumeError::Have(BitfieldError::WrongLength {
                    expected: 13,
                    actual: 2,
                }),
            ),
            (
                replace(&good, "6:piecesi11e", "6:piecesi-1e"),
                ResumeError::Invalid("pieces"),
            ),
            (
                replace(&good, "i100e", "i-100e"),
                ResumeError::Invalid("files"),
            ),
            (
                replace(&good, "li0ei-5ee", "li0ei-5ei1ee"),
                ResumeError::Invalid("files"),
            ),
            (
                b"d7:versioni2ee".to_vec(),
                ResumeError::Missing("info-hash"),
            ),
            (
                replace(&good, "10:unverified", "10:unverifiex"),
                ResumeError::Missing("unverified"),
            ),
            (
                replace(&good, "13:files-read-at", "13:files-read-as"),
                ResumeError::Missing("files-read-at"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_ne!(bytes, good, "the case changed the encoding");
            assert_eq!(
                ResumeData::decode(&bytes),
                Err(expected.clone()),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        assert!(matches!(
            ResumeData::decode(b"d"),
            Err(ResumeError::Bencode(_))
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ResumeData::decode(&bytes);
        }

        #[test]
        fn any_data_round_trips(
            bits in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..100),
            read_at in any::<i64>(),
            files in proptest::collection::vec(proptest::option::of((0u64..i64::MAX as u64, any::<i64>())), 0..20),
        ) {
            let mut have = Bitfield::new(bits.len() as u32);
            let mut unverified = Bitfield::new(bits.len() as u32);
            for (i, (h, u)) in bits.iter().enumerate() {
                have.set(i as u32, *h);
                unverified.set(i as u32, *u);
            }
            let data = ResumeData {
                info_hashes: InfoHashes::V2(InfoHashV2([9; 32])),
                have,
                unverified,
                files_read_at: read_at,
                files: files.into_iter().map(|f| f.map(|(size, mtime)| FileStat { size, mtime })).collect(),
                piece_layers: Vec::new(),
            };
            prop_assert_eq!(ResumeData::decode(&data.encode()), Ok(data));
        }
    }
}
