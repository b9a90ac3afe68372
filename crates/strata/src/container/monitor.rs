//! Who runs a container: the `strata run`/`start` process holds an exclusive `flock(2)` on
//! `<root>/strata/containers/<id>/monitor` for as long as the runtime runs the container. The
//! kernel drops it when that process dies, however it dies, so "the lock is held" is the
//! truth about a live monitor, and a record that says "running" without one is stale.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::id::ContainerId;
use super::record::{HostConfig, Record};
use super::runtime::Runtime;
use crate::error::{IoContext, Result};
use crate::fsutil::mkdir;
use crate::store::Store;

/// A held monitor lock.
#[derive(Debug)]
pub(crate) struct Monitor {
    _file: File,
}

fn path(store: &Store, id: ContainerId) -> PathBuf {
    super::private_dir(store, id).join("monitor")
}

/// Take the monitor lock of `id`, or `None` if another process holds it.
pub(crate) fn acquire(store: &Store, id: ContainerId) -> Result<Option<Monitor>> {
    let dir = super::private_dir(store, id);
    if let Some(parent) = dir.parent() {
        mkdir(parent, 0o700)?;
    }
    mkdir(&dir, 0o700)?;
    let path = path(store, id);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .ctx("open", &path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Monitor { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e).ctx("lock", &path),
    }
}

/// Whether a live process monitors `id`.
pub(crate) fn is_held(store: &Store, id: ContainerId) -> bool {
    let Ok(file) = File::open(path(store, id)) else { return false };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// Whether the container runs: its monitor is alive, or (the monitor was killed) the runtime
/// still runs it.
pub(crate) fn is_running(store: &Store, record: &Record, host: &HostConfig) -> bool {
    if is_held(store, record.id) {
        return true;
    }
    record.state.running
        && Runtime::find(store, &host.runtime).is_ok_and(|rt| rt.state(record.id).is_some_and(|s| s == "running"))
}

/// Whether a strata process ran `record` and died without recording its end: the record
/// says it runs, strata's monitor lock is there but free, and the process the record names
/// is gone. (A container dockerd runs has no monitor lock, and its process lives.)
pub(crate) fn died_running(store: &Store, record: &Record) -> bool {
    record.state.running && path(store, record.id).exists() && !is_held(store, record.id) && !alive(record.state.pid)
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    pid > 0 && stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

/// Wait up to `timeout` for the monitor of `id` to let go.
pub(crate) fn wait_released(store: &Store, id: ContainerId, timeout: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while is_held(store, id) {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// Block until no process monitors `id` (at once if none does).
pub(crate) fn wait_for(store: &Store, id: ContainerId) -> Result<()> {
    let path = path(store, id);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx("open", &path),
    };
    file.lock_shared().ctx("lock", &path)
}
