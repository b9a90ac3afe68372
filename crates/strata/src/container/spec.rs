//! The OCI runtime bundle's `config.json`, shaped as dockerd makes it for a container: the
//! merged tree as root, mount, pid, ipc and uts namespaces (and network unless the host's is
//! asked for), /proc, /dev, /sys, the container's own hostname, hosts and resolv.conf bound
//! over the init layer's files, and Docker's default capabilities.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::json;

use super::seccomp::SecurityOptions;
use super::user::User;
use crate::error::{Error, Result};

/// Docker's default capabilities.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What the process is.
pub(crate) struct Process<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a User,
    /// `--security-opt`.
    pub security: &'a SecurityOptions,
    /// A pseudo-terminal (`-t`): the runtime makes it and passes its stdin and stdout through.
    pub terminal: bool,
}

/// The caller's terminal size (rows, columns) if stdin is a terminal: what a container's
/// terminal starts with (`process.consoleSize`; runc also reads it itself, crun does not).
pub(crate) fn caller_terminal_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// Where things are.
pub(crate) struct Paths<'a> {
    /// The merged tree.
    pub rootfs: &'a Path,
    /// `<root>/containers/<id>`, holding hostname, hosts and resolv.conf.
    pub container_dir: &'a Path,
    /// The init binary bound at [`INIT_PATH`] (`--init`).
    pub init: Option<&'a Path>,
    /// Volumes, binds and tmpfs, parents first; each replaces a default mount at its place.
    pub mounts: &'a [serde_json::Value],
}

/// Where `--init`'s binary is in the container, as dockerd puts `docker-init`.
pub(crate) const INIT_PATH: &str = "/sbin/docker-init";

/// The spec for running `process` in the tree at `paths.rootfs`.
pub(crate) fn build(
    process: &Process,
    paths: &Paths,
    hostname: &str,
    host_network: bool,
    cgroup: &str,
) -> Result<Spec> {
    let mut namespaces =
        vec![json!({"type": "mount"}), json!({"type": "uts"}), json!({"type": "pid"}), json!({"type": "ipc"})];
    if !host_network {
        namespaces.insert(1, json!({"type": "network"}));
    }
    let bind = |name: &str, target: &str| {
        json!({"destination": target, "type": "bind", "source": paths.container_dir.join(name),
               "options": ["rbind", "rprivate"]})
    };
    let mut value = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": process.terminal,
            "user": {"uid": process.user.uid, "gid": process.user.gid, "additionalGids": process.user.groups},
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "capabilities": {"bounding": CAPABILITIES, "effective": CAPABILITIES, "permitted": CAPABILITIES},
            "oomScoreAdj": 0
        },
        "root": {"path": paths.rootfs},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            bind("resolv.conf", "/etc/resolv.conf"),
            bind("hostname", "/etc/hostname"),
            bind("hosts", "/etc/hosts")
        ],
        "linux": {
            "cgroupsPath": cgroup,
            "namespaces": namespaces,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                            "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if let Some(init) = paths.init {
        let mount =
            json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]});
        value["mounts"].as_array_mut().expect("a list").push(mount);
    }
    let list = value["mounts"].as_array_mut().expect("a list");
    list.retain(|m| !paths.mounts.iter().any(|u| u["destination"] == m["destination"]));
    list.extend(paths.mounts.iter().cloned());
    if let Some(filter) = process.security.filter(CAPABILITIES)? {
        value["linux"]["seccomp"] = filter;
    }
    if let Some((rows, cols)) = process.terminal.then(caller_terminal_size).flatten() {
        value["process"]["consoleSize"] = json!({"height": rows, "width": cols});
    }
    if process.security.no_new_privileges {
        value["process"]["noNewPrivileges"] = true.into();
    }
    serde_json::from_value(value).map_err(|e| Error::Runtime { runtime: "spec".into(), reason: e.to_string() })
}

/// The process environment as dockerd builds it: `PATH` (a default), `HOSTNAME`, `TERM=xterm`
/// with a terminal, then the container's own variables replacing or adding, then `HOME` if
/// nothing set it.
pub(crate) fn environment(hostname: &str, config_env: &[String], home: &str, terminal: bool) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        format!("HOSTNAME={hostname}"),
    ];
    if terminal {
        env.push("TERM=xterm".to_owned());
    }
    for var in config_env {
        set_var(&mut env, var);
    }
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Replace `KEY=…` in `env` by `var`, or append it.
pub(crate) fn set_var(env: &mut Vec<String>, var: &str) {
    let key = var.split_once('=').map_or(var, |(k, _)| k);
    match env.iter_mut().find(|v| v.split_once('=').map_or(v.as_str(), |(k, _)| k) == key) {
        Some(slot) => *slot = var.to_owned(),
        None => env.push(var.to_owned()),
    }
}

/// The value of `key` in `env`.
pub(crate) fn get_var<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().find_map(|v| v.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_follows_dockerd() {
        let env = environment("abc", &["A=1".into(), "PATH=/bin".into()], "/root", false);
        assert_eq!(env, ["PATH=/bin", "HOSTNAME=abc", "A=1", "HOME=/root"]);
        assert_eq!(get_var(&env, "A"), Some("1"));
        let env = environment("abc", &["TERM=dumb".into()], "/root", true);
        assert_eq!(
            env,
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=abc",
                "TERM=dumb",
                "HOME=/root"
            ]
        );
    }

    #[test]
    fn spec_is_a_valid_oci_config() {
        let user = User { uid: 1, gid: 2, groups: vec![2], home: "/".into() };
        let args = vec!["sh".to_owned()];
        let security = SecurityOptions::default();
        let process = Process { args: &args, env: &[], cwd: "/", user: &user, security: &security, terminal: false };
        let paths = Paths { rootfs: Path::new("/r/merged"), container_dir: Path::new("/r/c"), init: None, mounts: &[] };
        let spec = build(&process, &paths, "h", false, "/strata/x").unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["linux"]["namespaces"][1]["type"], "network");
        assert_eq!(v["mounts"][8]["source"], "/r/c/hostname");
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(v["process"].get("noNewPrivileges").is_none());
        let host = build(&process, &paths, "h", true, "/strata/x").unwrap();
        assert_eq!(serde_json::to_value(&host).unwrap()["linux"]["namespaces"].as_array().unwrap().len(), 4);
    }
}
