//! Against the real peer: dockerd 20.10 (Debian's `docker.io`) on its own data root and socket.
//! strata reads what dockerd wrote, and writes what dockerd writes.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::dockerd::{DOCKERD, Dockerd};
use common::{Root, require_root, strata_cmd};

/// A small root filesystem tar: directories, files, a symlink, a nested tree.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let fs = dir.join("rootfs");
    for d in ["bin", "etc/conf.d", "usr/share/doc", "tmp"] {
        std::fs::create_dir_all(fs.join(d)).unwrap();
    }
    std::fs::copy("/bin/true", fs.join("bin/true")).unwrap();
    std::fs::write(fs.join("etc/os-release"), "NAME=strata-test\n").unwrap();
    std::fs::write(fs.join("etc/conf.d/a.conf"), "a=1\n").unwrap();
    std::fs::write(fs.join("usr/share/doc/README"), "docs\n").unwrap();
    std::os::unix::fs::symlink("/etc/os-release", fs.join("usr/os-release")).unwrap();
    let tar = dir.join("rootfs.tar");
    assert!(Command::new("tar").arg("-C").arg(&fs).arg("-cf").arg(&tar).arg(".").status().unwrap().success());
    tar
}

/// path → (kind, size, mode) for every entry under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn go(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let kind = if m.is_symlink() {
                "l"
            } else if m.is_dir() {
                "d"
            } else {
                "f"
            };
            let size = if m.is_file() { m.len() } else { 0 };
            out.insert(
                p.strip_prefix(base).unwrap().display().to_string(),
                format!("{kind} {size} {:o}", m.mode() & 0o7777),
            );
            if m.is_dir() {
                go(base, &p, out);
            }
        }
    }
    go(dir, dir, &mut out);
    out
}

/// The same, from `docker export`'s tar.
fn exported_tree(d: &Dockerd, container: &str, scratch: &Path) -> BTreeMap<String, String> {
    let tar = scratch.join("export.tar");
    d.docker(&["export", "-o", tar.to_str().unwrap(), container]);
    let out = scratch.join("export");
    std::fs::create_dir(&out).unwrap();
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&out)
            .arg("-xpf")
            .arg(&tar)
            .arg("--numeric-owner")
            .status()
            .unwrap()
            .success()
    );
    tree(&out)
}

#[test]
fn strata_reads_a_root_dockerd_wrote() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let Some(d) = Dockerd::start(root.path()) else { return };
    let scratch = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(scratch.path());
    d.docker(&["import", tar.to_str().unwrap(), "mini:base"]);
    let ctx = scratch.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("added"), "from a build step\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM mini:base\nCOPY added /opt/added\n").unwrap();
    d.docker(&["build", "-q", "-t", "mini:two", ctx.to_str().unwrap()]);
    let container = d.docker(&["create", "mini:two", "/bin/true"]);
    let container_gd: serde_json::Value =
        serde_json::from_str(&d.docker(&["inspect", "-f", "{{json .GraphDriver}}", &container])).unwrap();
    let image_gd: serde_json::Value =
        serde_json::from_str(&d.docker(&["image", "inspect", "-f", "{{json .GraphDriver}}", "mini:two"])).unwrap();
    let exported = exported_tree(&d, &container, scratch.path());
    drop(d);

    // `layer ls` lists every layer dockerd made: two image layers, the init layer, the container.
    let mut on_disk: Vec<String> = std::fs::read_dir(root.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "l" && n != ".strata-tmp")
        .collect();
    on_disk.sort();
    assert_eq!(on_disk.len(), 4, "{on_disk:?}");
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().collect::<Vec<_>>(), on_disk);

    // `layer inspect` equals docker's GraphDriver, for the container and the image.
    let dir_of = |gd: &serde_json::Value| {
        Path::new(gd["Data"]["UpperDir"].as_str().unwrap())
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let mount_id = dir_of(&container_gd);
    assert!(on_disk.contains(&format!("{mount_id}-init")));
    let ours: serde_json::Value = serde_json::from_str(&root.ok(&["layer", "inspect", &mount_id])).unwrap();
    assert_eq!(ours, container_gd);
    let ours: serde_json::Value = serde_json::from_str(&root.ok(&["layer", "inspect", &dir_of(&image_gd)])).unwrap();
    assert_eq!(ours, image_gd);

    // `layer mount` of the container layer shows the tree `docker export` shows.
    let merged = root.ok(&["layer", "mount", &mount_id]);
    let mounted = tree(Path::new(&merged));
    assert_eq!(mounted, exported);
    assert_eq!(std::fs::read_to_string(Path::new(&merged).join("opt/added")).unwrap(), "from a build step\n");
    root.ok(&["layer", "umount", &mount_id]);
    assert!(root.mounts().is_empty());
    let report = root.ok(&["check"]);
    assert!(report.ends_with("4 layer(s) checked, 0 finding(s): clean"), "{report}");
}

/// For each kind of layer (a base with a child, a middle layer, a leaf): its entries with
/// type, mode and the shape of the link/lower files.
fn layer_shapes(home: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let link_re = |s: &str| s.len() == 26 && s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    let mut shapes = BTreeMap::new();
    for e in std::fs::read_dir(home).unwrap() {
        let dir = e.unwrap().path();
        if dir.file_name().unwrap() == "l" || dir.file_name().unwrap() == ".strata-tmp" {
            continue;
        }
        let kind = match (dir.join("lower").exists(), dir.join("committed").exists()) {
            (false, true) => "base with a child",
            (true, true) => "middle",
            (true, false) => "leaf",
            (false, false) => "lone base",
        };
        let mut entries = Vec::new();
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            let content = match name.as_str() {
                "link" => format!("link26={}", link_re(&std::fs::read_to_string(&p).unwrap())),
                "lower" => {
                    let s = std::fs::read_to_string(&p).unwrap();
                    format!("lower-ok={}", s.split(':').all(|e| e.strip_prefix("l/").is_some_and(link_re)))
                }
                "committed" => format!("size={}", m.len()),
                _ => String::new(),
            };
            entries.push(format!(
                "{name} {} {:o} uid={} {content}",
                if m.is_dir() { "d" } else { "f" },
                m.permissions().mode() & 0o7777,
                m.uid()
            ));
        }
        entries.push(format!(". {:o}", std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777));
        entries.sort();
        shapes.insert(kind, entries);
    }
    shapes
}

#[test]
fn strata_writes_what_dockerd_writes() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    // dockerd: an image layer (base), the container's init layer (middle), the container (leaf).
    let docker_root = Root::new();
    let Some(d) = Dockerd::start(docker_root.path()) else { return };
    let scratch = tempfile::tempdir().unwrap();
    d.docker(&["import", rootfs_tar(scratch.path()).to_str().unwrap(), "mini:base"]);
    d.docker(&["create", "mini:base", "/bin/true"]);
    drop(d);

    // strata: the same three shapes.
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let middle = root.ok(&["layer", "create", "--parent", &base]);
    root.ok(&["layer", "create", "--parent", &middle]);

    let theirs = layer_shapes(&docker_root.home());
    let ours = layer_shapes(&root.home());
    assert_eq!(ours.keys().copied().collect::<Vec<_>>(), ["base with a child", "leaf", "middle"]);
    // dockerd's base diff holds the imported tree and takes the tar's root mode; compare the
    // rest entry for entry.
    assert_eq!(ours, theirs);
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(root.home()), mode(docker_root.home()));
    assert_eq!(mode(root.home().join("l")), mode(docker_root.home().join("l")));

    // And dockerd starts on the root strata wrote, and leaves its layers alone.
    let before = common::snapshot(&root.home());
    let Some(d) = Dockerd::start(root.path()) else { return };
    assert!(d.docker(&["info", "--format", "{{.Driver}}"]).contains("overlay2"));
    assert_eq!(d.docker(&["images", "-q"]), "");
    drop(d);
    assert_eq!(common::snapshot(&root.home()), before);
    let out = strata_cmd(root.path(), &["check"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
