//! The payloads (single files of pseudo-random bytes) and their torrents (1 MiB pieces; v1
//! unless `--v2` or `--hybrid`).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bitshoal_core::create::Version;
use bitshoal_std::create::{create_torrent, CreateOptions};

/// A payload file and its torrent.
pub(crate) struct Payload {
    /// The file, under the seed directory.
    pub(crate) file: PathBuf,
    /// The file name (the torrent's name).
    pub(crate) name: String,
    /// The `.torrent` file.
    pub(crate) torrent: PathBuf,
    /// The size in bytes.
    pub(crate) size: u64,
}

/// The piece length of every benchmark torrent.
pub(crate) const PIECE_LENGTH: u64 = 1024 * 1024;

/// Writes `size` pseudo-random bytes to `seed_dir/name` and a v1 torrent of it (announcing to
/// `tracker`) to `dir/name.torrent`.
#[allow(dead_code)] // the `scale` binary includes this module and makes v1 payloads
pub(crate) fn make(
    dir: &Path,
    seed_dir: &Path,
    name: &str,
    size: u64,
    tracker: &str,
) -> io::Result<Payload> {
    make_version(dir, seed_dir, name, size, tracker, Version::V1)
}

/// [`make`] with a torrent of `version` (v1, BEP 52 v2-only or hybrid).
pub(crate) fn make_version(
    dir: &Path,
    seed_dir: &Path,
    name: &str,
    size: u64,
    tracker: &str,
    version: Version,
) -> io::Result<Payload> {
    fs::create_dir_all(seed_dir)?;
    let file = seed_dir.join(name);
    let mut out = BufWriter::with_capacity(4 << 20, File::create(&file)?);
    // xorshift64*: incompressible enough, and fast to make.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ size;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let options = CreateOptions {
        version,
        piece_length: Some(PIECE_LENGTH),
        trackers: vec![vec![tracker.to_string()]],
        created_by: Some("bitshoal e2e bench".into()),
        ..CreateOptions::default()
    };
    let created =
        create_torrent(&file, &options, |_, _| {}).map_err(|e| io::Error::other(e.to_string()))?;
    let torrent = dir.join(format!("{name}.torrent"));
    fs::write(&torrent, &created.bytes)?;
    Ok(Payload {
        file,
        name: name.to_string(),
        torrent,
        size,
    })
}

/// Whether `a` and `b` hold the same bytes.
pub(crate) fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 4 << 20], vec![0u8; 4 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Parses a size like `1GiB`, `64MiB`, `512KiB` or a plain number of bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("bad size {s:?}"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(factor)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("bad size {s:?}"))
}
