//! Mount reference counts, kept on disk so that they hold across processes: mounting a layer
//! twice gives one kernel mount, and only the last unmount removes it.
//!
//! `<root>/strata/mounts/<id>` holds the count in decimal, or nothing for one reference (the
//! common case, which then writes no data block). The kernel's mount table is the
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
    Ok(read_optional(&path(store, id))?.map_or(0, |s| parse(&s)))
}

/// A record's count: empty is one reference, anything else a decimal count (0 if unreadable).
fn parse(content: &str) -> u32 {
    match content.trim() {
        "" => 1,
        count => count.parse().unwrap_or(0),
    }
}

/// Record `count` for `id` (0 removes the record). Written in place: a count torn by a crash
/// reads as one reference (or 0), and is reconciled with the mount table like any other.
pub(crate) fn set(store: &Store, id: &LayerId, count: u32) -> Result<()> {
    let path = path(store, id);
    match count {
        0 => remove_if_exists(&path),
        n => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let text = if n == 1 { String::new() } else { n.to_string() };
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .ctx("write", &path)
        }
    }
}

/// Every layer with a record, and its count.
pub(crate) fn all(store: &Store) -> Result<Vec<(String, u32)>> {
    let dir = store.mounts_dir();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(out) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let count = read_optional(&entry.path())?.map_or(0, |s| parse(&s));
        out.push((name, count));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn path(store: &Store, id: &LayerId) -> PathBuf {
    store.mounts_dir().join(id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reference_is_an_empty_record_and_more_are_counted_in_decimal() {
        let (_tmp, store) = crate::store::test_store();
        let id = LayerId::random();
        assert_eq!(get(&store, &id).unwrap(), 0);
        for (count, content) in [(1, Some("")), (3, Some("3")), (1, Some("")), (0, None)] {
            set(&store, &id, count).unwrap();
            assert_eq!(get(&store, &id).unwrap(), count);
            assert_eq!(std::fs::read_to_string(path(&store, &id)).ok().as_deref(), content);
        }
        // A record written by an earlier version, and one torn by a crash.
        for (content, count) in [("1", 1), ("2\n", 2), ("x", 0)] {
            std::fs::write(path(&store, &id), content).unwrap();
            assert_eq!(get(&store, &id).unwrap(), count);
        }
    }
}
