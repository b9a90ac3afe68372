//! The journals of container operations (see `txn`): a create lists `layer` steps (its
//! `-init` and writable layers) and then `container <id>` (its records); an rm lists
//! `container <id>`, its layers, and the image stacks that go with it; `volume <name>` is a
//! volume a create made (removed on undo) or one `rm -v` removes. The image steps are
//! carried out as an image operation's are; `container` removes the container's records.

use super::id::ContainerId;
use crate::error::Result;
use crate::lock::StoreLock;
use crate::store::Store;
use crate::txn::{Journaled, Recovery};

/// A container's create.
pub(crate) const ADD: &str = "container add";
/// A container's rm.
pub(crate) const REMOVE: &str = "container remove";

/// How the journal of a container operation is carried out.
pub(crate) const RECOVERY: Recovery = Recovery { prefix: "container ", recover };

/// The journal line for a container's records.
pub(crate) fn line(id: ContainerId) -> String {
    format!("container {id}")
}

/// The journal line for a volume a create made or an `rm -v` removes.
pub(crate) fn volume_line(name: &str) -> String {
    format!("volume {name}")
}

/// Undo (a create) or finish (an rm) the steps of a dead container operation.
fn recover(store: &Store, lock: &StoreLock, journal: &Journaled<'_>) -> Result<()> {
    let undo = journal.is_add();
    let ordered: Vec<&&str> = if undo { journal.steps.iter().rev().collect() } else { journal.steps.iter().collect() };
    for line in ordered {
        if let Some(name) = line.strip_prefix("volume ") {
            let volumes = crate::volume::VolumeStore::new(store);
            if volumes.exists(name) {
                volumes.remove_locked(lock, name)?;
            }
            continue;
        }
        match line.strip_prefix("container ").and_then(|id| id.parse::<ContainerId>().ok()) {
            Some(id) => super::remove_records(store, id, journal.work)?,
            None => drop(crate::image::journal::take(store, lock, line, undo, journal)?),
        }
    }
    crate::image::journal::drop_write_sets(store, journal.name)
}
