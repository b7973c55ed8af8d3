//! The BEP 10 extension handshake: the dictionary sent as extended message 0.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes};

use super::{Message, WireError};
use crate::bencode::{self, put_bytes, DecodeOptions, Dict, DictWriter, Value};

/// The most entries of an `m` dictionary we accept; more is an error.
pub const MAX_EXTENSIONS: usize = 64;
/// The longest extension name we keep, in bytes; longer names are ignored (no extension we could
/// speak has one).
pub const MAX_EXTENSION_NAME: usize = 64;

/// Bencode limits for a remote extension handshake: it is a flat dictionary with one nested
/// dictionary, but clients add their own keys, so allow a little depth.
const OPTIONS: DecodeOptions = DecodeOptions::LENIENT
    .with_max_depth(8)
    .with_max_tokens(4096);

/// The BEP 10 extension handshake dictionary (extended message id 0).
///
/// All fields are optional (BEP 10). Decoding is lenient: a known key with a value of the wrong
/// type or out of range is ignored as if absent, and unknown keys are ignored, as BEP 10 asks.
/// Encoding writes the keys that are set, in sorted order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name to the extended message id the sender wants to receive it under.
    /// Id 0 means the extension is disabled; later handshakes update this map additively
    /// (BEP 10). Names are bytes: they need not be UTF-8 (BEP 10's own example is not).
    pub extensions: BTreeMap<Vec<u8>, u8>,
    /// `v`: client name and version (UTF-8; invalid sequences replaced).
    pub client: Option<String>,
    /// `p`: the sender's TCP listen port.
    pub listen_port: Option<u16>,
    /// `reqq`: how many outstanding requests the sender keeps without dropping any.
    pub request_queue: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub your_ip: Option<IpAddr>,
    /// `ipv4`: the sender's IPv4 address, if it has one.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's IPv6 address, if it has one.
    pub ipv6: Option<Ipv6Addr>,
    /// `metadata_size`: the size of the info dictionary in bytes (BEP 9).
    pub metadata_size: Option<u64>,
    /// `upload_only`: the sender only uploads (BEP 21).
    pub upload_only: bool,
}

impl ExtendedHandshake {
    /// The extended message id of the handshake (BEP 10).
    pub const ID: u8 = 0;

    /// The id the sender assigned to extension `name`, if it supports it (0 means it does not).
    pub fn extension_id(&self, name: &[u8]) -> Option<u8> {
        self.extensions.get(name).copied().filter(|&id| id != 0)
    }

    /// Decodes the payload of an extended message with id 0.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let value = bencode::decode_with(payload, OPTIONS).map_err(WireError::ExtendedHandshake)?;
        let Value::Dict(dict) = value else {
            return Err(WireError::ExtendedHandshakeNotDict);
        };
        let int = |key: &[u8]| dict.get(key).and_then(Value::as_int);
        let bytes = |key: &[u8]| dict.get(key).and_then(Value::as_bytes);
        Ok(Self {
            extensions: match dict.get(b"m") {
                Some(Value::Dict(m)) => extensions(m)?,
                _ => BTreeMap::new(),
            },
            client: bytes(b"v").map(|v| String::from_utf8_lossy(v).into_owned()),
            listen_port: int(b"p")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0),
            request_queue: int(b"reqq").and_then(|q| u32::try_from(q).ok()),
            your_ip: bytes(b"yourip").and_then(|b| match b.len() {
                4 => ipv4(b).map(IpAddr::V4),
                16 => ipv6(b).map(IpAddr::V6),
                _ => None,
            }),
            ipv4: bytes(b"ipv4").and_then(ipv4),
            ipv6: bytes(b"ipv6").and_then(ipv6),
            metadata_size: int(b"metadata_size").and_then(|s| u64::try_from(s).ok()),
            upload_only: int(b"upload_only").is_some_and(|u| u != 0),
        })
    }

    /// Writes the bencoded dictionary into `buf` (the payload after the extended id).
    pub fn encode(&self, buf: &mut impl BufMut) {
        // Keys in ascending byte order, as bencode requires.
        let mut d = DictWriter::new(buf);
        if let Some(ip) = self.ipv4 {
            d.bytes(b"ipv4", &ip.octets());
        }
        if let Some(ip) = self.ipv6 {
            d.bytes(b"ipv6", &ip.octets());
        }
        if !self.extensions.is_empty() {
            let m = d.value(b"m");
            m.put_u8(b'd');
            for (name, id) in &self.extensions {
                put_bytes(m, name);
                bencode::put_int(m, i64::from(*id));
            }
            m.put_u8(b'e');
        }
        if let Some(size) = self.metadata_size {
            // Sizes over i64::MAX cannot be bencoded; no real info dictionary comes close.
            d.int(b"metadata_size", i64::try_from(size).unwrap_or(i64::MAX));
        }
        if let Some(port) = self.listen_port {
            d.int(b"p", i64::from(port));
        }
        if let Some(q) = self.request_queue {
            d.int(b"reqq", i64::from(q));
        }
        if self.upload_only {
            d.int(b"upload_only", 1);
        }
        if let Some(v) = &self.client {
            d.bytes(b"v", v.as_bytes());
        }
        match self.your_ip {
            Some(IpAddr::V4(ip)) => d.bytes(b"yourip", &ip.octets()),
            Some(IpAddr::V6(ip)) => d.bytes(b"yourip", &ip.octets()),
            None => {}
        }
        d.finish();
    }

    /// This handshake as a ready-to-encode [`Message::Extended`] with id 0.
    pub fn to_message(&self) -> Message {
        let mut payload = Vec::new();
        self.encode(&mut payload);
        Message::Extended {
            id: Self::ID,
            payload: Bytes::from(payload),
        }
    }
}

/// Reads the `m` dictionary: names of at most [`MAX_EXTENSION_NAME`] bytes with ids 0-255.
fn extensions(m: &Dict<'_>) -> Result<BTreeMap<Vec<u8>, u8>, WireError> {
    if m.len() > MAX_EXTENSIONS {
        return Err(WireError::TooManyExtensions {
            limit: MAX_EXTENSIONS,
        });
    }
    Ok(m.iter()
        .filter(|(name, _)| name.len() <= MAX_EXTENSION_NAME)
        .filter_map(|(name, id)| {
            let id = u8::try_from(id.as_int()?).ok()?;
            Some((name.to_vec(), id))
        })
        .collect())
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from)
}

fn ipv6(b: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from)
}
