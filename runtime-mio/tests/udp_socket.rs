//! Both runtimes put their UDP socket (UDP trackers) beside the TCP listener: the same IP and,
//! when it is free, the same port; and a datagram sent to it reaches the session (a stray one
//! is ignored without harm).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use bitshoal_mio::client::{Client, TorrentClient};
use bitshoal_std::blocking::BlockingClient;

#[test]
fn udp_socket_shares_the_listeners_ip_and_port_on_both_runtimes() {
    shares_the_listeners_ip_and_port::<Client>();
    shares_the_listeners_ip_and_port::<BlockingClient>();
}

fn shares_the_listeners_ip_and_port<C: TorrentClient>() {
    let runtime = std::any::type_name::<C>();
    let mut client: C = common::loopback(7).unwrap();
    let tcp = client.local_addr().unwrap();
    let udp = client.udp_addr().unwrap();
    assert_eq!(udp.ip(), tcp.ip(), "{runtime}");
    assert_eq!(udp.port(), tcp.port(), "{runtime}");
    // Garbage from a stranger: the session drops it and the client keeps turning.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"not a tracker answer", udp).unwrap();
    for _ in 0..3 {
        client.turn(Duration::from_millis(10)).unwrap();
    }
}

#[test]
fn udp_socket_falls_back_to_another_port_when_the_listeners_is_taken() {
    // Take a UDP port first, then ask both runtimes to listen on the same TCP port.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let checked =
        u32::from(falls_back::<Client>(port)) + u32::from(falls_back::<BlockingClient>(port));
    assert!(checked > 0, "TCP port {port} was in use for both runtimes");
}

/// Whether a client on `C` could listen on TCP `port` (whose UDP twin is taken), checking
/// that its UDP socket went elsewhere.
fn falls_back<C: TorrentClient>(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(client) = common::client_on::<C>(1, addr) else {
        return false; // the TCP port happened to be in use: nothing to check
    };
    let udp = client.udp_addr().unwrap();
    assert_eq!(udp.ip(), client.local_addr().unwrap().ip());
    assert_ne!(udp.port(), port, "{}", std::any::type_name::<C>());
    true
}
