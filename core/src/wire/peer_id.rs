//! BEP 20 peer id conventions: making ours, and naming other clients' for display.
//!
//! Peer ids are for display only: any client can claim any id. BEP 10's `v` key is the more
//! reliable name when a peer sends it.

use std::fmt;

use crate::id::PeerId;

/// Characters the random part of a generated peer id is drawn from: printable and URL-safe, so
/// ids read well in logs and cost no escaping in tracker announces.
const RANDOM_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl PeerId {
    /// bitshoal's Azureus-style prefix (BEP 20): `-BS` and the crate version, e.g. `-BS0100-`
    /// for 0.1.0.
    pub const BITSHOAL_PREFIX: [u8; 8] = [
        b'-',
        b'B',
        b'S',
        version_char(env!("CARGO_PKG_VERSION_MAJOR")),
        version_char(env!("CARGO_PKG_VERSION_MINOR")),
        version_char(env!("CARGO_PKG_VERSION_PATCH")),
        b'0',
        b'-',
    ];

    /// A peer id made of an 8-byte `prefix` (BEP 20 style, such as
    /// [`PeerId::BITSHOAL_PREFIX`]) and 12 bytes drawn from `random`.
    ///
    /// The core has no entropy of its own: the caller passes bytes from its seeded generator.
    /// Each is mapped onto letters and digits, keeping the id printable.
    pub fn generate(prefix: &[u8; 8], random: [u8; 12]) -> Self {
        let mut id = [0; 20];
        id[..8].copy_from_slice(prefix);
        for (out, r) in id[8..].iter_mut().zip(random) {
            *out = RANDOM_ALPHABET[usize::from(r) % RANDOM_ALPHABET.len()];
        }
        Self(id)
    }
}

/// One version component of a prefix: 0-9 as digits, 10-35 as `A`-`Z` (as libtorrent and
/// Deluge do), anything larger as `Z`. Evaluated at compile time on the crate version.
const fn version_char(component: &str) -> u8 {
    let bytes = component.as_bytes();
    let mut n: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        n = n
            .saturating_mul(10)
            .saturating_add((bytes[i] - b'0') as u32);
        i += 1;
    }
    match n {
        0..=9 => b'0' + n as u8,
        10..=35 => b'A' + (n - 10) as u8,
        _ => b'Z',
    }
}

/// A client recognised from its peer id, for display.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The client's name.
    pub name: &'static str,
    /// Its version as the peer id encodes it, dotted (`"2.0.8"`); may be empty.
    pub version: String,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{} {}", self.name, self.version)
        }
    }
}

/// Azureus-style codes (`-XXnnnn-`, BEP 20), with the clients seen today first.
///
/// BEP 20 lists `BS` as BTSlave, a client long gone; bitshoal uses it.
const AZUREUS: &[(&[u8; 2], &str)] = &[
    (b"BS", "bitshoal"),
    (b"LT", "libtorrent"),
    (b"lt", "libTorrent (rakshasa)"),
    (b"qB", "qBittorrent"),
    (b"TR", "Transmission"),
    (b"UT", "\u{b5}Torrent"),
    (b"UW", "\u{b5}Torrent Web"),
    (b"UM", "\u{b5}Torrent Mac"),
    (b"DE", "Deluge"),
    (b"rQ", "rqbit"),
    (b"BC", "BitComet"),
    (b"BI", "BiglyBT"),
    (b"AZ", "Vuze"),
    (b"KT", "KTorrent"),
    (b"PI", "PicoTorrent"),
    (b"WW", "WebTorrent"),
    (b"WD", "WebTorrent Desktop"),
    (b"FD", "Free Download Manager"),
    (b"FW", "FrostWire"),
    (b"XL", "Xunlei"),
    (b"SD", "Thunder"),
    (b"MO", "MonoTorrent"),
    (b"TL", "Tribler"),
    (b"HL", "Halite"),
    (b"KG", "KGet"),
    (b"BF", "Bitflu"),
    (b"BG", "BTG"),
    (b"CD", "Enhanced CTorrent"),
    (b"CT", "CTorrent"),
    (b"LW", "LimeWire"),
    (b"SZ", "Shareaza"),
    (b"S~", "Shareaza alpha/beta"),
    (b"ZT", "ZipTorrent"),
];

/// Shad0w-style codes (BEP 20): one letter, up to five version characters, dashes.
const SHADOW: &[(u8, &str)] = &[
    (b'A', "ABC"),
    (b'O', "Osprey Permaseed"),
    (b'Q', "BTQueue"),
    (b'R', "Tribler"),
    (b'S', "Shad0w"),
    (b'T', "BitTornado"),
    (b'U', "UPnP NAT Bit Torrent"),
];

/// Mainline-style codes (BEP 20): letters, then dash-separated decimal numbers.
const MAINLINE: &[(&[u8], &str)] = &[(b"A2", "aria2"), (b"M", "Mainline"), (b"Q", "Queen Bee")];

/// Names the client behind a peer id, for display, if it follows a convention we know (BEP 20).
///
/// Recognises Azureus style (`-LT2080-`), mainline style (`M4-3-6--`, and aria2's
/// `A2-1-37-0-`), Shad0w style (`S58B-----`), old BitComet / BitLord (`exbc`) and XBT.
pub fn client_name(id: &PeerId) -> Option<Client> {
    let id = &id.0;
    azureus(id)
        .or_else(|| mainline(id))
        .or_else(|| bitcomet(id))
        .or_else(|| xbt(id))
        .or_else(|| shadow(id))
}

fn azureus(id: &[u8; 20]) -> Option<Client> {
    if id[0] != b'-' || id[7] != b'-' {
        return None;
    }
    let code = [id[1], id[2]];
    let &(_, name) = AZUREUS.iter().find(|(c, _)| **c == code)?;
    let digits: &[u8; 4] = id[3..7].try_into().expect("4 bytes");
    if !digits.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let version = if &code == b"TR" && digits[..3].iter().all(u8::is_ascii_digit) {
        transmission_version(digits)
    } else {
        dotted(digits)
    };
    Some(Client { name, version })
}

/// Transmission numbers its versions 2.94, 3.00, then 4.0.0: `-TR2940-`, `-TR3000-`,
/// `-TR4000-`. A last character `Z` or `X` marks a development build.
fn transmission_version(d: &[u8; 4]) -> String {
    let dev = if matches!(d[3], b'Z' | b'X') {
        " (dev)"
    } else {
        ""
    };
    let [a, b, c] = [d[0], d[1], d[2]].map(|c| c - b'0');
    if a < 4 {
        format!("{a}.{b}{c}{dev}")
    } else {
        format!("{a}.{b}.{c}{dev}")
    }
}

/// Azureus-style version characters joined with dots: `0`-`9` and `A`-`Z` as numbers 0-35
/// (libtorrent, Deluge), anything else as itself; trailing zeros beyond three components dropped.
fn dotted(chars: &[u8]) -> String {
    let mut parts: Vec<String> = chars
        .iter()
        .map(|&c| match version_value(c) {
            Some(v) if v < 36 => v.to_string(),
            _ => char::from(c).to_string(),
        })
        .collect();
    while parts.len() > 3 && parts.last().is_some_and(|p| p == "0") {
        parts.pop();
    }
    parts.join(".")
}

/// A version character: `0`-`9`, then `A`-`Z` for 10-35, `a`-`z` for 36-61, `.` 62 (the
/// Shad0w alphabet, of which Azureus style uses the first 36).
fn version_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 36),
        b'.' => Some(62),
        _ => None,
    }
}

fn mainline(id: &[u8; 20]) -> Option<Client> {
    let &(code, name) = MAINLINE.iter().find(|(c, _)| id.starts_with(c))?;
    // Then `n-n-n-`: three decimal numbers, each ended by a dash, within the first 12 bytes.
    let mut rest = &id[code.len()..12];
    if rest.first() == Some(&b'-') {
        rest = &rest[1..]; // aria2 puts a dash after its code
    }
    let mut parts = Vec::with_capacity(3);
    for _ in 0..3 {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 3 || rest.get(digits) != Some(&b'-') {
            return None;
        }
        let text = std::str::from_utf8(&rest[..digits]).ok()?;
        parts.push(text.to_owned());
        rest = &rest[digits + 1..];
    }
    Some(Client {
        name,
        version: parts.join("."),
    })
}

fn bitcomet(id: &[u8; 20]) -> Option<Client> {
    let name = match (&id[..4], &id[6..10]) {
        (b"exbc", b"LORD") => "BitLord",
        (b"exbc", _) => "BitComet",
        _ => return None,
    };
    Some(Client {
        name,
        version: format!("{}.{:02}", id[4], id[5]),
    })
}

fn xbt(id: &[u8; 20]) -> Option<Client> {
    if &id[..3] != b"XBT" || !id[3..6].iter().all(u8::is_ascii_digit) || id[7] != b'-' {
        return None;
    }
    let debug = match id[6] {
        b'd' => " (debug)",
        b'-' => "",
        _ => return None,
    };
    Some(Client {
        name: "XBT Client",
        version: format!("{}.{}.{}{debug}", id[3] - b'0', id[4] - b'0', id[5] - b'0'),
    })
}

fn shadow(id: &[u8; 20]) -> Option<Client> {
    let &(_, name) = SHADOW.iter().find(|(c, _)| *c == id[0])?;
    // Up to five version characters padded with dashes, then `---` (BEP 20).
    if &id[6..9] != b"---" {
        return None;
    }
    let version = &id[1..6];
    let len = version.iter().position(|&c| c == b'-').unwrap_or(5);
    if len == 0 || version[len..].iter().any(|&c| c != b'-') {
        return None;
    }
    let values = version[..len]
        .iter()
        .map(|&c| version_value(c))
        .collect::<Option<Vec<u32>>>()?;
    let parts: Vec<String> = values.iter().map(u32::to_string).collect();
    Some(Client {
        name,
        version: parts.join("."),
    })
}
