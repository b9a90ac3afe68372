//! What `check` finds of containers: every record needs its layers, every layer record its
//! container, and strata's own files of a container go with it.

use super::{ContainerId, ContainerStore};
use crate::error::Result;
use crate::fsutil::parsed_names;
use crate::image::check::{Fix, Problem};

impl ContainerStore {
    /// Containers: every record needs its layers, and every layer record its container.
    pub(crate) fn problems(&self, out: &mut Vec<Problem>) -> Result<()> {
        let records: Vec<ContainerId> = parsed_names(&self.store.containers_dir())?;
        for id in &records {
            let path = self.store.containers_dir().join(id.as_str());
            let damaged =
                |detail: String| Problem { kind: "bad-container", damage: true, path: path.clone(), detail, fix: None };
            match self.images.layerdb.mount(id.as_str()) {
                Err(e) => out.push(damaged(e.to_string())),
                Ok(None) => {
                    out.push(damaged(format!("container {} has no layer record in layerdb/mounts", id.short())))
                }
                Ok(Some(layers)) => {
                    for layer in std::iter::once(&layers.mount_id).chain(layers.init_id.as_ref()) {
                        if !self.store.layer_dir(layer).is_dir() {
                            out.push(damaged(format!("container {}: its layer {layer} is missing", id.short())));
                        }
                    }
                }
            }
        }
        let private = self.store.private_dir().join("containers");
        for id in parsed_names::<ContainerId>(&private)? {
            if !records.contains(&id) {
                out.push(Problem {
                    kind: "container-leftover",
                    damage: false,
                    path: private.join(id.as_str()),
                    detail: format!("strata's files of container {}, removed by another tool", id.short()),
                    fix: Some(Fix::RemoveTree(private.join(id.as_str()))),
                });
            }
        }
        for id in parsed_names::<ContainerId>(&self.images.layerdb.mounts_dir())? {
            if !records.contains(&id) {
                out.push(Problem {
                    kind: "orphan-container-layers",
                    damage: true,
                    path: self.images.layerdb.mounts_dir().join(id.as_str()),
                    detail: format!("layers of container {}, which has no record in containers/", id.short()),
                    fix: None,
                });
            }
        }
        Ok(())
    }
}
