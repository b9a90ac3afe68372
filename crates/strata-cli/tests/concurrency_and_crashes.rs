//! Many strata processes on one root, and strata processes killed with SIGKILL at every step of
//! a change: the store is never corrupt, and `check` calls it clean.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Root, kill_after, kill_at, strata_cmd};

/// Every layer `ls` lists is whole: it inspects, and its mount shows its ancestors' files.
fn assert_whole(root: &Root) {
    for id in root.ok(&["layer", "ls", "-q"]).lines() {
        root.ok(&["layer", "inspect", id]);
        let dir = root.home().join(id);
        assert!(dir.join("diff").is_dir() && dir.join("link").is_file(), "{id} is not whole");
    }
}

fn assert_clean(root: &Root) {
    let out = root.strata(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check found damage:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_end().ends_with("clean"), "{text}");
}

#[test]
fn eight_processes_create_and_mount_on_one_root() {
    let root = Root::new();
    let shared = root.ok(&["layer", "create"]);
    std::fs::write(root.home().join(&shared).join("diff/shared"), "base").unwrap();
    let top = root.ok(&["layer", "create", "--parent", &shared]);

    // Each worker builds its own small chain, mounts it, writes through it, and also takes a
    // reference on the one shared top layer.
    let script = r#"
        set -e
        a=$("$STRATA" layer create --parent "$SHARED")
        b=$("$STRATA" layer create --parent "$a")
        m=$("$STRATA" layer mount "$b")
        echo "$WORKER" > "$m/worker"
        test "$(cat "$m/shared")" = base
        "$STRATA" layer umount "$b"
        "$STRATA" layer mount "$TOP" > /dev/null
        echo "$b"
    "#;
    let workers: Vec<Child> = (0..8)
        .map(|w| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("STRATA", env!("CARGO_BIN_EXE_strata"))
                .env("STRATA_ROOT", root.path())
                .env("SHARED", &shared)
                .env("TOP", &top)
                .env("WORKER", w.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut leaves = Vec::new();
    for (w, worker) in workers.into_iter().enumerate() {
        let out = worker.wait_with_output().unwrap();
        assert!(out.status.success(), "worker {w}: {}", String::from_utf8_lossy(&out.stderr));
        let leaf = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(std::fs::read_to_string(root.home().join(&leaf).join("diff/worker")).unwrap(), format!("{w}\n"));
        leaves.push(leaf);
    }
    assert_eq!(root.ok(&["layer", "ls", "-q"]).lines().count(), 2 + 16);
    // Eight references, one kernel mount.
    assert_eq!(root.mounts(), [root.home().join(&top).join("merged")]);
    let info: serde_json::Value = serde_json::from_str(&root.ok(&["layer", "ls", "--format", "json"])).unwrap();
    let top_info = info.as_array().unwrap().iter().find(|l| l["id"] == top.as_str()).unwrap();
    assert_eq!(top_info["mounts"], 8);

    // Eight unmounts at once: the last one unmounts.
    let umounts: Vec<Child> = (0..8)
        .map(|_| strata_cmd(root.path(), &["layer", "umount", &top]).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for u in umounts {
        let out = u.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(root.mounts().is_empty());
    assert_whole(&root);
    assert_clean(&root);
}

#[test]
fn a_create_killed_at_any_step_leaves_no_layer_or_a_whole_one() {
    for (failpoint, published) in [("create.staged", false), ("create.linked", false), ("create.published", true)] {
        let root = Root::new();
        let base = root.ok(&["layer", "create"]);
        let id = "c".repeat(64);
        kill_at(&root, failpoint, &["layer", "create", "--parent", &base, "--id", &id]);

        let listed = root.ok(&["layer", "ls", "-q"]);
        assert_eq!(listed.contains(&id), published, "{failpoint}: {listed}");
        assert_whole(&root);
        assert_clean(&root);
        // The store goes on working: the killed create's leftovers are swept by the next write.
        if !published {
            assert_eq!(root.ok(&["layer", "create", "--parent", &base, "--id", &id]), id);
        }
        let merged = root.ok(&["layer", "mount", &id]);
        assert!(Path::new(&merged).is_dir());
        root.ok(&["layer", "umount", &id]);
        let report = root.ok(&["check", "--repair"]);
        assert!(report.ends_with("clean"), "{report}");
        assert_eq!(
            root.ok(&["check"]).lines().last().unwrap(),
            "2 layer(s) checked, 0 finding(s): clean",
            "{failpoint}"
        );
    }
}

#[test]
fn a_remove_killed_part_way_leaves_no_layer() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let top = root.ok(&["layer", "create", "--parent", &base]);
    kill_at(&root, "remove.renamed", &["layer", "rm", &top]);
    assert_eq!(root.ok(&["layer", "ls", "-q"]), base);
    assert_clean(&root);
    root.ok(&["check", "--repair"]);
    assert_eq!(root.ok(&["check"]).lines().last().unwrap(), "1 layer(s) checked, 0 finding(s): clean");
    assert_eq!(std::fs::read_dir(root.home().join("l")).unwrap().count(), 1, "the removed layer's l/ link is gone");
}

#[test]
fn mount_and_umount_killed_part_way_heal() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let top = root.ok(&["layer", "create", "--parent", &base]);

    // Killed after counting, before mounting: the count is stale and ignored.
    kill_at(&root, "mount.recorded", &["layer", "mount", &top]);
    assert!(root.mounts().is_empty());
    assert_clean(&root);
    root.ok(&["layer", "mount", &top]);
    assert_eq!(root.mounts().len(), 1);

    // Killed after unmounting, before uncounting: the next command sees it is not mounted.
    kill_at(&root, "umount.unmounted", &["layer", "umount", &top]);
    assert!(root.mounts().is_empty());
    root.ok(&["layer", "rm", &top]);
    assert_clean(&root);
}

#[test]
fn creates_killed_at_random_moments_never_corrupt_the_store() {
    let root = Root::new();
    let base = root.ok(&["layer", "create"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seed = 12345u64;
    for round in 0..40 {
        if Instant::now() > deadline {
            break;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let delay = Duration::from_micros((seed >> 33) % 4000);
        kill_after(&root, &["layer", "create", "--parent", &base], delay);
        assert_whole(&root);
        if round % 10 == 0 {
            assert_clean(&root);
        }
    }
    assert_clean(&root);
    root.ok(&["check", "--repair"]);
    let last = root.ok(&["check"]);
    assert!(last.ends_with(" 0 finding(s): clean"), "{last}");
}

#[test]
fn an_apply_killed_before_or_after_publishing_leaves_an_empty_or_a_whole_layer() {
    let root = Root::new();
    let tar = root.path().join("layer.tar");
    let mut t = Vec::new();
    {
        let mut b = std::io::Cursor::new(&mut t);
        let mut builder = tar_builder(&mut b);
        builder.finish().unwrap();
    }
    std::fs::write(&tar, &t).unwrap();
    for (failpoint, whole) in [("apply.extracted", false), ("apply.swapped", true)] {
        let id = root.ok(&["layer", "create"]);
        kill_at(&root, failpoint, &["layer", "apply", &id, tar.to_str().unwrap()]);
        let diff = root.home().join(&id).join("diff");
        assert_eq!(diff.join("etc/motd").exists(), whole, "{failpoint}");
        if whole {
            assert_eq!(std::fs::read_to_string(diff.join("etc/motd")).unwrap(), "hello\n");
        } else {
            assert_eq!(std::fs::read_dir(&diff).unwrap().count(), 0, "{failpoint}: nothing half-applied");
            root.ok(&["layer", "apply", &id, tar.to_str().unwrap()]);
        }
        assert_clean(&root);
        root.ok(&["check", "--repair"]);
        assert!(root.ok(&["check"]).ends_with(" 0 finding(s): clean"), "{failpoint}");
    }
}

fn tar_builder<W: std::io::Write>(w: W) -> tar::Builder<W> {
    let mut b = tar::Builder::new(w);
    let mut h = tar::Header::new_ustar();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/motd", &b"hello\n"[..]).unwrap();
    b
}
