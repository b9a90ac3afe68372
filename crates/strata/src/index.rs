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
//! An index of entries that never change is read once per process while its directory's stamp
//! holds ([`Index::entries`]): its first questions are answered by a walk of the log's lines
//! (comparing each line's last word, no line parsed that does not end with what is asked),
//! later ones from maps made of them, and strata's own changes are applied to both.
//!
//! strata's own writers keep the log current with [`Change`]: under the store lock, they take
//! the directory's stamp before the change and append the entry and the new stamp after it,
//! only if the log was current before. What another tool changes in the same directory in
//! the microseconds between those two steps is not seen until the directory changes again:
//! dockerd and strata are not meant to write one store at the same moment (dockerd keeps its
//! state in memory). Kernels with multigrain timestamps (6.13 and later) give every change
//! after a stamp was read a later mtime; on older kernels a change in the same clock tick as
//! a stamp's read can go unseen the same way.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirEntryExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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
            let known: Vec<(&str, &str)> = index.entries.iter().map(|(n, (s, _))| (n.as_str(), s.as_str())).collect();
            for (name, stamp) in stamps.changed(&known)? {
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

    /// Every entry with a value, as [`load`](Self::load) gives them, handed to `each` in no
    /// order. For entries that change in place, while the log is current for the directory's
    /// stamp, they are the log's lines, each entry's stamp checked and nothing copied: in a
    /// large directory, maps of every entry cost more than the checks (a `create` asking
    /// whether a name is taken). Any other change is read as [`load`](Self::load) reads it.
    pub(crate) fn each(
        store: &Store,
        kind: &Kind,
        mut read: impl FnMut(&str) -> Result<Option<String>>,
        mut each: impl FnMut(&str, &str),
    ) -> Result<()> {
        let dir = (kind.dir)(store);
        let log = match (kind.stamp_file, dir_stamp(&dir)?) {
            (Some(file), Some(now)) => current_log(&path(store, kind), &now).map(|text| (file, text)),
            _ => None,
        };
        if let Some((file, text)) = log
            && let Some(entries) = last_entries(&text)
        {
            let known: Vec<(&str, &str)> = entries.iter().map(|(name, stamp, _)| (*name, *stamp)).collect();
            let changed = EntryStamps::open(&dir, file)?.changed(&known)?;
            // A record still missing is read each time, as `load` does; any other change is
            // read by `load`, which writes the log anew.
            if changed.iter().all(|(_, stamp)| stamp == MISSING) {
                let changed: HashSet<&str> = changed.iter().map(|(name, _)| name.as_str()).collect();
                for (name, _, value) in entries {
                    if changed.contains(name) {
                        if let Some(value) = read(name)? {
                            each(name, &value);
                        }
                    } else if let Some(value) = value {
                        each(name, value);
                    }
                }
                return Ok(());
            }
        }
        for (name, value) in Index::load(store, kind, read)?.iter() {
            each(name, value);
        }
        Ok(())
    }

    /// The few entries whose value `matches`, and their values, as [`load`](Self::load) would
    /// give them.
    pub(crate) fn find(
        store: &Store,
        kind: &Kind,
        read: impl FnMut(&str) -> Result<Option<String>>,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>> {
        if let Some(found) = Index::streamed(store, kind, &matches)? {
            return Ok(found);
        }
        let entries = Index::entries(store, kind, read)?;
        Ok(entries.find(matches).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// The entries whose value's last word is one of `words`, each with that word, as
    /// [`Entries::with_last_word`] gives them (the first such question of a log streamed, as
    /// [`find`](Self::find) does).
    pub(crate) fn with_last_word(
        store: &Store,
        kind: &Kind,
        read: impl FnMut(&str) -> Result<Option<String>>,
        words: &[&str],
    ) -> Result<Vec<(String, String)>> {
        let word_of = one_of(words);
        if let Some(found) = Index::streamed(store, kind, |v| word_of(last_word(v)).is_some())? {
            return Ok(found.into_iter().map(|(k, v)| (k, last_word(&v).to_owned())).collect());
        }
        let entries = Index::entries(store, kind, read)?;
        Ok(entries.with_last_word(words).into_iter().map(|(k, w)| (k.to_owned(), w.to_owned())).collect())
    }

    /// The answer of a stream through the log of an index of entries that never change, if
    /// this is the process's first question of it and it is not kept in memory; a second
    /// question keeps it (a command asking many reads it once).
    fn streamed(store: &Store, kind: &Kind, matches: impl Fn(&str) -> bool) -> Result<Option<Vec<(String, String)>>> {
        if kind.stamp_file.is_some() {
            return Ok(None);
        }
        let Some(now) = dir_stamp(&(kind.dir)(store))? else { return Ok(None) };
        let file = path(store, kind);
        let kept = known().get(&file).filter(|k| k.stamp == now).is_some();
        let first = STREAMED.lock().unwrap_or_else(|p| p.into_inner()).insert(file.clone());
        Ok(match !kept && first {
            true => stream_matching(&file, &now, matches),
            false => None,
        })
    }

    /// Every entry with a value, as [`load`](Self::load) would give them. For an index of
    /// entries that never change, they are the parsed log kept in memory while the
    /// directory's stamp stays the same (see [`Known`]): a command asking many questions of
    /// one index reads and parses its log once.
    pub(crate) fn entries(
        store: &Store,
        kind: &Kind,
        read: impl FnMut(&str) -> Result<Option<String>>,
    ) -> Result<Entries> {
        if kind.stamp_file.is_none() {
            return Ok(Entries(Known::current(store, kind, read)?));
        }
        Ok(Entries(Arc::new(Known::loaded(String::new(), &Index::load(store, kind, read)?))))
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

/// The entries of an index that have a value, as they were when asked for; cheap to hold
/// (shared with what is kept in memory, never changed under its holder).
#[derive(Debug, Clone)]
pub(crate) struct Entries(Arc<Known>);

impl Entries {
    /// Every entry and its value, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.maps().entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The few entries whose value `matches`, and their values, in no order.
    /// One pass over the log's lines for the first few questions, then over the map of entries.
    pub(crate) fn find(&self, matches: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
        if self.by_lines() {
            return self.0.lines_matching(matches);
        }
        let entries = &self.0.maps().entries;
        entries.iter().filter(|(_, v)| matches(v)).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// The entries whose value's last word is one of `words`, with that word, in no order: a
    /// search of the log's lines for each word at first, then a pass over the map of entries.
    pub(crate) fn with_last_word<'a>(&'a self, words: &[&'a str]) -> Vec<(&'a str, &'a str)> {
        if self.by_lines() {
            return self.0.lines_ending(words, |_| true);
        }
        let by_last_word = self.0.maps().by_last_word();
        let each = words.iter().map(|w| by_last_word.get(*w).into_iter().flatten().map(move |n| (n.as_str(), *w)));
        each.flatten().collect()
    }

    /// Whether this question is answered from the lines (and counted) rather than the maps.
    fn by_lines(&self) -> bool {
        self.0.maps.get().is_none() && self.0.asked.fetch_add(1, Ordering::Relaxed) < PASSES_BEFORE_MAPS
    }

    /// The entries whose value is `value`, in no order: one pass over the log's lines for the
    /// first few such questions, then a lookup in the entries by last word (made then, and kept
    /// with them in memory).
    pub(crate) fn with_value(&self, value: &str) -> Vec<&str> {
        if self.by_lines() {
            return self.0.lines_ending(&[last_word(value)], |v| v == value).into_iter().map(|(n, _)| n).collect();
        }
        let maps = self.0.maps();
        let names = maps.by_last_word().get(last_word(value)).into_iter().flatten();
        names.filter(|n| maps.entries.get(*n).is_some_and(|v| v == value)).map(String::as_str).collect()
    }
}

/// Which of `words` a word is, if any: looked up in a set when there are many.
fn one_of<'w>(words: &[&'w str]) -> impl Fn(&str) -> Option<&'w str> {
    let many: Option<HashSet<&'w str>> = (words.len() > 8).then(|| words.iter().copied().collect());
    move |w| match &many {
        Some(many) => many.get(w).copied(),
        None => words.iter().find(|x| **x == w).copied(),
    }
}

/// A value's last word (the whole value, if it is one word).
fn last_word(value: &str) -> &str {
    value.rsplit(' ').next().unwrap_or(value)
}

/// One change by strata to a watched directory, recorded in its index: begun before the
/// change, so that the index is only marked current if it was current before.
pub(crate) struct Change {
    file: PathBuf,
    dir: PathBuf,
    stamp_file: Option<&'static str>,
    /// The directory's stamp before the change.
    before: Option<String>,
    current: bool,
}

impl Change {
    /// Note the directory's stamp before changing it (call with the store's write lock held).
    pub(crate) fn begin(store: &Store, kind: &Kind) -> Change {
        let dir = (kind.dir)(store);
        let file = path(store, kind);
        let before = dir_stamp(&dir).ok().flatten();
        let current = before.is_some() && before == last_stamp(&file);
        Change { file, dir, stamp_file: kind.stamp_file, before, current }
    }

    /// `name` was added (or rewritten) and holds `value`.
    pub(crate) fn added(self, name: &str, value: &str) {
        let stamp = match self.stamp_file {
            None => std::fs::symlink_metadata(self.dir.join(name)).ok().map(|m| m.ino().to_string()),
            Some(f) => EntryStamps::open(&self.dir, f).and_then(|s| s.of(name)).ok().filter(|s| s != MISSING),
        };
        match stamp {
            Some(stamp) => self.append(&format!("+{name} {stamp} {value}\n"), Some((name, Some(value)))),
            None => self.append("", None), // not marked current: the next load reads the directory
        }
    }

    /// `name` was removed.
    pub(crate) fn removed(self, name: &str) {
        self.append(&format!("-{name}\n"), Some((name, None)));
    }

    /// Append `line` and the directory's new stamp to the log, and make the same `edit` to
    /// the parsed log in memory (`None`: the change is not known).
    fn append(self, line: &str, edit: Option<(&str, Option<&str>)>) {
        let after = dir_stamp(&self.dir).ok().flatten();
        if self.stamp_file.is_none() {
            Known::edit(&self.file, self.before.as_deref(), after.as_deref(), edit);
        }
        let Some(stamp) = after.filter(|_| self.current && !line.is_empty()) else { return };
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

/// The entries of an index of entries that never change, with their values, as its log said
/// when the watched directory's stamp was `stamp`. strata keeps them in memory, by the log's
/// path, while that stamp stays the same (strata's own [`Change`]s edit them in step with the
/// log), so that a command asking many questions of one index (an `rmi` of 100 names, each
/// removing layers) reads its log once, not once per question, much as a daemon keeps its
/// maps. A stamp that moved means the log is read again.
///
/// The first few questions are answered by a pass over the log's lines, which costs less than
/// making maps of every entry when a command asks only those (a `layer rm`); the maps are made
/// on the question after, and kept in step from then on.
#[derive(Debug, Default)]
struct Known {
    stamp: String,
    /// The log's lines (its header first, no entry's), strata's later changes appended in the
    /// same form.
    lines: String,
    /// Where the lines written whole by the last save end (each entry once; what follows are
    /// changes appended since, the only lines that can replace one before).
    saved_end: usize,
    /// Questions answered by a pass over `lines`.
    asked: AtomicUsize,
    maps: OnceLock<Maps>,
}

/// The entries of a [`Known`], and (once asked for) the same by their value's last word.
#[derive(Debug, Clone, Default)]
struct Maps {
    entries: Map<String>,
    by_last_word: OnceLock<Map<Vec<String>>>,
}

impl Clone for Known {
    fn clone(&self) -> Known {
        Known {
            stamp: self.stamp.clone(),
            lines: self.lines.clone(),
            saved_end: self.saved_end,
            asked: AtomicUsize::new(self.asked.load(Ordering::Relaxed)),
            maps: self.maps.clone(),
        }
    }
}

/// Questions a [`Known`] answers by a pass over its lines before it makes its maps.
const PASSES_BEFORE_MAPS: usize = 4;

/// A map by name or value: 64-digit hex strings and short links, hashed quickly (no key is
/// chosen by an attacker who could not already write the store).
type Map<V> = HashMap<String, V, foldhash::fast::FixedState>;

/// The logs kept, by path; forgotten all at once past [`KNOWN_MAX`] (many stores).
static KNOWN: std::sync::LazyLock<Mutex<HashMap<PathBuf, Arc<Known>>>> = std::sync::LazyLock::new(Default::default);

/// The logs [`Index::find`] has streamed once in this process.
static STREAMED: std::sync::LazyLock<Mutex<HashSet<PathBuf>>> = std::sync::LazyLock::new(Default::default);

/// How many logs are kept at most (six kinds of index per store).
const KNOWN_MAX: usize = 64;

fn known() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<Known>>> {
    KNOWN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Known {
    /// The current entries of `kind`'s directory: kept, or a current log, or loaded (the
    /// directory read, `read` giving new entries' values).
    fn current(store: &Store, kind: &Kind, read: impl FnMut(&str) -> Result<Option<String>>) -> Result<Arc<Known>> {
        let Some(now) = dir_stamp(&(kind.dir)(store))? else { return Ok(Arc::default()) };
        let file = path(store, kind);
        if let Some(kept) = known().get(&file).filter(|k| k.stamp == now) {
            return Ok(Arc::clone(kept));
        }
        tracing::trace!(index = kind.name, "reading the log");
        let kept = Arc::new(match current_log(&file, &now) {
            Some(text) => {
                // The header stays: it is no entry's line, and moving the text costs a copy.
                Known { stamp: now, saved_end: saved_end(&text), lines: text, ..Known::default() }
            }
            // The stamp read before the load may be older than what it saw: then it is read
            // again next time, never trusted too long.
            None => Known::loaded(now, &Index::load(store, kind, read)?),
        });
        let mut memory = known();
        if memory.len() >= KNOWN_MAX && !memory.contains_key(&file) {
            memory.clear();
        }
        memory.insert(file, Arc::clone(&kept));
        Ok(kept)
    }

    /// The entries of a loaded index, at `stamp`.
    fn loaded(stamp: String, index: &Index) -> Known {
        let entries = index.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let maps = OnceLock::from(Maps { entries, by_last_word: OnceLock::new() });
        Known { stamp, maps, ..Known::default() }
    }

    /// The maps, made from the lines if they are not yet.
    fn maps(&self) -> &Maps {
        self.maps.get_or_init(|| Maps { entries: parse_entries(&self.lines), by_last_word: OnceLock::new() })
    }

    /// The entries whose value `matches`, by one pass over the lines (a later line of an
    /// entry replaces what an earlier one said).
    fn lines_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
        let mut found: Vec<(&str, &str)> = Vec::new();
        for (at, line) in lines_at(&self.lines) {
            let Some((name, value)) = entry_line(line) else { continue };
            let value = value.filter(|v| matches(v));
            // A line of the last save names an entry no line before it names.
            if at >= self.saved_end && !found.is_empty() {
                found.retain(|f| f.0 != name);
            }
            if let Some(value) = value {
                found.push((name, value));
            }
        }
        found
    }

    /// The entries whose value's last word is one of `words` and whose value `matches`, with
    /// that word, among the lines that no later line replaces or removes: each line's last
    /// word is compared, no line parsed unless it ends with one of them.
    fn lines_ending<'a, 'w>(&'a self, words: &[&'w str], matches: impl Fn(&str) -> bool) -> Vec<(&'a str, &'w str)> {
        let text = self.lines.as_str();
        let appended = self.appended();
        let word_of = one_of(words);
        let mut found = Vec::new();
        for (at, line) in lines_at(text) {
            let Some(space) = memchr::memrchr(b' ', line.as_bytes()) else { continue };
            let Some(word) = word_of(&line[space + 1..]) else { continue };
            let Some((name, value)) = entry_line(line) else { continue };
            let replaced = appended.get(name).is_some_and(|last| *last > at);
            if value.is_some_and(&matches) && !replaced {
                found.push((name, word));
            }
        }
        found
    }

    /// Where the last line of each entry among the changes appended since the last save starts
    /// (a line of the save is replaced only by one of them).
    fn appended(&self) -> HashMap<&str, usize> {
        last_changes(&self.lines, self.saved_end)
    }

    /// A change by strata from stamp `before` to `after`: made to the kept entries of `file`
    /// if they were current before it, else they are forgotten.
    fn edit(file: &Path, before: Option<&str>, after: Option<&str>, edit: Option<(&str, Option<&str>)>) {
        let mut memory = known();
        let Some(kept) = memory.get_mut(file) else { return };
        match (before, after, edit) {
            (Some(before), Some(after), Some((name, value))) if kept.stamp == before => {
                let kept = Arc::make_mut(kept);
                kept.stamp = after.to_owned();
                match kept.maps.get_mut() {
                    Some(maps) => maps.edit(name, value),
                    None => match value {
                        Some(value) => kept.lines.push_str(&format!("+{name} - {value}\n")),
                        None => kept.lines.push_str(&format!("-{name}\n")),
                    },
                }
            }
            _ => drop(memory.remove(file)),
        }
    }
}

impl Maps {
    /// `name` now holds `value` (`None`: it is gone).
    fn edit(&mut self, name: &str, value: Option<&str>) {
        let old = match value {
            Some(value) => self.entries.insert(name.to_owned(), value.to_owned()),
            None => self.entries.remove(name),
        };
        if let Some(by_last_word) = self.by_last_word.get_mut() {
            if let Some(names) = old.and_then(|old| by_last_word.get_mut(last_word(&old))) {
                names.retain(|n| n != name);
            }
            if let Some(value) = value {
                by_last_word.entry(last_word(value).to_owned()).or_default().push(name.to_owned());
            }
        }
    }

    /// The entries by their value's last word (the whole value, if it is one word).
    fn by_last_word(&self) -> &Map<Vec<String>> {
        self.by_last_word.get_or_init(|| {
            let mut by_last_word: Map<Vec<String>> = Map::default();
            for (name, value) in &self.entries {
                by_last_word.entry(last_word(value).to_owned()).or_default().push(name.clone());
            }
            by_last_word
        })
    }
}

/// The entries with a value that a log's lines (after its header) leave.
fn parse_entries(body: &str) -> Map<String> {
    let mut entries = Map::default();
    for (_, line) in lines_at(body) {
        match entry_line(line) {
            Some((name, Some(value))) => drop(entries.insert(name.to_owned(), value.to_owned())),
            Some((name, None)) => drop(entries.remove(name)),
            None => {}
        }
    }
    entries
}

/// A log line about an entry: `+entry stamp value` gives the entry and its value (if it has
/// one), `-entry` the entry alone; other lines (the header, stamps) are `None`.
fn entry_line(line: &str) -> Option<(&str, Option<&str>)> {
    if let Some(name) = line.strip_prefix('-') {
        return Some((name, None));
    }
    let (name, _, value) = split_added(line.strip_prefix('+')?);
    Some((name, value))
}

/// What follows a `+`: the entry, its stamp and its value, split at the first two spaces.
fn split_added(rest: &str) -> (&str, Option<&str>, Option<&str>) {
    let bytes = rest.as_bytes();
    let Some(name_end) = memchr::memchr(b' ', bytes) else { return (rest, None, None) };
    match memchr::memchr(b' ', &bytes[name_end + 1..]).map(|i| name_end + 1 + i) {
        Some(stamp_end) => (&rest[..name_end], Some(&rest[name_end + 1..stamp_end]), Some(&rest[stamp_end + 1..])),
        None => (&rest[..name_end], Some(&rest[name_end + 1..]), None),
    }
}

/// The entries a current log's lines (after its header) leave, each once, with its stamp and
/// value (if it has one), borrowed from the lines: a line of the last save is replaced only by
/// a change appended after that save's stamp. `None` if a line is not a log's.
fn last_entries(text: &str) -> Option<Vec<(&str, &str, Option<&str>)>> {
    let appended = last_changes(text, saved_end(text));
    let mut entries = Vec::with_capacity(text.len() / 128);
    for (at, line) in lines_at(text).skip(1) {
        let Some(rest) = line.strip_prefix('+') else {
            (line.starts_with('-') || line.starts_with("@ ")).then_some(())?;
            continue;
        };
        let (name, Some(stamp), value) = split_added(rest) else { continue };
        if appended.get(name).is_none_or(|last| *last == at) {
            entries.push((name, stamp, value));
        }
    }
    Some(entries)
}

/// Where the lines written whole by a log's last save end: at its first stamp line.
fn saved_end(text: &str) -> usize {
    stamp_lines(text).next().unwrap_or(text.len())
}

/// Where the last line of each entry among the changes appended after `saved_end` starts.
fn last_changes(text: &str, saved_end: usize) -> HashMap<&str, usize> {
    let mut last = HashMap::new();
    for (at, line) in lines_at(&text[saved_end..]) {
        if let Some((name, _)) = entry_line(line) {
            last.insert(name, saved_end + at);
        }
    }
    last
}

/// The words of a value, split at single spaces (as `str::split(' ')`, by `memchr`).
pub(crate) fn words(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b' ', r.as_bytes()) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The lines of `text` that end with a newline (a log's last line always does), and where
/// each starts.
fn lines_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text.as_bytes()).map(move |end| {
        let line = (start, &text[start..end]);
        start = end + 1;
        line
    })
}

/// Where each stamp line (`@ …`) of a log's lines starts: found by their `@`, which no entry
/// or value holds (see [`plain`]), so that the search is for one byte.
fn stamp_lines(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let starts_line = |i: usize| i == 0 || bytes[i - 1] == b'\n';
    memchr::memchr_iter(b'@', bytes).filter(move |&i| starts_line(i) && bytes.get(i + 1) == Some(&b' '))
}

/// The entries whose value `matches` in the log at `file`, if it is current for the
/// directory's stamp `now` (else `None`): read line by line through one small buffer and not
/// kept, for a command that asks one question of a large log (a `layer rm`). Copying a whole
/// log into fresh memory costs more than the walk of its lines.
fn stream_matching(file: &Path, now: &str, matches: impl Fn(&str) -> bool) -> Option<Vec<(String, String)>> {
    use std::io::BufRead;
    if last_stamp(file).as_deref() != Some(now) {
        return None;
    }
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(file).ok()?);
    let (mut line, mut found) = (Vec::new(), Vec::<(String, String)>::new());
    let (mut first, mut stamps) = (true, 0);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        let text = std::str::from_utf8(line.strip_suffix(b"\n")?).ok()?;
        if std::mem::take(&mut first) {
            (format!("{text}\n") == HEADER).then_some(())?;
            continue;
        }
        let (name, value) = match entry_line(text) {
            Some(entry) => entry,
            None if text.starts_with("@ ") => {
                stamps += 1;
                continue;
            }
            None => return None,
        };
        // A line after the first stamp is a change appended since the last save.
        if stamps > 0 {
            found.retain(|f| f.0 != name);
        }
        if let Some(value) = value.filter(|v| matches(v)) {
            found.push((name.to_owned(), value.to_owned()));
        }
    }
    (stamps <= MAX_APPENDED).then_some(found)
}

/// The log at `file`, if it is current for the directory's stamp `now` and short enough to be
/// read as it is (else [`Index::load`] reads the directory, or writes the log anew).
fn current_log(file: &Path, now: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let current = text.starts_with(HEADER)
        && text.ends_with(&format!("@ {now}\n"))
        && stamp_lines(&text).nth(MAX_APPENDED).is_none();
    current.then_some(text)
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
    fn changed(&self, all: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
        // Taken in chunks by whichever thread is free: a thread the VM or the command's own
        // work holds back does not leave a fixed half undone.
        const CHUNK: usize = 32;
        let next = AtomicUsize::new(0);
        let check = |stamps: &EntryStamps| -> Result<Vec<(String, String)>> {
            let (mut path, mut stamp) = (String::new(), String::new());
            let mut out = Vec::new();
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                let Some(part) = all.get(start..all.len().min(start + CHUNK)) else { break };
                for (name, known) in part {
                    stamps.write(name, &mut path, &mut stamp)?;
                    if stamp != *known || stamp == MISSING {
                        out.push(((*name).to_owned(), stamp.clone()));
                    }
                }
            }
            Ok(out)
        };
        if all.len() < 2 * PER_THREAD {
            return check(self);
        }
        // The helper looks up from a descriptor of its own: two threads sharing one count
        // their uses of it on one cache line.
        std::thread::scope(|scope| {
            let helper =
                std::thread::Builder::new().spawn_scoped(scope, || match EntryStamps::open(&self.dir, self.file) {
                    Ok(own) => check(&own),
                    Err(_) => check(self),
                });
            let mut out = check(self)?;
            if let Ok(helper) = helper {
                out.extend(helper.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
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

    /// [`Index::each`] of `kind`, read as [`load`] reads; the entries and how many were read.
    fn each(store: &Store, kind: &Kind) -> (Vec<(String, String)>, usize) {
        let reads = Cell::new(0);
        let mut entries = Vec::new();
        let read = |name: &str| {
            reads.set(reads.get() + 1);
            Ok(std::fs::read_to_string(store.root().join("w").join(name).join("f")).ok())
        };
        Index::each(store, kind, read, |k, v| entries.push((k.to_owned(), v.to_owned()))).unwrap();
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
            // The search for lines ending with the value agrees.
            let entries = Index::entries(&store, &FIXED, read).unwrap();
            let mut searched: Vec<String> = entries.with_value(value).into_iter().map(str::to_owned).collect();
            searched.sort();
            assert_eq!(found, searched, "{value}");
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
    fn a_first_question_streamed_and_a_second_one_kept_agree() {
        let (_tmp, store) = store();
        for (name, value) in [("a", "p x"), ("b", "y"), ("c", "q x")] {
            add(&store, name, value);
        }
        load(&store, &FIXED);
        let change = Change::begin(&store, &FIXED);
        std::fs::remove_dir_all(store.root().join("w/a")).unwrap();
        change.removed("a");
        let read = |_: &str| panic!("the log is current: nothing is read");
        let ask = || {
            let mut found = Index::with_last_word(&store, &FIXED, read, &["x", "z"]).unwrap();
            found.sort();
            found
        };
        let streamed = ask();
        assert!(known().get(&path(&store, &FIXED)).is_none(), "a first question keeps nothing");
        assert_eq!(streamed, [("c".to_owned(), "x".to_owned())]);
        assert_eq!(ask(), streamed, "the second question, from the log kept in memory");
        assert!(known().get(&path(&store, &FIXED)).is_some());
    }

    #[test]
    fn lines_and_values_split_as_str_splits_them() {
        for rest in ["a 1 x y", "a 1 x", "a 1 ", "a 1", "a", "", "a  x", " 1 x", "a 1 x  y "] {
            let mut parts = rest.splitn(3, ' ');
            assert_eq!(entry_line(&format!("+{rest}")), Some((parts.next().unwrap(), parts.nth(1))), "{rest:?}");
            assert_eq!(words(rest).collect::<Vec<_>>(), rest.split(' ').collect::<Vec<_>>(), "{rest:?}");
        }
    }

    #[test]
    fn entries_kept_in_memory_follow_strata_s_changes_and_see_other_tools() {
        // Answered from the log's lines, and from the maps made of them.
        kept_entries_follow_changes(false);
        kept_entries_follow_changes(true);
    }

    fn kept_entries_follow_changes(maps: bool) {
        let (_tmp, store) = store();
        let entries = |read_ok: bool| {
            let read = |n: &str| {
                assert!(read_ok, "{n} read: the entries in memory were current");
                Ok(std::fs::read_to_string(store.root().join("w").join(n).join("f")).ok())
            };
            let entries = Index::entries(&store, &FIXED, read).unwrap();
            if maps {
                assert!(entries.iter().count() > 0);
            }
            let mut all: Vec<(String, String)> =
                entries.find(|_| true).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            all.sort();
            (all, entries)
        };
        add(&store, "a", "x");
        add(&store, "b", "y");
        load(&store, &FIXED); // the log is written: what is kept is its lines
        let (all, held) = entries(false);
        assert_eq!(all, pairs(&[("a", "x"), ("b", "y")]));
        assert_eq!(held.with_value("x"), ["a"]);
        // strata's own changes edit what is kept: the answers move with them, with neither the
        // directory nor the log read (it is taken away).
        let change = Change::begin(&store, &FIXED);
        add(&store, "c", "x");
        change.added("c", "x");
        let change = Change::begin(&store, &FIXED);
        std::fs::remove_dir_all(store.root().join("w/a")).unwrap();
        change.removed("a");
        std::fs::remove_file(store.private_dir().join("index/test")).unwrap();
        let (all, now) = entries(false);
        assert_eq!(all, pairs(&[("b", "y"), ("c", "x")]));
        assert_eq!(now.with_value("x"), ["c"]);
        assert!(now.find(|_| true).iter().all(|(name, _)| *name != "a"));
        assert_eq!(held.with_value("x"), ["a"], "entries handed out earlier do not change under their holder");
        // Another tool's change moves the directory's stamp: what is kept is not trusted.
        add(&store, "d", "x");
        let (all, now) = entries(true);
        assert_eq!(all, pairs(&[("b", "y"), ("c", "x"), ("d", "x")]));
        let mut with_x = now.with_value("x").to_vec();
        with_x.sort();
        assert_eq!(with_x, ["c", "d"]);
        // Asked for many words at once (looked up in a set when they are more than eight).
        let words = ["p", "q", "r", "s", "t", "u", "v", "w", "y", "x"];
        for words in [&words[..], &words[8..]] {
            let mut found = now.with_last_word(words);
            found.sort();
            assert_eq!(found, [("b", "y"), ("c", "x"), ("d", "x")], "{maps}, {} words", words.len());
        }
        // A change begun while what is kept was stale forgets it, and the log is read again.
        add(&store, "e", "z");
        let change = Change::begin(&store, &FIXED);
        add(&store, "f", "z");
        change.added("f", "z");
        assert_eq!(entries(true).0.len(), 5);
    }

    #[test]
    fn each_entry_walked_from_the_log_is_what_a_load_gives() {
        let (_tmp, store) = store();
        let w = store.root().join("w");
        for (name, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("e", "5")] {
            add(&store, name, value);
        }
        let all = pairs(&[("a", "1"), ("b", "2"), ("c", "3"), ("e", "5")]);
        assert_eq!(each(&store, &CHANGING), (all.clone(), 4), "no log yet: loaded");
        assert_eq!(each(&store, &CHANGING), (all, 0), "from the log");
        // strata's own changes, appended to the log: an entry added, one removed, one
        // rewritten (by a rename, as strata and dockerd write), one removed and added again.
        let change = || Change::begin(&store, &CHANGING);
        let c = change();
        add(&store, "d", "4");
        c.added("d", "4");
        let c = change();
        std::fs::remove_dir_all(w.join("b")).unwrap();
        c.removed("b");
        let c = change();
        std::fs::write(w.join("a/g"), "11").unwrap();
        std::fs::rename(w.join("a/g"), w.join("a/f")).unwrap();
        c.added("a", "11");
        let c = change();
        std::fs::remove_dir_all(w.join("e")).unwrap();
        c.removed("e");
        let c = change();
        add(&store, "e", "55");
        c.added("e", "55");
        // The last line of an entry is the one that counts, even with the same stamp.
        change().added("c", "3 again");
        let now = pairs(&[("a", "11"), ("c", "3 again"), ("d", "4"), ("e", "55")]);
        let log = std::fs::read_to_string(path(&store, &CHANGING)).unwrap();
        let mut walked: Vec<_> = last_entries(&log).unwrap().into_iter().map(|(n, _, v)| (n, v.unwrap())).collect();
        walked.sort();
        assert_eq!(walked, [("a", "11"), ("c", "3 again"), ("d", "4"), ("e", "55")], "{log}");
        assert_eq!(each(&store, &CHANGING), (now.clone(), 0), "the appended changes, nothing read");
        assert_eq!(load(&store, &CHANGING), (now, 0));
        // Changed behind strata's back, in place: read (once) as a load reads it.
        std::fs::write(w.join("c/f"), "33").unwrap();
        std::fs::write(w.join("e/f"), "5").unwrap();
        let now = pairs(&[("a", "11"), ("c", "33"), ("d", "4"), ("e", "5")]);
        assert_eq!(each(&store, &CHANGING), (now.clone(), 2));
        assert_eq!(each(&store, &CHANGING), (now, 0));
        // A missing file is read each time, and the rest still comes from the log.
        std::fs::remove_file(w.join("d/f")).unwrap();
        let now = pairs(&[("a", "11"), ("c", "33"), ("e", "5")]);
        assert_eq!(each(&store, &CHANGING), (now.clone(), 1));
        assert_eq!(each(&store, &CHANGING), (now, 1));
        // A damaged log is not walked.
        let file = path(&store, &CHANGING);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replacen("\n+", "\n*", 1)).unwrap();
        assert_eq!(each(&store, &CHANGING).1, 4, "read again from the directory");
    }

    #[test]
    fn every_entry_of_a_large_directory_is_checked_by_the_threads_sharing_the_work() {
        let (_tmp, store) = store();
        let n = 2 * PER_THREAD + 37;
        for i in 0..n {
            add(&store, &format!("e{i}"), "old");
        }
        assert_eq!(each(&store, &CHANGING).1, n);
        // Rewritten in place, one an odd number of entries apart, so that every chunk of every
        // thread has some.
        let changed: Vec<usize> = (0..n).step_by(7).collect();
        for i in &changed {
            std::fs::write(store.root().join(format!("w/e{i}/f")), "new!").unwrap();
        }
        let (entries, reads) = each(&store, &CHANGING);
        assert_eq!(reads, changed.len());
        let new: Vec<&str> = entries.iter().filter(|(_, v)| v == "new!").map(|(k, _)| k.as_str()).collect();
        assert_eq!(new.len(), changed.len());
        assert_eq!(entries.len(), n);
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
