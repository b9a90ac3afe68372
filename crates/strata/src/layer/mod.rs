//! Layers: directories under `<root>/overlay2/` in dockerd's exact layout (see `layout`), and
//! the operations on them: create, remove, list, inspect, mount and unmount.
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! let layers = strata::Store::open("/var/lib/strata")?.layers();
//! let base = layers.create(&Default::default())?;
//! std::fs::write(layers.diff_dir(&base).join("hello"), "from the base layer\n").unwrap();
//! let top = layers.create(&strata::layer::CreateOptions { parent: Some(base), ..Default::default() })?;
//! let merged = layers.mount(&top)?; // base's diff as lowerdir, top's diff as upperdir
//! assert!(merged.join("hello").exists());
//! layers.unmount(&top)?;
//! # Ok(()) }
//! ```

mod info;
pub(crate) mod layout;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::PathBuf;

pub use info::{GraphDriver, GraphDriverData, LayerInfo};

use crate::error::{Error, IoContext, Result};
use crate::failpoint;
use crate::fsutil::{mkdir, remove_if_exists, write_new};
use crate::id::{LayerId, ShortLink};
use crate::lock::StoreLock;
use crate::mount::{self, MAX_LOWERS, MountPlan, refcount};
use crate::scratch::Scratch;
use crate::store::Store;
use crate::sys;
use layout::{COMMITTED, DIFF, LINK, LOWER, MERGED, WORK, mode};

/// How to create a layer.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The ID to give it; a random one if `None`.
    pub id: Option<LayerId>,
    /// The layer to stack it on; a base layer if `None`.
    pub parent: Option<LayerId>,
}

/// The index of `overlay2/`: each layer's nearest lower link (`-` for a base layer), to find
/// a layer's children without reading every layer's `lower`.
pub(crate) static INDEX: crate::index::Kind = crate::index::Kind {
    name: "layers",
    dir: |store| store.home().to_owned(),
    stamp_file: None,
    accept: |name| name.parse::<LayerId>().is_ok(),
};

/// The layers of one store.
#[derive(Debug, Clone)]
pub struct LayerStore {
    store: Store,
}

impl Store {
    /// The layer store over this root.
    pub fn layers(&self) -> LayerStore {
        LayerStore::new(self.clone())
    }
}

impl LayerStore {
    pub(crate) fn new(store: Store) -> Self {
        LayerStore { store }
    }

    /// The store this belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The layer's own files: `<root>/overlay2/<id>/diff`.
    pub fn diff_dir(&self, id: &LayerId) -> PathBuf {
        self.store.layer_dir(id).join(DIFF)
    }

    /// Create an empty layer, on `options.parent` if given. It is built aside and appears
    /// whole, or not at all.
    pub fn create(&self, options: &CreateOptions) -> Result<LayerId> {
        let lock = self.store.write_lock()?;
        self.create_locked(&lock, options, None)
    }

    /// [`create`](Self::create) under the store lock; with `diff`, that directory (made by
    /// [`stage`](Self::stage) on the same filesystem) becomes the layer's `diff/`.
    pub(crate) fn create_locked(
        &self,
        _lock: &StoreLock,
        options: &CreateOptions,
        diff: Option<&std::path::Path>,
    ) -> Result<LayerId> {
        let id = options.id.clone().unwrap_or_else(LayerId::random);
        let lowers = match &options.parent {
            None => Vec::new(),
            Some(parent) => {
                let parent_dir = self.existing_dir(parent).map_err(|_| Error::ParentNotFound(parent.clone()))?;
                let mut lowers = vec![
                    layout::read_link(&parent_dir)?.ok_or_else(|| Error::corrupt(parent_dir.join(LINK), "missing"))?,
                ];
                lowers.extend(layout::read_lower(&parent_dir)?);
                lowers
            }
        };
        if lowers.len() > MAX_LOWERS {
            return Err(Error::TooDeep { id, lowers: lowers.len(), max: MAX_LOWERS });
        }
        let target = self.store.layer_dir(&id);
        if target.exists() {
            return Err(Error::LayerExists(id));
        }

        let mut link = ShortLink::random();
        let change = crate::index::Change::begin(&self.store, &INDEX);
        let mut scratch = Scratch::new(&self.store, &format!("create {id} {link}"))?.taken_apart_by(layout::take_apart);
        let dir = scratch.dir().to_owned();
        mkdir(&dir, mode::LAYER_DIR)?;
        match diff {
            Some(diff) => std::fs::rename(diff, dir.join(DIFF)).ctx("rename", diff)?,
            None => drop(mkdir(&dir.join(DIFF), mode::DIFF)?),
        }
        write_new(&dir.join(LINK), link.as_str().as_bytes(), mode::META)?;
        if !lowers.is_empty() {
            mkdir(&dir.join(WORK), mode::WORK)?;
            write_new(&dir.join(LOWER), layout::format_lower(&lowers).as_bytes(), mode::META)?;
        }
        failpoint::hit("create.staged");

        // The short link goes first: a crash before the rename leaves only a dangling link,
        // which the record names, and no layer.
        loop {
            match std::os::unix::fs::symlink(layout::link_target(&id), self.store.link_dir().join(link.as_str())) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    link = ShortLink::random();
                    scratch.describe(&format!("create {id} {link}"))?;
                    std::fs::write(dir.join(LINK), link.as_str()).ctx("write", dir.join(LINK))?;
                }
                Err(e) => return Err(e).ctx("symlink", self.store.link_dir().join(link.as_str())),
            }
        }
        failpoint::hit("create.linked");
        let publish = || -> Result<()> {
            if let Some(parent) = &options.parent {
                let committed = self.store.layer_dir(parent).join(COMMITTED);
                if !committed.exists() {
                    write_new(&committed, b"", mode::COMMITTED)?;
                }
            }
            std::fs::rename(&dir, &target).ctx("rename", &target)
        };
        if let Err(e) = publish() {
            let _ = remove_if_exists(&self.store.link_dir().join(link.as_str()));
            return Err(e);
        }
        failpoint::hit("create.published");
        change.added(id.as_str(), lowers.first().map_or("-", |l| l.as_str()));
        scratch.finish()?;
        tracing::debug!(%id, "created layer");
        Ok(id)
    }

    /// Remove a layer that has no children and is not mounted. It disappears whole.
    pub fn remove(&self, id: &LayerId) -> Result<()> {
        let lock = self.store.write_lock()?;
        let scratch = self.remove_locked(&lock, id)?;
        drop(lock);
        scratch.finish()
    }

    /// [`remove`](Self::remove) under the store lock: the layer is gone when this returns;
    /// finishing the returned scratch (its files' deletion) can wait until the lock is dropped.
    pub(crate) fn remove_locked(&self, lock: &StoreLock, id: &LayerId) -> Result<Scratch> {
        let link = self.check_removable(lock, id)?;
        self.remove_checked(lock, id, link)
    }

    /// [`remove_locked`](Self::remove_locked) of a layer [`check_removable`](Self::check_removable)
    /// passed under this hold of the lock, with the link it gave.
    pub(crate) fn remove_checked(&self, _lock: &StoreLock, id: &LayerId, link: Option<ShortLink>) -> Result<Scratch> {
        let dir = self.existing_dir(id)?;
        let what = match &link {
            Some(link) => format!("remove {id} {link}"),
            None => format!("remove {id}"),
        };
        let change = crate::index::Change::begin(&self.store, &INDEX);
        let scratch = Scratch::new(&self.store, &what)?.taken_apart_by(layout::take_apart);
        std::fs::rename(&dir, scratch.dir()).ctx("rename", &dir)?;
        change.removed(id.as_str());
        failpoint::hit("remove.renamed");
        if let Some(link) = link
            && layout::resolve_link(&self.store.link_dir(), &link)?.as_ref() == Some(id)
        {
            remove_if_exists(&self.store.link_dir().join(link.as_str()))?;
        }
        tracing::debug!(%id, "removed layer");
        Ok(scratch)
    }

    /// That `id` can be removed now (under the lock): nothing has it mounted, and no layer
    /// stands on it. Its link, for the removal.
    pub(crate) fn check_removable(&self, lock: &StoreLock, id: &LayerId) -> Result<Option<ShortLink>> {
        Ok(self.check_all_removable(lock, std::slice::from_ref(id))?.pop().flatten())
    }

    /// That every layer of `going` can be removed now, in this order (under the lock): nothing
    /// has one mounted, and no layer but those of `going` stands on one. Their links, for the
    /// removals. The layers standing on any of them are found by one pass over the index.
    pub(crate) fn check_all_removable(&self, _lock: &StoreLock, going: &[LayerId]) -> Result<Vec<Option<ShortLink>>> {
        let mut links = Vec::with_capacity(going.len());
        for id in going {
            let dir = self.existing_dir(id)?;
            let mounts = self.reconcile_mounts(id)?;
            if mounts > 0 {
                return Err(Error::Mounted { id: id.clone(), mounts });
            }
            links.push(layout::read_link(&dir)?);
        }
        let children = self.children_of_all(&links)?;
        for (id, link) in going.iter().zip(&links) {
            let Some(link) = link else { continue };
            let mut on_it: Vec<LayerId> = children
                .iter()
                .filter(|(child, of)| of == link.as_str() && child != id && !going.contains(child))
                .map(|(child, _)| child.clone())
                .collect();
            if !on_it.is_empty() {
                on_it.sort();
                return Err(Error::HasChildren { id: id.clone(), children: on_it });
            }
        }
        Ok(links)
    }

    /// Every layer in the store, sorted by ID.
    pub fn list(&self) -> Result<Vec<LayerInfo>> {
        let _lock = self.store.read_lock()?;
        let ids = self.ids()?;
        let mut layers = Vec::with_capacity(ids.len());
        for id in ids {
            match self.read_info(&id, None) {
                Ok(info) => layers.push(info),
                // Removed while we were listing.
                Err(Error::LayerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let by_link: HashMap<ShortLink, LayerId> =
            layers.iter().filter_map(|l| Some((l.link?, l.id.clone()))).collect();
        for layer in &mut layers {
            layer.parent = layer.lowers.first().and_then(|l| by_link.get(l).cloned());
        }
        Ok(layers)
    }

    /// What there is to know about one layer.
    pub fn info(&self, id: &LayerId) -> Result<LayerInfo> {
        let _lock = self.store.read_lock()?;
        self.read_info(id, Some(&self.store.link_dir()))
    }

    /// The layer's directories as `docker inspect` shows them in `GraphDriver`.
    pub fn graph_driver(&self, id: &LayerId) -> Result<GraphDriver> {
        let _lock = self.store.read_lock()?;
        let dir = self.existing_dir(id)?;
        let lowers = layout::read_lower(&dir)?;
        let mut lower_dirs = Vec::with_capacity(lowers.len());
        for link in &lowers {
            let target = layout::resolve_link(&self.store.link_dir(), link)?.ok_or_else(|| {
                Error::corrupt(
                    self.store.link_dir().join(link.as_str()),
                    "short link is missing or does not point to a layer",
                )
            })?;
            lower_dirs.push(self.diff_dir(&target).to_string_lossy().into_owned());
        }
        Ok(GraphDriver {
            data: GraphDriverData {
                lower_dir: (!lower_dirs.is_empty()).then(|| lower_dirs.join(":")),
                merged_dir: dir.join(MERGED),
                upper_dir: dir.join(DIFF),
                work_dir: dir.join(WORK),
            },
            name: crate::store::DRIVER_NAME,
        })
    }

    /// Mount the union of a layer and its ancestors and return the merged directory. A layer
    /// with children mounts read-only; a base layer is not mounted at all: its `diff` is
    /// returned, as dockerd does. Mounting again adds a reference to the same kernel mount.
    pub fn mount(&self, id: &LayerId) -> Result<PathBuf> {
        let lock = self.store.write_lock()?;
        self.mount_locked(&lock, id)
    }

    /// [`mount`](Self::mount) under the store lock.
    pub(crate) fn mount_locked(&self, _lock: &StoreLock, id: &LayerId) -> Result<PathBuf> {
        let dir = self.existing_dir(id)?;
        let lowers = layout::read_lower(&dir)?;
        if lowers.is_empty() {
            return Ok(dir.join(DIFF));
        }
        let target = dir.join(MERGED);
        let held = self.reconcile_mounts(id)?;
        if held > 0 {
            refcount::set(&self.store, id, held + 1)?;
            return Ok(target);
        }

        let plan = self.plan(&dir, &lowers);
        mkdir(&target, mode::WORK)?;
        // Record first: a crash between the two leaves a count the kernel contradicts (stale,
        // ignored), never a mount nobody counts.
        refcount::set(&self.store, id, 1)?;
        failpoint::hit("mount.recorded");
        if let Err(e) = mount::mount(id, &plan, &target) {
            refcount::set(&self.store, id, 0)?;
            let _ = std::fs::remove_dir(&target);
            return Err(e);
        }
        Ok(target)
    }

    /// The OverlayFS mount [`mount`](Self::mount) would make for `id`, without mounting it:
    /// its lower directories (the `l/` links, as dockerd mounts them), upper and work
    /// directories, options and method. `None` for a base layer, which is never mounted.
    pub fn mount_plan(&self, id: &LayerId) -> Result<Option<MountPlan>> {
        let _lock = self.store.read_lock()?;
        let dir = self.existing_dir(id)?;
        let lowers = layout::read_lower(&dir)?;
        Ok((!lowers.is_empty()).then(|| self.plan(&dir, &lowers)))
    }

    /// The mount of the layer at `dir` over `lowers`: read-only if it has children.
    fn plan(&self, dir: &std::path::Path, lowers: &[ShortLink]) -> MountPlan {
        let link_dir = self.store.link_dir();
        let mut plan_lowers: Vec<PathBuf> = lowers.iter().map(|l| link_dir.join(l.as_str())).collect();
        let upper = if dir.join(COMMITTED).exists() {
            plan_lowers.insert(0, dir.join(DIFF));
            None
        } else {
            Some((dir.join(DIFF), dir.join(WORK)))
        };
        MountPlan { lowers: plan_lowers, upper, index_off: mount::kernel_has_index_option() }
    }

    /// Drop one mount reference; the last one unmounts. A base layer (never mounted) is a
    /// no-op, as in dockerd.
    pub fn unmount(&self, id: &LayerId) -> Result<()> {
        let lock = self.store.write_lock()?;
        self.unmount_locked(&lock, id, false)
    }

    /// [`unmount`](Self::unmount) under the store lock; `all` drops every reference at once.
    pub(crate) fn unmount_locked(&self, _lock: &StoreLock, id: &LayerId, all: bool) -> Result<()> {
        let dir = self.existing_dir(id)?;
        if !dir.join(LOWER).exists() {
            return Ok(());
        }
        let held = self.reconcile_mounts(id)?;
        if held == 0 {
            return Err(Error::NotMounted(id.clone()));
        }
        if held > 1 && !all {
            return refcount::set(&self.store, id, held - 1);
        }
        let target = dir.join(MERGED);
        mount::unmount(&target)?;
        failpoint::hit("umount.unmounted");
        refcount::set(&self.store, id, 0)?;
        // Removing the mount point also drops copies of the mount leaked into other mount
        // namespaces (dockerd does the same).
        let _ = std::fs::remove_dir(&target);
        Ok(())
    }

    /// The mount references `id` holds, reconciled with the kernel's mount table: a stale count
    /// is cleared, and a mount strata did not count (dockerd's, say) is one reference.
    pub(crate) fn reconcile_mounts(&self, id: &LayerId) -> Result<u32> {
        let count = refcount::get(&self.store, id)?;
        let held = held_mounts(count, sys::is_overlay_mount(&self.store.layer_dir(id).join(MERGED)));
        if held == 0 && count > 0 {
            tracing::info!(%id, "clearing a stale mount count");
            refcount::set(&self.store, id, 0)?;
        }
        Ok(held)
    }

    /// The directory of an existing layer.
    fn existing_dir(&self, id: &LayerId) -> Result<PathBuf> {
        let dir = self.store.layer_dir(id);
        if dir.is_dir() { Ok(dir) } else { Err(Error::LayerNotFound(id.clone())) }
    }

    /// Layer IDs present under `<root>/overlay2/`, sorted.
    pub(crate) fn ids(&self) -> Result<Vec<LayerId>> {
        crate::fsutil::parsed_names(self.store.home())
    }

    /// Read one layer without taking the store lock (callers hold it, or need none); with
    /// `link_dir`, its parent is resolved through `l/`.
    pub(crate) fn read_info(&self, id: &LayerId, link_dir: Option<&std::path::Path>) -> Result<LayerInfo> {
        let dir = self.existing_dir(id)?;
        let link = layout::read_link(&dir)?;
        let lowers = layout::read_lower(&dir)?;
        let parent = match (link_dir, lowers.first()) {
            (Some(link_dir), Some(first)) => layout::resolve_link(link_dir, first)?,
            _ => None,
        };
        let mounts = held_mounts(refcount::get(&self.store, id)?, sys::is_overlay_mount(&dir.join(MERGED)));
        Ok(LayerInfo { id: id.clone(), link, parent, lowers, committed: dir.join(COMMITTED).exists(), mounts })
    }

    /// The layers standing right on any of `links` (whose nearest lower is one of them), each
    /// with that link, found through the index of `overlay2/` in one pass.
    fn children_of_all(&self, links: &[Option<ShortLink>]) -> Result<Vec<(LayerId, String)>> {
        let words: Vec<&str> = links.iter().flatten().map(ShortLink::as_str).collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let read = |name: &str| {
            let lowers = layout::read_lower(&self.store.home().join(name))?;
            Ok(Some(lowers.first().map_or("-", |l| l.as_str()).to_owned()))
        };
        let found = crate::index::Index::with_last_word(&self.store, &INDEX, read, &words)?;
        Ok(found.into_iter().filter_map(|(child, link)| Some((child.parse().ok()?, link))).collect())
    }
}

/// The references a layer holds, given its recorded count and whether the kernel has it
/// mounted: the kernel is the truth, and a mount nobody counted (dockerd's) is one reference.
fn held_mounts(count: u32, mounted: bool) -> u32 {
    match (mounted, count) {
        (true, 0) => 1,
        (true, n) => n,
        (false, _) => 0,
    }
}
