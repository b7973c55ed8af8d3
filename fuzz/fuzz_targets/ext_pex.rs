//! libFuzzer target: `cargo +nightly fuzz run ext_pex` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bitshoal_conformance::fuzz_checks::ext_pex(data));
