//! Volumes, binds and tmpfs with the real binary and runc: named, anonymous and the image's
//! volumes (the image's files copied into a new one, owners kept), read-only mounts refusing
//! writes, `--volumes-from`, `rm -v`, `volume rm` of one in use, `volume prune`; `diff` and
//! `commit` without volume contents; bad input refused with nothing made; a kill part-way
//! leaving no volume; and mount destinations that are symlinks out of the tree leading
//! nowhere outside it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::Root;
use common::images::{copy_with_libs, host_rootfs};

/// A small image whose `/data` (owned 5:5) holds `f` (owned 7:8), declared a `VOLUME`; with
/// `touch` and `stat`, and `/evil`, `/up` symlinks to `victim` on the host.
fn image(root: &Root, victim: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    host_rootfs(d);
    for bin in ["/usr/bin/touch", "/usr/bin/stat"] {
        copy_with_libs(d, Path::new(bin));
    }
    std::fs::create_dir(d.join("data")).unwrap();
    std::fs::write(d.join("data/f"), "from the image\n").unwrap();
    std::os::unix::fs::chown(d.join("data/f"), Some(7), Some(8)).unwrap();
    std::os::unix::fs::chown(d.join("data"), Some(5), Some(5)).unwrap();
    std::os::unix::fs::symlink(victim, d.join("evil")).unwrap();
    let up = format!("{}{}", "../".repeat(12), victim.display().to_string().trim_start_matches('/'));
    std::os::unix::fs::symlink(up, d.join("up")).unwrap();
    root.ok(&["import", d.to_str().unwrap(), "vol:1", "-c", r#"CMD ["/bin/sh"]"#, "-c", "VOLUME /data"]);
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn volume_names(root: &Root) -> Vec<String> {
    root.ok(&["volume", "ls", "-q"]).lines().map(str::to_owned).collect()
}

#[test]
fn volumes_binds_and_tmpfs() {
    common::require_root();
    let root = Root::new();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    image(&root, &victim);
    let bind = host.path().join("bind");
    std::fs::create_dir(&bind).unwrap();
    std::fs::write(bind.join("x"), "host\n").unwrap();
    let b = bind.to_str().unwrap();

    // A named volume, with labels, in the Engine API's shape.
    assert_eq!(root.ok(&["volume", "create", "--label", "a=b", "named1"]), "named1");
    let v = json(&root.ok(&["volume", "inspect", "named1"]));
    assert_eq!(v[0]["Name"], "named1");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["a"], "b");
    let data = root.path().join("volumes/named1/_data");
    assert_eq!(v[0]["Mountpoint"], data.to_str().unwrap());
    assert_eq!(std::fs::metadata(root.path().join("volumes/named1")).unwrap().mode() & 0o7777, 0o701);
    assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o7777, 0o755);

    let script = "cat /data/f; stat -c '%u:%g' /data /data/f; echo w > /n/w; echo a > /anon/a; echo t > /t/t; \
                  cat /h/x /hb/x; echo hb > /hb/from-container; \
                  touch /h/no 2>/dev/null && echo h-writable; touch /m2/no 2>/dev/null && echo m2-writable; \
                  touch /tt/yes && echo tt-writable";
    let out = root.ok(&[
        "run",
        "--name",
        "c1",
        "-v",
        "named1:/n",
        "-v",
        &format!("{b}:/h:ro"),
        "-v",
        "/anon",
        "--tmpfs",
        "/t:size=1m",
        "--mount",
        "type=volume,src=m2,dst=/m2,readonly",
        "--mount",
        &format!("type=bind,src={b},dst=/hb"),
        "--mount",
        "type=tmpfs,dst=/tt",
        "vol:1",
        "sh",
        "-c",
        script,
    ]);
    // The image's /data was copied into its new volume, owners kept; read-only mounts refuse.
    assert_eq!(out, "from the image\n5:5\n7:8\nhost\nhost\ntt-writable");
    assert_eq!(std::fs::read_to_string(data.join("w")).unwrap(), "w\n");
    assert_eq!(std::fs::read_to_string(bind.join("from-container")).unwrap(), "hb\n");
    assert!(!bind.join("no").exists());

    // inspect shows the mounts as dockerd does; the records hold them in dockerd's fields.
    let c = json(&root.ok(&["inspect", "c1"]));
    let mounts: Vec<&serde_json::Value> = c[0]["Mounts"].as_array().unwrap().iter().collect();
    let by = |dest: &str| *mounts.iter().find(|m| m["Destination"] == dest).unwrap_or_else(|| panic!("{dest}"));
    assert_eq!(by("/n")["Type"], "volume");
    assert_eq!(by("/n")["Name"], "named1");
    assert_eq!(by("/n")["Mode"], "z");
    assert_eq!(by("/h")["Type"], "bind");
    assert_eq!(by("/h")["RW"], false);
    assert_eq!(by("/h")["Mode"], "ro");
    assert_eq!(by("/h")["Propagation"], "rprivate");
    assert_eq!(by("/m2")["RW"], false);
    assert_eq!(by("/tt")["Type"], "tmpfs");
    let anon = by("/anon")["Name"].as_str().unwrap().to_owned();
    let image_volume = by("/data")["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    assert_eq!(std::fs::read_to_string(by("/anon")["Source"].as_str().unwrap().to_owned() + "/a").unwrap(), "a\n");
    let copied = root.path().join("volumes").join(&image_volume).join("_data");
    assert_eq!((std::fs::metadata(&copied).unwrap().uid(), std::fs::metadata(&copied).unwrap().gid()), (5, 5));
    assert_eq!(std::fs::metadata(copied.join("f")).unwrap().uid(), 7);
    assert!(mounts.iter().all(|m| m["Destination"] != "/t"), "--tmpfs is not a mount point, as in dockerd");
    assert_eq!(c[0]["HostConfig"]["Binds"], serde_json::json!(["named1:/n", format!("{b}:/h:ro")]));
    assert_eq!(c[0]["HostConfig"]["Tmpfs"]["/t"], "size=1m");
    assert_eq!(c[0]["HostConfig"]["Mounts"][0]["Source"], "m2");
    assert!(c[0]["Config"]["Volumes"].get("/anon").is_some());

    // diff and commit leave what went into volumes, binds and tmpfs out.
    let diff = root.ok(&["diff", "c1"]);
    for inside in ["/n/w", "/anon/a", "/t/t", "/hb/from-container", "/tt/yes"] {
        assert!(!diff.contains(inside), "{inside} in diff: {diff}");
    }
    let exported = host.path().join("c1.tar");
    root.ok(&["export", "c1", "-o", exported.to_str().unwrap()]);
    let listing = std::process::Command::new("tar").arg("-tf").arg(&exported).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l.trim_end_matches('/') == "data/f"), "the image's own /data is exported");
    for inside in ["n/w", "anon/a", "hb/x", "h/x"] {
        assert!(!listing.lines().any(|l| l == inside), "{inside} exported: {listing}");
    }
    root.ok(&["commit", "c1", "committed:1"]);
    let from_commit = root.ok(&["run", "--rm", "committed:1", "sh", "-c", "cat /n/w /anon/a 2>&1 || true"]);
    assert!(!from_commit.contains("w\na"), "{from_commit}");

    // --volumes-from, read-only: the same volumes at the same places, not writable.
    let out = root.ok(&[
        "run",
        "--name",
        "c2",
        "--volumes-from",
        "c1:ro",
        "vol:1",
        "sh",
        "-c",
        "cat /n/w /anon/a; touch /n/no 2>/dev/null && echo n-writable; true",
    ]);
    assert_eq!(out, "w\na");

    // cp writes into the volumes and binds over the destination, refuses a read-only one,
    // and reads out of them, stopped or not.
    let payload = host.path().join("payload");
    std::fs::write(&payload, "copied\n").unwrap();
    root.ok(&["cp", payload.to_str().unwrap(), "c1:/n/"]);
    assert_eq!(std::fs::read_to_string(data.join("payload")).unwrap(), "copied\n");
    let err = root.fails(&["cp", payload.to_str().unwrap(), "c1:/h/"]);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    assert!(!bind.join("payload").exists());
    let out = host.path().join("out");
    root.ok(&["cp", "c1:/anon/a", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a\n");
    assert!(!root.ok(&["cp", "c1:/n", "-"]).is_empty());
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains("volumes/named1"),
        "cp's mounts are gone"
    );

    assert_eq!(root.ok(&["ps", "-aq", "--filter", "volume=named1"]).lines().count(), 2);
    assert_eq!(root.ok(&["ps", "-aq", "--filter", "volume=/anon"]).lines().count(), 2);
    assert_eq!(root.ok(&["ps", "-aq", "--filter", "volume=nothing"]), "");
    let df = json(&root.ok(&["system", "df", "--format", "json"]));
    let named = df["Volumes"].as_array().unwrap().iter().find(|v| v["Name"] == "named1").unwrap().clone();
    assert_eq!(named["UsageData"], serde_json::json!({"Size": 9, "RefCount": 2}), "w and payload, c1 and c2");

    // A volume in use is not removed; rm -v takes the anonymous volumes nobody else uses.
    let err = root.fails(&["volume", "rm", "named1"]);
    assert!(err.contains("volume is in use") && err.contains(&c[0]["Id"].as_str().unwrap()[..12]), "{err}");
    assert!(data.join("w").exists());
    let dangling = root.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling, "", "every volume is used");
    root.ok(&["rm", "-v", "c1"]);
    assert!(volume_names(&root).contains(&anon), "c2 still uses it");
    root.ok(&["rm", "-v", "c2"]);
    let left = volume_names(&root);
    assert!(!left.contains(&anon) && !left.contains(&image_volume), "{left:?}");
    assert_eq!(left, ["m2", "named1"]);

    // prune removes every unused volume and says which.
    let pruned = root.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains("Deleted Volumes:\nm2\nnamed1\n"), "{pruned}");
    assert!(volume_names(&root).is_empty());
    assert!(!root.path().join("volumes/named1").exists());
}

#[test]
fn bad_mounts_change_nothing() {
    common::require_root();
    let root = Root::new();
    let host = tempfile::tempdir().unwrap();
    image(&root, &host.path().join("victim"));
    root.ok(&["volume", "create", "keep"]);
    std::fs::write(root.path().join("volumes/keep/_data/k"), "k").unwrap();
    let before = common::snapshot(&root.path().join("volumes"));
    let missing = host.path().join("missing");
    let m = missing.to_str().unwrap();
    for (args, says) in [
        (vec!["volume", "create", "x"], "too short"),
        (vec!["volume", "create", "a/b"], "invalid characters"),
        (vec!["volume", "rm", "nope"], "no such volume: nope"),
        (vec!["volume", "inspect", "nope"], "no such volume: nope"),
        (vec!["create", "-v", "bad/name:/x", "vol:1"], "invalid characters"),
        (vec!["create", "-v", "vv:relative", "vol:1"], "must be absolute"),
        (vec!["create", "-v", "vv:/", "vol:1"], "can't be '/'"),
        (vec!["create", "-v", "vv:/x:bogus", "vol:1"], "invalid mode: bogus"),
        (vec!["create", "--mount", &format!("type=bind,src={m},dst=/x"), "vol:1"], "bind source path does not exist"),
        (vec!["create", "--mount", "type=tmpfs,src=x,dst=/x", "vol:1"], "Source must not be specified"),
        (vec!["create", "--mount", "type=nfs,dst=/x", "vol:1"], "invalid mount type"),
        (vec!["create", "-v", "vv:/x", "-v", "ww:/x", "vol:1"], "Duplicate mount point: /x"),
        (vec!["create", "-v", "vv:/x", "--tmpfs", "/x", "vol:1"], "Duplicate mount point: /x"),
        (vec!["create", "--volumes-from", "nobody", "vol:1"], "no such container"),
    ] {
        let err = root.fails(&args);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert_eq!(common::snapshot(&root.path().join("volumes")), before);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    assert!(!missing.exists());

    // A volume over a file of the image is refused, as dockerd refuses it.
    let err = root.fails(&["create", "-v", "/etc/os-release", "vol:1"]);
    assert!(err.contains("cannot mount volume over existing file"), "{err}");
    assert_eq!(common::snapshot(&root.path().join("volumes")), before);
}

#[test]
fn killed_create_and_rm_leave_no_volume() {
    common::require_root();
    let root = Root::new();
    let host = tempfile::tempdir().unwrap();
    image(&root, &host.path().join("victim"));
    common::kill_at(&root, "container.volumes", &["create", "-v", "made:/m", "-v", "/anon", "vol:1", "true"]);
    root.ok(&["ps", "-a"]);
    assert!(volume_names(&root).is_empty(), "{:?}", volume_names(&root));
    assert_eq!(root.ok(&["ps", "-aq"]), "");

    root.ok(&["create", "--name", "cv", "-v", "/anon", "vol:1", "true"]);
    assert_eq!(volume_names(&root).len(), 2);
    common::kill_at(&root, "rm.journaled", &["rm", "-v", "cv"]);
    root.ok(&["ps", "-a"]);
    assert!(volume_names(&root).is_empty(), "the next command finishes rm -v: {:?}", volume_names(&root));
    root.ok(&["check"]);
}

#[test]
fn mount_points_that_are_symlinks_stay_inside() {
    common::require_root();
    let root = Root::new();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), "host only\n").unwrap();
    let before = common::snapshot(&victim);
    image(&root, &victim);
    let bind = host.path().join("bind");
    std::fs::create_dir(&bind).unwrap();

    // Mounts at symlinks pointing out of the tree (absolute, and through a `..` chain, each
    // in a run of its own as both name the same place), and a new volume there filled from
    // "the image's" files: each lands inside the container's tree.
    let bind_spec = format!("type=bind,src={},dst=/evil/b", bind.display());
    let write = "echo in > /evil/new; echo in > /evil/b/new";
    root.ok(&["run", "--name", "sy", "-v", "evol:/evil", "--mount", &bind_spec, "vol:1", "sh", "-c", write]);
    assert_eq!(common::snapshot(&victim), before, "the host directory is unchanged");
    assert_eq!(std::fs::read_to_string(root.path().join("volumes/evol/_data/new")).unwrap(), "in\n");
    assert!(!root.path().join("volumes/evol/_data/secret").exists(), "nothing of the host copied in");
    assert_eq!(std::fs::read_to_string(bind.join("new")).unwrap(), "in\n");
    let payload = host.path().join("payload");
    std::fs::write(&payload, "copied\n").unwrap();
    root.ok(&["cp", payload.to_str().unwrap(), "sy:/evil/"]);
    root.ok(&["cp", payload.to_str().unwrap(), "sy:/evil/b/"]);
    assert_eq!(common::snapshot(&victim), before, "cp through the symlinked mount point stays inside");
    assert!(root.path().join("volumes/evol/_data/payload").exists());
    assert!(bind.join("payload").exists());
    let write = "echo in > /up/new; echo in > /up/t/new; cat /up/t/new";
    assert_eq!(root.ok(&["run", "--name", "su", "-v", "/up", "--tmpfs", "/up/t", "vol:1", "sh", "-c", write]), "in");
    assert_eq!(common::snapshot(&victim), before, "the host directory is unchanged");
    root.ok(&["rm", "-v", "sy", "su"]);
    root.ok(&["volume", "rm", "evol"]);
    assert!(volume_names(&root).is_empty());
    assert_eq!(common::snapshot(&victim), before);
}
