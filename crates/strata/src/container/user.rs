//! What the container's own files say about how to run it: `-u USER[:GROUP]` looked up in its
//! `/etc/passwd` and `/etc/group`, and the program looked up in its `PATH`. Every path is
//! resolved inside the container's root (`openat2(RESOLVE_IN_ROOT)`), so a symlink in the
//! image cannot point strata at the host's files.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one first.
    pub groups: Vec<u32>,
    /// Home directory from `/etc/passwd` (`/` if unknown), for `HOME`.
    pub home: String,
}

/// The container's root directory, opened once.
pub(crate) struct Rootfs {
    fd: OwnedFd,
    /// Where it is on the host, as the kernel names it.
    path: std::path::PathBuf,
}

impl Rootfs {
    pub(crate) fn open(path: &Path) -> Result<Rootfs> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open", path, e))?;
        let path = fd_path(&fd).map_err(|e| Error::io("resolve", path, e))?;
        Ok(Rootfs { fd, path })
    }

    /// The working directory `dir` (absolute) as dockerd prepares it: symlinks followed inside
    /// the container's root, missing directories made (root's, 0755), and the path they lead
    /// to returned, for the runtime to `chdir` into.
    pub(crate) fn working_dir(&self, dir: &str) -> Result<String> {
        self.make_dirs(dir, (0, 0), "working directory")
    }

    /// The directory `dir` made where missing, as [`working_dir`](Self::working_dir) makes it,
    /// new directories owned by `owner`; `what` names it in errors. Returns where it leads.
    pub(crate) fn make_dirs(&self, dir: &str, owner: (u32, u32), what: &'static str) -> Result<String> {
        let bad = |reason: String| Error::BadOption { what, value: dir.to_owned(), reason };
        let mut todo: Vec<String> = clean(dir);
        todo.reverse();
        let mut current = rustix::io::dup(&self.fd).map_err(|e| Error::io("dup", &self.path, e))?;
        let mut links = 0;
        while let Some(part) = todo.pop() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            match rustix::fs::openat2(&current, &part, flags, Mode::empty(), ResolveFlags::IN_ROOT) {
                Ok(fd) => current = fd,
                Err(rustix::io::Errno::NOENT) => match rustix::fs::mkdirat(&current, &part, Mode::from_raw_mode(0o755))
                {
                    Ok(()) => {
                        let fd = rustix::fs::openat(&current, &part, flags | OFlags::NOFOLLOW, Mode::empty())
                            .map_err(|e| bad(e.to_string()))?;
                        if owner != (0, 0) {
                            let (uid, gid) = (rustix::fs::Uid::from_raw(owner.0), rustix::fs::Gid::from_raw(owner.1));
                            rustix::fs::fchown(&fd, Some(uid), Some(gid)).map_err(|e| bad(e.to_string()))?;
                        }
                        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(|e| bad(e.to_string()))?;
                        current = fd;
                    }
                    // A symlink to nowhere: follow it (inside the root) and make its target.
                    Err(rustix::io::Errno::EXIST) => {
                        links += 1;
                        let target =
                            rustix::fs::readlinkat(&current, &part, Vec::new()).map_err(|e| bad(e.to_string()))?;
                        let target = target.to_string_lossy().into_owned();
                        if links > 40 {
                            return Err(bad("has too many levels of symbolic links".into()));
                        }
                        if target.starts_with('/') {
                            current = rustix::io::dup(&self.fd).map_err(|e| Error::io("dup", &self.path, e))?;
                        }
                        todo.extend(clean(&target).into_iter().rev());
                    }
                    Err(e) => return Err(bad(e.to_string())),
                },
                Err(rustix::io::Errno::NOTDIR) => return Err(bad("leads to something that is not a directory".into())),
                Err(e) => return Err(bad(e.to_string())),
            }
        }
        let host = fd_path(&current).map_err(|e| bad(e.to_string()))?;
        let inside = host.strip_prefix(&self.path).map_err(|_| bad("leads out of the container's root".into()))?;
        Ok(format!("/{}", inside.display()))
    }

    fn resolve(&self, path: &str, flags: OFlags) -> Option<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        rustix::fs::openat2(&self.fd, rel, flags | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT).ok()
    }

    /// A small text file of the container's (`None` if absent or unreadable).
    fn read(&self, path: &str) -> Option<String> {
        let fd = self.resolve(path, OFlags::RDONLY)?;
        let mut text = String::new();
        std::fs::File::from(fd).take(4 << 20).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// `USER`, `USER:GROUP`, `UID` or `UID:GID` as dockerd resolves it; empty is root.
    pub(crate) fn user(&self, spec: &str) -> Result<User> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let user = if user.is_empty() { "0" } else { user };
        let passwd = self.read("/etc/passwd").unwrap_or_default();
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 7 && (f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user)));
        let bad = |reason: String| Error::BadOption { what: "user", value: spec.to_owned(), reason };
        let (uid, mut gid, name, home) = match (&entry, user.parse::<u32>()) {
            (Some(f), _) => (
                f[2].parse().map_err(|_| bad(format!("bad uid in /etc/passwd for {user}")))?,
                f[3].parse().map_err(|_| bad(format!("bad gid in /etc/passwd for {user}")))?,
                Some(f[0].to_owned()),
                f[5].to_owned(),
            ),
            (None, Ok(uid)) => (uid, 0, None, "/".to_owned()),
            (None, Err(_)) => return Err(bad(format!("no user {user:?} in the image's /etc/passwd"))),
        };
        let groups_file = self.read("/etc/group").unwrap_or_default();
        let groups: Vec<Vec<&str>> =
            groups_file.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
        if let Some(group) = group {
            gid = match (groups.iter().find(|f| f[0] == group), group.parse::<u32>()) {
                (_, Ok(gid)) => gid,
                (Some(f), _) => f[2].parse().map_err(|_| bad(format!("bad gid in /etc/group for {group}")))?,
                (None, Err(_)) => return Err(bad(format!("no group {group:?} in the image's /etc/group"))),
            };
        }
        let mut list = vec![gid];
        if group.is_none()
            && let Some(name) = &name
        {
            for f in &groups {
                if f[3].split(',').any(|m| m == name)
                    && let Ok(g) = f[2].parse::<u32>()
                    && !list.contains(&g)
                {
                    list.push(g);
                }
            }
        }
        Ok(User { uid, gid, groups: list, home })
    }

    /// Check that `program` can be run, looked up in `path_env` as `execvp` would: an error
    /// with the exit status docker gives (127 not found, 126 not executable) otherwise.
    pub(crate) fn check_program(&self, program: &str, path_env: &str) -> Result<()> {
        let candidates: Vec<String> = if program.contains('/') {
            vec![program.to_owned()]
        } else {
            path_env
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
                .collect()
        };
        let mut denied = false;
        for candidate in &candidates {
            let Some(fd) = self.resolve(candidate, OFlags::PATH) else { continue };
            let Ok(stat) = rustix::fs::fstat(&fd) else { continue };
            if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile && stat.st_mode & 0o111 != 0 {
                return Ok(());
            }
            denied = true;
        }
        let (reason, status) = match (denied, program.contains('/')) {
            (true, _) => ("permission denied (not an executable file)".to_owned(), 126),
            (false, true) => ("no such file or directory".to_owned(), 127),
            (false, false) => (format!("executable file not found in $PATH ({path_env})"), 127),
        };
        Err(Error::Command { command: program.to_owned(), reason, status })
    }
}

/// The path the kernel gives an open directory.
fn fd_path(fd: &OwnedFd) -> std::io::Result<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The parts of a path, `.` dropped and `..` taken back lexically (never above the root).
fn clean(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p.to_owned()),
        }
    }
    parts
}
