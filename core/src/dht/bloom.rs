//! The BEP 33 scrape bloom filter: 2,048 bits, two SHA-1-derived indices per IP address.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

/// The filter's size in bytes (BEP 33: m = 256 × 8 bits).
pub const BLOOM_BYTES: usize = 256;

const M: usize = BLOOM_BYTES * 8;

/// A BEP 33 bloom filter of IP addresses (`BFsd` for seeds, `BFpe` for peers).
#[derive(Clone, PartialEq, Eq)]
pub struct ScrapeBloom([u8; BLOOM_BYTES]);

impl std::fmt::Debug for ScrapeBloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScrapeBloom(~{:.0})", self.estimate())
    }
}

impl Default for ScrapeBloom {
    fn default() -> Self {
        Self([0; BLOOM_BYTES])
    }
}

impl ScrapeBloom {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The filter from its 256 wire bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 256 wire bytes.
    pub fn as_bytes(&self) -> &[u8; BLOOM_BYTES] {
        &self.0
    }

    /// Inserts an address (BEP 33 `insertIP`: the address bytes, never the port).
    pub fn insert(&mut self, ip: IpAddr) {
        let hash = match ip {
            IpAddr::V4(v4) => Sha1::digest(v4.octets()),
            IpAddr::V6(v6) => Sha1::digest(v6.octets()),
        };
        let index1 = (usize::from(hash[0]) | usize::from(hash[1]) << 8) % M;
        let index2 = (usize::from(hash[2]) | usize::from(hash[3]) << 8) % M;
        self.0[index1 / 8] |= 1 << (index1 % 8);
        self.0[index2 / 8] |= 1 << (index2 % 8);
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// The estimate rounded to a count, 0 for an empty filter (whose formula gives 0.5).
    pub fn count(&self) -> u32 {
        if self.is_empty() {
            0
        } else {
            self.estimate().round() as u32
        }
    }

    /// Adds every address of `other` (the union of the two sets).
    pub fn union(&mut self, other: &ScrapeBloom) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
    }

    /// The estimated number of distinct addresses inserted (BEP 33's formula).
    pub fn estimate(&self) -> f64 {
        let zeros: u32 = self.0.iter().map(|b| b.count_zeros()).sum();
        let c = f64::from(zeros.min(M as u32 - 1));
        let m = M as f64;
        (c / m).ln() / (2.0 * (1.0 - 1.0 / m).ln())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// BEP 33's test vector.
    const EXPECTED: &str =
        "F6C3F5EAA07FFD91BDE89F777F26FB2BFF37BDB8FB2BBAA2FD3DDDE7BACFFF75EE7CCBAE\
        FE5EEDB1FBFAFF67F6ABFF5E43DDBCA3FD9B9FFDF4FFD3E9DFF12D1BDF59DB53DBE9FA5B\
        7FF3B8FDFCDE1AFB8BEDD7BE2F3EE71EBBBFE93BCDEEFE148246C2BC5DBFF7E7EFDCF24F\
        D8DC7ADFFD8FFFDFDDFFF7A4BBEEDF5CB95CE81FC7FCFF1FF4FFFFDFE5F7FDCBB7FD79B3\
        FA1FC77BFE07FFF905B7B7FFC7FEFEFFE0B8370BB0CD3F5B7F2BD93FEB4386CFDD6F7FD5\
        BFAF2E9EBFFFFEECD67ADBF7C67F17EFD5D75EBA6FFEBA7FFF47A91EB1BFBB53E8ABFB57\
        62ABE8FF237279BFEFBFEEF5FFC5FEBFDFE5ADFFADFEE1FB737FFFFBFD9F6AEFFEEE76B6\
        FD8F72EF";

    #[test]
    fn bep33_test_vector() {
        let mut bloom = ScrapeBloom::new();
        for i in 0..=255u8 {
            bloom.insert(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)));
        }
        for i in 0..=0x3e7u16 {
            bloom.insert(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)));
        }
        let expected: Vec<u8> = (0..EXPECTED.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&EXPECTED[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(expected.len(), BLOOM_BYTES);
        assert_eq!(&bloom.as_bytes()[..], &expected[..]);
        let estimate = bloom.estimate();
        assert!((estimate - 1224.9308).abs() < 0.001, "{estimate}");
    }

    #[test]
    fn union_and_small_estimates() {
        let mut a = ScrapeBloom::new();
        // BEP 33's formula caps the zero count at m - 1, so an empty filter estimates 0.5.
        assert!(a.estimate() < 1.0);
        let mut b = ScrapeBloom::new();
        for i in 0..50u8 {
            a.insert(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)));
            b.insert(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i)));
        }
        let ea = a.estimate();
        assert!((45.0..55.0).contains(&ea), "{ea}");
        a.union(&b);
        let eu = a.estimate();
        assert!((90.0..110.0).contains(&eu), "{eu}");
        assert_eq!(ScrapeBloom::from_slice(a.as_bytes()), Some(a.clone()));
        assert_eq!(ScrapeBloom::from_slice(&[0; 10]), None);
    }
}
