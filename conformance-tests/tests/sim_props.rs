//! Random sequences of valid and invalid messages, split at random points, never make a
//! session panic or break an invariant: the connection stays up or ends with a typed reason.

mod common;

use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::time::Duration;
use bitshoal_core::wire::{BlockRequest, Message, Reserved};
use bytes::Bytes;
use proptest::prelude::*;

use common::{frame, Fixture, PIECES};

fn block() -> impl Strategy<Value = BlockRequest> {
    // Mostly plausible requests, sometimes wild ones.
    prop_oneof![
        3 => (0..PIECES + 1, 0u32..3, prop_oneof![Just(16384u32), 1u32..20_000])
            .prop_map(|(index, b, length)| BlockRequest { index, begin: b * 16384, length }),
        1 => (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(index, begin, length)| BlockRequest { index, begin, length }),
    ]
}

fn piece_index() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..PIECES + 2, 1 => any::<u32>()]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        piece_index().prop_map(Message::Have),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(|b| Message::Bitfield(b.into())),
        block().prop_map(Message::Request),
        block().prop_map(Message::Cancel),
        (block(), 0usize..20_000).prop_map(|(r, len)| Message::Piece {
            index: r.index,
            begin: r.begin,
            data: Bytes::from(vec![0x5a; len]),
        }),
        any::<u16>().prop_map(Message::Port),
        piece_index().prop_map(Message::SuggestPiece),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block().prop_map(Message::RejectRequest),
        piece_index().prop_map(Message::AllowedFast),
        (0u8..3, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(id, p)| Message::Extended {
            id,
            payload: p.into()
        }),
    ]
}

/// One chunk of what the fake sends: an encoded message, or raw bytes.
#[derive(Clone, Debug)]
enum Item {
    Message(Message),
    Raw(Vec<u8>),
    Frame(u8, Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        8 => message().prop_map(Item::Message),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(Item::Raw),
        1 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(id, p)| Item::Frame(id, p)),
    ]
}

fn reserved() -> impl Strategy<Value = Reserved> {
    prop_oneof![
        Just(Reserved::NONE),
        Just(Reserved::FAST),
        Just(Reserved::EXTENSION_PROTOCOL),
        Just(Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_never_breaks_a_session(
        seed in any::<u64>(),
        seeding in any::<bool>(),
        reserved in reserved(),
        items in prop::collection::vec(item(), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        gaps in prop::collection::vec(0u64..200_000, 8),
    ) {
        let mut f = Fixture::with(seed, seeding);
        f.handshake(reserved);
        let mut bytes = Vec::new();
        for item in &items {
            match item {
                Item::Message(m) => {
                    let mut buf = bytes::BytesMut::new();
                    if let Some(body) = m.encode(&mut buf) {
                        buf.extend_from_slice(&body);
                    }
                    bytes.extend_from_slice(&buf);
                }
                Item::Raw(raw) => bytes.extend_from_slice(raw),
                Item::Frame(id, payload) => bytes.extend(frame(*id, payload)),
            }
        }
        // Cut the stream at random points and send the pieces at random intervals.
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut start = 0;
        for (i, &p) in points.iter().chain([bytes.len()].iter()).enumerate() {
            if p > start {
                f.sim.fake_send_raw(f.fake, bytes[start..p].to_vec());
                start = p;
            }
            f.sim
                .run_for(Duration::from_micros(gaps[i % gaps.len()]))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        f.sim
            .run_for(Duration::from_secs(2))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let node = f.sim.node(f.node);
        let disconnects = node.disconnects();
        prop_assert!(disconnects.len() <= 1);
        match disconnects.first() {
            None => prop_assert_eq!(node.session().connection_count(), 1),
            Some((_, reason)) => {
                prop_assert_eq!(node.session().connection_count(), 0);
                // The fake never closed and no timer can have fired: the peer's bytes ended it,
                // by breaking the rules, or (to a seed) by saying it is a seed too (BEP 21).
                let both_seeding = seeding && *reason == DisconnectReason::BothSeeding;
                prop_assert!(
                    both_seeding
                        || matches!(reason, DisconnectReason::Wire(_) | DisconnectReason::Violation(_)),
                    "unexpected reason {:?}", reason
                );
                prop_assert!(both_seeding || reason.fault().is_some());
            }
        }
    }
}
