//! Writes the benchmark torrents to a folder, so other clients can load the very same files.
//!
//! `cargo run --release -p bitshoal-benches --bin fixtures -- OUT_DIR`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/bench-fixtures".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in [
        (
            "v1-100k-pieces.torrent",
            bitshoal_benches::large_v1_torrent(100_000),
        ),
        (
            "v2-10k-files.torrent",
            bitshoal_benches::large_v2_torrent(10_000),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
