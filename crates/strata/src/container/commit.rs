//! `commit`: the container's writable layer as a new image layer on its image, with the
//! container's config and a history entry naming its command, as `docker commit` makes it.
//! A container that changed nothing gives an image with no new layer (an `empty_layer` step).
//! A builder gives its own `created_by`, configs, a fixed time, or no layer at all.

use super::ContainerStore;
use crate::digest::DiffId;
use crate::error::{Error, Result};
use crate::image::change;
use crate::image::config::format_rfc3339;
use crate::image::{ChainId, Child, ContainerConfig, ImageId, Reference, now_rfc3339};

/// How to commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's name.
    pub reference: Option<Reference>,
    /// The commit message (history comment).
    pub message: Option<String>,
    /// The author.
    pub author: Option<String>,
    /// Dockerfile instructions applied to the config (`CMD ["/bin/sh"]`, …).
    pub changes: Vec<String>,
    /// The history entry's `created_by`; the container's command if `None` (as docker).
    pub created_by: Option<String>,
    /// The time to record as the image's and the history entry's `created`; now if `None`.
    /// A fixed time (a build's `SOURCE_DATE_EPOCH`) makes the same commit give the same ID.
    pub created: Option<std::time::SystemTime>,
    /// Record a step without a layer (`empty_layer`, as a build's `ENV` or `LABEL`): the
    /// config changes, the container's files are not committed.
    pub empty_layer: bool,
    /// Freeze a running container while its layer is read, so the layer is one moment of it
    /// (`docker commit`'s default; the CLI sets it unless `--pause=false`).
    pub pause: bool,
    /// A builder's: the new image's config, instead of the container's (with `changes`).
    pub config: Option<ContainerConfig>,
    /// A builder's: the `container_config` to record, instead of the container's.
    pub container_config: Option<ContainerConfig>,
    /// Name no container in the image (a build's COPY and ADD steps, as dockerd's builder).
    pub anonymous: bool,
    /// Mark the image as built here (`builtLocally`), so builds may use it as their cache.
    pub built_locally: bool,
    /// The caller removes the (stopped, unmounted) container next: its writable layer's files
    /// become the new layer's, moved rather than copied (a build's steps).
    pub take_layer: bool,
}

impl ContainerStore {
    /// Commit the container's changes as a new image on its image; returns the image ID.
    pub fn commit(&self, name: &str, options: &CommitOptions) -> Result<ImageId> {
        let container = self.find(name)?;
        if !(options.pause && container.running && !container.record.state.paused) {
            return self.commit_as_is(name, options);
        }
        let runtime = super::runtime::Runtime::find(&self.store, &container.host.runtime)?;
        self.pause(name, true)?;
        let committed = self.commit_as_is(name, options);
        let thawed = self.thaw(container.id(), &runtime);
        let committed = committed?;
        thawed?;
        Ok(committed)
    }

    /// [`commit`](Self::commit) of the container as it is now, running or not.
    fn commit_as_is(&self, name: &str, options: &CommitOptions) -> Result<ImageId> {
        let container = self.find(name)?;
        let id = container.id();
        let image_id: ImageId = container.record.image.parse()?;
        let image = self.images.get(image_id).map_err(|_| Error::Container {
            container: name.to_owned(),
            reason: format!(
                "its image {} was removed (rmi -f), so there is nothing to commit onto; export it instead (strata export)",
                image_id.short()
            ),
        })?;
        let mut config = options.config.clone().unwrap_or_else(|| container.record.config.clone());
        for instruction in &options.changes {
            change::apply(&mut config, instruction)?;
        }
        let diff_dir = self.layers.diff_dir(&container.layers.mount_id);
        let staged = match (options.empty_layer, options.take_layer && !container.running) {
            (true, _) => None,
            (false, true) => match self.layers.stage_taken(&diff_dir)? {
                Some(staged) => Some(staged),
                None => Some(self.images.stage_dir(&diff_dir)?),
            },
            (false, false) => Some(self.images.stage_dir(&diff_dir)?),
        };
        let diff_id = staged.as_ref().map(|s| s.applied.stream.diff_id);
        let created = match options.created {
            None => now_rfc3339(),
            Some(time) => format_rfc3339(jiff::Timestamp::try_from(time).map_err(|e| Error::BadOption {
                what: "creation time",
                value: format!("{time:?}"),
                reason: e.to_string(),
            })?),
        };
        let id_string = id.to_string();
        let child = Child {
            parent: Some(&image.config),
            author: options.author.as_deref().unwrap_or_default(),
            config: &config,
            container: (!options.anonymous).then_some(id_string.as_str()),
            container_config: options.container_config.as_ref().unwrap_or(&container.record.config),
            created: &created,
            created_by: &options.created_by.clone().unwrap_or_else(|| container.record.command()),
            comment: options.message.as_deref().unwrap_or_default(),
            diff_id,
        };
        let empty = child.empty_layer();
        let bytes = child.to_bytes();
        let parent_chain = ChainId::chain(&image.config.rootfs.diff_ids).pop();
        let diff_id: Option<DiffId> = diff_id.filter(|_| !empty);
        let mut writer = self.images.writer()?;
        if let Some(diff_id) = diff_id {
            let parent = parent_chain.map(|c| self.images.layerdb.require(c)).transpose()?;
            writer.layer(parent.as_ref(), diff_id, staged)?;
        }
        let new_id = writer.image(&bytes, Some(image_id))?;
        if options.built_locally {
            writer.built_locally(new_id)?;
        }
        if let Some(reference) = &options.reference {
            writer.tag(reference.clone().or_latest(), new_id)?;
        }
        writer.commit()?;
        Ok(new_id)
    }
}
