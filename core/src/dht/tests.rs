//! Tests of the DHT codec, routing table, traversal and node machine (small in-test networks;
//! the large simulated networks are in the conformance crate's `sim::dht`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use proptest::prelude::*;

use super::krpc::{
    code, Body, DecodeFailure, ErrorReply, Query, QueryKind, Response, Token, TxId, Want,
};
use super::lookup::Traversal;
use super::routing::{Inserted, RoutingTable, K};
use super::*;
use crate::id::InfoHashV1;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

pub(super) fn tid(b: &[u8]) -> TxId {
    TxId::try_from(b).unwrap()
}

pub(super) fn id(b: u8) -> NodeId {
    NodeId([b; 20])
}

// ----- KRPC codec -----

#[test]
fn bep5_examples_decode_and_reencode_exactly() {
    let examples: &[&[u8]] = &[
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
    ];
    for ex in examples {
        let msg = Message::decode(ex).unwrap_or_else(|e| panic!("{e:?} for {ex:?}"));
        assert_eq!(msg.to_vec(), *ex, "{}", String::from_utf8_lossy(ex));
    }
    let ping = Message::decode(examples[0]).unwrap();
    assert_eq!(
        ping.body,
        Body::Query(Query {
            id: NodeId(*b"abcdefghij0123456789"),
            kind: QueryKind::Ping
        })
    );
    let announce = Message::decode(examples[4]).unwrap();
    let Body::Query(Query {
        kind: QueryKind::AnnouncePeer {
            port, implied_port, ..
        },
        ..
    }) = announce.body
    else {
        panic!("not an announce: {announce:?}");
    };
    assert_eq!((port, implied_port), (6881, true));
    let Body::Response(r) = Message::decode(examples[6]).unwrap().body else {
        panic!("not a response");
    };
    assert_eq!(
        r.values,
        vec![
            "97.120.106.101:11893".parse::<SocketAddr>().unwrap(),
            "105.100.104.116:28269".parse().unwrap()
        ]
    );
}

#[test]
fn extension_fields_round_trip() {
    let mut r = Response {
        id: id(1),
        nodes: vec![NodeInfo {
            id: id(2),
            addr: "127.0.0.2:1000".parse().unwrap(),
        }],
        nodes6: vec![NodeInfo {
            id: id(3),
            addr: "[2001:db8::3]:1001".parse().unwrap(),
        }],
        values: vec![
            "127.0.0.9:9".parse().unwrap(),
            "[2001:db8::9]:9".parse().unwrap(),
        ],
        token: Some(Token::try_from(&b"tok"[..]).unwrap()),
        seeds_bloom: Some(Box::default()),
        peers_bloom: Some(Box::default()),
        samples: Some(vec![[5; 20], [6; 20]]),
        num: Some(2),
        interval: Some(60),
        ..Response::default()
    };
    r.peers_bloom
        .as_mut()
        .unwrap()
        .insert("127.0.0.9".parse().unwrap());
    let msgs = [
        Message {
            tid: tid(b"xy"),
            body: Body::Response(r),
            ip: Some("127.0.0.5:7".parse().unwrap()),
            read_only: false,
            version: Some(arrayvec::ArrayVec::from(*b"BS01")),
        },
        Message {
            tid: tid(b"q"),
            body: Body::Query(Query {
                id: id(4),
                kind: QueryKind::GetPeers {
                    info_hash: [8; 20],
                    want: Want { n4: true, n6: true },
                    noseed: true,
                    scrape: true,
                },
            }),
            ip: None,
            read_only: true,
            version: None,
        },
        Message {
            tid: tid(b"s"),
            body: Body::Query(Query {
                id: id(4),
                kind: QueryKind::SampleInfohashes {
                    target: id(9),
                    want: Want {
                        n4: false,
                        n6: true,
                    },
                },
            }),
            ip: None,
            read_only: false,
            version: None,
        },
        Message {
            tid: tid(b"a"),
            body: Body::Query(Query {
                id: id(4),
                kind: QueryKind::AnnouncePeer {
                    info_hash: [8; 20],
                    port: 51413,
                    implied_port: false,
                    token: Token::try_from(&b"12345678"[..]).unwrap(),
                    seed: true,
                },
            }),
            ip: None,
            read_only: false,
            version: None,
        },
    ];
    for m in msgs {
        let bytes = m.to_vec();
        crate::bencode::decode(&bytes).expect("our encoding is strict bencode");
        assert_eq!(Message::decode(&bytes).unwrap(), m);
    }
}

#[test]
fn malformed_datagrams_are_typed_errors() {
    use crate::error::{Classify, Fault};
    let too_big = vec![b'x'; krpc::MAX_DATAGRAM + 1];
    let cases: &[(&[u8], Fault, bool)] = &[
        (&too_big, Fault::LimitExceeded, false),
        (b"i1e", Fault::Malformed, false),
        (b"d1:y1:qe", Fault::Malformed, false),
        (b"d1:t2:aa1:y1:xe", Fault::Malformed, false),
        // A query without an id: the tid is kept so the node can answer 203.
        (
            b"d1:ad1:xi1ee1:q4:ping1:t2:aa1:y1:qe",
            Fault::Malformed,
            true,
        ),
        (
            b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            Fault::Malformed,
            true,
        ),
        (b"lllllllllllllleeeeeeeeeeeeee", Fault::LimitExceeded, false),
    ];
    for (input, fault, has_tid) in cases {
        let DecodeFailure { error, query_tid } = Message::decode(input).unwrap_err();
        assert_eq!(error.fault(), *fault, "{error} for {input:?}");
        assert_eq!(query_tid.is_some(), *has_tid, "{input:?}");
    }
}

#[test]
fn unknown_methods_keep_their_target() {
    let m = Message::decode(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q4:vote1:t1:z1:y1:qe",
    )
    .unwrap();
    let Body::Query(q) = m.body else { panic!() };
    assert!(matches!(
        q.kind,
        QueryKind::Unknown { target: Some(t), .. } if t.0 == *b"mnopqrstuvwxyz123456"
    ));
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1..=u16::MAX).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), 1..=u16::MAX).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

proptest! {
    #[test]
    fn responses_round_trip(
        rid in any::<[u8; 20]>(),
        nodes in proptest::collection::vec((any::<[u8; 20]>(), any::<[u8; 4]>(), 1..=u16::MAX), 0..8),
        values in proptest::collection::vec(arb_addr(), 0..10),
        token in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        t in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let r = Response {
            id: NodeId(rid),
            nodes: nodes.into_iter().map(|(i, ip, p)| NodeInfo { id: NodeId(i), addr: SocketAddr::from((ip, p)) }).collect(),
            values,
            token: token.map(|t| Token::try_from(&t[..]).unwrap()),
            ..Response::default()
        };
        let m = Message { tid: TxId::try_from(&t[..]).unwrap(), body: Body::Response(r), ip: None, read_only: false, version: None };
        prop_assert_eq!(Message::decode(&m.to_vec()).unwrap(), m);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&data);
    }
}

// ----- routing table -----

fn node(rng: &mut Rng, i: u32) -> NodeInfo {
    NodeInfo {
        id: NodeId::random(rng),
        addr: SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
    }
}

#[test]
fn routing_table_splits_keeps_invariants_and_finds_closest() {
    let mut rng = Rng::from_seed(3);
    let now = Instant::ZERO;
    let own = NodeId::random(&mut rng);
    let mut table = RoutingTable::new(own, now);
    let mut all = Vec::new();
    for i in 0..2_000 {
        let n = node(&mut rng, i);
        if table.heard_from(now, n) == Inserted::Added {
            all.push(n);
        }
        table.check_invariants();
    }
    assert!(table.bucket_count() > 5, "{} buckets", table.bucket_count());
    assert!(table.len() >= 8 * (table.bucket_count() - 1) / 2);
    assert_eq!(table.len(), all.len());
    // Closest matches brute force over the table's nodes.
    for _ in 0..20 {
        let target = NodeId::random(&mut rng);
        let got = table.closest(now, &target, K);
        let mut want: Vec<NodeInfo> = table.iter().map(|e| e.info).collect();
        want.sort_by_key(|n| n.id.distance(&target));
        want.truncate(K);
        assert_eq!(got, want);
    }
    // Own id, duplicate IPs and id collisions at another address are refused.
    assert_eq!(
        table.heard_from(
            now,
            NodeInfo {
                id: own,
                addr: "127.9.9.9:1".parse().unwrap()
            }
        ),
        Inserted::Rejected
    );
    let present = all[0];
    let same_ip = NodeInfo {
        id: NodeId::random(&mut rng),
        addr: SocketAddr::new(present.addr.ip(), 9999),
    };
    assert_eq!(table.heard_from(now, same_ip), Inserted::Rejected);
    assert_eq!(table.heard_from(now, present), Inserted::Updated);
}

#[test]
fn failing_nodes_give_way_to_replacements() {
    let mut rng = Rng::from_seed(4);
    let now = Instant::ZERO;
    let own = id(0);
    let mut table = RoutingTable::new(own, now);
    // Ids with the first bit set all fall in bucket 0 once the table has split.
    let far = |i: u8| NodeInfo {
        id: NodeId([0x80 | i; 20]),
        addr: SocketAddr::from(([127, 1, 0, i], 1)),
    };
    let mut replacement = None;
    for i in 0..(K as u8 + 1) {
        let r = table.heard_from(now, far(i));
        if i as usize == K {
            assert_eq!(r, Inserted::Replacement);
            replacement = Some(far(i));
        }
    }
    // Force a split to be impossible for bucket 0: fill the near side too.
    for i in 0..20 {
        table.heard_from(now, node(&mut rng, 1000 + i));
    }
    table.check_invariants();
    let victim = far(0);
    assert!(table.get(&victim.addr).is_some());
    assert!(replacement.is_some());
    assert_eq!(table.bucket(0).len(), K);
    assert!(
        table.failed(&victim.addr),
        "replaced at once when a replacement waits"
    );
    assert!(table.get(&victim.addr).is_none());
    assert_eq!(table.bucket(0).len(), K, "a replacement took its place");
    table.check_invariants();
    // Without replacements, a node turns bad after MAX_FAILS and a newcomer takes its place.
    let mut table = RoutingTable::new(own, now);
    for i in 0..K as u8 {
        table.heard_from(now, far(i));
    }
    for i in 0..4 {
        let near = NodeInfo {
            id: NodeId([0x01 + i; 20]),
            addr: SocketAddr::from(([127, 3, 0, i], 1)),
        };
        assert_eq!(table.heard_from(now, near), Inserted::Added);
    }
    let v2 = far(1);
    for _ in 0..routing::MAX_FAILS {
        assert!(!table.failed(&v2.addr));
    }
    assert_eq!(
        table.get(&v2.addr).unwrap().status(now),
        routing::NodeStatus::Bad
    );
    assert!(!table.closest(now, &v2.id, 100).contains(&v2));
    assert_eq!(table.heard_from(now, far(50)), Inserted::Added);
    assert!(table.get(&v2.addr).is_none());
    table.check_invariants();
}

#[test]
fn node_status_and_refresh_follow_bep5_timers() {
    let mut rng = Rng::from_seed(5);
    let t0 = Instant::ZERO;
    let mut table = RoutingTable::new(NodeId::random(&mut rng), t0);
    let n = node(&mut rng, 1);
    table.heard_from(t0, n);
    assert_eq!(
        table.get(&n.addr).unwrap().status(t0),
        routing::NodeStatus::Good
    );
    let later = t0 + routing::GOOD_FOR;
    assert_eq!(
        table.get(&n.addr).unwrap().status(later),
        routing::NodeStatus::Questionable
    );
    assert_eq!(table.most_questionable(later), Some(n));
    // A query from it keeps it good.
    table.heard_query(later, &n.addr, &n.id);
    assert_eq!(
        table.get(&n.addr).unwrap().status(later),
        routing::NodeStatus::Good
    );
    assert!(table.refresh_target(t0, &mut rng).is_none());
    let target = table.refresh_target(later, &mut rng).expect("stale bucket");
    assert_eq!(table.bucket_index(&target), 0);
    assert!(
        table.refresh_target(later, &mut rng).is_none(),
        "marked active"
    );
}

// ----- traversal -----

#[test]
fn traversal_queries_closest_first_and_ends_when_k_closest_answered() {
    let target = id(0);
    let mut t = Traversal::new(target, 2, 100);
    let far: Vec<NodeInfo> = (0..4u8)
        .map(|i| NodeInfo {
            id: NodeId([0xf0 | i; 20]),
            addr: SocketAddr::from(([127, 0, 1, i], 1)),
        })
        .collect();
    t.add(&far, 0);
    let a = t.next_query().unwrap();
    let b = t.next_query().unwrap();
    assert!(t.next_query().is_none(), "alpha = 2");
    assert_eq!(a, far[0].addr);
    assert_eq!(b, far[1].addr);
    // `a` answers with closer nodes: they are queried next.
    let near: Vec<NodeInfo> = (0..K as u8)
        .map(|i| NodeInfo {
            id: NodeId([i + 1; 20]),
            addr: SocketAddr::from(([127, 0, 2, i], 1)),
        })
        .collect();
    assert_eq!(t.on_response(&a, far[0].id, None, true), Some(1));
    t.add(&near, 1);
    let c = t.next_query().unwrap();
    assert_eq!(c, near[0].addr);
    // A slow request frees a slot.
    t.on_slow(&b);
    let d = t.next_query().unwrap();
    assert_eq!(d, near[1].addr);
    // A wrong id counts as a failure.
    t.on_response(&c, id(0x77), None, true);
    assert!(!t.is_done());
    let mut answered = 0;
    while let Some(addr) = t.next_query() {
        let n = near.iter().find(|n| n.addr == addr).unwrap();
        t.on_response(&addr, n.id, Some(Token::new()), true);
        answered += 1;
    }
    t.on_response(&d, near[1].id, None, true);
    while let Some(addr) = t.next_query() {
        let n = near.iter().chain(&far).find(|n| n.addr == addr).unwrap();
        t.on_response(&addr, n.id, None, true);
    }
    t.on_failure(&b);
    assert!(answered > 0);
    assert!(t.is_done());
    let closest = t.closest_answered();
    assert_eq!(closest.len(), K);
    assert!(closest.iter().all(|(n, _)| n.addr != c), "the liar is out");
    t.finish();
    assert_eq!(t.stats().hops, 2);
}

// ----- the node machine, on a tiny instant network -----

pub(super) struct Net {
    pub(super) now: Instant,
    pub(super) nodes: BTreeMap<SocketAddr, DhtNode>,
    pub(super) events: Vec<(SocketAddr, DhtEvent)>,
    /// Every datagram delivered: (from, to, bytes).
    log: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Net {
    pub(super) fn new() -> Self {
        Self {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            events: Vec::new(),
            log: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, addr: &str, config: DhtConfig, seed: u64) -> SocketAddr {
        let addr: SocketAddr = addr.parse().unwrap();
        self.nodes
            .insert(addr, DhtNode::new(config, Rng::from_seed(seed), self.now));
        addr
    }

    pub(super) fn node(&mut self, a: SocketAddr) -> &mut DhtNode {
        self.nodes.get_mut(&a).unwrap()
    }

    /// Delivers datagrams (instantly) until none is left; unknown addresses drop them.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            let addrs: Vec<SocketAddr> = self.nodes.keys().copied().collect();
            for from in addrs {
                let n = self.nodes.get_mut(&from).unwrap();
                let mut out = Vec::new();
                while let Some(t) = n.poll_transmit() {
                    out.push(t);
                }
                while let Some(e) = n.poll_event() {
                    self.events.push((from, e));
                }
                for (to, bytes) in out {
                    moved = true;
                    self.log.push((from, to, bytes.clone()));
                    if let Some(dst) = self.nodes.get_mut(&to) {
                        dst.handle_datagram(self.now, from, &bytes);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    /// Advances time to `to`, firing timers and settling in between.
    pub(super) fn run_until(&mut self, to: Instant) {
        loop {
            self.settle();
            let next = self
                .nodes
                .values()
                .filter_map(DhtNode::poll_timeout)
                .min()
                .unwrap_or(to);
            if next > to {
                self.now = to;
                return;
            }
            self.now = next.max(self.now);
            for n in self.nodes.values_mut() {
                if n.poll_timeout().is_some_and(|t| t <= self.now) {
                    n.handle_timeout(self.now);
                }
            }
        }
    }
}

fn small_config() -> DhtConfig {
    DhtConfig::default()
}

#[test]
fn two_nodes_bootstrap_announce_and_find() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let b = net.add("127.0.0.2:6881", small_config(), 2);
    let c = net.add("127.0.0.3:6881", small_config(), 3);
    let now = net.now;
    net.node(b).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(5));
    let now = net.now;
    net.node(c).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(10));
    assert!(net
        .events
        .iter()
        .any(|(who, e)| *who == b && matches!(e, DhtEvent::Bootstrapped { nodes } if *nodes >= 1)));
    for x in [a, b, c] {
        assert!(
            net.node(x).routing_table(false).len() >= 2,
            "{x} knows the others"
        );
        net.node(x).routing_table(false).check_invariants();
    }
    let ih = InfoHashV1([0x42; 20]);
    let now = net.now;
    let ann = net.node(b).announce(
        now,
        ih,
        Announce {
            port: 5000,
            implied_port: false,
            seed: true,
        },
    );
    net.run_until(now + Duration::from_secs(10));
    let acked = net.events.iter().find_map(|(who, e)| match e {
        DhtEvent::AnnounceDone { lookup, acked, .. } if *who == b && *lookup == ann => Some(*acked),
        _ => None,
    });
    assert_eq!(acked, Some(2), "a and c stored the announce");
    let now = net.now;
    let l = net.node(c).get_peers(now, ih);
    net.run_until(now + Duration::from_secs(10));
    let peers: Vec<SocketAddr> = net
        .events
        .iter()
        .filter_map(|(who, e)| match e {
            DhtEvent::Peers { lookup, peers, .. } if *who == c && *lookup == l => {
                Some(peers.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(peers, vec!["127.0.0.2:5000".parse::<SocketAddr>().unwrap()]);
    let done = net.events.iter().find_map(|(who, e)| match e {
        DhtEvent::LookupDone { lookup, stats, .. } if *who == c && *lookup == l => Some(*stats),
        _ => None,
    });
    let stats = done.expect("lookup finished");
    assert_eq!(stats.peers, 1);
    assert!(stats.queries >= 1 && stats.responses >= 1);

    // Scrape (BEP 33): a seed was announced.
    let now = net.now;
    let s = net.node(c).scrape(now, ih);
    net.run_until(now + Duration::from_secs(10));
    let scrape = net.events.iter().find_map(|(who, e)| match e {
        DhtEvent::Scrape {
            lookup,
            seeds,
            peers,
            ..
        } if *who == c && *lookup == s => Some((*seeds, *peers)),
        _ => None,
    });
    assert_eq!(scrape, Some((1, 0)));
}

/// Sends `bytes` from a fake address to `to` and returns the replies.
pub(super) fn poke(net: &mut Net, from: &str, to: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
    let from: SocketAddr = from.parse().unwrap();
    let now = net.now;
    let n = net.node(to);
    n.handle_datagram(now, from, bytes);
    let mut out = Vec::new();
    while let Some((dst, b)) = n.poll_transmit() {
        // Replies only, not the ping that verifies a new querier.
        if dst == from && !matches!(Message::decode(&b).map(|m| m.body), Ok(Body::Query(_))) {
            out.push(b);
        }
    }
    out
}

pub(super) fn query(kind: QueryKind, t: &[u8]) -> Vec<u8> {
    Message {
        tid: tid(t),
        body: Body::Query(Query { id: id(0x55), kind }),
        ip: None,
        read_only: false,
        version: None,
    }
    .to_vec()
}

pub(super) fn decode_reply(bytes: &[u8]) -> Message {
    Message::decode(bytes).unwrap()
}

#[test]
fn announces_need_a_valid_token_and_errors_use_bep5_codes() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let ih = [9u8; 20];
    let announce = |token: &[u8]| {
        query(
            QueryKind::AnnouncePeer {
                info_hash: ih,
                port: 7000,
                implied_port: false,
                token: Token::try_from(token).unwrap(),
                seed: false,
            },
            b"an",
        )
    };
    let replies = poke(&mut net, "127.0.0.7:1234", a, &announce(b"forged"));
    let m = decode_reply(&replies[0]);
    assert!(matches!(
        m.body,
        Body::Error(ErrorReply {
            code: code::PROTOCOL,
            ..
        })
    ));
    assert!(net.node(a).store().is_empty());

    let gp = query(
        QueryKind::GetPeers {
            info_hash: ih,
            want: Want::default(),
            noseed: false,
            scrape: false,
        },
        b"gp",
    );
    let replies = poke(&mut net, "127.0.0.7:1234", a, &gp);
    let m = decode_reply(&replies[0]);
    assert_eq!(
        m.ip,
        Some("127.0.0.7:1234".parse().unwrap()),
        "BEP 42 ip field"
    );
    let Body::Response(r) = m.body else { panic!() };
    let token = r.token.expect("a token");
    // Another IP cannot use it.
    let replies = poke(&mut net, "127.0.0.8:1234", a, &announce(&token));
    assert!(matches!(decode_reply(&replies[0]).body, Body::Error(_)));
    let replies = poke(&mut net, "127.0.0.7:1234", a, &announce(&token));
    assert!(matches!(decode_reply(&replies[0]).body, Body::Response(_)));
    assert_eq!(net.node(a).store().len(), 1);

    // Unknown methods: with a target, answered like find_node; without, error 204.
    let unknown =
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q4:vote1:t1:z1:y1:qe";
    let replies = poke(&mut net, "127.0.0.9:1", a, unknown);
    assert!(matches!(decode_reply(&replies[0]).body, Body::Response(_)));
    let replies = poke(
        &mut net,
        "127.0.0.9:1",
        a,
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t1:z1:y1:qe",
    );
    assert!(matches!(
        decode_reply(&replies[0]).body,
        Body::Error(ErrorReply {
            code: code::METHOD_UNKNOWN,
            ..
        })
    ));
    // A malformed query with a transaction id: error 203.
    let replies = poke(
        &mut net,
        "127.0.0.9:1",
        a,
        b"d1:ad2:id3:abce1:q4:ping1:t2:xx1:y1:qe",
    );
    let m = decode_reply(&replies[0]);
    assert_eq!(&m.tid[..], b"xx");
    assert!(matches!(
        m.body,
        Body::Error(ErrorReply {
            code: code::PROTOCOL,
            ..
        })
    ));
    // Garbage: silence.
    assert!(poke(&mut net, "127.0.0.9:1", a, b"\x00\x01garbage").is_empty());
    assert!(net.node(a).counters().malformed >= 2);
}

#[test]
fn replies_to_unverified_addresses_are_no_larger_than_four_requests() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    // Fill a's table and store so replies could be large.
    let mut rng = Rng::from_seed(8);
    let now = net.now;
    for i in 0..200u32 {
        let info = node(&mut rng, 0x10000 + i);
        net.node(a).tables[0].heard_from(now, info);
    }
    let ih = [3u8; 20];
    for i in 0..200u8 {
        net.node(a).store.announce(
            now,
            ih,
            SocketAddr::from(([127, 2, 0, i], 1000)),
            i % 2 == 0,
        );
    }
    let gp = query(
        QueryKind::GetPeers {
            info_hash: ih,
            want: Want { n4: true, n6: true },
            noseed: false,
            scrape: true,
        },
        b"gp",
    );
    let replies = poke(&mut net, "127.0.0.7:1234", a, &gp);
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].len() <= 4 * gp.len(),
        "{} > 4 × {}",
        replies[0].len(),
        gp.len()
    );
    let Body::Response(r) = decode_reply(&replies[0]).body else {
        panic!()
    };
    assert!(!r.values.is_empty(), "some peers still fit");
    assert!(net.node(a).counters().trimmed_replies >= 1);
    // A verified node (in the table) gets the full reply, with the bloom filters.
    let verified = net.node(a).tables[0].iter().next().unwrap().info.addr;
    let from = verified.to_string();
    let replies = poke(&mut net, &from, a, &gp);
    assert!(replies[0].len() > 4 * gp.len());
    assert!(replies[0].len() <= 1024);
    let Body::Response(r) = decode_reply(&replies[0]).body else {
        panic!()
    };
    assert!(r.seeds_bloom.is_some() && r.peers_bloom.is_some());
}

#[test]
fn queries_are_rate_limited_per_ip() {
    let mut net = Net::new();
    let config = DhtConfig {
        queries_per_ip: 5,
        query_burst: 10,
        ..small_config()
    };
    let a = net.add("127.0.0.1:6881", config, 1);
    let ping = query(QueryKind::Ping, b"pp");
    let answered = (0..50)
        .filter(|_| !poke(&mut net, "127.0.0.7:1", a, &ping).is_empty())
        .count();
    assert_eq!(answered, 10);
    assert!(
        !poke(&mut net, "127.0.0.8:1", a, &ping).is_empty(),
        "other IPs are served"
    );
    assert_eq!(net.node(a).counters().rate_limited, 40);
    net.now += Duration::from_secs(1);
    let answered = (0..50)
        .filter(|_| !poke(&mut net, "127.0.0.7:1", a, &ping).is_empty())
        .count();
    assert_eq!(answered, 5);
}

#[test]
fn read_only_nodes_answer_nothing_and_stay_out_of_tables() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let ro = net.add(
        "127.0.0.2:6881",
        DhtConfig {
            read_only: true,
            ..small_config()
        },
        2,
    );
    let now = net.now;
    net.node(ro).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(10));
    // ro learned about a from its answer; a never added ro.
    assert_eq!(net.node(ro).routing_table(false).len(), 1);
    assert_eq!(net.node(a).routing_table(false).len(), 0);
    let sent_by_ro: Vec<&Vec<u8>> = net
        .log
        .iter()
        .filter(|(f, _, _)| *f == ro)
        .map(|(_, _, b)| b)
        .collect();
    assert!(!sent_by_ro.is_empty());
    assert!(
        sent_by_ro.iter().all(|b| decode_reply(b).read_only),
        "ro=1 on every query"
    );
    let ping = query(QueryKind::Ping, b"pp");
    assert!(poke(&mut net, "127.0.0.7:1", ro, &ping).is_empty());
}

#[test]
fn bep42_enforcement_keeps_mismatched_ids_out() {
    // Documentation addresses (not exempt from BEP 42); nothing leaves the process.
    let mut net = Net::new();
    let enforcing = DhtConfig {
        enforce_node_id: true,
        ..small_config()
    };
    let a = net.add("203.0.113.1:6881", enforcing, 1);
    let good_ip: std::net::IpAddr = "203.0.113.2".parse().unwrap();
    let mut rng = Rng::from_seed(5);
    let good = net.add(
        "203.0.113.2:6881",
        DhtConfig {
            node_id: Some(node_id::secure_node_id(good_ip, 3, &mut rng)),
            ..small_config()
        },
        2,
    );
    let bad = net.add("203.0.113.3:6881", small_config(), 3); // a random id
    let now = net.now;
    net.node(a).bootstrap(now, &[good, bad]);
    net.run_until(now + Duration::from_secs(10));
    let table = net.node(a).routing_table(false);
    assert!(table.get(&good).is_some(), "a matching id is accepted");
    assert!(table.get(&bad).is_none(), "a mismatched id is not");
    // Its queries are still served.
    let ping = query(QueryKind::Ping, b"pp");
    assert!(!poke(&mut net, "203.0.113.3:6881", a, &ping).is_empty());
}

#[test]
fn the_node_id_survives_a_restart_and_saved_contacts_bootstrap() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let b = net.add("127.0.0.2:6881", small_config(), 2);
    let now = net.now;
    net.node(b).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(10));
    let saved = net.node(b).state();
    assert_eq!(saved.nodes.len(), 1);
    let bytes = saved.encode();
    let restored = DhtState::decode(&bytes).unwrap();
    let mut b2 = DhtNode::restore(small_config(), Rng::from_seed(99), net.now, &restored);
    assert_eq!(b2.node_id(), net.node(b).node_id());
    b2.bootstrap(net.now, &[]);
    let (to, _) = b2.poll_transmit().expect("queries the saved contact");
    assert_eq!(to, a);
}

#[test]
fn add_node_pings_and_a_silent_node_is_not_added() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let b = net.add("127.0.0.2:6881", small_config(), 2);
    let now = net.now;
    net.node(a).add_node(now, b);
    net.node(a).add_node(now, "127.0.0.99:1".parse().unwrap());
    net.run_until(now + Duration::from_secs(30));
    assert!(net.node(a).routing_table(false).get(&b).is_some());
    assert_eq!(net.node(a).routing_table(false).len(), 1);
    assert_eq!(
        net.node(a).pending_requests(),
        0,
        "the silent ping timed out"
    );
}

#[test]
fn forged_responses_are_ignored() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let now = net.now;
    let router: SocketAddr = "127.0.0.2:6881".parse().unwrap();
    net.node(a).bootstrap(now, &[router]);
    let (_, q) = net.node(a).poll_transmit().unwrap();
    let t = decode_reply(&q).tid;
    let resp = |t: TxId| {
        Message {
            tid: t,
            body: Body::Response(Response {
                id: id(0x66),
                ..Response::default()
            }),
            ip: None,
            read_only: false,
            version: None,
        }
        .to_vec()
    };
    // Right tid, wrong source; wrong tid, right source.
    net.node(a)
        .handle_datagram(now, "127.0.0.3:6881".parse().unwrap(), &resp(t.clone()));
    net.node(a)
        .handle_datagram(now, router, &resp(tid(b"zzzz")));
    assert_eq!(net.node(a).counters().unexpected_responses, 2);
    assert!(net.node(a).routing_table(false).is_empty());
    net.node(a).handle_datagram(now, router, &resp(t));
    assert_eq!(net.node(a).routing_table(false).len(), 1);
}

#[test]
fn a_flood_of_new_queriers_cannot_fill_the_pending_requests() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let ping = query(QueryKind::Ping, b"pp");
    for i in 0..1_000u32 {
        let from = format!("127.5.{}.{}:1", i >> 8, i & 0xff);
        assert_eq!(
            poke(&mut net, &from, a, &ping).len(),
            1,
            "every ping is answered"
        );
    }
    let max = DhtConfig::default().max_pending;
    assert_eq!(net.node(a).pending_requests(), max / 4);
    // Our own lookups still get their requests out.
    let now = net.now;
    net.node(a)
        .bootstrap(now, &["127.0.0.2:6881".parse().unwrap()]);
    let mut sent_find_node = false;
    while let Some((_, b)) = net.node(a).poll_transmit() {
        sent_find_node |= b.windows(9).any(|w| w == b"find_node");
    }
    assert!(sent_find_node);
}

#[test]
fn a_dead_router_is_retried_once_a_minute() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let router: SocketAddr = "127.0.0.2:6881".parse().unwrap();
    let now = net.now;
    net.node(a).bootstrap(now, &[router]);
    net.run_until(now + Duration::from_secs(300));
    let to_router = net.log.iter().filter(|(_, to, _)| *to == router).count();
    assert!(
        (5..=6).contains(&to_router),
        "{to_router} queries in 5 minutes"
    );
    let bootstrapped = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, DhtEvent::Bootstrapped { nodes: 0 }))
        .count();
    assert_eq!(bootstrapped, to_router);
}

#[test]
fn an_ipv6_dht_works_alone_and_dual_stack_nodes_answer_want() {
    // BEP 32, on documentation addresses (in memory only).
    let v6 = DhtConfig {
        ipv4: false,
        ipv6: true,
        ..small_config()
    };
    let mut net = Net::new();
    let a = net.add("[2001:db8::1]:6881", v6.clone(), 1);
    let b = net.add("[2001:db8::2]:6881", v6.clone(), 2);
    let c = net.add("[2001:db8::3]:6881", v6, 3);
    let now = net.now;
    net.node(b).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(5));
    let now = net.now;
    net.node(c).bootstrap(now, &[a]);
    net.run_until(now + Duration::from_secs(10));
    assert!(net.node(c).routing_table(true).len() >= 2);
    assert!(net.node(c).routing_table(false).is_empty());
    let ih = InfoHashV1([0x24; 20]);
    let now = net.now;
    net.node(b).announce(
        now,
        ih,
        Announce {
            port: 7000,
            implied_port: false,
            seed: false,
        },
    );
    net.run_until(now + Duration::from_secs(10));
    let now = net.now;
    let l = net.node(c).get_peers(now, ih);
    net.run_until(now + Duration::from_secs(10));
    let found = net.events.iter().any(|(who, e)| {
        *who == c
            && matches!(e, DhtEvent::Peers { lookup, peers, .. }
                if *lookup == l && peers.contains(&"[2001:db8::2]:7000".parse().unwrap()))
    });
    assert!(found, "the IPv6 peer is found");

    // A dual-stack node answers `want` with both families; without `want`, the requester's.
    let dual = net.add(
        "127.0.0.1:6881",
        DhtConfig {
            ipv6: true,
            ..small_config()
        },
        4,
    );
    let mut rng = Rng::from_seed(6);
    let now = net.now;
    for i in 0..4u32 {
        let v4 = node(&mut rng, 0x20000 + i);
        net.node(dual).tables[0].heard_from(now, v4);
        let v6 = NodeInfo {
            id: NodeId::random(&mut rng),
            addr: SocketAddr::new(format!("2001:db8::1:{i}").parse().unwrap(), 6881),
        };
        net.node(dual).tables[1].heard_from(now, v6);
    }
    let find = |want| {
        query(
            QueryKind::FindNode {
                target: id(1),
                want,
            },
            b"fn",
        )
    };
    let both = poke(
        &mut net,
        "127.0.0.9:1",
        dual,
        &find(Want { n4: true, n6: true }),
    );
    let Body::Response(r) = decode_reply(&both[0]).body else {
        panic!()
    };
    assert_eq!((r.nodes.len(), r.nodes6.len()), (4, 4));
    let plain = poke(&mut net, "127.0.0.9:1", dual, &find(Want::default()));
    let Body::Response(r) = decode_reply(&plain[0]).body else {
        panic!()
    };
    assert_eq!((r.nodes.len(), r.nodes6.len()), (4, 0));
    let from6 = poke(&mut net, "[2001:db8::9]:1", dual, &find(Want::default()));
    let Body::Response(r) = decode_reply(&from6[0]).body else {
        panic!()
    };
    assert_eq!((r.nodes.len(), r.nodes6.len()), (0, 4));
}

#[test]
fn bep51_samples_are_answered() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", small_config(), 1);
    let now = net.now;
    for i in 0..5u8 {
        net.node(a)
            .store
            .announce(now, [i; 20], "127.0.0.5:1".parse().unwrap(), false);
    }
    let q = query(
        QueryKind::SampleInfohashes {
            target: id(3),
            want: Want::default(),
        },
        b"si",
    );
    let replies = poke(&mut net, "127.0.0.9:1", a, &q);
    let Body::Response(r) = decode_reply(&replies[0]).body else {
        panic!()
    };
    let mut samples = r.samples.expect("samples");
    samples.sort();
    assert_eq!(samples, (0..5u8).map(|i| [i; 20]).collect::<Vec<_>>());
    assert_eq!(r.num, Some(5));
    assert_eq!(r.interval, Some(21_600));
}

#[test]
fn a_slow_candidate_neither_holds_the_lookup_nor_hides_the_next_one() {
    let target = id(0);
    let mut t = Traversal::new(target, 1, 100);
    let nodes: Vec<NodeInfo> = (0..=K as u8)
        .map(|i| NodeInfo {
            id: NodeId([i + 1; 20]),
            addr: SocketAddr::from(([127, 0, 3, i], 1)),
        })
        .collect();
    t.add(&nodes, 0);
    let closest = t.next_query().unwrap();
    assert_eq!(closest, nodes[0].addr);
    t.on_slow(&closest);
    // The other K candidates, including the (K+1)-th, are asked and answer.
    let mut asked = Vec::new();
    while let Some(addr) = t.next_query() {
        let n = nodes.iter().find(|n| n.addr == addr).unwrap();
        t.on_response(&addr, n.id, None, true);
        asked.push(addr);
    }
    assert_eq!(asked.len(), K);
    assert!(asked.contains(&nodes[K].addr));
    assert!(t.is_done(), "done without waiting for the slow node");
    assert!(t.has_pending());
}
