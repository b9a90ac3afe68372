//! The classic overlay2 experiment, done with strata layers through the CLI, and the
//! on-disk layout it must leave.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::Root;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// lower2 holds a; lower1 holds a and b; upper holds c (the experiment's `tt/` directory).
fn three_layers(root: &Root) -> (String, String, String) {
    let lower2 = root.ok(&["layer", "create"]);
    fs::write(root.home().join(&lower2).join("diff/a"), "in lower2\n").unwrap();
    let lower1 = root.ok(&["layer", "create", "--parent", &lower2]);
    let diff1 = root.home().join(&lower1).join("diff");
    fs::write(diff1.join("a"), "in lower1\n").unwrap();
    fs::write(diff1.join("b"), "in lower1\n").unwrap();
    fs::create_dir(diff1.join("dir")).unwrap();
    fs::write(diff1.join("dir/old"), "old\n").unwrap();
    let upper = root.ok(&["layer", "create", "--parent", &lower1]);
    fs::write(root.home().join(&upper).join("diff/c"), "in upper\n").unwrap();
    (lower2, lower1, upper)
}

#[test]
fn merged_view_copy_up_whiteouts_and_opaque_dirs() {
    let root = Root::new();
    let (_lower2, lower1, upper) = three_layers(&root);
    let merged = root.ok(&["layer", "mount", &upper]);
    let merged = Path::new(&merged);
    assert_eq!(merged, root.home().join(&upper).join("merged"));

    // a from lower1 hides lower2's a; b from lower1; c from upper.
    for (name, content) in [("a", "in lower1\n"), ("b", "in lower1\n"), ("c", "in upper\n")] {
        assert_eq!(fs::read_to_string(merged.join(name)).unwrap(), content, "{name}");
    }
    let upper_diff = root.home().join(&upper).join("diff");
    let lower1_diff = root.home().join(&lower1).join("diff");

    // touch merged/d lands in upper.
    fs::write(merged.join("d"), "").unwrap();
    assert!(upper_diff.join("d").is_file());
    assert!(!lower1_diff.join("d").exists());

    // Writing a lower file copies it up; the lower layer is untouched.
    fs::write(merged.join("a"), "changed\n").unwrap();
    assert_eq!(fs::read_to_string(upper_diff.join("a")).unwrap(), "changed\n");
    assert_eq!(fs::read_to_string(lower1_diff.join("a")).unwrap(), "in lower1\n");

    // Removing a lower file leaves a 0/0 character-device whiteout in upper.
    fs::remove_file(merged.join("b")).unwrap();
    assert!(!merged.join("b").exists());
    let wh = fs::symlink_metadata(upper_diff.join("b")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(strata::host::device_numbers(wh.rdev()), (0, 0));
    assert!(lower1_diff.join("b").is_file());

    // Removing a lower directory and making it again gives an opaque directory.
    fs::remove_dir_all(merged.join("dir")).unwrap();
    fs::create_dir(merged.join("dir")).unwrap();
    assert_eq!(strata::host::xattr(&upper_diff.join("dir"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read_dir(merged.join("dir")).unwrap().count(), 0, "lower dir/old must be hidden");
    assert!(lower1_diff.join("dir/old").exists());

    root.ok(&["layer", "umount", &upper]);
    assert!(root.mounts().is_empty());
    assert!(!root.home().join(&upper).join("merged").exists(), "the last unmount removes merged/ as dockerd does");
}

#[test]
fn layout_is_dockerds_file_for_file() {
    let root = Root::new();
    let (lower2, lower1, upper) = three_layers(&root);
    let home = root.home();
    assert_eq!(mode(&home), 0o710);
    assert_eq!(mode(&home.join("l")), 0o700);

    let link = |id: &str| fs::read_to_string(home.join(id).join("link")).unwrap();
    for id in [&lower2, &lower1, &upper] {
        assert_eq!(id.len(), 64);
        assert_eq!(mode(&home.join(id)), 0o710);
        assert_eq!(mode(&home.join(id).join("diff")), 0o755);
        assert_eq!(mode(&home.join(id).join("link")), 0o644);
        let l = link(id);
        assert_eq!(l.len(), 26, "link has no newline: {l:?}");
        assert!(l.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(fs::read_link(home.join("l").join(&l)).unwrap(), Path::new(&format!("../{id}/diff")));
    }
    // Base layer: diff and link only, plus committed once it has a child.
    let names = |id: &str| {
        let mut v: Vec<String> =
            fs::read_dir(home.join(id)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&lower2), ["committed", "diff", "link"]);
    assert_eq!(names(&lower1), ["committed", "diff", "link", "lower", "work"]);
    assert_eq!(names(&upper), ["diff", "link", "lower", "work"]);
    assert_eq!(mode(&home.join(&lower2).join("committed")), 0o600);
    assert_eq!(fs::metadata(home.join(&lower2).join("committed")).unwrap().len(), 0);
    assert_eq!(mode(&home.join(&upper).join("work")), 0o700);
    assert_eq!(mode(&home.join(&upper).join("lower")), 0o644);
    // lower: nearest ancestor first, no trailing newline.
    assert_eq!(fs::read_to_string(home.join(&lower1).join("lower")).unwrap(), format!("l/{}", link(&lower2)));
    assert_eq!(
        fs::read_to_string(home.join(&upper).join("lower")).unwrap(),
        format!("l/{}:l/{}", link(&lower1), link(&lower2))
    );

    // While mounted, merged/ shows the union's root (diff's 0755), and the mount goes through
    // the l/ links, as dockerd's does.
    root.ok(&["layer", "mount", &upper]);
    assert_eq!(mode(&home.join(&upper).join("merged")), 0o755);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo.lines().find(|l| l.contains(&format!("{upper}/merged"))).unwrap();
    let l = home.join("l");
    assert!(
        line.contains(&format!("lowerdir={}/{}:{}/{}", l.display(), link(&lower1), l.display(), link(&lower2))),
        "{line}"
    );
    assert!(line.contains(&format!("upperdir={}", home.join(&upper).join("diff").display())), "{line}");
    root.ok(&["layer", "umount", &upper]);
}

#[test]
fn mounts_are_reference_counted_and_committed_layers_mount_read_only() {
    let root = Root::new();
    let (lower2, lower1, upper) = three_layers(&root);
    let merged = root.home().join(&upper).join("merged");
    for _ in 0..3 {
        assert_eq!(root.ok(&["layer", "mount", &upper]), merged.display().to_string());
    }
    assert_eq!(root.mounts(), std::slice::from_ref(&merged), "three mounts, one kernel mount");
    let ls = root.ok(&["layer", "ls", "--format", "json"]);
    let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let entry = ls.as_array().unwrap().iter().find(|l| l["id"] == upper.as_str()).unwrap();
    assert_eq!(entry["mounts"], 3);
    assert_eq!(entry["parent"], lower1.as_str());
    root.ok(&["layer", "umount", &upper]);
    root.ok(&["layer", "umount", &upper]);
    assert_eq!(root.mounts().len(), 1, "still one reference");
    root.ok(&["layer", "umount", &upper]);
    assert!(root.mounts().is_empty());
    let err = root.fails(&["layer", "umount", &upper]);
    assert!(err.contains("not mounted"), "{err}");

    // lower1 has a child, so it mounts read-only: its own diff becomes the top lowerdir.
    let merged1 = root.ok(&["layer", "mount", &lower1]);
    let merged1 = Path::new(&merged1);
    assert_eq!(fs::read_to_string(merged1.join("a")).unwrap(), "in lower1\n");
    let err = fs::write(merged1.join("new"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
    // And the child mounts at the same time without EBUSY.
    root.ok(&["layer", "mount", &upper]);
    assert_eq!(root.mounts().len(), 2);
    root.ok(&["layer", "umount", &upper]);
    root.ok(&["layer", "umount", &lower1]);

    // A base layer is not mounted: its diff is the tree, as in dockerd.
    assert_eq!(root.ok(&["layer", "mount", &lower2]), root.home().join(&lower2).join("diff").display().to_string());
    assert!(root.mounts().is_empty());
    root.ok(&["layer", "umount", &lower2]);
}

#[test]
fn inspect_prints_the_graphdriver_shape() {
    let root = Root::new();
    let (lower2, lower1, upper) = three_layers(&root);
    let home = root.home();
    let json: serde_json::Value = serde_json::from_str(&root.ok(&["layer", "inspect", &upper])).unwrap();
    let dir = |id: &str, sub: &str| home.join(id).join(sub).display().to_string();
    assert_eq!(
        json,
        serde_json::json!({
            "Data": {
                "LowerDir": format!("{}:{}", dir(&lower1, "diff"), dir(&lower2, "diff")),
                "MergedDir": dir(&upper, "merged"),
                "UpperDir": dir(&upper, "diff"),
                "WorkDir": dir(&upper, "work"),
            },
            "Name": "overlay2"
        })
    );
    let base: serde_json::Value = serde_json::from_str(&root.ok(&["layer", "inspect", &lower2])).unwrap();
    assert!(base["Data"].get("LowerDir").is_none(), "a base layer has no LowerDir: {base}");
    assert_eq!(base["Data"]["UpperDir"], dir(&lower2, "diff"));
}

#[test]
fn ls_and_rm() {
    let root = Root::new();
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "", "an empty root lists nothing");
    assert!(!root.home().exists(), "listing writes nothing");
    let (lower2, lower1, upper) = three_layers(&root);
    let mut ids = [lower2.clone(), lower1.clone(), upper.clone()];
    ids.sort();
    assert_eq!(root.ok(&["layer", "ls", "-q"]), ids.join("\n"));
    let table = root.ok(&["layer", "ls"]);
    assert!(table.starts_with("LAYER ID"), "{table}");
    assert_eq!(table.lines().count(), 4);

    let given = "ab".repeat(32);
    assert_eq!(root.ok(&["layer", "create", "--id", &given, "--parent", &upper]), given);
    root.ok(&["layer", "rm", &given, &upper, &lower1, &lower2]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "");
    assert_eq!(fs::read_dir(root.home().join("l")).unwrap().count(), 0, "rm removes the short links");
    assert_eq!(root.ok(&["check"]).lines().last().unwrap(), "0 layer(s) checked, 0 finding(s): clean");
}

#[test]
fn stacks_past_one_page_need_lowerdir_plus_and_say_so() {
    let root = Root::new();
    let mut top = root.ok(&["layer", "create"]);
    for _ in 0..100 {
        top = root.ok(&["layer", "create", "--parent", &top]);
    }
    // 100 lowers by absolute path do not fit in a page: on a kernel without `lowerdir+`
    // (before 6.8) that is a clear error, and nothing is left mounted or counted.
    let out = common::strata_cmd(root.path(), &["layer", "mount", &top])
        .env("STRATA_FAILPOINT", "no-lowerdir+")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("too many for one page") && err.contains("Linux 6.8"), "{err}");
    assert!(root.mounts().is_empty());
    assert!(!root.home().join(&top).join("merged").exists());
    assert!(root.ok(&["check"]).ends_with(" 0 finding(s): clean"));
    // A shallow stack still mounts the classic way on such a kernel.
    let base = root.ok(&["layer", "create"]);
    let child = root.ok(&["layer", "create", "--parent", &base]);
    let out = common::strata_cmd(root.path(), &["layer", "mount", &child])
        .env("STRATA_FAILPOINT", "no-lowerdir+")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    root.ok(&["layer", "umount", &child]);
    // And with `lowerdir+`, the deep one mounts.
    root.ok(&["layer", "mount", &top]);
    root.ok(&["layer", "umount", &top]);
}
