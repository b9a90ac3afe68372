//! Image archives made by hand for the tests: `docker save` tarballs and OCI layouts, from
//! layer tarballs and a config written here, so each test knows every digest.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// An image: layer tarballs (uncompressed) and a config naming their diffIDs.
#[derive(Clone)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
}

impl TestImage {
    /// An image of `layers`, with one history entry per layer (`created_by: "step N"`), plus an
    /// empty-layer step, and `cmd` as its command.
    pub fn new(layers: Vec<Vec<u8>>, cmd: &[&str]) -> TestImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha256(l))).collect();
        let mut history: Vec<serde_json::Value> = (0..layers.len())
            .map(|i| serde_json::json!({"created": format!("2024-01-0{}T00:00:00Z", i + 1), "created_by": format!("/bin/sh -c step {i}")}))
            .collect();
        history.push(serde_json::json!({"created": "2024-01-09T00:00:00Z", "created_by": "/bin/sh -c #(nop)  CMD", "empty_layer": true}));
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-09T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        TestImage { layers, config: serde_json::to_vec(&config).unwrap() }
    }

    pub fn id(&self) -> String {
        format!("sha256:{}", sha256(&self.config))
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| format!("sha256:{}", sha256(l))).collect()
    }
}

/// A tar of named files, in order.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(if name.ends_with('/') { tar::EntryType::Directory } else { tar::EntryType::Regular });
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A `docker save` tarball of `images`, each with its tags. Layers are `<n>/layer.tar`.
pub fn docker_archive(images: &[(&TestImage, &[&str])]) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut manifest = Vec::new();
    for (image, tags) in images {
        let mut paths = Vec::new();
        for layer in &image.layers {
            let dir = sha256(format!("v1 {}", sha256(layer)).as_bytes());
            let path = format!("{dir}/layer.tar");
            if !files.iter().any(|(n, _)| *n == path) {
                files.push((path.clone(), layer.clone()));
            }
            paths.push(path);
        }
        let config = format!("{}.json", &image.id()[7..]);
        files.push((config.clone(), image.config.clone()));
        manifest.push(serde_json::json!({"Config": config, "RepoTags": tags, "Layers": paths}));
    }
    files.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    tar_of(&refs)
}

/// How OCI layers are compressed.
#[derive(Clone, Copy)]
pub enum Layers {
    Plain,
    Gzip,
    Zstd,
}

/// Write an OCI image layout of `images` (each with an optional `org.opencontainers.image.ref.name`)
/// into `dir`.
pub fn oci_layout(dir: &Path, images: &[(&TestImage, Option<&str>)], layers: Layers) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let mut manifests = Vec::new();
    for (image, name) in images {
        let mut descriptors = Vec::new();
        for layer in &image.layers {
            let (blob, media) = match layers {
                Layers::Plain => (layer.clone(), "application/vnd.oci.image.layer.v1.tar"),
                Layers::Gzip => (super::tarball::gzip(layer), "application/vnd.oci.image.layer.v1.tar+gzip"),
                Layers::Zstd => {
                    (zstd::encode_all(&layer[..], 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd")
                }
            };
            descriptors.push(serde_json::json!({"mediaType": media, "digest": put(&blob), "size": blob.len()}));
        }
        let config = serde_json::json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&image.config), "size": image.config.len()});
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": descriptors,
        }))
        .unwrap();
        let mut entry = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(&manifest), "size": manifest.len()});
        if let Some(name) = name {
            entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
        }
        manifests.push(entry);
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A tar of the directory `dir` (as `tar -C dir -cf - .` would make).
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// The layer tars of a saved archive (docker or OCI), in manifest order, for the first image.
pub fn saved_layers(archive: &Path) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar").arg("-C").arg(dir.path()).arg("-xf").arg(archive).status().unwrap();
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| std::fs::read(dir.path().join(l.as_str().unwrap())).unwrap())
        .collect()
}

/// A root filesystem that runs: `/bin/sh`, `cat`, `ls`, `echo`-capable shell, their libraries
/// and `/etc/os-release`, copied from the host.
pub fn host_rootfs(dir: &Path) {
    for bin in ["/bin/sh", "/usr/bin/cat", "/usr/bin/ls", "/usr/bin/true"] {
        copy_with_libs(dir, Path::new(bin));
    }
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("etc/os-release"), "PRETTY_NAME=\"strata test\"\nID=strata\n").unwrap();
}

/// Copy `bin` and the libraries `ldd` names for it into the root filesystem `root`.
pub fn copy_with_libs(root: &Path, bin: &Path) {
    let mut files = vec![bin.to_owned()];
    let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            files.push(word.into());
        }
    }
    for f in files {
        let target = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let data = std::fs::read(&f).unwrap();
        let mut out = std::fs::File::create(&target).unwrap();
        out.write_all(&data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A Debian bookworm minbase root filesystem as a tar, made once per machine with
/// `debootstrap` (which CI installs) and kept in `/var/tmp` for later runs.
pub fn debian_rootfs() -> PathBuf {
    let cached = PathBuf::from("/var/tmp/strata-debian-rootfs.tar");
    let lock = std::fs::File::create("/var/tmp/strata-debian-rootfs.lock").unwrap();
    lock.lock().unwrap();
    if cached.exists() {
        return cached;
    }
    let dir = tempfile::Builder::new().prefix("strata-debootstrap-").tempdir_in("/var/tmp").unwrap();
    let rootfs = dir.path().join("rootfs");
    let status = std::process::Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&rootfs)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("debootstrap is installed (apt-get install debootstrap; .ci/run does)");
    assert!(status.success(), "debootstrap failed");
    let partial = dir.path().join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "-C"])
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&partial)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of the debootstrap rootfs failed");
    std::fs::rename(&partial, &cached).unwrap();
    cached
}

/// `cp -a from to`: a store copied whole, with owners, modes, links and xattrs.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}
