//! The OCI runtime, run as a process: `runc` or `crun` (they take the same commands), with
//! its state under `<root>/strata/runtime/<name>` so that strata's containers are its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::id::ContainerId;
use crate::error::{Error, Result};
use crate::store::Store;

/// The runtime a container runs with unless told otherwise.
pub const DEFAULT: &str = "runc";

/// An OCI runtime found on this machine.
#[derive(Debug, Clone)]
pub struct Runtime {
    name: String,
    binary: PathBuf,
    state_root: PathBuf,
}

impl Runtime {
    /// The runtime `name` (a command in `PATH`, or a path).
    pub fn find(store: &Store, name: &str) -> Result<Runtime> {
        let name = if name.is_empty() { DEFAULT } else { name };
        let binary = which(name).ok_or_else(|| Error::Runtime {
            runtime: name.to_owned(),
            reason: if name.contains('/') {
                "is not an executable file; give the path of runc or crun, or a name in PATH".to_owned()
            } else {
                format!("not found in PATH; install it (apt-get install {name}) or choose another with --runtime")
            },
        })?;
        let short = binary.file_name().map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Runtime { name: name.to_owned(), state_root: store.private_dir().join("runtime").join(short), binary })
    }

    /// The name it was asked by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its binary is.
    pub fn path(&self) -> &std::path::Path {
        &self.binary
    }

    /// The first line of `<runtime> --version` (empty if it does not say).
    pub fn version(&self) -> String {
        std::process::Command::new(&self.binary)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_default()
    }

    /// `<runtime> --root <state> ARGS…`.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state_root);
        command
    }

    /// The runtime's status of `id` (`created`, `running`, `stopped`), or `None` if it has
    /// no such container.
    pub(crate) fn state(&self, id: ContainerId) -> Option<String> {
        let out = self.command().args(["state", id.as_str()]).stderr(Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        state["status"].as_str().map(str::to_owned)
    }

    /// Send `signal` (`KILL`, `TERM`) to the container's processes.
    pub(crate) fn kill(&self, id: ContainerId, signal: &str) -> Result<()> {
        self.send(id, signal, true)
    }

    /// Send `signal` to the container's first process (as `docker kill` and `stop` do), or
    /// with `all` to every process of it.
    pub(crate) fn send(&self, id: ContainerId, signal: &str, all: bool) -> Result<()> {
        let mut command = self.command();
        command.arg("kill");
        if all {
            command.arg("--all");
        }
        let out =
            command.args([id.as_str(), signal]).output().map_err(|e| self.error(format!("cannot start it: {e}")))?;
        if out.status.success() || self.state(id).is_none_or(|s| s == "stopped") {
            Ok(())
        } else {
            Err(self.error(format!("kill failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// Freeze (`pause`) or thaw (`resume`) the container's processes (the cgroup freezer).
    pub(crate) fn freeze(&self, id: ContainerId, freeze: bool) -> Result<()> {
        let verb = if freeze { "pause" } else { "resume" };
        let out = self
            .command()
            .args([verb, id.as_str()])
            .output()
            .map_err(|e| self.error(format!("cannot start it: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.error(format!("{verb} failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// The host's IDs of the container's processes (`runc ps`).
    pub(crate) fn pids(&self, id: ContainerId) -> Result<Vec<u32>> {
        let out = self
            .command()
            .args(["ps", "--format", "json", id.as_str()])
            .output()
            .map_err(|e| self.error(format!("cannot start it: {e}")))?;
        if !out.status.success() {
            return Err(self.error(format!("ps failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| self.error(format!("ps gave no list of processes: {e}")))
    }

    /// Forget the container, killing what is left of it.
    pub(crate) fn delete(&self, id: ContainerId) {
        if !self.state_root.join(id.as_str()).exists() {
            return;
        }
        let _ = self.command().args(["delete", "--force", id.as_str()]).stderr(Stdio::null()).status();
    }

    pub(crate) fn error(&self, reason: String) -> Error {
        Error::Runtime { runtime: self.name.clone(), reason }
    }
}

/// `name` as a shell would find it: a path if it has a slash, else the first executable in
/// `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| executable(p))
}
