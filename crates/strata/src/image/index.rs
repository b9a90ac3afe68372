//! The indexes of the image database and of containers' records (see `index`): what every
//! stack, image and container stands on, read without opening each of them. `rmi`, `create`
//! and the layer commands ask these questions of every image and container in the store.

use std::collections::HashMap;

use super::ImageStore;
use super::ids::{ChainId, ImageId};
use super::layerdb::MountRecord;
use crate::error::{Error, Result};
use crate::index::{Entries, Index, Kind, words};
use crate::store::Store;

fn hex64(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `layerdb/sha256/`: each stack's `cache-id` (`?` if it has none) and parent (`-`).
pub(crate) static CHAINS: Kind = Kind {
    name: "chains",
    dir: |store| super::layerdb::path(store.root()).join("sha256"),
    stamp_file: None,
    accept: hex64,
};

/// `layerdb/mounts/`: each container's writable layer (`?` if unrecorded), `-init` layer and
/// image stack (`-` for none).
pub(crate) static MOUNTS: Kind = Kind {
    name: "mounts",
    dir: |store| super::layerdb::path(store.root()).join("mounts"),
    stamp_file: None,
    accept: hex64,
};

/// `imagedb/content/sha256/`: every stack an image stands on (its chainIDs, bottom first).
pub(crate) static IMAGES: Kind = Kind {
    name: "images",
    dir: |store| super::imagedb::path(store.root()).join("content/sha256"),
    stamp_file: None,
    accept: hex64,
};

/// `imagedb/metadata/sha256/`: the image each image was built on (`-` for none).
pub(crate) static PARENTS: Kind = Kind {
    name: "parents",
    dir: |store| super::imagedb::path(store.root()).join("metadata/sha256"),
    stamp_file: None,
    accept: hex64,
};

/// `containers/`: each container's image (`?` if its record says none), whether it runs (`1`)
/// and its name; stamped by its `config.v2.json`, which changes in place.
pub(crate) static CONTAINERS: Kind =
    Kind { name: "containers", dir: Store::containers_dir, stamp_file: Some("config.v2.json"), accept: hex64 };

/// `containers/`: each container's image alone (`?` if its record says none), which never
/// changes once the container is made: stamped by the directory's inode, so asking "which
/// containers use these images?" costs no `stat` per container.
pub(crate) static CONTAINER_IMAGES: Kind =
    Kind { name: "container-images", dir: Store::containers_dir, stamp_file: None, accept: hex64 };

/// A container as the image commands see it.
#[derive(Debug, Clone)]
pub(crate) struct ContainerUse {
    /// Its ID (64 hex digits).
    pub id: String,
    /// The image it was made from (64 hex digits); `None` if its directory holds no record.
    pub image: Option<String>,
    /// Whether it runs.
    pub running: bool,
}

/// An image's index value: the chainIDs of its config, hex, base first, joined by spaces.
pub(crate) fn chain_list(config: &super::ImageConfig) -> String {
    ChainId::chain(&config.rootfs.diff_ids).iter().map(|c| c.hex()).collect::<Vec<_>>().join(" ")
}

/// A container from its index value `image running name`.
fn container_use(id: &str, value: &str) -> Option<ContainerUse> {
    let mut words = words(value);
    let (Some(image), Some(running), Some(_name)) = (words.next(), words.next(), words.next()) else { return None };
    Some(ContainerUse { id: id.to_owned(), image: word(Some(image)).map(str::to_owned), running: running == "1" })
}

/// An index value's word, `-` (and `?`) meaning none.
fn word(w: Option<&str>) -> Option<&str> {
    w.filter(|w| *w != "-" && *w != "?")
}

impl ImageStore {
    /// The stacks whose files are in overlay2 layer `id` (normally one, or none). A stack
    /// without a `cache-id` is an error: it might be `id`.
    pub(crate) fn chains_with_cache_id(&self, id: &crate::LayerId) -> Result<Vec<ChainId>> {
        fn cache_id(v: &str) -> &str {
            crate::index::words(v).next().unwrap_or_default()
        }
        let found = Index::find(
            &self.store,
            &CHAINS,
            |name| self.read_chain(name),
            |v| {
                let c = cache_id(v);
                c == id.as_str() || c == "?"
            },
        )?;
        let mut out = Vec::new();
        for (chain, value) in found {
            let chain: ChainId = chain.parse()?;
            if cache_id(&value) == "?" {
                return Err(Error::corrupt(self.layerdb.entry(chain).join("cache-id"), "is missing"));
            }
            out.push(chain);
        }
        out.sort();
        Ok(out)
    }

    /// The containers whose writable or `-init` layer is `id`, and their layers. A record
    /// that cannot be read is an error: it might name `id`.
    pub(crate) fn mounts_on(&self, id: &crate::LayerId) -> Result<Vec<(String, MountRecord)>> {
        let found = Index::find(
            &self.store,
            &MOUNTS,
            |name| self.read_mount(name),
            |v| crate::index::words(v).take(2).any(|w| w == id.as_str() || w == "?"),
        )?;
        let mut out: Vec<(String, MountRecord)> =
            found.iter().map(|(name, value)| self.mount_record(name, value)).collect::<Result<_>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every image built on another, and that other.
    pub(crate) fn image_parents(&self) -> Result<HashMap<ImageId, ImageId>> {
        let entries = Index::entries(&self.store, &PARENTS, |name| self.read_parent(name))?;
        let mut out = HashMap::new();
        for (name, value) in entries.iter() {
            if let Some(parent) = word(Some(value)) {
                out.insert(name.parse()?, parent.parse()?);
            }
        }
        Ok(out)
    }

    /// The images built on `id`, in no order, without a map of every image.
    pub(crate) fn image_children(&self, id: ImageId) -> Result<Vec<ImageId>> {
        let hex = id.hex();
        let entries = Index::entries(&self.store, &PARENTS, |name| self.read_parent(name))?;
        entries.with_value(&hex).iter().map(|child| child.parse()).collect()
    }

    /// An image's parent as an index value (`-` for none).
    fn read_parent(&self, name: &str) -> Result<Option<String>> {
        let parent = self.imagedb.parent(name.parse()?)?;
        Ok(Some(parent.map_or("-".into(), |p| p.hex().to_owned())))
    }

    /// Every container's image, state and name (`<root>/containers/*/config.v2.json`, the file
    /// dockerd and strata keep per container). A record that cannot be parsed is an error.
    pub(crate) fn container_index(&self) -> Result<Vec<ContainerUse>> {
        let mut all = Vec::new();
        let each = |id: &str, value: &str| all.extend(container_use(id, value));
        Index::each(&self.store, &CONTAINERS, |name| self.read_container(name), each)?;
        Ok(all)
    }

    /// Each container's ID and name, as [`container_index`](Self::container_index) gives them,
    /// handed to `each` without a copy.
    pub(crate) fn container_names(&self, mut each: impl FnMut(&str, &str)) -> Result<()> {
        let names = |id: &str, value: &str| {
            if let Some(name) = words(value).nth(2) {
                each(id, name);
            }
        };
        Index::each(&self.store, &CONTAINERS, |name| self.read_container(name), names)
    }

    /// Each container's image (64 hex digits; `?`: its directory holds no record), through
    /// the index of what never changes (see [`CONTAINER_IMAGES`]).
    pub(crate) fn container_images(&self) -> Result<Entries> {
        let read = |name: &str| Ok(self.read_container(name)?.map(|v| v.split(' ').next().unwrap_or("?").to_owned()));
        Index::entries(&self.store, &CONTAINER_IMAGES, read)
    }

    /// One container as its record says now, read afresh.
    pub(crate) fn container_now(&self, id: &str) -> Result<Option<ContainerUse>> {
        Ok(self.read_container(id)?.and_then(|value| container_use(id, &value)))
    }

    /// A container's record as an index value: `image running name`.
    fn read_container(&self, name: &str) -> Result<Option<String>> {
        let path = self.store.containers_dir().join(name).join("config.v2.json");
        let unreadable = |why: String| {
            let what = "which image this container uses is unknown, so no image is removed and no name is taken";
            Error::corrupt(&path, format!("{why}: {what}"))
        };
        let Some(text) = crate::fsutil::read_bytes_optional(&path)? else { return Ok(Some("? 0 -".into())) };
        let value = serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| unreadable(e.to_string()))?;
        let image = value["Image"].as_str().and_then(|s| s.parse::<ImageId>().ok());
        let image = image.ok_or_else(|| unreadable("its Image is not an image ID".into()))?;
        let running = value["State"]["Running"].as_bool().unwrap_or(false);
        let name = value["Name"].as_str().unwrap_or_default();
        let name = name.strip_prefix('/').unwrap_or(name);
        let name = if crate::index::plain(name) { name } else { "-" };
        Ok(Some(format!("{} {} {name}", image.hex(), u8::from(running))))
    }

    /// Every image (64 hex digits) and the chainIDs it stands on (hex, base first, joined by
    /// spaces), as the index holds them: nothing parsed or copied.
    pub(crate) fn image_chains(&self) -> Result<Entries> {
        Index::entries(&self.store, &IMAGES, |name| self.read_image(name))
    }

    /// The images whose chain list (see [`image_chains`](Self::image_chains)) `matches`, and
    /// those lists; a process's first such question is streamed through the log.
    pub(crate) fn images_listing(&self, matches: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>> {
        Index::find(&self.store, &IMAGES, |name| self.read_image(name), matches)
    }

    /// The stacks whose parent (`sha256:<hex>`, as its file says it) is one of `parents`, and
    /// that parent, from the index of each stack's `cache-id parent` (`?` for a missing
    /// cache-id, `-` for no parent).
    pub(crate) fn chains_on(&self, parents: &[&str]) -> Result<Vec<(String, String)>> {
        Index::with_last_word(&self.store, &CHAINS, |name| self.read_chain(name), parents)
    }

    /// The containers whose layers, as the index holds them (`mount-id init-id parent`, `?`
    /// for a writable layer not recorded, `-` for none), `match`, and those layers.
    pub(crate) fn mounts_matching(&self, matches: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>> {
        Index::find(&self.store, &MOUNTS, |name| self.read_mount(name), matches)
    }

    /// An image's index value, from its config.
    fn read_image(&self, name: &str) -> Result<Option<String>> {
        let id: ImageId = name.parse()?;
        let Some(raw) = self.imagedb.config(id)? else { return Ok(None) };
        Ok(Some(chain_list(&super::ImageConfig::parse(&raw, &format!("image {id}"))?)))
    }

    /// A stack's index value, from its entry.
    fn read_chain(&self, name: &str) -> Result<Option<String>> {
        let chain: ChainId = name.parse()?;
        let entry = self.layerdb.entry(chain);
        let cache_id = crate::fsutil::read_optional(&entry.join("cache-id"))?;
        let parent = crate::fsutil::read_optional(&entry.join("parent"))?;
        let one_word = |s: Option<String>, file: &str| -> Result<String> {
            match s.as_deref().map(str::trim) {
                None => Ok("-".into()),
                Some(w) if !w.is_empty() && !w.contains(char::is_whitespace) => Ok(w.to_owned()),
                Some(_) => Err(Error::corrupt(entry.join(file), "is not one word")),
            }
        };
        let cache_id = if cache_id.is_some() { one_word(cache_id, "cache-id")? } else { "?".into() };
        Ok(Some(format!("{cache_id} {}", one_word(parent, "parent")?)))
    }

    /// A container's layers' index value, from `layerdb/mounts/<name>/`.
    fn read_mount(&self, name: &str) -> Result<Option<String>> {
        Ok(Some(match self.layerdb.mount(name)? {
            None => "? - -".to_owned(),
            Some(r) => format!(
                "{} {} {}",
                r.mount_id,
                r.init_id.as_ref().map_or("-", |i| i.as_str()),
                r.parent.map_or("-".into(), |p| p.hex().to_owned())
            ),
        }))
    }

    /// A container's layers, from their index value.
    fn mount_record(&self, name: &str, value: &str) -> Result<(String, MountRecord)> {
        let mut words = value.split(' ');
        let Some(mount_id) = word(words.next()) else {
            return Err(Error::corrupt(self.layerdb.mounts_dir().join(name).join("mount-id"), "is missing"));
        };
        let init_id = word(words.next()).map(str::parse).transpose()?;
        let parent = word(words.next()).map(str::parse).transpose()?;
        Ok((name.to_owned(), MountRecord { mount_id: mount_id.parse()?, init_id, parent }))
    }
}
