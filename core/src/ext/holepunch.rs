//! BEP 55 `ut_holepunch`: asking a relaying peer to introduce us to a peer behind a NAT.
//!
//! The payload is binary: `msg_type` (1 byte), `addr_type` (1 byte: 0 IPv4, 1 IPv6), the address
//! (4 or 16 bytes), the port (2 bytes) and `err_code` (4 bytes, 0 except in error messages), all
//! big-endian.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BufMut;

use super::ExtError;

/// One `ut_holepunch` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolepunchMessage {
    /// `0x00`: asks the relaying peer to send `connect` to us and to this target.
    Rendezvous(SocketAddr),
    /// `0x01`: start a uTP connection to this endpoint.
    Connect(SocketAddr),
    /// `0x02`: the rendezvous with this target cannot be done.
    Error {
        /// The target of the failed rendezvous (as it was in that message).
        addr: SocketAddr,
        /// Why.
        error: HolepunchError,
    },
}

/// Why a rendezvous failed (BEP 55 error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HolepunchError {
    /// 1: the target endpoint is invalid.
    NoSuchPeer = 1,
    /// 2: the relaying peer is not connected to the target.
    NotConnected = 2,
    /// 3: the target does not support holepunching.
    NoSupport = 3,
    /// 4: the target is the relaying peer itself.
    NoSelf = 4,
}

impl HolepunchError {
    /// The error for a BEP 55 error code.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::NoSuchPeer,
            2 => Self::NotConnected,
            3 => Self::NoSupport,
            4 => Self::NoSelf,
            _ => return None,
        })
    }
}

impl HolepunchMessage {
    /// The size of a message carrying an IPv4 address.
    pub const LEN_V4: usize = 12;
    /// The size of a message carrying an IPv6 address.
    pub const LEN_V6: usize = 24;

    /// The endpoint the message is about.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Rendezvous(a) | Self::Connect(a) | Self::Error { addr: a, .. } => *a,
        }
    }

    /// Decodes a `ut_holepunch` payload. The length must be exactly that of its address type;
    /// the error code of a non-error message is ignored. An unknown `msg_type` gives
    /// [`ExtError::UnknownMessageType`] (to be ignored).
    pub fn decode(payload: &[u8]) -> Result<Self, ExtError> {
        let too_short = || ExtError::BadLength {
            what: "ut_holepunch",
            expected: Self::LEN_V4,
            actual: payload.len(),
        };
        let [msg_type, addr_type, rest @ ..] = payload else {
            return Err(too_short());
        };
        let (ip, rest) = match addr_type {
            0 => {
                let (ip, rest) = rest.split_first_chunk::<4>().ok_or_else(too_short)?;
                (IpAddr::V4(Ipv4Addr::from(*ip)), rest)
            }
            1 => {
                let (ip, rest) = rest.split_first_chunk::<16>().ok_or_else(too_short)?;
                (IpAddr::V6(Ipv6Addr::from(*ip)), rest)
            }
            &other => return Err(ExtError::BadAddressType(other)),
        };
        let expected = if ip.is_ipv4() {
            Self::LEN_V4
        } else {
            Self::LEN_V6
        };
        let Some((port, code)) = rest.split_first_chunk::<2>().and_then(|(p, rest)| {
            <[u8; 4]>::try_from(rest)
                .ok()
                .map(|c| (u16::from_be_bytes(*p), u32::from_be_bytes(c)))
        }) else {
            return Err(ExtError::BadLength {
                what: "ut_holepunch",
                expected,
                actual: payload.len(),
            });
        };
        let addr = SocketAddr::new(ip, port);
        match msg_type {
            0 => Ok(Self::Rendezvous(addr)),
            1 => Ok(Self::Connect(addr)),
            2 => {
                let error =
                    HolepunchError::from_code(code).ok_or(ExtError::UnknownErrorCode(code))?;
                Ok(Self::Error { addr, error })
            }
            &other => Err(ExtError::UnknownMessageType(i64::from(other))),
        }
    }

    /// Writes the payload into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let (msg_type, code) = match self {
            Self::Rendezvous(_) => (0, 0),
            Self::Connect(_) => (1, 0),
            Self::Error { error, .. } => (2, *error as u32),
        };
        buf.put_u8(msg_type);
        let addr = self.addr();
        match addr.ip() {
            IpAddr::V4(ip) => {
                buf.put_u8(0);
                buf.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                buf.put_u8(1);
                buf.put_slice(&ip.octets());
            }
        }
        buf.put_u16(addr.port());
        buf.put_u32(code);
    }
}
