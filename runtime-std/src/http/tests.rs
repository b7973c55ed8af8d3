//! Plain-HTTP tests against loopback servers on test threads.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bitshoal_core::id::PeerId;
use bitshoal_core::tracker::{
    parse_announce_response, AnnounceEvent, AnnounceRequest, TrackerError, TrackerLimits,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::testserver::TestServer;
use super::*;

fn get(url: &str) -> Result<HttpResponse, HttpError> {
    HttpClient::new().get(url, &HttpOptions::default())
}

fn with(options: impl FnOnce(&mut HttpOptions)) -> HttpOptions {
    let mut o = HttpOptions::default();
    options(&mut o);
    o
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A response with `Content-Length`.
fn sized(status: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn content_length_body_and_the_request_we_send() {
    let server = TestServer::replying(1, sized("200 OK", "X-Test: a\r\n", b"hello world"));
    let url = server.url("/announce?info_hash=%00%FF%20a&x=1#frag");
    let response = get(&url).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello world");
    assert_eq!(response.header("x-TEST"), Some(&b"a"[..]));
    assert_eq!(response.header("content-length"), Some(&b"11"[..]));
    let heads = server.join();
    assert_eq!(heads.len(), 1);
    let lines: Vec<&str> = heads[0].split("\r\n").collect();
    assert_eq!(lines[0], "GET /announce?info_hash=%00%FF%20a&x=1 HTTP/1.1");
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(lines.contains(&format!("Host: 127.0.0.1:{port}").as_str()));
    assert!(lines.contains(&format!("User-Agent: bitshoal/{}", env!("CARGO_PKG_VERSION")).as_str()));
    assert!(lines.contains(&"Accept-Encoding: gzip"));
    assert!(lines.contains(&"Connection: close"));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let server = TestServer::start(1, |_, _, s| {
        // Separate writes, so the client sees the chunks arrive in pieces.
        for part in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"5;name=value\r\nhello\r\n",
            b"1\r\n \r\n6\r\nwor",
            b"ld!\r\n0\r\nX-Trailer: yes\r\n\r\n",
        ] {
            s.write_all(part).unwrap();
            s.flush().unwrap();
        }
    });
    let response = get(&server.url("/")).unwrap();
    assert_eq!(response.body, b"hello world!");
    server.join();
}

#[test]
fn body_until_close() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    response.extend_from_slice(&body);
    let server = TestServer::replying(1, response);
    assert_eq!(get(&server.url("/")).unwrap().body, body);
    server.join();
}

#[test]
fn gzip_bodies_are_decoded() {
    let plain = b"d8:intervali1800e5:peers0:e".repeat(100);
    let compressed = gzip(&plain);
    assert!(compressed.len() < plain.len());
    // With a Content-Length, and chunked.
    let sized_gz = sized("200 OK", "Content-Encoding: gzip\r\n", &compressed);
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: GZIP\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in compressed.chunks(100) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for response in [sized_gz, chunked] {
        let server = TestServer::replying(1, response);
        assert_eq!(get(&server.url("/")).unwrap().body, plain);
        server.join();
    }
}

#[test]
fn gzip_bomb_stops_at_the_body_limit() {
    // 64 MiB of zeros compress to about 64 KiB, well under the limit as sent.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let max_body = 1 << 20;
    assert!(bomb.len() < max_body);
    let server = TestServer::replying(1, sized("200 OK", "Content-Encoding: gzip\r\n", &bomb));
    let err = HttpClient::new()
        .get(&server.url("/"), &with(|o| o.max_body = max_body))
        .unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { what: Exceeded::Body, limit, .. } if limit == max_body),
        "{err:?}"
    );
    server.join();
}

#[test]
fn body_over_the_limit_declared_or_streamed() {
    let max_body = 1000;
    let options = with(|o| o.max_body = max_body);
    let big = vec![b'x'; max_body + 1];
    let mut until_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    until_close.extend_from_slice(&big);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"190\r\n");
        chunked.extend_from_slice(&[b'y'; 0x190]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    // A declared length over the limit is refused before any of the body is read.
    let declared = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n".to_vec();
    let huge_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n".to_vec();
    for response in [
        sized("200 OK", "", &big),
        until_close,
        chunked,
        declared,
        huge_chunk,
    ] {
        let server = TestServer::replying(1, response);
        let err = HttpClient::new()
            .get(&server.url("/"), &options)
            .unwrap_err();
        assert!(
            matches!(
                err,
                HttpError::TooLarge {
                    what: Exceeded::Body,
                    limit: 1000,
                    ..
                }
            ),
            "{err:?}"
        );
        server.join();
    }
    // Exactly at the limit is fine.
    let server = TestServer::replying(1, sized("200 OK", "", &big[..max_body]));
    assert_eq!(
        HttpClient::new()
            .get(&server.url("/"), &options)
            .unwrap()
            .body
            .len(),
        max_body
    );
    server.join();
}

#[test]
fn header_count_and_header_block_size_are_bounded() {
    let many: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
    let server = TestServer::replying(1, sized("200 OK", &many, b""));
    let err = HttpClient::new()
        .get(&server.url("/"), &with(|o| o.max_headers = 8))
        .unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::TooLarge {
                what: Exceeded::HeaderCount,
                limit: 8,
                ..
            }
        ),
        "{err:?}"
    );
    server.join();

    let long = format!("X-Long: {}\r\n", "a".repeat(4000));
    let server = TestServer::replying(1, sized("200 OK", &long, b""));
    let err = HttpClient::new()
        .get(&server.url("/"), &with(|o| o.max_head_bytes = 1024))
        .unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::TooLarge {
                what: Exceeded::HeadBytes,
                limit: 1024,
                ..
            }
        ),
        "{err:?}"
    );
    server.join();
}

#[test]
fn error_statuses_are_responses_and_interim_ones_are_skipped() {
    let server = TestServer::replying(1, sized("404 Not Found", "", b"no such torrent"));
    let response = get(&server.url("/x")).unwrap();
    assert_eq!(
        (response.status, &response.body[..]),
        (404, &b"no such torrent"[..])
    );
    server.join();

    let mut response =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n".to_vec();
    response.extend(sized("200 OK", "", b"final"));
    let server = TestServer::replying(1, response);
    let response = get(&server.url("/")).unwrap();
    assert_eq!((response.status, &response.body[..]), (200, &b"final"[..]));
    assert!(response.header("link").is_none());
    server.join();

    // 204 has no body even if the server sends bytes after it.
    let server = TestServer::replying(1, b"HTTP/1.1 204 No Content\r\n\r\ngarbage".to_vec());
    let response = get(&server.url("/")).unwrap();
    assert_eq!((response.status, response.body.len()), (204, 0));
    server.join();
}

#[test]
fn malformed_responses_are_typed_errors() {
    let cases: [&[u8]; 7] = [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
    ];
    for case in cases {
        let server = TestServer::replying(1, case.to_vec());
        let err = get(&server.url("/")).unwrap_err();
        assert!(
            matches!(err, HttpError::Malformed { .. }),
            "{:?}: {err:?}",
            String::from_utf8_lossy(case)
        );
        server.join();
    }
}

fn redirect(status: u16, location: &str) -> Vec<u8> {
    sized(
        &format!("{status} Moved"),
        &format!("Location: {location}\r\n"),
        b"",
    )
}

#[test]
fn redirects_relative_absolute_and_chained() {
    let target = TestServer::replying(1, sized("200 OK", "", b"arrived"));
    let target_url = target.url("/final?k=v");
    // 301 relative, 302 absolute path, 303 relative to the path, 307 to another server.
    let server = TestServer::start(4, move |i, _, s| {
        let r = match i {
            0 => redirect(301, "/a/b"),
            1 => redirect(302, "c?x=1"),
            2 => redirect(303, "../d#frag"),
            _ => redirect(307, &target_url),
        };
        s.write_all(&r).unwrap();
    });
    let response = get(&server.url("/start")).unwrap();
    assert_eq!(response.body, b"arrived");
    let paths: Vec<String> = server
        .join()
        .iter()
        .map(|h| h.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "GET /start HTTP/1.1",
            "GET /a/b HTTP/1.1",
            "GET /a/c?x=1 HTTP/1.1",
            "GET /d HTTP/1.1"
        ]
    );
    assert_eq!(
        target.join()[0].lines().next(),
        Some("GET /final?k=v HTTP/1.1")
    );
}

#[test]
fn redirect_loops_end_after_max_redirects() {
    let server = TestServer::replying(4, redirect(308, "/loop"));
    let err = HttpClient::new()
        .get(&server.url("/loop"), &with(|o| o.max_redirects = 3))
        .unwrap_err();
    assert!(
        matches!(err, HttpError::TooManyRedirects { max: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.join().len(), 4, "the first request and 3 redirects");

    // max_redirects 0: the redirect itself is the error.
    let server = TestServer::replying(1, redirect(302, "/elsewhere"));
    let err = HttpClient::new()
        .get(&server.url("/"), &with(|o| o.max_redirects = 0))
        .unwrap_err();
    assert!(
        matches!(err, HttpError::TooManyRedirects { max: 0, .. }),
        "{err:?}"
    );
    server.join();

    // A 3xx without Location is the response.
    let server = TestServer::replying(1, sized("302 Found", "", b"nowhere"));
    assert_eq!(get(&server.url("/")).unwrap().status, 302);
    server.join();
}

#[test]
fn redirects_to_other_schemes_are_refused() {
    for location in [
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "udp://tracker.example:80/announce",
        "http://[::1",
    ] {
        let server = TestServer::replying(1, redirect(302, location));
        let err = get(&server.url("/")).unwrap_err();
        assert!(
            matches!(err, HttpError::BadRedirect { .. }),
            "{location}: {err:?}"
        );
        server.join();
    }
}

#[test]
fn a_server_that_stalls_or_trickles_times_out_at_the_deadline() {
    let deadline = Duration::from_millis(300);
    let options = with(|o| o.timeout = deadline);
    let (release, released) = mpsc::channel::<()>();
    // Accepts, reads the request, never answers until released.
    let stall = TestServer::start(1, move |_, _, _| {
        let _ = released.recv();
    });
    let start = Instant::now();
    let err = HttpClient::new()
        .get(&stall.url("/"), &options)
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, HttpError::TimedOut { .. }), "{err:?}");
    assert!(took >= deadline && took < deadline * 4, "{took:?}");
    drop(release);
    stall.join();

    // Sends the head, then a byte of the body every 20 ms: each read is quick, the whole is not.
    let (release, released) = mpsc::channel::<()>();
    let trickle = TestServer::start(1, move |_, _, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        while s.write_all(b"x").is_ok() {
            if released.recv_timeout(Duration::from_millis(20))
                != Err(mpsc::RecvTimeoutError::Timeout)
            {
                break;
            }
        }
    });
    let start = Instant::now();
    let err = HttpClient::new()
        .get(&trickle.url("/"), &options)
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, HttpError::TimedOut { .. }), "{err:?}");
    assert!(took >= deadline && took < deadline * 4, "{took:?}");
    drop(release);
    trickle.join();
}

#[test]
fn connection_refused_is_connect() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is closed: nothing listens there now.
    let err = get(&format!("http://{addr}/announce")).unwrap_err();
    assert!(matches!(err, HttpError::Connect { .. }), "{err:?}");
}

#[test]
fn names_and_ipv6_literals_are_resolved() {
    let server = TestServer::replying(1, sized("200 OK", "", b"by name"));
    let url = format!("http://localhost:{}/", server.addr.port());
    // localhost may resolve to ::1 first, where nothing listens: the next address is tried.
    assert_eq!(get(&url).unwrap().body, b"by name");
    assert!(server.join()[0].contains(&format!("Host: localhost:{}\r\n", server_port(&url))));

    let listener = TcpListener::bind("[::1]:0").expect("IPv6 loopback");
    let addr: SocketAddr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let head = super::testserver::read_request_head(&mut s).unwrap();
        s.write_all(&sized("200 OK", "", b"v6")).unwrap();
        head
    });
    let response = get(&format!("http://[::1]:{}/v6", addr.port())).unwrap();
    assert_eq!(response.body, b"v6");
    let head = thread.join().unwrap();
    assert!(
        head.contains(&format!("Host: [::1]:{}\r\n", addr.port())),
        "{head}"
    );

    let err = get("http://no-such-host.invalid/announce").unwrap_err();
    assert!(matches!(err, HttpError::Resolve { .. }), "{err:?}");
}

fn server_port(url: &str) -> &str {
    url.rsplit(':').next().unwrap().trim_end_matches('/')
}

#[test]
fn invalid_urls_schemes_and_headers() {
    assert!(matches!(
        get("not a url"),
        Err(HttpError::InvalidUrl { .. })
    ));
    assert!(matches!(get("http://"), Err(HttpError::InvalidUrl { .. })));
    for url in [
        "udp://tracker.example:80/announce",
        "ftp://x/y",
        "file:///etc/passwd",
    ] {
        let err = get(url).unwrap_err();
        assert!(
            matches!(err, HttpError::UnsupportedScheme { .. }),
            "{url}: {err:?}"
        );
    }
    for (name, value) in [
        ("Host", "evil"),
        ("connection", "keep-alive"),
        ("Bad Name", "x"),
        ("X-Split", "a\r\nInjected: yes"),
        ("", "x"),
    ] {
        let options = with(|o| o.headers = vec![(name.to_string(), value.to_string())]);
        let err = HttpClient::new()
            .get("http://127.0.0.1:1/", &options)
            .unwrap_err();
        assert_eq!(
            err,
            HttpError::InvalidHeader {
                name: name.to_string()
            }
        );
    }
}

#[test]
fn extra_headers_are_sent_and_gzip_can_be_turned_off() {
    let server = TestServer::replying(1, sized("206 Partial Content", "", b"ab"));
    let options = with(|o| {
        o.accept_gzip = false;
        o.headers = vec![("Range".to_string(), "bytes=0-1".to_string())];
    });
    let response = HttpClient::new()
        .get(&server.url("/file"), &options)
        .unwrap();
    assert_eq!((response.status, &response.body[..]), (206, &b"ab"[..]));
    let head = &server.join()[0];
    assert!(head.contains("\r\nRange: bytes=0-1\r\n"), "{head}");
    assert!(!head.contains("Accept-Encoding"), "{head}");
}

#[test]
fn errors_never_show_the_query_or_inner_path() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/SECRETPASSKEY/announce?passkey=SECRET2&info_hash=%01");
    let err = get(&url).unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains(&format!("http://{addr}/…/announce?…")),
            "{text}"
        );
    }
    let request = HttpRequest {
        id: 1,
        url: url.clone(),
        options: HttpOptions::default(),
    };
    let shown = format!("{request:?}");
    assert!(
        !shown.contains("SECRET") && shown.contains("/…/announce?…"),
        "{shown}"
    );
    let tracker: TrackerError = err.into();
    assert!(
        matches!(&tracker, TrackerError::Transport { message } if !message.contains("SECRET")),
        "{tracker:?}"
    );
    let timed_out = HttpError::TimedOut {
        url: RedactedUrl::new(&url::Url::parse(&url).unwrap()),
    };
    assert_eq!(TrackerError::from(timed_out), TrackerError::TimedOut);
    // Short URLs keep what they have.
    let short = RedactedUrl::new(&url::Url::parse("https://t.example/announce").unwrap());
    assert_eq!(short.as_str(), "https://t.example:443/announce");
}

#[test]
fn announce_round_trip() {
    let info_hash: [u8; 20] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xA5);
    let mut request = AnnounceRequest::new(info_hash, PeerId(*b"-BS0001-abcdefghijkl"), 6881, 7);
    request.left = 1234;
    request.event = Some(AnnounceEvent::Started);
    let expected_hash: String = info_hash
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let peers: [SocketAddr; 2] = [
        "10.1.2.3:6881".parse().unwrap(),
        "192.0.2.9:51413".parse().unwrap(),
    ];
    let mut body = b"d8:intervali1800e5:peers12:".to_vec();
    for p in &peers {
        let SocketAddr::V4(v4) = p else {
            unreachable!()
        };
        body.extend_from_slice(&v4.ip().octets());
        body.extend_from_slice(&v4.port().to_be_bytes());
    }
    body.push(b'e');
    let server = TestServer::replying(1, sized("200 OK", "Content-Type: text/plain\r\n", &body));
    let url = request
        .to_http_url(&server.url("/announce?passkey=abc"))
        .unwrap();
    let limits = TrackerLimits::default();
    let options = with(|o| o.max_body = limits.max_body);
    let response = HttpClient::new().get(&url, &options).unwrap();
    let announce = parse_announce_response(response.status, &response.body, &limits).unwrap();
    assert_eq!(announce.peers, peers);
    assert_eq!(announce.interval.map(|d| d.as_secs()), Some(1800));
    let request_line = server.join()[0].lines().next().unwrap().to_string();
    let query = request_line
        .strip_prefix("GET /announce?passkey=abc&")
        .and_then(|r| r.strip_suffix(" HTTP/1.1"))
        .unwrap_or_else(|| panic!("{request_line}"));
    let params: Vec<&str> = query.split('&').collect();
    assert_eq!(params[0], format!("info_hash={expected_hash}"));
    assert!(params.contains(&"peer_id=-BS0001-abcdefghijkl"), "{query}");
    assert!(params.contains(&"left=1234"), "{query}");
    assert!(params.contains(&"event=started"), "{query}");
}

#[test]
fn the_pool_delivers_one_completion_per_request() {
    let server = TestServer::start(3, |i, _, s| {
        let _ = s.write_all(&sized("200 OK", "", format!("answer {i}").as_bytes()));
    });
    let (sink, rx) = Sink::channel(|| {});
    let pool = HttpPool::new(2, sink);
    assert_eq!(pool.threads(), 2);
    for id in 0..3 {
        pool.submit(HttpRequest {
            id,
            url: server.url("/"),
            options: HttpOptions::default(),
        });
    }
    pool.submit(HttpRequest {
        id: 99,
        url: "gopher://x/".to_string(),
        options: HttpOptions::default(),
    });
    drop(pool); // joins: every completion is in the channel
    let mut bodies = Vec::new();
    let mut failed = None;
    for completion in rx.try_iter() {
        let Completion::Http(done) = completion else {
            panic!("unexpected {completion:?}")
        };
        match done.result {
            Ok(r) => bodies.push((done.id, String::from_utf8(r.body).unwrap())),
            Err(e) => failed = Some((done.id, e)),
        }
    }
    bodies.sort();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies.iter().map(|b| b.0).collect::<Vec<_>>(), [0, 1, 2]);
    let mut answers: Vec<&str> = bodies.iter().map(|b| b.1.as_str()).collect();
    answers.sort();
    assert_eq!(answers, ["answer 0", "answer 1", "answer 2"]);
    assert!(matches!(
        failed,
        Some((99, HttpError::UnsupportedScheme { .. }))
    ));
    server.join();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a server sends, the client returns (never panics), within its bounds.
    #[test]
    fn random_responses_never_panic(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00",
            b"HTTP/1.1 302 Found\r\nLocation: ",
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&tail);
        let server = TestServer::replying(1, bytes);
        let options = with(|o| {
            o.max_body = 512;
            o.max_redirects = 0;
            o.timeout = Duration::from_secs(10);
        });
        if let Ok(response) = HttpClient::new().get(&server.url("/"), &options) {
            prop_assert!(response.body.len() <= 512);
            prop_assert!(response.headers.len() <= options.max_headers);
        }
        server.join();
    }
}
