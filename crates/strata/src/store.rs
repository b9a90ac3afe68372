//! The store root: where everything lives, and how a root is made ready for writing.
//!
//! ```text
//! <root>/
//! ├── overlay2/                 0710  layers, exactly as dockerd lays them out (see `layer`)
//! │   ├── l/                    0700  short links: l/<26 base32> -> ../<id>/diff
//! │   ├── <id>/                 0710  one directory per layer
//! │   └── .strata-tmp/<n>/      0700  a layer being built or removed (never a layer)
//! └── strata/                   0700  strata's own state; dockerd ignores it
//!     ├── lock                        the store lock (flock)
//!     ├── mounts/<id>                 mount reference counts (empty: one)
//!     ├── index/<name>                caches of what a directory's entries hold (see `index`)
//!     └── tmp/<n>_<what>              one record per operation in flight (flocked by its owner)
//! ```
//!
//! Opening a store changes nothing on disk; the first write makes the directories above, after
//! checking that OverlayFS can work on the filesystem.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::mkdir;
use crate::id::LayerId;
use crate::lock::StoreLock;
use crate::sys;

/// The default store root.
pub const DEFAULT_ROOT: &str = "/var/lib/strata";

/// The directory of scratch directories in `<root>/overlay2/` (see `scratch`).
pub(crate) const SCRATCH_DIR: &str = ".strata-tmp";

/// Name of the layer directory under the root (Docker's graphdriver name).
pub const DRIVER_NAME: &str = "overlay2";

/// The shape of strata's own state under `<root>/strata/`, recorded in `strata/version`.
/// 1: operation records held their description as content, a mount reference was a file
/// holding "1" (no version file); 2: records say what they do in their names and hold nothing,
/// one reference is an empty file; 3: containers' creates and removals journal as
/// `container add` and `container remove` (before: `image add`/`image remove`, whose
/// `container` steps a killed operation of an older strata leaves to `check`). This strata
/// reads all three and writes 3; it refuses a store whose state is newer than it knows.
pub const STATE_VERSION: u32 = 3;

/// A store root. Cheap to clone; holds paths, not file descriptors.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    home: PathBuf,
}

impl Store {
    /// Open the store at `root`. Nothing is created until something is written.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        let root = match root.canonicalize() {
            Ok(real) => real,
            Err(_) => std::path::absolute(root).ctx("resolve", root)?,
        };
        let home = root.join(DRIVER_NAME);
        Ok(Store { root, home })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/overlay2`: the layer directories (dockerd's driver home).
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn layer_dir(&self, id: &LayerId) -> PathBuf {
        self.home.join(id.as_str())
    }

    /// `overlay2/.strata-tmp/`: where layers are built and taken apart.
    pub(crate) fn scratch_root(&self) -> PathBuf {
        self.home.join(SCRATCH_DIR)
    }

    pub(crate) fn link_dir(&self) -> PathBuf {
        self.home.join("l")
    }

    /// `<root>/containers`, dockerd's container records.
    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub(crate) fn private_dir(&self) -> PathBuf {
        self.root.join("strata")
    }

    pub(crate) fn mounts_dir(&self) -> PathBuf {
        self.private_dir().join("mounts")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.private_dir().join("tmp")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.private_dir().join("lock")
    }

    /// Write everything cached for the store's filesystem to disk (`syncfs(2)`): what an
    /// operation reports as done then survives a power loss.
    pub(crate) fn sync(&self) -> Result<()> {
        let dir = rustix::fs::open(
            &self.root,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io("open", &self.root, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io("syncfs", &self.root, e))
    }

    /// Whether a layer directory exists at all (the root may not).
    pub(crate) fn is_initialized(&self) -> bool {
        self.home.is_dir()
    }

    /// A shared lock, without sweeping anything (for `check`, which reports what it finds).
    pub(crate) fn read_lock_as_is(&self) -> Result<Option<StoreLock>> {
        if !self.lock_path().exists() {
            return Ok(None);
        }
        let lock = StoreLock::shared(&self.lock_path())?;
        self.state_version()?;
        Ok(Some(lock))
    }

    pub(crate) fn version_path(&self) -> PathBuf {
        self.private_dir().join("version")
    }

    /// The recorded version of strata's state (`None`: not recorded, an older store), or an
    /// error for one newer than this strata knows.
    pub(crate) fn state_version(&self) -> Result<Option<u32>> {
        let path = self.version_path();
        let Some(text) = crate::fsutil::read_optional(&path)? else { return Ok(None) };
        let version: u32 =
            text.trim().parse().map_err(|_| Error::corrupt(&path, format!("{text:?} is not a version")))?;
        if version > STATE_VERSION {
            return Err(Error::NewerStore { root: self.root.clone(), found: version, known: STATE_VERSION });
        }
        Ok(Some(version))
    }

    /// Create the directories a write needs. Safe to race with other processes doing the same.
    pub(crate) fn ensure_layout(&self) -> Result<()> {
        // `strata/tmp` is made last: once it exists, the rest does.
        let scratch = self.scratch_root();
        if self.tmp_dir().is_dir() && scratch.is_dir() {
            return Ok(());
        }
        if !self.home.is_dir() {
            check_filesystem(&self.home)?;
            if let Some(parent) = self.root.parent() {
                std::fs::create_dir_all(parent).ctx("mkdir", parent)?;
            }
            // dockerd's mode for its data root: others may traverse nothing.
            mkdir(&self.root, 0o710)?;
            mkdir(&self.home, 0o710)?;
        }
        mkdir(&self.link_dir(), 0o700)?;
        mkdir(&scratch, 0o700)?;
        mkdir(&self.private_dir(), 0o700)?;
        mkdir(&self.mounts_dir(), 0o700)?;
        mkdir(&self.tmp_dir(), 0o700)?;
        Ok(())
    }
}

/// The entries of a root that dockerd and strata write through.
const TOP_LEVEL: &[&str] = &[DRIVER_NAME, "image", "containers", "strata"];

impl Store {
    /// Refuse a root, or a top-level entry of it, that another user owns or can write, or an
    /// entry that is not a directory of its own: through it, that user could make strata (often
    /// root) write where they choose. Entries not made yet are left for `ensure_layout`.
    pub(crate) fn check_owner(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let entries = TOP_LEVEL.iter().map(|name| self.root.join(name));
        for path in std::iter::once(self.root.clone()).chain(entries) {
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("stat", path, e)),
            };
            let unsafe_because = |reason: String| Err(Error::Unsafe { path: path.clone(), reason });
            if meta.file_type().is_symlink() {
                return unsafe_because("it is a symbolic link; a store's entries are directories of its own".into());
            }
            if !meta.is_dir() {
                return unsafe_because("it is not a directory".into());
            }
            if meta.uid() != me {
                return unsafe_because(format!(
                    "it is owned by uid {}, not by this user (uid {me}), who would write through it",
                    meta.uid()
                ));
            }
            if meta.mode() & 0o022 != 0 {
                return unsafe_because(format!(
                    "other users can write it (mode {:04o}); `chmod go-w` it, or use another root",
                    meta.mode() & 0o7777
                ));
            }
        }
        Ok(())
    }
}

/// Refuse a store directory on a filesystem where OverlayFS cannot work, before anything is
/// written: the test runs in the nearest existing ancestor of `home`, as dockerd's does.
fn check_filesystem(home: &Path) -> Result<()> {
    let probe_dir = home.ancestors().find(|p| p.is_dir()).unwrap_or(Path::new("/"));
    let unsupported = |reason: String| Error::UnsupportedFilesystem { path: probe_dir.to_owned(), reason };
    let fs_type = sys::fs_type(probe_dir).ctx("statfs", probe_dir)?;
    if fs_type == sys::OVERLAYFS_SUPER_MAGIC {
        return Err(unsupported(
            "it is on OverlayFS itself, which cannot be an upper layer; use a directory on ext4, xfs, btrfs or tmpfs"
                .into(),
        ));
    }
    if !sys::supports_d_type(probe_dir).ctx("probe d_type in", probe_dir)? {
        return Err(unsupported(
            "its filesystem does not report file types in directory entries (d_type), which OverlayFS needs to find whiteouts; reformat it (xfs: mkfs.xfs -n ftype=1, ext4: keep the filetype feature) or use another filesystem"
                .into(),
        ));
    }
    Ok(())
}

/// A store with its layout made, in a fresh temporary directory (for unit tests).
#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    drop(store.write_lock().unwrap());
    (tmp, store)
}
