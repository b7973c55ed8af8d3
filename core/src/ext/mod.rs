//! Extension protocol payloads (BEP 10 extended messages) and the policies around them.
//!
//! Pure codecs and small sans-IO machines; none of them knows about connections. The `peer` and
//! `session` machines take the payload of a [`Message::Extended`](crate::wire::Message::Extended),
//! look its id up in the ids negotiated in the extension handshake
//! ([`ExtendedHandshake`](crate::wire::ExtendedHandshake)), and hand the payload to the decoder of
//! that extension:
//!
//! | name in `m` ([`names`]) | BEP | module | payload |
//! |---|---|---|---|
//! | `ut_metadata` | 9 | [`metadata`] | bencoded dict, then raw data for `data` messages |
//! | `ut_pex` | 11 | [`pex`] | bencoded dict of compact peer lists |
//! | `upload_only` | 21 | [`upload_only`] | one byte (also a key of the handshake itself) |
//! | `lt_tex` | 28 | [`tex`] | bencoded dict with a list of tracker URLs |
//! | `lt_donthave` | 54 | [`donthave`] | a 4-byte piece index |
//! | `ut_holepunch` | 55 | [`holepunch`] | binary: type, address, port, error code |
//!
//! Also here: [`MetadataAssembler`], the machine that fetches and verifies a torrent's `info`
//! dictionary over BEP 9; [`PexState`], what PEX tells one peer and when; and
//! [`peer_priority`], the BEP 40 canonical peer priority.
//!
//! Decoders take the payload (after the extended id byte) and return a typed [`ExtError`];
//! encoders write the payload into a caller's [`BufMut`](bytes::BufMut). Every decoder bounds
//! what it keeps: list lengths, string lengths and bencode depth and size.
//!
//! Private torrents (BEP 27) must not use PEX, LSD or tracker exchange: the machines here cannot
//! know whether a torrent is private, so the caller must not create a [`PexState`] or a
//! [`tex::TexState`] for one (and [`crate::lsd::LsdAnnouncer`] takes the flag per torrent).

mod assembler;
pub mod donthave;
mod error;
pub mod holepunch;
pub mod metadata;
pub mod names;
pub mod pex;
mod priority;
pub mod tex;
pub mod upload_only;

pub use assembler::{
    AssemblerError, MetadataAssembler, Progress, MAX_OUTSTANDING_PER_PEER, REJECT_BACKOFF,
    REQUEST_TIMEOUT,
};
pub use error::ExtError;
pub use metadata::{MetadataMessage, METADATA_PIECE_SIZE};
pub use pex::{PexFlags, PexMessage, PexState};
pub use priority::peer_priority;

use crate::bencode::{self, DecodeOptions, Dict, Value};

/// Bencode limits for extension payloads: flat dictionaries, at most one level of nesting worth
/// having, and a few hundred values.
const OPTIONS: DecodeOptions = DecodeOptions::LENIENT
    .with_max_depth(4)
    .with_max_tokens(1024);

/// Decodes a whole payload as one bencoded dictionary (trailing bytes ignored: lenient).
fn decode_dict(payload: &[u8]) -> Result<Dict<'_>, ExtError> {
    match bencode::decode_with(payload, OPTIONS).map_err(ExtError::Bencode)? {
        Value::Dict(d) => Ok(d),
        _ => Err(ExtError::NotADict),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_assembler;
