//! Golden vectors from the BEPs and table tests of malformed input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::id::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};

/// Encodes a message with its piece data appended (what goes on the wire).
pub(super) fn wire_bytes(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(body) = m.encode(&mut out) {
        out.extend_from_slice(&body);
    }
    out
}

fn decode_all(bytes: &[u8], limits: &WireLimits) -> Result<Decoded<Message>, WireError> {
    decode(&Bytes::copy_from_slice(bytes), limits)
}

fn root() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

#[test]
fn handshake_golden_bytes() {
    // BEP 3: \x13 "BitTorrent protocol", 8 reserved bytes, 20-byte info-hash, 20-byte peer id.
    // Reserved: BEP 10 (byte 5, 0x10), BEP 6 (byte 7, 0x04), BEP 5 (byte 7, 0x01).
    let mut expected = Vec::new();
    expected.push(19u8);
    expected.extend_from_slice(b"BitTorrent protocol");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
    expected.extend_from_slice(&[0xaa; 20]);
    expected.extend_from_slice(b"-BS0100-abcdefghijkl");
    assert_eq!(expected.len(), Handshake::LEN);

    let hs = Handshake {
        reserved: Reserved::EXTENSION_PROTOCOL | Reserved::FAST | Reserved::DHT,
        info_hash: [0xaa; 20],
        peer_id: PeerId(*b"-BS0100-abcdefghijkl"),
    };
    let mut out = Vec::new();
    hs.encode(&mut out);
    assert_eq!(out, expected);

    let Decoded::Ready(decoded, consumed) = Handshake::decode(&expected).unwrap() else {
        panic!("a whole handshake must decode");
    };
    assert_eq!(consumed, 68);
    assert_eq!(decoded, hs);
    assert!(decoded.reserved.contains(Reserved::FAST));
    assert!(decoded.reserved.contains(Reserved::EXTENSION_PROTOCOL));
    assert!(decoded.reserved.contains(Reserved::DHT));
    assert!(!decoded.reserved.contains(Reserved::V2));
}

#[test]
fn reserved_bits_are_where_the_beps_put_them() {
    assert_eq!(Reserved::EXTENSION_PROTOCOL.0, [0, 0, 0, 0, 0, 0x10, 0, 0]); // BEP 10
    assert_eq!(Reserved::FAST.0, [0, 0, 0, 0, 0, 0, 0, 0x04]); // BEP 6
    assert_eq!(Reserved::DHT.0, [0, 0, 0, 0, 0, 0, 0, 0x01]); // BEP 5
    assert_eq!(Reserved::V2.0, [0, 0, 0, 0, 0, 0, 0, 0x10]); // BEP 52
    let ours = Reserved::FAST | Reserved::V2 | Reserved::DHT;
    let theirs = Reserved::FAST | Reserved::EXTENSION_PROTOCOL;
    assert_eq!(ours.intersection(theirs), Reserved::FAST);
    assert!(!ours.contains(theirs));
    assert!(Reserved::NONE.contains(Reserved::NONE));
}

#[test]
fn handshake_names_v1_or_truncated_v2_hash() {
    let v1 = InfoHashV1([1; 20]);
    let v2 = InfoHashV2(std::array::from_fn(|i| 100 + i as u8));
    let hybrid = InfoHashes::Hybrid(v1, v2);
    let peer = PeerId([7; 20]);

    let hs = Handshake::new(Reserved::V2, &hybrid, peer);
    assert_eq!(hs.info_hash, [1; 20], "a hybrid is named by its v1 hash");
    assert_eq!(hs.names(&hybrid), Some(HashVersion::V1));

    // BEP 52 upgrade: the responder answers with the truncated v2 hash.
    let upgraded = Handshake {
        info_hash: v2.truncated(),
        ..hs
    };
    assert_eq!(upgraded.names(&hybrid), Some(HashVersion::V2));

    let v2_only = InfoHashes::V2(v2);
    let hs2 = Handshake::new(Reserved::NONE, &v2_only, peer);
    assert_eq!(hs2.info_hash, v2.truncated());
    assert_eq!(hs2.names(&v2_only), Some(HashVersion::V2));
    assert_eq!(hs2.names(&InfoHashes::V1(v1)), None);
}

#[test]
fn allowed_fast_set_matches_bep6_vector() {
    // BEP 6 "Example results": 1313 pieces, infohash 0xaa * 20, peer 80.4.4.200.
    let ip = Ipv4Addr::new(80, 4, 4, 200);
    let hash = [0xaa; 20];
    assert_eq!(
        allowed_fast_set(ip, &hash, 1313, 7),
        [1059, 431, 808, 1217, 287, 376, 1188]
    );
    assert_eq!(
        allowed_fast_set(ip, &hash, 1313, 9),
        [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
    );
    // Only the first three octets matter (step 1).
    assert_eq!(
        allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &hash, 1313, 9),
        allowed_fast_set(ip, &hash, 1313, 9)
    );
    assert_ne!(
        allowed_fast_set(Ipv4Addr::new(80, 4, 5, 200), &hash, 1313, 9),
        allowed_fast_set(ip, &hash, 1313, 9)
    );
}

#[test]
fn allowed_fast_set_edge_cases() {
    let ip = Ipv4Addr::new(10, 0, 0, 1);
    let hash = [3; 20];
    assert_eq!(allowed_fast_set(ip, &hash, 0, 10), Vec::<u32>::new());
    assert_eq!(allowed_fast_set(ip, &hash, 5, 10), [0, 1, 2, 3, 4]);
    assert_eq!(allowed_fast_set(ip, &hash, 5, 5), [0, 1, 2, 3, 4]);
    assert_eq!(allowed_fast_set(ip, &hash, 100, 0), Vec::<u32>::new());
    let set = allowed_fast_set(ip, &hash, 6, 5);
    assert_eq!(set.len(), 5);
    let mut sorted = set.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "no duplicates: {set:?}");
    assert!(set.iter().all(|&i| i < 6));
}

/// BEP 10's encoded example. Its `µT_PEX` key is declared 6 bytes long, so that `µ` is the one
/// Latin-1 byte 0xb5, while the `v` string is UTF-8 (`\xc2\xb5`, 13 bytes): the example mixes
/// both, and we reproduce it byte for byte.
const BEP10_EXAMPLE: &[u8] =
    b"d1:md11:LT_metadatai1e6:\xb5T_PEXi2ee1:pi6881e1:v13:\xc2\xb5Torrent 1.2e";

#[test]
fn extended_handshake_bep10_example() {
    let hs = ExtendedHandshake::decode(BEP10_EXAMPLE).unwrap();
    assert_eq!(hs.extension_id(b"LT_metadata"), Some(1));
    assert_eq!(hs.extension_id(b"\xb5T_PEX"), Some(2));
    assert_eq!(hs.extensions.len(), 2);
    assert_eq!(hs.listen_port, Some(6881));
    assert_eq!(hs.client.as_deref(), Some("\u{b5}Torrent 1.2"));
    assert_eq!(hs.request_queue, None);
    assert!(!hs.upload_only);

    let mut out = Vec::new();
    hs.encode(&mut out);
    assert_eq!(out, BEP10_EXAMPLE);

    // As a whole message: <len><20><0><dict>.
    let msg = hs.to_message();
    let bytes = wire_bytes(&msg);
    assert_eq!(
        &bytes[..6],
        &[0, 0, 0, 2 + BEP10_EXAMPLE.len() as u8, 20, 0]
    );
    assert_eq!(&bytes[6..], BEP10_EXAMPLE);
}

#[test]
fn extended_handshake_disabling_an_extension() {
    // BEP 10: an `m` entry of 0 turns the extension off.
    let hs = ExtendedHandshake::decode(b"d1:md11:LT_metadatai0eee").unwrap();
    assert_eq!(hs.extensions.get(&b"LT_metadata"[..]), Some(&0));
    assert_eq!(hs.extension_id(b"LT_metadata"), None);
}

#[test]
fn extended_handshake_all_fields_round_trip() {
    let hs = ExtendedHandshake {
        extensions: [(b"ut_metadata".to_vec(), 3), (b"ut_pex".to_vec(), 1)]
            .into_iter()
            .collect(),
        client: Some("bitshoal 0.1.0".into()),
        listen_port: Some(51413),
        request_queue: Some(500),
        your_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ipv6: Some("2001:db8::1".parse().unwrap()),
        metadata_size: Some(31_337),
        upload_only: true,
    };
    let mut out = Vec::new();
    hs.encode(&mut out);
    // Canonical: keys sorted, so a strict decoder accepts it.
    crate::bencode::decode(&out).expect("our encoding is canonical bencode");
    assert_eq!(ExtendedHandshake::decode(&out).unwrap(), hs);
}

#[test]
fn extended_handshake_is_lenient_about_values() {
    // Wrong types and out-of-range values are ignored; unknown keys are ignored (BEP 10).
    let hs = ExtendedHandshake::decode(
        b"d1:ai1e1:md1:xi300e1:yi-1e1:zi5ee1:pi70000e4:reqqi-5e6:yourip3:abc1:vi5ee",
    )
    .unwrap();
    assert_eq!(hs.extensions.len(), 1);
    assert_eq!(hs.extension_id(b"z"), Some(5));
    assert_eq!(hs.listen_port, None);
    assert_eq!(hs.request_queue, None);
    assert_eq!(hs.your_ip, None);
    assert_eq!(hs.client, None);
    // Unsorted keys are tolerated (lenient bencode).
    let hs = ExtendedHandshake::decode(b"d1:pi1e1:md1:bi2e1:ai1eee").unwrap();
    assert_eq!(hs.listen_port, Some(1));
    assert_eq!(hs.extension_id(b"a"), Some(1));
    // yourip as IPv4.
    let hs = ExtendedHandshake::decode(b"d6:yourip4:\x7f\x00\x00\x01e").unwrap();
    assert_eq!(hs.your_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[test]
fn extended_handshake_errors() {
    assert_eq!(
        ExtendedHandshake::decode(b"li1ee"),
        Err(WireError::ExtendedHandshakeNotDict)
    );
    assert!(matches!(
        ExtendedHandshake::decode(b"d1:m"),
        Err(WireError::ExtendedHandshake(_))
    ));
    let mut many = b"d1:md".to_vec();
    for i in 0..=MAX_EXTENSIONS {
        crate::bencode::put_bytes(&mut many, format!("e{i:03}").as_bytes());
        crate::bencode::put_int(&mut many, 1);
    }
    many.extend_from_slice(b"ee");
    assert_eq!(
        ExtendedHandshake::decode(&many),
        Err(WireError::TooManyExtensions {
            limit: MAX_EXTENSIONS
        })
    );
    // Over-long names are dropped, not kept.
    let long = format!("d1:md{}:{}i1eee", MAX_EXTENSION_NAME + 1, "x".repeat(65));
    assert!(ExtendedHandshake::decode(long.as_bytes())
        .unwrap()
        .extensions
        .is_empty());
    // Deep nesting under an unknown key stops at the depth limit.
    let deep = format!("d1:x{}{}e", "l".repeat(100), "e".repeat(100));
    assert!(matches!(
        ExtendedHandshake::decode(deep.as_bytes()),
        Err(WireError::ExtendedHandshake(_))
    ));
}

/// Every message kind with its bytes written out from the layouts in BEP 3, 5, 6, 10 and 52.
fn golden_messages() -> Vec<(Message, Vec<u8>)> {
    let req = BlockRequest {
        index: 1,
        begin: 0x4000,
        length: 0x4000,
    };
    let req_bytes = [0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0];
    let hreq = HashRequest {
        pieces_root: root(),
        base_layer: 0,
        index: 4,
        length: 2,
        proof_layers: 3,
    };
    let mut hreq_bytes = root().to_vec();
    hreq_bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3]);
    let cat = |parts: &[&[u8]]| parts.concat();
    vec![
        (Message::KeepAlive, vec![0, 0, 0, 0]),
        (Message::Choke, vec![0, 0, 0, 1, 0]),
        (Message::Unchoke, vec![0, 0, 0, 1, 1]),
        (Message::Interested, vec![0, 0, 0, 1, 2]),
        (Message::NotInterested, vec![0, 0, 0, 1, 3]),
        (Message::Have(0x0102_0304), vec![0, 0, 0, 5, 4, 1, 2, 3, 4]),
        (
            Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
            vec![0, 0, 0, 3, 5, 0xff, 0x80],
        ),
        (Message::Request(req), cat(&[&[0, 0, 0, 13, 6], &req_bytes])),
        (
            Message::Piece {
                index: 2,
                begin: 0x10,
                data: Bytes::from_static(b"abc"),
            },
            vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 0x10, b'a', b'b', b'c'],
        ),
        (Message::Cancel(req), cat(&[&[0, 0, 0, 13, 8], &req_bytes])),
        (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
        (Message::SuggestPiece(7), vec![0, 0, 0, 5, 0x0d, 0, 0, 0, 7]),
        (Message::HaveAll, vec![0, 0, 0, 1, 0x0e]),
        (Message::HaveNone, vec![0, 0, 0, 1, 0x0f]),
        (
            Message::RejectRequest(req),
            cat(&[&[0, 0, 0, 0x0d, 0x10], &req_bytes]),
        ),
        (Message::AllowedFast(9), vec![0, 0, 0, 5, 0x11, 0, 0, 0, 9]),
        (
            Message::Extended {
                id: 3,
                payload: Bytes::from_static(b"de"),
            },
            vec![0, 0, 0, 4, 20, 3, b'd', b'e'],
        ),
        (
            Message::HashRequest(hreq),
            cat(&[&[0, 0, 0, 49, 21], &hreq_bytes]),
        ),
        (
            Message::Hashes {
                request: hreq,
                hashes: Bytes::from(vec![0xcc; 64]),
            },
            cat(&[&[0, 0, 0, 49 + 64, 22], &hreq_bytes, &[0xcc; 64]]),
        ),
        (
            Message::HashReject(hreq),
            cat(&[&[0, 0, 0, 49, 23], &hreq_bytes]),
        ),
        (
            Message::Unknown {
                id: 99,
                payload: Bytes::from_static(b"xy"),
            },
            vec![0, 0, 0, 3, 99, b'x', b'y'],
        ),
    ]
}

#[test]
fn messages_golden_encode_and_decode() {
    let limits = WireLimits::DEFAULT;
    for (msg, bytes) in golden_messages() {
        assert_eq!(wire_bytes(&msg), bytes, "encoding {msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len(), "encoded_len of {msg:?}");
        assert_eq!(
            decode_all(&bytes, &limits),
            Ok(Decoded::Ready(msg.clone(), bytes.len())),
            "decoding {msg:?}"
        );
        // Trailing bytes of the next message are left alone.
        let mut more = bytes.clone();
        more.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(
            decode_all(&more, &limits),
            Ok(Decoded::Ready(msg, bytes.len()))
        );
    }
}

#[test]
fn piece_body_is_returned_not_copied() {
    let data = Bytes::from(vec![5u8; 1000]);
    let msg = Message::Piece {
        index: 3,
        begin: 16384,
        data: data.clone(),
    };
    let mut head = Vec::new();
    let body = msg.encode(&mut head).expect("a piece has a body");
    assert_eq!(head.len(), 13, "only the header is written");
    assert_eq!(
        body.as_ptr(),
        data.as_ptr(),
        "the body is the same allocation"
    );

    let mut direct = Vec::new();
    encode_piece_header(3, 16384, 1000, &mut direct);
    assert_eq!(direct, head);
}

#[test]
fn request_batch_is_requests_back_to_back() {
    let batch: Vec<BlockRequest> = (0..5)
        .map(|i| BlockRequest {
            index: i,
            begin: i * 16384,
            length: 16384,
        })
        .collect();
    let mut out = Vec::new();
    encode_requests(batch.iter().copied(), &mut out);
    let mut expected = Vec::new();
    for r in &batch {
        expected.extend(wire_bytes(&Message::Request(*r)));
    }
    assert_eq!(out, expected);
    assert_eq!(out.len(), 5 * 17);
}

// ---------------------------------------------------------------------------------------------
// Malformed input

/// A frame header: length prefix and id, no body.
fn header(length: u32, id: u8) -> Vec<u8> {
    let mut v = length.to_be_bytes().to_vec();
    v.push(id);
    v
}

#[test]
fn wrong_lengths_for_each_fixed_size_id() {
    // (id, the only valid length prefix)
    let fixed: &[(u8, u32)] = &[
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 5),
        (6, 13),
        (8, 13),
        (9, 3),
        (13, 5),
        (14, 1),
        (15, 1),
        (16, 13),
        (17, 5),
        (21, 49),
        (23, 49),
    ];
    let limits = WireLimits::DEFAULT;
    for &(id, valid) in fixed {
        for length in [1, valid - 1, valid + 1, valid + 100, 2, 4, 12, 14, 48, 50] {
            if length == valid || length == 0 {
                continue;
            }
            // Reported from the header alone: the body is never waited for.
            assert_eq!(
                decode_all(&header(length, id), &limits),
                Err(WireError::BadLength { id, length }),
                "id {id} length {length}"
            );
        }
        // The valid length waits for the body.
        assert_eq!(
            decode_all(&header(valid, id), &limits),
            if valid == 1 {
                Ok(Decoded::Ready(
                    golden_messages()
                        .into_iter()
                        .find(|(m, _)| m.id() == Some(id))
                        .unwrap()
                        .0,
                    5,
                ))
            } else {
                Ok(Decoded::Need(valid as usize - 1))
            },
            "id {id}"
        );
    }
}

#[test]
fn wrong_lengths_for_variable_size_ids() {
    let limits = WireLimits::DEFAULT;
    let cases: &[(u32, u8, WireError)] = &[
        (8, 7, WireError::BadLength { id: 7, length: 8 }),
        (1, 7, WireError::BadLength { id: 7, length: 1 }),
        (1, 20, WireError::BadLength { id: 20, length: 1 }),
        (48, 22, WireError::BadLength { id: 22, length: 48 }),
        (50, 22, WireError::BadLength { id: 22, length: 50 }),
        (49 + 33, 22, WireError::BadLength { id: 22, length: 82 }),
    ];
    for (length, id, err) in cases {
        assert_eq!(
            decode_all(&header(*length, *id), &limits),
            Err(err.clone()),
            "id {id} length {length}"
        );
    }
}

#[test]
fn frames_over_the_limits_fail_before_the_body() {
    let limits = WireLimits::DEFAULT;
    let max_piece = 9 + 128 * 1024;
    let cases: &[(u32, u8, Option<u32>)] = &[
        // (length, id, expected limit or None if within limits)
        (max_piece, 7, None),
        (max_piece + 1, 7, Some(max_piece)),
        (2 + 17 * 1024, 20, None),
        (3 + 17 * 1024, 20, Some(2 + 17 * 1024)),
        (1 + 17 * 1024, 99, None),
        (2 + 17 * 1024, 99, Some(1 + 17 * 1024)),
        (1 + 256 * 1024, 5, None),
        (49 + 32 * 576, 22, None),
        (49 + 32 * 577, 22, Some(49 + 32 * 576)),
    ];
    for &(length, id, limit) in cases {
        let got = decode_all(&header(length, id), &limits);
        match limit {
            None => assert_eq!(got, Ok(Decoded::Need(length as usize - 1)), "id {id}"),
            Some(limit) => assert_eq!(
                got,
                Err(WireError::LimitExceeded {
                    id: Some(id),
                    length,
                    limit
                }),
                "id {id}"
            ),
        }
    }
    // Over the largest limit of all: refused from the length prefix alone, before the id.
    let max = limits.max_frame();
    assert_eq!(
        decode_all(&(max + 1).to_be_bytes(), &limits),
        Err(WireError::LimitExceeded {
            id: None,
            length: max + 1,
            limit: max
        })
    );
    assert_eq!(
        decode_all(&u32::MAX.to_be_bytes(), &limits),
        Err(WireError::LimitExceeded {
            id: None,
            length: u32::MAX,
            limit: max
        })
    );
}

#[test]
fn bitfield_checked_against_known_piece_count() {
    let limits = WireLimits::DEFAULT.with_num_pieces(10); // 2 bytes, 6 spare bits
    assert_eq!(
        decode_all(&header(4, 5), &limits),
        Err(WireError::BitfieldLength {
            expected: 2,
            actual: 3
        })
    );
    assert_eq!(
        decode_all(&header(2, 5), &limits),
        Err(WireError::BitfieldLength {
            expected: 2,
            actual: 1
        })
    );
    assert_eq!(
        decode_all(&[0, 0, 0, 3, 5, 0xff, 0xc0], &limits),
        Ok(Decoded::Ready(
            Message::Bitfield(Bytes::from_static(&[0xff, 0xc0])),
            7
        ))
    );
    for spare in [0x01, 0x20, 0x3f] {
        assert_eq!(
            decode_all(&[0, 0, 0, 3, 5, 0xff, 0xc0 | spare], &limits),
            Err(WireError::BitfieldSpareBits),
            "spare {spare:#x}"
        );
    }
    // A multiple of 8 has no spare bits.
    let limits = WireLimits::DEFAULT.with_num_pieces(16);
    assert!(matches!(
        decode_all(&[0, 0, 0, 3, 5, 0xff, 0xff], &limits),
        Ok(Decoded::Ready(Message::Bitfield(_), 7))
    ));
    // Unknown piece count: bounded by max_bitfield.
    let limits = WireLimits {
        max_bitfield: 4,
        ..WireLimits::DEFAULT
    };
    assert_eq!(
        decode_all(&header(6, 5), &limits),
        Err(WireError::LimitExceeded {
            id: Some(5),
            length: 6,
            limit: 5
        })
    );
}

#[test]
fn handshake_truncated_and_wrong_protocol() {
    let hs = Handshake {
        reserved: Reserved::FAST,
        info_hash: [9; 20],
        peer_id: PeerId([8; 20]),
    };
    let mut bytes = Vec::new();
    hs.encode(&mut bytes);
    for len in 0..Handshake::LEN {
        assert_eq!(
            Handshake::decode(&bytes[..len]),
            Ok(Decoded::Need(Handshake::LEN - len)),
            "prefix of {len}"
        );
    }
    // Wrong pstrlen: refused from the first byte.
    assert_eq!(
        Handshake::decode(&[18]),
        Err(WireError::BadProtocol { offset: 0 })
    );
    let mut wrong = bytes.clone();
    wrong[0] = 20;
    assert_eq!(
        Handshake::decode(&wrong),
        Err(WireError::BadProtocol { offset: 0 })
    );
    // Wrong protocol string: refused as soon as the wrong byte arrives.
    let mut wrong = bytes.clone();
    wrong[5] = b't';
    assert_eq!(
        Handshake::decode(&wrong[..6]),
        Err(WireError::BadProtocol { offset: 5 })
    );
    assert_eq!(
        Handshake::decode(&wrong[..5]),
        Ok(Decoded::Need(Handshake::LEN - 5))
    );
    // An HTTP request is not a handshake.
    assert_eq!(
        Handshake::decode(b"GET / HTTP/1.1\r\n"),
        Err(WireError::BadProtocol { offset: 0 })
    );
}

#[test]
fn unknown_ids_are_messages_not_errors() {
    for id in [10u8, 11, 12, 18, 19, 24, 255] {
        assert_eq!(
            decode_all(&[0, 0, 0, 1, id], &WireLimits::DEFAULT),
            Ok(Decoded::Ready(
                Message::Unknown {
                    id,
                    payload: Bytes::new()
                },
                5
            ))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Framer

#[test]
fn framer_piece_payload_shares_the_receive_buffer() {
    let data = vec![0x5a; 16384];
    let msg = Message::Piece {
        index: 4,
        begin: 0,
        data: Bytes::from(data.clone()),
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&wire_bytes(&msg));
    buf.extend_from_slice(&wire_bytes(&Message::Have(1)));
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();

    let mut framer = Framer::default();
    let Some(Message::Piece { data: got, .. }) = framer.next(&mut buf).unwrap() else {
        panic!("expected a piece");
    };
    assert_eq!(got, data);
    let at = got.as_ptr() as usize;
    assert!(
        at >= start && at + got.len() <= end,
        "the block points into the receive buffer"
    );
    assert_eq!(framer.next(&mut buf).unwrap(), Some(Message::Have(1)));
    assert_eq!(framer.next(&mut buf).unwrap(), None);
    assert_eq!(framer.need(), 4);
    assert!(buf.is_empty());
}

#[test]
fn framer_refuses_oversized_frame_from_its_header() {
    let mut framer = Framer::new(WireLimits {
        max_block: 16384,
        ..WireLimits::DEFAULT
    });
    let mut buf = BytesMut::from(&header(9 + 16385, 7)[..]);
    assert_eq!(
        framer.next(&mut buf),
        Err(WireError::LimitExceeded {
            id: Some(7),
            length: 9 + 16385,
            limit: 9 + 16384
        })
    );
}

#[test]
fn framer_waits_and_reports_need() {
    let mut framer = Framer::default();
    let bytes = wire_bytes(&Message::Have(77));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&bytes[..2]);
    assert_eq!(framer.next(&mut buf).unwrap(), None);
    assert_eq!(framer.need(), 2);
    assert_eq!(buf.len(), 2, "nothing consumed while waiting");
    buf.extend_from_slice(&bytes[2..6]);
    assert_eq!(framer.next(&mut buf).unwrap(), None);
    assert_eq!(framer.need(), 3);
    buf.extend_from_slice(&bytes[6..]);
    assert_eq!(framer.next(&mut buf).unwrap(), Some(Message::Have(77)));
}

#[test]
fn framer_applies_new_limits() {
    let mut framer = Framer::default();
    framer.set_limits(framer.limits().with_num_pieces(8));
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 5, 0xff, 0][..]);
    assert_eq!(
        framer.next(&mut buf),
        Err(WireError::BitfieldLength {
            expected: 1,
            actual: 2
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Peer ids (BEP 20)

#[test]
fn client_names_from_peer_ids() {
    /// A peer id and the (name, version) expected for it.
    type Case = (&'static [u8; 20], Option<(&'static str, &'static str)>);
    let cases: &[Case] = &[
        (b"-LT2080-abcdefghijkl", Some(("libtorrent", "2.0.8"))),
        (
            b"-lt0D80-abcdefghijkl",
            Some(("libTorrent (rakshasa)", "0.13.8")),
        ),
        (b"-qB4250-abcdefghijkl", Some(("qBittorrent", "4.2.5"))),
        (b"-TR2940-abcdefghijkl", Some(("Transmission", "2.94"))),
        (
            b"-TR300Z-abcdefghijkl",
            Some(("Transmission", "3.00 (dev)")),
        ),
        (b"-TR4060-abcdefghijkl", Some(("Transmission", "4.0.6"))),
        (b"-DE13F0-abcdefghijkl", Some(("Deluge", "1.3.15"))),
        (b"-UT355W-abcdefghijkl", Some(("\u{b5}Torrent", "3.5.5.32"))),
        (b"-BC0200-abcdefghijkl", Some(("BitComet", "0.2.0"))),
        (b"-rQ0100-abcdefghijkl", Some(("rqbit", "0.1.0"))),
        (b"-BS0100-abcdefghijkl", Some(("bitshoal", "0.1.0"))),
        (b"A2-1-37-0-abcdefghij", Some(("aria2", "1.37.0"))),
        (b"M4-20-8-abcdefghijkl", Some(("Mainline", "4.20.8"))),
        (b"M7-4-3--abcdefghijkl", Some(("Mainline", "7.4.3"))),
        (b"Q1-10-0-abcdefghijkl", Some(("Queen Bee", "1.10.0"))),
        (b"S58B-----abcdefghijk", Some(("Shad0w", "5.8.11"))),
        (b"T03I-----abcdefghijk", Some(("BitTornado", "0.3.18"))),
        (b"exbc\x00\x38abcdefghijklmn", Some(("BitComet", "0.56"))),
        (b"exbc\x00\x38LORDefghijklmn", Some(("BitLord", "0.56"))),
        (
            b"XBT054d-abcdefghijkl",
            Some(("XBT Client", "0.5.4 (debug)")),
        ),
        (b"XBT054--abcdefghijkl", Some(("XBT Client", "0.5.4"))),
        (b"-ZZ1234-abcdefghijkl", None),    // unknown code
        (b"-LT2\x0080-abcdefghijkl", None), // a control byte in the version
        (b"S5-8B----abcdefghijk", None),    // dash inside the Shad0w version
        (b"M4-20x8-abcdefghijkl", None),
        (&[0; 20], None),
    ];
    for (id, expected) in cases {
        let got = client_name(&PeerId(**id));
        let got = got.as_ref().map(|c| (c.name, c.version.as_str()));
        assert_eq!(got, *expected, "{:?}", PeerId(**id));
    }
    let c = client_name(&PeerId(*b"-LT2080-abcdefghijkl")).unwrap();
    assert_eq!(c.to_string(), "libtorrent 2.0.8");
}

#[test]
fn generated_peer_id_is_ours_and_printable() {
    let id = PeerId::generate(
        &PeerId::BITSHOAL_PREFIX,
        [0, 61, 62, 255, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert_eq!(&id.0[..3], b"-BS");
    assert_eq!(id.0[7], b'-');
    assert!(id.0.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-'));
    assert_eq!(&id.0[8..12], b"0z07");
    let client = client_name(&id).expect("our own ids are recognised");
    assert_eq!(client.name, "bitshoal");
    let expected = format!(
        "{}.{}.{}",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(client.version, expected);
    // Different random bytes, different ids.
    assert_ne!(
        PeerId::generate(&PeerId::BITSHOAL_PREFIX, [1; 12]),
        PeerId::generate(&PeerId::BITSHOAL_PREFIX, [2; 12])
    );
}

#[test]
fn missing_counts_the_rest_of_the_prefix_then_of_the_frame() {
    assert_eq!(Framer::missing(&[]), 4);
    assert_eq!(Framer::missing(&[0, 0]), 2);
    // A `have`: 4-byte prefix saying 5, then 5 bytes.
    let have = [0, 0, 0, 5, 4, 0, 0, 0, 3];
    for cut in 4..=have.len() {
        assert_eq!(Framer::missing(&have[..cut]), have.len() - cut);
    }
    assert_eq!(
        Framer::missing(&[0, 0, 0, 0]),
        0,
        "a keep-alive is complete"
    );
    // The largest prefix a peer can send is counted, not trusted: nothing overflows.
    assert_eq!(Framer::missing(&[0xff; 4]), 0xffff_ffff);
}
