//! Shared fixtures for the simulator tests: a node seeding a small torrent and a fake peer
//! talking to it.
#![allow(dead_code, unreachable_pub)]

use bitshoal_conformance::sim::{
    FakeConfig, FakeId, NodeConfig, NodeId, Sim, TestTorrent, TorrentSpec,
};
use bitshoal_core::id::{ConnId, PeerId, TorrentId};
use bitshoal_core::peer::DisconnectReason;
use bitshoal_core::time::Duration;
use bitshoal_core::wire::Reserved;

/// 32 KiB pieces; 10 pieces, the last one 20,000 bytes (two blocks, the second short).
pub const PIECE_LEN: u32 = 32 * 1024;
pub const PIECES: u32 = 10;
pub const LAST_PIECE_LEN: u32 = 20_000;

/// A node seeding a small torrent, and a fake peer.
pub struct Fixture {
    pub sim: Sim,
    pub node: NodeId,
    pub torrent: TestTorrent,
    pub tid: TorrentId,
    pub fake: FakeId,
}

impl Fixture {
    /// A node seeding the test torrent and a fake peer with a fixed peer id, not yet connected.
    pub fn new(seed: u64) -> Self {
        Self::with(seed, true)
    }

    /// The same, with the node seeding (`true`) or leeching (`false`).
    pub fn with(seed: u64, seeding: bool) -> Self {
        let mut sim = Sim::new(seed);
        let size = u64::from(PIECE_LEN) * u64::from(PIECES - 1) + u64::from(LAST_PIECE_LEN);
        let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(size, PIECE_LEN));
        let node = sim.add_node(NodeConfig::default());
        let tid = if seeding {
            sim.seed_torrent(node, &torrent)
        } else {
            sim.add_torrent(node, &torrent)
        };
        let fake = sim.add_fake(FakeConfig::new(PeerId(*b"-FK0001-fakefakefake")));
        Self {
            sim,
            node,
            torrent,
            tid,
            fake,
        }
    }

    /// Connects the fake to the node, sends its handshake with `reserved`, and runs until the
    /// node's handshake (and whatever follows at once) has arrived.
    pub fn handshake(&mut self, reserved: Reserved) {
        let addr = self.sim.node(self.node).addr();
        self.sim.fake_connect(self.fake, addr);
        let hs = self
            .sim
            .fake(self.fake)
            .handshake_for(&self.torrent.info.hashes(), reserved);
        self.sim.fake_send_handshake(self.fake, &hs);
        let fake = self.fake;
        self.sim
            .run_until(
                |s| s.fake(fake).handshake().is_some(),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // Let the rest of the node's greeting (extension handshake, have-all, ...) arrive.
        self.sim
            .run_for(Duration::from_millis(50))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs until the node reports a disconnect; returns its connection and reason.
    pub fn run_until_disconnect(&mut self, max: Duration) -> (ConnId, DisconnectReason) {
        let node = self.node;
        self.sim
            .run_until(|s| !s.node(node).disconnects().is_empty(), max)
            .unwrap_or_else(|e| panic!("{e}"));
        self.sim.node(node).disconnects().remove(0)
    }
}

/// A raw frame: length prefix, id, payload.
pub fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    v.push(id);
    v.extend_from_slice(payload);
    v
}

/// Big-endian u32s, concatenated.
pub fn be(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Reserved bits with the fast extension and BEP 10, as most clients send.
pub const FAST_EXT: Reserved = Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL);
