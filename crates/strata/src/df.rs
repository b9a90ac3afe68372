//! `system df`: what the store's images and containers take on disk, and what removing the
//! unused ones would give back, computed as dockerd 20.10 computes it (`GET /system/df`).

use std::collections::HashMap;

use serde::Serialize;

use crate::container::ContainerSummary;
use crate::error::Result;
use crate::image::{ChainId, ImageConfig, ImageSummary};
use crate::store::Store;

/// The store's disk usage, in the Engine API's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of every image layer some image stands on, each counted once.
    pub layers_size: u64,
    /// The images (`images` without `-a`), with `Containers` and `SharedSize` counted.
    pub images: Vec<ImageSummary>,
    /// The containers, with `SizeRw`.
    pub containers: Vec<ContainerUsage>,
    /// The volumes, each with `UsageData` (`Size`, and `RefCount`: the containers using it).
    pub volumes: Vec<serde_json::Value>,
    /// Build cache: none yet.
    pub build_cache: Vec<serde_json::Value>,
}

/// A container and the bytes its writable layer holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUsage {
    /// The container as `ps` shows it.
    #[serde(flatten)]
    pub summary: ContainerSummary,
    /// Bytes of its writable layer, as dockerd counts them.
    pub size_rw: u64,
}

impl Store {
    /// The disk usage of images and containers.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images();
        let containers = self.containers();
        let mut list = images.list(false)?;

        // How many images stand on each stack, and each stack's size.
        let mut refs: HashMap<ChainId, (usize, u64)> = HashMap::new();
        let mut chains_of: HashMap<String, Vec<ChainId>> = HashMap::new();
        for image in images.all_configs()? {
            let (id, config) = image;
            let chains = ChainId::chain(&config.rootfs.diff_ids);
            for chain in &chains {
                let size = match refs.get(chain) {
                    Some((_, size)) => *size,
                    None => images.stack_size(*chain)?,
                };
                refs.entry(*chain).or_insert((0, size)).0 += 1;
            }
            chains_of.insert(id.to_string(), chains);
        }
        let layers_size = refs.values().map(|(_, size)| size).sum();

        let summaries = containers.summaries()?;
        let mut users: HashMap<&str, i64> = HashMap::new();
        for c in &summaries {
            *users.entry(c.image_id.as_str()).or_default() += 1;
        }
        for image in &mut list {
            let id = image.id.to_string();
            image.containers = users.get(id.as_str()).copied().unwrap_or(0);
            let shared: u64 = chains_of
                .get(&id)
                .map(|chains| chains.iter().filter_map(|c| refs.get(c)).filter(|(n, _)| *n > 1).map(|(_, s)| s).sum())
                .unwrap_or(0);
            image.shared_size = shared as i64;
        }
        let mut out = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let size_rw = containers.size_rw(&summary.id)?;
            out.push(ContainerUsage { summary, size_rw });
        }
        let volumes = self.volume_usage()?;
        Ok(DiskUsage { layers_size, images: list, containers: out, volumes, build_cache: Vec::new() })
    }

    /// Each volume in the Engine API's shape, with its size and how many containers use it.
    fn volume_usage(&self) -> Result<Vec<serde_json::Value>> {
        let containers = self.containers();
        let users = containers.volume_users_locked()?;
        let store = crate::volume::VolumeStore::new(self);
        let mut out = Vec::new();
        for volume in containers.volumes(&[])? {
            let refs = users.get(&volume.name).map_or(0, Vec::len);
            let size = store.size(&volume.name);
            let mut value = serde_json::to_value(&volume).expect("serializable");
            value["UsageData"] = serde_json::json!({"Size": size, "RefCount": refs});
            out.push(value);
        }
        Ok(out)
    }
}

impl crate::image::ImageStore {
    /// Every image's ID and config.
    fn all_configs(&self) -> Result<Vec<(crate::image::ImageId, ImageConfig)>> {
        let _lock = self.store.read_lock()?;
        let mut out = Vec::new();
        for id in self.imagedb.list()? {
            if let Some(raw) = self.imagedb.config(id)? {
                out.push((id, ImageConfig::parse(&raw, &format!("image {id}"))?));
            }
        }
        Ok(out)
    }

    /// The size of the top layer of stack `chain`, as its layerdb entry records it.
    fn stack_size(&self, chain: ChainId) -> Result<u64> {
        Ok(self.layerdb.get(chain)?.map_or(0, |r| r.size))
    }
}
