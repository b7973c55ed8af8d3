//! The subcommands of the `bitshoal` binary, one module each.

pub(crate) mod create;
pub(crate) mod demo;
pub(crate) mod dht_state;
pub(crate) mod download;
pub(crate) mod info;
pub(crate) mod magnet;
pub(crate) mod options;
pub(crate) mod progress;
pub(crate) mod seed;
pub(crate) mod transfer;
pub(crate) mod verify;

/// What a subcommand returns: its error becomes one line on stderr and a non-zero exit code.
pub(crate) type CliResult = Result<(), Box<dyn std::error::Error>>;
