//! Containers: an image's layers, an `-init` layer and a writable layer, mounted as one tree
//! and run by an OCI runtime (runc or crun), in dockerd's own records so that each reads the
//! other's containers.
//!
//! ```text
//! <root>/containers/<id>/                 0700  config.v2.json (0600), hostconfig.json,
//!                                               hostname, hosts, resolv.conf, checkpoints/,
//!                                               <id>-json.log (a detached run's output)
//! <root>/image/overlay2/layerdb/mounts/<id>/    mount-id, init-id, parent (see `layerdb`)
//! <root>/overlay2/<mount-id>-init/              the init layer (see `init`)
//! <root>/overlay2/<mount-id>/                   the writable layer
//! <root>/strata/containers/<id>/                strata's own: the monitor lock, the bundle
//! <root>/strata/runtime/<runtime>/              the runtime's state (`runc --root`)
//! ```
//!
//! - [`ContainerStore::create`], [`ContainerStore::start`], [`ContainerStore::remove`].
//! - [`ContainerStore::exec`], [`ContainerStore::logs`], [`ContainerStore::stop`], [`ContainerStore::kill`],
//!   [`ContainerStore::wait`].
//! - [`ContainerStore::diff`], [`ContainerStore::commit`], [`ContainerStore::export`].
//! - [`ContainerStore::list`], [`ContainerStore::inspect`], [`ContainerStore::mount`].

mod attach;
mod check;
mod commit;
mod console;
mod copy;
mod create;
mod exec;
mod filter;
mod id;
mod init;
pub(crate) mod journal;
mod lifecycle;
mod log;
mod monitor;
pub mod mounts;
mod record;
mod remove;
mod runtime;
mod seccomp;
mod spec;
mod start;
pub(crate) mod user;
mod view;
mod volumes;

use std::path::PathBuf;

pub use attach::Terminal;
pub use commit::CommitOptions;
pub use console::RawTerminal;
pub use copy::PathKind;
pub use create::{CreateOptions, Network};
pub use exec::ExecOptions;
pub use filter::ContainerFilters;
pub use id::{ContainerId, valid_name};
pub use lifecycle::parse_signal;
pub use log::{LogEntry, LogLimits, LogOptions};
pub use record::{HostConfig, Record, State};
pub use runtime::Runtime;
pub use seccomp::{Seccomp, SecurityOptions};
pub use start::Output;
pub use view::{ContainerInspect, ContainerSummary};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::read_bytes_optional;
use crate::image::{ImageStore, MountRecord};
use crate::layer::LayerStore;
use crate::scratch::Scratch;
use crate::store::Store;

const CONFIG: &str = "config.v2.json";
const HOST_CONFIG: &str = "hostconfig.json";

/// The containers of one store.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    store: Store,
    images: ImageStore,
    layers: LayerStore,
}

/// A container as stored.
#[derive(Debug, Clone)]
pub struct Container {
    /// `config.v2.json`.
    pub record: Record,
    /// `hostconfig.json`.
    pub host: HostConfig,
    /// Its layers.
    pub layers: MountRecord,
    /// Whether a process of it runs now (the kernel's and the runtime's word, not the record's).
    pub running: bool,
}

impl Container {
    /// Its ID.
    pub fn id(&self) -> ContainerId {
        self.record.id
    }
}

impl Store {
    /// The container store over this root.
    pub fn containers(&self) -> ContainerStore {
        ContainerStore { store: self.clone(), images: self.images(), layers: self.layers() }
    }
}

impl ContainerStore {
    /// The store this belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Find a container as `docker` does: a full ID, a name, or a unique prefix of an ID.
    pub fn resolve(&self, name: &str) -> Result<ContainerId> {
        let _lock = self.store.read_lock()?;
        self.resolve_unlocked(name)
    }

    pub(crate) fn resolve_unlocked(&self, name: &str) -> Result<ContainerId> {
        let ids = self.ids()?;
        if let Ok(id) = name.parse::<ContainerId>() {
            return if ids.contains(&id) { Ok(id) } else { Err(Error::ContainerNotFound(name.to_owned())) };
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        for id in &ids {
            match self.read_record(*id) {
                Ok(Some(record)) if record.name() == bare => return Ok(*id),
                Ok(_) => {}
                // A record that cannot be read has no name to match; `check` reports it.
                Err(e) => tracing::debug!(%id, "not read while resolving {name:?}: {e}"),
            }
        }
        let hex = !name.is_empty() && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex {
            let found: Vec<&ContainerId> = ids.iter().filter(|id| id.as_str().starts_with(name)).collect();
            match found.as_slice() {
                [id] => return Ok(**id),
                [] => {}
                _ => {
                    return Err(Error::Container {
                        container: name.to_owned(),
                        reason: format!("the prefix matches {} containers; give more of the ID", found.len()),
                    });
                }
            }
        }
        Err(Error::ContainerNotFound(name.to_owned()))
    }

    /// The container `id`.
    pub fn get(&self, id: ContainerId) -> Result<Container> {
        let _lock = self.store.read_lock()?;
        self.get_unlocked(id)
    }

    /// The container `name` (an ID, a name or a unique prefix), read under one lock.
    pub(crate) fn find(&self, name: &str) -> Result<Container> {
        let _lock = self.store.read_lock()?;
        self.get_unlocked(self.resolve_unlocked(name)?)
    }

    pub(crate) fn get_unlocked(&self, id: ContainerId) -> Result<Container> {
        let dir = self.dir(id);
        let record = self.read_record(id)?.ok_or_else(|| Error::ContainerNotFound(id.to_string()))?;
        let host_path = dir.join(HOST_CONFIG);
        let host = match read_bytes_optional(&host_path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&host_path, e.to_string()))?,
            None => HostConfig::new("none", false, runtime::DEFAULT),
        };
        let layers = self
            .images
            .layerdb
            .mount(id.as_str())?
            .ok_or_else(|| Error::corrupt(self.images.layerdb.mounts_dir().join(id.as_str()), "missing"))?;
        let running = monitor::is_running(&self.store, &record, &host);
        Ok(Container { record, host, layers, running })
    }

    /// Every container, newest first, as `docker ps -a` lists them.
    pub fn list(&self) -> Result<Vec<Container>> {
        let _lock = self.store.read_lock()?;
        let mut out = Vec::new();
        for id in self.ids()? {
            match self.get_unlocked(id) {
                Ok(c) => out.push(c),
                Err(Error::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }

    /// What the container changed in its image, as `docker diff` lists it.
    pub fn diff(&self, name: &str) -> Result<Vec<crate::archive::Change>> {
        let container = self.find(name)?;
        self.layers.changes(&container.layers.mount_id)
    }

    /// Mount the container's tree (another reference if it is mounted) and return the merged
    /// directory, as `docker`'s graph driver does for `docker cp` and `podman mount`.
    pub fn mount(&self, name: &str) -> Result<PathBuf> {
        let container = self.find(name)?;
        self.layers.mount(&container.layers.mount_id)
    }

    /// Drop a mount reference taken by [`mount`](Self::mount).
    pub fn unmount(&self, name: &str) -> Result<()> {
        let container = self.find(name)?;
        self.layers.unmount(&container.layers.mount_id)
    }

    /// The merged tree as one tar (what `docker export` writes), with no whiteouts.
    pub fn export(&self, name: &str, out: impl std::io::Write + Send) -> Result<()> {
        let mount_id = self.find(name)?.layers.mount_id;
        let merged = self.layers.mount(&mount_id)?;
        let packed = crate::archive::pack::pack(&merged, out, crate::archive::Compression::None);
        let unmounted = self.layers.unmount(&mount_id);
        packed?;
        unmounted
    }

    /// `<root>/containers/<id>`.
    pub(crate) fn dir(&self, id: ContainerId) -> PathBuf {
        self.store.containers_dir().join(id.as_str())
    }

    pub(crate) fn ids(&self) -> Result<Vec<ContainerId>> {
        crate::fsutil::parsed_names(&self.store.containers_dir())
    }

    pub(crate) fn read_record(&self, id: ContainerId) -> Result<Option<Record>> {
        let path = self.dir(id).join(CONFIG);
        match read_bytes_optional(&path)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::corrupt(&path, e.to_string())),
        }
    }

    /// Rewrite `config.v2.json` whole (with the store lock held).
    pub(crate) fn write_record(&self, record: &Record) -> Result<()> {
        crate::fsutil::replace(&self.dir(record.id).join(CONFIG), &create::json_line(record), 0o600)
    }
}

/// strata's own directory for a container: its monitor lock and its runtime bundle.
pub(crate) fn private_dir(store: &Store, id: ContainerId) -> PathBuf {
    store.private_dir().join("containers").join(id.as_str())
}

/// Remove every record of a container (its layers are steps of their own), with the store
/// lock held: used by `rm` and to undo a `create` cut short.
pub(crate) fn remove_records(store: &Store, id: ContainerId, work: &Scratch) -> Result<()> {
    let trash = work.dir().join(format!("container-{}", id.short()));
    let record = store.containers_dir().join(id.as_str());
    if record.exists() {
        let change = crate::index::Change::begin(store, &crate::image::index::CONTAINERS);
        let images = crate::index::Change::begin(store, &crate::image::index::CONTAINER_IMAGES);
        std::fs::rename(&record, &trash).ctx("rename", &record)?;
        change.removed(id.as_str());
        images.removed(id.as_str());
        crate::scratch::remove_tree(&trash)?;
    }
    let private = private_dir(store, id);
    if private.exists() {
        std::fs::rename(&private, &trash).ctx("rename", &private)?;
        crate::scratch::remove_tree(&trash)?;
    }
    store.images().layerdb.remove_mount(id.as_str(), &work.name())
}
