//! The system calls strata makes about mounts and filesystems, fenced in one place.
//!
//! Everything here is a thin, safe wrapper over rustix: the old `mount(2)`, the new mount API
//! (`fsopen`/`fsconfig`/`fsmount`/`move_mount`), `umount2`, `statfs` and a `d_type` probe.
//! Callers get `io::Error`s; the fs-context log of a failed `fsconfig` is returned with them,
//! never printed.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags};

/// `OVERLAYFS_SUPER_MAGIC` from `<linux/magic.h>`.
pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Longest string value `fsconfig(FSCONFIG_SET_STRING)` accepts, NUL included
/// (`strndup_user(value, 256)` in `fs/fsopen.c`).
pub const FSCONFIG_STRING_MAX: usize = 256;

/// The filesystem magic (`f_type`) of the filesystem holding `path`.
pub fn fs_type(path: &Path) -> io::Result<i64> {
    Ok(rustix::fs::statfs(path)?.f_type as i64)
}

/// Whether `path` is the root of an OverlayFS mount (rather than a plain directory on the store's
/// filesystem). The store root itself is never on OverlayFS, so the magic is enough.
pub fn is_overlay_mount(path: &Path) -> bool {
    fs_type(path).is_ok_and(|t| t == OVERLAYFS_SUPER_MAGIC)
}

/// Whether the filesystem of `dir` fills in `d_type` in directory entries, which OverlayFS needs
/// to find whiteouts. Makes and removes a scratch directory in `dir`.
pub fn supports_d_type(dir: &Path) -> io::Result<bool> {
    let probe = dir.join(format!(".strata-dtype-{}", crate::id::hex(&crate::id::random_bytes::<6>())));
    std::fs::create_dir(&probe)?;
    let result = (|| {
        std::fs::write(probe.join("f"), b"")?;
        let fd = rustix::fs::open(&probe, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let mut dir = rustix::fs::Dir::read_from(&fd)?;
        let mut known = true;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            if entry.file_name().to_bytes() == b"f" {
                known = entry.file_type() != rustix::fs::FileType::Unknown;
            }
        }
        Ok(known)
    })();
    let _ = std::fs::remove_dir_all(&probe);
    result
}

/// `mount("overlay", target, "overlay", 0, data)`: the classic one-page form.
pub fn mount_overlay(target: &Path, data: &str) -> io::Result<()> {
    let data = std::ffi::CString::new(data).map_err(io::Error::other)?;
    rustix::mount::mount("overlay", target, "overlay", MountFlags::empty(), Some(data.as_c_str()))?;
    Ok(())
}

/// Why a new-API overlay mount failed.
#[derive(Debug)]
pub struct FsMountError {
    /// The kernel's error.
    pub error: io::Error,
    /// The `fsconfig` key that failed, or `None` if creating or attaching the mount failed.
    pub key: Option<&'static str>,
    /// Messages read back from the filesystem context.
    pub log: Vec<String>,
}

/// Mount an overlay at `target` through `fsopen`/`fsconfig`/`fsmount`/`move_mount`, passing
/// each `(key, value)` in its own `FSCONFIG_SET_STRING` call (so `lowerdir+` can append lower
/// layers one at a time). A path too long for a string goes as an `O_PATH` descriptor instead
/// (`FSCONFIG_SET_FD`, Linux 6.13 and later).
pub fn mount_overlay_fsconfig(target: &Path, params: &[(&'static str, &OsStr)]) -> Result<(), FsMountError> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| FsMountError {
        error: e.into(),
        key: None,
        log: Vec::new(),
    })?;
    for (key, value) in params {
        if *key == "lowerdir+" && crate::failpoint::kernel_lacks("lowerdir+") {
            // What a kernel before 6.8 answers.
            let error = io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error());
            return Err(FsMountError {
                error,
                key: Some(key),
                log: vec!["e overlay: Unknown parameter 'lowerdir+'".into()],
            });
        }
        let result = if value.as_bytes().len() < FSCONFIG_STRING_MAX {
            rustix::mount::fsconfig_set_string(&fs, *key, *value)
        } else {
            open_path(Path::new(value)).and_then(|fd| rustix::mount::fsconfig_set_fd(&fs, *key, &fd))
        };
        if let Err(e) = result {
            return Err(FsMountError { error: e.into(), key: Some(key), log: read_fs_log(&fs) });
        }
    }
    let fail = |e: rustix::io::Errno, fs: &OwnedFd| FsMountError { error: e.into(), key: None, log: read_fs_log(fs) };
    rustix::mount::fsconfig_create(&fs).map_err(|e| fail(e, &fs))?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail(e, &fs))?;
    rustix::mount::move_mount(mnt.as_fd(), "", CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| fail(e, &fs))?;
    // Both descriptors close here: a held fsmount fd would keep the mount busy at unmount.
    Ok(())
}

fn open_path(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// Drain the messages the kernel queued on a filesystem context (`e …`, `w …`, `i …` lines).
fn read_fs_log(fs: &OwnedFd) -> Vec<String> {
    let mut log = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 || log.len() >= 16 {
            break;
        }
        log.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned());
    }
    log
}

/// `umount2(target, MNT_DETACH)`, as dockerd unmounts a layer: open files keep working, the
/// mount point is free at once.
pub fn unmount_detach(target: &Path) -> io::Result<()> {
    rustix::mount::unmount(target, UnmountFlags::DETACH)?;
    Ok(())
}

/// `major.minor` of a kernel release such as `6.18.0-1-amd64` (or a version such as `4.8`).
pub fn kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The running kernel's release string (`uname -r`).
pub fn kernel_release() -> String {
    rustix::system::uname().release().to_string_lossy().into_owned()
}

/// The size of a memory page: the most mount data `mount(2)` copies, NUL included.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Give the calling thread a mount namespace of its own, every mount in it private: mounts
/// made on this thread after it are seen by no other process or thread, and go with it.
/// (`CLONE_NEWNS` implies `CLONE_FS`, which only this thread gives up; nix's `unshare` is a
/// safe function where rustix's is not, and this crate has no unsafe code.)
pub fn private_mount_namespace() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)
        .map_err(io::Error::from)?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )?;
    Ok(())
}

/// Bind `source` (recursively) onto what `target` (any descriptor, `O_PATH` will do) names,
/// read-only unless `writable`: the mount lands on that very inode, whatever paths lead to it.
pub fn bind_onto(source: &Path, target: &OwnedFd, writable: bool) -> io::Result<()> {
    use rustix::mount::OpenTreeFlags;
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE;
    let tree = rustix::mount::open_tree(CWD, source, flags)?;
    let moved = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    rustix::mount::move_mount(tree.as_fd(), "", target.as_fd(), "", moved)?;
    if !writable {
        // `tree` still names the new mount: remount it read-only through its /proc path.
        let on = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&tree));
        rustix::mount::mount_remount(on.as_str(), MountFlags::BIND | MountFlags::RDONLY, "")?;
    }
    Ok(())
}
