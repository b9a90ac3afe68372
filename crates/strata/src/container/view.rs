//! What `ps` and `inspect` show of containers, in the Engine API's JSON shapes
//! (`GET /containers/json`, `GET /containers/{id}/json`).

use serde::Serialize;
use serde_json::Value;

use super::record::State;
use super::{Container, ContainerStore};
use crate::error::Result;
use crate::image::{ContainerConfig, config::unix_seconds};
use crate::layer::GraphDriver;

/// One container in `ps` (without `Status`, which is for people: see the CLI).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    /// The full ID.
    pub id: String,
    /// Its name, with dockerd's slash.
    pub names: Vec<String>,
    /// The image as it was named at create.
    pub image: String,
    /// The image ID.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// Its command, joined.
    pub command: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// `created`, `running` or `exited`.
    pub state: &'static str,
    /// How the last run ended (for `exited`).
    #[serde(skip)]
    pub exit_code: i32,
    /// When it last started or ended (RFC 3339; Go's zero time if never).
    #[serde(skip)]
    pub since: String,
}

/// `inspect` of a container.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: InspectState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub host_config: Value,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<Value>,
    pub config: ContainerConfig,
    pub network_settings: Value,
}

/// `State` in `inspect`: the record's, with `Status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    /// `created`, `running` or `exited`.
    pub status: &'static str,
    /// The record's state.
    #[serde(flatten)]
    pub state: State,
}

impl Container {
    /// `created`, `running` or `exited`, as dockerd names them.
    pub fn status(&self) -> &'static str {
        if self.running && self.record.state.paused {
            "paused"
        } else if self.running {
            "running"
        } else if self.record.has_been_started_before || self.record.state.running {
            "exited"
        } else {
            "created"
        }
    }

    /// Whether the record says "running" but nothing runs it: its strata process was killed
    /// (the next `start` or `rm` settles it).
    fn is_stale(&self) -> bool {
        self.record.state.running && !self.running
    }
}

impl ContainerStore {
    /// Bytes of the container's writable layer, as dockerd counts them (`SizeRw`).
    pub fn size_rw(&self, name: &str) -> Result<u64> {
        let container = self.find(name)?;
        self.layers.size(&container.layers.mount_id)
    }

    /// The rows `ps -a` shows, newest first. The image is shown by the name it was created
    /// with while that name still points at it, by ID otherwise, as dockerd does.
    pub fn summaries(&self) -> Result<Vec<ContainerSummary>> {
        let containers = self.list()?;
        // The names are read once: each container's image name is looked up in them.
        let repos = self.images.repositories()?;
        let mut resolved = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(containers.len());
        for c in containers {
            let record = &c.record;
            let named = record.config.image.clone();
            let same = *resolved.entry(named.clone()).or_insert_with(|| {
                self.images.resolve_in(&named, &repos).is_ok_and(|id| id.to_string() == record.image)
            });
            let state = c.status();
            let stale = c.is_stale();
            let finished = &record.state.finished_at;
            let since = if matches!(state, "running" | "paused") || (stale && finished == super::record::ZERO_TIME) {
                record.state.started_at.clone()
            } else {
                finished.clone()
            };
            out.push(ContainerSummary {
                id: record.id.to_string(),
                names: vec![record.name.clone()],
                image: if same { named } else { record.image.clone() },
                image_id: record.image.clone(),
                command: record.command_quoted(),
                created: unix_seconds(Some(&record.created)),
                state,
                // What `start` or `rm` will record for it.
                exit_code: if stale { 137 } else { record.state.exit_code },
                since,
            });
        }
        Ok(out)
    }
}

impl ContainerStore {
    /// What `docker inspect` shows of a container, with its layers' directories.
    pub fn inspect(&self, name: &str) -> Result<ContainerInspect> {
        let container = self.find(name)?;
        let id = container.id();
        let graph_driver = self.layers.graph_driver(&container.layers.mount_id)?;
        let status = container.status();
        let mut state = container.record.state.clone();
        state.running = container.running;
        // The record holds the monitor's PID; the runtime knows the container's first process.
        let pid_file = super::private_dir(&self.store, id).join(super::start::PID_FILE);
        state.pid = match std::fs::read_to_string(pid_file) {
            Ok(pid) if container.running => pid.trim().parse().unwrap_or(state.pid),
            _ if container.running => state.pid,
            _ => 0,
        };
        let record = container.record;
        let mounts = super::volumes::inspect_mounts(&self.store, &record);
        let host_config = serde_json::to_value(&container.host).expect("serializable");
        Ok(ContainerInspect {
            id: record.id.to_string(),
            created: record.created,
            path: record.path,
            args: record.args,
            state: InspectState { status, state },
            image: record.image,
            resolv_conf_path: record.resolv_conf_path,
            hostname_path: record.hostname_path,
            hosts_path: record.hosts_path,
            name: record.name,
            restart_count: 0,
            driver: record.driver,
            platform: record.os,
            host_config,
            graph_driver,
            mounts,
            config: record.config,
            network_settings: record.extra.get("NetworkSettings").cloned().unwrap_or(Value::Null),
        })
    }
}
