//! The store root and what strata makes in it: the same modes whatever the caller's umask
//! (dockerd's 0710 for the root), and a root, or a top-level entry, that another user owns
//! or can write is refused before anything is written through it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Root;
use common::images::host_rootfs;

/// `strata --root root args…` under `umask`.
fn strata_umask(root: &Path, umask: &str, args: &[&str]) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("STRATA_ROOT")
        .output()
        .unwrap();
    assert!(out.status.success(), "strata {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A path with IDs and short links replaced by placeholders.
fn normalized(rel: &Path) -> String {
    let part = |p: &str| -> String {
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if hex(p) {
            "<id>".into()
        } else if let Some(id) = p.strip_suffix("-init").filter(|s| hex(s)) {
            format!("{}-init", normalized(Path::new(id)))
        } else if p.len() == 26 && p.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)) {
            "<link>".into()
        } else {
            p.to_owned()
        }
    };
    rel.iter().map(|p| part(&p.to_string_lossy())).collect::<Vec<_>>().join("/")
}

/// Normalized path → the modes found there.
fn modes(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, BTreeSet<String>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let kind = if meta.is_dir() {
                "d"
            } else if meta.file_type().is_symlink() {
                "l"
            } else {
                "f"
            };
            let key = normalized(path.strip_prefix(base).unwrap());
            out.entry(key).or_default().insert(format!("{kind}{:04o}", meta.mode() & 0o7777));
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Import, create, run, commit and a bare layer, with a root made under `umask`.
fn store_made_under(parent: &Path, umask: &str, rootfs: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let root = parent.join(format!("store-{umask}"));
    let s = |args: &[&str]| String::from_utf8(strata_umask(&root, umask, args).stdout).unwrap();
    s(&["import", rootfs.to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
    s(&["create", "--name", "c1", "img:1", "sh", "-c", "echo hi > /tmp/f"]);
    s(&["start", "-a", "c1"]);
    s(&["commit", "c1", "img:2"]);
    s(&["layer", "create"]);
    assert_eq!(std::fs::metadata(&root).unwrap().mode() & 0o7777, 0o710, "umask {umask}: the root's mode");
    modes(&root)
}

#[test]
fn what_strata_makes_has_the_same_modes_whatever_the_umask() {
    let scratch = Root::new();
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    host_rootfs(&rootfs);
    let open = store_made_under(scratch.path(), "000", &rootfs);
    let closed = store_made_under(scratch.path(), "077", &rootfs);
    let differ: Vec<String> = open
        .iter()
        .filter(|(path, modes)| closed.get(*path) != Some(*modes))
        .map(|(path, modes)| format!("{path}: umask 000 {modes:?}, umask 077 {:?}", closed.get(path)))
        .collect();
    assert!(differ.is_empty(), "modes follow the umask:\n{}", differ.join("\n"));
    assert_eq!(open.keys().collect::<Vec<_>>(), closed.keys().collect::<Vec<_>>());
    // Nothing of strata's own is writable by others.
    let writable: Vec<&String> = open
        .iter()
        .filter(|(path, modes)| {
            !path.contains("/diff/")
                && !path.contains("/merged")
                && modes.iter().any(|m| {
                    m.starts_with('d') && {
                        let bits = u32::from_str_radix(&m[1..], 8).unwrap();
                        bits & 0o002 != 0 && bits & 0o1000 == 0
                    }
                })
        })
        .map(|(path, _)| path)
        .collect();
    assert!(writable.is_empty(), "world-writable: {writable:?}");
}

#[test]
fn a_root_or_entry_another_user_can_change_is_refused_before_writing() {
    let scratch = Root::new();
    let bad = |root: &Path, what: &str| {
        let out = common::strata_cmd(root, &["layer", "create"]).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{what}: accepted");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains("refusing the store at"), "{what}: {err}");
        err
    };

    // A root anybody can write.
    let open = scratch.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = bad(&open, "a 0777 root");
    assert!(err.contains("other users can write it (mode 0777)"), "{err}");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0, "something was written into the 0777 root");

    // A root another user owns.
    let theirs = scratch.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let err = bad(&theirs, "a root of uid 1000");
    assert!(err.contains("owned by uid 1000"), "{err}");

    // An entry planted as a symlink, and one owned by another user: nothing goes through them.
    let root = scratch.path().join("store");
    common::strata_cmd(&root, &["layer", "create"]).output().unwrap();
    let elsewhere = scratch.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("containers")).unwrap();
    let err = bad(&root, "containers/ a symlink");
    assert!(err.contains("containers: it is a symbolic link"), "{err}");
    std::fs::remove_file(root.join("containers")).unwrap();
    std::fs::create_dir(root.join("image")).unwrap();
    std::os::unix::fs::chown(root.join("image"), Some(1000), Some(1000)).unwrap();
    let err = bad(&root, "image/ of uid 1000");
    assert!(err.contains("image: it is owned by uid 1000"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn the_state_version_is_recorded_older_stores_are_read_and_newer_ones_refused() {
    let root = Root::new();
    let layer = root.ok(&["layer", "create"]);
    let version = root.path().join("strata/version");
    assert_eq!(std::fs::read_to_string(&version).unwrap(), format!("{}\n", strata::STATE_VERSION));

    // A store of an earlier strata (no version file, a count file holding "1"): read, used,
    // and marked as this format at its next write.
    std::fs::remove_file(&version).unwrap();
    assert!(root.ok(&["layer", "ls", "-q"]).contains(&layer));
    root.ok(&["layer", "create", "--parent", &layer]);
    assert_eq!(std::fs::read_to_string(&version).unwrap(), format!("{}\n", strata::STATE_VERSION));

    // A store of a later strata: every command refuses it, and changes nothing.
    std::fs::write(&version, format!("{}\n", strata::STATE_VERSION + 1)).unwrap();
    let before = common::snapshot(root.path());
    for args in [&["layer", "ls"][..], &["layer", "create"], &["images"], &["check"], &["check", "--repair"]] {
        let err = root.fails(args);
        assert!(err.contains("was written by a newer strata"), "{args:?}: {err}");
    }
    assert_eq!(common::snapshot(root.path()), before);
}
