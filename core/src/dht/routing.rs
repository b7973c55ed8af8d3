//! The routing table (BEP 5): buckets of at most [`K`] nodes over the id space, split when the
//! bucket holding our own id fills, with a replacement cache per bucket.
//!
//! Layout (as libtorrent): bucket `i < last` holds the nodes whose ids share exactly `i`
//! leading bits with ours; the last bucket holds every node sharing at least `last` bits. Only
//! the last bucket splits, so the table covers the space near our id finely and the far space
//! coarsely.
//!
//! Invariants (checked by [`RoutingTable::check_invariants`] in tests):
//! - every node is in the bucket its id maps to, each bucket holds at most [`K`] nodes and
//!   at most [`K`] replacements;
//! - no id and no IP address appears twice among the nodes (one node per IP: a cheap defence
//!   against one host filling a table), and our own id never appears;
//! - only nodes that answered us are ever added (callers feed [`RoutingTable::heard_from`] on
//!   responses), so every address in the table has been seen to answer: "verified".
//!
//! Node status (BEP 5): **good** if it answered within [`GOOD_FOR`] or answered once and
//! queried us within [`GOOD_FOR`]; **bad** after [`MAX_FAILS`] failed queries in a row;
//! **questionable** otherwise. A failing node is replaced at once by the freshest replacement
//! if there is one; bad nodes are replaced by any new node for their bucket.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use arrayvec::ArrayVec;

use super::krpc::NodeInfo;
use super::node_id::NodeId;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// Nodes per bucket (BEP 5: K = 8).
pub const K: usize = 8;

/// How long an answer keeps a node good, and how long a bucket may go unrefreshed.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);

/// Consecutive failures that make a node bad.
pub const MAX_FAILS: u8 = 2;

/// One node in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node's id and address.
    pub info: NodeInfo,
    /// When it last answered us.
    pub last_response: Instant,
    /// When it last queried us, if ever.
    pub last_query: Option<Instant>,
    /// Consecutive failed queries.
    pub fails: u8,
}

/// A node's standing (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Answered recently.
    Good,
    /// Not heard from in a while.
    Questionable,
    /// Failed [`MAX_FAILS`] queries in a row.
    Bad,
}

impl Entry {
    fn new(now: Instant, info: NodeInfo) -> Self {
        Self {
            info,
            last_response: now,
            last_query: None,
            fails: 0,
        }
    }

    /// This node's status at `now`.
    pub fn status(&self, now: Instant) -> NodeStatus {
        if self.fails >= MAX_FAILS {
            NodeStatus::Bad
        } else if self.fails == 0
            && (now.saturating_duration_since(self.last_response) < GOOD_FOR
                || self
                    .last_query
                    .is_some_and(|q| now.saturating_duration_since(q) < GOOD_FOR))
        {
            NodeStatus::Good
        } else {
            NodeStatus::Questionable
        }
    }

    fn last_active(&self) -> Instant {
        self.last_query
            .map_or(self.last_response, |q| q.max(self.last_response))
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: ArrayVec<Entry, K>,
    replacements: ArrayVec<Entry, K>,
    last_active: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            nodes: ArrayVec::new(),
            replacements: ArrayVec::new(),
            last_active: now,
        }
    }
}

/// What [`RoutingTable::heard_from`] did with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Added to its bucket.
    Added,
    /// Already there: marked as heard from.
    Updated,
    /// Its bucket is full of good nodes: kept in the replacement cache.
    Replacement,
    /// Refused: our own id, an id already in the table at another address, or an IP address
    /// already in the table.
    Rejected,
}

/// The routing table of one address family (BEP 32 keeps one per family).
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
    by_addr: BTreeMap<SocketAddr, NodeId>,
    ips: BTreeSet<IpAddr>,
}

impl RoutingTable {
    /// An empty table around `own`.
    pub fn new(own: NodeId, now: Instant) -> Self {
        Self {
            own,
            buckets: vec![Bucket::new(now)],
            by_addr: BTreeMap::new(),
            ips: BTreeSet::new(),
        }
    }

    /// Our own id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// The number of nodes (not counting replacements).
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether the table has no nodes.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The nodes of bucket `i` (for inspection and tests).
    pub fn bucket(&self, i: usize) -> &[Entry] {
        self.buckets.get(i).map_or(&[], |b| &b.nodes)
    }

    /// The bucket `id` belongs to.
    pub fn bucket_index(&self, id: &NodeId) -> usize {
        self.own.common_prefix_len(id).min(self.buckets.len() - 1)
    }

    /// Every node in the table.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// The node at `addr`, if it is in the table (which means it has answered us).
    pub fn get(&self, addr: &SocketAddr) -> Option<&Entry> {
        let id = self.by_addr.get(addr)?;
        let b = &self.buckets[self.bucket_index(id)];
        b.nodes.iter().find(|e| e.info.addr == *addr)
    }

    fn get_mut(&mut self, addr: &SocketAddr) -> Option<(usize, usize)> {
        let id = self.by_addr.get(addr)?;
        let bi = self.bucket_index(id);
        let ni = self.buckets[bi]
            .nodes
            .iter()
            .position(|e| e.info.addr == *addr)?;
        Some((bi, ni))
    }

    /// Whether a node that has just queried us would find a place (so it is worth pinging to
    /// verify its address): not ours, not already in, and its bucket has room, can split or
    /// holds a bad node.
    pub fn would_accept(&self, now: Instant, info: &NodeInfo) -> bool {
        if info.id == self.own
            || self.by_addr.contains_key(&info.addr)
            || self.ips.contains(&info.addr.ip())
        {
            return false;
        }
        let bi = self.bucket_index(&info.id);
        let b = &self.buckets[bi];
        b.nodes.len() < K
            || (bi == self.buckets.len() - 1 && self.buckets.len() < NodeId::BITS)
            || b.nodes.iter().any(|e| e.status(now) == NodeStatus::Bad)
    }

    /// Records an answer from `info` (the only way a node enters the table).
    pub fn heard_from(&mut self, now: Instant, info: NodeInfo) -> Inserted {
        if info.id == self.own {
            return Inserted::Rejected;
        }
        if let Some(id) = self.by_addr.get(&info.addr) {
            if *id != info.id {
                // The address now answers with another id: keep the entry we verified until
                // it fails.
                return Inserted::Rejected;
            }
            let (bi, ni) = self.get_mut(&info.addr).expect("by_addr and buckets agree");
            let b = &mut self.buckets[bi];
            b.nodes[ni].last_response = now;
            b.nodes[ni].fails = 0;
            b.last_active = now;
            return Inserted::Updated;
        }
        if self.ips.contains(&info.addr.ip()) {
            return Inserted::Rejected;
        }
        loop {
            let bi = self.bucket_index(&info.id);
            let splittable = bi == self.buckets.len() - 1 && self.buckets.len() < NodeId::BITS;
            if self.buckets[bi].nodes.iter().any(|e| e.info.id == info.id) {
                return Inserted::Rejected;
            }
            let b = &mut self.buckets[bi];
            if b.nodes.len() < K {
                b.nodes.push(Entry::new(now, info));
                b.last_active = now;
                b.replacements.retain(|e| e.info.addr != info.addr);
                self.index(&info);
                return Inserted::Added;
            }
            if let Some(ni) = b
                .nodes
                .iter()
                .position(|e| e.status(now) == NodeStatus::Bad)
            {
                let old = b.nodes[ni].info;
                b.nodes[ni] = Entry::new(now, info);
                b.last_active = now;
                b.replacements.retain(|e| e.info.addr != info.addr);
                self.unindex(&old);
                self.index(&info);
                return Inserted::Added;
            }
            if splittable {
                self.split(now);
                continue;
            }
            // Full of good or questionable nodes: remember it as a replacement, freshest last.
            b.replacements
                .retain(|e| e.info.addr != info.addr && e.info.addr.ip() != info.addr.ip());
            if b.replacements.is_full() {
                b.replacements.remove(0);
            }
            b.replacements.push(Entry::new(now, info));
            return Inserted::Replacement;
        }
    }

    fn index(&mut self, info: &NodeInfo) {
        self.by_addr.insert(info.addr, info.id);
        self.ips.insert(info.addr.ip());
    }

    fn unindex(&mut self, info: &NodeInfo) {
        self.by_addr.remove(&info.addr);
        self.ips.remove(&info.addr.ip());
    }

    fn split(&mut self, now: Instant) {
        let last = self.buckets.len() - 1;
        let mut new = Bucket::new(now);
        new.last_active = self.buckets[last].last_active;
        let own = self.own;
        let deeper = |e: &Entry| own.common_prefix_len(&e.info.id) > last;
        let old = &mut self.buckets[last];
        let (stay, go): (Vec<Entry>, Vec<Entry>) = old.nodes.iter().partition(|e| !deeper(e));
        old.nodes = stay.into_iter().collect();
        new.nodes = go.into_iter().collect();
        let (stay, go): (Vec<Entry>, Vec<Entry>) =
            old.replacements.iter().partition(|e| !deeper(e));
        old.replacements = stay.into_iter().collect();
        new.replacements = go.into_iter().collect();
        self.buckets.push(new);
        for bi in [last, last + 1] {
            self.promote_replacements(bi);
        }
    }

    /// Moves replacements into free places of bucket `bi`, freshest first.
    fn promote_replacements(&mut self, bi: usize) {
        while self.buckets[bi].nodes.len() < K {
            let Some(r) = self.buckets[bi].replacements.pop() else {
                break;
            };
            if self.ips.contains(&r.info.addr.ip()) {
                continue;
            }
            self.buckets[bi].nodes.push(r);
            self.index(&r.info);
        }
    }

    /// Records that `addr` queried us (it stays good while it does, BEP 5).
    pub fn heard_query(&mut self, now: Instant, addr: &SocketAddr, id: &NodeId) {
        if let Some((bi, ni)) = self.get_mut(addr) {
            let e = &mut self.buckets[bi].nodes[ni];
            if e.info.id == *id {
                e.last_query = Some(now);
            }
        }
    }

    /// Records a failed query to `addr`: the node is replaced at once by a replacement if
    /// its bucket has one, and otherwise counts towards bad. Returns whether it left the table.
    pub fn failed(&mut self, addr: &SocketAddr) -> bool {
        let Some((bi, ni)) = self.get_mut(addr) else {
            // Maybe a replacement: forget it.
            for b in &mut self.buckets {
                b.replacements.retain(|e| e.info.addr != *addr);
            }
            return false;
        };
        let b = &mut self.buckets[bi];
        b.nodes[ni].fails = b.nodes[ni].fails.saturating_add(1);
        if !b.replacements.is_empty() || b.nodes[ni].fails >= MAX_FAILS + 2 {
            let old = b.nodes.remove(ni);
            self.unindex(&old.info);
            self.promote_replacements(bi);
            return true;
        }
        false
    }

    /// Up to `count` non-bad nodes closest to `target`, closest first.
    pub fn closest(&self, now: Instant, target: &NodeId, count: usize) -> Vec<NodeInfo> {
        let mut all: Vec<(super::node_id::Distance, NodeInfo)> = self
            .iter()
            .filter(|e| e.status(now) != NodeStatus::Bad)
            .map(|e| (e.info.id.distance(target), e.info))
            .collect();
        if all.len() > count && count > 0 {
            all.select_nth_unstable_by(count - 1, |a, b| a.0.cmp(&b.0));
            all.truncate(count);
        }
        all.sort_unstable_by_key(|a| a.0);
        all.truncate(count);
        all.into_iter().map(|(_, n)| n).collect()
    }

    /// The node that has gone longest without a sign of life, if that is over [`GOOD_FOR`]
    /// ago or it has failed before: the one to ping next (BEP 5 questionable nodes).
    pub fn most_questionable(&self, now: Instant) -> Option<NodeInfo> {
        self.iter()
            .filter(|e| e.status(now) != NodeStatus::Good)
            .min_by_key(|e| e.last_active())
            .map(|e| e.info)
    }

    /// Marks the bucket `target` falls in as active (a lookup went through it).
    pub fn touch(&mut self, now: Instant, target: &NodeId) {
        let bi = self.bucket_index(target);
        self.buckets[bi].last_active = now;
    }

    /// The bucket unrefreshed longest, if over [`GOOD_FOR`]: returns a random id in its range
    /// to look up (BEP 5 bucket refresh), and marks the bucket active.
    pub fn refresh_target(&mut self, now: Instant, rng: &mut Rng) -> Option<NodeId> {
        let (bi, _) = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| now.saturating_duration_since(b.last_active) >= GOOD_FOR)
            .min_by_key(|(_, b)| b.last_active)?;
        self.buckets[bi].last_active = now;
        Some(self.random_id_in(bi, rng))
    }

    /// A random id that falls in bucket `bi`.
    pub fn random_id_in(&self, bi: usize, rng: &mut Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        for i in 0..bi.min(NodeId::BITS) {
            id = id.with_bit(i, self.own.bit(i));
        }
        if bi < self.buckets.len() - 1 {
            id = id.with_bit(bi, !self.own.bit(bi));
        }
        id
    }

    /// Panics if an invariant of the [module docs](self) does not hold (for tests).
    pub fn check_invariants(&self) {
        let mut ids = BTreeSet::new();
        let mut ips = BTreeSet::new();
        for (bi, b) in self.buckets.iter().enumerate() {
            assert!(b.nodes.len() <= K && b.replacements.len() <= K);
            for e in &b.nodes {
                assert_eq!(
                    self.bucket_index(&e.info.id),
                    bi,
                    "node in the wrong bucket"
                );
                assert_ne!(e.info.id, self.own, "own id in the table");
                assert!(ids.insert(e.info.id), "duplicate id");
                assert!(ips.insert(e.info.addr.ip()), "duplicate IP");
                assert_eq!(self.by_addr.get(&e.info.addr), Some(&e.info.id));
            }
        }
        assert_eq!(ids.len(), self.by_addr.len(), "address index out of step");
        assert_eq!(ips, self.ips, "IP index out of step");
    }
}
