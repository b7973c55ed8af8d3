//! Safe relative paths: nothing a torrent says can name a file outside the download folder.
//!
//! # The path rule
//!
//! A torrent's `name`, every v1 `path` / `path.utf-8` component, every v2 `file tree` key and
//! every BEP 47 `symlink path` component is checked by one rule, and a torrent with a component
//! that breaks it is **rejected** (nothing is silently rewritten, so two torrents can never be
//! sanitised into the same path, and what is shown is what is written). A component is refused
//! when it:
//!
//! 1. is empty ([`UnsafeComponent::Empty`]);
//! 2. is longer than [`Limits::max_component_len`](super::Limits) bytes (`TooLong`);
//! 3. is not valid UTF-8 (`InvalidUtf8`; v1 `path.utf-8` / `name.utf-8` are used instead of
//!    `path` / `name` when present, as libtorrent does, so legacy-encoded torrents that carry them
//!    still load);
//! 4. is `.` or `..` (`Dot`, `DotDot`);
//! 5. contains `/` or `\` (`Separator`: it would split into several components somewhere, or
//!    make the path absolute);
//! 6. contains `:` (`Colon`: a drive letter such as `C:` or an NTFS alternate data stream on
//!    Windows);
//! 7. contains a control character, U+0000–U+001F or U+007F–U+009F (`ControlCharacter`);
//! 8. ends in `.` or space (`TrailingDotOrSpace`: Windows strips them, so `a.` and `a` collide);
//! 9. is a Windows device name — `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`
//!    (also with `¹²³`), `CONIN$`, `CONOUT$` — compared case-insensitively on the part before the
//!    first `.`, so `nul.txt` and `Com1.tar.gz` are refused too (`ReservedName`).
//!
//! Characters that are merely invalid on some file systems (`<>"|?*`) are allowed: they cannot
//! escape the download folder, and the runtime reports a storage error where they cannot be
//! created. Paths are compared byte for byte; two paths differing only in case are distinct here
//! even though a case-insensitive file system would merge them.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a path component was refused; see the [path rule](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeComponent {
    /// A path with no components at all.
    NoComponents,
    /// An empty component.
    Empty,
    /// A component longer than the limit.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A component that is not valid UTF-8.
    InvalidUtf8,
    /// The component `.`.
    Dot,
    /// The component `..`.
    DotDot,
    /// A component containing `/` or `\`.
    Separator,
    /// A component containing `:`.
    Colon,
    /// A component containing a control character.
    ControlCharacter,
    /// A component ending in `.` or a space.
    TrailingDotOrSpace,
    /// A Windows device name such as `CON` or `lpt1.txt`.
    ReservedName,
}

/// A refused path component and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// The component, decoded lossily for display.
    pub component: String,
    /// Why it was refused.
    pub reason: UnsafeComponent,
}

impl fmt::Display for UnsafeComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoComponents => f.write_str("the path has no components"),
            Self::Empty => f.write_str("empty component"),
            Self::TooLong { len, max } => write!(f, "{len} bytes, more than {max}"),
            Self::InvalidUtf8 => f.write_str("not UTF-8"),
            Self::Dot => f.write_str("`.`"),
            Self::DotDot => f.write_str("`..`"),
            Self::Separator => f.write_str("contains a path separator"),
            Self::Colon => f.write_str("contains `:`"),
            Self::ControlCharacter => f.write_str("contains a control character"),
            Self::TrailingDotOrSpace => f.write_str("ends in a dot or space"),
            Self::ReservedName => f.write_str("a reserved device name on Windows"),
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "component {:?}: {}", self.component, self.reason)
    }
}

impl std::error::Error for PathError {}

const RESERVED: &[&str] = &["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];

fn is_reserved(component: &str) -> bool {
    let stem = component.split('.').next().unwrap_or("");
    let stem = stem.trim_end_matches(' ');
    if RESERVED.iter().any(|r| stem.eq_ignore_ascii_case(r)) {
        return true;
    }
    let mut chars = stem.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    if !(prefix.eq_ignore_ascii_case("COM") || prefix.eq_ignore_ascii_case("LPT")) {
        return false;
    }
    let rest = chars.as_str();
    let mut rest_chars = rest.chars();
    matches!(
        (rest_chars.next(), rest_chars.next()),
        (Some('0'..='9' | '¹' | '²' | '³'), None)
    )
}

/// Checks one component against the [path rule](self) and returns it as text.
pub fn check_component(bytes: &[u8], max_len: usize) -> Result<&str, PathError> {
    let fail = |reason| {
        Err(PathError {
            component: String::from_utf8_lossy(bytes).into_owned(),
            reason,
        })
    };
    if bytes.is_empty() {
        return fail(UnsafeComponent::Empty);
    }
    if bytes.len() > max_len {
        return fail(UnsafeComponent::TooLong {
            len: bytes.len(),
            max: max_len,
        });
    }
    let Ok(s) = std::str::from_utf8(bytes) else {
        return fail(UnsafeComponent::InvalidUtf8);
    };
    let reason = match s {
        "." => Some(UnsafeComponent::Dot),
        ".." => Some(UnsafeComponent::DotDot),
        _ if s.contains(['/', '\\']) => Some(UnsafeComponent::Separator),
        _ if s.contains(':') => Some(UnsafeComponent::Colon),
        _ if s.chars().any(char::is_control) => Some(UnsafeComponent::ControlCharacter),
        _ if s.ends_with(['.', ' ']) => Some(UnsafeComponent::TrailingDotOrSpace),
        _ if is_reserved(s) => Some(UnsafeComponent::ReservedName),
        _ => None,
    };
    match reason {
        Some(r) => fail(r),
        None => Ok(s),
    }
}

/// A relative path whose every component passed the [path rule](self).
///
/// It has at least one component, and joining it under a directory never leaves that directory.
/// Displayed (and stored) with `/` between components.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafePath(String);

impl SafePath {
    /// Checks each component and builds the path.
    ///
    /// ```
    /// use bitshoal_core::metainfo::SafePath;
    /// let p = SafePath::from_components([&b"dir"[..], b"file.txt"], 255).unwrap();
    /// assert_eq!(p.as_str(), "dir/file.txt");
    /// assert!(SafePath::from_components([&b".."[..]], 255).is_err());
    /// ```
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = &'a [u8]>,
        max_component_len: usize,
    ) -> Result<Self, PathError> {
        let mut out = String::new();
        for c in components {
            let c = check_component(c, max_component_len)?;
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(c);
        }
        if out.is_empty() {
            return Err(PathError {
                component: String::new(),
                reason: UnsafeComponent::NoComponents,
            });
        }
        Ok(Self(out))
    }

    /// The path with `/` between components.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, in order.
    pub fn components(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The number of components.
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// The last component: the file's own name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// `self` followed by the components of `rest`.
    #[must_use]
    pub fn join(&self, rest: &SafePath) -> SafePath {
        SafePath(format!("{}/{}", self.0, rest.0))
    }

    /// This path under `root`, one component at a time; the result always lies inside `root`.
    pub fn join_under(&self, root: &Path) -> PathBuf {
        let mut out = root.to_path_buf();
        for c in self.components() {
            out.push(c);
        }
        out
    }

    /// Compares two paths component by component (so `a/b` sorts before `a-b`).
    pub fn cmp_components(&self, other: &SafePath) -> Ordering {
        self.components().cmp(other.components())
    }

    /// Whether `self` is a proper prefix of `other`, component-wise: a directory holding it.
    pub fn is_ancestor_of(&self, other: &SafePath) -> bool {
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0.as_bytes()[self.0.len()] == b'/'
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafePath({:?})", self.0)
    }
}

/// Where two paths of a file list collide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Collision {
    /// The same path twice.
    Duplicate(String),
    /// A file that is also the directory of another.
    FileIsDirectory { path: String, inside: String },
}

/// Finds duplicate paths and files that are also directories, in O(n log n).
///
/// After sorting component-wise, a path's descendants follow it directly, so comparing
/// neighbours finds every collision (the first one in sorted order is reported).
pub(crate) fn find_collision(mut paths: Vec<&SafePath>) -> Option<Collision> {
    paths.sort_unstable_by(|a, b| a.cmp_components(b));
    for pair in paths.windows(2) {
        if pair[0] == pair[1] {
            return Some(Collision::Duplicate(pair[0].0.clone()));
        }
        if pair[0].is_ancestor_of(pair[1]) {
            return Some(Collision::FileIsDirectory {
                path: pair[0].0.clone(),
                inside: pair[1].0.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Component;

    fn reason(c: &str) -> Option<UnsafeComponent> {
        check_component(c.as_bytes(), 255).err().map(|e| e.reason)
    }

    #[test]
    fn the_rule_table() {
        use UnsafeComponent::*;
        let table: &[(&str, Option<UnsafeComponent>)] = &[
            ("file.txt", None),
            (".hidden", None),
            ("a..b", None),
            ("What? <yes> \"quoted\" |*", None),
            ("日本語", None),
            ("COM10", None),
            ("CONSOLE", None),
            ("nullable.txt", None),
            ("", Some(Empty)),
            (".", Some(Dot)),
            ("..", Some(DotDot)),
            ("a/b", Some(Separator)),
            ("/etc", Some(Separator)),
            ("..\\x", Some(Separator)),
            ("C:", Some(Colon)),
            ("file:stream", Some(Colon)),
            ("a\0b", Some(ControlCharacter)),
            ("a\nb", Some(ControlCharacter)),
            ("a\u{85}b", Some(ControlCharacter)),
            ("a\u{7f}", Some(ControlCharacter)),
            ("name.", Some(TrailingDotOrSpace)),
            ("name ", Some(TrailingDotOrSpace)),
            ("...", Some(TrailingDotOrSpace)),
            ("CON", Some(ReservedName)),
            ("nul.txt", Some(ReservedName)),
            ("Com1.tar.gz", Some(ReservedName)),
            ("lpt9", Some(ReservedName)),
            ("COM²", Some(ReservedName)),
            ("aux .txt", Some(ReservedName)),
            ("CONOUT$", Some(ReservedName)),
        ];
        for (c, want) in table {
            assert_eq!(reason(c), *want, "{c:?}");
        }
        assert_eq!(
            check_component(b"\xff\xfe", 255).unwrap_err().reason,
            InvalidUtf8
        );
        assert_eq!(
            check_component(&[b'a'; 256], 255).unwrap_err().reason,
            TooLong { len: 256, max: 255 }
        );
        assert!(check_component(&[b'a'; 255], 255).is_ok());
    }

    #[test]
    fn empty_path_is_refused() {
        let err = SafePath::from_components(std::iter::empty(), 255).unwrap_err();
        assert_eq!(err.reason, UnsafeComponent::NoComponents);
    }

    #[test]
    fn path_helpers() {
        let p = SafePath::from_components([&b"a"[..], b"b", b"c.txt"], 255).unwrap();
        assert_eq!(p.depth(), 3);
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        let a = SafePath::from_components([&b"a"[..]], 255).unwrap();
        let ab = SafePath::from_components([&b"a"[..], b"b"], 255).unwrap();
        let a_dash = SafePath::from_components([&b"a-b"[..]], 255).unwrap();
        let abc = SafePath::from_components([&b"abc"[..]], 255).unwrap();
        assert!(a.is_ancestor_of(&ab));
        assert!(a.is_ancestor_of(&p));
        assert!(!a.is_ancestor_of(&abc));
        assert!(!a.is_ancestor_of(&a));
        assert_eq!(ab.cmp_components(&a_dash), Ordering::Less);
        assert_eq!(a.join(&ab).as_str(), "a/a/b");
        assert_eq!(
            p.join_under(Path::new("/dl")),
            Path::new("/dl").join("a").join("b").join("c.txt")
        );
    }

    #[test]
    fn collisions() {
        let mk = |s: &str| {
            SafePath::from_components(s.split('/').map(str::as_bytes), 255).expect("valid")
        };
        let (a, ab, a_b, x) = (mk("d/a"), mk("d/a/b"), mk("d/a-b"), mk("x"));
        assert_eq!(find_collision(vec![&a, &a_b, &x]), None);
        assert_eq!(
            find_collision(vec![&x, &a, &x]),
            Some(Collision::Duplicate("x".into()))
        );
        // "d/a-b" sorts between "d/a" and "d/a/b" as strings, not as components.
        assert_eq!(
            find_collision(vec![&ab, &a_b, &a]),
            Some(Collision::FileIsDirectory {
                path: "d/a".into(),
                inside: "d/a/b".into()
            })
        );
    }

    proptest! {
        #[test]
        fn accepted_paths_stay_under_the_root(
            components in proptest::collection::vec(
                prop_oneof![
                    ".{0,12}",
                    "[a-zA-Z0-9 ./\\\\:]{0,6}",
                    Just("..".to_string()),
                    Just("C:".to_string()),
                ],
                0..5,
            )
        ) {
            let root = Path::new("/download/root");
            if let Ok(p) = SafePath::from_components(components.iter().map(|c| c.as_bytes()), 255) {
                let joined = p.join_under(root);
                prop_assert!(joined.starts_with(root));
                let below: Vec<_> = joined.strip_prefix(root).unwrap().components().collect();
                prop_assert_eq!(below.len(), components.len());
                for c in below {
                    prop_assert!(matches!(c, Component::Normal(_)), "{:?}", c);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = check_component(&bytes, 16);
        }
    }
}
