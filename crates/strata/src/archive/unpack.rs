//! Write tar entries into a directory (a layer's `diff`) in OverlayFS form, without ever
//! writing outside it.
//!
//! Safety comes from the kernel, not from string checks: every parent directory is opened
//! with `openat2(RESOLVE_IN_ROOT)` relative to the layer root, so `..` and symlinks (absolute
//! or relative) resolve as if the layer were `/`; the last component is made with
//! `O_EXCL`/`O_NOFOLLOW`/`mknodat`/`symlinkat` relative to that parent, so it is never followed.
//! Names are normalised first and a name that climbs above the root is refused.
//!
//! Whiteouts become what OverlayFS reads: `.wh.NAME` a 0/0 character device `NAME`,
//! `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use tar_core::EntryType;

use super::path::{Whiteout, normalize, whiteout};
use super::tarstream::{Entry, TarStream};
use super::writers::Writers;
use crate::error::{Error, Result};

/// The xattr that marks an opaque directory.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// Entries read.
    pub entries: u64,
    /// The layer's size as dockerd reports it: bytes of regular files (each inode once) and
    /// symlink targets.
    pub size: u64,
}

/// Writes entries under one root directory.
pub(crate) struct Extractor {
    root: OwnedFd,
    /// The last parent opened, kept while entries share it.
    parent: Option<(PathBuf, Arc<OwnedFd>)>,
    /// Directory mtimes, set after everything else (writing into a directory changes it).
    dir_times: Vec<(PathBuf, u64)>,
    out: Unpacked,
    /// Where under the root entries go (`cp` into a directory of a container).
    prefix: PathBuf,
    /// Whether `.wh.` entries are whiteouts (a layer) or plain files (`cp`, a build's COPY).
    whiteouts: bool,
    /// Workers writing small files while the stream is read on.
    writers: Writers<FileJob>,
    /// The files handed to the workers since they were last waited for, and every directory
    /// above them: an entry at one of those names, or under one of those files, waits.
    handed: HashSet<PathBuf>,
    handed_dirs: HashSet<PathBuf>,
    /// Whether the last error came from a writer (and so names its own file).
    writer_failed: bool,
}

/// A file for a worker: made (in place of whatever has its name), filled and given its
/// metadata.
struct FileJob {
    dir: Arc<OwnedFd>,
    base: std::ffi::OsString,
    path: PathBuf,
    entry: Entry,
    data: Vec<u8>,
}

/// Files at most this large go to the workers, their bytes held until written; larger ones
/// are written from the stream as it is read.
const HANDED_MAX: u64 = 1 << 20;

impl Extractor {
    /// Extract into `root`, an existing empty directory.
    pub(crate) fn new(root: &Path) -> Result<Extractor> {
        let root = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open", root, e))?;
        Ok(Extractor {
            root,
            parent: None,
            dir_times: Vec::new(),
            out: Unpacked::default(),
            prefix: PathBuf::new(),
            whiteouts: true,
            writers: Writers::new(write_file),
            handed: HashSet::new(),
            handed_dirs: HashSet::new(),
            writer_failed: false,
        })
    }

    /// Extract plain files (`.wh.` names are no whiteouts) under `prefix` inside `root`: every
    /// path, the prefix's too, resolved as if `root` were `/`.
    pub(crate) fn plain(root: &Path, prefix: &Path) -> Result<Extractor> {
        let mut extractor = Extractor::new(root)?;
        extractor.prefix = prefix.to_owned();
        extractor.whiteouts = false;
        Ok(extractor)
    }

    /// Extract every entry of `tar`, then set directory times.
    pub(crate) fn unpack<R: std::io::Read>(mut self, tar: &mut TarStream<R>) -> Result<Unpacked> {
        while let Some(entry) = tar.next_entry()? {
            self.out.entries += 1;
            if let Err(e) = self.entry(&entry, tar) {
                // A writer's error names its own file, not the entry being read.
                return Err(match e {
                    Error::Archive { reason } if !self.writer_failed => {
                        Error::Archive { reason: format!("{}: {reason}", String::from_utf8_lossy(&entry.path)) }
                    }
                    other => other,
                });
            }
        }
        self.writers.wait()?;
        self.parent = None;
        for (path, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            // A later entry may have replaced the directory (by a file or a symlink): skip it.
            let p = if path.as_os_str().is_empty() { Path::new(".") } else { &path };
            let fd = match rustix::fs::openat2(&self.root, p, dir_flags() | OFlags::NOFOLLOW, Mode::empty(), in_root())
            {
                Ok(fd) => fd,
                Err(Errno::NOTDIR | Errno::NOENT | Errno::LOOP) => continue,
                Err(e) => return Err(sys(&path)(e)),
            };
            rustix::fs::futimens(&fd, &times(mtime)).map_err(sys(&path))?;
        }
        Ok(self.out)
    }

    fn entry<R: std::io::Read>(&mut self, entry: &Entry, tar: &mut TarStream<R>) -> Result<()> {
        let path = normalize(&entry.path).ok_or_else(|| refuse("the name climbs out of the layer"))?;
        let path = if self.prefix.as_os_str().is_empty() { path } else { self.prefix.join(path) };
        let (Some(parent), Some(base)) = (path.parent(), path.file_name()) else {
            // The root itself ("./"): dockerd skips it, so the layer root keeps its own
            // 0755 root:root whatever the archive says. So does strata.
            return Ok(());
        };
        let parent = parent.to_owned();
        let kind = if self.whiteouts { whiteout(base) } else { Whiteout::None };
        if !self.handed.is_empty() && self.touches_handed(&path, &parent, &kind, entry) {
            let waited = self.writers.wait();
            self.writer_failed = waited.is_err();
            waited?;
            self.handed.clear();
            self.handed_dirs.clear();
        }
        match kind {
            Whiteout::Invalid => return Err(refuse("invalid whiteout entry")),
            Whiteout::Meta => return Ok(()),
            Whiteout::Opaque => {
                let dir = self.parent_fd(&parent)?;
                return rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                    .map_err(sys(&parent));
            }
            Whiteout::Delete(name) => {
                let target = parent.join(name);
                self.remove_existing(&parent, name, false)?;
                let dir = self.parent_fd(&parent)?;
                rustix::fs::mknodat(&*dir, name, FileType::CharacterDevice, Mode::empty(), 0).map_err(sys(&target))?;
                if entry.uid != 0 || entry.gid != 0 {
                    chown_at(&*dir, name, entry).map_err(sys(&target))?;
                }
                return set_times_at(&*dir, name, entry.mtime).map_err(sys(&target));
            }
            Whiteout::None => {}
        }
        if (entry.kind.is_file() || entry.kind.is_contiguous()) && entry.size <= HANDED_MAX {
            return self.hand_over(entry, &parent, base, path.clone(), tar);
        }

        // Create first; only when something is already there, make way and try again (a
        // directory over a directory stays, taking the new metadata).
        if !self.create(entry, &parent, base, &path, tar)? {
            self.remove_existing(&parent, base, entry.kind.is_dir())?;
            if !self.create(entry, &parent, base, &path, tar)? {
                return Err(refuse("its name is taken and cannot be freed"));
            }
        }
        Ok(())
    }

    /// Make one (non-whiteout) entry; `false` if its name is taken.
    fn create<R: std::io::Read>(
        &mut self,
        entry: &Entry,
        parent: &Path,
        base: &OsStr,
        path: &Path,
        tar: &mut TarStream<R>,
    ) -> Result<bool> {
        let path = path.to_owned();
        let dir = self.parent_fd(parent)?;
        let mode = Mode::from_raw_mode(entry.mode & 0o7777);
        match entry.kind {
            k if k.is_dir() => {
                match rustix::fs::mkdirat(&dir, base, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        // A directory stays (and takes the new metadata); anything else makes way.
                        let st = rustix::fs::statat(&dir, base, AtFlags::SYMLINK_NOFOLLOW).map_err(sys(&path))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            return Ok(false);
                        }
                    }
                    Err(e) => return Err(sys(&path)(e)),
                }
                let fd = rustix::fs::openat(&dir, base, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(sys(&path))?;
                metadata(&fd, entry, &path)?;
                self.dir_times.push((path, entry.mtime));
            }
            k if k.is_file() || k.is_contiguous() => {
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let Some(fd) = made(rustix::fs::openat(&dir, base, flags, Mode::from_raw_mode(0o600)), &path)? else {
                    return Ok(false);
                };
                let mut file = std::fs::File::from(fd);
                tar.read_content(|chunk| file.write_all(chunk).map_err(|e| Error::io("write", &path, e)))?;
                let fd = OwnedFd::from(file);
                // A file made here is a new inode; hard links to it add nothing.
                self.out.size += entry.size;
                metadata(&fd, entry, &path)?;
                rustix::fs::futimens(&fd, &times(entry.mtime)).map_err(sys(&path))?;
            }
            k if k.is_symlink() => {
                let target = entry.link.as_deref().ok_or_else(|| refuse("a symlink without a target"))?;
                if made(rustix::fs::symlinkat(OsStr::from_bytes(target), &dir, base), &path)?.is_none() {
                    return Ok(false);
                }
                self.out.size += target.len() as u64;
                chown_at(&dir, base, entry).map_err(sys(&path))?;
                self.xattrs_at(&dir, base, entry, &path)?;
                set_times_at(&dir, base, entry.mtime).map_err(sys(&path))?;
                // A symlink may now stand where a cached parent path led.
                self.parent = None;
            }
            k if k.is_hard_link() => {
                let raw = entry.link.as_deref().ok_or_else(|| refuse("a hard link without a target"))?;
                let target_path =
                    normalize(raw).ok_or_else(|| refuse("the hard link's target is outside the layer"))?;
                let target_path = self.prefix.join(target_path);
                let target = self.open_in_root_nofollow(&target_path).map_err(|_| {
                    refuse(&format!("the hard link's target {} is not in the layer", target_path.display()))
                })?;
                if made(rustix::fs::linkat(&target, "", &dir, base, AtFlags::EMPTY_PATH), &path)?.is_none() {
                    return Ok(false);
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match entry.kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(entry.dev.0, entry.dev.1);
                if made(rustix::fs::mknodat(&dir, base, file_type, mode, dev), &path)?.is_none() {
                    return Ok(false);
                }
                chown_at(&dir, base, entry).map_err(sys(&path))?;
                rustix::fs::chmodat(&dir, base, mode, AtFlags::empty()).map_err(sys(&path))?;
                self.xattrs_at(&dir, base, entry, &path)?;
                set_times_at(&dir, base, entry.mtime).map_err(sys(&path))?;
            }
            other => return Err(refuse(&format!("unsupported entry type {:?}", char::from(other.to_byte())))),
        }
        Ok(true)
    }

    /// Xattrs of an entry that cannot be opened (symlink, device): through the parent's fd.
    fn xattrs_at(&self, dir: &OwnedFd, base: &OsStr, entry: &Entry, path: &Path) -> Result<()> {
        let at = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(base);
        for (name, value) in wanted_xattrs(entry) {
            rustix::fs::lsetxattr(&at, name, value, rustix::fs::XattrFlags::empty()).map_err(xattr_error(path))?;
        }
        Ok(())
    }

    /// Make way for a new entry at `parent/base`: keep a directory a directory replaces,
    /// remove anything else.
    fn remove_existing(&mut self, parent: &Path, base: &OsStr, keep_dir: bool) -> Result<()> {
        let dir = self.parent_fd(parent)?;
        match rustix::fs::statat(&*dir, base, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(sys(&parent.join(base))(e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if keep_dir {
                    return Ok(());
                }
                self.parent = None;
                remove_tree_at(&dir, base).map_err(sys(&parent.join(base)))
            }
            Ok(_) => rustix::fs::unlinkat(&*dir, base, AtFlags::empty()).map_err(sys(&parent.join(base))),
        }
    }

    /// Whether the entry at `path` touches a name the workers may still be making: one of
    /// their files or a directory above one (the entry's own name, or a whiteout's), a
    /// directory on its path that is one of their files, or a hard link's target.
    fn touches_handed(&self, path: &Path, parent: &Path, kind: &Whiteout, entry: &Entry) -> bool {
        // Borrowed for every entry but a whiteout: this runs once per entry.
        let named: std::borrow::Cow<Path> = match kind {
            Whiteout::Delete(name) => parent.join(name).into(),
            _ => path.into(),
        };
        let under_handed = |p: &Path| p.ancestors().any(|a| self.handed.contains(a));
        if self.handed_dirs.contains(named.as_ref()) || under_handed(&named) {
            return true;
        }
        entry.kind.is_hard_link()
            && entry.link.as_deref().and_then(normalize).is_none_or(|t| under_handed(&self.prefix.join(t)))
    }

    /// Give a regular file to the workers, its bytes read from the stream.
    fn hand_over<R: std::io::Read>(
        &mut self,
        entry: &Entry,
        parent: &Path,
        base: &OsStr,
        path: PathBuf,
        tar: &mut TarStream<R>,
    ) -> Result<()> {
        let dir = self.parent_fd(parent)?;
        let mut data = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        tar.read_content(|chunk| {
            data.extend_from_slice(chunk);
            Ok(())
        })?;
        self.out.size += entry.size;
        // The worker may replace a directory by that name: forget it as a parent.
        if self.parent.as_ref().is_some_and(|(p, _)| p.starts_with(&path)) {
            self.parent = None;
        }
        for a in path.ancestors().skip(1) {
            if !self.handed_dirs.insert(a.to_owned()) {
                break;
            }
        }
        self.handed.insert(path.clone());
        let job = FileJob { dir, base: base.to_owned(), path, entry: entry.clone(), data };
        let bytes = job.data.len();
        let sent = self.writers.send(parent, bytes, job);
        self.writer_failed = sent.is_err();
        sent
    }

    fn parent_fd(&mut self, parent: &Path) -> Result<Arc<OwnedFd>> {
        if let Some((p, fd)) = &self.parent
            && p == parent
        {
            return Ok(Arc::clone(fd));
        }
        let fd = Arc::new(match self.open_in_root(parent) {
            Ok(fd) => fd,
            Err(_) => self.make_dirs(parent)?,
        });
        self.parent = Some((parent.to_owned(), Arc::clone(&fd)));
        Ok(fd)
    }

    fn make_dirs(&self, path: &Path) -> Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.root).map_err(sys(path))?;
        for part in path.iter() {
            match rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let child = rustix::fs::openat(&fd, part, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(sys(path))?;
                    rustix::fs::fchmod(&child, Mode::from_raw_mode(0o755)).map_err(sys(path))?;
                    fd = child;
                }
                Err(Errno::EXIST) => {
                    // Exists: step into it the safe way (it may be a symlink within the layer).
                    fd = rustix::fs::openat2(&fd, part, dir_flags(), Mode::empty(), in_root()).map_err(sys(path))?;
                }
                Err(e) => return Err(sys(path)(e)),
            }
        }
        Ok(fd)
    }

    fn open_in_root(&self, path: &Path) -> Result<OwnedFd> {
        let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
        rustix::fs::openat2(&self.root, path, dir_flags(), Mode::empty(), in_root()).map_err(sys(path))
    }

    fn open_in_root_nofollow(&self, path: &Path) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat2(&self.root, path, flags, Mode::empty(), in_root()).map_err(sys(path))
    }
}

/// Owner, mode and xattrs of an open file or directory. The mode goes after the owner, since
/// `chown` clears set-user-ID bits.
fn metadata(fd: &OwnedFd, entry: &Entry, path: &Path) -> Result<()> {
    rustix::fs::fchown(fd, Some(uid(entry.uid)), Some(gid(entry.gid))).map_err(sys(path))?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(entry.mode & 0o7777)).map_err(sys(path))?;
    for (name, value) in wanted_xattrs(entry) {
        rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty()).map_err(xattr_error(path))?;
    }
    Ok(())
}

/// A worker's job: make the file (whatever had its name made way, unless a directory cannot),
/// write it, and give it its owner, mode, xattrs and mtime.
fn write_file(job: FileJob) -> Result<()> {
    let FileJob { dir, base, path, entry, data } = job;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let create = || rustix::fs::openat(&*dir, &base, flags, Mode::from_raw_mode(0o600));
    let fd = match create() {
        Ok(fd) => fd,
        Err(Errno::EXIST) => {
            match rustix::fs::statat(&*dir, &base, AtFlags::SYMLINK_NOFOLLOW).map_err(sys(&path))? {
                st if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    remove_tree_at(&dir, &base).map_err(sys(&path))?
                }
                _ => rustix::fs::unlinkat(&*dir, &base, AtFlags::empty()).map_err(sys(&path))?,
            }
            made(create(), &path)?
                .ok_or_else(|| refuse(&format!("{}: its name is taken and cannot be freed", path.display())))?
        }
        Err(e) => return Err(sys(&path)(e)),
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(&data).map_err(|e| Error::io("write", &path, e))?;
    let fd = OwnedFd::from(file);
    metadata(&fd, &entry, &path)?;
    rustix::fs::futimens(&fd, &times(entry.mtime)).map_err(sys(&path))
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Resolve as if the layer root were `/`; never through /proc magic links.
fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Xattrs from the archive worth setting. OverlayFS's own (`trusted.overlay.*`,
/// `user.overlay.*`) are dropped: a layer must not smuggle redirects or metacopy markers into
/// the union; whiteouts and opaque directories arrive as `.wh.` entries.
fn wanted_xattrs(entry: &Entry) -> impl Iterator<Item = (&OsStr, &[u8])> {
    entry.xattrs.iter().filter_map(|(k, v)| {
        let overlay = k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.");
        (!overlay).then_some((OsStr::from_bytes(k), v.as_slice()))
    })
}

fn chown_at(dir: impl AsFd, base: &OsStr, entry: &Entry) -> rustix::io::Result<()> {
    rustix::fs::chownat(dir, base, Some(uid(entry.uid)), Some(gid(entry.gid)), AtFlags::SYMLINK_NOFOLLOW)
}

fn set_times_at(dir: impl AsFd, base: &OsStr, mtime: u64) -> rustix::io::Result<()> {
    rustix::fs::utimensat(dir, base, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec { tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX), tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

fn uid(id: u64) -> Uid {
    Uid::from_raw(u32::try_from(id).unwrap_or(u32::MAX))
}

fn gid(id: u64) -> Gid {
    Gid::from_raw(u32::try_from(id).unwrap_or(u32::MAX))
}

/// Remove `name` in `dir` and everything under it, never following a symlink.
fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let fd = rustix::fs::openat(dir, name, dir_flags() | OFlags::NOFOLLOW, Mode::empty())?;
    let mut entries = rustix::fs::Dir::read_from(&fd)?;
    let mut children = Vec::new();
    while let Some(e) = entries.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            children.push((OsStr::from_bytes(n).to_owned(), e.file_type() == FileType::Directory));
        }
    }
    for (child, is_dir) in children {
        if is_dir {
            remove_tree_at(&fd, &child)?;
        } else {
            rustix::fs::unlinkat(&fd, &child, AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The result of a call that creates a name: `None` if the name was taken.
fn made<T>(r: rustix::io::Result<T>, path: &Path) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Errno::EXIST) => Ok(None),
        Err(e) => Err(sys(path)(e)),
    }
}

fn refuse(reason: &str) -> Error {
    Error::Archive { reason: reason.to_owned() }
}

/// Map a syscall error on `path` to an archive error that names it; `ENOSPC` and friends keep
/// their meaning.
/// A failed `setxattr`: ENOSPC there means the file's room for extended attributes is full
/// (ext4 keeps them in one block per file), not the disk; E2BIG, one value too large.
fn xattr_error(path: &Path) -> impl Fn(Errno) -> Error + '_ {
    move |e| match e {
        Errno::NOSPC | Errno::TOOBIG => Error::Archive {
            reason: format!(
                "{}: the filesystem has no room for this file's extended attributes ({}); the layer's xattrs exceed what it holds per file (ext4: one block), so use a filesystem with more (xfs, btrfs)",
                path.display(),
                std::io::Error::from(e)
            ),
        },
        e => sys(path)(e),
    }
}

fn sys(path: &Path) -> impl Fn(Errno) -> Error + '_ {
    move |e| {
        let io = std::io::Error::from(e);
        match io.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Error::io("write", path, io),
            _ => Error::Archive { reason: format!("{}: {io}", path.display()) },
        }
    }
}
