//! libFuzzer target: `cargo +nightly fuzz run merkle_proof` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bitshoal_conformance::fuzz_checks::merkle_proof(data));
