//! Image archives that are damaged, incomplete or not image archives at all, bad names, image
//! operations killed part way and removals that must be refused: one clear line on stderr, and
//! `image/` and `overlay2/` exactly as they were (once the next writer has swept what a killed
//! process left), with the images already there untouched.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::images::{Layers, TestImage, docker_archive, oci_layout, sha256, tar_of};
use common::tarball::gzip;
use common::{Root, kill_after, kill_at, snapshot, strata_cmd};

type Tree = BTreeMap<PathBuf, String>;

/// `image/` and `overlay2/` of a root.
fn state(root: &Root) -> (Tree, Tree) {
    (snapshot(&root.path().join("image")), snapshot(&root.home()))
}

fn assert_same(root: &Root, before: &(Tree, Tree), what: &str) {
    let after = state(root);
    assert_eq!(after.0, before.0, "{what}: image/ changed");
    assert_eq!(after.1, before.1, "{what}: overlay2/ changed");
}

/// `strata check` finds nothing at all: no damage and no leftovers.
fn assert_spotless(root: &Root) {
    let out = root.strata(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check found damage:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_end().ends_with(" 0 finding(s): clean"), "{text}");
}

/// Sweep what killed processes left, then check that nothing is left.
fn repair(root: &Root) {
    let report = root.ok(&["check", "--repair"]);
    assert!(report.ends_with("clean"), "{report}");
    assert_spotless(root);
}

/// A layer tarball of regular files (names ending in `/` are directories).
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_bytes())).collect();
    tar_of(&files)
}

fn base_layer() -> Vec<u8> {
    layer(&[("etc/", ""), ("etc/base", "base\n")])
}

/// Incompressible bytes, the same for the same seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Write `bytes` to `<root>/inputs/<name>` and return that path.
fn put(root: &Root, name: &str, bytes: &[u8]) -> String {
    let dir = root.path().join("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `<root>/inputs/<name>`, a fresh directory.
fn input_dir(root: &Root, name: &str) -> PathBuf {
    let dir = root.path().join("inputs").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The image every test starts with, `keep:1`: a base layer and one of its own.
fn keep_image() -> TestImage {
    TestImage::new(vec![base_layer(), layer(&[("keep", "kept\n")])], &["/bin/sh"])
}

/// A root holding `keep:1`.
fn root_with_kept_image() -> (Root, TestImage) {
    let root = Root::new();
    let keep = keep_image();
    let path = put(&root, "keep.tar", &docker_archive(&[(&keep, &["keep:1"])]));
    root.ok(&["load", "-q", "-i", &path]);
    assert_spotless(&root);
    (root, keep)
}

/// `keep:1` is still there, whole: listed with its name, inspectable, its files readable.
fn assert_kept(root: &Root, keep: &TestImage) {
    let list: serde_json::Value = serde_json::from_str(&root.ok(&["images", "--format", "json"])).unwrap();
    let found: Vec<&serde_json::Value> = list.as_array().unwrap().iter().filter(|i| i["Id"] == keep.id()).collect();
    assert_eq!(found.len(), 1, "{list}");
    assert!(found[0]["RepoTags"].as_array().unwrap().contains(&"keep:1".into()), "{list}");
    let upper = upper_dir(root, "keep:1");
    assert_eq!(std::fs::read_to_string(upper.join("keep")).unwrap(), "kept\n");
}

/// The `diff/` of an image's top layer, from `strata inspect`.
fn upper_dir(root: &Root, image: &str) -> PathBuf {
    let inspect: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", image])).unwrap();
    PathBuf::from(inspect[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap())
}

/// The images listed, as (ID, tags).
fn listed(root: &Root) -> Vec<(String, serde_json::Value)> {
    let list: serde_json::Value = serde_json::from_str(&root.ok(&["images", "--format", "json"])).unwrap();
    list.as_array().unwrap().iter().map(|i| (i["Id"].as_str().unwrap().to_owned(), i["RepoTags"].clone())).collect()
}

/// Run `args`: a one-line failure mentioning `expect`, and nothing changed, neither at once
/// nor once `check --repair` has run; `keep:1` still whole.
fn refused(root: &Root, keep: &TestImage, args: &[&str], expect: &str) -> String {
    let before = state(root);
    let err = root.fails(args);
    assert!(err.starts_with("strata: "), "{err}");
    assert!(err.contains(expect), "strata {args:?}: expected {expect:?} in {err:?}");
    assert_same(root, &before, &format!("strata {args:?}"));
    assert_spotless(root);
    repair(root);
    assert_same(root, &before, &format!("strata {args:?}, then check --repair"));
    assert_kept(root, keep);
    err
}

/// A load of the archive `bytes` (written to `name`) is refused.
fn load_refused(root: &Root, keep: &TestImage, name: &str, bytes: &[u8], expect: &str) -> String {
    let path = put(root, name, bytes);
    refused(root, keep, &["load", "-q", "-i", &path], expect)
}

/// The members of a tar, in order.
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn pack(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    tar_of(&refs)
}

/// The archive with its members changed by `f`.
fn edit_tar(archive: &[u8], f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut m = members(archive);
    f(&mut m);
    pack(&m)
}

/// A `docker save` archive with its `manifest.json` changed by `f`.
fn edit_manifest(archive: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    edit_tar(archive, |m| {
        let entry = m.iter_mut().find(|(n, _)| n == "manifest.json").unwrap();
        let mut manifest: serde_json::Value = serde_json::from_slice(&entry.1).unwrap();
        f(&mut manifest);
        entry.1 = serde_json::to_vec(&manifest).unwrap();
    })
}

/// The path of a blob of an OCI layout.
fn blob(dir: &Path, digest_or_bytes: &str) -> PathBuf {
    dir.join("blobs/sha256").join(digest_or_bytes.trim_start_matches("sha256:"))
}

/// The first manifest of an OCI layout's index: its digest and content.
fn oci_manifest(dir: &Path) -> (String, serde_json::Value) {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest = serde_json::from_slice(&std::fs::read(blob(dir, &digest)).unwrap()).unwrap();
    (digest, manifest)
}

/// Replace the first manifest of an OCI layout by `f` of it, as a new blob the index points at.
fn edit_oci_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let (old, mut manifest) = oci_manifest(dir);
    f(&mut manifest);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = format!("sha256:{}", sha256(&bytes));
    std::fs::write(blob(dir, &digest), &bytes).unwrap();
    std::fs::remove_file(blob(dir, &old)).unwrap();
    let path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A three-layer image on `keep:1`'s base layer.
fn new_image() -> TestImage {
    TestImage::new(vec![base_layer(), layer(&[("n1", "one\n")]), layer(&[("n2", "two\n")])], &["/bin/true"])
}

// 1. Content that does not match its digest.

#[test]
fn a_layer_or_config_altered_by_one_byte_is_refused() {
    let (root, keep) = root_with_kept_image();
    // The layer's file data starts right after its first 512-byte header.
    let good = TestImage::new(vec![base_layer(), layer(&[("data", "hello world\n")])], &["/bin/sh"]);
    let mut altered = good.clone();
    assert_eq!(altered.layers[1][512], b'h');
    altered.layers[1][512] = b'H';

    // docker save: the altered layer.tar no longer hashes to the config's diffID.
    let archive = docker_archive(&[(&altered, &["new:1"])]);
    let err = load_refused(&root, &keep, "altered-layer.tar", &archive, "diffID mismatch");
    assert!(err.contains(&good.diff_ids()[1]), "{err}");

    // OCI, gzip layers, a blob whose content no longer matches its name; decompressed it is
    // the same layer (only the gzip header's mtime differs), so only the digest can tell.
    let dir = input_dir(&root, "oci-gzip-header");
    oci_layout(&dir, &[(&good, Some("new:1"))], Layers::Gzip);
    let compressed = gzip(&good.layers[1]);
    let path = blob(&dir, &sha256(&compressed));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "digest mismatch");
    assert!(err.contains(&sha256(&compressed)), "{err}");

    // The same, with a byte of the compressed stream itself changed.
    let dir = input_dir(&root, "oci-gzip-body");
    oci_layout(&dir, &[(&good, Some("new:1"))], Layers::Gzip);
    let path = blob(&dir, &sha256(&compressed));
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "bad layer archive");
    assert!(err.contains(&sha256(&compressed)), "{err}");

    // And as a tar of that layout (what `skopeo copy … oci-archive:` writes).
    let tarred = common::images::tar_dir(&input_dir(&root, "oci-gzip-header"));
    load_refused(&root, &keep, "oci-gzip-header.tar", &tarred, "digest mismatch");

    // OCI, a config blob altered: its digest no longer matches.
    let dir = input_dir(&root, "oci-config");
    oci_layout(&dir, &[(&good, Some("new:1"))], Layers::Gzip);
    let path = blob(&dir, &good.id());
    let text = std::fs::read_to_string(&path).unwrap().replacen("amd64", "amd65", 1);
    std::fs::write(&path, text).unwrap();
    let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "the archive is damaged");
    assert!(err.contains(&good.id()), "{err}");

    // An archive of a good image and a damaged one: neither is loaded.
    let other = TestImage::new(vec![base_layer(), layer(&[("other", "other\n")])], &["/bin/sh"]);
    let archive = docker_archive(&[(&other, &["other:1"]), (&altered, &["new:1"])]);
    load_refused(&root, &keep, "good-and-bad.tar", &archive, "diffID mismatch");
}

// 2. Blobs that are not there.

#[test]
fn a_missing_layer_blob_is_refused() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();

    let archive = docker_archive(&[(&image, &["new:1"])]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&members(&archive).iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    let gone = manifest[0]["Layers"][2].as_str().unwrap().to_owned();
    let archive = edit_tar(&archive, |m| m.retain(|(n, _)| *n != gone));
    let err = load_refused(&root, &keep, "missing-layer.tar", &archive, "missing");
    assert!(err.contains(&gone), "{err}");

    for layers in [Layers::Gzip, Layers::Plain, Layers::Zstd] {
        let dir = tempfile::tempdir_in(input_dir(&root, "oci")).unwrap();
        oci_layout(dir.path(), &[(&image, Some("new:1"))], layers);
        let (_, manifest) = oci_manifest(dir.path());
        let gone = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
        std::fs::remove_file(blob(dir.path(), &gone)).unwrap();
        let err = refused(&root, &keep, &["load", "-q", "-i", dir.path().to_str().unwrap()], "missing");
        assert!(err.contains(gone.trim_start_matches("sha256:")), "{err}");
    }
}

// 3. Manifests and configs that lead nowhere.

#[test]
fn a_manifest_or_config_that_is_not_there_is_refused() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();

    // index.json names a manifest that is not in blobs/.
    let dir = input_dir(&root, "no-manifest");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    let (digest, _) = oci_manifest(&dir);
    std::fs::remove_file(blob(&dir, &digest)).unwrap();
    let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "missing");
    assert!(err.contains(digest.trim_start_matches("sha256:")), "{err}");

    // index.json names a manifest by a digest nothing has.
    let dir = input_dir(&root, "made-up-manifest");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    let path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{}", "0".repeat(64)).into();
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "missing");

    // The OCI manifest's config is not in blobs/.
    let dir = input_dir(&root, "no-oci-config");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    std::fs::remove_file(blob(&dir, &image.id())).unwrap();
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "missing");

    // manifest.json's Config names a file the archive does not have.
    let archive = docker_archive(&[(&image, &["new:1"])]);
    let config = format!("{}.json", &image.id()[7..]);
    let without = edit_tar(&archive, |m| m.retain(|(n, _)| *n != config));
    let err = load_refused(&root, &keep, "no-config.tar", &without, "missing");
    assert!(err.contains(&config), "{err}");

    // … or a path out of the archive.
    let outside = edit_manifest(&archive, |m| m[0]["Config"] = "../../etc/passwd".into());
    load_refused(&root, &keep, "config-outside.tar", &outside, "not a path inside the archive");

    // manifest.json that lists nothing, or is not JSON.
    let empty = edit_manifest(&archive, |m| *m = serde_json::json!([]));
    load_refused(&root, &keep, "empty-manifest.tar", &empty, "lists no images");
    let garbage = edit_tar(&archive, |m| m.iter_mut().find(|(n, _)| n == "manifest.json").unwrap().1 = b"[{".to_vec());
    load_refused(&root, &keep, "garbage-manifest.tar", &garbage, "manifest.json is not valid");
}

// 4. Not an image archive at all.

#[test]
fn what_is_not_an_image_archive_is_refused() {
    let (root, keep) = root_with_kept_image();

    let files = layer(&[("hello.txt", "hello\n"), ("dir/", ""), ("dir/x", "x\n")]);
    load_refused(&root, &keep, "files.tar", &files, "not an image archive");
    load_refused(&root, &keep, "text.txt", b"this is not a tar file, just text\n", "not an image archive");
    load_refused(&root, &keep, "empty.tar", b"", "not an image archive");
    let empty = input_dir(&root, "empty-dir");
    refused(&root, &keep, &["load", "-q", "-i", empty.to_str().unwrap()], "not an image archive");
    refused(&root, &keep, &["load", "-q"], "standard input: not an image archive: it holds no files");
    let missing = root.path().join("inputs/no-such-file.tar");
    let err = refused(&root, &keep, &["load", "-q", "-i", missing.to_str().unwrap()], "No such file or directory");
    assert!(err.contains("no-such-file.tar"), "{err}");
    // The cause is said once.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    // index.json without oci-layout.
    let dir = input_dir(&root, "no-oci-layout");
    oci_layout(&dir, &[(&new_image(), Some("new:1"))], Layers::Gzip);
    std::fs::remove_file(dir.join("oci-layout")).unwrap();
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "index.json without oci-layout");

    // `import` of what is not a tar.
    let text = put(&root, "rootfs.txt", b"this is not a tar file, just text\n");
    refused(&root, &keep, &["import", &text, "imported:1"], "bad layer archive");

    // Gzip around garbage, and the gzip magic before garbage.
    load_refused(&root, &keep, "garbage.tar.gz", &gzip(&noise(1, 100_000)), "not an image archive");
    let mut fake = vec![0x1f, 0x8b, 8, 0];
    fake.extend(noise(2, 10_000));
    load_refused(&root, &keep, "fake.tar.gz", &fake, "cannot read it as a (compressed) tar");

    // A docker archive cut off in the middle of its (big) last layer, with manifest.json
    // first, so that the manifest and config are whole.
    let image = TestImage::new(vec![base_layer(), tar_of(&[("big", &noise(3, 200_000))])], &["/bin/sh"]);
    let archive = edit_tar(&docker_archive(&[(&image, &["new:1"])]), |m| m.reverse());
    assert_eq!(members(&archive)[0].0, "manifest.json");
    let cut = &archive[..archive.len() - 100_000];
    load_refused(&root, &keep, "truncated-manifest-first.tar", cut, "truncated");

    // Cut off the same way as `docker save` orders it (manifest.json last): it is gone.
    let archive = docker_archive(&[(&image, &["new:1"])]);
    let cut = &archive[..archive.len() - 100_000];
    load_refused(&root, &keep, "truncated.tar", cut, "not an image archive");

    // Compressed, then cut.
    let compressed = gzip(&edit_tar(&archive, |m| m.reverse()));
    let cut = &compressed[..compressed.len() / 2];
    load_refused(&root, &keep, "truncated.tar.gz", cut, "cannot read it as a (compressed) tar");
}

// 5. Names that are not references.

#[test]
fn invalid_references_are_refused() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();

    let archive = docker_archive(&[(&image, &["Bad/NAME:1"])]);
    load_refused(&root, &keep, "bad-tag.tar", &archive, "invalid reference");
    let archive = docker_archive(&[(&image, &["good:1", "bad:tag:x"])]);
    load_refused(&root, &keep, "bad-second-tag.tar", &archive, "invalid reference");

    let dir = input_dir(&root, "oci-bad-name");
    oci_layout(&dir, &[(&image, Some("Bad:Tag"))], Layers::Gzip);
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "invalid reference");

    let rootfs = put(&root, "rootfs.tar", &layer(&[("hello", "hi\n")]));
    refused(&root, &keep, &["import", &rootfs, "UPPER"], "invalid reference");
    refused(&root, &keep, &["import", &rootfs, "a:"], "invalid reference");
    refused(&root, &keep, &["tag", "keep:1", "a//b"], "invalid reference");
    let hex = "0123456789abcdef".repeat(4);
    refused(&root, &keep, &["tag", "keep:1", &hex], "invalid reference");
    refused(&root, &keep, &["tag", "nothing:1", "fine:1"], "no such image");

    // A digest where docker's load wants NAME:TAG: docker says "invalid tag", and so do we.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let archive = docker_archive(&[(&image, &[&format!("new@{digest}")])]);
    load_refused(&root, &keep, "digest-tag.tar", &archive, "invalid tag");
    let archive = docker_archive(&[(&image, &["new"])]);
    load_refused(&root, &keep, "no-tag.tar", &archive, "invalid tag");
}

/// Put the layout's first manifest behind a nested index whose entries say `platforms`.
fn behind_an_index(dir: &Path, platforms: &[(&str, &str)]) {
    let path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let manifest = index["manifests"][0].clone();
    let entries: Vec<serde_json::Value> = platforms
        .iter()
        .map(|(os, arch)| {
            let mut m = manifest.clone();
            m["platform"] = serde_json::json!({"os": os, "architecture": arch});
            m
        })
        .collect();
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries
    }))
    .unwrap();
    let digest = format!("sha256:{}", sha256(&nested));
    std::fs::write(blob(dir, &digest), &nested).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = nested.len().into();
    index["manifests"][0]["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn an_index_without_this_machines_platform_is_refused_not_its_first_image_loaded() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();
    let dir = input_dir(&root, "oci-arm-only");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    behind_an_index(&dir, &[("linux", "arm64"), ("linux", "s390x")]);
    let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "has no image for linux/");
    assert!(err.contains("(it has: linux/arm64, linux/s390x)"), "{err}");

    // With this machine's platform among others, that one is loaded.
    let dir = input_dir(&root, "oci-multi");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    let arch = if std::env::consts::ARCH == "x86_64" { "amd64" } else { "arm64" };
    behind_an_index(&dir, &[("linux", "s390x"), ("linux", arch)]);
    root.ok(&["load", "-q", "-i", dir.to_str().unwrap()]);
    assert!(listed(&root).iter().any(|(_, tags)| tags[0] == "new:1"), "{:?}", listed(&root));
}

#[test]
fn a_descriptor_whose_size_is_wrong_is_refused() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 4] = [
        ("layer says 10 bytes", |m| m["layers"][1]["size"] = 10.into()),
        ("layer says 2^40 bytes", |m| m["layers"][2]["size"] = (1u64 << 40).into()),
        ("base layer (already stored) says 10 bytes", |m| m["layers"][0]["size"] = 10.into()),
        ("config says 10 bytes", |m| m["config"]["size"] = 10.into()),
    ];
    for (what, edit) in cases {
        let dir = input_dir(&root, &format!("oci-size-{}", what.len()));
        oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
        edit_oci_manifest(&dir, edit);
        let err = refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "its descriptor says");
        assert!(err.contains("bytes"), "{what}: {err}");
    }
    // The manifest's own descriptor in index.json.
    let dir = input_dir(&root, "oci-size-index");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    let path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"][0]["size"] = (1u64 << 40).into();
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "its descriptor says 1099511627776 bytes");
}

// 6. Manifests and configs that disagree.

#[test]
fn a_manifest_that_disagrees_with_its_config_is_refused() {
    let (root, keep) = root_with_kept_image();
    let image = new_image();
    let archive = docker_archive(&[(&image, &["new:1"])]);

    let fewer = edit_manifest(&archive, |m| drop(m[0]["Layers"].as_array_mut().unwrap().pop()));
    let err = load_refused(&root, &keep, "fewer-layers.tar", &fewer, "the manifest lists 2 layers but the config 3");
    assert!(err.contains(&image.id()), "{err}");

    let more = edit_manifest(&archive, |m| {
        let layers = m[0]["Layers"].as_array_mut().unwrap();
        layers.push(layers[0].clone());
    });
    load_refused(&root, &keep, "more-layers.tar", &more, "the manifest lists 4 layers but the config 3");

    // The layers in another order: each fails its diffID.
    let swapped = edit_manifest(&archive, |m| m[0]["Layers"].as_array_mut().unwrap().swap(1, 2));
    load_refused(&root, &keep, "swapped-layers.tar", &swapped, "diffID mismatch");

    let dir = input_dir(&root, "oci-fewer");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    edit_oci_manifest(&dir, |m| drop(m["layers"].as_array_mut().unwrap().pop()));
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "the manifest lists 2 layers but the config 3");

    // The config under a `<hex>.json` name that is not its digest.
    let wrong = "f".repeat(64);
    let config = format!("{}.json", &image.id()[7..]);
    let renamed = edit_tar(&archive, |m| {
        m.iter_mut().find(|(n, _)| *n == config).unwrap().0 = format!("{wrong}.json");
    });
    let renamed = edit_manifest(&renamed, |m| m[0]["Config"] = format!("{wrong}.json").into());
    let err = load_refused(&root, &keep, "misnamed-config.tar", &renamed, "has digest");
    assert!(err.contains(&wrong) && err.contains(&image.id()), "{err}");

    // A config that is not an image config.
    let not_config = edit_tar(&archive, |m| m.iter_mut().find(|(n, _)| *n == config).unwrap().1 = b"{}".to_vec());
    let not_config = edit_tar(&not_config, |m| {
        m.iter_mut().find(|(n, _)| *n == config).unwrap().0 = format!("{}.json", sha256(b"{}"));
    });
    let not_config = edit_manifest(&not_config, |m| m[0]["Config"] = format!("{}.json", sha256(b"{}")).into());
    load_refused(&root, &keep, "not-a-config.tar", &not_config, "image config is not valid");

    // An OCI layer descriptor whose size is not the blob's.
    let dir = input_dir(&root, "oci-size");
    oci_layout(&dir, &[(&image, Some("new:1"))], Layers::Gzip);
    edit_oci_manifest(&dir, |m| {
        let size = m["layers"][2]["size"].as_u64().unwrap();
        m["layers"][2]["size"] = (size + 1).into();
    });
    refused(&root, &keep, &["load", "-q", "-i", dir.to_str().unwrap()], "its descriptor says");
}

// 7. The same image loaded by several processes at once.

#[test]
fn a_load_racing_an_rmi_of_the_same_image_always_succeeds() {
    let root = Root::new();
    let image = TestImage::new(vec![base_layer(), layer(&[("n1", "one\n")])], &["/bin/true"]);
    let archive = put(&root, "race.tar", &docker_archive(&[(&image, &["race:1"])]));
    root.ok(&["load", "-q", "-i", &archive]);
    let rounds = 40;
    let loads = {
        let (path, archive) = (root.path().to_owned(), archive.clone());
        std::thread::spawn(move || {
            (0..rounds)
                .filter_map(|_| {
                    let out = strata_cmd(&path, &["load", "-q", "-i", &archive]).output().unwrap();
                    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
                })
                .collect::<Vec<_>>()
        })
    };
    for _ in 0..rounds {
        // It may already be gone: only a load's failure counts.
        let _ = root.strata(&["rmi", "race:1"]);
    }
    let failed = loads.join().unwrap();
    assert!(failed.is_empty(), "{} of {rounds} loads failed beside an rmi: {:?}", failed.len(), failed.first());
    root.ok(&["load", "-q", "-i", &archive]);
    assert_eq!(listed(&root).len(), 1);
    assert_spotless(&root);
}

#[test]
fn the_same_image_loaded_twice_at_once_is_stored_once() {
    let image = TestImage::new(
        vec![
            tar_of(&[("a", &noise(10, 300_000))]),
            tar_of(&[("b", &noise(11, 300_000))]),
            tar_of(&[("c", &noise(12, 300_000))]),
        ],
        &["/bin/sh"],
    );
    let archive = docker_archive(&[(&image, &["conc:1"])]);
    for processes in [2, 2, 2, 4] {
        let root = Root::new();
        let path = put(&root, "conc.tar", &archive);
        let loads: Vec<Child> = (0..processes)
            .map(|_| {
                strata_cmd(root.path(), &["load", "-q", "-i", &path])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for load in loads {
            let out = load.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Loaded image: conc:1");
        }
        assert_eq!(listed(&root), [(image.id(), serde_json::json!(["conc:1"]))]);
        let layers = root.ok(&["layer", "ls", "-q"]);
        assert_eq!(layers.lines().count(), 3, "{processes} loads: {layers}");
        let chains = std::fs::read_dir(root.path().join("image/overlay2/layerdb/sha256")).unwrap().count();
        assert_eq!(chains, 3);
        assert_eq!(std::fs::read_dir(root.home().join("l")).unwrap().count(), 3);
        assert_eq!(std::fs::read_dir(root.path().join("image/overlay2/layerdb/tmp")).unwrap().count(), 0);
        assert_spotless(&root);
        let upper = upper_dir(&root, "conc:1");
        assert_eq!(std::fs::read(upper.join("c")).unwrap(), noise(12, 300_000));
    }
}

// 8. Loads killed part way.

#[test]
fn a_load_killed_at_each_step_is_undone_by_the_next_writer() {
    for failpoint in ["register.layer", "register.image", "register.tagged"] {
        let (root, keep) = root_with_kept_image();
        let image = new_image();
        let path = put(&root, "new.tar", &docker_archive(&[(&image, &["new:1"])]));
        let before = state(&root);

        kill_at(&root, failpoint, &["load", "-q", "-i", &path]);
        // Not yet swept: a check sees the abandoned load as a leftover, and no damage.
        let report = root.ok(&["check"]);
        assert!(report.contains("abandoned-operation") && report.ends_with("clean"), "{failpoint}: {report}");
        assert!(report.contains("nothing of it is visible"), "{report}");
        // Readers see nothing of the killed load either: they let a writer undo it first.
        assert_eq!(listed(&root), [(keep.id(), serde_json::json!(["keep:1"]))], "{failpoint}");

        repair(&root);
        assert_same(&root, &before, failpoint);
        assert_kept(&root, &keep);

        // And the load goes through now.
        root.ok(&["load", "-q", "-i", &path]);
        let upper = upper_dir(&root, "new:1");
        assert_eq!(std::fs::read_to_string(upper.join("n2")).unwrap(), "two\n");
        assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 4, "{failpoint}");
        assert_kept(&root, &keep);
        assert_spotless(&root);
    }
}

#[test]
fn a_load_that_moves_a_name_killed_part_way_gives_the_name_back() {
    for failpoint in ["register.image", "register.tagged"] {
        let (root, keep) = root_with_kept_image();
        let image = new_image();
        // keep:1 moves to the new image, new:1 is new.
        let path = put(&root, "moves.tar", &docker_archive(&[(&image, &["keep:1", "new:1"])]));
        let before = state(&root);
        kill_at(&root, failpoint, &["load", "-q", "-i", &path]);
        repair(&root);
        assert_same(&root, &before, failpoint);
        assert_kept(&root, &keep);
        assert_eq!(listed(&root), [(keep.id(), serde_json::json!(["keep:1"]))], "{failpoint}");

        root.ok(&["load", "-q", "-i", &path]);
        let images = listed(&root);
        assert!(images.contains(&(image.id(), serde_json::json!(["keep:1", "new:1"]))), "{images:?}");
        assert!(images.contains(&(keep.id(), serde_json::json!(["<none>:<none>"]))), "{images:?}");
        assert_spotless(&root);
    }
}

#[test]
fn an_import_killed_at_each_step_is_undone_by_the_next_writer() {
    for failpoint in ["register.layer", "register.image", "register.tagged"] {
        let (root, keep) = root_with_kept_image();
        let rootfs = put(&root, "rootfs.tar", &layer(&[("hello", "hi\n")]));
        let before = state(&root);
        kill_at(&root, failpoint, &["import", &rootfs, "imported:1"]);
        // The next writer is not `check` this time but `tag` (then `rmi` of that name).
        root.ok(&["tag", "keep:1", "again:1"]);
        root.ok(&["rmi", "again:1"]);
        assert_spotless(&root);
        let after = state(&root);
        // Only keep:1's lastUpdated may differ (tagging touches it).
        let stamp = |t: &Tree| -> Tree {
            t.iter().filter(|(p, _)| !p.ends_with("lastUpdated")).map(|(p, v)| (p.clone(), v.clone())).collect()
        };
        assert_eq!(stamp(&after.0), stamp(&before.0), "{failpoint}: image/ changed");
        assert_eq!(after.1, before.1, "{failpoint}: overlay2/ changed");
        assert_kept(&root, &keep);
        root.ok(&["import", &rootfs, "imported:1"]);
        assert_spotless(&root);
    }
}

#[test]
fn loads_killed_at_random_moments_leave_nothing_or_a_whole_image() {
    let (root, keep) = root_with_kept_image();
    let layers: Vec<Vec<u8>> = (0..5).map(|i| tar_of(&[(&format!("big{i}"), &noise(100 + i, 2 << 20))])).collect();
    let big = TestImage::new(layers, &["/bin/sh"]);
    let path = put(&root, "big.tar", &docker_archive(&[(&big, &["big:1"])]));
    let before = state(&root);

    // How long a whole load takes here, in a root of its own.
    let elsewhere = Root::new();
    let start = Instant::now();
    elsewhere.ok(&["load", "-q", "-i", &path]);
    let whole = start.elapsed();
    drop(elsewhere);

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seed = 4242u64;
    let (mut nothing, mut all) = (0, 0);
    for round in 0..16 {
        if Instant::now() > deadline {
            break;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let delay = whole.mul_f64(((seed >> 33) % 1000) as f64 / 900.0);
        kill_after(&root, &["load", "-q", "-i", &path], delay);

        repair(&root);
        let images = listed(&root);
        if images.iter().any(|(id, _)| *id == big.id()) {
            // It finished: the whole image, named.
            all += 1;
            assert!(images.contains(&(big.id(), serde_json::json!(["big:1"]))), "round {round}: {images:?}");
            let upper = upper_dir(&root, "big:1");
            assert_eq!(std::fs::read(upper.join("big4")).unwrap(), noise(104, 2 << 20), "round {round}");
            assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 2 + 5, "round {round}");
            root.ok(&["rmi", "big:1"]);
            assert_spotless(&root);
        } else {
            nothing += 1;
        }
        assert_same(&root, &before, &format!("round {round} (killed after {delay:?} of {whole:?})"));
        assert_kept(&root, &keep);
    }
    eprintln!("killed loads: {nothing} left nothing, {all} had finished");
    root.ok(&["load", "-q", "-i", &path]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 2 + 5);
    assert_spotless(&root);
}

// 9. A removal killed part way.

#[test]
fn an_rmi_killed_after_untagging_is_finished_by_the_next_writer() {
    let root = Root::new();
    let b = TestImage::new(vec![base_layer(), layer(&[("b1", "bee\n")])], &["/bin/sh"]);
    let path = put(&root, "b.tar", &docker_archive(&[(&b, &["b:1"])]));
    root.ok(&["load", "-q", "-i", &path]);
    let only_b = state(&root);

    let a = new_image();
    let path = put(&root, "a.tar", &docker_archive(&[(&a, &["a:1"])]));
    root.ok(&["load", "-q", "-i", &path]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 4);

    kill_at(&root, "remove.untagged", &["rmi", "a:1"]);
    // Before the sweep, a reader sees the image without its name, and its layers.
    let images = listed(&root);
    assert!(!images.iter().any(|(_, tags)| tags.to_string().contains("a:1")), "{images:?}");
    assert_eq!(root.fails(&["inspect", "a:1"]), "strata: no such container or image: a:1");

    repair(&root);
    assert_same(&root, &only_b, "rmi killed after untagging, then swept");
    assert_eq!(listed(&root), [(b.id(), serde_json::json!(["b:1"]))]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 2);
    let err = root.fails(&["inspect", &a.id()]);
    assert!(err.contains("no such container or image"), "{err}");

    // b:1 still works, down to its shared base layer.
    let upper = upper_dir(&root, "b:1");
    let top = upper.parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();
    let merged = root.ok(&["layer", "mount", &top]);
    assert_eq!(std::fs::read_to_string(Path::new(&merged).join("etc/base")).unwrap(), "base\n");
    assert_eq!(std::fs::read_to_string(Path::new(&merged).join("b1")).unwrap(), "bee\n");
    assert!(!Path::new(&merged).join("n1").exists());
    root.ok(&["layer", "umount", &top]);
    assert!(root.mounts().is_empty());
    assert_spotless(&root);

    // A killed rmi by ID, swept by another writer (a load).
    let path = put(&root, "a.tar", &docker_archive(&[(&a, &["a:1"])]));
    root.ok(&["load", "-q", "-i", &path]);
    kill_at(&root, "remove.untagged", &["rmi", &a.id()]);
    let c = TestImage::new(vec![layer(&[("c", "sea\n")])], &["/bin/sh"]);
    let path = put(&root, "c.tar", &docker_archive(&[(&c, &["c:1"])]));
    root.ok(&["load", "-q", "-i", &path]);
    let images = listed(&root);
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(!images.iter().any(|(id, _)| *id == a.id()), "{images:?}");
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 3);
    assert_spotless(&root);
}

// 10. Removals that must be refused.

#[test]
fn an_image_named_in_two_repositories_is_not_removed_by_id_without_force() {
    let (root, keep) = root_with_kept_image();
    root.ok(&["tag", "keep:1", "other/keep:2"]);
    let hex = &keep.id()[7..];
    for by_id in [keep.id(), hex.to_owned(), hex[..12].to_owned()] {
        refused(&root, &keep, &["rmi", &by_id], "names in several repositories");
    }
    // By one of its names, only that name goes.
    assert_eq!(root.ok(&["rmi", "other/keep:2"]), "Untagged: other/keep:2");
    assert_kept(&root, &keep);
    // With -f, by ID, everything goes.
    root.ok(&["tag", "keep:1", "other/keep:2"]);
    root.ok(&["rmi", "-f", &keep.id()]);
    assert!(listed(&root).is_empty());
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "");
    assert_spotless(&root);
}

#[test]
fn a_container_record_that_cannot_be_read_stops_rmi_from_removing_layers() {
    let (root, keep) = root_with_kept_image();
    let container = root.ok(&["create", "--name", "user", "keep:1", "true"]);
    let record = root.path().join("containers").join(&container).join("config.v2.json");
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, b"{ not json").unwrap();
    let err = refused(&root, &keep, &["rmi", "-f", "keep:1"], "config.v2.json");
    assert!(err.contains("no image is removed"), "{err}");
    std::fs::write(&record, &good).unwrap();

    // Its layer record, likewise: the stack it stands on is unknown, so nothing goes. (Layer
    // records never change once written, so an index that read this one keeps its good value:
    // the damage is seen by a store whose index has not read it yet.)
    std::fs::remove_dir_all(root.path().join("strata/index")).unwrap();
    let parent = root.path().join("image/overlay2/layerdb/mounts").join(&container).join("parent");
    let good = std::fs::read(&parent).unwrap();
    std::fs::write(&parent, b"sha256:not-a-chain").unwrap();
    root.ok(&["tag", "keep:1", "other:1"]);
    let before = state(&root);
    let err = root.fails(&["rmi", "-f", &keep.id()]);
    assert!(err.contains("parent"), "{err}");
    assert_same(&root, &before, "rmi with an unreadable layers record");
    std::fs::write(&parent, &good).unwrap();
    root.ok(&["rm", "user"]);
    root.ok(&["rmi", "other:1"]);
    assert_kept(&root, &keep);
}

#[test]
fn an_image_a_container_uses_is_not_removed() {
    let (root, keep) = root_with_kept_image();
    // A real container of it; its record is then edited to say it runs (rmi reads the record,
    // as dockerd's files would say it).
    let container = root.ok(&["create", "--name", "user", "keep:1", "true"]);
    let short = &container[..12];
    let path = root.path().join("containers").join(&container).join("config.v2.json");
    let write = |running: bool| {
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["State"]["Running"] = running.into();
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    };

    write(false);
    let err = refused(&root, &keep, &["rmi", "keep:1"], &format!("container {short} uses it"));
    assert!(err.contains("-f"), "{err}");
    refused(&root, &keep, &["rmi", &keep.id()], &format!("stopped container {short} uses it"));

    write(true);
    refused(&root, &keep, &["rmi", "keep:1"], &format!("container {short}"));
    refused(&root, &keep, &["rmi", "-f", "keep:1"], &format!("running container {short} uses it"));
    refused(&root, &keep, &["rmi", "-f", &keep.id()], &format!("running container {short} uses it"));

    // Stopped, -f removes the image; the container keeps its layers until it goes.
    write(false);
    root.ok(&["rmi", "-f", "keep:1"]);
    assert!(listed(&root).is_empty());
    assert_spotless(&root);
    root.ok(&["rm", "user"]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "");
    assert_spotless(&root);
}

#[test]
fn an_image_a_hand_made_layer_stands_on_is_not_removed() {
    let (root, keep) = root_with_kept_image();
    // A layer made with `layer create --parent` on the image's top layer, which no image or
    // container records: the image's layers cannot go, and nothing goes (before, its names
    // and stacks went, and the store was left damaged).
    let upper = upper_dir(&root, "keep:1");
    let top = upper.parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();
    let child = root.ok(&["layer", "create", "--parent", &top]);
    let err = refused(&root, &keep, &["rmi", "keep:1"], "child layer");
    assert!(err.contains(&top[..12]) || err.contains(&top), "{err}");
    root.ok(&["layer", "rm", child.trim()]);
    root.ok(&["rmi", "keep:1"]);
    assert!(listed(&root).is_empty());
    assert_eq!(root.ok(&["layer", "ls", "-q"]), "");
    assert_spotless(&root);
}

/// A header with a newline in its name, and a checksum field that is not a number.
fn header_with_newlines() -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..18].copy_from_slice(b"evil\nsecond line\nx");
    h[148..153].copy_from_slice(b"zz\nzz");
    h.extend_from_slice(&[0u8; 1024]);
    h
}

/// Run a load that must fail and change nothing; return its stderr, whatever its line count.
fn load_fails(root: &Root, keep: &TestImage, name: &str, bytes: &[u8], expect: &str) -> String {
    let path = put(root, name, bytes);
    let before = state(root);
    let out = root.strata(&["load", "-q", "-i", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{name} loaded");
    assert!(stderr.starts_with("strata: ") && stderr.contains(expect), "{name}: expected {expect:?} in {stderr:?}");
    assert_same(root, &before, name);
    assert_spotless(root);
    assert_kept(root, keep);
    stderr
}

#[test]
fn names_with_newlines_in_a_bad_archive_are_refused() {
    let (root, keep) = root_with_kept_image();

    // The archive itself is not a tar; the tar reader's message quotes the header's name.
    let stderr = load_fails(&root, &keep, "newlines.tar", &header_with_newlines(), "not an image archive");
    // One line, whatever the archive's names hold: control characters are shown escaped.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("evil"), "{stderr}");

    // A layer entry named "../evil\nsecond line", which climbs out of the layer.
    let evil = common::tarball::Tarball::new().with(common::tarball::file("../evil\nsecond line", "x")).bytes();
    let image = TestImage::new(vec![evil], &["/bin/sh"]);
    let stderr =
        load_fails(&root, &keep, "evil-name.tar", &docker_archive(&[(&image, &["evil:1"])]), "climbs out of the layer");
    // The same for a layer entry's name.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("../evil"), "{stderr}");

    // A layer whose header has a bad checksum field: that one is quoted as numbers, one line.
    let image = TestImage::new(vec![header_with_newlines()], &["/bin/sh"]);
    let archive = docker_archive(&[(&image, &["evil:1"])]);
    load_refused(&root, &keep, "bad-layer-header.tar", &archive, "bad layer archive: header error");
}
