//! `rm`: a stopped container's records and both its layers, as `docker rm` removes them.
//! Everything to remove is journaled first, so a kill part-way is finished by the next writer.

use std::time::Duration;

use super::ContainerStore;
use super::id::ContainerId;
use super::monitor;
use super::runtime::Runtime;
use crate::error::{Error, Result};
use crate::image::journal::Step;
use crate::lock::StoreLock;
use crate::txn::Journal;

/// How long `rm -f` waits for a killed container's strata process to clean up.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl ContainerStore {
    /// Remove a container and its layers. A running container (or one mounted with
    /// [`mount`](Self::mount)) is refused unless `force`, which kills and unmounts it first.
    pub fn remove(&self, name: &str, force: bool) -> Result<ContainerId> {
        self.remove_with(name, force, false)
    }

    /// [`remove`](Self::remove), and with `volumes` (`rm -v`) the container's anonymous
    /// volumes that no other container uses.
    pub fn remove_with(&self, name: &str, force: bool, volumes: bool) -> Result<ContainerId> {
        let container = self.find(name)?;
        let id = container.id();
        let refuse = |reason: &str| Error::Container { container: name.to_owned(), reason: reason.to_owned() };
        let runtime = Runtime::find(&self.store, &container.host.runtime).ok();
        if container.running {
            if !force {
                return Err(refuse("is running: stop it first, or remove it with -f"));
            }
            if let Some(runtime) = &runtime {
                runtime.kill(id, "KILL")?;
                self.thaw(id, runtime)?;
            }
            if !monitor::wait_released(&self.store, id, STOP_TIMEOUT) {
                return Err(refuse("did not stop within 10 seconds of SIGKILL"));
            }
        }
        let lock = self.store.write_lock()?;
        let container = self.get_unlocked(id)?;
        if monitor::is_held(&self.store, id) {
            return Err(refuse("was started again while being removed"));
        }
        if container.running && !force {
            return Err(refuse("is running: stop it first, or remove it with -f"));
        }
        if let Some(runtime) = &runtime {
            self.settle(&lock, container.clone(), Some(runtime))?;
            runtime.delete(id);
        }
        let mount_id = &container.layers.mount_id;
        if self.layers.reconcile_mounts(mount_id)? > 0 {
            if !force {
                return Err(refuse("is mounted (strata mount): unmount it first, or remove it with -f"));
            }
            self.layers.unmount_locked(&lock, mount_id, true)?;
        }
        self.remove_locked(&lock, id, volumes)?;
        Ok(id)
    }

    /// Remove a stopped, unmounted container with the store lock held (and its anonymous
    /// volumes that no other container uses, with `volumes`).
    pub(crate) fn remove_locked(&self, lock: &StoreLock, id: ContainerId, volumes: bool) -> Result<()> {
        let layers = self.images.layerdb.mount(id.as_str())?;
        let mut anonymous = Vec::new();
        if volumes && let Some(record) = self.read_record(id)? {
            let users = self.volume_users()?;
            for point in record.mount_points().into_iter().filter(|p| p.is_anonymous_volume()) {
                if users.get(&point.name).is_none_or(|u| u.iter().all(|user| *user == id)) {
                    anonymous.push(point.name);
                }
            }
        }
        let mut journal = Journal::begin(&self.store, super::journal::REMOVE)?;
        journal.note(&super::journal::line(id))?;
        if let Some(layers) = layers {
            journal.note(&Step::Layer(layers.mount_id).line())?;
            if let Some(init) = layers.init_id {
                journal.note(&Step::Layer(init).line())?;
            }
            // The image's layers go too if its image was removed and nothing else uses them.
            if let Some(parent) = layers.parent {
                for (chain, cache_id) in self.images.released_with(parent, id.as_str())? {
                    journal.note(&Step::Chain(chain).line())?;
                    journal.note(&Step::Layer(cache_id).line())?;
                }
            }
        }
        for name in &anonymous {
            journal.note(&super::journal::volume_line(name))?;
        }
        crate::failpoint::hit("rm.journaled");
        // Carrying out a removal's journal is what finishing it after a crash does.
        journal.undo(&self.store, lock)?;
        tracing::debug!(%id, "removed container");
        Ok(())
    }
}
