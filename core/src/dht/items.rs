//! BEP 44 `get`/`put` and BEP 46 on the requesting side: the commands, what a lookup
//! remembers of the answers, and the `put` requests sent when its search ends.
//!
//! A `get` lookup is an iterative `get` traversal towards the target; every answer's item is
//! verified before it counts (BEP 44: "the key they get back ... MUST be verified to hash to
//! the target ID ..., as well as verifying the signature"): an immutable value must hash to
//! the target; a mutable one must carry the key we asked for and a valid signature over our
//! salt. The newest valid item (highest `seq`) is reported in [`DhtEvent::ItemDone`]. A `put`
//! runs the same search to collect write tokens, then sends `put` to the closest nodes that
//! gave one ([`DhtEvent::PutDone`]).

use std::net::SocketAddr;

use super::bep46;
use super::item::{immutable_target, Item, ItemValue, MutableItem};
use super::krpc::{MutablePut, NodeInfo, PutArgs, QueryKind, Response, Token};
use super::node::{DhtEvent, DhtNode, LookupId, LookupStats};
use super::node_id::NodeId;
use crate::time::Instant;

/// What a BEP 44 lookup knows beyond its traversal.
#[derive(Clone, Debug)]
pub(super) struct ItemLookup {
    /// For a mutable item: the public key and salt it must verify under.
    mutable: Option<([u8; 32], Vec<u8>)>,
    /// `seq` sent in the `get`s: only newer items are wanted.
    pub(super) min_seq: Option<i64>,
    /// The newest valid item seen.
    best: Option<Item>,
    /// For a `put`: the item and its `cas`.
    pub(super) put: Option<(Item, Option<i64>)>,
    /// BEP 46: report the info-hash the item points at.
    torrent: bool,
}

impl ItemLookup {
    /// Takes the item of an answer to our `get` for `target`, if it verifies and is newer.
    pub(super) fn on_response(&mut self, target: &NodeId, r: &Response) {
        let Some(v) = &r.v else {
            return;
        };
        let Ok(value) = ItemValue::new(v.clone()) else {
            return;
        };
        let item = match &self.mutable {
            None => {
                if immutable_target(&value) != *target {
                    return;
                }
                Item::Immutable(value)
            }
            Some((key, salt)) => {
                let (Some(k), Some(sig), Some(seq)) = (r.k, r.sig, r.seq) else {
                    return;
                };
                if k != *key || self.min_seq.is_some_and(|min| seq <= min) {
                    return;
                }
                let m = MutableItem {
                    public_key: k,
                    salt: salt.clone(),
                    seq,
                    value,
                    signature: sig,
                };
                if m.verify().is_err() {
                    return;
                }
                if let Some(Item::Mutable(best)) = &self.best {
                    if best.seq >= m.seq {
                        return;
                    }
                }
                Item::Mutable(m)
            }
        };
        if self.best.is_none() || matches!(item, Item::Mutable(_)) {
            self.best = Some(item);
        }
    }
}

#[cfg(test)]
impl ItemLookup {
    pub(super) fn for_test(mutable: Option<([u8; 32], Vec<u8>)>) -> Self {
        Self {
            mutable,
            min_seq: None,
            best: None,
            put: None,
            torrent: false,
        }
    }

    pub(super) fn best(&self) -> Option<&Item> {
        self.best.as_ref()
    }
}

impl DhtNode {
    /// Looks up the immutable item stored under `target` (SHA-1 of its value; BEP 44). The
    /// end is a [`DhtEvent::ItemDone`].
    pub fn get_immutable(&mut self, now: Instant, target: NodeId) -> LookupId {
        self.item_lookup(now, target, None, None, None, false)
    }

    /// Looks up the mutable item of `public_key` and `salt` (BEP 44), newer than `min_seq`
    /// if given. The end is a [`DhtEvent::ItemDone`] with the newest valid item found.
    pub fn get_mutable(
        &mut self,
        now: Instant,
        public_key: [u8; 32],
        salt: &[u8],
        min_seq: Option<i64>,
    ) -> LookupId {
        let target = super::item::mutable_target(&public_key, salt);
        let mutable = Some((public_key, salt.to_vec()));
        self.item_lookup(now, target, mutable, min_seq, None, false)
    }

    /// BEP 46: finds the info-hash that `source` currently points at: a mutable `get`,
    /// then, after its [`DhtEvent::ItemDone`], a [`DhtEvent::TorrentResolved`].
    pub fn resolve_torrent(&mut self, now: Instant, source: &bep46::TorrentSource) -> LookupId {
        let mutable = Some((source.public_key, source.salt.clone()));
        self.item_lookup(now, source.target(), mutable, None, None, true)
    }

    /// Stores an immutable value under its SHA-1 (BEP 44): a `get` search for write tokens,
    /// then `put` to the closest nodes ([`DhtEvent::ItemDone`], then [`DhtEvent::PutDone`]).
    /// Items expire after two hours on the storing nodes: put again every hour.
    pub fn put_immutable(&mut self, now: Instant, value: ItemValue) -> LookupId {
        let target = immutable_target(&value);
        let put = Some((Item::Immutable(value), None));
        self.item_lookup(now, target, None, None, put, false)
    }

    /// Stores a signed mutable item (BEP 44; [`MutableItem::sign`] makes one), with `cas`
    /// the sequence number it is meant to replace, if any. The search reports the newest
    /// item already stored in its [`DhtEvent::ItemDone`]; nodes holding a newer one refuse.
    pub fn put_mutable(&mut self, now: Instant, item: MutableItem, cas: Option<i64>) -> LookupId {
        let target = item.target();
        let mutable = Some((item.public_key, item.salt.clone()));
        let put = Some((Item::Mutable(item), cas));
        self.item_lookup(now, target, mutable, None, put, false)
    }

    fn item_lookup(
        &mut self,
        now: Instant,
        target: NodeId,
        mutable: Option<([u8; 32], Vec<u8>)>,
        min_seq: Option<i64>,
        put: Option<(Item, Option<i64>)>,
        torrent: bool,
    ) -> LookupId {
        let is_put = put.is_some();
        let item = ItemLookup {
            mutable,
            min_seq,
            best: None,
            put,
            torrent,
        };
        if let Some(id) = self.start_item_lookup(now, target, item) {
            return id;
        }
        // Too many lookups: finish at once, with nothing.
        let lookup = self.next_lookup_id();
        self.events.push_back(DhtEvent::ItemDone {
            lookup,
            target,
            item: None,
            stats: LookupStats::default(),
        });
        if torrent {
            self.events.push_back(DhtEvent::TorrentResolved {
                lookup,
                info_hash: None,
                seq: None,
            });
        }
        if is_put {
            self.events.push_back(DhtEvent::PutDone {
                lookup,
                target,
                acked: 0,
            });
        }
        lookup
    }

    /// The search of item lookup `id` ended: reports it, and returns the `put` requests to
    /// send (to the closest nodes that gave a token).
    pub(super) fn item_finished(
        &mut self,
        id: LookupId,
        target: NodeId,
        item: &ItemLookup,
        stats: LookupStats,
        closest: Vec<(NodeInfo, Token)>,
    ) -> Vec<(SocketAddr, QueryKind)> {
        self.events.push_back(DhtEvent::ItemDone {
            lookup: id,
            target,
            item: item.best.clone(),
            stats,
        });
        if item.torrent {
            let m = match &item.best {
                Some(Item::Mutable(m)) => Some(m),
                _ => None,
            };
            self.events.push_back(DhtEvent::TorrentResolved {
                lookup: id,
                info_hash: m.and_then(bep46::resolve),
                seq: m.map(|m| m.seq),
            });
        }
        let Some((to_put, cas)) = &item.put else {
            return Vec::new();
        };
        closest
            .into_iter()
            .map(|(n, token)| {
                let args = match to_put {
                    Item::Immutable(v) => PutArgs {
                        token,
                        value: v.as_bytes().to_vec(),
                        mutable: None,
                    },
                    Item::Mutable(m) => PutArgs {
                        token,
                        value: m.value.as_bytes().to_vec(),
                        mutable: Some(MutablePut {
                            public_key: m.public_key,
                            signature: m.signature,
                            seq: m.seq,
                            salt: m.salt.clone(),
                            cas: *cas,
                        }),
                    },
                };
                (n.addr, QueryKind::Put(Box::new(args)))
            })
            .collect()
    }
}
