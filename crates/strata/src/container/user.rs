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
}

impl Rootfs {
    pub(crate) fn open(path: &Path) -> Result<Rootfs> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("open", path, e))?;
        Ok(Rootfs { fd })
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
