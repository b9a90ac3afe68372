//! Writing images: adding to the image database under the store lock, step by journaled step
//! (see `journal`): layers first, then the image config, then names, so that nothing is
//! visible before what it stands on. `load`, `import` and `commit` write through it, and so
//! can a builder or a pull.

use super::ImageStore;
use super::ids::{ChainId, ImageId};
use super::journal::{self, Step};
use super::layerdb::LayerRecord;
use super::reference::Reference;
use super::repositories::Repositories;
use crate::archive::Staged;
use crate::digest::DiffId;
use crate::error::Result;
use crate::id::LayerId;
use crate::layer::CreateOptions;
use crate::lock::StoreLock;
use crate::txn::Journal;

/// Images being written: an add in progress that holds the store's write lock. Dropped
/// without [`commit`](ImageWriter::commit) (an error, a panic), every step is undone at once;
/// a killed process's steps are undone by the next writer.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// let images = strata::Store::open("/var/lib/strata")?.images();
/// let staged = images.stage_dir(std::path::Path::new("/tmp/rootfs"))?; // outside the lock
/// let mut writer = images.writer()?;
/// let diff_id = staged.applied().stream.diff_id;
/// let (layer, _) = writer.layer(None, diff_id, Some(staged))?;
/// let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#, layer.diff_id);
/// let id = writer.image(config.as_bytes(), None)?;
/// writer.tag("example:1".parse()?, id)?;
/// writer.commit()?;
/// # Ok(()) }
/// ```
pub struct ImageWriter<'a> {
    images: &'a ImageStore,
    lock: StoreLock,
    /// `None` once committed.
    journal: Option<Journal>,
    repos: Repositories,
    repos_changed: bool,
    /// Whether the layers added so far are on disk (synced before the first config).
    layers_synced: bool,
}

impl<'a> ImageWriter<'a> {
    /// Take the store's write lock and start (see [`ImageStore::writer`]).
    pub(crate) fn begin(images: &'a ImageStore) -> Result<Self> {
        let lock = images.store.write_lock()?;
        images.layerdb.ensure()?;
        images.imagedb.ensure()?;
        let journal = Journal::begin(&images.store, journal::ADD)?;
        let repos = images.repositories()?;
        Ok(ImageWriter { images, lock, journal: Some(journal), repos, repos_changed: false, layers_synced: false })
    }

    /// The stack of the layer `diff_id` on `parent` (none: a base layer), stored already or
    /// made now from `staged` (its files, extracted aside). Returns its record and whether it
    /// is new; without `staged`, a stack not stored is an error.
    pub fn layer(
        &mut self,
        parent: Option<&LayerRecord>,
        diff_id: DiffId,
        staged: Option<Staged>,
    ) -> Result<(LayerRecord, bool)> {
        let chain = ChainId::of(parent.map(|p| p.chain_id), diff_id);
        if let Some(existing) = self.images.layerdb.get(chain)? {
            return Ok((existing, false));
        }
        let staged = staged.ok_or_else(|| crate::Error::BadImage {
            what: format!("layer {chain}"),
            reason: "is neither stored nor given".into(),
        })?;
        let cache_id = LayerId::random();
        self.journal().note(&Step::Layer(cache_id.clone()).line())?;
        let options = CreateOptions { id: Some(cache_id.clone()), parent: parent.map(|p| p.cache_id.clone()) };
        self.images.layers.create_locked(&self.lock, &options, Some(staged.dir()))?;
        crate::failpoint::hit("register.layer");
        let record = LayerRecord {
            chain_id: chain,
            diff_id,
            parent: parent.map(|p| p.chain_id),
            cache_id,
            size: staged.applied.layer_size,
        };
        self.journal().note(&Step::Chain(chain).line())?;
        self.images.layerdb.register(&record, staged.applied.tar_split.as_deref(), &self.journal().name())?;
        staged.scratch.finish()?;
        Ok((record, true))
    }

    /// Store an image config (if new) and record the image it was built on, if given. Returns
    /// the image ID (the digest of `config`, byte for byte). Its layers must be written first.
    pub fn image(&mut self, config: &[u8], parent: Option<ImageId>) -> Result<ImageId> {
        let id = ImageId::of_config(config);
        if self.images.imagedb.contains(id) {
            return Ok(id);
        }
        // Durable before visible: an image is listed once its config is stored, so its layers'
        // files reach the disk first.
        if !self.layers_synced {
            self.images.store.sync()?;
            self.layers_synced = true;
        }
        self.journal().note(&Step::Image(id).line())?;
        self.images.imagedb.put(id, config, self.journal().dir())?;
        if let Some(parent) = parent {
            self.images.imagedb.set_parent(id, parent)?;
        }
        crate::failpoint::hit("register.image");
        Ok(id)
    }

    /// Mark `id` as built in this store (`builtLocally`, as dockerd 24.0.9 and later do): only
    /// such images serve as a build's cache without question.
    pub fn built_locally(&mut self, id: ImageId) -> Result<()> {
        self.images.imagedb.set_built_locally(id)
    }

    /// Point `name` at `id` (written at [`commit`](Self::commit)). Returns the image it
    /// pointed at before, if another.
    pub fn tag(&mut self, name: Reference, id: ImageId) -> Result<Option<ImageId>> {
        let before = self.repos.get(&name);
        if before == Some(id) {
            return Ok(None);
        }
        self.journal().note(&Step::Tag(name.clone(), before).line())?;
        self.repos.set(name, id);
        self.images.imagedb.touch(id)?;
        self.repos_changed = true;
        Ok(before)
    }

    /// Write the names and end the journal: the add is complete.
    pub fn commit(mut self) -> Result<()> {
        // The configs (and any layers since) before the names that lead to them; then the
        // names, so that success means the image survives a power loss.
        self.images.store.sync()?;
        if self.repos_changed {
            let dir = self.journal().dir().to_owned();
            self.repos.save(&self.images.repositories, &dir)?;
            self.images.store.sync()?;
        }
        crate::failpoint::hit("register.tagged");
        self.journal.take().expect("not committed").finish()
    }

    fn journal(&mut self) -> &mut Journal {
        self.journal.as_mut().expect("not committed")
    }
}

impl Drop for ImageWriter<'_> {
    /// An add that failed with an error is undone at once, under the lock it still holds.
    fn drop(&mut self) {
        if let Some(journal) = self.journal.take()
            && let Err(e) = journal.undo(&self.images.store, &self.lock)
        {
            tracing::warn!("undoing a failed image operation: {e} (the next write retries)");
        }
    }
}
