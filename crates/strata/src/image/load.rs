//! `load`: images from a `docker save` tarball or an OCI image layout (a directory, or a tar
//! of one as `skopeo copy … oci-archive:` writes), with plain, gzip or zstd layers.
//!
//! 1. Read the archive's manifests and configs, and check every config's digest.
//! 2. Find which layer stacks (chainIDs) are new; the others are reused.
//! 3. Extract the new layers in parallel, each into a scratch directory of its own (a layer's
//!    `diff/` does not depend on the layers below it), checking each blob's digest and diffID
//!    while it streams.
//! 4. Under the store lock, journaled: stack the layers in order, register them, store the
//!    configs, set the names. A failure anywhere leaves the store as it was.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::ImageStore;
use super::config::{ImageConfig, MAX_CONFIG};
use super::ids::{ChainId, ImageId};
use super::reference::Reference;
use super::source::Source;
use crate::archive::{ApplyOptions, Staged};
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};

/// What happens to one layer during a load, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// The stack is stored already; nothing to do.
    Exists {
        /// The layer's diffID.
        diff_id: DiffId,
    },
    /// Extraction is about to start.
    Started {
        /// Index among the layers to extract.
        index: usize,
        /// The layer's diffID.
        diff_id: DiffId,
        /// Bytes of its blob.
        size: u64,
    },
    /// Blob bytes read so far.
    Read {
        /// Index among the layers to extract.
        index: usize,
        /// Bytes read so far.
        bytes: u64,
    },
    /// Extracted and verified.
    Done {
        /// Index among the layers to extract.
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

/// The outcome of a load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    /// The images, in archive order.
    pub images: Vec<LoadedImage>,
    /// Layers extracted.
    pub layers_extracted: usize,
    /// Layers that were stored already.
    pub layers_reused: usize,
}

/// One loaded image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadedImage {
    /// Its ID.
    pub id: ImageId,
    /// The names it was given.
    pub names: Vec<String>,
}

/// An image found in the archive, read and checked.
struct Planned {
    id: ImageId,
    config: Vec<u8>,
    layers: Vec<PlannedLayer>,
    names: Vec<Reference>,
}

#[derive(Clone)]
struct PlannedLayer {
    blob: String,
    digest: Option<Digest>,
    size: Option<u64>,
    diff_id: DiffId,
    chain: ChainId,
}

/// `manifest.json` of `docker save`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ImageStore {
    /// Load every image in the archive at `path` (`-`: standard input).
    pub fn load(&self, path: &Path, progress: &dyn Progress) -> Result<Loaded> {
        self.store.ensure_layout()?;
        let source = Source::open(path, &self.store.tmp_dir())?;
        let planned = plan(&source)?;

        // Layers to extract: new stacks, each once.
        let mut jobs: Vec<PlannedLayer> = Vec::new();
        let mut seen = HashSet::new();
        let mut reused = 0;
        for layer in planned.iter().flat_map(|p| &p.layers) {
            if !seen.insert(layer.chain) {
                continue;
            }
            if self.layerdb.contains(layer.chain) {
                reused += 1;
                progress.event(LayerEvent::Exists { diff_id: layer.diff_id });
            } else {
                jobs.push(layer.clone());
            }
        }
        let mut staged = self.extract_all(&source, &jobs, 0, progress)?;
        let mut extracted = jobs.len();

        // Stacks found stored may have been removed since (an `rmi` beside this load): under
        // the lock, extract what is now missing, and look again.
        let mut registration = loop {
            let registration = self.writer()?;
            let mut missing: Vec<PlannedLayer> = Vec::new();
            for layer in planned.iter().flat_map(|p| &p.layers) {
                if !staged.contains_key(&layer.chain)
                    && !self.layerdb.contains(layer.chain)
                    && !missing.iter().any(|m| m.chain == layer.chain)
                {
                    missing.push(layer.clone());
                }
            }
            if missing.is_empty() {
                break registration;
            }
            drop(registration);
            if extracted > jobs.len() + 8 * seen.len() {
                return Err(Error::BadImage {
                    what: source.path().display().to_string(),
                    reason: "its layers keep being removed while it loads; try again".into(),
                });
            }
            tracing::info!(layers = missing.len(), "stored layers were removed while loading; extracting them");
            staged.extend(self.extract_all(&source, &missing, extracted, progress)?);
            extracted += missing.len();
            reused -= missing.len().min(reused);
        };
        let mut loaded = Vec::new();
        for image in &planned {
            let mut parent = None;
            for layer in &image.layers {
                let (record, _) = registration.layer(parent.as_ref(), layer.diff_id, staged.remove(&layer.chain))?;
                parent = Some(record);
            }
            registration.image(&image.config, None)?;
            for name in &image.names {
                registration.tag(name.clone(), image.id)?;
            }
            loaded.push(LoadedImage { id: image.id, names: image.names.iter().map(|n| n.to_string()).collect() });
        }
        registration.commit()?;
        Ok(Loaded { images: loaded, layers_extracted: extracted, layers_reused: reused })
    }

    /// Extract `jobs` on as many threads as there are CPUs; the first error stops the rest.
    fn extract_all(
        &self,
        source: &Source,
        jobs: &[PlannedLayer],
        first_index: usize,
        progress: &dyn Progress,
    ) -> Result<HashMap<ChainId, Staged>> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(jobs.len());
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let results: Mutex<Vec<(ChainId, Staged)>> = Mutex::new(Vec::new());
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for started in 0..workers {
                let spawned = std::thread::Builder::new().name("strata-load".into()).spawn_scoped(scope, || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= jobs.len() || cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        match self.extract_one(source, &jobs[index], first_index + index, progress, &cancel) {
                            Ok(staged) => results.lock().expect("not poisoned").push((jobs[index].chain, staged)),
                            Err(e) => {
                                cancel.store(true, Ordering::Relaxed);
                                first_error.lock().expect("not poisoned").get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
                // Fewer threads than CPUs still do every job; none at all is an error.
                if let Err(e) = spawned {
                    if started == 0 {
                        first_error.lock().expect("not poisoned").get_or_insert(Error::io(
                            "start a thread for",
                            source.path(),
                            e,
                        ));
                    }
                    break;
                }
            }
        });
        if let Some(e) = first_error.into_inner().expect("not poisoned") {
            return Err(e);
        }
        Ok(results.into_inner().expect("not poisoned").into_iter().collect())
    }

    fn extract_one(
        &self,
        source: &Source,
        job: &PlannedLayer,
        index: usize,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Staged> {
        let (reader, size) = source.reader(&job.blob)?;
        let what = || format!("{}: layer {}", source.path().display(), job.blob);
        if let Some(expected) = job.size.filter(|s| *s != size) {
            return Err(Error::BadImage {
                what: what(),
                reason: format!("the manifest says {expected} bytes, the blob has {size}"),
            });
        }
        progress.event(LayerEvent::Started { index, diff_id: job.diff_id, size });
        let counted = Counted { inner: reader, bytes: 0, index, progress, cancel };
        let options = ApplyOptions { diff_id: Some(job.diff_id), digest: job.digest, tar_split: true };
        let staged = self.layers.stage(counted, &options).map_err(|e| match e {
            Error::DigestMismatch { .. } | Error::Archive { .. } => {
                Error::BadImage { what: what(), reason: e.to_string() }
            }
            e => e,
        })?;
        progress.event(LayerEvent::Done { index });
        Ok(staged)
    }
}

/// Counts bytes for the progress display, and stops when another layer failed.
struct Counted<'a> {
    inner: Box<dyn Read + Send>,
    bytes: u64,
    index: usize,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        self.progress.event(LayerEvent::Read { index: self.index, bytes: self.bytes });
        Ok(n)
    }
}

/// Read the archive's manifests and configs into a plan; nothing is written.
fn plan(source: &Source) -> Result<Vec<Planned>> {
    let bad = |reason: String| Error::BadImage { what: source.path().display().to_string(), reason };
    if source.has("manifest.json") {
        let bytes = source.read("manifest.json", MAX_CONFIG)?;
        let manifests: Vec<DockerManifest> =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest.json is not valid: {e}")))?;
        if manifests.is_empty() {
            return Err(bad("manifest.json lists no images".into()));
        }
        return manifests
            .into_iter()
            .map(|m| {
                let config = source.read(&m.config, MAX_CONFIG)?;
                let id = ImageId::of_config(&config);
                // `<hex>.json` and `blobs/sha256/<hex>` name their content: hold them to it.
                if let Some(named) = digest_in_name(&m.config).filter(|d| *d != id.digest()) {
                    return Err(bad(format!("config {} has digest {id}, not {named}", m.config)));
                }
                let names = m.repo_tags.unwrap_or_default().iter().map(|t| repo_tag(t)).collect::<Result<_>>()?;
                let blobs = m.layers.into_iter().map(|l| (digest_in_name(&l), None, l)).collect();
                planned(source, id, config, blobs, names)
            })
            .collect();
    }
    if source.has("index.json") {
        if !source.has("oci-layout") {
            return Err(bad("index.json without oci-layout: not an OCI image layout".into()));
        }
        let index: ImageIndex = parse_json(source, "index.json", &source.read("index.json", MAX_CONFIG)?)?;
        let mut out = Vec::new();
        for descriptor in index.manifests() {
            let annotations = descriptor.annotations().clone().unwrap_or_default();
            let name = annotations
                .get("io.containerd.image.name")
                .or_else(|| annotations.get("org.opencontainers.image.ref.name"))
                .filter(|n| n.contains([':', '/']));
            let names = match name {
                Some(n) => vec![n.parse::<Reference>()?.or_latest()],
                None => Vec::new(),
            };
            let manifest = resolve_manifest(source, descriptor)?;
            let config_digest = oci_digest(source, manifest.config().digest())?;
            let config = read_blob(source, config_digest, manifest.config().size(), MAX_CONFIG)?;
            let id = ImageId::of_config(&config);
            let mut blobs = Vec::new();
            for layer in manifest.layers() {
                if matches!(
                    layer.media_type(),
                    MediaType::ImageLayerNonDistributable
                        | MediaType::ImageLayerNonDistributableGzip
                        | MediaType::ImageLayerNonDistributableZstd
                ) || layer.media_type().to_string().contains("foreign")
                {
                    return Err(bad("a non-distributable (foreign) layer cannot be loaded".into()));
                }
                let digest = oci_digest(source, layer.digest())?;
                blobs.push((Some(digest), Some(layer.size()), blob_path(digest)));
            }
            out.push(planned(source, id, config, blobs, names)?);
        }
        if out.is_empty() {
            return Err(bad("index.json lists no images".into()));
        }
        return Ok(out);
    }
    Err(bad("not an image archive: it has neither manifest.json (docker save) nor index.json (OCI layout)".into()))
}

fn planned(
    source: &Source,
    id: ImageId,
    config: Vec<u8>,
    blobs: Vec<(Option<Digest>, Option<u64>, String)>,
    names: Vec<Reference>,
) -> Result<Planned> {
    let parsed = ImageConfig::parse(&config, &format!("{}: image {id}", source.path().display()))?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != blobs.len() {
        return Err(Error::BadImage {
            what: format!("{}: image {id}", source.path().display()),
            reason: format!("the manifest lists {} layers but the config {}", blobs.len(), diff_ids.len()),
        });
    }
    // A descriptor's size is part of it: checked here, whether the layer is extracted or reused.
    for (digest, size, blob) in &blobs {
        if let Some(expected) = size {
            let (_, actual) = source.reader(blob)?;
            if actual != *expected {
                let digest = digest.map(|d| d.to_string()).unwrap_or_else(|| blob.clone());
                return Err(Error::BadImage {
                    what: format!("{}: image {id}", source.path().display()),
                    reason: format!("layer {digest}: its descriptor says {expected} bytes, the blob has {actual}"),
                });
            }
        }
    }
    let chains = ChainId::chain(diff_ids);
    let layers = blobs
        .into_iter()
        .zip(diff_ids.iter().zip(chains))
        .map(|((digest, size, blob), (diff_id, chain))| PlannedLayer { blob, digest, size, diff_id: *diff_id, chain })
        .collect();
    Ok(Planned { id, config, layers, names: names.into_iter().map(Reference::or_latest).collect() })
}

/// The image manifest a descriptor of index.json leads to, through a nested index if need be
/// (choosing this machine's platform).
fn resolve_manifest(source: &Source, descriptor: &oci_spec::image::Descriptor) -> Result<ImageManifest> {
    let mut descriptor = descriptor.clone();
    for _ in 0..4 {
        let digest = oci_digest(source, descriptor.digest())?;
        let bytes = read_blob(source, digest, descriptor.size(), MAX_CONFIG)?;
        let is_index = matches!(descriptor.media_type(), MediaType::ImageIndex)
            || descriptor.media_type().to_string() == "application/vnd.docker.distribution.manifest.list.v2+json";
        if !is_index {
            return parse_json(source, &blob_path(digest), &bytes);
        }
        let index: ImageIndex = parse_json(source, &blob_path(digest), &bytes)?;
        descriptor = choose_platform(source, digest, &index)?.clone();
    }
    Err(Error::BadImage { what: source.path().display().to_string(), reason: "indexes nest too deep".into() })
}

/// The manifest of an index for this machine's platform (os linux, its architecture): the one
/// whose platform matches, or the only one of an index that gives no platforms. An index
/// with no match is an error naming what it has, never its first manifest.
fn choose_platform<'a>(
    source: &Source,
    digest: Digest,
    index: &'a ImageIndex,
) -> Result<&'a oci_spec::image::Descriptor> {
    let arch = super::host_arch();
    let manifests = index.manifests();
    let matching =
        |p: &oci_spec::image::Platform| p.os().to_string() == "linux" && p.architecture().to_string() == arch;
    if let Some(found) = manifests.iter().find(|m| m.platform().as_ref().is_some_and(matching)) {
        return Ok(found);
    }
    if let [only] = manifests.as_slice()
        && only.platform().is_none()
    {
        return Ok(only);
    }
    let offered: Vec<String> = manifests
        .iter()
        .map(|m| match m.platform() {
            Some(p) => format!("{}/{}", p.os(), p.architecture()),
            None => "unknown".to_owned(),
        })
        .collect();
    Err(Error::BadImage {
        what: source.path().display().to_string(),
        reason: format!(
            "index {digest} has no image for linux/{arch} (it has: {})",
            if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }
        ),
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(source: &Source, name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadImage {
        what: source.path().display().to_string(),
        reason: format!("{name} is not valid: {e}"),
    })
}

/// Read a blob of an OCI layout and check its size (the descriptor's) and digest.
fn read_blob(source: &Source, digest: Digest, size: u64, limit: u64) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::BadImage { what: source.path().display().to_string(), reason };
    if size > limit {
        return Err(bad(format!(
            "blob {digest}: its descriptor says {size} bytes, more than a manifest or config may hold"
        )));
    }
    let bytes = source.read(&blob_path(digest), limit)?;
    if bytes.len() as u64 != size {
        return Err(bad(format!("blob {digest}: its descriptor says {size} bytes, the blob has {}", bytes.len())));
    }
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(Error::BadImage {
            what: source.path().display().to_string(),
            reason: format!("blob {digest} has digest {actual}: the archive is damaged"),
        });
    }
    Ok(bytes)
}

fn blob_path(digest: Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn oci_digest(source: &Source, digest: &oci_spec::image::Digest) -> Result<Digest> {
    digest.to_string().parse().map_err(|_| Error::BadImage {
        what: source.path().display().to_string(),
        reason: format!("digest {digest} is not sha256, the only algorithm strata reads"),
    })
}

/// A name of `manifest.json`'s `RepoTags`: `NAME:TAG`, as docker's load requires (a digest
/// or a bare name is an invalid tag there too).
fn repo_tag(text: &str) -> Result<Reference> {
    let reference: Reference = text.parse()?;
    if reference.digest().is_some() || reference.tag().is_none() {
        return Err(Error::InvalidReference {
            input: text.to_owned(),
            reason: "invalid tag: a RepoTags entry is NAME:TAG, without a digest".into(),
        });
    }
    Ok(reference)
}

/// The digest a file's name claims: `<hex>.json`, `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let claimed = name.contains("blobs/sha256/") || base.ends_with(".json");
    if claimed { format!("sha256:{hex}").parse().ok() } else { None }
}
