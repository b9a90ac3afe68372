//! Indexes: caches of what the entries of one store directory hold (a layer's parent link, a
//! stack's cache-id, a container's name), so that a question about one entry (which layers
//! stand on this one? is this name taken?) does not open every entry of a large store.
//!
//! An index is a file `strata/index/<name>`, a log of lines:
//!
//! ```text
//! strata-index 1
//! +<entry> <stamp> <value>    an entry (a later line for the same entry replaces it)
//! -<entry>                    an entry gone
//! @ <stamp>                   the directory's stamp when every line above was true
//! ```
//!
//! It is only a cache. The watched directory's stamp (inode, mtime and ctime, in nanoseconds)
//! tells whether anything was added or removed since the index last saw it; entries are
//! stamped by their inode (entries that never change once made) or by the inode, mtime and
//! size of a file inside them (entries rewritten in place, like a container's record). A
//! directory changed behind strata's back (dockerd, a hand edit, a killed command) is healed
//! entry by entry: only new or changed entries are read again. A missing, torn or unreadable
//! index is rebuilt; a failure to save one is logged and ignored.
//!
//! strata's own writers keep the log current with [`Change`]: under the store lock, they take
//! the directory's stamp before the change and append the entry and the new stamp after it,
//! only if the log was current before. What another tool changes in the same directory in
//! the microseconds between those two steps is not seen until the directory changes again:
//! dockerd and strata are not meant to write one store at the same moment (dockerd keeps its
//! state in memory). Kernels with multigrain timestamps (6.13 and later) give every change
//! after a stamp was read a later mtime; on older kernels a change in the same clock tick as
//! a stamp's read can go unseen the same way.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirEntryExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::store::Store;

const HEADER: &str = "strata-index 1\n";

/// Changes appended to a log before a load writes it anew (`find` leaves that to `load`).
const MAX_APPENDED: usize = 128;

/// The stamp of an entry whose stamp file is missing: it is read (and may be an error) each time.
const MISSING: &str = "missing";

/// A kind of index: which directory it watches and how its entries are stamped.
pub(crate) struct Kind {
    /// The index's file name under `strata/index/`.
    pub name: &'static str,
    /// The watched directory of a store.
    pub dir: fn(&Store) -> PathBuf,
    /// `Some(file)`: entries change in place, and `<entry>/<file>`'s inode, mtime and size
    /// stamp them; `None`: entries never change once made, and their inode stamps them.
    pub stamp_file: Option<&'static str>,
    /// Whether a directory entry's name is an entry (others, such as `overlay2/l`, are not).
    pub accept: fn(&str) -> bool,
}

/// The entries of one directory and their values, current when loaded.
#[derive(Debug, Default)]
pub(crate) struct Index {
    entries: HashMap<String, (String, Option<String>)>,
}

impl Index {
    /// The current entries of `kind`'s directory in `store`, read through the index: `read`
    /// gives the value of an entry that is new or changed (`None`: not an entry, skipped). An
    /// error of `read` is returned, never taken for "no entry".
    pub(crate) fn load(
        store: &Store,
        kind: &Kind,
        mut read: impl FnMut(&str) -> Result<Option<String>>,
    ) -> Result<Index> {
        let dir = (kind.dir)(store);
        let Some(now) = dir_stamp(&dir)? else { return Ok(Index::default()) };
        tracing::trace!(index = kind.name, "loading");
        let file = path(store, kind);
        let log = Log::read(&file);
        let mut index = Index { entries: log.entries };
        let mut changed = false;
        let stamps = match kind.stamp_file {
            Some(f) => Some(EntryStamps::open(&dir, f)?),
            None => None,
        };
        if log.stamp.as_deref() != Some(now.as_str()) {
            // Something was added or removed: list the directory, read what is new.
            let listing = std::fs::read_dir(&dir).ctx("read directory", &dir)?;
            let mut seen = HashMap::with_capacity(index.entries.len());
            for entry in listing {
                let entry = entry.ctx("read directory", &dir)?;
                let Some(name) = entry.file_name().to_str().filter(|n| (kind.accept)(n) && plain(n)).map(str::to_owned)
                else {
                    continue;
                };
                let stamp = match &stamps {
                    None => entry.ino().to_string(),
                    Some(stamps) => stamps.of(&name)?,
                };
                seen.insert(name, stamp);
            }
            changed |= index.entries.len() != seen.len() || index.entries.keys().any(|k| !seen.contains_key(k));
            index.entries.retain(|k, _| seen.contains_key(k));
            for (name, stamp) in seen {
                changed |= index.refresh(name, stamp, &mut read)?;
            }
        } else if let Some(stamps) = &stamps {
            // The same entries: see whether any changed in place.
            for (name, stamp) in stamps.changed(&index.entries)? {
                changed |= index.refresh(name, stamp, &mut read)?;
            }
        }
        let stale = changed || log.stamp.as_deref() != Some(now.as_str());
        let long = log.lines > index.entries.len() + index.entries.len() / 4 + 64 || log.stamps > MAX_APPENDED;
        if (stale || long)
            && let Err(e) = index.save(store, &file, &now)
        {
            tracing::debug!("could not save the index {}: {e}", file.display());
        }
        tracing::trace!(index = kind.name, entries = index.entries.len(), changed, "loaded");
        Ok(index)
    }

    /// The few entries whose value `matches`, and their values, as [`load`](Self::load) would
    /// give them; for an index of entries that never change, whose log is current, by one pass
    /// over its lines that keeps only the matches (for every entry, [`scan`](Self::scan)).
    pub(crate) fn find(
        store: &Store,
        kind: &Kind,
        read: impl FnMut(&str) -> Result<Option<String>>,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>> {
        if let Some(text) = current_log(store, kind)? {
            let mut found: Vec<(&str, &str)> = Vec::new();
            for line in text[HEADER.len()..].lines() {
                let (name, value) = match (line.strip_prefix('-'), line.strip_prefix('+')) {
                    (Some(name), _) => (name, None),
                    (_, Some(rest)) => {
                        let mut parts = rest.splitn(3, ' ');
                        (parts.next().unwrap_or_default(), parts.nth(1).filter(|v| matches(v)))
                    }
                    _ => continue,
                };
                if !found.is_empty() {
                    found.retain(|f| f.0 != name);
                }
                if let Some(value) = value {
                    found.push((name, value));
                }
            }
            return Ok(found.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect());
        }
        let index = Index::load(store, kind, read)?;
        Ok(index.iter().filter(|(_, v)| matches(v)).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// Every entry and its value, as [`load`](Self::load) would give them, handed to `each`
    /// in no order. For an index of entries that never change, whose log is current, this is
    /// one pass over its lines from the end (the last line of an entry is its state), with no
    /// copy of any entry.
    pub(crate) fn scan(
        store: &Store,
        kind: &Kind,
        read: impl FnMut(&str) -> Result<Option<String>>,
        mut each: impl FnMut(&str, &str),
    ) -> Result<()> {
        if let Some(text) = current_log(store, kind)? {
            let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
            for line in text[HEADER.len()..].lines().rev() {
                if let Some(name) = line.strip_prefix('-') {
                    seen.insert(name);
                } else if let Some(rest) = line.strip_prefix('+') {
                    let mut parts = rest.splitn(3, ' ');
                    let (name, _, value) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
                    if seen.insert(name)
                        && let Some(value) = value
                    {
                        each(name, value);
                    }
                }
            }
            return Ok(());
        }
        let index = Index::load(store, kind, read)?;
        for (name, value) in index.iter() {
            each(name, value);
        }
        Ok(())
    }

    /// Read `name` again unless its stamp is the one known; whether anything changed.
    fn refresh(
        &mut self,
        name: String,
        stamp: String,
        read: &mut impl FnMut(&str) -> Result<Option<String>>,
    ) -> Result<bool> {
        if stamp != MISSING && self.entries.get(&name).is_some_and(|(s, _)| *s == stamp) {
            return Ok(false);
        }
        // An entry that is not one (yet) is kept without a value, so that it is looked at again
        // when its stamp changes.
        let value = read(&name)?;
        debug_assert!(!value.as_ref().is_some_and(|v| v.contains('\n')));
        self.entries.insert(name, (stamp, value));
        Ok(true)
    }

    /// Write the whole index aside and rename it into place.
    fn save(&self, store: &Store, file: &Path, stamp: &str) -> Result<()> {
        if !store.private_dir().is_dir() {
            return Ok(()); // not a store strata has written: leave it as it is
        }
        crate::fsutil::mkdir(file.parent().expect("in strata/index"), 0o700)?;
        let mut text = String::with_capacity(HEADER.len() + self.entries.len() * 112);
        text.push_str(HEADER);
        for (name, (entry_stamp, value)) in &self.entries {
            match value {
                Some(value) => text.push_str(&format!("+{name} {entry_stamp} {value}\n")),
                None => text.push_str(&format!("+{name} {entry_stamp}\n")),
            }
        }
        text.push_str(&format!("@ {stamp}\n"));
        crate::fsutil::replace(file, text.as_bytes(), 0o600)
    }

    /// Every entry and its value, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter_map(|(k, (_, v))| Some((k.as_str(), v.as_deref()?)))
    }
}

/// One change by strata to a watched directory, recorded in its index: begun before the
/// change, so that the index is only marked current if it was current before.
pub(crate) struct Change {
    file: PathBuf,
    dir: PathBuf,
    stamp_file: Option<&'static str>,
    current: bool,
}

impl Change {
    /// Note the directory's stamp before changing it (call with the store's write lock held).
    pub(crate) fn begin(store: &Store, kind: &Kind) -> Change {
        let dir = (kind.dir)(store);
        let file = path(store, kind);
        let current = match (dir_stamp(&dir), last_stamp(&file)) {
            (Ok(Some(now)), Some(recorded)) => now == recorded,
            _ => false,
        };
        Change { file, dir, stamp_file: kind.stamp_file, current }
    }

    /// `name` was added (or rewritten) and holds `value`.
    pub(crate) fn added(self, name: &str, value: &str) {
        let stamp = match self.stamp_file {
            None => std::fs::symlink_metadata(self.dir.join(name)).ok().map(|m| m.ino().to_string()),
            Some(f) => EntryStamps::open(&self.dir, f).and_then(|s| s.of(name)).ok().filter(|s| s != MISSING),
        };
        match stamp {
            Some(stamp) => self.append(&format!("+{name} {stamp} {value}\n")),
            None => self.append(""), // not marked current: the next load reads the directory
        }
    }

    /// `name` was removed.
    pub(crate) fn removed(self, name: &str) {
        self.append(&format!("-{name}\n"));
    }

    fn append(self, line: &str) {
        if !self.current || line.is_empty() {
            return;
        }
        let Ok(Some(stamp)) = dir_stamp(&self.dir) else { return };
        let result = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.file)
            .and_then(|mut f| f.write_all(format!("{line}@ {stamp}\n").as_bytes()));
        if let Err(e) = result {
            tracing::debug!("could not append to the index {}: {e}", self.file.display());
        }
    }
}

/// The log of an index of entries that never change, if it is current and short enough to
/// be read as it is (else [`Index::load`] reads the directory, or writes the log anew).
fn current_log(store: &Store, kind: &Kind) -> Result<Option<String>> {
    if kind.stamp_file.is_some() {
        return Ok(None);
    }
    let Some(now) = dir_stamp(&(kind.dir)(store))? else { return Ok(None) };
    let Ok(text) = std::fs::read_to_string(path(store, kind)) else { return Ok(None) };
    let current = text.starts_with(HEADER)
        && text.ends_with(&format!("@ {now}\n"))
        && memchr::memmem::find_iter(text.as_bytes(), b"\n@ ").count() <= MAX_APPENDED;
    Ok(current.then_some(text))
}

/// `strata/index/<name>` of a store.
fn path(store: &Store, kind: &Kind) -> PathBuf {
    store.private_dir().join("index").join(kind.name)
}

/// Whether a name can stand in a line of the log.
pub(crate) fn plain(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b.is_ascii_whitespace() || b == b'@')
}

/// A directory's stamp: inode, mtime and ctime in nanoseconds; `None` if it does not exist.
fn dir_stamp(dir: &Path) -> Result<Option<String>> {
    match std::fs::metadata(dir) {
        Ok(m) => Ok(Some(format!("{}.{}.{}.{}.{}", m.ino(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("stat", dir),
    }
}

/// The stamps of `<entry>/<file>` in one directory, looked up from the directory's descriptor
/// (two path components a stamp, not the whole path from `/`).
struct EntryStamps {
    dir: PathBuf,
    fd: rustix::fd::OwnedFd,
    file: &'static str,
}

/// Entries a thread checks before a second one helps (a `statx` costs 1-3 µs).
const PER_THREAD: usize = 256;

impl EntryStamps {
    fn open(dir: &Path, file: &'static str) -> Result<EntryStamps> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(std::io::Error::from)
            .ctx("open", dir)?;
        Ok(EntryStamps { dir: dir.to_owned(), fd, file })
    }

    /// The stamp of `<entry>/<file>`, or [`MISSING`].
    fn of(&self, entry: &str) -> Result<String> {
        let mut stamp = String::new();
        self.write(entry, &mut String::new(), &mut stamp)?;
        Ok(stamp)
    }

    /// Put the stamp of `<entry>/<file>` in `stamp`, building its path in `path`.
    fn write(&self, entry: &str, path: &mut String, stamp: &mut String) -> Result<()> {
        use rustix::fs::{AtFlags, StatxFlags};
        use std::fmt::Write;
        path.clear();
        path.push_str(entry);
        path.push('/');
        path.push_str(self.file);
        stamp.clear();
        let mask = StatxFlags::INO | StatxFlags::MTIME | StatxFlags::SIZE;
        match rustix::fs::statx(&self.fd, path.as_str(), AtFlags::SYMLINK_NOFOLLOW, mask) {
            Ok(x) => {
                let _ = write!(stamp, "{}.{}.{}.{}", x.stx_ino, x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec, x.stx_size);
            }
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => stamp.push_str(MISSING),
            Err(e) => return Err(std::io::Error::from(e)).ctx("stat", self.dir.join(path.as_str())),
        }
        Ok(())
    }

    /// The entries whose stamp is not the one known, and their new stamps; both cores share
    /// the work in a large directory.
    fn changed(&self, entries: &HashMap<String, (String, Option<String>)>) -> Result<Vec<(String, String)>> {
        let all: Vec<(&String, &String)> = entries.iter().map(|(name, (stamp, _))| (name, stamp)).collect();
        let check = |part: &[(&String, &String)]| -> Result<Vec<(String, String)>> {
            let (mut path, mut stamp) = (String::new(), String::new());
            let mut out = Vec::new();
            for (name, known) in part {
                self.write(name, &mut path, &mut stamp)?;
                if stamp != **known || stamp == MISSING {
                    out.push(((*name).clone(), stamp.clone()));
                }
            }
            Ok(out)
        };
        if all.len() < 2 * PER_THREAD {
            return check(&all);
        }
        let (first, second) = all.split_at(all.len() / 2);
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new().spawn_scoped(scope, || check(second));
            let mut out = check(first)?;
            match helper {
                Ok(helper) => out.extend(helper.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?),
                Err(_) => out.extend(check(second)?),
            }
            Ok(out)
        })
    }
}

/// The stamp on the log's last line, read from its end; `None` unless that line is one.
fn last_stamp(file: &Path) -> Option<String> {
    let mut f = std::fs::File::open(file).ok()?;
    let len = f.metadata().ok()?.len();
    let tail = len.min(256);
    f.seek(SeekFrom::Start(len - tail)).ok()?;
    let mut buf = String::new();
    f.read_to_string(&mut buf).ok()?;
    let line = buf.strip_suffix('\n')?.rsplit('\n').next()?;
    line.strip_prefix("@ ").map(str::to_owned)
}

/// An index file as read: its entries, its last stamp, and how many lines it has.
struct Log {
    entries: HashMap<String, (String, Option<String>)>,
    stamp: Option<String>,
    lines: usize,
    stamps: usize,
}

impl Log {
    /// Read `file`; a missing or unreadable one is empty, a torn last line is ignored (and
    /// with it the stamp: what that line's change did is read from the directory).
    fn read(file: &Path) -> Log {
        let mut log = Log { entries: HashMap::new(), stamp: None, lines: 0, stamps: 0 };
        let Ok(text) = std::fs::read_to_string(file) else { return log };
        let Some(body) = text.strip_prefix(HEADER) else { return log };
        for line in body.split_inclusive('\n') {
            let Some(line) = line.strip_suffix('\n') else {
                log.stamp = None;
                break;
            };
            log.lines += 1;
            if let Some(stamp) = line.strip_prefix("@ ") {
                log.stamps += 1;
                log.stamp = Some(stamp.to_owned());
            } else if let Some(name) = line.strip_prefix('-') {
                log.entries.remove(name);
                log.stamp = None;
            } else if let Some(rest) = line.strip_prefix('+') {
                log.stamp = None;
                let mut parts = rest.splitn(3, ' ');
                if let (Some(name), Some(stamp)) = (parts.next(), parts.next()) {
                    log.entries.insert(name.to_owned(), (stamp.to_owned(), parts.next().map(str::to_owned)));
                }
            } else {
                return Log { entries: HashMap::new(), stamp: None, lines: 0, stamps: 0 };
            }
        }
        log
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A store with its layout made, and a watched directory `w/` with entries of their own.
    fn store() -> (tempfile::TempDir, Store) {
        let (tmp, store) = crate::store::test_store();
        std::fs::create_dir(tmp.path().join("w")).unwrap();
        (tmp, store)
    }

    static FIXED: Kind = Kind { name: "test", dir: |s| s.root().join("w"), stamp_file: None, accept: |n| n != "skip" };
    static CHANGING: Kind =
        Kind { name: "test-changing", dir: |s| s.root().join("w"), stamp_file: Some("f"), accept: |_| true };

    fn add(store: &Store, name: &str, content: &str) {
        let dir = store.root().join("w").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), content).unwrap();
    }

    /// Load `kind`, each entry's value its file's content; returns the entries and how many
    /// were read.
    fn load(store: &Store, kind: &Kind) -> (Vec<(String, String)>, usize) {
        let reads = Cell::new(0);
        let index = Index::load(store, kind, |name| {
            reads.set(reads.get() + 1);
            Ok(std::fs::read_to_string(store.root().join("w").join(name).join("f")).ok())
        })
        .unwrap();
        let mut entries: Vec<_> = index.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        entries.sort();
        (entries, reads.get())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn an_index_reads_only_what_is_new_and_sees_what_another_tool_did() {
        let (_tmp, store) = store();
        add(&store, "a", "1");
        add(&store, "b", "2");
        add(&store, "skip", "x");
        assert_eq!(load(&store, &FIXED), (pairs(&[("a", "1"), ("b", "2")]), 2));
        assert_eq!(load(&store, &FIXED).1, 0, "nothing changed: nothing read");
        // Another tool adds and removes entries.
        add(&store, "c", "3");
        std::fs::remove_dir_all(store.root().join("w/a")).unwrap();
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "2"), ("c", "3")]), 1));
        // A torn or foreign index file is rebuilt from the directory.
        let file = store.private_dir().join("index/test");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, &text[..text.len() - 5]).unwrap();
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "2"), ("c", "3")]), 0), "entries kept, stamp dropped");
        std::fs::write(&file, "not an index\n").unwrap();
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "2"), ("c", "3")]), 2));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "2"), ("c", "3")]), 2));
    }

    #[test]
    fn strata_s_own_changes_keep_the_index_current_without_reading_the_directory() {
        let (_tmp, store) = store();
        add(&store, "a", "1");
        load(&store, &FIXED);
        let change = Change::begin(&store, &FIXED);
        add(&store, "b", "2");
        change.added("b", "two");
        let change = Change::begin(&store, &FIXED);
        std::fs::remove_dir_all(store.root().join("w/a")).unwrap();
        change.removed("a");
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "two")]), 0), "the log says it all");
        // A change another tool makes after strata's is seen.
        let change = Change::begin(&store, &FIXED);
        add(&store, "c", "3");
        change.added("c", "3");
        add(&store, "d", "4");
        assert_eq!(load(&store, &FIXED), (pairs(&[("b", "two"), ("c", "3"), ("d", "4")]), 1));
        // A change begun on an index that was not current marks nothing current.
        add(&store, "e", "5");
        let change = Change::begin(&store, &FIXED);
        add(&store, "f", "6");
        change.added("f", "6");
        assert_eq!(load(&store, &FIXED).1, 2, "e and f are read");
    }

    #[test]
    fn find_answers_as_a_load_does_from_the_log_alone() {
        let (_tmp, store) = store();
        let find = |value: &str| {
            let read = |_: &str| panic!("the log is current: nothing is read");
            let found = Index::find(&store, &FIXED, read, |v| v == value).unwrap();
            let mut found: Vec<String> = found.into_iter().map(|(name, _)| name).collect();
            found.sort();
            found
        };
        add(&store, "a", "x");
        add(&store, "b", "y");
        load(&store, &FIXED);
        // Strata's own changes, appended: an entry removed, then made again with another value.
        for (name, value) in [("c", "x"), ("d", "y")] {
            let change = Change::begin(&store, &FIXED);
            add(&store, name, value);
            change.added(name, value);
        }
        let change = Change::begin(&store, &FIXED);
        std::fs::remove_dir_all(store.root().join("w/a")).unwrap();
        change.removed("a");
        let change = Change::begin(&store, &FIXED);
        std::fs::remove_dir_all(store.root().join("w/b")).unwrap();
        change.removed("b");
        let change = Change::begin(&store, &FIXED);
        add(&store, "b", "x");
        change.added("b", "x");
        assert_eq!(find("x"), ["b", "c"]);
        assert_eq!(find("y"), ["d"]);
        assert_eq!(find("z"), Vec::<String>::new());
        // Once the directory changes behind strata's back, find reads it, as load does.
        add(&store, "e", "x");
        let read = |n: &str| Ok(Some(if n == "e" { "x".into() } else { "?".into() }));
        let found = Index::find(&store, &FIXED, read, |v| v == "x");
        assert_eq!(found.unwrap().len(), 3);
    }

    #[test]
    fn entries_that_change_in_place_are_read_again() {
        let (_tmp, store) = store();
        add(&store, "a", "1");
        add(&store, "b", "2");
        assert_eq!(load(&store, &CHANGING).1, 2);
        assert_eq!(load(&store, &CHANGING).1, 0);
        // Rewritten in place (same inode), and replaced by a rename.
        std::fs::write(store.root().join("w/a/f"), "11").unwrap();
        std::fs::write(store.root().join("w/b/g"), "22").unwrap();
        std::fs::rename(store.root().join("w/b/g"), store.root().join("w/b/f")).unwrap();
        assert_eq!(load(&store, &CHANGING), (pairs(&[("a", "11"), ("b", "22")]), 2));
        // An entry without its file is read every time (its reader decides what that means),
        // and is seen when the file comes back.
        std::fs::remove_file(store.root().join("w/a/f")).unwrap();
        assert_eq!(load(&store, &CHANGING), (pairs(&[("b", "22")]), 1));
        assert_eq!(load(&store, &CHANGING).1, 1);
        std::fs::write(store.root().join("w/a/f"), "111").unwrap();
        assert_eq!(load(&store, &CHANGING), (pairs(&[("a", "111"), ("b", "22")]), 1));
    }
}
