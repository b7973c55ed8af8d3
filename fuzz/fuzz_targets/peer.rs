//! libFuzzer target: `cargo +nightly fuzz run peer` (see fuzz/README.md): arbitrary bytes into a
//! Session connection through the simulator.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bitshoal_conformance::fuzz_checks::peer(data));
