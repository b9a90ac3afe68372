//! A container's mounts at create (volumes made, the image's content copied into new ones)
//! and at start (the runtime's mounts), and the volumes seen from the containers that use
//! them: `volume rm` refuses one in use, `volume prune` removes the unused, `rm -v` a
//! container's anonymous ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use serde_json::{Value, json};

use super::id::ContainerId;
use super::mounts::{self, BIND, MountPoint, MountSpec, TMPFS, VOLUME};
use super::record::{HostConfig, Record};
use super::{ContainerStore, CreateOptions};
use crate::error::{Error, IoContext, Result};
use crate::image::ContainerConfig;
use crate::lock::StoreLock;
use crate::txn::Journal;
use crate::volume::{Volume, VolumeStore, anonymous_name};

/// The mounts a create asked for, checked before anything is made.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    binds: Vec<(String, MountPoint)>,
    anonymous: Vec<String>,
    mounts: Vec<MountSpec>,
    tmpfs: BTreeMap<String, String>,
    volumes_from: Vec<(String, String, bool)>,
}

impl Requests {
    /// Parse the options' `-v`, `--mount`, `--tmpfs` and `--volumes-from`.
    pub(crate) fn parse(options: &CreateOptions) -> Result<Requests> {
        let mut out = Requests::default();
        for raw in &options.volumes {
            match mounts::parse_bind(raw)? {
                Some(point) => out.binds.push((raw.clone(), point)),
                None => out.anonymous.push(crate::gopath::clean(raw)),
            }
        }
        for raw in &options.mounts {
            out.mounts.push(mounts::parse_mount(raw)?);
        }
        for raw in &options.tmpfs {
            let (dest, opts) = mounts::parse_tmpfs(raw)?;
            out.tmpfs.insert(dest, opts);
        }
        for raw in &options.volumes_from {
            let (name, rw) = mounts::parse_volumes_from(raw)?;
            out.volumes_from.push((raw.clone(), name, rw));
        }
        Ok(out)
    }
}

fn duplicate(dest: &str) -> Error {
    Error::BadOption { what: "mount", value: dest.to_owned(), reason: format!("Duplicate mount point: {dest}") }
}

/// What a create mounts: the records' fields, and the new volumes to fill from the image.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    pub points: BTreeMap<String, MountPoint>,
    /// (destination, volume) of each volume the image's content is copied into, if empty.
    pub copy_up: Vec<(String, String)>,
}

impl ContainerStore {
    /// Resolve `requests` for a new container whose config is `config` (its `Volumes` gain
    /// the anonymous `-v` ones): `--volumes-from` first, then `-v`, then `--mount`, then the
    /// image's volumes, each later one taking a destination over (dockerd's order). Volumes
    /// that do not exist are made, each journaled first.
    pub(crate) fn plan_mounts(
        &self,
        lock: &StoreLock,
        journal: &mut Journal,
        requests: &Requests,
        config: &mut ContainerConfig,
    ) -> Result<Planned> {
        let volumes = VolumeStore::new(&self.store);
        let mut plan = Planned::default();
        let mut make = |name: &str, labels| -> Result<()> {
            if !volumes.exists(name) {
                journal.note(&super::journal::volume_line(name))?;
                volumes.create_locked(lock, name, labels)?;
            }
            Ok(())
        };
        for (_, name, rw) in &requests.volumes_from {
            let from = self.get_unlocked(self.resolve_unlocked(name)?)?;
            for point in from.record.mount_points() {
                let point = MountPoint { rw: point.rw && *rw, mode: String::new(), ..point };
                plan.points.insert(point.destination.clone(), point);
            }
        }
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for (_, point) in &requests.binds {
            if !taken.insert(point.destination.clone()) || requests.tmpfs.contains_key(&point.destination) {
                return Err(duplicate(&point.destination));
            }
            let mut point = point.clone();
            if point.kind == VOLUME {
                make(&point.name, None)?;
                point.source = volumes.data_dir(&point.name).to_string_lossy().into_owned();
                if point.spec.copies() {
                    plan.copy_up.push((point.destination.clone(), point.name.clone()));
                }
            }
            plan.points.insert(point.destination.clone(), point);
        }
        for spec in &requests.mounts {
            let destination = crate::gopath::clean(&spec.target);
            if !taken.insert(destination.clone()) || requests.tmpfs.contains_key(&destination) {
                return Err(duplicate(&destination));
            }
            let mut point = MountPoint {
                source: String::new(),
                destination: destination.clone(),
                rw: !spec.read_only,
                name: String::new(),
                driver: String::new(),
                kind: spec.kind.clone(),
                mode: String::new(),
                propagation: String::new(),
                spec: spec.clone(),
                skip_mountpoint_creation: false,
                extra: Default::default(),
            };
            match spec.kind.as_str() {
                VOLUME => {
                    point.name = if spec.source.is_empty() { anonymous_name() } else { spec.source.clone() };
                    make(&point.name, spec.labels())?;
                    point.source = volumes.data_dir(&point.name).to_string_lossy().into_owned();
                    point.driver = "local".into();
                    point.mode = "z".into();
                    if spec.copies() {
                        plan.copy_up.push((destination.clone(), point.name.clone()));
                    }
                }
                BIND => {
                    point.source = crate::gopath::clean(&spec.source);
                    point.propagation = spec
                        .bind_options
                        .as_ref()
                        .and_then(|o| o["Propagation"].as_str())
                        .unwrap_or("rprivate")
                        .to_owned();
                    point.skip_mountpoint_creation = true;
                }
                _ => {}
            }
            plan.points.insert(destination, point);
        }
        let image_volumes = config.volumes.get_or_insert_with(Default::default);
        for dest in &requests.anonymous {
            image_volumes.insert(dest.clone(), json!({}));
        }
        let wanted: Vec<String> = image_volumes.keys().map(|d| crate::gopath::clean(d)).collect();
        if config.volumes.as_ref().is_some_and(BTreeMap::is_empty) {
            config.volumes = None;
        }
        for destination in wanted {
            if plan.points.contains_key(&destination) || requests.tmpfs.contains_key(&destination) {
                continue;
            }
            let name = anonymous_name();
            make(&name, None)?;
            plan.copy_up.push((destination.clone(), name.clone()));
            let point = MountPoint {
                source: String::new(),
                destination: destination.clone(),
                rw: true,
                name,
                driver: "local".into(),
                kind: VOLUME.into(),
                mode: String::new(),
                propagation: String::new(),
                spec: MountSpec::default(),
                skip_mountpoint_creation: false,
                extra: Default::default(),
            };
            plan.points.insert(destination, point);
        }
        Ok(plan)
    }

    /// Record the mounts in the container's records as dockerd does.
    pub(crate) fn record_mounts(requests: &Requests, plan: &Planned, record: &mut Record, host: &mut HostConfig) {
        record.extra.insert("MountPoints".into(), serde_json::to_value(&plan.points).expect("serializable"));
        let binds: Vec<&String> = requests.binds.iter().map(|(raw, _)| raw).collect();
        host.extra.insert("Binds".into(), if binds.is_empty() { Value::Null } else { json!(binds) });
        if !requests.mounts.is_empty() {
            host.extra.insert("Mounts".into(), json!(requests.mounts));
        }
        if !requests.tmpfs.is_empty() {
            host.extra.insert("Tmpfs".into(), json!(requests.tmpfs));
        }
        let from: Vec<&String> = requests.volumes_from.iter().map(|(raw, _, _)| raw).collect();
        host.extra.insert("VolumesFrom".into(), if from.is_empty() { Value::Null } else { json!(from) });
    }

    /// Copy what the container's tree (mounted at `root`) holds at each destination into its
    /// new volume, if the volume is empty (dockerd's `CopyImagePathContent`): owners, modes,
    /// links and times kept. A destination is resolved inside the tree, symlinks and all.
    pub(crate) fn copy_up(&self, root: &Path, plan: &Planned) -> Result<()> {
        let volumes = VolumeStore::new(&self.store);
        let root_fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .ctx("open", root)?;
        for (destination, name) in &plan.copy_up {
            let rel = destination.trim_start_matches('/');
            let flags = OFlags::PATH | OFlags::CLOEXEC;
            let source = match rustix::fs::openat2(&root_fd, rel, flags, Mode::empty(), in_root()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => continue,
                Err(e) => return Err(Error::io("open", destination.as_str(), e)),
            };
            let st = rustix::fs::fstat(&source).ctx("stat", destination.as_str())?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Error::BadOption {
                    what: "volume",
                    value: destination.clone(),
                    reason: "cannot mount volume over existing file, file exists in the image".into(),
                });
            }
            let data = volumes.data_dir(name);
            if std::fs::read_dir(&data).ctx("read", &data)?.next().is_some() {
                continue;
            }
            let (reader, writer) = crate::archive::pipe().ctx("pipe", &data)?;
            let shown = format!("{destination} in the image");
            std::thread::scope(|scope| {
                let pack = scope.spawn(|| crate::archive::tree::pack_tree(&source, "", None, &shown, writer));
                let unpacked = crate::archive::tree::unpack_plain(&data, reader);
                let packed = pack.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                packed.and(unpacked)
            })?;
            // The volume's top takes the owner and mode of the directory it covers.
            rustix::fs::chown(
                &data,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            )
            .ctx("chown", &data)?;
            rustix::fs::chmod(&data, Mode::from_raw_mode(st.st_mode & 0o7777)).ctx("chmod", &data)?;
        }
        Ok(())
    }

    /// The runtime's mounts for the container's mount points and tmpfs, parents first; bind
    /// sources `-v` named are made if missing, as dockerd makes them.
    pub(crate) fn runtime_mounts(&self, record: &Record, host: &HostConfig) -> Result<Vec<Value>> {
        let volumes = VolumeStore::new(&self.store);
        let mut out: Vec<(String, Value)> = Vec::new();
        for point in record.mount_points() {
            let mut options = vec!["rbind".to_owned()];
            let source = match point.kind.as_str() {
                VOLUME => {
                    if !volumes.exists(&point.name) {
                        return Err(Error::VolumeNotFound(point.name.clone()));
                    }
                    options.push("rprivate".into());
                    volumes.data_dir(&point.name)
                }
                BIND => {
                    let source = Path::new(&point.source);
                    if !source.exists() {
                        if point.skip_mountpoint_creation {
                            return Err(Error::BadOption {
                                what: "mount",
                                value: point.source.clone(),
                                reason: format!("bind source path does not exist: {}", point.source),
                            });
                        }
                        std::fs::create_dir_all(source).ctx("mkdir", source)?;
                    }
                    options.push(if point.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        point.propagation.clone()
                    });
                    source.to_path_buf()
                }
                TMPFS => {
                    let options = mounts::tmpfs_options(&mounts::tmpfs_spec_options(&point.spec));
                    let mount = json!({"destination": point.destination, "type": "tmpfs", "source": "tmpfs", "options": options});
                    out.push((point.destination.clone(), mount));
                    continue;
                }
                _ => continue,
            };
            if !point.rw {
                options.push("ro".into());
            }
            let mount = json!({"destination": point.destination, "type": "bind", "source": source, "options": options});
            out.push((point.destination.clone(), mount));
        }
        if let Some(Value::Object(tmpfs)) = host.extra.get("Tmpfs") {
            for (dest, opts) in tmpfs {
                let options = mounts::tmpfs_options(opts.as_str().unwrap_or_default());
                out.push((
                    dest.clone(),
                    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
                ));
            }
        }
        out.sort_by_key(|(dest, _)| dest.split('/').filter(|p| !p.is_empty()).count());
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    /// The host directories (or files) of the container's volumes and binds, parents first:
    /// `(destination, source, writable)`.
    pub(crate) fn host_sources(&self, record: &Record) -> Vec<(String, std::path::PathBuf, bool)> {
        let volumes = VolumeStore::new(&self.store);
        let mut out: Vec<(String, std::path::PathBuf, bool)> = record
            .mount_points()
            .into_iter()
            .filter_map(|p| match p.kind.as_str() {
                VOLUME => Some((p.destination, volumes.data_dir(&p.name), p.rw)),
                BIND if Path::new(&p.source).exists() => Some((p.destination, p.source.into(), p.rw)),
                _ => None,
            })
            .collect();
        out.sort_by_key(|(dest, _, _)| dest.split('/').filter(|p| !p.is_empty()).count());
        out
    }

    /// The containers using each volume (by their records' mount points).
    pub(crate) fn volume_users(&self) -> Result<BTreeMap<String, Vec<ContainerId>>> {
        let mut users: BTreeMap<String, Vec<ContainerId>> = BTreeMap::new();
        for id in self.ids()? {
            let Some(record) = self.read_record(id)? else { continue };
            for point in record.mount_points() {
                if point.kind == VOLUME {
                    users.entry(point.name).or_default().push(id);
                }
            }
        }
        Ok(users)
    }

    /// The containers using each volume, read under the store's read lock.
    pub(crate) fn volume_users_locked(&self) -> Result<BTreeMap<String, Vec<ContainerId>>> {
        let _lock = self.store.read_lock()?;
        self.volume_users()
    }

    /// Volumes as `volume ls` lists them, with `--filter` (`dangling=true|false`, `name=SUB`,
    /// `label=KEY[=VALUE]`).
    pub fn volumes(&self, filters: &[String]) -> Result<Vec<Volume>> {
        let _lock = self.store.read_lock()?;
        // Only `dangling=` asks which containers use a volume (reading every record).
        let users = match filters.iter().any(|f| f.starts_with("dangling=")) {
            true => self.volume_users()?,
            false => BTreeMap::new(),
        };
        let mut out = VolumeStore::new(&self.store).list()?;
        for filter in filters {
            let bad = |reason: &str| Error::BadOption { what: "filter", value: filter.clone(), reason: reason.into() };
            let (key, value) = filter.split_once('=').ok_or_else(|| bad("give KEY=VALUE"))?;
            match key {
                "dangling" => {
                    let dangling = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("dangling is true or false")),
                    };
                    out.retain(|v| users.contains_key(&v.name) != dangling);
                }
                "name" => out.retain(|v| v.name.contains(value)),
                "driver" => out.retain(|v| v.driver == value),
                "label" => {
                    let (k, want) = value.split_once('=').map_or((value, None), |(k, v)| (k, Some(v)));
                    out.retain(|v| {
                        let label = v.labels.as_ref().and_then(|l| l.get(k));
                        label.is_some() && want.is_none_or(|want| label.is_some_and(|l| l == want))
                    });
                }
                _ => return Err(bad("the filters are dangling, name, driver and label")),
            }
        }
        Ok(out)
    }

    /// Remove a volume that no container uses (`force`: a missing one is no error).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let lock = self.store.write_lock()?;
        let volumes = VolumeStore::new(&self.store);
        if !volumes.exists(name) {
            return if force { Ok(()) } else { Err(Error::VolumeNotFound(name.to_owned())) };
        }
        if let Some(users) = self.volume_users()?.remove(name) {
            let containers = users.iter().map(ToString::to_string).collect();
            return Err(Error::VolumeInUse { volume: name.to_owned(), containers });
        }
        volumes.remove_locked(&lock, name)
    }

    /// Remove every volume no container uses (`label=` filters as in [`volumes`](Self::volumes));
    /// the names removed and the bytes freed.
    pub fn prune_volumes(&self, filters: &[String]) -> Result<(Vec<String>, u64)> {
        let mut wanted = filters.to_vec();
        wanted.push("dangling=true".into());
        let candidates = self.volumes(&wanted)?;
        let lock = self.store.write_lock()?;
        let users = self.volume_users()?;
        let volumes = VolumeStore::new(&self.store);
        let mut removed = Vec::new();
        let mut freed = 0;
        for volume in candidates {
            if users.contains_key(&volume.name) || !volumes.exists(&volume.name) {
                continue;
            }
            let size = volumes.size(&volume.name);
            volumes.remove_locked(&lock, &volume.name)?;
            freed += size;
            removed.push(volume.name);
        }
        Ok((removed, freed))
    }
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// What `inspect` shows as `Mounts`, by destination.
pub(crate) fn inspect_mounts(store: &crate::store::Store, record: &Record) -> Vec<Value> {
    let volumes = VolumeStore::new(store);
    record
        .mount_points()
        .iter()
        .map(|p| {
            let source = if p.kind == VOLUME && p.source.is_empty() {
                volumes.data_dir(&p.name).to_string_lossy().into_owned()
            } else {
                p.source.clone()
            };
            mounts::api(p, &source)
        })
        .collect()
}
