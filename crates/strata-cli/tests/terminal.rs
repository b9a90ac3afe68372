//! Terminals with the real binary, runc and crun, driven through a real pseudo-terminal
//! (`script(1)`, whose terminal the test sizes with `stty`): `run -it` takes input, echoes it
//! and passes the exit status on; the container's terminal has the caller's size, and a
//! change of it reaches the container; `exec -it` beside a detached container; `run -dt`
//! logs what its terminal shows; `-t` without a terminal on the caller's side still gives the
//! container one; `ctrl-p ctrl-q` leaves a container running and `attach` (or `start -ai`)
//! comes back to it, its exit status passed on.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Root;
use common::images::{copy_with_libs, host_rootfs};

/// Whether the terminal showed the line `want` (maybe after the shell's prompt).
fn shows(out: &str, want: &str) -> bool {
    out.lines().any(|l| l.trim_start_matches('\0').trim_start_matches("# ") == want)
}

fn image(root: &Root) {
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    for bin in ["/usr/bin/sleep", "/usr/bin/stty", "/usr/bin/tty"] {
        copy_with_libs(dir.path(), Path::new(bin));
    }
    root.ok(&["import", dir.path().to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
}

/// Run `shell` (a sh command line naming strata as `$S`) in a fresh 33x101 pseudo-terminal,
/// `input` typed into it; its output (as the terminal showed it) and exit status.
fn in_terminal(root: &Root, shell: &str, input: &str) -> (String, i32) {
    in_terminal_typing(root, shell, &[input])
}

/// [`in_terminal`], each of `inputs` typed a second after the one before (the first at once):
/// keys the terminal driver would take for itself (`ctrl-q`) must come once strata has made
/// the terminal raw.
fn in_terminal_typing(root: &Root, shell: &str, inputs: &[&str]) -> (String, i32) {
    let strata = format!("{} --root {}", env!("CARGO_BIN_EXE_strata"), root.path().display());
    let line = format!("stty rows 33 cols 101; S='{strata}'; {shell}");
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("STRATA_REGISTRIES_CONF", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1), from util-linux");
    let mut stdin = child.stdin.take().unwrap();
    // script's stdin stays open until the command ends: at its end, script would end the session.
    let out = std::thread::scope(|scope| {
        scope.spawn(|| {
            for (n, input) in inputs.iter().enumerate() {
                if n > 0 {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                let _ = stdin.write_all(input.as_bytes());
            }
        });
        child.wait_with_output().unwrap()
    });
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn run_it_takes_input_and_has_the_callers_size() {
    common::require_root();
    let root = Root::new();
    image(&root);
    for runtime in ["runc", "crun"] {
        // Typed once strata has made this terminal raw: only the container's terminal echoes.
        let (out, code) = in_terminal_typing(
            &root,
            &format!("$S run --rm -it --runtime {runtime} img:1 sh"),
            &["", "echo hi-$((1+2)); stty size; tty; echo $TERM; exit 3\n"],
        );
        assert_eq!(code, 3, "{runtime}: {out}");
        for want in ["hi-3", "33 101", "/dev/pts/0", "xterm"] {
            assert!(shows(&out, want), "{runtime}: {want:?} in {out:?}");
        }
        assert_eq!(out.matches("echo hi-$((1+2))").count(), 1, "{runtime}: the container's echo: {out:?}");

        // A change of the caller's window size reaches the container's terminal.
        let (out, code) = in_terminal(
            &root,
            &format!(
                "(sleep 1; stty rows 44 cols 120 < /dev/tty) & $S run --rm -it --runtime {runtime} img:1 sh -c 'stty size; sleep 2.5; stty size'"
            ),
            "",
        );
        assert_eq!(code, 0, "{runtime}: {out}");
        let is_size = |l: &&str| {
            let words: Vec<&str> = l.split(' ').collect();
            words.len() == 2 && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        };
        let sizes: Vec<&str> =
            out.lines().map(|l| l.trim_start_matches('\0').trim_start_matches("# ")).filter(is_size).collect();
        assert_eq!(sizes, ["33 101", "44 120"], "{runtime}: {out:?}");
    }
    assert!(root.mounts().is_empty());
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

#[test]
fn exec_it_and_detached_terminals() {
    common::require_root();
    let root = Root::new();
    image(&root);
    root.ok(&["run", "-d", "--name", "bg", "img:1", "sleep", "100"]);
    let (out, code) = in_terminal(&root, "$S exec -it bg sh", "stty size; tty; exit 5\n");
    assert_eq!(code, 5, "{out}");
    assert!(shows(&out, "33 101"), "{out:?}");
    // Without a terminal on the caller's side, -t still gives the process one.
    assert_eq!(root.ok(&["exec", "-t", "bg", "tty"]), "/dev/pts/0");
    assert_eq!(root.ok(&["run", "--rm", "-t", "img:1", "tty"]), "/dev/pts/0");
    root.ok(&["rm", "-f", "bg"]);

    // -dt: what the terminal shows is logged, as one stream, with the terminal's line ends.
    root.ok(&["run", "-dt", "--name", "dt", "img:1", "sh", "-c", "tty; echo done"]);
    assert_eq!(root.ok(&["wait", "dt"]), "0");
    let log = std::fs::read_to_string(
        root.path()
            .join("containers")
            .join(root.ok(&["inspect", "-f", "{{.Id}}", "dt"]))
            .join(format!("{}-json.log", root.ok(&["inspect", "-f", "{{.Id}}", "dt"]))),
    )
    .unwrap();
    assert!(log.contains(r#""log":"/dev/pts/0\r\n","stream":"stdout""#), "{log}");
    assert_eq!(root.ok(&["logs", "dt"]).replace('\r', ""), "/dev/pts/0\ndone");
    assert_eq!(root.ok(&["inspect", "-f", "{{.Config.Tty}}", "dt"]), "true");
    root.ok(&["rm", "dt"]);
    assert!(root.mounts().is_empty());
    root.ok(&["check"]);
}

#[test]
fn detach_keys_and_attach() {
    common::require_root();
    let root = Root::new();
    image(&root);
    // ctrl-p ctrl-q leaves the shell running; what it does next goes to its log.
    let (out, code) = in_terminal_typing(&root, "$S run -it --name att img:1 sh", &["echo one\n", "\x10\x11"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(root.ok(&["inspect", "-f", "{{.State.Running}}", "att"]), "true");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !root.ok(&["logs", "att"]).contains("one\r\n") {
        assert!(std::time::Instant::now() < deadline, "{}", root.ok(&["logs", "att"]));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // attach comes back to it, in the caller's terminal size; its status is attach's.
    let (out, code) = in_terminal(&root, "$S attach att", "stty size; exit 4\n");
    assert_eq!(code, 4, "{out}");
    assert!(shows(&out, "33 101"), "{out:?}");
    assert_eq!(root.ok(&["inspect", "-f", "{{.State.ExitCode}}", "att"]), "4");
    // start -ai starts it again, attached.
    let (out, code) = in_terminal(&root, "$S start -ai att", "echo again; exit 6\n");
    assert_eq!(code, 6, "{out}");
    assert!(shows(&out, "again"), "{out:?}");
    root.ok(&["rm", "att"]);

    // -dit, then attach; a container without a terminal is refused with a hint.
    root.ok(&["run", "-dit", "--name", "dit", "img:1", "sh"]);
    let (out, code) = in_terminal(&root, "$S attach dit", "echo three; exit 5\n");
    assert_eq!((code, shows(&out, "three")), (5, true), "{out}");
    root.ok(&["create", "--name", "plain", "img:1", "true"]);
    assert!(root.fails(&["attach", "plain"]).contains("is not running"));
    root.ok(&["rm", "dit", "plain"]);

    // Without a terminal, as docker attaches: stdout to stdout, stderr to stderr, stdin to
    // the container's if it was kept open (-di); attach exits with the container's status.
    root.ok(&["run", "-di", "--name", "di", "img:1", "sh", "-c", "read l; echo out:$l; echo err:$l >&2; exit 7"]);
    let out = common::strata_with_stdin(root.path(), &["attach", "di"], b"typed\n");
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(
        (String::from_utf8_lossy(&out.stdout).as_ref(), String::from_utf8_lossy(&out.stderr).as_ref()),
        ("out:typed\n", "err:typed\n")
    );
    root.ok(&["run", "-d", "--name", "late", "img:1", "sh", "-c", "sleep 1; echo late; exit 2"]);
    let out = root.strata(&["attach", "late"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(2), "late\n"));
    root.ok(&["rm", "di", "late"]);

    // SIGKILL of a terminal's monitor: the terminal closes under the shell, which ends; the
    // next command records it (killed) and unmounts.
    let id = root.ok(&["run", "-dit", "--name", "orphan", "img:1", "sh"]);
    let record = std::fs::read(root.path().join(format!("containers/{id}/config.v2.json"))).unwrap();
    let monitor = serde_json::from_slice::<serde_json::Value>(&record).unwrap()["State"]["Pid"].as_i64().unwrap();
    Command::new("kill").args(["-9", &monitor.to_string()]).status().unwrap();
    assert_eq!(root.ok(&["wait", "orphan"]), "137");
    assert_eq!(root.ok(&["ps", "-q"]), "");
    root.ok(&["rm", "orphan"]);
    assert!(root.mounts().is_empty());
    root.ok(&["check"]);
}
