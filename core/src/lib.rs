//! The sans-IO core of bitshoal.
//!
//! Every machine in this crate is deterministic: it is fed inputs (bytes, datagrams, timer ticks,
//! disk and hash results) and emits outputs. It opens no sockets or files, starts no threads,
//! reads no clock and draws no randomness except from a seeded generator it is given.
//!
//! Modules so far:
//! - [`bencode`]: the borrowing bencode decoder (with raw spans and limits) and the encoder.
//! - [`id`]: typed identifiers: info-hashes (v1 SHA-1, v2 SHA-256) and peer ids.
//! - [`magnet`]: magnet links (BEP 9, 52, 53): parsing and formatting.
//! - [`merkle`]: the BEP 52 SHA-256 merkle trees over 16 KiB blocks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bencode;
pub mod id;
pub mod magnet;
pub mod merkle;
