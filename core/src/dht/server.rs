//! The query side of the node: decoding datagrams and answering other nodes' queries
//! (BEP 5, with BEP 32 `want`, BEP 33 scrapes, BEP 42 `ip`, BEP 43 read-only, BEP 44 items,
//! BEP 51 samples).
//!
//! Defences here: queries are rate-limited per source IP; a reply to an address that has not
//! answered us (not in the routing table) is cut down to `amplification_factor` times the
//! request's size, so the node cannot be used to amplify a spoofed flood; a querier is added
//! to the routing table only after it answers a ping of ours (its address is then verified).

use std::net::SocketAddr;

use super::item::{Item, ItemError, ItemValue, MutableItem};
use super::krpc::{
    code, Body, ErrorReply, Message, NodeInfo, PutArgs, Query, QueryKind, Response, TxId, Want,
};
use super::node::{family, DhtNode};
use super::node_id::{is_valid_for_ip, NodeId};
use super::routing::K;
use crate::time::Instant;

/// The most peers put in one `values` list before trimming to the reply budget.
const MAX_VALUES: usize = 100;

/// The most samples put in one BEP 51 reply before trimming.
const MAX_SAMPLES: usize = 50;

impl DhtNode {
    /// Feeds one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.counters.datagrams_in += 1;
        let f = family(&from);
        let enabled = if f == 0 {
            self.config.ipv4
        } else {
            self.config.ipv6
        };
        if from.port() == 0 || !enabled {
            return;
        }
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(failure) => {
                self.counters.malformed += 1;
                if let Some(tid) = failure.query_tid {
                    if !self.config.read_only && self.limiter.allow(now, from.ip()) {
                        let e = ErrorReply {
                            code: code::PROTOCOL,
                            message: "Protocol Error".into(),
                        };
                        self.reply(now, from, tid, Err(e), data.len());
                    }
                }
                return;
            }
        };
        match msg.body {
            Body::Query(q) => self.handle_query(now, from, msg.tid, q, msg.read_only, data.len()),
            Body::Response(r) => self.handle_response(now, from, &msg.tid, r, msg.read_only),
            Body::Error(e) => self.handle_error_reply(now, from, &msg.tid, e),
        }
    }

    fn handle_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: TxId,
        q: Query,
        querier_read_only: bool,
        request_len: usize,
    ) {
        if self.config.read_only {
            return; // BEP 43: a read-only node answers no queries.
        }
        if !self.limiter.allow(now, from.ip()) {
            self.counters.rate_limited += 1;
            return;
        }
        let f = family(&from);
        if !querier_read_only {
            // BEP 43: read-only nodes never enter the table; others are verified by a ping.
            self.tables[f].heard_query(now, &from, &q.id);
            let info = NodeInfo {
                id: q.id,
                addr: from,
            };
            let id_ok = !self.config.enforce_node_id || is_valid_for_ip(&q.id, from.ip());
            // Verification pings take at most a quarter of the pending slots, so a flood of
            // queries from many (spoofed) addresses cannot starve our own lookups.
            if id_ok
                && self.pinging.len() < self.config.max_pending / 4
                && self.tables[f].get(&from).is_none()
                && self.tables[f].would_accept(now, &info)
            {
                self.ping(now, from);
            }
        }
        let answer = self.answer(now, from, q.kind);
        self.reply(now, from, tid, answer, request_len);
    }

    fn nodes_for(
        &self,
        now: Instant,
        from: &SocketAddr,
        target: &NodeId,
        want: Want,
    ) -> (Vec<NodeInfo>, Vec<NodeInfo>) {
        let (n4, n6) = if want.is_set() {
            (want.n4, want.n6)
        } else {
            (from.is_ipv4(), from.is_ipv6())
        };
        let mut out = (Vec::new(), Vec::new());
        if n4 && self.config.ipv4 {
            out.0 = self.tables[0].closest(now, target, K);
        }
        if n6 && self.config.ipv6 {
            out.1 = self.tables[1].closest(now, target, K);
        }
        out
    }

    fn answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        kind: QueryKind,
    ) -> Result<Response, ErrorReply> {
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        match kind {
            QueryKind::Ping => {}
            QueryKind::FindNode { target, want } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, &from, &target, want);
            }
            QueryKind::GetPeers {
                info_hash,
                want,
                noseed,
                scrape,
            } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, &from, &NodeId(info_hash), want);
                r.values = self.store.peers(
                    &info_hash,
                    from.is_ipv6(),
                    noseed,
                    MAX_VALUES,
                    &mut self.rng,
                );
                // BEP 33: no token when the info-hash cannot take this announcer.
                if self.store.would_accept(&info_hash, from.ip()) {
                    r.token = Some(self.tokens.issue(from.ip()));
                }
                if scrape {
                    if let Some((seeds, peers)) = self.store.scrape(&info_hash) {
                        r.seeds_bloom = Some(Box::new(seeds));
                        r.peers_bloom = Some(Box::new(peers));
                    }
                }
            }
            QueryKind::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                seed,
            } => {
                if !self.tokens.verify(from.ip(), &token) {
                    return Err(ErrorReply {
                        code: code::PROTOCOL,
                        message: "bad token".into(),
                    });
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    return Err(ErrorReply {
                        code: code::PROTOCOL,
                        message: "bad port".into(),
                    });
                }
                self.store
                    .announce(now, info_hash, SocketAddr::new(from.ip(), port), seed);
            }
            QueryKind::Get { target, seq, want } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, &from, &target, want);
                r.token = Some(self.tokens.issue(from.ip()));
                match self.items.get(&target) {
                    Some(Item::Immutable(v)) => r.v = Some(v.as_bytes().to_vec()),
                    Some(Item::Mutable(m)) => {
                        r.seq = Some(m.seq);
                        // BEP 44: with `seq`, only a newer item's value is sent.
                        if seq.is_none_or(|s| m.seq > s) {
                            r.k = Some(m.public_key);
                            r.sig = Some(m.signature);
                            r.v = Some(m.value.as_bytes().to_vec());
                        }
                    }
                    None => {}
                }
            }
            QueryKind::Put(args) => {
                if !self.tokens.verify(from.ip(), &args.token) {
                    return Err(ErrorReply {
                        code: code::PROTOCOL,
                        message: "bad token".into(),
                    });
                }
                let stored = put_item(*args).and_then(|(item, cas)| self.items.put(now, item, cas));
                if let Err(e) = stored {
                    return Err(ErrorReply {
                        code: e.code(),
                        message: e.to_string(),
                    });
                }
            }
            QueryKind::SampleInfohashes { target, want } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, &from, &target, want);
                r.samples = Some(self.store.sample(MAX_SAMPLES, &mut self.rng));
                r.num = Some(self.store.len() as i64);
                r.interval = Some(i64::from(self.config.sample_interval.min(21_600)));
            }
            QueryKind::Unknown { target, want, .. } => match target {
                // libtorrent's forward compatibility: answer as find_node.
                Some(target) => {
                    (r.nodes, r.nodes6) = self.nodes_for(now, &from, &target, want);
                }
                None => {
                    return Err(ErrorReply {
                        code: code::METHOD_UNKNOWN,
                        message: "Method Unknown".into(),
                    })
                }
            },
        }
        Ok(r)
    }

    /// Encodes and queues a reply within the size budget for `to` (see the module docs).
    fn reply(
        &mut self,
        _now: Instant,
        to: SocketAddr,
        tid: TxId,
        answer: Result<Response, ErrorReply>,
        request_len: usize,
    ) {
        let verified = self.tables[family(&to)].get(&to).is_some();
        let budget = if verified {
            self.config.max_reply
        } else {
            self.config
                .max_reply
                .min(self.config.amplification_factor.saturating_mul(request_len))
        };
        let body = match answer {
            Ok(r) => Body::Response(r),
            Err(e) => Body::Error(e),
        };
        let mut msg = self.message(tid, body);
        msg.ip = Some(to); // BEP 42: tell the requester its address.
        msg.read_only = false;
        let mut trimmed = false;
        loop {
            let bytes = msg.to_vec();
            if bytes.len() <= budget {
                if trimmed {
                    self.counters.trimmed_replies += 1;
                }
                self.queue(to, bytes);
                return;
            }
            trimmed = true;
            let Body::Response(r) = &mut msg.body else {
                return; // An error that does not fit: say nothing.
            };
            if !shrink(r) {
                return;
            }
        }
    }
}

/// The item a `put` carries, verified (BEP 44: "the signature MUST be verified before
/// accepting the store command"), with its `cas`.
fn put_item(args: PutArgs) -> Result<(Item, Option<i64>), ItemError> {
    let value = ItemValue::new(args.value)?;
    match args.mutable {
        None => Ok((Item::Immutable(value), None)),
        Some(m) => {
            let item = MutableItem {
                public_key: m.public_key,
                salt: m.salt,
                seq: m.seq,
                value,
                signature: m.signature,
            };
            item.verify()?;
            Ok((Item::Mutable(item), m.cas))
        }
    }
}

fn halve<T>(v: &mut Vec<T>) {
    v.truncate(v.len() / 2);
}

/// Cuts the least useful part of a reply; false when nothing is left to cut.
fn shrink(r: &mut Response) -> bool {
    if r.values.len() > 8 {
        // BEP 33: fewer values rather than no bloom filters.
        halve(&mut r.values);
    } else if r.seeds_bloom.is_some() || r.peers_bloom.is_some() {
        r.seeds_bloom = None;
        r.peers_bloom = None;
    } else if r.samples.as_ref().is_some_and(|s| !s.is_empty()) {
        halve(r.samples.as_mut().expect("checked"));
    } else if !r.nodes6.is_empty() {
        halve(&mut r.nodes6);
    } else if !r.nodes.is_empty() {
        halve(&mut r.nodes);
    } else if !r.values.is_empty() {
        halve(&mut r.values);
    } else if r.v.is_some() {
        // BEP 44: an item too large for the budget; `seq` still tells the requester that a
        // mutable one is here.
        r.v = None;
        r.k = None;
        r.sig = None;
    } else {
        return false;
    }
    true
}
