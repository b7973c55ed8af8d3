//! DHT benchmarks: routing-table operations and the KRPC codec.
//!
//! `cargo bench -p bitshoal-benches --bench dht`.
//!
//! - `dht/routing/heard_from`: one answer from a known or new node into a table holding ~150
//!   nodes (the size a node on a large network keeps), per call.
//! - `dht/routing/closest_8`: the 8 closest nodes to a random target, per call.
//! - `dht/routing/fill_10k`: building a table from 10,000 random nodes (splits included).
//! - `dht/krpc/decode_get_peers_response` and `encode_...`: a get_peers response with 8 nodes,
//!   a token and 20 peers.

use std::net::SocketAddr;

use bitshoal_core::dht::krpc::{Body, Message, NodeInfo, Response, Token, TxId};
use bitshoal_core::dht::{NodeId, RoutingTable};
use bitshoal_core::rng::Rng;
use bitshoal_core::time::Instant;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn random_node(rng: &mut Rng, i: u32) -> NodeInfo {
    NodeInfo {
        id: NodeId::random(rng),
        addr: SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
    }
}

fn table(rng: &mut Rng, n: u32) -> (RoutingTable, Vec<NodeInfo>) {
    let mut t = RoutingTable::new(NodeId::random(rng), Instant::ZERO);
    let nodes: Vec<NodeInfo> = (0..n).map(|i| random_node(rng, i)).collect();
    for node in &nodes {
        t.heard_from(Instant::ZERO, *node);
    }
    (t, nodes)
}

fn routing(c: &mut Criterion) {
    let mut rng = Rng::from_seed(1);
    let (mut t, nodes) = table(&mut rng, 10_000);
    let now = Instant::from_micros(1_000_000);
    let mut i = 0usize;
    c.bench_function("dht/routing/heard_from", |b| {
        b.iter(|| {
            i = (i + 1) % nodes.len();
            black_box(t.heard_from(now, nodes[i]))
        })
    });
    let targets: Vec<NodeId> = (0..1024).map(|_| NodeId::random(&mut rng)).collect();
    let mut j = 0usize;
    c.bench_function("dht/routing/closest_8", |b| {
        b.iter(|| {
            j = (j + 1) % targets.len();
            black_box(t.closest(now, &targets[j], 8))
        })
    });
    c.bench_function("dht/routing/fill_10k", |b| {
        b.iter(|| black_box(table(&mut Rng::from_seed(2), 10_000).0.len()))
    });
}

fn krpc(c: &mut Criterion) {
    let mut rng = Rng::from_seed(3);
    let msg = Message {
        tid: TxId::try_from(&b"abcd"[..]).expect("fits"),
        body: Body::Response(Response {
            id: NodeId::random(&mut rng),
            nodes: (0..8).map(|i| random_node(&mut rng, i)).collect(),
            token: Some(Token::try_from(&b"12345678"[..]).expect("fits")),
            values: (0..20u8)
                .map(|i| SocketAddr::from(([127, 0, 0, i], 6881)))
                .collect(),
            ..Response::default()
        }),
        ip: Some(SocketAddr::from(([127, 0, 0, 1], 6881))),
        read_only: false,
        version: None,
    };
    let bytes = msg.to_vec();
    c.bench_function("dht/krpc/decode_get_peers_response", |b| {
        b.iter(|| black_box(Message::decode(black_box(&bytes)).is_ok()))
    });
    c.bench_function("dht/krpc/encode_get_peers_response", |b| {
        b.iter(|| black_box(msg.to_vec().len()))
    });
}

criterion_group!(benches, routing, krpc);
criterion_main!(benches);
