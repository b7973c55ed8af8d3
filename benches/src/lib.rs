//! Shared fixtures for bitshoal's benchmarks: large, valid torrents built in memory.
//!
//! The same bytes are written to disk by the `fixtures` binary so that other clients
//! (libtorrent's `torrent_info`, via `benches/scripts/lt_load.py`) load exactly what bitshoal
//! loads, in the same run.

use bitshoal_core::bencode::{put_bytes, DictWriter};
use bitshoal_core::merkle;
use bitshoal_core::rng::Rng;

/// A v1 single-file torrent with `pieces` pieces of 256 KiB and random piece hashes.
pub fn large_v1_torrent(pieces: usize) -> Vec<u8> {
    let piece_length: u64 = 256 * 1024;
    let mut rng = Rng::from_seed(0x5eed_0001);
    let mut hashes = vec![0u8; pieces * 20];
    rng.fill(&mut hashes);
    let length = piece_length * pieces as u64 - 1234;

    let mut info = Vec::with_capacity(hashes.len() + 128);
    let mut d = DictWriter::new(&mut info);
    d.int(b"length", length as i64);
    d.bytes(b"name", b"large-v1.bin");
    d.int(b"piece length", piece_length as i64);
    d.bytes(b"pieces", &hashes);
    d.finish();
    wrap(&info, None)
}

/// A v2 multi-file torrent with `files` files spread over directories, sizes from 1 byte to
/// 2 MiB, 64 KiB pieces, and consistent (random-leaf) piece layers.
pub fn large_v2_torrent(files: usize) -> Vec<u8> {
    let piece_length: u64 = 64 * 1024;
    let height =
        merkle::piece_layer_height(piece_length).expect("64 KiB is a valid v2 piece length");
    let mut rng = Rng::from_seed(0x5eed_0002);

    // (directory, file name, length, pieces root, piece layer)
    let mut entries = Vec::with_capacity(files);
    for i in 0..files {
        let length = 1 + rng.below(2 * 1024 * 1024);
        let pieces = length.div_ceil(piece_length) as usize;
        let mut layer = vec![[0u8; 32]; pieces];
        for h in &mut layer {
            rng.fill(h);
        }
        let (root, layer) = if pieces > 1 {
            (merkle::root_from_layer(&layer, height), layer)
        } else {
            (layer[0], Vec::new())
        };
        entries.push((
            format!("dir{:03}", i % 100),
            format!("file{i:05}.dat"),
            length,
            root,
            layer,
        ));
    }
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

    let mut tree = Vec::new();
    tree.push(b'd');
    let mut i = 0;
    while i < entries.len() {
        let dir = entries[i].0.clone();
        put_bytes(&mut tree, dir.as_bytes());
        tree.push(b'd');
        while i < entries.len() && entries[i].0 == dir {
            let (_, name, length, root, _) = &entries[i];
            put_bytes(&mut tree, name.as_bytes());
            tree.push(b'd');
            put_bytes(&mut tree, b"");
            let mut leaf = DictWriter::new(&mut tree);
            leaf.int(b"length", *length as i64);
            leaf.bytes(b"pieces root", root);
            leaf.finish();
            tree.push(b'e');
            i += 1;
        }
        tree.push(b'e');
    }
    tree.push(b'e');

    let mut info = Vec::new();
    let mut d = DictWriter::new(&mut info);
    d.raw(b"file tree", &tree);
    d.int(b"meta version", 2);
    d.bytes(b"name", b"large-v2");
    d.int(b"piece length", piece_length as i64);
    d.finish();

    let mut layers: Vec<(&[u8; 32], Vec<u8>)> = entries
        .iter()
        .filter(|e| !e.4.is_empty())
        .map(|e| (&e.3, e.4.concat()))
        .collect();
    layers.sort_by(|a, b| a.0.cmp(b.0));
    let mut piece_layers = Vec::new();
    let mut pl = DictWriter::new(&mut piece_layers);
    for (root, layer) in &layers {
        pl.bytes(&root[..], layer);
    }
    pl.finish();
    wrap(&info, Some(&piece_layers))
}

fn wrap(info: &[u8], piece_layers: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(info.len() + piece_layers.map_or(0, <[u8]>::len) + 128);
    let mut top = DictWriter::new(&mut out);
    top.bytes(b"announce", b"http://127.0.0.1:6969/announce");
    top.bytes(b"created by", b"bitshoal-benches");
    top.raw(b"info", info);
    if let Some(layers) = piece_layers {
        top.raw(b"piece layers", layers);
    }
    top.finish();
    out
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM:`, `RssAnon:`, ...), in bytes; `pid` may be
/// `self`. `None` when the process is gone or the field is missing.
pub fn proc_status_field(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitshoal_core::bencode;

    #[test]
    fn fixtures_are_strict_bencode_of_the_right_size() {
        let v1 = large_v1_torrent(1000);
        let doc = bencode::decode(&v1).expect("v1 fixture decodes");
        let info = doc
            .as_dict()
            .unwrap()
            .get(b"info")
            .unwrap()
            .as_dict()
            .unwrap();
        assert_eq!(
            info.get(b"pieces").unwrap().as_bytes().unwrap().len(),
            20_000
        );

        let v2 = large_v2_torrent(300);
        let doc = bencode::decode(&v2).expect("v2 fixture decodes");
        let tree = doc
            .as_dict()
            .unwrap()
            .get(b"info")
            .unwrap()
            .as_dict()
            .unwrap();
        let tree = tree.get(b"file tree").unwrap().as_dict().unwrap();
        let files: usize = tree.iter().map(|(_, d)| d.as_dict().unwrap().len()).sum();
        assert_eq!(files, 300);
    }
}
