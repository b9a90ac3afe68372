//! Volumes against dockerd 20.10 on the same data root: dockerd lists and mounts the volumes
//! strata makes, with their data, and strata dockerd's (with the labels dockerd keeps in its
//! own database); `docker inspect` and `strata inspect` show the same `Mounts` for the same
//! container, whichever made it; the image's files are copied into a new volume alike; and
//! `diff` of a container with volumes is the same in both.

mod common;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::debian_rootfs;

/// A run writing into an anonymous volume, a named one and the container's own tree.
const WRITES: &[&str] = &["-v", "/anon", "-v", "sv:/n", "vol:1", "sh", "-c", "echo x > /anon/a; echo y > /newfile"];

/// The host directory mounted at `/data`, as `inspect -f` prints it.
const DATA_SOURCE: &str = "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Source}}{{end}}{{end}}";

/// `Mounts` of `inspect` output, by destination, anonymous volume names and paths masked.
fn mounts(json: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<serde_json::Value> = v[0]["Mounts"].as_array().unwrap().clone();
    for m in &mut out {
        if m["Name"].as_str().is_some_and(|n| n.len() == 64) {
            m["Name"] = "<anonymous>".into();
            m["Source"] = "<anonymous>".into();
        }
    }
    out.sort_by_key(|m| m["Destination"].as_str().unwrap().to_owned());
    out
}

#[test]
fn volumes_shared_with_dockerd() {
    common::require_root();
    let _one = DOCKERD.lock().unwrap_or_else(|p| p.into_inner());
    let root = Root::new();
    root.ok(&["import", debian_rootfs().to_str().unwrap(), "deb:1", "-c", r#"CMD ["/bin/bash"]"#]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM deb:1\nRUN mkdir /data && echo image > /data/f && chown 7:8 /data/f && chown 5:5 /data\nVOLUME /data\n",
    )
    .unwrap();
    root.ok(&["build", "-q", "-t", "vol:1", ctx.path().to_str().unwrap()]);
    let host = tempfile::tempdir().unwrap();
    let h = host.path().to_str().unwrap();
    let flags = |name: &'static str| -> Vec<String> {
        [
            "create",
            "--name",
            name,
            "-v",
            "sv:/n",
            "-v",
            &format!("{h}:/h:ro"),
            "-v",
            "/anon",
            "--tmpfs",
            "/t",
            "--mount",
            "type=volume,src=m2,dst=/m2,readonly",
            "--mount",
            &format!("type=bind,src={h},dst=/hb"),
            "--mount",
            "type=tmpfs,dst=/tt",
            "vol:1",
            "true",
        ]
        .map(String::from)
        .to_vec()
    };
    let as_str = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join("\u{0}");
    root.ok(&["volume", "create", "--label", "made=strata", "sv"]);
    root.ok(&["run", "--rm", "-v", "sv:/n", "deb:1", "sh", "-c", "echo from-strata > /n/s"]);
    let sc = flags("sc");
    root.ok(&as_str(&sc).split('\u{0}').collect::<Vec<_>>());
    root.ok(&[&["run", "--name", "sd"], WRITES].concat());
    let strata_diff = root.ok(&["diff", "sd"]);
    let strata_sc = mounts(&root.ok(&["inspect", "sc"]));

    let Some(docker) = Dockerd::start(root.path()) else { return };
    // dockerd lists strata's volume and mounts it with its data; its container's mounts match.
    let listed = docker.docker(&["volume", "ls", "-q"]);
    assert!(listed.lines().any(|l| l == "sv"), "{listed}");
    assert_eq!(docker.docker(&["run", "--rm", "-v", "sv:/n", "deb:1", "cat", "/n/s"]), "from-strata");
    assert_eq!(mounts(&docker.docker(&["inspect", "sc"])), strata_sc, "strata's container, as dockerd shows it");
    // dockerd's own: a labelled volume with data, a container with the same mounts.
    docker.docker(&["volume", "create", "--label", "made=docker", "dv"]);
    docker.docker(&["run", "--rm", "-v", "dv:/y", "deb:1", "sh", "-c", "echo from-docker > /y/d"]);
    let dc = flags("dc");
    docker.docker(&as_str(&dc).split('\u{0}').collect::<Vec<_>>());
    let docker_dc = mounts(&docker.docker(&["inspect", "dc"]));
    let dc_copy = docker.docker(&["inspect", "-f", DATA_SOURCE, "dc"]);
    docker.docker(&[&["run", "--name", "dd"], WRITES].concat());
    let docker_diff = docker.docker(&["diff", "dd"]);
    drop(docker);

    assert_eq!(docker_dc, strata_sc, "the same flags give the same mounts");
    assert_eq!(mounts(&root.ok(&["inspect", "dc"])), docker_dc, "dockerd's container, as strata shows it");
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(&strata_diff),
        sorted(&docker_diff),
        "diff of a container with volumes (dockerd's in its own order)"
    );
    // The image's files were copied into dockerd's new volume as into strata's.
    let copied = std::path::Path::new(&dc_copy);
    assert_eq!(std::fs::read_to_string(copied.join("f")).unwrap(), "image\n");
    let strata_copy = root.ok(&["inspect", "-f", DATA_SOURCE, "sc"]);
    assert_eq!(common::snapshot(std::path::Path::new(&strata_copy)), common::snapshot(copied));
    use std::os::unix::fs::MetadataExt;
    let (s, d) = (std::fs::metadata(&strata_copy).unwrap(), std::fs::metadata(copied).unwrap());
    assert_eq!((s.uid(), s.gid(), s.mode()), (d.uid(), d.gid(), d.mode()));

    // strata lists dockerd's volume with its labels and mounts it with its data.
    let v: serde_json::Value = serde_json::from_str(&root.ok(&["volume", "inspect", "dv", "sv"])).unwrap();
    assert_eq!(v[0]["Labels"]["made"], "docker");
    assert_eq!(v[1]["Labels"]["made"], "strata");
    assert_eq!(root.ok(&["run", "--rm", "-v", "dv:/y", "deb:1", "cat", "/y/d"]), "from-docker");
    // Both containers keep their volumes; rm -v and prune clear them all.
    assert!(root.fails(&["volume", "rm", "sv"]).contains("in use"), "sc and dd use it");
    root.ok(&["rm", "-v", "sc", "dc", "sd", "dd"]);
    root.ok(&["volume", "prune", "-f"]);
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "");
    root.ok(&["check"]);
}
