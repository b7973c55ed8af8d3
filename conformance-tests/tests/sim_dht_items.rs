//! Simulated DHT networks with BEP 44 items and BEP 46 torrent updates: a publisher puts a
//! mutable item pointing at an info-hash, consumers elsewhere in the network resolve the
//! publisher's key to it, follow an update, and still resolve after a fifth of the nodes
//! leave; immutable items are found by their hash.

use bitshoal_conformance::sim::dht::{Behaviour, DhtSim, DhtSimConfig};
use bitshoal_core::dht::bep46::{torrent_value, TorrentSource};
use bitshoal_core::dht::item::immutable_target;
use bitshoal_core::dht::{DhtEvent, Item, ItemKey, ItemValue, LookupId, MutableItem};
use bitshoal_core::id::InfoHashV1;
use bitshoal_core::time::Duration;

const NODES: usize = 300;

/// A network of `NODES` nodes, each joining through up to three earlier ones.
fn network(seed: u64) -> DhtSim {
    let mut sim = DhtSim::new(seed, DhtSimConfig::default());
    for i in 0..NODES {
        sim.add_node();
        if i > 0 {
            let contacts: Vec<usize> = (0..i.min(3))
                .map(|_| sim.rng().below(i as u64) as usize)
                .collect();
            sim.bootstrap(i, &contacts);
        }
        sim.run_for(Duration::from_millis(200));
    }
    sim.run_for(Duration::from_secs(60));
    sim
}

fn put_acked(sim: &DhtSim, who: usize, l: LookupId) -> Option<usize> {
    sim.events().iter().find_map(|(_, n, e)| match e {
        DhtEvent::PutDone { lookup, acked, .. } if *n == who && *lookup == l => Some(*acked),
        _ => None,
    })
}

/// Node `who` resolves `source`; the info-hash and seq it found.
fn resolve(
    sim: &mut DhtSim,
    who: usize,
    source: &TorrentSource,
) -> (Option<InfoHashV1>, Option<i64>) {
    let l = sim.command(who, |n, now| n.resolve_torrent(now, source));
    let found = |sim: &DhtSim| {
        sim.events().iter().find_map(|(_, n, e)| match e {
            DhtEvent::TorrentResolved {
                lookup,
                info_hash,
                seq,
            } if *n == who && *lookup == l => Some((*info_hash, *seq)),
            _ => None,
        })
    };
    assert!(
        sim.run_until(|s| found(s).is_some(), Duration::from_secs(60)),
        "the lookup ends"
    );
    found(sim).expect("checked")
}

fn publish(sim: &mut DhtSim, who: usize, item: MutableItem) {
    let l = sim.command(who, |n, now| n.put_mutable(now, item, None));
    assert!(sim.run_until(|s| put_acked(s, who, l).is_some(), Duration::from_secs(60)));
    let acked = put_acked(sim, who, l).expect("checked");
    assert!(acked >= 6, "stored on most of the 8 closest nodes: {acked}");
}

#[test]
fn bep46_consumers_follow_a_publishers_updates() {
    let mut sim = network(46);
    let key = ItemKey::from_seed(&[0x46; 32]);
    let source = TorrentSource {
        public_key: key.public_key(),
        salt: b"nightly".to_vec(),
    };
    let publisher = 17;
    let consumers = [3, 99, 150, 222, 299];
    assert_eq!(resolve(&mut sim, consumers[0], &source), (None, None));

    let first = InfoHashV1([0xa1; 20]);
    let item = MutableItem::sign(&key, b"nightly", 1, torrent_value(first)).unwrap();
    publish(&mut sim, publisher, item);
    for &c in &consumers {
        assert_eq!(resolve(&mut sim, c, &source), (Some(first), Some(1)));
    }

    let second = InfoHashV1([0xb2; 20]);
    let item = MutableItem::sign(&key, b"nightly", 2, torrent_value(second)).unwrap();
    publish(&mut sim, publisher, item);
    for &c in &consumers {
        assert_eq!(resolve(&mut sim, c, &source), (Some(second), Some(2)));
    }

    // A fifth of the nodes leave (not the consumers): the item survives on the others.
    for i in (0..NODES).filter(|i| i % 5 == 1 && !consumers.contains(i)) {
        sim.set_behaviour(i, Behaviour::Down);
    }
    sim.run_for(Duration::from_secs(30));
    for &c in &consumers {
        assert_eq!(resolve(&mut sim, c, &source), (Some(second), Some(2)));
    }
    // Another salt names another (empty) source.
    let other = TorrentSource {
        salt: b"weekly".to_vec(),
        ..source
    };
    assert_eq!(resolve(&mut sim, consumers[1], &other), (None, None));
}

#[test]
fn bep44_immutable_items_are_found_by_hash() {
    let mut sim = network(44);
    let value = ItemValue::new(b"d4:name5:hello4:sizei42ee".to_vec()).unwrap();
    let target = immutable_target(&value);
    let l = sim.command(5, |n, now| n.put_immutable(now, value.clone()));
    assert!(sim.run_until(|s| put_acked(s, 5, l).is_some(), Duration::from_secs(60)));
    assert!(put_acked(&sim, 5, l).unwrap() >= 6);
    for who in [40, 120, 250] {
        let g = sim.command(who, |n, now| n.get_immutable(now, target));
        let done = |s: &DhtSim| {
            s.events().iter().find_map(|(_, n, e)| match e {
                DhtEvent::ItemDone { lookup, item, .. } if *n == who && *lookup == g => {
                    Some(item.clone())
                }
                _ => None,
            })
        };
        assert!(sim.run_until(|s| done(s).is_some(), Duration::from_secs(60)));
        assert_eq!(done(&sim), Some(Some(Item::Immutable(value.clone()))));
    }
}
