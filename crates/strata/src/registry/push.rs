//! `push`: an image from the store to a registry, as dockerd pushes it.
//!
//! 1. For each layer, a few at once: a blob dockerd's records (`distribution/`) say the
//!    repository has is checked with `HEAD` and skipped; one another repository of the same
//!    registry has is mounted from it; otherwise the layer's exact tarball (tar-split over its
//!    files) is compressed as it is read and streamed up, its digest computed on the way.
//! 2. The config, unless the registry has it; then the manifest (Docker schema 2 for gzip, OCI
//!    for zstd), last, so the image appears whole or not at all.
//! 3. The records: each layer's blob in `distribution/`, and `repo@digest` as a name.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::RegistryOptions;
use super::client::Client;
use super::manifest::{DOCKER_MANIFEST, OCI_MANIFEST};
use super::upload::Sent;
use crate::archive::Compression;
use crate::digest::{DiffId, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::image::{ImageId, ImageStore, LayerRecord, Reference};

/// How to push: the compression of the layers sent, and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOptions {
    /// gzip (default) or zstd.
    pub compression: PushCompression,
    /// gzip 1–9 (default 6, docker's), zstd 1–19 (default 3).
    pub level: Option<u32>,
    /// Send each layer in chunks of at most this many bytes (one `PATCH` each), for
    /// registries or proxies that limit a request's size; `None`: one streamed `PATCH`.
    pub chunk: Option<usize>,
}

/// The compression of the layers a push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushCompression {
    /// gzip, in a Docker schema 2 manifest (what dockerd pushes; every client reads it).
    #[default]
    Gzip,
    /// Zstandard, in an OCI manifest.
    Zstd,
}

/// What happens to one layer of a push, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// Work on the layer starts.
    Preparing {
        /// The layer.
        diff_id: DiffId,
    },
    /// The repository had the blob.
    Exists {
        /// The layer.
        diff_id: DiffId,
    },
    /// Mounted from another repository of the registry.
    Mounted {
        /// The layer.
        diff_id: DiffId,
        /// The repository it came from (its path).
        from: String,
    },
    /// Uploaded.
    Pushed {
        /// The layer.
        diff_id: DiffId,
    },
}

/// Receives [`PushEvent`]s, from several threads.
pub trait PushProgress: Sync {
    /// One event.
    fn event(&self, event: PushEvent);
}

impl PushProgress for () {
    fn event(&self, _: PushEvent) {}
}

/// The outcome of a push.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// The image pushed.
    pub id: ImageId,
    /// The manifest's digest, as the registry stores it.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Layers uploaded.
    pub layers_pushed: usize,
    /// Layers the registry had, or mounted from another repository.
    pub layers_reused: usize,
}

/// What became of one layer: its blob, and how it got there.
type LayerOutcome = Result<(Blob, Sent)>;

/// One layer's blob as the manifest lists it.
struct Blob {
    digest: Digest,
    size: u64,
    compression: Compression,
}

/// Push the image named `reference` (a tag; `latest` if none) to its registry.
pub fn push(
    images: &ImageStore,
    reference: &Reference,
    registry: &RegistryOptions,
    options: &PushOptions,
    progress: &dyn PushProgress,
) -> Result<Pushed> {
    let compression = options.compression;
    let reference = reference.clone().or_latest();
    let tag = reference.tag().ok_or_else(|| Error::InvalidReference {
        input: reference.to_string(),
        reason: "push a tag, not a digest".into(),
    })?;
    let id = images.resolve(&reference.to_string())?;
    let image = images.get(id)?;
    let layers = images.layers_of(&image)?;
    let repository = format!("{}/{}", reference.domain(), reference.path());

    // Mount sources: repositories of this registry that dockerd's records say have a layer.
    let prefix = format!("{}/", reference.domain());
    let mut sources = Vec::new();
    for layer in &layers {
        for record in images.blob_records(layer.diff_id)? {
            if let Some(path) = record.source_repository.strip_prefix(&prefix)
                && path != reference.path()
            {
                sources.push(path.to_owned());
            }
        }
    }
    let source = registry.conf.push_source(&reference)?;
    let mut client = Client::connect_source(&source, registry, "pull,push")?;
    client.also_pull_from(sources);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<LayerOutcome>>> = Mutex::new((0..layers.len()).map(|_| None).collect());
    let workers = registry.max_concurrent.clamp(1, layers.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(layer) = layers.get(index) else { return };
                    let outcome = push_layer(images, &client, layer, &reference, options, progress);
                    let failed = outcome.is_err();
                    results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(outcome);
                    if failed {
                        // The others finish their layer; no new one starts.
                        next.store(layers.len(), Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    let mut blobs = Vec::new();
    let (mut pushed, mut reused) = (0, 0);
    for outcome in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let (blob, sent) = outcome.ok_or_else(|| client.error("a layer was not pushed".into(), ErrorKind::Other))??;
        match sent {
            Sent::Pushed => pushed += 1,
            _ => reused += 1,
        }
        blobs.push(blob);
    }

    // The config, then the manifest.
    let config_digest = id.digest();
    if client.blob_size(config_digest)?.is_none() {
        client.upload_bytes(&image.raw_config)?;
    }
    let oci = blobs.iter().any(|b| b.compression == Compression::Zstd) || compression == PushCompression::Zstd;
    let manifest = manifest_bytes(oci, config_digest, image.raw_config.len() as u64, &blobs);
    let media_type = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
    let digest = client.put_manifest(tag, media_type, &manifest)?;

    // The records, after the registry has the image: a name by digest, and the blobs.
    let mut writer = images.writer()?;
    writer.tag(reference.with_digest(digest), id)?;
    writer.commit()?;
    for (layer, blob) in layers.iter().zip(&blobs) {
        if let Err(e) = images.record_blob(layer.diff_id, blob.digest, &repository) {
            tracing::warn!("cannot record where layer {} went: {e}", layer.diff_id);
        }
    }
    Ok(Pushed { id, digest, size: manifest.len() as u64, layers_pushed: pushed, layers_reused: reused })
}

/// Push one layer: skipped, mounted or uploaded.
fn push_layer(
    images: &ImageStore,
    client: &Client,
    layer: &LayerRecord,
    reference: &Reference,
    options: &PushOptions,
    progress: &dyn PushProgress,
) -> Result<(Blob, Sent)> {
    let wanted = compression_of(options.compression);
    let (level, chunk) = (options.level, options.chunk);
    let diff_id = layer.diff_id;
    progress.event(PushEvent::Preparing { diff_id });
    let prefix = format!("{}/", reference.domain());
    // Newest records first: the blob most recently pulled or pushed as.
    for record in images.blob_records(diff_id)?.into_iter().rev() {
        let Some(path) = record.source_repository.strip_prefix(&prefix) else { continue };
        let sent = if path == reference.path() {
            if client.blob_size(record.digest)?.is_none() {
                continue;
            }
            Sent::Exists
        } else if client.mount(record.digest, path)? {
            Sent::Mounted(path.to_owned())
        } else {
            continue;
        };
        // Reused only as compressed as asked (a mount that turns out otherwise is harmless).
        let compression = Compression::detect(&client.blob_head(record.digest)?);
        if compression != wanted {
            continue;
        }
        let Some(size) = client.blob_size(record.digest)? else { continue };
        progress.event(match &sent {
            Sent::Mounted(from) => PushEvent::Mounted { diff_id, from: from.clone() },
            _ => PushEvent::Exists { diff_id },
        });
        return Ok((Blob { digest: record.digest, size, compression }, sent));
    }

    // Upload: the exact tarball, compressed on one thread, streamed by this one.
    let mut last_error = None;
    for attempt in 1..=3 {
        // Bytes reach the registry in large pieces: one wake-up per MiB, not per 64 KiB.
        let (reader, writer) = crate::archive::pipe().map_err(|e| Error::io("make a pipe for", "a layer upload", e))?;
        let outcome = std::thread::scope(|scope| {
            let producer = scope.spawn(move || -> Result<()> {
                let mut encoder = wanted
                    .encoder_at(std::io::BufWriter::with_capacity(1 << 20, writer), level)
                    .map_err(|e| Error::io("compress", "a layer", e))?;
                images.layer_tarball(layer.chain_id, &mut encoder)?;
                let mut inner = encoder.finish().map_err(|e| Error::io("compress", "a layer", e))?;
                inner.flush().map_err(|e| Error::io("write", "a layer upload", e))
            });
            let mut reader = reader;
            let uploaded = match chunk {
                Some(chunk) => client.upload_chunked(&mut reader, chunk),
                None => client.upload(&mut reader),
            };
            drop(reader);
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(client.error("the layer reader panicked".into(), ErrorKind::Other)));
            match (uploaded, produced) {
                (Ok(done), Ok(())) => Ok(done),
                // The store's error first: a broken pipe is only its echo.
                (_, Err(e)) if !matches!(e, Error::Io { .. }) => Err(e),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        });
        match outcome {
            Ok((digest, size)) => {
                progress.event(PushEvent::Pushed { diff_id });
                return Ok((Blob { digest, size, compression: wanted }, Sent::Pushed));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted && attempt < 3 => {
                tracing::warn!(layer = %diff_id, "upload failed ({e}); starting it again");
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| client.error("the upload failed".into(), ErrorKind::Interrupted)))
}

fn compression_of(compression: PushCompression) -> Compression {
    match compression {
        PushCompression::Gzip => Compression::Gzip,
        PushCompression::Zstd => Compression::Zstd,
    }
}

/// The manifest: Docker schema 2 (gzip or plain layers) or OCI (any with zstd).
fn manifest_bytes(oci: bool, config: Digest, config_size: u64, blobs: &[Blob]) -> Vec<u8> {
    let layer_type = |c: Compression| match (oci, c) {
        (true, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (true, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (true, _) => "application/vnd.oci.image.layer.v1.tar",
        (false, Compression::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (false, _) => "application/vnd.docker.image.rootfs.diff.tar",
    };
    let (media_type, config_type) = if oci {
        (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json")
    } else {
        (DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json")
    };
    let layers: Vec<serde_json::Value> = blobs
        .iter()
        .map(|b| serde_json::json!({"mediaType": layer_type(b.compression), "size": b.size, "digest": b.digest.to_string()}))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config_size, "digest": config.to_string()},
        "layers": layers,
    });
    serde_json::to_vec_pretty(&manifest).unwrap_or_default()
}
