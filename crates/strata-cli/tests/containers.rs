//! Containers end to end with the real binary, real OverlayFS mounts and real runc/crun:
//! `create`'s on-disk layout (dockerd 20.10's, see /work/notes/dockerd-containers), `run`/`start`
//! and their flags and exit statuses, `ps`, copy-on-write seen from the image's layer and from
//! the container's, `diff`, `commit`, `mount`/`umount`, `export`, `rm`, and a container whose
//! image was removed under it.
//!
//! Tests that need real programs (`id`, `env`, `hostname`, `mv`, …) use a Debian bookworm
//! minbase image (`debian_rootfs`, imported once per test); the others use a tiny image made
//! of this host's binaries, which imports in a blink.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};

use common::Root;
use common::images::{debian_rootfs, host_rootfs};
use serde_json::Value;

/// Programs the host image gets on top of `host_rootfs`'s (`sh`, `cat`, `ls`, `true`).
const HOST_PROGRAMS: &[&str] = &["/usr/bin/sleep", "/usr/bin/rm", "/usr/bin/mkdir", "/usr/bin/touch"];

/// The default `PATH` dockerd (and strata) give a container whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a command ended: its exit status and what it wrote.
#[derive(Debug)]
struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Run `strata --root <root> args…` whatever its status.
fn strata(root: &Root, args: &[&str]) -> Outcome {
    let out = root.strata(args);
    Outcome {
        status: out.status.code().expect("strata exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run and expect exit status `status` with exactly one line on stderr; return that line.
fn fails_with(root: &Root, status: i32, args: &[&str]) -> String {
    let out = strata(root, args);
    assert_eq!(out.status, status, "strata {args:?}: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "strata {args:?}: expected one line on stderr: {out:?}");
    out.stderr.trim_end().to_owned()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Copy `bin` and the libraries `ldd` names into the root filesystem at `dir`.
fn add_program(dir: &Path, bin: &str) {
    let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
    let libs = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let files = std::iter::once(bin).chain(libs.split_whitespace().filter(|w| w.starts_with('/')));
    for file in files {
        let target = dir.join(file.trim_start_matches('/'));
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(file, &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Import the host image as `img:1` (`CMD ["/bin/sh"]`); returns its ID.
fn host_image(root: &Root) -> String {
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    for bin in HOST_PROGRAMS {
        add_program(dir.path(), bin);
    }
    root.ok(&["import", dir.path().to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#])
}

/// Import the Debian rootfs as `deb:1` (`CMD ["/bin/bash"]`), as the classic walkthrough does; returns its ID.
fn debian_image(root: &Root) -> String {
    root.ok(&["import", debian_rootfs().to_str().unwrap(), "deb:1", "-c", r#"CMD ["/bin/bash"]"#])
}

/// `inspect NAME`'s one object.
fn inspect(root: &Root, name: &str) -> Value {
    let all = json(&root.ok(&["inspect", name]));
    assert_eq!(all.as_array().unwrap().len(), 1);
    all[0].clone()
}

/// A directory named in `inspect`'s `GraphDriver.Data` (`UpperDir`, `MergedDir`, …).
fn graph_dir(root: &Root, name: &str, key: &str) -> PathBuf {
    PathBuf::from(inspect(root, name)["GraphDriver"]["Data"][key].as_str().unwrap())
}

/// A container's full ID.
fn container_id(root: &Root, name: &str) -> String {
    inspect(root, name)["Id"].as_str().unwrap().to_owned()
}

/// `layerdb/mounts/<id>/`: (mount-id, init-id, parent), as written (no newline).
fn mount_record(root: &Root, id: &str) -> (String, String, String) {
    let dir = root.path().join("image/overlay2/layerdb/mounts").join(id);
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
    (read("mount-id"), read("init-id"), read("parent"))
}

/// `diff C` as lines.
fn diff(root: &Root, container: &str) -> Vec<String> {
    root.ok(&["diff", container]).lines().map(str::to_owned).collect()
}

/// `ps -a --format json`, the row of the container named `name` (`None` if it is not listed).
fn ps_row(root: &Root, all: bool, name: &str) -> Option<Value> {
    let args: &[&str] = if all { &["ps", "-a", "--format", "json"] } else { &["ps", "--format", "json"] };
    let rows = json(&root.ok(args));
    let slash = format!("/{name}");
    rows.as_array().unwrap().iter().find(|r| r["Names"][0] == slash.as_str()).cloned()
}

/// Permission bits.
fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Every path under `dir`, relative.
fn tree(dir: &Path) -> BTreeSet<String> {
    common::snapshot(dir).into_keys().map(|p| p.to_string_lossy().into_owned()).collect()
}

/// The entries under `<root>/overlay2` (layer directories and `l`).
fn overlay2_entries(root: &Root) -> BTreeSet<String> {
    // strata's scratch directory (`.strata-tmp`) is not a layer.
    fs::read_dir(root.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".strata-tmp")
        .collect()
}

/// Whether `path` is an overlay whiteout: a 0/0 character device.
fn is_whiteout(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_char_device() && strata::host::device_numbers(m.rdev()) == (0, 0))
}

/// A tar's entries: name (no `./`, no trailing `/`) → (type, content).
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, (tar::EntryType, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.insert(name, (entry.header().entry_type(), data));
    }
    out
}

/// The only overlay mount under the root is `merged`.
fn assert_mounted(root: &Root, merged: &Path) {
    assert_eq!(root.mounts(), vec![merged.to_path_buf()], "the mounts under the root");
}

fn assert_unmounted(root: &Root) {
    assert_eq!(root.mounts(), Vec::<PathBuf>::new(), "overlay mounts left under the root");
}

/// `strata run --name NAME ARGS…` in the background, with its stdout piped; if the test gives
/// up first, the container is removed with `rm -f` (which kills it) and strata killed.
struct Background {
    child: Child,
    stdout: BufReader<ChildStdout>,
    root: PathBuf,
    name: String,
}

impl Background {
    fn spawn(root: &Root, name: &str, args: &[&str]) -> Background {
        let mut child = common::strata_cmd(root.path(), &[&["run", "--name", name], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Background { child, stdout, root: root.path().to_owned(), name: name.to_owned() }
    }

    /// The next line the container writes.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn wait(&mut self) -> i32 {
        self.child.wait().unwrap().code().expect("strata exited, not killed")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = common::strata_cmd(&self.root, &["rm", "-f", &self.name]).output();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A script that says it is up, then waits (sleeping) until `/tmp/go` exists and exits 4.
const WAIT_FOR_GO: &str = "echo up; until [ -e /tmp/go ]; do sleep 0.05; done; exit 4";

// ---------------------------------------------------------------------------------------------

/// The classic container walkthrough on Debian: run, inspect, diff, commit, history, the new layer's files.
#[test]
fn the_hello_world_walkthrough_on_debian() {
    let root = Root::new();
    let base = debian_image(&root);
    let base_layer = graph_dir(&root, "deb:1", "UpperDir");

    let out = strata(&root, &["run", "--name", "walk", "deb:1", "sh", "-c", r#"echo "Hello World" > /tmp/newfile"#]);
    assert_eq!((out.status, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{out:?}");
    assert_unmounted(&root);

    // inspect: the -init layer between the image's layer and the writable one.
    let id = container_id(&root, "walk");
    let (mount_id, init_id, parent) = mount_record(&root, &id);
    assert_eq!(init_id, format!("{mount_id}-init"));
    let base_rootfs = inspect(&root, "deb:1")["RootFS"]["Layers"].clone();
    assert_eq!(parent, base_rootfs[0].as_str().unwrap(), "a one-layer image's chainID is its diffID");
    let data = inspect(&root, "walk")["GraphDriver"]["Data"].clone();
    let home = root.home();
    let init_diff = home.join(format!("{mount_id}-init/diff"));
    assert_eq!(data["LowerDir"], format!("{}:{}", init_diff.display(), base_layer.display()));
    assert_eq!(data["UpperDir"], home.join(&mount_id).join("diff").to_str().unwrap());
    assert_eq!(data["WorkDir"], home.join(&mount_id).join("work").to_str().unwrap());
    assert_eq!(data["MergedDir"], home.join(&mount_id).join("merged").to_str().unwrap());
    assert_eq!(inspect(&root, "walk")["Image"], base.as_str());

    // The init layer over Debian (which has /proc, /sys, /dev/pts, /dev/shm) is dockerd's.
    let expect: BTreeSet<String> =
        [".dockerenv", "dev", "dev/console", "etc", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf"]
            .map(String::from)
            .into();
    assert_eq!(tree(&init_diff), expect);

    // diff: the changed /tmp and the new file, nothing from the init layer.
    assert_eq!(diff(&root, "walk"), ["C /tmp", "A /tmp/newfile"]);
    let changes = json(&root.ok(&["diff", "walk", "--format", "json"]));
    assert_eq!(changes, serde_json::json!([{"Kind": 0, "Path": "/tmp"}, {"Kind": 1, "Path": "/tmp/newfile"}]));

    // commit, then history: the new 12-byte row on top of the imported one.
    let hello = root.ok(&["commit", "walk", "hello:1"]);
    assert!(hello.starts_with("sha256:") && hello.len() == 71, "{hello}");
    let table = root.ok(&["history", "hello:1"]);
    let rows: Vec<Vec<&str>> =
        table.lines().skip(1).map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0][0], &hello[7..19], "{table}");
    assert!(rows[0][2].starts_with(r#"sh -c echo "Hello World""#), "{table}");
    assert_eq!(rows[0][3], "12B", "{table}");
    assert_eq!(rows[1][0], &base[7..19], "{table}");
    let history = json(&root.ok(&["history", "--format", "json", "hello:1"]));
    assert_eq!(history[0]["CreatedBy"], r#"sh -c echo "Hello World" > /tmp/newfile"#);
    assert_eq!(history[0]["Size"], 12);

    // The new image: the base's layers plus one, its own layer holding exactly tmp/newfile.
    let image = inspect(&root, "hello:1");
    assert_eq!(image["Id"], hello.as_str());
    assert_eq!(image["Parent"], base.as_str());
    assert_eq!(image["Container"], id.as_str());
    let layers = image["RootFS"]["Layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base_rootfs[0]);
    assert_eq!(image["GraphDriver"]["Data"]["LowerDir"], base_layer.to_str().unwrap());
    let new_layer = graph_dir(&root, "hello:1", "UpperDir");
    assert_eq!(tree(&new_layer), BTreeSet::from(["tmp".to_owned(), "tmp/newfile".to_owned()]));
    assert_eq!(fs::read_to_string(new_layer.join("tmp/newfile")).unwrap(), "Hello World\n");
    assert_eq!(mode(&new_layer.join("tmp")), 0o1777, "/tmp keeps its sticky bit");

    // The image runs and has the file.
    let out = strata(&root, &["run", "--rm", "hello:1", "cat", "/tmp/newfile"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "Hello World\n"), "{out:?}");

    // The same changes give the same layer: a second commit reuses it.
    let before = overlay2_entries(&root);
    let again = root.ok(&["commit", "walk", "hello:2"]);
    assert_ne!(again, hello, "a new image (its created time differs)");
    let again_layers = inspect(&root, "hello:2")["RootFS"]["Layers"].clone();
    assert_eq!(again_layers.as_array().unwrap().last(), layers.last(), "the same diffID");
    assert_eq!(graph_dir(&root, "hello:2", "UpperDir"), new_layer, "the same layer directory");
    assert_eq!(overlay2_entries(&root), before, "no new layer directory");
    root.ok(&["check"]);
    assert_unmounted(&root);
}

/// What a container writes lands in its writable layer, never in the image's; deletions are
/// whiteouts, a recreated directory is opaque; diff, commit and a run of the committed image
/// agree.
#[test]
fn copy_on_write_seen_from_the_image_and_from_the_container() {
    let root = Root::new();
    debian_image(&root);
    let image = graph_dir(&root, "deb:1", "UpperDir");
    let image_etc = common::snapshot(&image.join("etc"));
    let issue = fs::read(image.join("etc/issue")).unwrap();
    let debian_version = fs::read(image.join("etc/debian_version")).unwrap();
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(image.join(dir)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let skel = names("etc/skel");
    let apt_conf = names("etc/apt/apt.conf.d");
    assert!(!skel.is_empty() && !apt_conf.is_empty());
    assert!(!image.join("srv/new").exists());

    let long = "L".repeat(255);
    let script = format!(
        "set -e
         echo appended >> /etc/issue
         rm /etc/default/hwclock
         rm -rf /etc/skel; mkdir /etc/skel; echo fresh > /etc/skel/fresh
         mv /etc/debian_version /etc/debian_version.moved
         mv /etc/apt/apt.conf.d /etc/apt/conf
         mkdir /srv/new; echo data > /srv/new/a; ln /srv/new/a /srv/new/hard; ln -s /etc/issue /srv/new/link
         ln /etc/issue.net /srv/issue-hard
         touch /srv/new/{long}
         cat /etc/issue"
    );
    let out = strata(&root, &["run", "--name", "cow", "deb:1", "sh", "-c", &script]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout.as_bytes(), [issue.as_slice(), b"appended\n"].concat(), "the container sees its write");

    // The image's layer is untouched.
    assert_eq!(common::snapshot(&image.join("etc")), image_etc, "the image's /etc changed");
    assert_eq!(fs::read(image.join("etc/issue")).unwrap(), issue);
    assert!(!image.join("srv/new").exists());

    // The writable layer: copy-ups, whiteouts, an opaque directory, links, a long name.
    let upper = graph_dir(&root, "cow", "UpperDir");
    assert_eq!(fs::read(upper.join("etc/issue")).unwrap(), [issue.as_slice(), b"appended\n"].concat());
    assert!(is_whiteout(&upper.join("etc/default/hwclock")), "a deleted file is a 0/0 char device");
    assert!(is_whiteout(&upper.join("etc/debian_version")), "a renamed file leaves a whiteout");
    assert_eq!(fs::read(upper.join("etc/debian_version.moved")).unwrap(), debian_version);
    assert!(is_whiteout(&upper.join("etc/apt/apt.conf.d")), "a renamed directory leaves a whiteout");
    assert_eq!(tree(&upper.join("etc/apt/conf")), apt_conf.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(strata::host::xattr(&upper.join("etc/skel"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(tree(&upper.join("etc/skel")), BTreeSet::from(["fresh".to_owned()]));
    assert_eq!(strata::host::xattr(&upper.join("etc/default"), "trusted.overlay.opaque"), None);
    let (a, hard) = (fs::metadata(upper.join("srv/new/a")).unwrap(), fs::metadata(upper.join("srv/new/hard")).unwrap());
    assert_eq!((a.ino(), a.nlink()), (hard.ino(), 2), "a hard link stays one inode");
    let (net, net_hard) =
        (fs::metadata(upper.join("etc/issue.net")).unwrap(), fs::metadata(upper.join("srv/issue-hard")).unwrap());
    assert_eq!(net.ino(), net_hard.ino(), "linking an image file copies it up, then links the copy");
    assert_eq!(fs::read_link(upper.join("srv/new/link")).unwrap(), Path::new("/etc/issue"));
    assert!(upper.join("srv/new").join(&long).is_file(), "a 255-byte name");

    // diff: exactly these, sorted by path.
    let mut expect: Vec<(char, String)> = vec![
        ('C', "/etc".into()),
        ('C', "/etc/apt".into()),
        ('D', "/etc/apt/apt.conf.d".into()),
        ('A', "/etc/apt/conf".into()),
        ('D', "/etc/debian_version".into()),
        ('A', "/etc/debian_version.moved".into()),
        ('C', "/etc/default".into()),
        ('D', "/etc/default/hwclock".into()),
        ('C', "/etc/issue".into()),
        ('C', "/etc/skel".into()),
        ('A', "/etc/skel/fresh".into()),
        ('C', "/srv".into()),
        ('A', "/srv/issue-hard".into()),
        ('A', "/srv/new".into()),
        ('A', format!("/srv/new/{long}")),
        ('A', "/srv/new/a".into()),
        ('A', "/srv/new/hard".into()),
        ('A', "/srv/new/link".into()),
    ];
    expect.extend(apt_conf.iter().map(|n| ('A', format!("/etc/apt/conf/{n}"))));
    expect.extend(skel.iter().map(|n| ('D', format!("/etc/skel/{n}"))));
    expect.sort_by(|a, b| Path::new(&a.1).cmp(Path::new(&b.1)));
    let expect: Vec<String> = expect.iter().map(|(k, p)| format!("{k} {p}")).collect();
    assert_eq!(diff(&root, "cow"), expect);

    // An xattr set from the host on the merged tree (minbase has no setfattr) is copied up.
    let merged = PathBuf::from(root.ok(&["mount", "cow"]));
    assert_eq!(merged, graph_dir(&root, "cow", "MergedDir"));
    for file in ["etc/host.conf", "srv/new/a"] {
        rustix::fs::lsetxattr(merged.join(file), "user.strata", b"on", rustix::fs::XattrFlags::empty()).unwrap();
    }
    root.ok(&["umount", "cow"]);
    assert_unmounted(&root);
    assert_eq!(strata::host::xattr(&upper.join("etc/host.conf"), "user.strata").as_deref(), Some(&b"on"[..]));
    assert_eq!(strata::host::xattr(&image.join("etc/host.conf"), "user.strata"), None, "the image's copy too");

    // commit: the new layer holds the same tree, and the image runs as the container left it.
    root.ok(&["commit", "cow", "cow:1"]);
    let layer = graph_dir(&root, "cow:1", "UpperDir");
    assert!(is_whiteout(&layer.join("etc/default/hwclock")));
    assert!(is_whiteout(&layer.join("etc/apt/apt.conf.d")));
    assert_eq!(strata::host::xattr(&layer.join("etc/skel"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(strata::host::xattr(&layer.join("etc/host.conf"), "user.strata").as_deref(), Some(&b"on"[..]));
    assert_eq!(strata::host::xattr(&layer.join("srv/new/a"), "user.strata").as_deref(), Some(&b"on"[..]));
    let (a, hard) = (fs::metadata(layer.join("srv/new/a")).unwrap(), fs::metadata(layer.join("srv/new/hard")).unwrap());
    assert_eq!(a.ino(), hard.ino());
    assert!(layer.join("srv/new").join(&long).is_file());
    let check = "cat /etc/issue; ls -A /etc/skel; ls /etc/default; ls /etc/apt; \
                 test -e /etc/debian_version || echo no-debian_version; cat /srv/new/hard; readlink /srv/new/link";
    let out = strata(&root, &["run", "--rm", "cow:1", "sh", "-c", check]);
    assert_eq!(out.status, 0, "{out:?}");
    let default: Vec<String> = names("etc/default").into_iter().filter(|n| n != "hwclock").collect();
    let mut apt: Vec<String> =
        names("etc/apt").into_iter().map(|n| if n == "apt.conf.d" { "conf".into() } else { n }).collect();
    apt.sort();
    let expect = format!(
        "{}appended\nfresh\n{}\n{}\nno-debian_version\ndata\n/etc/issue\n",
        String::from_utf8_lossy(&issue),
        default.join("\n"),
        apt.join("\n")
    );
    assert_eq!(out.stdout, expect);
    assert_eq!(fs::read(image.join("etc/issue")).unwrap(), issue, "still untouched");
    assert_unmounted(&root);
}

/// `create` writes dockerd's records and layers; `ps` and `start` follow the container's life.
#[test]
fn create_writes_dockerds_layout_and_start_records_the_exit() {
    let root = Root::new();
    let image = host_image(&root);
    let image_layer = graph_dir(&root, "img:1", "UpperDir");
    let chain = inspect(&root, "img:1")["RootFS"]["Layers"][0].as_str().unwrap().to_owned();

    let id = root.ok(&["create", "--name", "c1", "img:1", "sh", "-c", "echo started; exit 3"]);
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(container_id(&root, "c1"), id);

    // containers/<id>/: the records with dockerd's modes; nothing of a run yet.
    let dir = root.path().join("containers").join(&id);
    assert_eq!(mode(&root.path().join("containers")), 0o710);
    assert_eq!(mode(&dir), 0o710);
    let entries: BTreeSet<String> = tree(&dir);
    assert_eq!(entries, ["checkpoints", "config.v2.json", "hostconfig.json"].map(String::from).into());
    assert_eq!(mode(&dir.join("config.v2.json")), 0o600);
    assert_eq!(mode(&dir.join("hostconfig.json")), 0o644);
    assert_eq!(mode(&dir.join("checkpoints")), 0o700);
    let raw = fs::read_to_string(dir.join("config.v2.json")).unwrap();
    assert!(raw.ends_with("}\n"), "dockerd ends its records with a newline");
    let config = json(&raw);
    assert_eq!(config["ID"], id.as_str());
    assert_eq!(config["Name"], "/c1");
    assert_eq!(config["Image"], image.as_str());
    assert_eq!(config["Path"], "sh");
    assert_eq!(config["Args"], serde_json::json!(["-c", "echo started; exit 3"]));
    assert_eq!(config["Driver"], "overlay2");
    assert_eq!(config["Config"]["Hostname"], &id[..12]);
    assert_eq!(config["Config"]["Image"], "img:1");
    assert_eq!(config["State"]["Running"], false);
    let host = json(&fs::read_to_string(dir.join("hostconfig.json")).unwrap());
    assert_eq!(host["NetworkMode"], "none");
    assert_eq!(host["Runtime"], "runc");
    assert_eq!(host["AutoRemove"], false);

    // layerdb/mounts/<id>/: three 0644 files without newlines.
    let mounts = root.path().join("image/overlay2/layerdb/mounts").join(&id);
    for f in ["mount-id", "init-id", "parent"] {
        assert_eq!(mode(&mounts.join(f)), 0o644, "{f}");
    }
    let (mount_id, init_id, parent) = mount_record(&root, &id);
    assert!(mount_id.len() == 64 && mount_id.bytes().all(|b| b.is_ascii_hexdigit()), "{mount_id:?}");
    assert_eq!(init_id, format!("{mount_id}-init"));
    assert_eq!(parent, chain);

    // The init layer: dockerd's files (empty, 0755), mtab, and the mount points this image lacks.
    let init = root.home().join(&init_id);
    let init_diff = init.join("diff");
    let expect = [
        ".dockerenv",
        "dev",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "etc",
        "etc/hostname",
        "etc/hosts",
        "etc/mtab",
        "etc/resolv.conf",
        "proc",
        "sys",
    ];
    assert_eq!(tree(&init_diff), expect.map(String::from).into());
    for name in expect.iter().filter(|n| **n != "etc/mtab") {
        let path = init_diff.join(name);
        assert_eq!(mode(&path), 0o755, "{name}");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name}");
        if meta.is_file() {
            assert_eq!(meta.len(), 0, "{name} is empty");
        }
    }
    assert_eq!(fs::read_link(init_diff.join("etc/mtab")).unwrap(), Path::new("/proc/mounts"));
    assert_eq!(fs::read(init.join("committed")).unwrap(), b"", "the init layer is committed");

    // The writable layer: empty, on the init layer and the image's layer.
    let rw = root.home().join(&mount_id);
    assert_eq!(tree(&rw.join("diff")), BTreeSet::new());
    assert!(!rw.join("committed").exists());
    let link = |layer: &Path| fs::read_to_string(layer.join("link")).unwrap();
    let image_dir = image_layer.parent().unwrap();
    assert_eq!(fs::read_to_string(rw.join("lower")).unwrap(), format!("l/{}:l/{}", link(&init), link(image_dir)));
    for layer in [&init, &rw] {
        let target = fs::read_link(root.home().join("l").join(link(layer))).unwrap();
        assert_eq!(target, Path::new("..").join(layer.file_name().unwrap()).join("diff"));
    }

    // ps: Created, and only with -a.
    let row = ps_row(&root, true, "c1").expect("ps -a lists it");
    assert_eq!(row["Id"], id.as_str());
    assert_eq!(row["Image"], "img:1");
    assert_eq!(row["ImageID"], image.as_str());
    assert_eq!(row["State"], "created");
    assert_eq!(row["Status"], "Created");
    assert_eq!(ps_row(&root, false, "c1"), None);
    let table = root.ok(&["ps", "-a"]);
    let line = table.lines().find(|l| l.ends_with(" c1")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.starts_with(&id[..12]) && line.contains("   Created   "), "{table}");
    assert_eq!(root.ok(&["ps"]).lines().count(), 1, "only the header");
    assert_eq!(root.ok(&["ps", "-a", "-q"]), &id[..12]);
    assert_eq!(root.ok(&["ps", "-a", "-q", "--no-trunc"]), id);
    assert_eq!(root.ok(&["ps", "-q"]), "");

    // start: in the foreground, with the command's output and status.
    let out = strata(&root, &["start", "-a", "c1"]);
    assert_eq!((out.status, out.stdout.as_str(), out.stderr.as_str()), (3, "started\n", ""), "{out:?}");
    assert_unmounted(&root);
    let row = ps_row(&root, true, "c1").unwrap();
    assert_eq!(row["State"], "exited");
    assert!(row["Status"].as_str().unwrap().starts_with("Exited (3) "), "{row}");
    assert!(root.ok(&["ps", "-a"]).contains("Exited (3) "));
    assert_eq!(ps_row(&root, false, "c1"), None);
    let state = inspect(&root, "c1")["State"].clone();
    assert_eq!(
        (state["Status"].as_str(), state["ExitCode"].as_i64(), state["Running"].as_bool()),
        (Some("exited"), Some(3), Some(false))
    );

    // After a start: the container's own hostname, hosts and resolv.conf.
    assert_eq!(fs::read_to_string(dir.join("hostname")).unwrap(), format!("{}\n", &id[..12]));
    for f in ["hostname", "hosts", "resolv.conf"] {
        assert_eq!(mode(&dir.join(f)), 0o644, "{f}");
    }
    assert!(fs::read_to_string(dir.join("hosts")).unwrap().starts_with("127.0.0.1\tlocalhost\n"));
    assert_eq!(inspect(&root, "c1")["HostnamePath"], dir.join("hostname").to_str().unwrap());

    // It starts again, by ID prefix too.
    let out = strata(&root, &["start", "-a", &id[..8]]);
    assert_eq!((out.status, out.stdout.as_str()), (3, "started\n"), "{out:?}");
    assert_eq!(tree(&rw.join("diff")), BTreeSet::new(), "echo changed nothing");
    assert_unmounted(&root);

    // Nothing changed: an empty diff, and commit makes an image with no new layer (dockerd's
    // empty_layer step), with the message, author and changes given.
    assert_eq!(diff(&root, "c1"), Vec::<String>::new());
    let committed =
        root.ok(&["commit", "c1", "same:1", "-m", "my msg", "-a", "me <me@example.org>", "-c", r#"CMD ["true"]"#]);
    let new = inspect(&root, "same:1");
    assert_eq!(new["Id"], committed.as_str());
    assert_eq!(new["RootFS"]["Layers"], inspect(&root, "img:1")["RootFS"]["Layers"]);
    assert_eq!(new["Author"], "me <me@example.org>");
    assert_eq!(new["Config"]["Cmd"], serde_json::json!(["true"]));
    assert_eq!(new["Parent"], image.as_str());
    let history = json(&root.ok(&["history", "--format", "json", "same:1"]));
    assert_eq!(history[0]["CreatedBy"], "sh -c echo started; exit 3");
    assert_eq!((history[0]["Size"].as_u64(), history[0]["Comment"].as_str()), (Some(0), Some("my msg")));
    let out = strata(&root, &["run", "--rm", "same:1"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "the committed CMD runs: {out:?}");
    assert_unmounted(&root);
    root.ok(&["check"]);
}

/// `ps` without `-a` shows a container while (and only while) it runs.
#[test]
fn ps_shows_running_containers_until_they_exit() {
    let root = Root::new();
    host_image(&root);
    let mut live = Background::spawn(&root, "live", &["img:1", "sh", "-c", WAIT_FOR_GO]);
    assert_eq!(live.line(), "up");

    let row = ps_row(&root, false, "live").expect("ps lists a running container");
    assert_eq!(row["State"], "running");
    assert!(row["Status"].as_str().unwrap().starts_with("Up "), "{row}");
    assert_eq!(ps_row(&root, true, "live").unwrap()["State"], "running");
    let table = root.ok(&["ps"]);
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("   Up ") && l.ends_with(" live")), "{table}");
    let merged = graph_dir(&root, "live", "MergedDir");
    assert_mounted(&root, &merged);
    assert_eq!(inspect(&root, "live")["State"]["Running"], true);

    // While it runs: no second start, no rm without -f.
    let error = fails_with(&root, 125, &["start", "-a", "live"]);
    assert!(error.contains("already running"), "{error}");
    let error = root.fails(&["rm", "live"]);
    assert!(error.contains("running"), "{error}");

    fs::write(merged.join("tmp/go"), "").unwrap();
    assert_eq!(live.wait(), 4);
    assert_eq!(ps_row(&root, false, "live"), None);
    assert!(ps_row(&root, true, "live").unwrap()["Status"].as_str().unwrap().starts_with("Exited (4) "));
    assert_eq!(inspect(&root, "live")["State"]["Running"], false);
    assert_unmounted(&root);
    assert_eq!(diff(&root, "live"), ["C /tmp", "A /tmp/go"]);
}

/// `run`'s flags reach the process: env, workdir, user, entrypoint, hostname, network; its
/// status and streams pass through; `--rm` leaves nothing.
#[test]
fn run_flags_reach_the_process_on_debian() {
    let root = Root::new();
    debian_image(&root);
    let run = |args: &[&str]| -> Outcome {
        let out = strata(&root, &[&["run", "--rm"], args].concat());
        assert_unmounted(&root);
        out
    };
    let ok = |args: &[&str]| -> String {
        let out = run(args);
        assert_eq!((out.status, out.stderr.as_str()), (0, ""), "{args:?}: {out:?}");
        out.stdout
    };

    // The environment: dockerd's three defaults, plus -e.
    let env = ok(&["deb:1", "env"]);
    let vars: BTreeMap<&str, &str> = env.lines().map(|l| l.split_once('=').unwrap()).collect();
    assert_eq!(vars.keys().copied().collect::<Vec<_>>(), ["HOME", "HOSTNAME", "PATH"], "{env}");
    assert_eq!(format!("PATH={}", vars["PATH"]), DEFAULT_PATH);
    assert_eq!(vars["HOME"], "/root");
    assert!(vars["HOSTNAME"].len() == 12 && vars["HOSTNAME"].bytes().all(|b| b.is_ascii_hexdigit()), "{env}");
    let env = ok(&["-e", "A=1", "-e", "B=two words", "deb:1", "env"]);
    assert!(env.lines().any(|l| l == "A=1") && env.lines().any(|l| l == "B=two words"), "{env}");
    assert!(env.lines().any(|l| l == DEFAULT_PATH), "{env}");

    // Working directory, user, entrypoint.
    assert_eq!(ok(&["-w", "/tmp", "deb:1", "pwd"]), "/tmp\n");
    assert_eq!(ok(&["-u", "nobody", "deb:1", "id"]), "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n");
    assert_eq!(ok(&["-u", "nobody", "deb:1", "sh", "-c", "echo $HOME"]), "/nonexistent\n");
    assert_eq!(ok(&["-u", "1234:5678", "deb:1", "id"]), "uid=1234 gid=5678 groups=5678\n");
    assert_eq!(ok(&["--entrypoint", "/bin/echo", "deb:1", "hi", "there"]), "hi there\n");

    // The hostname is the short ID, in the UTS namespace and in /etc/hostname.
    let out =
        strata(&root, &["run", "--name", "hn", "deb:1", "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME"]);
    assert_eq!(out.status, 0, "{out:?}");
    let short = &container_id(&root, "hn")[..12];
    assert_eq!(out.stdout, format!("{short}\n{short}\n{short}\n"));
    assert_unmounted(&root);

    // Network: only loopback by default; the host's interfaces with --network host.
    let interfaces = |dev: &str| -> BTreeSet<String> {
        dev.lines().skip(2).map(|l| l.split(':').next().unwrap().trim().to_owned()).collect()
    };
    let none = interfaces(&ok(&["deb:1", "cat", "/proc/net/dev"]));
    assert_eq!(none, BTreeSet::from(["lo".to_owned()]));
    assert_eq!(interfaces(&ok(&["--network", "none", "deb:1", "cat", "/proc/net/dev"])), none);
    let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    assert_eq!(interfaces(&ok(&["--network", "host", "deb:1", "cat", "/proc/net/dev"])), host);

    // Status and streams pass through, separately.
    let out = run(&["deb:1", "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!((out.status, out.stdout.as_str(), out.stderr.as_str()), (3, "to-out\n", "to-err\n"));

    // --rm leaves no container, no layer and no mount; the named run above is all there is.
    let layers = overlay2_entries(&root);
    let containers = tree(&root.path().join("containers"));
    ok(&["deb:1", "sh", "-c", "echo x > /tmp/x"]);
    assert_eq!(overlay2_entries(&root), layers);
    assert_eq!(tree(&root.path().join("containers")), containers);
    let rows = json(&root.ok(&["ps", "-a", "--format", "json"]));
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["Names"][0], "/hn");
    root.ok(&["check"]);
}

/// Exit statuses as docker gives them: 127 for a missing command, 126 for one that cannot
/// run, 125 for anything else; each with one line on stderr and nothing left with `--rm`.
#[test]
fn run_fails_as_docker_does() {
    let root = Root::new();
    host_image(&root);
    let layers = overlay2_entries(&root);

    let error = fails_with(&root, 127, &["run", "--rm", "img:1", "nosuchcmd"]);
    assert!(error.contains("nosuchcmd") && error.contains("not found"), "{error}");
    let error = fails_with(&root, 127, &["run", "--rm", "img:1", "/no/such/path"]);
    assert!(error.contains("/no/such/path"), "{error}");
    let error = fails_with(&root, 126, &["run", "--rm", "img:1", "/etc/os-release"]);
    assert!(error.contains("/etc/os-release"), "{error}");
    fails_with(&root, 126, &["run", "--rm", "img:1", "/etc"]);
    let error = fails_with(&root, 125, &["run", "--rm", "--runtime", "no-such-runtime", "img:1", "true"]);
    assert!(error.contains("no-such-runtime"), "{error}");
    let error = fails_with(&root, 125, &["run", "--rm", "no-such-image:1", "true"]);
    assert!(error.contains("no-such-image"), "{error}");
    let error = fails_with(&root, 125, &["run", "--rm", "-u", "nosuchuser", "img:1", "true"]);
    assert!(error.contains("nosuchuser"), "{error}");
    assert_eq!(overlay2_entries(&root), layers, "failed --rm runs leave no layers");
    assert_eq!(tree(&root.path().join("containers")), BTreeSet::new());
    assert_unmounted(&root);

    // Without --rm, a container that could not start stays Created, with the status recorded
    // (as dockerd leaves it).
    root.ok(&["create", "--name", "bad1", "img:1", "nosuchcmd"]);
    fails_with(&root, 127, &["start", "-a", "bad1"]);
    let row = ps_row(&root, true, "bad1").unwrap();
    assert_eq!((row["State"].as_str(), row["Status"].as_str()), (Some("created"), Some("Created")));
    assert_eq!(inspect(&root, "bad1")["State"]["ExitCode"], 127);
    assert_unmounted(&root);

    // Names: docker's rules, and one container per name.
    let error = root.fails(&["create", "--name", "bad1", "img:1", "true"]);
    assert!(error.contains("already in use"), "{error}");
    root.fails(&["create", "--name", "w", "img:1", "true"]);
    root.fails(&["create", "--name", "a/b", "img:1", "true"]);
    // An image without a command needs one given.
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    root.ok(&["import", dir.path().to_str().unwrap(), "nocmd:1"]);
    let error = root.fails(&["create", "nocmd:1"]);
    assert!(error.contains("no command"), "{error}");
    assert_eq!(root.ok(&["ps", "-a", "-q"]).lines().count(), 1, "only bad1");
    root.ok(&["check"]);
}

/// An unknown `-u` user is the user's error, not a container named after the user.
#[test]
fn an_unknown_user_is_not_called_a_container() {
    let root = Root::new();
    host_image(&root);
    let error = fails_with(&root, 125, &["run", "--rm", "-u", "nosuchuser", "img:1", "true"]);
    assert!(error.contains(r#"no user "nosuchuser""#), "{error}");
    assert!(!error.contains("container nosuchuser"), "{error}");
}

/// crun runs the same command with the same output as runc, and a container remembers its
/// runtime for `start`.
#[test]
fn crun_runs_containers_as_runc_does() {
    let root = Root::new();
    host_image(&root);
    let script = "ls /; cat /etc/os-release; ls /etc; echo to-err >&2; echo ${#HOSTNAME}; exit 7";
    let runc = strata(&root, &["run", "--rm", "--runtime", "runc", "img:1", "sh", "-c", script]);
    let crun = strata(&root, &["run", "--rm", "--runtime", "crun", "img:1", "sh", "-c", script]);
    assert_eq!(runc.status, 7, "{runc:?}");
    assert_eq!((crun.status, &crun.stdout, &crun.stderr), (7, &runc.stdout, &runc.stderr), "crun: {crun:?}");
    assert_unmounted(&root);

    root.ok(&["create", "--name", "cr", "--runtime", "crun", "img:1", "sh", "-c", "echo by-crun > /tmp/f; cat /tmp/f"]);
    assert_eq!(inspect(&root, "cr")["HostConfig"]["Runtime"], "crun");
    let out = strata(&root, &["start", "-a", "cr"]);
    assert_eq!((out.status, out.stdout.as_str(), out.stderr.as_str()), (0, "by-crun\n", ""), "{out:?}");
    assert!(root.path().join("strata/runtime/crun").is_dir());
    assert_eq!(diff(&root, "cr"), ["C /tmp", "A /tmp/f"]);
    assert_unmounted(&root);

    // A running crun container: ps sees it, rm -f kills it.
    let mut live = Background::spawn(&root, "live", &["--runtime", "crun", "img:1", "sh", "-c", WAIT_FOR_GO]);
    assert_eq!(live.line(), "up");
    assert_eq!(ps_row(&root, false, "live").unwrap()["State"], "running");
    assert_eq!(root.ok(&["rm", "-f", "live"]), "live");
    assert_eq!(live.wait(), 128 + 9);
    root.ok(&["rm", "cr"]);
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert_unmounted(&root);
    root.ok(&["check"]);
}

/// `mount` shows the image's files and the container's; `umount` drops the mount; `export`
/// writes the whole tree as one tar, without whiteouts.
#[test]
fn mount_shows_the_tree_and_export_writes_it() {
    let root = Root::new();
    host_image(&root);
    let image_layer = graph_dir(&root, "img:1", "UpperDir");
    let out = strata(
        &root,
        &[
            "run",
            "--name",
            "c1",
            "img:1",
            "sh",
            "-c",
            "echo new > /new; mkdir /tmp/d; echo in-d > /tmp/d/f; rm /etc/os-release",
        ],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(diff(&root, "c1"), ["C /etc", "D /etc/os-release", "A /new", "C /tmp", "A /tmp/d", "A /tmp/d/f"]);

    let merged = PathBuf::from(root.ok(&["mount", "c1"]));
    assert_eq!(merged, graph_dir(&root, "c1", "MergedDir"));
    assert_mounted(&root, &merged);
    let seen = tree(&merged);
    for name in tree(&image_layer).iter().filter(|n| *n != "etc/os-release") {
        assert!(seen.contains(name), "the image's {name} is missing from the merged tree");
    }
    for name in [".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console", "proc", "sys"]
    {
        assert!(seen.contains(name), "the init layer's {name} is missing");
    }
    assert_eq!(fs::read_to_string(merged.join("new")).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(merged.join("tmp/d/f")).unwrap(), "in-d\n");
    assert!(!merged.join("etc/os-release").exists(), "deleted in the container");
    assert!(image_layer.join("etc/os-release").exists(), "but not in the image");

    // A write through the mount is the container's change.
    fs::write(merged.join("tmp/from-host"), "host\n").unwrap();
    assert!(diff(&root, "c1").contains(&"A /tmp/from-host".to_owned()));

    // Mounts are counted: a second mount needs a second umount.
    assert_eq!(PathBuf::from(root.ok(&["mount", "c1"])), merged);
    root.ok(&["umount", "c1"]);
    assert_mounted(&root, &merged);

    // export while mounted leaves the mount as it was.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c1.tar");
    root.ok(&["export", "c1", "-o", file.to_str().unwrap()]);
    assert_mounted(&root, &merged);
    root.ok(&["umount", "c1"]);
    assert_unmounted(&root);
    assert!(!merged.join("new").exists(), "unmounted");
    root.fails(&["umount", "c1"]);

    let entries = tar_entries(&fs::read(&file).unwrap());
    assert_eq!(entries[".dockerenv"].0, tar::EntryType::Regular);
    assert_eq!(entries["etc/hostname"].0, tar::EntryType::Regular);
    assert_eq!(entries["new"].1, b"new\n");
    assert_eq!(entries["tmp/d/f"].1, b"in-d\n");
    assert_eq!(entries["tmp/from-host"].1, b"host\n");
    assert_eq!(entries["bin/sh"].1, fs::read("/bin/sh").unwrap(), "the image's files, whole");
    assert_eq!(entries["etc/mtab"].0, tar::EntryType::Symlink);
    assert!(!entries.contains_key("etc/os-release"), "a deleted file is not exported");
    assert!(entries.keys().all(|n| !n.contains(".wh.")), "no whiteouts: {:?}", entries.keys());
    let names: BTreeSet<String> = entries.keys().filter(|n| !n.is_empty() && *n != ".").cloned().collect();
    let mut expect = tree(&image_layer);
    expect.remove("etc/os-release");
    for n in [".dockerenv", "dev", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts", "etc/mtab"] {
        expect.insert(n.into());
    }
    for n in ["etc/resolv.conf", "proc", "sys", "new", "tmp/d", "tmp/d/f", "tmp/from-host"] {
        expect.insert(n.into());
    }
    assert_eq!(names, expect);

    // To stdout, the same tree.
    let out = root.strata(&["export", "c1"]);
    assert!(out.status.success());
    let piped = tar_entries(&out.stdout);
    assert_eq!(piped.keys().collect::<Vec<_>>(), entries.keys().collect::<Vec<_>>());
    assert_unmounted(&root);
}

/// `rm` takes the container's records and both its layers (and their `l/` links), never the
/// image's; it refuses a running or mounted container without `-f`.
#[test]
fn rm_removes_the_container_and_only_its_layers() {
    let root = Root::new();
    host_image(&root);
    let image_layers = overlay2_entries(&root);
    let image_links = tree(&root.home().join("l"));
    let image_layer = graph_dir(&root, "img:1", "UpperDir");
    let image_before = common::snapshot(&image_layer);

    let id = root.ok(&["create", "--name", "c1", "img:1", "sh", "-c", "echo x > /tmp/x"]);
    assert_eq!(strata(&root, &["start", "-a", "c1"]).status, 0);
    let (mount_id, init_id, _) = mount_record(&root, &id);
    let links: Vec<String> =
        [&mount_id, &init_id].iter().map(|l| fs::read_to_string(root.home().join(l).join("link")).unwrap()).collect();
    assert!(links.iter().all(|l| root.home().join("l").join(l).exists()));
    assert!(root.path().join("strata/containers").join(&id).exists());

    assert_eq!(root.ok(&["rm", "c1"]), "c1");
    assert!(!root.path().join("containers").join(&id).exists());
    assert!(!root.path().join("image/overlay2/layerdb/mounts").join(&id).exists());
    assert!(!root.path().join("strata/containers").join(&id).exists());
    assert_eq!(overlay2_entries(&root), image_layers, "both container layers gone, the image's kept");
    assert_eq!(tree(&root.home().join("l")), image_links);
    assert_eq!(common::snapshot(&image_layer), image_before);
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    root.fails(&["rm", "c1"]);
    assert!(root.ok(&["check"]).ends_with("clean"));
    let out = strata(&root, &["run", "--rm", "img:1", "cat", "/etc/os-release"]);
    assert_eq!(out.status, 0, "the image still runs: {out:?}");

    // Several at once, by name and by ID prefix.
    let a = root.ok(&["create", "--name", "aa", "img:1", "true"]);
    root.ok(&["create", "--name", "bb", "img:1", "true"]);
    assert_eq!(root.ok(&["rm", &a[..10], "bb"]), format!("{}\nbb", &a[..10]));

    // A mounted container needs -f, which unmounts it.
    root.ok(&["create", "--name", "held", "img:1", "true"]);
    root.ok(&["mount", "held"]);
    let error = root.fails(&["rm", "held"]);
    assert!(error.contains("mounted"), "{error}");
    assert_eq!(root.mounts().len(), 1);
    root.ok(&["rm", "-f", "held"]);
    assert_unmounted(&root);

    // A running one too: -f kills it.
    let mut live = Background::spawn(&root, "live", &["img:1", "sh", "-c", WAIT_FOR_GO]);
    assert_eq!(live.line(), "up");
    root.fails(&["rm", "live"]);
    assert_eq!(root.ok(&["rm", "-f", "live"]), "live");
    assert_eq!(live.wait(), 128 + 9, "killed");
    assert_unmounted(&root);

    assert_eq!(overlay2_entries(&root), image_layers);
    assert_eq!(tree(&root.home().join("l")), image_links);
    assert_eq!(tree(&root.path().join("containers")), BTreeSet::new());
    assert_eq!(tree(&root.path().join("image/overlay2/layerdb/mounts")), BTreeSet::new());
    assert!(root.ok(&["check"]).ends_with("clean"));
}

/// As with docker, `rmi -f` takes an image from under a stopped container: the container keeps
/// its layers, still runs and can be diffed and exported, but not committed.
#[test]
fn a_container_outlives_its_force_removed_image() {
    let root = Root::new();
    let image = host_image(&root);
    let image_layer = graph_dir(&root, "img:1", "UpperDir");
    let id = root.ok(&["create", "--name", "orphan", "img:1", "sh", "-c", "echo ran; echo x > /tmp/x"]);

    let error = root.fails(&["rmi", "img:1"]);
    assert!(error.contains(&id[..12]), "names the container: {error}");
    let removed = root.ok(&["rmi", "-f", "img:1"]);
    assert!(removed.contains("Untagged: img:1") && removed.contains(&format!("Deleted: {image}")), "{removed}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    root.fails(&["inspect", "img:1"]);
    assert!(image_layer.is_dir(), "the container still stands on the image's layer");
    assert!(root.ok(&["check"]).ends_with("clean"));

    let out = strata(&root, &["start", "-a", "orphan"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "ran\n"), "{out:?}");
    assert_unmounted(&root);
    let row = ps_row(&root, true, "orphan").expect("ps -a lists it");
    assert!(row["Status"].as_str().unwrap().starts_with("Exited (0) "), "{row}");
    assert_eq!(row["ImageID"], image.as_str());
    assert_eq!(diff(&root, "orphan"), ["C /tmp", "A /tmp/x"]);
    let out = root.strata(&["export", "orphan"]);
    assert!(out.status.success());
    assert_eq!(tar_entries(&out.stdout)["tmp/x"].1, b"x\n");
    let error = root.fails(&["commit", "orphan", "saved:1"]);
    assert!(error.contains("orphan") && error.contains("removed"), "{error}");
    assert_eq!(root.ok(&["images", "-q"]), "", "a failed commit makes no image");
    root.fails(&["create", "img:1", "true"]);

    assert_eq!(root.ok(&["rm", "orphan"]), "orphan");
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert!(root.ok(&["check"]).ends_with("clean"));
    assert_unmounted(&root);
}

/// An image that a commit was built on cannot be removed by ID while the commit stands, as
/// with docker ("image has dependent child images"); nothing changes.
#[test]
fn an_image_with_a_child_stays_until_the_child_goes() {
    let root = Root::new();
    let image = host_image(&root);
    root.ok(&["create", "--name", "parent-of", "img:1", "true"]);
    let child = root.ok(&["commit", "parent-of", "child:1"]);
    root.ok(&["rm", "parent-of"]);
    let before = common::snapshot(&root.path().join("image"));
    let error = root.fails(&["rmi", &image]);
    assert!(error.contains("built on it") && error.contains(&child[7..19]), "{error}");
    assert_eq!(common::snapshot(&root.path().join("image")), before);
    root.ok(&["rmi", "child:1"]);
    let removed = root.ok(&["rmi", &image]);
    assert!(removed.contains(&format!("Deleted: {image}")), "{removed}");
    assert!(root.ok(&["check"]).ends_with("clean"));
}

/// Removing the last container on a force-removed image frees the image's layers, as dockerd's
/// `ReleaseRWLayer` releases the parent chain.
#[test]
fn the_last_container_of_a_force_removed_image_takes_its_layers() {
    let root = Root::new();
    host_image(&root);
    let chain = inspect(&root, "img:1")["RootFS"]["Layers"][0].as_str().unwrap().to_owned();
    root.ok(&["create", "--name", "orphan", "img:1", "true"]);
    root.ok(&["rmi", "-f", "img:1"]);
    root.ok(&["rm", "orphan"]);
    let layerdb = root.path().join("image/overlay2/layerdb/sha256");
    assert!(!layerdb.join(&chain[7..]).exists(), "the layerdb entry of {chain} is left");
    assert_eq!(overlay2_entries(&root), BTreeSet::from(["l".to_owned()]), "layer directories left");
    assert_eq!(tree(&root.home().join("l")), BTreeSet::new(), "l/ links left");
    assert!(root.ok(&["check"]).ends_with("clean"));
}

/// `ps` names the image as dockerd does: by its ID once the name it was created from no longer
/// names that image.
#[test]
fn ps_names_the_image_by_id_once_the_name_is_gone() {
    let root = Root::new();
    let image = host_image(&root);
    root.ok(&["create", "--name", "c1", "img:1", "true"]);
    assert_eq!(ps_row(&root, true, "c1").unwrap()["Image"], "img:1");
    root.ok(&["rmi", "-f", "img:1"]);
    assert_eq!(ps_row(&root, true, "c1").unwrap()["Image"], image.as_str());
}

/// `ps` shows the command as dockerd does: arguments with spaces in single quotes.
#[test]
fn ps_quotes_arguments_with_spaces() {
    let root = Root::new();
    host_image(&root);
    root.ok(&["create", "--name", "c1", "img:1", "sh", "-c", "echo hi"]);
    assert_eq!(ps_row(&root, true, "c1").unwrap()["Command"], "sh -c 'echo hi'");
    assert!(root.ok(&["ps", "-a"]).contains(r#""sh -c 'echo hi'""#));
}

/// `inspect` of a committed image shows the commit message as its `Comment`, as dockerd does
/// (the config has no top-level comment; dockerd falls back to the last history entry's).
#[test]
fn a_commit_message_is_the_images_comment() {
    let root = Root::new();
    host_image(&root);
    root.ok(&["create", "--name", "c1", "img:1", "true"]);
    root.ok(&["commit", "-m", "my msg", "c1", "msg:1"]);
    let history = json(&root.ok(&["history", "--format", "json", "msg:1"]));
    assert_eq!(history[0]["Comment"], "my msg");
    assert_eq!(inspect(&root, "msg:1")["Comment"], "my msg");
}
