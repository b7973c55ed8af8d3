//! Replays the fuzz corpora on stable Rust, then runs seeded mutations of them.
//!
//! For each target in [`TARGETS`], every file in `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same check the libFuzzer target runs, and then
//! [`MUTATIONS_PER_TARGET`] mutants of those files (bit flips, byte inserts and deletes, splices
//! between entries, interesting integers, duplicated chunks, target-specific tokens) made by a
//! deterministic PRNG. A failure names the target, the seed and the mutation number, and writes
//! the failing input under the cargo target directory so it can be added to
//! `fuzz/regressions/<target>/`.
//!
//! `BITSHOAL_FUZZ_MUTATIONS=<n>` runs `n` mutations per target instead (for longer soaks);
//! `BITSHOAL_FUZZ_SEED=<n>` changes the seed.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bitshoal_conformance::fuzz_checks::{Check, TARGETS};

/// Mutations per target by default: a few hundred thousand in all, a few seconds in a debug build.
const MUTATIONS_PER_TARGET: u64 = 250_000;

/// The seed when `BITSHOAL_FUZZ_SEED` is unset.
const DEFAULT_SEED: u64 = 0x6269_7473_686f_616c; // "bitshoal"

/// Mutants are cut back to this many bytes, as libFuzzer's `-max_len` does.
const MAX_LEN: usize = 8 * 1024;

/// Byte strings worth splicing in, per target (like a libFuzzer `-dict`).
fn tokens(target: &str) -> &'static [&'static [u8]] {
    match target {
        "bencode" => &[
            b"d", b"e", b"l", b"i", b":", b"0:", b"i-", b"-0", b"de", b"le", b"4:info", b"d4:info",
        ],
        "magnet" => &[
            b"magnet:?",
            b"&",
            b"=",
            b"%",
            b"%2",
            b"%FF",
            b"+",
            b"xt=urn:btih:",
            b"xt=urn:btmh:1220",
            b"&dn=",
            b"&tr=",
            b"&tr.1=",
            b"&ws=",
            b"&x.pe=",
            b"[::1]:",
            b"&so=",
            b",",
            b"-",
            b"&xl=",
        ],
        "metainfo" => &[
            b"4:info",
            b"d4:infod",
            b"5:filesl",
            b"4:pathl",
            b"6:lengthi",
            b"12:piece lengthi16384e",
            b"6:pieces20:",
            b"9:file treed",
            b"12:meta versioni2e",
            b"12:piece layersd",
            b"11:pieces root32:",
            b"4:attr1:p",
            b"2:..",
            b"0:",
            b"4:name",
            b"8:announce",
            b"13:announce-listll",
        ],
        "wire" => &[
            b"\x13BitTorrent protocol",
            b"\x00\x00\x00\x00",
            b"\x00\x00\x00\x01",
            b"\x00\x00\x00\x05\x04",
            b"\x00\x00\x00\x0d\x06",
            b"\x00\x00\x40\x09\x07",
            b"\x00\x00\x00\x03\x09",
            b"\x14\x00d1:md",
            b"\x00\x00\x00\x31\x15",
        ],
        "peer" => &[
            b"\x00\x00\x00\x01\x02",
            b"\x00\x00\x00\x01\x0e",
            b"\x00\x00\x00\x0d\x06\x00\x00\x00\x00",
            b"\x00\x00\x40\x09\x07\x00\x00\x00\x00",
            b"\x00\x00\x00\x05\x04\x00\x00\x00",
            b"\x00\x00\x00\x02\x05",
            b"\x00\x00\x00\x0d\x10",
            // BEP 52 hash request / hashes / hash reject naming the v2 file (see the check).
            b"\x00\x00\x00\x31\x15RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x02",
            b"\x00\x00\x00\x51\x16RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00",
            b"\x00\x00\x00\x31\x17RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR",
            b"RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR",
        ],
        "tracker_http" => &[
            b"d8:intervali1800e",
            b"5:peers6:",
            b"5:peersl",
            b"d2:ip9:127.0.0.14:porti6881ee",
            b"6:peers618:",
            b"14:failure reason",
            b"8:retry in5:never",
            b"8:retry ini",
            b"15:warning message",
            b"10:tracker id",
            b"11:external ip4:",
            b"12:min interval",
            b"5:filesd20:",
            b"5:flagsd20:min_request_interval",
            b"http://",
            b"/announce",
            b"?",
            b"#",
        ],
        "tracker_udp" => &[
            b"\x00\x00\x04\x17\x27\x10\x19\x80",
            b"\x00\x00\x00\x00",
            b"\x00\x00\x00\x01",
            b"\x00\x00\x00\x02",
            b"\x00\x00\x00\x03",
            b"\xff\xff\xff\xff",
            b"\x7f\x00\x00\x01\x1a\xe1",
            b"\x02\x0c/dir?a=b&c=d",
            b"\x01",
            b"\x00",
        ],
        "resume" => &[
            b"5:filesl",
            b"li0ei0ee",
            b"le",
            b"4:have",
            b"9:info-hash20:",
            b"10:info-hash232:",
            b"6:piecesi",
            b"12:piece layersd32:",
            b"13:files-read-ati",
            b"10:unverified",
            b"7:versioni2e",
        ],
        "dht_krpc" | "dht_node" => &[
            b"d1:ad2:id20:",
            b"1:q4:ping",
            b"1:q9:find_node",
            b"1:q9:get_peers",
            b"1:q13:announce_peer",
            b"1:q17:sample_infohashes",
            b"6:target20:",
            b"9:info_hash20:",
            b"5:token",
            b"5:nodes26:",
            b"6:nodes638:",
            b"6:valuesl6:",
            b"4:wantl2:n42:n6e",
            b"12:implied_porti1e",
            b"4:porti6881e",
            b"2:roi1e",
            b"2:ip6:",
            b"4:BFsd256:",
            b"1:t4:TTTT",
            b"1:y1:r",
            b"1:y1:q",
            b"1:eli201e",
            b"1:q3:get",
            b"1:q3:put",
            b"1:k32:",
            b"3:sig64:",
            b"3:seqi1e",
            b"4:salt4:feed",
            b"3:casi1e",
            b"1:vd2:ih20:",
            b"1:v12:Hello World!",
        ],
        "ext_metadata" => &[
            b"d8:msg_typei0e5:piecei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei",
            b"8:msg_typei",
            b"5:piecei",
            b"10:total_sizei",
            b"ee",
            b"\x00\x00\x00",
            b"\x01\x00\x00",
            b"\x05\x1e\x1e",
        ],
        "ext_pex" => &[
            b"5:added6:",
            b"7:added.f1:",
            b"6:added618:",
            b"8:added6.f1:",
            b"7:dropped6:",
            b"8:dropped618:",
            b"\x7f\x00\x00\x01\x1a\xe1",
            b"de",
        ],
        "ext_misc" => &[
            b"\x00\x00\x00\x01",
            b"\x02\x00",
            b"\x01\x01",
            b"\x00\x00\x00\x04",
            b"d5:addedl",
            b"7:http://",
            b"ee",
        ],
        "lsd" => &[
            b"BT-SEARCH * HTTP/1.1\r\n",
            b"Host: 239.192.152.143",
            b":6771\r\n",
            b"Port: ",
            b"Infohash: 1111111111111111111111111111111111111111\r\n",
            b"cookie: ",
            b"\r\n",
            b"\r\n\r\n",
            b"\n",
            b":",
        ],
        _ => &[],
    }
}

/// Numbers at the edges of the parsers' integer handling.
const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-0",
    b"00",
    b"1",
    b"-1",
    b"65535",
    b"65536",
    b"2097151",
    b"2097152",
    b"2147483648",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
];

/// xorshift64*: tiny, deterministic, and plenty for choosing mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Applies one random mutation to `data`; `corpus` supplies splice partners.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>], tokens: &[&[u8]]) {
    let len = data.len();
    match rng.below(9) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // Overwrite a byte.
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
        }
        // Insert random bytes.
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(4);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Delete a range.
        3 if len > 0 => {
            let start = rng.below(len);
            let end = start + 1 + rng.below((len - start).min(16));
            data.drain(start..end);
        }
        // Splice: a prefix of this entry with a suffix of another.
        4 => {
            let other = rng.pick(corpus);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // Replace a run of digits (or insert at a random place) with an interesting number.
        5 => {
            let number = rng.pick(INTERESTING);
            let at = rng.below(len + 1);
            let digits = data[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            data.splice(at..at + digits, number.iter().copied());
        }
        // Duplicate a chunk somewhere else.
        6 if len > 0 => {
            let start = rng.below(len);
            let end = start + 1 + rng.below((len - start).min(64));
            let chunk = data[start..end].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        // Insert a target token.
        7 if !tokens.is_empty() => {
            let token = rng.pick(tokens);
            let at = rng.below(len + 1);
            data.splice(at..at, token.iter().copied());
        }
        // Truncate.
        _ => data.truncate(rng.below(len + 1)),
    }
    data.truncate(MAX_LEN);
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file directly in `dir`, sorted by name so runs are reproducible; none if it is absent.
fn read_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("readable corpus file");
            (p, data)
        })
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// Runs `check` on `data`; on a panic, saves the input and fails with `what` and where it went.
fn run_check(target: &str, check: Check, data: &[u8], what: &str) {
    if panic::catch_unwind(AssertUnwindSafe(|| check(data))).is_ok() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-replay-failures");
    std::fs::create_dir_all(&dir).expect("create failure directory");
    let path = dir.join(format!("{target}-crash"));
    std::fs::write(&path, data).expect("write failing input");
    panic!(
        "fuzz check {target} panicked on {what}; input ({} bytes) saved to {}",
        data.len(),
        path.display()
    );
}

fn replay_and_mutate(target: &str, check: Check, seed: u64, mutations: u64) {
    let dir = fuzz_dir();
    let corpus = read_dir_files(&dir.join("corpus").join(target));
    let regressions = read_dir_files(&dir.join("regressions").join(target));
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/{target}/ should hold a seed corpus, found {} files",
        corpus.len()
    );
    for (path, data) in corpus.iter().chain(&regressions) {
        run_check(target, check, data, &path.display().to_string());
    }

    let inputs: Vec<Vec<u8>> = corpus
        .into_iter()
        .chain(regressions)
        .map(|(_, d)| d)
        .collect();
    let tokens = tokens(target);
    let mut rng = Rng::new(seed ^ fnv1a(target.as_bytes()));
    let mut data = Vec::with_capacity(MAX_LEN);
    for i in 0..mutations {
        data.clear();
        let start: &Vec<u8> = rng.pick(&inputs);
        data.extend_from_slice(start);
        for _ in 0..1 + rng.below(4) {
            mutate_once(&mut rng, &mut data, &inputs, tokens);
        }
        run_check(
            target,
            check,
            &data,
            &format!("mutation {i} (BITSHOAL_FUZZ_SEED={seed})"),
        );
    }
}

/// FNV-1a, to give each target its own mutation stream from one seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn fuzz_corpora_replay_and_mutations_do_not_panic() {
    let seed = env_u64("BITSHOAL_FUZZ_SEED", DEFAULT_SEED);
    let mutations = env_u64("BITSHOAL_FUZZ_MUTATIONS", MUTATIONS_PER_TARGET);
    for &(target, check) in TARGETS {
        // The peer check runs a whole simulated connection per input: a thousand times the
        // cost of a parser check, so it gets a thousandth of the mutations.
        let n = match target {
            "peer" => mutations / 1000,
            // A DHT node per input, and its timers run out: a few hundred times a parser.
            "dht_node" => mutations / 200,
            "dht_krpc" => mutations / 4,
            "ext_metadata" => mutations / 20,
            // A few dozen SHA-256 compressions per input in a debug build.
            "merkle_proof" => mutations / 10,
            _ => mutations,
        };
        replay_and_mutate(target, check, seed, n);
    }
}

#[test]
fn mutator_is_deterministic_and_changes_inputs() {
    let corpus = vec![b"d3:cow3:mooe".to_vec(), b"li1ei2ee".to_vec()];
    let run = |seed| {
        let mut rng = Rng::new(seed);
        (0..200)
            .map(|_| {
                let mut d = corpus[0].clone();
                mutate_once(&mut rng, &mut d, &corpus, tokens("bencode"));
                d
            })
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7), "same seed, same mutants");
    assert_ne!(a, run(8), "another seed, other mutants");
    let changed = a.iter().filter(|d| **d != corpus[0]).count();
    assert!(changed > 150, "only {changed} of 200 mutants differ");
}

#[test]
fn a_panicking_check_is_reported() {
    fn boom(data: &[u8]) {
        assert!(!data.starts_with(b"boom"), "boom");
    }
    let result = panic::catch_unwind(|| run_check("test", boom, b"boom!", "a test input"));
    let message = result.expect_err("the check's panic must fail the replay");
    let text = message
        .downcast_ref::<String>()
        .expect("run_check panics with a formatted message");
    assert!(text.contains("test panicked on a test input"), "{text}");
}
