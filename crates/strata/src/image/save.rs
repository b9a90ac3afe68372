//! `save`: images as a `docker save` tarball or an OCI image layout in a tar. Each layer is
//! the exact tarball it was loaded from, rebuilt from its files and its tar-split, so its
//! digest is the diffID it was loaded with; a layer without a tar-split is packed afresh.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use oci_spec::image::{
    DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, SCHEMA_VERSION,
};
use serde_json::json;

use super::ids::ImageId;
use super::reference::Reference;
use super::{Image, ImageStore};
use crate::archive::Compression;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};

/// The layout of a saved archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// `docker save`'s: `<id>/layer.tar`, `<image>.json`, `manifest.json`, `repositories`.
    #[default]
    Docker,
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), with a
    /// `manifest.json` too so that `docker load` reads it.
    Oci,
}

impl ImageStore {
    /// Write the images named by `names` (names or IDs) to `out` as one tar.
    pub fn save(&self, names: &[String], out: impl Write + Send, format: SaveFormat) -> Result<()> {
        let _lock = self.store.read_lock()?;
        let repos = self.repositories()?;
        // Each image once, with the names asked for (a bare repository name means all its tags).
        let mut images: Vec<(Image, Vec<Reference>)> = Vec::new();
        for name in names {
            let id = self.resolve_unlocked(name)?;
            let tags: Vec<Reference> = match name.parse::<Reference>() {
                Ok(r) if !id.is_named_by(name) && r.tag().is_none() && r.digest().is_none() => repos
                    .iter()
                    .filter(|(n, _)| n.name() == r.name() && n.tag().is_some() && n.digest().is_none())
                    .map(|(n, _)| n.clone())
                    .collect(),
                Ok(r) if !id.is_named_by(name) && r.digest().is_none() => vec![r],
                _ => Vec::new(),
            };
            let tags: Vec<Reference> = tags.into_iter().filter(|t| repos.get(t).is_some()).collect();
            let per_tag: Vec<(ImageId, Vec<Reference>)> = if tags.is_empty() {
                vec![(id, Vec::new())]
            } else {
                tags.into_iter().map(|t| (repos.get(&t).expect("filtered"), vec![t])).collect()
            };
            for (id, tags) in per_tag {
                match images.iter_mut().find(|(i, _)| i.id == id) {
                    Some((_, existing)) => {
                        for t in tags {
                            if !existing.contains(&t) {
                                existing.push(t);
                            }
                        }
                    }
                    None => images.push((self.get_unlocked(id, &repos)?, tags)),
                }
            }
        }
        let mut tar = TarOut::new(out);
        match format {
            SaveFormat::Docker => self.save_docker(&images, &mut tar)?,
            SaveFormat::Oci => self.save_oci(&images, &mut tar)?,
        }
        tar.finish()
    }

    fn save_docker<W: Write + Send>(&self, images: &[(Image, Vec<Reference>)], tar: &mut TarOut<W>) -> Result<()> {
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written = HashSet::new();
        for (image, tags) in images {
            let layers = self.layers_of(image)?;
            let mut parent_v1: Option<Digest> = None;
            let mut paths = Vec::new();
            for (i, layer) in layers.iter().enumerate() {
                let top = i + 1 == layers.len();
                let seed = format!(
                    "strata v1 {} {} {}",
                    layer.chain_id,
                    parent_v1.map(|p| p.to_string()).unwrap_or_default(),
                    if top { image.id.to_string() } else { String::new() }
                );
                let v1 = Digest::of(seed.as_bytes());
                let dir = v1.hex();
                if written.insert(v1) {
                    let mut json = json!({
                        "id": dir,
                        "created": if top { image.config.created.clone().unwrap_or_default() } else { "1970-01-01T00:00:00Z".into() },
                        "container_config": super::ContainerConfig::default(),
                        "os": image.config.os,
                    });
                    if let Some(p) = parent_v1 {
                        json["parent"] = p.hex().into();
                    }
                    if top && let Some(config) = &image.config.config {
                        json["config"] = serde_json::to_value(config).expect("serializable");
                        json["architecture"] = image.config.architecture.clone().into();
                    }
                    tar.dir(&format!("{dir}/"))?;
                    tar.bytes(&format!("{dir}/VERSION"), b"1.0")?;
                    tar.bytes(&format!("{dir}/json"), &serde_json::to_vec(&json).expect("serializable"))?;
                    self.layer_entry(tar, &format!("{dir}/layer.tar"), layer)?;
                }
                paths.push(format!("{dir}/layer.tar"));
                parent_v1 = Some(v1);
            }
            let config_name = format!("{}.json", image.id.hex());
            if written.insert(image.id.digest()) {
                tar.bytes(&config_name, &image.raw_config)?;
            }
            for tag in tags {
                let top = parent_v1.map(|p| p.hex()).unwrap_or_default();
                repositories.entry(tag.name()).or_default().insert(tag.tag().unwrap_or("latest").to_owned(), top);
            }
            let repo_tags: Option<Vec<String>> =
                (!tags.is_empty()).then(|| tags.iter().map(|t| t.to_string()).collect());
            manifest.push(json!({"Config": config_name, "RepoTags": repo_tags, "Layers": paths}));
        }
        tar.bytes("manifest.json", &serde_json::to_vec(&manifest).expect("serializable"))?;
        if !repositories.is_empty() {
            tar.bytes("repositories", &serde_json::to_vec(&repositories).expect("serializable"))?;
        }
        Ok(())
    }

    fn save_oci<W: Write + Send>(&self, images: &[(Image, Vec<Reference>)], tar: &mut TarOut<W>) -> Result<()> {
        let oci = |e: oci_spec::OciSpecError| Error::BadImage { what: "OCI manifest".into(), reason: e.to_string() };
        let descriptor = |media: MediaType, digest: Digest, size: u64| {
            DescriptorBuilder::default()
                .media_type(media)
                .digest(digest.to_string().parse::<oci_spec::image::Digest>().expect("a sha256 digest"))
                .size(size)
                .build()
                .map_err(oci)
        };
        tar.dir("blobs/")?;
        tar.dir("blobs/sha256/")?;
        let mut written = HashSet::new();
        let mut index_entries = Vec::new();
        let mut docker_manifest = Vec::new();
        for (image, tags) in images {
            let mut layer_descriptors = Vec::new();
            let mut paths = Vec::new();
            for layer in self.layers_of(image)? {
                // Saved uncompressed: the blob's digest is the diffID's.
                let blob = layer.diff_id.digest();
                let path = format!("blobs/sha256/{}", blob.hex());
                let size = if written.insert(blob) {
                    self.layer_entry(tar, &path, &layer)?
                } else {
                    self.layer_size(&layer)?.0
                };
                layer_descriptors.push(descriptor(MediaType::ImageLayer, blob, size)?);
                paths.push(path);
            }
            let config_path = format!("blobs/sha256/{}", image.id.hex());
            if written.insert(image.id.digest()) {
                tar.bytes(&config_path, &image.raw_config)?;
            }
            let manifest = ImageManifestBuilder::default()
                .schema_version(SCHEMA_VERSION)
                .media_type(MediaType::ImageManifest)
                .config(descriptor(MediaType::ImageConfig, image.id.digest(), image.raw_config.len() as u64)?)
                .layers(layer_descriptors)
                .build()
                .map_err(oci)?;
            let bytes = serde_json::to_vec(&manifest).expect("serializable");
            let digest = Digest::of(&bytes);
            if written.insert(digest) {
                tar.bytes(&format!("blobs/sha256/{}", digest.hex()), &bytes)?;
            }
            let names: Vec<Option<&Reference>> =
                if tags.is_empty() { vec![None] } else { tags.iter().map(Some).collect() };
            for name in names {
                let mut entry = descriptor(MediaType::ImageManifest, digest, bytes.len() as u64)?;
                if let Some(name) = name {
                    entry.set_annotations(Some(
                        [
                            ("io.containerd.image.name".to_owned(), name.to_string()),
                            ("org.opencontainers.image.ref.name".to_owned(), name.tag().unwrap_or("latest").to_owned()),
                        ]
                        .into(),
                    ));
                }
                index_entries.push(entry);
            }
            let repo_tags: Option<Vec<String>> =
                (!tags.is_empty()).then(|| tags.iter().map(|t| t.to_string()).collect());
            docker_manifest.push(json!({"Config": config_path, "RepoTags": repo_tags, "Layers": paths}));
        }
        let index = ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageIndex)
            .manifests(index_entries)
            .build()
            .map_err(oci)?;
        tar.bytes("index.json", &serde_json::to_vec(&index).expect("serializable"))?;
        let layout = OciLayoutBuilder::default().image_layout_version("1.0.0").build().map_err(oci)?;
        tar.bytes("oci-layout", &serde_json::to_vec(&layout).expect("serializable"))?;
        tar.bytes("manifest.json", &serde_json::to_vec(&docker_manifest).expect("serializable"))?;
        Ok(())
    }

    /// The size of a layer's tar, and its tar-split if it has one.
    fn layer_size(&self, layer: &super::LayerRecord) -> Result<(u64, Option<Vec<u8>>)> {
        match self.layerdb.tar_split(layer.chain_id)? {
            Some(split) => Ok((crate::archive::tarsplit::assembled_size(&split)?, Some(split))),
            None => {
                let mut counter = CountingWriter { inner: io::sink(), n: 0 };
                crate::archive::pack::pack(&self.layers.diff_dir(&layer.cache_id), &mut counter, Compression::None)?;
                Ok((counter.n, None))
            }
        }
    }

    /// Write a layer's tar as entry `name`, checking that it hashes to its diffID.
    fn layer_entry<W: Write + Send>(&self, tar: &mut TarOut<W>, name: &str, layer: &super::LayerRecord) -> Result<u64> {
        let (size, split) = self.layer_size(layer)?;
        let diff = self.layers.diff_dir(&layer.cache_id);
        let mut actual = None;
        tar.file(name, size, |out| {
            let mut hashing = HashingWriter::new(out);
            match &split {
                Some(split) => crate::archive::tarsplit::assemble(split, &diff, &mut hashing)?,
                None => drop(crate::archive::pack::pack(&diff, &mut hashing, Compression::None)?),
            }
            actual = Some(hashing.finish().0);
            Ok(())
        })?;
        let actual = actual.expect("the entry was written");
        if actual != layer.diff_id.digest() {
            let expected = layer.diff_id.digest();
            return Err(Error::DigestMismatch { what: "diffID of a saved layer", expected, actual });
        }
        Ok(size)
    }
}

impl ImageStore {
    /// Write the exact tarball the top layer of stack `chain` was made from (its tar-split
    /// laid over its files, each file's CRC checked), as `save` and a push send it; the bytes
    /// hash to the stack's diffID, which is checked too.
    pub fn layer_tarball(&self, chain: super::ChainId, out: impl std::io::Write + Send) -> Result<()> {
        let _lock = self.store.read_lock()?;
        let layer = self.layerdb.require(chain)?;
        let diff = self.layers.diff_dir(&layer.cache_id);
        let mut hashing = HashingWriter::new(out);
        match self.layerdb.tar_split(chain)? {
            Some(split) => crate::archive::tarsplit::assemble(&split, &diff, &mut hashing)?,
            None => drop(crate::archive::pack::pack(&diff, &mut hashing, Compression::None)?),
        }
        let (actual, _) = hashing.finish();
        if actual != layer.diff_id.digest() {
            let expected = layer.diff_id.digest();
            return Err(Error::DigestMismatch { what: "diffID of a layer's tarball", expected, actual });
        }
        Ok(())
    }
}

/// A tar written entry by entry, with contents streamed into it.
struct TarOut<W> {
    out: W,
    mtime: u64,
}

impl<W: Write + Send> TarOut<W> {
    fn new(out: W) -> Self {
        TarOut { out, mtime: 0 }
    }

    fn header(&mut self, name: &str, size: u64, kind: tar::EntryType, mode: u32) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).map_err(|e| Error::io("name a tar entry", name, e))?;
        header.set_size(size);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        self.out.write_all(header.as_bytes()).ctx("write", "the archive")
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        self.header(name, 0, tar::EntryType::Directory, 0o755)
    }

    fn bytes(&mut self, name: &str, contents: &[u8]) -> Result<()> {
        self.file(name, contents.len() as u64, |out| out.write_all(contents).ctx("write", "the archive"))
    }

    /// An entry of `size` bytes, written by `fill`, which must write exactly that many.
    fn file(&mut self, name: &str, size: u64, fill: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>) -> Result<()> {
        self.header(name, size, tar::EntryType::Regular, 0o644)?;
        let mut counted = CountingWriter { inner: &mut self.out, n: 0 };
        fill(&mut counted)?;
        if counted.n != size {
            return Err(Error::Archive { reason: format!("{name}: wrote {} bytes, expected {size}", counted.n) });
        }
        let pad = (512 - size % 512) % 512;
        self.out.write_all(&[0u8; 512][..pad as usize]).ctx("write", "the archive")
    }

    fn finish(mut self) -> Result<()> {
        self.out.write_all(&[0u8; 1024]).ctx("write", "the archive")?;
        self.out.flush().ctx("write", "the archive")
    }
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
