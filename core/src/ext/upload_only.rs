//! BEP 21 partial seeds: the `upload_only` extension message.
//!
//! BEP 21 itself only defines the `upload_only` key of the extension handshake
//! ([`ExtendedHandshake::upload_only`](crate::wire::ExtendedHandshake::upload_only)). Clients
//! (libtorrent first) also offer an `upload_only` *message* in the `m` dictionary, to change the
//! state later without a new handshake: its payload is one byte, non-zero for upload-only.

use bytes::BufMut;

use super::ExtError;

/// One `upload_only` message: whether the sender now only uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UploadOnly(pub bool);

impl UploadOnly {
    /// Decodes an `upload_only` payload: one byte, non-zero meaning upload-only. Bytes after the
    /// first are ignored (as libtorrent does); an empty payload is an error.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtError> {
        match payload.first() {
            Some(&b) => Ok(Self(b != 0)),
            None => Err(ExtError::BadLength {
                what: "upload_only",
                expected: 1,
                actual: 0,
            }),
        }
    }

    /// Writes the one-byte payload into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(u8::from(self.0));
    }
}
