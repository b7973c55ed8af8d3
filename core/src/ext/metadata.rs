//! BEP 9 `ut_metadata` messages: request, data and reject for 16 KiB pieces of the `info`
//! dictionary.
//!
//! A message is a bencoded dictionary with `msg_type` and `piece`; a `data` message adds
//! `total_size` and is followed, outside the dictionary, by the piece's bytes. Decoding hands
//! those bytes out as a [`Bytes`] slice of the payload (no copy); encoding writes the dictionary
//! into a caller's buffer and returns the bytes to send after it (a vectored write), like
//! [`wire::Message::encode`](crate::wire::Message::encode).

use bytes::{BufMut, Bytes};

use super::ExtError;
use crate::bencode::{self, DictWriter, Value};

/// The size of every metadata piece but the last (BEP 9: 16 KiB).
pub const METADATA_PIECE_SIZE: usize = 16 * 1024;

/// One BEP 9 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for one piece.
    Request {
        /// The piece index.
        piece: u32,
    },
    /// `msg_type` 1: one piece of the metadata.
    Data {
        /// The piece index.
        piece: u32,
        /// `total_size`: the size of the whole metadata, as the sender claims.
        total_size: u64,
        /// The piece's bytes (at most [`METADATA_PIECE_SIZE`]).
        data: Bytes,
    },
    /// `msg_type` 2: the sender does not have that piece.
    Reject {
        /// The piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// The piece index the message concerns.
    pub fn piece(&self) -> u32 {
        match self {
            Self::Request { piece } | Self::Data { piece, .. } | Self::Reject { piece } => *piece,
        }
    }

    /// Decodes the payload of a `ut_metadata` extended message.
    ///
    /// An unknown `msg_type` gives [`ExtError::UnknownMessageType`], which BEP 9 says to ignore.
    /// Bytes after the dictionary of a request or reject are ignored; those of a data message
    /// longer than [`METADATA_PIECE_SIZE`] are an error.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtError> {
        let (value, consumed) =
            bencode::decode_prefix(payload, super::OPTIONS).map_err(ExtError::Bencode)?;
        let Value::Dict(dict) = value else {
            return Err(ExtError::NotADict);
        };
        let int = |key: &'static str| -> Result<i64, ExtError> {
            dict.get(key.as_bytes())
                .ok_or(ExtError::MissingKey(key))?
                .as_int()
                .ok_or(ExtError::BadValue(key))
        };
        let msg_type = int("msg_type")?;
        let piece = u32::try_from(int("piece")?).map_err(|_| ExtError::BadValue("piece"))?;
        match msg_type {
            0 => Ok(Self::Request { piece }),
            2 => Ok(Self::Reject { piece }),
            1 => {
                let total_size = u64::try_from(int("total_size")?)
                    .map_err(|_| ExtError::BadValue("total_size"))?;
                let data = payload.slice(consumed..);
                if data.len() > METADATA_PIECE_SIZE {
                    return Err(ExtError::TooLong {
                        what: "metadata piece",
                        limit: METADATA_PIECE_SIZE,
                    });
                }
                Ok(Self::Data {
                    piece,
                    total_size,
                    data,
                })
            }
            other => Err(ExtError::UnknownMessageType(other)),
        }
    }

    /// Writes the bencoded dictionary into `buf` and returns a data message's bytes, which must
    /// be sent right after it.
    #[must_use = "a data message's bytes must be sent right after the dictionary"]
    pub fn encode(&self, buf: &mut impl BufMut) -> Option<Bytes> {
        let (msg_type, piece) = match self {
            Self::Request { piece } => (0, piece),
            Self::Data { piece, .. } => (1, piece),
            Self::Reject { piece } => (2, piece),
        };
        let mut d = DictWriter::new(buf);
        d.int(b"msg_type", msg_type);
        d.int(b"piece", i64::from(*piece));
        let data = if let Self::Data {
            total_size, data, ..
        } = self
        {
            // Sizes over i64::MAX cannot be bencoded; no info dictionary comes close.
            d.int(
                b"total_size",
                i64::try_from(*total_size).unwrap_or(i64::MAX),
            );
            Some(data.clone())
        } else {
            None
        };
        d.finish();
        data
    }

    /// The whole payload in one buffer (dictionary, then any data): for tests and small sends.
    pub fn to_payload(&self) -> Bytes {
        let mut buf = Vec::new();
        if let Some(data) = self.encode(&mut buf) {
            buf.extend_from_slice(&data);
        }
        Bytes::from(buf)
    }
}
