//! Downloaded blocks on their way to the disk and the hasher: each block is written as it
//! arrives and kept in its piece's buffer until the piece is hashed; disk and hash completions
//! come back here and settle the piece (see `verify`).

use super::{v2, Digest, DiskCmd, DiskDone, HashJob, Job, Output, Session, StorageError};
use crate::id::{ConnId, RequestId, TorrentId};
use crate::metainfo::Block;
use crate::time::Instant;
use crate::torrent::PieceBuf;
use crate::wire::BlockRequest;

impl Session {
    /// A block we requested arrived from `conn`: cancels its duplicates (endgame), writes it
    /// and keeps it in its piece's buffer; a complete piece goes to the hasher.
    pub(super) fn on_block(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnId,
        request: BlockRequest,
        data: bytes::Bytes,
    ) {
        let sender = self.conns.get(conn.0).map(|c| c.peer.addr().ip());
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(received) = t.picker.block_received(conn, request) else {
            return; // a duplicate
        };
        let complete = received.piece_complete;
        // Endgame: the other peers asked for this block need not send it.
        for other in received.cancel {
            if let Some(c) = self.conns.get_mut(other.0) {
                c.peer.cancel(request);
                self.flush(now, other);
            }
        }
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        t.downloaded += data.len() as u64;
        let layout = t.info.layout();
        let Some(block) = layout.request(request.index, request.begin, request.length) else {
            return;
        };
        let piece = request.index;
        // BEP 52: padding is hashed as the zeros it stands for (see `v2::zero_padding`).
        let data = if t.v2.is_some() {
            v2::zero_padding(&t.info, block, data)
        } else {
            data
        };
        let block_count = layout.block_count(block.piece) as usize;
        let buf = t
            .pieces
            .entry(piece)
            .or_insert_with(|| PieceBuf::new(block_count));
        let index = (request.begin / crate::metainfo::BLOCK_LEN) as usize;
        buf.blocks[index] = Some(data.clone());
        buf.senders[index] = sender;
        self.write_block(torrent, block, data);
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(buf) = t.pieces.get(&piece) else {
            return;
        };
        if complete {
            let data: Vec<bytes::Bytes> = buf.blocks.iter().flatten().cloned().collect();
            // A piece waiting for its digest is held in memory like a write in flight: it
            // counts against the same cap, so a hasher slower than the network holds back
            // requests instead of letting finished pieces pile up.
            let length: u64 = data.iter().map(|b| b.len() as u64).sum();
            self.disk_write_bytes += length;
            let req = RequestId(self.next_request);
            self.next_request += 1;
            self.jobs.insert(
                req,
                Job::Hash {
                    torrent,
                    piece,
                    length,
                },
            );
            self.outputs.push_back(Output::Hash(HashJob {
                req,
                algorithm: v2::algorithm(&t.info, block.piece),
                data,
            }));
        }
    }

    /// Issues the write of one block of a piece in progress (counted in its buffer and against
    /// the write cap).
    pub(super) fn write_block(&mut self, torrent: TorrentId, block: Block, data: bytes::Bytes) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let piece = block.piece.get();
        if let Some(buf) = t.pieces.get_mut(&piece) {
            buf.pending_writes += 1;
        }
        let spans = t.info.layout().block_spans(block).collect();
        let length = block.length;
        let req = RequestId(self.next_request);
        self.next_request += 1;
        self.jobs.insert(
            req,
            Job::Write {
                torrent,
                piece,
                length,
            },
        );
        self.disk_write_bytes += u64::from(length);
        self.outputs.push_back(Output::Disk(DiskCmd::Write {
            req,
            torrent,
            spans,
            data,
        }));
    }

    /// Writes again the blocks of a piece that were thrown away while writes were in flight
    /// (see [`PieceBuf::rewrite`]); the piece is settled when these writes are done.
    pub(super) fn rewrite_blocks(&mut self, torrent: TorrentId, piece: u32) {
        let Some(t) = self.torrents.get_mut(torrent.0) else {
            return;
        };
        let Some(buf) = t.pieces.get_mut(&piece) else {
            return;
        };
        let layout = t.info.layout();
        let Some(index) = layout.piece(piece) else {
            return;
        };
        let writes: Vec<_> = std::mem::take(&mut buf.rewrite)
            .into_iter()
            .filter_map(|b| {
                Some((
                    layout.block(index, b)?,
                    buf.blocks.get(b as usize)?.clone()?,
                ))
            })
            .collect();
        for (block, data) in writes {
            self.write_block(torrent, block, data);
        }
    }

    /// A disk job finished: a read goes to its peer, a write settles its piece.
    pub(super) fn on_disk_done(
        &mut self,
        now: Instant,
        req: RequestId,
        result: Result<DiskDone, StorageError>,
    ) {
        let Some(job) = self.jobs.remove(&req) else {
            return;
        };
        match job {
            Job::Read {
                torrent,
                conn,
                request,
            } => {
                self.disk_read_bytes = self
                    .disk_read_bytes
                    .saturating_sub(u64::from(request.length));
                let Some(c) = self.conns.get_mut(conn.0) else {
                    return;
                };
                match result {
                    Ok(DiskDone::Read(data)) => {
                        if c.peer.send_block(now, request, data) {
                            if let Some(t) = self.torrents.get_mut(torrent.0) {
                                t.uploaded += u64::from(request.length);
                            }
                        }
                    }
                    Ok(_) => c.peer.refuse_block(request),
                    Err(error) => {
                        c.peer.refuse_block(request);
                        self.storage_failed(now, torrent, error);
                    }
                }
                self.after_activity(now, conn);
            }
            Job::Write {
                torrent,
                piece,
                length,
            } => {
                if let Some(buf) = self
                    .torrents
                    .get_mut(torrent.0)
                    .and_then(|t| t.pieces.get_mut(&piece))
                {
                    buf.pending_writes -= 1;
                    buf.write_failed |= result.is_err();
                }
                if let Err(error) = result {
                    self.storage_failed(now, torrent, error);
                }
                self.settle_piece(now, torrent, piece);
                self.write_completed(now, u64::from(length));
            }
            Job::CheckRead {
                torrent,
                piece,
                length,
            } => self.on_check_read(now, torrent, piece, length, result),
            Job::LeafRead {
                torrent,
                piece,
                length,
            } => self.on_leaf_read(now, torrent, piece, length, result),
            Job::Hash { .. } | Job::CheckHash { .. } | Job::LeafHash { .. } => {
                debug_assert!(false, "a hash job's id came back as a disk job");
            }
        }
    }

    /// A hash job finished: a downloaded piece, a checked piece or a piece's leaves.
    pub(super) fn on_hashed(&mut self, now: Instant, req: RequestId, digest: Digest) {
        match self.jobs.remove(&req) {
            Some(Job::Hash {
                torrent,
                piece,
                length,
            }) => {
                self.on_piece_hashed(now, torrent, piece, digest);
                self.write_completed(now, length);
            }
            Some(Job::CheckHash { torrent, piece }) => {
                self.on_check_hashed(now, torrent, piece, digest);
            }
            Some(Job::LeafHash { torrent, piece }) => {
                self.on_leaf_hashed(now, torrent, piece, digest);
            }
            Some(other) => {
                debug_assert!(false, "a disk job's id came back as a hash job: {other:?}");
            }
            None => {}
        }
    }
}
