//! Mount reference counts, kept on disk so that they hold across processes: mounting a layer
//! twice gives one kernel mount, and only the last unmount removes it.
//!
//! `<root>/strata/mounts/<id>` holds the count in decimal. The kernel's mount table is the
//! truth: a count for a layer that is not mounted is stale (a crash between the two), and a
//! mount with no count (made by dockerd, say) counts as one reference, as dockerd counts it.
//! Callers hold the store lock.

use std::path::PathBuf;

use crate::error::IoContext;
use crate::error::Result;
use crate::fsutil::{read_optional, remove_if_exists};
use crate::id::LayerId;
use crate::store::Store;

/// The recorded count for `id`: 0 when there is no record, or it is unreadable.
pub(crate) fn get(store: &Store, id: &LayerId) -> Result<u32> {
    Ok(read_optional(&path(store, id))?.and_then(|s| s.trim().parse().ok()).unwrap_or(0))
}

/// Record `count` for `id` (0 removes the record). Written in place: a count torn by a crash
/// reads as 0 and is reconciled with the mount table like any other stale count.
pub(crate) fn set(store: &Store, id: &LayerId, count: u32) -> Result<()> {
    let path = path(store, id);
    if count == 0 { remove_if_exists(&path) } else { std::fs::write(&path, count.to_string()).ctx("write", &path) }
}

/// Every layer with a record, and its count.
pub(crate) fn all(store: &Store) -> Result<Vec<(String, u32)>> {
    let dir = store.mounts_dir();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(out) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let count = read_optional(&entry.path())?.and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        out.push((name, count));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn path(store: &Store, id: &LayerId) -> PathBuf {
    store.mounts_dir().join(id.as_str())
}
