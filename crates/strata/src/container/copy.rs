//! `cp`: files out of a container's tree as a tar, and a tar into it, running or not. Every
//! path inside the container is resolved by the kernel as if the container's root were `/`
//! (`openat2(RESOLVE_IN_ROOT)`), and every file is opened relative to its directory without
//! following symlinks, so neither a symlink in the image (to `/etc`, through `..` chains) nor
//! one swapped in during the copy leads a read or a write outside the container's tree.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use super::ContainerStore;
use crate::error::{Error, IoContext, Result};

/// What a path inside a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing is there.
    Missing,
    /// A directory (symlinks followed).
    Dir,
    /// Anything else.
    Other,
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// `path` (absolute, in the container) relative to its root.
fn relative(path: &str) -> &str {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() { "." } else { rel }
}

impl ContainerStore {
    /// Run `each` with the container's tree mounted (its own mount, running or not).
    fn with_tree<T>(&self, name: &str, each: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let root = self.mount(name)?;
        let result = each(&root);
        let unmounted = self.unmount(name);
        let value = result?;
        unmounted?;
        Ok(value)
    }

    /// What `path` is inside the container (symlinks followed inside its tree).
    pub fn path_kind(&self, name: &str, path: &str) -> Result<PathKind> {
        self.with_tree(name, |root| kind_in(root, path))
    }

    /// Write `path` in the container as a tar to `out`: a file as one entry named `top`, a
    /// directory as `top/` and everything under it (`top` empty: its contents alone). Owners,
    /// modes, mtimes, symlinks and hard links as they are (owners `owner`, if given); `follow`
    /// follows a symlink at `path` itself (`-L`), others are copied as symlinks.
    pub fn copy_out(
        &self,
        name: &str,
        path: &str,
        top: &str,
        follow: bool,
        owner: Option<(u32, u32)>,
        out: impl Write,
    ) -> Result<()> {
        self.with_tree(name, |root| {
            let root_fd = open_root(root)?;
            let missing = || Error::BadOption {
                what: "path",
                value: path.to_owned(),
                reason: format!("could not find the file {path} in container {name}"),
            };
            let nofollow = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
            let fd = rustix::fs::openat2(
                &root_fd,
                relative(path),
                OFlags::PATH | OFlags::CLOEXEC | nofollow,
                Mode::empty(),
                in_root(),
            )
            .map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => missing(),
                e => Error::io("open", path, e),
            })?;
            crate::archive::tree::pack_tree(&fd, top, owner, path, out)
        })
    }

    /// Extract the tar `input` into the directory `dir` of the container (which must exist),
    /// entries as plain files whatever their names; nothing is written outside the tree.
    pub fn copy_in(&self, name: &str, dir: &str, input: impl Read) -> Result<()> {
        self.with_tree(name, |root| {
            if kind_in(root, dir)? != PathKind::Dir {
                return Err(Error::BadOption {
                    what: "path",
                    value: dir.to_owned(),
                    reason: format!("no directory {dir} in container {name}: the destination's parent must exist"),
                });
            }
            crate::archive::extract_into(root, Path::new(relative(dir)), input)
        })
    }
}

/// What `path` is in the tree mounted at `root` (symlinks followed inside it).
fn kind_in(root: &Path, path: &str) -> Result<PathKind> {
    let root_fd = open_root(root)?;
    match rustix::fs::openat2(&root_fd, relative(path), OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), in_root()) {
        Ok(fd) => {
            let st = rustix::fs::fstat(&fd).ctx("stat", path)?;
            Ok(if FileType::from_raw_mode(st.st_mode) == FileType::Directory { PathKind::Dir } else { PathKind::Other })
        }
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(PathKind::Missing),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ctx("open", root)
}
