//! Find, and with `repair` mend, what a crash or a hand edit left behind in a store.
//!
//! Two kinds of finding:
//! - **leftovers** are harmless to every reader (operations abandoned by killed processes,
//!   stale mount counts, stray mounts, dangling `l/` links); strata works around them and the
//!   next write or `--repair` removes them;
//! - **damage** breaks a layer (a missing `link` file or `l/` link, a `lower` entry that leads
//!   nowhere, a missing `diff/`). Some of it can be mended; the rest is reported.
//!
//! A store is *clean* when it has no damage left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_if_exists, replace};
use crate::id::{LayerId, ShortLink};
use crate::layer::layout::{self, DIFF, LINK, MERGED, mode};
use crate::mount::{self, refcount};
use crate::scratch;
use crate::store::Store;
use crate::sys;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Harmless; removed by `--repair` or the next write.
    Leftover,
    /// A layer is broken.
    Damage,
}

/// What became of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Found; `--repair` would mend it.
    Repairable,
    /// Mended.
    Repaired,
    /// Cannot be mended automatically.
    Manual,
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A short name for the kind of problem (`dangling-link`, `missing-link-file`, …).
    pub kind: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// Where.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub detail: String,
    /// What was done about it.
    pub outcome: Outcome,
}

/// The result of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Layers examined.
    pub layers: usize,
    /// Everything found, in the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    /// No damage left (leftovers and mended damage do not count).
    pub fn is_clean(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Damage && f.outcome != Outcome::Repaired)
    }
}

/// Check the store at `store`; with `repair`, mend what can be mended.
pub fn check(store: &Store, repair: bool) -> Result<Report> {
    let mut checker = Checker { store, repair, report: Report::default() };
    if !store.is_initialized() {
        return Ok(checker.report);
    }
    let exclusive = if repair {
        store.ensure_layout()?;
        let lock = crate::lock::StoreLock::exclusive(&store.private_dir().join("lock"))?;
        store.state_version()?;
        Some(lock)
    } else {
        None
    };
    let _shared = if repair { None } else { store.read_lock_as_is()? };
    checker.operations(exclusive.as_ref())?;
    let ids = store.layers().ids()?;
    checker.report.layers = ids.len();
    let links = checker.scan_links(true)?;
    checker.link_files(&ids, &links)?;
    let links = checker.scan_links(false)?;
    checker.lowers(&ids, &links)?;
    checker.mounts(&ids)?;
    checker.unknown_entries()?;
    checker.images()?;
    checker.containers(exclusive.as_ref())?;
    checker.partial_blobs()?;
    Ok(checker.report)
}

/// Whether a failure to read a store file says its content is wrong (mended by rewriting it),
/// rather than that it could not be read at all (EIO, EACCES: its content may be fine, and is
/// left alone).
fn content_is_wrong(e: &Error) -> bool {
    !matches!(e, Error::Io { source, .. } if source.kind() != std::io::ErrorKind::InvalidData)
}

struct Checker<'a> {
    store: &'a Store,
    repair: bool,
    report: Report,
}

impl Checker<'_> {
    /// Record a finding, running `mend` first when repairing and one is given.
    fn found(
        &mut self,
        kind: &'static str,
        severity: Severity,
        path: &Path,
        detail: String,
        mend: Option<&mut dyn FnMut() -> Result<()>>,
    ) -> Result<()> {
        let outcome = match mend {
            None => Outcome::Manual,
            Some(_) if !self.repair => Outcome::Repairable,
            Some(mend) => {
                mend()?;
                Outcome::Repaired
            }
        };
        self.report.findings.push(Finding { kind, severity, path: path.to_owned(), detail, outcome });
        Ok(())
    }

    fn operations(&mut self, lock: Option<&crate::lock::StoreLock>) -> Result<()> {
        let store = self.store;
        let abandoned = match lock {
            Some(lock) => crate::txn::sweep(store, lock)?,
            None => scratch::abandoned(store)?,
        };
        for op in abandoned {
            self.report.findings.push(Finding {
                kind: "abandoned-operation",
                severity: Severity::Leftover,
                path: op.record,
                detail: format!("`{}` was interrupted (its process is gone); nothing of it is visible", op.what),
                outcome: if self.repair { Outcome::Repaired } else { Outcome::Repairable },
            });
        }
        for dir in scratch::orphan_dirs(store)? {
            let detail = "temporary directory that no operation in flight owns".to_owned();
            self.found(
                "leftover-temporary",
                Severity::Leftover,
                &dir.clone(),
                detail,
                Some(&mut || scratch::remove_tree(&dir)),
            )?;
        }
        Ok(())
    }

    /// Scan `l/` and return the valid links and the layers they point at; with `report`, record
    /// dangling and stray entries.
    fn scan_links(&mut self, report: bool) -> Result<HashMap<ShortLink, LayerId>> {
        let link_dir = self.store.link_dir();
        let mut links = HashMap::new();
        let Ok(entries) = std::fs::read_dir(&link_dir) else { return Ok(links) };
        for entry in entries {
            let path = entry.ctx("read directory", &link_dir)?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let target = std::fs::read_link(&path).ok();
            let layer = target.as_deref().and_then(layout::layer_of_link_target);
            match (name.parse::<ShortLink>().ok(), layer) {
                (Some(link), Some(id)) if self.store.layer_dir(&id).is_dir() => {
                    links.insert(link, id);
                }
                _ if !report => {}
                (Some(_), Some(id)) => {
                    let detail = format!("points to layer {id}, which does not exist");
                    self.found(
                        "dangling-link",
                        Severity::Leftover,
                        &path.clone(),
                        detail,
                        Some(&mut || remove_if_exists(&path)),
                    )?;
                }
                _ => {
                    let detail = format!("not a short link to a layer (target {target:?})");
                    self.found("stray-link-entry", Severity::Damage, &path, detail, None)?;
                }
            }
        }
        Ok(links)
    }

    /// Every layer has a `diff/`, a valid `link` file, and `l/<link>` pointing back at it.
    fn link_files(&mut self, ids: &[LayerId], links: &HashMap<ShortLink, LayerId>) -> Result<()> {
        let link_dir = self.store.link_dir();
        for id in ids {
            let dir = self.store.layer_dir(id);
            if !dir.join(DIFF).is_dir() {
                self.found(
                    "missing-diff",
                    Severity::Damage,
                    &dir.join(DIFF),
                    format!("layer {id} has no diff directory"),
                    None,
                )?;
            }
            let link = match layout::read_link(&dir) {
                Ok(link) => link,
                // It could not be read (EIO, EACCES): its content may be fine, so nothing is
                // rewritten; it is reported for a person to look at.
                Err(e) if !content_is_wrong(&e) => {
                    let path = dir.join(LINK);
                    let detail = format!("layer {id}'s link file cannot be read: {e}");
                    self.found("unreadable-link-file", Severity::Damage, &path, detail, None)?;
                    continue;
                }
                Err(_) => {
                    let detail = "link file is not 26 base32 characters".to_owned();
                    let path = dir.join(LINK);
                    self.found(
                        "bad-link-file",
                        Severity::Damage,
                        &path.clone(),
                        detail,
                        Some(&mut || remove_if_exists(&path)),
                    )?;
                    None
                }
            };
            match link {
                None => {
                    let known = links.iter().find(|(_, target)| *target == id).map(|(l, _)| *l);
                    let detail = match known {
                        Some(l) => format!("layer {id} has no link file; l/{l} points to it"),
                        None => format!("layer {id} has no link file and no l/ link"),
                    };
                    let mut mend = || -> Result<()> {
                        let link = match known {
                            Some(l) => l,
                            None => {
                                let l = ShortLink::random();
                                std::os::unix::fs::symlink(layout::link_target(id), link_dir.join(l.as_str()))
                                    .ctx("symlink", link_dir.join(l.as_str()))?;
                                l
                            }
                        };
                        replace(&dir.join(LINK), link.as_str().as_bytes(), mode::META)
                    };
                    self.found("missing-link-file", Severity::Damage, &dir.join(LINK), detail, Some(&mut mend))?;
                }
                Some(link) => match links.get(&link) {
                    Some(target) if target == id => {}
                    Some(other) => {
                        let detail = format!("layer {id}'s link l/{link} points to layer {other}");
                        self.found("foreign-link", Severity::Damage, &link_dir.join(link.as_str()), detail, None)?;
                    }
                    None => {
                        let path = link_dir.join(link.as_str());
                        let detail = format!("layer {id}'s short link l/{link} is missing");
                        let mut mend = || {
                            remove_if_exists(&path)?;
                            std::os::unix::fs::symlink(layout::link_target(id), &path).ctx("symlink", &path)
                        };
                        self.found(
                            "missing-link",
                            Severity::Damage,
                            &link_dir.join(link.as_str()),
                            detail,
                            Some(&mut mend),
                        )?;
                    }
                },
            }
        }
        Ok(())
    }

    /// Every `lower` entry leads to an existing layer.
    fn lowers(&mut self, ids: &[LayerId], links: &HashMap<ShortLink, LayerId>) -> Result<()> {
        for id in ids {
            let dir = self.store.layer_dir(id);
            match layout::read_lower(&dir) {
                Err(e) => {
                    self.found("bad-lower-file", Severity::Damage, &dir.join(layout::LOWER), e.to_string(), None)?
                }
                Ok(lowers) => {
                    for link in lowers.iter().filter(|l| !links.contains_key(l)) {
                        let detail =
                            format!("layer {id} stands on l/{link}, which leads to no layer: it cannot be mounted");
                        self.found("broken-lower", Severity::Damage, &dir.join(layout::LOWER), detail, None)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Mount counts agree with the kernel's mount table.
    fn mounts(&mut self, ids: &[LayerId]) -> Result<()> {
        let store = self.store;
        for (name, count) in refcount::all(store)? {
            let record = store.mounts_dir().join(&name);
            match name.parse::<LayerId>().ok().filter(|id| ids.contains(id)) {
                None => {
                    let detail = format!("mount count {count} for {name}, which is not a layer");
                    self.found(
                        "orphan-mount-count",
                        Severity::Leftover,
                        &record.clone(),
                        detail,
                        Some(&mut || remove_if_exists(&record)),
                    )?;
                }
                Some(id) => {
                    let merged = store.layer_dir(&id).join(MERGED);
                    if !sys::is_overlay_mount(&merged) {
                        let detail = format!("layer {id} is counted as mounted {count} time(s) but is not mounted");
                        let mut mend = || {
                            refcount::set(store, &id, 0)?;
                            let _ = std::fs::remove_dir(&merged);
                            Ok(())
                        };
                        self.found("stale-mount-count", Severity::Leftover, &record, detail, Some(&mut mend))?;
                    }
                }
            }
        }
        for mount_point in mount::overlay_mounts_under(store.home())? {
            let id = mount_point.strip_prefix(store.home()).ok().and_then(|rel| {
                let mut parts = rel.iter();
                let id = parts.next()?.to_str()?.parse::<LayerId>().ok()?;
                (parts.next()? == MERGED && parts.next().is_none()).then_some(id)
            });
            let counted = match &id {
                Some(id) => ids.contains(id) && refcount::get(store, id)? > 0,
                None => false,
            };
            if !counted {
                let detail = "an overlay mount no strata reference accounts for (left by a crash, by hand, or by dockerd: do not repair while dockerd uses this root)".to_owned();
                let mut mend = || {
                    mount::unmount(&mount_point)?;
                    let _ = std::fs::remove_dir(&mount_point);
                    Ok(())
                };
                self.found("stale-mount", Severity::Leftover, &mount_point.clone(), detail, Some(&mut mend))?;
            }
        }
        Ok(())
    }

    /// Entries of `<root>/overlay2/` that are neither layers nor known files.
    fn images(&mut self) -> Result<()> {
        let images = self.store.images();
        let mut problems = images.problems()?;
        self.store.containers().problems(&mut problems)?;
        for problem in problems {
            let severity = if problem.damage { Severity::Damage } else { Severity::Leftover };
            let scratch = self.store.private_dir();
            let mut mend = problem.fix.as_ref().map(|fix| {
                let images = &images;
                let scratch = scratch.clone();
                move || images.fix(fix, &scratch)
            });
            let mend = mend.as_mut().map(|m| m as &mut dyn FnMut() -> Result<()>);
            self.found(problem.kind, severity, &problem.path, problem.detail, mend)?;
        }
        Ok(())
    }

    /// Containers left "running" by a strata process that was killed: their mount is still
    /// there. Repaired as the next `start` or `rm` would: the runtime's state deleted, the
    /// mount dropped, the end recorded.
    fn containers(&mut self, lock: Option<&crate::lock::StoreLock>) -> Result<()> {
        let containers = self.store.containers();
        for container in containers.dead_runs()? {
            let path = self.store.containers_dir().join(container.id().as_str());
            let merged = self.store.layer_dir(&container.layers.mount_id).join(MERGED);
            let mounted = sys::is_overlay_mount(&merged);
            let detail = format!(
                "container {} is recorded as running, but the strata process that ran it is gone{}",
                container.record.name(),
                if mounted { "; its tree is still mounted" } else { "" }
            );
            let mut mend = || match lock {
                Some(lock) => containers.settle_dead(lock, container.clone()),
                None => Ok(()),
            };
            self.found("dead-container-monitor", Severity::Leftover, &path, detail, Some(&mut mend))?;
        }
        Ok(())
    }

    /// Blobs a pull that stopped part way left in `strata/pulls/` for the next pull to resume
    /// from (those a pull is writing now are locked, and skipped).
    fn partial_blobs(&mut self) -> Result<()> {
        for (path, size) in crate::registry::idle_partials(self.store)? {
            let digest = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let detail = format!(
                "{size} bytes of blob sha256:{digest} kept by a pull that stopped; the next pull of it resumes from there"
            );
            let mut mend = || crate::registry::remove_partial(&path);
            self.found("partial-blob", Severity::Leftover, &path, detail, Some(&mut mend))?;
        }
        Ok(())
    }

    fn unknown_entries(&mut self) -> Result<()> {
        let home = self.store.home();
        for entry in std::fs::read_dir(home).ctx("read directory", home)? {
            let entry = entry.ctx("read directory", home)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = name == "l"
                || name == "backingFsBlockDev"
                || name == crate::store::SCRATCH_DIR
                || name.starts_with(scratch::OLD_SCRATCH_PREFIX)
                || name.parse::<LayerId>().is_ok();
            if !known {
                self.found(
                    "unknown-entry",
                    Severity::Leftover,
                    &entry.path(),
                    "not a layer; strata leaves it alone".into(),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_blobs_are_reported_and_removed_unless_a_pull_writes_them() {
        let (_tmp, store) = crate::store::test_store();
        let dir = crate::registry::partials_dir(&store);
        std::fs::create_dir_all(&dir).unwrap();
        let (idle, busy) =
            (dir.join(format!("{}.partial", "a".repeat(64))), dir.join(format!("{}.partial", "b".repeat(64))));
        std::fs::write(&idle, b"12345").unwrap();
        std::fs::write(&busy, b"678").unwrap();
        let writing = std::fs::File::open(&busy).unwrap();
        rustix::fs::flock(&writing, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        let partials = |report: &Report| -> Vec<PathBuf> {
            report.findings.iter().filter(|f| f.kind == "partial-blob").map(|f| f.path.clone()).collect()
        };
        let report = check(&store, false).unwrap();
        assert_eq!(partials(&report), std::slice::from_ref(&idle));
        assert!(report.findings.iter().any(|f| f.detail.starts_with("5 bytes")), "{:?}", report.findings);
        assert!(report.is_clean(), "kept bytes are no damage");
        check(&store, true).unwrap();
        assert!(!idle.exists() && busy.exists(), "the pull's own file is left alone");
        drop(writing);
        assert_eq!(partials(&check(&store, false).unwrap()), [busy]);
    }

    #[test]
    fn only_wrong_content_is_mended_not_a_failed_read() {
        let io = |errno: i32| Error::io("read", "/x/link", std::io::Error::from_raw_os_error(errno));
        assert!(!content_is_wrong(&io(5)), "EIO");
        assert!(!content_is_wrong(&io(13)), "EACCES");
        let not_utf8 = Error::io("read", "/x/link", std::io::Error::new(std::io::ErrorKind::InvalidData, "utf-8"));
        assert!(content_is_wrong(&not_utf8));
        assert!(content_is_wrong(&Error::corrupt("/x/link", "not 26 base32 characters")));
    }
}
