//! BEP 44 (items), BEP 45 (multiple addresses) and BEP 46 (updatable torrents) on the tiny
//! instant network of `tests.rs`.

use std::net::SocketAddr;

use super::item::{code as item_code, immutable_target, mutable_target, Item, ItemKey};
use super::items::ItemLookup;
use super::krpc::{code, Body, ErrorReply, MutablePut, PutArgs, QueryKind, Response, Token, Want};
use super::tests::{decode_reply, poke, query, tid, Net};
use super::*;
use crate::id::InfoHashV1;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

fn value(s: &[u8]) -> ItemValue {
    ItemValue::from_bytes(s).unwrap()
}

/// Five nodes bootstrapped through the first.
fn network() -> (Net, Vec<SocketAddr>) {
    let mut net = Net::new();
    let addrs: Vec<SocketAddr> = (1..=5)
        .map(|i| net.add(&format!("127.0.0.{i}:6881"), DhtConfig::default(), i))
        .collect();
    for &a in &addrs[1..] {
        let now = net.now;
        net.node(a).bootstrap(now, &[addrs[0]]);
        net.run_until(now + Duration::from_secs(3));
    }
    // A second round so that everyone knows everyone.
    for &a in &addrs[1..] {
        let now = net.now;
        net.node(a).bootstrap(now, &[addrs[0]]);
        net.run_until(now + Duration::from_secs(3));
    }
    (net, addrs)
}

fn item_done(net: &Net, who: SocketAddr, l: LookupId) -> Option<Option<Item>> {
    net.events.iter().find_map(|(w, e)| match e {
        DhtEvent::ItemDone { lookup, item, .. } if *w == who && *lookup == l => Some(item.clone()),
        _ => None,
    })
}

fn put_acked(net: &Net, who: SocketAddr, l: LookupId) -> Option<usize> {
    net.events.iter().find_map(|(w, e)| match e {
        DhtEvent::PutDone { lookup, acked, .. } if *w == who && *lookup == l => Some(*acked),
        _ => None,
    })
}

fn run(net: &mut Net) {
    let now = net.now;
    net.run_until(now + Duration::from_secs(10));
}

#[test]
fn get_and_put_messages_round_trip() {
    let key = ItemKey::from_seed(&[1; 32]);
    let m = MutableItem::sign(&key, b"salt", 3, value(b"hi")).unwrap();
    let put = QueryKind::Put(Box::new(PutArgs {
        token: Token::try_from(&b"tok"[..]).unwrap(),
        value: m.value.as_bytes().to_vec(),
        mutable: Some(MutablePut {
            public_key: m.public_key,
            signature: m.signature,
            seq: 3,
            salt: b"salt".to_vec(),
            cas: Some(2),
        }),
    }));
    for kind in [
        put,
        QueryKind::Get {
            target: m.target(),
            seq: Some(1),
            want: Want {
                n4: true,
                n6: false,
            },
        },
    ] {
        let bytes = query(kind.clone(), b"aa");
        let decoded = Message::decode(&bytes).unwrap();
        let Body::Query(q) = decoded.body else {
            panic!()
        };
        assert_eq!(q.kind, kind);
        assert_eq!(
            Message::decode(&bytes).unwrap().to_vec(),
            bytes,
            "canonical"
        );
    }
    let r = Response {
        id: NodeId([4; 20]),
        k: Some(m.public_key),
        sig: Some(m.signature),
        seq: Some(3),
        v: Some(b"d1:ai1ee".to_vec()),
        token: Some(Token::try_from(&b"t"[..]).unwrap()),
        ..Response::default()
    };
    let msg = Message {
        tid: tid(b"r1"),
        body: Body::Response(r),
        ip: None,
        read_only: false,
        version: None,
    };
    assert_eq!(Message::decode(&msg.to_vec()).unwrap(), msg);
}

#[test]
fn non_canonical_values_and_bad_puts_get_bep44_error_codes() {
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", DhtConfig::default(), 1);
    let from = "127.0.0.7:1000";
    // A put whose `v` has unsorted keys does not decode: error 203.
    let raw = b"d1:ad2:id20:abcdefghij01234567895:token1:x1:vd1:bi1e1:ai2eee1:q3:put1:t2:pp1:y1:qe";
    let m = decode_reply(&poke(&mut net, from, a, raw)[0]);
    assert!(matches!(
        m.body,
        Body::Error(ErrorReply {
            code: code::PROTOCOL,
            ..
        })
    ));

    // A token first.
    let get = query(
        QueryKind::Get {
            target: NodeId([1; 20]),
            seq: None,
            want: Want::default(),
        },
        b"g1",
    );
    let Body::Response(r) = decode_reply(&poke(&mut net, from, a, &get)[0]).body else {
        panic!()
    };
    let token = r.token.expect("get gives a token");
    let key = ItemKey::from_seed(&[2; 32]);
    let good = MutableItem::sign(&key, b"", 5, value(b"five")).unwrap();
    let put = |m: &MutableItem, salt: Vec<u8>, value: Vec<u8>, cas, token: &Token| {
        query(
            QueryKind::Put(Box::new(PutArgs {
                token: token.clone(),
                value,
                mutable: Some(MutablePut {
                    public_key: m.public_key,
                    signature: m.signature,
                    seq: m.seq,
                    salt,
                    cas,
                }),
            })),
            b"p1",
        )
    };
    let code_of =
        |net: &mut Net, bytes: &[u8]| match decode_reply(&poke(net, from, a, bytes)[0]).body {
            Body::Error(e) => e.code,
            Body::Response(_) => 0,
            Body::Query(_) => panic!(),
        };
    let v = good.value.as_bytes().to_vec();
    let bad_token = Token::try_from(&b"nope"[..]).unwrap();
    assert_eq!(
        code_of(&mut net, &put(&good, vec![], v.clone(), None, &bad_token)),
        code::PROTOCOL
    );
    let mut forged = good.clone();
    forged.signature[5] ^= 1;
    assert_eq!(
        code_of(&mut net, &put(&forged, vec![], v.clone(), None, &token)),
        item_code::INVALID_SIGNATURE
    );
    assert_eq!(
        code_of(
            &mut net,
            &put(&good, vec![b's'; 65], v.clone(), None, &token)
        ),
        item_code::SALT_TOO_BIG
    );
    let mut big = Vec::new();
    crate::bencode::put_bytes(&mut big, &[b'x'; 1000]);
    assert_eq!(
        code_of(&mut net, &put(&good, vec![], big, None, &token)),
        item_code::VALUE_TOO_BIG
    );
    assert!(net.node(a).items().is_empty());
    assert_eq!(
        code_of(&mut net, &put(&good, vec![], v.clone(), None, &token)),
        0
    );
    assert_eq!(net.node(a).items().len(), 1);
    let older = MutableItem::sign(&key, b"", 4, value(b"four")).unwrap();
    let ov = older.value.as_bytes().to_vec();
    assert_eq!(
        code_of(&mut net, &put(&older, vec![], ov, None, &token)),
        item_code::SEQ_TOO_LOW
    );
    let newer = MutableItem::sign(&key, b"", 6, value(b"six")).unwrap();
    let nv = newer.value.as_bytes().to_vec();
    assert_eq!(
        code_of(&mut net, &put(&newer, vec![], nv.clone(), Some(4), &token)),
        item_code::CAS_MISMATCH
    );
    assert_eq!(
        code_of(&mut net, &put(&newer, vec![], nv, Some(5), &token)),
        0
    );

    // `get` with `seq`: only `seq` comes back when the stored item is not newer.
    let target = mutable_target(&key.public_key(), b"");
    let get_seq = |seq| {
        query(
            QueryKind::Get {
                target,
                seq,
                want: Want::default(),
            },
            b"g2",
        )
    };
    let Body::Response(r) = decode_reply(&poke(&mut net, from, a, &get_seq(Some(6)))[0]).body
    else {
        panic!()
    };
    assert_eq!((r.seq, r.v.is_none(), r.k.is_none()), (Some(6), true, true));
    let Body::Response(r) = decode_reply(&poke(&mut net, from, a, &get_seq(Some(5)))[0]).body
    else {
        panic!()
    };
    assert_eq!(r.seq, Some(6));
    assert_eq!(r.v.as_deref(), Some(&b"3:six"[..]));
    assert_eq!(r.k, Some(key.public_key()));
}

#[test]
fn requesters_verify_items_before_taking_them() {
    let key = ItemKey::from_seed(&[3; 32]);
    let m = MutableItem::sign(&key, b"s", 2, value(b"ok")).unwrap();
    let target = m.target();
    let mut r = Response {
        k: Some(m.public_key),
        sig: Some(m.signature),
        seq: Some(2),
        v: Some(m.value.as_bytes().to_vec()),
        ..Response::default()
    };
    let mut node = DhtNode::new(DhtConfig::default(), Rng::from_seed(1), Instant::ZERO);
    // Drive the real lookup code: its ItemLookup only keeps verified items.
    let mut lookup = ItemLookup::for_test(Some((key.public_key(), b"s".to_vec())));
    lookup.on_response(&target, &r);
    assert_eq!(lookup.best(), Some(&Item::Mutable(m.clone())));
    // A forged newer one is ignored.
    let mut forged = r.clone();
    forged.seq = Some(9);
    lookup.on_response(&target, &forged);
    assert!(matches!(lookup.best(), Some(Item::Mutable(x)) if x.seq == 2));
    // Another key is ignored even if validly signed.
    let other = MutableItem::sign(&ItemKey::from_seed(&[4; 32]), b"s", 5, value(b"x")).unwrap();
    r.k = Some(other.public_key);
    r.sig = Some(other.signature);
    r.seq = Some(5);
    r.v = Some(other.value.as_bytes().to_vec());
    lookup.on_response(&target, &r);
    assert!(matches!(lookup.best(), Some(Item::Mutable(x)) if x.seq == 2));
    // Immutable: the value must hash to the target.
    let mut imm = ItemLookup::for_test(None);
    let v = value(b"data");
    let bad = Response {
        v: Some(b"4:evil".to_vec()),
        ..Response::default()
    };
    imm.on_response(&immutable_target(&v), &bad);
    assert_eq!(imm.best(), None);
    let good = Response {
        v: Some(v.as_bytes().to_vec()),
        ..Response::default()
    };
    imm.on_response(&immutable_target(&v), &good);
    assert_eq!(imm.best(), Some(&Item::Immutable(v)));
    let _ = node.poll_timeout();
    node.handle_timeout(Instant::ZERO);
}

#[test]
fn items_are_put_and_found_across_a_network() {
    let (mut net, addrs) = network();
    let (b, c) = (addrs[1], addrs[2]);

    // Immutable.
    let v = value(b"Hello World!");
    let now = net.now;
    let p = net.node(b).put_immutable(now, v.clone());
    run(&mut net);
    assert!(put_acked(&net, b, p).unwrap() >= 3, "stored on most nodes");
    let now = net.now;
    let g = net.node(c).get_immutable(now, immutable_target(&v));
    run(&mut net);
    assert_eq!(item_done(&net, c, g), Some(Some(Item::Immutable(v))));
    let now = net.now;
    let missing = net.node(c).get_immutable(now, NodeId([0xee; 20]));
    run(&mut net);
    assert_eq!(item_done(&net, c, missing), Some(None));

    // Mutable, updated, and guarded by cas.
    let key = ItemKey::from_seed(&[7; 32]);
    let one = MutableItem::sign(&key, b"x", 1, value(b"one")).unwrap();
    let now = net.now;
    let p = net.node(b).put_mutable(now, one.clone(), None);
    run(&mut net);
    assert!(put_acked(&net, b, p).unwrap() >= 3);
    let two = MutableItem::sign(&key, b"x", 2, value(b"two")).unwrap();
    let now = net.now;
    let p = net.node(c).put_mutable(now, two.clone(), Some(1));
    run(&mut net);
    let acked = put_acked(&net, c, p).unwrap();
    assert!(acked >= 3);
    // The search before this put saw seq 1.
    assert_eq!(
        item_done(&net, c, p),
        Some(Some(Item::Mutable(one.clone())))
    );
    // Seq 1 again with another value: refused by nodes holding seq 2 (lower) and by nodes
    // still holding seq 1 (same seq, another value).
    let uno = MutableItem::sign(&key, b"x", 1, value(b"uno")).unwrap();
    let now = net.now;
    let stale = net.node(b).put_mutable(now, uno, None);
    run(&mut net);
    assert_eq!(put_acked(&net, b, stale), Some(0), "nobody downgrades");
    let three = MutableItem::sign(&key, b"x", 3, value(b"three")).unwrap();
    let now = net.now;
    let wrong_cas = net.node(b).put_mutable(now, three, Some(0));
    run(&mut net);
    assert_eq!(
        put_acked(&net, b, wrong_cas),
        Some(0),
        "cas mismatch everywhere"
    );
    let now = net.now;
    let g = net
        .node(addrs[4])
        .get_mutable(now, key.public_key(), b"x", None);
    run(&mut net);
    assert_eq!(item_done(&net, addrs[4], g), Some(Some(Item::Mutable(two))));
    // With the wrong salt there is nothing.
    let now = net.now;
    let g = net
        .node(addrs[4])
        .get_mutable(now, key.public_key(), b"y", None);
    run(&mut net);
    assert_eq!(item_done(&net, addrs[4], g), Some(None));
}

#[test]
fn bep46_torrent_updates_resolve_to_the_newest_info_hash() {
    let (mut net, addrs) = network();
    let key = ItemKey::from_seed(&[9; 32]);
    let source = TorrentSource {
        public_key: key.public_key(),
        salt: b"feed".to_vec(),
    };
    let resolve = |net: &mut Net, who: SocketAddr| {
        let now = net.now;
        let l = net.node(who).resolve_torrent(now, &source);
        run(net);
        net.events.iter().find_map(|(w, e)| match e {
            DhtEvent::TorrentResolved {
                lookup,
                info_hash,
                seq,
            } if *w == who && *lookup == l => Some((*info_hash, *seq)),
            _ => None,
        })
    };
    assert_eq!(resolve(&mut net, addrs[3]), Some((None, None)));
    for (seq, ih) in [(1, [1u8; 20]), (2, [2u8; 20])] {
        let v = bep46::torrent_value(InfoHashV1(ih));
        let item = MutableItem::sign(&key, b"feed", seq, v).unwrap();
        let now = net.now;
        let p = net.node(addrs[1]).put_mutable(now, item, None);
        run(&mut net);
        assert!(put_acked(&net, addrs[1], p).unwrap() >= 3);
        assert_eq!(
            resolve(&mut net, addrs[3]),
            Some((Some(InfoHashV1(ih)), Some(seq)))
        );
    }
}

#[test]
fn bep45_sockets_look_like_separate_nodes() {
    let mut net = Net::new();
    let router = net.add("127.0.0.1:6881", DhtConfig::default(), 1);
    let other = net.add("127.0.0.2:6881", DhtConfig::default(), 2);
    let locals: Vec<SocketAddr> = vec![
        "127.0.0.10:6881".parse().unwrap(),
        "127.0.0.11:6881".parse().unwrap(),
    ];
    let mut multi = MultiDht::new(DhtConfig::default(), Rng::from_seed(3), net.now, &locals);
    let ids: Vec<NodeId> = locals
        .iter()
        .map(|l| multi.node(*l).unwrap().node_id())
        .collect();
    assert_eq!(
        ids[0].common_prefix_len(&ids[1]),
        0,
        "ids differ in the first bit"
    );
    let now = net.now;
    net.node(other).bootstrap(now, &[router]);
    multi.bootstrap(now, &[router]);
    // Drive the network with the multi node outside it: each datagram goes out from, and
    // replies come back to, the socket it belongs to.
    let mut sent_from = std::collections::BTreeSet::new();
    let ih = InfoHashV1([0x33; 20]);
    let how = Announce {
        port: 7000,
        implied_port: false,
        seed: false,
    };
    let mut announced = false;
    let end = now + Duration::from_secs(40);
    while net.now < end {
        if !announced && net.now >= now + Duration::from_secs(5) {
            multi.announce(net.now, ih, how);
            announced = true;
        }
        for _ in 0..1000 {
            let mut moved = false;
            while let Some((local, to, data)) = multi.poll_transmit() {
                moved = true;
                sent_from.insert(local);
                let now = net.now;
                if let Some(n) = net.nodes.get_mut(&to) {
                    n.handle_datagram(now, local, &data);
                }
            }
            let now = net.now;
            let mut out = Vec::new();
            for (from, n) in &mut net.nodes {
                while let Some((to, data)) = n.poll_transmit() {
                    out.push((*from, to, data));
                }
                while n.poll_event().is_some() {}
            }
            for (from, to, data) in out {
                moved = true;
                if locals.contains(&to) {
                    multi.handle_datagram(now, to, from, &data);
                } else if let Some(dst) = net.nodes.get_mut(&to) {
                    dst.handle_datagram(now, from, &data);
                }
            }
            while multi.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        let next = net
            .nodes
            .values()
            .filter_map(DhtNode::poll_timeout)
            .chain(multi.poll_timeout())
            .min()
            .unwrap_or(end)
            .min(end)
            .max(net.now + Duration::from_millis(100));
        net.now = next;
        for n in net.nodes.values_mut() {
            if n.poll_timeout().is_some_and(|t| t <= next) {
                n.handle_timeout(next);
            }
        }
        multi.handle_timeout(next);
    }
    assert_eq!(sent_from.len(), 2, "both sockets took part");
    // Both sockets announced (10 s apart), each with its own token: the router stores both.
    let mut rng = Rng::from_seed(1);
    let mut stored = net
        .node(router)
        .store()
        .peers(&ih.0, false, false, 10, &mut rng);
    stored.sort();
    assert_eq!(
        stored,
        vec![
            "127.0.0.10:7000".parse::<SocketAddr>().unwrap(),
            "127.0.0.11:7000".parse().unwrap()
        ]
    );
    // The router sees two distinct nodes.
    let table = net.node(router).routing_table(false);
    for (l, id) in locals.iter().zip(&ids) {
        assert_eq!(table.get(l).map(|e| e.info.id), Some(*id));
    }
}

#[test]
fn a_lookup_reports_the_peers_of_its_own_store_first() {
    // Two nodes: b announces to a; a's own lookup asks only b, which knows nothing, so the
    // peer can only come from a's store.
    let mut net = Net::new();
    let a = net.add("127.0.0.1:6881", DhtConfig::default(), 1);
    let b = net.add("127.0.0.2:6881", DhtConfig::default(), 2);
    let now = net.now;
    net.node(b).bootstrap(now, &[a]);
    run(&mut net);
    let ih = InfoHashV1([0x61; 20]);
    let now = net.now;
    let how = Announce {
        port: 7000,
        implied_port: false,
        seed: true,
    };
    net.node(b).announce(now, ih, how);
    run(&mut net);
    assert_eq!(net.node(a).store().len(), 1);
    let now = net.now;
    let l = net.node(a).get_peers(now, ih);
    run(&mut net);
    let found: Vec<SocketAddr> = net
        .events
        .iter()
        .filter_map(|(w, e)| match e {
            DhtEvent::Peers { lookup, peers, .. } if *w == a && *lookup == l => Some(peers.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(found, vec!["127.0.0.2:7000".parse::<SocketAddr>().unwrap()]);
}
