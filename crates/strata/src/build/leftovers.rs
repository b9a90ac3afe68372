//! The step containers of a build whose process died (SIGKILL, a power cut): each build keeps
//! a flocked list of the containers it names, `strata/builds/<name>`, before it makes them;
//! the next build finds the lists no live process holds and removes what they name (killing a
//! RUN that still runs), as `rm -f` would.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::container::ContainerStore;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// The list of one build's step containers, held (flocked) while the build runs.
pub(super) struct StepList {
    file: std::fs::File,
    path: PathBuf,
    prefix: String,
    count: usize,
}

fn dir(store: &Store) -> PathBuf {
    store.private_dir().join("builds")
}

impl StepList {
    /// Start the list of a new build.
    pub fn begin(store: &Store) -> Result<StepList> {
        let dir = dir(store);
        crate::fsutil::mkdir(&dir, 0o700)?;
        let token = crate::id::LayerId::random();
        let prefix = format!("strata-build-{}", &token.as_str()[..12]);
        let path = dir.join(&prefix);
        let file = std::fs::File::options().create_new(true).append(true).open(&path).ctx("create", &path)?;
        rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).ctx("flock", &path)?;
        Ok(StepList { file, path, prefix, count: 0 })
    }

    /// The name of the next step container, listed before it is made.
    pub fn next_name(&mut self) -> Result<String> {
        self.count += 1;
        let name = format!("{}-{}", self.prefix, self.count);
        writeln!(self.file, "{name}").ctx("write", &self.path)?;
        Ok(name)
    }
}

impl Drop for StepList {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Remove the step containers of builds that died; returns their names.
pub(super) fn clean(store: &Store, containers: &ContainerStore) -> Result<Vec<String>> {
    let dir = dir(store);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    for entry in entries {
        let path = entry.ctx("read", &dir)?.path();
        let Ok(file) = std::fs::File::open(&path) else { continue };
        if rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live build holds it
        }
        removed.extend(remove_listed(containers, &path)?);
        std::fs::remove_file(&path).ctx("remove", &path)?;
    }
    Ok(removed)
}

fn remove_listed(containers: &ContainerStore, list: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(list).ctx("read", list)?;
    let mut removed = Vec::new();
    for name in text.lines().filter(|l| !l.is_empty()) {
        match containers.remove_with(name, true, true) {
            Ok(_) => removed.push(name.to_owned()),
            Err(Error::ContainerNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
