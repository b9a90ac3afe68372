//! `strata build` with the real binary and real runc: the documents' two-line Dockerfile, every
//! instruction, the cache (hit, miss after a file change, `--no-cache`), multi-stage builds
//! with `--target` and `COPY --from`, heredocs, build args, ONBUILD, `.dockerignore`, a failing
//! RUN, bad input, a 300-step Dockerfile and reproducible IDs. dockerd's side is in
//! build_docker.rs.

mod common;

use std::path::Path;

use common::Root;
use common::images::{copy_with_libs, host_rootfs};
use serde_json::Value;

/// Import a tiny image of this host's `sh`, `cat`, `ls` and `true` as `img:1`.
fn image(root: &Root) {
    let dir = tempfile::tempdir().unwrap();
    host_rootfs(dir.path());
    copy_with_libs(dir.path(), Path::new("/usr/bin/sleep"));
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    root.ok(&["import", dir.path().to_str().unwrap(), "img:1", "-c", r#"CMD ["/bin/sh"]"#]);
}

/// A context directory holding `files` (path, content); the Dockerfile is one of them.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn build(root: &Root, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    root.ok(&args)
}

fn inspect(root: &Root, name: &str) -> Value {
    serde_json::from_str::<Value>(&root.ok(&["inspect", name])).unwrap()[0].clone()
}

/// `(created_by, size, empty_layer)` of each history row, newest first, as `history` shows them.
fn history(root: &Root, name: &str) -> Vec<String> {
    root.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}} | {{.Size}}", name])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn images_all(root: &Root) -> usize {
    root.ok(&["images", "-a", "-q"]).lines().count()
}

/// Nothing left mounted, no container left, and `check` finds the store sound.
fn left_clean(root: &Root) {
    assert!(root.mounts().is_empty(), "left mounted: {:?}", root.mounts());
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "", "a step's container was left");
    root.ok(&["check"]);
}

/// The documents' Dockerfile: `RUN echo "Hello World" > /tmp/newfile` makes a 12-byte layer
/// whose `diff/` holds only that file, and a history row of 12B; the output is docker's.
#[test]
fn the_documents_dockerfile() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let ctx = context(&[("Dockerfile", "FROM img:1\nRUN echo \"Hello World\" > /tmp/newfile\n")]);
    let out = build(&root, ctx.path(), &["-t", "test-ubuntu"]);
    for line in [
        "Step 1/2 : FROM img:1",
        "Step 2/2 : RUN echo \"Hello World\" > /tmp/newfile",
        " ---> Running in ",
        "Removing intermediate container ",
        "Successfully built ",
        "Successfully tagged test-ubuntu:latest",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    let rows = history(&root, "test-ubuntu");
    assert_eq!(rows[0], "/bin/sh -c echo \"Hello World\" > /tmp/newfile | 12B");
    let diff = inspect(&root, "test-ubuntu")["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap().to_owned();
    let found: Vec<String> = walkdir(Path::new(&diff));
    assert_eq!(found, ["tmp", "tmp/newfile"]);
    assert_eq!(std::fs::read_to_string(Path::new(&diff).join("tmp/newfile")).unwrap(), "Hello World\n");
    // The step's files were moved into the layer, OverlayFS's bookkeeping left behind.
    for xattr in ["trusted.overlay.origin", "trusted.overlay.impure"] {
        assert_eq!(strata::host::xattr(&Path::new(&diff).join("tmp"), xattr), None, "{xattr}");
    }
    // The image runs, and its intermediate parent is listed by `images -a` only.
    assert_eq!(root.ok(&["run", "--rm", "test-ubuntu", "cat", "/tmp/newfile"]), "Hello World");
    assert_eq!(root.ok(&["images", "-q"]).lines().count(), 2);
    left_clean(&root);
}

fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in names {
            out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if path.is_dir() && !path.is_symlink() {
                go(base, &path, out);
            }
        }
    }
    go(dir, dir, &mut out);
    out
}

/// Every instruction, with the config and the `created_by` rows dockerd 20.10's legacy
/// builder writes for the same file (read from it by hand; build_docker.rs compares live).
#[test]
fn every_instruction() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let dockerfile = r#"FROM img:1
ARG V=1
ENV A=1 B="x y"
LABEL k=v
WORKDIR /app
COPY a.txt /app/
COPY sub /app/sub/
RUN echo "$V $A" > /tmp/args
USER nobody
EXPOSE 80 443/udp
VOLUME /data
CMD echo hi
ENTRYPOINT ["/bin/sh"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
SHELL ["/bin/sh", "-eu", "-c"]
ONBUILD RUN echo child
MAINTAINER me
"#;
    let ctx = context(&[("Dockerfile", dockerfile), ("a.txt", "hello\n"), ("sub/b", "x\n")]);
    build(&root, ctx.path(), &["-t", "all", "--build-arg", "V=2"]);
    let rows = history(&root, "all");
    let expected = [
        "/bin/sh -eu -c #(nop)  MAINTAINER me | 0B",
        "/bin/sh -eu -c #(nop)  ONBUILD RUN echo child | 0B",
        "/bin/sh -eu -c #(nop)  SHELL [/bin/sh -eu -c] | 0B",
        r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x00'} | 0B"#,
        "/bin/sh -c #(nop)  STOPSIGNAL SIGINT | 0B",
        r#"/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh"] | 0B"#,
        r#"/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"] | 0B"#,
        "/bin/sh -c #(nop)  VOLUME [/data] | 0B",
        "/bin/sh -c #(nop)  EXPOSE 443/udp 80 | 0B",
        "/bin/sh -c #(nop)  USER nobody | 0B",
        "|1 V=2 /bin/sh -c echo \"$V $A\" > /tmp/args | 4B",
    ];
    assert_eq!(&rows[..expected.len()], &expected);
    assert!(rows[11].starts_with("/bin/sh -c #(nop) COPY dir:f373a25553f19effb8197d01e49b4bde7abbb885c6ead17fbad6463a0ef248fd in /app/sub/  | "), "{}", rows[11]);
    assert!(
        rows[12].starts_with(
            "/bin/sh -c #(nop) COPY file:679c43c79a56cffbb3b002bda3050542c152a2f09757a0f1a9578871f7cda00d in /app/  | "
        ),
        "{}",
        rows[12]
    );
    assert_eq!(
        rows[13..17],
        [
            "/bin/sh -c #(nop) WORKDIR /app | 0B",
            "/bin/sh -c #(nop)  LABEL k=v | 0B",
            "/bin/sh -c #(nop)  ENV A=1 B=x y | 0B",
            "/bin/sh -c #(nop)  ARG V=1 | 0B"
        ]
    );
    let config = &inspect(&root, "all")["Config"];
    assert_eq!(
        config["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=x y"])
    );
    assert_eq!(config["User"], "nobody");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert_eq!(config["ExposedPorts"], serde_json::json!({"443/udp": {}, "80/tcp": {}}));
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["Labels"], serde_json::json!({"k": "v"}));
    assert_eq!(config["StopSignal"], "SIGINT");
    assert_eq!(config["Healthcheck"], serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64}));
    assert_eq!(config["Shell"], serde_json::json!(["/bin/sh", "-eu", "-c"]));
    assert_eq!(config["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(inspect(&root, "all")["Author"], "me");
    // The build arg reached RUN (not the image's Env), and the files their places as root's.
    let out =
        root.ok(&["run", "--rm", "--entrypoint", "cat", "-u", "0", "all", "/tmp/args", "/app/a.txt", "/app/sub/b"]);
    assert_eq!(out, "2 1\nhello\nx");
    let listing = root.ok(&["run", "--rm", "--entrypoint", "ls", "-u", "0", "all", "-ln", "/app"]);
    assert!(
        listing.lines().filter(|l| l.contains("a.txt") || l.ends_with("sub")).all(|l| l.contains(" 0 0 ")),
        "{listing}"
    );

    // A child build runs the ONBUILD trigger, which is not passed on to it.
    let child = context(&[("Dockerfile", "FROM all\n")]);
    let out = build(&root, child.path(), &["-t", "child"]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(history(&root, "child")[0], "/bin/sh -eu -c echo child | 0B");
    assert_eq!(inspect(&root, "child")["Config"]["OnBuild"], Value::Null);
    left_clean(&root);
}

/// The cache: a rebuild runs nothing and gives the same ID; a changed file reruns from its
/// COPY on; `--no-cache` runs every step; the images still seed later caches.
#[test]
fn cache() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let dockerfile = "FROM img:1\nENV X=1\nRUN echo one > /one\nCOPY f /f\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n";
    let ctx = context(&[("Dockerfile", dockerfile), ("f", "first\n")]);
    let first = build(&root, ctx.path(), &["-t", "c", "-q"]);
    let again = build(&root, ctx.path(), &["-t", "c"]);
    assert_eq!(again.matches(" ---> Using cache").count(), 5, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert!(again.contains(&format!("Successfully built {}", &first.trim_start_matches("sha256:")[..12])), "{again}");
    // A file's mtime is no part of the key; its content is.
    let f = ctx.path().join("f");
    std::fs::File::options().write(true).open(&f).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(build(&root, ctx.path(), &["-q"]), first);
    std::fs::write(&f, "second\n").unwrap();
    let changed = build(&root, ctx.path(), &["-t", "c"]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 2, "{changed}");
    assert_eq!(root.ok(&["run", "--rm", "c"]), "second");
    let fresh = build(&root, ctx.path(), &["--no-cache"]);
    assert_eq!(fresh.matches("Using cache").count(), 0, "{fresh}");
    assert_eq!(fresh.matches("Running in").count(), 2, "{fresh}");
    left_clean(&root);
}

/// Multi-stage: only the stages the target needs are built; `COPY --from` by name and index;
/// `--target`; heredocs for RUN and COPY; `--label`; `-q` and `--iidfile`.
#[test]
fn stages_heredocs_labels() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let dockerfile = r#"ARG BASE=img:1
FROM ${BASE} AS builder
RUN <<EOF
echo built > /out
echo more >> /out
EOF
FROM img:1 AS unused
RUN exit 7
FROM $BASE
ARG BASE
ARG TARGETOS
COPY --from=builder /out /from-name
COPY --from=0 /out /from-index
COPY <<EOF /note
base is ${BASE}
EOF
RUN cat /out 2>/dev/null || echo "no /out here, $TARGETOS" > /check
"#;
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let iid = ctx.path().join("iid");
    let out = build(
        &root,
        ctx.path(),
        &["-t", "multi", "--label", "b=2", "--label", "a=1", "--iidfile", iid.to_str().unwrap()],
    );
    assert!(!out.contains("exit 7"), "the unused stage was built:\n{out}");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(inspect(&root, "multi")["Id"], id.as_str());
    let cat = root.ok(&["run", "--rm", "multi", "cat", "/from-name", "/from-index", "/note", "/check"]);
    assert_eq!(cat, "built\nmore\nbuilt\nmore\nbase is img:1\nno /out here, linux");
    assert_eq!(inspect(&root, "multi")["Config"]["Labels"], serde_json::json!({"a": "1", "b": "2"}));
    let rows = history(&root, "multi");
    assert_eq!(rows[..2], ["/bin/sh -c #(nop)  LABEL b=2 | 0B", "/bin/sh -c #(nop)  LABEL a=1 | 0B"]);
    // --target stops at a stage, and builds only what it needs.
    let quiet = build(&root, ctx.path(), &["-q", "--target", "builder"]);
    assert!(quiet.starts_with("sha256:") && quiet.lines().count() == 1, "{quiet}");
    assert_eq!(root.ok(&["run", "--rm", quiet.trim(), "cat", "/out"]), "built\nmore");
    let err = root.fails(&["build", "--target", "nope", ctx.path().to_str().unwrap()]);
    assert!(err.contains("failed to reach build target nope"), "{err}");
    left_clean(&root);
}

/// `.dockerignore`, wildcards, directory contents, `--chown`, `--chmod`, ADD of a local tar.
#[test]
fn copy_rules() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let dockerfile = "FROM img:1\nCOPY *.txt /t/\nCOPY dir /d\nCOPY --chown=7:8 --chmod=0600 one.txt /owned\nADD arch.tar.gz /x/\nADD one.txt two.txt /plain/\n";
    let ctx = context(&[
        ("Dockerfile", dockerfile),
        (".dockerignore", "# comment\nsecret.txt\ndir/skip\n**/*.log\n!dir/keep.log\n"),
        ("one.txt", "1\n"),
        ("two.txt", "2\n"),
        ("secret.txt", "s\n"),
        ("dir/a", "a\n"),
        ("dir/skip", "no\n"),
        ("dir/x.log", "no\n"),
        ("dir/keep.log", "yes\n"),
        ("dir/sub/b", "b\n"),
    ]);
    let tar = std::process::Command::new("tar")
        .args(["-czf", "arch.tar.gz", "one.txt", "dir/a"])
        .current_dir(ctx.path())
        .status()
        .unwrap();
    assert!(tar.success());
    build(&root, ctx.path(), &["-t", "cp"]);
    let ls = |path: &str| root.ok(&["run", "--rm", "cp", "ls", "-ln", path]);
    let t = ls("/t");
    assert!(t.contains("one.txt") && t.contains("two.txt") && !t.contains("secret"), "{t}");
    let d = root.ok(&["run", "--rm", "cp", "ls", "-R", "/d"]);
    assert!(d.contains("keep.log") && d.contains("sub") && !d.contains("skip") && !d.contains("x.log"), "{d}");
    let owned = ls("/owned");
    assert!(owned.starts_with("-rw------- ") && owned.contains(" 7 8 "), "{owned}");
    let x = root.ok(&["run", "--rm", "cp", "cat", "/x/one.txt", "/x/dir/a", "/plain/one.txt", "/plain/two.txt"]);
    assert_eq!(x, "1\na\n1\n2");
    // Several sources need a directory destination.
    let bad = context(&[("Dockerfile", "FROM img:1\nCOPY a b /dest\n"), ("a", ""), ("b", "")]);
    let err = root.fails(&["build", bad.path().to_str().unwrap()]);
    assert!(err.contains("Dockerfile:2") && err.contains("must be a directory and end with a /"), "{err}");
    left_clean(&root);
}

/// FROM scratch: COPY makes a base layer (also after a metadata step); later steps stand on it.
#[test]
fn from_scratch() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let dockerfile = "FROM img:1 AS tools\nFROM scratch\nENV A=1\nCOPY --from=tools / /\nCOPY f /data/f\nRUN cat /data/f > /data/g\nCMD [\"cat\", \"/data/g\"]\n";
    let ctx = context(&[("Dockerfile", dockerfile), ("f", "from scratch\n")]);
    build(&root, ctx.path(), &["-t", "scratchy"]);
    assert_eq!(root.ok(&["run", "--rm", "scratchy"]), "from scratch");
    let made = inspect(&root, "scratchy");
    assert_eq!(made["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(made["Config"]["Env"][1], "A=1");
    let only = context(&[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "x\n")]);
    build(&root, only.path(), &["-t", "one"]);
    assert_eq!(inspect(&root, "one")["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(inspect(&root, "one")["Parent"], "");
    left_clean(&root);
}

/// ADD of a URL: fetched (over a loopback HTTP server of the test's), mode 0600, its mtime
/// from Last-Modified, named after the URL's last segment; a failed fetch is one line.
#[test]
fn add_url() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let found = String::from_utf8_lossy(&request[..n]).starts_with("GET /files/hello.txt ");
            let reply = match found {
                true => {
                    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\nhello\n"
                }
                false => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let url = format!("http://127.0.0.1:{port}/files/hello.txt");
    let ctx = context(&[("Dockerfile", &format!("FROM img:1\nADD {url} /downloads/\n"))]);
    build(&root, ctx.path(), &["-t", "dl"]);
    let ls = root.ok(&["run", "--rm", "dl", "ls", "-ln", "--time-style=+%s", "/downloads"]);
    assert!(ls.contains("-rw------- ") && ls.contains(" 1445412480 hello.txt"), "{ls}");
    assert_eq!(root.ok(&["run", "--rm", "dl", "cat", "/downloads/hello.txt"]), "hello");
    let missing = context(&[("Dockerfile", &format!("FROM img:1\nADD http://127.0.0.1:{port}/nothing /x\n"))]);
    let err = root.fails(&["build", missing.path().to_str().unwrap()]);
    assert!(err.contains("Dockerfile:2") && err.contains("cannot download"), "{err}");
    left_clean(&root);
}

/// A build killed (SIGKILL) with a step's container made, or while a RUN runs: the container
/// is listed by `ps -a` as docker's would be, and the next build removes it (killing the RUN).
#[test]
fn killed_builds_leave_their_step_containers_to_the_next() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let ctx = context(&[("Dockerfile", "FROM img:1\nCOPY f /f\n"), ("f", "f\n")]);
    let c = ctx.path().to_str().unwrap();
    common::kill_at(&root, "build.step", &["build", c]);
    let left = root.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(left.starts_with("strata-build-") && left.lines().count() == 1, "{left}");
    let slow = context(&[("Dockerfile", "FROM img:1\nRUN sleep 30\n")]);
    let mut child = common::strata_cmd(root.path(), &["build", slow.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let running = loop {
        let ps = root.ok(&["ps", "--format", "{{.Names}}"]);
        if !ps.is_empty() {
            break ps;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("the build ended ({status}) before its RUN ran: {err}");
        }
        assert!(std::time::Instant::now() < deadline, "the RUN never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(running.starts_with("strata-build-"), "{running}");
    let left = root.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(left.lines().count(), 1, "the second build removed the first one's: {left}");
    build(&root, ctx.path(), &["-q"]);
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "", "the next build removes what killed builds left");
    left_clean(&root);
}

/// A failing RUN stops the build with its exit status; no container and no half image stay.
#[test]
fn failing_run() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let before = images_all(&root);
    let ctx = context(&[("Dockerfile", "FROM img:1\nRUN echo partial > /p && exit 3\nRUN true\n")]);
    let out = root.strata(&["build", "-t", "failed", ctx.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:2: RUN echo partial > /p && exit 3: the command '/bin/sh -c echo partial > /p && exit 3' returned a non-zero code: 3"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(images_all(&root), before);
    // (Not a name that is also hex: `inspect f` finds any image whose ID starts with f.)
    assert!(root.strata(&["inspect", "failed"]).status.code() != Some(0));
    left_clean(&root);
}

/// Bad Dockerfiles and contexts: one clear line naming the file and line, nothing stored.
#[test]
fn bad_input() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    let before = images_all(&root);
    let cases: &[(&str, &str)] = &[
        ("FROM img:1\nENV X\n", "Dockerfile:2: "),
        ("FROM img:1\nFOO bar\n", "unknown instruction: FOO"),
        ("FROM img:1\nCOPY --from=nowhere /a /b\n", "nowhere"),
        ("FROM img:1\nCOPY ../secret /x\n", "outside the build context"),
        ("FROM img:1\nCOPY up /x\n", "points outside the build context"),
        ("FROM img:1\nCOPY loop /x\n", "too many levels of symbolic links"),
        ("FROM img:1\nCOPY missing /x\n", "file not found in build context"),
        ("RUN true\n", "no build stage in current context"),
        ("FROM nothing:here\n", "no such image: nothing:here"),
        ("FROM img:1\nRUN [\"a\", 1]\n", "arrays must be comprised of strings only"),
        ("FROM img:1\nEXPOSE 80/xyz\n", "invalid proto"),
        ("FROM img:1\nSTOPSIGNAL NOPE\n", "invalid signal"),
        ("FROM img:1\nRUN --mount=type=cache,target=/x true\n", "RUN --mount is not supported"),
        ("# escape=x\nFROM img:1\n", "invalid escape token"),
        ("", "file with no instructions"),
    ];
    for (dockerfile, expected) in cases {
        let ctx = context(&[("Dockerfile", dockerfile)]);
        std::os::unix::fs::symlink(outside.path().join("secret"), ctx.path().join("up")).unwrap();
        std::os::unix::fs::symlink("loop", ctx.path().join("loop")).unwrap();
        let err = root.fails(&["build", ctx.path().to_str().unwrap()]);
        assert!(err.contains(expected), "{dockerfile:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{dockerfile:?}: {err}");
    }
    let ctx = context(&[]);
    std::fs::write(ctx.path().join("Dockerfile"), b"FROM img:1\nLABEL x=\xff\n").unwrap();
    let err = root.fails(&["build", ctx.path().to_str().unwrap()]);
    assert!(err.contains("is not UTF-8"), "{err}");
    assert_eq!(images_all(&root), before);
    left_clean(&root);
}

/// A context is read where COPY names it, never whole: a 64 GiB (sparse) file beside the
/// Dockerfile costs nothing unless copied, and `.dockerignore` keeps it out of `COPY .`.
#[test]
fn huge_context_files_are_not_read() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let ctx = context(&[
        ("Dockerfile", "FROM img:1\nCOPY small /small\nCOPY . /all/\n"),
        ("small", "s\n"),
        (".dockerignore", "huge\n"),
    ]);
    let huge = std::fs::File::create(ctx.path().join("huge")).unwrap();
    huge.set_len(64 << 30).unwrap();
    let started = std::time::Instant::now();
    build(&root, ctx.path(), &["-t", "h"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    let all = root.ok(&["run", "--rm", "h", "ls", "/all"]);
    assert!(all.contains("small") && !all.contains("huge"), "{all}");
    left_clean(&root);
}

/// `--pull` fetches the base from its registry (a real one on loopback) before the build;
/// without it, a base that is not stored is an error that says to pull it.
#[test]
fn pull_base() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let registry = common::registry::Registry::start(common::registry::Auth::None, None);
    let name = format!("{}/base:1", registry.host());
    root.ok(&["tag", "img:1", &name]);
    root.ok(&["push", "-q", &name]);
    root.ok(&["rmi", &name, "img:1"]);
    let ctx = context(&[("Dockerfile", &format!("FROM {name}\nRUN echo pulled > /p\n"))]);
    let err = root.fails(&["build", ctx.path().to_str().unwrap()]);
    assert!(err.contains(&format!("no such image: {name}: pull it first")), "{err}");
    let out = build(&root, ctx.path(), &["--pull", "-t", "p"]);
    assert!(out.contains("1: Pulling from base") && out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(root.ok(&["run", "--rm", "p", "cat", "/p"]), "pulled");
    left_clean(&root);
}

/// A Dockerfile on stdin with no context, and a context tar on stdin.
#[test]
fn stdin_inputs() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let run = |input: &[u8], args: &[&str]| {
        let out = common::strata_with_stdin(root.path(), args, input);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(b"FROM img:1\nENV FROM=stdin\n", &["build", "-t", "s1", "-"]);
    assert_eq!(inspect(&root, "s1")["Config"]["Env"][1], "FROM=stdin");
    let ctx = context(&[("Dockerfile", "FROM img:1\nCOPY f /f\n"), ("f", "from a tar\n")]);
    let tar = std::process::Command::new("tar").args(["-cz", "-C"]).arg(ctx.path()).arg(".").output().unwrap();
    run(&tar.stdout, &["build", "-t", "s2", "-"]);
    assert_eq!(root.ok(&["run", "--rm", "s2", "cat", "/f"]), "from a tar");
    // A Dockerfile on stdin with a directory context; RUN on the host's network when asked.
    let dockerfile = b"FROM img:1\nCOPY f /g\nRUN ls /sys/class/net > /nets\n";
    run(dockerfile, &["build", "-t", "s3", "--network", "host", "-f", "-", ctx.path().to_str().unwrap()]);
    assert_eq!(root.ok(&["run", "--rm", "s3", "cat", "/g"]), "from a tar");
    let host_nets = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(root.ok(&["run", "--rm", "s3", "cat", "/nets"]).lines().count(), host_nets);
    run(dockerfile, &["build", "-t", "s4", "--no-cache", "-f", "-", ctx.path().to_str().unwrap()]);
    assert_eq!(root.ok(&["run", "--rm", "s4", "cat", "/nets"]), "lo", "no network but loopback by default");
    left_clean(&root);
}

/// Past docker's 125-layer wall: a 300-step Dockerfile builds and its image runs; with
/// SOURCE_DATE_EPOCH two builds from scratch give the same image ID.
#[test]
fn three_hundred_steps_and_reproducible_ids() {
    common::require_root();
    let root = Root::new();
    image(&root);
    let mut dockerfile = String::from("FROM img:1\n");
    for i in 0..298 {
        dockerfile.push_str(&format!("COPY f /steps/{i}\n"));
    }
    dockerfile.push_str("RUN ls /steps > /count\n");
    let ctx = context(&[("Dockerfile", &dockerfile), ("f", "x\n")]);
    build(&root, ctx.path(), &["-q", "-t", "deep"]);
    let layers = inspect(&root, "deep")["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(layers, 300);
    let count = root.ok(&["run", "--rm", "deep", "cat", "/count"]);
    assert_eq!(count.lines().count(), 298, "{count}");

    let small =
        context(&[("Dockerfile", "FROM img:1\nENV A=1\nCOPY f /f\nRUN echo made > /m\nWORKDIR /w\n"), ("f", "f\n")]);
    let once = || {
        let args = ["build", "-q", "--no-cache", small.path().to_str().unwrap()];
        let out = common::strata_cmd(root.path(), &args).env("SOURCE_DATE_EPOCH", "1700000000").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let first = once();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(once(), first, "SOURCE_DATE_EPOCH builds differ");
    assert_eq!(inspect(&root, &first)["Created"], "2023-11-14T22:13:20Z");
    left_clean(&root);
}
