//! `strata cp` with the real binary: both ways, running and stopped containers, `-` for tar
//! streams, `-a`, `-L`; and a breakout corpus — symlinks in the container pointing at a
//! directory of the host (absolute, and through `..` chains), a tar whose entries climb out
//! or write through a symlink they made — after each of which that host directory is byte for
//! byte as it was.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::Root;
use common::images::{copy_with_libs, host_rootfs};

fn image(root: &Root) {
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    copy_with_libs(dir.path(), Path::new("/usr/bin/sleep"));
    root.ok(&["import", dir.path().to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
}

/// A tree with what copies must keep: owners, modes, a hard link, a symlink, an empty
/// directory, a file named like a whiteout.
fn payload(dir: &Path, victim: &Path) {
    std::fs::create_dir_all(dir.join("sub/empty")).unwrap();
    std::fs::write(dir.join("f"), "file\n").unwrap();
    std::fs::write(dir.join("sub/g"), "g\n").unwrap();
    std::fs::write(dir.join(".wh.looks-like-a-whiteout"), "plain\n").unwrap();
    std::fs::hard_link(dir.join("f"), dir.join("hard")).unwrap();
    std::os::unix::fs::symlink("sub/g", dir.join("rel")).unwrap();
    std::os::unix::fs::symlink(victim, dir.join("evil")).unwrap();
    let up = format!("{}{}", "../".repeat(12), victim.display().to_string().trim_start_matches('/'));
    std::os::unix::fs::symlink(up, dir.join("up")).unwrap();
    std::os::unix::fs::chown(dir.join("f"), Some(7), Some(8)).unwrap();
    std::fs::set_permissions(dir.join("sub/g"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
}

#[test]
fn both_ways_and_no_way_out() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), "host only\n").unwrap();
    let before = common::snapshot(&victim);
    let src = host.path().join("p");
    std::fs::create_dir(&src).unwrap();
    payload(&src, &victim);
    root.ok(&["create", "--name", "cc", "img:1", "true"]);

    // In, then out again with -a (owners kept): the same tree.
    root.ok(&["cp", src.to_str().unwrap(), "cc:/"]);
    let out = host.path().join("out");
    std::fs::create_dir(&out).unwrap();
    root.ok(&["cp", "-a", "cc:/p", out.to_str().unwrap()]);
    assert_eq!(common::snapshot(&out.join("p")), common::snapshot(&src));
    let copied = out.join("p");
    assert_eq!(
        std::fs::metadata(copied.join("hard")).unwrap().ino(),
        std::fs::metadata(copied.join("f")).unwrap().ino()
    );
    // Without -a too, owners are kept, as dockerd 20.10 keeps them (see cp_docker.rs).
    root.ok(&["cp", src.join("f").to_str().unwrap(), "cc:/owned"]);
    let stream = root.strata(&["cp", "cc:/owned", "-"]).stdout;
    let mut archive = tar::Archive::new(stream.as_slice());
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (entry.path().unwrap().to_str().unwrap().to_owned(), entry.header().uid().unwrap()),
        ("owned".into(), 7)
    );
    // dir/. copies the contents; a file onto a new name; -L follows the symlink itself.
    let contents = host.path().join("contents");
    std::fs::create_dir(&contents).unwrap();
    root.ok(&["cp", "cc:/p/sub/.", contents.to_str().unwrap()]);
    assert!(contents.join("g").is_file() && contents.join("empty").is_dir());
    root.ok(&["cp", "-L", "cc:/p/rel", host.path().join("followed").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.path().join("followed")).unwrap(), "g\n");
    root.ok(&["cp", "cc:/p/rel", host.path().join("link").to_str().unwrap()]);
    assert_eq!(std::fs::read_link(host.path().join("link")).unwrap(), Path::new("sub/g"));

    // The breakout corpus: every way leads into the container's tree or nowhere.
    let file = host.path().join("in.txt");
    std::fs::write(&file, "from the host\n").unwrap();
    let f = file.to_str().unwrap();
    let victim_in = format!("cc:{}", victim.display());
    for (args, ok) in [
        (vec!["cp", f, "cc:/p/evil/"], false),
        (vec!["cp", f, "cc:/p/evil/x"], false),
        (vec!["cp", f, "cc:/p/up/x"], false),
        (vec!["cp", "cc:/p/evil/secret", host.path().join("s1").to_str().unwrap()], false),
        (vec!["cp", "cc:/p/up/secret", host.path().join("s2").to_str().unwrap()], false),
        (vec!["cp", "cc:/../../../../../../..", host.path().join("s3").to_str().unwrap()], true),
        (vec!["cp", f, &victim_in], false),
    ] {
        let out = root.strata(&args);
        assert_eq!(out.status.success(), ok, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        if !ok {
            assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{args:?}");
        }
        assert_eq!(common::snapshot(&victim), before, "{args:?} reached the host");
    }
    assert!(!host.path().join("s1").exists() && !host.path().join("s2").exists());
    // A tar on stdin that climbs out, and one that makes a symlink to the host and writes
    // through it: both stay inside.
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    evil.append_data(&mut h.clone(), "../../../../escape", &b"out\n"[..]).ok();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    evil.append_link(&mut l, "hop", &victim).unwrap();
    evil.append_data(&mut h, "hop/owned", &b"own\n"[..]).unwrap();
    let evil = evil.into_inner().unwrap();
    common::strata_with_stdin(root.path(), &["cp", "-", "cc:/p"], &evil);
    assert_eq!(common::snapshot(&victim), before, "a tar on stdin reached the host");
    assert!(!host.path().join("escape").exists());

    // A running container takes files too, and a stopped one is left unmounted.
    root.ok(&["run", "-d", "--name", "rr", "img:1", "sleep", "30"]);
    root.ok(&["cp", f, "rr:/tmp/"]);
    assert_eq!(root.ok(&["exec", "rr", "cat", "/tmp/in.txt"]), "from the host");
    root.ok(&["rm", "-f", "rr", "cc"]);
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    let err = root.fails(&["cp", "nope:/x", "/tmp/x"]);
    assert!(err.contains("nope"), "{err}");
    root.ok(&["check"]);
}
