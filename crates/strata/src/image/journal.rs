//! The steps of image operations, and how to carry out the journal of one whose process died
//! (see `txn`). Image operations touch several files (overlay2 layers, layerdb entries,
//! configs, `repositories.json`); each is written whole, but a kill between two of them must
//! not leave half an image:
//!
//! - an **add** (load, import, commit) lists what it creates: `layer <cache-id>`,
//!   `chain <chainID>`, `image <imageID>`, `tag <name> <previous image or ->`, then `done`.
//!   If its process dies before `done`, the next writer undoes every step, newest first.
//! - a **remove** (rmi) lists everything it will remove before it removes anything: `untag`,
//!   `image`, `chain`, `layer` lines. If its process dies, the next writer finishes the job.
//!
//! Containers journal their own kinds with these steps and one of theirs (`container`).

use std::path::PathBuf;

use super::ids::{ChainId, ImageId};
use super::reference::Reference;
use super::repositories::{self, Repositories};
use super::{imagedb, layerdb};
use crate::error::Result;
use crate::id::LayerId;
use crate::lock::StoreLock;
use crate::store::Store;
use crate::txn::{Journaled, Recovery};

/// An image add (load, import, commit).
pub(crate) const ADD: &str = "image add";
/// An image remove (rmi).
pub(crate) const REMOVE: &str = "image remove";

/// How the journal of an image operation is carried out.
pub(crate) const RECOVERY: Recovery = Recovery { prefix: "image ", recover };

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
}

impl Step {
    /// The journal line.
    pub(crate) fn line(&self) -> String {
        match self {
            Step::Layer(id) => format!("layer {id}"),
            Step::Chain(id) => format!("chain {id}"),
            Step::Image(id) => format!("image {id}"),
            Step::Tag(r, old) => format!("tag {r} {}", old.map_or("-".to_owned(), |o| o.to_string())),
            Step::Untag(r, id) => format!("untag {r} {id}"),
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
            _ => return None,
        };
        Some(step)
    }
}

/// Undo (an add) or finish (a remove) the steps of a dead image operation.
fn recover(store: &Store, lock: &StoreLock, journal: &Journaled<'_>) -> Result<()> {
    let undo = journal.is_add();
    let ordered: Vec<&&str> = if undo { journal.steps.iter().rev().collect() } else { journal.steps.iter().collect() };
    for line in ordered {
        take(store, lock, line, undo, journal)?;
    }
    drop_write_sets(store, journal.name)
}

/// Undo or finish one step of a journal; a line that is no image step is left alone (and
/// `false` returned).
pub(crate) fn take(store: &Store, lock: &StoreLock, line: &str, undo: bool, journal: &Journaled<'_>) -> Result<bool> {
    let Some(step) = Step::parse(line) else { return Ok(false) };
    let root = store.root();
    let repos_path: PathBuf = repositories::path(root);
    match &step {
        Step::Tag(r, old) if undo => {
            let mut repos = Repositories::load(&repos_path)?;
            let before = match old {
                Some(old) => repos.set(r.clone(), *old),
                None => repos.remove(r),
            };
            if before != *old {
                repos.save(&repos_path, journal.work.dir())?;
            }
        }
        Step::Untag(r, id) if !undo => {
            let mut repos = Repositories::load(&repos_path)?;
            if repos.get(r) == Some(*id) {
                repos.remove(r);
                repos.save(&repos_path, journal.work.dir())?;
            }
        }
        Step::Tag(..) | Step::Untag(..) => {}
        Step::Image(id) => imagedb::ImageDb::new(store).remove(*id)?,
        Step::Chain(id) => layerdb::LayerDb::new(store).remove(*id, &journal.work.name())?,
        Step::Layer(id) => {
            if store.layer_dir(id).exists() {
                store.layers().remove_locked(lock, id)?.finish()?;
            }
        }
    }
    tracing::info!(step = %line, undo, "recovered a step of an interrupted operation");
    Ok(true)
}

/// Write-sets a dead operation named `name` left in layerdb/tmp.
pub(crate) fn drop_write_sets(store: &Store, name: &str) -> Result<()> {
    for leftover in layerdb::LayerDb::new(store).leftovers_of(name) {
        crate::scratch::remove_tree(&leftover)?;
    }
    Ok(())
}
