//! The deterministic simulator, golden vectors, hostile-input corpora and interop tests of bitshoal.
//!
//! - [`sim`]: the deterministic simulator (virtual clock, simulated network, in-memory disks,
//!   fake peers), usable by embedders as a dev-dependency.
//! - [`fuzz_checks`]: the checks the fuzz targets run, shared with the stable replay test.
//! - [`interop`]: child processes, free ports and opentracker for the interop tests.

#![warn(missing_docs)]

pub mod fuzz_checks;
pub mod interop;
pub mod sim;
