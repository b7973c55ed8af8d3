//! The application's BEP 44 items and BEP 46 lookups on the session's DHT node.
//!
//! - [`Session::dht_put`] stores an item on the nodes closest to its target and, as BEP 44
//!   asks ("items MAY expire in 2 hours ... they SHOULD be re-announced once an hour"), puts
//!   it again every [`REPUBLISH_INTERVAL`] until [`Session::dht_unpublish`]. At most
//!   [`MAX_PUBLISHED`] items are kept for republishing; beyond that the oldest is dropped
//!   (it is still stored on the DHT until it expires there).
//! - [`Session::dht_get_immutable`] and [`Session::dht_get_mutable`] end in
//!   [`Event::DhtItem`]; a put ends in [`Event::DhtPutDone`].
//! - [`Session::dht_resolve_torrent`] (BEP 46) ends in [`Event::DhtTorrentResolved`]: the
//!   info-hash an updatable torrent currently points at, to add as a magnet link.

use std::collections::HashMap;

use super::{Event, Output, Session};
use crate::dht::{DhtEvent, Item, LookupId, NodeId, TorrentSource};
use crate::time::{Duration, Instant};

/// How often an item put with [`Session::dht_put`] is put again (BEP 44: once an hour).
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The most items [`Session::dht_put`] keeps republishing.
pub const MAX_PUBLISHED: usize = 256;

/// Which application call a lookup answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserLookup {
    Get,
    Put,
    Resolve,
}

#[derive(Clone, Debug)]
struct Published {
    item: Item,
    next: Instant,
}

/// The items and lookups of the application.
#[derive(Debug, Default)]
pub(super) struct DhtItems {
    lookups: HashMap<LookupId, UserLookup>,
    /// In the order first put (the oldest goes first when full).
    published: Vec<Published>,
}

impl DhtItems {
    /// The next republish.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.published.iter().map(|p| p.next).min()
    }
}

impl Session {
    /// Runs `start` on the DHT node (started if need be) and remembers the lookup as the
    /// application's; `None` without a DHT.
    fn dht_user_lookup(
        &mut self,
        now: Instant,
        kind: UserLookup,
        start: impl FnOnce(&mut crate::dht::DhtNode) -> LookupId,
    ) -> Option<LookupId> {
        self.assert_drained();
        self.dht_start(now);
        let dht = self.dht.as_mut()?;
        let node = dht.node.as_mut()?;
        let lookup = start(node);
        dht.items.lookups.insert(lookup, kind);
        self.dht_flush(now);
        Some(lookup)
    }

    /// Stores `item` on the DHT (BEP 44; [`MutableItem::sign`](crate::dht::MutableItem::sign)
    /// makes a mutable one) and puts it again every [`REPUBLISH_INTERVAL`] until
    /// [`Session::dht_unpublish`]; a later put to the same target replaces it (a mutable
    /// item's next `seq`). Ends in [`Event::DhtPutDone`]. `None` when the session has no DHT.
    pub fn dht_put(&mut self, now: Instant, item: Item) -> Option<LookupId> {
        let put = item.clone();
        let lookup = self.dht_user_lookup(now, UserLookup::Put, |node| put_item(node, now, put))?;
        let items = &mut self.dht.as_mut()?.items;
        let target = item.target();
        items.published.retain(|p| p.item.target() != target);
        if items.published.len() >= MAX_PUBLISHED {
            items.published.remove(0);
        }
        items.published.push(Published {
            item,
            next: now + REPUBLISH_INTERVAL,
        });
        Some(lookup)
    }

    /// Stops republishing the item stored under `target`; false if it was not published.
    pub fn dht_unpublish(&mut self, target: NodeId) -> bool {
        let Some(items) = self.dht.as_mut().map(|d| &mut d.items) else {
            return false;
        };
        let before = items.published.len();
        items.published.retain(|p| p.item.target() != target);
        items.published.len() != before
    }

    /// Looks up the immutable item stored under `target` (SHA-1 of its value; BEP 44).
    /// Ends in [`Event::DhtItem`]. `None` when the session has no DHT.
    pub fn dht_get_immutable(&mut self, now: Instant, target: NodeId) -> Option<LookupId> {
        self.dht_user_lookup(now, UserLookup::Get, |node| node.get_immutable(now, target))
    }

    /// Looks up the newest mutable item of `public_key` and `salt` (BEP 44). Ends in
    /// [`Event::DhtItem`]. `None` when the session has no DHT.
    pub fn dht_get_mutable(
        &mut self,
        now: Instant,
        public_key: [u8; 32],
        salt: &[u8],
    ) -> Option<LookupId> {
        self.dht_user_lookup(now, UserLookup::Get, |node| {
            node.get_mutable(now, public_key, salt, None)
        })
    }

    /// BEP 46: finds the info-hash an updatable torrent currently points at. Ends in
    /// [`Event::DhtTorrentResolved`]. `None` when the session has no DHT.
    pub fn dht_resolve_torrent(
        &mut self,
        now: Instant,
        source: &TorrentSource,
    ) -> Option<LookupId> {
        self.dht_user_lookup(now, UserLookup::Resolve, |node| {
            node.resolve_torrent(now, source)
        })
    }

    /// Puts again the items whose hour is up.
    pub(super) fn dht_items_timeout(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let Some(node) = dht.node.as_mut() else {
            return;
        };
        for p in dht.items.published.iter_mut().filter(|p| p.next <= now) {
            let lookup = put_item(node, now, p.item.clone());
            dht.items.lookups.insert(lookup, UserLookup::Put);
            p.next = now + REPUBLISH_INTERVAL;
        }
    }

    /// An item event of the node: reported if it answers an application call.
    pub(super) fn dht_item_event(&mut self, _now: Instant, event: DhtEvent) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let lookups = &mut dht.items.lookups;
        let event = match event {
            DhtEvent::ItemDone {
                lookup,
                target,
                item,
                ..
            } if lookups.get(&lookup) == Some(&UserLookup::Get) => {
                lookups.remove(&lookup);
                Event::DhtItem {
                    lookup,
                    target,
                    item,
                }
            }
            DhtEvent::PutDone {
                lookup,
                target,
                acked,
            } if lookups.remove(&lookup).is_some() => Event::DhtPutDone {
                lookup,
                target,
                acked,
            },
            DhtEvent::TorrentResolved {
                lookup,
                info_hash,
                seq,
            } if lookups.remove(&lookup).is_some() => Event::DhtTorrentResolved {
                lookup,
                info_hash,
                seq,
            },
            _ => return,
        };
        self.outputs.push_back(Output::Event(event));
    }
}

fn put_item(node: &mut crate::dht::DhtNode, now: Instant, item: Item) -> LookupId {
    match item {
        Item::Immutable(value) => node.put_immutable(now, value),
        Item::Mutable(m) => node.put_mutable(now, m, None),
    }
}
