//! The blocking runtime of bitshoal and the IO services both runtimes share.
pub mod create;
pub mod hash;
pub mod resolve;
pub mod storage;
pub mod workers;

#[cfg(test)]
mod testutil;
