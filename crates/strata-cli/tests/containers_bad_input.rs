//! Containers given bad input, refused operations, and container commands killed part way: one
//! clear line on stderr, docker's exit codes for `run` (127 command not found, 126 not
//! executable, 125 any other failure to run), no overlay mount, layer, record or runtime state
//! left behind (once the next writer has swept what a killed process left), nothing already
//! stored changed, and `strata check` finding nothing at all afterwards.
//!
//! These run real containers with runc, on a tiny root filesystem copied from the host.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::images::host_rootfs;
use common::{Root, kill_at, snapshot, strata_cmd};

type Tree = BTreeMap<PathBuf, String>;

/// `image/`, `overlay2/` and `containers/` of a root.
type State = (Tree, Tree, Tree);

fn state(root: &Root) -> State {
    (snapshot(&root.path().join("image")), snapshot(&root.home()), snapshot(&root.path().join("containers")))
}

fn assert_same(root: &Root, before: &State, what: &str) {
    let after = state(root);
    for (dir, b, a) in
        [("image/", &before.0, &after.0), ("overlay2/", &before.1, &after.1), ("containers/", &before.2, &after.2)]
    {
        assert!(a == b, "{what}: {dir} changed:\n{}", changes(b, a));
    }
}

/// What differs between two snapshots, an entry a line, values cut short.
fn changes(before: &Tree, after: &Tree) -> String {
    let short = |v: &str| -> String { v.chars().take(100).collect() };
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("- {}: {}", path.display(), short(was))),
            Some(now) if now != was => out.push(format!("~ {}: {} -> {}", path.display(), short(was), short(now))),
            Some(_) => {}
        }
    }
    for (path, now) in after.iter().filter(|(p, _)| !before.contains_key(*p)) {
        out.push(format!("+ {}: {}", path.display(), short(now)));
    }
    out.join("\n")
}

/// `strata check` finds nothing at all: no damage and no leftovers.
fn assert_spotless(root: &Root) {
    let out = root.strata(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check found damage:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_end().ends_with(" 0 finding(s): clean"), "{text}");
}

/// The names in a directory (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(list) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = list.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The layer directories in `overlay2/`.
fn layers(root: &Root) -> Vec<String> {
    entries(&root.home()).into_iter().filter(|n| n != "l" && n != ".strata-tmp").collect()
}

/// No container of any kind is left: no mount, no records, no runtime state, no operation in
/// flight, and `image/`, `overlay2/` and `containers/` exactly as `before`.
fn assert_nothing_left(root: &Root, before: &State, what: &str) {
    assert_eq!(root.mounts(), Vec::<PathBuf>::new(), "{what}: overlay mounts left under the root");
    assert_same(root, before, what);
    for dir in ["strata/containers", "strata/runtime/runc", "strata/mounts", "strata/tmp"] {
        let left = entries(&root.path().join(dir));
        assert!(left.is_empty(), "{what}: {dir} still holds {left:?}");
    }
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "", "{what}: a container is still listed");
    assert_spotless(root);
}

/// Exactly one line on stderr and the exit status `code`; return the line.
fn one_line(out: Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{what}: exit status; stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: expected one line on stderr, got: {stderr:?}");
    assert!(stderr.starts_with("strata: "), "{what}: {stderr}");
    stderr.trim_end().to_owned()
}

/// Run `strata args…` and expect the exit status `code` with one line on stderr.
fn fails_with(root: &Root, args: &[&str], code: i32) -> String {
    one_line(root.strata(args), code, &format!("strata {args:?}"))
}

/// Run `strata args…` with `PATH` set to `path`.
fn with_path(root: &Root, path: &str, args: &[&str]) -> Output {
    strata_cmd(root.path(), args).env("PATH", path).output().unwrap()
}

/// Copy `program` and the libraries `ldd` names for it into the root filesystem `dir`.
fn add_program(dir: &Path, program: &str) {
    let ldd = Command::new("ldd").arg(program).output().unwrap();
    let libs = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let files = std::iter::once(program).chain(libs.split_whitespace().filter(|w| w.starts_with('/')));
    for file in files {
        let target = dir.join(file.trim_start_matches('/'));
        if target.exists() {
            continue;
        }
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, &target).unwrap();
    }
}

/// A root holding `img:1` (sh, cat, ls, true, sleep; `CMD ["/bin/sh"]`) on which one container
/// has already been made and removed, so that what a first container adds for good (the
/// `containers/` directory, the image layer's `committed` mark) is in every "before".
fn root_with_image() -> Root {
    let root = Root::new();
    let fs = root.path().join("inputs/rootfs");
    std::fs::create_dir_all(&fs).unwrap();
    host_rootfs(&fs);
    add_program(&fs, "/usr/bin/sleep");
    root.ok(&["import", fs.to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
    let id = root.ok(&["create", "img:1", "true"]);
    root.ok(&["rm", &id]);
    assert_spotless(&root);
    root
}

/// `ps -a` in JSON.
fn ps_all(root: &Root) -> Vec<serde_json::Value> {
    let list: serde_json::Value = serde_json::from_str(&root.ok(&["ps", "-a", "--format", "json"])).unwrap();
    list.as_array().unwrap().clone()
}

/// The `ps -a` row of the container named `name`.
fn ps_row(root: &Root, name: &str) -> Option<serde_json::Value> {
    ps_all(root).into_iter().find(|row| row["Names"][0] == format!("/{name}"))
}

/// The names `ps -a` lists.
fn names(root: &Root) -> Vec<String> {
    ps_all(root).iter().map(|row| row["Names"][0].as_str().unwrap().trim_start_matches('/').to_owned()).collect()
}

/// `inspect` of one container.
fn inspect(root: &Root, name: &str) -> serde_json::Value {
    let list: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", name])).unwrap();
    list[0].clone()
}

/// Wait until `done` holds, or fail after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes of the container `id` (in its cgroup, `/strata/<id>`) and processes naming the
/// root on their command line (a strata or an orphaned runtime process): `pid: cmdline`.
fn processes(root: &Root, id: &str) -> Vec<String> {
    let root_path = root.path().to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_owned();
        if cgroup.contains(id) || cmdline.contains(&root_path) {
            out.push(format!("{pid}: {cmdline}"));
        }
    }
    out
}

/// No process of the container `id` is left (they may take a moment to be reaped).
fn assert_no_processes(root: &Root, id: &str) {
    let start = Instant::now();
    loop {
        let left = processes(root, id);
        if left.is_empty() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "processes of container {id} left: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `strata run` in the background; on drop (a failed test) its container is removed by force
/// and the process killed, so nothing outlives the test.
struct Background {
    child: Child,
    root: PathBuf,
    name: String,
    /// Its stderr, in a file: a pipe would stay open as long as a runtime process outlives it.
    stderr: PathBuf,
}

impl Background {
    /// `strata run --name NAME img:1 sh -c 'sleep 30'`, once `ps` shows it up; and its ID.
    fn sleeper(root: &Root, name: &str) -> (Background, String) {
        let stderr = root.path().join(format!("inputs/{name}.stderr"));
        let child = strata_cmd(root.path(), &["run", "--name", name, "img:1", "sh", "-c", "sleep 30"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let bg = Background { child, root: root.path().to_owned(), name: name.to_owned(), stderr };
        wait_for(&format!("`ps` to show {name} up"), Duration::from_secs(20), || {
            ps_row(root, name).is_some_and(|row| row["State"] == "running")
        });
        let id = ps_row(root, name).unwrap()["Id"].as_str().unwrap().to_owned();
        // What the checks for leftovers look for is there while it runs.
        wait_for("the container's `sleep 30`", Duration::from_secs(10), || {
            processes(root, &id).iter().any(|p| p.ends_with(": sleep 30"))
        });
        (bg, id)
    }

    /// Wait up to `timeout` for the strata process to exit; its status and stderr.
    fn wait(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < timeout, "strata run of {} did not exit within {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = strata_cmd(&self.root, &["rm", "-f", &self.name]).stderr(Stdio::null()).output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// 1. A command that is not in the image, or not executable.

#[test]
fn a_command_not_in_the_image_is_127_and_one_not_executable_126() {
    let root = root_with_image();
    let before = state(&root);

    let err = fails_with(&root, &["run", "--rm", "img:1", "nosuch"], 127);
    assert!(err.contains("\"nosuch\"") && err.contains("not found"), "{err}");
    assert_nothing_left(&root, &before, "run --rm of a command not in the image");

    let err = fails_with(&root, &["run", "--rm", "img:1", "/bin/nosuch", "arg"], 127);
    assert!(err.contains("\"/bin/nosuch\"") && err.contains("no such file"), "{err}");
    assert_nothing_left(&root, &before, "run --rm of a path not in the image");

    // A directory, and a regular file without an execute bit.
    for path in ["/etc", "/etc/os-release"] {
        let err = fails_with(&root, &["run", "--rm", "img:1", path], 126);
        assert!(err.contains(&format!("{path:?}")) && err.contains("permission denied"), "{err}");
        assert_nothing_left(&root, &before, &format!("run --rm {path}"));
    }

    // Without --rm the container stays, as docker keeps it: listed, not running, not mounted,
    // its record saying why it did not run.
    let err = fails_with(&root, &["run", "--name", "c1", "img:1", "nosuch"], 127);
    assert!(err.contains("\"nosuch\""), "{err}");
    let row = ps_row(&root, "c1").expect("ps -a lists the container that could not run");
    assert!(row["State"] == "created" || row["State"] == "exited", "{row}");
    assert!(row["Status"] == "Created" || row["Status"].as_str().unwrap().starts_with("Exited (127)"), "{row}");
    assert_eq!(root.ok(&["ps", "-q"]), "", "it is not running");
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    let state = &inspect(&root, "c1")["State"];
    assert_eq!(state["Running"], false, "{state}");
    assert_eq!(state["ExitCode"], 127, "{state}");
    assert!(state["Error"].as_str().unwrap().contains("nosuch"), "{state}");
    assert_eq!(root.ok(&["diff", "c1"]), "", "nothing ran in it");

    // Started again, it fails the same way, and still leaves no mount.
    let err = fails_with(&root, &["start", "-a", "c1"], 127);
    assert!(err.contains("\"nosuch\""), "{err}");
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    assert_spotless(&root);

    root.ok(&["rm", "c1"]);
    assert_nothing_left(&root, &before, "rm of the container that could not run");

    // The image still runs what it has.
    root.ok(&["run", "--rm", "img:1", "true"]);
    assert_nothing_left(&root, &before, "run --rm true");
}

// 2. No command at all.

#[test]
fn an_image_without_cmd_and_no_command_given_creates_nothing() {
    let root = root_with_image();
    let fs = root.path().join("inputs/rootfs");
    root.ok(&["import", fs.to_str().unwrap(), "bare:1"]);
    let before = state(&root);

    let err = root.fails(&["create", "bare:1"]);
    assert!(err.contains("no command") && err.contains("bare:1"), "{err}");
    assert_nothing_left(&root, &before, "create of an image without a command");
    let err = root.fails(&["create", "--name", "named", "bare:1"]);
    assert!(err.contains("no command"), "{err}");
    assert_nothing_left(&root, &before, "create --name of an image without a command");
    for args in [&["run", "bare:1"][..], &["run", "--rm", "bare:1"], &["run", "--name", "named", "bare:1"]] {
        let err = fails_with(&root, args, 125);
        assert!(err.contains("no command"), "{err}");
        assert_nothing_left(&root, &before, &format!("strata {args:?}"));
    }
    // `--entrypoint ""` drops the image's Cmd too, as docker does: no command either.
    let err = fails_with(&root, &["run", "--rm", "--entrypoint", "", "img:1"], 125);
    assert!(err.contains("no command"), "{err}");
    assert_nothing_left(&root, &before, "run --entrypoint \"\" with no command");

    // Given a command, it runs.
    root.ok(&["run", "--rm", "bare:1", "true"]);
    assert_nothing_left(&root, &before, "run --rm bare:1 true");
}

#[test]
fn the_no_command_error_names_no_container_that_does_not_exist() {
    let root = root_with_image();
    let fs = root.path().join("inputs/rootfs");
    root.ok(&["import", fs.to_str().unwrap(), "bare:1"]);
    let err = root.fails(&["create", "bare:1"]);
    // Today: "strata: container sharp_curie: no command specified: …", and `ps -a` has no
    // sharp_curie. docker says "no command specified".
    assert!(!err.starts_with("strata: container "), "{err}");
}

// 3. Names.

#[test]
fn a_name_in_use_or_invalid_is_refused_and_creates_nothing() {
    let root = root_with_image();
    let id = root.ok(&["create", "--name", "web", "img:1", "true"]);
    let before = state(&root);

    for args in [&["create", "--name", "web", "img:1"][..], &["create", "--name", "/web", "img:1", "sh"]] {
        let err = root.fails(args);
        assert!(err.contains("already in use") && err.contains(&id[..12]), "{err}");
        assert_same(&root, &before, &format!("strata {args:?}"));
    }
    for args in [&["run", "--name", "web", "img:1", "true"][..], &["run", "--rm", "--name", "web", "img:1", "true"]] {
        let err = fails_with(&root, args, 125);
        assert!(err.contains("already in use") && err.contains(&id[..12]), "{err}");
        assert_same(&root, &before, &format!("strata {args:?}"));
    }
    // The container that has the name is untouched, even by a `run --rm` that failed.
    assert_eq!(names(&root), ["web"]);
    assert!(root.mounts().is_empty());

    for bad in ["../x", "-a", "a/b", "a", "a b", "_x", "", "x\ny"] {
        let flag = format!("--name={bad}");
        let err = root.fails(&["create", &flag, "img:1"]);
        assert!(err.contains("not a valid name"), "{bad:?}: {err}");
        assert_same(&root, &before, &format!("create --name={bad:?}"));
        let err = fails_with(&root, &["run", "--rm", &flag, "img:1", "true"], 125);
        assert!(err.contains("not a valid name"), "{bad:?}: {err}");
        assert_same(&root, &before, &format!("run --name={bad:?}"));
    }
    // `--name -a` as two words: refused too (clap's usage error), nothing made.
    let out = root.strata(&["create", "--name", "-a", "img:1"]);
    assert!(!out.status.success());
    assert_same(&root, &before, "create --name -a");
    assert!(!root.path().join("x").exists());

    // Once the other container is gone, the name is free.
    root.ok(&["rm", "web"]);
    root.ok(&["run", "--rm", "--name", "web", "img:1", "true"]);
    assert_spotless(&root);
}

// 4. A running container.

#[test]
fn a_running_container_is_not_removed_or_started_again_and_rm_f_removes_it_whole() {
    let root = root_with_image();
    let before = state(&root);
    let (mut bg, id) = Background::sleeper(&root, "rr");

    let err = root.fails(&["rm", "rr"]);
    assert!(err.contains("running") && err.contains("-f"), "{err}");
    let err = fails_with(&root, &["start", "-a", "rr"], 125);
    assert!(err.contains("already running"), "{err}");
    // Nor is its image removed, even by force.
    let err = root.fails(&["rmi", "img:1"]);
    assert!(err.contains(&id[..12]), "{err}");
    let err = root.fails(&["rmi", "-f", "img:1"]);
    assert!(err.contains("running container") && err.contains(&id[..12]), "{err}");
    // It still runs.
    assert!(bg.child.try_wait().unwrap().is_none(), "the strata run process ended");
    assert_eq!(ps_row(&root, "rr").unwrap()["State"], "running");
    assert!(processes(&root, &id).iter().any(|p| p.ends_with(": sleep 30")));
    assert_eq!(root.mounts().len(), 1, "{:?}", root.mounts());

    let start = Instant::now();
    assert_eq!(root.ok(&["rm", "-f", "rr"]), "rr");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "rm -f took {took:?}");
    let (status, stderr) = bg.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(137), "strata run of the removed container: {status}; stderr: {stderr}");
    assert_no_processes(&root, &id);
    assert_nothing_left(&root, &before, "rm -f of a running container");
    assert_eq!(root.ok(&["images", "-q"]).lines().count(), 1, "the image is still there");
}

#[test]
fn a_mounted_container_is_not_removed_without_f() {
    let root = root_with_image();
    let before = state(&root);
    root.ok(&["create", "--name", "mm", "img:1"]);
    let merged = root.ok(&["mount", "mm"]);
    assert!(Path::new(&merged).join("bin/sh").exists());
    let err = root.fails(&["rm", "mm"]);
    assert!(err.contains("mounted") && err.contains("-f"), "{err}");
    assert_eq!(names(&root), ["mm"]);
    assert_eq!(root.mounts(), [PathBuf::from(&merged)]);
    root.ok(&["rm", "-f", "mm"]);
    assert_nothing_left(&root, &before, "rm -f of a mounted container");
}

// 5. A container whose image was removed by force.

#[test]
fn a_container_whose_image_was_removed_by_force_runs_cannot_be_committed_and_is_removed() {
    let root = root_with_image();
    let image = root.ok(&["images", "-q", "--no-trunc"]);
    let id = root.ok(&["create", "--name", "cc", "img:1", "sh", "-c", "echo hi > /hello"]);
    let before = state(&root);

    // As docker: a stopped container keeps its image from being removed without -f …
    for name in ["img:1", image.as_str()] {
        let err = root.fails(&["rmi", name]);
        assert!(err.contains(&id[..12]) && err.contains("-f"), "{err}");
        assert_same(&root, &before, &format!("rmi {name}"));
    }
    // … and with -f the image goes (name and config), the container and every layer stay.
    let listing = layers(&root);
    let out = root.ok(&["rmi", "-f", "img:1"]);
    assert_eq!(layers(&root), listing, "rmi -f took layers the container stands on");
    assert!(out.contains("Untagged: img:1") && out.contains(&format!("Deleted: {image}")), "{out}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    assert_eq!(names(&root), ["cc"]);
    assert_spotless(&root);

    // It still runs, on the layers it stands on.
    root.ok(&["start", "-a", "cc"]);
    assert_eq!(root.ok(&["diff", "cc"]), "A /hello");
    assert!(root.mounts().is_empty());
    let after_start = state(&root);

    // Commit has nothing to commit onto: one line, nothing written.
    let err = root.fails(&["commit", "cc", "new:1"]);
    assert!(err.contains("cc") && err.contains("removed") && err.contains(&image[7..19]), "{err}");
    assert_same(&root, &after_start, "commit of a container whose image is gone");
    assert!(entries(&root.path().join("strata/tmp")).is_empty());
    assert_eq!(root.ok(&["images", "-q"]), "");
    assert_spotless(&root);

    // Export still works: the whole tree.
    let tar = root.path().join("inputs/cc.tar");
    root.ok(&["export", "cc", "-o", tar.to_str().unwrap()]);
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.trim_start_matches("./") == "hello"), "{names:?}");
    assert!(names.iter().any(|n| n.trim_start_matches("./") == "bin/sh"), "{names:?}");
    assert!(root.mounts().is_empty());

    root.ok(&["rm", "cc"]);
    assert!(root.mounts().is_empty());
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert!(entries(&root.path().join("containers")).is_empty());
    assert!(entries(&root.path().join("strata/containers")).is_empty());
    assert!(entries(&root.path().join("image/overlay2/layerdb/mounts")).is_empty());
    assert_spotless(&root);
}

#[test]
fn the_layers_of_an_image_removed_by_force_go_with_its_last_container() {
    let root = root_with_image();
    root.ok(&["create", "--name", "cc", "img:1"]);
    root.ok(&["rmi", "-f", "img:1"]);
    root.ok(&["rm", "cc"]);
    // dockerd releases the container's layer and with it the image layers nothing else holds.
    // strata keeps overlay2/<cache-id> and layerdb/sha256/<chain>: no image names them, no
    // `rmi` can reach them and `check` does not report them.
    assert_eq!(layers(&root), Vec::<String>::new(), "image layers left in overlay2/");
    assert_eq!(entries(&root.path().join("image/overlay2/layerdb/sha256")), Vec::<String>::new());
    assert_spotless(&root);
}

#[test]
fn ps_shows_the_image_id_once_the_image_name_is_gone() {
    let root = root_with_image();
    let image = root.ok(&["images", "-q", "--no-trunc"]);
    root.ok(&["create", "--name", "cc", "img:1"]);
    root.ok(&["rmi", "-f", "img:1"]);
    // docker ps shows the image ID when the name the container was made with no longer names
    // its image; strata still shows `img:1`, even after another image takes that name.
    let row = ps_row(&root, "cc").unwrap();
    assert_eq!(row["Image"], image, "{row}");
}

// 6. No runtime.

#[test]
fn no_runtime_is_one_line_saying_how_to_install_one_and_creates_nothing() {
    let root = root_with_image();
    let before = state(&root);

    for args in [&["run", "img:1", "true"][..], &["run", "--rm", "--name", "nr", "img:1", "true"]] {
        let err = one_line(with_path(&root, "/nonexistent", args), 125, &format!("PATH=/nonexistent strata {args:?}"));
        assert!(err.contains("runc") && err.contains("not found") && err.contains("apt-get install runc"), "{err}");
        assert_nothing_left(&root, &before, &format!("PATH=/nonexistent strata {args:?}"));
    }
    let out = with_path(&root, "/nonexistent", &["create", "img:1", "true"]);
    let err = one_line(out, 1, "PATH=/nonexistent strata create");
    assert!(err.contains("runc") && err.contains("apt-get install runc"), "{err}");
    assert_nothing_left(&root, &before, "PATH=/nonexistent strata create");

    for runtime in ["nosuch", "/nonexistent/runc"] {
        let err = fails_with(&root, &["run", "--rm", "--runtime", runtime, "img:1", "true"], 125);
        let missing = |err: &str| err.contains("not found") || err.contains("not an executable file");
        assert!(err.contains(runtime) && missing(&err), "{err}");
        assert_nothing_left(&root, &before, &format!("run --runtime {runtime}"));
        let err = root.fails(&["create", "--runtime", runtime, "img:1", "true"]);
        assert!(err.contains(runtime) && missing(&err), "{err}");
        assert_nothing_left(&root, &before, &format!("create --runtime {runtime}"));
    }

    // A container made while runc was there, started once it is gone: one line, no mount,
    // still `Created`; and it can be removed without a runtime.
    root.ok(&["create", "--name", "later", "img:1", "true"]);
    let made = state(&root);
    let err = one_line(with_path(&root, "/nonexistent", &["start", "-a", "later"]), 125, "start without runc");
    assert!(err.contains("runc") && err.contains("apt-get install runc"), "{err}");
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    assert_eq!(ps_row(&root, "later").unwrap()["State"], "created");
    assert_same(&root, &made, "start without runc");
    let out = with_path(&root, "/nonexistent", &["rm", "later"]);
    assert!(out.status.success(), "rm without runc: {}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left(&root, &before, "rm without runc");
}

#[test]
fn a_runtime_that_fails_is_125_not_the_containers_status() {
    let root = root_with_image();
    let before = state(&root);
    // /bin/false as the runtime: nothing ran, yet `run` exits 1 with nothing on stderr, as if
    // the container's command had exited 1. docker reports a failure to run as 125 and a line.
    let err = fails_with(&root, &["run", "--rm", "--runtime", "/bin/false", "img:1", "true"], 125);
    assert!(err.contains("/bin/false"), "{err}");
    assert_nothing_left(&root, &before, "run --runtime /bin/false");
    // /bin/true "runs" `sh -c 'exit 3'` and reports success.
    let err = fails_with(&root, &["run", "--rm", "--runtime", "/bin/true", "img:1", "sh", "-c", "exit 3"], 125);
    assert!(err.contains("/bin/true"), "{err}");
    assert_nothing_left(&root, &before, "run --runtime /bin/true");
}

#[test]
fn a_relative_working_directory_is_refused_with_125() {
    let root = root_with_image();
    let before = state(&root);
    // docker: "the working directory 'relative' is invalid, it needs to be an absolute path",
    // 125. strata: runc's `level=error msg="runc run failed: Cwd must be an absolute path"`, 1.
    let err = fails_with(&root, &["run", "--rm", "-w", "relative", "img:1", "true"], 125);
    assert!(err.contains("relative") && err.contains("absolute"), "{err}");
    assert_nothing_left(&root, &before, "run -w relative");
    let err = root.fails(&["create", "-w", "relative", "img:1", "true"]);
    assert!(err.contains("absolute"), "{err}");
    assert_nothing_left(&root, &before, "create -w relative");
}

#[test]
fn an_env_name_without_value_takes_the_callers_value_as_docker_does() {
    let root = root_with_image();
    let before = state(&root);
    // docker: `-e NAME` passes the caller's NAME, or nothing if it has none.
    let out = strata_cmd(root.path(), &["run", "--rm", "-e", "FROM_CALLER", "-e", "UNSET_HERE", "img:1", "sh", "-c"])
        .arg("echo \"$FROM_CALLER/${UNSET_HERE-unset}\"")
        .env("FROM_CALLER", "given")
        .env_remove("UNSET_HERE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "given/unset\n");
    assert_nothing_left(&root, &before, "run -e NAME");
}

// 7. Containers that are not there.

#[test]
fn an_unknown_container_is_one_line_no_such_container() {
    let root = root_with_image();
    let id = root.ok(&["create", "--name", "kept", "img:1"]);
    let before = state(&root);
    let out = root.path().join("inputs/out.tar");
    let out = out.to_str().unwrap();
    let missing_id = "0123456789abcdef".repeat(4);
    let traversal = format!("../containers/{id}");
    for name in ["nosuch", missing_id.as_str(), "../x", "/../x", "..", ".", traversal.as_str(), "kept/../kept"] {
        for args in [
            &["start", "-a", name][..],
            &["rm", name],
            &["rm", "-f", name],
            &["diff", name],
            &["commit", name],
            &["commit", name, "new:1"],
            &["export", name, "-o", out],
            &["mount", name],
            &["umount", name],
        ] {
            let err = root.fails(args);
            assert!(err.contains("no such container") && err.contains(name), "strata {args:?}: {err}");
            assert_same(&root, &before, &format!("strata {args:?}"));
        }
    }
    // `rm` of several: the one that exists goes, the other is one line.
    let err = root.fails(&["rm", "nosuch", "kept"]);
    assert!(err.contains("no such container: nosuch"), "{err}");
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
    assert!(root.mounts().is_empty());
    assert_spotless(&root);
}

#[test]
fn inspect_of_an_unknown_name_says_no_such_container() {
    let root = root_with_image();
    // `inspect` takes containers first, then images: not finding either is not "no such
    // image" alone (docker: "No such object").
    for name in ["nosuch", "../x"] {
        let err = root.fails(&["inspect", name]);
        assert!(err.contains("no such") && err.contains("container") && err.contains(name), "{err}");
    }
}

#[test]
fn a_failed_export_leaves_its_output_file_alone() {
    let root = root_with_image();
    let path = root.path().join("inputs/precious.tar");
    std::fs::write(&path, "precious\n").unwrap();
    root.fails(&["export", "nosuch", "-o", path.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    let fresh = root.path().join("inputs/fresh.tar");
    root.fails(&["export", "nosuch", "-o", fresh.to_str().unwrap()]);
    assert!(!fresh.exists(), "an empty tar was left behind");
}

#[test]
fn an_export_to_an_impossible_file_names_the_file() {
    let root = root_with_image();
    root.ok(&["create", "--name", "ex", "img:1"]);
    let err = root.fails(&["export", "ex", "-o", "/nonexistent/dir/out.tar"]);
    assert!(err.contains("/nonexistent/dir/out.tar"), "{err}");
    assert!(root.mounts().is_empty());
}

#[test]
fn an_export_that_cannot_be_written_leaves_no_mount() {
    let root = root_with_image();
    root.ok(&["create", "--name", "ex", "img:1"]);
    // A first mount leaves the kernel's work/work directory in the writable layer.
    root.ok(&["mount", "ex"]);
    root.ok(&["umount", "ex"]);
    let before = state(&root);
    let err = root.fails(&["export", "ex", "-o", "/dev/full"]);
    assert!(err.contains("No space left"), "{err}");
    assert!(root.mounts().is_empty(), "{:?}", root.mounts());
    assert_same(&root, &before, "export to /dev/full");
    assert!(entries(&root.path().join("strata/mounts")).is_empty());
    assert_spotless(&root);
}

// 8. Container commands killed at each step.

/// After a kill, the next command sees no container named `name` or a whole one: listed,
/// inspectable, with both its layers.
fn none_or_whole(root: &Root, name: &str, what: &str) -> bool {
    let Some(row) = ps_row(root, name) else {
        let out = root.strata(&["inspect", name]);
        assert!(!out.status.success(), "{what}: inspect finds {name}, ps -a does not");
        return false;
    };
    let inspect = inspect(root, name);
    assert_eq!(inspect["Id"], row["Id"], "{what}");
    for dir in ["UpperDir", "WorkDir"] {
        let path = inspect["GraphDriver"]["Data"][dir].as_str().unwrap();
        assert!(Path::new(path).parent().unwrap().is_dir(), "{what}: {name} has no layer at {path}");
    }
    true
}

#[test]
fn a_create_killed_at_each_step_is_undone_by_the_next_command() {
    for failpoint in ["create.staged", "create.linked", "create.published", "container.layers", "container.created"] {
        for next_is_check in [false, true] {
            let what = format!("create killed at {failpoint}, then {}", if next_is_check { "check" } else { "ps" });
            let root = root_with_image();
            let before = state(&root);
            let listing = layers(&root);
            kill_at(&root, failpoint, &["create", "--name", "k1", "img:1"]);
            if next_is_check {
                // A read-only check sees an abandoned operation, no damage.
                let report = root.ok(&["check"]);
                assert!(report.contains("abandoned-operation"), "{what}: {report}");
            } else {
                assert!(!none_or_whole(&root, "k1", &what), "{what}: the killed create is listed");
                assert_eq!(layers(&root), listing, "{what}: overlay2/ after ps");
            }
            // The next write (a create of another) sweeps: its two layers are the only new ones.
            let id = root.ok(&["create", "--name", "k2", "img:1", "true"]);
            let now = layers(&root);
            assert_eq!(now.len(), listing.len() + 2, "{what}: {now:?}");
            assert!(listing.iter().all(|l| now.contains(l)), "{what}: {now:?}");
            assert_eq!(names(&root), ["k2"], "{what}");
            assert!(entries(&root.path().join("strata/tmp")).is_empty(), "{what}");
            // The killed container's name is free.
            root.ok(&["create", "--name", "k1", "img:1", "true"]);
            root.ok(&["rm", "k1", &id]);
            assert_nothing_left(&root, &before, &what);
        }
    }
}

#[test]
fn a_run_killed_before_its_container_ran_leaves_one_that_starts_or_goes() {
    for failpoint in ["container.created", "mount.recorded", "start.recorded", "umount.unmounted"] {
        for then_start in [false, true] {
            let what = format!("run killed at {failpoint}, then {}", if then_start { "start" } else { "rm" });
            let root = root_with_image();
            let before = state(&root);
            kill_at(&root, failpoint, &["run", "--name", "sr", "img:1", "sh", "-c", "echo ran >> /log"]);
            // Whatever its record says, nothing runs it: `ps` does not show it up, and a
            // reader may see a mount left over from the killed run but no process.
            assert_eq!(root.ok(&["ps", "-q"]), "", "{what}: shown as running");
            if !none_or_whole(&root, "sr", &what) {
                assert_eq!(failpoint, "container.created", "{what}: the container is gone");
                root.ok(&["ps", "-a"]);
                assert_nothing_left(&root, &before, &what);
                continue;
            }
            let row = ps_row(&root, "sr").unwrap();
            assert_ne!(row["State"], "running", "{what}: {row}");
            assert!(!row["Status"].as_str().unwrap().starts_with("Up"), "{what}: {row}");
            assert_eq!(inspect(&root, "sr")["State"]["Running"], false, "{what}");
            let id = row["Id"].as_str().unwrap().to_owned();
            assert_no_processes(&root, &id);
            if failpoint == "start.recorded" {
                // The case at hand: the record says running, and nothing runs it.
                let record = root.path().join("containers").join(&id).join("config.v2.json");
                let record: serde_json::Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
                assert_eq!(record["State"]["Running"], true, "{what}");
            }

            if then_start {
                let out = root.strata(&["start", "-a", "sr"]);
                assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
                assert!(root.mounts().is_empty(), "{what}: {:?}", root.mounts());
                let log = if failpoint == "umount.unmounted" { "ran\nran\n" } else { "ran\n" };
                let merged = root.ok(&["mount", "sr"]);
                assert_eq!(std::fs::read_to_string(Path::new(&merged).join("log")).unwrap(), log, "{what}");
                root.ok(&["umount", "sr"]);
                let row = ps_row(&root, "sr").unwrap();
                assert_eq!(row["State"], "exited", "{what}: {row}");
                assert!(row["Status"].as_str().unwrap().starts_with("Exited (0) "), "{what}: {row}");
                assert_spotless(&root);
            }
            root.ok(&["rm", "sr"]);
            assert_no_processes(&root, &id);
            assert_nothing_left(&root, &before, &what);
        }
    }
}

#[test]
fn a_run_killed_before_its_container_ran_is_not_shown_as_exited_2000_years_ago() {
    for failpoint in ["start.recorded", "umount.unmounted"] {
        let root = root_with_image();
        kill_at(&root, failpoint, &["run", "--name", "sr", "img:1", "true"]);
        // The record says Running with FinishedAt at Go's zero time: `ps` takes it as ended
        // successfully in year 1. `start`/`rm` would record exit 137 "killed"; a reader
        // should say no less.
        let row = ps_row(&root, "sr").unwrap();
        let status = row["Status"].as_str().unwrap();
        assert!(!status.contains("years"), "{failpoint}: {row}");
        if failpoint == "start.recorded" {
            assert!(!status.starts_with("Exited (0)"), "{failpoint}: its command never ran: {row}");
        }
    }
}

#[test]
fn an_rm_killed_at_each_step_is_finished_by_the_next_command() {
    for failpoint in ["rm.journaled", "remove.renamed"] {
        for next in ["ps", "check", "create", "start"] {
            let what = format!("rm killed at {failpoint}, then {next}");
            let root = root_with_image();
            let before = state(&root);
            root.ok(&["run", "--name", "gone", "img:1", "sh", "-c", "echo x > /x"]);
            kill_at(&root, failpoint, &["rm", "gone"]);
            match next {
                "ps" => assert!(!none_or_whole(&root, "gone", &what), "{what}: still listed"),
                "check" => {
                    let report = root.ok(&["check"]);
                    assert!(report.contains("abandoned-operation"), "{what}: {report}");
                    root.ok(&["check", "--repair"]);
                }
                // A writer that wants the name finds it free.
                "create" => {
                    root.ok(&["create", "--name", "gone", "img:1"]);
                    root.ok(&["rm", "gone"]);
                }
                // The half-removed container cannot be started (nothing to start: 1, as docker).
                _ => {
                    let err = fails_with(&root, &["start", "-a", "gone"], 1);
                    assert!(err.contains("no such container"), "{what}: {err}");
                }
            }
            assert_nothing_left(&root, &before, &what);
        }
    }
}

// 9. The strata process of a running container killed from outside.

#[test]
fn a_run_killed_from_outside_leaves_a_container_rm_f_removes_whole() {
    let root = root_with_image();
    let before = state(&root);
    let (mut bg, id) = Background::sleeper(&root, "k9");
    bg.child.kill().unwrap();
    let (status, _) = bg.wait(Duration::from_secs(10));
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));

    // The runtime still runs it: it is up, and refused as such.
    assert!(processes(&root, &id).iter().any(|p| p.ends_with(": sleep 30")), "the container died with strata");
    assert_eq!(ps_row(&root, "k9").unwrap()["State"], "running");
    let err = root.fails(&["rm", "k9"]);
    assert!(err.contains("running"), "{err}");
    let err = fails_with(&root, &["start", "-a", "k9"], 125);
    assert!(err.contains("already running"), "{err}");

    let start = Instant::now();
    assert_eq!(root.ok(&["rm", "-f", "k9"]), "k9");
    assert!(start.elapsed() < Duration::from_secs(5), "rm -f took {:?}", start.elapsed());
    assert_no_processes(&root, &id);
    assert_nothing_left(&root, &before, "rm -f of a container whose strata process was killed");
}

/// The strata process of `run` killed with SIGKILL while its container runs `script`: the
/// monitor process it started sees the container to its end.
fn run_and_kill_the_front(root: &Root, name: &str, script: &str) -> (Child, u32) {
    let mut front = strata_cmd(root.path(), &["run", "--name", name, "img:1", "sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&format!("`ps` to show {name} up"), Duration::from_secs(20), || {
        ps_row(root, name).is_some_and(|row| row["State"] == "running")
    });
    let monitor = common::descendants(front.id())
        .into_iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("container-monitor"))
        })
        .expect("run has a monitor process");
    front.kill().unwrap();
    front.wait().unwrap();
    (front, monitor)
}

#[test]
fn a_killed_run_leaves_its_container_to_end_unmounted_with_its_own_exit_status() {
    let root = root_with_image();
    let before = state(&root);
    run_and_kill_the_front(&root, "k9", "sleep 1; exit 3");
    wait_for("k9 to end", Duration::from_secs(20), || ps_row(&root, "k9").is_some_and(|row| row["State"] == "exited"));
    let state = &inspect(&root, "k9")["State"];
    assert_eq!(state["ExitCode"], 3, "{state}");
    assert_eq!(state["Error"], "", "{state}");
    assert_eq!(root.mounts(), Vec::<PathBuf>::new(), "the killed run's container is still mounted");
    assert_spotless(&root);
    root.ok(&["rm", "k9"]);
    assert_nothing_left(&root, &before, "a run whose strata process was killed");
}

#[test]
fn a_killed_monitor_leaves_a_mount_that_check_finds_and_repair_drops() {
    let root = root_with_image();
    let before = state(&root);
    let (_, monitor) = run_and_kill_the_front(&root, "km", "sleep 1");
    Command::new("kill").args(["-KILL", &monitor.to_string()]).status().unwrap();
    let id = ps_row(&root, "km").unwrap()["Id"].as_str().unwrap().to_owned();
    wait_for("km's processes to end", Duration::from_secs(20), || processes(&root, &id).is_empty());
    assert_eq!(root.mounts().len(), 1);

    let out = root.strata(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dead-container-monitor") && text.contains("its tree is still mounted"), "{text}");
    let out = root.ok(&["check", "--repair"]);
    assert!(out.contains("dead-container-monitor"), "{out}");
    assert_eq!(root.mounts(), Vec::<PathBuf>::new(), "check --repair left the mount");
    assert_spotless(&root);
    let state = &inspect(&root, "km")["State"];
    assert_eq!((state["Running"].as_bool(), state["ExitCode"].as_i64()), (Some(false), Some(137)), "{state}");
    root.ok(&["rm", "km"]);
    assert_nothing_left(&root, &before, "a run whose monitor was killed, after check --repair");
}

#[test]
fn a_working_directory_through_symlinks_is_resolved_and_made_inside_the_root() {
    let root = root_with_image();
    let fs = root.path().join("inputs/evil");
    std::fs::create_dir_all(fs.join("some/dir")).unwrap();
    host_rootfs(&fs);
    let host_target = root.path().join("inputs/host-only");
    std::os::unix::fs::symlink("/some/dir", fs.join("evil")).unwrap();
    std::os::unix::fs::symlink("/nowhere/x", fs.join("dangling")).unwrap();
    std::os::unix::fs::symlink(&host_target, fs.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/os-release", fs.join("file")).unwrap();
    root.ok(&["import", fs.to_str().unwrap(), "evil:1"]);

    let pwd = |dir: &str| root.ok(&["run", "--rm", "-w", dir, "evil:1", "sh", "-c", "pwd"]);
    assert_eq!(pwd("/evil/new"), "/some/dir/new");
    assert_eq!(pwd("/dangling/y"), "/nowhere/x/y");
    assert_eq!(pwd("/evil/../x"), "/x");
    // An absolute symlink to a host path leads to that path inside the container, never out.
    assert_eq!(pwd("/escape/made"), format!("{}/made", host_target.display()));
    assert!(!host_target.exists(), "a working directory was made on the host");
    let err = fails_with(&root, &["run", "--rm", "-w", "/file", "evil:1", "true"], 125);
    assert!(err.contains("working directory \"/file\": leads to something that is not a directory"), "{err}");
}

#[test]
fn cli_edges_are_one_line_and_refused_before_anything_is_made() {
    let root = root_with_image();
    let before = state(&root);
    let err = one_line(root.strata(&["--root", "", "images"]), 2, "--root \"\"");
    assert!(err.contains("--root"), "{err}");
    let err = fails_with(&root, &["create", "--network", "bogus", "img:1"], 2);
    assert!(err.contains("possible values: none, host"), "{err}");
    let err = fails_with(&root, &["create", "-e", "", "img:1"], 1);
    assert!(err.contains("invalid environment variable \"\""), "{err}");
    let err = fails_with(&root, &["run", "-e", "=x", "img:1", "true"], 125);
    assert!(err.contains("invalid environment variable \"=x\""), "{err}");
    let err = fails_with(&root, &["run", "-u", "0:0:0", "img:1", "true"], 125);
    assert!(err.contains("user \"0:0:0\": is invalid"), "{err}");
    let err = fails_with(&root, &["run", "--security-opt", "seccomp=/no/such/profile.json", "img:1", "true"], 125);
    assert!(err.contains("/no/such/profile.json"), "{err}");
    let err = fails_with(&root, &["run", "--security-opt", "apparmor=x", "img:1", "true"], 125);
    assert!(err.contains("security option"), "{err}");
    assert_nothing_left(&root, &before, "refused create and run options");

    // A root that does not exist: commands that read say so, and make nothing.
    let missing = root.path().join("no-such-store");
    for args in [&["images"][..], &["ps", "-a"], &["layer", "ls"], &["check"], &["inspect", "x"], &["rmi", "x"]] {
        let out = strata_cmd(&missing, args).output().unwrap();
        let err = one_line(out, 1, &format!("{args:?} on a missing root"));
        assert!(err.contains("there is no store at"), "{err}");
    }
    assert!(!missing.exists(), "a command made the missing root");
}

// 10. Several at once.

#[test]
fn parallel_runs_on_one_root_all_succeed_and_leave_nothing() {
    let root = root_with_image();
    let before = state(&root);
    for round in 0..2 {
        let children: Vec<Child> = (0..4)
            .map(|_| {
                strata_cmd(root.path(), &["run", "--rm", "img:1", "true"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        assert_nothing_left(&root, &before, &format!("round {round} of 4 parallel run --rm"));
    }
}

#[test]
fn two_creates_of_one_name_at_once_give_one_container() {
    let root = root_with_image();
    let before = state(&root);
    for round in 0..6 {
        let children: Vec<Child> = (0..2)
            .map(|_| {
                strata_cmd(root.path(), &["create", "--name", "same", "img:1"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let won: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(won.len(), 1, "round {round}: {outs:?}");
        let id = String::from_utf8_lossy(&won[0].stdout).trim().to_owned();
        let lost = outs.into_iter().find(|o| !o.status.success()).unwrap();
        let err = one_line(lost, 1, &format!("round {round}: the second create"));
        assert!(err.contains("already in use") && err.contains(&id[..12]), "round {round}: {err}");
        assert_eq!(names(&root), ["same"], "round {round}");
        assert_eq!(layers(&root).len(), 1 + 2, "round {round}: {:?}", layers(&root));
        root.ok(&["rm", "same"]);
        assert_nothing_left(&root, &before, &format!("round {round}"));
    }
}

#[test]
fn two_starts_or_two_rms_of_one_container_at_once_do_it_once() {
    let root = root_with_image();
    let before = state(&root);
    let both = |args: &[&str]| -> Vec<Output> {
        let children: Vec<Child> = (0..2)
            .map(|_| strata_cmd(root.path(), args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
    };
    for round in 0..3 {
        root.ok(&["create", "--name", "twice", "img:1", "sh", "-c", "sleep 1; echo ran >> /log"]);
        let outs = both(&["start", "-a", "twice"]);
        let ran = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(ran, 1, "round {round}: {outs:?}");
        let refused = outs.into_iter().find(|o| !o.status.success()).unwrap();
        let err = one_line(refused, 125, &format!("round {round}: the second start"));
        assert!(err.contains("already running"), "round {round}: {err}");
        assert!(root.mounts().is_empty(), "round {round}: {:?}", root.mounts());
        let merged = root.ok(&["mount", "twice"]);
        assert_eq!(std::fs::read_to_string(Path::new(&merged).join("log")).unwrap(), "ran\n", "round {round}");
        root.ok(&["umount", "twice"]);

        let outs = both(&["rm", "twice"]);
        assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 1, "round {round}: {outs:?}");
        let refused = outs.into_iter().find(|o| !o.status.success()).unwrap();
        let err = one_line(refused, 1, &format!("round {round}: the second rm"));
        assert!(err.contains("no such container"), "round {round}: {err}");
        assert_nothing_left(&root, &before, &format!("round {round}"));
    }
}
