//! Node ids, XOR distance (BEP 5) and the node-id security extension (BEP 42).

use std::fmt;
use std::net::IpAddr;

use crate::rng::Rng;

/// A DHT node id: 160 bits in the same key space as info-hashes (BEP 5).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// The number of bits in an id.
    pub const BITS: usize = 160;

    /// A uniformly random id.
    pub fn random(rng: &mut Rng) -> Self {
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        Self(id)
    }

    /// The XOR distance to `other` (BEP 5): compare distances with `Ord`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, out) in d.iter_mut().enumerate() {
            *out = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// The number of leading bits `self` shares with `other` (160 if they are equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// The id from a byte slice of exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Bit `i` (0 is the most significant bit of the first byte).
    pub fn bit(&self, i: usize) -> bool {
        self.0[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// This id with bit `i` set to `value`.
    #[must_use]
    pub fn with_bit(mut self, i: usize, value: bool) -> Self {
        let mask = 0x80 >> (i % 8);
        if value {
            self.0[i / 8] |= mask;
        } else {
            self.0[i / 8] &= !mask;
        }
        self
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The XOR distance between two ids; smaller is closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Distance(pub [u8; 20]);

impl Distance {
    /// The number of leading zero bits (160 for distance zero).
    pub fn leading_zeros(&self) -> usize {
        for (i, b) in self.0.iter().enumerate() {
            if *b != 0 {
                return i * 8 + b.leading_zeros() as usize;
            }
        }
        NodeId::BITS
    }
}

/// The BEP 42 CRC32C of an address's masked prefix with the random number `r` (0..=7).
fn bep42_crc(ip: IpAddr, r: u8) -> u32 {
    match ip {
        IpAddr::V4(v4) => {
            const MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
            let mut b = v4.octets();
            for (o, m) in b.iter_mut().zip(MASK) {
                *o &= m;
            }
            b[0] |= (r & 7) << 5;
            crc32c::crc32c(&b)
        }
        IpAddr::V6(v6) => {
            const MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];
            let octets = v6.octets();
            let mut b = [0u8; 8];
            for i in 0..8 {
                b[i] = octets[i] & MASK[i];
            }
            b[0] |= (r & 7) << 5;
            crc32c::crc32c(&b)
        }
    }
}

/// Whether BEP 42 exempts `ip` from node-id verification: local networks, link-local and
/// loopback (BEP 42 "Enforcement"), plus the IPv6 equivalents (unique-local, link-local,
/// loopback) as libtorrent does.
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_link_local() || v4.is_loopback() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || (first & 0xffc0) == 0xfe80 // fe80::/10, link local
        }
    }
}

/// A node id that BEP 42 accepts for `ip`, with the random number `r` (only its low 3 bits
/// matter) and the rest of the id from `rng`.
pub fn secure_node_id(ip: IpAddr, r: u8, rng: &mut Rng) -> NodeId {
    let crc = bep42_crc(ip, r);
    let mut id = [0u8; 20];
    rng.fill(&mut id);
    id[0] = (crc >> 24) as u8;
    id[1] = (crc >> 16) as u8;
    id[2] = ((crc >> 8) as u8 & 0xf8) | (id[2] & 0x07);
    id[19] = r;
    NodeId(id)
}

/// Whether `id` is a valid BEP 42 id for `ip`: its first 21 bits match the CRC32C of the
/// masked address with the `r` taken from the id's last byte. Exempt addresses
/// ([`is_exempt`]) always pass.
pub fn is_valid_for_ip(id: &NodeId, ip: IpAddr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = bep42_crc(ip, id.0[19] & 7);
    id.0[0] == (crc >> 24) as u8
        && id.0[1] == (crc >> 16) as u8
        && (id.0[2] & 0xf8) == ((crc >> 8) as u8 & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// BEP 42's test vectors: IP, rand, and the id's CRC-derived prefix (first 21 bits).
    const VECTORS: &[([u8; 4], u8, [u8; 3])] = &[
        ([124, 31, 75, 21], 1, [0x5f, 0xbf, 0xbf]),
        ([21, 75, 31, 124], 86, [0x5a, 0x3c, 0xe9]),
        ([65, 23, 51, 170], 22, [0xa5, 0xd4, 0x32]),
        ([84, 124, 73, 14], 65, [0x1b, 0x03, 0x21]),
        ([43, 213, 53, 83], 90, [0xe5, 0x6f, 0x6c]),
    ];

    #[test]
    fn bep42_test_vectors_generate_and_verify() {
        let mut rng = Rng::from_seed(42);
        for &(ip, rand, prefix) in VECTORS {
            let ip = IpAddr::V4(Ipv4Addr::from(ip));
            let id = secure_node_id(ip, rand, &mut rng);
            assert_eq!(id.0[0], prefix[0], "{ip}");
            assert_eq!(id.0[1], prefix[1], "{ip}");
            assert_eq!(id.0[2] & 0xf8, prefix[2] & 0xf8, "{ip}");
            assert_eq!(id.0[19], rand, "{ip}");
            assert!(is_valid_for_ip(&id, ip), "{ip}");
        }
    }

    #[test]
    fn bep42_example_ids_from_the_bep_verify() {
        // The full example ids of BEP 42's table.
        let ids = [
            ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
            ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
            ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
            ("84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
            ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
        ];
        for (ip, hex) in ids {
            let ip: IpAddr = ip.parse().unwrap();
            let id = NodeId(crate::id::parse_hex::<20>(hex).unwrap());
            assert!(is_valid_for_ip(&id, ip), "{ip}");
            // Another address does not match the same id.
            let other = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
            assert!(!is_valid_for_ip(&id, other), "{ip}");
            // Flipping a bit of the checked prefix breaks it.
            let mut bad = id;
            bad.0[2] ^= 0x08;
            assert!(!is_valid_for_ip(&bad, ip), "{ip}");
            // The low three bits of byte 2 are free.
            let mut free = id;
            free.0[2] ^= 0x07;
            assert!(is_valid_for_ip(&free, ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_ids_round_trip_and_local_addresses_are_exempt() {
        let mut rng = Rng::from_seed(1);
        let ip: IpAddr = "2001:db8:1234:5678::1".parse().unwrap();
        for r in 0..8 {
            let id = secure_node_id(ip, r, &mut rng);
            assert!(is_valid_for_ip(&id, ip));
        }
        let random = NodeId([0xaa; 20]);
        assert!(!is_valid_for_ip(&random, ip));
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.20.0.1",
            "169.254.3.3",
            "::1",
        ] {
            assert!(is_valid_for_ip(&random, local.parse().unwrap()), "{local}");
        }
        assert!(!is_exempt(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1
        ))));
    }

    #[test]
    fn distance_and_prefixes() {
        let a = NodeId([0; 20]);
        let b = a.with_bit(0, true);
        let c = a.with_bit(159, true);
        assert!(a.distance(&c) < a.distance(&b));
        assert_eq!(a.common_prefix_len(&b), 0);
        assert_eq!(a.common_prefix_len(&c), 159);
        assert_eq!(a.common_prefix_len(&a), 160);
        assert!(b.bit(0) && !b.bit(1));
    }
}
