//! Work aside: a layer is built (or taken apart) in `<root>/overlay2/.strata-tmp/<n>/` and
//! published or discarded with one `rename(2)`, so no reader ever sees half a layer. Scratch
//! directories live one level down so that making and deleting them leaves `overlay2/` itself
//! unchanged: its stamp then changes only when a layer comes or goes (see `index`). Earlier
//! versions used `overlay2/.strata-tmp-<n>/`; those are still swept.
//!
//! Each operation in flight has a record `<root>/strata/tmp/<n>_<what>` that its process holds
//! `flock`ed and whose name says what it is doing (`create_<id>_<link>`, `remove_<id>_<link>`,
//! `image_add`); an image operation appends its steps to the record's content. A record whose
//! lock can be taken belongs to a dead process: [`sweep`] then removes its scratch directory
//! and the `l/` link it may have left dangling.
//!
//! The description lives in the name so that a layer's create or remove writes no data block
//! for its record: an empty file costs an inode, and on a filesystem mounted with `discard`
//! freeing a block is a synchronous trim.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

use crate::error::{IoContext, Result};
use crate::fsutil::remove_if_exists;
use crate::id::{hex, random_bytes};
use crate::store::Store;

/// Prefix of the scratch directories of earlier versions in `<root>/overlay2/`.
pub(crate) const OLD_SCRATCH_PREFIX: &str = ".strata-tmp-";

/// An operation in flight and its scratch directory.
#[derive(Debug)]
pub(crate) struct Scratch {
    name: String,
    dir: PathBuf,
    record: PathBuf,
    file: File,
    finished: bool,
    /// Removes the entries a scratch directory of this kind holds, before a generic removal.
    take_apart: Option<fn(&Path)>,
}

impl Scratch {
    /// Start an operation described by `what`: one line of words (`create <id> <link>`, …).
    pub(crate) fn new(store: &Store, what: &str) -> Result<Scratch> {
        let name = hex(&random_bytes::<8>());
        let tmp = store.tmp_dir();
        let record = tmp.join(record_name(&name, what));
        // The record must never be seen unlocked, or a sweeping process would take it for an
        // abandoned one: make it as an unnamed file, lock it, then give it its name.
        let fd = rustix::fs::open(&tmp, OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC, Mode::from(0o600))
            .ctx("create a temporary file in", &tmp)?;
        let file = File::from(fd);
        file.lock().ctx("lock", &record)?;
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, proc_path.as_str(), CWD, &record, AtFlags::SYMLINK_FOLLOW).ctx("link", &record)?;
        let dir = scratch_dir(store, &name);
        Ok(Scratch { name, dir, record, file, finished: false, take_apart: None })
    }

    /// Take the scratch directory apart with `take_apart` (which knows the names it holds)
    /// before falling back to a walk of what is left.
    pub(crate) fn taken_apart_by(mut self, take_apart: fn(&Path)) -> Scratch {
        self.take_apart = Some(take_apart);
        self
    }

    /// The scratch directory (not created: the caller makes it, or renames something to it).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The operation's name: unique among those in flight.
    pub(crate) fn name(&self) -> String {
        self.name.clone()
    }

    /// Say that this operation now does `what` instead (its record is renamed, still locked).
    pub(crate) fn describe(&mut self, what: &str) -> Result<()> {
        let record = self.record.with_file_name(record_name(&self.name, what));
        std::fs::rename(&self.record, &record).ctx("rename", &self.record)?;
        self.record = record;
        Ok(())
    }

    /// Add a line to what this operation says it is doing: one `write(2)`, so a kill leaves
    /// the line whole or absent.
    pub(crate) fn append(&mut self, line: &str) -> Result<()> {
        let len = self.file.metadata().ctx("stat", &self.record)?.len();
        self.file.write_all_at(format!("\n{line}").as_bytes(), len).ctx("write", &self.record)
    }

    /// The operation is over: remove what is left of the scratch directory, then the record.
    pub(crate) fn finish(mut self) -> Result<()> {
        remove_scratch(&self.dir, self.take_apart)?;
        remove_if_exists(&self.record)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // An operation that failed with an error cleans up after itself; `finish` has already
        // done this on success, and a killed process leaves it to `sweep`.
        if !self.finished {
            let _ = remove_scratch(&self.dir, self.take_apart);
            let _ = remove_if_exists(&self.record);
        }
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
        let Some((_, first)) = split_record_name(&record) else { continue };
        let Ok(file) = File::open(&record) else { continue };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(e).ctx("lock", &record),
        }
        let what = first + &std::fs::read_to_string(&record).unwrap_or_default();
        found.push(Abandoned { record, what });
    }
    found.sort_by(|a, b| a.record.cmp(&b.record));
    Ok(found)
}

/// The scratch directory of the operation named `name`.
pub(crate) fn scratch_dir(store: &Store, name: &str) -> PathBuf {
    store.scratch_root().join(name)
}

/// Remove the scratch directory of the operation named `name`, wherever its version put it.
pub(crate) fn remove_scratch_of(store: &Store, name: &str) -> Result<()> {
    remove_scratch(&scratch_dir(store, name), None)?;
    remove_scratch(&store.home().join(format!("{OLD_SCRATCH_PREFIX}{name}")), None)
}

/// Scratch directories that no record accounts for.
pub(crate) fn orphan_dirs(store: &Store) -> Result<Vec<PathBuf>> {
    let home = store.home();
    let mut found = Vec::new();
    let in_flight: std::collections::HashSet<String> = std::fs::read_dir(store.tmp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| split_record_name(&e.path()).map(|(name, _)| name))
        .collect();
    for (dir, prefix) in [(store.scratch_root(), ""), (home.to_owned(), OLD_SCRATCH_PREFIX)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let entry = entry.ctx("read directory", &dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix(prefix)
                && (prefix.is_empty() || name != crate::store::SCRATCH_DIR)
                && !in_flight.contains(n)
            {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// `<n>_<what, words joined by _>`: a record's file name.
fn record_name(name: &str, what: &str) -> String {
    debug_assert!(!what.contains(['_', '\n', '/']), "a record's description is one line of words: {what:?}");
    format!("{name}_{}", what.replace(' ', "_"))
}

/// A record's name and the first line of its description, from its file name; `None` for a
/// file that is not a record (16 hex digits, then `_` and words).
pub(crate) fn split_record_name(record: &Path) -> Option<(String, String)> {
    let file_name = record.file_name()?.to_str()?;
    // Records of earlier versions are named `<n>` and say everything in their content.
    let (name, what) = file_name.split_once('_').unwrap_or((file_name, ""));
    (name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (name.to_owned(), what.replace('_', " ")))
}

/// Remove a scratch directory. What it holds is usually a layer whose `diff/` is empty, or
/// nothing (it was published): with `take_apart` (the layer's, which knows its entries) they
/// go with one `unlinkat` or `rmdir` each, and only what is left after that (a `diff/` with
/// files, anything else) takes the walk of [`remove_tree`], which opens and lists every
/// directory.
pub(crate) fn remove_scratch(dir: &Path, take_apart: Option<fn(&Path)>) -> Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {
            if let Some(take_apart) = take_apart {
                take_apart(dir);
            }
            if std::fs::remove_dir(dir).is_ok() { Ok(()) } else { remove_tree(dir) }
        }
        Err(_) => remove_tree(dir),
    }
}

/// `rm -rf`, where "not found" is success.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{LayerId, ShortLink};

    use crate::store::test_store as store;

    /// What a process killed during a layer create leaves: its record, its scratch directory and
    /// a dangling `l/` link.
    fn abandon(store: &Store, record_name: &str, content: &str, link: &ShortLink) {
        std::fs::write(store.tmp_dir().join(record_name), content).unwrap();
        let n = &record_name[..16];
        std::fs::create_dir_all(scratch_dir(store, n).join("diff")).unwrap();
        std::os::unix::fs::symlink(format!("../{}/diff", LayerId::random()), store.link_dir().join(link.as_str()))
            .unwrap();
    }

    #[test]
    fn a_record_says_what_it_does_in_its_name_and_a_dead_ones_work_is_undone() {
        let (_tmp, store) = store();
        let link = ShortLink::random();
        let id = LayerId::random();
        abandon(&store, &format!("0123456789abcdef_create_{id}_{link}"), "", &link);
        let found = abandoned(&store).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].what, format!("create {id} {link}"));

        drop(store.write_lock().unwrap());
        assert!(std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none(), "the record is gone");
        assert!(store.link_dir().join(link.as_str()).symlink_metadata().is_err(), "the dangling link is gone");
        assert!(orphan_dirs(&store).unwrap().is_empty() && !scratch_dir(&store, "0123456789abcdef").exists());
    }

    #[test]
    fn a_record_of_an_earlier_version_says_it_in_its_content_and_is_undone_too() {
        let (_tmp, store) = store();
        let link = ShortLink::random();
        abandon(&store, "fedcba9876543210", &format!("create {} {link}", LayerId::random()), &link);
        drop(store.write_lock().unwrap());
        assert!(std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none());
        assert!(store.link_dir().join(link.as_str()).symlink_metadata().is_err());
        assert!(!scratch_dir(&store, "fedcba9876543210").exists());
    }

    #[test]
    fn a_live_record_is_left_alone_and_its_description_can_change() {
        let (_tmp, store) = store();
        let mut op = Scratch::new(&store, "create a b").unwrap();
        assert!(abandoned(&store).unwrap().is_empty(), "its owner holds the lock");
        op.describe("create a c").unwrap();
        let names: Vec<_> = std::fs::read_dir(store.tmp_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from(format!("{}_create_a_c", op.name()))]);
        assert_eq!(std::fs::metadata(store.tmp_dir().join(&names[0])).unwrap().len(), 0, "no data block");
        op.finish().unwrap();
        assert!(std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none());
    }
}
