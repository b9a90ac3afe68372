//! What `strata check` finds in the image database: names pointing at no image, images whose
//! layers are missing, layerdb entries without their overlay2 layer or parent, configs that do
//! not hash to their ID, write-sets a killed process left in `layerdb/tmp`, and containers
//! without their layers (or layers without their container).

use std::path::PathBuf;

use super::ImageStore;
use super::ids::{ChainId, ImageId};
use super::reference::Reference;
use crate::error::Result;

/// One problem, and how to mend it if it can be.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) kind: &'static str,
    pub(crate) damage: bool,
    pub(crate) path: PathBuf,
    pub(crate) detail: String,
    pub(crate) fix: Option<Fix>,
}

/// A mend.
#[derive(Debug)]
pub(crate) enum Fix {
    /// Remove a leftover directory.
    RemoveTree(PathBuf),
    /// Drop a name that points at no image.
    DropName(Reference),
}

impl ImageStore {
    /// Every problem of the image database (none if the root has none).
    pub(crate) fn problems(&self) -> Result<Vec<Problem>> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.layerdb.tmp_dir()) {
            for entry in entries.flatten() {
                out.push(Problem {
                    kind: "layerdb-leftover",
                    damage: false,
                    path: entry.path(),
                    detail: "an interrupted layer registration left this behind".into(),
                    fix: Some(Fix::RemoveTree(entry.path())),
                });
            }
        }
        let repos = self.repositories()?;
        for (name, id) in repos.iter() {
            if !self.imagedb.contains(*id) {
                out.push(Problem {
                    kind: "dangling-name",
                    damage: true,
                    path: self.repositories.clone(),
                    detail: format!("{name} points at {id}, which is not stored"),
                    fix: Some(Fix::DropName(name.clone())),
                });
            }
        }
        for id in self.imagedb.list()? {
            let Some(raw) = self.imagedb.config(id)? else { continue };
            let path = self.store.root().join("image/overlay2/imagedb/content/sha256").join(id.hex());
            let damaged =
                |detail: String| Problem { kind: "bad-image", damage: true, path: path.clone(), detail, fix: None };
            if ImageId::of_config(&raw) != id {
                out.push(damaged(format!("the config of {id} hashes to {}", ImageId::of_config(&raw))));
                continue;
            }
            match super::ImageConfig::parse(&raw, "config") {
                Err(e) => out.push(damaged(e.to_string())),
                Ok(config) => {
                    for chain in ChainId::chain(&config.rootfs.diff_ids) {
                        if !self.layerdb.contains(chain) {
                            out.push(damaged(format!("its layer stack {chain} is missing from layerdb")));
                            break;
                        }
                    }
                }
            }
        }
        for chain in self.layerdb.list()? {
            let path = self.layerdb.entry(chain);
            let damaged = |detail: String| Problem {
                kind: "bad-layerdb-entry",
                damage: true,
                path: path.clone(),
                detail,
                fix: None,
            };
            match self.layerdb.get(chain) {
                Err(e) => out.push(damaged(e.to_string())),
                Ok(None) => out.push(damaged("it has no cache-id".into())),
                Ok(Some(record)) => {
                    if !self.store.layer_dir(&record.cache_id).is_dir() {
                        out.push(damaged(format!("its overlay2 layer {} is missing", record.cache_id)));
                    }
                    if let Some(parent) = record.parent.filter(|p| !self.layerdb.contains(*p)) {
                        out.push(damaged(format!("its parent {parent} is missing")));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Apply a mend (under the store lock).
    pub(crate) fn fix(&self, fix: &Fix, scratch: &std::path::Path) -> Result<()> {
        match fix {
            Fix::RemoveTree(path) => crate::scratch::remove_tree(path),
            Fix::DropName(name) => {
                let mut repos = self.repositories()?;
                repos.remove(name);
                repos.save(&self.repositories, scratch)
            }
        }
    }
}
