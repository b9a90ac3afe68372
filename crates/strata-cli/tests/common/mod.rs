//! Helpers for the integration tests: a throwaway store root that unmounts everything under it
//! when dropped, a runner for the real `strata` binary, and a snapshot of a tree on disk.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// These tests mount OverlayFS: they need root, and say so instead of skipping.
pub fn require_root() {
    assert!(strata::host::is_root(), "the integration tests mount OverlayFS and must run as root (CI does)");
}

/// A temporary store root.
pub struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        require_root();
        Root { dir: tempfile::Builder::new().prefix("strata-test-").tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("overlay2")
    }

    /// Run `strata --root <root> args…`.
    pub fn strata(&self, args: &[&str]) -> Output {
        strata_cmd(self.path(), args).output().unwrap()
    }

    /// Run and expect success; return stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.strata(args);
        assert!(out.status.success(), "strata {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    /// Run and expect failure with exactly one line on stderr; return that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.strata(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "strata {args:?} succeeded; stdout: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(stderr.lines().count(), 1, "expected one line on stderr, got: {stderr}");
        stderr.trim_end().to_owned()
    }

    /// Overlay mount points under this root.
    pub fn mounts(&self) -> Vec<PathBuf> {
        overlay_mounts_under(self.path())
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // Containers a failed test left running (detached ones outlive the test's commands).
        let runtimes = self.path().join("strata/runtime");
        for runtime in std::fs::read_dir(&runtimes).into_iter().flatten().flatten() {
            for container in std::fs::read_dir(runtime.path()).into_iter().flatten().flatten() {
                let _ = Command::new(runtime.file_name())
                    .arg("--root")
                    .arg(runtime.path())
                    .args(["kill", "--all"])
                    .arg(container.file_name())
                    .arg("KILL")
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for m in overlay_mounts_under(self.path()).into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

pub fn strata_cmd(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("STRATA_FAILPOINT")
        .env_remove("STRATA_ROOT")
        // The machine's registries.conf (podman's) is not the test's.
        .env("STRATA_REGISTRIES_CONF", "/nonexistent/registries.conf");
    cmd
}

/// Run strata with `input` on its stdin; its output.
pub fn strata_with_stdin(root: &Path, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child =
        strata_cmd(root, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Run strata with a failpoint armed, wait until it freezes there, then SIGKILL it.
pub fn kill_at(root: &Root, failpoint: &str, args: &[&str]) {
    use std::io::{BufRead, BufReader};
    let mut child = strata_cmd(root.path(), args)
        .env("STRATA_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("failpoint {failpoint}"), "strata {args:?} did not reach {failpoint}");
    // `run` and `start` do their work in a monitor process of their own: kill that too.
    for pid in descendants(child.id()) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The processes below `pid` (children first), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // The fields after the command's closing parenthesis: state, ppid, …
        let Some(ppid) = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse().ok()) else {
            continue;
        };
        parents.push((p, ppid));
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(next) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, ppid)| *ppid == next) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

/// Run strata and SIGKILL it after `delay`, wherever it is by then.
pub fn kill_after(root: &Root, args: &[&str], delay: std::time::Duration) {
    let mut child = strata_cmd(root.path(), args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap();
}

/// Overlay mount points (from /proc/self/mountinfo) under `dir`.
pub fn overlay_mounts_under(dir: &Path) -> Vec<PathBuf> {
    strata::mount::overlay_mounts_under(dir).unwrap()
}

/// Everything under `dir`: path → (type, mode, uid, gid, content or link target or rdev).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let what = if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if ft.is_dir() {
            let opaque =
                strata::host::xattr(&path, "trusted.overlay.opaque").map(|v| String::from_utf8_lossy(&v).into_owned());
            format!("dir opaque={opaque:?}")
        } else if ft.is_char_device() {
            format!("char {:?}", strata::host::device_numbers(meta.rdev()))
        } else if ft.is_file() {
            format!("file {:?}", String::from_utf8_lossy(&std::fs::read(&path).unwrap()))
        } else {
            "other".to_owned()
        };
        let rel = path.strip_prefix(base).unwrap().to_owned();
        // strata's indexes are caches that any command may write: not part of what is stored.
        if rel == Path::new("strata/index") {
            continue;
        }
        out.insert(rel, format!("{what} mode={:o} uid={} gid={}", meta.mode() & 0o7777, meta.uid(), meta.gid()));
        if ft.is_dir() {
            walk(base, &path, out);
        }
    }
}

/// The file contents visible under `dir` (a merged view): relative path → content; directories
/// map to `"/"`.
pub fn visible(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn go(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                out.insert(rel, "/".into());
                go(base, &path, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    go(dir, dir, &mut out);
    out
}
pub mod dockerd;
pub mod images;
pub mod registry;
pub mod tarball;
