//! BEP 40 canonical peer priority.

use std::net::{IpAddr, SocketAddr};

/// The BEP 40 canonical priority of the connection between `a` and `b` (higher is preferred).
///
/// Both sides compute the same value: it is the CRC32-C of the two addresses, masked and sorted.
/// The mask keeps the first 2 bytes of an IPv4 address (6 of an IPv6 one), or one byte more than
/// the two addresses share if that is more, and masks the other bytes with `0x55`. Equal
/// addresses use the two ports instead (big-endian, sorted). An IPv4-mapped IPv6 address counts
/// as IPv4; an IPv4 address paired with an IPv6 one is compared in its mapped IPv6 form.
///
/// `a` should be our address as the peer sees it (BEP 40), not a local one.
pub fn peer_priority(a: SocketAddr, b: SocketAddr) -> u32 {
    let (ip_a, ip_b) = (a.ip().to_canonical(), b.ip().to_canonical());
    if ip_a == ip_b {
        let (lo, hi) = if a.port() <= b.port() {
            (a.port(), b.port())
        } else {
            (b.port(), a.port())
        };
        let mut buf = [0u8; 4];
        buf[..2].copy_from_slice(&lo.to_be_bytes());
        buf[2..].copy_from_slice(&hi.to_be_bytes());
        return crc32c::crc32c(&buf);
    }
    match (ip_a, ip_b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => masked_crc(&x.octets(), &y.octets(), 2),
        _ => masked_crc(&v6_octets(ip_a), &v6_octets(ip_b), 6),
    }
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// CRC32-C of the two addresses masked per BEP 40 (`base` leading bytes always kept) and sorted.
fn masked_crc<const N: usize>(a: &[u8; N], b: &[u8; N], base: usize) -> u32 {
    let shared = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let keep = base.max(shared + 1).min(N);
    let mask = |ip: &[u8; N]| {
        let mut m = *ip;
        m[keep..].iter_mut().for_each(|byte| *byte &= 0x55);
        m
    };
    let (x, y) = (mask(a), mask(b));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let mut crc = crc32c::crc32c(&lo);
    crc = crc32c::crc32c_append(crc, &hi);
    crc
}
