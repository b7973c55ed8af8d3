//! Resume files: what the core cannot do for [`ResumeData`] (read file times, touch the
//! disk), for both runtimes.
//!
//! # Where resume files live
//!
//! One file per torrent, `<state dir>/<info-hash>.resume`, where `<info-hash>` is the 40 hex
//! digits of the torrent's wire id (its v1 info-hash, or the truncated v2 hash) and the state
//! directory is the application's own (for example `$XDG_STATE_HOME/bitshoal`). Never put it
//! inside a download folder: resume files are not the torrent's content, and a download
//! folder may be shared or deleted with the data.
//!
//! Files are written atomically ([`save`]): to a temporary file in the same directory, synced,
//! then renamed over the old one, so a crash leaves the old file or the new one, never half
//! of either.
//!
//! # Saving
//!
//! [`read_files`] reads each file's size and time and then the clock, for
//! [`Session::resume_data`](bitshoal_core::session::Session::resume_data); the client calls it
//! and the session in one go, so that no write is issued in between. Saving is safe at any
//! moment of a download: see [`bitshoal_core::resume`] for why a kill right after a save
//! loses no verified piece.
//!
//! # Adding a torrent with resume data
//!
//! [`check_mode`] picks the [`CheckMode`] for a torrent whose files live under a download
//! directory: the saved resume data with the files' current sizes and times (the session
//! trusts the verified pieces of unchanged files and checks the rest that may be on disk; see
//! [`ResumeData::plan`](bitshoal_core::resume::ResumeData::plan)); a full check if there is
//! no usable resume file (missing, damaged, of an older format) but some of the files exist;
//! nothing to check if none exists.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::id::InfoHashes;
use bitshoal_core::metainfo::Info;
use bitshoal_core::resume::{FileStat, ResumeData, ResumeError};
use bitshoal_core::session::CheckMode;

/// Each file's size and modification time (nanoseconds since the Unix epoch) under `root`,
/// laid out as the torrent's storage lays it out; `None` for a missing file and for pad files
/// (which are never created).
pub fn file_stats(root: &Path, info: &Info) -> Vec<Option<FileStat>> {
    info.files()
        .iter()
        .map(|f| {
            if f.is_pad() {
                return None;
            }
            let meta = fs::metadata(f.path().join_under(root)).ok()?;
            if !meta.is_file() {
                return None;
            }
            let mtime = meta.modified().map_or(0, nanos_since_epoch);
            Some(FileStat {
                size: meta.len(),
                mtime,
            })
        })
        .collect()
}

/// [`file_stats`], then the wall clock in the same unit: what
/// [`Session::resume_data`](bitshoal_core::session::Session::resume_data) takes.
pub fn read_files(root: &Path, info: &Info) -> (Vec<Option<FileStat>>, i64) {
    let stats = file_stats(root, info);
    (stats, nanos_since_epoch(SystemTime::now()))
}

/// `t` in nanoseconds since the Unix epoch (negative before it), saturating.
fn nanos_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Where the resume file of the torrent with `hashes` lives in `state_dir`.
pub fn resume_path(state_dir: &Path, hashes: &InfoHashes) -> PathBuf {
    let hex: String = hashes
        .wire_id()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    state_dir.join(format!("{hex}.resume"))
}

/// Writes `data` to its resume file in `state_dir` atomically (temporary file, sync, rename),
/// creating the directory if needed. Returns the file's path.
pub fn save(state_dir: &Path, data: &ResumeData) -> io::Result<PathBuf> {
    fs::create_dir_all(state_dir)?;
    let path = resume_path(state_dir, &data.info_hashes);
    let tmp = path.with_extension("resume.tmp");
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&data.encode())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        // The rename itself is durable once the directory is synced (best effort: not every
        // platform can open a directory).
        if let Ok(dir) = File::open(state_dir) {
            let _ = dir.sync_all();
        }
        Ok(path.clone())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Why a resume file could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file exists but could not be read.
    Io(io::Error),
    /// The file is damaged.
    Decode(ResumeError),
    /// The file is for another torrent (renamed or copied by hand).
    OtherTorrent,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the resume file: {e}"),
            Self::Decode(e) => write!(f, "damaged resume file: {e}"),
            Self::OtherTorrent => f.write_str("the resume file belongs to another torrent"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads the resume file of the torrent with `hashes` from `state_dir`: `Ok(None)` if there is
/// none.
pub fn load(state_dir: &Path, hashes: &InfoHashes) -> Result<Option<ResumeData>, LoadError> {
    let bytes = match fs::read(resume_path(state_dir, hashes)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let data = ResumeData::decode(&bytes).map_err(LoadError::Decode)?;
    if data.info_hashes != *hashes {
        return Err(LoadError::OtherTorrent);
    }
    Ok(Some(data))
}

/// How to add a torrent whose files live (or will live) under `root`, given the resume files in
/// `state_dir` (see the [module documentation](self)). A damaged or foreign resume file is
/// ignored: the files are checked instead, which is always safe.
pub fn check_mode(root: &Path, info: &Info, state_dir: &Path) -> CheckMode {
    let current_files = file_stats(root, info);
    match load(state_dir, &info.hashes()) {
        Ok(Some(data)) => CheckMode::Resume {
            data,
            current_files,
        },
        _ if current_files.iter().any(Option::is_some) => CheckMode::Full,
        _ => CheckMode::Trust(Bitfield::new(info.layout().piece_count())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fixture;
    use bitshoal_core::create::Version;

    /// Resume data of `f`'s source files, every piece verified.
    fn complete(f: &Fixture) -> ResumeData {
        let (files, files_read_at) = read_files(f.source.path(), &f.info);
        let pieces = f.info.layout().piece_count();
        ResumeData {
            info_hashes: f.info.hashes(),
            have: Bitfield::full(pieces),
            unverified: Bitfield::new(pieces),
            files,
            files_read_at,
            piece_layers: Vec::new(),
        }
    }

    #[test]
    fn save_and_load_round_trip_atomically() {
        let f = Fixture::new("t", &[("a", 40_000), ("b", 10)], Version::V1, 16384);
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("state");
        let data = complete(&f);
        assert!(data.files.iter().all(Option::is_some));
        // The clock was read after the files were written.
        assert!(data
            .files
            .iter()
            .flatten()
            .all(|f| f.mtime <= data.files_read_at));
        assert_eq!(load(&dir, &f.info.hashes()).unwrap(), None);
        let path = save(&dir, &data).unwrap();
        assert_eq!(path, resume_path(&dir, &f.info.hashes()));
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(".resume"));
        assert_eq!(load(&dir, &f.info.hashes()).unwrap(), Some(data.clone()));
        // Only the resume file is left: no temporary file.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A damaged file is an error, not a panic.
        fs::write(&path, b"d5:files").unwrap();
        assert!(matches!(
            load(&dir, &f.info.hashes()),
            Err(LoadError::Decode(_))
        ));
    }

    #[test]
    fn check_mode_follows_the_files_and_the_resume_file() {
        let f = Fixture::new("t", &[("a", 40_000), ("b", 10)], Version::V1, 16384);
        let state = tempfile::tempdir().unwrap();
        // Nothing downloaded yet: nothing to check.
        assert!(matches!(
            check_mode(f.download.path(), &f.info, state.path()),
            CheckMode::Trust(b) if b.is_clear()
        ));
        // Files there, no resume file: check them.
        assert_eq!(
            check_mode(f.source.path(), &f.info, state.path()),
            CheckMode::Full
        );
        // A resume file: resume with the current stats.
        let data = complete(&f);
        save(state.path(), &data).unwrap();
        match check_mode(f.source.path(), &f.info, state.path()) {
            CheckMode::Resume {
                data: d,
                current_files,
            } => {
                assert_eq!(d, data);
                assert_eq!(current_files, data.files);
            }
            other => panic!("{other:?}"),
        }
        // A file grows: its stat differs.
        let a = f.info.files()[0].path().join_under(f.source.path());
        fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        let now = file_stats(f.source.path(), &f.info);
        assert_ne!(now, data.files);
        assert_eq!(now[1], data.files[1]);
    }
}
