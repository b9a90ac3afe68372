//! `--init`: strata's own binary, bound into the container as `/sbin/docker-init` (where
//! dockerd puts its tini), runs as the container's first process: it starts the command, passes
//! the signals it gets on to it, reaps every orphan the kernel hands it, and exits with the
//! command's status (128 + the signal that ended it).

use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// Whether this process was started as the init (by the name it was run as).
pub(crate) fn wanted(argv0: Option<&OsString>) -> bool {
    argv0.and_then(|a| std::path::Path::new(a).file_name().map(|n| n == "docker-init")).unwrap_or(false)
}

/// Run the command after `--` as the init's child.
pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let command: Vec<OsString> = args.into_iter().skip(1).skip_while(|a| a != "--").skip(1).collect();
    let Some((program, rest)) = command.split_first() else {
        eprintln!("docker-init (strata): no command given after --");
        return ExitCode::from(2);
    };
    let forwarder = match crate::monitor::Forwarder::start() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("docker-init (strata): {e:#}");
            return ExitCode::from(125);
        }
    };
    let child = match Command::new(program).args(rest).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("docker-init (strata): cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 });
        }
    };
    let main_pid = child.id();
    forwarder.set_target(main_pid);
    // Reap whatever ends (orphans are reparented here) until the command itself does.
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() as u32 == main_pid => {
                let code = match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => code as u8,
                    (None, Some(signal)) => 128u8.saturating_add(signal as u8),
                    _ => 1,
                };
                return ExitCode::from(code);
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return ExitCode::from(1),
        }
    }
}
