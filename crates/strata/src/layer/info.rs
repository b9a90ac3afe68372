//! What there is to know about a layer, and dockerd's `GraphDriver` view of it.

use std::path::PathBuf;

use serde::Serialize;

use crate::id::{LayerId, ShortLink};

/// A layer as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    /// Its ID (the directory name).
    pub id: LayerId,
    /// Its short link name under `l/` (`None` if the `link` file is missing: see `strata check`).
    pub link: Option<ShortLink>,
    /// Its direct parent, if it has one.
    pub parent: Option<LayerId>,
    /// Its ancestors' links, nearest first.
    pub lowers: Vec<ShortLink>,
    /// Whether a child was ever created on it (so it mounts read-only).
    pub committed: bool,
    /// Mount references held through strata.
    pub mounts: u32,
}

/// `GraphDriver` as `docker inspect` prints it: `{"Data":{…},"Name":"overlay2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphDriver {
    /// The directories of the layer and its ancestors.
    #[serde(rename = "Data")]
    pub data: GraphDriverData,
    /// Always `overlay2`.
    #[serde(rename = "Name")]
    pub name: &'static str,
}

/// The paths in [`GraphDriver`], in the order dockerd prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphDriverData {
    /// The ancestors' `diff` directories, nearest first, joined by `:` (absent for a base layer).
    #[serde(rename = "LowerDir", skip_serializing_if = "Option::is_none")]
    pub lower_dir: Option<String>,
    /// `<id>/merged`.
    #[serde(rename = "MergedDir")]
    pub merged_dir: PathBuf,
    /// `<id>/diff`.
    #[serde(rename = "UpperDir")]
    pub upper_dir: PathBuf,
    /// `<id>/work`.
    #[serde(rename = "WorkDir")]
    pub work_dir: PathBuf,
}

impl Serialize for LayerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for ShortLink {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
