//! Torrents for tests elsewhere in the crate.

use sha1::{Digest as _, Sha1};

use super::Info;
use crate::bencode::DictWriter;

/// A v1 multi-file torrent named `multi` over `data`, cut into files `f0`, `f1`, ... of
/// `sizes` bytes, with pieces of `piece_length` bytes.
pub(crate) fn multi_file_info(data: &[u8], sizes: &[usize], piece_length: u32) -> Info {
    assert_eq!(sizes.iter().sum::<usize>(), data.len());
    let mut pieces = Vec::new();
    for chunk in data.chunks(piece_length as usize) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut files = b"l".to_vec();
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("f{i}");
        files.extend_from_slice(
            format!("d6:lengthi{size}e4:pathl{}:{name}ee", name.len()).as_bytes(),
        );
    }
    files.push(b'e');
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.raw(b"files", &files);
    d.bytes(b"name", b"multi");
    d.int(b"piece length", i64::from(piece_length));
    d.bytes(b"pieces", &pieces);
    d.finish();
    Info::from_bytes(&raw).expect("test torrent is valid")
}
