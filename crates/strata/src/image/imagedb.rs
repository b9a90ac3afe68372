//! Docker's image database, `image/overlay2/imagedb/`: each image's config under its ID, and a
//! little metadata beside it.
//!
//! ```text
//! imagedb/                                   0700
//! ├── content/sha256/<imageID>               0600  the config, byte for byte
//! └── metadata/sha256/<imageID>/             0700
//!     ├── lastUpdated                        0600  when it was last tagged (RFC 3339, UTC)
//!     └── parent                             0600  the image it was built on (`sha256:…`)
//! ```

use std::path::{Path, PathBuf};

use super::ids::ImageId;
use crate::error::{IoContext, Result};
use crate::fsutil::{mkdir, parsed_names, read_bytes_optional, read_optional, remove_if_exists, write_new};
use crate::index::Change;
use crate::store::Store;

const LAST_UPDATED: &str = "lastUpdated";
const PARENT: &str = "parent";
const BUILT_LOCALLY: &str = "builtLocally";

/// `<root>/image/overlay2/imagedb`.
#[derive(Debug, Clone)]
pub(crate) struct ImageDb {
    dir: PathBuf,
    store: Store,
}

impl ImageDb {
    pub(crate) fn new(store: &Store) -> Self {
        ImageDb { dir: path(store.root()), store: store.clone() }
    }

    fn content(&self, id: ImageId) -> PathBuf {
        self.dir.join("content/sha256").join(id.hex())
    }

    fn metadata(&self, id: ImageId) -> PathBuf {
        self.dir.join("metadata/sha256").join(id.hex())
    }

    /// Make the directories, with dockerd's modes.
    pub(crate) fn ensure(&self) -> Result<()> {
        for sub in ["", "content", "content/sha256", "metadata", "metadata/sha256"] {
            mkdir(&self.dir.join(sub), 0o700)?;
        }
        Ok(())
    }

    /// Whether the image is stored.
    pub(crate) fn contains(&self, id: ImageId) -> bool {
        self.content(id).is_file()
    }

    /// The image's config bytes, or `None`.
    pub(crate) fn config(&self, id: ImageId) -> Result<Option<Vec<u8>>> {
        read_bytes_optional(&self.content(id))
    }

    /// Every stored image ID.
    pub(crate) fn list(&self) -> Result<Vec<ImageId>> {
        parsed_names(&self.dir.join("content/sha256"))
    }

    /// Store a config under its ID (call with the store lock held). It is written in `scratch`
    /// and renamed into place.
    pub(crate) fn put(&self, id: ImageId, config: &[u8], scratch: &Path) -> Result<()> {
        let tmp = scratch.join(format!("content-{}", id.hex()));
        write_new(&tmp, config, 0o600)?;
        let target = self.content(id);
        let change = Change::begin(&self.store, &super::index::IMAGES);
        std::fs::rename(&tmp, &target).ctx("rename", &target)?;
        // Its configs are parsed by their writers already; one more read to keep the index.
        if let Ok(parsed) = super::ImageConfig::parse(config, &format!("image {id}")) {
            change.added(&id.hex(), &super::index::chain_list(&parsed));
        }
        Ok(())
    }

    /// When the image was last tagged.
    pub(crate) fn last_updated(&self, id: ImageId) -> Result<Option<String>> {
        read_optional(&self.metadata(id).join(LAST_UPDATED))
    }

    /// The image it was built on, as recorded by a build or commit.
    pub(crate) fn parent(&self, id: ImageId) -> Result<Option<ImageId>> {
        Ok(read_optional(&self.metadata(id).join(PARENT))?.and_then(|p| p.trim().parse().ok()))
    }

    /// Set a metadata file (`lastUpdated`, `parent`) atomically.
    fn set(&self, id: ImageId, key: &str, value: &str) -> Result<()> {
        let dir = self.metadata(id);
        let change = Change::begin(&self.store, &super::index::PARENTS);
        mkdir(&dir, 0o700)?;
        crate::fsutil::replace(&dir.join(key), value.as_bytes(), 0o600)?;
        let parent = self.parent(id)?.map_or("-".into(), |p| p.hex().to_owned());
        change.added(&id.hex(), &parent);
        Ok(())
    }

    /// Record now as the time the image was tagged.
    pub(crate) fn touch(&self, id: ImageId) -> Result<()> {
        self.set(id, LAST_UPDATED, &super::config::now_rfc3339())
    }

    /// Record the image it was built on.
    pub(crate) fn set_parent(&self, id: ImageId, parent: ImageId) -> Result<()> {
        self.set(id, PARENT, &parent.to_string())
    }

    /// Mark the image as built here (dockerd's `builtLocally`: the one byte 1).
    pub(crate) fn set_built_locally(&self, id: ImageId) -> Result<()> {
        let dir = self.metadata(id);
        mkdir(&dir, 0o700)?;
        crate::fsutil::replace(&dir.join(BUILT_LOCALLY), &[1], 0o600)
    }

    /// Whether the image was built here (`builtLocally`).
    pub(crate) fn built_locally(&self, id: ImageId) -> bool {
        std::fs::read(self.metadata(id).join(BUILT_LOCALLY)).is_ok_and(|b| b == [1])
    }

    /// Forget the image: its metadata, then its config.
    pub(crate) fn remove(&self, id: ImageId) -> Result<()> {
        let meta = self.metadata(id);
        for key in [LAST_UPDATED, PARENT, BUILT_LOCALLY] {
            remove_if_exists(&meta.join(key))?;
        }
        let change = Change::begin(&self.store, &super::index::PARENTS);
        crate::scratch::remove_tree(&meta)?;
        change.removed(&id.hex());
        let change = Change::begin(&self.store, &super::index::IMAGES);
        remove_if_exists(&self.content(id))?;
        change.removed(&id.hex());
        Ok(())
    }
}

/// `<root>/image/overlay2/imagedb` of a root.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join("image").join(crate::store::DRIVER_NAME).join("imagedb")
}
