//! The event loop's BEP 14 sockets: `bitshoal-std`'s [`LsdSockets`] made non-blocking and
//! registered with the loop's poll, opened only when the session has LSD on.
//!
//! Reads are bounded per readiness event ([`MAX_READS`] kept, [`MAX_DRAIN`] read): a LAN
//! flooding the group cannot starve the loop (the session bounds what it parses too).

use std::io;
use std::net::SocketAddr;

use bitshoal_core::session::Input;
use bitshoal_std::lsd::LsdSockets;
use bytes::Bytes;
use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};

/// The most datagrams handed to the session per readiness event; the socket is still read
/// until it would block (the poll is edge-triggered), up to [`MAX_DRAIN`], the rest dropped.
const MAX_READS: usize = 64;

/// The most datagrams read (kept or dropped) per readiness event.
const MAX_DRAIN: usize = 4096;

/// The largest LSD datagram read (larger ones are cut, and then refused by the parser).
const MAX_DATAGRAM: usize = 2048;

/// The sockets for the loop: (IPv4, IPv6), registered under `v4` and `v6`; none when
/// `enabled` is false.
pub(crate) fn open(
    poll: &Poll,
    enabled: bool,
    v4: Token,
    v6: Token,
) -> io::Result<(Option<UdpSocket>, Option<UdpSocket>)> {
    if !enabled {
        return Ok((None, None));
    }
    let (a, b) = LsdSockets::open(None)?.into_parts();
    let register = |socket: Option<std::net::UdpSocket>, token| -> io::Result<_> {
        let Some(socket) = socket else {
            return Ok(None);
        };
        socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(socket);
        poll.registry()
            .register(&mut socket, token, Interest::READABLE)?;
        Ok(Some(socket))
    };
    Ok((register(a, v4)?, register(b, v6)?))
}

/// Sends an announce on the socket of the group's family (lost without one, or when the
/// socket's buffer is full: the next announce comes in five minutes).
pub(crate) fn send(sockets: &(Option<UdpSocket>, Option<UdpSocket>), to: SocketAddr, data: &[u8]) {
    let socket = if to.is_ipv4() { &sockets.0 } else { &sockets.1 };
    if let Some(s) = socket {
        let _ = s.send_to(data, to);
    }
}

/// The datagrams waiting on `socket`, as session inputs.
pub(crate) fn receive(socket: &Option<UdpSocket>) -> Vec<Input> {
    let Some(socket) = socket else {
        return Vec::new();
    };
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut inputs = Vec::new();
    for _ in 0..MAX_DRAIN {
        match socket.recv_from(&mut buf) {
            Ok(_) if inputs.len() >= MAX_READS => {}
            Ok((n, from)) => inputs.push(Input::LsdDatagram {
                from,
                data: Bytes::copy_from_slice(&buf[..n]),
            }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    inputs
}
