//! Smart ban on v2 with leaf hashes (BEP 52): when a v2 piece with blocks from several peers
//! fails, its 16 KiB leaf hashes are asked of peers that have it (a `hash request` for the
//! piece's leaves, without proof layers); an answer is trusted only if the leaves fold to the
//! piece's node in its file's tree (the piece layer, or the file's root for a file of one
//! piece). Each received block whose leaf differs from the true one convicts its sender at once,
//! without waiting for a retry of the piece (the v1 route of [`crate::smart_ban`], which still
//! runs beside this one, needs a second attempt).
//!
//! At most [`MAX_SUSPECT_PIECES`] failed pieces wait for an answer (the oldest is dropped), and
//! each is asked of at most [`ASK_PEERS`] peers, preferring peers that sent none of its blocks.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::id::TorrentId;
use crate::merkle::{self, Hash256};
use crate::time::Instant;
use crate::wire::HashRequest;

use super::{Digest, Session};

/// Failed pieces waiting for their leaf hashes, session-wide.
pub const MAX_SUSPECT_PIECES: usize = 64;
/// Peers asked for one failed piece's leaf hashes.
const ASK_PEERS: usize = 2;

/// A failed v2 piece: the leaves of the blocks received and their senders.
#[derive(Debug)]
pub(crate) struct Suspect {
    torrent: TorrentId,
    request: HashRequest,
    /// The piece's node the true leaves must fold to, and the height of that fold.
    expected: Hash256,
    height: u32,
    received: Vec<Hash256>,
    senders: Vec<Option<IpAddr>>,
}

/// The failed pieces waiting for leaf hashes.
#[derive(Debug, Default)]
pub(crate) struct Suspects(VecDeque<Suspect>);

impl Session {
    /// A downloaded piece failed its hash check: if it is a v2 piece of several blocks from
    /// several peers, ask peers for its leaf hashes.
    pub(super) fn v2_piece_failed(&mut self, torrent: TorrentId, piece: u32, digest: &Digest) {
        let received = match digest {
            Digest::Sha256Blocks(l) | Digest::Sha1AndSha256Blocks { blocks: l, .. } => l,
            _ => return,
        };
        let Some(t) = self.torrents.get(torrent.0) else {
            return;
        };
        let (Some(v2), Some(buf), Some(index)) = (
            t.v2.as_ref(),
            t.pieces.get(&piece),
            t.info.layout().piece(piece),
        ) else {
            return;
        };
        let Some((file, local)) = super::v2::piece_file(&t.info, index) else {
            return;
        };
        let entry = &t.info.files()[file];
        let tree_height = merkle::tree_height(entry.length());
        let height = v2.piece_height.min(tree_height);
        let expected = if v2.needs_layer(file) {
            match v2.layer(file).and_then(|l| l.get(local as usize)) {
                Some(node) => *node,
                None => return,
            }
        } else {
            *entry.pieces_root().expect("a file with data has a root")
        };
        let mut senders: Vec<IpAddr> = buf.senders.iter().flatten().copied().collect();
        senders.sort_unstable();
        senders.dedup();
        // One block, or one sender: the v1 route convicts at once. Pieces of more than 512
        // blocks (8 MiB) would need a longer request than peers answer (BEP 52).
        if height == 0 || senders.len() < 2 || height > super::MAX_HASH_REQUEST_LEN.ilog2() {
            return;
        }
        let request = HashRequest {
            pieces_root: *entry.pieces_root().expect("a file with data has a root"),
            base_layer: 0,
            index: local << height,
            length: 1 << height,
            proof_layers: 0,
        };
        // Peers that have the piece, those that sent none of it first.
        let mut asked = Vec::new();
        let mut candidates: Vec<(bool, crate::id::ConnId)> = t
            .peers
            .iter()
            .filter_map(|&c| {
                let conn = self.conns.get(c.0)?;
                let has = conn.peer.peer_has().is_some_and(|h| h.get(piece));
                let sent = senders.contains(&conn.peer.addr().ip());
                has.then_some((sent, c))
            })
            .collect();
        candidates.sort_by_key(|(sent, _)| *sent);
        let suspect = Suspect {
            torrent,
            request,
            expected,
            height,
            received: received.clone(),
            senders: buf.senders.clone(),
        };
        for (_, conn) in candidates {
            if asked.len() >= ASK_PEERS {
                break;
            }
            if self.send_own_hash_request(conn, request) {
                asked.push(conn);
            }
        }
        if asked.is_empty() {
            return;
        }
        let suspects = &mut self.v2_suspects.0;
        suspects.retain(|s| !(s.torrent == torrent && s.request == request));
        if suspects.len() >= MAX_SUSPECT_PIECES {
            suspects.pop_front();
        }
        suspects.push_back(suspect);
    }

    /// A torrent left the session.
    pub(super) fn v2_suspects_removed(&mut self, torrent: TorrentId) {
        self.v2_suspects.0.retain(|s| s.torrent != torrent);
    }

    /// Leaf hashes we asked for arrived: if they are the piece's, ban the senders of the
    /// blocks that differ.
    pub(super) fn on_leaf_answer(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        request: &HashRequest,
        hashes: &[u8],
    ) {
        let Some(at) = self
            .v2_suspects
            .0
            .iter()
            .position(|s| s.torrent == torrent && s.request == *request)
        else {
            return;
        };
        if hashes.len() != request.length as usize * 32 {
            return;
        }
        let leaves: Vec<Hash256> = hashes
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect();
        let s = &self.v2_suspects.0[at];
        if merkle::subtree_root(&leaves, 0, s.height) != Some(s.expected) {
            // Not the piece's leaves: the other peer asked may answer right.
            return;
        }
        let s = self.v2_suspects.0.remove(at).expect("position is in range");
        let mut guilty: Vec<IpAddr> = s
            .received
            .iter()
            .zip(&leaves)
            .zip(&s.senders)
            .filter(|((got, truth), _)| got != truth)
            .filter_map(|(_, sender)| *sender)
            .collect();
        guilty.sort_unstable();
        guilty.dedup();
        for ip in guilty {
            self.ban(now, torrent, ip);
        }
    }
}
