//! HTTP announce and scrape: URLs, golden responses (BEP 3, 7, 23, 24, 31, 48), limits.

use std::net::{IpAddr, SocketAddr};

use percent_encoding::percent_decode_str;
use proptest::prelude::*;

use super::*;
use crate::error::{Classify, Fault};

/// The info-hash of the classic example in the BitTorrent wiki's tracker documentation.
const HASH: [u8; 20] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12,
    0x34, 0x56, 0x78, 0x9a,
];

fn request() -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId(*b"-BS0001-abcdefghijkl"), 6881, 0x00c0_ffee);
    r.uploaded = 1;
    r.downloaded = 2;
    r.left = 3;
    r
}

/// The query parameters of `url` as (name, decoded bytes).
fn params(url: &str) -> Vec<(String, Vec<u8>)> {
    let query = url.split_once('?').expect("a query").1;
    query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), percent_decode_str(v).collect())
        })
        .collect()
}

fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn announce_url_golden() {
    let mut r = request();
    r.event = Some(AnnounceEvent::Started);
    r.numwant = Some(50);
    let url = r.to_http_url("http://tracker.example/announce").unwrap();
    assert_eq!(
        url,
        "http://tracker.example/announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A\
         &peer_id=-BS0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1\
         &no_peer_id=1&event=started&numwant=50&key=00C0FFEE"
    );
}

#[test]
fn announce_url_keeps_existing_query_and_drops_fragment() {
    let r = request();
    for (announce, prefix) in [
        (
            "https://t.example/announce?passkey=s3cr3t",
            "https://t.example/announce?passkey=s3cr3t&info_hash=",
        ),
        (
            "http://t.example/a.php?",
            "http://t.example/a.php?info_hash=",
        ),
        (
            "http://t.example/a?x=1&",
            "http://t.example/a?x=1&info_hash=",
        ),
        (
            "HTTP://t.example:8080/announce#frag",
            "HTTP://t.example:8080/announce?info_hash=",
        ),
    ] {
        let url = r.to_http_url(announce).unwrap();
        assert!(url.starts_with(prefix), "{announce} -> {url}");
        assert!(!url.contains('#'), "{url}");
    }
}

#[test]
fn announce_url_optional_fields() {
    let mut r = request();
    r.compact = false;
    r.no_peer_id = false;
    r.tracker_id = Some(b"id &=\xff".to_vec());
    r.ip = Some("2001:db8::1".parse().unwrap());
    let url = r.to_http_url("http://t.example/announce").unwrap();
    let p = params(&url);
    assert_eq!(param(&p, "compact"), None);
    assert_eq!(param(&p, "no_peer_id"), None);
    assert_eq!(param(&p, "event"), None);
    assert_eq!(param(&p, "numwant"), None);
    assert_eq!(param(&p, "trackerid"), Some(&b"id &=\xff"[..]));
    assert_eq!(param(&p, "ip"), Some(&b"2001:db8::1"[..]));
    assert_eq!(param(&p, "info_hash"), Some(&HASH[..]));
    for event in [
        AnnounceEvent::Started,
        AnnounceEvent::Completed,
        AnnounceEvent::Stopped,
    ] {
        r.event = Some(event);
        let url = r.to_http_url("http://t.example/announce").unwrap();
        assert_eq!(
            param(&params(&url), "event"),
            Some(event.as_str().as_bytes())
        );
    }
}

#[test]
fn announce_url_errors() {
    let r = request();
    for (url, fault) in [
        ("", Fault::Malformed),
        ("tracker.example/announce", Fault::Malformed),
        ("http://", Fault::Malformed),
        ("http:///announce", Fault::Malformed),
        ("http://t.example/ann ounce", Fault::Malformed),
        ("http://t.example/\nannounce", Fault::Malformed),
        ("udp://t.example:80", Fault::Unsupported),
        ("wss://t.example/announce", Fault::Unsupported),
    ] {
        let e = r.to_http_url(url).unwrap_err();
        assert_eq!(e.fault(), fault, "{url:?}: {e}");
    }
}

proptest! {
    #[test]
    fn binary_fields_round_trip_through_percent_encoding(
        hash in any::<[u8; 20]>(),
        id in any::<[u8; 20]>(),
        tracker_id in proptest::collection::vec(any::<u8>(), 1..40),
    ) {
        let mut r = AnnounceRequest::new(hash, PeerId(id), 1, 2);
        r.tracker_id = Some(tracker_id.clone());
        let url = r.to_http_url("http://t.example/announce?a=b").unwrap();
        // Only unreserved characters and escapes in the values.
        prop_assert!(url.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%&=?:/".contains(&b)));
        let p = params(&url);
        prop_assert_eq!(param(&p, "a"), Some(&b"b"[..]));
        prop_assert_eq!(param(&p, "info_hash"), Some(&hash[..]));
        prop_assert_eq!(param(&p, "peer_id"), Some(&id[..]));
        prop_assert_eq!(param(&p, "trackerid"), Some(&tracker_id[..]));
    }
}

fn parse(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    parse_announce_response(200, body, &TrackerLimits::DEFAULT)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn compact_ipv4_and_ipv6_peers_golden() {
    // BEP 23: 6 bytes per peer; BEP 7: 18 bytes per peer in `peers6`.
    let mut body =
        b"d8:completei5e10:incompletei7e8:intervali1800e12:min intervali60e5:peers12:".to_vec();
    body.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0xc8, 0xd5]);
    body.extend_from_slice(b"6:peers618:");
    body.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    body.extend_from_slice(&[0x1a, 0xe1]);
    body.push(b'e');
    let r = parse(&body).unwrap();
    assert_eq!(
        r.peers,
        vec![
            addr("10.0.0.1:6881"),
            addr("192.168.1.2:51413"),
            addr("[2001:db8::1]:6881")
        ]
    );
    assert_eq!(r.interval, Some(Duration::from_secs(1800)));
    assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
    assert_eq!((r.seeders, r.leechers), (Some(5), Some(7)));
    assert_eq!(r.warning, None);
    assert_eq!(r.tracker_id, None);
    assert_eq!(r.external_ip, None);
}

#[test]
fn dictionary_peers_skip_invalid_entries() {
    let body = b"d8:intervali900e5:peersl\
        d2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
        d2:ip11:example.com4:porti6881ee\
        d2:ip3:::14:porti7000ee\
        d2:ip5:[::2]4:porti7001ee\
        d2:ip8:10.0.0.14:porti0ee\
        d2:ip8:10.0.0.24:porti70000ee\
        d2:ip7:0.0.0.04:porti1ee\
        d4:porti1ee\
        i5e\
        d2:ip9:127.0.0.17:peer id20:bbbbbbbbbbbbbbbbbbbb4:porti6881ee\
        ee";
    let r = parse(body).unwrap();
    assert_eq!(
        r.peers,
        vec![
            addr("127.0.0.1:6881"),
            addr("[::1]:7000"),
            addr("[::2]:7001")
        ]
    );
}

#[test]
fn failure_reason_with_retry_in() {
    for (body, retry) in [
        (
            &b"d14:failure reason9:not found8:retry ini30ee"[..],
            Some(RetryIn::After(Duration::from_secs(1800))),
        ),
        (
            b"d14:failure reason9:not found8:retry in5:nevere",
            Some(RetryIn::Never),
        ),
        (b"d14:failure reason9:not found8:retry ini-1ee", None),
        (b"d14:failure reason9:not founde", None),
    ] {
        let e = parse(body).unwrap_err();
        assert_eq!(
            e,
            TrackerError::Failure {
                reason: "not found".into(),
                retry_in: retry
            }
        );
        assert_eq!(e.retry_in(), retry);
        assert_eq!(e.fault(), Fault::Unsupported);
    }
}

#[test]
fn http_status_and_failure() {
    let limits = TrackerLimits::DEFAULT;
    assert_eq!(
        parse_announce_response(404, b"Not Found", &limits),
        Err(TrackerError::HttpStatus { status: 404 })
    );
    // A failure reason wins over the status: it says more.
    assert!(matches!(
        parse_announce_response(400, b"d14:failure reason3:bade", &limits),
        Err(TrackerError::Failure { .. })
    ));
    assert!(parse_announce_response(200, b"d8:intervali1ee", &limits).is_ok());
}

#[test]
fn warning_tracker_id_and_external_ip() {
    let r = parse(b"d11:external ip4:\x01\x02\x03\x048:intervali60e5:peers0:10:tracker id3:xyz15:warning message4:hmm!e").unwrap();
    assert_eq!(r.warning.as_deref(), Some("hmm!"));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
    assert_eq!(r.external_ip, Some(IpAddr::from([1, 2, 3, 4])));
    let r = parse(b"d11:external ip16:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01e").unwrap();
    assert_eq!(r.external_ip, Some("2001:db8::1".parse().unwrap()));
    let r = parse(b"d11:external ip3:abc8:intervali-5ee").unwrap();
    assert_eq!(r.external_ip, None);
    assert_eq!(r.interval, None, "a negative interval is ignored");
}

#[test]
fn garbage_is_a_typed_error() {
    for (body, fault) in [
        (&b""[..], Fault::Malformed),
        (b"<html>503</html>", Fault::Malformed),
        (b"li1ee", Fault::Malformed),
        (b"d5:peersi5ee", Fault::Malformed),
        (b"d8:intervali1e8:intervali2ee", Fault::Malformed),
    ] {
        let e = parse(body).unwrap_err();
        assert_eq!(e.fault(), fault, "{body:?}: {e}");
    }
    // Lenient: unsorted keys and trailing bytes are fine.
    assert!(parse(b"d8:intervali5e5:peers0:e trailing").is_ok());
}

#[test]
fn limits_bound_body_depth_and_peers() {
    let limits = TrackerLimits {
        max_body: 64,
        ..TrackerLimits::DEFAULT
    };
    let e = parse_announce_response(200, &[b'x'; 65], &limits).unwrap_err();
    assert_eq!(e, TrackerError::BodyTooLarge { len: 65, max: 64 });
    assert_eq!(e.fault(), Fault::LimitExceeded);

    let mut deep = b"d5:peers".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 50));
    deep.extend(std::iter::repeat_n(b'e', 51));
    assert_eq!(parse(&deep).unwrap_err().fault(), Fault::LimitExceeded);

    // 3,000 distinct compact peers plus repeats: bounded and deduplicated.
    let mut peers = Vec::new();
    for i in 0..3000u32 {
        peers.extend_from_slice(&[10, (i >> 8) as u8, i as u8, 1, 0x1a, 0xe1]);
        peers.extend_from_slice(&[10, (i >> 8) as u8, i as u8, 1, 0x1a, 0xe1]);
    }
    let mut body = format!("d5:peers{}:", peers.len()).into_bytes();
    body.extend_from_slice(&peers);
    body.push(b'e');
    let r = parse(&body).unwrap();
    assert_eq!(r.peers.len(), TrackerLimits::DEFAULT.max_peers);
    let mut unique = r.peers.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), r.peers.len());
}

#[test]
fn long_text_is_cut_at_a_char_boundary() {
    let reason = "é".repeat(1000);
    let body = format!("d14:failure reason{}:{}e", reason.len(), reason);
    let Err(TrackerError::Failure { reason: got, .. }) = parse(body.as_bytes()) else {
        panic!("expected a failure");
    };
    assert!(got.len() <= TrackerLimits::DEFAULT.max_text);
    assert!(got.len() > 1000);
    assert!(got.chars().all(|c| c == 'é'));
}

#[test]
fn scrape_url_derivation_bep48() {
    // The table from BEP 48.
    for (announce, scrape) in [
        (
            "http://example.com/announce",
            Some("http://example.com/scrape"),
        ),
        (
            "http://example.com/x/announce",
            Some("http://example.com/x/scrape"),
        ),
        (
            "http://example.com/announce.php",
            Some("http://example.com/scrape.php"),
        ),
        ("http://example.com/a", None),
        (
            "http://example.com/announce?x2%0644",
            Some("http://example.com/scrape?x2%0644"),
        ),
        (
            "http://example.com/announce?x=2/4",
            Some("http://example.com/scrape?x=2/4"),
        ),
        ("http://example.com/x%064announce", None),
        ("http://example.com", None),
        ("http://announce.example.com", None),
        ("udp://example.com:80/announce", None),
    ] {
        assert_eq!(scrape_url(announce).as_deref(), scrape, "{announce}");
    }
}

#[test]
fn scrape_request_and_response() {
    let other = [0xffu8; 20];
    let url = scrape_request_url("http://example.com/scrape?k=v", &[HASH, other]).unwrap();
    let p = params(&url);
    assert_eq!(param(&p, "k"), Some(&b"v"[..]));
    let hashes: Vec<&[u8]> = p
        .iter()
        .filter(|(k, _)| k == "info_hash")
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(hashes, vec![&HASH[..], &other[..]]);

    let mut body = b"d5:filesd20:".to_vec();
    body.extend_from_slice(&HASH);
    body.extend_from_slice(b"d8:completei5e10:downloadedi50e10:incompletei10e4:name3:fooe");
    body.extend_from_slice(b"3:bad");
    body.extend_from_slice(b"d8:completei1ee20:");
    body.extend_from_slice(&other);
    body.extend_from_slice(b"d8:completei-1ee");
    body.extend_from_slice(b"e5:flagsd20:min_request_intervali900eee");
    let r = parse_scrape_response(200, &body, &TrackerLimits::DEFAULT).unwrap();
    assert_eq!(r.files.len(), 2, "the 3-byte key is skipped");
    assert_eq!(
        r.get(&HASH),
        Some(&ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10,
            name: Some("foo".into())
        })
    );
    assert_eq!(r.get(&other), Some(&ScrapeStats::default()));
    assert_eq!(r.min_request_interval, Some(Duration::from_secs(900)));

    assert_eq!(
        parse_scrape_response(200, b"d5:filesi1ee", &TrackerLimits::DEFAULT),
        Err(TrackerError::InvalidField { field: "files" })
    );
    assert!(matches!(
        parse_scrape_response(200, b"d14:failure reason4:nopee", &TrackerLimits::DEFAULT),
        Err(TrackerError::Failure { .. })
    ));
    assert_eq!(
        parse_scrape_response(200, b"de", &TrackerLimits::DEFAULT),
        Ok(ScrapeResponse::default())
    );
}

#[test]
fn tracker_url_parsing() {
    let udp = |host: &str, port, data: &str| TrackerUrl::Udp {
        host: host.into(),
        port,
        url_data: data.into(),
    };
    for (url, expected) in [
        (
            "udp://tracker.example.com:80/dir?a=b&c=d",
            Ok(udp("tracker.example.com", 80, "/dir?a=b&c=d")),
        ),
        ("UDP://t.example:6969", Ok(udp("t.example", 6969, ""))),
        ("udp://t.example:6969/", Ok(udp("t.example", 6969, ""))),
        (
            "udp://t.example:6969/announce",
            Ok(udp("t.example", 6969, "/announce")),
        ),
        (
            "udp://[::1]:6969/announce#x",
            Ok(udp("::1", 6969, "/announce")),
        ),
        ("udp://127.0.0.1:1?x", Ok(udp("127.0.0.1", 1, "?x"))),
        (
            "https://t.example/announce#f",
            Ok(TrackerUrl::Http {
                url: "https://t.example/announce".into(),
            }),
        ),
    ] {
        assert_eq!(TrackerUrl::parse(url), expected, "{url}");
    }
    for url in [
        "udp://t.example",
        "udp://t.example:0",
        "udp://t.example:65536",
        "udp://t.example:+80",
        "udp://:80",
        "udp://[::1/",
        "udp://[zz]:80",
        "udp://a@b:80",
        "udp://t.example:80/ x",
        "ftp://t.example",
        "",
    ] {
        assert!(TrackerUrl::parse(url).is_err(), "{url}");
    }
    let long = format!("udp://t.example:80/{}", "a".repeat(2000));
    assert!(TrackerUrl::parse(&long).is_err());
}
