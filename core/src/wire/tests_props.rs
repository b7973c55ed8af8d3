//! Property tests: round trips, arbitrary input, and input arriving in arbitrary pieces.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::tests::wire_bytes;
use super::*;
use crate::id::PeerId;

fn payload(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn block_request() -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| BlockRequest {
        index,
        begin,
        length,
    })
}

fn hash_request() -> impl Strategy<Value = HashRequest> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(pieces_root, base_layer, index, length, proof_layers)| HashRequest {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            },
        )
}

/// Ids this codec does not know.
fn unknown_id() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("unknown id", |id| MessageId::from_u8(*id).is_none())
}

/// Every message kind, with payloads within the default limits.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(Message::Have),
        payload(40).prop_map(Message::Bitfield),
        block_request().prop_map(Message::Request),
        (any::<u32>(), any::<u32>(), payload(300))
            .prop_map(|(index, begin, data)| Message::Piece { index, begin, data }),
        block_request().prop_map(Message::Cancel),
        any::<u16>().prop_map(Message::Port),
        any::<u32>().prop_map(Message::SuggestPiece),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block_request().prop_map(Message::RejectRequest),
        any::<u32>().prop_map(Message::AllowedFast),
        (any::<u8>(), payload(60)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        hash_request().prop_map(Message::HashRequest),
        (hash_request(), 0..6usize).prop_map(|(request, n)| Message::Hashes {
            request,
            hashes: Bytes::from((0..n * 32).map(|i| i as u8).collect::<Vec<u8>>()),
        }),
        hash_request().prop_map(Message::HashReject),
        (unknown_id(), payload(20)).prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

/// Feeds `chunks` one after another into a framer and collects every message it produces.
fn frame_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limits: WireLimits,
) -> Result<(Vec<Message>, usize), WireError> {
    let mut framer = Framer::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(m) = framer.next(&mut buf)? {
            out.push(m);
        }
    }
    Ok((out, buf.len()))
}

fn check_within_limits(m: &Message, limits: &WireLimits) {
    let length = m.encoded_len() - 4;
    assert!(length <= limits.max_frame() as usize, "{m:?}");
    match m {
        Message::Piece { data, .. } => assert!(data.len() <= limits.max_block as usize),
        Message::Bitfield(b) => match limits.num_pieces {
            Some(n) => assert_eq!(b.len(), n.div_ceil(8) as usize),
            None => assert!(b.len() <= limits.max_bitfield as usize),
        },
        Message::Extended { payload, .. } | Message::Unknown { payload, .. } => {
            assert!(payload.len() <= limits.max_payload as usize)
        }
        Message::Hashes { hashes, .. } => {
            assert_eq!(hashes.len() % 32, 0);
            assert!(hashes.len() / 32 <= limits.max_hashes as usize);
        }
        _ => {}
    }
}

proptest! {
    /// decode(encode(m)) == m, and encode(decode(bytes)) == bytes, for every kind.
    #[test]
    fn message_round_trip(m in message()) {
        let bytes = wire_bytes(&m);
        prop_assert_eq!(bytes.len(), m.encoded_len());
        let decoded = decode(&Bytes::from(bytes.clone()), &WireLimits::DEFAULT).unwrap();
        let Decoded::Ready(got, consumed) = decoded else {
            panic!("a whole message must decode, got {decoded:?}");
        };
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(&got, &m);
        prop_assert_eq!(wire_bytes(&got), bytes);
    }

    /// A stream of messages split at every possible point into two reads, and one byte at a time,
    /// frames to the same sequence; `decode` never asks for bytes past the message it is in.
    #[test]
    fn split_streams_frame_identically(messages in proptest::collection::vec(message(), 1..6)) {
        let stream: Vec<u8> = messages.iter().flat_map(wire_bytes).collect();
        let limits = WireLimits::DEFAULT;
        for split in 0..=stream.len() {
            let (got, left) = frame_chunks([&stream[..split], &stream[split..]], limits).unwrap();
            prop_assert_eq!(left, 0);
            prop_assert_eq!(&got, &messages, "split at {}", split);
        }
        let (got, left) = frame_chunks(stream.chunks(1), limits).unwrap();
        prop_assert_eq!(left, 0);
        prop_assert_eq!(&got, &messages);

        // Need(n) is at least 1 and never reaches past the end of the current message.
        let mut start = 0;
        for m in &messages {
            let end = start + m.encoded_len();
            for cut in start..end {
                let prefix = Bytes::copy_from_slice(&stream[start..cut]);
                match decode(&prefix, &limits).unwrap() {
                    Decoded::Need(n) => {
                        prop_assert!(n >= 1);
                        prop_assert!(cut + n <= end, "need {} at {} of {}..{}", n, cut, start, end);
                        // Once the header is in, the need is exact.
                        if cut - start >= 5 {
                            prop_assert_eq!(cut + n, end);
                        }
                    }
                    Decoded::Ready(..) => prop_assert!(false, "a strict prefix decoded"),
                }
            }
            start = end;
        }
    }

    /// Random bytes never panic the framer, and nothing it returns is over the limits.
    #[test]
    fn random_bytes_into_the_framer(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        chunk in 1..64usize,
        max_block in 0..512u32,
        max_payload in 0..64u32,
        max_bitfield in 0..64u32,
        max_hashes in 0..4u32,
        num_pieces in proptest::option::of(0..200u32),
    ) {
        let limits = WireLimits { max_block, num_pieces, max_bitfield, max_payload, max_hashes };
        let mut framer = Framer::new(limits);
        let mut buf = BytesMut::new();
        'feed: for c in bytes.chunks(chunk) {
            buf.extend_from_slice(c);
            loop {
                match framer.next(&mut buf) {
                    Ok(Some(m)) => check_within_limits(&m, &limits),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            // Never more buffered than one frame of the allowed size plus one read.
            prop_assert!(buf.len() < limits.max_frame() as usize + 4 + chunk);
        }
    }

    /// Length prefixes are biased to be plausible, so the per-id checks are exercised.
    #[test]
    fn plausible_frames_never_panic(
        frames in proptest::collection::vec((0..60u32, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..60)), 1..8),
        num_pieces in proptest::option::of(0..100u32),
    ) {
        let limits = WireLimits { num_pieces, ..WireLimits::DEFAULT };
        let mut stream = Vec::new();
        for (len, id, body) in &frames {
            stream.extend_from_slice(&len.to_be_bytes());
            stream.push(*id);
            stream.extend_from_slice(body);
        }
        let mut input = Bytes::from(stream);
        while let Ok(Decoded::Ready(m, consumed)) = decode(&input, &limits) {
            prop_assert!(consumed >= 4 && consumed <= input.len());
            check_within_limits(&m, &limits);
            prop_assert_eq!(m.encoded_len(), consumed);
            input = input.slice(consumed..);
        }
    }

    /// Handshakes round-trip, and random bytes never panic the handshake decoder.
    #[test]
    fn handshake_round_trip_and_random_bytes(
        reserved in any::<[u8; 8]>(),
        info_hash in any::<[u8; 20]>(),
        peer_id in any::<[u8; 20]>(),
        noise in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let hs = Handshake { reserved: Reserved(reserved), info_hash, peer_id: PeerId(peer_id) };
        let mut bytes = Vec::new();
        hs.encode(&mut bytes);
        prop_assert_eq!(Handshake::decode(&bytes), Ok(Decoded::Ready(hs, 68)));
        if let Ok(Decoded::Need(n)) = Handshake::decode(&noise) {
            prop_assert_eq!(noise.len() + n, 68);
        }
        let _ = client_name(&PeerId(peer_id));
    }

    /// Extension handshakes round-trip; random payloads never panic.
    #[test]
    fn extended_handshake_round_trip(
        names in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..=MAX_EXTENSION_NAME), any::<u8>(), 0..10),
        client in proptest::option::of(".{0,20}"),
        listen_port in proptest::option::of(1..=u16::MAX),
        request_queue in proptest::option::of(any::<u32>()),
        your_ip in proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        ]),
        ipv4 in proptest::option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
        ipv6 in proptest::option::of(any::<[u8; 16]>().prop_map(Ipv6Addr::from)),
        metadata_size in proptest::option::of(0..=i64::MAX as u64),
        upload_only in any::<bool>(),
        noise in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let hs = ExtendedHandshake {
            extensions: names.into_iter().collect::<BTreeMap<_, _>>(),
            client,
            listen_port,
            request_queue,
            your_ip,
            ipv4,
            ipv6,
            metadata_size,
            upload_only,
        };
        let mut bytes = Vec::new();
        hs.encode(&mut bytes);
        prop_assert_eq!(ExtendedHandshake::decode(&bytes), Ok(hs));
        let _ = ExtendedHandshake::decode(&noise);
    }

    /// The allowed-fast set has k distinct pieces in range, and growing k only appends.
    #[test]
    fn allowed_fast_set_is_prefix_stable(
        ip in any::<[u8; 4]>(),
        hash in any::<[u8; 20]>(),
        num_pieces in 1..5000u32,
        k in 0..12usize,
    ) {
        let ip = Ipv4Addr::from(ip);
        let small = allowed_fast_set(ip, &hash, num_pieces, k);
        let large = allowed_fast_set(ip, &hash, num_pieces, k + 1);
        prop_assert_eq!(small.len(), k.min(num_pieces as usize));
        prop_assert!(large.iter().all(|&i| i < num_pieces));
        let mut distinct = large.clone();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(distinct.len(), large.len());
        if (k as u32) + 1 < num_pieces {
            prop_assert_eq!(&large[..k], &small[..]);
        }
    }
}
