//! In-memory storage for simulated nodes: a map from (torrent, file index) to bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bitshoal_core::id::{RequestId, TorrentId};
use bitshoal_core::metainfo::{FileSpan, Info};
use bitshoal_core::session::{DiskCmd, DiskDone, StorageError};
use bytes::{Bytes, BytesMut};

/// A node's disk: every file of every torrent as a growable byte vector.
///
/// It executes [`DiskCmd`]s the way a file-backed runtime would: `Open` registers the torrent's
/// files, `Write` copies bytes across spans (pad spans are never written), `Read` reads them
/// (pad spans and bytes never written read as zeros, like a sparse file), `Close` forgets the
/// torrent's files. A span past a file's declared length is a storage error: the core computes
/// spans, so one out of bounds is a bug the simulator reports rather than hides.
///
/// # Faults
///
/// A disk can be made to fail like a real one: [`MemDisk::set_write_budget`] makes writes fail
/// with "no space left on device" once that many bytes were written (a full disk), and
/// [`MemDisk::set_fail_reads`] makes every read fail (a vanished or unreadable file). Content
/// staged with [`MemDisk::stage`] is placed in a torrent's files when the torrent is opened,
/// so that a check at add time finds it.
#[derive(Debug, Default)]
pub struct MemDisk {
    infos: BTreeMap<TorrentId, Arc<Info>>,
    files: BTreeMap<(TorrentId, usize), Vec<u8>>,
    writes: u64,
    reads: u64,
    /// Bytes that may still be written; `None` for no limit.
    write_budget: Option<u64>,
    fail_reads: bool,
    /// Content placed when a torrent with this info-hash is opened.
    staged: BTreeMap<[u8; 20], Vec<u8>>,
    /// Write commands that failed.
    write_failures: u64,
    /// Content shared by every node (see [`MemDisk::share`]), by info-hash, and by torrent.
    shared: BTreeMap<[u8; 20], Bytes>,
    shared_open: BTreeMap<TorrentId, Bytes>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one command. Returns the completion to report (`Write` and `Read` only).
    pub fn execute(&mut self, cmd: DiskCmd) -> Option<(RequestId, Result<DiskDone, StorageError>)> {
        match cmd {
            DiskCmd::Open { torrent, info } => {
                if let Some(content) = self.shared.get(&info.hashes().wire_id()) {
                    self.shared_open.insert(torrent, content.clone());
                }
                let staged = self.staged.remove(&info.hashes().wire_id());
                self.infos.insert(torrent, info);
                if let Some(content) = staged {
                    self.fill(torrent, &content);
                }
                None
            }
            DiskCmd::Write {
                req,
                torrent,
                spans,
                data,
            } => {
                self.writes += 1;
                Some((
                    req,
                    self.write(torrent, &spans, &data)
                        .map(|()| DiskDone::Written),
                ))
            }
            DiskCmd::Read {
                req,
                torrent,
                spans,
                length,
            } => {
                self.reads += 1;
                Some((req, self.read(torrent, &spans, length).map(DiskDone::Read)))
            }
            DiskCmd::Close { torrent } => {
                self.infos.remove(&torrent);
                self.shared_open.remove(&torrent);
                self.files.retain(|(t, _), _| *t != torrent);
                None
            }
            _ => None,
        }
    }

    fn check_span(&self, torrent: TorrentId, span: &FileSpan) -> Result<(), StorageError> {
        let info = self.infos.get(&torrent).ok_or_else(|| StorageError {
            file: None,
            message: "torrent not opened".into(),
        })?;
        let file = info.files().get(span.file).ok_or_else(|| StorageError {
            file: Some(span.file),
            message: "no such file".into(),
        })?;
        if span.offset + u64::from(span.length) > file.length() {
            return Err(StorageError {
                file: Some(span.file),
                message: format!(
                    "span {}+{} past the file's end {}",
                    span.offset,
                    span.length,
                    file.length()
                ),
            });
        }
        Ok(())
    }

    fn write(
        &mut self,
        torrent: TorrentId,
        spans: &[FileSpan],
        data: &[u8],
    ) -> Result<(), StorageError> {
        let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
        if total != data.len() as u64 {
            return Err(StorageError {
                file: None,
                message: format!("spans cover {total} bytes, the data is {}", data.len()),
            });
        }
        if let Some(budget) = self.write_budget {
            if total > budget {
                self.write_budget = Some(0);
                self.write_failures += 1;
                return Err(StorageError {
                    file: spans.first().map(|s| s.file),
                    message: "No space left on device (os error 28)".into(),
                });
            }
            self.write_budget = Some(budget - total);
        }
        if self.shared_open.contains_key(&torrent) {
            for span in spans {
                self.check_span(torrent, span)?;
            }
            return Ok(()); // the shared content already holds these bytes
        }
        let mut at = 0usize;
        for span in spans {
            self.check_span(torrent, span)?;
            let len = span.length as usize;
            if !span.pad {
                let file = self.files.entry((torrent, span.file)).or_default();
                let off = span.offset as usize;
                if file.len() < off + len {
                    file.resize(off + len, 0);
                }
                file[off..off + len].copy_from_slice(&data[at..at + len]);
            }
            at += len;
        }
        Ok(())
    }

    fn read(
        &self,
        torrent: TorrentId,
        spans: &[FileSpan],
        length: u32,
    ) -> Result<Bytes, StorageError> {
        if self.fail_reads {
            return Err(StorageError {
                file: spans.first().map(|s| s.file),
                message: "Input/output error (os error 5)".into(),
            });
        }
        if let Some(content) = self.shared_open.get(&torrent) {
            return self.read_shared(torrent, content, spans, length);
        }
        let mut out = Vec::with_capacity(length as usize);
        for span in spans {
            self.check_span(torrent, span)?;
            let start = out.len();
            out.resize(start + span.length as usize, 0);
            if span.pad {
                continue;
            }
            if let Some(file) = self.files.get(&(torrent, span.file)) {
                let off = (span.offset as usize).min(file.len());
                let end = (span.offset as usize + span.length as usize).min(file.len());
                out[start..start + (end - off)].copy_from_slice(&file[off..end]);
            }
        }
        if out.len() != length as usize {
            return Err(StorageError {
                file: None,
                message: format!("spans cover {} bytes, {length} asked", out.len()),
            });
        }
        Ok(out.into())
    }

    fn read_shared(
        &self,
        torrent: TorrentId,
        content: &Bytes,
        spans: &[FileSpan],
        length: u32,
    ) -> Result<Bytes, StorageError> {
        let info = &self.infos[&torrent];
        let range = |span: &FileSpan| {
            let start = (info.files()[span.file].offset() + span.offset) as usize;
            start..start + span.length as usize
        };
        for span in spans {
            self.check_span(torrent, span)?;
        }
        let out = match spans {
            [one] => content.slice(range(one)),
            _ => {
                let mut out = BytesMut::with_capacity(length as usize);
                for span in spans {
                    out.extend_from_slice(&content[range(span)]);
                }
                out.freeze()
            }
        };
        if out.len() != length as usize {
            return Err(StorageError {
                file: None,
                message: format!("spans cover {} bytes, {length} asked", out.len()),
            });
        }
        Ok(out)
    }

    /// Serves a torrent's reads from `content` (its bytes in layout order, shared by every
    /// node that shares it: no copy per node) and drops its writes after checking their spans.
    /// For large simulations (benchmarks): it relies on the session reading only what it
    /// verified, so a node's view of the torrent is the shared content, and
    /// [`MemDisk::content`] shows what was written, which is nothing.
    pub fn share(&mut self, info: &Info, content: Bytes) {
        self.shared.insert(info.hashes().wire_id(), content);
    }

    /// Writes a torrent's whole content (`content` in layout order, pads included as zeros)
    /// to its files, as a seed's complete download. The torrent must have been opened.
    pub fn fill(&mut self, torrent: TorrentId, content: &[u8]) {
        let info = self
            .infos
            .get(&torrent)
            .expect("fill a torrent after the session opened it (add_torrent)")
            .clone();
        for (index, file) in info.files().iter().enumerate() {
            if file.is_pad() {
                continue;
            }
            let start = file.offset() as usize;
            let end = start + file.length() as usize;
            self.files
                .insert((torrent, index), content[start..end].to_vec());
        }
    }

    /// The torrent's content in layout order: every file padded to its declared length with
    /// zeros (bytes never written read as zeros), pad files as zeros.
    pub fn content(&self, torrent: TorrentId) -> Option<Vec<u8>> {
        let info = self.infos.get(&torrent)?;
        let mut out = Vec::with_capacity(info.content_length() as usize);
        for (index, file) in info.files().iter().enumerate() {
            let start = out.len();
            out.resize(start + file.length() as usize, 0);
            if let Some(bytes) = self.files.get(&(torrent, index)) {
                let n = bytes.len().min(file.length() as usize);
                out[start..start + n].copy_from_slice(&bytes[..n]);
            }
        }
        Some(out)
    }

    /// One file's bytes as written so far (`None` if nothing was written to it).
    pub fn file(&self, torrent: TorrentId, file: usize) -> Option<&[u8]> {
        self.files.get(&(torrent, file)).map(Vec::as_slice)
    }

    /// Whether a torrent is open (announced with `DiskCmd::Open` and not closed).
    pub fn is_open(&self, torrent: TorrentId) -> bool {
        self.infos.contains_key(&torrent)
    }

    /// The torrents currently open, in id order.
    pub fn torrents(&self) -> impl Iterator<Item = TorrentId> + '_ {
        self.infos.keys().copied()
    }

    /// How many write and read commands ran.
    pub fn counts(&self) -> (u64, u64) {
        (self.writes, self.reads)
    }

    /// Makes writes fail ("no space left on device") once `bytes` more were written, as a
    /// full disk does; `None` lifts the limit.
    pub fn set_write_budget(&mut self, bytes: Option<u64>) {
        self.write_budget = bytes;
    }

    /// Makes every read fail (or work again).
    pub fn set_fail_reads(&mut self, fail: bool) {
        self.fail_reads = fail;
    }

    /// How many writes failed.
    pub fn write_failures(&self) -> u64 {
        self.write_failures
    }

    /// Places `content` (a torrent's bytes in layout order) in the torrent's files when a
    /// torrent with `info`'s hash is next opened: data already on disk before it is added.
    pub fn stage(&mut self, info: &Info, content: &[u8]) {
        self.staged
            .insert(info.hashes().wire_id(), content.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{TestTorrent, TorrentSpec};
    use bitshoal_core::rng::Rng;

    #[test]
    fn pads_are_never_written_and_read_as_zeros() {
        let spec = TorrentSpec {
            files: vec![10_000, 5_000],
            piece_length: 16384,
            pad_files: true,
        };
        let t = TestTorrent::build(&mut Rng::from_seed(1), &spec);
        let info = t.info.clone();
        assert!(info.files()[1].is_pad());
        let torrent = {
            // A TorrentId can only come from a session: open the torrent in one.
            let mut s = bitshoal_core::session::Session::new(Default::default());
            let now = bitshoal_core::time::Instant::ZERO;
            let id = s
                .add_torrent(now, bitshoal_core::session::AddTorrent::new(info.clone()))
                .unwrap();
            while s.poll_output().is_some() {}
            id
        };
        let mut disk = MemDisk::new();
        assert!(disk
            .execute(DiskCmd::Open {
                torrent,
                info: info.clone()
            })
            .is_none());
        let layout = info.layout();
        let piece = layout.piece(0).unwrap();
        let spans: Vec<FileSpan> = layout.piece_spans(piece).collect();
        assert!(spans.iter().any(|s| s.pad), "piece 0 ends in padding");
        // Write the whole piece, pad bytes included (as nonzero garbage).
        let data: Vec<u8> = (0..16384).map(|i| (i % 251) as u8 + 1).collect();
        assert!(disk.write(torrent, &spans, &data).is_ok());
        assert_eq!(
            disk.file(torrent, 1),
            None,
            "the pad file was never written"
        );
        let read = disk.read(torrent, &spans, 16384).unwrap();
        assert_eq!(read[..10_000], data[..10_000]);
        assert!(read[10_000..].iter().all(|&b| b == 0), "pads read as zeros");
        // A span past a file's end is an error, not a silent grow.
        let bad = [FileSpan {
            file: 0,
            offset: 9_000,
            length: 2_000,
            pad: false,
        }];
        assert!(disk.write(torrent, &bad, &[0; 2_000]).is_err());
    }
}
