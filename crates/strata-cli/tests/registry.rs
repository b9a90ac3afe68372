//! `strata pull` against the real registry (distribution 2.8, Debian's `docker-registry`) on
//! loopback: plain HTTP, Basic auth over TLS, Bearer tokens; OCI and Docker manifests, an
//! index of platforms, gzip, zstd and plain layers; and a proxy of the test's that drops,
//! damages, stalls and refuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::Root;
use common::images::{TestImage, sha256, tar_of};
use common::registry::{
    Auth, Compress, Fault, OCI_INDEX, OCI_MANIFEST, Proxy, Registry, push_blob, push_image, push_manifest,
};

/// `strata pull` with credentials from `config` (docker's config directory) and no certs.d
/// unless given.
fn pull(root: &Root, config: &Path, certs: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = common::strata_cmd(root.path(), &[&["pull"], args].concat());
    cmd.env("DOCKER_CONFIG", config).env_remove("STRATA_INSECURE_REGISTRIES").env_remove("STRATA_CERTS_D");
    if let Some(certs) = certs {
        cmd.env("STRATA_CERTS_D", certs);
    }
    cmd.output().unwrap()
}

fn pull_ok(root: &Root, config: &Path, certs: Option<&Path>, args: &[&str]) -> String {
    let out = pull(root, config, certs, args);
    assert!(out.status.success(), "pull {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn pull_fails(root: &Root, config: &Path, certs: Option<&Path>, args: &[&str]) -> String {
    let out = pull(root, config, certs, args);
    assert!(!out.status.success(), "pull {args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line of error: {stderr}");
    stderr.trim_end().to_owned()
}

/// Bytes that do not compress: layers big enough to be cut part way.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn two_layer_image(seed: u64) -> TestImage {
    let big = noise(1 << 20, seed);
    TestImage::new(
        vec![
            tar_of(&[("etc/", b""), ("etc/hello", b"hello\n"), ("etc/seed", seed.to_string().as_bytes())]),
            tar_of(&[("etc/hello", b"bye\n"), ("big", &big)]),
        ],
        &["/bin/sh"],
    )
}

fn inspect(root: &Root, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// The files a container of `image` sees: path → content (lossy text), `/` for directories.
fn files_of(root: &Root, image: &str) -> std::collections::BTreeMap<String, String> {
    let name = format!("look-{}", &sha256(image.as_bytes())[..8]);
    root.ok(&["create", "--name", &name, image, "true"]);
    let merged = PathBuf::from(root.ok(&["mount", &name]));
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![merged.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(&merged).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                files.insert(rel, "/".to_owned());
                stack.push(path);
            } else {
                files.insert(rel, String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
            }
        }
    }
    root.ok(&["umount", &name]);
    root.ok(&["rm", &name]);
    files
}

/// A store holding `image` as `local:1`, loaded from a `docker save` archive.
fn loaded(image: &TestImage) -> Root {
    let scratch = tempfile::tempdir().unwrap();
    let archive = scratch.path().join("image.tar");
    std::fs::write(&archive, common::images::docker_archive(&[(image, &["local:1"])])).unwrap();
    let root = Root::new();
    root.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    root
}

fn blob_gets(registry: &Registry, repo: &str) -> usize {
    registry.log().matches(&format!("\"GET /v2/{repo}/blobs/")).count()
}

#[test]
fn pull_by_tag_and_by_digest_as_docker_records_it() {
    let registry = Registry::start(Auth::None, None);
    let host = registry.host();
    let image = two_layer_image(1);
    let compress = [Compress::Gzip, Compress::Gzip];
    let (digest, manifest) = push_image(&host, "team/app", "1.0", &image, &compress, false);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let blobs: Vec<String> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect();
    let config = tempfile::tempdir().unwrap();
    let root = Root::new();
    let name = format!("{host}/team/app:1.0");

    let out = pull_ok(&root, config.path(), None, &[&name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1.0: Pulling from team/app");
    for blob in &blobs {
        assert!(lines.contains(&format!("{}: Pull complete", &blob[7..19]).as_str()), "{out}");
    }
    assert!(lines.contains(&format!("Digest: {digest}").as_str()), "{out}");
    assert!(lines.contains(&format!("Status: Downloaded newer image for {name}").as_str()), "{out}");
    assert_eq!(lines.last(), Some(&name.as_str()));

    let seen = inspect(&root, &name);
    assert_eq!(seen["Id"], image.id());
    assert_eq!(seen["RepoTags"], serde_json::json!([name]));
    assert_eq!(seen["RepoDigests"], serde_json::json!([format!("{host}/team/app@{digest}")]));
    assert_eq!(seen["RootFS"]["Layers"], serde_json::json!(image.diff_ids()));
    let files = files_of(&root, &name);
    assert!(files.get("etc/hello").unwrap().contains("bye"), "{files:?}");
    assert!(files.contains_key("big") && files.contains_key("etc/seed"), "{files:?}");

    // Where each layer came from, in dockerd's records.
    for (blob, diff_id) in blobs.iter().zip(image.diff_ids()) {
        let dist = root.path().join("image/overlay2/distribution");
        let by_digest = std::fs::read_to_string(dist.join("diffid-by-digest/sha256").join(&blob[7..])).unwrap();
        assert_eq!(by_digest, diff_id);
        let records: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dist.join("v2metadata-by-diffid/sha256").join(&diff_id[7..])).unwrap(),
        )
        .unwrap();
        assert_eq!(
            records,
            serde_json::json!([{"Digest": blob, "SourceRepository": format!("{host}/team/app"), "HMAC": ""}])
        );
    }

    // Again: one HEAD, no blob fetched, nothing changed.
    let gets = blob_gets(&registry, "team/app");
    let out = pull_ok(&root, config.path(), None, &[&name]);
    assert!(out.contains(&format!("Status: Image is up to date for {name}")), "{out}");
    assert_eq!(blob_gets(&registry, "team/app"), gets);

    // By digest, into another store: named by digest only.
    let other = Root::new();
    let by_digest = format!("{host}/team/app@{digest}");
    assert_eq!(pull_ok(&other, config.path(), None, &["-q", &by_digest]).trim(), by_digest);
    assert_eq!(inspect(&other, &by_digest)["Id"], image.id());
    let listed = other.ok(&["images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]);
    assert_eq!(listed, format!("{host}/team/app <none> {digest}"));

    // Removing the last tag takes the digest name with it, as in dockerd.
    let untagged = root.ok(&["rmi", &name]);
    assert!(untagged.contains(&format!("Untagged: {host}/team/app@{digest}")), "{untagged}");
    assert_eq!(root.ok(&["images", "-q"]), "");

    // Every tag at once (`-a`), as docker: each tag's lines, then the repository's status.
    let second = two_layer_image(11);
    push_image(&host, "team/app", "2.0", &second, &compress, false);
    let all = Root::new();
    let out = pull_ok(&all, config.path(), None, &["-a", &format!("{host}/team/app")]);
    assert!(out.contains("1.0: Pulling from team/app") && out.contains("2.0: Pulling from team/app"), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {host}/team/app\n")), "{out}");
    assert_eq!(out.lines().last(), Some(format!("{host}/team/app").as_str()));
    let tags = all.ok(&["images", "--format", "{{.Tag}}"]);
    assert_eq!(tags.lines().collect::<std::collections::BTreeSet<_>>(), ["1.0", "2.0"].into());
    pull_fails(&all, config.path(), None, &["-a", &name]);

    // A tag or a repository that is not there.
    let missing = pull_fails(&root, config.path(), None, &[&format!("{host}/team/app:3.0")]);
    assert!(missing.contains("manifest unknown") || missing.contains("not found"), "{missing}");
    let missing = pull_fails(&root, config.path(), None, &[&format!("{host}/nobody/here")]);
    assert!(missing.contains("not found") || missing.contains("unknown"), "{missing}");
}

#[test]
fn an_index_gives_the_platform_asked_for_with_oci_zstd_and_plain_layers() {
    let registry = Registry::start(Auth::None, None);
    let host = registry.host();
    let amd64 = two_layer_image(2);
    let mut arm64 = two_layer_image(3);
    let mut config: serde_json::Value = serde_json::from_slice(&arm64.config).unwrap();
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    arm64.config = serde_json::to_vec(&config).unwrap();
    let (amd64_digest, amd64_manifest) =
        push_image(&host, "multi", "amd64", &amd64, &[Compress::Zstd, Compress::None], true);
    let (arm64_digest, arm64_manifest) =
        push_image(&host, "multi", "arm64", &arm64, &[Compress::Gzip, Compress::Gzip], true);
    let attestation = push_blob(&host, "multi", b"{}");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": arm64_digest, "size": arm64_manifest.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": amd64_digest, "size": amd64_manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": attestation, "size": 2, "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }))
    .unwrap();
    let index_digest = push_manifest(&host, "multi", "latest", OCI_INDEX, &index);
    let config_dir = tempfile::tempdir().unwrap();
    let root = Root::new();
    let name = format!("{host}/multi");

    let host_arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    let (native, foreign, foreign_platform) =
        if host_arch == "amd64" { (&amd64, &arm64, "linux/arm64/v8") } else { (&arm64, &amd64, "linux/amd64") };
    let out = pull_ok(&root, config_dir.path(), None, &[&name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "the index's digest is the name's: {out}");
    let seen = inspect(&root, &format!("{name}:latest"));
    assert_eq!(seen["Id"], native.id());
    assert_eq!(seen["RepoDigests"], serde_json::json!([format!("{name}@{index_digest}")]));
    assert!(files_of(&root, &format!("{name}:latest")).contains_key("big"));

    let other = Root::new();
    pull_ok(&other, config_dir.path(), None, &["--platform", foreign_platform, &name]);
    assert_eq!(inspect(&other, &format!("{name}:latest"))["Id"], foreign.id());

    let error = pull_fails(&other, config_dir.path(), None, &["--platform", "linux/s390x", &format!("{name}:latest")]);
    assert!(error.contains("no image for linux/s390x (it has: linux/arm64/v8, linux/amd64)"), "{error}");
    let error = pull_fails(&other, config_dir.path(), None, &["--platform", "linux//x", &name]);
    assert!(error.contains("platform"), "{error}");
}

#[test]
fn basic_auth_over_tls_verifies_the_certificate_and_names_the_credentials() {
    let plain = Registry::start(Auth::None, None);
    let image = two_layer_image(4);
    push_image(&plain.host(), "private", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    let users = vec![("alice".to_owned(), "wonderland".to_owned())];
    let tls = Registry::start(Auth::Basic { users }, Some(&plain.dir.path().join("data")));
    let host = tls.host();
    let name = format!("{host}/private:1");
    let root = Root::new();
    let config = tempfile::tempdir().unwrap();

    // Loopback, but TLS: its certificate must be trusted, and plain HTTP is not tried.
    let error = pull_fails(&root, config.path(), None, &[&name]);
    assert!(
        error.contains("certificate is not trusted") && error.contains(&format!("certs.d/{host}/ca.crt")),
        "{error}"
    );

    let certs = tls.certs_d();
    let error = pull_fails(&root, config.path(), Some(&certs), &[&name]);
    assert!(error.contains("asks for a user name and password, and none are stored"), "{error}");
    assert!(error.contains("docker login"), "the hint says how: {error}");

    let auth = |user: &str, password: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::write(config.path().join("config.json"), format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#))
            .unwrap();
    };
    auth("alice", "looking-glass");
    let error = pull_fails(&root, config.path(), Some(&certs), &[&name]);
    assert!(error.contains("401") && error.contains("tried the credentials of alice from"), "{error}");
    assert_eq!(root.ok(&["images", "-q"]), "");

    auth("alice", "wonderland");
    pull_ok(&root, config.path(), Some(&certs), &[&name]);
    assert_eq!(inspect(&root, &name)["Id"], image.id());

    // `login` checks before it keeps anything, and keeps it as the docker CLI does.
    let fresh = tempfile::tempdir().unwrap();
    let docker_config = fresh.path().join("docker");
    let out = login(&root, &docker_config, &certs, &["-u", "alice", "--password-stdin", &host], "looking-glass\n");
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("401"), "{error}");
    assert!(!docker_config.join("config.json").exists(), "nothing kept after a failed login");
    let out = login(&root, &docker_config, &certs, &["-u", "alice", "--password-stdin", &host], "wonderland\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Login Succeeded");
    let file = docker_config.join("config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept["auths"][&host]["auth"], "YWxpY2U6d29uZGVybGFuZA==", "base64 of alice:wonderland");
    let other = Root::new();
    pull_ok(&other, &docker_config, Some(&certs), &[&name]);
    let out =
        common::strata_cmd(root.path(), &["logout", &host]).env("DOCKER_CONFIG", &docker_config).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("Removing login credentials for {host}"));
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept["auths"], serde_json::json!({}));
    pull_fails(&Root::new(), &docker_config, Some(&certs), &[&name]);
}

/// `strata login ARGS` with `stdin` as its standard input.
fn login(root: &Root, config: &Path, certs: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = common::strata_cmd(root.path(), &[&["login"], args].concat())
        .env("DOCKER_CONFIG", config)
        .env("STRATA_CERTS_D", certs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials() {
    let plain = Registry::start(Auth::None, None);
    let image = two_layer_image(5);
    push_image(&plain.host(), "team/app", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    let registry = Registry::start(Auth::Token, Some(&plain.dir.path().join("data")));
    let tokens = registry.tokens.as_ref().unwrap();
    let name = format!("{}/team/app:1", registry.host());
    let config = tempfile::tempdir().unwrap();

    let root = Root::new();
    pull_ok(&root, config.path(), None, &[&name]);
    assert_eq!(inspect(&root, &name)["Id"], image.id());
    let requests = tokens.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for (query, with_credentials) in &requests {
        assert!(query.contains("scope=repository%3Ateam%2Fapp%3Apull"), "{query}");
        assert!(query.contains("service=strata-test-service"), "{query}");
        assert!(!with_credentials);
    }
    // One token serves the whole pull (it lives 300 s).
    assert_eq!(requests.len(), 1, "{requests:?}");

    // A token that runs out in the middle of a pull (a 503 with Retry-After outlives it): the
    // registry's 401 is answered with a new token, and the pull goes on. (The registry's 60 s
    // of leeway leave it 3 s.)
    tokens.life.store(-57, std::sync::atomic::Ordering::SeqCst);
    let front = Proxy::start(registry.port);
    front.add(Fault::Status { path: "/blobs/".into(), status: 503, times: 1, retry_after: Some(5) });
    let late = Root::new();
    pull_ok(&late, config.path(), None, &[&format!("{}/team/app:1", front.host())]);
    assert_eq!(inspect(&late, &format!("{}/team/app:1", front.host()))["Id"], image.id());
    let renewed = tokens.requests.lock().unwrap().len() - requests.len();
    assert_eq!(renewed, 2, "a first token, then a new one after the 401");
    tokens.life.store(300, std::sync::atomic::Ordering::SeqCst);

    use base64::Engine;
    let write = |user: &str, password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::write(
            config.path().join("config.json"),
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host()),
        )
        .unwrap();
    };
    write("alice", "wonderland");
    let other = Root::new();
    pull_ok(&other, config.path(), None, &[&name]);
    let last = tokens.requests.lock().unwrap().last().cloned().unwrap();
    assert!(last.1 && last.0.contains("account=alice"), "{last:?}");

    write("bob", "nope");
    let third = Root::new();
    let error = pull_fails(&third, config.path(), None, &[&name]);
    assert!(error.contains("token service") && error.contains("tried the credentials of bob"), "{error}");

    // A login whose token service gives a refresh token keeps it in place of the password,
    // and pulls trade it for access tokens (OAuth2 POST).
    let fresh = tempfile::tempdir().unwrap();
    let empty_certs = fresh.path().join("certs.d");
    let out = login(&third, fresh.path(), &empty_certs, &["-u", "alice", "-p", "wonderland", &registry.host()], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"), "the -p warning");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fresh.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(kept["auths"][registry.host()]["identitytoken"], common::registry::REFRESH_TOKEN);
    assert_eq!(kept["auths"][registry.host()]["auth"], "YWxpY2U6", "base64 of alice: (no password)");
    pull_ok(&third, fresh.path(), None, &[&name]);
    let last = tokens.requests.lock().unwrap().last().cloned().unwrap();
    assert!(
        last.0.contains("grant_type=refresh_token") && last.0.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{last:?}"
    );

    // Pushing needs the push scope: alice has it, nobody else.
    let copy = format!("{}/team/copy:1", registry.host());
    third.ok(&["tag", &name, &copy]);
    let anonymous = tempfile::tempdir().unwrap();
    let out =
        common::strata_cmd(third.path(), &["push", &copy]).env("DOCKER_CONFIG", anonymous.path()).output().unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("401") || error.contains("denied"), "{error}");
    assert!(error.contains("no credentials"), "{error}");
    let out = common::strata_cmd(third.path(), &["push", &copy]).env("DOCKER_CONFIG", fresh.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = tokens.requests.lock().unwrap().last().cloned().unwrap();
    assert!(last.0.contains("scope=repository%3Ateam%2Fcopy%3Apull%2Cpush"), "{last:?}");
    assert!(last.0.contains("scope=repository%3Ateam%2Fapp%3Apull"), "the mount source's scope too: {last:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("Mounted from team/app").count(), 2);
}

#[test]
fn credential_helpers_store_get_and_erase() {
    let registry = Registry::start(Auth::Basic { users: vec![("carol".into(), "c4r0l".into())] }, None);
    let host = registry.host();
    let certs = registry.certs_d();
    let dir = tempfile::tempdir().unwrap();
    // A helper as docker-credential-helpers' protocol has it, keeping one secret in a file.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-strata-test");
    std::fs::write(
        &helper,
        format!(
            r#"#!/bin/sh
store={0}/kept.json
case "$1" in
  store) cat > "$store" ;;
  get) read url; if [ -f "$store" ] && grep -q ""$url"" "$store"; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm -f "$store" ;;
esac
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("docker");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("config.json"), r#"{"credsStore":"strata-test","experimental":"keep-me"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let root = Root::new();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = common::strata_cmd(root.path(), args)
            .env("DOCKER_CONFIG", &config)
            .env("STRATA_CERTS_D", &certs)
            .env("PATH", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["login", "-u", "carol", "--password-stdin", &host], "c4r0l\n");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("kept.json")).unwrap()).unwrap();
    assert_eq!(kept, serde_json::json!({"ServerURL": host, "Username": "carol", "Secret": "c4r0l"}));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(config.join("config.json")).unwrap()).unwrap();
    assert_eq!(file["auths"][&host], serde_json::json!({}), "no secret in the file");
    assert_eq!(file["experimental"], "keep-me", "other settings kept");
    let plain = Registry::start(Auth::None, Some(&registry.dir.path().join("data")));
    let image = two_layer_image(7);
    push_image(&plain.host(), "helped", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    run(&["pull", "-q", &format!("{host}/helped:1")], "");
    run(&["logout", &host], "");
    assert!(!dir.path().join("kept.json").exists());
}

#[test]
fn dropped_refused_damaged_and_stalled_transfers() {
    let registry = Registry::start(Auth::None, None);
    let image = two_layer_image(6);
    // The second layer plain, so that a flipped byte reaches the tar (and its diffID).
    let (_, manifest) = push_image(&registry.host(), "app", "1", &image, &[Compress::Gzip, Compress::None], false);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = |i: usize| {
        (
            manifest["layers"][i]["digest"].as_str().unwrap().to_owned(),
            manifest["layers"][i]["size"].as_u64().unwrap() as usize,
        )
    };
    let ((blob1, size1), (blob2, size2)) = (layer(0), layer(1));
    let config = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(registry.port);
    let name = format!("{}/app:1", proxy.host());

    // Cut twice in one layer and once in the other, refused, rate-limited: the pull completes,
    // and each layer is fetched about once (resumed, not restarted).
    proxy.add(Fault::Cut { path: blob1.clone(), after: size1 / 3, times: 2 });
    proxy.add(Fault::Cut { path: blob2.clone(), after: size2 / 2, times: 1 });
    proxy.add(Fault::Status { path: "/manifests/".into(), status: 503, times: 2, retry_after: None });
    proxy.add(Fault::Status { path: "/blobs/".into(), status: 429, times: 1, retry_after: Some(1) });
    let root = Root::new();
    pull_ok(&root, config.path(), None, &[&name]);
    assert_eq!(inspect(&root, &name)["Id"], image.id());
    assert!(files_of(&root, &name).contains_key("big"));
    let sent1 = proxy.sent_for(&blob1);
    assert!(sent1 >= size1 && sent1 < size1 + size1 / 10, "layer 1: {sent1} bytes sent for {size1}");
    let sent2 = proxy.sent_for(&blob2);
    assert!(sent2 >= size2 && sent2 < size2 + size2 / 10, "layer 2: {sent2} bytes sent for {size2}");
    let ranges: Vec<String> = proxy.seen.lock().unwrap().iter().filter_map(|(_, _, r, _)| r.clone()).collect();
    assert!(ranges.contains(&format!("bytes={}-", size2 / 2)), "{ranges:?}");
    proxy.faults.lock().unwrap().clear();

    // A damaged byte: the layer's digest does not match; nothing is stored.
    proxy.add(Fault::Flip { path: blob2.clone(), at: 1000 });
    let damaged = Root::new();
    let error = pull_fails(&damaged, config.path(), None, &[&name]);
    assert!(error.contains(&blob2) && error.contains("mismatch"), "{error}");
    assert_eq!(damaged.ok(&["images", "-q"]), "");
    assert_eq!(damaged.ok(&["layer", "ls", "-q"]), "");
    damaged.ok(&["check"]);
    proxy.faults.lock().unwrap().clear();

    // A registry that keeps failing: the error says so after the retries.
    proxy.add(Fault::Status { path: "/manifests/".into(), status: 500, times: 100, retry_after: None });
    let error = pull_fails(&damaged, config.path(), None, &[&name]);
    assert!(error.contains("500"), "{error}");
    proxy.faults.lock().unwrap().clear();

    // A registry that dies part way: a few dropped connections are retried; for good, the
    // pull stops with one line saying so, and nothing is stored.
    proxy.add(Fault::Drop { path: blob2.clone(), times: 2 });
    let flaky = Root::new();
    pull_ok(&flaky, config.path(), None, &[&name]);
    proxy.faults.lock().unwrap().clear();
    proxy.add(Fault::Drop { path: "/blobs/".into(), times: 1000 });
    let dead = Root::new();
    let error = pull_fails(&dead, config.path(), None, &[&name]);
    assert!(error.contains("tried 5 times") || error.contains("could not be resumed"), "{error}");
    assert_eq!(dead.ok(&["images", "-q"]), "");
    dead.ok(&["check"]);
    proxy.faults.lock().unwrap().clear();

    // A connection that stalls: after the read timeout, the layer goes on from where it was.
    proxy.add(Fault::Stall { path: blob2.clone(), after: size2 / 3, times: 1 });
    let stalled = Root::new();
    let out = common::strata_cmd(stalled.path(), &["pull", "-q", &name])
        .env("DOCKER_CONFIG", config.path())
        .env("STRATA_REGISTRY_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(inspect(&stalled, &name)["Id"], image.id());
    let ranges: Vec<String> = proxy.seen.lock().unwrap().iter().filter_map(|(_, _, r, _)| r.clone()).collect();
    assert!(ranges.contains(&format!("bytes={}-", size2 / 3)), "{ranges:?}");
    proxy.faults.lock().unwrap().clear();

    // Killed while a layer stalls: nothing half visible, and the next pull completes.
    proxy.add(Fault::Stall { path: blob1.clone(), after: size1 / 2, times: 1000 });
    let mut child = common::strata_cmd(damaged.path(), &["pull", "-q", &name])
        .env("DOCKER_CONFIG", config.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.sent_for(&blob1) < size1 / 2 {
        assert!(Instant::now() < deadline, "the pull never reached the stall");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(damaged.ok(&["images", "-q"]), "");
    proxy.faults.lock().unwrap().clear();
    let before = proxy.sent_for(&blob1);
    pull_ok(&damaged, config.path(), None, &[&name]);
    assert_eq!(inspect(&damaged, &name)["Id"], image.id());
    damaged.ok(&["check"]);
    // The killed pull's bytes were kept: the next one fetched only the rest of the layer.
    let again = proxy.sent_for(&blob1) - before;
    assert!(again <= size1 - size1 / 2 + size1 / 20, "fetched {again} of {size1} bytes again");
    let pulls = damaged.path().join("strata/pulls");
    assert_eq!(std::fs::read_dir(&pulls).unwrap().count(), 0, "kept bytes go once the layer is stored");

    // Kept bytes that are damaged: the pull finds out and starts the layer again.
    let resumed = Root::new();
    let pulls = resumed.path().join("strata/pulls");
    std::fs::create_dir_all(&pulls).unwrap();
    std::fs::write(pulls.join(format!("{}.partial", &blob2[7..])), vec![b'x'; 1000]).unwrap();
    pull_ok(&resumed, config.path(), None, &[&name]);
    assert_eq!(inspect(&resumed, &name)["Id"], image.id());
    assert_eq!(std::fs::read_dir(&pulls).unwrap().count(), 0);

    // A manifest that is not what its digest says.
    let digest = manifest_digest(&registry, "app", "1");
    proxy.add(Fault::Flip { path: "/manifests/".into(), at: 20 });
    let pinned = format!("{}/app@{digest}", proxy.host());
    let error = pull_fails(&Root::new(), config.path(), None, &[&pinned]);
    assert!(error.contains(&format!("manifest {digest} has digest")), "{error}");
}

/// The digest `repo:tag` resolves to, as the registry says.
fn manifest_digest(registry: &Registry, repo: &str, tag: &str) -> String {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let response = agent
        .head(format!("http://{}/v2/{repo}/manifests/{tag}", registry.host()))
        .header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
        .call()
        .unwrap();
    response.headers().get("docker-content-digest").unwrap().to_str().unwrap().to_owned()
}

#[test]
fn push_then_pull_gives_the_same_image_and_a_second_push_sends_nothing() {
    let registry = Registry::start(Auth::None, None);
    let host = registry.host();
    let image = two_layer_image(8);
    let root = loaded(&image);
    let name = format!("{host}/app:1");
    root.ok(&["tag", "local:1", &name]);
    let patches = |r: &Registry| r.log().matches("\"PATCH /v2/").count();

    let out = root.ok(&["push", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("The push refers to repository [{host}/app]"));
    for diff_id in image.diff_ids() {
        assert!(lines.contains(&format!("{}: Pushed", &diff_id[7..19]).as_str()), "{out}");
    }
    let last = lines.last().unwrap();
    let digest = last.strip_prefix("1: digest: ").unwrap().split(' ').next().unwrap().to_owned();
    assert_eq!(patches(&registry), 2, "one streamed upload per layer");
    // What the registry stores is what strata said, and names the image strata has.
    assert_eq!(manifest_digest(&registry, "app", "1"), digest);
    let inspect = |r: &Root, n: &str| -> serde_json::Value { serde_json::from_str(&r.ok(&["inspect", n])).unwrap() };
    assert_eq!(inspect(&root, &name)[0]["RepoDigests"], serde_json::json!([format!("{host}/app@{digest}")]));

    let config = tempfile::tempdir().unwrap();
    let other = Root::new();
    pull_ok(&other, config.path(), None, &[&name]);
    assert_eq!(inspect(&other, &name)[0]["Id"], image.id(), "push then pull: the same image");
    assert!(files_of(&other, &name).contains_key("big"));

    // Again, and to another repository: nothing is uploaded.
    let again = root.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");
    assert!(again.ends_with(&format!("1: digest: {digest} size: {}", last.rsplit(' ').next().unwrap())), "{again}");
    let copy = format!("{host}/copy:1");
    other.ok(&["tag", &name, &copy]);
    let mounted = other.ok(&["push", &copy]);
    assert_eq!(mounted.matches("Mounted from app").count(), 2, "{mounted}");
    assert_eq!(patches(&registry), 2, "no upload since the first push");

    // zstd layers, in an OCI manifest; pulled back, the same image.
    let zstd = format!("{host}/zstd:1");
    root.ok(&["tag", "local:1", &zstd]);
    root.ok(&["push", "--compression", "zstd", &zstd]);
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let body = agent
        .get(format!("http://{host}/v2/zstd/manifests/1"))
        .header("Accept", OCI_MANIFEST)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    let third = Root::new();
    pull_ok(&third, config.path(), None, &[&zstd]);
    assert_eq!(inspect(&third, &zstd)[0]["Id"], image.id());

    // A committed image: its new layer goes up, the image's own are there already.
    root.ok(&["create", "--name", "cc", "local:1", "true"]);
    let merged = PathBuf::from(root.ok(&["mount", "cc"]));
    std::fs::write(merged.join("etc/committed"), "by strata\n").unwrap();
    std::fs::remove_file(merged.join("etc/hello")).unwrap();
    root.ok(&["umount", "cc"]);
    let committed = format!("{host}/app:committed");
    let id = root.ok(&["commit", "cc", &committed]);
    let out = root.ok(&["push", &committed]);
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");
    assert_eq!(out.matches(": Pushed").count(), 1, "{out}");
    let fourth = Root::new();
    pull_ok(&fourth, config.path(), None, &[&committed]);
    assert_eq!(inspect(&fourth, &committed)[0]["Id"], id.as_str());
    let files = files_of(&fourth, &committed);
    assert_eq!(files.get("etc/committed").map(String::as_str), Some("by strata\n"));
    assert!(!files.contains_key("etc/hello"), "the whiteout went up and came back: {files:?}");

    // In chunks of 300 kB, each a PATCH with its Content-Range: the same blobs.
    let chunked = format!("{host}/chunked:1");
    root.ok(&["tag", "local:1", &chunked]);
    let patches_before = patches(&registry);
    // Without dockerd's records of where the layers went, they are sent again.
    std::fs::remove_dir_all(root.path().join("image/overlay2/distribution")).unwrap();
    let out = root.ok(&["push", "--chunk-size", "300000", &chunked]);
    assert!(out.ends_with(&format!("1: digest: {digest} size: {}", last.rsplit(' ').next().unwrap())), "{out}");
    assert!(patches(&registry) - patches_before >= 4, "the 1 MiB layer went in several chunks");

    // Not a name of this store, and a digest: clear refusals.
    let error = root.fails(&["push", &format!("{host}/nothing:1")]);
    assert!(error.contains("no such image"), "{error}");
    let error = root.fails(&["push", &format!("{host}/app@{digest}")]);
    assert!(error.contains("push a tag"), "{error}");
}

#[test]
fn mirrors_and_blocks_from_registries_conf() {
    let primary = Registry::start(Auth::None, None);
    let mirror = Registry::start(Auth::None, None);
    let image = two_layer_image(9);
    // The mirror keeps the repository under a path of its own.
    push_image(&mirror.host(), "cache/team/app", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    let name = format!("{}/team/app:1", primary.host());
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"{0}/team\"\nlocation = \"{0}/team\"\n[[registry.mirror]]\nlocation = \"{1}/cache/team\"\n\n[[registry]]\nlocation = \"{0}/secret\"\nblocked = true\n",
            primary.host(),
            mirror.host()
        ),
    )
    .unwrap();
    let root = Root::new();
    let pull = |args: &[&str]| {
        common::strata_cmd(root.path(), &[&["pull"], args].concat())
            .env("DOCKER_CONFIG", dir.path())
            .env("STRATA_REGISTRIES_CONF", &conf)
            .output()
            .unwrap()
    };
    let out = pull(&[&name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(inspect(&root, &name)["Id"], image.id(), "named as asked, fetched from the mirror");
    assert!(blob_gets(&mirror, "cache/team/app") >= 2);
    assert_eq!(blob_gets(&primary, "team/app"), 0);

    let out = pull(&[&format!("{}/secret/app:1", primary.host())]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("registries.conf blocks"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&conf, "[[registry]\nnot toml").unwrap();
    let out = pull(&[&name]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a valid registries.conf"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_redirect_to_another_host_carries_no_credentials() {
    let plain = Registry::start(Auth::None, None);
    let image = two_layer_image(10);
    push_image(&plain.host(), "team/app", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    let tokens = Registry::start(Auth::Token, Some(&plain.dir.path().join("data")));
    // The registry sends blobs to "storage": another host, which needs no credentials.
    let storage = Proxy::start(plain.port);
    let front = Proxy::start(tokens.port);
    front.add(Fault::Redirect { path: "/blobs/".into(), to: storage.host() });
    let config = tempfile::tempdir().unwrap();
    let root = Root::new();
    let name = format!("{}/team/app:1", front.host());
    pull_ok(&root, config.path(), None, &[&name]);
    assert_eq!(inspect(&root, &name)["Id"], image.id());
    let front_seen = front.seen.lock().unwrap().clone();
    assert!(front_seen.iter().any(|(_, t, _, auth)| t.contains("/manifests/") && *auth), "the registry got the token");
    let storage_seen = storage.seen.lock().unwrap().clone();
    assert!(storage_seen.iter().filter(|(_, t, _, _)| t.contains("/blobs/")).count() >= 3, "{storage_seen:?}");
    assert!(storage_seen.iter().all(|(_, _, _, auth)| !auth), "no Authorization to another host: {storage_seen:?}");
}

#[test]
fn a_killed_push_leaves_the_store_as_it_was_and_the_next_one_completes() {
    let registry = Registry::start(Auth::None, None);
    let host = registry.host();
    let image = two_layer_image(12);
    let root = loaded(&image);
    let name = format!("{host}/killed:1");
    root.ok(&["tag", "local:1", &name]);
    let before = common::snapshot(root.path());
    for delay in [5, 30, 80, 150] {
        common::kill_after(&root, &["push", &name], Duration::from_millis(delay));
        root.ok(&["check"]);
        assert_eq!(inspect(&root, &name)["Id"], image.id());
    }
    // Nothing of the store changed but, maybe, the records a finished push writes (its
    // repo digest name and when the image was last updated).
    let after = common::snapshot(root.path());
    for (path, what) in &before {
        if path.ends_with("lastUpdated") || path.ends_with("repositories.json") {
            continue;
        }
        assert_eq!(after.get(path), Some(what), "{} changed", path.display());
    }
    root.ok(&["push", &name]);
    let config = tempfile::tempdir().unwrap();
    let other = Root::new();
    pull_ok(&other, config.path(), None, &[&name]);
    assert_eq!(inspect(&other, &name)["Id"], image.id());
}

#[test]
fn a_full_disk_stops_a_pull_with_nothing_half_stored() {
    let registry = Registry::start(Auth::None, None);
    let image = two_layer_image(13);
    push_image(&registry.host(), "big", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    // A store on a 2 MiB tmpfs: the 1 MiB of noise, kept and extracted, does not fit.
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let store = mount.join("root");
    let config = tempfile::tempdir().unwrap();
    let out = common::strata_cmd(&store, &["pull", &format!("{}/big:1", registry.host())])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(error.trim_end().lines().count(), 1, "{error}");
    let images = common::strata_cmd(&store, &["images", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&images.stdout).trim(), "");
    let check = common::strata_cmd(&store, &["check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

#[test]
fn a_client_certificate_from_certs_d() {
    let plain = Registry::start(Auth::None, None);
    let image = two_layer_image(14);
    push_image(&plain.host(), "mtls", "1", &image, &[Compress::Gzip, Compress::Gzip], false);
    let registry = Registry::start(Auth::ClientCert, Some(&plain.dir.path().join("data")));
    let name = format!("{}/mtls:1", registry.host());
    let config = tempfile::tempdir().unwrap();
    let root = Root::new();
    // The CA alone: the registry refuses the connection.
    let error = pull_fails(&root, config.path(), Some(&registry.certs_d()), &[&name]);
    assert!(error.contains(&registry.host()), "{error}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    // With docker's client.cert and client.key beside it: pulled.
    pull_ok(&root, config.path(), Some(&registry.certs_d_with_client()), &[&name]);
    assert_eq!(inspect(&root, &name)["Id"], image.id());
}

#[test]
fn system_prune_drops_the_bytes_interrupted_pulls_kept_but_not_a_running_pulls() {
    let root = Root::new();
    root.ok(&["layer", "create"]);
    let pulls = root.path().join("strata/pulls");
    std::fs::create_dir_all(&pulls).unwrap();
    let idle = pulls.join(format!("{}.partial", "a".repeat(64)));
    let busy = pulls.join(format!("{}.partial", "b".repeat(64)));
    std::fs::write(&idle, vec![0u8; 5000]).unwrap();
    std::fs::write(&busy, vec![0u8; 7000]).unwrap();
    let held = std::fs::File::open(&busy).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let out = root.ok(&["system", "prune", "-f"]);
    assert!(out.ends_with("Total reclaimed space: 5kB"), "{out}");
    assert!(!idle.exists());
    assert!(busy.exists(), "a pull that runs keeps its bytes");
}
