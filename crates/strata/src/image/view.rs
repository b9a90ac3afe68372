//! What `images`, `inspect` and `history` show, in the Engine API's JSON shapes, so scripts
//! written against `docker` read strata's output.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::config::{ContainerConfig, unix_seconds};
use super::ids::ImageId;
use super::{Image, ImageStore};
use crate::error::Result;
use crate::layer::GraphDriver;

/// One image in `images` (`GET /images/json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// Containers using it (not counted: -1, as dockerd by default).
    pub containers: i64,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// The image ID.
    pub id: ImageId,
    /// Labels of its config.
    pub labels: Option<BTreeMap<String, String>>,
    /// The image it was built on, or "".
    pub parent_id: String,
    /// `name@digest` names (`None` if there are none, `<none>@<none>` for an untagged image).
    pub repo_digests: Option<Vec<String>>,
    /// `name:tag` names (`<none>:<none>` for an untagged image).
    pub repo_tags: Option<Vec<String>>,
    /// Not computed: -1.
    pub shared_size: i64,
    /// Bytes of all its layers.
    pub size: u64,
    /// The same as `size`.
    pub virtual_size: u64,
}

/// `inspect` of an image (`GET /images/{name}/json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ImageInspect {
    pub id: ImageId,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub container: String,
    pub container_config: ContainerConfig,
    pub docker_version: String,
    pub author: String,
    pub config: Option<ContainerConfig>,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub virtual_size: u64,
    pub graph_driver: Option<GraphDriver>,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    pub metadata: InspectMetadata,
}

/// `RootFS` of [`ImageInspect`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// diffIDs, base first.
    pub layers: Vec<crate::DiffId>,
}

/// `Metadata` of [`ImageInspect`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectMetadata {
    /// When the image was last tagged (Go's zero time if never).
    pub last_tag_time: String,
}

/// One row of `history` (`GET /images/{name}/history`), newest first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image this step made, if it is stored here; else `<missing>`.
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The command.
    pub created_by: String,
    /// Names of that image.
    pub tags: Option<Vec<String>>,
    /// Bytes of the layer the step made (0 for steps that made none).
    pub size: u64,
    /// The step's comment.
    pub comment: String,
}

const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn tags_and_digests(image: &Image) -> (Vec<String>, Vec<String>) {
    let tags = image.names.iter().filter(|r| r.tag().is_some() && r.digest().is_none()).map(|r| r.to_string());
    let digests = image.names.iter().filter(|r| r.digest().is_some()).map(|r| r.to_string());
    (tags.collect(), digests.collect())
}

impl ImageStore {
    /// Every image, newest first; images that are only the parents of others (untagged build
    /// steps) are left out unless `all`.
    pub fn list(&self, all: bool) -> Result<Vec<ImageSummary>> {
        let _lock = self.store.read_lock()?;
        let repos = self.repositories()?;
        let ids = self.imagedb.list()?;
        let mut parents = HashSet::new();
        let mut images = Vec::with_capacity(ids.len());
        for id in ids {
            let image = self.get_unlocked(id, &repos)?;
            let parent = self.imagedb.parent(id)?;
            parents.extend(parent);
            images.push((image, parent));
        }
        let mut out = Vec::with_capacity(images.len());
        for (image, parent) in images {
            if !all && image.names.is_empty() && parents.contains(&image.id) {
                continue;
            }
            let size = self.layers_of(&image)?.iter().map(|l| l.size).sum();
            let (mut tags, mut digests) = tags_and_digests(&image);
            if image.names.is_empty() {
                tags.push("<none>:<none>".into());
                digests.push("<none>@<none>".into());
            }
            out.push(ImageSummary {
                containers: -1,
                created: image.config.created_unix(),
                id: image.id,
                labels: image.config.config.as_ref().and_then(|c| c.labels.clone()),
                parent_id: parent.map(|p| p.to_string()).unwrap_or_default(),
                repo_digests: (!digests.is_empty()).then_some(digests),
                repo_tags: (!tags.is_empty()).then_some(tags),
                shared_size: -1,
                size,
                virtual_size: size,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker inspect` of an image.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let _lock = self.store.read_lock()?;
        let id = self.resolve_unlocked(name)?;
        let image = self.get_unlocked(id, &self.repositories()?)?;
        let layers = self.layers_of(&image)?;
        let size = layers.iter().map(|l| l.size).sum();
        let graph_driver = match layers.last() {
            Some(top) => Some(self.layers.graph_driver(&top.cache_id)?),
            None => None,
        };
        let (repo_tags, repo_digests) = tags_and_digests(&image);
        let c = image.config;
        Ok(ImageInspect {
            id,
            repo_tags,
            repo_digests,
            parent: self.imagedb.parent(id)?.map(|p| p.to_string()).unwrap_or_default(),
            // As dockerd: a config without a comment shows its last step's (a commit message).
            comment: if c.comment.is_empty() {
                c.history.last().map(|h| h.comment.clone()).unwrap_or_default()
            } else {
                c.comment
            },
            created: c.created.unwrap_or_else(|| GO_ZERO_TIME.into()),
            container: c.container,
            container_config: c.container_config.unwrap_or_default(),
            docker_version: c.docker_version,
            author: c.author,
            config: c.config,
            architecture: c.architecture,
            variant: c.variant,
            os: c.os,
            size,
            virtual_size: size,
            graph_driver,
            root_fs: InspectRootFs { kind: c.rootfs.kind, layers: c.rootfs.diff_ids },
            metadata: InspectMetadata {
                last_tag_time: self.imagedb.last_updated(id)?.unwrap_or_else(|| GO_ZERO_TIME.into()),
            },
        })
    }

    /// `docker history` of an image: one row per build step, newest first. A step's row
    /// carries an image ID only where that image is stored here (the image itself, and the
    /// parents a build or commit recorded); the others are `<missing>`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let _lock = self.store.read_lock()?;
        let id = self.resolve_unlocked(name)?;
        let repos = self.repositories()?;
        let image = self.get_unlocked(id, &repos)?;
        let layers = self.layers_of(&image)?;
        let mut sizes = layers.iter().map(|l| l.size);
        let mut rows: Vec<HistoryItem> = image
            .config
            .history
            .iter()
            .map(|h| HistoryItem {
                id: "<missing>".into(),
                created: unix_seconds(h.created.as_deref()),
                created_by: h.created_by.clone(),
                tags: None,
                size: if h.empty_layer { 0 } else { sizes.next().unwrap_or(0) },
                comment: h.comment.clone(),
            })
            .collect();
        rows.reverse();
        // Walk up the recorded parents, as dockerd does.
        let mut current = Some(id);
        for row in &mut rows {
            let Some(step) = current else { break };
            row.id = step.to_string();
            let tags: Vec<String> =
                repos.names_of(step).iter().filter(|r| r.tag().is_some()).map(|r| r.to_string()).collect();
            row.tags = (!tags.is_empty()).then_some(tags);
            current = self.imagedb.parent(step)?.filter(|p| self.imagedb.contains(*p));
        }
        Ok(rows)
    }
}
