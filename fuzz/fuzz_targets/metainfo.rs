//! libFuzzer target: `cargo +nightly fuzz run metainfo` (see fuzz/README.md).
//!
//! Not yet listed in fuzz/Cargo.toml: it needs `bitshoal_core::metainfo` and the matching
//! `bitshoal_conformance::fuzz_checks::metainfo`, which calls
//! `bitshoal_core::metainfo::Metainfo::from_bytes(data)` and must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bitshoal_conformance::fuzz_checks::metainfo(data));
