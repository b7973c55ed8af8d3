//! The BEP 14 local service discovery sockets both runtimes use: one UDP socket per address
//! family, bound to the LSD port with address reuse (other clients on the host listen there
//! too) and joined to the family's multicast group.
//!
//! A client opens them only when the session's [`Config::lsd`](bitshoal_core::session::Config)
//! is set; datagrams read from them go to the session as `Input::LsdDatagram`, and the
//! session's `Output::SendLsd` goes out with [`LsdSockets::send`] on the socket of the
//! group's family. Multicast loopback stays on, so two clients on one host hear each other
//! (the session ignores its own announces by their cookie). The hop limit is 1: announces
//! stay on the local network.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use bitshoal_core::lsd::{LSD_GROUP_V4, LSD_GROUP_V6, LSD_PORT};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The LSD sockets: IPv4 and IPv6, whichever could be opened.
#[derive(Debug)]
pub struct LsdSockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl LsdSockets {
    /// Opens the sockets, joining the groups on the interface the system picks for them (or,
    /// for IPv4, the interface with address `interface`). Fails only when neither family can
    /// be opened (the error is the IPv4 one).
    pub fn open(interface: Option<Ipv4Addr>) -> io::Result<Self> {
        let v4 = open_v4(interface.unwrap_or(Ipv4Addr::UNSPECIFIED));
        let v6 = open_v6().ok();
        match (v4, v6) {
            (Err(e), None) => Err(e),
            (v4, v6) => Ok(Self { v4: v4.ok(), v6 }),
        }
    }

    /// The IPv4 socket, if open.
    pub fn v4(&self) -> Option<&UdpSocket> {
        self.v4.as_ref()
    }

    /// The IPv6 socket, if open.
    pub fn v6(&self) -> Option<&UdpSocket> {
        self.v6.as_ref()
    }

    /// Takes the sockets out (to hand them to an event loop).
    pub fn into_parts(self) -> (Option<UdpSocket>, Option<UdpSocket>) {
        (self.v4, self.v6)
    }

    /// Sends one announce to `to` (a group) on the socket of its family; without that socket,
    /// or when the send fails, the datagram is lost, as UDP may lose it.
    pub fn send(&self, to: SocketAddr, data: &[u8]) {
        send_lsd(self.v4.as_ref(), self.v6.as_ref(), to, data);
    }
}

/// Sends one announce on the socket of `to`'s family (see [`LsdSockets::send`]); for runtimes
/// that hold the sockets in their own wrappers.
pub fn send_lsd(v4: Option<&UdpSocket>, v6: Option<&UdpSocket>, to: SocketAddr, data: &[u8]) {
    let socket = if to.is_ipv4() { v4 } else { v6 };
    if let Some(s) = socket {
        let _ = s.send_to(data, to);
    }
}

fn open_v4(interface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), LSD_PORT);
    socket.bind(&SockAddr::from(bind))?;
    socket.join_multicast_v4(LSD_GROUP_V4.ip(), &interface)?;
    if !interface.is_unspecified() {
        socket.set_multicast_if_v4(&interface)?;
    }
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(1)?;
    Ok(socket.into())
}

fn open_v6() -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    let bind = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), LSD_PORT);
    socket.bind(&SockAddr::from(bind))?;
    socket.join_multicast_v6(LSD_GROUP_V6.ip(), 0)?;
    socket.set_multicast_loop_v6(true)?;
    socket.set_multicast_hops_v6(1)?;
    Ok(socket.into())
}
