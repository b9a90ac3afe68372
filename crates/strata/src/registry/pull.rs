//! `pull`: an image from a registry into the store, in dockerd's records.
//!
//! 1. Resolve the name: a tag costs one `HEAD` (an image already pulled at that digest needs
//!    nothing more), then the manifest is fetched by digest; an index leads to the manifest
//!    of the platform asked for (the host's by default; no match is an error).
//! 2. Fetch the config and check it against the manifest.
//! 3. Store it through the shared pipeline: layers not stored yet stream from the registry
//!    through their digest, the decompressor and the diffID into staging directories, a few
//!    at once, each resumed where its connection broke; nothing is visible before every
//!    digest matched.
//! 4. Name it `repo:tag` and `repo@digest` (docker's `RepoDigests`), and record where each
//!    layer's blob came from (`distribution/`), so a push to the same registry mounts them.

use std::io::Read;

use super::RegistryOptions;
use super::blob::Partial;
use super::client::Client;
use super::manifest::{Fetched, Manifest};
use crate::digest::Digest;
use crate::error::{ErrorKind, Result};
use crate::image::config::MAX_CONFIG;
use crate::image::{BlobSource, ImageId, ImagePlan, ImageStore, LayerBlob, Platform, Progress, Reference};

/// What to pull, besides the name.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to choose from an index (default: this machine's).
    pub platform: Option<Platform>,
}

/// The outcome of a pull.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    /// The name pulled (`:latest` added to a bare name).
    #[serde(serialize_with = "as_text")]
    pub reference: Reference,
    /// The image.
    pub id: ImageId,
    /// The digest of the manifest (or of the index) the name resolved to.
    pub digest: Digest,
    /// Whether the store had the image under that name already.
    pub up_to_date: bool,
    /// Layers fetched.
    pub layers_pulled: usize,
    /// Layers that were stored already.
    pub layers_reused: usize,
}

/// A registry's blobs, for the store pipeline; each kept in `partials` as it arrives.
struct RegistryBlobs<'a> {
    client: &'a Client,
    partials: std::path::PathBuf,
    /// Whether bytes kept by an earlier pull were used.
    resumed: std::sync::atomic::AtomicBool,
}

impl BlobSource for RegistryBlobs<'_> {
    fn describe(&self) -> String {
        self.client.what()
    }

    fn open(&self, blob: &LayerBlob) -> Result<(Box<dyn Read + Send + '_>, Option<u64>)> {
        let digest = blob
            .digest
            .ok_or_else(|| self.client.error(format!("layer {} has no digest", blob.locator), ErrorKind::Corrupt))?;
        let partial = Partial::open(&self.partials, digest);
        if partial.as_ref().is_some_and(Partial::has_bytes) {
            self.resumed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let (stream, size) = self.client.blob_stream(digest, blob.size, partial)?;
        Ok((Box::new(stream), size))
    }

    /// A staged blob's kept bytes go; so do those of a blob that turned out damaged. A
    /// transfer that failed keeps them for the next pull.
    fn finished(&self, blob: &LayerBlob, outcome: std::result::Result<(), ErrorKind>) {
        let Some(digest) = blob.digest else { return };
        if matches!(outcome, Ok(()) | Err(ErrorKind::Corrupt)) {
            let _ = std::fs::remove_file(Partial::path(&self.partials, digest));
        }
    }
}

/// Pull `reference` from its registry into `images`.
pub fn pull(
    images: &ImageStore,
    reference: &Reference,
    registry: &RegistryOptions,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    // Mirrors first, then the registry itself; the last failure is the one told.
    let sources = registry.conf.pull_sources(reference)?;
    let mut last = None;
    for source in &sources {
        let attempt = Client::connect_source(source, registry, "pull")
            .and_then(|client| pull_from(&client, images, reference, registry, options, progress));
        match attempt {
            Ok(pulled) => return Ok(pulled),
            Err(e) if source.mirror => {
                tracing::warn!("mirror {}/{} failed, trying the next source: {e}", source.domain, source.path);
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| crate::Error::ImageNotFound(reference.to_string())))
}

/// The tags of `reference`'s repository, as its registry lists them (`docker pull -a`).
pub fn list_tags(reference: &Reference, registry: &RegistryOptions) -> Result<Vec<String>> {
    let source = registry.conf.push_source(reference)?;
    Client::connect_source(&source, registry, "pull")?.tags()
}

fn pull_from(
    client: &Client,
    images: &ImageStore,
    reference: &Reference,
    registry: &RegistryOptions,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let reference = reference.clone().or_latest();

    // Resolve a tag by HEAD; an image already here at that digest needs nothing more.
    let pinned = reference.digest();
    let resolved = match pinned {
        Some(digest) => Some(digest),
        None => client.manifest_digest(reference.tag().unwrap_or("latest"))?,
    };
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    if let Some(digest) = resolved
        && let Some(id) = known(images, &reference, digest, &platform)?
    {
        let up_to_date = images.repositories()?.get(&reference) == Some(id);
        if !up_to_date {
            let mut writer = images.writer()?;
            writer.tag(reference.clone(), id)?;
            writer.commit()?;
        }
        return Ok(Pulled { reference, id, digest, up_to_date, layers_pulled: 0, layers_reused: 0 });
    }

    let asked = match (resolved, reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let top = client.manifest(&asked, resolved)?;
    let digest = top.digest;
    let manifest = match top.manifest {
        Manifest::Image(manifest) => manifest,
        Manifest::Index(index) => {
            let chosen = platform.choose(&index).map_err(|reason| {
                client.error(format!("{reference}: index {digest} has {reason}"), ErrorKind::NotFound)
            })?;
            let chosen = oci_digest(client, chosen.digest())?;
            let Fetched { manifest, .. } = client.manifest(&chosen.to_string(), Some(chosen))?;
            match manifest {
                Manifest::Image(manifest) => manifest,
                Manifest::Index(_) => {
                    return Err(client.error(format!("index {digest} leads to another index"), ErrorKind::Corrupt));
                }
            }
        }
    };

    // The config, checked against its descriptor.
    let config_descriptor = manifest.config();
    let config_digest = oci_digest(client, config_descriptor.digest())?;
    if config_descriptor.size() > MAX_CONFIG {
        return Err(client.error(
            format!("config {config_digest} is {} bytes: too large", config_descriptor.size()),
            ErrorKind::Corrupt,
        ));
    }
    let config = client.blob_bytes(config_digest, MAX_CONFIG)?;
    if config.len() as u64 != config_descriptor.size() {
        return Err(client.error(
            format!(
                "config {config_digest}: its descriptor says {} bytes, it has {}",
                config_descriptor.size(),
                config.len()
            ),
            ErrorKind::Corrupt,
        ));
    }

    let mut blobs = Vec::new();
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        if !is_layer_type(&media_type) {
            return Err(client.error(
                format!("layer of type {media_type} cannot be pulled (not an image layer)"),
                ErrorKind::Corrupt,
            ));
        }
        let digest = oci_digest(client, layer.digest())?;
        blobs.push(LayerBlob { locator: digest.to_string(), digest: Some(digest), size: Some(layer.size()) });
    }
    let mut names = vec![reference.with_digest(digest)];
    if reference.digest().is_none() {
        names.insert(0, reference.clone());
    }
    let plan = ImagePlan::new(&client.what(), config, blobs, names)?;
    let blobs = RegistryBlobs {
        client,
        partials: super::partials_dir(images.store()),
        resumed: std::sync::atomic::AtomicBool::new(false),
    };
    let plan = std::slice::from_ref(&plan);
    let loaded = match images.store_images(plan, &blobs, registry.max_concurrent, progress) {
        // Bytes an earlier pull kept may be what is damaged (they are gone now): once more,
        // from the registry alone.
        Err(e) if e.kind() == ErrorKind::Corrupt && blobs.resumed.swap(false, std::sync::atomic::Ordering::Relaxed) => {
            tracing::warn!("{e}; pulling again without the bytes kept from an earlier pull");
            images.store_images(plan, &blobs, registry.max_concurrent, progress)?
        }
        result => result?,
    };
    let plan = &plan[0];

    // Where each layer came from: a hint for pushes, written after the image is whole.
    let source_repository = format!("{}/{}", reference.domain(), reference.path());
    for layer in &plan.layers {
        if let Some(digest) = layer.blob.digest
            && let Err(e) = images.record_blob(layer.diff_id, digest, &source_repository)
        {
            tracing::warn!("cannot record where layer {} came from: {e}", layer.diff_id);
        }
    }
    Ok(Pulled {
        reference,
        id: plan.id,
        digest,
        up_to_date: false,
        layers_pulled: loaded.layers_extracted,
        layers_reused: loaded.layers_reused,
    })
}

/// The image stored as `reference`'s repository at `digest`, if it is still whole and for
/// `platform` (an index's digest names images of every platform).
fn known(images: &ImageStore, reference: &Reference, digest: Digest, platform: &Platform) -> Result<Option<ImageId>> {
    let repos = images.repositories()?;
    let Some(id) = repos.get(&reference.with_digest(digest)) else { return Ok(None) };
    let Ok(image) = images.get(id) else { return Ok(None) };
    let config = &image.config;
    let whole = images.layers_of(&image).is_ok();
    let same_platform = platform.matches(&config.os, &config.architecture, config.variant.as_deref());
    Ok((whole && same_platform).then_some(id))
}

/// Layer media types a pull takes: OCI's and Docker's tar layers, plain, gzip or zstd.
fn is_layer_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
    )
}

fn oci_digest(client: &Client, digest: &oci_spec::image::Digest) -> Result<Digest> {
    digest.to_string().parse().map_err(|_| {
        client.error(format!("digest {digest} is not sha256, the only algorithm strata reads"), ErrorKind::Corrupt)
    })
}

fn as_text<S: serde::Serializer>(reference: &Reference, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(reference)
}
