//! `strata info` against `docker info` on the same data root and machine, and on stores on
//! ext4, xfs, btrfs (loop devices) and tmpfs, whose backing filesystem it must name as
//! dockerd does.

mod common;

use std::path::Path;
use std::process::Command;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use serde_json::Value;

fn info(root: &Path) -> Value {
    let out = common::strata_cmd(root, &["info", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "info: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(status.success(), "{cmd} {args:?}");
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn info_says_what_docker_info_says_of_the_same_root() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let root = Root::new();
    let Some(d) = Dockerd::start(root.path()) else { return };
    let tar = root.path().join("rootfs.tar");
    std::fs::write(&tar, common::images::tar_of(&[("etc/hello", b"hi\n")])).unwrap();
    d.docker(&["import", tar.to_str().unwrap(), "one:1"]);
    d.docker(&["create", "--network", "none", "one:1", "/bin/true"]);
    // An image with a shell, and a container that wrote 4 kB.
    let fs = tempfile::tempdir().unwrap();
    common::images::host_rootfs(fs.path());
    let shell = root.path().join("shell.tar");
    std::fs::write(&shell, common::images::tar_dir(fs.path())).unwrap();
    d.docker(&["import", shell.to_str().unwrap(), "shell:1"]);
    let script =
        "i=0; while [ $i -lt 100 ]; do echo 0123456789012345678901234567890123456789 >> /tmp/z; i=$((i+1)); done";
    d.docker(&["run", "--network", "none", "--name", "writer", "shell:1", "sh", "-c", script]);
    // An image built on shell:1 and a container of it: `ancestor=shell:1` takes it in.
    d.docker(&["commit", "writer", "child:1"]);
    d.docker(&["create", "--network", "none", "--name", "grandchild", "child:1", "/bin/true"]);
    let docker: Value = serde_json::from_str(&d.docker(&["info", "--format", "{{json .}}"])).unwrap();
    let docker_df: Vec<Value> = d
        .docker(&["system", "df", "--format", "{{json .}}"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let image_filters: &[&[&str]] = &[
        &["one"],
        &["-f", "reference=sh*"],
        &["-f", "reference=*:1"],
        &["-f", "dangling=false"],
        &["-f", "dangling=true"],
        &["-f", "before=shell:1"],
        &["-f", "since=one:1"],
    ];
    let ps_filters: &[&[&str]] = &[
        &["-f", "status=exited"],
        &["-f", "status=created"],
        &["-f", "name=writ"],
        &["-f", "exited=0"],
        &["-f", "ancestor=shell:1"],
        &["-f", "ancestor=one:1", "-f", "status=created"],
        &["-f", "ancestor=child:1"],
        &["-f", "ancestor=nosuch:1"],
    ];
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(|l| l.chars().take(19).collect()).collect();
        lines.sort();
        lines
    };
    let docker_images: Vec<Vec<String>> =
        image_filters.iter().map(|f| sorted(d.docker(&[&["images", "-q", "--no-trunc"][..], f].concat()))).collect();
    let docker_ps: Vec<Vec<String>> =
        ps_filters.iter().map(|f| sorted(d.docker(&[&["ps", "-a", "-q", "--no-trunc"][..], f].concat()))).collect();
    // Go templates, where the output does not depend on the clock.
    let templates: &[&[&str]] = &[
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"],
        &["images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}"],
        &["images", "one", "--format", "{{upper .Repository}}"],
        &["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Image}} {{.Command}}"],
        &["ps", "-a", "--format", "table {{.Names}}\\t{{.Image}}\\t{{.Command}}"],
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Config.Image}} {{json .Args}}",
            "writer",
        ],
        &["inspect", "-f", "{{.Id}} {{.Os}} {{.Architecture}} {{index .RepoTags 0}}", "shell:1", "one:1"],
        &["info", "-f", "{{.Driver}} {{json .DriverStatus}} {{.Images}} {{.Containers}} {{.OSType}}"],
        &["history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}} {{.Comment}}", "shell:1"],
        &["history", "--human=false", "--format", "{{.Size}} {{.CreatedAt}}", "shell:1"],
        &["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}"],
    ];
    let docker_templates: Vec<String> = templates.iter().map(|t| d.docker(t)).collect();
    let json_keys = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap().as_object().unwrap().keys().cloned().collect())
            .collect()
    };
    let docker_json_keys = [
        json_keys(&d.docker(&["images", "--format", "{{json .}}"])),
        json_keys(&d.docker(&["ps", "-a", "--format", "{{json .}}"])),
    ];
    drop(d);
    let sorted_lines = |text: &str| {
        let mut v: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        v[usize::from(text.starts_with("REPOSITORY") || text.starts_with("NAMES"))..].sort();
        v
    };
    for (args, theirs) in templates.iter().zip(&docker_templates) {
        let out = common::strata_cmd(root.path(), args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let ours = String::from_utf8(out.stdout).unwrap();
        assert_eq!(sorted_lines(&ours), sorted_lines(theirs), "{args:?}");
    }
    for (i, kind) in ["images", "ps"].iter().enumerate() {
        let args: &[&str] =
            if *kind == "ps" { &["ps", "-a", "--format", "{{json .}}"] } else { &["images", "--format", "{{json .}}"] };
        let out = common::strata_cmd(root.path(), args).output().unwrap();
        assert_eq!(json_keys(&String::from_utf8(out.stdout).unwrap()), docker_json_keys[i], "{kind} {{{{json .}}}}");
    }
    for (filter, theirs) in image_filters.iter().zip(&docker_images) {
        let out =
            common::strata_cmd(root.path(), &[&["images", "-q", "--no-trunc"][..], filter].concat()).output().unwrap();
        assert_eq!(&sorted(String::from_utf8(out.stdout).unwrap()), theirs, "images {filter:?}");
    }
    for (filter, theirs) in ps_filters.iter().zip(&docker_ps) {
        let out = common::strata_cmd(root.path(), &[&["ps", "-a", "-q", "--no-trunc"][..], filter].concat())
            .output()
            .unwrap();
        assert_eq!(&sorted(String::from_utf8(out.stdout).unwrap()), theirs, "ps {filter:?}");
    }
    let counts: Vec<usize> = docker_ps.iter().map(Vec::len).collect();
    assert_eq!(counts, [1, 2, 1, 1, 2, 1, 1, 0], "what each ps filter selects: {docker_ps:?}");

    let ours = info(root.path());
    for key in [
        "Containers",
        "ContainersRunning",
        "ContainersStopped",
        "Images",
        "Driver",
        "DriverStatus",
        "KernelVersion",
        "OperatingSystem",
        "OSType",
        "Architecture",
        "NCPU",
        "MemTotal",
    ] {
        assert_eq!(ours[key], docker[key], "{key}");
    }
    assert_eq!(ours["Containers"], 3);

    // `system df` on the same root: the same rows.
    let out = common::strata_cmd(root.path(), &["system", "df"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split("   ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), docker_df.len(), "{text}");
    for (row, theirs) in rows.iter().zip(&docker_df) {
        let expected =
            [&theirs["Type"], &theirs["TotalCount"], &theirs["Active"], &theirs["Size"], &theirs["Reclaimable"]];
        let expected: Vec<String> = expected.iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(row, &expected, "strata:\n{text}docker: {docker_df:?}");
    }
    assert!(docker_df[1]["Size"] != "0B", "the writer's layer counts: {docker_df:?}");
    assert_eq!(ours["DockerRootDir"], docker["DockerRootDir"]);
    assert!(ours["Strata"]["Layers"].as_u64().unwrap() >= 3, "the image's layer and the container's two");
    assert!(ours["Runtimes"]["runc"]["Version"].as_str().unwrap().starts_with("runc version"));
}

#[test]
fn info_names_the_backing_filesystem_as_dockerd_does() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let mut mounted = Vec::new();
    let mut cases = Vec::new();
    for (fs, mkfs, args, size) in [
        ("extfs", "mkfs.ext4", &["-q", "-F"][..], "64M"),
        ("xfs", "mkfs.xfs", &["-q", "-f"][..], "320M"),
        ("btrfs", "mkfs.btrfs", &["-q", "-f"][..], "128M"),
    ] {
        let image = scratch.path().join(format!("{fs}.img"));
        let mnt = scratch.path().join(fs);
        std::fs::create_dir(&mnt).unwrap();
        run("truncate", &["-s", size, image.to_str().unwrap()]);
        let mut all: Vec<&str> = args.to_vec();
        all.push(image.to_str().unwrap());
        run(mkfs, &all);
        run("mount", &["-o", "loop", image.to_str().unwrap(), mnt.to_str().unwrap()]);
        mounted.push(Unmount(mnt.clone()));
        cases.push((fs, mnt));
    }
    let shm = scratch.path().join("tmpfs");
    std::fs::create_dir(&shm).unwrap();
    run("mount", &["-t", "tmpfs", "tmpfs", shm.to_str().unwrap()]);
    mounted.push(Unmount(shm.clone()));
    cases.push(("tmpfs", shm));

    for (fs, mnt) in &cases {
        let store = mnt.join("store");
        let out = common::strata_cmd(&store, &["layer", "create"]).output().unwrap();
        assert!(out.status.success(), "{fs}: {}", String::from_utf8_lossy(&out.stderr));
        let info = info(&store);
        let status: Vec<(String, String)> = info["DriverStatus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(status[0], ("Backing Filesystem".to_owned(), fs.to_string()), "{fs}");
        assert_eq!(status[1], ("Supports d_type".to_owned(), "true".to_owned()), "{fs}");
        assert_eq!(info["Strata"]["Layers"], 1, "{fs}");

        // And the store works there: an image, a container, its diff and commit, removal.
        let ok = |args: &[&str]| {
            let out = common::strata_cmd(&store, args).output().unwrap();
            assert!(out.status.success(), "{fs}: strata {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let rootfs = scratch.path().join(format!("rootfs-{fs}"));
        std::fs::create_dir(&rootfs).unwrap();
        common::images::host_rootfs(&rootfs);
        ok(&["import", rootfs.to_str().unwrap(), "img:1"]);
        ok(&["run", "--name", "c1", "img:1", "sh", "-c", "echo x > /tmp/x"]);
        assert!(ok(&["diff", "c1"]).contains("A /tmp/x"), "{fs}");
        ok(&["commit", "c1", "img:2"]);
        ok(&["rm", "c1"]);
        ok(&["rmi", "img:2", "img:1"]);
        assert!(ok(&["check"]).trim_end().ends_with("clean"), "{fs}");
    }
    drop(cases);
    drop(mounted);
}

/// The lines of a prune's output that name what went, sorted, and its last line.
fn pruned(output: &str) -> (Vec<String>, String) {
    let mut lines: Vec<String> = output
        .lines()
        .filter(|l| l.starts_with("untagged: ") || l.starts_with("deleted: ") || (l.len() == 64 && !l.contains(' ')))
        .map(str::to_owned)
        .collect();
    lines.sort();
    (lines, output.lines().last().unwrap_or_default().to_owned())
}

#[test]
fn prunes_remove_what_dockers_prunes_remove() {
    let _one = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Root::new();
    let a = scratch.path().join("docker");
    let b = scratch.path().join("strata");
    std::fs::create_dir(&a).unwrap();
    let fs = tempfile::tempdir().unwrap();
    common::images::host_rootfs(fs.path());
    let shell = scratch.path().join("shell.tar");
    std::fs::write(&shell, common::images::tar_dir(fs.path())).unwrap();
    let tiny = scratch.path().join("tiny.tar");
    std::fs::write(&tiny, common::images::tar_of(&[("etc/hello", b"hi\n")])).unwrap();
    {
        let Some(d) = Dockerd::start(&a) else { return };
        d.docker(&["import", shell.to_str().unwrap(), "keep:1"]);
        d.docker(&["import", tiny.to_str().unwrap(), "other:1"]);
        d.docker(&["import", tiny.to_str().unwrap()]); // dangling: no name
        d.docker(&["import", shell.to_str().unwrap()]); // dangling
        d.docker(&["create", "--network", "none", "--name", "created", "keep:1", "true"]);
        d.docker(&["run", "--network", "none", "--name", "ran", "keep:1", "sh", "-c", "echo x > /tmp/x"]);
    }
    common::images::copy_tree(&a, &b);

    let strata = |args: &[&str]| {
        let out = common::strata_cmd(&b, args).output().unwrap();
        assert!(out.status.success(), "strata {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Without -f and nothing on stdin: asked, answered no, nothing removed.
    let before = strata(&["images", "-q"]);
    assert!(strata(&["system", "prune"]).contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(strata(&["images", "-q"]), before);

    let ours = [strata(&["system", "prune", "-f"]), strata(&["image", "prune", "-a", "-f"])];
    let ours_left = (strata(&["images", "--format", "json"]), strata(&["ps", "-a", "-q"]));
    assert!(strata(&["check"]).trim_end().ends_with(" 0 finding(s): clean"), "the pruned store is not spotless");
    let Some(d) = Dockerd::start(&a) else { return };
    let theirs = [d.docker(&["system", "prune", "-f"]), d.docker(&["image", "prune", "-a", "-f"])];
    let images_left: Vec<String> = d.docker(&["images", "-q", "--no-trunc"]).lines().map(str::to_owned).collect();
    let ps_left = d.docker(&["ps", "-a", "-q"]);
    drop(d);
    for (ours, theirs) in ours.iter().zip(&theirs) {
        let (ours, ours_total) = pruned(ours);
        let (theirs, theirs_total) = pruned(theirs);
        assert_eq!(ours, theirs, "what went");
        assert!(!ours.is_empty());
        assert_eq!(ours_total, theirs_total, "what was given back");
    }
    let listed: Vec<Value> = serde_json::from_str(&ours_left.0).unwrap();
    let ours_images: Vec<String> = listed.iter().map(|i| i["Id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ours_images, images_left);
    assert_eq!(ours_left.1.lines().count(), ps_left.lines().count());
    // Created and exited containers both go, and then every image with them.
    assert!(ours_images.is_empty() && ours_left.1.is_empty(), "{ours_images:?} {}", ours_left.1);
}
