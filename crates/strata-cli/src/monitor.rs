//! The foreground half of `run` and `start`, and the monitor process. The container is run by
//! a monitor process of its own (`strata container-monitor`, in a process group of its own),
//! and the foreground process waits for it, passing on the signals it gets. Killed, even with
//! SIGKILL, the foreground process leaves the monitor to see the container to its end: unmount
//! it and record its real exit status, as dockerd's shim outlives a killed `docker run`. The
//! monitor passes the signals it gets on to the runtime, which passes them to the container.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

/// Signals passed on instead of ending the process.
const FORWARDED: &[i32] = &[
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
];

/// Passes [`FORWARDED`] signals on to the process in `target` until dropped; those that
/// come before it is set are passed on when [`set_target`](Self::set_target) sets it.
pub(crate) struct Forwarder {
    target: Arc<AtomicU32>,
    pending: Arc<std::sync::Mutex<Vec<i32>>>,
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn forward(pid: u32, signal: i32) {
    let pid = rustix::process::Pid::from_raw(pid as i32);
    if let (Some(pid), Some(signal)) = (pid, rustix::process::Signal::from_named_raw(signal)) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

impl Forwarder {
    /// Catch [`FORWARDED`] signals and pass them on. When stdin is a terminal, the runtime
    /// shares this process's process group (it reads the terminal) and gets the terminal's
    /// own signals (`SIGINT`, `SIGQUIT`) itself: those are caught here but not passed on, or the
    /// container would get each twice.
    pub(crate) fn start() -> Result<Forwarder> {
        let from_terminal = std::io::stdin().is_terminal();
        let mut signals = signal_hook::iterator::Signals::new(FORWARDED).context("cannot set up signal forwarding")?;
        let handle = signals.handle();
        let target = Arc::new(AtomicU32::new(0));
        let pending = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (to, held) = (Arc::clone(&target), Arc::clone(&pending));
        let thread = std::thread::spawn(move || {
            for signal in signals.forever() {
                if from_terminal && matches!(signal, signal_hook::consts::SIGINT | signal_hook::consts::SIGQUIT) {
                    continue;
                }
                let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                match to.load(Ordering::SeqCst) {
                    0 => held.push(signal),
                    pid => forward(pid, signal),
                }
            }
        });
        Ok(Forwarder { target, pending, handle, thread: Some(thread) })
    }

    /// Pass signals on to `pid` from now on, and those that came before.
    pub(crate) fn set_target(&self, pid: u32) {
        let mut held = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.target.store(pid, Ordering::SeqCst);
        for signal in held.drain(..) {
            forward(pid, signal);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Run `container` through a monitor process and return its exit status, which is the
/// container's (or 125, 126, 127 for a container that could not be run, as docker's).
pub(crate) fn run_monitored(root: &Path, container: &str, remove_on_failure: bool, stdin: bool) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the strata binary to start the container's monitor")?;
    let mut command = Command::new(exe);
    command.arg("--root").arg(root).arg("container-monitor").arg(container);
    if remove_on_failure {
        command.arg("--remove-on-failure");
    }
    if let Some(level) = crate::LOG_LEVEL.get() {
        command.arg("--log-level").arg(level);
    }
    // Its own process group: a terminal's signals reach it once, through this process. Stdin
    // goes on to the runtime for a container made with -i (the library gives it no other); a
    // terminal there keeps the monitor (and so the runtime) in this foreground process group,
    // where reading the terminal and its window-size changes reach them.
    command.stdin(if stdin { Stdio::inherit() } else { Stdio::null() });
    if !(stdin && std::io::stdin().is_terminal()) {
        command.process_group(0);
    }
    let forwarder = Forwarder::start()?;
    let mut child = command.spawn().context("cannot start the container's monitor process")?;
    forwarder.set_target(child.id());
    let status = child.wait().context("waiting for the container's monitor process");
    drop(forwarder);
    use std::os::unix::process::ExitStatusExt;
    let status = status?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// What a detached monitor says on stderr once the container runs.
const STARTED: &str = "strata-monitor: the container runs";

/// Start `container` through a monitor process in a session of its own, its output to its
/// log, and return once it runs (printing its ID if `print`), or with the failure and status docker
/// gives (125, 126, 127).
pub(crate) fn start_detached(root: &Path, container: &str, remove_on_failure: bool, print: bool) -> Result<ExitCode> {
    use std::io::Read;
    let mut child = spawn_detached(root, container, remove_on_failure, false)?;
    // Until it runs, the monitor's stderr is this pipe; then it lets go of it.
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut said).context("reading from the container's monitor process")?;
    }
    if said.lines().any(|l| l == STARTED) {
        for line in said.lines().filter(|l| *l != STARTED) {
            eprintln!("{line}");
        }
        if print {
            println!("{container}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprint!("{said}");
    use std::os::unix::process::ExitStatusExt;
    let status = child.wait().context("waiting for the container's monitor process")?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(125).max(1)))
}

/// A detached monitor for `container` (waiting for an attach first if `attach`), its stderr
/// piped to this process until the container runs.
fn spawn_detached(root: &Path, container: &str, remove_on_failure: bool, attach: bool) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the strata binary to start the container's monitor")?;
    let mut command = Command::new(exe);
    command.arg("--root").arg(root).arg("container-monitor").arg("--detach");
    if attach {
        command.arg("--attach");
    }
    command.arg(container);
    if remove_on_failure {
        command.arg("--remove-on-failure");
    }
    if let Some(level) = crate::LOG_LEVEL.get() {
        command.arg("--log-level").arg(level);
    }
    // The monitor makes a session of its own first thing (see `detach`).
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    command.spawn().context("cannot start the container's monitor process")
}

/// Start `container` (which has a terminal) through a detached monitor that waits for this
/// process to attach, then join this terminal to the container's until it ends (its exit
/// status) or the detach keys leave it running (0).
pub(crate) fn start_attached(root: &Path, container: &str, remove_on_failure: bool, stdin: bool) -> Result<ExitCode> {
    use std::io::Read;
    let mut child = spawn_detached(root, container, remove_on_failure, true)?;
    let mut stderr = child.stderr.take().context("the monitor's stderr")?;
    let said = std::thread::spawn(move || {
        let mut said = String::new();
        let _ = stderr.read_to_string(&mut said);
        said
    });
    let tell = |said: std::thread::JoinHandle<String>| {
        for line in said.join().unwrap_or_default().lines().filter(|l| *l != STARTED) {
            eprintln!("{line}");
        }
    };
    let containers = strata::Store::open(root)?.containers();
    use std::os::unix::process::ExitStatusExt;
    let code = |status: std::process::ExitStatus| status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let terminal = loop {
        if let Ok(terminal) = containers.attach(container, std::time::Duration::ZERO) {
            break terminal;
        }
        if let Some(status) = child.try_wait().context("waiting for the container's monitor process")? {
            tell(said);
            return Ok(ExitCode::from(u8::try_from(code(status)).unwrap_or(125).max(1)));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let keys = crate::attach::detach_keys("ctrl-p,ctrl-q")?;
    match crate::attach::relay(terminal, true, stdin, keys)? {
        crate::attach::Ended::Detached => Ok(ExitCode::SUCCESS),
        crate::attach::Ended::Closed => {
            let status = child.wait().context("waiting for the container's monitor process")?;
            tell(said);
            Ok(ExitCode::from(u8::try_from(code(status)).unwrap_or(255)))
        }
    }
}

/// A detached monitor's first step: a session of its own, away from the caller's terminal
/// and its signals.
pub(crate) fn detach() -> Result<()> {
    rustix::process::setsid().context("cannot leave the caller's session")?;
    Ok(())
}

/// In a detached monitor, once the container runs: say so, and send what the monitor
/// would print from now on nowhere (the caller has gone).
pub(crate) fn detached() {
    eprintln!("{STARTED}");
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}
