//! The sans-IO core of bitshoal.
//!
//! Every machine in this crate is deterministic: it is fed inputs (bytes, datagrams, timer ticks,
//! disk and hash results) and emits outputs. It opens no sockets or files, starts no threads,
//! reads no clock and draws no randomness except from a seeded generator it is given.
//!
//! The entry point is [`session::Session`]. Modules:
//! - [`bencode`]: the borrowing bencode decoder (with raw spans and limits) and the encoder.
//! - [`bitfield`]: sets of pieces in BEP 3 wire layout.
//! - [`choker`]: who we upload to: tit-for-tat, optimistic unchoke, seed rotation.
//! - [`create`]: torrent creation (v1, v2, hybrid): the hashing plan and the `.torrent` assembler.
//! - [`dht`]: the Mainline DHT (BEP 5, 32, 33, 42, 43, 51): KRPC codec, routing table,
//!   lookups, peer store, and the sans-IO node machine.
//! - [`error`]: the error taxonomy ([`error::Fault`]: who is at fault).
//! - [`ext`]: extension protocol payloads (BEP 9, 11, 21, 28, 54, 55), the BEP 9 metadata
//!   assembler, PEX and tracker-exchange policies, and BEP 40 peer priority.
//! - [`id`]: typed identifiers: info-hashes (v1 SHA-1, v2 SHA-256), peer, torrent and
//!   connection ids.
//! - [`lsd`]: BEP 14 local service discovery: the announce codec and the announce policy.
//! - [`magnet`]: magnet links (BEP 9, 52, 53): parsing and formatting.
//! - [`merkle`]: the BEP 52 SHA-256 merkle trees over 16 KiB blocks.
//! - [`metainfo`]: `.torrent` files (v1, v2, hybrid), safe paths, and the piece/file layout.
//! - [`peer`]: one connection's machine (handshake, choke/interest, request pipeline, limits).
//! - [`picker`]: which blocks to request: availability, rarest first, priorities, streaming
//!   deadlines, endgame.
//! - [`rate`]: token buckets for upload and download rate limits.
//! - [`resume`]: resume data (verified pieces, file sizes and times) and its bencode codec.
//! - [`rng`]: the seeded PRNG, the core's only source of randomness.
//! - [`session`]: all torrents and connections behind one sans-IO API.
//! - [`time`]: the caller-supplied [`time::Instant`]; the core never reads a clock.
//! - [`tracker`]: HTTP and UDP tracker codecs (BEP 3, 7, 15, 23, 24, 31, 41, 48), the UDP
//!   tracker client machine, and the per-torrent tier policy (BEP 12, 27).
//! - [`wire`]: the peer wire protocol codec: handshake, messages, extension handshake, peer ids.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod create;
pub mod dht;
pub mod error;
pub mod ext;
pub mod id;
pub mod lsd;
pub mod magnet;
pub mod merkle;
pub mod metainfo;
pub mod peer;
pub mod picker;
pub mod rate;
pub mod resume;
pub mod rng;
pub mod session;
mod slots;
mod smart_ban;
pub mod time;
mod torrent;
pub mod tracker;
pub mod wire;
