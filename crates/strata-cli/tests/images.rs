//! Images end to end with the real binary: load (docker save, OCI layout directory and tar,
//! plain/gzip/zstd layers), save round trips, import, images, history, inspect, tag, rmi.

mod common;

use std::path::Path;

use common::Root;
use common::images::{Layers, TestImage, docker_archive, oci_layout, saved_layers, sha256, tar_of};
use common::tarball::{E, Tarball, dir, file, hardlink};
use serde_json::Value;

/// Three layers exercising what layers do: files, a hard link, a whiteout and an opaque dir.
fn three_layers() -> Vec<Vec<u8>> {
    let base = Tarball::new()
        .with(dir("etc/"))
        .with(file("etc/os-release", "ID=base\n"))
        .with(dir("srv/"))
        .with(file("srv/a", "a\n"))
        .with(hardlink("srv/a-link", "srv/a"))
        .with(dir("opt/"))
        .with(file("opt/old", "old\n"))
        .bytes();
    let middle = Tarball::new()
        .with(dir("srv/"))
        .with(file("srv/.wh.a-link", ""))
        .with(file("srv/b", "b\n"))
        .with(dir("opt/"))
        .with(file("opt/.wh..wh..opq", ""))
        .with(file("opt/new", "new\n"))
        .bytes();
    let top = Tarball::new().with(dir("etc/")).with(file("etc/greeting", "hello\n")).bytes();
    vec![base, middle, top]
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The overlay2 layer under an image's top, from `inspect`.
fn top_layer(root: &Root, image: &str) -> String {
    let inspect = json(&root.ok(&["inspect", image]));
    let upper = inspect[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap().to_owned();
    Path::new(&upper).parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned()
}

#[test]
fn a_docker_archive_loads_and_shows_as_docker_shows_it() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(three_layers(), &["cat", "/etc/greeting"]);
    let archive = write(work.path(), "app.tar", &docker_archive(&[(&image, &["team/app:1"])]));

    assert_eq!(root.ok(&["load", "-i", &archive]), "Loaded image: team/app:1");

    // images: one row, Docker's columns.
    let table = root.ok(&["images"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["team/app", "1", &image.id()[7..19]]);
    let listed = json(&root.ok(&["images", "--format", "json"]));
    let sizes: u64 = image.layers.len() as u64; // each layer has a few bytes of files
    assert!(listed[0]["Size"].as_u64().unwrap() > sizes);
    assert_eq!(listed[0]["Id"], image.id());
    assert_eq!(listed[0]["RepoTags"], serde_json::json!(["team/app:1"]));

    // history: newest first, the empty CMD step on top with the image ID, then <missing>.
    let history = json(&root.ok(&["history", "--format", "json", "team/app:1"]));
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["Id"], image.id());
    assert_eq!(rows[0]["Size"], 0);
    assert_eq!(rows[0]["Tags"], serde_json::json!(["team/app:1"]));
    assert_eq!(rows[1]["CreatedBy"], "/bin/sh -c step 2");
    assert_eq!(rows[1]["Size"], 6, "the top layer holds etc/greeting, 6 bytes");
    assert!(rows[1..].iter().all(|r| r["Id"] == "<missing>"));
    let table = root.ok(&["history", "team/app:1"]);
    assert!(table.lines().nth(2).unwrap().starts_with("<missing>"), "{table}");
    assert!(table.contains("6B"), "{table}");

    // inspect: the config, the diffIDs, and the LowerDir chain of two layers.
    let inspect = json(&root.ok(&["inspect", "team/app:1"]))[0].clone();
    assert_eq!(inspect["Id"], image.id());
    assert_eq!(inspect["Config"]["Cmd"], serde_json::json!(["cat", "/etc/greeting"]));
    assert_eq!(inspect["Config"]["Hostname"], "", "Docker's full container config shape");
    assert_eq!(inspect["RootFS"]["Layers"], serde_json::json!(image.diff_ids()));
    let lower = inspect["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    assert_eq!(lower.split(':').count(), 2);
    assert_eq!(inspect["GraphDriver"]["Name"], "overlay2");

    // The image's layers union as the tarballs say.
    let top = top_layer(&root, "team/app:1");
    let merged = root.ok(&["layer", "mount", &top]);
    let seen = common::visible(Path::new(&merged));
    root.ok(&["layer", "umount", &top]);
    let expect = [
        ("etc", "/"),
        ("etc/greeting", "hello\n"),
        ("etc/os-release", "ID=base\n"),
        ("opt", "/"),
        ("opt/new", "new\n"),
        ("srv", "/"),
        ("srv/a", "a\n"),
        ("srv/b", "b\n"),
    ];
    assert_eq!(seen, expect.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());

    // The layer DB is Docker's: chainIDs, cache-ids, diffs, sizes, tar-splits.
    let layerdb = root.path().join("image/overlay2/layerdb/sha256");
    assert_eq!(std::fs::read_dir(&layerdb).unwrap().count(), 3);
    let base = layerdb.join(&image.diff_ids()[0][7..]);
    for f in ["cache-id", "diff", "size", "tar-split.json.gz"] {
        assert!(base.join(f).is_file(), "{f}");
    }
    assert!(!base.join("parent").exists());
    assert_eq!(std::fs::read_to_string(base.join("diff")).unwrap(), image.diff_ids()[0]);
    assert!(root.path().join("image/overlay2/imagedb/content/sha256").join(&image.id()[7..]).is_file());
}

#[test]
fn oci_layouts_load_from_directories_and_tars_with_any_compression() {
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(three_layers(), &["sh"]);
    for (n, layers) in [Layers::Plain, Layers::Gzip, Layers::Zstd].into_iter().enumerate() {
        let root = Root::new();
        let dir = work.path().join(format!("oci{n}"));
        oci_layout(&dir, &[(&image, Some("oci/app:v1"))], layers);
        assert_eq!(root.ok(&["load", "-i", dir.to_str().unwrap()]), "Loaded image: oci/app:v1");
        assert_eq!(json(&root.ok(&["inspect", "oci/app:v1"]))[0]["Id"], image.id());

        // The same layout as a tar (what `skopeo copy … oci-archive:` writes) into a new root.
        let tarred = Root::new();
        let tar = write(work.path(), &format!("oci{n}.tar"), &common::images::tar_dir(&dir));
        tarred.ok(&["load", "-i", &tar]);
        assert_eq!(json(&tarred.ok(&["inspect", "oci/app:v1"]))[0]["Id"], image.id());
    }
}

#[test]
fn layers_already_stored_are_reused() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let layers = three_layers();
    let first = TestImage::new(layers[..2].to_vec(), &["a"]);
    let second = TestImage::new(layers.clone(), &["b"]);
    root.ok(&["load", "-i", &write(work.path(), "1.tar", &docker_archive(&[(&first, &["first:1"])]))]);
    let loaded = json(&root.ok(&[
        "load",
        "--format",
        "json",
        "-i",
        &write(work.path(), "2.tar", &docker_archive(&[(&second, &["second:1"])])),
    ]));
    assert_eq!((loaded["layers_reused"].as_u64(), loaded["layers_extracted"].as_u64()), (Some(2), Some(1)));
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 3, "one overlay2 layer per distinct stack");
    // Loading again changes nothing.
    let before = common::snapshot(&root.path().join("image/overlay2/layerdb"));
    root.ok(&["load", "-i", &work.path().join("2.tar").to_string_lossy()]);
    assert_eq!(common::snapshot(&root.path().join("image/overlay2/layerdb")), before);
}

#[test]
fn save_gives_back_the_layers_it_loaded_byte_for_byte() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    // gzip layers in, plain layers out: the diffIDs are what must survive.
    let image = TestImage::new(three_layers(), &["sh"]);
    let dir = work.path().join("oci");
    oci_layout(&dir, &[(&image, Some("round/trip:1"))], Layers::Gzip);
    root.ok(&["load", "-i", dir.to_str().unwrap()]);
    for format in ["docker", "oci"] {
        let out = work.path().join(format!("saved-{format}.tar"));
        root.ok(&["save", "round/trip:1", "--format", format, "-o", out.to_str().unwrap()]);
        let layers: Vec<String> = saved_layers(&out).iter().map(|l| format!("sha256:{}", sha256(l))).collect();
        assert_eq!(layers, image.diff_ids(), "{format}");
        // And the saved archive loads into a new root as the same image.
        let again = Root::new();
        assert_eq!(again.ok(&["load", "-i", out.to_str().unwrap()]), "Loaded image: round/trip:1");
        assert_eq!(json(&again.ok(&["inspect", "round/trip:1"]))[0]["Id"], image.id());
    }
}

#[test]
fn import_makes_a_one_layer_image_from_a_tar_or_a_directory() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let rootfs = tar_of(&[("bin/", b""), ("bin/tool", b"#!/bin/sh\n"), ("etc/", b""), ("etc/motd", b"hi\n")]);
    let tar = write(work.path(), "rootfs.tar", &rootfs);
    let id = root.ok(&["import", &tar, "imported", "-m", "from a tar", "-c", r#"CMD ["/bin/tool"]"#, "-c", "ENV A=1"]);
    let inspect = json(&root.ok(&["inspect", "imported:latest"]))[0].clone();
    assert_eq!(inspect["Id"], id);
    assert_eq!(inspect["RootFS"]["Layers"], serde_json::json!([format!("sha256:{}", sha256(&rootfs))]));
    assert_eq!(inspect["Config"]["Cmd"], serde_json::json!(["/bin/tool"]));
    assert_eq!(inspect["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(inspect["Comment"], "from a tar");
    let history = json(&root.ok(&["history", "--format", "json", "imported"]));
    assert_eq!(history[0]["Comment"], "from a tar");
    assert_eq!(history[0]["Size"], 13);

    // A directory is packed on the fly; the same files give a layer with the same content.
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/motd"), "from a dir\n").unwrap();
    root.ok(&["import", tree.to_str().unwrap(), "fromdir:1"]);
    let merged = root.ok(&["layer", "mount", &top_layer(&root, "fromdir:1")]);
    assert_eq!(std::fs::read_to_string(Path::new(&merged).join("etc/motd")).unwrap(), "from a dir\n");
    assert!(root.ok(&["history", "fromdir:1"]).contains("Imported from"));
}

#[test]
fn tag_and_rmi_follow_dockers_rules_and_keep_shared_layers() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let layers = three_layers();
    let small = TestImage::new(layers[..2].to_vec(), &["a"]);
    let big = TestImage::new(layers.clone(), &["b"]);
    root.ok(&[
        "load",
        "-i",
        &write(work.path(), "i.tar", &docker_archive(&[(&small, &["small:1"]), (&big, &["big:1"])])),
    ]);

    // Tags: a second name in the same repository and one in another.
    root.ok(&["tag", "small:1", "small:2"]);
    root.ok(&["tag", &small.id()[7..19], "other"]);
    let names = json(&root.ok(&["inspect", "small:1"]))[0]["RepoTags"].clone();
    assert_eq!(names, serde_json::json!(["other:latest", "small:1", "small:2"]));

    // Removing a name only untags while others remain.
    assert_eq!(root.ok(&["rmi", "small:2"]), "Untagged: small:2");
    // By ID with names in two repositories: refused without -f, nothing changes.
    let before = common::snapshot(&root.path().join("image"));
    let err = root.fails(&["rmi", &small.id()]);
    assert!(err.contains("several repositories"), "{err}");
    assert_eq!(common::snapshot(&root.path().join("image")), before);
    // With -f: both names go, the image goes, and its layers stay (big stands on them).
    let out = root.ok(&["rmi", "-f", &small.id()]);
    assert!(out.contains("Untagged: other:latest") && out.contains("Untagged: small:1"), "{out}");
    assert!(out.contains(&format!("Deleted: {}", small.id())), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("Deleted:")).count(), 1, "no layer deleted: {out}");
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 3);

    // Several names in one command: each removed in turn, a failure in between stopping
    // nothing (as docker: exit 1, one line for it).
    root.ok(&["tag", "big:1", "b1"]);
    root.ok(&["tag", "big:1", "b2"]);
    let out = root.strata(&["rmi", "b1", "nothing:here", "b2"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Untagged: b1:latest\nUntagged: b2:latest\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() == 1 && err.contains("nothing:here"), "{err}");
    assert_eq!(json(&root.ok(&["inspect", "big:1"]))[0]["RepoTags"], serde_json::json!(["big:1"]));

    // The last image takes every layer with it.
    let out = root.ok(&["rmi", "big:1"]);
    assert_eq!(out.lines().filter(|l| l.starts_with("Deleted: sha256:")).count(), 4, "image + 3 layers: {out}");
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "");
    assert_eq!(std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256")).unwrap().count(), 0);
    assert_eq!(root.ok(&["images", "-q"]), "");
    let check = root.strata(&["check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // Unknown names say so.
    let err = root.fails(&["rmi", "nothing:here"]);
    assert!(err.contains("no such image"), "{err}");
    let err = root.fails(&["history", "nothing"]);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn an_untagged_image_is_listed_as_none_and_reachable_by_id_prefix() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(vec![Tarball::new().with(E { ..file("x", "x") }).bytes()], &["x"]);
    let dir = work.path().join("oci");
    oci_layout(&dir, &[(&image, None)], Layers::Plain);
    assert_eq!(root.ok(&["load", "-i", dir.to_str().unwrap()]), format!("Loaded image ID: {}", image.id()));
    let row = root.ok(&["images"]).lines().nth(1).unwrap().to_owned();
    assert!(row.starts_with("<none>       <none>"), "{row}");
    assert_eq!(json(&root.ok(&["inspect", &image.id()[7..15]]))[0]["Id"], image.id());
}

#[test]
fn check_finds_and_mends_damage_to_the_image_database() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(three_layers(), &["sh"]);
    root.ok(&["load", "-i", &write(work.path(), "a.tar", &docker_archive(&[(&image, &["a:1"])]))]);
    let db = root.path().join("image/overlay2");
    // A name pointing nowhere, and a write-set a killed process left.
    let repos = db.join("repositories.json");
    let mut names = json(&std::fs::read_to_string(&repos).unwrap());
    names["Repositories"]["ghost"] = serde_json::json!({"ghost:1": format!("sha256:{}", "0".repeat(64))});
    std::fs::write(&repos, names.to_string()).unwrap();
    std::fs::create_dir(db.join("layerdb/tmp/write-set-dead")).unwrap();

    let report = json(&String::from_utf8(root.strata(&["check", "--format", "json"]).stdout).unwrap());
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["layerdb-leftover", "dangling-name"]);
    root.ok(&["check", "--repair"]);
    assert!(!db.join("layerdb/tmp/write-set-dead").exists());
    assert!(!std::fs::read_to_string(&repos).unwrap().contains("ghost"));
    root.ok(&["check"]);

    // A layer deleted by hand under an image is damage that needs a person.
    let top = top_layer(&root, "a:1");
    std::fs::remove_dir_all(root.home().join(&top)).unwrap();
    let out = root.strata(&["check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("its overlay2 layer {top} is missing")));
}

#[test]
fn the_library_gives_each_layers_exact_tarball_and_its_mount_without_mounting() {
    let root = Root::new();
    let work = tempfile::tempdir().unwrap();
    let image = TestImage::new(three_layers(), &["sh"]);
    let dir = work.path().join("oci");
    oci_layout(&dir, &[(&image, Some("exact:1"))], Layers::Gzip);
    root.ok(&["load", "-q", "-i", dir.to_str().unwrap()]);

    let store = strata::Store::open(root.path()).unwrap();
    let images = store.images();
    let loaded = images.get(images.resolve("exact:1").unwrap()).unwrap();
    let stack = images.layers_of(&loaded).unwrap();
    for (record, original) in stack.iter().zip(&image.layers) {
        let mut tarball = Vec::new();
        images.layer_tarball(record.chain_id, &mut tarball).unwrap();
        assert!(tarball == *original, "layer {} is not the tarball it was loaded from", record.chain_id);
    }

    // The mount the top layer would get: its own diff/ on top of its ancestors' links, no mount made.
    let top = &stack.last().unwrap().cache_id;
    let plan = store.layers().mount_plan(top).unwrap().expect("a layer with a parent mounts");
    assert_eq!(plan.lowers.len(), 2);
    let (upper, _) = plan.upper.as_ref().expect("a top layer without children mounts writable");
    assert_eq!(upper, &store.layers().diff_dir(top));
    assert!(plan.data().contains("lowerdir="), "{}", plan.data());
    assert!(root.mounts().is_empty());
    assert!(store.layers().mount_plan(&stack[0].cache_id).unwrap().is_none(), "a base layer is never mounted");
}
