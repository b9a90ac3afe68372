//! Image operations touch several files (overlay2 layers, layerdb entries, configs,
//! `repositories.json`); each is written whole, but a kill between two of them must not leave
//! half an image. So an operation keeps a journal in its record
//! (`<root>/strata/tmp/<n>_image_add`), adding a line *before* each step:
//!
//! - an **add** (load, import, commit) lists what it creates: `layer <cache-id>`,
//!   `chain <chainID>`, `image <imageID>`, `tag <name> <previous image or ->`, then `done`.
//!   If its process dies before `done`, the next writer undoes every step, newest first.
//! - a container's create and rm do the same, with `container <id>` for its records.
//! - a **remove** (rmi) lists everything it will remove before it removes anything: `untag`,
//!   `image`, `chain`, `layer` lines. If its process dies, the next writer finishes the job.
//!
//! Both run under the store lock, so nobody sees or builds on the steps in between.

use std::path::PathBuf;

use super::ids::{ChainId, ImageId};
use super::reference::Reference;
use super::repositories::{self, Repositories};
use super::{imagedb, layerdb};
use crate::container::ContainerId;
use crate::error::Result;
use crate::fsutil::mkdir;
use crate::id::LayerId;
use crate::lock::StoreLock;
use crate::scratch::Scratch;
use crate::store::Store;

/// How image operation records start.
pub(crate) const PREFIX: &str = "image ";
const ADD: &str = "image add";
const REMOVE: &str = "image remove";
const DONE: &str = "done";

/// One step of an image operation.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// An overlay2 layer.
    Layer(LayerId),
    /// A layerdb entry.
    Chain(ChainId),
    /// An image config and its metadata.
    Image(ImageId),
    /// A name set to an image; it pointed at the given one before (for an add).
    Tag(Reference, Option<ImageId>),
    /// A name dropped from an image (for a remove).
    Untag(Reference, ImageId),
    /// A container's records: `containers/<id>/`, `layerdb/mounts/<id>/` and strata's own.
    Container(ContainerId),
}

impl Step {
    fn line(&self) -> String {
        match self {
            Step::Layer(id) => format!("layer {id}"),
            Step::Chain(id) => format!("chain {id}"),
            Step::Image(id) => format!("image {id}"),
            Step::Tag(r, old) => format!("tag {r} {}", old.map_or("-".to_owned(), |o| o.to_string())),
            Step::Untag(r, id) => format!("untag {r} {id}"),
            Step::Container(id) => format!("container {id}"),
        }
    }

    fn parse(line: &str) -> Option<Step> {
        let mut words = line.split(' ');
        let step = match (words.next()?, words.next()?, words.next()) {
            ("layer", id, None) => Step::Layer(id.parse().ok()?),
            ("chain", id, None) => Step::Chain(id.parse().ok()?),
            ("image", id, None) => Step::Image(id.parse().ok()?),
            ("tag", r, Some("-")) => Step::Tag(r.parse().ok()?, None),
            ("tag", r, Some(old)) => Step::Tag(r.parse().ok()?, Some(old.parse().ok()?)),
            ("untag", r, Some(id)) => Step::Untag(r.parse().ok()?, id.parse().ok()?),
            ("container", id, None) => Step::Container(id.parse().ok()?),
            _ => return None,
        };
        Some(step)
    }
}

/// The journal of an operation in flight, and its scratch directory for files on their way
/// into place.
#[derive(Debug)]
pub(crate) struct Journal {
    scratch: Scratch,
    text: String,
}

impl Journal {
    /// Start an add (`remove == false`) or a remove.
    pub(crate) fn begin(store: &Store, remove: bool) -> Result<Journal> {
        let text = if remove { REMOVE } else { ADD };
        let scratch = Scratch::new(store, text)?;
        mkdir(scratch.dir(), 0o700)?;
        Ok(Journal { scratch, text: text.to_owned() })
    }

    /// Note a step before taking it.
    pub(crate) fn note(&mut self, step: &Step) -> Result<()> {
        let line = step.line();
        self.scratch.append(&line)?;
        self.text.push('\n');
        self.text.push_str(&line);
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

/// Finish or undo an operation whose process died (called by the sweep, under the lock).
pub(crate) fn recover(store: &Store, lock: &StoreLock, name: &str, what: &str) -> Result<()> {
    let mut lines = what.lines();
    let kind = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    if rest.last() == Some(&DONE) {
        return Ok(());
    }
    let steps: Vec<Step> = rest.iter().filter_map(|l| Step::parse(l)).collect();
    let work = Scratch::new(store, "image recover")?;
    mkdir(work.dir(), 0o700)?;
    let undo = kind == ADD;
    let ordered: Vec<&Step> = if undo { steps.iter().rev().collect() } else { steps.iter().collect() };
    let root = store.root();
    let layerdb = layerdb::LayerDb::new(layerdb::path(root));
    let imagedb = imagedb::ImageDb::new(imagedb::path(root));
    let repos_path: PathBuf = repositories::path(root);
    for step in ordered {
        match step {
            Step::Tag(r, old) if undo => {
                let mut repos = Repositories::load(&repos_path)?;
                let before = match old {
                    Some(old) => repos.set(r.clone(), *old),
                    None => repos.remove(r),
                };
                if before != *old {
                    repos.save(&repos_path, work.dir())?;
                }
            }
            Step::Untag(r, id) if !undo => {
                let mut repos = Repositories::load(&repos_path)?;
                if repos.get(r) == Some(*id) {
                    repos.remove(r);
                    repos.save(&repos_path, work.dir())?;
                }
            }
            Step::Tag(..) | Step::Untag(..) => {}
            Step::Image(id) => imagedb.remove(*id)?,
            Step::Container(id) => crate::container::remove_records(store, *id, &work)?,
            Step::Chain(id) => layerdb.remove(*id, &work.name())?,
            Step::Layer(id) => {
                if store.layer_dir(id).exists() {
                    store.layers().remove_locked(lock, id)?.finish()?;
                }
            }
        }
        tracing::info!(step = %step.line(), undo, "recovered a step of an interrupted image operation");
    }
    // Write-sets the dead operation left in layerdb/tmp.
    for leftover in layerdb.leftovers_of(name) {
        crate::scratch::remove_tree(&leftover)?;
    }
    work.finish()
}
