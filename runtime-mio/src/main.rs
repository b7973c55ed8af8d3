//! The `bitshoal` command-line client.

fn main() {}
