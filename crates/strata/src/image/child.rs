//! The config of an image made on another (or on nothing), as dockerd writes it for
//! `docker commit` and for each step of its legacy builder: the parent's history and layers
//! plus one entry, keys in dockerd's order.

use serde::Serialize;

use super::{ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::DiffId;

/// The diffID of a tar with no entries (two zero blocks): a step that changed no file.
pub const EMPTY_TAR: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// One new image on `parent` (`None`: on nothing, as after `FROM scratch`).
#[derive(Debug, Clone)]
pub struct Child<'a> {
    /// The image it is made on.
    pub parent: Option<&'a ImageConfig>,
    /// `author` (MAINTAINER, `commit --author`).
    pub author: &'a str,
    /// What a container of the new image runs.
    pub config: &'a ContainerConfig,
    /// The container the step ran in, if one is named.
    pub container: Option<&'a str>,
    /// That container's config (a build step's: its `#(nop)` or RUN command).
    pub container_config: &'a ContainerConfig,
    /// RFC 3339, for the image and its history entry.
    pub created: &'a str,
    /// The history entry's command.
    pub created_by: &'a str,
    /// The history entry's comment.
    pub comment: &'a str,
    /// The new layer's diffID; `None` or the empty tar's: an `empty_layer` step.
    pub diff_id: Option<DiffId>,
}

/// Keys in dockerd's order (it marshals through a map: sorted).
#[derive(Serialize)]
struct Written<'a> {
    architecture: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    config: &'a ContainerConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a str>,
    container_config: &'a ContainerConfig,
    created: &'a str,
    history: Vec<History>,
    os: &'a str,
    rootfs: RootFs,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

impl Child<'_> {
    /// Whether the step adds no layer.
    pub fn empty_layer(&self) -> bool {
        self.diff_id.as_ref().is_none_or(|d| d.to_string() == EMPTY_TAR)
    }

    /// The config's bytes (its digest is the image ID).
    pub fn to_bytes(&self) -> Vec<u8> {
        let empty = self.empty_layer();
        let mut history = self.parent.map(|p| p.history.clone()).unwrap_or_default();
        history.push(History {
            created: Some(self.created.to_owned()),
            author: self.author.to_owned(),
            created_by: self.created_by.to_owned(),
            comment: self.comment.to_owned(),
            empty_layer: empty,
        });
        let mut diff_ids = self.parent.map(|p| p.rootfs.diff_ids.clone()).unwrap_or_default();
        if let (false, Some(diff_id)) = (empty, self.diff_id) {
            diff_ids.push(diff_id);
        }
        serde_json::to_vec(&Written {
            architecture: self.parent.map_or(super::host_arch(), |p| &p.architecture),
            author: self.author,
            config: self.config,
            container: self.container,
            container_config: self.container_config,
            created: self.created,
            history,
            os: self.parent.map_or("linux", |p| &p.os),
            rootfs: RootFs { kind: "layers".into(), diff_ids },
            variant: self.parent.and_then(|p| p.variant.as_deref()),
        })
        .expect("serializable")
    }
}
