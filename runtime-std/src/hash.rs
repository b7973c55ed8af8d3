//! Piece hashing: the digests the session asks for with [`HashJob`].
//!
//! SHA-1 (v1 pieces, BEP 3) and SHA-256 (v2 merkle trees, BEP 52) come from the `sha1` and
//! `sha2` crates, which pick the CPU's SHA extensions at run time (x86 SHA-NI, ARMv8 SHA) and
//! fall back to portable code; `benches/benches/storage.rs` measures them. Their `asm` features
//! add nothing on x86-64: `sha1`'s is empty and `sha2`'s replaces only the portable fallback.

use bitshoal_core::session::{Digest, HashAlgorithm, HashJob, Input};
use bytes::Bytes;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// Runs a hash job on the calling thread, reporting [`Input::Hashed`].
///
/// `None` only for an algorithm newer than this runtime (the core and this crate are released
/// together, so that is a build mismatch, flagged in debug builds).
pub fn run(job: HashJob) -> Option<Input> {
    let digest = digest(job.algorithm, &job.data);
    debug_assert!(
        digest.is_some(),
        "unknown hash algorithm {:?}",
        job.algorithm
    );
    Some(Input::Hashed {
        req: job.req,
        digest: digest?,
    })
}

/// The `algorithm` digest of the concatenation of `data`; `None` for an unknown algorithm.
pub fn digest(algorithm: HashAlgorithm, data: &[Bytes]) -> Option<Digest> {
    match algorithm {
        HashAlgorithm::Sha1 => Some(Digest::Sha1(sha1_of(data))),
        // BEP 52: 16 KiB SHA-256 leaves (and, for hybrids, the SHA-1 too), computed by the
        // core's reference code on this worker thread.
        HashAlgorithm::Sha256Blocks { len } => Some(Digest::Sha256Blocks(
            bitshoal_core::merkle::block_hashes(data, len as usize),
        )),
        HashAlgorithm::Sha1AndSha256Blocks { len } => Some(Digest::Sha1AndSha256Blocks {
            sha1: sha1_of(data),
            blocks: bitshoal_core::merkle::block_hashes(data, len as usize),
        }),
        _ => None,
    }
}

/// The SHA-1 of the concatenation of `data` (BEP 3 piece hashes).
pub fn sha1_of(data: &[Bytes]) -> [u8; 20] {
    let mut h = Sha1::new();
    for chunk in data {
        h.update(chunk);
    }
    h.finalize().into()
}

/// The SHA-256 of the concatenation of `data` (BEP 52 block and tree hashes).
pub fn sha256_of(data: &[Bytes]) -> [u8; 32] {
    let mut h = Sha256::new();
    for chunk in data {
        h.update(chunk);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use bitshoal_core::id::RequestId;

    use super::*;

    /// Known answers from FIPS 180 ("abc"), split across chunks to check concatenation.
    #[test]
    fn digests_of_split_input_match_known_answers() {
        let abc = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
        assert_eq!(
            sha1_of(&abc),
            *b"\xa9\x99\x3e\x36\x47\x06\x81\x6a\xba\x3e\x25\x71\x78\x50\xc2\x6c\x9c\xd0\xd8\x9d"
        );
        assert_eq!(
            sha256_of(&abc)[..8],
            [0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea]
        );
        assert_eq!(sha1_of(&[]), sha1_of(&[Bytes::new(), Bytes::new()]));
    }

    #[test]
    fn run_reports_the_job_id_and_digest() {
        let data = vec![Bytes::from(vec![7u8; 40_000]), Bytes::from(vec![9u8; 3])];
        let mut whole = vec![7u8; 40_000];
        whole.extend_from_slice(&[9; 3]);
        let job = HashJob {
            req: RequestId::from_raw(42),
            algorithm: HashAlgorithm::Sha1,
            data,
        };
        match run(job) {
            Some(Input::Hashed { req, digest }) => {
                assert_eq!(req, RequestId::from_raw(42));
                assert_eq!(digest, Digest::Sha1(Sha1::digest(&whole).into()));
            }
            other => panic!("expected Hashed, got {other:?}"),
        }
    }

    /// BEP 52 jobs: one 16 KiB SHA-256 leaf per block of the first `len` bytes, whatever the
    /// chunking; the hybrid job adds the SHA-1 of all the data (padding included); both agree
    /// with the core's reference `HashJob::compute`.
    #[test]
    fn v2_and_hybrid_jobs_hash_blocks_of_the_file_data() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = vec![
            Bytes::copy_from_slice(&data[..16_384]),
            Bytes::copy_from_slice(&data[16_384..20_000]),
            Bytes::copy_from_slice(&data[20_000..]),
        ];
        let len = 40_000u32;
        let leaves: Vec<[u8; 32]> = data[..len as usize]
            .chunks(16_384)
            .map(|b| Sha256::digest(b).into())
            .collect();
        assert_eq!(leaves.len(), 3);
        for (algorithm, expected) in [
            (
                HashAlgorithm::Sha256Blocks { len },
                Digest::Sha256Blocks(leaves.clone()),
            ),
            (
                HashAlgorithm::Sha1AndSha256Blocks { len },
                Digest::Sha1AndSha256Blocks {
                    sha1: Sha1::digest(&data).into(),
                    blocks: leaves.clone(),
                },
            ),
        ] {
            let job = HashJob {
                req: RequestId::from_raw(1),
                algorithm,
                data: chunks.clone(),
            };
            assert_eq!(job.compute(), expected);
            match run(job) {
                Some(Input::Hashed { digest, .. }) => assert_eq!(digest, expected),
                other => panic!("expected Hashed, got {other:?}"),
            }
        }
    }
}
