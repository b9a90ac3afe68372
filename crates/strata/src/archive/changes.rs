//! What a layer changed relative to its parent, as `docker diff` prints it, found by walking
//! the layer's own `diff/` only, so the cost is the size of the change, not of the image.
//!
//! dockerd walks both whole trees ("naive diff") since v18.06. strata reads the upper
//! directory and looks each entry up in a read-only mount of the parent, giving the same
//! answers:
//! - an entry absent below is `A`; one whose type, mode, owner, device, capability, or (for
//!   non-directories) size or mtime differs is `C`;
//! - a 0/0 character device deletes what is below: `D`, once, at the top of the subtree;
//! - an opaque directory deletes every child below that it does not have again, and so does
//!   every directory below it (the lower tree is hidden there too);
//! - a directory holding any change is `C` itself, listed before its contents;
//! - the root is never listed.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use super::dir::{is_opaque, sorted_names};
use crate::error::{Error, Result};

/// `A`, `C` or `D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ChangeKind {
    /// Added.
    #[serde(rename = "A")]
    Add,
    /// Changed.
    #[serde(rename = "C")]
    Modify,
    /// Deleted.
    #[serde(rename = "D")]
    Delete,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Add => 'A',
            ChangeKind::Modify => 'C',
            ChangeKind::Delete => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The absolute path in the container's view (`/etc/hosts`).
    pub path: PathBuf,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}

/// Changes of the upper directory `upper` over the tree `lower` (the parent's merged view;
/// `None` for a base layer).
pub(crate) fn changes(upper: &Path, lower: Option<&Path>) -> Result<Vec<Change>> {
    let open = |p: &Path| {
        rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open", p, e))
    };
    let upper_fd = open(upper)?;
    let lower_fd = lower.map(open).transpose()?;
    let mut out = Vec::new();
    walk(&upper_fd, lower_fd.as_ref(), Path::new("/"), false, &mut out)?;
    // By path component: a directory comes before its contents; the order is stable.
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The size of a layer as dockerd reports it: `st_size` of every non-directory, each inode once.
pub(crate) fn size(dir: &Path) -> Result<u64> {
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", dir, e))?;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    size_walk(&fd, &mut seen, &mut total).map_err(|e| Error::io("read", dir, e))?;
    Ok(total)
}

fn size_walk(
    fd: &OwnedFd,
    seen: &mut std::collections::HashSet<(u64, u64)>,
    total: &mut u64,
) -> rustix::io::Result<()> {
    for name in sorted_names(fd)? {
        let st = rustix::fs::statat(fd, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let child = rustix::fs::openat(
                fd,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            size_walk(&child, seen, total)?;
        } else if st.st_size > 0 && seen.insert((st.st_dev, st.st_ino)) {
            *total += st.st_size as u64;
        }
    }
    Ok(())
}

/// Walk upper directory `dir` (at container path `at`); `lower` is the same path below, if it
/// is a directory there.
/// `hidden` says an ancestor is opaque: then what is below hides the lower tree entirely, as if
/// opaque itself.
fn walk(dir: &OwnedFd, lower: Option<&OwnedFd>, at: &Path, hidden: bool, out: &mut Vec<Change>) -> Result<()> {
    let upper_names = sorted_names(dir).map_err(|e| Error::io("read", at, e))?;
    for name in &upper_names {
        let path = at.join(name);
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| Error::io("stat", &path, e))?;
        let old = lower.and_then(|l| rustix::fs::statat(l, name, AtFlags::SYMLINK_NOFOLLOW).ok());
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::CharacterDevice && st.st_rdev == 0 {
            if old.is_some() {
                out.push(Change { kind: ChangeKind::Delete, path });
            }
            continue;
        }
        let own = match &old {
            None => Some(ChangeKind::Add),
            Some(old)
                if differs(old, &st) || capability_at(lower, name, kind) != capability_at(Some(dir), name, kind) =>
            {
                Some(ChangeKind::Modify)
            }
            Some(_) => None,
        };
        let start = out.len();
        if let Some(kind) = own {
            out.push(Change { kind, path: path.clone() });
        }
        if kind == FileType::Directory {
            let child = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("open", &path, e))?;
            // Below, only a real directory (never through a symlink) continues the lower tree.
            let lower_child = match &old {
                Some(o) if FileType::from_raw_mode(o.st_mode) == FileType::Directory => lower.and_then(|l| {
                    rustix::fs::openat2(
                        l,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                        ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
                    )
                    .ok()
                }),
                _ => None,
            };
            let hides = hidden || is_opaque(&child);
            walk(&child, lower_child.as_ref(), &path, hides, out)?;
            if let Some(lower_child) = &lower_child
                && hides
            {
                let kept = sorted_names(&child).map_err(|e| Error::io("read", &path, e))?;
                for gone in sorted_names(lower_child).map_err(|e| Error::io("read", &path, e))? {
                    if !kept.contains(&gone) {
                        out.push(Change { kind: ChangeKind::Delete, path: path.join(gone) });
                    }
                }
            }
            if own.is_none() && out.len() > start {
                out.insert(start, Change { kind: ChangeKind::Modify, path });
            }
        }
    }
    Ok(())
}

/// dockerd's `statDifferent`: type and mode, owner, device, and for non-directories size and
/// mtime (equal, or the same second where either side has no nanoseconds).
fn differs(old: &Stat, new: &Stat) -> bool {
    if old.st_mode != new.st_mode || old.st_uid != new.st_uid || old.st_gid != new.st_gid || old.st_rdev != new.st_rdev
    {
        return true;
    }
    if FileType::from_raw_mode(new.st_mode) == FileType::Directory {
        return false;
    }
    let same_time = old.st_mtime == new.st_mtime
        && (old.st_mtime_nsec == new.st_mtime_nsec || old.st_mtime_nsec == 0 || new.st_mtime_nsec == 0);
    !same_time || old.st_size != new.st_size
}

/// `security.capability` of a regular file or directory (nothing else carries one).
fn capability_at(dir: Option<&OwnedFd>, name: &OsStr, kind: FileType) -> Option<Vec<u8>> {
    if !matches!(kind, FileType::RegularFile | FileType::Directory) {
        return None;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir?, name, flags, Mode::empty()).ok()?;
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::fgetxattr(&fd, "security.capability", &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}
