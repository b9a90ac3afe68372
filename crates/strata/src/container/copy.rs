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
    /// Run `each` with the container's tree mounted (its own mount, running or not) and its
    /// volumes and binds over it, as dockerd mounts them for `docker cp`: in a mount
    /// namespace of a thread's own, which goes with the thread, so nobody else sees them.
    fn with_tree<T: Send>(&self, name: &str, each: impl FnOnce(&Path) -> Result<T> + Send) -> Result<T> {
        let container = self.find(name)?;
        let sources = self.host_sources(&container.record);
        let root = self.mount(name)?;
        let result = if sources.is_empty() {
            each(&root)
        } else {
            std::thread::scope(|scope| {
                let worker = std::thread::Builder::new().name("strata-cp".into()).spawn_scoped(scope, || {
                    mount_volumes(&root, &sources)?;
                    each(&root)
                });
                match worker {
                    Ok(worker) => worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(e) => Err(Error::io("start a thread for", "cp", e)),
                }
            })
        };
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
        out: impl Write + Send,
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
    pub fn copy_in(&self, name: &str, dir: &str, input: impl Read + Send) -> Result<()> {
        self.with_tree(name, |root| {
            if kind_in(root, dir)? != PathKind::Dir {
                return Err(Error::BadOption {
                    what: "path",
                    value: dir.to_owned(),
                    reason: format!("no directory {dir} in container {name}: the destination's parent must exist"),
                });
            }
            let at = rustix::fs::openat2(
                open_root(root)?,
                relative(dir),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                in_root(),
            )
            .map_err(|e| Error::io("open", dir, e))?;
            let read_only = rustix::fs::fstatvfs(&at).map_err(|e| Error::io("stat", dir, e))?.f_flag;
            if read_only.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
                return Err(Error::BadOption {
                    what: "path",
                    value: dir.to_owned(),
                    reason: "mounted volume is marked read-only".into(),
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

/// Mount each `(destination, source, writable)` over the tree at `root`, parents first, in a
/// mount namespace of the calling thread's own: destinations are resolved inside the tree
/// (made if missing, as dockerd makes them) and mounted on through a descriptor, so no
/// symlink leads a mount outside it.
fn mount_volumes(root: &Path, sources: &[(String, std::path::PathBuf, bool)]) -> Result<()> {
    crate::sys::private_mount_namespace().map_err(|e| Error::io("make a mount namespace for", "cp", e))?;
    let rootfs = super::user::Rootfs::open(root)?;
    let root_fd = open_root(root)?;
    for (destination, source, writable) in sources {
        let is_dir = std::fs::metadata(source).ctx("stat", source)?.is_dir();
        let target = if is_dir {
            rootfs.make_dirs(destination, (0, 0), "mount point")?
        } else {
            let parent = std::path::Path::new(destination).parent().and_then(|p| p.to_str()).unwrap_or("/");
            let parent = rootfs.make_dirs(parent, (0, 0), "mount point")?;
            let file =
                format!("{}/{}", parent.trim_end_matches('/'), destination.rsplit('/').next().unwrap_or_default());
            let at = rustix::fs::openat2(
                &root_fd,
                relative(&parent),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                in_root(),
            )
            .map_err(|e| Error::io("open", parent.as_str(), e))?;
            let name = file.rsplit('/').next().unwrap_or_default();
            match rustix::fs::openat(
                &at,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::io("create", file.as_str(), e)),
            }
            file
        };
        let at =
            rustix::fs::openat2(&root_fd, relative(&target), OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), in_root())
                .map_err(|e| Error::io("open", target.as_str(), e))?;
        crate::sys::bind_onto(source, &at, *writable).map_err(|e| Error::io("mount", source, e))?;
    }
    Ok(())
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ctx("open", root)
}
