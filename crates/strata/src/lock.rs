//! The store lock: one `flock(2)` on `<root>/strata/lock` that serialises every change to the
//! store across processes. Work that takes time (building a layer) happens aside, outside the
//! lock; the lock is held only to check and publish.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{IoContext, Result};

/// A held store lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Block until this process holds the lock alone.
    pub(crate) fn exclusive(path: &Path) -> Result<Self> {
        let file = open(path)?;
        file.lock().ctx("lock", path)?;
        Ok(StoreLock { _file: file })
    }

    /// Block until no writer holds the lock; readers share it.
    pub(crate) fn shared(path: &Path) -> Result<Self> {
        let file = open(path)?;
        file.lock_shared().ctx("lock", path)?;
        Ok(StoreLock { _file: file })
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).ctx("open", path)
}
