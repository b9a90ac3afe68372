//! Layer archives against the real dockerd 20.10: the same tarball gives the same tree,
//! `layer changes` equals `docker diff`, and strata's layer tars load into dockerd.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::tarball::{E, Tarball, dir, file, gzip, hardlink, symlink};
use strata::archive::{ApplyOptions, Compression};
use strata::layer::{CreateOptions, LayerStore};
use strata::{Digest, Store};

fn layers(root: &Path) -> LayerStore {
    Store::open(root).unwrap().layers()
}

/// A layer tarball with most of what real layers carry.
fn rich_layer() -> Vec<u8> {
    let long_dir = format!("usr/share/{}", "long".repeat(30));
    let long = format!("{long_dir}/{}", "name".repeat(30));
    let mut t = Tarball::new().with(E { mode: 0o700, uid: 5, mtime: 1_500_000_000, ..dir("./") });
    // Every directory is listed, so every mtime comes from the archive, not from the clock.
    for d in ["dev/", "etc/", "home/", "home/user/", "run/", "usr/", "usr/lib/", "usr/share/", "var/"] {
        t.add(&dir(d));
    }
    t.add(&dir(&format!("{long_dir}/")));
    t.with(dir("bin/"))
        .with(E { mode: 0o4755, mtime: 1_500_000_001, ..file("bin/su", "su binary") })
        .with(E { uid: 1000, gid: 1000, mode: 0o640, ..file("home/user/.profile", "export A=1\n") })
        .with(symlink("bin/sh", "/bin/busybox"))
        .with(symlink("lib", "usr/lib"))
        .with(file("usr/lib/libc.so", "libc"))
        .with(hardlink("usr/lib/libc.so.6", "usr/lib/libc.so"))
        .with(E { mode: 0o1777, ..dir("tmp/") })
        .with(E { mode: 0o666, dev: (1, 3), ..E::new(b'3', "dev/null") })
        .with(E::new(b'6', "run/initctl"))
        .with(E { xattrs: vec![("user.test".into(), b"value".to_vec())], ..file("etc/with-xattr", "x") })
        .with(file(&long, "deep and long"))
        .with(file("etc/.wh.removed", ""))
        .with(dir("var/cache/"))
        .with(file("var/cache/.wh..wh..opq", ""))
        .with(file("var/cache/fresh", "f"))
        .bytes()
}

/// type, mode, owner, content or target or device, opaque and user xattr, and mtime (for all
/// but whiteouts, whose time dockerd does not keep) of everything under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    common::snapshot(dir)
        .into_iter()
        .map(|(p, s)| {
            let full = dir.join(&p);
            let m = fs::symlink_metadata(&full).unwrap();
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            let t = if whiteout { String::new() } else { format!(" mtime={}", m.mtime()) };
            let x = strata::host::xattr(&full, "user.test")
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            (
                p.display().to_string(),
                format!("{s} user.test={x:?}{t} nlink={}", if m.is_dir() { 0 } else { m.nlink() }),
            )
        })
        .collect()
}

/// A `docker save` archive of one image made of `layers` (each a tar, compressed or not).
fn docker_save(tag: &str, layers: &[(Vec<u8>, strata::DiffId)]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let layer_names: Vec<String> = (0..layers.len()).map(|i| format!("layer{i}/layer.tar")).collect();
    let manifest =
        serde_json::to_vec(&serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]))
            .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&config_name, &config);
    for (name, (bytes, _)) in layer_names.iter().zip(layers) {
        add(name, bytes);
    }
    add("manifest.json", &manifest);
    b.into_inner().unwrap()
}

fn load(d: &Dockerd, scratch: &Path, save: Vec<u8>) {
    let path = scratch.join("save.tar");
    fs::write(&path, save).unwrap();
    d.docker(&["load", "-q", "-i", path.to_str().unwrap()]);
}

#[test]
fn the_same_tarball_gives_the_same_tree_as_docker_load() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let docker_root = Root::new();
    let Some(d) = Dockerd::start(docker_root.path()) else { return };
    let scratch = tempfile::tempdir().unwrap();
    let tar = rich_layer();
    load(&d, scratch.path(), docker_save("rich:1", &[(gzip(&tar), strata::DiffId::of_tar(Digest::of(&tar)))]));
    let upper = PathBuf::from(d.docker(&["image", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "rich:1"]));
    let diff_ids = d.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "rich:1"]);

    let root = Root::new();
    let layers = layers(root.path());
    let id = layers.create(&CreateOptions::default()).unwrap();
    let applied = layers.apply(&id, Cursor::new(gzip(&tar)), &ApplyOptions::default()).unwrap();
    assert_eq!(diff_ids, format!("[\"{}\"]", applied.stream.diff_id));
    assert_eq!(tree(&layers.diff_dir(&id)), tree(&upper));
    let root_meta = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.mode(), m.uid(), m.gid())
    };
    assert_eq!(root_meta(&layers.diff_dir(&id)), root_meta(&upper), "both skip the ./ entry");
    // dockerd records the same size as strata computes.
    let size_file = fs::read_dir(docker_root.path().join("image/overlay2/layerdb/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("size");
    assert_eq!(fs::read_to_string(size_file).unwrap(), applied.layer_size.to_string());
}

#[test]
fn layer_changes_equal_docker_diff() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let Some(d) = Dockerd::start(root.path()) else { return };
    let scratch = tempfile::tempdir().unwrap();
    let base = Tarball::new()
        .with(file("etc/a", "a"))
        .with(file("etc/conf/b", "b"))
        .with(file("etc/conf/c", "c"))
        .with(file("etc/same", "same"))
        .with(file("var/lib/x/y/z", "z"))
        .with(E { mode: 0o755, ..file("usr/bin/tool", "t") })
        .with(file("usr/bin/other", "o"))
        .with(file("opt/file-to-dir", "f"))
        .with(symlink("opt/link", "/etc/a"))
        .with(dir("srv/"))
        .bytes();
    let tar_path = scratch.path().join("base.tar");
    fs::write(&tar_path, &base).unwrap();
    d.docker(&["import", tar_path.to_str().unwrap(), "base:1"]);
    let container = d.docker(&["create", "base:1", "/bin/true"]);
    let upper = PathBuf::from(d.docker(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", &container]));
    let mount_id = upper.parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();

    // The scripted changes, through strata's mount of dockerd's own container layer.
    let merged = PathBuf::from(root.ok(&["layer", "mount", &mount_id]));
    let m = |p: &str| merged.join(p);
    fs::write(m("etc/a"), "changed").unwrap();
    fs::write(m("etc/new"), "new").unwrap();
    fs::remove_file(m("etc/conf/b")).unwrap();
    fs::remove_dir_all(m("var/lib/x")).unwrap();
    fs::set_permissions(m("usr/bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(m("usr/bin/other"), Some(1), Some(1)).unwrap();
    fs::rename(m("etc/conf/c"), m("etc/c-moved")).unwrap();
    fs::remove_file(m("opt/file-to-dir")).unwrap();
    fs::create_dir(m("opt/file-to-dir")).unwrap();
    fs::write(m("opt/file-to-dir/inner"), "i").unwrap();
    fs::remove_file(m("opt/link")).unwrap();
    std::os::unix::fs::symlink("/etc/new", m("opt/link")).unwrap();
    fs::create_dir_all(m("new/deep/dir")).unwrap();
    fs::hard_link(m("etc/new"), m("srv/hard")).unwrap();
    let same = fs::metadata(m("etc/same")).unwrap();
    fs::OpenOptions::new().write(true).open(m("etc/same")).unwrap().set_modified(same.modified().unwrap()).unwrap();
    root.ok(&["layer", "umount", &mount_id]);

    let mut theirs: Vec<String> = d.docker(&["diff", &container]).lines().map(str::to_owned).collect();
    let mut ours: Vec<String> = root.ok(&["layer", "changes", &mount_id]).lines().map(str::to_owned).collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
    assert!(ours.len() > 15, "{ours:?}");
}

#[test]
fn a_layer_strata_produced_loads_into_dockerd() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let layers = layers(root.path());
    let base = layers.create(&CreateOptions::default()).unwrap();
    layers.apply(&base, Cursor::new(rich_layer()), &ApplyOptions::default()).unwrap();
    let top = layers.create(&CreateOptions { parent: Some(base.clone()), ..Default::default() }).unwrap();
    let m = layers.mount(&top).unwrap();
    fs::write(m.join("etc/added"), "by strata").unwrap();
    fs::remove_file(m.join("usr/lib/libc.so")).unwrap();
    fs::remove_dir_all(m.join("var/cache")).unwrap();
    fs::create_dir(m.join("var/cache")).unwrap();
    layers.unmount(&top).unwrap();
    let mut produced = Vec::new();
    for (id, c) in [(&base, Compression::Gzip), (&top, Compression::Zstd)] {
        let mut bytes = Vec::new();
        let digests = layers.diff(id, &mut bytes, c).unwrap();
        produced.push((bytes, digests.diff_id));
    }
    // dockerd 20.10 reads gzip layers; give it the zstd one uncompressed.
    produced[1].0 = zstd::decode_all(&produced[1].0[..]).unwrap();

    let docker_root = Root::new();
    let Some(d) = Dockerd::start(docker_root.path()) else { return };
    let scratch = tempfile::tempdir().unwrap();
    load(&d, scratch.path(), docker_save("from-strata:1", &produced));
    let diff_ids = d.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "from-strata:1"]);
    assert_eq!(diff_ids, format!("[\"{}\",\"{}\"]", produced[0].1, produced[1].1));
    let container = d.docker(&["create", "from-strata:1"]);
    let export = scratch.path().join("export.tar");
    d.docker(&["export", "-o", export.to_str().unwrap(), &container]);
    let out = scratch.path().join("out");
    fs::create_dir(&out).unwrap();
    assert!(std::process::Command::new("tar").arg("-C").arg(&out).arg("-xpf").arg(&export).status().unwrap().success());
    assert_eq!(fs::read_to_string(out.join("etc/added")).unwrap(), "by strata");
    assert!(!out.join("usr/lib/libc.so").exists());
    assert_eq!(fs::read_to_string(out.join("usr/lib/libc.so.6")).unwrap(), "libc");
    assert_eq!(fs::read_dir(out.join("var/cache")).unwrap().count(), 0, "the opaque directory hides the lower one");
    assert_eq!(fs::read_link(out.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
}
