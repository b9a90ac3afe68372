//! `container prune`, `image prune [-a]`, `system prune`: remove what nothing uses, as
//! dockerd 20.10 decides it, and say how much space that gave back.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::{ErrorKind, Result};
use crate::image::Removed;
use crate::store::Store;

/// What a prune removed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pruned {
    /// Containers removed (full IDs).
    pub containers_deleted: Vec<String>,
    /// Names untagged and images and layers deleted, as `docker image prune` prints them.
    pub images_deleted: Vec<Removed>,
    /// Bytes given back: the removed containers' writable layers and the image layers that
    /// went.
    pub space_reclaimed: u64,
}

impl Store {
    /// Remove every container that does not run.
    pub fn prune_containers(&self) -> Result<Pruned> {
        let containers = self.containers();
        let mut out = Pruned::default();
        for summary in containers.summaries()? {
            if summary.state == "running" {
                continue;
            }
            let size = containers.size_rw(&summary.id)?;
            match containers.remove(&summary.id, false) {
                Ok(_) => {
                    out.containers_deleted.push(summary.id);
                    out.space_reclaimed += size;
                }
                // Started or removed by another process meanwhile.
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InUse) => {}
                Err(crate::Error::Container { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Remove dangling images (no name, no child image, no container), or with `all` every
    /// image no container uses, with the layers that go with them.
    pub fn prune_images(&self, all: bool) -> Result<Pruned> {
        let images = self.images();
        let before = self.disk_usage()?.layers_size;
        let used: HashSet<String> = self.containers().summaries()?.into_iter().map(|c| c.image_id).collect();
        let mut out = Pruned::default();
        // Children first, so that a parent left without children goes in the same prune.
        loop {
            let mut removed_any = false;
            for image in images.list(true)? {
                let id = image.id.to_string();
                let named = image.repo_tags.as_ref().is_some_and(|t| t.iter().any(|t| t != "<none>:<none>"));
                if used.contains(&id) || (named && !all) || images.has_children(image.id)? {
                    continue;
                }
                match images.remove(&id, true) {
                    Ok(removed) => {
                        out.images_deleted.extend(removed);
                        removed_any = true;
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InUse) => {}
                    Err(e) => return Err(e),
                }
            }
            if !removed_any {
                break;
            }
        }
        out.space_reclaimed = before.saturating_sub(self.disk_usage()?.layers_size);
        Ok(out)
    }
}
