//! What dockerd keeps of a container under `<root>/containers/<id>/`: `config.v2.json` (its
//! state, command, config and image) and `hostconfig.json` (how to run it), in dockerd's JSON
//! shapes so that each reads the other's containers. Fields strata does not use are kept as
//! they were read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id::ContainerId;
use crate::image::ContainerConfig;

/// Go's zero `time.Time`, which dockerd writes for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `config.v2.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// Whether it runs, and how it last ended.
    pub state: State,
    /// The container's ID.
    #[serde(rename = "ID")]
    pub id: ContainerId,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The program (argv[0]).
    pub path: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The config: the image's, with the container's command and options over it.
    pub config: ContainerConfig,
    /// The image ID, `sha256:…`.
    pub image: String,
    /// The name, with dockerd's leading slash (`/c1`).
    pub name: String,
    /// The storage driver (`overlay2`).
    pub driver: String,
    /// `linux`.
    #[serde(rename = "OS", default)]
    pub os: String,
    /// Where `/etc/hostname` comes from.
    #[serde(default)]
    pub hostname_path: String,
    /// Where `/etc/hosts` comes from.
    #[serde(default)]
    pub hosts_path: String,
    /// Where `/etc/resolv.conf` comes from.
    #[serde(default)]
    pub resolv_conf_path: String,
    /// Whether it has ever been started.
    #[serde(default)]
    pub has_been_started_before: bool,
    /// Everything else dockerd keeps, as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A container's state, as dockerd records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// A process of it is running.
    #[serde(default)]
    pub running: bool,
    /// Frozen.
    #[serde(default)]
    pub paused: bool,
    /// Being restarted.
    #[serde(default)]
    pub restarting: bool,
    /// Killed by the OOM killer.
    #[serde(rename = "OOMKilled", default)]
    pub oom_killed: bool,
    /// Being removed.
    #[serde(default)]
    pub removal_in_progress: bool,
    /// Failed to be removed.
    #[serde(default)]
    pub dead: bool,
    /// Its first process, while it runs.
    #[serde(default)]
    pub pid: i64,
    /// How it last ended.
    #[serde(default)]
    pub exit_code: i32,
    /// Why it could not run, if so.
    #[serde(default)]
    pub error: String,
    /// When it last started.
    #[serde(default = "zero_time")]
    pub started_at: String,
    /// When it last ended.
    #[serde(default = "zero_time")]
    pub finished_at: String,
    /// Health checks (strata runs none).
    #[serde(default)]
    pub health: Value,
}

fn zero_time() -> String {
    ZERO_TIME.to_owned()
}

impl Default for State {
    fn default() -> Self {
        State {
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            removal_in_progress: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: zero_time(),
            finished_at: zero_time(),
            health: Value::Null,
        }
    }
}

impl Record {
    /// The name without dockerd's slash.
    pub fn name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// The command as `docker commit` records it: path and arguments joined by spaces.
    pub fn command(&self) -> String {
        std::iter::once(self.path.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }

    /// What is mounted over its tree (`MountPoints`), by destination.
    pub fn mount_points(&self) -> Vec<super::mounts::MountPoint> {
        let Some(Value::Object(points)) = self.extra.get("MountPoints") else { return Vec::new() };
        points.values().filter_map(|p| serde_json::from_value(p.clone()).ok()).collect()
    }

    /// The command as `docker ps` shows it: arguments holding a space in single quotes.
    pub fn command_quoted(&self) -> String {
        let args = self.args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() });
        std::iter::once(self.path.clone()).chain(args).collect::<Vec<_>>().join(" ")
    }
}

/// The parts of `hostconfig.json` strata reads; the rest is kept as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `none` (strata's default) or `host`.
    #[serde(default)]
    pub network_mode: String,
    /// Remove the container when it exits (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// The OCI runtime (`runc`, `crun`).
    #[serde(default)]
    pub runtime: String,
    /// `--security-opt`, in dockerd's form (`seccomp=unconfined`, `seccomp=<JSON>`,
    /// `no-new-privileges`); see [`super::SecurityOptions`].
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    /// `--init`: a minimal init runs as the container's first process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Everything else dockerd keeps, as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HostConfig {
    /// A host config as dockerd writes one for `docker create` with these choices.
    pub(crate) fn new(network_mode: &str, auto_remove: bool, runtime: &str) -> HostConfig {
        let extra: Map<String, Value> = serde_json::from_str(HOST_CONFIG_REST).expect("valid JSON");
        HostConfig {
            network_mode: network_mode.to_owned(),
            auto_remove,
            runtime: runtime.to_owned(),
            security_opt: None,
            init: None,
            extra,
        }
    }
}

/// The rest of `hostconfig.json`, as `docker create` writes it.
const HOST_CONFIG_REST: &str = r#"{
            "Binds": null,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "VolumeDriver": "",
            "VolumesFrom": null,
            "CapAdd": null,
            "CapDrop": null,
            "CgroupnsMode": "host",
            "Dns": [],
            "DnsOptions": [],
            "DnsSearch": [],
            "ExtraHosts": null,
            "GroupAdd": null,
            "IpcMode": "private",
            "Cgroup": "",
            "Links": null,
            "OomScoreAdj": 0,
            "PidMode": "",
            "Privileged": false,
            "PublishAllPorts": false,
            "ReadonlyRootfs": false,
            "UTSMode": "",
            "UsernsMode": "",
            "ShmSize": 67108864,
            "ConsoleSize": [0, 0],
            "Isolation": "",
            "CpuShares": 0,
            "Memory": 0,
            "NanoCpus": 0,
            "CgroupParent": "",
            "BlkioWeight": 0,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": null,
            "BlkioDeviceWriteBps": null,
            "BlkioDeviceReadIOps": null,
            "BlkioDeviceWriteIOps": null,
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "CpusetCpus": "",
            "CpusetMems": "",
            "Devices": [],
            "DeviceCgroupRules": null,
            "DeviceRequests": null,
            "KernelMemory": 0,
            "KernelMemoryTCP": 0,
            "MemoryReservation": 0,
            "MemorySwap": 0,
            "MemorySwappiness": null,
            "OomKillDisable": false,
            "PidsLimit": null,
            "Ulimits": null,
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": null,
            "ReadonlyPaths": null
        }"#;

/// The fields of `config.v2.json` that strata does not use but dockerd expects, as `docker
/// create` writes them for a container without a network.
pub(crate) fn dockerd_extras(network_mode: &str) -> Map<String, Value> {
    let Value::Object(extra) = serde_json::json!({
        "StreamConfig": {},
        "Managed": false,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Networks": {network_mode: {
                "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "", "EndpointID": "",
                "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
                "DriverOpts": null, "IPAMOperational": false
            }},
            "Service": null,
            "Ports": null,
            "SandboxKey": "",
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "IsAnonymousEndpoint": false,
            "HasSwarmEndpoint": false
        },
        "LogPath": "",
        "MountLabel": "",
        "ProcessLabel": "",
        "RestartCount": 0,
        "HasBeenManuallyStopped": false,
        "MountPoints": {},
        "SecretReferences": null,
        "ConfigReferences": null,
        "AppArmorProfile": "",
        "ShmPath": "",
        "SeccompProfile": "",
        "NoNewPrivileges": false
    }) else {
        unreachable!("an object literal")
    };
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.v2.json` as dockerd 20.10 wrote it after `docker start -a c1`.
    const DOCKERD: &str = r#"{"StreamConfig":{},"State":{"Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"RemovalInProgress":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"2026-11-22T07:39:38.591299407Z","FinishedAt":"2026-11-22T07:39:38.595182238Z","Health":null},"ID":"f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55","Created":"2026-11-22T07:39:26.387902387Z","Managed":false,"Path":"sh","Args":["-c","echo hi"],"Config":{"Hostname":"f805d40f055f","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh","-c","echo hi"],"Image":"deb:1","Volumes":null,"WorkingDir":"","Entrypoint":null,"NetworkDisabled":true,"OnBuild":null,"Labels":{}},"Image":"sha256:b2dded61d6da0e88e576916e47d96eb43a7fce0a74a9cf4c73eabaa0f3101d19","NetworkSettings":{"Bridge":"","SandboxID":"b87949a26878584010740de0cb83b11358afe30b1616cdf188db9f5b3061506a","HairpinMode":false,"LinkLocalIPv6Address":"","LinkLocalIPv6PrefixLen":0,"Networks":{"bridge":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"","DriverOpts":null,"IPAMOperational":false}},"Service":null,"Ports":null,"SandboxKey":"/tmp/dref/exec/netns/b87949a26878","SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null,"IsAnonymousEndpoint":false,"HasSwarmEndpoint":false},"LogPath":"/tmp/dref/root/containers/f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55/f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55-json.log","Name":"/c1","Driver":"overlay2","OS":"linux","MountLabel":"","ProcessLabel":"","RestartCount":0,"HasBeenStartedBefore":true,"HasBeenManuallyStopped":false,"MountPoints":{},"SecretReferences":null,"ConfigReferences":null,"AppArmorProfile":"","HostnamePath":"/tmp/dref/root/containers/f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55/hostname","HostsPath":"/tmp/dref/root/containers/f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55/hosts","ShmPath":"","ResolvConfPath":"/tmp/dref/root/containers/f805d40f055f67e0e534906e82ab3dc1fc350e13aaef81d2aab99ae8772ecc55/resolv.conf","SeccompProfile":"","NoNewPrivileges":false,"LocalLogCacheMeta":{"HaveNotifyEnabled":false}}"#;

    #[test]
    fn a_dockerd_record_reads_and_writes_back_unchanged() {
        let record: Record = serde_json::from_str(DOCKERD).unwrap();
        assert_eq!(record.name(), "c1");
        assert_eq!(record.command(), "sh -c echo hi");
        assert!(record.has_been_started_before && !record.state.running);
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(DOCKERD).unwrap());
    }

    #[test]
    fn a_new_host_config_has_dockerd_keys() {
        let host = HostConfig::new("none", true, "crun");
        let v = serde_json::to_value(&host).unwrap();
        assert_eq!(v["NetworkMode"], "none");
        assert_eq!(v["AutoRemove"], true);
        assert_eq!(v["Runtime"], "crun");
        assert_eq!(v["RestartPolicy"]["Name"], "no");
    }
}
