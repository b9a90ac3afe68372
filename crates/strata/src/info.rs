//! `strata info`: what `docker info` says about storage and the machine, in the Engine API's
//! shape (`GET /info`), and what strata adds: the layer count, whether the kernel takes lower
//! layers one by one (`lowerdir+`, so 500 layers rather than the 128 of one page of options),
//! OverlayFS's module options, and the OCI runtimes found with their versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::sys;

/// The store and the machine, as `docker info --format json` shows them (the fields strata
/// knows), with strata's own under `Strata`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// Every container.
    pub containers: usize,
    /// Those that run.
    pub containers_running: usize,
    /// Those paused (strata pauses none).
    pub containers_paused: usize,
    /// Those not running.
    pub containers_stopped: usize,
    /// Images (configs in the image database).
    pub images: usize,
    /// `overlay2`.
    pub driver: &'static str,
    /// dockerd's four lines about the driver: Backing Filesystem, Supports d_type, Native
    /// Overlay Diff, userxattr.
    pub driver_status: Vec<[String; 2]>,
    /// The store root.
    #[serde(rename = "DockerRootDir")]
    pub root_dir: PathBuf,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: &'static str,
    /// `uname -m`.
    pub architecture: String,
    /// CPUs this process may use.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// Bytes of memory.
    pub mem_total: u64,
    /// The OCI runtimes found, by name.
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    /// `runc`.
    pub default_runtime: &'static str,
    /// What strata adds.
    pub strata: StrataInfo,
}

/// An OCI runtime.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    /// Where it is.
    pub path: String,
    /// The first line of `RUNTIME --version`.
    #[serde(rename = "Version")]
    pub version: String,
}

/// What strata knows beyond `docker info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StrataInfo {
    /// Layer directories under `overlay2/`.
    pub layers: usize,
    /// Whether the kernel takes lower layers one by one (`fsconfig` `lowerdir+`, Linux 6.8).
    pub lowerdir_plus: bool,
    /// The deepest stack that mounts: 500 with `lowerdir+`, else what one page of options
    /// holds with dockerd's short links (128, dockerd's own limit).
    pub max_lower_layers: usize,
    /// OverlayFS's module options (`/sys/module/overlay/parameters`): `metacopy`,
    /// `redirect_dir`, `index`, `xino_auto`, …
    pub overlay_options: BTreeMap<String, String>,
    /// The version of strata's own state in this store.
    pub state_version: u32,
}

/// dockerd's names for backing filesystems, by `statfs` magic.
fn backing_filesystem(magic: i64) -> String {
    match magic {
        0xEF53 => "extfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x6969 => "nfs".into(),
        0x5265_4973 => "reiserfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        other => format!("<unknown> ({other:#x})"),
    }
}

fn overlay_options() -> BTreeMap<String, String> {
    let dir = Path::new("/sys/module/overlay/parameters");
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let value = std::fs::read_to_string(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn os_release() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".to_owned())
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl Store {
    /// What `docker info` would say of this store and machine, and more. The root must exist.
    pub fn info(&self) -> Result<Info> {
        let root = self.root();
        let probe = if self.home().is_dir() { self.home() } else { root };
        let magic = sys::fs_type(probe).map_err(|e| Error::io("statfs", probe, e))?;
        let d_type = sys::supports_d_type(probe).map_err(|e| Error::io("probe d_type in", probe, e))?;
        let options = overlay_options();
        let enabled = |name: &str| options.get(name).is_some_and(|v| v == "Y");
        // dockerd falls back to its naive diff when renamed directories or metadata-only
        // copy-ups may be in the upper directory.
        let native_diff = !enabled("redirect_dir") && !enabled("metacopy");
        let driver_status = vec![
            ["Backing Filesystem".to_owned(), backing_filesystem(magic)],
            ["Supports d_type".to_owned(), d_type.to_string()],
            ["Native Overlay Diff".to_owned(), native_diff.to_string()],
            ["userxattr".to_owned(), "false".to_owned()],
        ];
        let containers = self.containers().list()?;
        let running = containers.iter().filter(|c| c.running).count();
        let images = self.images().count()?;
        let layers = self.layers().ids()?.len();
        let lowerdir_plus =
            sys::kernel_version(&sys::kernel_release()) >= (6, 8) && !crate::failpoint::kernel_lacks("lowerdir+");
        let mut runtimes = BTreeMap::new();
        for name in ["runc", "crun"] {
            if let Ok(runtime) = Runtime::find(self, name) {
                runtimes.insert(
                    name.to_owned(),
                    RuntimeInfo { path: runtime.path().display().to_string(), version: runtime.version() },
                );
            }
        }
        let uname = rustix::system::uname();
        Ok(Info {
            containers: containers.len(),
            containers_running: running,
            containers_paused: 0,
            containers_stopped: containers.len() - running,
            images,
            driver: crate::store::DRIVER_NAME,
            driver_status,
            root_dir: root.to_owned(),
            kernel_version: sys::kernel_release(),
            operating_system: os_release(),
            os_type: "linux",
            architecture: uname.machine().to_string_lossy().into_owned(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            runtimes,
            default_runtime: "runc",
            strata: StrataInfo {
                layers,
                lowerdir_plus,
                max_lower_layers: if lowerdir_plus { crate::mount::MAX_LOWERS } else { 128 },
                overlay_options: options,
                state_version: self.state_version()?.unwrap_or(crate::store::STATE_VERSION),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_have_dockerds_names() {
        assert_eq!(backing_filesystem(0xEF53), "extfs");
        assert_eq!(backing_filesystem(0x5846_5342), "xfs");
        assert_eq!(backing_filesystem(0x9123_683E), "btrfs");
        assert_eq!(backing_filesystem(0x0102_1994), "tmpfs");
    }
}
