//! The `-init` layer dockerd puts between an image and a container's writable layer: the
//! files the runtime binds over (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`,
//! `/dev/console`), `/.dockerenv`, `/etc/mtab -> /proc/mounts`, and the mount points
//! `/dev/pts`, `/dev/shm`, `/proc` and `/sys` where the image lacks them. Directories and files
//! are 0755 and owned by root, as dockerd makes them.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::{mkdir, write_new};

const MOUNT_POINTS: &[&str] = &["dev/pts", "dev/shm", "proc", "sys"];
const FILES: &[&str] = &[".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// Fill `diff` (an empty directory) with the init layer's entries, over the image whose layer
/// directories are `image_diffs` (top first).
pub(crate) fn populate(diff: &Path, image_diffs: &[PathBuf]) -> Result<()> {
    let make_parents = |rel: &str| -> Result<()> {
        if let Some(parent) = Path::new(rel).parent().filter(|p| !p.as_os_str().is_empty()) {
            mkdir(&diff.join(parent), 0o755)?;
        }
        Ok(())
    };
    for dir in MOUNT_POINTS {
        if !exists_in(image_diffs, dir) {
            make_parents(dir)?;
            mkdir(&diff.join(dir), 0o755)?;
        }
    }
    for file in FILES {
        make_parents(file)?;
        write_new(&diff.join(file), b"", 0o755)?;
    }
    let mtab = diff.join("etc/mtab");
    std::os::unix::fs::symlink("/proc/mounts", &mtab).ctx("symlink", &mtab)
}

/// Whether `rel` exists in the union of `diffs` (top first), honouring whiteouts and opaque
/// directories, without mounting it.
fn exists_in(diffs: &[PathBuf], rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    for diff in diffs {
        let mut dir = diff.clone();
        for (i, part) in parts.iter().enumerate() {
            let here = dir.join(part);
            if is_whiteout(&here) {
                return false;
            }
            match std::fs::symlink_metadata(&here) {
                Ok(_) if i + 1 == parts.len() => return true,
                Ok(m) if m.is_dir() => {
                    if crate::host::xattr(&here, "trusted.overlay.opaque").as_deref() == Some(b"y") {
                        return parts[i + 1..]
                            .iter()
                            .try_fold(here, |d, p| {
                                let next = d.join(p);
                                std::fs::symlink_metadata(&next).is_ok().then_some(next)
                            })
                            .is_some();
                    }
                    dir = here;
                }
                Ok(_) => return false,
                Err(_) => break,
            }
        }
    }
    false
}

fn is_whiteout(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}
