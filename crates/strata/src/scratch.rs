//! Work aside: a layer is built (or taken apart) in `<root>/overlay2/.strata-tmp-<n>/` and
//! published or discarded with one `rename(2)`, so no reader ever sees half a layer.
//!
//! Each operation in flight has a record `<root>/strata/tmp/<n>` that its process holds
//! `flock`ed and that says what it is doing (`create <id> <link>` or `remove <id> <link>`). A
//! record whose lock can be taken belongs to a dead process: [`sweep`] then removes its scratch
//! directory and the `l/` link it may have left dangling.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

use crate::error::{IoContext, Result};
use crate::fsutil::remove_if_exists;
use crate::id::{ShortLink, hex, random_bytes};
use crate::store::Store;

/// Prefix of scratch directories in `<root>/overlay2/`.
pub(crate) const SCRATCH_PREFIX: &str = ".strata-tmp-";

/// An operation in flight and its scratch directory.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    record: PathBuf,
    file: File,
}

impl Scratch {
    /// Start an operation described by `what` (`create <id> <link>`, …).
    pub(crate) fn new(store: &Store, what: &str) -> Result<Scratch> {
        let name = hex(&random_bytes::<8>());
        let record = store.tmp_dir().join(&name);
        // The record must never be seen unlocked, or a sweeping process would take it for an
        // abandoned one: make it as an unnamed file, lock and fill it, then give it its name.
        let tmp = store.tmp_dir();
        let fd = rustix::fs::open(&tmp, OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC, Mode::from(0o600))
            .ctx("create a temporary file in", &tmp)?;
        let file = File::from(fd);
        file.lock().ctx("lock", &record)?;
        let mut scratch = Scratch { dir: store.home().join(format!("{SCRATCH_PREFIX}{name}")), record, file };
        scratch.describe(what)?;
        let proc_path = format!("/proc/self/fd/{}", scratch.file.as_raw_fd());
        rustix::fs::linkat(CWD, proc_path.as_str(), CWD, &scratch.record, AtFlags::SYMLINK_FOLLOW)
            .ctx("link", &scratch.record)?;
        Ok(scratch)
    }

    /// The scratch directory (not created: the caller makes it, or renames something to it).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The operation's name: unique among those in flight.
    pub(crate) fn name(&self) -> String {
        self.record.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Rewrite what this operation says it is doing.
    pub(crate) fn describe(&mut self, what: &str) -> Result<()> {
        self.file.set_len(0).ctx("truncate", &self.record)?;
        self.file.write_all_at(what.as_bytes(), 0).ctx("write", &self.record)
    }

    /// Add a line to what this operation says it is doing: one `write(2)`, so a kill leaves
    /// the line whole or absent.
    pub(crate) fn append(&mut self, line: &str) -> Result<()> {
        let len = self.file.metadata().ctx("stat", &self.record)?.len();
        self.file.write_all_at(format!("\n{line}").as_bytes(), len).ctx("write", &self.record)
    }

    /// The operation is over: remove what is left of the scratch directory, then the record.
    pub(crate) fn finish(self) -> Result<()> {
        remove_tree(&self.dir)?;
        remove_if_exists(&self.record)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // An operation that failed with an error cleans up after itself; `finish` has already
        // done this on success, and a killed process leaves it to `sweep`.
        let _ = remove_tree(&self.dir);
        let _ = remove_if_exists(&self.record);
    }
}

/// An operation whose process died before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Its record under `<root>/strata/tmp/`.
    pub record: PathBuf,
    /// What it was doing.
    pub what: String,
}

/// Operations in flight whose owners are dead (their record's lock is free). Changes nothing.
pub(crate) fn abandoned(store: &Store) -> Result<Vec<Abandoned>> {
    let tmp = store.tmp_dir();
    let entries = match std::fs::read_dir(&tmp) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read directory", &tmp),
    };
    let mut found = Vec::new();
    for entry in entries {
        let record = entry.ctx("read directory", &tmp)?.path();
        let Ok(file) = File::open(&record) else { continue };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(e).ctx("lock", &record),
        }
        let what = std::fs::read_to_string(&record).unwrap_or_default();
        found.push(Abandoned { record, what });
    }
    found.sort_by(|a, b| a.record.cmp(&b.record));
    Ok(found)
}

/// Clean up after every abandoned operation. Call with the store lock held.
pub(crate) fn sweep(store: &Store, lock: &crate::lock::StoreLock) -> Result<Vec<Abandoned>> {
    let found = abandoned(store)?;
    for op in &found {
        clean(store, lock, op)?;
    }
    Ok(found)
}

fn clean(store: &Store, lock: &crate::lock::StoreLock, op: &Abandoned) -> Result<()> {
    if op.what.starts_with(crate::image::journal::PREFIX) {
        let name = op.record.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::image::journal::recover(store, lock, &name, &op.what)?;
    }
    // A create or remove may have left `l/<link>` pointing at a layer that is not there.
    if let Some(link) = op.what.split_whitespace().nth(2).and_then(|l| l.parse::<ShortLink>().ok()) {
        let path = store.link_dir().join(link.as_str());
        if path.symlink_metadata().is_ok() && !path.exists() {
            remove_if_exists(&path)?;
        }
    }
    if let Some(name) = op.record.file_name() {
        remove_tree(&store.home().join(format!("{SCRATCH_PREFIX}{}", name.to_string_lossy())))?;
    }
    tracing::info!(what = %op.what, "cleaned up an operation abandoned by a dead process");
    remove_if_exists(&op.record)
}

/// Scratch directories that no record accounts for.
pub(crate) fn orphan_dirs(store: &Store) -> Result<Vec<PathBuf>> {
    let home = store.home();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(home) else { return Ok(found) };
    for entry in entries {
        let entry = entry.ctx("read directory", home)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix(SCRATCH_PREFIX)
            && !store.tmp_dir().join(n).exists()
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// `rm -rf`, where "not found" is success.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}
