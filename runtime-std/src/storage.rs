//! File storage: runs the session's [`DiskCmd`]s against the files of each torrent.
//!
//! # Where files go
//!
//! The runtime names each torrent's download directory with [`Storage::register`] before the
//! session's [`DiskCmd::Open`] for it is prepared (right after `Session::add_torrent` returns,
//! before draining its outputs). File `i` lives at `info.files()[i].path()` joined under that
//! directory, one component at a time ([`SafePath::join_under`]); a multi-file torrent's paths
//! begin with its name, so the directory is where the torrent's folder is made. Every joined path
//! is checked again to lie strictly inside the directory before a file is opened (defence in
//! depth: the metainfo layer already refuses `..`, absolute paths and the like).
//!
//! # How files are used
//!
//! - **Positional IO.** Reads and writes are `pread`/`pwrite` (`FileExt::read_exact_at`,
//!   `write_all_at`) on shared handles: any number of workers use one file at once, and no
//!   cursor is shared.
//! - **Lazy, bounded open files.** A file is opened on its first read or write and kept in a
//!   least-recently-used cache of [`StorageConfig::max_open_files`] handles, shared by all
//!   torrents. Reads open read-only (seeding from read-only files works); the first write
//!   reopens read-write, creating the file and its parent directories.
//! - **Sparse by default** ([`Preallocate::Sparse`]): nothing is written but the torrent's bytes,
//!   so a file's untouched ranges stay holes on file systems that support them.
//!   [`Preallocate::Full`] reserves each file's blocks when it is first opened for writing.
//! - **Pad files** (BEP 47) are never created, written or read; their bytes read as zeros.
//! - **Empty files** are created by [`Storage::finish`] (they hold no piece, so no write ever
//!   creates them): a finished torrent has all its files, and a failure to create one is
//!   reported there rather than lost in [`DiskCmd::Open`], which has no completion.
//! - **Durability.** Writes land in the operating system's cache. [`Storage::finish`], which the
//!   runtime calls on `Event::TorrentFinished`, fsyncs every file written since its previous
//!   call; [`DiskCmd::Close`] does the same before the torrent's handles are closed.
//! - **Errors never panic.** Every failure becomes a [`StorageError`] naming the file index and
//!   carrying the operating system's text (disk full, permission denied, not a directory). A read
//!   of bytes that were never written (the file is missing or too short) is an error. A file that
//!   existed once and is gone when it is next opened, or at [`Storage::finish`], is reported as
//!   vanished instead of being silently created again empty.
//!
//! # Ordering
//!
//! [`Storage::prepare`] binds a command to its torrent at once, on the caller's thread, in the
//! order the session issued the commands; the returned [`DiskJob`] then runs on any thread.
//! `Open` takes effect when prepared. `Close` unbinds the torrent when prepared (later commands
//! for it fail as "not open") and releases its files only after every job prepared before it has
//! finished, whatever thread runs them and in whatever order.
//!
//! Reads and writes of one torrent may run concurrently: the session never reads a block it has
//! not verified, and never writes a verified block again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bitshoal_core::id::{RequestId, TorrentId};
use bitshoal_core::metainfo::{FileSpan, Info, SafePath};
use bitshoal_core::session::{DiskCmd, DiskDone, Input, StorageError};
use bytes::Bytes;
use smallvec::SmallVec;

mod bufpool;
mod cache;
mod fileio;

use cache::FileCache;

/// How file space is reserved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preallocate {
    /// Write only the torrent's bytes; unwritten ranges stay holes (the default).
    #[default]
    Sparse,
    /// Reserve each file's full size when it is first opened for writing: `fallocate` on Linux
    /// (so a full disk is found at once, and files fragment less), elsewhere only
    /// `File::set_len`, which most file systems make sparse anyway.
    Full,
}

/// How [`Storage`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The most file handles kept open, all torrents together (at least 1). Handles in use by a
    /// running job stay open until it ends, so up to one more per worker may be open briefly.
    pub max_open_files: usize,
    /// How file space is reserved.
    pub preallocate: Preallocate,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            max_open_files: 128,
            preallocate: Preallocate::Sparse,
        }
    }
}

/// The files of every open torrent; cheap to clone, shared by all disk workers.
#[derive(Clone, Debug)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StorageConfig,
    registry: Mutex<Registry>,
    cache: Mutex<FileCache>,
    /// Names each opening of a torrent, so cached handles of a closed torrent never serve a
    /// later one with the same id.
    next_uid: AtomicU64,
    /// Buffers for block reads, reused (see [`bufpool`]).
    read_bufs: bufpool::BufPool,
}

#[derive(Debug, Default)]
struct Registry {
    /// Download directories registered for the next `Open` of each torrent.
    roots: HashMap<TorrentId, PathBuf>,
    /// Open torrents.
    torrents: HashMap<TorrentId, Arc<TorrentFiles>>,
}

/// One opening of a torrent.
#[derive(Debug)]
struct TorrentFiles {
    uid: u64,
    torrent: TorrentId,
    root: Option<PathBuf>,
    info: Arc<Info>,
    state: Mutex<TorrentState>,
}

#[derive(Debug)]
struct TorrentState {
    /// Files found or created at least once: if one is missing later, it vanished.
    seen: Vec<bool>,
    /// Files written since they were last synced.
    dirty: Vec<bool>,
    /// Jobs prepared and not yet finished.
    in_flight: usize,
    /// `Close` was run: release the files when `in_flight` reaches 0.
    closing: bool,
    /// The files were released.
    released: bool,
}

/// What a handle is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Locks a mutex; a panic elsewhere while it was held leaves data that is still consistent here
/// (every critical section is a few assignments), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage {
    /// Storage with `config`; nothing is opened until commands arrive.
    pub fn new(config: StorageConfig) -> Self {
        let cache = FileCache::new(config.max_open_files);
        Self {
            inner: Arc::new(Inner {
                config,
                registry: Mutex::new(Registry::default()),
                cache: Mutex::new(cache),
                next_uid: AtomicU64::new(0),
                read_bufs: bufpool::BufPool::default(),
            }),
        }
    }

    /// Names `torrent`'s download directory, for its next [`DiskCmd::Open`].
    ///
    /// Call it before that command is prepared. A torrent opened without a directory fails
    /// every read and write with a [`StorageError`] that says so.
    pub fn register(&self, torrent: TorrentId, root: PathBuf) {
        lock(&self.inner.registry).roots.insert(torrent, root);
    }

    /// Runs `cmd` on the calling thread; reads and writes report [`Input::DiskDone`].
    pub fn execute(&self, cmd: DiskCmd) -> Option<Input> {
        self.prepare(cmd).run()
    }

    /// Binds `cmd` to its torrent now, to run later on any thread (see the module's ordering
    /// rules). Prepare commands in the order the session issued them.
    pub fn prepare(&self, cmd: DiskCmd) -> DiskJob {
        let work = match cmd {
            DiskCmd::Open { torrent, info } => self.open(torrent, info),
            DiskCmd::Write {
                req,
                torrent,
                spans,
                data,
            } => match self.bind(torrent) {
                Some(files) => Work::Write {
                    req,
                    files,
                    spans,
                    data,
                },
                None => Work::Fail {
                    req,
                    error: not_open(torrent),
                },
            },
            DiskCmd::Read {
                req,
                torrent,
                spans,
                length,
            } => match self.bind(torrent) {
                Some(files) => Work::Read {
                    req,
                    files,
                    spans,
                    length,
                },
                None => Work::Fail {
                    req,
                    error: not_open(torrent),
                },
            },
            DiskCmd::Close { torrent } => {
                let mut registry = lock(&self.inner.registry);
                registry.roots.remove(&torrent);
                registry
                    .torrents
                    .remove(&torrent)
                    .map_or(Work::Nothing, Work::Close)
            }
            other => {
                debug_assert!(
                    false,
                    "a disk command this runtime does not know: {other:?}"
                );
                Work::Nothing
            }
        };
        DiskJob {
            storage: self.clone(),
            work,
        }
    }

    /// Makes `torrent` complete on disk: creates its empty files and fsyncs every file written
    /// since the previous call. Call it on `Event::TorrentFinished` (it blocks: run it on a
    /// worker, e.g. with [`DiskPool::finish`](crate::workers::DiskPool::finish)).
    ///
    /// Fails on the first file that cannot be created or synced, or that vanished (deleted or
    /// replaced while the torrent was using it).
    pub fn finish(&self, torrent: TorrentId) -> Result<(), StorageError> {
        let files = self.bind(torrent).ok_or_else(|| not_open(torrent))?;
        let t = &files.files;
        for (i, entry) in t.info.files().iter().enumerate() {
            if entry.length() == 0 && !entry.is_pad() && !entry.attributes().symlink {
                self.inner.handle(t, i, Access::Write)?;
            }
        }
        self.inner.sync(t)
    }

    /// How many file handles the cache holds open now.
    pub fn open_files(&self) -> usize {
        lock(&self.inner.cache).len()
    }

    fn open(&self, torrent: TorrentId, info: Arc<Info>) -> Work {
        let uid = self.inner.next_uid.fetch_add(1, Ordering::Relaxed);
        let count = info.files().len();
        let mut registry = lock(&self.inner.registry);
        let root = registry.roots.remove(&torrent);
        let files = Arc::new(TorrentFiles {
            uid,
            torrent,
            root,
            info,
            state: Mutex::new(TorrentState {
                seen: vec![false; count],
                dirty: vec![false; count],
                in_flight: 0,
                closing: false,
                released: false,
            }),
        });
        // Opening a torrent that is already open replaces it: the old one is closed.
        registry
            .torrents
            .insert(torrent, files)
            .map_or(Work::Nothing, Work::Close)
    }

    /// The open torrent `torrent`, counted as busy until the guard drops.
    fn bind(&self, torrent: TorrentId) -> Option<InFlight> {
        let files = lock(&self.inner.registry).torrents.get(&torrent).cloned()?;
        lock(&files.state).in_flight += 1;
        Some(InFlight {
            storage: self.clone(),
            files,
        })
    }
}

/// A disk command bound to its torrent by [`Storage::prepare`], ready to run on any thread.
#[derive(Debug)]
#[must_use = "a prepared job does nothing until run; dropping it abandons the command"]
pub struct DiskJob {
    storage: Storage,
    work: Work,
}

#[derive(Debug)]
enum Work {
    /// Nothing to do (an `Open`, or a `Close` of a torrent that is not open).
    Nothing,
    Write {
        req: RequestId,
        files: InFlight,
        spans: SmallVec<[FileSpan; 2]>,
        data: Bytes,
    },
    Read {
        req: RequestId,
        files: InFlight,
        spans: SmallVec<[FileSpan; 2]>,
        length: u32,
    },
    /// A read or write for a torrent that is not open.
    Fail {
        req: RequestId,
        error: StorageError,
    },
    Close(Arc<TorrentFiles>),
}

impl DiskJob {
    /// Performs the command; reads and writes report [`Input::DiskDone`], `Open` and `Close`
    /// report nothing.
    pub fn run(self) -> Option<Input> {
        let inner = &self.storage.inner;
        match self.work {
            Work::Nothing => None,
            Work::Write {
                req,
                files,
                spans,
                data,
            } => Some(Input::DiskDone {
                req,
                result: inner
                    .write(&files.files, &spans, &data)
                    .map(|()| DiskDone::Written),
            }),
            Work::Read {
                req,
                files,
                spans,
                length,
            } => Some(Input::DiskDone {
                req,
                result: inner.read(&files.files, &spans, length).map(DiskDone::Read),
            }),
            Work::Fail { req, error } => Some(Input::DiskDone {
                req,
                result: Err(error),
            }),
            Work::Close(files) => {
                let release = {
                    let mut st = lock(&files.state);
                    st.closing = true;
                    take_release(&mut st)
                };
                if release {
                    inner.release(&files);
                }
                None
            }
        }
    }

    /// The torrent the job belongs to, if it is bound to one.
    pub fn torrent(&self) -> Option<TorrentId> {
        match &self.work {
            Work::Write { files, .. } | Work::Read { files, .. } => Some(files.files.torrent),
            Work::Close(files) => Some(files.torrent),
            Work::Nothing | Work::Fail { .. } => None,
        }
    }
}

/// The most bytes one coalesced write of [`DiskJob::run_batch`] carries.
const MAX_COALESCED_WRITE: usize = 4 * 1024 * 1024;

impl DiskJob {
    /// Runs `jobs` in order, handing each completion to `deliver`. Writes of one torrent that
    /// continue each other in one file (a piece's blocks, as they usually arrive) go to the
    /// file as one vectored write (`pwritev`) instead of one `pwrite` each: fewer system calls,
    /// and whole pages for the file system. Each job still gets its own completion.
    pub fn run_batch(jobs: Vec<DiskJob>, mut deliver: impl FnMut(Input)) {
        let mut jobs = jobs.into_iter().peekable();
        while let Some(job) = jobs.next() {
            let Some(mut end) = job.single_span_write_end() else {
                if let Some(input) = job.run() {
                    deliver(input);
                }
                continue;
            };
            let mut run = vec![job];
            let mut bytes = run[0].write_len();
            while let Some(next) = jobs.peek() {
                if bytes >= MAX_COALESCED_WRITE || !next.continues(&run[0], end) {
                    break;
                }
                let next = jobs.next().expect("peeked");
                end = next.single_span_write_end().expect("checked by continues");
                bytes += next.write_len();
                run.push(next);
            }
            if run.len() == 1 {
                if let Some(input) = run.pop().expect("one job").run() {
                    deliver(input);
                }
                continue;
            }
            let inner = Arc::clone(&run[0].storage.inner);
            let result = inner.write_run(&run);
            for job in run {
                if let Work::Write { req, .. } = job.work {
                    deliver(Input::DiskDone {
                        req,
                        result: result.clone().map(|()| DiskDone::Written),
                    });
                }
            }
        }
    }

    /// For a write of one file span (not padding): the file offset where it ends.
    fn single_span_write_end(&self) -> Option<u64> {
        match &self.work {
            Work::Write { spans, data, .. }
                if spans.len() == 1 && !spans[0].pad && spans[0].length as usize == data.len() =>
            {
                Some(spans[0].offset + u64::from(spans[0].length))
            }
            _ => None,
        }
    }

    fn write_len(&self) -> usize {
        match &self.work {
            Work::Write { data, .. } => data.len(),
            _ => 0,
        }
    }

    /// Whether this is a single-span write of `first`'s torrent and file starting at `end`.
    fn continues(&self, first: &DiskJob, end: u64) -> bool {
        let (
            Work::Write {
                files: a,
                spans: sa,
                ..
            },
            Work::Write {
                files: b,
                spans: sb,
                ..
            },
        ) = (&first.work, &self.work)
        else {
            return false;
        };
        self.single_span_write_end().is_some()
            && Arc::ptr_eq(&a.files, &b.files)
            && sa[0].file == sb[0].file
            && sb[0].offset == end
    }
}

/// Marks the files released if they are closing and idle; returns whether the caller must
/// release them now.
fn take_release(st: &mut TorrentState) -> bool {
    if st.closing && st.in_flight == 0 && !st.released {
        st.released = true;
        true
    } else {
        false
    }
}

/// A job's hold on its torrent: `Close` waits until every hold is dropped.
#[derive(Debug)]
struct InFlight {
    storage: Storage,
    files: Arc<TorrentFiles>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let release = {
            let mut st = lock(&self.files.state);
            st.in_flight -= 1;
            take_release(&mut st)
        };
        if release {
            self.storage.inner.release(&self.files);
        }
    }
}

fn not_open(torrent: TorrentId) -> StorageError {
    StorageError {
        file: None,
        message: format!("{torrent:?} is not open in storage (no DiskCmd::Open, or closed)"),
    }
}

/// `relative` under `root`, or `None` if the result would not lie strictly inside `root`.
///
/// [`SafePath`] already excludes every component that could escape; this is the second check.
fn path_under(root: &Path, relative: &SafePath) -> Option<PathBuf> {
    let joined = relative.join_under(root);
    is_strictly_inside(root, &joined).then_some(joined)
}

/// Whether `path` is `root` followed by one or more plain names (no `..`, no root, no prefix).
fn is_strictly_inside(root: &Path, path: &Path) -> bool {
    match path.strip_prefix(root) {
        Ok(rest) => {
            rest.components().next().is_some()
                && rest.components().all(|c| matches!(c, Component::Normal(_)))
        }
        Err(_) => false,
    }
}

impl TorrentFiles {
    /// Where file `index` lives.
    fn path(&self, index: usize) -> Result<PathBuf, StorageError> {
        let fail = |message: String| StorageError {
            file: Some(index),
            message,
        };
        let entry = self
            .info
            .files()
            .get(index)
            .ok_or_else(|| fail(format!("no file {index} in the torrent")))?;
        let root = self.root.as_deref().ok_or_else(|| {
            fail(format!(
                "no download directory registered for {:?} (Storage::register)",
                self.torrent
            ))
        })?;
        path_under(root, entry.path()).ok_or_else(|| {
            fail(format!(
                "refusing {:?}: it would lie outside {}",
                entry.path(),
                root.display()
            ))
        })
    }

    /// Checks that `spans` name real byte ranges of this torrent's files and add up to `total`.
    /// The session computes them, so a failure is a bug there; it is reported, not trusted.
    fn check_spans(&self, spans: &[FileSpan], total: usize) -> Result<(), StorageError> {
        let mut sum = 0u64;
        for s in spans {
            let Some(entry) = self.info.files().get(s.file) else {
                return Err(StorageError {
                    file: None,
                    message: format!(
                        "a span names file {} of a torrent with {} files",
                        s.file,
                        self.info.files().len()
                    ),
                });
            };
            let end = s.offset.checked_add(u64::from(s.length));
            if end.is_none_or(|end| end > entry.length()) || s.pad != entry.is_pad() {
                return Err(StorageError {
                    file: Some(s.file),
                    message: format!(
                        "span {s:?} does not fit the file (length {}, pad {})",
                        entry.length(),
                        entry.is_pad()
                    ),
                });
            }
            sum += u64::from(s.length);
        }
        if sum != total as u64 {
            return Err(StorageError {
                file: None,
                message: format!("spans cover {sum} bytes, the job has {total}"),
            });
        }
        Ok(())
    }
}

fn io_error(file: usize, what: &str, path: &Path, e: &io::Error) -> StorageError {
    StorageError {
        file: Some(file),
        message: format!("{what} {}: {e}", path.display()),
    }
}

fn vanished(file: usize, path: &Path) -> StorageError {
    StorageError {
        file: Some(file),
        message: format!(
            "{} vanished (deleted or replaced while the torrent was using it)",
            path.display()
        ),
    }
}

impl Inner {
    fn write(
        &self,
        t: &TorrentFiles,
        spans: &[FileSpan],
        data: &Bytes,
    ) -> Result<(), StorageError> {
        t.check_spans(spans, data.len())?;
        let mut at = 0usize;
        for span in spans {
            let chunk = &data[at..at + span.length as usize];
            at += span.length as usize;
            if span.pad {
                continue; // BEP 47: padding is never written
            }
            let file = self.handle(t, span.file, Access::Write)?;
            fileio::write_at(&file, chunk, span.offset).map_err(|e| {
                let path = t.path(span.file).unwrap_or_default();
                io_error(span.file, "cannot write", &path, &e)
            })?;
            lock(&t.state).dirty[span.file] = true;
        }
        Ok(())
    }

    /// Writes a run of single-span writes that continue each other in one file (see
    /// [`DiskJob::run_batch`]) with one vectored write.
    fn write_run(&self, run: &[DiskJob]) -> Result<(), StorageError> {
        let Work::Write { files, spans, .. } = &run[0].work else {
            unreachable!("run_batch builds runs of writes only");
        };
        let t = &files.files;
        let first = spans[0];
        for job in run {
            if let Work::Write { spans, data, .. } = &job.work {
                t.check_spans(spans, data.len())?;
            }
        }
        let bufs: Vec<&[u8]> = run
            .iter()
            .filter_map(|job| match &job.work {
                Work::Write { data, .. } => Some(&data[..]),
                _ => None,
            })
            .collect();
        let file = self.handle(t, first.file, Access::Write)?;
        fileio::write_all_vectored_at(&file, &bufs, first.offset).map_err(|e| {
            let path = t.path(first.file).unwrap_or_default();
            io_error(first.file, "cannot write", &path, &e)
        })?;
        lock(&t.state).dirty[first.file] = true;
        Ok(())
    }

    fn read(
        &self,
        t: &TorrentFiles,
        spans: &[FileSpan],
        length: u32,
    ) -> Result<Bytes, StorageError> {
        t.check_spans(spans, length as usize)?;
        // A reused buffer: every byte is read over, or zeroed for pad spans.
        let mut buf = self.read_bufs.take(length as usize);
        let mut at = 0usize;
        for span in spans {
            let range = at..at + span.length as usize;
            at = range.end;
            if span.pad {
                buf[range].fill(0);
                continue;
            }
            let file = self.handle(t, span.file, Access::Read)?;
            fileio::read_at(&file, &mut buf[range], span.offset).map_err(|e| {
                let path = t.path(span.file).unwrap_or_default();
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    StorageError {
                        file: Some(span.file),
                        message: format!(
                            "{} is shorter than the bytes asked for (never written?)",
                            path.display()
                        ),
                    }
                } else {
                    io_error(span.file, "cannot read", &path, &e)
                }
            })?;
        }
        Ok(self.read_bufs.freeze(buf))
    }

    /// A handle on file `index` good for `access`, from the cache or opened now.
    fn handle(
        &self,
        t: &TorrentFiles,
        index: usize,
        access: Access,
    ) -> Result<Arc<File>, StorageError> {
        let key = (t.uid, index);
        if let Some(file) = lock(&self.cache).get(key, access == Access::Write) {
            return Ok(file);
        }
        let path = t.path(index)?;
        let seen = lock(&t.state).seen[index];
        let opened = match access {
            Access::Read => OpenOptions::new().read(true).open(&path),
            // It existed before: do not create it again empty.
            Access::Write if seen => OpenOptions::new().read(true).write(true).open(&path),
            Access::Write => open_creating(&path),
        };
        let file = opened.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound if seen => vanished(index, &path),
            io::ErrorKind::NotFound => StorageError {
                file: Some(index),
                message: format!(
                    "{} does not exist (nothing written to it yet)",
                    path.display()
                ),
            },
            _ => io_error(index, "cannot open", &path, &e),
        })?;
        if access == Access::Write && !seen && self.config.preallocate == Preallocate::Full {
            let length = t.info.files()[index].length();
            fileio::allocate(&file, length)
                .map_err(|e| io_error(index, "cannot preallocate", &path, &e))?;
        }
        lock(&t.state).seen[index] = true;
        let file = Arc::new(file);
        let evicted = lock(&self.cache).insert(key, Arc::clone(&file), access == Access::Write);
        drop(evicted); // closed outside the lock
        Ok(file)
    }

    /// Fsyncs every file of `t` written since it was last synced.
    fn sync(&self, t: &TorrentFiles) -> Result<(), StorageError> {
        let dirty: Vec<usize> = {
            let st = lock(&t.state);
            (0..st.dirty.len()).filter(|&i| st.dirty[i]).collect()
        };
        for i in dirty {
            // Cleared first: a write racing with the sync marks the file again.
            lock(&t.state).dirty[i] = false;
            let result = self.sync_file(t, i);
            if result.is_err() {
                lock(&t.state).dirty[i] = true;
            }
            result?;
        }
        Ok(())
    }

    fn sync_file(&self, t: &TorrentFiles, index: usize) -> Result<(), StorageError> {
        let file = self.handle(t, index, Access::Write)?;
        let path = t.path(index)?;
        if !fileio::is_at(&file, &path) {
            return Err(vanished(index, &path));
        }
        file.sync_all()
            .map_err(|e| io_error(index, "cannot sync", &path, &e))
    }

    /// Closes a torrent whose jobs are all done: syncs what it wrote, drops its handles.
    fn release(&self, t: &TorrentFiles) {
        // DiskCmd::Close has no completion: a failure here has no one to tell (the torrent is
        // gone); `Storage::finish` is where sync errors are reported.
        let _ = self.sync(t);
        let handles = lock(&self.cache).remove_owner(t.uid);
        drop(handles);
    }
}

/// Opens `path` for reading and writing, creating it and its parent directories.
fn open_creating(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            open()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
