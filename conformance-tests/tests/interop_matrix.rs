//! The interop matrix of `conformance-tests/README.md`: which real client, in which direction,
//! over which route and with which payloads, is covered by which test. This test prints the
//! matrix, checks that every test it names exists in its file, and that the README holds the
//! matrix exactly as printed (update the README from this test's output when it changes).

/// `(client, direction, route, payloads, file, test)`.
const MATRIX: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "HTTP tracker",
        "single file",
        "interop_libtorrent",
        "bitshoal_downloads_from_libtorrent_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "UDP tracker",
        "hybrid made by libtorrent: nested, 0-byte, small files, pad files",
        "interop_libtorrent",
        "bitshoal_downloads_from_libtorrent_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct (bitshoal dials)",
        "v1: nested, 0-byte, small files",
        "interop_libtorrent",
        "bitshoal_downloads_from_libtorrent_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "HTTP tracker",
        "single file",
        "interop_libtorrent",
        "libtorrent_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "UDP tracker",
        "hybrid made by bitshoal: nested, 0-byte, small files, pad files",
        "interop_libtorrent",
        "libtorrent_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "direct (libtorrent dials)",
        "v1: nested, 0-byte, small files",
        "interop_libtorrent",
        "libtorrent_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "both",
        "direct",
        "fast extension: HAVE_ALL / HAVE_NONE both ways; BEP 10 handshake read by libtorrent",
        "interop_libtorrent",
        "libtorrent_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "choke/unchoke cycles, REJECT_PIECE at a choke (1 unchoke slot, round robin)",
        "interop_libtorrent",
        "bitshoal_survives_choke_unchoke_cycles_and_rejects_from_libtorrent",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "direct",
        "libtorrent leecher disconnects and reconnects mid-download",
        "interop_libtorrent",
        "a_libtorrent_leecher_disconnects_and_reconnects_mid_download",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "libtorrent seed disconnects mid-download, bitshoal redials",
        "interop_libtorrent",
        "a_libtorrent_seed_disconnects_and_bitshoal_reconnects_mid_download",
    ),
    (
        "libtorrent 2.0",
        "client reads",
        "—",
        "torrents made by bitshoal (v1, v2, hybrid) verify in libtorrent",
        "create_libtorrent",
        "bitshoal_torrents_load_and_verify_in_libtorrent",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "v2-only (BEP 52): nested, 0-byte, small files; every piece checked against the merkle trees",
        "interop_v2",
        "bitshoal_downloads_a_v2_torrent_from_libtorrent",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "hybrid (BEP 52): both the SHA-1 pieces and the merkle trees checked",
        "interop_v2",
        "bitshoal_downloads_a_hybrid_torrent_from_libtorrent_checking_both_hashes",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "v2 added without its piece layers: fetched with BEP 52 hash requests",
        "interop_v2",
        "bitshoal_fetches_withheld_piece_layers_from_libtorrent",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "direct",
        "v2-only (BEP 52)",
        "interop_v2",
        "libtorrent_downloads_a_v2_torrent_from_bitshoal",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "direct",
        "hybrid (BEP 52)",
        "interop_v2",
        "libtorrent_downloads_a_hybrid_torrent_from_bitshoal",
    ),
    (
        "libtorrent 2.0",
        "client ← bitshoal",
        "direct",
        "single-file v2 with a short last piece (libtorrent requests blocks of its padding)",
        "interop_v2",
        "libtorrent_downloads_a_single_file_v2_torrent_from_bitshoal",
    ),
    (
        "libtorrent 2.0",
        "client ← 2 bitshoal seeds",
        "direct",
        "v2, one seed with a corrupt block: libtorrent asks for the failed piece's leaf hashes (BEP 52 base layer 0) and gets them; ignored by default (libtorrent's timing)",
        "interop_v2",
        "libtorrent_gets_leaf_hashes_from_bitshoal_after_a_bad_piece",
    ),
    (
        "libtorrent 2.0",
        "bitshoal ← client",
        "direct",
        "`bitshoal create --v2` / `--hybrid` (the binary) seeded by libtorrent, fetched by `bitshoal download`",
        "runtime-mio/tests/cli_create_v2_libtorrent",
        "libtorrent_seeds_what_bitshoal_create_made_and_bitshoal_downloads_it",
    ),
    (
        "aria2 1.36",
        "bitshoal ← client",
        "HTTP tracker",
        "single file",
        "interop_aria2",
        "bitshoal_downloads_from_aria2_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "bitshoal ← client",
        "UDP tracker",
        "v1: nested, 0-byte, small files",
        "interop_aria2",
        "bitshoal_downloads_from_aria2_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "bitshoal ← client",
        "direct (bitshoal dials)",
        "v1: nested, 0-byte, small files",
        "interop_aria2",
        "bitshoal_downloads_from_aria2_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "client ← bitshoal",
        "HTTP tracker",
        "single file",
        "interop_aria2",
        "aria2_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "client ← bitshoal",
        "UDP tracker",
        "v1 made by libtorrent with pad files (aria2 fetches them: zeros): nested, 0-byte, small files",
        "interop_aria2",
        "aria2_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "client ← bitshoal",
        "direct (bitshoal dials)",
        "v1: nested, 0-byte, small files",
        "interop_aria2",
        "aria2_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "aria2 1.36",
        "client reads",
        "—",
        "hybrid torrents: aria2 1.36 computes a wrong v1 info-hash (aria2/aria2#1903), pinned",
        "interop_aria2",
        "aria2_1_36_misreads_the_v1_info_hash_of_hybrid_torrents",
    ),
    (
        "aria2 1.36",
        "client ← bitshoal",
        "HTTP tracker, magnet",
        "hybrid by magnet with the real v1 hash: BEP 9 metadata from bitshoal works, then aria2 announces its misread hash (pinned)",
        "interop_aria2",
        "aria2_1_36_fetches_a_hybrids_metadata_by_magnet_then_misreads_its_hash",
    ),
    (
        "Transmission 3.00",
        "bitshoal ← client",
        "HTTP tracker (bitshoal dials)",
        "single file",
        "interop_transmission",
        "bitshoal_downloads_from_transmission_over_http_udp_and_direct",
    ),
    (
        "Transmission 3.00",
        "bitshoal ← client",
        "UDP tracker (bitshoal dials)",
        "v1: nested, 0-byte, small files",
        "interop_transmission",
        "bitshoal_downloads_from_transmission_over_http_udp_and_direct",
    ),
    (
        "Transmission 3.00",
        "bitshoal ← client",
        "direct (bitshoal dials)",
        "v1: nested, 0-byte, small files",
        "interop_transmission",
        "bitshoal_downloads_from_transmission_over_http_udp_and_direct",
    ),
    (
        "Transmission 3.00",
        "client ← bitshoal",
        "HTTP tracker (bitshoal dials)",
        "single file",
        "interop_transmission",
        "transmission_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "Transmission 3.00",
        "client ← bitshoal",
        "UDP tracker (bitshoal dials)",
        "v1: nested, 0-byte (not created by Transmission), small files",
        "interop_transmission",
        "transmission_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "Transmission 3.00",
        "client ← bitshoal",
        "direct (bitshoal dials)",
        "v1: nested, 0-byte (not created by Transmission), small files",
        "interop_transmission",
        "transmission_downloads_from_bitshoal_over_http_udp_and_direct",
    ),
    (
        "libtorrent 2.0 + aria2 1.36",
        "mixed swarm",
        "HTTP tracker (bitshoal dials all)",
        "libtorrent seed (rate-limited); bitshoal, aria2, libtorrent leech; bitshoal uploads to aria2 and libtorrent",
        "interop_swarm",
        "a_libtorrent_seed_with_bitshoal_aria2_and_libtorrent_leeching",
    ),
    (
        "libtorrent 2.0 + Transmission 3.00 + aria2 1.36",
        "mixed swarm",
        "UDP tracker (bitshoal and aria2 dial Transmission)",
        "libtorrent seed (rate-limited); bitshoal, Transmission, aria2 leech; bitshoal uploads to Transmission and aria2",
        "interop_swarm",
        "a_libtorrent_seed_with_bitshoal_transmission_and_aria2_leeching",
    ),
    (
        "opentracker",
        "bitshoal ↔ bitshoal",
        "HTTP, UDP",
        "hybrid; also the `bitshoal download` binary",
        "runtime-mio/tests/opentracker",
        "seed_and_leech_find_each_other_through_opentracker_over_http",
    ),
];

fn source(file: &str) -> &'static str {
    match file {
        "interop_libtorrent" => include_str!("interop_libtorrent.rs"),
        "interop_aria2" => include_str!("interop_aria2.rs"),
        "interop_transmission" => include_str!("interop_transmission.rs"),
        "interop_swarm" => include_str!("interop_swarm.rs"),
        "create_libtorrent" => include_str!("create_libtorrent.rs"),
        "interop_v2" => include_str!("interop_v2.rs"),
        "runtime-mio/tests/cli_create_v2_libtorrent" => {
            include_str!("../../runtime-mio/tests/cli_create_v2_libtorrent.rs")
        }
        "runtime-mio/tests/opentracker" => include_str!("../../runtime-mio/tests/opentracker.rs"),
        other => panic!("unknown test file {other}"),
    }
}

fn render() -> String {
    let mut out = String::from(
        "| client | direction | route | payload / behaviour | test (file::name) |\n|---|---|---|---|---|\n",
    );
    for (client, direction, route, payload, file, test) in MATRIX {
        out.push_str(&format!(
            "| {client} | {direction} | {route} | {payload} | `{file}::{test}` |\n"
        ));
    }
    out
}

#[test]
fn the_readme_matrix_is_current() {
    for (.., file, test) in MATRIX {
        assert!(
            source(file).contains(&format!("fn {test}(")),
            "{file} has no test {test}"
        );
    }
    let matrix = render();
    println!("{matrix}");
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&matrix),
        "conformance-tests/README.md does not hold the current matrix; paste this test's output \
         (cargo test -p bitshoal-conformance --test interop_matrix -- --nocapture)"
    );
}
