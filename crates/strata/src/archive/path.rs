//! Tar entry names made safe, and the whiteout rules of the OCI layer format.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Prefix of a whiteout entry: `.wh.<name>` hides `<name>` of the layers below.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// A directory's opaque marker: hides everything the layers below have in it.
pub(crate) const OPAQUE: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata entries, which carry nothing for OverlayFS.
const META_PREFIX: &str = ".wh..wh.";

/// An entry name as a path relative to the layer root: leading `/` and `./` dropped, `.`
/// components dropped, `..` resolved lexically. `None` if it climbs above the root.
pub(crate) fn normalize(raw: &[u8]) -> Option<PathBuf> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.iter().map(|p| OsStr::from_bytes(p)).collect())
}

/// What an entry's base name means under the OCI whiteout rules.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    None,
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Delete(&'a OsStr),
    /// `.wh..wh.<anything else>`: AUFS metadata, skipped.
    Meta,
    /// `.wh.`, `.wh..`, `.wh...`: names nothing; refused.
    Invalid,
}

pub(crate) fn whiteout(base: &OsStr) -> Whiteout<'_> {
    let bytes = base.as_bytes();
    if bytes == OPAQUE.as_bytes() {
        return Whiteout::Opaque;
    }
    if bytes.starts_with(META_PREFIX.as_bytes()) {
        return Whiteout::Meta;
    }
    match bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        None => Whiteout::None,
        Some(b"" | b"." | b"..") => Whiteout::Invalid,
        Some(name) => Whiteout::Delete(OsStr::from_bytes(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_inside_the_root_or_not_at_all() {
        for (raw, want) in [
            ("a/b", Some("a/b")),
            ("./a/./b/", Some("a/b")),
            ("/etc/passwd", Some("etc/passwd")),
            ("a/../b", Some("b")),
            ("./", Some("")),
            ("a/b/../../c", Some("c")),
            ("../x", None),
            ("a/../../x", None),
            ("/../etc", None),
        ] {
            assert_eq!(normalize(raw.as_bytes()), want.map(PathBuf::from), "{raw}");
        }
    }

    #[test]
    fn whiteout_rules() {
        fn w(s: &str) -> Whiteout<'_> {
            whiteout(OsStr::new(s))
        }
        assert_eq!(w("file"), Whiteout::None);
        assert_eq!(w(".wh.file"), Whiteout::Delete(OsStr::new("file")));
        assert_eq!(w(".wh..hidden"), Whiteout::Delete(OsStr::new(".hidden")));
        assert_eq!(w(".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(w(".wh..wh.plnk"), Whiteout::Meta);
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert_eq!(w(bad), Whiteout::Invalid, "{bad}");
        }
        assert_eq!(w(".whfile"), Whiteout::None);
    }
}
