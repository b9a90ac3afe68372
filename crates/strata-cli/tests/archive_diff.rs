//! Producing layer tarballs and listing changes: the tar of a layer's diff/, the same bytes
//! every time, read back to the same tree (property-tested), and `changes` as docker diff.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::tarball::{Tarball, file};
use common::{Root, snapshot};
use proptest::prelude::*;
use strata::archive::{ApplyOptions, Compression};
use strata::layer::{CreateOptions, LayerStore};
use strata::{Digest, LayerId, Store};

fn layers(root: &Root) -> LayerStore {
    Store::open(root.path()).unwrap().layers()
}

fn diff_bytes(layers: &LayerStore, id: &LayerId, c: Compression) -> (Vec<u8>, strata::archive::StreamDigests) {
    let mut bytes = Vec::new();
    let d = layers.diff(id, &mut bytes, c).unwrap();
    (bytes, d)
}

fn reapply(layers: &LayerStore, bytes: Vec<u8>) -> LayerId {
    let id = layers.create(&CreateOptions::default()).unwrap();
    layers.apply(&id, Cursor::new(bytes), &ApplyOptions::default()).unwrap();
    id
}

/// Entries of a tar, in order, as (type, name).
fn listing(bytes: &[u8]) -> Vec<(char, String)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (char::from(e.header().entry_type().as_byte()), String::from_utf8_lossy(&e.path_bytes()).into_owned())
        })
        .collect()
}

#[test]
fn diff_writes_whiteouts_in_tar_form_in_walk_order_and_the_same_bytes_every_time() {
    let root = Root::new();
    let layers = layers(&root);
    let base = reapply(
        &layers,
        Tarball::new().with(file("etc/old", "o")).with(file("gone", "g")).with(file("var/x", "x")).bytes(),
    );
    let top = layers.create(&CreateOptions { parent: Some(base), ..Default::default() }).unwrap();
    let m = layers.mount(&top).unwrap();
    fs::remove_file(m.join("gone")).unwrap();
    fs::remove_dir_all(m.join("etc")).unwrap();
    fs::create_dir(m.join("etc")).unwrap();
    fs::write(m.join("etc/new"), "n").unwrap();
    fs::write(m.join("b-file"), "b").unwrap();
    fs::hard_link(m.join("b-file"), m.join("c-link")).unwrap();
    std::os::unix::fs::symlink("/etc/new", m.join("a-symlink")).unwrap();
    layers.unmount(&top).unwrap();

    let (tar, digests) = diff_bytes(&layers, &top, Compression::None);
    assert_eq!(digests.diff_id.digest(), Digest::of(&tar));
    assert_eq!(
        listing(&tar),
        [
            ('2', "a-symlink".into()),
            ('0', "b-file".into()),
            ('1', "c-link".into()),
            ('5', "etc/".into()),
            ('0', "etc/.wh..wh..opq".into()),
            ('0', "etc/new".into()),
            ('0', ".wh.gone".into()),
        ]
    );
    let mut a = tar::Archive::new(&tar[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert!(h.username_bytes().is_none_or(|u| u.is_empty()), "no user names, as dockerd");
        if e.path_bytes().as_ref() == b".wh.gone" {
            assert_eq!(h.mode().unwrap(), 0o600);
            assert_eq!(h.size().unwrap(), 0);
        }
    }
    // Deterministic: again, and compressed, the tar is the same.
    assert_eq!(diff_bytes(&layers, &top, Compression::None).0, tar);
    let (gz, gd) = diff_bytes(&layers, &top, Compression::Gzip);
    assert_eq!(gd.diff_id, digests.diff_id);
    assert_eq!(gd.compressed, Digest::of(&gz));
    let (_, zd) = diff_bytes(&layers, &top, Compression::Zstd);
    assert_eq!(zd.diff_id, digests.diff_id);

    // Read back, the tree is the same, whiteouts and opaque directory included.
    let again = reapply(&layers, gz);
    assert_eq!(snapshot(&layers.diff_dir(&again)), snapshot(&layers.diff_dir(&top)));
    assert_eq!(diff_bytes(&layers, &again, Compression::None).1.diff_id, digests.diff_id);
}

#[test]
fn changes_list_what_docker_diff_lists() {
    let root = Root::new();
    let layers = layers(&root);
    let base = reapply(
        &layers,
        Tarball::new()
            .with(file("etc/a", "a"))
            .with(file("etc/conf/b", "b"))
            .with(file("etc/same", "s"))
            .with(file("var/lib/x/c", "c"))
            .with(file("usr/bin/tool", "t"))
            .with(file("opt/keep", "k"))
            .bytes(),
    );
    let top = layers.create(&CreateOptions { parent: Some(base.clone()), ..Default::default() }).unwrap();
    let m = layers.mount(&top).unwrap();
    fs::write(m.join("etc/a"), "changed").unwrap();
    fs::write(m.join("etc/new"), "new").unwrap();
    fs::remove_dir_all(m.join("var/lib/x")).unwrap();
    fs::set_permissions(m.join("usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_dir_all(m.join("etc/conf")).unwrap();
    fs::create_dir(m.join("etc/conf")).unwrap();
    fs::write(m.join("etc/conf/z"), "z").unwrap();
    fs::create_dir_all(m.join("new/dir")).unwrap();
    // Copied up but unchanged (same size and mtime): not a change.
    let same = fs::metadata(m.join("etc/same")).unwrap();
    let f = fs::OpenOptions::new().write(true).open(m.join("etc/same")).unwrap();
    f.set_modified(same.modified().unwrap()).unwrap();
    layers.unmount(&top).unwrap();

    let lines: Vec<String> = layers.changes(&top).unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        lines,
        [
            "C /etc",
            "C /etc/a",
            "C /etc/conf",
            "D /etc/conf/b",
            "A /etc/conf/z",
            "A /etc/new",
            "A /new",
            "A /new/dir",
            "C /usr",
            "C /usr/bin",
            "C /usr/bin/tool",
            "C /var",
            "C /var/lib",
            "D /var/lib/x",
        ]
    );
    assert!(layers.info(&base).unwrap().mounts == 0, "the parent is unmounted again");
    assert_eq!(layers.size(&top).unwrap(), "changed".len() as u64 + 3 + 1 + 1 + 1, "files in diff/, each once");
    // A base layer: everything is added.
    let all: Vec<String> = layers.changes(&base).unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(all.first().map(String::as_str), Some("A /etc"));
    assert!(all.iter().all(|l| l.starts_with("A ")));
}

/// A random layer tree: files (modes, owners, times, xattrs), directories, symlinks, hard
/// links, fifos, devices, whiteouts and opaque directories.
#[derive(Debug, Clone)]
enum Node {
    File { content: Vec<u8>, mode: u32, uid: u32, mtime: i64, xattr: Option<Vec<u8>> },
    Dir { mode: u32, opaque: bool, children: BTreeMap<String, Node> },
    Symlink(String),
    HardLinkToFirstFile,
    Fifo,
    Device(u32, u32),
    Whiteout,
}

fn node(depth: u32) -> BoxedStrategy<Node> {
    let leaf = prop_oneof![
        4 => (proptest::collection::vec(any::<u8>(), 0..300), prop_oneof![Just(0o644u32), Just(0o755), Just(0o4755), Just(0o600), Just(0o2711)], 0u32..3000, 0i64..2_000_000_000, proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)))
            .prop_map(|(content, mode, uid, mtime, xattr)| Node::File { content, mode, uid, mtime, xattr }),
        1 => "[a-z./]{1,40}".prop_map(Node::Symlink),
        1 => Just(Node::HardLinkToFirstFile),
        1 => Just(Node::Fifo),
        1 => (1u32..10, 0u32..300).prop_map(|(a, b)| Node::Device(a, b)),
        1 => Just(Node::Whiteout),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => (prop_oneof![Just(0o755u32), Just(0o1777), Just(0o700)], any::<bool>(), proptest::collection::btree_map("[a-zA-Z0-9_-]{1,12}|[a-z]{90,120}", node(depth - 1), 0..6))
            .prop_map(|(mode, opaque, children)| Node::Dir { mode, opaque, children }),
    ]
    .boxed()
}

fn build(dir: &Path, children: &BTreeMap<String, Node>, first_file: &mut Option<std::path::PathBuf>) {
    for (name, n) in children {
        let p = dir.join(name);
        match n {
            Node::File { content, mode, uid, mtime, xattr } => {
                fs::write(&p, content).unwrap();
                std::os::unix::fs::lchown(&p, Some(*uid), Some(*uid / 2)).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
                if let Some(x) = xattr {
                    xattr_set(&p, "user.prop", x);
                }
                set_mtime(&p, *mtime);
                first_file.get_or_insert(p);
            }
            Node::Dir { mode, opaque, children } => {
                fs::create_dir(&p).unwrap();
                build(&p, children, first_file);
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
                if *opaque {
                    xattr_set(&p, "trusted.overlay.opaque", b"y");
                }
            }
            Node::Symlink(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
            Node::HardLinkToFirstFile => match first_file {
                Some(f) => fs::hard_link(f.clone(), &p).unwrap(),
                None => fs::write(&p, b"no file yet").unwrap(),
            },
            Node::Fifo => mknod(&p, "p", 0, 0),
            Node::Device(a, b) => mknod(&p, "c", *a, *b),
            Node::Whiteout => mknod(&p, "c", 0, 0),
        }
    }
}

fn mknod(p: &Path, kind: &str, a: u32, b: u32) {
    let mut cmd = std::process::Command::new("mknod");
    // A whiteout as the kernel makes it: mode 0000 (a tar cannot carry a whiteout's mode).
    if kind == "c" && a == 0 && b == 0 {
        cmd.args(["-m", "0"]);
    }
    cmd.arg(p).arg(kind);
    if kind != "p" {
        cmd.arg(a.to_string()).arg(b.to_string());
    }
    assert!(cmd.status().unwrap().success());
}

fn xattr_set(p: &Path, name: &str, value: &[u8]) {
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    let ok = std::process::Command::new("setfattr").args(["-h", "-n", name, "-v", &format!("0x{hex}")]).arg(p).status();
    assert!(ok.unwrap().success(), "setfattr {name} on {}", p.display());
}

fn set_mtime(p: &Path, t: i64) {
    let ok = std::process::Command::new("touch").args(["-h", "-d", &format!("@{t}")]).arg(p).status();
    assert!(ok.unwrap().success());
}

/// What must survive a round trip: type, mode, owner, content, link target, device,
/// opaque-ness, user xattrs, and mtimes of everything but directories written into.
fn essence(dir: &Path) -> BTreeMap<String, String> {
    snapshot(dir)
        .into_iter()
        .map(|(p, s)| {
            let full = dir.join(&p);
            let m = fs::symlink_metadata(&full).unwrap();
            let x = strata::host::xattr(&full, "user.prop").map(|v| format!("{v:?}")).unwrap_or_default();
            let t = if m.is_dir() { String::new() } else { format!(" mtime={}", m.mtime()) };
            (p.display().to_string(), format!("{s} xattr={x}{t} nlink={}", if m.is_dir() { 0 } else { m.nlink() }))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_survive_diff_then_apply(children in proptest::collection::btree_map("[a-z]{1,8}", node(3), 1..12)) {
        let root = Root::new();
        let layers = layers(&root);
        let id = layers.create(&CreateOptions::default()).unwrap();
        build(&layers.diff_dir(&id), &children, &mut None);
        let (bytes, d1) = diff_bytes(&layers, &id, Compression::Gzip);
        let copy = reapply(&layers, bytes);
        prop_assert_eq!(essence(&layers.diff_dir(&copy)), essence(&layers.diff_dir(&id)));
        let (_, d2) = diff_bytes(&layers, &copy, Compression::None);
        prop_assert_eq!(d1.diff_id, d2.diff_id, "the copy gives the same diffID");
    }
}
