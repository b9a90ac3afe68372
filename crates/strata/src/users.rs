//! Who stands on a layer: the image database (a `layerdb` stack whose `cache-id` is the layer)
//! and containers (their writable and `-init` layers). The layer commands of a store refuse to
//! remove, unmount or write into a layer that something stands on, unless forced: done behind
//! their backs, the image or container breaks.

use std::io::Read;

use crate::archive::{Applied, ApplyOptions};
use crate::container::ContainerId;
use crate::error::{Error, Result};
use crate::id::LayerId;
use crate::image::ChainId;
use crate::store::Store;

/// Something that stands on a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerUser {
    /// A stack of the image database, and the images built on it (by name, or short ID).
    Image {
        /// The stack whose top layer it is.
        chain: ChainId,
        /// The images that use the stack.
        images: Vec<String>,
    },
    /// A container.
    Container {
        /// Its ID.
        id: ContainerId,
        /// Its name, if its record can be read.
        name: Option<String>,
        /// Whether it is the container's `-init` layer (else its writable layer).
        init: bool,
        /// Whether the container runs now.
        running: bool,
    },
}

impl std::fmt::Display for LayerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerUser::Image { chain, images } if images.is_empty() => {
                write!(f, "the image database (stack {})", &chain.hex()[..12])
            }
            LayerUser::Image { images, .. } => write!(f, "image {}", images.join(", image ")),
            LayerUser::Container { id, name, init, running } => {
                let which = if *init { "-init" } else { "writable" };
                let state = if *running { "running " } else { "" };
                match name {
                    Some(name) => write!(f, "{state}container {name} ({which} layer)"),
                    None => write!(f, "{state}container {} ({which} layer)", id.short()),
                }
            }
        }
    }
}

impl Store {
    /// What stands on layer `id`; empty if nothing does.
    pub fn layer_users(&self, id: &LayerId) -> Result<Vec<LayerUser>> {
        let _lock = self.read_lock()?;
        self.layer_users_unlocked(id)
    }

    /// [`layer_users`](Self::layer_users), the caller holding the store lock. An entry that
    /// cannot be read is an error, never taken for "no user".
    pub(crate) fn layer_users_unlocked(&self, id: &LayerId) -> Result<Vec<LayerUser>> {
        let images = self.images();
        let mut users = Vec::new();
        for chain in images.chains_with_cache_id(id)? {
            users.push(LayerUser::Image { chain, images: images.names_using(chain)? });
        }
        let containers = self.containers();
        for (container, record) in images.mounts_on(id)? {
            let init = record.init_id.as_ref() == Some(id);
            let id: ContainerId = container.parse().map_err(|_| {
                Error::corrupt(images.layerdb.mounts_dir().join(&container), "is not named by a container ID")
            })?;
            let (name, running) = match containers.get_unlocked(id) {
                Ok(c) => (Some(c.record.name().to_owned()), c.running),
                Err(_) => (None, false),
            };
            users.push(LayerUser::Container { id, name, init, running });
        }
        Ok(users)
    }

    /// Refuse unless nothing that `matters` stands on `id`, or `force`.
    fn refuse_used(&self, id: &LayerId, force: bool, matters: impl Fn(&LayerUser) -> bool) -> Result<()> {
        if force {
            return Ok(());
        }
        let mut users = self.layer_users_unlocked(id)?;
        users.retain(matters);
        if users.is_empty() {
            return Ok(());
        }
        Err(Error::LayerInUse { id: id.clone(), users: users.iter().map(ToString::to_string).collect() })
    }

    /// Remove a layer as [`LayerStore::remove`](crate::layer::LayerStore::remove) does, but
    /// refuse one an image or a container stands on, unless `force`.
    pub fn remove_layer(&self, id: &LayerId, force: bool) -> Result<()> {
        let lock = self.write_lock()?;
        self.refuse_used(id, force, |_| true)?;
        let scratch = self.layers().remove_locked(&lock, id)?;
        drop(lock);
        scratch.finish()
    }

    /// Drop a mount reference as [`LayerStore::unmount`](crate::layer::LayerStore::unmount)
    /// does, but refuse a running container's layer (the container runs in that mount),
    /// unless `force`.
    pub fn unmount_layer(&self, id: &LayerId, force: bool) -> Result<()> {
        let lock = self.write_lock()?;
        self.refuse_used(id, force, |u| matches!(u, LayerUser::Container { running: true, .. }))?;
        self.layers().unmount_locked(&lock, id, false)
    }

    /// Apply a tarball as [`LayerStore::apply`](crate::layer::LayerStore::apply) does, but
    /// refuse a layer an image or a container stands on, unless `force`. Checked before the
    /// tarball is read and again when it is put in place.
    pub fn apply_layer(
        &self,
        id: &LayerId,
        input: impl Read + Send,
        options: &ApplyOptions,
        force: bool,
    ) -> Result<Applied> {
        {
            let _lock = self.read_lock()?;
            self.refuse_used(id, force, |_| true)?;
        }
        self.layers().apply_checked(id, input, options, |_lock| self.refuse_used(id, force, |_| true))
    }
}

impl crate::image::ImageStore {
    /// Names (or short IDs) of the images that stand on `chain`.
    fn names_using(&self, chain: ChainId) -> Result<Vec<String>> {
        let repos = self.repositories()?;
        let mut out = Vec::new();
        let hex = chain.hex();
        let chains = self.image_chains()?;
        let using = chains.iter().filter(|(_, chains)| chains.split(' ').any(|c| c == hex));
        let mut images = using.map(|(image, _)| image.parse()).collect::<Result<Vec<crate::image::ImageId>>>()?;
        images.sort();
        for image in images {
            match repos.names_of(image).first() {
                Some(name) => out.push(name.to_string()),
                None => out.push(image.short()),
            }
        }
        Ok(out)
    }
}
