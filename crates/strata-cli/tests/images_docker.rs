//! Images against the real peer, dockerd 20.10 (Debian's `docker.io`), on the same data root:
//! what strata loads or imports, dockerd lists, inspects, runs and saves as its own; what
//! dockerd loads and builds, strata lists, inspects, mounts and saves as dockerd shows it; and
//! an OCI archive strata saves, dockerd loads and runs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::{TestImage, docker_archive, host_rootfs, saved_layers, sha256, tar_dir};
use common::tarball::{Tarball, dir, file};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A runnable root filesystem directory (sh, cat, ls, true, their libraries, /etc/os-release),
/// plus `rm` for build steps that remove files.
fn rootfs_dir(scratch: &Path) -> PathBuf {
    let fs = scratch.join("rootfs");
    host_rootfs(&fs);
    let rm = fs.join("usr/bin/rm");
    std::fs::copy("/usr/bin/rm", &rm).unwrap();
    fs
}

/// The sha256 digests of the layer tars in a saved archive: its diffIDs, if each layer went
/// out byte for byte as it came in.
fn saved_diff_ids(archive: &Path) -> Vec<String> {
    saved_layers(archive).iter().map(|l| format!("sha256:{}", sha256(l))).collect()
}

/// The diffIDs in an inspect JSON.
fn diff_ids_of(inspect: &Value) -> Vec<String> {
    inspect["RootFS"]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect()
}

/// One history row, as both tools can show it: ID, created (seconds), command, size, comment.
type Row = (String, i64, String, u64, String);

/// `docker history`, row by row. The CLI's `{{json .}}` has sizes in bytes and RFC 3339 times
/// with `--human=false`, and the whole command with `--no-trunc`.
fn docker_history(d: &Dockerd, image: &str) -> Vec<Row> {
    let out = d.docker(&["history", "--no-trunc", "--human=false", "--format", "{{json .}}", image]);
    out.lines()
        .map(json)
        .map(|r| {
            let created: jiff::Timestamp = r["CreatedAt"].as_str().unwrap().parse().unwrap();
            (
                r["ID"].as_str().unwrap().to_owned(),
                created.as_second(),
                r["CreatedBy"].as_str().unwrap().to_owned(),
                r["Size"].as_str().unwrap().parse().unwrap(),
                r["Comment"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `strata history --format json` (the Engine API's shape), in the same terms; tabs in the
/// command become spaces, as the docker CLI shows them.
fn strata_history(root: &Root, image: &str) -> Vec<Row> {
    let out = json(&root.ok(&["history", "--format", "json", image]));
    out.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Id"].as_str().unwrap().to_owned(),
                r["Created"].as_i64().unwrap(),
                r["CreatedBy"].as_str().unwrap().replace('\t', " "),
                r["Size"].as_u64().unwrap(),
                r["Comment"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The one image of an `inspect` array.
fn only(inspect: &str) -> Value {
    let mut all = json(inspect);
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{inspect}");
    all[0].take()
}

/// The top-level keys whose values differ between two inspect objects, with both values.
fn differences(docker: &Value, strata: &Value) -> BTreeMap<String, (Value, Value)> {
    let (d, s) = (docker.as_object().unwrap(), strata.as_object().unwrap());
    d.keys()
        .chain(s.keys())
        .filter(|k| d.get(*k) != s.get(*k))
        .map(|k| (k.clone(), (d.get(k).cloned().unwrap_or_default(), s.get(k).cloned().unwrap_or_default())))
        .collect()
}

/// `strata inspect` of an image equals `docker inspect` of it, key for key.
fn assert_same_inspect(name: &str, docker: &Value, strata: &Value) {
    let diffs = differences(docker, strata);
    assert!(diffs.is_empty(), "inspect {name}: differs from docker's in {diffs:#?}");
}

/// `docker images` as `name:tag ID` lines, sorted.
fn docker_images(d: &Dockerd) -> Vec<String> {
    let out = d.docker(&["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Run a container of `image` (no network: this dockerd has no bridge) and return its output.
fn run(d: &Dockerd, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend_from_slice(cmd);
    d.docker(&args)
}

/// `strata check` checks every layer directory on disk and finds nothing wrong.
fn assert_clean(root: &Root) {
    let layers = std::fs::read_dir(root.home())
        .unwrap()
        .filter(|e| !["l", ".strata-tmp"].contains(&e.as_ref().unwrap().file_name().to_str().unwrap()))
        .count();
    let report = root.ok(&["check"]);
    assert!(report.ends_with(&format!("{layers} layer(s) checked, 0 finding(s): clean")), "{report}");
}

/// The layer directory (cache ID) of an image's top layer, from its GraphDriver.
fn top_layer_dir(inspect: &Value) -> String {
    let upper = Path::new(inspect["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    assert_eq!(upper.file_name().unwrap(), "diff");
    upper.parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned()
}

const GREETING: &str = "hello from layer two\n";
const OS_RELEASE_3: &str = "PRETTY_NAME=\"layer three\"\nID=three\n";

/// Three layers: a runnable rootfs; /etc/greeting, with whiteouts for /etc/os-release and
/// /usr/bin/true; a new /etc/os-release and /opt/three.
fn app_image(rootfs: &Path) -> TestImage {
    let two = Tarball::new()
        .with(dir("etc/"))
        .with(file("etc/greeting", GREETING))
        .with(file("etc/.wh.os-release", ""))
        .with(dir("usr/"))
        .with(dir("usr/bin/"))
        .with(file("usr/bin/.wh.true", ""))
        .bytes();
    let three = Tarball::new()
        .with(dir("etc/"))
        .with(file("etc/os-release", OS_RELEASE_3))
        .with(dir("opt/"))
        .with(file("opt/three", "3\n"))
        .bytes();
    TestImage::new(vec![tar_dir(rootfs), two, three], &["/bin/sh", "-c", "cat /etc/greeting"])
}

#[test]
fn dockerd_uses_images_strata_loaded_and_imported() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = rootfs_dir(scratch.path());
    let image = app_image(&rootfs);
    let archive = scratch.path().join("app.tar");
    std::fs::write(&archive, docker_archive(&[(&image, &["strata-test/app:1"])])).unwrap();

    // strata loads the archive: one image, under the config's digest, all three layers new.
    let loaded = json(&root.ok(&["load", "-i", path_str(&archive), "--format", "json"]));
    assert_eq!(loaded["images"][0]["id"], image.id());
    assert_eq!(loaded["images"][0]["names"], serde_json::json!(["strata-test/app:1"]));
    assert_eq!(loaded["layers_extracted"], 3);
    let imported = root.ok(&[
        "import",
        path_str(&rootfs),
        "imported:1",
        "-m",
        "imported by strata",
        "-c",
        r#"CMD ["cat", "/etc/os-release"]"#,
    ]);
    assert!(imported.starts_with("sha256:"), "{imported}");
    let ours: Vec<(&str, Value)> = ["strata-test/app:1", "imported:1"]
        .into_iter()
        .map(|name| (name, only(&root.ok(&["inspect", name]))))
        .collect();
    let history: Vec<Vec<Row>> = ours.iter().map(|(name, _)| strata_history(&root, name)).collect();

    let Some(d) = Dockerd::start(root.path()) else { return };
    // dockerd reads strata's image and reference stores: both images, under strata's IDs.
    let mut expected = vec![format!("strata-test/app:1 {}", image.id()), format!("imported:1 {imported}")];
    expected.sort();
    assert_eq!(docker_images(&d), expected);

    for ((name, strata), strata_rows) in ours.iter().zip(&history) {
        // Every history row alike: command, size (dockerd's from strata's layer database), time,
        // comment; the top row under the image's ID, the rest (no parents here) `<missing>`.
        let rows = docker_history(&d, name);
        assert_eq!(&rows, strata_rows, "history {name}");
        assert_eq!(rows[0].0, strata["Id"].as_str().unwrap());
        // inspect alike, GraphDriver directories and layer sizes included.
        assert_same_inspect(name, &only(&d.docker(&["inspect", name])), strata);
    }
    // The whiteouts in layer two hid /usr/bin/true and layer one's /etc/os-release; layer
    // three's shows; the default command reads layer two's greeting.
    assert_eq!(run(&d, "strata-test/app:1", &["cat", "/etc/os-release"]), OS_RELEASE_3.trim_end());
    assert_eq!(run(&d, "strata-test/app:1", &[]), GREETING.trim_end());
    let bin = run(&d, "strata-test/app:1", &["ls", "/usr/bin"]);
    assert_eq!(bin.lines().collect::<Vec<_>>(), ["cat", "ls", "rm"], "{bin}");
    assert_eq!(run(&d, "imported:1", &[]), std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap().trim_end());

    // `docker save` rebuilds each layer tar from strata's tar-split: byte for byte the tars
    // strata loaded.
    let saved = scratch.path().join("docker-saved.tar");
    d.docker(&["save", "strata-test/app:1", "-o", path_str(&saved)]);
    assert_eq!(saved_diff_ids(&saved), image.diff_ids());
    let saved = scratch.path().join("docker-saved-imported.tar");
    d.docker(&["save", "imported:1", "-o", path_str(&saved)]);
    assert_eq!(saved_diff_ids(&saved), diff_ids_of(&ours[1].1));
    drop(d);

    // What dockerd did (start, run and remove containers, save) leaves strata's store sound.
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    assert_clean(&root);
}

#[test]
fn strata_reads_images_dockerd_loaded_and_built() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let scratch = tempfile::tempdir().unwrap();
    let base = TestImage::new(vec![tar_dir(&rootfs_dir(scratch.path()))], &["/bin/sh"]);
    let archive = scratch.path().join("base.tar");
    std::fs::write(&archive, docker_archive(&[(&base, &["base:1"])])).unwrap();
    let ctx = scratch.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "copied\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nENV FOO=bar\nRUN echo hi > /tmp/hello && rm /etc/os-release\nCOPY f /f\nCMD [\"cat\",\"/tmp/hello\"]\n",
    )
    .unwrap();

    let Some(d) = Dockerd::start(root.path()) else { return };
    d.docker(&["load", "-q", "-i", path_str(&archive)]);
    d.docker(&["build", "-q", "--network", "none", "-t", "built:1", path_str(&ctx)]);
    let tagged = docker_images(&d);
    let all = d.docker(&["images", "-a", "-q", "--no-trunc"]);
    let history = docker_history(&d, "built:1");
    let inspect = json(&d.docker(&["inspect", "built:1", "base:1"]));
    assert_eq!(run(&d, "built:1", &[]), "hi");
    drop(d);
    let (built, base_inspect) = (&inspect[0], &inspect[1]);
    assert_eq!(base_inspect["Id"], base.id());

    // `images`: the two tagged images, under dockerd's IDs, with dockerd's sizes and parents;
    // with -a also every intermediate image of the build.
    let mut expected = vec![format!("base:1 {}", base.id()), format!("built:1 {}", built["Id"].as_str().unwrap())];
    expected.sort();
    assert_eq!(tagged, expected);
    let listed = json(&root.ok(&["images", "--format", "json"]));
    let mut ours: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{} {}", i["RepoTags"][0].as_str().unwrap(), i["Id"].as_str().unwrap()))
        .collect();
    ours.sort();
    assert_eq!(ours, tagged);
    for theirs in [built, base_inspect] {
        let row = listed.as_array().unwrap().iter().find(|i| i["Id"] == theirs["Id"]).unwrap();
        assert_eq!(row["Size"], theirs["Size"], "size of {}", theirs["Id"]);
        assert_eq!(row["ParentId"], theirs["Parent"], "parent of {}", theirs["Id"]);
    }
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&root.ok(&["images", "-a", "-q", "--no-trunc"])), sorted(&all));

    // `history`: dockerd's rows, IDs of the recorded parents included (the build steps'
    // images, then base:1, then `<missing>` for the base's own earlier step).
    assert_eq!(strata_history(&root, "built:1"), history);
    assert!(history.iter().filter(|r| r.0 != "<missing>").count() >= 5, "{history:?}");

    // `inspect`: dockerd's, Parent and GraphDriver included.
    assert_same_inspect("built:1", built, &only(&root.ok(&["inspect", "built:1"])));
    assert_same_inspect("base:1", base_inspect, &only(&root.ok(&["inspect", "base:1"])));

    // Mounting the top layer shows what the build made: the RUN step's file, the COPY, and the
    // RUN step's removal of /etc/os-release (a whiteout dockerd wrote).
    let top = top_layer_dir(built);
    let merged = PathBuf::from(root.ok(&["layer", "mount", &top]));
    assert_eq!(std::fs::read_to_string(merged.join("tmp/hello")).unwrap(), "hi\n");
    assert_eq!(std::fs::read_to_string(merged.join("f")).unwrap(), "copied\n");
    assert!(!merged.join("etc/os-release").exists());
    assert!(merged.join("bin/sh").exists());
    root.ok(&["layer", "umount", &top]);
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());

    // `save`: each layer as the tar whose digest is the diffID dockerd recorded.
    let saved = scratch.path().join("built.tar");
    root.ok(&["save", "built:1", "-o", path_str(&saved)]);
    assert_eq!(saved_diff_ids(&saved), diff_ids_of(built));
    assert_clean(&root);
}

#[test]
fn dockerd_loads_and_runs_what_strata_saves() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let scratch = tempfile::tempdir().unwrap();
    let image = app_image(&rootfs_dir(scratch.path()));
    let archive = scratch.path().join("app.tar");
    std::fs::write(&archive, docker_archive(&[(&image, &["strata-test/app:1"])])).unwrap();
    root.ok(&["load", "-q", "-i", path_str(&archive)]);
    let saved = |format: &str| {
        let out = scratch.path().join(format!("saved-{format}.tar"));
        root.ok(&["save", "strata-test/app:1", "-o", path_str(&out), "--format", format]);
        // Each layer as loaded, byte for byte.
        assert_eq!(saved_diff_ids(&out), image.diff_ids(), "{format}");
        out
    };
    let archives = [saved("oci"), saved("docker")];

    // A dockerd of its own root loads each archive, under the same ID and name, and runs it.
    let docker_root = Root::new();
    let Some(d) = Dockerd::start(docker_root.path()) else { return };
    for archive in &archives {
        let out = d.docker(&["load", "-i", path_str(archive)]);
        assert!(out.contains("Loaded image: strata-test/app:1"), "{out}");
        assert_eq!(docker_images(&d), [format!("strata-test/app:1 {}", image.id())]);
        let inspect = only(&d.docker(&["inspect", "strata-test/app:1"]));
        assert_eq!(diff_ids_of(&inspect), image.diff_ids());
        assert_eq!(run(&d, "strata-test/app:1", &[]), GREETING.trim_end());
        assert_eq!(run(&d, "strata-test/app:1", &["cat", "/etc/os-release"]), OS_RELEASE_3.trim_end());
        d.docker(&["rmi", "strata-test/app:1"]);
    }
}
