//! The indexes under `strata/index/`, which keep `rmi`, `create` and `layer rm` from reading
//! every image, container and layer of a large store: what is changed behind strata's back,
//! by hand or by dockerd on the same root, is seen by the next command, and a damaged or lost
//! index is rebuilt.

mod common;

use std::path::{Path, PathBuf};

use common::Root;
use common::dockerd::Dockerd;

/// A root with images `a:1`, `b:1` and `c:1` (one small layer each), a container `first` of
/// `a:1`, and every index warm.
fn root_with_indexes() -> Root {
    let root = Root::new();
    for name in ["a", "b", "c"] {
        let dir = root.path().join("inputs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), name).unwrap();
        root.ok(&["import", dir.to_str().unwrap(), &format!("{name}:1")]);
    }
    root.ok(&["create", "--name", "first", "a:1", "/x"]);
    warm(&root);
    assert!(root.path().join("strata/index/containers").is_file());
    root
}

/// Ask the questions that read every index.
fn warm(root: &Root) {
    root.fails(&["rmi", "a:1"]);
    let id = root.ok(&["create", "a:1", "/x"]);
    root.ok(&["rm", &id]);
    let layer = root.ok(&["layer", "create"]);
    root.ok(&["layer", "rm", &layer]);
}

fn container_dir(root: &Root, name: &str) -> PathBuf {
    let id = root.ok(&["inspect", "-f", "{{.Id}}", name]);
    root.path().join("containers").join(id)
}

fn image_id(root: &Root, name: &str) -> String {
    root.ok(&["inspect", "-f", "{{.Id}}", name])
}

/// The overlay2 layer at the top of an image.
fn top_layer(root: &Root, image: &str) -> String {
    let upper = root.ok(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", image]);
    Path::new(&upper).parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned()
}

/// The three answers that depend on what was changed by hand (see the test).
fn assert_answers(root: &Root, copy_id: &str, child: &str) {
    let err = root.fails(&["create", "--name", "renamed", "c:1", "/x"]);
    assert!(err.contains("already in use"), "{err}");
    let err = root.fails(&["rmi", "b:1"]);
    assert!(err.contains(&copy_id[..12]), "the hand-made container uses b:1: {err}");
    let err = root.fails(&["layer", "rm", "--force", &top_layer(root, "c:1")]);
    assert!(err.contains(&child[..12]), "the hand-made layer stands on it: {err}");
}

#[test]
fn changes_made_by_hand_are_seen_and_a_damaged_index_is_rebuilt() {
    let root = root_with_indexes();
    let first = container_dir(&root, "first");

    // A container renamed by rewriting its record in place (the same inode).
    let record = std::fs::read_to_string(first.join("config.v2.json")).unwrap();
    let renamed = record.replace(r#""Name":"/first""#, r#""Name":"/renamed""#);
    assert_ne!(record, renamed);
    std::fs::write(first.join("config.v2.json"), &renamed).unwrap();
    // A container of b:1 added by hand: a copy of that record under a new ID.
    let copy_id = format!("{:064x}", 0xc0ffee_u64);
    let copy = root.path().join("containers").join(&copy_id);
    std::fs::create_dir(&copy).unwrap();
    let a = image_id(&root, "a:1");
    let b = image_id(&root, "b:1");
    let copied = renamed.replace(&a, &b).replace(r#""Name":"/renamed""#, r#""Name":"/copy""#);
    std::fs::write(copy.join("config.v2.json"), copied).unwrap();
    // A layer stacked by hand on c:1's top layer.
    let top = top_layer(&root, "c:1");
    let link = std::fs::read_to_string(root.home().join(&top).join("link")).unwrap();
    let child = format!("{:064x}", 0xbeef_u64);
    std::fs::create_dir_all(root.home().join(&child).join("diff")).unwrap();
    std::fs::write(root.home().join(&child).join("lower"), format!("l/{link}")).unwrap();

    assert_answers(&root, &copy_id, &child);
    let ok = root.ok(&["create", "--name", "first", "c:1", "/x"]);
    root.ok(&["rm", &ok]);

    // Damaged, then lost, indexes: the same answers.
    let index = root.path().join("strata/index");
    for entry in std::fs::read_dir(&index).unwrap() {
        std::fs::write(entry.unwrap().path(), "strata-index 1\n+garbage\n@ 1.2.3\n").unwrap();
    }
    assert_answers(&root, &copy_id, &child);
    std::fs::remove_dir_all(&index).unwrap();
    assert_answers(&root, &copy_id, &child);

    // Undone by hand: strata sees that too, and the store is clean.
    std::fs::remove_dir_all(&copy).unwrap();
    std::fs::remove_dir_all(root.home().join(&child)).unwrap();
    root.ok(&["rmi", "b:1"]);
    root.ok(&["rm", "renamed"]);
    root.ok(&["layer", "rm", "--force", &top_layer(&root, "c:1")]);
    root.ok(&["rmi", "-f", "c:1"]);
    assert!(root.ok(&["check"]).ends_with("clean"));
}

#[test]
fn what_dockerd_does_to_a_store_is_seen_by_the_next_strata_command() {
    let root = root_with_indexes();
    let c_top = top_layer(&root, "c:1");
    {
        let Some(d) = Dockerd::start(root.path()) else { return };
        d.docker(&["rename", "first", "renamed"]);
        d.docker(&["create", "--name", "by-docker", "b:1", "/x"]);
        d.docker(&["rmi", "c:1"]);
    }
    let err = root.fails(&["create", "--name", "renamed", "a:1", "/x"]);
    assert!(err.contains("already in use"), "{err}");
    let by_docker = container_dir(&root, "by-docker");
    let id = by_docker.file_name().unwrap().to_str().unwrap();
    let err = root.fails(&["rmi", "b:1"]);
    assert!(err.contains(&id[..12]), "dockerd's container uses b:1: {err}");
    let names = root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["a:1", "b:1"], "dockerd removed c:1");
    assert!(!root.home().join(&c_top).exists());
    // And the store goes on: strata removes what dockerd made.
    root.ok(&["rm", "by-docker"]);
    root.ok(&["rmi", "b:1"]);
    let again = root.ok(&["create", "--name", "first", "a:1", "/x"]);
    root.ok(&["rm", &again, "renamed"]);
    assert!(root.ok(&["check"]).ends_with("clean"), "{}", root.ok(&["check"]));
}

#[test]
fn a_container_whose_record_came_late_is_seen_once_it_is_there() {
    let root = root_with_indexes();
    // A container directory caught before its record was written (dockerd making it).
    let late_id = format!("{:064x}", 0x1a7e_u64);
    let late = root.path().join("containers").join(&late_id);
    std::fs::create_dir(&late).unwrap();
    let err = root.fails(&["rmi", "c:1"]);
    assert!(err.contains(&late_id) && err.contains("is missing"), "{err}");
    // Now its record says c:1: the image is in use, and stays so for the next command too.
    let first = container_dir(&root, "first");
    let record = std::fs::read_to_string(first.join("config.v2.json")).unwrap();
    let record = record
        .replace(&image_id(&root, "a:1"), &image_id(&root, "c:1"))
        .replace(r#""Name":"/first""#, r#""Name":"/late""#);
    std::fs::write(late.join("config.v2.json"), record).unwrap();
    for _ in 0..2 {
        let err = root.fails(&["rmi", "c:1"]);
        assert!(err.contains(&late_id[..12]), "the late container uses c:1: {err}");
    }
    std::fs::remove_dir_all(&late).unwrap();
    root.ok(&["rmi", "c:1"]);
}
