//! `tag` and `rmi`, with dockerd's rules for what a removal takes with it: a name given is
//! untagged; the image goes when no name is left (and its untagged parents after it); its
//! layers go when no other image and no container stands on them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::ImageStore;
use super::ids::{ChainId, ImageId};
use super::index::ContainerUse;
use super::journal::{self, Step};
use super::reference::Reference;
use crate::error::{Error, Result};
use crate::txn::Journal;

/// One thing `rmi` did, as `docker rmi` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Removed {
    /// A name was removed.
    Untagged(String),
    /// An image (by ID) or a layer (by chainID) was deleted.
    Deleted(String),
}

impl ImageStore {
    /// Give the image `source` (a name or ID) the name `target` (`latest` if untagged).
    pub fn tag(&self, source: &str, target: Reference) -> Result<ImageId> {
        let id = self.resolve(source)?;
        let mut registration = self.writer()?;
        if !self.imagedb.contains(id) {
            return Err(Error::ImageNotFound(source.to_owned()));
        }
        registration.tag(target.or_latest(), id)?;
        registration.commit()?;
        Ok(id)
    }

    /// Remove an image or one of its names, as `docker rmi` does; `force` removes an image
    /// with several names, or one a stopped container uses (the container keeps its layers).
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        self.remove_each(&[name], force)?.pop().unwrap_or_else(|| Ok(Vec::new()))
    }

    /// [`remove`](Self::remove) each of `names` in turn, as `docker rmi A B …` does: each its
    /// own journaled removal, a failure of one not stopping the next, and one result each. The
    /// store stays locked throughout and the names file is read once (again after a failure).
    pub fn remove_each(&self, names: &[&str], force: bool) -> Result<Vec<Result<Vec<Removed>>>> {
        let lock = self.store.write_lock()?;
        let mut repos: Option<super::Repositories> = None;
        let mut results = Vec::with_capacity(names.len());
        let mut trash = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let result = match repos.take() {
                Some(r) => Ok(r),
                None => self.repositories(),
            }
            .and_then(|mut r| {
                let removed = self.remove_locked(&lock, &mut r, name, force, &mut |s| trash.push((i, s)))?;
                repos = Some(r);
                Ok(removed)
            });
            results.push(result);
        }
        drop(lock);
        // What the removals took away is deleted once nobody waits on the lock for it.
        for (i, scratch) in trash {
            if let Err(e) = scratch.finish()
                && results[i].is_ok()
            {
                results[i] = Err(e);
            }
        }
        Ok(results)
    }

    /// One removal, under `lock`, with the names as they are now in `repos`; the removed
    /// layers' trees go to `trash`.
    fn remove_locked(
        &self,
        lock: &crate::lock::StoreLock,
        repos: &mut super::Repositories,
        name: &str,
        force: bool,
        trash: &mut dyn FnMut(crate::scratch::Scratch),
    ) -> Result<Vec<Removed>> {
        let id = self.resolve_in(name, repos)?;
        let (containers, using) = self.containers_using(id)?;
        let using: Vec<&ContainerUse> = using.iter().collect();
        let conflict = |reason: String| Error::ImageConflict { image: name.to_owned(), reason };
        let names = repos.names_of(id);
        let by_id = id.is_named_by(name);
        let mut untag = Vec::new();
        if !by_id {
            let given = name.parse::<Reference>()?.or_latest();
            if !force
                && single_repository(&names)
                && let Some(c) = using.first()
            {
                return Err(conflict(format!(
                    "container {} uses it; remove the container first, or use -f",
                    &c.id[..c.id.len().min(12)]
                )));
            }
            // A repository's last tag takes its digest names with it, as in dockerd.
            let same_repository = |n: &Reference| n.domain() == given.domain() && n.path() == given.path();
            if given.digest().is_none()
                && !names.iter().any(|n| *n != given && n.digest().is_none() && same_repository(n))
            {
                untag.extend(names.iter().filter(|n| n.digest().is_some() && same_repository(n)).cloned());
            }
            untag.insert(0, given);
            if names.iter().any(|n| !untag.contains(n)) {
                return self.finish_remove(lock, repos, untag, Vec::new(), id, trash);
            }
        } else if single_repository(&names) {
            untag.extend(names.iter().cloned());
        }

        // The image itself goes now: check what stops it.
        let children = self.children_of(id)?;
        if !children.is_empty() {
            return Err(conflict(format!("images {} are built on it; remove them first", short_ids(&children))));
        }
        if let Some(c) = using.iter().find(|c| c.running) {
            return Err(conflict(format!("running container {} uses it; stop it first", &c.id[..c.id.len().min(12)])));
        }
        if !force {
            if names.len() > untag.len() {
                return Err(conflict("it has names in several repositories: remove them one by one, or use -f".into()));
            }
            if let Some(c) = using.first() {
                return Err(conflict(format!(
                    "stopped container {} uses it; remove the container first, or use -f",
                    &c.id[..c.id.len().min(12)]
                )));
            }
        }
        for n in &names {
            if !untag.contains(n) {
                untag.push(n.clone());
            }
        }
        // Untagged parents go too, while nothing else needs them.
        let mut delete = vec![id];
        let mut parent = self.imagedb.parent(id)?;
        while let Some(p) = parent {
            let untouched = repos.names_of(p).is_empty()
                && !containers.contains(p)
                && self.children_of(p)?.iter().all(|c| delete.contains(c));
            if !untouched || !self.imagedb.contains(p) {
                break;
            }
            delete.push(p);
            parent = self.imagedb.parent(p)?;
        }
        self.finish_remove(lock, repos, untag, delete, id, trash)
    }

    /// Journal every step, then take them: names, images, layerdb entries, overlay2 layers
    /// (their trees handed to `trash`, to delete after the lock).
    fn finish_remove(
        &self,
        lock: &crate::lock::StoreLock,
        repos: &mut super::Repositories,
        untag: Vec<Reference>,
        delete: Vec<ImageId>,
        id: ImageId,
        trash: &mut dyn FnMut(crate::scratch::Scratch),
    ) -> Result<Vec<Removed>> {
        // Layers can only go with an image: an untag alone reads no other image.
        let chains = if delete.is_empty() { Vec::new() } else { self.unreferenced_chains(&delete)? };
        // Every layer that goes can go (nothing mounted, no other layer on it, such as one made
        // with `layer create --parent`), checked before the first step: a refusal changes nothing.
        let going: Vec<crate::LayerId> = chains.iter().map(|(_, cache)| cache.clone()).collect();
        let present: Vec<crate::LayerId> = going.iter().filter(|c| self.store.layer_dir(c).exists()).cloned().collect();
        let checked = self.layers.check_all_removable(lock, &present)?;
        let mut checked: HashMap<_, _> = present.iter().zip(checked).collect();
        let links: Vec<_> = going.iter().map(|cache| checked.remove(cache)).collect();
        let mut journal = Journal::begin(&self.store, journal::REMOVE)?;
        let mut steps = Vec::new();
        for r in &untag {
            steps.push(Step::Untag(r.clone(), id));
        }
        steps.extend(delete.iter().map(|d| Step::Image(*d)));
        for (chain, cache) in &chains {
            steps.push(Step::Chain(*chain));
            steps.push(Step::Layer(cache.clone()));
        }
        for step in &steps {
            journal.note(&step.line())?;
        }
        let mut out = Vec::new();
        for r in &untag {
            repos.remove(r);
            out.push(Removed::Untagged(r.to_string()));
        }
        if !untag.is_empty() {
            repos.save(&self.repositories, journal.dir())?;
        }
        crate::failpoint::hit("remove.untagged");
        for d in &delete {
            self.imagedb.remove(*d)?;
            out.push(Removed::Deleted(d.to_string()));
        }
        for ((chain, cache), link) in chains.iter().zip(links) {
            self.layerdb.remove(*chain, &journal.name())?;
            if let Some(link) = link {
                trash(self.layers.remove_checked(lock, cache, link)?);
            }
            out.push(Removed::Deleted(chain.to_string()));
        }
        journal.finish()?;
        Ok(out)
    }

    /// The chains of `images` that nothing else stands on, top first, with their cache-ids.
    fn unreferenced_chains(&self, images: &[ImageId]) -> Result<Vec<(ChainId, crate::LayerId)>> {
        let mut candidates: Vec<(usize, ChainId)> = Vec::new();
        for image in images {
            let Some(raw) = self.imagedb.config(*image)? else { continue };
            let config = super::ImageConfig::parse(&raw, &format!("image {image}"))?;
            for (depth, chain) in ChainId::chain(&config.rootfs.diff_ids).into_iter().enumerate() {
                if !candidates.iter().any(|(_, c)| *c == chain) {
                    candidates.push((depth, chain));
                }
            }
        }
        let kept = self.chains_in_use(&candidates.iter().map(|(_, c)| *c).collect(), images, None)?;
        let mut found: Vec<(usize, ChainId, crate::LayerId)> = Vec::new();
        for (depth, chain) in candidates {
            if kept.contains(&chain) {
                continue;
            }
            if let Some(record) = self.layerdb.get(chain)? {
                found.push((depth, chain, record.cache_id));
            }
        }
        // Deepest first: a layer goes before the one it stands on.
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(found.into_iter().map(|(_, c, l)| (c, l)).collect())
    }

    /// The part of the stack `top` that nothing but the container `leaving` stands on (an image
    /// removed with `rmi -f` left it to its container), top first, with the cache-ids: what
    /// goes with that container, as dockerd releases a removed container's parent layers.
    pub(crate) fn released_with(&self, top: ChainId, leaving: &str) -> Result<Vec<(ChainId, crate::LayerId)>> {
        let mut stack = Vec::new();
        let mut next = Some(top);
        while let Some(chain) = next {
            let Some(record) = self.layerdb.get(chain)? else { break };
            next = record.parent;
            stack.push((chain, record.cache_id));
        }
        let kept = self.chains_in_use(&stack.iter().map(|(c, _)| *c).collect(), &[], Some(leaving))?;
        Ok(stack.into_iter().take_while(|(chain, _)| !kept.contains(chain)).collect())
    }

    /// The chains among `candidates` that something stands on: an image (other than
    /// `except_images`) that lists it, a container (other than `except_container`) right on it,
    /// or a stack on it that is not a candidate, or is kept (a layer never goes from under
    /// another, as dockerd's references hold a parent). Three passes over the indexes, each
    /// looking only for the candidates' words.
    fn chains_in_use(
        &self,
        candidates: &HashSet<ChainId>,
        except_images: &[ImageId],
        except_container: Option<&str>,
    ) -> Result<HashSet<ChainId>> {
        // Every word of every entry is looked up: hashed quickly (hex digests).
        type Fast = foldhash::fast::FixedState;
        let hex: Vec<(String, ChainId)> = candidates.iter().map(|c| (c.hex(), *c)).collect();
        let wanted: HashMap<&[u8], ChainId, Fast> = hex.iter().map(|(h, c)| (h.as_bytes(), *c)).collect();
        let candidate = |word: &str| wanted.get(word.as_bytes()).copied();
        let excepted: HashSet<String, Fast> = except_images.iter().map(|i| i.hex()).collect();
        let mut kept = HashSet::new();

        let lists_one = |chains: &str| {
            let mut hit = false;
            each_chain(chains, |c| hit |= wanted.contains_key(c));
            hit
        };
        for (image, chains) in self.images_listing(lists_one)? {
            if !excepted.contains(&image) {
                each_chain(&chains, |c| kept.extend(wanted.get(c)));
            }
        }

        // A container's layers: `mount-id init-id parent`; one without a recorded layer might
        // stand on anything.
        let on_one = |record: &str| {
            let mut words = crate::index::words(record);
            words.next().is_none_or(|w| w == "?") || words.nth(1).and_then(candidate).is_some()
        };
        for (container, record) in self.mounts_matching(on_one)? {
            let mut words = crate::index::words(&record);
            if words.next().is_none_or(|w| w == "?") {
                let path = self.layerdb.mounts_dir().join(container).join("mount-id");
                return Err(Error::corrupt(path, "is missing: what this container stands on is unknown"));
            }
            if Some(container.as_str()) != except_container {
                kept.extend(words.nth(1).and_then(candidate));
            }
        }

        // Stacks right on a candidate (`cache-id parent`, the parent as its file says it:
        // `sha256:<hex>`), and the candidates they keep, from the top down.
        let parents: Vec<String> = hex.iter().map(|(h, _)| format!("sha256:{h}")).collect();
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        let children: Vec<(ChainId, Option<ChainId>)> = self
            .chains_on(&parents)?
            .into_iter()
            .filter_map(|(child, parent)| Some((candidate(parent.strip_prefix("sha256:")?)?, candidate(&child))))
            .collect();
        loop {
            let before = kept.len();
            for (parent, child) in &children {
                if child.is_none_or(|c| kept.contains(&c)) {
                    kept.insert(*parent);
                }
            }
            if kept.len() == before {
                break;
            }
        }
        Ok(kept)
    }

    /// Whether some image records `id` as its parent.
    pub(crate) fn has_children(&self, id: ImageId) -> Result<bool> {
        let _lock = self.store.read_lock()?;
        Ok(!self.children_of(id)?.is_empty())
    }

    /// `id` and every image built on it, at any depth (their recorded parents lead to `id`).
    pub(crate) fn with_descendants(&self, id: ImageId) -> Result<Vec<ImageId>> {
        let _lock = self.store.read_lock()?;
        let mut children: HashMap<ImageId, Vec<ImageId>> = HashMap::new();
        for (child, parent) in self.image_parents()? {
            children.entry(parent).or_default().push(child);
        }
        let mut out = vec![id];
        let mut next = 0;
        while next < out.len() {
            for child in children.get(&out[next]).into_iter().flatten() {
                if !out.contains(child) {
                    out.push(*child);
                }
            }
            next += 1;
        }
        Ok(out)
    }

    /// Images whose recorded parent is `id`.
    fn children_of(&self, id: ImageId) -> Result<Vec<ImageId>> {
        let mut out = self.image_children(id)?;
        out.sort();
        Ok(out)
    }

    /// Which images containers use, and the containers that use `id` as their records say
    /// now. Which image a container uses never changes, so the index of containers' images
    /// answers the first without a `stat` per container; only the few users of `id` are read
    /// afresh. A container whose record could not be read is looked at again through the index
    /// of whole records; one that still has none is an error, naming it.
    fn containers_using(&self, id: ImageId) -> Result<(ImagesInUse, Vec<ContainerUse>)> {
        let images = self.container_images()?;
        let unknown: Vec<String> = images.with_value("?").into_iter().map(str::to_owned).collect();
        if unknown.is_empty() {
            let mut users = Vec::new();
            for container in images.with_value(&id.hex()) {
                if let Some(now) = self.container_now(container)? {
                    users.push(now);
                }
            }
            users.sort_by(|a, b| a.id.cmp(&b.id));
            return Ok((ImagesInUse::Index(images), users));
        }
        // A record missing when the image index read it may be there now (dockerd was making
        // the container): the whole-record index says, and the image index learns it.
        let (mut in_use, mut users) = (HashSet::new(), Vec::new());
        for container in self.container_index()? {
            let Some(image) = &container.image else {
                let path = self.store.containers_dir().join(&container.id).join("config.v2.json");
                return Err(Error::corrupt(
                    path,
                    "is missing: which image this container uses is unknown, so no image is removed",
                ));
            };
            if unknown.contains(&container.id) {
                crate::index::Change::begin(&self.store, &super::index::CONTAINER_IMAGES).added(&container.id, image);
            }
            let image: ImageId = image.parse()?;
            in_use.insert(image);
            if image == id {
                users.push(container);
            }
        }
        Ok((ImagesInUse::Set(in_use), users))
    }
}

/// The images some container uses: the index of containers' images, or a set read afresh.
enum ImagesInUse {
    Index(crate::index::Entries),
    Set(HashSet<ImageId>),
}

impl ImagesInUse {
    fn contains(&self, image: ImageId) -> bool {
        match self {
            ImagesInUse::Index(entries) => !entries.with_value(&image.hex()).is_empty(),
            ImagesInUse::Set(set) => set.contains(&image),
        }
    }
}

/// Each chainID of an image's index value (hex, joined by spaces), handed to `each`: taken in
/// 65-byte steps when the value has that shape, else split at its spaces.
fn each_chain(chains: &str, mut each: impl FnMut(&[u8])) {
    let bytes = chains.as_bytes();
    if bytes.len() % 65 == 64 && bytes.iter().skip(64).step_by(65).all(|b| *b == b' ') {
        bytes.chunks(65).for_each(|c| each(&c[..64]));
    } else {
        chains.split(' ').for_each(|c| each(c.as_bytes()));
    }
}

fn single_repository(names: &[Reference]) -> bool {
    names.iter().map(|n| n.name()).collect::<HashSet<_>>().len() <= 1
}

fn short_ids(ids: &[ImageId]) -> String {
    ids.iter().map(|i| i.short()).collect::<Vec<_>>().join(", ")
}
