//! Storing images from any source of blobs: an archive (`load`), a registry (`pull`).
//!
//! 1. The caller plans: each image's config (checked) and its layers' blobs ([`ImagePlan`]).
//! 2. The stacks (chainIDs) not stored yet are staged in parallel, each blob streamed from its
//!    [`BlobSource`] into a scratch directory of its own (a layer's `diff/` does not depend on
//!    the layers below it), its digest and diffID checked as it streams.
//! 3. Under the store lock, journaled ([`ImageWriter`](super::ImageWriter)): the layers are
//!    stacked in order, the configs stored, the names set. A failure anywhere leaves the store
//!    as it was.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::ImageStore;
use super::config::ImageConfig;
use super::ids::{ChainId, ImageId};
use super::reference::Reference;
use crate::archive::{ApplyOptions, Staged};
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};

/// Where the blobs of planned layers come from. Called from several threads at once.
pub trait BlobSource: Sync {
    /// What it is, for messages: an archive's path, a registry's repository.
    fn describe(&self) -> String;

    /// A reader of a layer's blob (compressed or not), and its size if known.
    fn open(&self, blob: &LayerBlob) -> Result<(Box<dyn Read + Send + '_>, Option<u64>)>;

    /// The blob was staged (`Ok`), or failed with an error of this kind: a source that keeps
    /// what it read (a pull's partial blobs) drops it now, or keeps it for the next attempt.
    fn finished(&self, _blob: &LayerBlob, _outcome: std::result::Result<(), crate::ErrorKind>) {}
}

/// Where a layer's blob is, as its source names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The source's name for it: a member of an archive, a digest in a registry.
    pub locator: String,
    /// The digest of the blob as stored, if the manifest gives it (checked while it streams).
    pub digest: Option<Digest>,
    /// Its size in bytes, if the manifest gives it (no more is read).
    pub size: Option<u64>,
}

/// One layer of a planned image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// Its blob.
    pub blob: LayerBlob,
    /// The digest of its uncompressed tar, from the config.
    pub diff_id: DiffId,
    /// The stack it tops.
    pub chain: ChainId,
}

/// An image to store: its config (exact bytes), its layers' blobs and its names.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Its ID: the digest of the config.
    pub id: ImageId,
    /// The config's exact bytes.
    pub config: Vec<u8>,
    /// Its layers, bottom first.
    pub layers: Vec<LayerPlan>,
    /// The names to give it (`:latest` added to a bare name).
    pub names: Vec<Reference>,
}

impl ImagePlan {
    /// Check `config` (named `what` in errors) against the manifest's `blobs`, one per layer
    /// of its `rootfs`, bottom first.
    pub fn new(what: &str, config: Vec<u8>, blobs: Vec<LayerBlob>, names: Vec<Reference>) -> Result<ImagePlan> {
        let id = ImageId::of_config(&config);
        let parsed = ImageConfig::parse(&config, &format!("{what}: image {id}"))?;
        let diff_ids = &parsed.rootfs.diff_ids;
        if diff_ids.len() != blobs.len() {
            return Err(Error::BadImage {
                what: format!("{what}: image {id}"),
                reason: format!("the manifest lists {} layers but the config {}", blobs.len(), diff_ids.len()),
            });
        }
        let layers = blobs
            .into_iter()
            .zip(diff_ids.iter().zip(ChainId::chain(diff_ids)))
            .map(|(blob, (diff_id, chain))| LayerPlan { blob, diff_id: *diff_id, chain })
            .collect();
        Ok(ImagePlan { id, config, layers, names: names.into_iter().map(Reference::or_latest).collect() })
    }
}

/// What happens to one layer while images are stored, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// The stack is stored already; nothing to do.
    Exists {
        /// The layer's diffID.
        diff_id: DiffId,
        /// Its blob's digest, if known.
        digest: Option<Digest>,
    },
    /// Staging is about to start.
    Started {
        /// Index among the layers to stage.
        index: usize,
        /// The layer's diffID.
        diff_id: DiffId,
        /// Its blob's digest, if known.
        digest: Option<Digest>,
        /// Bytes of its blob, if known.
        size: Option<u64>,
    },
    /// Blob bytes read so far.
    Read {
        /// Index among the layers to stage.
        index: usize,
        /// Bytes read so far.
        bytes: u64,
    },
    /// Staged and verified.
    Done {
        /// Index among the layers to stage.
        index: usize,
    },
}

/// Receives [`LayerEvent`]s, from several threads.
pub trait Progress: Sync {
    /// One event.
    fn event(&self, event: LayerEvent);
}

impl Progress for () {
    fn event(&self, _: LayerEvent) {}
}

/// The outcome of storing images.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    /// The images, in plan order.
    pub images: Vec<LoadedImage>,
    /// Layers extracted.
    pub layers_extracted: usize,
    /// Layers that were stored already.
    pub layers_reused: usize,
}

/// One stored image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadedImage {
    /// Its ID.
    pub id: ImageId,
    /// The names it was given.
    pub names: Vec<String>,
}

impl ImageStore {
    /// Store the planned images, staging up to `workers` layers at once from `source`.
    pub fn store_images(
        &self,
        plans: &[ImagePlan],
        source: &dyn BlobSource,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<Loaded> {
        self.store.ensure_layout()?;
        // Layers to stage: new stacks, each once.
        let mut jobs: Vec<LayerPlan> = Vec::new();
        let mut seen = HashSet::new();
        let mut reused = 0;
        for layer in plans.iter().flat_map(|p| &p.layers) {
            if !seen.insert(layer.chain) {
                continue;
            }
            if self.layerdb.contains(layer.chain) {
                reused += 1;
                progress.event(LayerEvent::Exists { diff_id: layer.diff_id, digest: layer.blob.digest });
            } else {
                jobs.push(layer.clone());
            }
        }
        let stager = Stager { images: self, source, progress, workers: workers.max(1) };
        let mut staged = stager.stage_all(&jobs, 0)?;
        let mut extracted = jobs.len();

        // Stacks found stored may have been removed since (an `rmi` beside this one): under
        // the lock, stage what is now missing, and look again.
        let mut writer = loop {
            let writer = self.writer()?;
            let mut missing: Vec<LayerPlan> = Vec::new();
            for layer in plans.iter().flat_map(|p| &p.layers) {
                if !staged.contains_key(&layer.chain)
                    && !self.layerdb.contains(layer.chain)
                    && !missing.iter().any(|m| m.chain == layer.chain)
                {
                    missing.push(layer.clone());
                }
            }
            if missing.is_empty() {
                break writer;
            }
            drop(writer);
            if extracted > jobs.len() + 8 * seen.len() {
                return Err(Error::BadImage {
                    what: source.describe(),
                    reason: "its layers keep being removed while it is stored; try again".into(),
                });
            }
            tracing::info!(layers = missing.len(), "stored layers were removed meanwhile; staging them");
            staged.extend(stager.stage_all(&missing, extracted)?);
            extracted += missing.len();
            reused -= missing.len().min(reused);
        };
        let mut loaded = Vec::new();
        for image in plans {
            let mut parent = None;
            for layer in &image.layers {
                let (record, _) = writer.layer(parent.as_ref(), layer.diff_id, staged.remove(&layer.chain))?;
                parent = Some(record);
            }
            writer.image(&image.config, None)?;
            for name in &image.names {
                writer.tag(name.clone(), image.id)?;
            }
            loaded.push(LoadedImage { id: image.id, names: image.names.iter().map(|n| n.to_string()).collect() });
        }
        writer.commit()?;
        Ok(Loaded { images: loaded, layers_extracted: extracted, layers_reused: reused })
    }
}

/// Stages layers from one source on a few threads.
struct Stager<'a> {
    images: &'a ImageStore,
    source: &'a dyn BlobSource,
    progress: &'a dyn Progress,
    workers: usize,
}

impl Stager<'_> {
    /// Stage `jobs` on up to `workers` threads; the first error stops the rest.
    fn stage_all(&self, jobs: &[LayerPlan], first_index: usize) -> Result<HashMap<ChainId, Staged>> {
        let workers = self.workers.min(jobs.len());
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let results: Mutex<Vec<(ChainId, Staged)>> = Mutex::new(Vec::new());
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let fail = |e: Error| {
            cancel.store(true, Ordering::Relaxed);
            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        };
        std::thread::scope(|scope| {
            for started in 0..workers {
                let spawned = std::thread::Builder::new().name("strata-stage".into()).spawn_scoped(scope, || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= jobs.len() || cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        match self.stage_one(&jobs[index], first_index + index, &cancel) {
                            Ok(staged) => {
                                results.lock().unwrap_or_else(|p| p.into_inner()).push((jobs[index].chain, staged))
                            }
                            Err(e) => return fail(e),
                        }
                    }
                });
                // Fewer threads than asked still do every job; none at all is an error.
                if let Err(e) = spawned {
                    if started == 0 {
                        fail(Error::io("start a thread for", self.source.describe(), e));
                    }
                    break;
                }
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().collect())
    }

    /// Stage one layer; the source hears how it went once its blob was opened.
    fn stage_one(&self, job: &LayerPlan, index: usize, cancel: &AtomicBool) -> Result<Staged> {
        let blob = &job.blob;
        let (reader, size) = self.source.open(blob)?;
        let staged = self.stage_opened(job, reader, size, index, cancel);
        self.source.finished(blob, staged.as_ref().map(|_| ()).map_err(Error::kind));
        let staged = staged?;
        self.progress.event(LayerEvent::Done { index });
        Ok(staged)
    }

    fn stage_opened(
        &self,
        job: &LayerPlan,
        reader: Box<dyn Read + Send + '_>,
        size: Option<u64>,
        index: usize,
        cancel: &AtomicBool,
    ) -> Result<Staged> {
        let blob = &job.blob;
        let what = || format!("{}: layer {}", self.source.describe(), blob.locator);
        if let (Some(expected), Some(size)) = (blob.size, size)
            && expected != size
        {
            return Err(Error::BadImage {
                what: what(),
                reason: format!("the manifest says {expected} bytes, the blob has {size}"),
            });
        }
        let size = blob.size.or(size);
        self.progress.event(LayerEvent::Started { index, diff_id: job.diff_id, digest: blob.digest, size });
        let counted = Counted { inner: reader, bytes: 0, limit: size, index, progress: self.progress, cancel };
        let options = ApplyOptions { diff_id: Some(job.diff_id), digest: blob.digest, tar_split: true };
        self.images.layers.stage(counted, &options).map_err(|e| match e {
            Error::DigestMismatch { .. } | Error::Archive { .. } => {
                Error::BadImage { what: what(), reason: e.to_string() }
            }
            e => e,
        })
    }
}

/// Counts bytes for the progress display, reads no more than the blob's size, and stops
/// when another layer failed.
struct Counted<'a> {
    inner: Box<dyn Read + Send + 'a>,
    bytes: u64,
    limit: Option<u64>,
    index: usize,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled: another layer failed"));
        }
        // One byte past the size is read, so that a longer blob is caught.
        let room = self.limit.map_or(buf.len(), |l| (l + 1 - self.bytes.min(l + 1)) as usize).min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.bytes += n as u64;
        if let Some(limit) = self.limit.filter(|l| self.bytes > *l) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the blob is longer than the {limit} bytes its manifest gives"),
            ));
        }
        self.progress.event(LayerEvent::Read { index: self.index, bytes: self.bytes });
        Ok(n)
    }
}
