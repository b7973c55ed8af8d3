//! libFuzzer target: `cargo +nightly fuzz run ext_misc` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bitshoal_conformance::fuzz_checks::ext_misc(data));
