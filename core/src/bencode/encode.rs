//! Writing bencode straight into a buffer, without building a [`Value`](super::Value) tree.

use bytes::BufMut;

/// Appends an integer: `i<n>e`.
pub fn put_int(buf: &mut impl BufMut, i: i64) {
    buf.put_u8(b'i');
    put_decimal(buf, i);
    buf.put_u8(b'e');
}

/// Appends a byte string: `<len>:<bytes>`.
pub fn put_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    put_decimal(buf, bytes.len() as i64);
    buf.put_u8(b':');
    buf.put_slice(bytes);
}

fn put_decimal(buf: &mut impl BufMut, i: i64) {
    let mut digits = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        buf.put_u8(b'-');
    }
    buf.put_slice(&digits[at..]);
}

/// Writes one dictionary directly into a buffer; keys must come in ascending order.
///
/// ```
/// use bitshoal_core::bencode::DictWriter;
/// let mut out = Vec::new();
/// let mut d = DictWriter::new(&mut out);
/// d.int(b"a", 1);
/// d.bytes(b"b", b"xy");
/// d.finish();
/// assert_eq!(out, b"d1:ai1e1:b2:xye");
/// ```
#[derive(Debug)]
pub struct DictWriter<'b, B: BufMut> {
    buf: &'b mut B,
    last_key: Option<Vec<u8>>,
}

impl<'b, B: BufMut> DictWriter<'b, B> {
    /// Opens a dictionary (`d`).
    pub fn new(buf: &'b mut B) -> Self {
        buf.put_u8(b'd');
        Self {
            buf,
            last_key: None,
        }
    }

    fn key(&mut self, key: &[u8]) {
        debug_assert!(
            self.last_key.as_deref().is_none_or(|last| last < key),
            "DictWriter keys must be written in strictly ascending order"
        );
        if cfg!(debug_assertions) {
            self.last_key = Some(key.to_vec());
        }
        put_bytes(self.buf, key);
    }

    /// Writes an integer entry.
    pub fn int(&mut self, key: &[u8], value: i64) {
        self.key(key);
        put_int(self.buf, value);
    }

    /// Writes a byte-string entry.
    pub fn bytes(&mut self, key: &[u8], value: &[u8]) {
        self.key(key);
        put_bytes(self.buf, value);
    }

    /// Writes an entry whose value is already-encoded bencode (a nested dictionary, say).
    pub fn raw(&mut self, key: &[u8], encoded: &[u8]) {
        self.key(key);
        self.buf.put_slice(encoded);
    }

    /// Writes the key and hands back the buffer for the caller to encode the value into.
    pub fn value(&mut self, key: &[u8]) -> &mut B {
        self.key(key);
        self.buf
    }

    /// Closes the dictionary (`e`).
    pub fn finish(self) {
        self.buf.put_u8(b'e');
    }
}
