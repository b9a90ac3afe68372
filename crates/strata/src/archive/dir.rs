//! Reading a directory by its descriptor: entries in byte order, and the opaque marker.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use super::unpack::OPAQUE_XATTR;

/// The names in directory `fd` (without `.` and `..`), sorted bytewise, as Go's
/// `filepath.WalkDir` visits them.
pub(crate) fn sorted_names(fd: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
    let mut dir = rustix::fs::Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(e) = dir.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_owned());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Whether directory `fd` is opaque to the layers below (`trusted.overlay.opaque=y`).
pub(crate) fn is_opaque(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut buf), Ok(1) if buf[0] == b'y')
}
