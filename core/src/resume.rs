//! Resume data: what a restart needs to skip re-checking a torrent's files.
//!
//! [`ResumeData`] records the pieces verified and stored, and each file's size and
//! modification time as the runtime saw them when the data was saved. On the next start the
//! runtime reads the files' current sizes and times and adds the torrent with
//! [`CheckMode::Resume`](crate::session::CheckMode::Resume): if every file is as recorded, the
//! recorded pieces are trusted; if any changed (or the record does not fit), the session
//! checks every piece from disk.
//!
//! The encoding is a bencoded dictionary (keys in ascending order, as bencode requires):
//!
//! | key | value |
//! |---|---|
//! | `files` | a list with one entry per file of the torrent: `[size, mtime]` (two integers), or an empty list for a file that did not exist (and for pad files) |
//! | `have` | the verified pieces, as a BEP 3 bitfield (high bit first, spare bits zero) |
//! | `info-hash` | the v1 info-hash (20 bytes), if the torrent has one |
//! | `info-hash2` | the v2 info-hash (32 bytes), if the torrent has one |
//! | `piece layers` | BEP 52 piece layers the session fetched from peers (a torrent added without them, e.g. from a magnet link): a dictionary from a file's `pieces root` (32 bytes) to its layer (32 bytes per piece); absent when there are none. They are checked against the roots again when the torrent is added |
//! | `pieces` | the torrent's piece count |
//! | `version` | `1` |
//!
//! Decoding never panics and allocates in proportion to the input only: it is fuzzed (target
//! `resume`).

use std::fmt;

use crate::bencode::{self, put_bytes, put_int, DecodeError, DecodeOptions, DictWriter, Value};
use crate::bitfield::{Bitfield, BitfieldError};
use crate::error::Fault;
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes};
use bytes::Bytes;

/// The format version written, and the only one read.
pub const RESUME_VERSION: i64 = 1;

/// A file's size and modification time, as the runtime reads them from the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStat {
    /// The file's length in bytes.
    pub size: u64,
    /// Its modification time in nanoseconds since the Unix epoch (negative before it). Only
    /// compared for equality, so any fixed unit the runtime uses consistently works.
    pub mtime: i64,
}

/// What a restart needs to trust a torrent's files without re-checking them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent.
    pub info_hashes: InfoHashes,
    /// The pieces verified and stored when the data was saved.
    pub have: Bitfield,
    /// Each file's size and modification time when the data was saved, `None` for a file that
    /// did not exist (and for pad files, which are never created).
    pub files: Vec<Option<FileStat>>,
    /// BEP 52 piece layers fetched from peers, as (`pieces root`, layer) sorted by root, so a
    /// restart need not fetch them again (the session checks them against the roots).
    pub piece_layers: Vec<([u8; 32], Bytes)>,
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
        let mut out = Vec::with_capacity(64 + self.have.as_bytes().len() + self.files.len() * 24);
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
            files,
            piece_layers,
        })
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
        ResumeData {
            info_hashes: InfoHashes::V1(InfoHashV1([7; 20])),
            have,
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
                replace(&good, "7:versioni1e", "7:versioni2e"),
                ResumeError::UnsupportedVersion(2),
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
                b"d7:versioni1ee".to_vec(),
                ResumeError::Missing("info-hash"),
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
            bits in proptest::collection::vec(any::<bool>(), 0..100),
            files in proptest::collection::vec(proptest::option::of((0u64..i64::MAX as u64, any::<i64>())), 0..20),
        ) {
            let mut have = Bitfield::new(bits.len() as u32);
            for (i, b) in bits.iter().enumerate() {
                have.set(i as u32, *b);
            }
            let data = ResumeData {
                info_hashes: InfoHashes::V2(InfoHashV2([9; 32])),
                have,
                files: files.into_iter().map(|f| f.map(|(size, mtime)| FileStat { size, mtime })).collect(),
                piece_layers: Vec::new(),
            };
            prop_assert_eq!(ResumeData::decode(&data.encode()), Ok(data));
        }
    }
}
