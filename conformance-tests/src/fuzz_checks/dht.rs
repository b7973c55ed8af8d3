//! The DHT fuzz checks: the KRPC codec, and a node fed arbitrary datagrams.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bitshoal_core::dht::krpc::{Body, Message, NodeInfo, Response, TxId};
use bitshoal_core::dht::{DhtConfig, DhtNode, ItemKey, ItemValue, NodeId, TorrentSource};
use bitshoal_core::id::InfoHashV1;
use bitshoal_core::rng::Rng;
use bitshoal_core::time::{Duration, Instant};

/// KRPC: decoding never panics; a message that decodes encodes to strict bencode that decodes
/// to the same message (the decoder normalises what it keeps).
pub fn dht_krpc(data: &[u8]) {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let encoded = msg.to_vec();
    bitshoal_core::bencode::decode(&encoded).expect("our encoding is strict bencode");
    let again = Message::decode(&encoded).expect("a re-encoded message decodes");
    assert_eq!(again, msg, "KRPC round trip changed the message");
    assert_eq!(again.to_vec(), encoded, "encoding is not stable");
}

/// The transaction-id placeholder: `dht_node` inputs with these 4 bytes get the id of a request
/// the node is waiting on from that sender patched in, so responses reach the machine.
pub const TID_PLACEHOLDER: &[u8; 4] = b"TTTT";

/// The senders a `dht_node` input can choose from: the bootstrap router, another loopback
/// node, an IPv6 documentation address, and a public-looking IPv4 documentation address.
fn senders() -> [SocketAddr; 4] {
    [
        "127.0.0.2:6881".parse().expect("literal"),
        "127.0.0.3:6881".parse().expect("literal"),
        "[2001:db8::1]:6881".parse().expect("literal"),
        "203.0.113.5:1".parse().expect("literal"),
    ]
}

/// The node `dht_node` drives, bootstrapped through the router with a few contacts learned
/// and a lookup under way (so there are requests waiting for answers).
fn fuzz_node() -> DhtNode {
    let config = DhtConfig {
        ipv6: true,
        ..DhtConfig::default()
    };
    let mut node = DhtNode::new(config, Rng::from_seed(0x0d47), Instant::ZERO);
    let [router, ..] = senders();
    node.bootstrap(Instant::ZERO, &[router]);
    let (to, query) = node.poll_transmit().expect("a find_node to the router");
    assert_eq!(to, router);
    let tid = Message::decode(&query).expect("our query decodes").tid;
    let nodes = (1..=8u8)
        .map(|i| NodeInfo {
            id: NodeId([i; 20]),
            addr: SocketAddr::from(([127, 0, 1, i], 6881)),
        })
        .collect();
    let reply = Message {
        tid,
        body: Body::Response(Response {
            id: NodeId([0x99; 20]),
            nodes,
            ..Response::default()
        }),
        ip: None,
        read_only: false,
        version: None,
    };
    node.handle_datagram(Instant::ZERO, router, &reply.to_vec());
    node.get_peers(Instant::ZERO, InfoHashV1([0x42; 20]));
    // BEP 44/46 lookups, so that item answers reach the verification code: the key of the
    // seed corpus's signed item (seed [7; 32], salt "feed"), and an immutable put.
    let key = ItemKey::from_seed(&[7; 32]);
    node.resolve_torrent(
        Instant::ZERO,
        &TorrentSource {
            public_key: key.public_key(),
            salt: b"feed".to_vec(),
        },
    );
    let value = ItemValue::from_bytes(b"Hello World!").expect("a short string");
    node.put_immutable(Instant::ZERO, value);
    node
}

/// A DHT node fed arbitrary datagrams (BEP 5 and BEP 44 `get`/`put` among them): never panics, and everything it sends is a KRPC
/// message within the size limits (at most 1,024 bytes; replies to addresses not in its
/// routing table at most four times the datagram that caused them).
///
/// The input is a series of records: a sender byte (low two bits pick from four addresses),
/// a time byte (that many 100 ms pass first), a length byte, then that many bytes of datagram.
/// [`TID_PLACEHOLDER`] in a datagram becomes the id of a request waiting on that sender.
pub fn dht_node(data: &[u8]) {
    let mut node = fuzz_node();
    let senders = senders();
    let mut now = Instant::ZERO;
    let mut waiting: BTreeMap<SocketAddr, TxId> = BTreeMap::new();
    let drain = |node: &mut DhtNode, waiting: &mut BTreeMap<SocketAddr, TxId>, cause: usize| {
        while let Some((to, bytes)) = node.poll_transmit() {
            assert!(bytes.len() <= 1024, "{} bytes to {to}", bytes.len());
            let msg = Message::decode(&bytes).expect("the node sends valid KRPC");
            match msg.body {
                Body::Query(_) => {
                    waiting.insert(to, msg.tid);
                }
                _ => {
                    let known = node.routing_table(to.is_ipv6()).get(&to).is_some();
                    assert!(
                        known || bytes.len() <= 4 * cause,
                        "{}-byte reply to a {cause}-byte datagram from an unverified {to}",
                        bytes.len()
                    );
                }
            }
        }
        while node.poll_event().is_some() {}
    };
    drain(&mut node, &mut waiting, 0);
    let mut rest = data;
    while let [who, dt, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(take);
        rest = next;
        now += Duration::from_millis(100 * u64::from(*dt));
        node.handle_timeout(now);
        drain(&mut node, &mut waiting, 0);
        let from = senders[usize::from(*who & 3)];
        let mut datagram = datagram.to_vec();
        if let Some(tid) = waiting.get(&from) {
            if let Some(at) = datagram.windows(4).position(|w| w == TID_PLACEHOLDER) {
                datagram.splice(at..at + 4, tid.iter().copied());
            }
        }
        node.handle_datagram(now, from, &datagram);
        drain(&mut node, &mut waiting, datagram.len());
        node.routing_table(false).check_invariants();
        node.routing_table(true).check_invariants();
        assert!(node.pending_requests() <= DhtConfig::default().max_pending);
        assert!(node.items().len() <= DhtConfig::default().items.max_items);
    }
    // Let every request time out: the machine winds down without panicking.
    for _ in 0..10 {
        now += Duration::from_secs(10);
        node.handle_timeout(now);
        drain(&mut node, &mut waiting, 0);
    }
}
