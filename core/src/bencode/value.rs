//! The decoded (or constructed) bencode value tree.

use bytes::BufMut;

use super::encode::{put_bytes, put_int};

/// One bencode value, borrowing its strings from the input it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(List<'a>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string and valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&List<'a>> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "integer",
            Self::Bytes(_) => "string",
            Self::List(_) => "list",
            Self::Dict(_) => "dictionary",
        }
    }

    /// Appends the canonical encoding of this value (dictionary keys in sorted order).
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            Self::Int(i) => put_int(buf, *i),
            Self::Bytes(b) => put_bytes(buf, b),
            Self::List(list) => {
                buf.put_u8(b'l');
                for item in list.iter() {
                    item.encode(buf);
                }
                buf.put_u8(b'e');
            }
            Self::Dict(dict) => {
                buf.put_u8(b'd');
                for (key, value) in dict.sorted_entries() {
                    put_bytes(buf, key);
                    value.encode(buf);
                }
                buf.put_u8(b'e');
            }
        }
    }

    /// The canonical encoding of this value in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl<'a> From<i64> for Value<'a> {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Self::Bytes(b)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Self::Bytes(s.as_bytes())
    }
}

impl<'a> From<List<'a>> for Value<'a> {
    fn from(l: List<'a>) -> Self {
        Self::List(l)
    }
}

impl<'a> From<Dict<'a>> for Value<'a> {
    fn from(d: Dict<'a>) -> Self {
        Self::Dict(d)
    }
}

/// A bencode list. Equality compares items only, not where they were decoded from.
#[derive(Clone, Debug, Default)]
pub struct List<'a> {
    items: Vec<Value<'a>>,
    raw: Option<&'a [u8]>,
}

impl<'a> List<'a> {
    /// An empty list, to be filled with [`List::push`].
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn decoded(items: Vec<Value<'a>>, raw: &'a [u8]) -> Self {
        Self {
            items,
            raw: Some(raw),
        }
    }

    /// Appends an item.
    pub fn push(&mut self, item: impl Into<Value<'a>>) {
        self.items.push(item.into());
        self.raw = None;
    }

    /// The items, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Value<'a>> {
        self.items.iter()
    }

    /// The items as a slice.
    pub fn as_slice(&self) -> &[Value<'a>] {
        &self.items
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The exact input bytes this list was decoded from; `None` for a constructed list.
    pub fn raw(&self) -> Option<&'a [u8]> {
        self.raw
    }
}

impl<'a> FromIterator<Value<'a>> for List<'a> {
    fn from_iter<I: IntoIterator<Item = Value<'a>>>(iter: I) -> Self {
        Self {
            items: iter.into_iter().collect(),
            raw: None,
        }
    }
}

impl PartialEq for List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl Eq for List<'_> {}

/// A bencode dictionary: byte-string keys, each at most once.
///
/// A decoded dictionary keeps its entries in input order (sorted, unless decoded leniently) and
/// remembers the exact bytes it was decoded from. Equality compares entries as a map.
#[derive(Clone, Debug)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
    sorted: bool,
    raw: Option<&'a [u8]>,
}

impl Default for Dict<'_> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            sorted: true,
            raw: None,
        }
    }
}

impl<'a> Dict<'a> {
    /// An empty dictionary, to be filled with [`Dict::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn decoded(
        entries: Vec<(&'a [u8], Value<'a>)>,
        sorted: bool,
        raw: &'a [u8],
    ) -> Self {
        Self {
            entries,
            sorted,
            raw: Some(raw),
        }
    }

    /// Inserts or replaces the value for `key`, keeping the keys sorted.
    ///
    /// Inserting keys in ascending order costs O(1) each.
    pub fn insert(&mut self, key: &'a [u8], value: impl Into<Value<'a>>) {
        let value = value.into();
        self.raw = None;
        if !self.sorted {
            self.entries.sort_by(|a, b| a.0.cmp(b.0));
            self.sorted = true;
        }
        match self.entries.last() {
            Some((last, _)) if *last < key => self.entries.push((key, value)),
            None => self.entries.push((key, value)),
            _ => match self.entries.binary_search_by(|(k, _)| (*k).cmp(key)) {
                Ok(i) => self.entries[i].1 = value,
                Err(i) => self.entries.insert(i, (key, value)),
            },
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        if self.sorted {
            self.entries
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| &self.entries[i].1)
        } else {
            self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The entries in the order they were decoded (sorted unless decoded leniently).
    pub fn iter(&self) -> std::slice::Iter<'_, (&'a [u8], Value<'a>)> {
        self.entries.iter()
    }

    /// The entries in ascending key order.
    pub fn sorted_entries(&self) -> impl Iterator<Item = &(&'a [u8], Value<'a>)> {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        if !self.sorted {
            order.sort_by(|&a, &b| self.entries[a].0.cmp(self.entries[b].0));
        }
        order.into_iter().map(move |i| &self.entries[i])
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exact input bytes this dictionary was decoded from; `None` for a constructed one.
    ///
    /// BEP 3: the info-hash is the SHA-1 of these bytes for the `info` dictionary.
    pub fn raw(&self) -> Option<&'a [u8]> {
        self.raw
    }
}

impl PartialEq for Dict<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.sorted_entries().eq(other.sorted_entries())
    }
}

impl Eq for Dict<'_> {}
