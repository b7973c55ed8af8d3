//! Bencode (BEP 3): a borrowing decoder that keeps raw spans, and an encoder into [`BufMut`](bytes::BufMut).
//!
//! Decoding never copies strings: a [`Value`] borrows from the input, and every decoded
//! [`Dict`] and [`List`] remembers the exact bytes it was decoded from ([`Dict::raw`]), which is
//! what the info-hash is computed over.
//!
//! Remote input is bounded by [`DecodeOptions`]: nesting depth and the number of values (tokens)
//! a document may hold. Since every token costs at least two input bytes, memory is bounded by
//! the smaller of the token limit and the input size.
//!
//! Two modes:
//! - **strict** (the default, used for `.torrent` files and everything we sign or hash): rejects
//!   leading zeros in integers and string lengths, `-0`, unsorted or duplicate dictionary keys,
//!   and trailing data after the top-level value;
//! - **lenient** (for trackers and peers that are known to be sloppy): accepts all of those except
//!   duplicate keys, which stay an error because two readers could disagree on their meaning.
//!
//! Every error carries the byte offset at which it was found.

mod encode;
mod value;

pub use encode::{put_bytes, put_int, DictWriter};
pub use value::{Dict, List, Value};

use std::fmt;

/// Limits and strictness for [`decode_with`] and [`decode_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The deepest nesting of lists and dictionaries allowed (the top level is depth 1).
    pub max_depth: u32,
    /// The most values (integers, strings, lists and dictionaries) one document may hold.
    pub max_tokens: u32,
    /// Strict mode: see the [module documentation](self).
    pub strict: bool,
}

impl DecodeOptions {
    /// Strict decoding with the default limits (depth 100, 3,000,000 tokens, as libtorrent).
    pub const STRICT: Self = Self {
        max_depth: 100,
        max_tokens: 3_000_000,
        strict: true,
    };

    /// Lenient decoding with the default limits.
    pub const LENIENT: Self = Self {
        strict: false,
        ..Self::STRICT
    };

    /// These options with another depth limit.
    ///
    /// The decoder recurses once per level, so keep this in the hundreds.
    #[must_use]
    pub const fn with_max_depth(self, max_depth: u32) -> Self {
        Self { max_depth, ..self }
    }

    /// These options with another token limit.
    #[must_use]
    pub const fn with_max_tokens(self, max_tokens: u32) -> Self {
        Self { max_tokens, ..self }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::STRICT
    }
}

/// A bencode document that could not be decoded, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset into the input at which the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What was wrong with a bencode document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside a value.
    UnexpectedEof,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer with no digits (`ie`, `i-e`).
    EmptyInteger,
    /// An integer or string length with a leading zero (strict mode).
    LeadingZero,
    /// The integer `-0` (strict mode).
    NegativeZero,
    /// An integer that does not fit in an `i64`, or a string length that does not fit in a `usize`.
    IntegerOverflow,
    /// A string whose declared length runs past the end of the input.
    StringTooLong {
        /// The declared length.
        declared: u64,
    },
    /// A dictionary key that is not a byte string.
    KeyNotString,
    /// A dictionary key that sorts before the previous one (strict mode).
    UnsortedKey,
    /// A dictionary key that appears twice.
    DuplicateKey,
    /// Lists and dictionaries nested deeper than [`DecodeOptions::max_depth`].
    DepthExceeded,
    /// More values than [`DecodeOptions::max_tokens`].
    TokenLimitExceeded,
    /// Bytes after the top-level value (strict mode).
    TrailingData,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode: {} at byte {}", self.kind, self.offset)
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            Self::EmptyInteger => f.write_str("integer without digits"),
            Self::LeadingZero => f.write_str("leading zero"),
            Self::NegativeZero => f.write_str("negative zero"),
            Self::IntegerOverflow => f.write_str("integer overflow"),
            Self::StringTooLong { declared } => {
                write!(f, "string of {declared} bytes runs past the end of input")
            }
            Self::KeyNotString => f.write_str("dictionary key is not a string"),
            Self::UnsortedKey => f.write_str("dictionary keys not sorted"),
            Self::DuplicateKey => f.write_str("duplicate dictionary key"),
            Self::DepthExceeded => f.write_str("nesting too deep"),
            Self::TokenLimitExceeded => f.write_str("too many values"),
            Self::TrailingData => f.write_str("trailing data after the value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one complete document in strict mode with the default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, DecodeOptions::STRICT)
}

/// Decodes one complete document with the given options.
///
/// In strict mode, bytes after the value are an error; in lenient mode they are ignored.
pub fn decode_with(input: &[u8], options: DecodeOptions) -> Result<Value<'_>, DecodeError> {
    let (value, consumed) = decode_prefix(input, options)?;
    if options.strict && consumed != input.len() {
        return Err(DecodeError {
            offset: consumed,
            kind: DecodeErrorKind::TrailingData,
        });
    }
    Ok(value)
}

/// Decodes the value at the start of `input` and returns it with the number of bytes it took.
///
/// Whatever follows is left alone: BEP 9 `ut_metadata` messages, for one, put raw data after a
/// bencoded dictionary.
pub fn decode_prefix(
    input: &[u8],
    options: DecodeOptions,
) -> Result<(Value<'_>, usize), DecodeError> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        tokens: 0,
        options,
    };
    let value = decoder.value(1)?;
    Ok((value, decoder.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    tokens: u32,
    options: DecodeOptions,
}

impl<'a> Decoder<'a> {
    fn err<T>(&self, offset: usize, kind: DecodeErrorKind) -> Result<T, DecodeError> {
        Err(DecodeError { offset, kind })
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.err(self.pos, DecodeErrorKind::UnexpectedEof),
        }
    }

    fn count_token(&mut self) -> Result<(), DecodeError> {
        self.tokens += 1;
        if self.tokens > self.options.max_tokens {
            return self.err(self.pos, DecodeErrorKind::TokenLimitExceeded);
        }
        Ok(())
    }

    fn value(&mut self, depth: u32) -> Result<Value<'a>, DecodeError> {
        self.count_token()?;
        match self.peek()? {
            b'i' => self.integer().map(Value::Int),
            b'0'..=b'9' => self.string().map(Value::Bytes),
            b'l' => self.list(depth).map(Value::List),
            b'd' => self.dict(depth).map(Value::Dict),
            other => self.err(self.pos, DecodeErrorKind::UnexpectedByte(other)),
        }
    }

    fn enter(&self, depth: u32) -> Result<(), DecodeError> {
        if depth > self.options.max_depth {
            return self.err(self.pos, DecodeErrorKind::DepthExceeded);
        }
        Ok(())
    }

    /// Reads decimal digits up to `terminator`; returns the magnitude and whether it was negative.
    fn digits(&mut self, terminator: u8, allow_sign: bool) -> Result<(u64, bool), DecodeError> {
        let start = self.pos;
        let negative = allow_sign && self.input.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let first_digit = self.pos;
        let mut magnitude: u64 = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    magnitude = match magnitude
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(b - b'0')))
                    {
                        Some(m) => m,
                        None => return self.err(start, DecodeErrorKind::IntegerOverflow),
                    };
                    self.pos += 1;
                }
                _ if b == terminator => break,
                _ => return self.err(self.pos, DecodeErrorKind::UnexpectedByte(b)),
            }
        }
        let digits = self.pos - first_digit;
        if digits == 0 {
            return self.err(start, DecodeErrorKind::EmptyInteger);
        }
        if self.options.strict {
            if digits > 1 && self.input[first_digit] == b'0' {
                return self.err(first_digit, DecodeErrorKind::LeadingZero);
            }
            if negative && magnitude == 0 {
                return self.err(start, DecodeErrorKind::NegativeZero);
            }
        }
        self.pos += 1; // the terminator
        Ok((magnitude, negative))
    }

    fn integer(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let (magnitude, negative) = self.digits(b'e', true)?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        match value {
            Some(v) => Ok(v),
            None => self.err(start, DecodeErrorKind::IntegerOverflow),
        }
    }

    fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let (declared, _) = self.digits(b':', false)?;
        let remaining = self.input.len() - self.pos;
        match usize::try_from(declared) {
            Ok(len) if len <= remaining => {
                let s = &self.input[self.pos..self.pos + len];
                self.pos += len;
                Ok(s)
            }
            _ => self.err(start, DecodeErrorKind::StringTooLong { declared }),
        }
    }

    fn list(&mut self, depth: u32) -> Result<List<'a>, DecodeError> {
        self.enter(depth)?;
        let start = self.pos;
        self.pos += 1; // 'l'
        let mut items = Vec::new();
        while self.peek()? != b'e' {
            items.push(self.value(depth + 1)?);
        }
        self.pos += 1;
        Ok(List::decoded(items, &self.input[start..self.pos]))
    }

    fn dict(&mut self, depth: u32) -> Result<Dict<'a>, DecodeError> {
        self.enter(depth)?;
        let start = self.pos;
        self.pos += 1; // 'd'
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        let mut sorted = true;
        while self.peek()? != b'e' {
            let key_offset = self.pos;
            if !self.peek()?.is_ascii_digit() {
                return self.err(key_offset, DecodeErrorKind::KeyNotString);
            }
            self.count_token()?;
            let key = self.string()?;
            if let Some((previous, _)) = entries.last() {
                if key == *previous {
                    return self.err(key_offset, DecodeErrorKind::DuplicateKey);
                }
                if key < *previous {
                    if self.options.strict {
                        return self.err(key_offset, DecodeErrorKind::UnsortedKey);
                    }
                    sorted = false;
                }
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        if !sorted {
            // Lenient mode: still refuse duplicates that were not adjacent.
            let mut keys: Vec<&[u8]> = entries.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return self.err(start, DecodeErrorKind::DuplicateKey);
            }
        }
        Ok(Dict::decoded(entries, sorted, &self.input[start..self.pos]))
    }
}

#[cfg(test)]
mod tests;
