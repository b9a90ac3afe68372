//! Union mounts with the kernel's OverlayFS.
//!
//! A [`MountPlan`] says what to mount; [`mount`] hands it to the kernel the way it fits:
//! `mount(2)` with one page of options when they fit (what dockerd does, and what `mount`
//! shows), the new mount API with one `lowerdir+` per lower layer when they do not, up to the
//! kernel's 500 layers. Reference counting lives in `refcount`.

mod plan;
pub(crate) mod refcount;

use std::path::{Path, PathBuf};

pub use plan::{MAX_LOWERS, Method, MountPlan};

use crate::error::{Error, IoContext, Result};
use crate::id::LayerId;
use crate::sys;

/// Whether this kernel has the overlay `index` option (and so needs `index=off`).
pub(crate) fn kernel_has_index_option() -> bool {
    Path::new("/sys/module/overlay/parameters/index").exists()
}

/// Mount `plan` at `target` for layer `id`.
pub(crate) fn mount(id: &LayerId, plan: &MountPlan, target: &Path) -> Result<Method> {
    if plan.lowers.len() > MAX_LOWERS {
        return Err(Error::TooDeep { id: id.clone(), lowers: plan.lowers.len(), max: MAX_LOWERS });
    }
    let method = plan.method(sys::page_size());
    tracing::debug!(%id, ?method, lowers = plan.lowers.len(), "mounting");
    let failed = |source: std::io::Error, log: Vec<String>| Error::Mount {
        id: id.clone(),
        target: target.to_owned(),
        source,
        log,
    };
    match method {
        Method::Classic => sys::mount_overlay(target, &plan.data()).map_err(|e| failed(e, Vec::new()))?,
        Method::LowerdirPlus => sys::mount_overlay_fsconfig(target, &plan.params()).map_err(|e| {
            let unsupported =
                e.key == Some("lowerdir+") && e.error.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error());
            if unsupported && !e.log.iter().any(|l| l.contains("too many")) {
                Error::NeedsLowerdirPlus { id: id.clone(), lowers: plan.lowers.len(), kernel: sys::kernel_release() }
            } else {
                failed(e.error, e.log)
            }
        })?,
    }
    Ok(method)
}

/// Unmount `target` (lazily, as dockerd does).
pub(crate) fn unmount(target: &Path) -> Result<()> {
    sys::unmount_detach(target).ctx("unmount", target)
}

/// Every OverlayFS mount point in this mount namespace under `under`.
pub fn overlay_mounts_under(under: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&info)
        .into_iter()
        .filter(|(_, fs)| fs == "overlay")
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(under))
        .collect())
}

/// `(mount point, filesystem type)` of each line of `/proc/<pid>/mountinfo`.
fn parse_mountinfo(info: &str) -> Vec<(PathBuf, String)> {
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let fs_type = right.split(' ').next()?;
            Some((PathBuf::from(unescape_octal(mount_point)), fs_type.to_owned()))
        })
        .collect()
}

/// Undo mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let info = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - overlay overlay rw,lowerdir=a\n\
                    37 35 98:0 / /proc rw - proc proc rw\n";
        let parsed = parse_mountinfo(info);
        assert_eq!(parsed[0], (PathBuf::from("/mnt/with space"), "overlay".to_owned()));
        assert_eq!(parsed[1].1, "proc");
    }
}
