//! `scale torrents`: many idle torrents (no peers, no trackers contacted) in one session.
//!
//! Generates `count` distinct v1 torrents in memory (1 to 8 pieces of 16 to 256 KiB, one file
//! or three), parses them, then adds them one by one, timing each add (with draining the
//! session's outputs, or, on runtime-mio, with handing them to the workers). Memory per
//! torrent is the growth of the heap (counted exactly by the binary's allocator) and of the
//! process's resident memory (`/proc/self/status`) over the adds, divided by `count`; the
//! parsed `Info`s (the torrents' own descriptions: names, files, piece hashes) are allocated
//! before and reported apart.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitshoal_core::bencode::{put_bytes, DictWriter};
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::metainfo::{Info, Metainfo};
use bitshoal_core::rng::Rng;
use bitshoal_core::session::{AddTorrent, Config, Session};
use bitshoal_core::time::Instant as CoreInstant;
use bitshoal_mio::client::{Client, ClientConfig};

use crate::alloc;
use crate::stats::{self, Mem};

/// Where the session lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// `bitshoal_core::session::Session` alone, outputs drained and dropped.
    Core,
    /// `bitshoal_mio::client::Client`: session, event loop, disk and hash pools.
    Mio,
}

impl Runtime {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "core" => Ok(Self::Core),
            "mio" => Ok(Self::Mio),
            other => Err(format!("unknown runtime {other:?} (core, mio)")),
        }
    }
}

/// The `count` torrents' metainfo bytes: distinct names and random piece hashes, 1 to
/// `max_pieces` pieces of 16 to 256 KiB, every fourth torrent with three files.
pub(crate) fn generate(count: usize, max_pieces: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::from_seed(0x5ca1_e000);
    (0..count)
        .map(|i| {
            let piece_length: u64 = (16 * 1024) << (i % 5);
            let length = piece_length * rng.below(max_pieces.max(1)) + 1 + rng.below(piece_length);
            let pieces = length.div_ceil(piece_length) as usize;
            let mut hashes = vec![0u8; pieces * 20];
            rng.fill(&mut hashes);
            let name = format!("scale-{i:05}");
            let mut info = Vec::with_capacity(hashes.len() + 160);
            let mut d = DictWriter::new(&mut info);
            if i % 4 == 3 {
                let third = length / 3;
                let sizes = [third, third, length - 2 * third];
                let mut files = vec![b'l'];
                for (n, size) in sizes.iter().enumerate() {
                    let mut f = DictWriter::new(&mut files);
                    f.int(b"length", *size as i64);
                    let mut path = vec![b'l'];
                    put_bytes(&mut path, format!("part{n}.bin").as_bytes());
                    path.push(b'e');
                    f.raw(b"path", &path);
                    f.finish();
                }
                files.push(b'e');
                d.raw(b"files", &files);
            } else {
                d.int(b"length", length as i64);
            }
            d.bytes(b"name", name.as_bytes());
            d.int(b"piece length", piece_length as i64);
            d.bytes(b"pieces", &hashes);
            d.finish();
            let mut out = Vec::with_capacity(info.len() + 16);
            let mut top = DictWriter::new(&mut out);
            top.raw(b"info", &info);
            top.finish();
            out
        })
        .collect()
}

/// Runs the benchmark on `runtime`, printing one markdown row.
pub(crate) fn run(
    runtime: Runtime,
    count: usize,
    max_pieces: u64,
    seeding: bool,
    dir: &Path,
) -> io::Result<()> {
    let bytes = generate(count, max_pieces);
    let heap0 = alloc::live_bytes();
    let infos: Vec<Arc<Info>> = bytes
        .iter()
        .map(|b| {
            Metainfo::from_bytes(b)
                .map(|m| Arc::new(m.into_info()))
                .map_err(|e| io::Error::other(e.to_string()))
        })
        .collect::<io::Result<_>>()?;
    let info_bytes = alloc::live_bytes().saturating_sub(heap0);
    drop(bytes);
    let pieces: u64 = infos
        .iter()
        .map(|i| u64::from(i.layout().piece_count()))
        .sum();

    let mut times = Vec::with_capacity(count);
    let (before, after, tick) = match runtime {
        Runtime::Core => {
            let mut session = Session::new(Config {
                rng_seed: 1,
                ..Config::default()
            });
            let before = Mem::now();
            let now = CoreInstant::ZERO;
            for info in &infos {
                let t = Instant::now();
                let mut add = AddTorrent::new(Arc::clone(info));
                if seeding {
                    add = add.with_have(Bitfield::full(info.layout().piece_count()));
                }
                session
                    .add_torrent(now, add)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                while session.poll_output().is_some() {}
                times.push(t.elapsed());
            }
            let after = Mem::now();
            // One idle timer pass over the full session, as the runtime would run it.
            let mut ticks = Vec::new();
            for k in 1..=50u64 {
                let t = Instant::now();
                session.handle_timeout(now + Duration::from_secs(k));
                while session.poll_output().is_some() {}
                let _ = session.poll_timeout();
                ticks.push(t.elapsed());
            }
            (before, after, stats::median(&mut ticks))
        }
        Runtime::Mio => {
            std::fs::create_dir_all(dir)?;
            let mut client = Client::new(ClientConfig {
                listen: None,
                ..ClientConfig::default()
            })?;
            client.turn(Duration::ZERO)?;
            let before = Mem::now();
            for info in &infos {
                let t = Instant::now();
                let have = seeding.then(|| Bitfield::full(info.layout().piece_count()));
                client
                    .add_torrent(Arc::clone(info), dir.to_path_buf(), have)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                times.push(t.elapsed());
            }
            // Let the workers take their `Open`s, and the loop settle.
            let settle = Instant::now() + Duration::from_millis(300);
            while Instant::now() < settle {
                client.turn(Duration::from_millis(20))?;
            }
            let after = Mem::now();
            let mut ticks = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                client.turn(Duration::ZERO)?;
                ticks.push(t.elapsed());
            }
            (before, after, stats::median(&mut ticks))
        }
    };
    let total: Duration = times.iter().sum();
    let median = stats::median(&mut times);
    let p99 = stats::percentile(&times, 99);
    let n = count as f64;
    println!(
        "| {}{} | {count} | {pieces} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        match runtime {
            Runtime::Core => "core `Session`",
            Runtime::Mio => "runtime-mio `Client`",
        },
        if seeding { ", seeding" } else { "" },
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        total.as_secs_f64() * 1e3,
        tick.as_secs_f64() * 1e3,
        info_bytes as f64 / n,
        after.heap.saturating_sub(before.heap) as f64 / n,
        after.blocks.saturating_sub(before.blocks) as f64 / n,
        after.rss.saturating_sub(before.rss) as f64 / n,
        after.anon.saturating_sub(before.anon) as f64 / n,
        after.rss as f64 / 1024.0,
    );
    drop(infos);
    Ok(())
}

/// The header of the rows [`run`] prints.
pub(crate) const HEADER: &str = "| session | torrents | pieces | µs/add median | µs/add p99 | total ms | idle turn ms | Info B/torrent | heap B/torrent | heap blocks/torrent | RSS B/torrent | anon B/torrent | RSS KiB after |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";
