//! A running container's life from outside: `kill` (a signal through the runtime), `stop` (the
//! image's stop signal, then SIGKILL after a grace period), `wait` (until its monitor has
//! recorded the end), `pause`/`unpause` (the cgroup freezer), `top` and `rename`. The monitor process (see `monitor`) does the recording; these calls
//! only signal and watch its lock.

use std::time::Duration;

use super::ContainerStore;
use super::id::ContainerId;
use super::monitor;
use super::runtime::Runtime;
use crate::error::{Error, Result};

/// How long `stop` waits, after SIGKILL, for the monitor to record the end.
const AFTER_KILL: Duration = Duration::from_secs(30);

/// How often a container whose monitor was killed is asked about.
const POLL: Duration = Duration::from_millis(20);

/// A signal as docker takes it (`TERM`, `SIGTERM`, `15`), in the runtime's spelling.
pub fn parse_signal(signal: &str) -> Result<String> {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
        "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF",
        "WINCH", "IO", "PWR", "SYS",
    ];
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) {
        return Ok(name.to_owned());
    }
    match name.parse::<u8>() {
        Ok(n @ 1..=64) => Ok(n.to_string()),
        _ => Err(Error::BadOption {
            what: "signal",
            value: signal.to_owned(),
            reason: "is not a signal: give a name (TERM, SIGKILL) or a number from 1 to 64".into(),
        }),
    }
}

impl ContainerStore {
    /// Send `signal` to a running container's processes, as `docker kill` does.
    pub fn kill(&self, name: &str, signal: &str) -> Result<ContainerId> {
        let signal = parse_signal(signal)?;
        let (id, runtime) = self.running(name)?;
        runtime.send(id, &signal, false)?;
        self.thaw(id, &runtime)?;
        Ok(id)
    }

    /// Stop a container as `docker stop` does: its stop signal (the image's `StopSignal`, or
    /// SIGTERM), then SIGKILL if it still runs after `timeout`; returns once its end is
    /// recorded. A container that does not run is left as it is.
    pub fn stop(&self, name: &str, timeout: Duration) -> Result<ContainerId> {
        let container = self.get(self.resolve(name)?)?;
        let id = container.id();
        if !container.running {
            return Ok(id);
        }
        let runtime = Runtime::find(&self.store, &container.host.runtime)?;
        let signal = match container.record.config.stop_signal.as_str() {
            "" => "TERM".to_owned(),
            own => parse_signal(own)?,
        };
        runtime.send(id, &signal, false)?;
        self.thaw(id, &runtime)?;
        if self.wait_stopped(id, timeout)? {
            return self.settled(id);
        }
        tracing::info!(%id, "still running {timeout:?} after SIG{signal}: killing it");
        runtime.send(id, "KILL", false)?;
        if self.wait_stopped(id, AFTER_KILL)? {
            return self.settled(id);
        }
        Err(Error::Container {
            container: name.to_owned(),
            reason: "was killed but its strata process has not recorded its end; see `ps`".into(),
        })
    }

    /// Attach to the running container `name` (one run detached): see
    /// [`Terminal`](super::Terminal). `connect_until` keeps trying that long for a container
    /// whose monitor is still starting (`run -it`).
    pub fn attach(&self, name: &str, connect_until: Duration) -> Result<super::Terminal> {
        let container = self.find(name)?;
        let refuse = |reason: &str| Error::Container { container: name.to_owned(), reason: reason.to_owned() };
        let socket = super::private_dir(&self.store, container.id()).join(super::attach::ATTACH_SOCKET);
        let tty = container.record.config.tty;
        let start = std::time::Instant::now();
        loop {
            match super::attach::Terminal::connect(&socket, tty) {
                Ok(terminal) => return Ok(terminal),
                Err(_) if start.elapsed() < connect_until => std::thread::sleep(Duration::from_millis(5)),
                Err(_) if !self.get(container.id())?.running => {
                    return Err(refuse("is not running: start it first (strata start -ai)"));
                }
                Err(e) => return Err(Error::io("attach to", socket, e)),
            }
        }
    }

    /// Wait until the container stops and return its exit code, as `docker wait` does (at
    /// once for a container that does not run).
    pub fn wait(&self, name: &str) -> Result<i32> {
        let id = self.resolve(name)?;
        monitor::wait_for(&self.store, id)?;
        // A container whose monitor was killed runs on until the runtime says it stopped.
        while self.get(id)?.running {
            std::thread::sleep(POLL);
        }
        self.settled(id)?;
        Ok(self.get(id)?.record.state.exit_code)
    }

    /// Whether the container stopped within `limit`: its monitor let go and the runtime no
    /// longer runs it (a killed monitor leaves the runtime to ask).
    fn wait_stopped(&self, id: ContainerId, limit: Duration) -> Result<bool> {
        let start = std::time::Instant::now();
        monitor::wait_released(&self.store, id, limit);
        while self.get(id)?.running {
            if start.elapsed() > limit {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
        Ok(true)
    }

    /// A container that stopped with its end recorded: a record a killed monitor left saying
    /// "running" is settled (unmounted, recorded as killed).
    fn settled(&self, id: ContainerId) -> Result<ContainerId> {
        let container = self.get(id)?;
        if container.record.state.running && !container.running {
            let lock = self.store.write_lock()?;
            self.settle_dead(&lock, self.get_unlocked(id)?)?;
        }
        Ok(id)
    }

    /// Freeze a running container's processes (`docker pause`), or thaw them (`unpause`); the
    /// record says `Paused` as dockerd's does.
    pub fn pause(&self, name: &str, pause: bool) -> Result<ContainerId> {
        let (id, runtime) = self.running(name)?;
        let lock = self.store.write_lock()?;
        let mut record = self.get_unlocked(id)?.record;
        if record.state.paused == pause {
            let reason = if pause { "is already paused" } else { "is not paused" };
            return Err(Error::Container { container: name.to_owned(), reason: reason.into() });
        }
        runtime.freeze(id, pause)?;
        record.state.paused = pause;
        self.write_record(&record)?;
        drop(lock);
        Ok(id)
    }

    /// A paused container thawed (after a signal it must get, or before a commit ends).
    pub(crate) fn thaw(&self, id: ContainerId, runtime: &Runtime) -> Result<()> {
        let lock = self.store.write_lock()?;
        let mut record = self.get_unlocked(id)?.record;
        if record.state.paused {
            runtime.freeze(id, false)?;
            record.state.paused = false;
            self.write_record(&record)?;
        }
        drop(lock);
        Ok(())
    }

    /// The host's process IDs of a running container's processes (for `top`).
    pub fn processes(&self, name: &str) -> Result<Vec<u32>> {
        let (id, runtime) = self.running(name)?;
        runtime.pids(id)
    }

    /// Give a container another name, running or not, as `docker rename` does.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<ContainerId> {
        super::valid_name(new_name)?;
        let id = self.resolve(name)?;
        let lock = self.store.write_lock()?;
        let mut record = self.get_unlocked(id)?.record;
        if record.name.trim_start_matches('/') == new_name {
            return Err(Error::Container {
                container: name.to_owned(),
                reason: format!("is already named {new_name}"),
            });
        }
        let new_name = self.free_name(Some(new_name))?;
        record.name = format!("/{new_name}");
        self.write_record(&record)?;
        drop(lock);
        Ok(id)
    }

    /// A running container and its runtime, or the error docker gives for one that is not.
    fn running(&self, name: &str) -> Result<(ContainerId, Runtime)> {
        let container = self.get(self.resolve(name)?)?;
        if !container.running {
            return Err(Error::Container { container: name.to_owned(), reason: "is not running".into() });
        }
        Ok((container.id(), Runtime::find(&self.store, &container.host.runtime)?))
    }
}
