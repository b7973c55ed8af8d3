//! The hostile-torrent corpus (`corpus/hostile/`, written by `corpus/hostile/generate.py`): every
//! `.torrent` there must be refused with exactly the error in its `.expected` file (the `Debug`
//! form of `MetainfoError`), without panicking.

use std::fs;
use std::path::Path;

use bitshoal_core::metainfo::Metainfo;

#[test]
fn every_hostile_torrent_is_refused_with_its_exact_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hostile");
    let mut torrents: Vec<_> = fs::read_dir(&dir)
        .expect("corpus/hostile exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "torrent"))
        .collect();
    torrents.sort();
    let mut failures = Vec::new();
    for path in &torrents {
        let name = path.file_stem().expect("named").to_string_lossy();
        let bytes = fs::read(path).expect("readable torrent");
        assert!(bytes.len() < 64 * 1024, "{name}: corpus files stay small");
        let expected = fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|e| panic!("{name}.expected: {e}"));
        let expected = expected.trim_end_matches('\n');
        match Metainfo::from_bytes(&bytes) {
            Ok(_) => failures.push(format!("{name}: accepted, expected {expected}")),
            Err(e) => {
                let got = format!("{e:?}");
                if got != expected {
                    failures.push(format!("{name}:\n  expected {expected}\n  got      {got}"));
                }
                // Display works for every error, too.
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        torrents.len(),
        failures.join("\n")
    );
    assert!(
        torrents.len() >= 60,
        "only {} hostile torrents",
        torrents.len()
    );
}

#[test]
fn every_expected_file_has_its_torrent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hostile");
    for entry in fs::read_dir(&dir).expect("corpus/hostile exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(
                path.with_extension("torrent").exists(),
                "{} has no torrent",
                path.display()
            );
        }
    }
}
