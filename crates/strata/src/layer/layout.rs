//! One layer directory, file for file as dockerd 20.10 writes it:
//!
//! ```text
//! <root>/overlay2/<id>/     0710
//! ├── diff/                 0755  the layer's own files (the upperdir when mounted read-write)
//! ├── link                  0644  its short link name: 26 base32 characters, no newline
//! ├── lower                 0644  l/<link> of every ancestor, nearest first, joined by ':'
//! │                               (absent for a base layer)
//! ├── work/                 0700  OverlayFS's workdir (only with a parent)
//! ├── merged/               0700  the mount point, while mounted
//! └── committed             0600  empty; written when the first child is created, after
//!                                 which the layer is mounted read-only (no upperdir), because
//!                                 the kernel refuses a directory that is the upperdir of one
//!                                 mount and a lowerdir of another (EBUSY since Linux 5.2)
//! <root>/overlay2/l/<link> -> ../<id>/diff
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::read_optional;
use crate::id::{LayerId, ShortLink};

/// Directory modes and file modes of a layer, as dockerd sets them (its umask is 022).
pub(crate) mod mode {
    /// `<id>/`
    pub const LAYER_DIR: u32 = 0o710;
    /// `<id>/diff/`
    pub const DIFF: u32 = 0o755;
    /// `<id>/work/` and `<id>/merged/`
    pub const WORK: u32 = 0o700;
    /// `<id>/link` and `<id>/lower`
    pub const META: u32 = 0o644;
    /// `<id>/committed`
    pub const COMMITTED: u32 = 0o600;
}

/// File names inside a layer directory.
pub(crate) const DIFF: &str = "diff";
pub(crate) const WORK: &str = "work";
pub(crate) const MERGED: &str = "merged";
pub(crate) const LINK: &str = "link";
pub(crate) const LOWER: &str = "lower";
pub(crate) const COMMITTED: &str = "committed";

/// The prefix of every entry of a `lower` file.
const LOWER_PREFIX: &str = "l/";

/// The `lower` file's content for a layer whose ancestors' links are `lowers`, nearest first.
pub(crate) fn format_lower(lowers: &[ShortLink]) -> String {
    let entries: Vec<String> = lowers.iter().map(|l| format!("{LOWER_PREFIX}{l}")).collect();
    entries.join(":")
}

/// Parse a `lower` file.
pub(crate) fn parse_lower(path: &Path, content: &str) -> Result<Vec<ShortLink>> {
    content
        .trim_end_matches('\n')
        .split(':')
        .map(|entry| {
            entry
                .strip_prefix(LOWER_PREFIX)
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| Error::corrupt(path, format!("lower entry {entry:?} is not l/<26 base32 characters>")))
        })
        .collect()
}

/// Read `<dir>/link`; `None` if it is missing.
pub(crate) fn read_link(dir: &Path) -> Result<Option<ShortLink>> {
    let path = dir.join(LINK);
    let Some(content) = read_optional(&path)? else { return Ok(None) };
    content
        .trim_end_matches('\n')
        .parse()
        .map(Some)
        .map_err(|_| Error::corrupt(path, "link is not 26 base32 characters"))
}

/// Read `<dir>/lower`: the ancestors' links, nearest first (empty for a base layer).
pub(crate) fn read_lower(dir: &Path) -> Result<Vec<ShortLink>> {
    let path = dir.join(LOWER);
    match read_optional(&path)? {
        None => Ok(Vec::new()),
        Some(content) => parse_lower(&path, &content),
    }
}

/// The layer `l/<link>` points at, if it is a link of the form `../<id>/diff`.
pub(crate) fn resolve_link(link_dir: &Path, link: &ShortLink) -> Result<Option<LayerId>> {
    let path = link_dir.join(link.as_str());
    match std::fs::read_link(&path) {
        Ok(target) => Ok(layer_of_link_target(&target)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("readlink", path),
    }
}

/// `../<id>/diff` → `<id>`.
pub(crate) fn layer_of_link_target(target: &Path) -> Option<LayerId> {
    let s = target.to_str()?;
    s.strip_prefix("../")?.strip_suffix("/diff")?.parse().ok()
}

/// Remove what a layer directory holds besides a non-empty `diff/`, one entry at a time, as
/// far as it goes (best effort: whatever is left is for a recursive removal).
pub(crate) fn take_apart(dir: &Path) {
    for file in [LINK, LOWER, COMMITTED] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let work = dir.join(WORK);
    for sub in [work.join(WORK), work, dir.join(MERGED), dir.join(DIFF)] {
        let _ = std::fs::remove_dir(sub);
    }
}

/// The target of a layer's short link, relative to `l/`.
pub(crate) fn link_target(id: &LayerId) -> PathBuf {
    PathBuf::from(format!("../{id}/{DIFF}"))
}
