//! The library as a builder or a pull would use it: images written through the public
//! `ImageWriter`, and commits given their `created_by`, a fixed time and no layer. What the
//! library writes, the `strata` command (and so dockerd's layout) reads.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::Root;
use strata::container::CommitOptions;

/// A directory holding `files`, under the root's inputs.
fn tree(root: &Root, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = root.path().join("inputs").join(name);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[test]
fn a_builder_writes_images_through_the_public_writer() {
    let root = Root::new();
    let images = strata::Store::open(root.path()).unwrap().images();
    let base = tree(&root, "base", &[("etc/base", "base\n")]);
    let top = tree(&root, "top", &[("etc/top", "top\n")]);

    // Staged outside the lock, written under it: two layers, an image, a name.
    let staged = [images.stage_dir(&base).unwrap(), images.stage_dir(&top).unwrap()];
    let diff_ids: Vec<String> = staged.iter().map(|s| s.applied().stream.diff_id.to_string()).collect();
    let mut writer = images.writer().unwrap();
    let mut parent = None;
    for (staged, diff_id) in staged.into_iter().zip(&diff_ids) {
        let (record, new) = writer.layer(parent.as_ref(), diff_id.parse().unwrap(), Some(staged)).unwrap();
        assert!(new);
        parent = Some(record);
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
        diff_ids[0], diff_ids[1]
    );
    let id = writer.image(config.as_bytes(), None).unwrap();
    writer.tag("built:1".parse().unwrap(), id).unwrap();
    writer.commit().unwrap();
    assert_eq!(root.ok(&["inspect", "-f", "{{.Id}} {{len .RootFS.Layers}}", "built:1"]), format!("{id} 2"));

    // A stack already stored is found again without files; one that is not is an error.
    let mut writer = images.writer().unwrap();
    let (record, new) = writer.layer(None, diff_ids[0].parse().unwrap(), None).unwrap();
    assert!(!new);
    let err = writer.layer(Some(&record), diff_ids[0].parse().unwrap(), None).unwrap_err();
    assert!(err.to_string().contains("neither stored nor given"), "{err}");
    drop(writer);

    // A writer dropped before its commit leaves nothing behind.
    let layers = root.ok(&["layer", "ls", "-q"]);
    let staged = images.stage_dir(&tree(&root, "lost", &[("lost", "lost\n")])).unwrap();
    let mut writer = images.writer().unwrap();
    let diff_id = staged.applied().stream.diff_id;
    writer.layer(None, diff_id, Some(staged)).unwrap();
    drop(writer);
    assert_eq!(root.ok(&["layer", "ls", "-q"]), layers);
    assert!(root.ok(&["check"]).ends_with("clean"));
}

#[test]
fn commit_takes_created_by_a_fixed_time_and_an_empty_layer() {
    let root = Root::new();
    let dir = tree(&root, "img", &[("etc/img", "img\n")]);
    root.ok(&["import", dir.to_str().unwrap(), "img:1"]);
    root.ok(&["create", "--name", "c1", "img:1", "/x"]);
    let upper = root.ok(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "c1"]);
    std::fs::write(std::path::Path::new(&upper).join("made"), "by a build step\n").unwrap();
    let store = strata::Store::open(root.path()).unwrap();
    let (containers, images) = (store.containers(), store.images());

    // A build step: its own created_by, at a fixed time; twice gives the same image.
    let step = CommitOptions {
        created_by: Some("/bin/sh -c make".into()),
        created: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..Default::default()
    };
    let first = containers.commit("c1", &step).unwrap();
    assert_eq!(containers.commit("c1", &step).unwrap(), first, "a fixed time makes a commit reproducible");
    let image = images.get(first).unwrap();
    let last = image.config.history.last().unwrap();
    assert_eq!(last.created_by, "/bin/sh -c make");
    assert_eq!(last.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert!(!last.empty_layer);
    assert_eq!(image.config.rootfs.diff_ids.len(), 2);

    // A metadata step: the config changes, no layer is added, the history says so.
    let env = CommitOptions {
        changes: vec!["ENV STEP=env".into()],
        created_by: Some("/bin/sh -c #(nop) ENV STEP=env".into()),
        empty_layer: true,
        ..Default::default()
    };
    let id = containers.commit("c1", &env).unwrap();
    let image = images.get(id).unwrap();
    assert_eq!(image.config.rootfs.diff_ids.len(), 1, "no layer: the container's file is not committed");
    assert!(image.config.history.last().unwrap().empty_layer);
    let env = image.config.config.as_ref().unwrap().env.clone().unwrap_or_default();
    assert!(env.contains(&"STEP=env".to_owned()), "{env:?}");
    assert!(root.ok(&["check"]).ends_with("clean"));
}

/// Blobs from memory: what a puller, a builder's cache or a test can hand the pipeline.
struct MemoryBlobs {
    blobs: std::collections::HashMap<String, Vec<u8>>,
    finished: std::sync::Mutex<Vec<(String, bool)>>,
}

impl strata::image::BlobSource for MemoryBlobs {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn open(
        &self,
        blob: &strata::image::LayerBlob,
    ) -> strata::Result<(Box<dyn std::io::Read + Send + '_>, Option<u64>)> {
        let bytes = &self.blobs[&blob.locator];
        Ok((Box::new(&bytes[..]), Some(bytes.len() as u64)))
    }

    fn finished(&self, blob: &strata::image::LayerBlob, outcome: Result<(), strata::ErrorKind>) {
        self.finished.lock().unwrap().push((blob.locator.clone(), outcome.is_ok()));
    }
}

#[test]
fn the_store_pipeline_takes_blobs_from_any_source() {
    use strata::image::{ImagePlan, LayerBlob};
    let root = Root::new();
    let images = strata::Store::open(root.path()).unwrap().images();
    let layers = [
        common::images::tar_of(&[("etc/", b""), ("etc/one", b"one\n")]),
        common::tarball::gzip(&common::images::tar_of(&[("etc/two", b"two\n")])),
    ];
    let diff_ids = [
        format!("sha256:{}", common::images::sha256(&layers[0])),
        format!("sha256:{}", common::images::sha256(&common::images::tar_of(&[("etc/two", b"two\n")]))),
    ];
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
        diff_ids[0], diff_ids[1]
    );
    let source = MemoryBlobs {
        blobs: [("a".to_owned(), layers[0].clone()), ("b".to_owned(), layers[1].clone())].into(),
        finished: Default::default(),
    };
    let blobs = vec![
        LayerBlob { locator: "a".into(), digest: None, size: None },
        LayerBlob {
            locator: "b".into(),
            digest: Some(format!("sha256:{}", common::images::sha256(&layers[1])).parse().unwrap()),
            size: Some(layers[1].len() as u64),
        },
    ];
    let plan = ImagePlan::new("memory", config.into_bytes(), blobs, vec!["frommemory".parse().unwrap()]).unwrap();
    let stored = images.store_images(std::slice::from_ref(&plan), &source, 2, &()).unwrap();
    assert_eq!((stored.layers_extracted, stored.layers_reused), (2, 0));
    assert_eq!(root.ok(&["inspect", "-f", "{{.Id}}", "frommemory:latest"]), plan.id.to_string());
    let mut finished = source.finished.lock().unwrap().clone();
    finished.sort();
    assert_eq!(finished, [("a".to_owned(), true), ("b".to_owned(), true)]);

    // A blob longer than the plan says: told to the source, nothing stored.
    let three = common::images::tar_of(&[("etc/three", b"three\n")]);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        common::images::sha256(&three)
    );
    let source = MemoryBlobs { blobs: [("c".to_owned(), three)].into(), finished: Default::default() };
    let short = vec![LayerBlob { locator: "c".into(), digest: None, size: Some(100) }];
    let wrong = ImagePlan::new("memory", config.into_bytes(), short, vec!["wrong:1".parse().unwrap()]).unwrap();
    let err = images.store_images(std::slice::from_ref(&wrong), &source, 2, &()).unwrap_err();
    assert_eq!(err.kind(), strata::ErrorKind::Corrupt, "{err}");
    assert_eq!(*source.finished.lock().unwrap(), [("c".to_owned(), false)]);
    root.fails(&["inspect", "wrong:1"]);
}
