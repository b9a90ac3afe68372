//! A real dockerd 20.10 (Debian's docker.io) on a data root of the test's, with its own exec
//! root and socket.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One dockerd at a time.
pub static DOCKERD: Mutex<()> = Mutex::new(());

/// A dockerd on `root`, with its own exec root and socket; stopped on drop.
pub struct Dockerd {
    child: Child,
    state: tempfile::TempDir,
    docker: PathBuf,
}

impl Dockerd {
    /// Start dockerd, or fail with what to install. `STRATA_SKIP_DOCKER=1` skips, loudly.
    pub fn start(root: &Path) -> Option<Dockerd> {
        if std::env::var_os("STRATA_SKIP_DOCKER").is_some() {
            eprintln!("SKIPPED: STRATA_SKIP_DOCKER is set; dockerd interop not tested");
            return None;
        }
        let dockerd = which("dockerd").expect("dockerd not found: apt-get install docker.io (see .ci/run)");
        // Debian's 20.10 client; a newer client elsewhere on PATH negotiates down anyway.
        let docker =
            ["/usr/bin/docker"].iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| which("docker")).unwrap();
        let state = tempfile::Builder::new().prefix("strata-dockerd-").tempdir().unwrap();
        let s = state.path();
        let log = std::fs::File::create(s.join("log")).unwrap();
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(root)
            .arg("--exec-root")
            .arg(s.join("exec"))
            .arg("--pidfile")
            .arg(s.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", s.join("sock").display()))
            .args(["--storage-driver", "overlay2", "--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--ip-masq=false", "--userland-proxy=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Dockerd { child, state, docker };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.try_docker(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not start: {}", d.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(d)
    }

    pub fn try_docker(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.docker)
            .arg("-H")
            .arg(format!("unix://{}", self.state.path().join("sock").display()))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.try_docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for m in strata::mount::overlay_mounts_under(self.state.path()).unwrap_or_default() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.exists())
}
