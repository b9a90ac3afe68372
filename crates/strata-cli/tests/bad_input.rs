//! Bad input: one clear line on stderr, a non-zero exit, and nothing changed on disk.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Root, snapshot, strata_cmd};

/// Run `args`, expect a one-line failure mentioning `expect`, and check nothing changed.
fn refused(root: &Root, args: &[&str], expect: &str) {
    let before = snapshot(root.path());
    let err = root.fails(args);
    assert!(err.starts_with("strata: "), "{err}");
    assert!(err.contains(expect), "strata {args:?}: expected {expect:?} in {err:?}");
    assert_eq!(snapshot(root.path()), before, "strata {args:?} changed the store");
}

#[test]
fn bad_ids_unknown_layers_and_refused_removals() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let top = root.ok(&["layer", "create", "--parent", &base]);
    let unknown = "0".repeat(63) + "a";

    for bad in ["../x", "abc", &"A".repeat(64), &format!("{base}/../x")] {
        refused(&root, &["layer", "inspect", bad], "invalid ID");
        refused(&root, &["layer", "rm", bad], "invalid ID");
        refused(&root, &["layer", "create", "--parent", bad], "invalid ID");
        refused(&root, &["layer", "create", "--id", bad], "invalid ID");
    }
    for cmd in ["inspect", "mount", "umount", "rm"] {
        refused(&root, &["layer", cmd, &unknown], "no such layer");
    }
    refused(&root, &["layer", "create", "--parent", &unknown], "parent layer");
    refused(&root, &["layer", "create", "--id", &top], "already exists");
    refused(&root, &["layer", "rm", &base], "child layer");
    refused(&root, &["layer", "umount", &top], "not mounted");

    root.ok(&["layer", "mount", &top]);
    refused(&root, &["layer", "rm", &top], "is mounted");
    root.ok(&["layer", "umount", &top]);
    root.ok(&["layer", "rm", &top, &base]);
}

#[test]
fn a_root_where_overlay_cannot_work_is_refused_before_anything_is_written() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();

    // ext4 without the filetype feature: no d_type.
    let image = scratch.path().join("nodtype.img");
    let mnt = scratch.path().join("nodtype");
    std::fs::create_dir(&mnt).unwrap();
    run("truncate", &["-s", "32M", image.to_str().unwrap()]);
    run("mkfs.ext4", &["-q", "-F", "-O", "^filetype", image.to_str().unwrap()]);
    run("mount", &["-o", "loop", image.to_str().unwrap(), mnt.to_str().unwrap()]);
    let _unmount = Unmount(mnt.clone());
    expect_refused(&mnt.join("store"), "d_type");

    // A root inside an OverlayFS mount.
    let ovl = scratch.path().join("ovl");
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(ovl.join(d)).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        ovl.join("lower").display(),
        ovl.join("upper").display(),
        ovl.join("work").display()
    );
    run("mount", &["-t", "overlay", "overlay", "-o", &opts, ovl.join("merged").to_str().unwrap()]);
    let _unmount2 = Unmount(ovl.join("merged"));
    expect_refused(&ovl.join("merged/store"), "OverlayFS itself");
}

fn expect_refused(root: &Path, expect: &str) {
    let parent = root.parent().unwrap();
    let before = snapshot(parent);
    let out = strata_cmd(root, &["layer", "create"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expect) && stderr.contains("cannot hold an overlay2 store"), "{stderr}");
    assert_eq!(snapshot(parent), before, "nothing may be written");
    assert!(!root.exists());
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?}");
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
