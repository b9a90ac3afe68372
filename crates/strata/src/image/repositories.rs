//! `image/overlay2/repositories.json`: the names of images, as dockerd keeps them.
//!
//! `{"Repositories":{"debian":{"debian:12":"sha256:…","debian@sha256:…":"sha256:…"}}}`: names
//! in Docker's short form, grouped by repository, each pointing at an image ID.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::ids::ImageId;
use super::reference::Reference;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{read_optional, write_new};

mod shape;

/// The name → image map.
///
/// It is kept as the file's text while the commands asked of it need no more: a name is found,
/// and removed, by searching and splicing the text (as one `rmi` does, in a store of thousands
/// of names); the text is parsed only when a name must be looked for in every spelling, listed
/// or added.
#[derive(Debug, Clone, Default)]
pub struct Repositories {
    /// The file's text, checked to have the file's shape, while it is the truth; `None` once
    /// `disk` is (after a change the text could not take).
    text: Option<String>,
    /// The file as read, and as it will be written: names by repository, each to an image
    /// ID, in the spelling they were written in (dockerd too keeps a name as written). It also
    /// holds the entries strata cannot read: they are dockerd's, or a later tool's. Made from
    /// `text` when first needed.
    disk: OnceLock<OnDisk>,
    /// Every name strata can read, with its image and where it is written (repository, key):
    /// made when first needed, as most commands ask for one or two names of thousands.
    parsed: OnceLock<BTreeMap<Reference, Written>>,
}

/// A name's image, and the repository and key it is written under.
type Written = (ImageId, String, String);

impl PartialEq for Repositories {
    fn eq(&self, other: &Repositories) -> bool {
        self.disk() == other.disk()
    }
}

impl Eq for Repositories {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
struct OnDisk {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl Repositories {
    /// Read the file at `path`; a missing file is an empty map.
    pub(crate) fn load(path: &Path) -> Result<Repositories> {
        let Some(text) = read_optional(path)? else { return Ok(Repositories::default()) };
        let plain = shape::check(&text).map_err(|e| Error::corrupt(path, e.to_string()))?;
        let text = Some(text);
        match plain {
            true => Ok(Repositories { text, ..Repositories::default() }),
            // Members strata does not know: parsed, so that a search never looks into them.
            false => {
                let disk = Repositories { text, ..Repositories::default() }.parse_text();
                Ok(Repositories { disk: OnceLock::from(disk), ..Repositories::default() })
            }
        }
    }

    /// The image one name points at, without making every name a [`Reference`] (for commands
    /// that need one name, in a store of thousands).
    pub(crate) fn lookup(path: &Path, r: &Reference) -> Result<Option<ImageId>> {
        Ok(Repositories::load(path)?.get(r))
    }

    /// The file as parsed (from the text, checked when it was read).
    fn disk(&self) -> &OnDisk {
        self.disk.get_or_init(|| self.parse_text())
    }

    fn parse_text(&self) -> OnDisk {
        match &self.text {
            Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
                // Not reached: `load` checked that the text has this shape.
                tracing::error!("repositories.json, checked when read, does not parse: {e}");
                OnDisk::default()
            }),
            None => OnDisk::default(),
        }
    }

    /// Make a change the text cannot take to the file as parsed, which is the truth from
    /// then on.
    fn change<R>(&mut self, f: impl FnOnce(&mut OnDisk) -> R) -> R {
        let mut disk = self.disk.take().unwrap_or_else(|| self.parse_text());
        let out = f(&mut disk);
        self.text = None;
        self.disk = OnceLock::from(disk);
        out
    }

    /// Every name strata can read (a name it cannot is kept as it is, never dropped).
    fn parsed(&self) -> &BTreeMap<Reference, Written> {
        self.parsed.get_or_init(|| {
            let mut parsed = BTreeMap::new();
            for (repository, names) in &self.disk().repositories {
                for (key, id) in names {
                    match (key.parse::<Reference>(), id.parse::<ImageId>()) {
                        (Ok(r), Ok(id)) => drop(parsed.insert(r, (id, repository.clone(), key.clone()))),
                        _ => tracing::debug!(%key, %id, "keeping an image name strata cannot read"),
                    }
                }
            }
            parsed
        })
    }

    /// The text, if every name in it is spelt without escapes (so that a search of the text
    /// finds what a parse would).
    fn plain_text(&self) -> Option<&str> {
        self.text.as_deref().filter(|t| !t.contains('\\'))
    }

    /// Where `r` is written, and its image: found by its short spelling, else among every name.
    fn find(&self, r: &Reference) -> Option<Written> {
        let (repository, key) = (r.name(), r.to_string());
        if let Some(text) = self.plain_text()
            && let Some(pair) = shape::only_pair(text, &key)
        {
            return Some((pair.id, repository, key));
        }
        match self.disk().repositories.get(&repository).and_then(|names| names.get(&key)) {
            Some(id) => Some((id.parse().ok()?, repository, key)),
            None => self.parsed().get(r).cloned(),
        }
    }

    /// Drop `key` from the file's `repository`, and the repository if it was its last name.
    fn forget(&mut self, repository: &str, key: &str) {
        if let Some(text) = self.plain_text()
            && let Some(pair) = shape::only_pair(text, key)
            && let Some(left) = shape::without(text, &pair)
        {
            (self.text, self.disk) = (Some(left), OnceLock::new());
            return;
        }
        self.change(|disk| {
            if let Some(names) = disk.repositories.get_mut(repository) {
                names.remove(key);
                if names.is_empty() {
                    disk.repositories.remove(repository);
                }
            }
        });
    }

    /// Write the map to `path` atomically, through a file in `scratch`.
    pub(crate) fn save(&self, path: &Path, scratch: &Path) -> Result<()> {
        let tmp = scratch.join("repositories.json");
        crate::fsutil::remove_if_exists(&tmp)?;
        let bytes = match &self.text {
            Some(text) => text.as_bytes().to_vec(),
            None => serde_json::to_vec(self.disk()).expect("serializable"),
        };
        write_new(&tmp, &bytes, 0o600)?;
        std::fs::rename(&tmp, path).ctx("rename", path)
    }

    /// The image a name points at.
    pub fn get(&self, r: &Reference) -> Option<ImageId> {
        self.find(r).map(|(id, _, _)| id)
    }

    /// Point a name at an image (written in its short form); returns what it pointed at before.
    pub fn set(&mut self, r: Reference, id: ImageId) -> Option<ImageId> {
        let before = self.remove(&r);
        let (repository, key) = (r.name(), r.to_string());
        self.change(|disk| {
            disk.repositories.entry(repository.clone()).or_default().insert(key.clone(), id.to_string())
        });
        if let Some(parsed) = self.parsed.get_mut() {
            parsed.insert(r, (id, repository, key));
        }
        before
    }

    /// Drop a name; returns what it pointed at.
    pub fn remove(&mut self, r: &Reference) -> Option<ImageId> {
        let (id, repository, key) = self.find(r)?;
        self.forget(&repository, &key);
        if let Some(parsed) = self.parsed.get_mut() {
            parsed.remove(r);
        }
        Some(id)
    }

    /// Every name of `id`, sorted.
    pub fn names_of(&self, id: ImageId) -> Vec<Reference> {
        let hex = id.to_string();
        // From the text, when each key found is written once (a parse keeps a key's last).
        let keys = self.plain_text().and_then(|text| {
            let keys: Vec<&str> = shape::keys_of(text, &hex).collect();
            keys.iter().all(|key| shape::only_pair(text, key).is_some_and(|p| p.id == id)).then_some(keys)
        });
        let mut names: Vec<Reference> = match keys {
            Some(keys) => keys.iter().filter_map(|key| key.parse().ok()).collect(),
            None => {
                let disk = self.disk().repositories.values();
                let written = disk.flat_map(|names| names.iter().filter(|(_, v)| **v == hex));
                written.filter_map(|(key, _)| key.parse().ok()).collect()
            }
        };
        names.sort();
        names.dedup();
        names
    }

    /// Every (name, image) pair, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&Reference, &ImageId)> {
        self.parsed().iter().map(|(r, (id, _, _))| (r, id))
    }
}

/// `<root>/image/overlay2/repositories.json` of a root.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join("image").join(crate::store::DRIVER_NAME).join("repositories.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_strata_cannot_read_are_written_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repositories.json");
        let id = format!("sha256:{}", "a".repeat(64));
        let text = format!(
            r#"{{"Repositories":{{"ok":{{"ok:1":"{id}"}},"Weird":{{"Weird:Name":"{id}","Weird@md5:x":"not-an-id"}},"docker.io/library/alpine":{{"docker.io/library/alpine:3":"{id}"}}}}}}"#
        );
        std::fs::write(&path, &text).unwrap();
        let mut repos = Repositories::load(&path).unwrap();
        assert_eq!(repos.iter().count(), 2);
        repos.set("new:2".parse().unwrap(), id.parse().unwrap());
        repos.save(&path, dir.path()).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["Repositories"]["Weird"]["Weird:Name"], id.as_str());
        assert_eq!(back["Repositories"]["Weird"]["Weird@md5:x"], "not-an-id");
        assert_eq!(back["Repositories"]["new"]["new:2"], id.as_str());
        assert_eq!(back["Repositories"]["ok"]["ok:1"], id.as_str());
        // A name in a long spelling stays as written (dockerd keeps it so), and is found by
        // its short one.
        assert_eq!(back["Repositories"]["docker.io/library/alpine"]["docker.io/library/alpine:3"], id.as_str());
        assert_eq!(repos.get(&"alpine:3".parse().unwrap()), Some(id.parse().unwrap()));
        assert_eq!(repos.names_of(id.parse().unwrap()).len(), 3);
        // A removed name leaves the file, and its repository with its last name; a name given
        // in a long form is written in its short form, as dockerd writes it.
        repos.remove(&"ok:1".parse().unwrap());
        repos.remove(&"new:2".parse().unwrap());
        repos.remove(&"alpine:3".parse().unwrap());
        repos.set("docker.io/library/busybox:1".parse().unwrap(), id.parse().unwrap());
        repos.save(&path, dir.path()).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let repositories: Vec<&String> = back["Repositories"].as_object().unwrap().keys().collect();
        assert_eq!(repositories, ["Weird", "busybox"], "the long spelling went with its name");
        assert_eq!(back["Repositories"]["busybox"]["busybox:1"], id.as_str());
        assert_eq!(Repositories::load(&path).unwrap(), repos, "what is saved is what is read back");
    }

    #[test]
    fn one_name_is_found_as_a_full_reading_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repositories.json");
        let (a, b, c) = (format!("sha256:{}", "a".repeat(64)), format!("sha256:{}", "b".repeat(64)), "c".repeat(64));
        let text = format!(
            r#"{{"Repositories":{{"debian":{{"debian:12":"{a}"}},"\u0061lpine":{{"\u0061lpine:3":"{b}"}},"docker.io/library/busybox":{{"docker.io/library/busybox:latest":"sha256:{c}"}}}}}}"#
        );
        std::fs::write(&path, &text).unwrap();
        let full = Repositories::load(&path).unwrap();
        for name in ["debian:12", "alpine:3", "busybox:latest", "debian:11", "nothing:1"] {
            let r: Reference = name.parse().unwrap();
            assert_eq!(Repositories::lookup(&path, &r).unwrap(), full.get(&r), "{name}");
        }
        // The quick reading (exact keys), the fallback (escaped, spelt out) and a miss.
        assert_eq!(Repositories::lookup(&path, &"debian:12".parse().unwrap()).unwrap(), Some(a.parse().unwrap()));
        assert_eq!(Repositories::lookup(&path, &"alpine:3".parse().unwrap()).unwrap(), Some(b.parse().unwrap()));
        assert!(Repositories::lookup(&path, &"busybox:latest".parse().unwrap()).unwrap().is_some());
        assert_eq!(Repositories::lookup(&path, &"debian:11".parse().unwrap()).unwrap(), None);
        assert_eq!(Repositories::lookup(&dir.path().join("none.json"), &"debian:12".parse().unwrap()).unwrap(), None);
    }

    #[test]
    fn the_text_answers_and_changes_as_the_parsed_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repositories.json");
        let (a, b) = (format!("sha256:{}", "a".repeat(64)), format!("sha256:{}", "b".repeat(64)));
        let texts = [
            format!(r#"{{"Repositories":{{"p":{{"p:1":"{a}","p:2":"{b}"}},"q":{{"q:1":"{a}"}}}}}}"#),
            // A key written twice (a parse keeps the last), escapes, members strata does not know.
            format!(r#"{{"Repositories":{{"p":{{"p:1":"{a}","p:1":"{b}","p:2":"{b}"}},"q":{{"q:1":"{a}"}}}}}}"#),
            format!(r#"{{"Repositories":{{"p":{{"p:1":"{a}","p:2":"{b}"}},"q":{{"\u0071:1":"{a}"}}}}}}"#),
            format!(
                r#"{{"Other":{{"p":{{"p:1":"{b}"}}}},"Repositories":{{"p":{{"p:2":"{b}"}},"q":{{"q:1":"{a}"}}}}}}"#
            ),
        ];
        for text in texts {
            std::fs::write(&path, &text).unwrap();
            let mut fast = Repositories::load(&path).unwrap();
            let mut full = Repositories::load(&path).unwrap();
            full.change(|_| ());
            for id in [&a, &b] {
                assert_eq!(fast.names_of(id.parse().unwrap()), full.names_of(id.parse().unwrap()), "{text}");
            }
            for name in ["p:1", "p:2", "q:1", "q:2"] {
                let r: Reference = name.parse().unwrap();
                assert_eq!(fast.get(&r), full.get(&r), "{name} in {text}");
                assert_eq!(fast.remove(&r), full.remove(&r), "{name} in {text}");
                fast.save(&path, dir.path()).unwrap();
                let saved = Repositories::load(&path).unwrap();
                assert_eq!(saved, full, "after removing {name} from {text}");
                for id in [&a, &b] {
                    assert_eq!(saved.names_of(id.parse().unwrap()), full.names_of(id.parse().unwrap()));
                }
            }
        }
    }
}
