//! Containers that keep running, with the real binary and real runc: `run -d` returns once the
//! container runs and leaves a monitor of its own session behind; `logs` (dockerd's json-file
//! format, `-f`, `-t`, `--tail`, `--since`), `stop` (the stop signal, then SIGKILL after
//! `-t`), `kill -s` and `wait`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Root;
use common::images::{copy_with_libs, host_rootfs};
use serde_json::Value;

/// Import a tiny image of this host's `sh` and `sleep` as `img:1`.
fn image(root: &Root) {
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    copy_with_libs(dir.path(), Path::new("/usr/bin/sleep"));
    root.ok(&["import", dir.path().to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
}

fn inspect(root: &Root, name: &str) -> Value {
    serde_json::from_str::<Value>(&root.ok(&["inspect", name])).unwrap()[0].clone()
}

/// `run -d` with `script` as the container's shell script; its ID. The command returns with
/// its pipes closed (a monitor that kept them would hang `output()`).
fn run_detached(root: &Root, name: &str, script: &str) -> String {
    let started = Instant::now();
    let id = root.ok(&["run", "-d", "--name", name, "img:1", "sh", "-c", script]);
    assert!(started.elapsed() < Duration::from_secs(5), "run -d took {:?}", started.elapsed());
    assert_eq!(id.len(), 64, "{id}");
    id
}

/// Wait until `strata logs` shows `text` on stdout.
fn wait_for_log(root: &Root, name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !root.ok(&["logs", name]).contains(text) {
        assert!(Instant::now() < deadline, "{text:?} never reached the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The monitor process of container `id`, as its record names it.
fn monitor_pid(root: &Root, id: &str) -> i64 {
    let record = std::fs::read(root.path().join("containers").join(id).join("config.v2.json")).unwrap();
    serde_json::from_slice::<Value>(&record).unwrap()["State"]["Pid"].as_i64().unwrap()
}

/// Nothing of the store's containers is mounted, and `check` finds the store sound.
fn left_clean(root: &Root) {
    assert!(root.mounts().is_empty(), "left mounted: {:?}", root.mounts());
    root.ok(&["check"]);
}

/// The session ID of process `pid`.
fn session(pid: i64) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(") ").unwrap().1.split(' ').nth(3).unwrap().parse().unwrap()
}

#[test]
fn a_detached_container_runs_on_logs_and_stops_with_its_signal() {
    let root = Root::new();
    image(&root);
    let script = r#"echo out; echo err >&2; trap "echo bye; exit 3" TERM; while :; do sleep 0.1; done"#;
    let id = run_detached(&root, "web", script);

    // It runs on, in a session of its own, after the command that started it returned.
    let state = &inspect(&root, "web")["State"];
    assert_eq!(state["Running"], true, "{state}");
    let monitor = monitor_pid(&root, &id);
    assert_ne!(monitor, state["Pid"].as_i64().unwrap(), "inspect shows the container's first process");
    assert_eq!(session(monitor), monitor, "the monitor leads a session of its own");
    assert_ne!(session(monitor), session(std::process::id() as i64));
    assert!(root.ok(&["ps", "-q"]).contains(&id[..12]));

    // Its output is in dockerd's json-file log, each stream where it belongs.
    wait_for_log(&root, "web", "out");
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let out = root.strata(&["logs", "web"]);
        if !out.stderr.is_empty() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");
    let file = root.path().join("containers").join(&id).join(format!("{id}-json.log"));
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let out = lines.iter().find(|l| l["stream"] == "stdout").unwrap();
    assert_eq!(out["log"], "out\n");
    assert!(out["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{out}");
    let stamped = root.ok(&["logs", "-t", "web"]);
    let (time, line) = stamped.split_once(' ').unwrap();
    assert_eq!((time, line), (out["time"].as_str().unwrap(), "out"));
    assert_eq!(root.ok(&["logs", "--since", "1h", "web"]), "out");
    assert_eq!(root.ok(&["logs", "--until", "1h", "web"]), "", "nothing was written an hour ago");
    assert_eq!(root.ok(&["logs", "--tail", "0", "web"]), "");

    // `exec` runs beside it: the container's environment, user and directory unless told
    // otherwise, its status passed through, 127 for a program that is not there.
    assert_eq!(root.ok(&["exec", "-e", "A=1", "-w", "/tmp", "web", "sh", "-c", "echo $A; pwd"]), "1\n/tmp");
    assert_eq!(root.ok(&["exec", "-e", "PATH=/nowhere", "web", "/bin/sh", "-c", "echo $PATH"]), "/nowhere");
    let uid = r#"while read k v rest; do [ "$k" = Uid: ] && echo $v; done < /proc/self/status; true"#;
    assert_eq!(root.ok(&["exec", "web", "sh", "-c", uid]), "0");
    assert_eq!(root.ok(&["exec", "-u", "1000:1000", "web", "sh", "-c", uid]), "1000");
    assert_eq!(root.strata(&["exec", "web", "sh", "-c", "exit 7"]).status.code(), Some(7));
    let missing = root.strata(&["exec", "web", "no-such-program"]);
    assert_eq!(missing.status.code(), Some(127));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
    let mut cat = common::strata_cmd(root.path(), &["exec", "-i", "web", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut cat.stdin.take().unwrap(), b"through stdin\n").unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.wait_with_output().unwrap().stdout), "through stdin\n");
    assert_eq!(root.ok(&["exec", "-d", "web", "sh", "-c", "echo later > /tmp/d"]), "");
    let deadline = Instant::now() + Duration::from_secs(5);
    while root.strata(&["exec", "web", "cat", "/tmp/d"]).stdout != b"later\n" {
        assert!(Instant::now() < deadline, "exec -d never ran");
        std::thread::sleep(Duration::from_millis(20));
    }

    // `logs -f` follows it until `stop` ends it with its trap's status.
    let follower = common::strata_cmd(root.path(), &["logs", "-f", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(root.ok(&["stop", "web"]), "web");
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "out\nbye\n");
    assert_eq!(root.ok(&["wait", "web"]), "3");
    let state = &inspect(&root, "web")["State"];
    assert_eq!((state["Running"].clone(), state["ExitCode"].clone()), (Value::Bool(false), Value::from(3)));
    left_clean(&root);
    // Stopping a stopped container is not an error; signalling one is.
    assert_eq!(root.ok(&["stop", "web"]), "web");
    for args in [&["kill", "web"][..], &["exec", "web", "true"]] {
        let out = root.strata(args);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"), "{args:?}");
    }
}

#[test]
fn stop_kills_what_ignores_its_signal_and_kill_sends_the_one_asked() {
    let root = Root::new();
    image(&root);
    run_detached(&root, "stubborn", r#"trap "" TERM; echo ready; while :; do sleep 0.1; done"#);
    run_detached(&root, "usr1", r#"trap "exit 5" USR1; echo ready; while :; do sleep 0.1; done"#);
    wait_for_log(&root, "stubborn", "ready");
    wait_for_log(&root, "usr1", "ready");

    let started = Instant::now();
    assert_eq!(root.ok(&["stop", "-t", "1", "stubborn"]), "stubborn");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(8), "stop -t 1 took {took:?}");
    assert_eq!(root.ok(&["wait", "stubborn"]), "137", "killed by SIGKILL");

    let bad = root.strata(&["kill", "-s", "NOPE", "usr1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a signal"));
    assert_eq!(root.ok(&["kill", "-s", "SIGUSR1", "usr1"]), "usr1");
    assert_eq!(root.ok(&["wait", "usr1"]), "5");
    assert_eq!(root.ok(&["ps", "-q"]), "", "nothing runs");
    // `rm -f` of a detached container that runs: killed, unmounted and removed.
    run_detached(&root, "gone", "while :; do sleep 0.1; done");
    assert_eq!(root.ok(&["rm", "-f", "gone", "stubborn", "usr1"]), "gone\nstubborn\nusr1");
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    left_clean(&root);
}

#[test]
fn run_d_of_a_missing_command_fails_as_docker_and_leaves_nothing_running() {
    let root = Root::new();
    image(&root);
    let out = root.strata(&["run", "-d", "--rm", "img:1", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program"));
    assert_eq!(root.ok(&["ps", "-aq"]), "", "--rm removed it");
    // What needs a daemon or a network of the container's own is refused, not ignored.
    for (args, words) in [
        (&["run", "-d", "-p", "8080:80", "img:1", "true"][..], "cannot publish port 8080:80"),
        (&["create", "--restart", "always", "img:1", "true"], "restart policies need a daemon"),
    ] {
        let out = root.strata(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(words), "{args:?}: {out:?}");
    }
    assert_eq!(root.ok(&["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn pause_freezes_top_lists_commit_pauses_and_restart_starts_again() {
    let root = Root::new();
    image(&root);
    run_detached(&root, "counter", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done");
    let merged = std::path::PathBuf::from(
        inspect(&root, "counter")["GraphDriver"]["Data"]["MergedDir"].as_str().unwrap().to_owned(),
    );
    let count =
        || std::fs::read_to_string(merged.join("tmp/count")).unwrap_or_default().trim().parse::<u64>().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() < 2 {
        assert!(Instant::now() < deadline, "the counter never counted");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Frozen: the count stands still, ps says so, exec is refused.
    assert_eq!(root.ok(&["pause", "counter"]), "counter");
    let frozen = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen, "a paused container went on counting");
    assert_eq!(root.ok(&["ps", "--format", "{{.Names}} {{.State}}"]), "counter paused");
    assert!(root.ok(&["ps", "--format", "{{.Status}}"]).ends_with("(Paused)"));
    assert_eq!(inspect(&root, "counter")["State"]["Paused"], true);
    let exec = root.strata(&["exec", "counter", "true"]);
    assert!(String::from_utf8_lossy(&exec.stderr).contains("is paused"), "{exec:?}");
    assert!(!root.strata(&["pause", "counter"]).status.success(), "paused twice");

    // `top`: ps(1)'s header and the container's processes only.
    let top = root.ok(&["top", "counter"]);
    let mut lines = top.lines();
    assert!(lines.next().unwrap().contains("PID"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.contains("while :")), "{top}");
    assert!(rows.iter().all(|r| !r.contains("strata")), "only the container's processes: {top}");

    assert_eq!(root.ok(&["unpause", "counter"]), "counter");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() <= frozen {
        assert!(Instant::now() < deadline, "an unpaused container did not go on");
        std::thread::sleep(Duration::from_millis(20));
    }

    // `commit` freezes it for the commit and thaws it after; --pause=false leaves it be.
    assert!(root.ok(&["commit", "counter", "counted:1"]).starts_with("sha256:"));
    assert!(root.ok(&["commit", "--pause=false", "counter", "counted:2"]).starts_with("sha256:"));
    assert_eq!(root.ok(&["ps", "--format", "{{.Names}} {{.State}}"]), "counter running");
    let committed = root.ok(&["run", "--rm", "counted:1", "cat", "/tmp/count"]);
    assert!(committed.parse::<u64>().unwrap() >= frozen, "{committed}");

    // `restart`: stopped (sh ignores SIGTERM as PID 1: killed after -t), then running anew.
    let first = inspect(&root, "counter")["State"]["StartedAt"].as_str().unwrap().to_owned();
    assert_eq!(root.ok(&["restart", "-t", "1", "counter"]), "counter");
    let state = inspect(&root, "counter")["State"].clone();
    assert_eq!(state["Running"], true);
    assert!(state["StartedAt"].as_str().unwrap() > first.as_str(), "{state}");
    // `rename`, running: the new name works, the old one is gone, a taken one is refused.
    root.ok(&["create", "--name", "other", "img:1", "true"]);
    assert_eq!(root.ok(&["rename", "counter", "counted"]), "");
    assert_eq!(root.ok(&["ps", "--format", "{{.Names}}"]), "counted");
    assert!(!root.strata(&["inspect", "counter"]).status.success());
    let taken = root.strata(&["rename", "counted", "other"]);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already in use"), "{taken:?}");
    assert_eq!(root.ok(&["rename", "counted", "counter"]), "");
    // A paused container stops too.
    root.ok(&["pause", "counter"]);
    assert_eq!(root.ok(&["stop", "-t", "1", "counter"]), "counter");
    assert_eq!(root.ok(&["wait", "counter"]), "137");
    assert_eq!(inspect(&root, "counter")["State"]["Paused"], false);
    root.ok(&["check"]);
}

#[test]
fn a_killed_monitor_leaves_a_container_that_stop_ends_and_records() {
    let root = Root::new();
    image(&root);
    let id = run_detached(&root, "orphan", "while :; do sleep 0.1; done");
    let monitor = monitor_pid(&root, &id);
    std::process::Command::new("kill").args(["-9", &monitor.to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The truth: the runtime still runs it.
    assert_eq!(root.ok(&["ps", "--format", "{{.Names}} {{.State}}"]), "orphan running");
    assert_eq!(root.ok(&["stop", "-t", "1", "orphan"]), "orphan");
    assert_eq!(root.ok(&["wait", "orphan"]), "137", "recorded as killed");
    assert_eq!(root.ok(&["ps", "-q"]), "");
    left_clean(&root);
}

#[test]
fn a_log_with_limits_rotates_and_logs_reads_across_the_files() {
    let root = Root::new();
    image(&root);
    for bad in ["max-size=ten", "max-file=0", "compress=true"] {
        let out = root.strata(&["run", "-d", "--log-opt", bad, "img:1", "true"]);
        assert!(!out.status.success(), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("log option"), "{bad}: {out:?}");
    }
    // 200 lines of 50 bytes of JSON each (10 kB) into files of 1 kB, three kept.
    let script = r#"i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo "line $i"; done"#;
    let id =
        root.ok(&["run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "img:1", "sh", "-c", script]);
    assert_eq!(root.ok(&["wait", &id]), "0");
    let dir = root.path().join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-json.log"))
        .collect();
    files.sort();
    assert_eq!(files, [format!("{id}-json.log"), format!("{id}-json.log.1"), format!("{id}-json.log.2")]);
    for file in &files {
        assert!(std::fs::metadata(dir.join(file)).unwrap().len() <= 1024, "{file} is over the limit");
    }
    assert!(std::fs::read_to_string(&log).unwrap().contains("line 200\\n"));
    // `logs` reads the kept files oldest first: the last lines, in order, ending with the last.
    let shown: Vec<u32> =
        root.ok(&["logs", &id]).lines().map(|l| l.strip_prefix("line ").unwrap().parse().unwrap()).collect();
    assert!(shown.len() > 30 && shown.len() < 200, "{} lines kept", shown.len());
    assert_eq!(shown.last(), Some(&200));
    assert!(shown.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missing: {shown:?}");
    assert_eq!(root.ok(&["logs", "--tail", "2", &id]), "line 199\nline 200");
    let host: Value = serde_json::from_slice(&std::fs::read(dir.join("hostconfig.json")).unwrap()).unwrap();
    assert_eq!(host["LogConfig"]["Config"]["max-size"], "1k", "kept where dockerd keeps it");
}

/// The processes whose command line contains `text`.
fn pids_with(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(text) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn fifty_detached_at_once_are_all_tracked_and_all_stopped() {
    let root = Root::new();
    image(&root);
    let children: Vec<_> = (0..50)
        .map(|i| {
            common::strata_cmd(root.path(), &["run", "-d", "--name", &format!("c{i:02}"), "img:1", "sleep", "1000"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(root.ok(&["ps", "-q"]).lines().count(), 50);
    let names: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    let mut args = vec!["stop", "-t", "0"];
    args.extend(names.iter().map(String::as_str));
    assert_eq!(root.ok(&args).lines().count(), 50);
    assert_eq!(root.ok(&["ps", "-q"]), "");
    let exited = root.ok(&["ps", "-a", "--format", "{{.State}}"]);
    assert!(exited.lines().all(|s| s == "exited") && exited.lines().count() == 50, "{exited}");
    left_clean(&root);
}

#[test]
fn a_killed_runtime_or_first_process_is_recorded_and_cleaned_up() {
    let root = Root::new();
    image(&root);
    // SIGKILL of the runtime: the monitor sees it end, removes what is left of the container.
    let id = run_detached(&root, "noruntime", "while :; do sleep 0.1; done");
    let runtime = pids_with(&format!("run --bundle {}", root.path().join("strata/containers").join(&id).display()));
    assert_eq!(runtime.len(), 1, "{runtime:?}");
    std::process::Command::new("kill").args(["-9", &runtime[0].to_string()]).status().unwrap();
    assert_eq!(root.ok(&["wait", "noruntime"]), "137");
    // SIGKILL of the container's first process: exit status 137.
    run_detached(&root, "nopid1", "while :; do sleep 0.1; done");
    let pid1 = inspect(&root, "nopid1")["State"]["Pid"].as_i64().unwrap();
    std::process::Command::new("kill").args(["-9", &pid1.to_string()]).status().unwrap();
    assert_eq!(root.ok(&["wait", "nopid1"]), "137");
    // Nothing runs, nothing is mounted, and the store is sound.
    assert_eq!(root.ok(&["ps", "-q"]), "");
    assert!(pids_with(root.path().to_str().unwrap()).is_empty(), "processes of this store are left");
    left_clean(&root);
}

/// `--init`: strata's binary is the first process (`/sbin/docker-init`), the command is not
/// PID 1, orphans are reaped, signals reach the command (a `sleep` that, as PID 1, would ignore
/// SIGTERM stops at once), and the command's status is the container's.
#[test]
fn init_reaps_and_passes_signals_on() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let out = root.ok(&["run", "--rm", "--init", "img:1", "sh", "-c", "echo $$; cat /proc/1/cmdline; echo"]);
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("1"), "{out}");
    assert!(lines.next().unwrap_or_default().starts_with("/sbin/docker-init\0--\0sh"), "{out:?}");
    let stats =
        root.ok(&["run", "--rm", "--init", "img:1", "sh", "-c", "(sleep 0.2 &); sleep 1; cat /proc/[0-9]*/stat"]);
    assert!(!stats.contains(") Z "), "a zombie was left: {stats}");
    let status = root.strata(&["run", "--rm", "--init", "img:1", "sh", "-c", "exit 7"]).status;
    assert_eq!(status.code(), Some(7));
    run_detached_init(&root);
    left_clean(&root);
}

fn run_detached_init(root: &Root) {
    root.ok(&["run", "-d", "--init", "--name", "in", "img:1", "sleep", "100"]);
    // The init must be past its first instructions (its signal handlers set) and the command
    // started: as with docker's tini, a SIGTERM before that finds a PID 1 that ignores it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = |top: String| top.lines().any(|l| l.ends_with(" sleep 100") && !l.contains("docker-init"));
    while !running(root.ok(&["top", "in"])) {
        assert!(Instant::now() < deadline, "sleep did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    root.ok(&["stop", "-t", "20", "in"]);
    assert!(started.elapsed() < Duration::from_secs(5), "SIGTERM did not reach sleep: {:?}", started.elapsed());
    assert_eq!(root.ok(&["wait", "in"]), "143");
    assert_eq!(inspect(root, "in")["HostConfig"]["Init"], true);
    root.ok(&["rm", "in"]);
}

/// SIGKILL of `strata exec` while its process runs: the process runs on in the container, as
/// `docker exec`'s does when its client is killed; the container is still running by every
/// account, `top` lists both, `stop` ends it all, and nothing is left.
#[test]
fn a_killed_exec_leaves_its_process_to_the_container() {
    let root = Root::new();
    image(&root);
    run_detached(&root, "ex", "while :; do sleep 0.1; done");
    let mut exec = common::strata_cmd(root.path(), &["exec", "ex", "sleep", "4242"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The exec'd process itself (argv `sleep 4242`), not strata's or the runtime's, whose
    // command lines name it too.
    let exec_d = || {
        pids_with("sleep 4242")
            .into_iter()
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x004242\x00"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while exec_d() == 0 {
        assert!(Instant::now() < deadline, "the exec never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    exec.kill().unwrap();
    exec.wait().unwrap();
    assert_eq!(root.ok(&["ps", "--format", "{{.Names}} {{.State}}"]), "ex running");
    assert!(root.ok(&["top", "ex"]).contains("sleep 4242"), "the exec'd process is the container's");
    root.ok(&["stop", "-t", "1", "ex"]);
    assert_eq!(exec_d(), 0, "the exec'd process outlived its container");
    root.ok(&["rm", "ex"]);
    left_clean(&root);
}

/// `-i`: an attached run's stdin is the container's (`OpenStdin`, as dockerd records it);
/// without it the container's stdin is empty; `-d -i` keeps it open for `attach`. `start`
/// returns once the container runs, as docker's, and `start -a` stays with it.
#[test]
fn interactive_stdin_and_start_detached() {
    let root = Root::new();
    image(&root);
    let piped = |args: &[&str], input: &str| {
        let out = common::strata_with_stdin(root.path(), args, input.as_bytes());
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(piped(&["run", "-i", "--rm", "img:1", "cat"], "typed\n"), (Some(0), "typed\n".into()));
    assert_eq!(piped(&["run", "--rm", "img:1", "cat"], "typed\n"), (Some(0), String::new()));
    let (code, id) = piped(&["run", "-d", "-i", "img:1", "cat"], "");
    assert_eq!(code, Some(0));
    assert_eq!(inspect(&root, id.trim())["State"]["Running"], true, "its stdin is open: cat waits");
    root.ok(&["rm", "-f", id.trim()]);
    root.ok(&["create", "-i", "--name", "ic", "img:1", "sh", "-c", "read x; echo got $x; exit 4"]);
    assert_eq!(inspect(&root, "ic")["Config"]["OpenStdin"], true);
    assert_eq!(piped(&["start", "-a", "ic"], "line\n"), (Some(4), "got line\n".into()));
    root.ok(&["create", "--name", "sd", "img:1", "sh", "-c", "sleep 3; exit 3"]);
    let started = Instant::now();
    assert_eq!(root.ok(&["start", "sd"]), "sd");
    assert!(started.elapsed() < Duration::from_millis(2500), "start waited for the container");
    assert_eq!(root.ok(&["wait", "sd"]), "3");
    root.ok(&["rm", "ic", "sd"]);
    left_clean(&root);
}
