//! Volumes: directories on the host that containers mount, kept in the layout of dockerd's
//! `local` driver so that dockerd lists and mounts strata's volumes and strata dockerd's.
//!
//! ```text
//! <root>/volumes/                      0701
//! <root>/volumes/<name>/               0701  (its ctime is the volume's CreatedAt)
//! <root>/volumes/<name>/_data/         0755  what containers see
//! <root>/volumes/<name>/strata.json    0600  the labels of a volume strata made
//! <root>/volumes/metadata.db                 dockerd's BoltDB: read for the labels of its volumes
//! ```
//!
//! A volume appears with one `rename(2)` of a directory built aside, and disappears with one
//! `rename(2)` out of `volumes/` before its files are deleted: no reader sees half a volume.
//! Which containers use a volume is in their records, so removing one is the containers'
//! business (`ContainerStore::remove_volume`, which refuses a volume in use).

mod bolt;
mod name;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use name::anonymous_name;
pub use name::valid_name;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{mkdir, read_bytes_optional, write_new};
use crate::lock::StoreLock;
use crate::scratch::Scratch;
use crate::store::Store;

const DATA: &str = "_data";
const LABELS: &str = "strata.json";

/// The volumes of one store.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    store: Store,
}

/// A volume, in the Engine API's shape (`GET /volumes/{name}`; fields in the order `docker
/// volume inspect` prints them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// When it was made (RFC 3339, seconds).
    pub created_at: String,
    /// Always `local`.
    pub driver: &'static str,
    /// Its labels (`null` for a volume made by a container, as dockerd shows them).
    pub labels: Option<BTreeMap<String, String>>,
    /// Where its data is on the host: `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
    /// Its name.
    pub name: String,
    /// Driver options (none: strata makes plain directories).
    pub options: Option<BTreeMap<String, String>>,
    /// Always `local`.
    pub scope: &'static str,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    labels: Option<BTreeMap<String, String>>,
}

impl VolumeStore {
    /// The volumes of `store`.
    pub fn new(store: &Store) -> VolumeStore {
        VolumeStore { store: store.clone() }
    }

    fn dir(&self) -> PathBuf {
        self.store.root().join("volumes")
    }

    /// Where the volume `name`'s data is.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir().join(name).join(DATA)
    }

    /// Create a volume as `docker volume create` does: `name` (a fresh anonymous name if
    /// `None`), with `labels`. A volume of that name that exists already is returned as it is.
    pub fn create(&self, name: Option<&str>, labels: Option<BTreeMap<String, String>>) -> Result<Volume> {
        let lock = self.store.write_lock()?;
        let name = match name {
            Some(name) => valid_name(name)?.to_owned(),
            None => anonymous_name(),
        };
        self.create_locked(&lock, &name, labels)?;
        self.get(&name)
    }

    /// Make the volume `name` (checked) unless it exists; whether it was made.
    pub(crate) fn create_locked(
        &self,
        _lock: &StoreLock,
        name: &str,
        labels: Option<BTreeMap<String, String>>,
    ) -> Result<bool> {
        let target = self.dir().join(name);
        if self.exists(name) {
            return Ok(false);
        }
        mkdir(&self.dir(), 0o701)?;
        let staged = Scratch::new(&self.store, "volume create")?;
        let dir = staged.dir();
        mkdir(dir, 0o701)?;
        mkdir(&dir.join(DATA), 0o755)?;
        if labels.is_some() {
            let meta = serde_json::to_vec(&Meta { labels }).expect("serializable");
            write_new(&dir.join(LABELS), &meta, 0o600)?;
        }
        match std::fs::rename(dir, &target) {
            Ok(()) => {}
            // A directory that is not a volume (no `_data`) stands there: say so, touch nothing.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists) => {
                return Err(Error::BadOption {
                    what: "volume name",
                    value: name.to_owned(),
                    reason: format!("{} exists and is not a volume: choose another name", target.display()),
                });
            }
            Err(e) => return Err(e).ctx("rename", &target),
        }
        staged.finish()?;
        tracing::debug!(name, "created volume");
        Ok(true)
    }

    /// Whether a volume `name` exists (a directory with `_data` or dockerd's `opts.json`).
    pub fn exists(&self, name: &str) -> bool {
        let dir = self.dir().join(name);
        valid_name(name).is_ok()
            && (std::fs::symlink_metadata(dir.join(DATA)).is_ok()
                || std::fs::symlink_metadata(dir.join("opts.json")).is_ok())
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if !self.exists(name) {
            return Err(Error::VolumeNotFound(name.to_owned()));
        }
        let dockerd = bolt::dockerd_labels(&self.dir().join("metadata.db"));
        self.describe(name, &dockerd)
    }

    fn describe(&self, name: &str, dockerd: &BTreeMap<String, Option<BTreeMap<String, String>>>) -> Result<Volume> {
        let dir = self.dir().join(name);
        let st = rustix::fs::stat(&dir).ctx("stat", &dir)?;
        let created = jiff::Timestamp::from_second(st.st_ctime).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let labels = match read_bytes_optional(&dir.join(LABELS))? {
            Some(bytes) => serde_json::from_slice::<Meta>(&bytes).map(|m| m.labels).unwrap_or_default(),
            None => dockerd.get(name).cloned().flatten(),
        };
        Ok(Volume {
            created_at: created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            driver: "local",
            labels,
            mountpoint: dir.join(DATA),
            name: name.to_owned(),
            options: None,
            scope: "local",
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match std::fs::read_dir(self.dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx("read", self.dir()),
        };
        let dockerd = bolt::dockerd_labels(&self.dir().join("metadata.db"));
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| self.exists(n)).collect();
        names.sort();
        names.iter().map(|n| self.describe(n, &dockerd)).collect()
    }

    /// Remove the volume `name` and its data; the caller checked that nothing uses it.
    pub(crate) fn remove_locked(&self, _lock: &StoreLock, name: &str) -> Result<()> {
        if !self.exists(name) {
            return Err(Error::VolumeNotFound(name.to_owned()));
        }
        let dir = self.dir().join(name);
        let aside = Scratch::new(&self.store, "volume remove")?;
        std::fs::rename(&dir, aside.dir()).ctx("rename", &dir)?;
        aside.finish()?;
        tracing::debug!(name, "removed volume");
        Ok(())
    }

    /// The bytes a volume's files take (for `prune`'s report).
    pub fn size(&self, name: &str) -> u64 {
        crate::archive::tree_size(&self.data_dir(name)).unwrap_or(0)
    }
}
