//! `create`: the `-init` layer on the image's top layer, the writable layer on that, the
//! layer record in `layerdb/mounts/<id>/` and the container's own records, all under the store
//! lock and journaled, so a kill at any point leaves the whole container or none of it.

use std::path::PathBuf;

use super::id::{ContainerId, random_name, valid_name};
use super::record::{HostConfig, Record, State, dockerd_extras};
use super::runtime::Runtime;
use super::seccomp::{Seccomp, SecurityOptions};
use super::{CONFIG, Container, ContainerStore, HOST_CONFIG, init};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{mkdir, write_new};
use crate::id::LayerId;
use crate::image::journal::Step;
use crate::image::{ContainerConfig, MountRecord, now_rfc3339};
use crate::layer::CreateOptions as LayerOptions;
use crate::lock::StoreLock;
use crate::scratch::Scratch;
use crate::txn::Journal;

/// Which network a container gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// Its own network namespace with only a loopback device.
    #[default]
    None,
    /// The host's network.
    Host,
}

impl Network {
    /// dockerd's name for it (`HostConfig.NetworkMode`).
    pub fn mode(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// How to create a container.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Its name; a random `adjective_name` if `None`.
    pub name: Option<String>,
    /// `--log-opt` (`max-size=10m`, `max-file=3`) for a detached run's log.
    pub log_options: Vec<String>,
    /// The command, replacing the image's Cmd if not empty.
    pub cmd: Vec<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd) if given; empty clears it.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` variables over the image's.
    pub env: Vec<String>,
    /// The working directory, replacing the image's.
    pub workdir: Option<String>,
    /// `USER[:GROUP]` or `UID[:GID]`, replacing the image's.
    pub user: Option<String>,
    /// The network.
    pub network: Network,
    /// The OCI runtime (`runc` if empty).
    pub runtime: String,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// `--security-opt`: the seccomp profile, `no-new-privileges`.
    pub security: SecurityOptions,
    /// `--init`: run a minimal init as the first process, which reaps orphans and passes
    /// signals on to the command (strata's own binary, as dockerd's `docker-init`).
    pub init: bool,
    /// `-i`: the container's stdin is its starter's when it runs attached (`OpenStdin`, and
    /// `StdinOnce` and `AttachStdin` as dockerd records `run -i`).
    pub interactive: bool,
    /// `-t`: a pseudo-terminal, which the runtime makes (`Config.Tty`); stdout and stderr are
    /// one stream through it.
    pub tty: bool,
    /// `-v`: `NAME:DEST[:MODE]` (a volume, made if missing), `/HOST:DEST[:MODE]` (a host
    /// path) or `DEST` (a new anonymous volume).
    pub volumes: Vec<String>,
    /// `--mount`: `type=volume|bind|tmpfs,source=…,target=…[,readonly]…`.
    pub mounts: Vec<String>,
    /// `--tmpfs DEST[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]`: that container's mounts, at the same places.
    pub volumes_from: Vec<String>,
}

impl ContainerStore {
    /// Create a container of `image` (a name or ID), as `docker create` does.
    pub fn create(&self, image: &str, options: &CreateOptions) -> Result<Container> {
        if let Some(name) = &options.name {
            valid_name(name)?;
        }
        super::log::LogLimits::parse(&options.log_options)?;
        if let Some(dir) = options.workdir.as_ref().filter(|d| !d.starts_with('/')) {
            return Err(Error::BadOption {
                what: "working directory",
                value: dir.clone(),
                reason: "is not absolute: give a path starting with /".into(),
            });
        }
        for var in &options.env {
            if var.is_empty() || var.starts_with('=') {
                return Err(Error::BadOption {
                    what: "environment variable",
                    value: var.clone(),
                    reason: "is invalid: give NAME=VALUE, or NAME to pass this process's value".into(),
                });
            }
        }
        if let Some(user) = &options.user {
            let parts: Vec<&str> = user.split(':').collect();
            if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(Error::BadOption {
                    what: "user",
                    value: user.clone(),
                    reason: "is invalid: give USER, USER:GROUP, UID or UID:GID".into(),
                });
            }
        }
        let requests = super::volumes::Requests::parse(options)?;
        let runtime = Runtime::find(&self.store, &options.runtime)?;
        let lock = self.store.write_lock()?;
        self.images.layerdb.ensure()?;
        mkdir(&self.store.containers_dir(), 0o710)?;
        let mut journal = Journal::begin(&self.store, super::journal::ADD)?;
        // The names in use are checked (a `stat` per container) on another thread while this
        // one makes the layers: the name is needed only for the record.
        let created = std::thread::scope(|scope| {
            let names = std::thread::Builder::new()
                .name("strata-names".into())
                .spawn_scoped(scope, || self.free_name(options.name.as_deref()));
            let name = move || match names {
                Ok(names) => names.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => self.free_name(options.name.as_deref()),
            };
            self.create_locked(&lock, &mut journal, image, (options, &requests), &runtime, name)
        });
        match created {
            Ok(id) => {
                journal.finish()?;
                self.get_unlocked(id)
            }
            Err(e) => {
                if let Err(undo) = journal.undo(&self.store, &lock) {
                    tracing::warn!("undoing a failed create: {undo} (the next write retries)");
                }
                Err(e)
            }
        }
    }

    /// Make the container's layers and records; `name` gives its name when the record needs it.
    fn create_locked(
        &self,
        lock: &StoreLock,
        journal: &mut Journal,
        image: &str,
        (options, requests): (&CreateOptions, &super::volumes::Requests),
        runtime: &Runtime,
        name: impl FnOnce() -> Result<String>,
    ) -> Result<ContainerId> {
        let image_id = self.images.resolve_unlocked(image)?;
        let image_record = self.images.get_unnamed(image_id)?;
        let stack = self.images.layers_of(&image_record)?;

        let id = ContainerId::random();
        let mut config = image_record.config.config.clone().unwrap_or_default();
        apply(&mut config, options);
        config.hostname = id.short().to_owned();
        config.image = image.to_owned();
        let command: Vec<String> =
            config.entrypoint.iter().flatten().chain(config.cmd.iter().flatten()).cloned().collect();
        let Some((path, args)) = command.split_first() else {
            return Err(Error::NoCommand(image.to_owned()));
        };

        // The layers: -init on the image's top layer, the writable one on -init.
        let mount_id = LayerId::random();
        let init_id = mount_id.init_layer();
        let image_diffs: Vec<PathBuf> = stack.iter().rev().map(|r| self.layers.diff_dir(&r.cache_id)).collect();
        let staged = Scratch::new(&self.store, "container init")?;
        mkdir(staged.dir(), 0o755)?;
        init::populate(staged.dir(), &image_diffs)?;
        journal.note(&Step::Layer(init_id.clone()).line())?;
        let parent = stack.last().map(|r| r.cache_id.clone());
        self.layers.create_locked(lock, &LayerOptions { id: Some(init_id.clone()), parent }, Some(staged.dir()))?;
        staged.finish()?;
        journal.note(&Step::Layer(mount_id.clone()).line())?;
        self.layers.create_locked(
            lock,
            &LayerOptions { id: Some(mount_id.clone()), parent: Some(init_id.clone()) },
            None,
        )?;
        crate::failpoint::hit("container.layers");

        // The mounts: volumes made (journaled), the image's content copied into new ones.
        let mounts = self.plan_mounts(lock, journal, requests, &mut config)?;
        crate::failpoint::hit("container.volumes");
        if !mounts.copy_up.is_empty() {
            let merged = self.layers.mount_locked(lock, &mount_id)?;
            let copied = self.copy_up(&merged, &mounts);
            let unmounted = self.layers.unmount_locked(lock, &mount_id, false);
            copied?;
            unmounted?;
        }

        // The records: layerdb/mounts/<id>, then containers/<id>, built aside.
        journal.note(&super::journal::line(id))?;
        let layers = MountRecord { mount_id, init_id: Some(init_id), parent: stack.last().map(|r| r.chain_id) };
        self.images.layerdb.put_mount(id.as_str(), &layers, &journal.name())?;
        let mut extra = dockerd_extras(options.network.mode());
        // What dockerd records of the security options at create, and uses when it starts it.
        let profile = match &options.security.seccomp {
            Seccomp::Default => "",
            Seccomp::Unconfined => "unconfined",
            Seccomp::Profile(json) => json,
        };
        extra.insert("SeccompProfile".into(), profile.into());
        extra.insert("NoNewPrivileges".into(), options.security.no_new_privileges.into());
        let name = name()?;
        let mut record = Record {
            state: State::default(),
            id,
            created: now_rfc3339(),
            path: path.clone(),
            args: args.to_vec(),
            config,
            image: image_id.to_string(),
            name: format!("/{name}"),
            driver: crate::store::DRIVER_NAME.to_owned(),
            os: "linux".to_owned(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            has_been_started_before: false,
            extra,
        };
        let mut host = HostConfig::new(options.network.mode(), options.auto_remove, runtime.name());
        host.extra["LogConfig"]["Config"] = super::log::LogLimits::to_config(&options.log_options).into();
        let security = options.security.to_stored();
        host.security_opt = (!security.is_empty()).then_some(security);
        host.init = options.init.then_some(true);
        Self::record_mounts(requests, &mounts, &mut record, &mut host);
        let aside = journal.dir().join("container");
        mkdir(&aside, 0o710)?;
        write_new(&aside.join(CONFIG), &json_line(&record), 0o600)?;
        write_new(&aside.join(HOST_CONFIG), &json_line(&host), 0o644)?;
        mkdir(&aside.join("checkpoints"), 0o700)?;
        let target = self.dir(id);
        let change = crate::index::Change::begin(&self.store, &crate::image::index::CONTAINERS);
        let images = crate::index::Change::begin(&self.store, &crate::image::index::CONTAINER_IMAGES);
        std::fs::rename(&aside, &target).ctx("rename", &target)?;
        change.added(id.as_str(), &format!("{} 0 {name}", image_id.hex()));
        images.added(id.as_str(), &image_id.hex());
        crate::failpoint::hit("container.created");
        tracing::debug!(%id, name, "created container");
        Ok(id)
    }

    /// `wanted` if no container has it, or a fresh random name (through the index of
    /// containers' records): the names to try are made first and compared with each
    /// container's, with no map of every name.
    pub(crate) fn free_name(&self, wanted: Option<&str>) -> Result<String> {
        const TRIES: u32 = 8;
        for round in 0..1000 {
            let tries: Vec<String> = match wanted {
                Some(wanted) => vec![valid_name(wanted)?.to_owned()],
                None => (round * TRIES..(round + 1) * TRIES).map(random_name).collect(),
            };
            let mut holders: Vec<Option<String>> = vec![None; tries.len()];
            self.images.container_names(|id, name| {
                if let Some(at) = tries.iter().position(|t| t == name) {
                    holders[at].get_or_insert_with(|| id.to_owned());
                }
            })?;
            if let (Some(wanted), Some(Some(other))) = (wanted, holders.first()) {
                return Err(Error::Container {
                    container: wanted.to_owned(),
                    reason: format!(
                        "the name is already in use by container {}; remove that container or choose another name",
                        &other[..12]
                    ),
                });
            }
            if let Some((name, _)) = tries.into_iter().zip(holders).find(|(_, holder)| holder.is_none()) {
                return Ok(name);
            }
        }
        Err(Error::Container {
            container: "(new)".into(),
            reason: "no random name is free; give one with --name".into(),
        })
    }
}

/// The container's options over the image's config, as dockerd merges them.
fn apply(config: &mut ContainerConfig, options: &CreateOptions) {
    if let Some(entrypoint) = &options.entrypoint {
        config.entrypoint = (!entrypoint.is_empty()).then(|| entrypoint.clone());
        config.cmd = None;
    }
    if !options.cmd.is_empty() {
        config.cmd = Some(options.cmd.clone());
    }
    if !options.env.is_empty() {
        let env = config.env.get_or_insert_with(Vec::new);
        for var in &options.env {
            super::spec::set_var(env, var);
        }
    }
    if let Some(dir) = &options.workdir {
        config.working_dir = dir.clone();
    }
    if let Some(user) = &options.user {
        config.user = user.clone();
    }
    // dockerd's create gives a container's config labels, empty if the image has none.
    config.labels.get_or_insert_with(Default::default);
    config.attach_stdout = true;
    config.attach_stderr = true;
    config.tty = options.tty;
    if options.interactive {
        config.open_stdin = true;
        config.stdin_once = true;
        config.attach_stdin = true;
    }
}

/// Compact JSON and a newline, as dockerd writes its records.
pub(crate) fn json_line(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("serializable");
    bytes.push(b'\n');
    bytes
}
