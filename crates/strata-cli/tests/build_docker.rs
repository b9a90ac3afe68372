//! `strata build` against the real peer, dockerd 20.10's legacy builder (`DOCKER_BUILDKIT=0`),
//! on the same data root: for a Dockerfile of every instruction, the same history rows
//! (created_by, sizes, empty layers), the same config and layers of the same content; and each
//! uses the other's builds as cache, ending at the other's image ID.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::Root;
use common::dockerd::{DOCKERD, Dockerd};
use common::images::{debian_rootfs, sha256};

const DOCKERFILE: &str = r#"FROM deb:1
ARG V=1
ENV A=1 B="x y"
LABEL k=v
WORKDIR /app
COPY a.txt /app/
COPY sub /app/sub/
COPY --chown=1:2 *.txt /owned/
ADD arch.tar /unpacked/
RUN echo "Hello World" > /tmp/newfile && mkdir -p /var/cache/x && echo "$V" > /var/cache/x/v
RUN true
RUN ["/bin/sh", "-c", "rm -r /usr/share/doc && ln -s /tmp /etc/link"]
USER nobody
EXPOSE 80 443/udp 8000-8001
VOLUME /data
CMD echo hi
ENTRYPOINT ["/bin/sh"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD true
SHELL ["/bin/bash", "-c"]
ONBUILD RUN echo child
MAINTAINER me
"#;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The context: the Dockerfile, files, a directory and a tar for ADD.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(p.join("a.txt"), "hello\n").unwrap();
    std::fs::write(p.join("b.txt"), "bee\n").unwrap();
    std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
    std::fs::write(p.join("sub/b"), "x\n").unwrap();
    std::fs::write(p.join("sub/deeper/c"), "c\n").unwrap();
    std::os::unix::fs::symlink("b", p.join("sub/link")).unwrap();
    let status = std::process::Command::new("tar").args(["-cf", "arch.tar", "sub"]).current_dir(p).status().unwrap();
    assert!(status.success());
    dir
}

/// `created_by | size | empty` of each row, newest first, as dockerd shows them.
fn rows(docker: &Dockerd, image: &str) -> Vec<String> {
    docker
        .docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}} | {{.Size}}", image])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Each layer's directory, base first.
fn layer_dirs(root: &Path, diff_ids: &[Value]) -> Vec<PathBuf> {
    let mut chain = String::new();
    let mut out = Vec::new();
    for diff in diff_ids {
        let diff = diff.as_str().unwrap();
        chain = if chain.is_empty() {
            diff.to_owned()
        } else {
            format!("sha256:{}", sha256(format!("{chain} {diff}").as_bytes()))
        };
        let cache_id = std::fs::read_to_string(
            root.join("image/overlay2/layerdb/sha256").join(chain.trim_start_matches("sha256:")).join("cache-id"),
        )
        .unwrap();
        out.push(root.join("overlay2").join(cache_id.trim()).join("diff"));
    }
    out
}

#[test]
fn legacy_builder_parity_and_cache_both_ways() {
    common::require_root();
    let _one = DOCKERD.lock().unwrap_or_else(|p| p.into_inner());
    let root = Root::new();
    root.ok(&["import", debian_rootfs().to_str().unwrap(), "deb:1", "-c", r#"CMD ["/bin/bash"]"#]);
    let ctx = context();
    let c = ctx.path().to_str().unwrap();
    root.ok(&["build", "-t", "s", "--build-arg", "V=2", c]);
    let Some(docker) = Dockerd::start(root.path()) else { return };
    docker.docker(&["build", "--no-cache", "-t", "d", "--build-arg", "V=2", c]);

    // History, as dockerd shows both (the chain of parents walks strata's images too).
    let (d_rows, s_rows) = (rows(&docker, "d"), rows(&docker, "s"));
    assert_eq!(d_rows, s_rows, "history rows differ");
    let history = docker.docker(&["history", "-q", "s"]);
    assert!(!history.contains("<missing>"), "dockerd cannot walk strata's parents:\n{history}");
    // Config and the history entries' flags, from the stored configs.
    let (d, s) = (
        json(&docker.docker(&["image", "inspect", "d"]))[0].clone(),
        json(&docker.docker(&["image", "inspect", "s"]))[0].clone(),
    );
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("Image");
        v
    };
    assert_eq!(strip(&d["Config"]), strip(&s["Config"]), "config differs");
    assert_eq!(d["Author"], s["Author"]);
    let (d_layers, s_layers) = (d["RootFS"]["Layers"].as_array().unwrap(), s["RootFS"]["Layers"].as_array().unwrap());
    assert_eq!(d_layers.len(), s_layers.len());
    for (dd, sd) in layer_dirs(root.path(), d_layers).iter().zip(layer_dirs(root.path(), s_layers)).skip(1) {
        assert_eq!(
            common::snapshot(dd),
            common::snapshot(&sd),
            "layer content differs: {} vs {}",
            dd.display(),
            sd.display()
        );
    }

    // dockerd takes every step of strata's build from the cache, and ends at strata's image
    // when strata's is the newest match: strata builds anew after a change, dockerd follows.
    std::fs::write(ctx.path().join("b.txt"), "changed by strata\n").unwrap();
    drop(docker);
    root.ok(&["build", "-t", "s2", "--build-arg", "V=2", c]);
    let docker = Dockerd::start(root.path()).unwrap();
    let out = docker.docker(&["build", "-t", "d2", "--build-arg", "V=2", c]);
    assert_eq!(out.matches("Using cache").count(), 21, "{out}");
    let s2 = json(&docker.docker(&["image", "inspect", "s2"]))[0]["Id"].clone();
    assert_eq!(json(&docker.docker(&["image", "inspect", "d2"]))[0]["Id"], s2);

    // The reverse: dockerd builds after a change, strata takes every step from dockerd's.
    std::fs::write(ctx.path().join("a.txt"), "changed by docker\n").unwrap();
    docker.docker(&["build", "-t", "d3", "--build-arg", "V=2", c]);
    let d3 = json(&docker.docker(&["image", "inspect", "d3"]))[0]["Id"].as_str().unwrap().to_owned();
    drop(docker);
    let out = root.ok(&["build", "-t", "s3", "--build-arg", "V=2", c]);
    assert_eq!(out.matches("Using cache").count(), 21, "{out}");
    assert_eq!(json(&root.ok(&["inspect", "s3"]))[0]["Id"], d3.as_str());
    root.ok(&["check"]);
}
