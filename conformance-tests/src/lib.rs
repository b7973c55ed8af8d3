//! The deterministic simulator, golden vectors, hostile-input corpora and interop tests of bitshoal.

pub mod fuzz_checks;
