//! `load`: images from a `docker save` tarball or an OCI image layout (a directory, or a tar
//! of one as `skopeo copy … oci-archive:` writes), with plain, gzip or zstd layers.
//!
//! The archive's manifests and configs are read and checked into plans; the layers are then
//! stored by the shared pipeline (see `pipeline`), read from the archive in place.

use std::io::Read;
use std::path::Path;

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::ImageStore;
use super::config::MAX_CONFIG;
use super::ids::ImageId;
use super::pipeline::{BlobSource, ImagePlan, LayerBlob, Loaded, Progress};
use super::platform::Platform;
use super::reference::Reference;
use super::source::Source;
use crate::digest::Digest;
use crate::error::{Error, Result};

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
    /// Load every image in the archive at `path` (`-`: standard input), extracting layers on
    /// as many threads as there are CPUs.
    pub fn load(&self, path: &Path, progress: &dyn Progress) -> Result<Loaded> {
        self.store.ensure_layout()?;
        let source = Source::open(path, &self.store.tmp_dir())?;
        let planned = plan(&source)?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        self.store_images(&planned, &source, workers, progress)
    }
}

impl BlobSource for Source {
    fn describe(&self) -> String {
        self.path().display().to_string()
    }

    fn open(&self, blob: &LayerBlob) -> Result<(Box<dyn Read + Send + '_>, Option<u64>)> {
        let (reader, size) = self.reader(&blob.locator)?;
        Ok((reader, Some(size)))
    }
}

/// Read the archive's manifests and configs into a plan; nothing is written.
fn plan(source: &Source) -> Result<Vec<ImagePlan>> {
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
                planned(source, config, blobs, names)
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
            out.push(planned(source, config, blobs, names)?);
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
    config: Vec<u8>,
    blobs: Vec<(Option<Digest>, Option<u64>, String)>,
    names: Vec<Reference>,
) -> Result<ImagePlan> {
    let id = ImageId::of_config(&config);
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
    let blobs = blobs.into_iter().map(|(digest, size, locator)| LayerBlob { locator, digest, size }).collect();
    ImagePlan::new(&source.path().display().to_string(), config, blobs, names)
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

/// The manifest of an index for this machine's platform (see [`Platform::choose`]).
fn choose_platform<'a>(
    source: &Source,
    digest: Digest,
    index: &'a ImageIndex,
) -> Result<&'a oci_spec::image::Descriptor> {
    Platform::host().choose(index).map_err(|reason| Error::BadImage {
        what: source.path().display().to_string(),
        reason: format!("index {digest} has {reason}"),
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
