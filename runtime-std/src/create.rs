//! Making a `.torrent` from files on disk: walk, read, hash on worker threads, assemble.
//!
//! The layout and the encoding come from [`bitshoal_core::create`]; this module does the IO.
//!
//! # What is included
//!
//! - A file path makes a single-file torrent; a directory makes a multi-file torrent of every
//!   regular file below it, hidden ones included, each directory's entries in bytewise name order.
//! - **Symbolic links are followed**: a link to a file is stored as a regular file with the
//!   target's contents; a link to a directory is walked like a directory. A dangling link, a link
//!   loop, a name that is not UTF-8 and anything that is neither a file nor a directory (socket,
//!   FIFO, device) stop creation with an error: nothing is skipped silently.
//! - Empty directories are not recorded (a torrent holds only files).
//! - The executable bit (any of `0o111` on Unix) is recorded as BEP 47 attribute `x`.
//!
//! Files are read once, front to back, in chunks of one piece; SHA-1 and SHA-256 run on worker
//! threads while the next chunk is read. A file that is shorter when read than when walked is an
//! error ([`CreateTorrentError::FileChanged`]); bytes appended after the walk are ignored.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use bitshoal_core::create::{
    Contents, CreateError, CreatedTorrent, Creator, FileAttrs, HashJob, InputFile, Plan,
    TorrentSpec, Version,
};
use bitshoal_core::merkle::{leaves_of, Hash256};
use sha1::{Digest, Sha1};

/// How to make a torrent from a path; everything but the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// v1, v2 or hybrid (the default: readable by every client).
    pub version: Version,
    /// The piece length; `None` picks one like libtorrent ([`bitshoal_core::create::auto_piece_length`]).
    pub piece_length: Option<u64>,
    /// The torrent's name; `None` uses the file or directory name.
    pub name: Option<String>,
    /// Tracker URLs in tiers (BEP 12).
    pub trackers: Vec<Vec<String>>,
    /// Web seed URLs (BEP 19).
    pub web_seeds: Vec<String>,
    /// Private torrent (BEP 27).
    pub private: bool,
    /// A comment.
    pub comment: Option<String>,
    /// The `created by` string.
    pub created_by: Option<String>,
    /// The `creation date` in seconds since the Unix epoch (the caller reads the clock).
    pub creation_date: Option<i64>,
    /// Hashing threads; 0 uses one per available core.
    pub threads: usize,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            version: Version::Hybrid,
            piece_length: None,
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            threads: 0,
        }
    }
}

/// Why a torrent could not be made from a path.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateTorrentError {
    /// Reading `path` failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file or directory name is not UTF-8, which torrent paths must be.
    NotUtf8 {
        /// The offending path.
        path: PathBuf,
    },
    /// Something that is neither a regular file nor a directory (socket, FIFO, device).
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// A symbolic link leads back to a directory that contains it.
    SymlinkLoop {
        /// The link.
        path: PathBuf,
    },
    /// A file became shorter between the walk and the read.
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// The layout or metadata was refused by the core.
    Spec(CreateError),
}

impl fmt::Display for CreateTorrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NotUtf8 { path } => write!(f, "{}: name is not UTF-8", path.display()),
            Self::UnsupportedFileType { path } => {
                write!(f, "{}: not a regular file or directory", path.display())
            }
            Self::SymlinkLoop { path } => write!(f, "{}: symbolic link loop", path.display()),
            Self::FileChanged { path } => {
                write!(f, "{}: file got shorter while hashing", path.display())
            }
            Self::Spec(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CreateTorrentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Spec(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CreateError> for CreateTorrentError {
    fn from(e: CreateError) -> Self {
        Self::Spec(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CreateTorrentError + '_ {
    move |source| CreateTorrentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a torrent of the file or directory at `path`.
///
/// `progress(hashed, total)` is called on the calling thread with the number of file bytes
/// hashed so far, first with 0 and last with `total`.
pub fn create_torrent(
    path: &Path,
    options: &CreateOptions,
    progress: impl FnMut(u64, u64),
) -> Result<CreatedTorrent, CreateTorrentError> {
    let plan = plan_for_path(path, options)?;
    hash_plan(&plan, path, options.threads, progress)
}

/// Walks `path` and lays out the torrent, without reading any file.
pub fn plan_for_path(path: &Path, options: &CreateOptions) -> Result<Plan, CreateTorrentError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let name = match &options.name {
        Some(name) => name.clone(),
        None => {
            let full = fs::canonicalize(path).map_err(io_err(path))?;
            let base = full.file_name().unwrap_or(full.as_os_str());
            base.to_str()
                .ok_or_else(|| CreateTorrentError::NotUtf8 { path: full.clone() })?
                .to_string()
        }
    };
    let contents = if meta.is_file() {
        Contents::SingleFile {
            length: meta.len(),
            attrs: attrs_of(&meta),
        }
    } else if meta.is_dir() {
        let mut files = Vec::new();
        let mut ancestors = HashSet::new();
        walk(path, &mut Vec::new(), &mut ancestors, &mut files)?;
        Contents::Directory(files)
    } else {
        return Err(CreateTorrentError::UnsupportedFileType {
            path: path.to_path_buf(),
        });
    };
    let spec = TorrentSpec {
        name,
        contents,
        version: options.version,
        piece_length: options.piece_length,
        trackers: options.trackers.clone(),
        web_seeds: options.web_seeds.clone(),
        private: options.private,
        comment: options.comment.clone(),
        created_by: options.created_by.clone(),
        creation_date: options.creation_date,
    };
    Ok(Plan::new(spec)?)
}

#[cfg(unix)]
fn attrs_of(meta: &fs::Metadata) -> FileAttrs {
    use std::os::unix::fs::PermissionsExt;
    FileAttrs {
        executable: meta.permissions().mode() & 0o111 != 0,
        hidden: false,
    }
}

#[cfg(not(unix))]
fn attrs_of(_meta: &fs::Metadata) -> FileAttrs {
    FileAttrs::default()
}

/// A directory's identity, to notice a symbolic link that leads back up.
#[cfg(unix)]
fn dir_key(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_key(_meta: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Adds every file below `dir` (at `prefix` inside the torrent) to `out`, in name order.
fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    ancestors: &mut HashSet<(u64, u64)>,
    out: &mut Vec<InputFile>,
) -> Result<(), CreateTorrentError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    let key = dir_key(&meta);
    if cfg!(unix) && !ancestors.insert(key) {
        return Err(CreateTorrentError::SymlinkLoop {
            path: dir.to_path_buf(),
        });
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateTorrentError::NotUtf8 { path: path.clone() })?;
        entries.push((name, path));
    }
    entries.sort();
    for (name, path) in entries {
        // fs::metadata follows symbolic links: a dangling one is an error here.
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        prefix.push(name);
        if meta.is_file() {
            out.push(InputFile {
                path: prefix.clone(),
                length: meta.len(),
                attrs: attrs_of(&meta),
            });
        } else if meta.is_dir() {
            walk(&path, prefix, ancestors, out)?;
        } else {
            return Err(CreateTorrentError::UnsupportedFileType { path });
        }
        prefix.pop();
    }
    ancestors.remove(&key);
    Ok(())
}

/// Where a planned file lives on disk: `root` itself for a single-file torrent.
fn disk_path(plan: &Plan, root: &Path, file: usize) -> PathBuf {
    if plan.is_single_file() {
        return root.to_path_buf();
    }
    let mut p = root.to_path_buf();
    p.extend(plan.files()[file].path());
    p
}

/// One job on its way to a worker, with the bytes it read.
struct Work {
    job: HashJob,
    data: Vec<u8>,
}

/// A worker's answer; the buffer comes back for reuse.
struct Done {
    job: HashJob,
    data: Vec<u8>,
    v1: Option<[u8; 20]>,
    leaves: Option<Vec<Hash256>>,
}

fn hash_work(work: Work) -> Done {
    const ZEROS: [u8; 16384] = [0; 16384];
    let Work { job, data } = work;
    let v1 = job.v1_piece.map(|_| {
        let mut h = Sha1::new();
        h.update(&data);
        let mut pad = job.zero_pad as usize;
        while pad > 0 {
            let n = pad.min(ZEROS.len());
            h.update(&ZEROS[..n]);
            pad -= n;
        }
        h.finalize().into()
    });
    let leaves = job.v2_piece.map(|_| leaves_of(&data));
    Done {
        job,
        data,
        v1,
        leaves,
    }
}

/// Reads the files of `plan` (found under `root`, or `root` itself for a single file), hashes
/// them on `threads` worker threads (0: one per core) and assembles the torrent.
///
/// `progress(hashed, total)` is called on the calling thread, first with 0, last with `total`.
pub fn hash_plan(
    plan: &Plan,
    root: &Path,
    threads: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<CreatedTorrent, CreateTorrentError> {
    let threads = if threads == 0 {
        thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let total = plan.payload_size();
    let mut creator = Creator::new(plan.clone());
    let mut hashed = 0u64;
    progress(0, total);

    let mut apply = |done: Done,
                     creator: &mut Creator,
                     spare: &mut Vec<Vec<u8>>|
     -> Result<(), CreateTorrentError> {
        if let (Some(p), Some(d)) = (done.job.v1_piece, done.v1) {
            creator.add_v1_piece(p, d)?;
        }
        if let (Some(p), Some(l)) = (done.job.v2_piece, &done.leaves) {
            creator.add_v2_piece(p, l)?;
        }
        hashed += done.job.data_length();
        progress(hashed, total);
        spare.push(done.data);
        Ok(())
    };

    thread::scope(|s| -> Result<(), CreateTorrentError> {
        let (work_tx, work_rx) = mpsc::sync_channel::<Work>(threads);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            s.spawn(move || loop {
                // The lock is held only while waiting for the next job, not while hashing.
                let next = work_rx
                    .lock()
                    .expect("no worker panics while waiting")
                    .recv();
                let Ok(work) = next else { break };
                if done_tx.send(hash_work(work)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);

        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut reader = SequentialReader::default();
        let read_all = (|| -> Result<(), CreateTorrentError> {
            for job in plan.jobs() {
                let mut data = spare.pop().unwrap_or_default();
                data.clear();
                for span in &job.spans {
                    reader.read(plan, root, span.file, span.offset, span.length, &mut data)?;
                }
                work_tx
                    .send(Work { job, data })
                    .expect("workers live until the job channel closes");
                while let Ok(done) = done_rx.try_recv() {
                    apply(done, &mut creator, &mut spare)?;
                }
            }
            Ok(())
        })();
        // Closing the job channel lets the workers finish what they have, then stop.
        drop(work_tx);
        read_all?;
        for done in done_rx {
            apply(done, &mut creator, &mut spare)?;
        }
        Ok(())
    })?;
    Ok(creator.finish()?)
}

/// Reads planned files front to back, keeping the current one open.
#[derive(Default)]
struct SequentialReader {
    open: Option<(usize, PathBuf, BufReader<File>, u64)>,
}

impl SequentialReader {
    /// Appends `length` bytes of file `file` from `offset` to `out`. Offsets only grow.
    fn read(
        &mut self,
        plan: &Plan,
        root: &Path,
        file: usize,
        offset: u64,
        length: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), CreateTorrentError> {
        if self.open.as_ref().is_none_or(|(f, ..)| *f != file) {
            let path = disk_path(plan, root, file);
            let f = File::open(&path).map_err(io_err(&path))?;
            self.open = Some((file, path, BufReader::with_capacity(1 << 20, f), 0));
        }
        let (_, path, reader, pos) = self.open.as_mut().expect("opened above");
        debug_assert_eq!(*pos, offset, "jobs read each file front to back");
        let start = out.len();
        out.resize(start + length as usize, 0);
        match reader.read_exact(&mut out[start..]) {
            Ok(()) => {
                *pos += length;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(CreateTorrentError::FileChanged { path: path.clone() })
            }
            Err(e) => Err(CreateTorrentError::Io {
                path: path.clone(),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
