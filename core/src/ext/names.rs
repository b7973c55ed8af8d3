//! Extension names as they appear in the BEP 10 `m` dictionary, and the ids we assign to them.
//!
//! BEP 10 lets each side choose the id under which it wants to *receive* each extension; we
//! always offer the same ones (those of libtorrent, so captures from either client read alike).
//! Messages we *send* use the id the remote side chose
//! ([`ExtendedHandshake::extension_id`](crate::wire::ExtendedHandshake::extension_id)).

/// BEP 9 metadata exchange.
pub const UT_METADATA: &[u8] = b"ut_metadata";
/// BEP 11 peer exchange.
pub const UT_PEX: &[u8] = b"ut_pex";
/// BEP 21 partial seeds: the `upload_only` message (the handshake key has the same name).
pub const UPLOAD_ONLY: &[u8] = b"upload_only";
/// BEP 28 tracker exchange.
pub const LT_TEX: &[u8] = b"lt_tex";
/// BEP 54 "don't have".
pub const LT_DONTHAVE: &[u8] = b"lt_donthave";
/// BEP 55 holepunching.
pub const UT_HOLEPUNCH: &[u8] = b"ut_holepunch";

/// The extended message id we ask peers to use for `ut_metadata`.
pub const LOCAL_UT_METADATA: u8 = 2;
/// The extended message id we ask peers to use for `upload_only`.
pub const LOCAL_UPLOAD_ONLY: u8 = 3;
/// The extended message id we ask peers to use for `ut_holepunch`.
pub const LOCAL_UT_HOLEPUNCH: u8 = 4;
/// The extended message id we ask peers to use for `lt_donthave`.
pub const LOCAL_LT_DONTHAVE: u8 = 7;
/// The extended message id we ask peers to use for `ut_pex`.
pub const LOCAL_UT_PEX: u8 = 1;
/// The extended message id we ask peers to use for `lt_tex`.
pub const LOCAL_LT_TEX: u8 = 8;

/// Every extension of this module with the id we assign it, for the `m` dictionary of our
/// extension handshake. Leave out `ut_pex`, `lt_tex` (and LSD) for private torrents (BEP 27).
pub const LOCAL_IDS: &[(&[u8], u8)] = &[
    (UT_PEX, LOCAL_UT_PEX),
    (UT_METADATA, LOCAL_UT_METADATA),
    (UPLOAD_ONLY, LOCAL_UPLOAD_ONLY),
    (UT_HOLEPUNCH, LOCAL_UT_HOLEPUNCH),
    (LT_DONTHAVE, LOCAL_LT_DONTHAVE),
    (LT_TEX, LOCAL_LT_TEX),
];

/// The extension a received extended message id stands for, by the ids of [`LOCAL_IDS`].
pub fn local_name(id: u8) -> Option<&'static [u8]> {
    LOCAL_IDS.iter().find(|&&(_, i)| i == id).map(|&(n, _)| n)
}
