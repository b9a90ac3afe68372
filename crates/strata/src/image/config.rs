//! The image config (`imagedb/content/sha256/<id>`): read with Docker's field names, kept as the
//! exact bytes it came in (the image ID is their digest), and shown as dockerd shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::DiffId;
use crate::error::{Error, Result};

/// The largest config strata reads (Docker's own limit is 8 MiB).
pub const MAX_CONFIG: u64 = 8 << 20;

/// An image config: what to run, how it was made, and the diffIDs of its layers.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`).
    #[serde(default)]
    pub architecture: String,
    /// The architecture variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// When the image was made, RFC 3339.
    #[serde(default)]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default)]
    pub author: String,
    /// The commit message or import note.
    #[serde(default)]
    pub comment: String,
    /// The container it was committed from (Docker only).
    #[serde(default)]
    pub container: String,
    /// That container's config (Docker only).
    #[serde(default)]
    pub container_config: Option<ContainerConfig>,
    /// The Docker version that made it.
    #[serde(default)]
    pub docker_version: String,
    /// What a container of this image runs.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    /// The layers, as diffIDs.
    pub rootfs: RootFs,
    /// One entry per build step; steps that made no layer are `empty_layer`.
    #[serde(default)]
    pub history: Vec<History>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The diffID of each layer, base first.
    #[serde(default)]
    pub diff_ids: Vec<DiffId>,
}

/// One build step.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct History {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The command.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// A note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// A container config in Docker's Go shape (`container.Config`), field for field and in its
/// order, so that `inspect` prints what `docker inspect` prints.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "map_is_empty")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "str_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "str_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

fn map_is_empty(m: &Option<BTreeMap<String, serde_json::Value>>) -> bool {
    m.as_ref().is_none_or(BTreeMap::is_empty)
}

/// Docker's `StrSlice`: a list, or one string meaning a list of one.
fn str_or_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrList {
        Str(String),
        List(Vec<String>),
    }
    Ok(Option::<StrOrList>::deserialize(d)?.map(|v| match v {
        StrOrList::Str(s) => vec![s],
        StrOrList::List(l) => l,
    }))
}

impl ImageConfig {
    /// Parse config bytes; `what` names them in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        let config: ImageConfig = serde_json::from_slice(bytes).map_err(|e| Error::BadImage {
            what: what.to_owned(),
            reason: format!("image config is not valid: {e}"),
        })?;
        if config.rootfs.kind != "layers" {
            return Err(Error::BadImage {
                what: what.to_owned(),
                reason: format!("image config has rootfs type {:?}, not \"layers\"", config.rootfs.kind),
            });
        }
        Ok(config)
    }

    /// Seconds since the epoch of `created` (0 if absent or unreadable), as the Engine API
    /// shows it.
    pub fn created_unix(&self) -> i64 {
        unix_seconds(self.created.as_deref())
    }
}

/// Seconds since the epoch of an RFC 3339 time; 0 if absent or unreadable.
pub fn unix_seconds(time: Option<&str>) -> i64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(0, |t| t.as_second())
}

/// Now, as Go's `time.RFC3339Nano` prints UTC (`2026-11-22T06:15:02.556380886Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(jiff::Timestamp::now())
}

pub(crate) fn format_rfc3339(t: jiff::Timestamp) -> String {
    // jiff prints the shortest fraction, as Go does.
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_docker_built_config_and_shows_it_as_docker_does() {
        let raw = r#"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/bin","FOO=bar"],"Cmd":["/bin/sh","-c","cat /tmp/hello"],"Image":"sha256:76cee663928d578b7ad94a4b3ffd00cb06dc2fda5a2d53d6a53e279031c31656","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2026-11-22T06:15:02.544226718Z","history":[{"created":"2026-11-22T06:14:57.823509679Z","comment":"hello msg"},{"created":"2026-11-22T06:15:02.022582121Z","created_by":"/bin/sh -c #(nop)  ENV FOO=bar","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:3ff35bda6fb93b2e0a0c19947238b126ec6ceabb5614280bfa7faacef1005a6e"]}}"#;
        let config = ImageConfig::parse(raw.as_bytes(), "test").unwrap();
        let inner = &raw[raw.find("\"config\":").unwrap() + 9..raw.find(",\"created\"").unwrap()];
        assert_eq!(serde_json::to_string(&config.config).unwrap(), inner);
        assert!(config.history[1].empty_layer);
        assert_eq!(config.created_unix(), 1795328102);
    }

    #[test]
    fn a_bare_oci_config_gets_dockers_defaults() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":"sh","Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = ImageConfig::parse(raw, "test").unwrap();
        let shown = serde_json::to_value(config.config.unwrap()).unwrap();
        assert_eq!(shown["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(shown["Hostname"], "");
        assert_eq!(shown["Volumes"], serde_json::Value::Null);
        assert!(shown.get("ExposedPorts").is_none());
    }

    #[test]
    fn not_layers_is_refused() {
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"x"}}"#, "t").is_err());
        assert!(ImageConfig::parse(b"[]", "t").is_err());
    }
}
