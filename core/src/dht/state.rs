//! What a node keeps across restarts (BEP 5: "the node id should be kept"): its id and the
//! contacts of its routing tables, as a small bencoded document.

use std::net::SocketAddr;

use super::krpc::{decode_compact_addr, put_compact_nodes, KrpcError, NodeInfo};
use super::node_id::NodeId;
use crate::bencode::{self, DecodeOptions, DictWriter, Value};

/// The most contacts restored from a saved state.
pub const MAX_SAVED_NODES: usize = 1_000;

/// A node's persistent state: its id and some contacts to bootstrap from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DhtState {
    /// The node id.
    pub id: NodeId,
    /// Contacts (both families).
    pub nodes: Vec<NodeInfo>,
}

impl DhtState {
    /// Encodes as `d2:id20:…5:nodes…6:nodes6…e` (compact node infos per family).
    pub fn encode(&self) -> Vec<u8> {
        let v4: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| n.addr.is_ipv4())
            .copied()
            .collect();
        let v6: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| n.addr.is_ipv6())
            .copied()
            .collect();
        let mut out = Vec::new();
        let mut d = DictWriter::new(&mut out);
        d.bytes(b"id", &self.id.0);
        let mut compact = Vec::new();
        put_compact_nodes(&mut compact, &v4);
        d.bytes(b"nodes", &compact);
        compact.clear();
        put_compact_nodes(&mut compact, &v6);
        d.bytes(b"nodes6", &compact);
        d.finish();
        out
    }

    /// Decodes a document written by [`DhtState::encode`]; at most [`MAX_SAVED_NODES`]
    /// contacts are kept.
    pub fn decode(data: &[u8]) -> Result<DhtState, KrpcError> {
        let value = bencode::decode_with(data, DecodeOptions::LENIENT.with_max_depth(2))
            .map_err(KrpcError::Bencode)?;
        let Value::Dict(d) = value else {
            return Err(KrpcError::NotADictionary);
        };
        let id = match d.get(b"id") {
            Some(Value::Bytes(b)) => {
                NodeId::from_slice(b).ok_or(KrpcError::InvalidField { field: "id" })?
            }
            _ => return Err(KrpcError::MissingField { field: "id" }),
        };
        let mut nodes = Vec::new();
        for (key, size) in [(&b"nodes"[..], 26), (&b"nodes6"[..], 38)] {
            if let Some(Value::Bytes(b)) = d.get(key) {
                for c in b.chunks_exact(size) {
                    if nodes.len() >= MAX_SAVED_NODES {
                        break;
                    }
                    let addr: Option<SocketAddr> = decode_compact_addr(&c[20..]);
                    if let (Some(id), Some(addr)) = (NodeId::from_slice(&c[..20]), addr) {
                        nodes.push(NodeInfo { id, addr });
                    }
                }
            }
        }
        Ok(DhtState { id, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_both_families() {
        let state = DhtState {
            id: NodeId([7; 20]),
            nodes: vec![
                NodeInfo {
                    id: NodeId([1; 20]),
                    addr: "127.0.0.1:6881".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId([2; 20]),
                    addr: "[2001:db8::1]:6882".parse().unwrap(),
                },
            ],
        };
        let bytes = state.encode();
        assert_eq!(DhtState::decode(&bytes), Ok(state));
        assert!(matches!(
            DhtState::decode(b"d5:nodes0:e"),
            Err(KrpcError::MissingField { field: "id" })
        ));
        assert!(DhtState::decode(b"garbage").is_err());
    }
}
