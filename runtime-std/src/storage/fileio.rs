//! Positional file IO and space reservation, per platform.

use std::fs::File;
use std::io;
use std::path::Path;

/// Reads exactly `buf.len()` bytes at `offset`, without moving a shared cursor.
#[cfg(unix)]
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

/// Writes all of `buf` at `offset`, without moving a shared cursor.
#[cfg(unix)]
pub(super) fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

/// Writes all of `bufs`, back to back, at `offset`: one `pwritev` per 1,024 buffers (IOV_MAX)
/// when the file system takes them whole.
#[cfg(unix)]
pub(super) fn write_all_vectored_at(
    file: &File,
    bufs: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    const IOV_MAX: usize = 1024;
    let mut slices: Vec<io::IoSlice<'_>> = bufs.iter().map(|b| io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let batch = rest.len().min(IOV_MAX);
        match rustix::io::pwritev(file, &rest[..batch], offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                io::IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e == rustix::io::Errno::INTR => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes all of `bufs`, back to back, at `offset`.
#[cfg(windows)]
pub(super) fn write_all_vectored_at(
    file: &File,
    bufs: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    for buf in bufs {
        write_at(file, buf, offset)?;
        offset += buf.len() as u64;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset` (`seek_read` moves the handle's cursor, which
/// nothing here relies on).
#[cfg(windows)]
pub(super) fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` at `offset`.
#[cfg(windows)]
pub(super) fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reserves `length` bytes for `file` (`fallocate`): blocks are allocated, reads give zeros.
/// File systems without it fall back to [`File::set_len`].
#[cfg(target_os = "linux")]
pub(super) fn allocate(file: &File, length: u64) -> io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    use rustix::io::Errno;
    if length == 0 {
        return Ok(());
    }
    match fallocate(file, FallocateFlags::empty(), 0, length) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::OPNOTSUPP => grow_to(file, length),
        Err(e) => Err(e.into()),
    }
}

/// Extends `file` to `length` bytes (the file system decides whether blocks are reserved).
#[cfg(not(target_os = "linux"))]
pub(super) fn allocate(file: &File, length: u64) -> io::Result<()> {
    grow_to(file, length)
}

/// Extends `file` to at least `length` bytes, never shrinking it.
fn grow_to(file: &File, length: u64) -> io::Result<()> {
    if file.metadata()?.len() < length {
        file.set_len(length)?;
    }
    Ok(())
}

/// Whether `file` is still the file found at `path` (not deleted, not replaced).
#[cfg(unix)]
pub(super) fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether a file is still at `path` (identity is not compared on this platform).
#[cfg(not(unix))]
pub(super) fn is_at(_file: &File, path: &Path) -> bool {
    path.is_file()
}
