//! The deterministic simulator, golden vectors, hostile-input corpora and interop tests of bitshoal.

pub mod fuzz_checks;
//!
//! - [`sim`]: the deterministic simulator (virtual clock, simulated network, in-memory disks,
//!   fake peers), usable by embedders as a dev-dependency.

#![warn(missing_docs)]

pub mod sim;
