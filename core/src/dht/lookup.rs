//! One iterative lookup over one address family (BEP 5 "the node iteratively queries nodes
//! closer to the target"): a candidate list sorted by distance, a few requests in flight.
//!
//! A traversal knows nothing of sockets or transactions: the node asks it for the next address
//! to query ([`Traversal::next_query`]) and tells it what came back ([`Traversal::on_response`],
//! [`Traversal::on_slow`], [`Traversal::on_failure`]).
//!
//! Rules:
//! - at most `alpha` requests are in flight, not counting requests that passed the "slow"
//!   deadline (they stay pending, but another request may go out in their place);
//! - only the [`K`] closest candidates that have not failed (failed ones leave the list) and
//!   whose request is not slow are ever queried, closest first;
//! - the traversal is done when those `K` closest have all answered (slow requests do not
//!   hold it up), when no candidate is left, or after `max_queries` requests;
//! - a candidate whose answer carries another id than the one it was advertised with, or
//!   (with BEP 42 enforcement) an id its address may not have, counts as failed: it does not
//!   end the lookup and its token is never used. Its `nodes` are still followed;
//! - every address is queried at most once; the list keeps at most [`MAX_CANDIDATES`].

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::krpc::{NodeInfo, Token};
use super::node_id::{Distance, NodeId};
use super::routing::K;

/// The most candidates a traversal keeps (the closest ones).
pub const MAX_CANDIDATES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight { slow: bool },
    Answered { token: Option<Token> },
}

#[derive(Clone, Debug)]
struct Candidate {
    /// `None` for a bootstrap address whose id we do not know yet.
    id: Option<NodeId>,
    addr: SocketAddr,
    distance: Distance,
    depth: u16,
    state: State,
}

/// Counters for one traversal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraversalStats {
    /// Requests sent.
    pub queries: u32,
    /// Answers received.
    pub responses: u32,
    /// Requests that timed out.
    pub timeouts: u32,
    /// Hops to the closest node that answered (1 = a node we knew at the start).
    pub hops: u32,
}

/// An iterative lookup towards `target` over one address family.
#[derive(Clone, Debug)]
pub struct Traversal {
    target: NodeId,
    alpha: usize,
    max_queries: u32,
    candidates: Vec<Candidate>,
    seen: BTreeSet<SocketAddr>,
    in_flight: usize,
    stats: TraversalStats,
}

const FAR: Distance = Distance([0xff; 20]);

impl Traversal {
    /// A traversal towards `target` with `alpha` requests in flight and at most
    /// `max_queries` requests in all.
    pub fn new(target: NodeId, alpha: usize, max_queries: u32) -> Self {
        Self {
            target,
            alpha: alpha.max(1),
            max_queries,
            candidates: Vec::new(),
            seen: BTreeSet::new(),
            in_flight: 0,
            stats: TraversalStats::default(),
        }
    }

    /// The target.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// The counters so far.
    pub fn stats(&self) -> TraversalStats {
        self.stats
    }

    /// Adds candidates (from the routing table, or from an answer at `depth`).
    pub fn add(&mut self, nodes: &[NodeInfo], depth: u16) {
        for n in nodes {
            self.insert(Some(n.id), n.addr, depth);
        }
    }

    /// Adds an address whose id is unknown (a bootstrap node); it sorts last.
    pub fn add_address(&mut self, addr: SocketAddr) {
        self.insert(None, addr, 0);
    }

    fn insert(&mut self, id: Option<NodeId>, addr: SocketAddr, depth: u16) {
        if addr.port() == 0 || self.seen.contains(&addr) {
            return;
        }
        let distance = id.map_or(FAR, |id| id.distance(&self.target));
        let at = self.candidates.partition_point(|c| c.distance <= distance);
        if at >= MAX_CANDIDATES {
            return;
        }
        // The bound on `seen`: each answer adds at most ~60 nodes and we send at most
        // `max_queries` requests.
        self.seen.insert(addr);
        self.candidates.insert(
            at,
            Candidate {
                id,
                addr,
                distance,
                depth,
                state: State::Fresh,
            },
        );
        // Drop the farthest candidate that is not in flight when over the bound.
        if self.candidates.len() > MAX_CANDIDATES {
            if let Some(i) = self
                .candidates
                .iter()
                .rposition(|c| !matches!(c.state, State::InFlight { .. }))
            {
                self.candidates.remove(i);
            }
        }
    }

    /// The next address to query, if one may go out now.
    pub fn next_query(&mut self) -> Option<SocketAddr> {
        if self.in_flight >= self.alpha || self.stats.queries >= self.max_queries {
            return None;
        }
        let addr = self.window().find(|c| c.state == State::Fresh)?.addr;
        let i = self.find(&addr).expect("found in the window");
        let c = &mut self.candidates[i];
        c.state = State::InFlight { slow: false };
        self.in_flight += 1;
        self.stats.queries += 1;
        Some(c.addr)
    }

    fn find(&self, addr: &SocketAddr) -> Option<usize> {
        self.candidates.iter().position(|c| c.addr == *addr)
    }

    fn leave_flight(&mut self, i: usize) {
        if self.candidates[i].state == (State::InFlight { slow: false }) {
            self.in_flight -= 1;
        }
    }

    /// `addr` answered with `id`; `valid` is false when the answer must not count (an id its
    /// address may not have under BEP 42 enforcement). Returns the answering candidate's depth
    /// (so the node can add the answer's nodes one hop further), or `None` if `addr` was not
    /// queried by this traversal.
    pub fn on_response(
        &mut self,
        addr: &SocketAddr,
        id: NodeId,
        token: Option<Token>,
        valid: bool,
    ) -> Option<u16> {
        let i = self.find(addr)?;
        if !matches!(self.candidates[i].state, State::InFlight { .. }) {
            return None;
        }
        self.leave_flight(i);
        self.stats.responses += 1;
        let c = &mut self.candidates[i];
        let depth = c.depth;
        let consistent = c.id.is_none_or(|known| known == id);
        if !consistent || !valid {
            // Failed candidates leave the list (they stay in `seen`, so never come back).
            self.candidates.remove(i);
            return Some(depth + 1);
        }
        if c.id.is_none() {
            // A bootstrap address: now that its id is known, move it to its place.
            let mut c = self.candidates.remove(i);
            c.id = Some(id);
            c.distance = id.distance(&self.target);
            c.state = State::Answered { token };
            let at = self
                .candidates
                .partition_point(|x| x.distance <= c.distance);
            self.candidates.insert(at, c);
        } else {
            c.state = State::Answered { token };
        }
        Some(depth + 1)
    }

    /// The request to `addr` passed the slow deadline: let another go out in its place.
    pub fn on_slow(&mut self, addr: &SocketAddr) {
        if let Some(i) = self.find(addr) {
            if self.candidates[i].state == (State::InFlight { slow: false }) {
                self.candidates[i].state = State::InFlight { slow: true };
                self.in_flight -= 1;
            }
        }
    }

    /// The request to `addr` failed (timed out, or an error came back).
    pub fn on_failure(&mut self, addr: &SocketAddr) {
        if let Some(i) = self.find(addr) {
            if matches!(self.candidates[i].state, State::InFlight { .. }) {
                self.leave_flight(i);
                self.stats.timeouts += 1;
                self.candidates.remove(i);
            }
        }
    }

    /// Whether the traversal is over (see the [module docs](self)); it may still have slow
    /// requests pending, whose answers are then ignored.
    pub fn is_done(&self) -> bool {
        if self.stats.queries >= self.max_queries {
            return self.in_flight == 0;
        }
        self.window()
            .all(|c| matches!(c.state, State::Answered { .. }))
    }

    /// The `K` closest candidates that are not slow: a request past the slow deadline neither
    /// holds the lookup up nor keeps the next candidate from being asked (in practice such a
    /// node is usually gone, and waiting for its full timeout would only add latency).
    fn window(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.state != (State::InFlight { slow: true }))
            .take(K)
    }

    /// Whether any request of this traversal is still pending (slow ones included).
    pub fn has_pending(&self) -> bool {
        self.candidates
            .iter()
            .any(|c| matches!(c.state, State::InFlight { .. }))
    }

    /// The `K` closest nodes that answered, closest first, with their tokens.
    pub fn closest_answered(&self) -> Vec<(NodeInfo, Option<Token>)> {
        self.candidates
            .iter()
            .filter_map(|c| match (&c.state, c.id) {
                (State::Answered { token }, Some(id)) => {
                    Some((NodeInfo { id, addr: c.addr }, token.clone()))
                }
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// Records the hop count of the closest answer into the stats (called when done).
    pub fn finish(&mut self) {
        self.stats.hops = self
            .candidates
            .iter()
            .find(|c| matches!(c.state, State::Answered { .. }))
            .map_or(0, |c| u32::from(c.depth) + 1);
    }
}
