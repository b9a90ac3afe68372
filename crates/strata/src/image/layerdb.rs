//! Docker's layer database, `image/overlay2/layerdb/`: one directory per stack of layers,
//! named by its chainID, that ties it to the overlay2 layer holding its files.
//!
//! ```text
//! layerdb/                          0700
//! ├── sha256/<chainID>/             0755 / 0700
//! │   ├── diff                      diffID of the top layer (`sha256:…`, no newline)
//! │   ├── parent                    chainID of the stack below (absent for a base layer)
//! │   ├── cache-id                  the overlay2 layer: `<root>/overlay2/<cache-id>/`
//! │   ├── size                      bytes of the layer's own files, as dockerd counts them
//! │   └── tar-split.json.gz         how to rebuild the exact tarball from those files
//! ├── mounts/<container>/           a container's layers (`mount-id`, `init-id`, `parent`)
//! └── tmp/                          write-sets being built; renamed into sha256/ when whole
//! ```

use std::path::{Path, PathBuf};

use super::ids::ChainId;
use crate::digest::DiffId;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{mkdir, parsed_names, read_bytes_optional, read_optional, write_new};
use crate::id::LayerId;
use crate::index::Change;
use crate::store::Store;

const DIFF: &str = "diff";
const PARENT: &str = "parent";
const CACHE_ID: &str = "cache-id";
const SIZE: &str = "size";
const MOUNT_ID: &str = "mount-id";
const INIT_ID: &str = "init-id";
/// The tar-split of the layer, gzipped.
pub(crate) const TAR_SPLIT: &str = "tar-split.json.gz";

/// One registered stack: its top layer and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// The stack's chainID.
    pub chain_id: ChainId,
    /// The top layer's diffID.
    pub diff_id: DiffId,
    /// The stack below, if any.
    pub parent: Option<ChainId>,
    /// The overlay2 layer holding the top layer's files.
    pub cache_id: LayerId,
    /// Bytes of the top layer's own files.
    pub size: u64,
}

/// A container's layers, as `mounts/<container>/` records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRecord {
    /// The container's writable layer.
    pub mount_id: LayerId,
    /// Its `-init` layer, below the writable one.
    pub init_id: Option<LayerId>,
    /// The image stack it stands on (none for an image without layers).
    pub parent: Option<ChainId>,
}

/// `<root>/image/overlay2/layerdb`.
#[derive(Debug, Clone)]
pub(crate) struct LayerDb {
    dir: PathBuf,
    store: Store,
}

impl LayerDb {
    pub(crate) fn new(store: &Store) -> Self {
        LayerDb { dir: path(store.root()), store: store.clone() }
    }

    pub(crate) fn entry(&self, chain: ChainId) -> PathBuf {
        self.dir.join("sha256").join(chain.hex())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub(crate) fn mounts_dir(&self) -> PathBuf {
        self.dir.join("mounts")
    }

    /// Make the directories, with dockerd's modes.
    pub(crate) fn ensure(&self) -> Result<()> {
        for dir in self.dir.ancestors().skip(1).take(2).collect::<Vec<_>>().into_iter().rev() {
            mkdir(dir, 0o700)?;
        }
        mkdir(&self.dir, 0o700)?;
        for sub in ["sha256", "mounts", "tmp"] {
            mkdir(&self.dir.join(sub), 0o755)?;
        }
        Ok(())
    }

    /// Whether `chain` is registered.
    pub(crate) fn contains(&self, chain: ChainId) -> bool {
        self.entry(chain).join(CACHE_ID).is_file()
    }

    /// The record of `chain`, or `None` if it is not registered.
    pub(crate) fn get(&self, chain: ChainId) -> Result<Option<LayerRecord>> {
        let dir = self.entry(chain);
        let Some(cache_id) = read_optional(&dir.join(CACHE_ID))? else { return Ok(None) };
        let corrupt = |file: &str, why: String| Error::corrupt(dir.join(file), why);
        let field = |file: &str| -> Result<String> {
            read_optional(&dir.join(file))?.ok_or_else(|| corrupt(file, "missing".into()))
        };
        let cache_id = cache_id.trim().parse::<LayerId>().map_err(|e| corrupt(CACHE_ID, e.to_string()))?;
        let diff_id = field(DIFF)?.trim().parse::<DiffId>().map_err(|e| corrupt(DIFF, e.to_string()))?;
        let size = field(SIZE)?.trim().parse::<u64>().map_err(|e| corrupt(SIZE, e.to_string()))?;
        let parent = match read_optional(&dir.join(PARENT))? {
            None => None,
            Some(p) => Some(p.trim().parse::<ChainId>().map_err(|e| corrupt(PARENT, e.to_string()))?),
        };
        Ok(Some(LayerRecord { chain_id: chain, diff_id, parent, cache_id, size }))
    }

    /// The record of `chain`, which an image says exists.
    pub(crate) fn require(&self, chain: ChainId) -> Result<LayerRecord> {
        self.get(chain)?.ok_or_else(|| Error::corrupt(self.entry(chain), "layer of an image is missing from layerdb"))
    }

    /// The gzipped tar-split of `chain`, if it has one.
    pub(crate) fn tar_split(&self, chain: ChainId) -> Result<Option<Vec<u8>>> {
        read_bytes_optional(&self.entry(chain).join(TAR_SPLIT))
    }

    /// Every registered chainID.
    pub(crate) fn list(&self) -> Result<Vec<ChainId>> {
        parsed_names(&self.dir.join("sha256"))
    }

    /// Register `record` (call with the store lock held): the files are written into
    /// `tmp/write-set-<name>` and renamed into place whole.
    pub(crate) fn register(&self, record: &LayerRecord, tar_split: Option<&[u8]>, name: &str) -> Result<()> {
        let set = self.write_set(name);
        crate::scratch::remove_tree(&set)?;
        mkdir(&set, 0o700)?;
        write_new(&set.join(DIFF), record.diff_id.to_string().as_bytes(), 0o644)?;
        if let Some(parent) = record.parent {
            write_new(&set.join(PARENT), parent.to_string().as_bytes(), 0o644)?;
        }
        write_new(&set.join(SIZE), record.size.to_string().as_bytes(), 0o644)?;
        if let Some(tar_split) = tar_split {
            write_new(&set.join(TAR_SPLIT), tar_split, 0o644)?;
        }
        // cache-id last: an entry without it is not an entry (see `get`).
        write_new(&set.join(CACHE_ID), record.cache_id.as_str().as_bytes(), 0o644)?;
        let target = self.entry(record.chain_id);
        let change = Change::begin(&self.store, &super::index::CHAINS);
        std::fs::rename(&set, &target).ctx("rename", &target)?;
        let parent = record.parent.map_or("-".into(), |p| p.hex().to_owned());
        change.added(&record.chain_id.hex(), &format!("{} {parent}", record.cache_id));
        Ok(())
    }

    /// A write-set directory for an operation named `name`.
    pub(crate) fn write_set(&self, name: &str) -> PathBuf {
        self.tmp_dir().join(format!("write-set-{name}"))
    }

    /// Unregister `chain` (call with the store lock held): the entry is renamed into `tmp/`
    /// and deleted from there.
    pub(crate) fn remove(&self, chain: ChainId, name: &str) -> Result<()> {
        let entry = self.entry(chain);
        if !entry.exists() {
            return Ok(());
        }
        let trash = self.tmp_dir().join(format!("remove-{name}-{}", &chain.hex()[..12]));
        let change = Change::begin(&self.store, &super::index::CHAINS);
        std::fs::rename(&entry, &trash).ctx("rename", &entry)?;
        change.removed(&chain.hex());
        crate::scratch::remove_tree(&trash)
    }

    /// The layers of `container`, if it has a record.
    pub(crate) fn mount(&self, container: &str) -> Result<Option<MountRecord>> {
        let dir = self.mounts_dir().join(container);
        let Some(mount_id) = read_optional(&dir.join(MOUNT_ID))? else { return Ok(None) };
        let corrupt = |file: &str, why: String| Error::corrupt(dir.join(file), why);
        let mount_id = mount_id.trim().parse::<LayerId>().map_err(|e| corrupt(MOUNT_ID, e.to_string()))?;
        let init_id = match read_optional(&dir.join(INIT_ID))? {
            None => None,
            Some(s) => Some(s.trim().parse::<LayerId>().map_err(|e| corrupt(INIT_ID, e.to_string()))?),
        };
        let parent = match read_optional(&dir.join(PARENT))? {
            None => None,
            Some(s) => Some(s.trim().parse::<ChainId>().map_err(|e| corrupt(PARENT, e.to_string()))?),
        };
        Ok(Some(MountRecord { mount_id, init_id, parent }))
    }

    /// Record the layers of `container` (with the store lock held), written aside and renamed
    /// into place whole, in dockerd's form: 0644 files without a newline.
    pub(crate) fn put_mount(&self, container: &str, record: &MountRecord, name: &str) -> Result<()> {
        let set = self.write_set(name);
        crate::scratch::remove_tree(&set)?;
        mkdir(&set, 0o755)?;
        if let Some(init) = &record.init_id {
            write_new(&set.join(INIT_ID), init.as_str().as_bytes(), 0o644)?;
        }
        if let Some(parent) = record.parent {
            write_new(&set.join(PARENT), parent.to_string().as_bytes(), 0o644)?;
        }
        write_new(&set.join(MOUNT_ID), record.mount_id.as_str().as_bytes(), 0o644)?;
        let target = self.mounts_dir().join(container);
        let change = Change::begin(&self.store, &super::index::MOUNTS);
        std::fs::rename(&set, &target).ctx("rename", &target)?;
        let init = record.init_id.as_ref().map_or("-", |i| i.as_str());
        let parent = record.parent.map_or("-".into(), |p| p.hex().to_owned());
        change.added(container, &format!("{} {init} {parent}", record.mount_id));
        Ok(())
    }

    /// Drop the record of `container` (with the store lock held).
    pub(crate) fn remove_mount(&self, container: &str, name: &str) -> Result<()> {
        let dir = self.mounts_dir().join(container);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.tmp_dir().join(format!("remove-{name}-{}", &container[..container.len().min(12)]));
        let change = Change::begin(&self.store, &super::index::MOUNTS);
        std::fs::rename(&dir, &trash).ctx("rename", &dir)?;
        change.removed(container);
        crate::scratch::remove_tree(&trash)
    }

    /// Leftover write-sets and removals in `tmp/` of operations named `name`.
    pub(crate) fn leftovers_of(&self, name: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(name)))
            .collect()
    }
}

/// `<root>/image/overlay2/layerdb` of a root.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join("image").join(crate::store::DRIVER_NAME).join("layerdb")
}
