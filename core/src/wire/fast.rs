//! The BEP 6 canonical allowed-fast set.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

/// The canonical allowed-fast set of `k` pieces for the peer at `ip` (BEP 6).
///
/// The set depends only on the peer's address with its last octet cleared (so one host cannot
/// collect several sets from one /24), the info-hash and the piece count, and the first `k`
/// pieces of a larger set are the set of size `k`. Pieces come in the order BEP 6 generates them.
///
/// - If `k >= num_pieces`, the loop in BEP 6 could never finish; every piece is returned instead,
///   in ascending order (there is nothing to choose).
/// - BEP 6 has "no provisions for IPv6", so this takes an IPv4 address: for an IPv6 peer, send
///   no allowed-fast set, unless the address is IPv4-mapped
///   ([`Ipv6Addr::to_ipv4_mapped`](std::net::Ipv6Addr::to_ipv4_mapped)), which is IPv4.
/// - Behind a NAT the address should be the NAT's external one; BEP 6 allows using the address
///   at the other end of the connection regardless, which is what callers have.
pub fn allowed_fast_set(ip: Ipv4Addr, info_hash: &[u8; 20], num_pieces: u32, k: usize) -> Vec<u32> {
    if k as u64 >= u64::from(num_pieces) {
        return (0..num_pieces).collect();
    }
    let mut set = Vec::with_capacity(k);
    let mut x = [0u8; 24];
    x[..4].copy_from_slice(&(u32::from(ip) & 0xffff_ff00).to_be_bytes());
    x[4..].copy_from_slice(info_hash);
    let mut digest: [u8; 20] = Sha1::digest(x).into();
    loop {
        for chunk in digest.chunks_exact(4) {
            if set.len() == k {
                return set;
            }
            let y = u32::from_be_bytes(chunk.try_into().expect("chunks_exact(4)"));
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        if set.len() == k {
            return set;
        }
        digest = Sha1::digest(digest).into();
    }
}
