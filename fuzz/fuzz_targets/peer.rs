//! Feeds arbitrary bytes to a Session connection, after a valid handshake, through the
//! simulator: no input may panic the session or break a simulator invariant.
//!
//! Input layout: byte 0 picks the handshake's reserved bits and whether the node seeds; byte 1
//! is the number of cuts; the rest is the stream, sent in pieces cut at positions derived from
//! it, with virtual time passing between pieces.
#![no_main]

use bitshoal_conformance::sim::{FakeConfig, NodeConfig, Sim, TestTorrent, TorrentSpec};
use bitshoal_core::id::PeerId;
use bitshoal_core::time::Duration;
use bitshoal_core::wire::Reserved;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, cuts, stream @ ..] = data else {
        return;
    };
    let mut sim = Sim::new(u64::from(*mode));
    sim.set_step_cap(100_000);
    let torrent = TestTorrent::build(sim.rng(), &TorrentSpec::single(5 * 16384 + 100, 16384));
    let node = sim.add_node(NodeConfig::default());
    if mode & 1 == 0 {
        sim.seed_torrent(node, &torrent);
    } else {
        sim.add_torrent(node, &torrent);
    }
    let fake = sim.add_fake(FakeConfig::new(PeerId(*b"-FZ0001-fuzzfuzzfuzz")));
    let reserved = [
        Reserved::NONE,
        Reserved::FAST,
        Reserved::EXTENSION_PROTOCOL,
        Reserved::FAST.union(Reserved::EXTENSION_PROTOCOL),
    ][usize::from(mode >> 1 & 3)];
    let addr = sim.node(node).addr();
    sim.fake_connect(fake, addr);
    let hs = sim
        .fake(fake)
        .handshake_for(&torrent.info.hashes(), reserved);
    sim.fake_send_handshake(fake, &hs);
    // Cut the stream into pieces; time passes between them.
    let pieces = usize::from(*cuts % 16) + 1;
    let step = stream.len().div_ceil(pieces).max(1);
    for chunk in stream.chunks(step) {
        sim.fake_send_raw(fake, chunk.to_vec());
        if let Err(e) = sim.run_for(Duration::from_millis(u64::from(chunk[0]))) {
            panic!("{e}");
        }
    }
    if let Err(e) = sim.run_for(Duration::from_secs(1)) {
        panic!("{e}");
    }
});
