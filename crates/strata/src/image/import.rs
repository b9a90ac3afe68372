//! `import`: a root filesystem (a tar, plain or compressed, or a directory) as a one-layer
//! image, as `docker import` makes one.

use std::path::Path;

use serde::Serialize;

use super::ImageStore;
use super::change;
use super::config::{ContainerConfig, History, RootFs, now_rfc3339};
use super::ids::ImageId;
use super::reference::Reference;
use crate::archive::{ApplyOptions, Compression, Staged};
use crate::error::{Error, Result};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The commit message (default: `Imported from <source>`).
    pub message: Option<String>,
    /// Dockerfile instructions to apply to the config (`CMD ["/bin/sh"]`, `ENV A=1`, …).
    pub changes: Vec<String>,
}

/// The config `docker import` writes, keys in the (sorted) order dockerd writes them.
#[derive(Serialize)]
struct ImportedConfig<'a> {
    architecture: &'a str,
    comment: &'a str,
    config: &'a ContainerConfig,
    container_config: ContainerConfig,
    created: &'a str,
    history: [History; 1],
    os: &'a str,
    rootfs: RootFs,
}

impl ImageStore {
    /// Import the root filesystem at `source` (a tar file, `-` for standard input, or a
    /// directory) as a new one-layer image, named `name` if given.
    pub fn import(&self, source: &Path, name: Option<Reference>, options: &ImportOptions) -> Result<ImageId> {
        let mut config = ContainerConfig::default();
        for instruction in &options.changes {
            change::apply(&mut config, instruction)?;
        }
        let staged = self.stage_rootfs(source)?;
        let diff_id = staged.applied.stream.diff_id;
        let created = now_rfc3339();
        let shown = if source == Path::new("-") { "-".to_owned() } else { source.display().to_string() };
        let message = options.message.clone().unwrap_or_else(|| format!("Imported from {shown}"));
        let bytes = serde_json::to_vec(&ImportedConfig {
            architecture: super::host_arch(),
            comment: &message,
            config: &config,
            container_config: ContainerConfig::default(),
            created: &created,
            history: [History { created: Some(created.clone()), comment: message.clone(), ..Default::default() }],
            os: "linux",
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![diff_id] },
        })
        .expect("serializable");
        let mut registration = self.writer()?;
        registration.layer(None, diff_id, Some(staged))?;
        let id = registration.image(&bytes, None)?;
        if let Some(name) = name {
            registration.tag(name.or_latest(), id)?;
        }
        registration.commit()?;
        Ok(id)
    }

    /// A new layer holding what the directory `dir` holds (OverlayFS whiteouts and opaque
    /// directories included), made by packing it into a tar on the fly and extracting that,
    /// so that it has a diffID and a tar-split like any loaded layer.
    pub fn stage_dir(&self, dir: &Path) -> Result<Staged> {
        let options = ApplyOptions { tar_split: true, ..Default::default() };
        let (reader, writer) = crate::archive::pipe().map_err(|e| Error::io("pipe", dir, e))?;
        std::thread::scope(|scope| {
            let packer = scope.spawn(move || crate::archive::pack::pack(dir, writer, Compression::None));
            let staged = self.layers.stage(reader, &options);
            let packed = packer.join().expect("the packer does not panic");
            let staged = staged?;
            packed?;
            Ok(staged)
        })
    }

    /// Extract a tar, or a directory packed into one on the fly.
    fn stage_rootfs(&self, source: &Path) -> Result<Staged> {
        let options = ApplyOptions { tar_split: true, ..Default::default() };
        if source != Path::new("-") && source.is_dir() {
            return self.stage_dir(source);
        }
        if source == Path::new("-") {
            return self.layers.stage(std::io::stdin(), &options);
        }
        let file = std::fs::File::open(source).map_err(|e| Error::io("open", source, e))?;
        self.layers.stage(file, &options)
    }
}
