//! The bounded cache of open file handles, shared by every torrent of a [`Storage`](super::Storage).

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

/// A file of one opening of a torrent: (opening's uid, file index).
pub(super) type Key = (u64, usize);

/// Open handles, least recently used evicted first.
///
/// Eviction scans for the oldest entry: it happens only on a miss, next to an `open` system
/// call that costs far more than a scan of a few hundred entries, and keeps hits to one hash
/// lookup with no linked list to maintain.
#[derive(Debug)]
pub(super) struct FileCache {
    capacity: usize,
    clock: u64,
    files: HashMap<Key, Entry>,
}

#[derive(Debug)]
struct Entry {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
}

impl FileCache {
    /// A cache of at most `capacity` handles (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: 0,
            files: HashMap::new(),
        }
    }

    /// The handle for `key`, if cached and (when `write` is asked) opened for writing.
    pub(super) fn get(&mut self, key: Key, write: bool) -> Option<Arc<File>> {
        self.clock += 1;
        let entry = self.files.get_mut(&key)?;
        if write && !entry.writable {
            return None;
        }
        entry.last_used = self.clock;
        Some(Arc::clone(&entry.file))
    }

    /// Caches `file` for `key`, replacing any handle there, and returns the handles evicted to
    /// stay within the bound (for the caller to close outside its lock).
    pub(super) fn insert(&mut self, key: Key, file: Arc<File>, writable: bool) -> Vec<Arc<File>> {
        self.clock += 1;
        let mut evicted: Vec<Arc<File>> = self
            .files
            .insert(
                key,
                Entry {
                    file,
                    writable,
                    last_used: self.clock,
                },
            )
            .map(|old| old.file)
            .into_iter()
            .collect();
        while self.files.len() > self.capacity {
            let oldest = self
                .files
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            match oldest.and_then(|k| self.files.remove(&k)) {
                Some(e) => evicted.push(e.file),
                None => break,
            }
        }
        evicted
    }

    /// Removes every handle of the opening `uid`, returning them to be closed.
    pub(super) fn remove_owner(&mut self, uid: u64) -> Vec<Arc<File>> {
        let keys: Vec<Key> = self.files.keys().filter(|k| k.0 == uid).copied().collect();
        keys.iter()
            .filter_map(|k| self.files.remove(k))
            .map(|e| e.file)
            .collect()
    }

    /// The number of cached handles.
    pub(super) fn len(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> Arc<File> {
        Arc::new(tempfile::tempfile().unwrap())
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut c = FileCache::new(2);
        assert!(c.insert((0, 0), handle(), true).is_empty());
        assert!(c.insert((0, 1), handle(), true).is_empty());
        assert!(c.get((0, 0), true).is_some()); // (0, 1) is now the oldest
        assert_eq!(c.insert((0, 2), handle(), true).len(), 1);
        assert_eq!(c.len(), 2);
        assert!(c.get((0, 1), false).is_none());
        assert!(c.get((0, 0), false).is_some());
        assert!(c.get((0, 2), false).is_some());
    }

    #[test]
    fn a_read_only_handle_does_not_serve_writes() {
        let mut c = FileCache::new(4);
        let _ = c.insert((0, 0), handle(), false);
        assert!(c.get((0, 0), false).is_some());
        assert!(c.get((0, 0), true).is_none());
        // Replacing it with a writable handle hands the old one back to be closed.
        assert_eq!(c.insert((0, 0), handle(), true).len(), 1);
        assert!(c.get((0, 0), true).is_some());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn removes_one_owner_only() {
        let mut c = FileCache::new(8);
        for k in [(1, 0), (1, 1), (2, 0)] {
            let _ = c.insert(k, handle(), true);
        }
        assert_eq!(c.remove_owner(1).len(), 2);
        assert_eq!(c.len(), 1);
        assert!(c.get((2, 0), true).is_some());
    }

    #[test]
    fn capacity_is_at_least_one() {
        let mut c = FileCache::new(0);
        let _ = c.insert((0, 0), handle(), true);
        assert_eq!(c.len(), 1);
        assert!(c.get((0, 0), true).is_some());
    }
}
