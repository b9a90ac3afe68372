//! The transaction layer: an operation that touches several files (overlay2 layers, layerdb
//! entries, configs, names, container records) keeps a journal in its operation record
//! (`<root>/strata/tmp/<n>_<kind>`, see `scratch`), adding a line *before* each step, and
//! writes `done` when every step is taken. A process killed before that leaves a journal that
//! the next writer carries out under the store lock: an *add* is undone, newest step first; a
//! *remove*, which lists everything before it removes anything, is finished.
//!
//! Each kind of operation belongs to the module that owns its steps, which gives its
//! [`Recovery`]; the crate root lists them (`crate::RECOVERIES`), so that this layer, below
//! every module that journals, never names one. A new kind (a pull's spooled blobs, a build's
//! intermediate containers) is a new entry there.

use crate::error::Result;
use crate::fsutil::{mkdir, remove_if_exists};
use crate::id::ShortLink;
use crate::lock::StoreLock;
use crate::scratch::{Abandoned, Scratch};
use crate::store::Store;

const DONE: &str = "done";

impl Store {
    /// Make the root ready for writing (checking the filesystem the first time) and take the
    /// store lock. Operations abandoned by dead processes are cleaned up under the lock.
    pub(crate) fn write_lock(&self) -> Result<StoreLock> {
        self.check_owner()?;
        self.ensure_layout()?;
        let lock = StoreLock::exclusive(&self.lock_path())?;
        if self.state_version()?.is_none() {
            let version = format!("{}\n", crate::store::STATE_VERSION);
            crate::fsutil::replace(&self.version_path(), version.as_bytes(), 0o600)?;
        }
        sweep(self, &lock)?;
        Ok(lock)
    }

    /// A shared lock for readers, if any strata process ever wrote here (a root written only by
    /// dockerd has no lock file, and reading must not create one).
    ///
    /// An image operation whose process died may have left some of its steps in place; its
    /// journal says how to undo them, so a reader that finds one lets a writer sweep first and
    /// never sees half an image.
    pub(crate) fn read_lock(&self) -> Result<Option<StoreLock>> {
        let Some(lock) = self.read_lock_as_is()? else { return Ok(None) };
        if !crate::scratch::abandoned(self)?.iter().any(|op| is_journal(&op.what)) {
            return Ok(Some(lock));
        }
        drop(lock);
        drop(self.write_lock()?);
        self.read_lock_as_is()
    }
}

/// Clean up after every abandoned operation. Call with the store lock held.
pub(crate) fn sweep(store: &Store, lock: &crate::lock::StoreLock) -> Result<Vec<Abandoned>> {
    let found = crate::scratch::abandoned(store)?;
    for op in &found {
        clean(store, lock, op)?;
    }
    Ok(found)
}

fn clean(store: &Store, lock: &crate::lock::StoreLock, op: &Abandoned) -> Result<()> {
    let name = crate::scratch::split_record_name(&op.record).map(|(name, _)| name).unwrap_or_default();
    if is_journal(&op.what) {
        recover(store, lock, &name, &op.what)?;
    }
    // A create or remove may have left `l/<link>` pointing at a layer that is not there.
    if let Some(link) = op.what.split_whitespace().nth(2).and_then(|l| l.parse::<ShortLink>().ok()) {
        let path = store.link_dir().join(link.as_str());
        if path.symlink_metadata().is_ok() && !path.exists() {
            remove_if_exists(&path)?;
        }
    }
    if !name.is_empty() {
        crate::scratch::remove_scratch_of(store, &name)?;
    }
    tracing::info!(what = %op.what, "cleaned up an operation abandoned by a dead process");
    remove_if_exists(&op.record)
}

/// How to carry out the journal of one kind of operation whose process died.
pub(crate) struct Recovery {
    /// The kinds it handles: records whose first line starts with this.
    pub prefix: &'static str,
    /// Carry out the journal found (see [`Journaled`]), under the store lock.
    pub recover: fn(&Store, &StoreLock, &Journaled<'_>) -> Result<()>,
}

/// A journal as found in a record.
pub(crate) struct Journaled<'a> {
    /// The operation's name.
    pub name: &'a str,
    /// Its kind (`image add`, `container remove`, …).
    pub kind: &'a str,
    /// Its steps, in the order noted.
    pub steps: Vec<&'a str>,
    /// A scratch directory of the recovery's own.
    pub work: &'a Scratch,
}

impl Journaled<'_> {
    /// Whether the operation was an add (undone), as opposed to a remove (finished).
    pub(crate) fn is_add(&self) -> bool {
        self.kind.ends_with(" add")
    }
}

/// Whether a record's description is a journal some module knows how to carry out.
pub(crate) fn is_journal(what: &str) -> bool {
    crate::RECOVERIES.iter().any(|r| what.starts_with(r.prefix))
}

/// Carry out the journal of a dead operation (called by the sweep, under the lock). A journal
/// that ends with `done` needs nothing.
pub(crate) fn recover(store: &Store, lock: &StoreLock, name: &str, what: &str) -> Result<()> {
    let mut lines = what.lines();
    let kind = lines.next().unwrap_or_default();
    let steps: Vec<&str> = lines.collect();
    if steps.last() == Some(&DONE) {
        return Ok(());
    }
    let Some(recovery) = crate::RECOVERIES.iter().find(|r| kind.starts_with(r.prefix)) else {
        return Ok(());
    };
    let work = Scratch::new(store, "recover")?;
    mkdir(work.dir(), 0o700)?;
    (recovery.recover)(store, lock, &Journaled { name, kind, steps, work: &work })?;
    work.finish()
}

/// The journal of an operation in flight, and its scratch directory for files on their way
/// into place.
#[derive(Debug)]
pub(crate) struct Journal {
    scratch: Scratch,
    text: String,
}

impl Journal {
    /// Start an operation of `kind` (`image add`, …: one of the prefixes in `crate::RECOVERIES`).
    pub(crate) fn begin(store: &Store, kind: &str) -> Result<Journal> {
        let scratch = Scratch::new(store, kind)?;
        mkdir(scratch.dir(), 0o700)?;
        Ok(Journal { scratch, text: kind.to_owned() })
    }

    /// Note a step before taking it.
    pub(crate) fn note(&mut self, line: &str) -> Result<()> {
        self.scratch.append(line)?;
        self.text.push('\n');
        self.text.push_str(line);
        Ok(())
    }

    /// Undo (an add) or finish (a remove) now, as the sweep would after a crash.
    pub(crate) fn undo(self, store: &Store, lock: &StoreLock) -> Result<()> {
        recover(store, lock, &self.scratch.name(), &self.text)?;
        self.scratch.finish()
    }

    /// A directory for files on their way into place (same filesystem as the store).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.scratch.dir()
    }

    /// A name unique to this operation, for its layerdb write-sets.
    pub(crate) fn name(&self) -> String {
        self.scratch.name()
    }

    /// Every step is taken.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.scratch.append(DONE)?;
        self.scratch.finish()
    }
}
