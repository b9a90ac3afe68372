//! Registries against the real peer, dockerd 20.10: what `strata push` sent, `docker pull`
//! stores and runs; what `docker push` sent, `strata pull` stores as `docker pull` does (the
//! same image ID and RepoDigests); on strata's root, dockerd runs it, lists its digest, and
//! pushes it to another repository by mounting the layers strata recorded, not uploading them.

mod common;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::{TestImage, docker_archive, host_rootfs, tar_dir, tar_of};
use common::registry::{Auth, Registry};

#[test]
fn docker_push_strata_pull_then_dockerd_runs_and_pushes_with_mounts() {
    let _one = DOCKERD.lock().unwrap_or_else(|p| p.into_inner());
    let registry = Registry::start(Auth::None, None);
    let host = registry.host();
    let name = format!("{host}/app:1");
    let scratch = tempfile::tempdir().unwrap();
    host_rootfs(&scratch.path().join("rootfs"));
    let image = TestImage::new(
        vec![
            tar_dir(&scratch.path().join("rootfs")),
            tar_of(&[("etc/", b""), ("etc/greeting", b"pulled by strata\n")]),
        ],
        &["/bin/sh", "-c", "cat /etc/greeting"],
    );
    let archive = scratch.path().join("app.tar");
    std::fs::write(&archive, docker_archive(&[(&image, &[name.as_str()])])).unwrap();

    // strata pushes an image of its own first, for dockerd to pull.
    let pusher = Root::new();
    let from_strata = format!("{host}/fromstrata:1");
    pusher.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    pusher.ok(&["tag", &name, &from_strata]);
    let strata_pushed = pusher.ok(&["push", &from_strata]);
    let pushed_digest = strata_pushed.lines().last().unwrap().split(' ').nth(2).unwrap().to_owned();

    // skopeo and podman read what strata pushed.
    let skopeo = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{from_strata}")])
        .output()
        .expect("skopeo (apt-get install skopeo; .ci/run does)");
    assert!(skopeo.status.success(), "skopeo: {}", String::from_utf8_lossy(&skopeo.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(inspected["Digest"], pushed_digest.as_str());
    let podman_dir = tempfile::tempdir().unwrap();
    let podman = |args: &[&str]| {
        let out = std::process::Command::new("podman")
            .arg("--root")
            .arg(podman_dir.path().join("root"))
            .arg("--runroot")
            .arg(podman_dir.path().join("run"))
            .args(args)
            .output()
            .expect("podman (apt-get install podman; .ci/run does)");
        assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    podman(&["pull", "-q", "--tls-verify=false", &from_strata]);
    assert_eq!(format!("sha256:{}", podman(&["image", "inspect", "--format", "{{.Id}}", &from_strata])), image.id());
    // …and runs it (the limits: podman asks runc for more than a sandbox may give).
    let ran = podman(&[
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &from_strata,
    ]);
    assert_eq!(ran, "pulled by strata");

    // dockerd pushes; strata pulls into a store of its own.
    let docker_root = tempfile::tempdir().unwrap();
    let (docker_digests, pushed) = {
        let Some(d) = Dockerd::start(docker_root.path()) else { return };
        d.docker(&["pull", &from_strata]);
        assert_eq!(d.docker(&["inspect", "--format", "{{.Id}}", &from_strata]), image.id(), "strata push, docker pull");
        let docker_sees = d.docker(&["inspect", "--format", "{{json .RepoDigests}}", &from_strata]);
        assert!(docker_sees.contains(&pushed_digest), "{docker_sees} lacks {pushed_digest}");
        assert_eq!(d.docker(&["run", "--rm", "--network", "none", &from_strata]), "pulled by strata");
        d.docker(&["load", "-i", archive.to_str().unwrap()]);
        let pushed = d.docker(&["push", &name]);
        d.docker(&["rmi", &name]);
        d.docker(&["pull", &name]);
        (d.docker(&["inspect", "--format", "{{json .RepoDigests}}", &name]), pushed)
    };
    let root = Root::new();
    let config = tempfile::tempdir().unwrap();
    let out = common::strata_cmd(root.path(), &["pull", &name]).env("DOCKER_CONFIG", config.path()).output().unwrap();
    assert!(out.status.success(), "strata pull: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = stdout.lines().find_map(|l| l.strip_prefix("Digest: ")).unwrap().to_owned();
    assert!(pushed.contains(&digest), "docker pushed {pushed}; strata pulled {digest}");
    let inspect: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", &name])).unwrap();
    assert_eq!(inspect[0]["Id"], image.id(), "the same image as docker's");
    // dockerd's image also has the digest of the `fromstrata` pull: compare the `app` ones.
    let docker_digests: Vec<String> = serde_json::from_str(&docker_digests).unwrap();
    let docker_digests: Vec<&String> =
        docker_digests.iter().filter(|d| d.starts_with(&format!("{host}/app@"))).collect();
    assert_eq!(inspect[0]["RepoDigests"], serde_json::json!(docker_digests), "the same RepoDigests as docker pull's");
    assert_eq!(root.ok(&["run", "--rm", &name]), "pulled by strata");

    // dockerd on strata's root: lists the digest, runs the image, pushes it elsewhere by mounts.
    let Some(d) = Dockerd::start(root.path()) else { return };
    let listed = d.docker(&["images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"]);
    assert_eq!(listed, format!("{host}/app:1 {digest}"));
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &name]), "pulled by strata");
    let copy = format!("{host}/copy:1");
    d.docker(&["tag", &name, &copy]);
    let pushed = d.docker(&["push", &copy]);
    assert_eq!(pushed.matches("Mounted from app").count(), 2, "both layers mounted, none uploaded: {pushed}");
}
