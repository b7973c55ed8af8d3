use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use proptest::prelude::*;

use super::*;

/// A v1 info-hash and its RFC 4648 base32 form (computed with Python's `base64.b32encode`).
const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
const B32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
const OTHER_HEX: &str = "dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c";

fn v1() -> InfoHashV1 {
    InfoHashV1(parse_hex(HEX).unwrap())
}

fn v2() -> InfoHashV2 {
    InfoHashV2(std::array::from_fn(|i| (i * 7 + 1) as u8))
}

fn btmh() -> String {
    format!("urn:btmh:1220{}", v2())
}

fn parse(s: &str) -> Magnet {
    Magnet::parse(s).unwrap_or_else(|e| panic!("{s:?} must parse: {e}"))
}

fn with_v1(rest: &str) -> Magnet {
    parse(&format!("magnet:?xt=urn:btih:{HEX}{rest}"))
}

#[test]
fn v1_hash_in_hex_and_base32_either_case() {
    let forms = [
        format!("magnet:?xt=urn:btih:{HEX}"),
        format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase()),
        format!("magnet:?xt=urn:btih:{B32}"),
        format!("magnet:?xt=urn:btih:{}", B32.to_lowercase()),
        format!("MAGNET:?XT=URN:BTIH:{B32}"),
        format!("  magnet:?xt=urn:btih:{HEX}\n"),
        format!("magnet:?xt=urn%3Abtih%3A{HEX}"),
    ];
    for uri in &forms {
        assert_eq!(parse(uri).info_hashes(), InfoHashes::V1(v1()), "{uri}");
    }
}

#[test]
fn v2_and_hybrid_hashes() {
    let m = parse(&format!("magnet:?xt={}", btmh()));
    assert_eq!(m.info_hashes(), InfoHashes::V2(v2()));
    let hybrid = [
        format!("magnet:?xt=urn:btih:{HEX}&xt={}", btmh()),
        format!(
            "magnet:?xt={}&dn=x&xt=urn:btih:{B32}",
            btmh().to_uppercase()
        ),
    ];
    for uri in &hybrid {
        assert_eq!(parse(uri).info_hashes(), InfoHashes::Hybrid(v1(), v2()));
    }
    // The same hash twice (hex and base32) is not a conflict.
    let twice = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{B32}");
    assert_eq!(parse(&twice).info_hashes(), InfoHashes::V1(v1()));
    // Other URNs are ignored.
    let mixed = format!("magnet:?xt=urn:sha1:ABCD&xt=urn:btih:{HEX}&xt=urn:ed2k:00");
    assert_eq!(parse(&mixed).info_hashes(), InfoHashes::V1(v1()));
}

#[test]
fn display_name_decoding() {
    let cases = [
        ("&dn=Ubuntu+24.04%20LTS", Some("Ubuntu 24.04 LTS")),
        ("&dn=a%2Bb", Some("a+b")),
        ("&dn=%E2%9C%93+ok", Some("\u{2713} ok")),
        ("&dn=raw\u{e9}t\u{e9}", Some("raw\u{e9}t\u{e9}")),
        ("&dn=bad%FFbyte", Some("bad\u{fffd}byte")),
        ("&dn=first&dn=second", Some("first")),
        ("&dn=&dn=second", Some("second")),
        ("&dn=", None),
        ("&dn", None),
        ("", None),
    ];
    for (rest, want) in cases {
        assert_eq!(with_v1(rest).display_name(), want, "{rest}");
    }
}

#[test]
fn trackers_keep_order_drop_duplicates_and_decode() {
    let m = with_v1(
        "&tr=udp%3A%2F%2Ftracker.example.org%3A1337%2Fannounce\
         &tr=http://t.example/announce?a=1%26b=2\
         &tr=udp%3A%2F%2Ftracker.example.org%3A1337%2Fannounce\
         &TR=http://upper.example/\
         &tr.1=http://numbered.example/\
         &tr=\
         &tr.x=http://ignored.example/",
    );
    assert_eq!(
        m.trackers(),
        [
            "udp://tracker.example.org:1337/announce",
            "http://t.example/announce?a=1&b=2",
            "http://upper.example/",
            "http://numbered.example/",
        ]
    );
}

#[test]
fn web_seeds_and_exact_length() {
    let m = with_v1("&ws=http://a.example/f&ws=http%3A%2F%2Fb.example%2Ff&ws=http://a.example/f&xl=1234&xl=01234");
    assert_eq!(m.web_seeds(), ["http://a.example/f", "http://b.example/f"]);
    assert_eq!(m.exact_length(), Some(1234));
    assert_eq!(
        with_v1("&xl=18446744073709551615").exact_length(),
        Some(u64::MAX)
    );
}

#[test]
fn peer_addresses() {
    let m = with_v1(
        "&x.pe=10.0.0.1:6881&x.pe=[2001:db8::1]:51413&x.pe=%5B%3A%3A1%5D%3A7\
         &x.pe=peer.example.org:6882&x.pe=10.0.0.1:6881&X.PE=my_host-1:65535",
    );
    let v6 = |s: &str, port| PeerAddr::Ip(SocketAddr::new(s.parse().unwrap(), port));
    assert_eq!(
        m.peers(),
        [
            PeerAddr::Ip(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                6881
            )),
            v6("2001:db8::1", 51413),
            v6("::1", 7),
            PeerAddr::Host(HostPort::new("peer.example.org", 6882).unwrap()),
            PeerAddr::Host(HostPort::new("my_host-1", 65535).unwrap()),
        ]
    );
    let PeerAddr::Host(hp) = &m.peers()[3] else {
        panic!("host expected");
    };
    assert_eq!((hp.host(), hp.port()), ("peer.example.org", 6882));
}

#[test]
fn bad_peer_addresses() {
    for bad in [
        "10.0.0.1",
        "10.0.0.1:0",
        "10.0.0.1:65536",
        "10.0.0.1:-1",
        "10.0.0.1:+5",
        "[::1]",
        "[::1]:0",
        "::1:5",
        "[::1:5",
        "host:",
        ":5",
        "host",
        "ho st:5",
        "host:5x",
        "a/b:5",
    ] {
        let uri = format!(
            "magnet:?xt=urn:btih:{HEX}&x.pe={}",
            utf8_percent_encode(bad, ENCODE)
        );
        assert_eq!(
            Magnet::parse(&uri),
            Err(MagnetError::BadPeerAddress),
            "{bad}"
        );
    }
    assert_eq!(
        HostPort::new("1.2.3.4", 5),
        Err(MagnetError::BadPeerAddress)
    );
    assert_eq!(HostPort::new("h", 0), Err(MagnetError::BadPeerAddress));
    let long = "a".repeat(HostPort::MAX_HOST_LEN + 1);
    assert_eq!(HostPort::new(&long, 5), Err(MagnetError::BadPeerAddress));
    assert!(HostPort::new(&long[1..], 5).is_ok());
}

#[test]
fn select_only_is_sorted_and_merged() {
    let cases = [
        ("0,2,4-6", vec![0..=0, 2..=2, 4..=6], "0,2,4-6"),
        ("6-8,0,2,4", vec![0..=0, 2..=2, 4..=4, 6..=8], "0,2,4,6-8"),
        ("3,1,2", vec![1..=3], "1-3"),
        ("0-5,2-3,5-9,11", vec![0..=9, 11..=11], "0-9,11"),
        ("7,7,7", vec![7..=7], "7"),
        ("1,,2,", vec![1..=2], "1-2"),
        ("4-4", vec![4..=4], "4"),
        ("2097151", vec![2097151..=2097151], "2097151"),
    ];
    for (text, ranges, canonical) in cases {
        let so: SelectOnly = text.parse().unwrap();
        assert_eq!(so.ranges(), ranges.as_slice(), "{text}");
        assert_eq!(so.to_string(), canonical);
        assert_eq!(with_v1(&format!("&so={text}")).select_only(), Some(&so));
    }
    // Several `so` parameters are united.
    let m = with_v1("&so=5-6&so=0,4");
    assert_eq!(m.select_only().unwrap().ranges(), [0..=0, 4..=6]);
    let so: SelectOnly = "1,3-5,9".parse().unwrap();
    let selected: Vec<u32> = (0..12).filter(|&i| so.contains(i)).collect();
    assert_eq!(selected, [1, 3, 4, 5, 9]);
}

#[test]
fn bad_select_only() {
    for bad in [
        ",",
        "6-4",
        "1-",
        "-1",
        "1-2-3",
        "a",
        "1 2",
        "+1",
        "2097152",
        "0-2097152",
        "99999999999",
    ] {
        assert_eq!(
            bad.parse::<SelectOnly>(),
            Err(MagnetError::BadSelectOnly),
            "{bad}"
        );
        let uri = format!("magnet:?xt=urn:btih:{HEX}&so={bad}");
        assert_eq!(
            Magnet::parse(&uri),
            Err(MagnetError::BadSelectOnly),
            "{bad}"
        );
    }
    assert_eq!(
        SelectOnly::from_ranges(std::iter::empty()),
        Err(MagnetError::BadSelectOnly)
    );
}

#[test]
fn rejected_links() {
    use MagnetError::*;
    let bad_btih = BadInfoHash { urn: HashUrn::Btih };
    let bad_btmh = BadInfoHash { urn: HashUrn::Btmh };
    let h = HEX;
    let v2hex = v2().to_string();
    let cases: Vec<(String, MagnetError)> = vec![
        (String::new(), NotAMagnet),
        (format!("http://example.org/?xt=urn:btih:{h}"), NotAMagnet),
        (format!("magnet:xt=urn:btih:{h}"), NotAMagnet),
        (format!("magnet?xt=urn:btih:{h}"), NotAMagnet),
        ("magnet:?".into(), MissingInfoHash),
        ("magnet:?dn=x&tr=http://t/".into(), MissingInfoHash),
        (
            "magnet:?xt=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C".into(),
            MissingInfoHash,
        ),
        (format!("magnet:?xt=urn:btih:{}", &h[1..]), bad_btih),
        (format!("magnet:?xt=urn:btih:{h}0"), bad_btih),
        (format!("magnet:?xt=urn:btih:{}g", &h[1..]), bad_btih),
        (format!("magnet:?xt=urn:btih:{}1", &B32[1..]), bad_btih),
        (format!("magnet:?xt=urn:btih:{}=", &B32[1..]), bad_btih),
        (format!("magnet:?xt=urn:btih:+{}", &h[1..]), bad_btih),
        (format!("magnet:?xt=urn:btmh:{v2hex}"), bad_btmh),
        (format!("magnet:?xt=urn:btmh:1114{v2hex}"), bad_btmh),
        (format!("magnet:?xt=urn:btmh:1220{}", &v2hex[2..]), bad_btmh),
        (format!("magnet:?xt=urn:btmh:1220{v2hex}00"), bad_btmh),
        (
            format!("magnet:?xt=urn:btih:{h}&xt=urn:btih:{OTHER_HEX}"),
            ConflictingInfoHash { urn: HashUrn::Btih },
        ),
        (
            format!("magnet:?xt={}&xt=urn:btmh:1220{}", btmh(), "00".repeat(32)),
            ConflictingInfoHash { urn: HashUrn::Btmh },
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&dn=%zz"),
            BadPercentEncoding,
        ),
        (format!("magnet:?xt=urn:btih:{h}&dn=%4"), BadPercentEncoding),
        (format!("magnet:?xt=urn:btih:{h}&tr=x%"), BadPercentEncoding),
        (
            format!("magnet:?xt=urn:btih:{h}&tr=%FF"),
            BadPercentEncoding,
        ),
        (format!("magnet:?xt=urn:btih:{h}&xl=-1"), BadExactLength),
        (format!("magnet:?xt=urn:btih:{h}&xl=1e6"), BadExactLength),
        (
            format!("magnet:?xt=urn:btih:{h}&xl=18446744073709551616"),
            BadExactLength,
        ),
        (format!("magnet:?xt=urn:btih:{h}&xl=1&xl=2"), BadExactLength),
    ];
    for (uri, want) in cases {
        assert_eq!(Magnet::parse(&uri), Err(want), "{uri}");
        assert!(!want.to_string().is_empty());
    }
}

#[test]
fn size_limits() {
    let base = format!("magnet:?xt=urn:btih:{HEX}&dn=");
    let fits = format!("{base}{}", "a".repeat(MAX_URI_LEN - base.len()));
    assert_eq!(
        parse(&fits).display_name().map(str::len),
        Some(MAX_URI_LEN - base.len())
    );
    let over = format!("{fits}a");
    assert_eq!(
        Magnet::parse(&over),
        Err(MagnetError::TooLong {
            len: MAX_URI_LEN + 1
        })
    );

    let params = |n: usize| format!("magnet:?xt=urn:btih:{HEX}{}", "&".repeat(n - 1));
    assert_eq!(
        parse(&params(MAX_PARAMS)).info_hashes(),
        InfoHashes::V1(v1())
    );
    assert_eq!(
        Magnet::parse(&params(MAX_PARAMS + 1)),
        Err(MagnetError::TooManyParameters)
    );
}

#[test]
fn unknown_parameters_are_ignored() {
    let m = with_v1("&xs=http://x/&as=http://y/&kt=a+b&mt=z&x.foo=1&=&&novalue&dn=n");
    let mut want = Magnet::new(InfoHashes::V1(v1()));
    want.set_display_name(Some("n".into()));
    assert_eq!(m, want);
}

#[test]
fn formats_a_known_link() {
    let mut m = Magnet::new(InfoHashes::Hybrid(v1(), v2()));
    m.set_display_name(Some("My file+1 & co.iso".into()));
    m.set_exact_length(Some(42));
    assert!(m.add_tracker("udp://t.example:80/announce"));
    assert!(!m.add_tracker("udp://t.example:80/announce"));
    assert!(!m.add_tracker(""));
    assert!(m.add_web_seed("http://w.example/a b"));
    assert!(m.add_peer("[::1]:6881".parse().unwrap()));
    assert!(m.add_peer("host.example:1".parse().unwrap()));
    assert!(!m.add_peer("host.example:1".parse().unwrap()));
    m.set_select_only(Some("2,0,1,5".parse().unwrap()));
    let want = format!(
        "magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:1220{}&dn=My%20file%2B1%20%26%20co.iso&xl=42\
         &tr=udp%3A%2F%2Ft.example%3A80%2Fannounce&ws=http%3A%2F%2Fw.example%2Fa%20b\
         &x.pe=[::1]:6881&x.pe=host.example:1&so=0-2,5",
        v2()
    );
    assert_eq!(m.to_string(), want);
    assert_eq!(want.parse::<Magnet>(), Ok(m));
}

fn info_hashes() -> impl Strategy<Value = InfoHashes> {
    let h1 = any::<[u8; 20]>().prop_map(InfoHashV1);
    let h2 = any::<[u8; 32]>().prop_map(InfoHashV2);
    prop_oneof![
        h1.clone().prop_map(InfoHashes::V1),
        h2.clone().prop_map(InfoHashes::V2),
        (h1, h2).prop_map(|(a, b)| InfoHashes::Hybrid(a, b)),
    ]
}

fn peer() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1..=u16::MAX)
            .prop_map(|(ip, port)| PeerAddr::Ip(SocketAddr::new(Ipv4Addr::from(ip).into(), port))),
        (any::<[u8; 16]>(), 1..=u16::MAX, 0..3u32).prop_map(|(ip, port, scope)| {
            PeerAddr::Ip(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                scope,
            )))
        }),
        ("[a-zA-Z0-9._-]{1,30}", 1..=u16::MAX)
            .prop_filter_map("not a host name", |(h, port)| HostPort::new(&h, port).ok())
            .prop_map(PeerAddr::Host),
    ]
}

/// Text that exercises the encoder: separators, escapes, `+`, spaces and non-ASCII.
const TEXT: &str = "[a-z&=%+#? /:\u{e9}\u{2713}\u{1f600}\t]{0,24}";

prop_compose! {
    fn magnet()(
        hashes in info_hashes(),
        name in proptest::option::of(TEXT),
        trackers in proptest::collection::vec(TEXT, 0..5),
        web_seeds in proptest::collection::vec(TEXT, 0..3),
        peers in proptest::collection::vec(peer(), 0..4),
        so in proptest::option::of(proptest::collection::vec(
            (0..=SelectOnly::MAX_INDEX, 0..40u32), 1..6)),
        xl in proptest::option::of(any::<u64>()),
    ) -> Magnet {
        let mut m = Magnet::new(hashes);
        m.set_display_name(name);
        for t in trackers {
            m.add_tracker(t);
        }
        for w in web_seeds {
            m.add_web_seed(w);
        }
        for p in peers {
            m.add_peer(p);
        }
        m.set_select_only(so.map(|ranges| {
            let ranges = ranges
                .into_iter()
                .map(|(start, len)| start..=start.saturating_add(len).min(SelectOnly::MAX_INDEX));
            SelectOnly::from_ranges(ranges).unwrap()
        }));
        m.set_exact_length(xl);
        m
    }
}

proptest! {
    #[test]
    fn format_then_parse_round_trips(m in magnet()) {
        let text = m.to_string();
        prop_assert_eq!(Magnet::parse(&text), Ok(m), "{}", text);
    }

    #[test]
    fn select_only_round_trips_and_is_canonical(
        ranges in proptest::collection::vec((0..200u32, 0..10u32), 1..12)
    ) {
        let so = SelectOnly::from_ranges(ranges.iter().map(|&(s, l)| s..=s + l)).unwrap();
        let want: Vec<u32> = (0..220)
            .filter(|i| ranges.iter().any(|&(s, l)| (s..=s + l).contains(i)))
            .collect();
        let got: Vec<u32> = (0..220).filter(|&i| so.contains(i)).collect();
        prop_assert_eq!(got, want);
        for w in so.ranges().windows(2) {
            prop_assert!(*w[0].end() + 1 < *w[1].start());
        }
        prop_assert_eq!(so.to_string().parse::<SelectOnly>(), Ok(so));
    }

    #[test]
    fn parse_never_panics(s in "magnet:\\?[a-zA-Z0-9:.%&=+\\[\\]-]{0,200}") {
        let _ = Magnet::parse(&s);
    }
}
