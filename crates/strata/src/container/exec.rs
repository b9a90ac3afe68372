//! `exec`: another process in a running container, through the runtime (`runc exec`), with the
//! container's confinement (the runtime takes it from the container's own spec), its
//! environment plus `-e`, its user unless `-u`, its working directory unless `-w`. As docker's,
//! a program that is not there is 127, one that cannot be run 126, before the runtime runs.

use std::process::Stdio;

use super::ContainerStore;
use super::runtime::Runtime;
use super::spec;
use super::user::Rootfs;
use crate::error::{Error, IoContext, Result};

/// How `exec` runs its process.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// More environment variables (`NAME=VALUE`).
    pub env: Vec<String>,
    /// `USER[:GROUP]` or `UID[:GID]`, else the container's.
    pub user: Option<String>,
    /// The working directory, else the container's.
    pub workdir: Option<String>,
    /// Keep the caller's stdin open for the process (else it reads nothing).
    pub stdin: bool,
    /// Start it and return at once (its output goes nowhere).
    pub detach: bool,
    /// A pseudo-terminal for it (`-t`; not with `detach`): the runtime makes it and passes the
    /// caller's stdin and stdout through it, in raw mode if they are a terminal.
    pub tty: bool,
}

impl ContainerStore {
    /// Run `command` in the running container `name` and return its exit status (0 at once
    /// with `detach`). `spawned` gets the runtime process's ID, for a caller that passes
    /// signals on (the runtime passes them to the process).
    pub fn exec(
        &self,
        name: &str,
        command: &[String],
        options: &ExecOptions,
        spawned: impl FnOnce(u32),
    ) -> Result<i32> {
        let Some(program) = command.first() else {
            return Err(Error::BadOption { what: "command", value: String::new(), reason: "is missing".into() });
        };
        let container = self.get(self.resolve(name)?)?;
        if !container.running {
            return Err(Error::Container { container: name.to_owned(), reason: "is not running".into() });
        }
        if container.record.state.paused {
            return Err(Error::Container { container: name.to_owned(), reason: "is paused: unpause it first".into() });
        }
        let id = container.id();
        let runtime = Runtime::find(&self.store, &container.host.runtime)?;
        let merged = self.store.layer_dir(&container.layers.mount_id).join("merged");
        let rootfs = Rootfs::open(&merged)?;
        let config = &container.record.config;
        let user = rootfs.user(options.user.as_deref().unwrap_or(&config.user))?;
        if options.tty && options.detach {
            return Err(Error::BadOption {
                what: "exec option",
                value: "-d -t".into(),
                reason: "a detached process has no terminal to be given: use -t in the foreground".into(),
            });
        }
        let mut env =
            spec::environment(&config.hostname, config.env.as_deref().unwrap_or_default(), &user.home, options.tty);
        for var in &options.env {
            let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(var.clone());
        }
        rootfs.check_program(program, spec::get_var(&env, "PATH").unwrap_or_default())?;
        let cwd = match options.workdir.as_deref().unwrap_or(&config.working_dir) {
            "" => "/".to_owned(),
            dir => rootfs.working_dir(dir)?,
        };

        // The container's own process (capabilities, limits, no-new-privileges, as its start
        // wrote them), with this command, environment, user and directory.
        let private = super::private_dir(&self.store, id);
        let spec_path = private.join("bundle").join("config.json");
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec_path).ctx("read", &spec_path)?)
            .map_err(|e| Error::corrupt(&spec_path, e.to_string()))?;
        let mut process = spec["process"].clone();
        process["terminal"] = options.tty.into();
        match options.tty.then(spec::caller_terminal_size).flatten() {
            Some((rows, cols)) => process["consoleSize"] = serde_json::json!({"height": rows, "width": cols}),
            None => drop(process.as_object_mut().map(|p| p.remove("consoleSize"))),
        }
        process["args"] = command.into();
        process["env"] = env.into();
        process["cwd"] = cwd.into();
        let groups: Vec<u32> = user.groups.iter().copied().filter(|g| *g != user.gid).collect();
        process["user"] = serde_json::json!({"uid": user.uid, "gid": user.gid, "additionalGids": groups});
        let file = Removed(private.join(format!("exec-{}.json", super::ContainerId::random().short())));
        crate::fsutil::write_new(&file.0, &serde_json::to_vec(&process).expect("serializable"), 0o600)?;

        if options.tty {
            use std::ffi::OsStr;
            let pid_file = Removed(file.0.with_extension("pid"));
            let args = [
                OsStr::new("exec"),
                OsStr::new("--detach"),
                OsStr::new("--process"),
                file.0.as_os_str(),
                OsStr::new("--pid-file"),
                pid_file.0.as_os_str(),
            ];
            let to = super::console::TerminalTo::Caller { stdin: options.stdin };
            let how = super::console::Invocation {
                runtime: &runtime,
                args: &args,
                then_start: false,
                id: id.as_str(),
                pid_file: &pid_file.0,
            };
            return super::console::run_with_terminal(how, to, spawned, || {});
        }
        let mut run = runtime.command();
        run.arg("exec").arg("--process").arg(&file.0);
        if options.detach {
            run.arg("--detach");
        }
        run.arg(id.as_str());
        run.stdin(if options.stdin && !options.detach { Stdio::inherit() } else { Stdio::null() });
        if options.detach {
            run.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let mut child = run.spawn().map_err(|e| runtime.error(format!("cannot start it: {e}")))?;
        spawned(child.id());
        let status = child.wait().map_err(|e| runtime.error(format!("waiting for it: {e}")))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// A file removed when dropped.
struct Removed(std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
