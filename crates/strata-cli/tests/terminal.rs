//! Terminals with the real binary, runc and crun, driven through a real pseudo-terminal
//! (`script(1)`, whose terminal the test sizes with `stty`): `run -it` takes input, echoes it
//! and passes the exit status on; the container's terminal has the caller's size, and a
//! change of it reaches the container; `exec -it` beside a detached container; `run -dt`
//! logs what its terminal shows; `-t` without a terminal on the caller's side still gives the
//! container one.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Root;
use common::images::{copy_with_libs, host_rootfs};

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
    stdin.write_all(input.as_bytes()).unwrap();
    // script's stdin stays open until the command ends: at its end, script would end the session.
    let out = child.wait_with_output().unwrap();
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
        let (out, code) = in_terminal(
            &root,
            &format!("$S run --rm -it --runtime {runtime} img:1 sh"),
            "echo hi-$((1+2)); stty size; tty; echo $TERM; exit 3\n",
        );
        assert_eq!(code, 3, "{runtime}: {out}");
        let lines: Vec<&str> = out.lines().collect();
        for want in ["hi-3", "33 101", "/dev/pts/0", "xterm"] {
            assert!(lines.contains(&want), "{runtime}: {want:?} in {out:?}");
        }
        // The container's terminal echoed the typed line (with its prompt).
        assert!(out.contains("# echo hi-$((1+2))"), "{runtime}: {out:?}");

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
        let sizes: Vec<&str> = out.lines().map(|l| l.trim_start_matches('\0')).filter(is_size).collect();
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
    assert!(out.lines().any(|l| l == "33 101"), "{out:?}");
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
