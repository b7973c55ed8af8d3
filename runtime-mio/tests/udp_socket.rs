//! Both runtimes put their UDP socket (UDP trackers) beside the TCP listener: the same IP and,
//! when it is free, the same port; and a datagram sent to it reaches the session (a stray one
//! is ignored without harm).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::AnyClient;

#[test]
fn udp_socket_shares_the_listeners_ip_and_port_on_both_runtimes() {
    for blocking in [false, true] {
        let mut client = AnyClient::loopback(blocking, 7).unwrap();
        let tcp = client.local_addr();
        let udp = client.udp_addr();
        assert_eq!(udp.ip(), tcp.ip(), "blocking: {blocking}");
        assert_eq!(udp.port(), tcp.port(), "blocking: {blocking}");
        // Garbage from a stranger: the session drops it and the client keeps turning.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"not a tracker answer", udp).unwrap();
        for _ in 0..3 {
            client.turn(Duration::from_millis(10));
        }
    }
}

#[test]
fn udp_socket_falls_back_to_another_port_when_the_listeners_is_taken() {
    // Take a UDP port first, then ask both runtimes to listen on the same TCP port.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut checked = 0;
    for blocking in [false, true] {
        let Ok(client) = AnyClient::listening_on(blocking, ("127.0.0.1", port)) else {
            continue; // the TCP port happened to be in use: nothing to check
        };
        checked += 1;
        let udp = client.udp_addr();
        assert_eq!(udp.ip(), client.local_addr().ip());
        assert_ne!(udp.port(), port, "blocking: {blocking}");
        drop(client);
    }
    assert!(checked > 0, "TCP port {port} was in use for both runtimes");
}
