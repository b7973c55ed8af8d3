//! Tests of the extension payload codecs, the PEX and TEX policies, and BEP 40.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;

use super::donthave::DontHave;
use super::holepunch::{HolepunchError, HolepunchMessage};
use super::pex::{MAX_SENT_INITIAL, MAX_SENT_PER_MESSAGE, PEX_INTERVAL};
use super::tex::{tracker_list_hash, TexMessage, TexState, MAX_TEX_URLS, TEX_INTERVAL};
use super::upload_only::UploadOnly;
use super::*;
use crate::error::{Classify, Fault};
use crate::time::{Duration, Instant};

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
        port,
    )
}

fn to_vec(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut buf);
    buf
}

// ---- names ----

#[test]
fn local_ids_are_distinct_nonzero_and_named() {
    let mut ids: Vec<u8> = names::LOCAL_IDS.iter().map(|&(_, id)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), names::LOCAL_IDS.len(), "ids must be distinct");
    assert!(!ids.contains(&0), "id 0 is the handshake (BEP 10)");
    for &(name, id) in names::LOCAL_IDS {
        assert_eq!(names::local_name(id), Some(name));
    }
    assert_eq!(names::local_name(0), None);
    assert_eq!(names::UT_METADATA, b"ut_metadata");
    assert_eq!(names::UT_PEX, b"ut_pex");
}

// ---- BEP 9 messages ----

#[test]
fn metadata_decodes_bep9_examples() {
    let request = Bytes::from_static(b"d8:msg_typei0e5:piecei0ee");
    assert_eq!(
        MetadataMessage::decode(&request),
        Ok(MetadataMessage::Request { piece: 0 })
    );
    let reject = Bytes::from_static(b"d8:msg_typei2e5:piecei7ee");
    assert_eq!(
        MetadataMessage::decode(&reject),
        Ok(MetadataMessage::Reject { piece: 7 })
    );
    let data = Bytes::from_static(b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx");
    let MetadataMessage::Data {
        piece,
        total_size,
        data: bytes,
    } = MetadataMessage::decode(&data).unwrap()
    else {
        panic!("a data message");
    };
    assert_eq!(
        (piece, total_size, &bytes[..]),
        (0, 34256, &b"xxxxxxxx"[..])
    );
    // No copy: the data is a slice of the payload.
    let offset = bytes.as_ptr() as usize - data.as_ptr() as usize;
    assert_eq!(offset, data.len() - 8);
}

#[test]
fn metadata_encodes_header_and_returns_data() {
    let msg = MetadataMessage::Data {
        piece: 3,
        total_size: 50_000,
        data: Bytes::from_static(b"abc"),
    };
    let mut head = Vec::new();
    let body = msg.encode(&mut head);
    assert_eq!(head, b"d8:msg_typei1e5:piecei3e10:total_sizei50000ee");
    assert_eq!(body.as_deref(), Some(&b"abc"[..]));
    assert_eq!(msg.to_payload(), [&head[..], b"abc"].concat());
    let mut head = Vec::new();
    assert!(MetadataMessage::Request { piece: 9 }
        .encode(&mut head)
        .is_none());
    assert_eq!(head, b"d8:msg_typei0e5:piecei9ee");
}

#[test]
fn metadata_rejects_bad_messages() {
    let cases: &[(&[u8], ExtError)] = &[
        (
            b"d8:msg_typei3e5:piecei0ee",
            ExtError::UnknownMessageType(3),
        ),
        (b"d5:piecei0ee", ExtError::MissingKey("msg_type")),
        (b"d8:msg_typei0ee", ExtError::MissingKey("piece")),
        (b"d8:msg_typei0e5:piecei-1ee", ExtError::BadValue("piece")),
        (
            b"d8:msg_typei0e5:piecei4294967296ee",
            ExtError::BadValue("piece"),
        ),
        (b"d8:msg_type1:05:piecei0ee", ExtError::BadValue("msg_type")),
        (
            b"d8:msg_typei1e5:piecei0ee",
            ExtError::MissingKey("total_size"),
        ),
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei-5ee",
            ExtError::BadValue("total_size"),
        ),
        (b"li1ee", ExtError::NotADict),
    ];
    for (payload, expected) in cases {
        let got = MetadataMessage::decode(&Bytes::from_static(payload));
        assert_eq!(
            got.as_ref(),
            Err(expected),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    assert!(matches!(
        MetadataMessage::decode(&Bytes::from_static(b"d8:msg_type")),
        Err(ExtError::Bencode(_))
    ));
    let mut big = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
    big.extend(std::iter::repeat_n(0u8, METADATA_PIECE_SIZE + 1));
    assert!(matches!(
        MetadataMessage::decode(&Bytes::from(big)),
        Err(ExtError::TooLong { .. })
    ));
    assert_eq!(ExtError::UnknownMessageType(3).fault(), Fault::Unsupported);
}

proptest! {
    #[test]
    fn metadata_round_trips(kind in 0u8..3, piece: u32, total_size in 0u64..(1 << 40),
                            data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let msg = match kind {
            0 => MetadataMessage::Request { piece },
            1 => MetadataMessage::Data { piece, total_size, data: Bytes::from(data) },
            _ => MetadataMessage::Reject { piece },
        };
        prop_assert_eq!(MetadataMessage::decode(&msg.to_payload()), Ok(msg));
    }
}

// ---- BEP 11 PEX ----

#[test]
fn pex_decodes_compact_lists_and_flags() {
    let mut payload = b"d5:added12:".to_vec();
    payload.extend([10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
    payload.extend(b"7:added.f1:");
    payload.push(0x12); // only one flag for two peers: tolerated
    payload.extend(b"6:added618:");
    payload.extend(Ipv6Addr::LOCALHOST.octets());
    payload.extend([0, 81]);
    payload.extend(b"7:dropped6:");
    payload.extend([192, 168, 1, 1, 0, 1]);
    payload.push(b'e');
    let msg = PexMessage::decode(&payload).unwrap();
    assert_eq!(
        msg.added,
        vec![
            (v4(10, 0, 0, 1, 6881), PexFlags(0x12)),
            (v4(10, 0, 0, 2, 80), PexFlags::NONE),
            (
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 81),
                PexFlags::NONE
            ),
        ]
    );
    assert_eq!(msg.dropped, vec![v4(192, 168, 1, 1, 1)]);
    assert!(PexFlags(0x12).contains(PexFlags::SEED));
    assert!(PexFlags(0x12).contains(PexFlags::REACHABLE));
    assert!(!PexFlags(0x12).contains(PexFlags::UTP));
    assert_eq!(
        PexFlags::UTP.union(PexFlags::HOLEPUNCH),
        PexFlags(0x0c),
        "BEP 11 bits"
    );
}

#[test]
fn pex_encodes_sorted_keys_and_flags() {
    let msg = PexMessage {
        added: vec![
            (v4(1, 2, 3, 4, 258), PexFlags::ENCRYPTION),
            (v6(1, 2), PexFlags::UTP),
        ],
        dropped: vec![v4(5, 6, 7, 8, 9), v6(2, 3)],
    };
    let bytes = to_vec(|b| msg.encode(b));
    let text = String::from_utf8_lossy(&bytes);
    let keys = [
        "5:added6:",
        "7:added.f1:",
        "6:added618:",
        "8:added6.f1:",
        "7:dropped6:",
        "8:dropped618:",
    ];
    let mut last = 0;
    for k in keys {
        let at = text
            .find(k)
            .unwrap_or_else(|| panic!("{k} missing in {text}"));
        assert!(at >= last, "{k} out of order");
        last = at;
    }
    assert_eq!(PexMessage::decode(&bytes), Ok(msg));
    // Absent families are left out.
    let only_dropped = PexMessage {
        added: vec![],
        dropped: vec![v4(1, 1, 1, 1, 1)],
    };
    assert_eq!(
        to_vec(|b| only_dropped.encode(b)),
        b"d7:dropped6:\x01\x01\x01\x01\x00\x01e"
    );
}

#[test]
fn pex_bounds_and_errors() {
    let mut too_many = b"d5:added1206:".to_vec();
    too_many.extend(std::iter::repeat_n(1u8, 6 * 201));
    too_many.push(b'e');
    assert_eq!(
        PexMessage::decode(&too_many),
        Err(ExtError::TooMany {
            what: "pex added",
            limit: pex::MAX_ADDED
        })
    );
    // 200 in all (v4 and v6 together) is fine, 201 is not.
    let mut split = format!("d5:added{}:", 6 * 150).into_bytes();
    split.extend(std::iter::repeat_n(1u8, 6 * 150));
    split.extend(format!("6:added6{}:", 18 * 51).into_bytes());
    split.extend(std::iter::repeat_n(1u8, 18 * 51));
    split.push(b'e');
    assert!(matches!(
        PexMessage::decode(&split),
        Err(ExtError::TooMany { .. })
    ));
    assert!(matches!(
        PexMessage::decode(b"d5:added5:12345e"),
        Err(ExtError::BadLength { .. })
    ));
    assert_eq!(
        PexMessage::decode(b"d5:addedi1ee"),
        Err(ExtError::BadValue("added"))
    );
    assert_eq!(PexMessage::decode(b"i1e"), Err(ExtError::NotADict));
    assert_eq!(PexMessage::decode(b"de"), Ok(PexMessage::default()));
}

fn addr_strategy() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(Ipv4Addr::from(ip).into(), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(Ipv6Addr::from(ip).into(), p)),
    ]
}

proptest! {
    #[test]
    fn pex_round_trips(added in proptest::collection::vec((addr_strategy(), any::<u8>()), 0..40),
                       dropped in proptest::collection::vec(addr_strategy(), 0..40)) {
        // Encoding groups by family (v4 first), so compare with that order.
        let mut added: Vec<(SocketAddr, PexFlags)> =
            added.into_iter().map(|(a, f)| (a, PexFlags(f))).collect();
        added.sort_by_key(|(a, _)| a.is_ipv6());
        let mut dropped = dropped;
        dropped.sort_by_key(SocketAddr::is_ipv6);
        let msg = PexMessage { added, dropped };
        let bytes = to_vec(|b| msg.encode(b));
        prop_assert_eq!(PexMessage::decode(&bytes), Ok(msg));
    }
}

#[test]
fn pex_state_sends_diffs_at_most_once_a_minute() {
    let recipient = v4(10, 0, 0, 99, 1);
    let mut state = PexState::new(recipient);
    let t0 = Instant::from_micros(1_000_000);
    let a = (v4(10, 0, 0, 1, 1), PexFlags::SEED);
    let b = (v4(10, 0, 0, 2, 1), PexFlags::NONE);
    let c = (v6(3, 1), PexFlags::UTP);
    assert_eq!(state.next_message(t0, []), None, "nothing to say");
    let first = state
        .next_message(t0, [a, b, (recipient, PexFlags::NONE)])
        .unwrap();
    assert_eq!(first.added, vec![a, b], "never told about itself");
    assert!(first.dropped.is_empty());
    assert_eq!(state.poll_timeout(), Some(t0 + PEX_INTERVAL));
    let early = t0 + PEX_INTERVAL - Duration::from_micros(1);
    assert_eq!(
        state.next_message(early, [b, c]),
        None,
        "at most one a minute"
    );
    let second = state.next_message(t0 + PEX_INTERVAL, [b, c]).unwrap();
    assert_eq!(second.added, vec![c]);
    assert_eq!(second.dropped, vec![a.0]);
    let t2 = t0 + PEX_INTERVAL * 2;
    assert_eq!(
        state.next_message(t2, [b, c]),
        None,
        "no change, no message"
    );
    let third = state.next_message(t2, [c, a]).unwrap();
    assert_eq!(
        (third.added, third.dropped),
        (vec![a], vec![b.0]),
        "re-added after a drop"
    );
}

#[test]
fn pex_state_caps_added_and_dropped() {
    let mut state = PexState::new(v4(1, 1, 1, 1, 1));
    let many: Vec<(SocketAddr, PexFlags)> = (0..300u16)
        .map(|i| (v4(10, 0, (i >> 8) as u8, i as u8, 7), PexFlags::NONE))
        .collect();
    let t0 = Instant::ZERO;
    let first = state.next_message(t0, many.iter().copied()).unwrap();
    assert_eq!(first.added.len(), MAX_SENT_INITIAL);
    let t1 = t0 + PEX_INTERVAL;
    let second = state.next_message(t1, many.iter().copied()).unwrap();
    assert_eq!(
        second.added.len(),
        MAX_SENT_PER_MESSAGE,
        "later messages: at most 50"
    );
    let third = state.next_message(t1 + PEX_INTERVAL, []).unwrap();
    assert!(third.added.is_empty());
    assert_eq!(third.dropped.len(), MAX_SENT_PER_MESSAGE);
    // Everything sent decodes within our own receive bounds.
    for m in [first, second, third] {
        let bytes = to_vec(|b| m.encode(b));
        assert_eq!(PexMessage::decode(&bytes), Ok(m));
    }
}

// ---- BEP 54, BEP 21 ----

#[test]
fn donthave_round_trips_and_checks_length() {
    let msg = DontHave { piece: 0x0102_0304 };
    let bytes = to_vec(|b| msg.encode(b));
    assert_eq!(bytes, [1, 2, 3, 4]);
    assert_eq!(DontHave::decode(&bytes), Ok(msg));
    for bad in [&[][..], &[1, 2, 3], &[1, 2, 3, 4, 5]] {
        assert!(matches!(
            DontHave::decode(bad),
            Err(ExtError::BadLength { .. })
        ));
    }
}

#[test]
fn upload_only_round_trips() {
    for flag in [false, true] {
        let bytes = to_vec(|b| UploadOnly(flag).encode(b));
        assert_eq!(bytes, [u8::from(flag)]);
        assert_eq!(UploadOnly::decode(&bytes), Ok(UploadOnly(flag)));
    }
    assert_eq!(UploadOnly::decode(&[7, 0]), Ok(UploadOnly(true)));
    assert!(matches!(
        UploadOnly::decode(&[]),
        Err(ExtError::BadLength { .. })
    ));
}

// ---- BEP 55 ----

#[test]
fn holepunch_encodes_bep55_layout() {
    let msg = HolepunchMessage::Error {
        addr: v4(1, 2, 3, 4, 0x1ae1),
        error: HolepunchError::NotConnected,
    };
    let bytes = to_vec(|b| msg.encode(b));
    assert_eq!(bytes, [2, 0, 1, 2, 3, 4, 0x1a, 0xe1, 0, 0, 0, 2]);
    assert_eq!(HolepunchMessage::decode(&bytes), Ok(msg));
    let connect = HolepunchMessage::Connect(v6(5, 80));
    let bytes = to_vec(|b| connect.encode(b));
    assert_eq!(bytes.len(), HolepunchMessage::LEN_V6);
    assert_eq!(&bytes[..2], &[1, 1]);
    assert_eq!(HolepunchMessage::decode(&bytes), Ok(connect));
    for (code, err) in [
        (1, HolepunchError::NoSuchPeer),
        (2, HolepunchError::NotConnected),
        (3, HolepunchError::NoSupport),
        (4, HolepunchError::NoSelf),
    ] {
        assert_eq!(HolepunchError::from_code(code), Some(err));
        assert_eq!(err as u32, code);
    }
}

#[test]
fn holepunch_rejects_bad_payloads() {
    let ok = [0u8, 0, 1, 2, 3, 4, 0, 80, 0, 0, 0, 0];
    assert_eq!(
        HolepunchMessage::decode(&ok),
        Ok(HolepunchMessage::Rendezvous(v4(1, 2, 3, 4, 80)))
    );
    let mut long = ok.to_vec();
    long.push(0);
    assert!(matches!(
        HolepunchMessage::decode(&long),
        Err(ExtError::BadLength { .. })
    ));
    assert!(matches!(
        HolepunchMessage::decode(&ok[..11]),
        Err(ExtError::BadLength { .. })
    ));
    assert!(matches!(
        HolepunchMessage::decode(&ok[..1]),
        Err(ExtError::BadLength { .. })
    ));
    let mut v6_short = ok;
    v6_short[1] = 1; // claims IPv6 but carries IPv4
    assert!(matches!(
        HolepunchMessage::decode(&v6_short),
        Err(ExtError::BadLength { .. })
    ));
    let mut bad_type = ok;
    bad_type[1] = 2;
    assert_eq!(
        HolepunchMessage::decode(&bad_type),
        Err(ExtError::BadAddressType(2))
    );
    let mut unknown = ok;
    unknown[0] = 3;
    assert_eq!(
        HolepunchMessage::decode(&unknown),
        Err(ExtError::UnknownMessageType(3))
    );
    let mut bad_code = ok;
    bad_code[0] = 2;
    bad_code[11] = 5;
    assert_eq!(
        HolepunchMessage::decode(&bad_code),
        Err(ExtError::UnknownErrorCode(5))
    );
    // A non-error message's error code is ignored.
    let mut stray = ok;
    stray[11] = 9;
    assert!(HolepunchMessage::decode(&stray).is_ok());
}

// ---- BEP 28 ----

#[test]
fn tex_round_trips_and_bounds() {
    let msg = TexMessage {
        added: vec![
            "http://tracker.example/announce".into(),
            "udp://t.example:80".into(),
        ],
    };
    let bytes = to_vec(|b| msg.encode(b));
    assert_eq!(
        bytes,
        b"d5:addedl31:http://tracker.example/announce18:udp://t.example:80ee"
    );
    assert_eq!(TexMessage::decode(&bytes), Ok(msg));
    // Non-strings, non-UTF-8 and over-long URLs are skipped.
    let long = "x".repeat(tex::MAX_TEX_URL_LEN + 1);
    let payload = [
        b"d5:addedli1e1:\xff".as_slice(),
        format!("{}:{long}", long.len()).as_bytes(),
        b"3:abcee",
    ]
    .concat();
    assert_eq!(
        TexMessage::decode(&payload).map(|m| m.added),
        Ok(vec!["abc".to_owned()])
    );
    let mut many = b"d5:addedl".to_vec();
    for _ in 0..=MAX_TEX_URLS {
        many.extend(b"1:a");
    }
    many.extend(b"ee");
    assert!(matches!(
        TexMessage::decode(&many),
        Err(ExtError::TooMany { .. })
    ));
    assert_eq!(
        TexMessage::decode(b"d5:addedi1ee"),
        Err(ExtError::BadValue("added"))
    );
    assert_eq!(TexMessage::decode(b"de"), Ok(TexMessage::default()));
}

#[test]
fn tex_list_hash_is_sorted_sha1() {
    use sha1::{Digest as _, Sha1};
    let a = tracker_list_hash(["udp://b", "http://a"]);
    assert_eq!(
        a,
        tracker_list_hash(["http://a", "udp://b"]),
        "order does not matter"
    );
    let expected: [u8; 20] = Sha1::digest(b"http://audp://b").into();
    assert_eq!(a, expected);
}

#[test]
fn tex_state_sends_only_new_trackers_every_two_minutes() {
    let mut state = TexState::new(["http://a"]);
    let t0 = Instant::ZERO;
    assert_eq!(
        state.next_message(t0, ["http://a"]),
        None,
        "peer has the same list"
    );
    let m = state.next_message(t0, ["http://a", "http://b"]).unwrap();
    assert_eq!(m.added, vec!["http://b".to_owned()]);
    let early = t0 + TEX_INTERVAL - Duration::from_secs(1);
    assert_eq!(state.next_message(early, ["http://c"]), None);
    let m = state
        .next_message(t0 + TEX_INTERVAL, ["http://a", "http://c"])
        .unwrap();
    assert_eq!(m.added, vec!["http://c".to_owned()]);
    let mut fresh = TexState::new([]);
    let full = fresh.next_message(t0, ["http://b", "http://a"]).unwrap();
    assert_eq!(
        full.added,
        vec!["http://a".to_owned(), "http://b".to_owned()]
    );
}

// ---- BEP 40 ----

#[test]
fn peer_priority_bep40_vectors() {
    let client = v4(123, 213, 32, 10, 6881);
    assert_eq!(peer_priority(client, v4(98, 76, 54, 32, 1)), 0xec2d_7224);
    assert_eq!(peer_priority(client, v4(123, 213, 32, 234, 1)), 0x9956_8189);
    // The BEP's masked inputs, hashed directly.
    assert_eq!(
        crc32c::crc32c(&[0x62, 0x4c, 0x14, 0x00, 0x7b, 0xd5, 0x00, 0x00]),
        0xec2d_7224
    );
}

#[test]
fn peer_priority_uses_ports_for_equal_addresses() {
    let a = v4(10, 0, 0, 1, 6881);
    let b = v4(10, 0, 0, 1, 6882);
    assert_eq!(
        peer_priority(a, b),
        crc32c::crc32c(&[0x1a, 0xe1, 0x1a, 0xe2])
    );
    assert_ne!(peer_priority(a, b), peer_priority(a, v4(10, 0, 0, 1, 6883)));
    // An IPv4-mapped IPv6 address is its IPv4 address.
    let mapped = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().into(), 6882);
    assert_eq!(peer_priority(a, mapped), peer_priority(a, b));
}

#[test]
fn peer_priority_v6_masks_per_bep40() {
    let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db9:1:2::1".parse().unwrap();
    let mask = |ip: Ipv6Addr, keep: usize| {
        let mut o = ip.octets();
        o[keep..].iter_mut().for_each(|x| *x &= 0x55);
        o
    };
    let (x, y) = (mask(a, 6), mask(b, 6));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let expected = crc32c::crc32c(&[lo, hi].concat());
    let sa = |ip| SocketAddr::new(IpAddr::V6(ip), 1);
    assert_eq!(peer_priority(sa(a), sa(b)), expected);
    // Same /48: the seventh byte is kept too.
    let c: Ipv6Addr = "2001:db8:1:ff00::1".parse().unwrap();
    let (x, y) = (mask(a, 7), mask(c, 7));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    assert_eq!(
        peer_priority(sa(a), sa(c)),
        crc32c::crc32c(&[lo, hi].concat())
    );
}

proptest! {
    #[test]
    fn peer_priority_is_symmetric(a in addr_strategy(), b in addr_strategy()) {
        prop_assert_eq!(peer_priority(a, b), peer_priority(b, a));
    }
}
