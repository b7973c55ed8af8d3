//! A fixed-length set of piece indices, stored as BEP 3 lays it out on the wire.
//!
//! Byte `i / 8`, bit `7 - i % 8` (high bit first) is piece `i`. Spare bits at the end of the last
//! byte are zero; a peer that sets them is misbehaving (BEP 3: "Spare bits at the end are set to
//! zero. Clients should drop the connection if they receive bitfields that are not of the correct
//! size, or if the bitfield has any of the spare bits set.").

use std::fmt;

/// Why bytes from a peer are not a valid bitfield for a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BitfieldError {
    /// The byte count is not `ceil(pieces / 8)`.
    WrongLength {
        /// The byte count the torrent's piece count requires.
        expected: usize,
        /// The byte count received.
        actual: usize,
    },
    /// One of the bits past the last piece is set.
    SpareBitsSet,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { expected, actual } => {
                write!(f, "bitfield of {actual} bytes, expected {expected}")
            }
            Self::SpareBitsSet => f.write_str("bitfield has spare bits set"),
        }
    }
}

impl std::error::Error for BitfieldError {}

/// A set of pieces `0..len`, with its population count kept up to date.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Box<[u8]>,
    len: u32,
    count: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0u8; (len as usize).div_ceil(8)].into_boxed_slice(),
            len,
            count: 0,
        }
    }

    /// The full set over `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut b = Self::new(len);
        b.bytes.fill(0xff);
        b.clear_spare_bits();
        b.count = len;
        b
    }

    /// Reads a bitfield in wire layout for a torrent of `len` pieces, rejecting a wrong length
    /// or set spare bits.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = (len as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                actual: bytes.len(),
            });
        }
        let mut b = Self {
            bytes: bytes.into(),
            len,
            count: 0,
        };
        let before = b.bytes.last().copied();
        b.clear_spare_bits();
        if b.bytes.last().copied() != before {
            return Err(BitfieldError::SpareBitsSet);
        }
        b.count = b.bytes.iter().map(|x| x.count_ones()).sum();
        Ok(b)
    }

    fn clear_spare_bits(&mut self) {
        let spare = (self.bytes.len() * 8) as u32 - self.len;
        if let Some(last) = self.bytes.last_mut() {
            *last &= 0xffu8.checked_shl(spare).unwrap_or(0);
        }
    }

    /// The number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pieces are in the set.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether every piece is in the set.
    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    /// Whether no piece is in the set.
    pub fn is_clear(&self) -> bool {
        self.count == 0
    }

    /// Whether piece `i` is in the set (`false` past the end).
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Adds or removes piece `i`; returns whether the set changed. Indices past the end are
    /// ignored (and return `false`).
    pub fn set(&mut self, i: u32, value: bool) -> bool {
        if i >= self.len || self.get(i) == value {
            return false;
        }
        let mask = 0x80 >> (i % 8);
        let byte = &mut self.bytes[(i / 8) as usize];
        if value {
            *byte |= mask;
            self.count += 1;
        } else {
            *byte &= !mask;
            self.count -= 1;
        }
        true
    }

    /// The set in wire layout.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The pieces in the set, ascending.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(byte_index, &b)| {
                (0..8u32)
                    .filter(move |bit| b & (0x80 >> bit) != 0)
                    .map(move |bit| byte_index as u32 * 8 + bit)
            })
    }

    /// Whether `other` has any piece this set lacks (both over the same length).
    pub fn lacks_any_of(&self, other: &Bitfield) -> bool {
        self.bytes
            .iter()
            .zip(other.bytes.iter())
            .any(|(ours, theirs)| theirs & !ours != 0)
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{}: ", self.count, self.len)?;
        for i in 0..self.len.min(64) {
            f.write_str(if self.get(i) { "1" } else { "0" })?;
        }
        if self.len > 64 {
            f.write_str("...")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_layout_is_high_bit_first() {
        let mut b = Bitfield::new(10);
        b.set(0, true);
        b.set(9, true);
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter_set().collect::<Vec<_>>(), vec![0, 9]);
        assert!(!b.set(10, true), "past the end is ignored");
    }

    #[test]
    fn from_bytes_checks_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet)
        );
        let b = Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap();
        assert!(b.is_full());
        assert_eq!(b, Bitfield::full(10));
        assert_eq!(Bitfield::full(16).as_bytes(), &[0xff, 0xff]);
        assert!(Bitfield::full(0).is_full() && Bitfield::new(0).is_clear());
    }

    proptest! {
        #[test]
        fn count_matches_contents(len in 0u32..200, ops in proptest::collection::vec((0u32..220, any::<bool>()), 0..100)) {
            let mut b = Bitfield::new(len);
            let mut model = std::collections::BTreeSet::new();
            for (i, v) in ops {
                let changed = b.set(i, v);
                let model_changed = i < len && if v { model.insert(i) } else { model.remove(&i) };
                prop_assert_eq!(changed, model_changed);
            }
            prop_assert_eq!(b.count() as usize, model.len());
            prop_assert_eq!(b.iter_set().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(Bitfield::from_bytes(b.as_bytes(), len), Ok(b));
        }
    }
}
