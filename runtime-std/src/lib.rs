//! The blocking runtime of bitshoal and the IO services both runtimes share.

/// Making `.torrent` files from files on disk.
pub mod create;
