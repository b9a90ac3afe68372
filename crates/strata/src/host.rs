//! Facts about files and the running process that tools and tests built on strata need.

use std::path::Path;

/// Whether this process runs as root (mounting OverlayFS needs it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// An extended attribute of `path` itself (not of a symlink's target); `None` if it is unset.
pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// `(major, minor)` of a device number (`st_rdev`).
pub fn device_numbers(rdev: u64) -> (u32, u32) {
    (rustix::fs::major(rdev), rustix::fs::minor(rdev))
}
