//! `strata check` finds what hand edits and crashes leave behind; `--repair` mends it.

mod common;

use std::fs;
use std::process::Command;

use common::Root;

fn findings(root: &Root, args: &[&str]) -> (bool, Vec<(String, String, String)>) {
    let mut full = vec!["check", "--format", "json"];
    full.extend_from_slice(args);
    let out = root.strata(&full);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (out.status.success(), list)
}

#[test]
fn check_finds_and_repairs_hand_damage() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let mid = root.ok(&["layer", "create", "--parent", &base]);
    let top = root.ok(&["layer", "create", "--parent", &mid]);
    let other = root.ok(&["layer", "create", "--parent", &base]);
    let home = root.home();
    let link = |id: &str| fs::read_to_string(home.join(id).join("link")).unwrap();

    // A missing link file (l/ still points at the layer), a missing l/ link, a dangling l/
    // link, a stale mount count, a stray overlay mount and a leftover temporary directory.
    fs::remove_file(home.join(&mid).join("link")).unwrap();
    fs::remove_file(home.join("l").join(link(&other))).unwrap();
    std::os::unix::fs::symlink(format!("../{}/diff", "d".repeat(64)), home.join("l/ZZZZZZZZZZZZZZZZZZZZZZZZZZ"))
        .unwrap();
    fs::write(root.path().join("strata/mounts").join(&top), "3").unwrap();
    let merged = home.join(&other).join("merged");
    fs::create_dir(&merged).unwrap();
    let opts =
        format!("lowerdir={}:{}", home.join(&mid).join("diff").display(), home.join(&base).join("diff").display());
    assert!(
        Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status().unwrap().success()
    );
    fs::create_dir(home.join(".strata-tmp-0123456789abcdef")).unwrap();

    let (ok, found) = findings(&root, &[]);
    assert!(!ok, "damage makes check fail");
    let kinds: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
    for kind in
        ["missing-link-file", "missing-link", "dangling-link", "stale-mount-count", "stale-mount", "leftover-temporary"]
    {
        assert!(kinds.contains(&kind), "{kind} not found in {found:?}");
    }
    assert!(found.iter().all(|(_, _, outcome)| outcome == "repairable"), "{found:?}");
    // A damaged store still lists; building on the damaged layer says what to do.
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 4);
    assert!(root.ok(&["layer", "ls"]).contains("(missing)"));
    let err = root.fails(&["layer", "create", "--parent", &mid]);
    assert!(err.contains("strata check"), "{err}");

    let (ok, repaired) = findings(&root, &["--repair"]);
    assert!(ok, "{repaired:?}");
    assert!(repaired.iter().all(|(_, _, outcome)| outcome == "repaired"), "{repaired:?}");
    let (ok, after) = findings(&root, &[]);
    assert!(ok && after.is_empty(), "{after:?}");
    assert!(root.mounts().is_empty());

    // Everything works again: the mid layer kept its short link, the top mounts through it.
    assert_eq!(link(&mid).len(), 26);
    let m = root.ok(&["layer", "mount", &top]);
    assert!(std::path::Path::new(&m).is_dir());
    root.ok(&["layer", "umount", &top]);
    let m = root.ok(&["layer", "mount", &other]);
    assert!(std::path::Path::new(&m).is_dir());
    root.ok(&["layer", "umount", &other]);
}

#[test]
fn a_lower_entry_that_leads_nowhere_is_reported_not_guessed() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let top = root.ok(&["layer", "create", "--parent", &base]);
    let home = root.home();
    // Remove the base layer behind strata's back.
    let link = fs::read_to_string(home.join(&base).join("link")).unwrap();
    fs::remove_dir_all(home.join(&base)).unwrap();
    fs::remove_file(home.join("l").join(&link)).unwrap();

    let (ok, found) = findings(&root, &["--repair"]);
    assert!(!ok);
    assert!(found.contains(&("broken-lower".into(), "damage".into(), "manual".into())), "{found:?}");
    let err = root.fails(&["layer", "mount", &top]);
    assert!(err.contains("cannot mount") || err.contains("no such"), "{err}");
}

#[test]
fn check_finds_containers_without_their_layers_or_records() {
    let root = Root::new();
    let rootfs = tempfile::tempdir().unwrap();
    common::images::host_rootfs(rootfs.path());
    root.ok(&["import", rootfs.path().to_str().unwrap(), "mini:1", "-c", r#"CMD ["/bin/sh"]"#]);
    let a = root.ok(&["create", "--name", "ca", "mini:1", "true"]);
    let b = root.ok(&["create", "--name", "cb", "mini:1", "true"]);
    assert_eq!(findings(&root, &[]), (true, vec![]));

    // a's record gone by hand: its layers are orphans; b's writable layer gone: b is broken.
    let saved = tempfile::tempdir().unwrap();
    fs::rename(root.path().join("containers").join(&a), saved.path().join("a")).unwrap();
    let mount_id =
        fs::read_to_string(root.path().join("image/overlay2/layerdb/mounts").join(&b).join("mount-id")).unwrap();
    fs::rename(root.home().join(&mount_id), saved.path().join("b-layer")).unwrap();
    let (clean, found) = findings(&root, &[]);
    assert!(!clean);
    let kinds: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(kinds.contains(&"orphan-container-layers") && kinds.contains(&"bad-container"), "{found:?}");

    // Put back, and it is clean again.
    fs::rename(saved.path().join("a"), root.path().join("containers").join(&a)).unwrap();
    fs::rename(saved.path().join("b-layer"), root.home().join(&mount_id)).unwrap();
    assert_eq!(findings(&root, &[]), (true, vec![]));
}
