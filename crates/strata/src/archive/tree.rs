//! A tree as a tar, read by descriptors: each file opened relative to its directory without
//! following symlinks, so a symlink swapped in while the tree is read cannot lead the reader
//! elsewhere (`cp` out of a container, and into one from the host).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::{IoContext, Result};

/// Write what `at` (an `O_PATH` descriptor) names as a tar: a file as one entry named `top`,
/// a directory as `top/` and everything under it (`top` empty: the contents alone). Owners as
/// they are, or `owner`; `shown` names it in errors.
pub(crate) fn pack_tree(
    at: &OwnedFd,
    top: &str,
    owner: Option<(u32, u32)>,
    shown: &str,
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, out));
    let mut walker = Walker { links: HashMap::new(), owner };
    walker.entry(&mut tar, at, None, top, shown)?;
    tar.finish().ctx("write", shown)?;
    tar.into_inner().ctx("write", shown)?.flush().ctx("write", shown)
}

/// `path` on this machine as a tar (see [`pack_tree`]); `follow` follows a symlink at `path`
/// itself.
pub fn pack_path(path: &Path, top: &str, follow: bool, owner: Option<(u32, u32)>, out: impl Write) -> Result<()> {
    let nofollow = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC | nofollow, Mode::empty()).ctx("open", path)?;
    pack_tree(&fd, top, owner, &path.display().to_string(), out)
}

/// Extract a tar into the directory `dir` of this machine as plain files (no whiteouts),
/// nothing outside `dir`.
pub fn unpack_plain(dir: &Path, tar: impl Read) -> Result<()> {
    super::extract_into(dir, Path::new(""), tar)
}

/// Walks a tree by descriptors, writing tar entries.
struct Walker {
    /// Inodes written already (hard links), and their names.
    links: HashMap<(u64, u64), String>,
    /// Every entry's owner, if not the files' own.
    owner: Option<(u32, u32)>,
}

impl Walker {
    /// One entry: `at` is an `O_PATH` descriptor of it; `parent` its directory and name
    /// (`None` at the top, where `at` was opened by path).
    fn entry(
        &mut self,
        tar: &mut tar::Builder<impl Write>,
        at: &OwnedFd,
        parent: Option<(&OwnedFd, &OsStr)>,
        name: &str,
        shown: &str,
    ) -> Result<()> {
        let st = rustix::fs::fstat(at).ctx("stat", shown)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let mut header = tar::Header::new_gnu();
        header.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.owner.unwrap_or((st.st_uid, st.st_gid));
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(st.st_mtime.max(0) as u64);
        header.set_size(0);
        let key = (st.st_dev, st.st_ino);
        if kind != FileType::Directory && st.st_nlink > 1 && !name.is_empty() {
            if let Some(first) = self.links.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                return tar.append_link(&mut header, name, first).ctx("write", shown);
            }
            self.links.insert(key, name.to_owned());
        }
        match kind {
            FileType::Directory => {
                let dir = reopen(at, parent, OFlags::RDONLY | OFlags::DIRECTORY).ctx("open", shown)?;
                if !name.is_empty() {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, format!("{name}/"), std::io::empty()).ctx("write", shown)?;
                }
                for child in crate::archive::dir::sorted_names(&dir).ctx("read directory", shown)? {
                    let child_fd = rustix::fs::openat(
                        &dir,
                        &child,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx("open", shown)?;
                    let child_str = child.to_string_lossy();
                    let child_name =
                        if name.is_empty() { child_str.to_string() } else { format!("{name}/{child_str}") };
                    self.entry(tar, &child_fd, Some((&dir, &child)), &child_name, &format!("{shown}/{child_str}"))?;
                }
                Ok(())
            }
            FileType::RegularFile => {
                let file = reopen(at, parent, OFlags::RDONLY).ctx("open", shown)?;
                let st = rustix::fs::fstat(&file).ctx("stat", shown)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(st.st_size as u64);
                let file = std::fs::File::from(file);
                tar.append_data(&mut header, name, file.take(st.st_size as u64)).ctx("write", shown)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(at, "", Vec::new()).ctx("readlink", shown)?;
                header.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut header, name, OsStr::from_bytes(target.as_bytes())).ctx("write", shown)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                header.set_device_major(rustix::fs::major(st.st_rdev)).ctx("write", shown)?;
                header.set_device_minor(rustix::fs::minor(st.st_rdev)).ctx("write", shown)?;
                tar.append_data(&mut header, name, std::io::empty()).ctx("write", shown)
            }
            _ => Ok(()), // sockets are not copied
        }
    }
}

/// Open what `at` (an `O_PATH` descriptor) names for reading: by its directory and name when
/// known (never following a symlink swapped in), else through the descriptor itself.
fn reopen(at: &OwnedFd, parent: Option<(&OwnedFd, &OsStr)>, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match parent {
        Some((dir, name)) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        None => {
            let path = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(at)));
            // The magic link leads to the very inode `at` names, which was resolved in the root.
            rustix::fs::open(&path, flags & !OFlags::NOFOLLOW, Mode::empty())
        }
    }
}
