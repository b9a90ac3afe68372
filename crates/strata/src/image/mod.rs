//! Images: stacks of read-only layers addressed by content, in Docker's own image database
//! under `<root>/image/overlay2/`, so that dockerd reads what strata writes and the other way
//! round.
//!
//! ```text
//! <root>/image/overlay2/
//! ├── imagedb/        image configs by image ID, and their metadata       (see `imagedb`)
//! ├── layerdb/        layer stacks by chainID → overlay2 layer (cache-id) (see `layerdb`)
//! └── repositories.json                          names → image IDs       (see `repositories`)
//! ```
//!
//! - [`ImageStore::load`] and [`ImageStore::save`]: `docker save` tarballs and OCI layouts.
//! - [`ImageStore::import`]: a root filesystem as a one-layer image.
//! - [`ImageStore::list`], [`ImageStore::inspect`], [`ImageStore::history`]: what `docker
//!   images`, `inspect` and `history` show, in the Engine API's JSON shapes.
//! - [`ImageStore::tag`], [`ImageStore::remove`].

pub mod change;
pub(crate) mod check;
mod child;
pub mod config;
mod distribution;
pub(crate) mod filter;
mod ids;
mod imagedb;
mod import;
pub(crate) mod index;
pub(crate) mod journal;
pub(crate) mod layerdb;
mod load;
mod pipeline;
mod platform;
mod reference;
mod remove;
mod repositories;
mod save;
mod source;
mod view;
mod writer;

use std::path::PathBuf;

pub use child::{Child, EMPTY_TAR};
pub use config::{ContainerConfig, History, ImageConfig, RootFs, now_rfc3339};
pub use distribution::BlobRecord;
pub use filter::ImageFilters;
pub use ids::{ChainId, ImageId};
pub use import::ImportOptions;
pub use layerdb::{LayerRecord, MountRecord};
pub use pipeline::{BlobSource, ImagePlan, LayerBlob, LayerEvent, LayerPlan, Loaded, LoadedImage, Progress};
pub use platform::Platform;
pub use reference::Reference;
pub use remove::Removed;
pub use repositories::Repositories;
pub use save::SaveFormat;
pub use view::{HistoryItem, ImageInspect, ImageSummary};
pub use writer::ImageWriter;

use crate::error::{Error, Result};
use crate::layer::LayerStore;
use crate::store::Store;

/// The images of one store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) store: Store,
    pub(crate) layers: LayerStore,
    pub(crate) layerdb: layerdb::LayerDb,
    pub(crate) imagedb: imagedb::ImageDb,
    repositories: PathBuf,
}

/// An image as stored: its ID, its config (parsed, and the exact bytes) and its names.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID.
    pub id: ImageId,
    /// The config, parsed.
    pub config: ImageConfig,
    /// The config's exact bytes.
    pub raw_config: Vec<u8>,
    /// Its names, sorted.
    pub names: Vec<Reference>,
}

impl Store {
    /// The image store over this root.
    pub fn images(&self) -> ImageStore {
        let root = self.root();
        ImageStore {
            store: self.clone(),
            layers: self.layers(),
            layerdb: layerdb::LayerDb::new(self),
            imagedb: imagedb::ImageDb::new(self),
            repositories: repositories::path(root),
        }
    }
}

impl ImageStore {
    /// The store this belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Start writing images: takes the store's write lock until the writer is committed or
    /// dropped. Stage layers (`stage_dir`, `LayerStore::stage`) before, outside the lock.
    pub fn writer(&self) -> Result<ImageWriter<'_>> {
        ImageWriter::begin(self)
    }

    /// The names → images map.
    pub fn repositories(&self) -> Result<Repositories> {
        Repositories::load(&self.repositories)
    }

    /// Find an image as `docker` does: a name (`debian`, `debian:12`; `latest` if no tag), a full
    /// image ID (`sha256:…` or 64 hex), or a unique prefix of one.
    pub fn resolve(&self, name: &str) -> Result<ImageId> {
        let _lock = self.store.read_lock()?;
        self.resolve_unlocked(name)
    }

    pub(crate) fn resolve_unlocked(&self, name: &str) -> Result<ImageId> {
        if let Ok(id) = name.parse::<ImageId>() {
            return if self.imagedb.contains(id) { Ok(id) } else { Err(Error::ImageNotFound(name.to_owned())) };
        }
        self.resolve_by(name, |r| Repositories::lookup(&self.repositories, r))
    }

    /// [`resolve`](Self::resolve) with the names already read.
    pub(crate) fn resolve_in(&self, name: &str, repos: &Repositories) -> Result<ImageId> {
        self.resolve_by(name, |r| Ok(repos.get(r)))
    }

    /// [`resolve`](Self::resolve), names looked up by `lookup`.
    fn resolve_by(&self, name: &str, lookup: impl FnOnce(&Reference) -> Result<Option<ImageId>>) -> Result<ImageId> {
        if let Ok(id) = name.parse::<ImageId>() {
            return if self.imagedb.contains(id) { Ok(id) } else { Err(Error::ImageNotFound(name.to_owned())) };
        }
        let reference = name.parse::<Reference>();
        if let Ok(r) = &reference
            && let Some(id) = lookup(&r.clone().or_latest())?
        {
            return Ok(id);
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && prefix.len() < 64 && prefix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            let found: Vec<ImageId> =
                self.imagedb.list()?.into_iter().filter(|id| id.hex().starts_with(prefix)).collect();
            match found.as_slice() {
                [id] => return Ok(*id),
                [] => {}
                _ => {
                    return Err(Error::ImageConflict {
                        image: name.to_owned(),
                        reason: format!("the prefix matches {} images; give more of the ID", found.len()),
                    });
                }
            }
        }
        match reference {
            Err(e) if !name.bytes().all(|b| b.is_ascii_hexdigit()) => Err(e),
            _ => Err(Error::ImageNotFound(name.to_owned())),
        }
    }

    /// The image `id`.
    pub fn get(&self, id: ImageId) -> Result<Image> {
        let _lock = self.store.read_lock()?;
        let repos = self.repositories()?;
        self.get_unlocked(id, &repos)
    }

    pub(crate) fn get_unlocked(&self, id: ImageId, repos: &Repositories) -> Result<Image> {
        let raw_config = self.imagedb.config(id)?.ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
        let config = ImageConfig::parse(&raw_config, &format!("image {id}"))?;
        Ok(Image { id, config, raw_config, names: repos.names_of(id) })
    }

    /// An image without its names (what a container is made of needs none of them).
    pub(crate) fn get_unnamed(&self, id: ImageId) -> Result<Image> {
        self.get_unlocked(id, &Repositories::default())
    }

    /// How many images the database holds.
    pub fn count(&self) -> Result<usize> {
        let _lock = self.store.read_lock()?;
        Ok(self.imagedb.list()?.len())
    }

    /// The layer stack of an image, base first.
    pub fn layers_of(&self, image: &Image) -> Result<Vec<LayerRecord>> {
        ChainId::chain(&image.config.rootfs.diff_ids).into_iter().map(|c| self.layerdb.require(c)).collect()
    }

    /// The overlay2 layer at the top of an image (what a container stacks on), if it has layers.
    pub fn top_layer(&self, image: &Image) -> Result<Option<crate::LayerId>> {
        Ok(self.layers_of(image)?.pop().map(|r| r.cache_id))
    }
}

/// This machine's architecture, as Go names it.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
