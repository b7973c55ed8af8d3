//! Shared fixtures for bitshoal benchmarks.
