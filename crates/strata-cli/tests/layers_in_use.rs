//! The layer commands against layers that images and containers stand on: `layer rm`,
//! `layer apply` and `layer umount` refuse them, naming what uses them, and change nothing;
//! `--force` does it anyway. Afterwards the images and containers still work.

mod common;

use common::Root;
use common::images::{copy_with_libs, host_rootfs, tar_of};

/// A root with `img:1` (a shell) and a container `c1` of it.
fn root_with_container() -> Root {
    let root = Root::new();
    let fs = root.path().join("inputs/rootfs");
    std::fs::create_dir_all(&fs).unwrap();
    host_rootfs(&fs);
    copy_with_libs(&fs, std::path::Path::new("/usr/bin/sleep"));
    root.ok(&["import", fs.to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
    root.ok(&["create", "--name", "c1", "img:1", "cat", "/hello"]);
    root
}

fn inspect(root: &Root, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["inspect"];
    all.extend(args);
    serde_json::from_str(&root.ok(&all)).unwrap()
}

/// The image's top layer, and the container's writable and -init layers.
fn layers(root: &Root) -> (String, String, String) {
    let image = inspect(root, &["img:1"]);
    let image_top = image[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    let container = inspect(root, &["c1"]);
    let upper = container[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    let id = |dir: &str| dir.trim_end_matches("/diff").rsplit('/').next().unwrap().to_owned();
    let writable = id(upper);
    (id(image_top), writable.clone(), format!("{writable}-init"))
}

fn assert_clean(root: &Root) {
    let out = root.ok(&["check"]);
    assert!(out.ends_with(" 0 finding(s): clean"), "{out}");
}

#[test]
fn layer_rm_refuses_an_image_or_container_layer_and_names_its_user() {
    let root = root_with_container();
    let (image_top, writable, init) = layers(&root);
    let before = common::snapshot(root.path());

    let err = root.fails(&["layer", "rm", &image_top]);
    assert!(err.contains("in use by image img:1") && err.contains("--force"), "{err}");
    let err = root.fails(&["layer", "rm", &writable]);
    assert!(err.contains("in use by container c1 (writable layer)"), "{err}");
    // The -init layer has a child (the writable layer): that refusal comes first either way.
    assert!(!root.strata(&["layer", "rm", &init]).status.success());
    assert_eq!(common::snapshot(root.path()), before, "a refused layer rm changed the store");

    // The image and the container still work.
    assert_clean(&root);
    assert_eq!(root.ok(&["run", "--rm", "img:1", "cat", "/etc/os-release"]).lines().count(), 2);
}

#[test]
fn layer_apply_refuses_a_containers_writable_layer() {
    let root = root_with_container();
    let (_, writable, _) = layers(&root);
    let tar = root.path().join("inputs/layer.tar");
    std::fs::write(&tar, tar_of(&[("hello", b"planted\n")])).unwrap();

    let err = root.fails(&["layer", "apply", &writable, tar.to_str().unwrap()]);
    assert!(err.contains("in use by container c1"), "{err}");
    assert_eq!(std::fs::read_dir(root.home().join(&writable).join("diff")).unwrap().count(), 0);
    assert!(root.strata(&["start", "-a", "c1"]).status.code() == Some(1), "c1 saw a file it never wrote");

    // Forced, it goes in, and the container sees it.
    root.ok(&["layer", "apply", "--force", &writable, tar.to_str().unwrap()]);
    let out = root.strata(&["start", "-a", "c1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "planted\n");
}

#[test]
fn layer_umount_refuses_a_running_containers_mount_and_force_breaks_it() {
    let root = root_with_container();
    let (image_top, _, _) = layers(&root);
    let mut run = common::strata_cmd(root.path(), &["run", "--name", "c2", "img:1", "sleep", "30"]).spawn().unwrap();
    let start = std::time::Instant::now();
    while !root.ok(&["ps", "-q"]).lines().any(|l| !l.is_empty()) {
        assert!(start.elapsed().as_secs() < 20, "c2 did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let upper = inspect(&root, &["c2"])[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap().to_owned();
    let writable = upper.trim_end_matches("/diff").rsplit('/').next().unwrap().to_owned();
    let err = root.fails(&["layer", "umount", &writable]);
    assert!(err.contains("in use by running container c2 (writable layer)"), "{err}");
    assert_eq!(root.mounts().len(), 1, "the running container's mount was dropped");
    assert_eq!(root.ok(&["ps", "-q"]).lines().count(), 1);
    root.ok(&["rm", "-f", "c2"]);
    run.wait().unwrap();

    // A stopped container's mount is only a mount: `layer mount` and `layer umount` work.
    let (_, writable, _) = layers(&root);
    root.ok(&["layer", "mount", &writable]);
    root.ok(&["layer", "umount", &writable]);
    assert_eq!(root.mounts().len(), 0);

    // With --force: the layer goes, the image is broken, and check says so.
    root.ok(&["rm", "c1"]);
    root.ok(&["layer", "rm", "--force", &image_top]);
    let out = root.strata(&["check"]);
    assert!(!out.status.success(), "check calls a store without an image's layer clean");
}
