//! Reused buffers for block reads.
//!
//! A seed reads every block it sends into a fresh 16 KiB buffer, and the buffer is freed on
//! another thread once the block is on the socket. With glibc's per-thread arenas that churn
//! returns the pages to the kernel and faults them in again, zeroed, a few reads later: profiled
//! while seeding to a libtorrent leecher, page faults and zeroing cost more than half of the
//! seed's CPU. The pool keeps the freed buffers instead: a read takes one (its old bytes are all
//! overwritten by the read, or zeroed for pad spans), and the `Bytes` handed to the session gives
//! it back when its last clone is dropped, whatever thread that is on.

use std::sync::{Arc, Mutex, PoisonError};

use bitshoal_core::metainfo::BLOCK_LEN;
use bytes::Bytes;

/// The most buffers the pool keeps (4 MiB of 16 KiB blocks: a few reads in flight per peer
/// for many peers). Buffers freed beyond that are released.
const MAX_POOLED: usize = 256;

/// Free buffers of [`BLOCK_LEN`] bytes, shared by every disk worker.
#[derive(Debug, Default)]
pub(super) struct BufPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl BufPool {
    /// A buffer of exactly `length` bytes to read into. Its contents are unspecified (the
    /// caller overwrites all of it); full-block buffers come from the pool when it has one.
    pub(super) fn take(&self, length: usize) -> Vec<u8> {
        if length == BLOCK_LEN as usize {
            let reused = self
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            if let Some(buf) = reused {
                return buf;
            }
        }
        vec![0; length]
    }

    /// Freezes a buffer from [`BufPool::take`]; a full block goes back to the pool when the
    /// last `Bytes` pointing into it is dropped.
    pub(super) fn freeze(&self, buf: Vec<u8>) -> Bytes {
        if buf.len() != BLOCK_LEN as usize {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Pooled {
            buf,
            free: Arc::clone(&self.free),
        })
    }

    /// How many free buffers the pool holds.
    #[cfg(test)]
    pub(super) fn free_count(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A pooled buffer lent to a `Bytes`.
struct Pooled {
    buf: Vec<u8>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < MAX_POOLED {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}
