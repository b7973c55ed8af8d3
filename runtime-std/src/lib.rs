//! The blocking runtime of bitshoal and the IO services both runtimes share.
pub mod create;
