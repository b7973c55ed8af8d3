//! Multicast groups in the simulator, for BEP 14 local service discovery.
//!
//! Nodes [join](Sim::join_group) group addresses (say BEP 14's IPv4 group `239.192.152.143`,
//! port 6771). A node's `Output::SendLsd` to a group reaches every member after the path
//! latency as `Input::LsdDatagram`, the sender included (as `IP_MULTICAST_LOOP` does on a real
//! host), from the sender's IP and the group's port. A node that joined no group hears nothing, like
//! a runtime with LSD off. Every datagram sent is kept in [`Sim::multicast_sent`].

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bitshoal_core::session::Input;
use bitshoal_core::time::Instant;
use bytes::Bytes;

use super::{Ev, NodeId, Sim};

/// A datagram a node sent to a multicast group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MulticastDatagram {
    /// When it was sent.
    pub at: Instant,
    /// The sender.
    pub from: NodeId,
    /// The group.
    pub group: SocketAddr,
    /// The payload.
    pub data: Bytes,
}

impl Sim {
    /// Makes `node` a member of the multicast `group`: it hears what members send there.
    pub fn join_group(&mut self, node: NodeId, group: SocketAddr) {
        assert!(
            group.ip().is_multicast(),
            "{group} is not a multicast group"
        );
        self.groups.entry(group).or_default().insert(node.0);
    }

    /// Takes `node` out of `group`.
    pub fn leave_group(&mut self, node: NodeId, group: SocketAddr) {
        if let Some(members) = self.groups.get_mut(&group) {
            members.remove(&node.0);
        }
    }

    /// Every datagram sent to a multicast group so far, in order.
    pub fn multicast_sent(&self) -> &[MulticastDatagram] {
        &self.multicast_log
    }

    /// Performs a node's `Output::SendLsd`.
    pub(crate) fn send_multicast(&mut self, host: usize, group: SocketAddr, data: Bytes) {
        let now = self.now;
        self.multicast_log.push(MulticastDatagram {
            at: now,
            from: NodeId(host),
            group,
            data: data.clone(),
        });
        let from = SocketAddr::new(self.hosts[host].addr.ip(), group.port());
        let members: BTreeSet<usize> = self.groups.get(&group).cloned().unwrap_or_default();
        for member in members {
            let at = if member == host {
                now
            } else {
                now + self.latency(host, member)
            };
            let input = Input::LsdDatagram {
                from,
                data: data.clone(),
            };
            self.schedule(
                at,
                Ev::Input {
                    host: member,
                    input,
                },
            );
        }
    }
}
