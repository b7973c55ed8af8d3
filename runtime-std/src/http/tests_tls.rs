//! HTTPS tests: a rustls server on a loopback test thread with a certificate made by `rcgen`.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::testserver::{read_request_head, TestServer};
use super::*;

/// A self-signed certificate for `names`, and the server configuration that presents it.
fn certificate(names: &[&str]) -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the key matches the certificate");
    (cert, Arc::new(config))
}

fn roots(cert: CertificateDer<'static>) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    store.add(cert).unwrap();
    Arc::new(store)
}

/// A TLS server for `connections` connections, each answered with `response`; returns its
/// port and the request heads it read (a failed handshake reads none).
fn serve_tls(
    config: Arc<ServerConfig>,
    connections: usize,
    response: &'static [u8],
) -> (u16, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = thread::spawn(move || {
        let mut heads = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let conn = ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = StreamOwned::new(conn, tcp);
            let Some(head) = read_request_head(&mut tls) else {
                continue;
            };
            heads.push(head);
            let _ = tls.write_all(response);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        heads
    });
    (port, thread)
}

#[test]
fn https_with_a_trusted_certificate_by_ip_and_by_name() {
    let (cert, config) = certificate(&["localhost", "127.0.0.1"]);
    let (port, server) = serve_tls(
        config,
        3,
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret",
    );
    let options = HttpOptions {
        tls_roots: Some(roots(cert)),
        ..HttpOptions::default()
    };
    let client = HttpClient::new();
    for host in ["127.0.0.1", "localhost", "127.0.0.1"] {
        let response = client
            .get(&format!("https://{host}:{port}/announce?x=1"), &options)
            .unwrap();
        assert_eq!((response.status, &response.body[..]), (200, &b"secret"[..]));
    }
    let heads = server.join().unwrap();
    assert_eq!(heads.len(), 3);
    assert!(heads[1].starts_with("GET /announce?x=1 HTTP/1.1\r\n"));
    assert!(heads[1].contains(&format!("\r\nHost: localhost:{port}\r\n")));
}

#[test]
fn https_body_until_close_notify() {
    let (cert, config) = certificate(&["127.0.0.1"]);
    let (port, server) = serve_tls(config, 1, b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    let options = HttpOptions {
        tls_roots: Some(roots(cert)),
        ..HttpOptions::default()
    };
    let response = HttpClient::new()
        .get(&format!("https://127.0.0.1:{port}/"), &options)
        .unwrap();
    assert_eq!(response.body, b"until close");
    server.join().unwrap();
}

#[test]
fn untrusted_or_misnamed_certificates_are_tls_errors() {
    // Self-signed and not in the bundled roots.
    let (_, config) = certificate(&["127.0.0.1"]);
    let (port, server) = serve_tls(config, 1, b"HTTP/1.1 200 OK\r\n\r\n");
    let err = HttpClient::new()
        .get(
            &format!("https://127.0.0.1:{port}/"),
            &HttpOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, HttpError::Tls { .. }), "{err:?}");
    assert!(
        server.join().unwrap().is_empty(),
        "no request after a failed handshake"
    );

    // Trusted, but for another name.
    let (cert, config) = certificate(&["tracker.example"]);
    let (port, server) = serve_tls(config, 1, b"HTTP/1.1 200 OK\r\n\r\n");
    let options = HttpOptions {
        tls_roots: Some(roots(cert)),
        ..HttpOptions::default()
    };
    let err = HttpClient::new()
        .get(&format!("https://127.0.0.1:{port}/"), &options)
        .unwrap_err();
    assert!(matches!(err, HttpError::Tls { .. }), "{err:?}");
    assert!(server.join().unwrap().is_empty());
}

#[test]
fn a_server_that_never_starts_the_handshake_times_out() {
    let deadline = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release, released) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (_tcp, _) = listener.accept().unwrap();
        let _ = released.recv();
    });
    let start = Instant::now();
    let err = HttpClient::new()
        .get(
            &format!("https://127.0.0.1:{port}/"),
            &HttpOptions {
                timeout: deadline,
                ..HttpOptions::default()
            },
        )
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, HttpError::TimedOut { .. }), "{err:?}");
    assert!(took >= deadline && took < deadline * 4, "{took:?}");
    drop(release);
    server.join().unwrap();
}

#[test]
fn redirect_from_http_to_https() {
    let (cert, config) = certificate(&["127.0.0.1"]);
    let (port, tls_server) =
        serve_tls(config, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let redirect = format!(
        "HTTP/1.1 301 Moved\r\nLocation: https://127.0.0.1:{port}/secure\r\nContent-Length: 0\r\n\r\n"
    );
    let server = TestServer::replying(1, redirect.into_bytes());
    let options = HttpOptions {
        tls_roots: Some(roots(cert)),
        ..HttpOptions::default()
    };
    let response = HttpClient::new().get(&server.url("/"), &options).unwrap();
    assert_eq!(response.body, b"ok");
    server.join();
    assert!(tls_server.join().unwrap()[0].starts_with("GET /secure HTTP/1.1"));
}
