//! BEP 54 `lt_donthave`: the sender no longer has a piece it advertised.

use bytes::BufMut;

use super::ExtError;

/// One `lt_donthave` message: the payload is the 4-byte big-endian piece index (BEP 54).
///
/// The index is as received: check it against the torrent before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DontHave {
    /// The piece the sender no longer has.
    pub piece: u32,
}

impl DontHave {
    /// The payload size (BEP 54: exactly one piece index).
    pub const LEN: usize = 4;

    /// Decodes an `lt_donthave` payload: exactly four bytes.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtError> {
        let bytes = <[u8; 4]>::try_from(payload).map_err(|_| ExtError::BadLength {
            what: "lt_donthave",
            expected: Self::LEN,
            actual: payload.len(),
        })?;
        Ok(Self {
            piece: u32::from_be_bytes(bytes),
        })
    }

    /// Writes the payload into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.piece);
    }
}
