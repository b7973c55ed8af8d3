//! The BEP 53 select-only list (`so=0,2,4-6`).

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::MagnetError;

/// The files a magnet asks to download (BEP 53 `so`): a sorted list of disjoint, non-adjacent,
/// inclusive file-index ranges, never empty.
///
/// `so=4-6,0,2,3` and `so=0,2-6` describe the same set and compare equal; the canonical text is
/// the merged form (`0,2-6`). Indices above [`SelectOnly::MAX_INDEX`] are rejected rather than
/// clamped, so a link never silently selects other files than it names. Storing ranges, not
/// indices, keeps memory proportional to the text even for `so=0-2000000`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SelectOnly {
    /// Sorted by start; each range starts at least two past the previous range's end.
    ranges: Vec<RangeInclusive<u32>>,
}

impl SelectOnly {
    /// The largest file index a select-only list may name (2^21 - 1).
    ///
    /// Far more files than any torrent in practice holds; it bounds what a consumer that expands
    /// the ranges into a per-file table may have to allocate.
    pub const MAX_INDEX: u32 = (1 << 21) - 1;

    /// Builds the list from ranges in any order, merging overlapping and adjacent ones.
    ///
    /// Fails with [`MagnetError::BadSelectOnly`] if there are no ranges, a range ends before it
    /// starts, or an index exceeds [`SelectOnly::MAX_INDEX`].
    pub fn from_ranges(
        ranges: impl IntoIterator<Item = RangeInclusive<u32>>,
    ) -> Result<Self, MagnetError> {
        let mut ranges: Vec<RangeInclusive<u32>> = ranges.into_iter().collect();
        if ranges.is_empty()
            || ranges
                .iter()
                .any(|r| r.end() < r.start() || *r.end() > Self::MAX_INDEX)
        {
            return Err(MagnetError::BadSelectOnly);
        }
        ranges.sort_unstable_by_key(|r| (*r.start(), *r.end()));
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                // `end + 1` cannot overflow: ends are at most MAX_INDEX.
                Some(last) if *r.start() <= *last.end() + 1 => {
                    if r.end() > last.end() {
                        *last = *last.start()..=*r.end();
                    }
                }
                _ => merged.push(r),
            }
        }
        Ok(Self { ranges: merged })
    }

    /// The ranges, sorted, disjoint and non-adjacent.
    pub fn ranges(&self) -> &[RangeInclusive<u32>] {
        &self.ranges
    }

    /// Whether file `index` is selected.
    pub fn contains(&self, index: u32) -> bool {
        let i = self.ranges.partition_point(|r| *r.end() < index);
        self.ranges.get(i).is_some_and(|r| r.contains(&index))
    }
}

impl FromStr for SelectOnly {
    type Err = MagnetError;

    /// Parses the BEP 53 form: comma-separated indices and inclusive `a-b` ranges.
    ///
    /// Empty items (`0,,2`, a trailing comma) are skipped; anything but ASCII digits, `-` and `,`
    /// is an error.
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        let mut ranges = Vec::new();
        for item in s.split(',').filter(|item| !item.is_empty()) {
            let (start, end) = match item.split_once('-') {
                Some((a, b)) => (parse_index(a)?, parse_index(b)?),
                None => {
                    let i = parse_index(item)?;
                    (i, i)
                }
            };
            ranges.push(start..=end);
        }
        Self::from_ranges(ranges)
    }
}

/// Parses one file index: ASCII digits only (no sign), at most [`SelectOnly::MAX_INDEX`].
fn parse_index(s: &str) -> Result<u32, MagnetError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MagnetError::BadSelectOnly);
    }
    match s.parse::<u32>() {
        Ok(i) if i <= SelectOnly::MAX_INDEX => Ok(i),
        _ => Err(MagnetError::BadSelectOnly),
    }
}

impl fmt::Display for SelectOnly {
    /// The canonical BEP 53 text, e.g. `0,2,4-6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}
