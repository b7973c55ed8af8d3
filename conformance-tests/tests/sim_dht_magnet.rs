//! The session's DHT beyond plain torrents, on the simulator: a magnet link with no tracker
//! and no peer finds its metadata and pieces through `get_peers` (BEP 5 + BEP 9), hybrid
//! torrents live under both info-hashes (BEP 52), and the application's BEP 44 items and
//! BEP 46 lookups (with the hourly republish) reach it as events.

use std::net::SocketAddr;
use std::sync::Arc;

use bitshoal_conformance::sim::{NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec};
use bitshoal_core::create::{Contents, FileAttrs, Plan, TorrentSpec as CreateSpec, Version};
use bitshoal_core::dht::{bep46, Item, ItemKey, MutableItem, TorrentSource};
use bitshoal_core::id::{InfoHashV1, InfoHashes, TorrentId};
use bitshoal_core::magnet::Magnet;
use bitshoal_core::metainfo::Metainfo;
use bitshoal_core::session::{AddMagnet, Config, DhtSettings, Event, REPUBLISH_INTERVAL};
use bitshoal_core::time::Duration;
use sha1::{Digest as _, Sha1};

fn dht_node(sim: &mut Sim, bootstrap: &[SocketAddr]) -> NodeId {
    sim.add_node(NodeConfig {
        session: Config {
            dht: Some(DhtSettings {
                bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
                ..DhtSettings::default()
            }),
            ..Config::default()
        },
        ..NodeConfig::default()
    })
}

/// A router, `bystanders` more DHT nodes, all joined.
fn network(sim: &mut Sim, bystanders: usize) -> (SocketAddr, Vec<NodeId>) {
    let router = dht_node(sim, &[]);
    let router_addr = sim.node(router).addr();
    let mut nodes = vec![router];
    nodes.extend((0..bystanders).map(|_| dht_node(sim, &[router_addr])));
    (router_addr, nodes)
}

/// Whether `n`'s DHT node stores `peer` under `info_hash`.
fn stores(sim: &Sim, n: NodeId, info_hash: [u8; 20], peer: SocketAddr) -> bool {
    let node = sim.node(n).session().dht_node().unwrap();
    let mut rng = bitshoal_core::rng::Rng::from_seed(1);
    node.store()
        .peers(&info_hash, false, false, 50, &mut rng)
        .contains(&peer)
}

fn lookups_done(sim: &Sim, n: NodeId, torrent: TorrentId) -> Vec<(InfoHashV1, usize)> {
    sim.node(n)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::DhtLookupDone {
                torrent: t,
                info_hash,
                peers,
                ..
            } if *t == torrent => Some((*info_hash, *peers)),
            _ => None,
        })
        .collect()
}

/// A single-file hybrid (v1 + v2, BEP 52) torrent of random bytes.
fn hybrid(sim: &mut Sim, size: u64) -> TestTorrent {
    let mut content = vec![0u8; size as usize];
    sim.rng().fill(&mut content);
    let mut spec = CreateSpec::new(
        "hybrid.bin",
        Contents::SingleFile {
            length: size,
            attrs: FileAttrs::default(),
        },
        Version::Hybrid,
    );
    spec.piece_length = Some(32 * 1024);
    let plan = Plan::new(spec).unwrap();
    let mut creator = bitshoal_core::create::Creator::new(plan.clone());
    for job in plan.jobs() {
        let mut bytes = Vec::new();
        for s in &job.spans {
            bytes.extend_from_slice(&content[s.offset as usize..(s.offset + s.length) as usize]);
        }
        if let Some(v2) = job.v2_piece {
            let leaves = bitshoal_core::merkle::leaves_of(&bytes);
            creator.add_v2_piece(v2, &leaves).unwrap();
        }
        if let Some(p) = job.v1_piece {
            bytes.resize(bytes.len() + job.zero_pad as usize, 0);
            creator
                .add_v1_piece(p, Sha1::digest(&bytes).into())
                .unwrap();
        }
    }
    let created = creator.finish().unwrap();
    let meta = Metainfo::from_bytes(&created.bytes).unwrap();
    TestTorrent {
        info: Arc::new(meta.info().clone()),
        content: content.into(),
        piece_layers: meta.piece_layers().to_vec(),
    }
}

#[test]
fn a_magnet_with_no_tracker_and_no_peer_downloads_through_the_dht() {
    let mut sim = Sim::new(931);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(300_000, 32 * 1024));
    let (router_addr, others) = network(&mut sim, 4);
    let seed = dht_node(&mut sim, &[router_addr]);
    let leech = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    sim.seed_torrent(seed, &torrent);
    sim.run_for(Duration::from_secs(5)).unwrap();
    // Only the info-hash: no `tr`, no `x.pe`, no connect.
    let magnet = Magnet::new(torrent.info.hashes());
    assert!(magnet.trackers().is_empty() && magnet.peers().is_empty());
    let t = sim
        .with_session(leech, |s, now| s.add_magnet(now, AddMagnet::new(magnet)))
        .unwrap();
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    let metadata = sim
        .node(leech)
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::MetadataReceived { torrent, .. } if *torrent == t))
        .count();
    assert_eq!(metadata, 1);
    // The lookup made for the magnet found the seed, and reported it.
    let done = lookups_done(&sim, leech, t);
    let v1 = InfoHashV1(torrent.info.hashes().wire_id());
    assert!(
        done.iter().any(|&(h, peers)| h == v1 && peers >= 1),
        "{done:?}"
    );
    // The leecher announced itself for the magnet too: later peers find it.
    let leech_addr = sim.node(leech).addr();
    let holders = others
        .iter()
        .filter(|&&n| stores(&sim, n, v1.0, leech_addr))
        .count();
    assert!(holders >= 1, "the leecher is stored on {holders} nodes");
}

#[test]
fn a_magnet_without_the_dht_or_any_source_stays_without_peers() {
    // The same magnet on a node whose DHT is off: nothing to find peers with.
    let mut sim = Sim::new(932);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(100_000, 32 * 1024));
    let (router_addr, _) = network(&mut sim, 2);
    let seed = dht_node(&mut sim, &[router_addr]);
    let leech = sim.add_node(NodeConfig::default());
    sim.seed_torrent(seed, &torrent);
    sim.run_for(Duration::from_secs(5)).unwrap();
    let t = sim
        .with_session(leech, |s, now| {
            s.add_magnet(now, AddMagnet::new(Magnet::new(torrent.info.hashes())))
        })
        .unwrap();
    sim.run_for(Duration::from_secs(60)).unwrap();
    let status = sim.node(leech).session().torrent_status(t).unwrap();
    assert_eq!(status.peers, 0);
    assert!(lookups_done(&sim, leech, t).is_empty());
    assert!(sim
        .with_session(leech, |s, _| s.dht_info_hashes(t))
        .is_empty());
}

#[test]
fn a_hybrid_torrent_is_announced_and_found_under_both_info_hashes() {
    let mut sim = Sim::new(933);
    let torrent = hybrid(&mut sim, 200_000);
    let hashes = torrent.info.hashes();
    let (Some(v1), Some(v2)) = (hashes.v1(), hashes.v2()) else {
        panic!("a hybrid torrent has both hashes");
    };
    let v2 = InfoHashV1(v2.truncated());
    let (router_addr, others) = network(&mut sim, 5);
    let seed = dht_node(&mut sim, &[router_addr]);
    let leech = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    let s = sim.seed_torrent(seed, &torrent);
    sim.run_for(Duration::from_secs(10)).unwrap();
    let mut on_dht = sim.with_session(seed, |ses, _| ses.dht_info_hashes(s));
    on_dht.sort();
    let mut both = vec![v1, v2];
    both.sort();
    assert_eq!(on_dht, both);
    // BEP 52: the seed is stored under the v1 hash and under the truncated v2 hash.
    let seed_addr = sim.node(seed).addr();
    for h in [v1, v2] {
        let holders = others
            .iter()
            .filter(|&&n| stores(&sim, n, h.0, seed_addr))
            .count();
        assert!(holders >= 2, "{h:?} is stored on {holders} nodes");
    }
    // A magnet naming only the v1 hash finds the seed, and once the metadata shows the
    // torrent is a hybrid, the leecher looks it up (and announces) under the v2 hash too.
    let t = sim
        .with_session(leech, |ses, now| {
            ses.add_magnet(now, AddMagnet::new(Magnet::new(InfoHashes::V1(v1))))
        })
        .unwrap();
    assert_eq!(
        sim.with_session(leech, |ses, _| ses.dht_info_hashes(t)),
        [v1]
    );
    sim.run_until(|s| s.node(leech).is_finished(t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sim.node(leech).disk().content(t).unwrap(),
        &torrent.content[..]
    );
    sim.run_for(Duration::from_secs(10)).unwrap();
    let mut on_dht = sim.with_session(leech, |ses, _| ses.dht_info_hashes(t));
    on_dht.sort();
    assert_eq!(on_dht, both);
    let done = lookups_done(&sim, leech, t);
    assert!(
        done.iter().any(|&(h, peers)| h == v2 && peers >= 1),
        "the v2 lookup found the seed: {done:?}"
    );
}

#[test]
fn items_put_through_the_session_resolve_and_are_republished_hourly() {
    let mut sim = Sim::new(934);
    let (router_addr, _) = network(&mut sim, 6);
    let publisher = dht_node(&mut sim, &[router_addr]);
    let reader = dht_node(&mut sim, &[router_addr]);
    sim.run_for(Duration::from_secs(5)).unwrap();
    let bootstrapped = sim
        .node(reader)
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::DhtBootstrapped { nodes } if *nodes >= 1));
    assert!(bootstrapped, "the bootstrap is reported");
    // BEP 46: the publisher points its key at an info-hash.
    let key = ItemKey::from_seed(&[0x46; 32]);
    let ih = InfoHashV1([0xab; 20]);
    let item = MutableItem::sign(&key, b"tv", 1, bep46::torrent_value(ih)).unwrap();
    let target = item.target();
    let put = sim
        .with_session(publisher, |s, now| s.dht_put(now, Item::Mutable(item)))
        .expect("the DHT is on");
    sim.run_for(Duration::from_secs(30)).unwrap();
    let acked: Vec<usize> = sim
        .node(publisher)
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::DhtPutDone {
                lookup,
                target: t,
                acked,
            } if *lookup == put && *t == target => Some(*acked),
            _ => None,
        })
        .collect();
    assert!(matches!(acked[..], [n] if n >= 3), "{acked:?}");
    let source = TorrentSource {
        public_key: key.public_key(),
        salt: b"tv".to_vec(),
    };
    let resolve = |sim: &mut Sim| {
        let lookup = sim
            .with_session(reader, |s, now| s.dht_resolve_torrent(now, &source))
            .unwrap();
        sim.run_for(Duration::from_secs(30)).unwrap();
        sim.node(reader)
            .events()
            .iter()
            .find_map(|(_, e)| match e {
                Event::DhtTorrentResolved {
                    lookup: l,
                    info_hash,
                    seq,
                } if *l == lookup => Some((*info_hash, *seq)),
                _ => None,
            })
            .expect("the lookup ends")
    };
    assert_eq!(resolve(&mut sim), (Some(ih), Some(1)));
    // Storing nodes drop items after two hours; the hourly republish keeps it alive.
    sim.run_for(Duration::from_secs(3 * REPUBLISH_INTERVAL.as_secs()))
        .unwrap();
    let puts = sim
        .node(publisher)
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::DhtPutDone { target: t, acked, .. } if *t == target && *acked >= 1))
        .count();
    assert!(puts >= 3, "{puts} puts acknowledged");
    assert_eq!(resolve(&mut sim), (Some(ih), Some(1)));
    // Unpublished, it expires.
    assert!(sim.with_session(publisher, |s, _| s.dht_unpublish(target)));
    sim.run_for(Duration::from_secs(3 * REPUBLISH_INTERVAL.as_secs()))
        .unwrap();
    assert_eq!(resolve(&mut sim), (None, None));
    // A get of an immutable item through the session.
    let value = bitshoal_core::dht::ItemValue::from_bytes(b"hello").unwrap();
    let imm = Item::Immutable(value.clone());
    let imm_target = imm.target();
    sim.with_session(publisher, |s, now| s.dht_put(now, imm))
        .unwrap();
    sim.run_for(Duration::from_secs(30)).unwrap();
    let get = sim
        .with_session(reader, |s, now| s.dht_get_immutable(now, imm_target))
        .unwrap();
    sim.run_for(Duration::from_secs(30)).unwrap();
    let got = sim.node(reader).events().iter().find_map(|(_, e)| match e {
        Event::DhtItem { lookup, item, .. } if *lookup == get => Some(item.clone()),
        _ => None,
    });
    assert_eq!(got, Some(Some(Item::Immutable(value))));
}
