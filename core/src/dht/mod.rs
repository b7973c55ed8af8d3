//! The Mainline DHT (BEP 5), sans IO, with IPv6 (BEP 32), scrapes (BEP 33), node-id security
//! (BEP 42), read-only nodes (BEP 43), arbitrary data (BEP 44 immutable and mutable items),
//! multiple addresses (BEP 45), updatable torrents (BEP 46) and info-hash sampling (BEP 51,
//! answering).
//!
//! [`DhtNode`] is the machine. A runtime (or the session) owns it, feeds it the datagrams that
//! arrive on its DHT socket ([`DhtNode::handle_datagram`]) and the passing of time
//! ([`DhtNode::handle_timeout`]), gives it commands ([`DhtNode::bootstrap`],
//! [`DhtNode::get_peers`], [`DhtNode::announce`], [`DhtNode::scrape`], [`DhtNode::add_node`],
//! [`DhtNode::get_immutable`], [`DhtNode::get_mutable`], [`DhtNode::put_immutable`],
//! [`DhtNode::put_mutable`], [`DhtNode::resolve_torrent`]),
//! and after each call drains [`DhtNode::poll_transmit`] and [`DhtNode::poll_event`] and reads
//! [`DhtNode::poll_timeout`]. Time is always an argument and all randomness comes from the
//! [`Rng`](crate::rng::Rng) it is built with.
//!
//! ```
//! use bitshoal_core::dht::{DhtConfig, DhtEvent, DhtNode};
//! use bitshoal_core::id::InfoHashV1;
//! use bitshoal_core::rng::Rng;
//! use bitshoal_core::time::Instant;
//!
//! let now = Instant::ZERO;
//! let mut node = DhtNode::new(DhtConfig::default(), Rng::from_seed(1), now);
//! node.bootstrap(now, &["127.0.0.1:6881".parse().unwrap()]);
//! let (to, datagram) = node.poll_transmit().expect("a find_node to the router");
//! assert_eq!(to.port(), 6881);
//! assert!(datagram.windows(9).any(|w| w == b"find_node"));
//! // With no answer, a lookup finds nothing once its requests time out.
//! let lookup = node.get_peers(now, InfoHashV1([7; 20]));
//! let mut t = now;
//! loop {
//!     while node.poll_transmit().is_some() {}
//!     if let Some(DhtEvent::LookupDone { lookup: l, stats, .. }) = node.poll_event() {
//!         if l == lookup {
//!             assert_eq!(stats.peers, 0);
//!             break;
//!         }
//!     }
//!     t = node.poll_timeout().unwrap();
//!     node.handle_timeout(t);
//! }
//! ```
//!
//! Files, by concern: [`krpc`] (the message codec), [`node_id`] (ids, distance, BEP 42),
//! [`routing`] (the routing table), [`lookup`] (one iterative traversal), [`tokens`] (write
//! tokens and transaction ids), [`storage`] (the peer store), [`bloom`] (BEP 33 filters),
//! [`item`] (BEP 44 items and their store), `items.rs` (BEP 44 lookups), [`bep46`] (updatable
//! torrents), [`multi`] (BEP 45: one node per socket address),
//! [`state`] (what survives a restart), `node.rs` and `server.rs` (the machine: our requests
//! and lookups; answering others), [`ratelimit`] (per-IP query limits).

pub mod bep46;
pub mod bloom;
pub mod item;
mod items;
pub mod krpc;
pub mod lookup;
pub mod multi;
mod node;
pub mod node_id;
pub mod ratelimit;
pub mod routing;
mod server;
pub mod state;
pub mod storage;
pub mod tokens;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_items;

pub use bep46::TorrentSource;
pub use bloom::ScrapeBloom;
pub use item::{Item, ItemError, ItemKey, ItemLimits, ItemValue, MutableItem};
pub use krpc::{KrpcError, Message, NodeInfo};
pub use multi::MultiDht;
pub use node::{Announce, DhtConfig, DhtCounters, DhtEvent, DhtNode, LookupId, LookupStats};
pub use node_id::NodeId;
pub use routing::RoutingTable;
pub use state::DhtState;
pub use storage::StoreLimits;
