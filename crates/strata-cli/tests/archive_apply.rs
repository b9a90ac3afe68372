//! Applying layer tarballs: every entry type, whiteouts, digests, bad streams, and a corpus
//! of breakout attempts, each checked against the world outside the layer.

mod common;

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::tarball::{E, Tarball, dir, file, gzip, hardlink, symlink};
use common::{Root, snapshot};
use strata::archive::{Applied, ApplyOptions};
use strata::layer::{CreateOptions, LayerStore};
use strata::{Digest, Error, LayerId, Store};

fn layers(root: &Root) -> LayerStore {
    Store::open(root.path()).unwrap().layers()
}

fn apply(layers: &LayerStore, bytes: Vec<u8>) -> (LayerId, strata::Result<Applied>) {
    let id = layers.create(&CreateOptions::default()).unwrap();
    let result = layers.apply(&id, Cursor::new(bytes), &ApplyOptions::default());
    (id, result)
}

fn meta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

#[test]
fn every_entry_type_and_its_metadata() {
    let root = Root::new();
    let layers = layers(&root);
    let long_dir = "d".repeat(120);
    let long_name = format!("{long_dir}/{}", "f".repeat(150));
    let gnu_name = format!("{long_dir}/{}", "g".repeat(140));
    let cap = vec![0x01, 0x00, 0x00, 0x02, 0x0a, 0x20, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    let tar = Tarball::new()
        .with(E { mode: 0o1777, mtime: 1_000, ..dir("tmp/") })
        .with(E { mode: 0o4755, uid: 1000, gid: 2000, mtime: 1_234_567_890, ..file("tmp/suid", "#!/bin/sh\n") })
        .with(E {
            xattrs: vec![("user.note".into(), b"hello".to_vec()), ("security.capability".into(), cap.clone())],
            ..file("bin/ping", "elf")
        })
        .with(symlink("bin/sh", "/bin/busybox"))
        .with(E { uid: 7, gid: 8, ..symlink("rel", "../x/y") })
        .with(hardlink("bin/ping-again", "bin/ping"))
        .with(E { mode: 0o666, dev: (1, 3), ..E::new(b'3', "dev/null") })
        .with(E { mode: 0o660, dev: (7, 0), ..E::new(b'4', "dev/loop0") })
        .with(E { mode: 0o600, ..E::new(b'6', "run/fifo") })
        .with(dir(&format!("{long_dir}/")))
        .with(file(&long_name, "pax long name"))
        .with(E { gnu_long: true, ..file(&gnu_name, "gnu long name") })
        .with(symlink("longlink", &format!("/{}", "t".repeat(180))))
        .with(E { mode: 0o750, uid: 3, gid: 4, mtime: 1_111, ..dir("./") });
    let (id, applied) = apply(&layers, tar.bytes());
    let applied = applied.unwrap();
    let d = layers.diff_dir(&id);

    assert_eq!(applied.entries, 14);
    assert_eq!(applied.stream.diff_id.digest(), Digest::of(&tar.bytes()));
    let tmp = meta(&d.join("tmp"));
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert_eq!(tmp.mtime(), 1_000, "directory times are set after their contents");
    let suid = meta(&d.join("tmp/suid"));
    assert_eq!(
        (suid.permissions().mode() & 0o7777, suid.uid(), suid.gid(), suid.mtime()),
        (0o4755, 1000, 2000, 1_234_567_890)
    );
    assert_eq!(strata::host::xattr(&d.join("bin/ping"), "user.note").unwrap(), b"hello");
    assert_eq!(
        strata::host::xattr(&d.join("bin/ping"), "security.capability").unwrap(),
        cap,
        "binary xattr with a newline byte"
    );
    assert_eq!(fs::read_link(d.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
    assert_eq!((meta(&d.join("rel")).uid(), meta(&d.join("rel")).gid()), (7, 8), "symlink owner");
    assert_eq!(meta(&d.join("bin/ping")).ino(), meta(&d.join("bin/ping-again")).ino());
    let null = meta(&d.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(strata::host::device_numbers(null.rdev()), (1, 3));
    assert!(meta(&d.join("dev/loop0")).file_type().is_block_device());
    assert!(meta(&d.join("run/fifo")).file_type().is_fifo());
    assert_eq!(fs::read_to_string(d.join(&long_name)).unwrap(), "pax long name");
    assert_eq!(fs::read_to_string(d.join(&gnu_name)).unwrap(), "gnu long name");
    assert_eq!(fs::read_link(d.join("longlink")).unwrap().as_os_str().len(), 181);
    let r = meta(&d);
    assert_eq!(
        (r.permissions().mode() & 0o7777, r.uid(), r.gid()),
        (0o755, 0, 0),
        "./ is skipped, as dockerd skips it"
    );
    // dockerd's size: regular files once per inode, plus symlink targets.
    let expected = 10 + 3 + 13 + 13 + "/bin/busybox".len() + "../x/y".len() + 181;
    assert_eq!(applied.layer_size, expected as u64);
    assert_eq!(layers.size(&id).unwrap(), applied.layer_size);
}

#[test]
fn whiteouts_become_what_overlayfs_reads() {
    let root = Root::new();
    let layers = layers(&root);
    let tar = Tarball::new()
        .with(file(".wh.gone", ""))
        .with(dir("etc/"))
        .with(file("etc/.wh..wh..opq", ""))
        .with(file("etc/kept", "k"))
        .with(file("var/.wh..wh..opq", ""))
        .with(file(".wh..wh.plnk", ""))
        .with(E { uid: 5, gid: 6, ..file("deep/er/.wh.x", "") });
    let (id, applied) = apply(&layers, tar.bytes());
    applied.unwrap();
    let d = layers.diff_dir(&id);
    let gone = meta(&d.join("gone"));
    assert!(gone.file_type().is_char_device());
    assert_eq!(strata::host::device_numbers(gone.rdev()), (0, 0));
    assert_eq!(strata::host::xattr(&d.join("etc"), "trusted.overlay.opaque").unwrap(), b"y");
    assert_eq!(strata::host::xattr(&d.join("var"), "trusted.overlay.opaque").unwrap(), b"y", "its directory is made");
    assert!(d.join("etc/kept").exists());
    assert!(!d.join(".wh..wh.plnk").exists() && !d.join(".wh.plnk").exists(), "AUFS metadata is skipped");
    assert!(!d.join(".wh.gone").exists() && !d.join("etc/.wh..wh..opq").exists());
    assert_eq!((meta(&d.join("deep/er/x")).uid(), meta(&d.join("deep/er/x")).gid()), (5, 6));
    assert_eq!(meta(&d.join("deep")).permissions().mode() & 0o777, 0o755);

    // And the union honours them.
    let base = layers.create(&CreateOptions::default()).unwrap();
    let lower = Tarball::new().with(file("gone", "g")).with(file("etc/old", "o")).with(file("deep/er/x", "x"));
    layers.apply(&base, Cursor::new(lower.bytes()), &ApplyOptions::default()).unwrap();
    let top = layers.create(&CreateOptions { parent: Some(base), ..Default::default() }).unwrap();
    layers.apply(&top, Cursor::new(tar.bytes()), &ApplyOptions::default()).unwrap();
    let leaf = layers.create(&CreateOptions { parent: Some(top), ..Default::default() }).unwrap();
    let merged = layers.mount(&leaf).unwrap();
    assert!(!merged.join("gone").exists() && !merged.join("etc/old").exists() && !merged.join("deep/er/x").exists());
    assert!(merged.join("etc/kept").exists());
    layers.unmount(&leaf).unwrap();
}

#[test]
fn later_entries_replace_earlier_ones_and_hard_links_keep_their_inode() {
    let root = Root::new();
    let layers = layers(&root);
    let tar = Tarball::new()
        .with(file("a", "first a"))
        .with(hardlink("b", "a"))
        .with(file(".wh.a", ""))
        .with(file("c", "old c"))
        .with(hardlink("d", "c"))
        .with(file("c", "new c"))
        .with(dir("x/"))
        .with(file("x/inside", "1"))
        .with(file("x", "x is a file now"))
        .with(symlink("y", "target"))
        .with(dir("y/"))
        .with(file(".wh.z", ""))
        .with(file("z", "z is back"));
    let (id, applied) = apply(&layers, tar.bytes());
    applied.unwrap();
    let d = layers.diff_dir(&id);
    assert!(meta(&d.join("a")).file_type().is_char_device(), "a whiteout replaces a");
    assert_eq!(fs::read_to_string(d.join("b")).unwrap(), "first a", "the hard link keeps the old inode");
    assert_eq!(fs::read_to_string(d.join("c")).unwrap(), "new c");
    assert_eq!(fs::read_to_string(d.join("d")).unwrap(), "old c");
    assert_eq!(fs::read_to_string(d.join("x")).unwrap(), "x is a file now");
    assert!(meta(&d.join("y")).is_dir());
    assert_eq!(fs::read_to_string(d.join("z")).unwrap(), "z is back");
}

/// Small files are written by worker threads, one directory each, while the stream is read
/// on; a worker still busy with a large file must not let a later entry overtake it. Each
/// case puts 1 MiB before the entry a later one depends on, in many directories.
#[test]
fn files_written_on_workers_keep_the_streams_order() {
    let root = Root::new();
    let layers = layers(&root);
    let big = "b".repeat(1 << 20);
    // A directory whose files are still being written, replaced by a file.
    let mut tar = Tarball::new();
    for i in 0..16 {
        tar.add(&dir(&format!("d{i}/")));
        tar.add(&dir(&format!("d{i}/x/")));
        tar.add(&file(&format!("d{i}/x/big"), &big));
        tar.add(&file(&format!("d{i}/x/inside"), "1"));
        tar.add(&file(&format!("d{i}/x"), "x is a file now"));
    }
    let (id, applied) = apply(&layers, tar.bytes());
    applied.unwrap();
    for i in 0..16 {
        let x = layers.diff_dir(&id).join(format!("d{i}/x"));
        assert_eq!(fs::read_to_string(&x).unwrap(), "x is a file now", "{}", x.display());
    }
    // A name under a file still being written: refused, as when written in order.
    for i in 0..8 {
        let tar = Tarball::new()
            .with(dir("d/"))
            .with(file("d/big", &big))
            .with(file("d/a", "a file"))
            .with(file("d/a/b", "under a file"));
        let (_, applied) = apply(&layers, tar.bytes());
        let err = applied.expect_err(&format!("run {i}: d/a/b under the file d/a"));
        assert!(err.to_string().contains("d/a"), "{err}");
    }
}

/// dockerd's rules for malformed archives (its load refuses both, checked by hand against
/// dockerd 20.10): a path twice is refused where the exact tarball must be rebuilt (images),
/// while a plain `layer apply` keeps tar's "the last one wins" (see above); a zero block
/// followed by more entries is refused everywhere, since what follows would be dropped.
#[test]
fn duplicate_paths_and_lone_zero_blocks_follow_dockerd() {
    let root = Root::new();
    let layers = layers(&root);
    let dup = Tarball::new().with(dir("etc/")).with(file("etc/a", "1")).with(file("etc//a", "2")).bytes();
    let id = layers.create(&CreateOptions::default()).unwrap();
    let with_split = ApplyOptions { tar_split: true, ..Default::default() };
    let err = layers.apply(&id, Cursor::new(dup.clone()), &with_split).unwrap_err();
    assert!(err.to_string().contains("etc//a appears twice"), "{err}");
    assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);
    let (id, applied) = apply(&layers, dup);
    applied.unwrap();
    assert_eq!(fs::read_to_string(layers.diff_dir(&id).join("etc/a")).unwrap(), "2");

    // One zero block between entries: refused. One zero block at the very end: an end.
    let one = Tarball::new().with(file("a", "1")).bytes();
    let header_and_content = &one[..1024];
    let mut lone = header_and_content.to_vec();
    lone.extend_from_slice(&[0u8; 512]);
    lone.extend_from_slice(&Tarball::new().with(file("b", "2")).bytes());
    let (id, applied) = apply(&layers, lone);
    let err = applied.unwrap_err();
    assert!(err.to_string().contains("a zero block is followed by more entries"), "{err}");
    assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);
    let mut short_end = header_and_content.to_vec();
    short_end.extend_from_slice(&[0u8; 512]);
    let (id, applied) = apply(&layers, short_end);
    applied.unwrap();
    assert_eq!(fs::read_to_string(layers.diff_dir(&id).join("a")).unwrap(), "1");
}

#[test]
fn more_xattrs_than_the_filesystem_holds_say_so() {
    let root = Root::new();
    let layers = layers(&root);
    let mut many = file("many", "x");
    many.xattrs = (0..2000).map(|i| (format!("user.attribute-number-{i}"), vec![b'v'; 16])).collect();
    // A hard link after it waits for the writer thread that failed: the error still names
    // the file that failed, not the entry being read.
    let tar = Tarball::new().with(many).with(hardlink("later-link", "many")).with(file("later-file", "y"));
    let (id, applied) = apply(&layers, tar.bytes());
    let err = applied.unwrap_err().to_string();
    assert!(err.contains("no room for this file's extended attributes"), "{err}");
    assert!(err.contains("many") && !err.contains("later-"), "{err}");
    assert!(!err.contains("No space left on device\n"), "{err}");
    assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);
}

/// Gives `data`, then fails as a dropped connection does.
struct Dropped {
    data: Cursor<Vec<u8>>,
}

impl std::io::Read for Dropped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_dropped_source_is_an_interrupted_read_not_a_bad_archive() {
    use strata::ErrorKind;
    let root = Root::new();
    let layers = layers(&root);
    let big: String = (0..200_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let gz = gzip(&Tarball::new().with(file("big", &big)).with(file("small", "s")).bytes());
    let half = gz[..gz.len() / 2].to_vec();

    let id = layers.create(&CreateOptions::default()).unwrap();
    let err = layers.apply(&id, Dropped { data: Cursor::new(half.clone()) }, &ApplyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
    assert!(!err.to_string().contains("bad layer archive"), "{err}");
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
    assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);

    // The same bytes ending cleanly: a truncated archive, which is the archive's fault.
    let err = layers.apply(&id, Cursor::new(half), &ApplyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let mut flipped = gz.clone();
    flipped[gz.len() / 3] ^= 0xff;
    let err = layers.apply(&id, Cursor::new(flipped), &ApplyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let missing = LayerId::random();
    let err = layers.apply(&missing, Cursor::new(gz.clone()), &ApplyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn a_10000_entry_tree_applies() {
    let root = Root::new();
    let layers = layers(&root);
    let mut tar = Tarball::new();
    for d in 0..100 {
        tar.add(&dir(&format!("d{d}/")));
        for f in 0..99 {
            tar.add(&file(&format!("d{d}/f{f}"), &format!("{d}/{f}")));
        }
    }
    let (id, applied) = apply(&layers, gzip(&tar.bytes()));
    assert_eq!(applied.unwrap().entries, 10_000);
    let d = layers.diff_dir(&id);
    assert_eq!(fs::read_to_string(d.join("d57/f98")).unwrap(), "57/98");
    assert_eq!(fs::read_dir(&d).unwrap().count(), 100);
}

/// A directory outside the store that every breakout aims at.
struct Target {
    dir: tempfile::TempDir,
}

impl Target {
    fn new() -> Target {
        let dir = tempfile::Builder::new().prefix("strata-victim-").tempdir().unwrap();
        fs::write(dir.path().join("secret"), "do not touch").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        Target { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn s(&self) -> String {
        self.path().display().to_string()
    }
}

#[test]
fn breakouts_never_write_outside_the_layer() {
    let root = Root::new();
    let layers = layers(&root);
    let t = Target::new();
    let v = t.s();
    let rel_up = "../".repeat(12);
    let cases: Vec<(&str, Tarball, bool)> = vec![
        ("dot-dot name", Tarball::new().with(file(&format!("../../../../{v}/pwned"), "x")), false),
        ("dot-dot inside then out", Tarball::new().with(file("a/../../pwned", "x")), false),
        ("absolute name", Tarball::new().with(file(&format!("{v}/pwned"), "x")), true),
        (
            "symlink absolute, write through",
            Tarball::new().with(symlink("link", &v)).with(file("link/pwned", "x")),
            false,
        ),
        (
            "symlink relative up and out",
            Tarball::new().with(symlink("link", &format!("{rel_up}{v}"))).with(file("link/pwned", "x")),
            false,
        ),
        (
            "symlink to file, overwrite",
            Tarball::new().with(symlink("s", &format!("{v}/secret"))).with(file("s", "overwritten")),
            true,
        ),
        (
            "symlink chain",
            Tarball::new().with(symlink("a", "b")).with(symlink("b", &v)).with(file("a/pwned", "x")),
            false,
        ),
        ("hard link absolute", Tarball::new().with(hardlink("hl", &format!("{v}/secret"))), false),
        ("hard link relative out", Tarball::new().with(hardlink("hl", &format!("{rel_up}{v}/secret"))), false),
        ("hard link through symlink", Tarball::new().with(symlink("s", &v)).with(hardlink("hl", "s/secret")), false),
        (
            "hard link to an outside symlink, then chmod",
            Tarball::new()
                .with(symlink("s", &format!("{v}/secret")))
                .with(hardlink("hl", "s"))
                .with(E { mode: 0o777, ..file("hl", "") }),
            true,
        ),
        (
            "directory replaced by a symlink mid-archive",
            Tarball::new().with(dir("d/")).with(symlink("d", &v)).with(file("d/pwned", "x")),
            false,
        ),
        ("symlink named ..", Tarball::new().with(symlink("..", &v)), false),
        (
            "whiteout through a symlinked parent",
            Tarball::new().with(symlink("s", &v)).with(file("s/.wh.secret", "")),
            false,
        ),
        ("whiteout of ..", Tarball::new().with(file("sub/.wh..", "")), false),
        ("whiteout of .", Tarball::new().with(file(".wh.", "")), false),
        ("whiteout ...", Tarball::new().with(file(".wh...", "")), false),
        ("opaque through a symlink", Tarball::new().with(symlink("s", &v)).with(file("s/.wh..wh..opq", "")), false),
    ];
    for (name, tar, may_succeed) in cases {
        let before = snapshot(t.path());
        let (id, result) = apply(&layers, tar.bytes());
        assert_eq!(snapshot(t.path()), before, "{name}: the outside changed");
        assert_eq!(fs::read_to_string(t.path().join("secret")).unwrap(), "do not touch", "{name}");
        assert_eq!(meta(&t.path().join("secret")).nlink(), 1, "{name}: linked to from inside");
        match result {
            Ok(_) => assert!(may_succeed, "{name}: applied, but should have been refused"),
            Err(e) => {
                assert!(matches!(e, Error::Archive { .. }), "{name}: {e}");
                assert_eq!(
                    fs::read_dir(layers.diff_dir(&id)).unwrap().count(),
                    0,
                    "{name}: a refused layer stays empty"
                );
            }
        }
    }
    // Refusals leave nothing behind either.
    let report = strata::check::check(layers.store(), false).unwrap();
    assert!(report.is_clean() && report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn digests_and_compression() {
    let root = Root::new();
    let layers = layers(&root);
    let tar = Tarball::new().with(dir("etc/")).with(file("etc/os-release", "ID=strata\n")).bytes();
    let diff_id = Digest::of(&tar);
    let gz = gzip(&tar);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    // xz and bzip2 layers load in dockerd: strata reads them too.
    let mut xz = Vec::new();
    std::io::Read::read_to_end(&mut liblzma::read::XzEncoder::new(&tar[..], 6), &mut xz).unwrap();
    let mut bz = Vec::new();
    std::io::Read::read_to_end(&mut bzip2::read::BzEncoder::new(&tar[..], bzip2::Compression::default()), &mut bz)
        .unwrap();
    for (name, bytes) in
        [("tar", tar.clone()), ("gzip", gz.clone()), ("zstd", zst.clone()), ("xz", xz.clone()), ("bzip2", bz.clone())]
    {
        let id = layers.create(&CreateOptions::default()).unwrap();
        let opts = ApplyOptions {
            diff_id: Some(strata::DiffId::of_tar(diff_id)),
            digest: Some(Digest::of(&bytes)),
            ..Default::default()
        };
        let applied = layers.apply(&id, Cursor::new(bytes.clone()), &opts).unwrap();
        assert_eq!(applied.stream.diff_id.digest(), diff_id, "{name}");
        assert_eq!(applied.stream.compressed, Digest::of(&bytes), "{name}");
        assert_eq!(applied.stream.compressed_size, bytes.len() as u64, "{name}");
        assert_eq!(applied.stream.size, tar.len() as u64, "{name}");
        assert_eq!(
            serde_json::to_value(applied.stream.compression).unwrap(),
            if name == "tar" { "none" } else { name }
        );
        assert_eq!(fs::read_to_string(layers.diff_dir(&id).join("etc/os-release")).unwrap(), "ID=strata\n", "{name}");
    }
    // Trailing bytes after the archive count for the diffID, as in dockerd.
    let mut padded = tar.clone();
    padded.extend_from_slice(&[0u8; 4096]);
    let (_, applied) = apply(&layers, padded.clone());
    assert_eq!(applied.unwrap().stream.diff_id.digest(), Digest::of(&padded));

    // A wrong digest is an error, and the layer stays empty.
    let wrong: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
    for opts in [
        ApplyOptions { diff_id: Some(strata::DiffId::of_tar(wrong)), ..Default::default() },
        ApplyOptions { digest: Some(wrong), ..Default::default() },
    ] {
        let id = layers.create(&CreateOptions::default()).unwrap();
        let err = layers.apply(&id, Cursor::new(gz.clone()), &opts).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);
    }
}

#[test]
fn truncated_and_corrupt_streams_leave_the_layer_empty() {
    let root = Root::new();
    let layers = layers(&root);
    let mut big = Tarball::new();
    big.add(&file("a", &"x".repeat(100_000)));
    big.add(&file("b", "b"));
    let full = big.bytes();
    let gz = gzip(&full);
    let mut corrupt_header = full.clone();
    corrupt_header[520..530].copy_from_slice(b"garbage!!!");
    let mut bad_checksum = full.clone();
    bad_checksum[0] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut inside a file", full[..50_000].to_vec()),
        ("cut inside a header", big.truncated(300)),
        ("gzip cut short", gz[..gz.len() / 2].to_vec()),
        ("gzip corrupted", {
            let mut g = gz.clone();
            let mid = g.len() / 2;
            g[mid..mid + 64].fill(0xaa);
            g
        }),
        ("bad header checksum", bad_checksum),
        ("zstd magic then garbage", [&[0x28, 0xb5, 0x2f, 0xfd][..], &[0xff; 64][..]].concat()),
    ];
    let _ = corrupt_header;
    for (name, bytes) in cases {
        let (id, result) = apply(&layers, bytes);
        let err = result.expect_err(name);
        assert!(matches!(err, Error::Archive { .. }), "{name}: {err}");
        assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0, "{name}");
    }
    let report = strata::check::check(layers.store(), false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn a_full_disk_is_an_error_and_the_layer_stays_empty() {
    common::require_root();
    let mnt = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(ok.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.path().to_owned());
    let layers = Store::open(mnt.path().join("store")).unwrap().layers();
    let tar = Tarball::new().with(file("big", &"z".repeat(8 << 20))).bytes();
    let (id, result) = apply(&layers, tar);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("No space left") || err.to_string().contains("space"), "{err}");
    assert_eq!(fs::read_dir(layers.diff_dir(&id)).unwrap().count(), 0);
    let report = strata::check::check(layers.store(), false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn apply_goes_only_into_an_empty_unmounted_layer_without_children() {
    let root = Root::new();
    let layers = layers(&root);
    let tar = Tarball::new().with(file("f", "1")).bytes();
    let (base, applied) = apply(&layers, tar.clone());
    applied.unwrap();
    let again = layers.apply(&base, Cursor::new(tar.clone()), &ApplyOptions::default()).unwrap_err();
    assert!(again.to_string().contains("is not empty"), "{again}");
    let child = layers.create(&CreateOptions { parent: Some(base.clone()), ..Default::default() }).unwrap();
    layers.mount(&child).unwrap();
    let mounted = layers.apply(&child, Cursor::new(tar.clone()), &ApplyOptions::default()).unwrap_err();
    assert!(mounted.to_string().contains("is mounted"), "{mounted}");
    layers.unmount(&child).unwrap();
    let empty_base = layers.create(&CreateOptions::default()).unwrap();
    layers.create(&CreateOptions { parent: Some(empty_base.clone()), ..Default::default() }).unwrap();
    let committed = layers.apply(&empty_base, Cursor::new(tar), &ApplyOptions::default()).unwrap_err();
    assert!(committed.to_string().contains("child layers"), "{committed}");
}

#[test]
fn the_cli_applies_from_a_file_and_from_stdin() {
    let root = Root::new();
    let tar = Tarball::new().with(file("hello", "world")).bytes();
    let path = root.path().join("layer.tar.gz");
    fs::write(&path, gzip(&tar)).unwrap();
    let id = root.ok(&["layer", "create"]);
    let out = root.ok(&["layer", "apply", &id, path.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["diff_id"], Digest::of(&tar).to_string());
    assert_eq!(json["compression"], "gzip");

    let id2 = root.ok(&["layer", "create"]);
    let mut child = common::strata_cmd(root.path(), &["layer", "apply", &id2, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(fs::read_to_string(root.home().join(&id2).join("diff/hello")).unwrap(), "world");

    let id3 = root.ok(&["layer", "create"]);
    let err = root.fails(&[
        "layer",
        "apply",
        &id3,
        path.to_str().unwrap(),
        "--diff-id",
        &format!("sha256:{}", "1".repeat(64)),
    ]);
    assert!(err.contains("diffID mismatch"), "{err}");
}

#[test]
fn tar_split_gives_back_the_exact_bytes() {
    let root = Root::new();
    let layers = layers(&root);
    let long = format!("{}/{}", "l".repeat(120), "n".repeat(120));
    let mut tar = Tarball::new()
        .with(dir("etc/"))
        .with(file("etc/motd", "hello\n"))
        .with(E { xattrs: vec![("user.k".into(), b"v\n".to_vec())], ..file("bin/x", &"x".repeat(1000)) })
        .with(hardlink("bin/y", "bin/x"))
        .with(symlink("lib", "usr/lib"))
        .with(file(&long, "long"))
        .with(E { gnu_long: true, ..file(&format!("g/{long}"), "gnu") })
        .with(file(".wh.gone", ""))
        .with(file("empty", ""))
        .bytes();
    tar.extend_from_slice(&[0u8; 8192]);
    for input in [tar.clone(), gzip(&tar)] {
        let id = layers.create(&CreateOptions::default()).unwrap();
        let opts = ApplyOptions { tar_split: true, ..Default::default() };
        let applied = layers.apply(&id, Cursor::new(input), &opts).unwrap();
        let split = applied.tar_split.expect("recorded");
        let mut out = Vec::new();
        layers.reassemble(&id, &split, &mut out).unwrap();
        assert_eq!(out.len(), tar.len());
        assert!(out == tar, "the reassembled tar differs");
        assert_eq!(Digest::of(&out), applied.stream.diff_id.digest());
        // A file changed behind the layer's back is caught.
        fs::write(layers.diff_dir(&id).join("etc/motd"), "HELLO\n").unwrap();
        let err = layers.reassemble(&id, &split, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
    }
}
