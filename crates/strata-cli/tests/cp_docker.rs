//! `strata cp` against `docker cp` (dockerd 20.10) on the same data root: the same copies into
//! a container of each give the same files in their writable layers (modes, owners, symlinks,
//! hard links), with and without `-a`; copies out give the same trees; and strata copies out
//! of dockerd's container as docker does.

mod common;

use std::path::Path;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::debian_rootfs;

fn payload(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/empty")).unwrap();
    std::fs::write(dir.join("f"), "file\n").unwrap();
    std::fs::write(dir.join("sub/g"), "g\n").unwrap();
    std::fs::hard_link(dir.join("f"), dir.join("hard")).unwrap();
    std::os::unix::fs::symlink("sub/g", dir.join("rel")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("abs")).unwrap();
    std::os::unix::fs::chown(dir.join("f"), Some(7), Some(8)).unwrap();
    std::os::unix::fs::chown(dir.join("sub"), Some(9), Some(9)).unwrap();
    std::fs::set_permissions(dir.join("sub/g"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
}

/// The writable layer's directory of a container, from `inspect`.
fn upper(json: &str) -> std::path::PathBuf {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap().into()
}

#[test]
fn same_trees_as_docker_cp() {
    common::require_root();
    let _one = DOCKERD.lock().unwrap_or_else(|p| p.into_inner());
    let root = Root::new();
    root.ok(&["import", debian_rootfs().to_str().unwrap(), "deb:1", "-c", r#"CMD ["/bin/bash"]"#]);
    root.ok(&["create", "--name", "sc", "deb:1", "true"]);
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("p");
    std::fs::create_dir(&src).unwrap();
    payload(&src);
    let s = src.to_str().unwrap();
    let (d_out, s_out, s_from_d) = (host.path().join("d"), host.path().join("s"), host.path().join("sd"));
    for dir in [&d_out, &s_out, &s_from_d] {
        std::fs::create_dir(dir).unwrap();
    }
    let Some(docker) = Dockerd::start(root.path()) else { return };
    docker.docker(&["create", "--name", "dc", "deb:1", "true"]);
    docker.docker(&["cp", s, "dc:/p"]);
    docker.docker(&["cp", "-a", s, "dc:/pa"]);
    docker.docker(&["cp", "dc:/p", d_out.to_str().unwrap()]);
    docker.docker(&["cp", "dc:/etc/apt", d_out.to_str().unwrap()]);
    let d_upper = upper(&docker.docker(&["inspect", "dc"]));
    drop(docker);

    root.ok(&["cp", s, "sc:/p"]);
    root.ok(&["cp", "-a", s, "sc:/pa"]);
    root.ok(&["cp", "sc:/p", s_out.to_str().unwrap()]);
    root.ok(&["cp", "sc:/etc/apt", s_out.to_str().unwrap()]);
    root.ok(&["cp", "dc:/p", s_from_d.to_str().unwrap()]);
    let s_upper = upper(&root.ok(&["inspect", "sc"]));
    for dir in ["p", "pa"] {
        assert_eq!(
            common::snapshot(&s_upper.join(dir)),
            common::snapshot(&d_upper.join(dir)),
            "{dir} in the writable layers"
        );
    }
    let (s_tree, d_tree) = (common::snapshot(&s_out), common::snapshot(&d_out));
    let differ: Vec<String> = s_tree
        .keys()
        .chain(d_tree.keys())
        .filter(|k| s_tree.get(*k) != d_tree.get(*k))
        .map(|k| format!("{}: strata {:?}, docker {:?}", k.display(), s_tree.get(k), d_tree.get(k)))
        .collect();
    assert!(differ.is_empty(), "copied out:\n{}", differ.join("\n"));
    assert_eq!(
        common::snapshot(&s_from_d.join("p")),
        common::snapshot(&d_out.join("p")),
        "strata out of dockerd's container"
    );
    root.ok(&["rm", "sc", "dc"]);
    root.ok(&["check"]);
}
