//! BEP 45: a DHT node on several socket addresses, which the rest of the network sees as
//! independent nodes.
//!
//! [`MultiDht`] runs one [`DhtNode`] per local socket address (BEP 45's "easiest approach"),
//! so each has its own routing table, its own write tokens and its own transactions, and a
//! reply always leaves from the socket its request came in on. The mandatory rules:
//! - every socket address has a distinct node id, and the ids differ in their high-order bits:
//!   they are derived from one base id by flipping high bits in reverse counter order
//!   ([`spread_ids`]);
//! - replies and write tokens stay on their socket (each node answers only its own datagrams);
//! - the same target is not queried from several sockets at once: `announce_peer` goes out
//!   through every socket (tokens may be tied to the address), one socket at a time, spaced by
//!   [`MultiDht::ANNOUNCE_SPACING`]; reads (`get_peers`, `get`) and BEP 44 `put`s use one
//!   socket chosen at random.
//!
//! The runtime binds the sockets and passes each datagram with the local address it arrived
//! on; [`MultiDht::poll_transmit`] names the local address to send from.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::item::{ItemValue, MutableItem};
use super::node::{Announce, DhtConfig, DhtEvent, DhtNode, LookupId};
use super::node_id::NodeId;
use crate::id::InfoHashV1;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// The ids of `count` sockets: `base` with its high-order bits flipped by the socket's index
/// in reverse bit order (index 1 flips bit 0, index 2 bit 1, index 3 bits 0 and 1, ...), so
/// every pair differs within the first `log2(count) + 1` bits (BEP 45).
pub fn spread_ids(base: NodeId, count: usize) -> Vec<NodeId> {
    (0..count)
        .map(|i| {
            let mut id = base;
            for bit in 0..(usize::BITS as usize).min(160) {
                if i >> bit & 1 == 1 {
                    id = id.with_bit(bit, !id.bit(bit));
                }
            }
            id
        })
        .collect()
}

/// One DHT node per local socket address (see the [module docs](self)).
#[derive(Debug)]
pub struct MultiDht {
    nodes: Vec<(SocketAddr, DhtNode)>,
    rng: Rng,
    /// Announces waiting for their turn: (when, socket index, info-hash, how).
    queued: VecDeque<(Instant, usize, InfoHashV1, Announce)>,
    /// The socket whose transmit queue is drained next (round robin).
    next_tx: usize,
    next_ev: usize,
}

impl MultiDht {
    /// How long an announce waits after the one through the previous socket.
    pub const ANNOUNCE_SPACING: Duration = Duration::from_secs(10);

    /// Nodes on `locals` (at least one), their ids spread from `config.node_id` (or a random
    /// base id), all other settings from `config`.
    pub fn new(config: DhtConfig, mut rng: Rng, now: Instant, locals: &[SocketAddr]) -> Self {
        let base = config.node_id.unwrap_or_else(|| NodeId::random(&mut rng));
        let nodes = locals
            .iter()
            .zip(spread_ids(base, locals.len()))
            .map(|(&local, id)| {
                let c = DhtConfig {
                    node_id: Some(id),
                    ..config.clone()
                };
                (local, DhtNode::new(c, rng.fork(), now))
            })
            .collect();
        Self {
            nodes,
            rng,
            queued: VecDeque::new(),
            next_tx: 0,
            next_ev: 0,
        }
    }

    /// The local socket addresses, in order.
    pub fn locals(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.nodes.iter().map(|(a, _)| *a)
    }

    /// The node on `local`.
    pub fn node(&self, local: SocketAddr) -> Option<&DhtNode> {
        self.nodes.iter().find(|(a, _)| *a == local).map(|(_, n)| n)
    }

    /// The node on `local`, to give it commands of its own.
    pub fn node_mut(&mut self, local: SocketAddr) -> Option<&mut DhtNode> {
        self.nodes
            .iter_mut()
            .find(|(a, _)| *a == local)
            .map(|(_, n)| n)
    }

    /// Bootstraps every node through `routers`.
    pub fn bootstrap(&mut self, now: Instant, routers: &[SocketAddr]) {
        for (_, n) in &mut self.nodes {
            n.bootstrap(now, routers);
        }
    }

    /// A datagram from `from` arrived on the socket bound to `local`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) {
        if let Some(n) = self.node_mut(local) {
            n.handle_datagram(now, from, data);
        }
    }

    /// Runs every node's timers and starts queued announces that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (_, n) in &mut self.nodes {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        while self.queued.front().is_some_and(|(at, ..)| *at <= now) {
            let (_, i, ih, how) = self.queued.pop_front().expect("checked");
            if let Some((_, n)) = self.nodes.get_mut(i) {
                n.announce(now, ih, how);
            }
        }
    }

    /// The next datagram: (local address to send from, destination, bytes).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        let count = self.nodes.len();
        for k in 0..count {
            let i = (self.next_tx + k) % count;
            let (local, n) = &mut self.nodes[i];
            if let Some((to, data)) = n.poll_transmit() {
                self.next_tx = (i + 1) % count;
                return Some((*local, to, data));
            }
        }
        None
    }

    /// The next event, with the local address of the node that reported it.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(SocketAddr, DhtEvent)> {
        let count = self.nodes.len();
        for k in 0..count {
            let i = (self.next_ev + k) % count;
            let (local, n) = &mut self.nodes[i];
            if let Some(e) = n.poll_event() {
                self.next_ev = (i + 1) % count;
                return Some((*local, e));
            }
        }
        None
    }

    /// The earliest deadline of any node or queued announce.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .filter_map(|(_, n)| n.poll_timeout())
            .chain(self.queued.front().map(|(at, ..)| *at))
            .min()
    }

    fn pick(&mut self) -> usize {
        self.rng.below(self.nodes.len().max(1) as u64) as usize
    }

    /// Looks for peers through one socket chosen at random; its events come tagged with it.
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHashV1) -> (SocketAddr, LookupId) {
        let i = self.pick();
        let (local, n) = &mut self.nodes[i];
        (*local, n.get_peers(now, info_hash))
    }

    /// Announces through every socket (each needs its own tokens), one every
    /// [`Self::ANNOUNCE_SPACING`]; the first starts now and its id is returned.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHashV1,
        how: Announce,
    ) -> (SocketAddr, LookupId) {
        for i in 1..self.nodes.len() {
            let at = now + Self::ANNOUNCE_SPACING * i as u32;
            self.queued.push_back((at, i, info_hash, how));
        }
        let (local, n) = &mut self.nodes[0];
        (*local, n.announce(now, info_hash, how))
    }

    /// Puts an immutable item through one socket chosen at random (BEP 45: other writes
    /// need not go out on every socket).
    pub fn put_immutable(&mut self, now: Instant, value: ItemValue) -> (SocketAddr, LookupId) {
        let i = self.pick();
        let (local, n) = &mut self.nodes[i];
        (*local, n.put_immutable(now, value))
    }

    /// Puts a mutable item through one socket chosen at random.
    pub fn put_mutable(
        &mut self,
        now: Instant,
        item: MutableItem,
        cas: Option<i64>,
    ) -> (SocketAddr, LookupId) {
        let i = self.pick();
        let (local, n) = &mut self.nodes[i];
        (*local, n.put_mutable(now, item, cas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_ids_differ_in_high_bits() {
        let base = NodeId([0x5a; 20]);
        let ids = spread_ids(base, 8);
        assert_eq!(ids[0], base);
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert!(
                    a.common_prefix_len(b) < 3,
                    "ids of 8 sockets differ within the first 3 bits"
                );
            }
        }
        assert_eq!(ids[1].common_prefix_len(&base), 0);
        assert_eq!(ids[2].common_prefix_len(&base), 1);
    }
}
