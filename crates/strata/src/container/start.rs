//! `start`: mount the container's tree, write the runtime bundle, run the runtime in the
//! foreground with the caller's stdout and stderr (the caller may pass signals on to it), and afterwards
//! unmount and record how the container ended. The store lock is held only while preparing
//! and while cleaning up; the monitor lock (see `monitor`) for the whole run.

use std::path::Path;
use std::process::Stdio;

use super::id::ContainerId;
use super::monitor;
use super::runtime::Runtime;
use super::seccomp::SecurityOptions;
use super::spec::{self, Paths, Process};
use super::user::Rootfs;
use super::{Container, ContainerStore};
use crate::error::{Error, Result};
use crate::fsutil::{mkdir, replace};
use crate::image::now_rfc3339;
use crate::lock::StoreLock;

/// Where the runtime writes the container's first process ID (in strata's directory for it).
pub(crate) const PID_FILE: &str = "pid";

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

impl ContainerStore {
    /// Run the container in the foreground and return its exit status (128 + the signal if a
    /// signal ended it). The container's stdout and stderr are the caller's; so is its stdin if it
    /// was created with `interactive` (`-i`), else it is empty.
    /// No signal handler is installed: see [`start_with`](Self::start_with).
    pub fn start(&self, name: &str) -> Result<i32> {
        self.start_with(name, |_| {})
    }

    /// [`start`](Self::start), calling `spawned` with the runtime process's ID once it runs, so
    /// that the caller can pass signals on to it (the runtime passes them to the container).
    pub fn start_with(&self, name: &str, spawned: impl FnOnce(u32)) -> Result<i32> {
        self.start_output(name, Output::Inherit, spawned, || {})
    }

    /// [`start_with`](Self::start_with), the container's output kept as `output` says, and
    /// `running` called once the container's process exists (for a caller that detaches).
    pub fn start_output(
        &self,
        name: &str,
        output: Output,
        spawned: impl FnOnce(u32),
        running: impl FnOnce(),
    ) -> Result<i32> {
        let id = self.resolve(name)?;
        let lock = self.store.write_lock()?;
        let container = self.get_unlocked(id)?;
        let runtime = Runtime::find(&self.store, &container.host.runtime)?;
        let already = || Error::Container { container: name.to_owned(), reason: "is already running".to_owned() };
        let Some(monitor) = monitor::acquire(&self.store, id)? else { return Err(already()) };
        if container.running {
            return Err(already());
        }
        let mut container = self.settle(&lock, container, Some(&runtime))?;
        let mount_id = container.layers.mount_id.clone();
        let merged = self.layers.mount_locked(&lock, &mount_id)?;
        let bundle = super::private_dir(&self.store, id).join("bundle");
        if let Err(e) = self.prepare(&mut container, &merged, &bundle) {
            let _ = self.layers.unmount_locked(&lock, &mount_id, false);
            if let Error::Command { status, .. } = &e {
                container.record.state.exit_code = i32::from(*status);
                container.record.state.error = e.to_string();
                self.write_record(&container.record)?;
            }
            return Err(e);
        }
        let started_before = container.record.has_been_started_before;
        let state = &mut container.record.state;
        state.running = true;
        state.pid = i64::from(std::process::id());
        state.exit_code = 0;
        state.error.clear();
        state.started_at = now_rfc3339();
        container.record.has_been_started_before = true;
        self.write_record(&container.record)?;
        crate::failpoint::hit("start.recorded");
        drop(lock);

        let pid_file = super::private_dir(&self.store, id).join(PID_FILE);
        let log = (output != Output::Inherit)
            .then(|| (super::log::path(&self.store.containers_dir(), id), super::log::LogLimits::of(&container.host)));
        let streams = match &log {
            Some((path, limits)) => Streams::Log(path.as_path(), *limits, output == Output::Attach),
            None => Streams::Caller { stdin: container.record.config.open_stdin },
        };
        let status = if container.record.config.tty {
            let stdin = container.record.config.open_stdin;
            run_with_terminal(&runtime, id, (&bundle, &pid_file), (streams, stdin), spawned, running)
        } else {
            let stdin = container.record.config.open_stdin;
            run(&runtime, id, (&bundle, &pid_file), (streams, stdin), spawned, running)
        };
        // The runtime wrote it under the caller's umask; strata's files have fixed modes.
        if let Err(e) = std::fs::set_permissions(&pid_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!("chmod {}: {e}", pid_file.display());
        }
        // The runtime writes the PID file once the container's process exists: without it, the
        // status is the runtime's own failure, not the container's.
        let status =
            match status {
                Ok(code) if !pid_file.exists() => Err(runtime
                    .error(format!("failed before the container ran (exit status {code}); see its message above"))),
                other => other,
            };

        let lock = self.store.write_lock()?;
        runtime.delete(id);
        let unmounted = self.layers.unmount_locked(&lock, &mount_id, false);
        let mut record = self.read_record(id)?.unwrap_or(container.record);
        record.state.running = false;
        record.state.paused = false;
        record.state.pid = 0;
        record.state.finished_at = now_rfc3339();
        match &status {
            Ok(code) => record.state.exit_code = *code,
            Err(e) => {
                record.state.exit_code = 128;
                record.state.error = e.to_string();
                record.has_been_started_before = started_before;
            }
        }
        self.write_record(&record)?;
        if container.host.auto_remove {
            drop(monitor);
            self.remove_locked(&lock, id, true)?;
        }
        unmounted?;
        status
    }

    /// Containers whose record says they run though nothing runs them: the strata process
    /// that ran them was killed (with SIGKILL, or the machine stopped), leaving their mount.
    pub(crate) fn dead_runs(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            match self.get_unlocked(id) {
                Ok(c) if !c.running && monitor::died_running(&self.store, &c.record) => out.push(c),
                Ok(_) => {}
                // A container that cannot be read is reported by the image database's check.
                Err(e) => tracing::debug!(%id, "not read: {e}"),
            }
        }
        Ok(out)
    }

    /// [`settle`](Self::settle) with the container's own runtime, if it can be found.
    pub(crate) fn settle_dead(&self, lock: &StoreLock, container: Container) -> Result<()> {
        let runtime = Runtime::find(&self.store, &container.host.runtime).ok();
        self.settle(lock, container, runtime.as_ref()).map(drop)
    }

    /// A container whose monitor died while it ran: stop what the runtime still has of it,
    /// drop the mount it left, and record that it ended.
    pub(crate) fn settle(
        &self,
        lock: &StoreLock,
        mut container: Container,
        runtime: Option<&Runtime>,
    ) -> Result<Container> {
        if !container.record.state.running {
            return Ok(container);
        }
        tracing::info!(id = %container.id(), "settling a container whose strata process died");
        if let Some(runtime) = runtime {
            runtime.delete(container.id());
        }
        if self.layers.reconcile_mounts(&container.layers.mount_id)? > 0 {
            self.layers.unmount_locked(lock, &container.layers.mount_id, true)?;
        }
        let state = &mut container.record.state;
        state.running = false;
        state.paused = false;
        state.pid = 0;
        state.exit_code = 137;
        state.error = "the strata process that ran it was killed".to_owned();
        state.finished_at = now_rfc3339();
        container.running = false;
        self.write_record(&container.record)?;
        Ok(container)
    }

    /// Write the container's hostname, hosts and resolv.conf (once), check its command and
    /// user against its tree, and write the bundle.
    fn prepare(&self, container: &mut Container, merged: &Path, bundle: &Path) -> Result<()> {
        let id = container.id();
        let dir = self.dir(id);
        let record = &mut container.record;
        for (name, content) in [
            ("hostname", format!("{}\n", record.config.hostname)),
            ("hosts", HOSTS.to_owned()),
            ("resolv.conf", resolv_conf()),
        ] {
            let path = dir.join(name);
            if !path.exists() {
                replace(&path, content.as_bytes(), 0o644)?;
            }
        }
        record.hostname_path = dir.join("hostname").to_string_lossy().into_owned();
        record.hosts_path = dir.join("hosts").to_string_lossy().into_owned();
        record.resolv_conf_path = dir.join("resolv.conf").to_string_lossy().into_owned();

        let rootfs = Rootfs::open(merged)?;
        let user = rootfs.user(&record.config.user)?;
        let env = spec::environment(
            &record.config.hostname,
            record.config.env.as_deref().unwrap_or_default(),
            &user.home,
            record.config.tty,
        );
        rootfs.check_program(&record.path, spec::get_var(&env, "PATH").unwrap_or_default())?;
        let mut args: Vec<String> = std::iter::once(record.path.clone()).chain(record.args.iter().cloned()).collect();
        let init = match container.host.init {
            Some(true) => {
                args.splice(0..0, [spec::INIT_PATH.to_owned(), "--".to_owned()]);
                Some(init_binary()?)
            }
            _ => None,
        };
        let cwd = match record.config.working_dir.as_str() {
            "" => "/".to_owned(),
            dir => rootfs.working_dir(dir)?,
        };
        let security = SecurityOptions::parse(container.host.security_opt.as_deref().unwrap_or_default())?;
        let terminal = record.config.tty;
        let process = Process { args: &args, env: &env, cwd: &cwd, user: &user, security: &security, terminal };
        let mounts = self.runtime_mounts(record, &container.host)?;
        let paths = Paths { rootfs: merged, container_dir: &dir, init: init.as_deref(), mounts: &mounts };
        let host_network = container.host.network_mode == "host";
        let spec = spec::build(&process, &paths, &record.config.hostname, host_network, &format!("/strata/{id}"))?;
        mkdir(bundle, 0o700)?;
        replace(&bundle.join("config.json"), &serde_json::to_vec(&spec).expect("serializable"), 0o600)
    }
}

/// The binary `--init` runs: `STRATA_INIT_PATH`, else this very program if it is strata's
/// (static, so it runs in any image; started as `docker-init`, it is the init).
fn init_binary() -> Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_INIT_PATH") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "this program", e))?;
    match exe.file_name().and_then(|n| n.to_str()) {
        Some(name) if name.starts_with("strata") => Ok(exe),
        _ => Err(Error::BadOption {
            what: "init",
            value: exe.display().to_string(),
            reason: "--init runs strata's own binary as the container's init: set STRATA_INIT_PATH to it".into(),
        }),
    }
}

/// The host's resolv.conf without loopback name servers (unreachable from the container's
/// network), falling back to public ones as dockerd does.
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1"))))
        .collect();
    let mut out = kept.join("\n");
    if !kept.iter().any(|l| l.starts_with("nameserver")) {
        out.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4");
    }
    format!("{}\n", out.trim())
}

/// Where a started container's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The caller's own (a run in the foreground).
    #[default]
    Inherit,
    /// The container's log, in dockerd's json-file format (a detached run; see
    /// [`ContainerStore::logs`]); a container with a terminal can be attached to.
    Log,
    /// As `Log`, for a container with a terminal whose starter attaches at once (`run -it`):
    /// the container starts once it has.
    Attach,
}

/// Where the runtime's standard streams go.
enum Streams<'a> {
    /// The caller's stdout and stderr, and its stdin if asked (`-i`).
    Caller { stdin: bool },
    /// The container's log; stdin empty (a terminal's clients give it input); whether to
    /// wait for the first client of the terminal.
    Log(&'a Path, super::log::LogLimits, bool),
}

/// Run the container with a terminal (`-t`): created by the runtime, its terminal sized, then
/// started; the terminal's master end relayed where `streams` says (see `console`), input
/// from the caller or clients if `stdin`.
fn run_with_terminal(
    runtime: &Runtime,
    id: ContainerId,
    (bundle, pid_file): (&Path, &Path),
    (streams, stdin): (Streams<'_>, bool),
    spawned: impl FnOnce(u32),
    running: impl FnOnce(),
) -> Result<i32> {
    use super::console::{Attach, Invocation, TerminalTo};
    use std::ffi::OsStr;
    let _ = std::fs::remove_file(pid_file);
    let args = [
        OsStr::new("create"),
        OsStr::new("--bundle"),
        bundle.as_os_str(),
        OsStr::new("--pid-file"),
        pid_file.as_os_str(),
    ];
    let how = Invocation { runtime, args: &args, then_start: true, id: id.as_str(), pid_file };
    match streams {
        Streams::Caller { .. } => {
            super::console::run_with_terminal(how, TerminalTo::Caller { stdin }, spawned, running)
        }
        Streams::Log(path, limits, wait_first) => {
            let file = super::log::LogFile::open(path, limits).map_err(|e| Error::io("open", path, e))?;
            let log = std::sync::Mutex::new(file);
            let socket = pid_file.with_file_name(super::attach::ATTACH_SOCKET);
            let attach = Attach { socket: &socket, wait_first, stdin };
            super::console::run_with_terminal(how, TerminalTo::Log { log: &log, attach }, spawned, running)
        }
    }
}

/// Run the runtime in the foreground and wait for it, its streams where `streams` says: the
/// caller's, or the log and the clients of the attach socket (their input to the container's
/// stdin if it is open, `stdin`).
fn run(
    runtime: &Runtime,
    id: ContainerId,
    (bundle, pid_file): (&Path, &Path),
    (streams, stdin): (Streams<'_>, bool),
    spawned: impl FnOnce(u32),
    running: impl FnOnce(),
) -> Result<i32> {
    use super::attach::{Input, Server, Tee};
    use std::sync::Arc;
    let _ = std::fs::remove_file(pid_file);
    let mut command = runtime.command();
    command.args(["run", "--bundle"]).arg(bundle).arg("--pid-file").arg(pid_file).arg(id.as_str());
    let (log, server, input) = match streams {
        Streams::Caller { stdin } => {
            command.stdin(if stdin { Stdio::inherit() } else { Stdio::null() });
            (None, None, Input::Closed)
        }
        Streams::Log(path, limits, _) => {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            let file = super::log::LogFile::open(path, limits).map_err(|e| Error::io("open", path, e))?;
            let socket = pid_file.with_file_name(super::attach::ATTACH_SOCKET);
            let server = Server::bind(&socket).map_err(|e| Error::io("bind", &socket, e))?;
            let input = if stdin {
                let (reader, writer) = std::io::pipe().map_err(|e| Error::io("make a pipe for", "stdin", e))?;
                command.stdin(reader);
                Input::Pipe(Arc::new(std::os::fd::OwnedFd::from(writer)))
            } else {
                command.stdin(Stdio::null());
                Input::Closed
            };
            (Some((path, std::sync::Mutex::new(file))), Some(server), input)
        }
    };
    let mut child = command.spawn().map_err(|e| runtime.error(format!("cannot start it: {e}")))?;
    drop(command);
    spawned(child.id());
    let clients = server.as_ref().map(|s| Arc::clone(&s.clients)).unwrap_or_default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outputs = [
        (child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), "stdout"),
        (child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), "stderr"),
    ];
    std::thread::scope(|scope| {
        let mut pumps = Vec::new();
        if let Some((path, file)) = &log {
            for (output, stream) in outputs {
                let Some(output) = output else { continue };
                let tee = Tee { clients: Arc::clone(&clients), log: file, stream, framed: true };
                let pump =
                    std::thread::Builder::new().name(format!("strata-log-{stream}")).spawn_scoped(scope, move || {
                        if let Err(e) = tee.pump(output) {
                            tracing::warn!("the container's {stream} could not be logged to {}: {e}", path.display());
                        }
                    });
                match pump {
                    Ok(pump) => pumps.push(pump),
                    Err(e) => tracing::warn!("no thread to log the container's {stream}: {e}"),
                }
            }
        }
        if let Some(server) = server {
            let done = Arc::clone(&done);
            scope.spawn(move || server.serve(input, done));
        }
        // Running once the PID file is there (or the runtime ended first).
        loop {
            if pid_file.exists() {
                running();
                break;
            }
            // An error here is the wait's too, reported below.
            if !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let status = child.wait().map_err(|e| runtime.error(format!("waiting for it: {e}")));
        for pump in pumps {
            let _ = pump.join();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        super::attach::close_all(&clients);
        use std::os::unix::process::ExitStatusExt;
        let status = status?;
        Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    })
}
