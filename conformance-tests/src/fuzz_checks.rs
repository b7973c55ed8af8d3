//! The checks the fuzz targets run, shared with the stable corpus-replay test.
//!
//! Each check feeds arbitrary bytes to a parser and asserts the properties that must hold for
//! any input: no panic, and for input that parses, that formatting and parsing again gives the
//! same value. `fuzz/fuzz_targets/<name>.rs` calls the check of the same name under libFuzzer
//! (`cargo +nightly fuzz run <name>`); `tests/fuzz_replay.rs` runs the same checks over the
//! committed corpus in `fuzz/corpus/<name>/` and seeded mutations of it on stable Rust, so the
//! two cannot drift apart.

use bitshoal_core::bencode::{self, DecodeOptions, Value};
use bitshoal_core::magnet::{Magnet, MAX_URI_LEN};

/// A fuzz check: panics if `data` reveals a bug.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the folder under `fuzz/corpus/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[("bencode", bencode), ("magnet", magnet)];

/// Bencode: decode strictly and leniently; whatever decodes re-encodes to a strict document
/// that decodes to the same value, and a strict document is its own canonical encoding.
pub fn bencode(data: &[u8]) {
    let strict = bencode::decode(data);
    let lenient = bencode::decode_with(data, DecodeOptions::LENIENT);
    if let Ok(value) = &strict {
        assert_eq!(
            lenient.as_ref().ok(),
            Some(value),
            "strict and lenient decoding disagree"
        );
        assert_eq!(
            value.to_vec(),
            data,
            "a strictly valid document is not its own canonical encoding"
        );
        let raw = match value {
            Value::Dict(d) => d.raw(),
            Value::List(l) => l.raw(),
            _ => Some(data),
        };
        assert_eq!(raw, Some(data), "raw span of the top-level value");
    }
    for value in [strict, lenient].iter().flatten() {
        let encoded = value.to_vec();
        let again = bencode::decode(&encoded).expect("a re-encoded value decodes strictly");
        assert_eq!(&again, value, "re-encoding changed the value");
    }
}

/// Magnet links: parse (bytes as lossy UTF-8); a link that parses formats to one that parses to
/// the same magnet and formats the same again.
pub fn magnet(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(magnet) = Magnet::parse(&text) else {
        return;
    };
    let formatted = magnet.to_string();
    if formatted.len() > MAX_URI_LEN {
        // Percent-encoding can triple a value's size; such a link is over the parse limit.
        return;
    }
    let again = Magnet::parse(&formatted)
        .unwrap_or_else(|e| panic!("formatted magnet {formatted:?} does not parse: {e}"));
    assert_eq!(again, magnet, "format then parse changed the magnet");
    assert_eq!(again.to_string(), formatted, "formatting is not stable");
}
