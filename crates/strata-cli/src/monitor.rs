//! The foreground half of `run` and `start`. The container is run by a monitor process of its
//! own (`strata container-monitor`, in a process group of its own), and this process waits for
//! it, passing on the signals it gets. Killed, even with SIGKILL, this process leaves the
//! monitor to see the container to its end: unmount it and record its real exit status, as
//! dockerd's shim outlives a killed `docker run`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

/// Signals passed on to the monitor instead of ending this process.
const FORWARDED: &[i32] = &[
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGUSR1,
    signal_hook::consts::SIGUSR2,
];

/// Run `container` through a monitor process and return its exit status, which is the
/// container's (or 125, 126, 127 for a container that could not be run, as docker's).
pub(crate) fn run_monitored(root: &Path, container: &str, remove_on_failure: bool) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the strata binary to start the container's monitor")?;
    let mut command = Command::new(exe);
    command.arg("--root").arg(root).arg("container-monitor").arg(container);
    if remove_on_failure {
        command.arg("--remove-on-failure");
    }
    // Its own process group: a terminal's signals reach it once, through this process.
    command.stdin(Stdio::null()).process_group(0);
    if let Some(level) = crate::LOG_LEVEL.get() {
        command.arg("--log-level").arg(level);
    }
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED).context("cannot set up signal forwarding")?;
    let handle = signals.handle();
    let mut child = command.spawn().context("cannot start the container's monitor process")?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32);
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            if let (Some(pid), Some(signal)) = (pid, rustix::process::Signal::from_named_raw(signal)) {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    });
    let status = child.wait().context("waiting for the container's monitor process");
    handle.close();
    let _ = forwarder.join();
    use std::os::unix::process::ExitStatusExt;
    let status = status?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
