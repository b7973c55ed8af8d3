//! Peer addresses from the BEP 9 `x.pe` parameter.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use super::MagnetError;

/// A peer named by a magnet's `x.pe` parameter (BEP 9): an IP literal or a host name, with a port.
///
/// BEP 9 allows `hostname:port`, `ipv4-literal:port` and `[ipv6-literal]:port`. IP literals become
/// a [`SocketAddr`] the runtime can connect to directly; host names are kept for it to resolve.
/// (libtorrent drops host names; we keep them since BEP 9 names them.) Port 0 is rejected: no
/// peer listens there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IPv4 or IPv6 literal with a port.
    ///
    /// Only the address, port and (for IPv6) scope id survive formatting; keep `flowinfo` zero.
    Ip(SocketAddr),
    /// A host name with a port, still to be resolved.
    Host(HostPort),
}

/// A validated host name and port, as in `x.pe=peer.example.org:6881`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The longest host name accepted, in bytes (the DNS limit).
    pub const MAX_HOST_LEN: usize = 253;

    /// Checks and builds a host-name address.
    ///
    /// The host must be 1 to [`HostPort::MAX_HOST_LEN`] bytes of ASCII letters, digits, `-`, `_`
    /// and `.`, and not an IPv4 literal (use [`PeerAddr::Ip`] for those); the port must not be 0.
    /// Fails with [`MagnetError::BadPeerAddress`].
    pub fn new(host: &str, port: u16) -> Result<Self, MagnetError> {
        let valid_chars = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if host.is_empty()
            || host.len() > Self::MAX_HOST_LEN
            || !valid_chars
            || port == 0
            || host.parse::<Ipv4Addr>().is_ok()
        {
            return Err(MagnetError::BadPeerAddress);
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// The host name, as written in the magnet.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for PeerAddr {
    type Err = MagnetError;

    /// Parses `ipv4:port`, `[ipv6]:port` or `host:port`.
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(MagnetError::BadPeerAddress);
            }
            return Ok(Self::Ip(addr));
        }
        let (host, port) = s.rsplit_once(':').ok_or(MagnetError::BadPeerAddress)?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MagnetError::BadPeerAddress);
        }
        let port = port.parse().map_err(|_| MagnetError::BadPeerAddress)?;
        HostPort::new(host, port).map(Self::Host)
    }
}

impl fmt::Display for PeerAddr {
    /// The `x.pe` form: `1.2.3.4:6881`, `[::1]:6881` or `host:6881`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Host(hp) => write!(f, "{}:{}", hp.host, hp.port),
        }
    }
}
