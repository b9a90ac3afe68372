//! `strata walkthrough`, the README's main job: the classic overlay2 experiment and the
//! container walkthrough, run for real, with what it prints checked against what the classic
//! walkthrough shows.

mod common;

use common::{overlay_mounts_under, require_root, strata_cmd};

#[test]
fn the_walkthrough_runs_the_classic_steps_and_leaves_nothing_mounted() {
    require_root();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let out = strata_cmd(parent.path(), &["walkthrough", "--dir", dir.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "walkthrough failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    // Part one: the manual OverlayFS experiment.
    assert!(stdout.contains("a: in lower1") && stdout.contains("c: in upper"), "{stdout}");
    assert!(stdout.contains("character device 0/0"), "{stdout}");
    // Part two: the container, its -init layer among the lowerdirs, and a 12-byte commit.
    let lower = stdout.lines().rfind(|l| l.contains("\"LowerDir\"")).expect("inspect shows LowerDir");
    assert!(lower.contains("-init/diff:"), "the -init layer is the first lowerdir: {lower}");
    assert!(stdout.contains("-init/diff/.dockerenv") && stdout.contains("-init/diff/etc/mtab -> /proc/mounts"));
    assert!(stdout.contains("C /tmp\nA /tmp/newfile\n"), "{stdout}");
    let top = stdout.lines().skip_while(|l| !l.starts_with("IMAGE ")).nth(1).expect("a history row");
    assert!(top.contains(r#"sh -c echo "Hello World" > /tmp/newfile"#) && top.contains(" 12B "), "{top}");
    assert!(
        stdout.contains("  diff/tmp/\n  diff/tmp/newfile (12 bytes)\n  tmp/newfile: \"Hello World\\n\""),
        "{stdout}"
    );

    // The documents' docker build, with strata build: the same 12-byte layer.
    let built = stdout.split("The documents' way").nth(1).expect("the build part");
    assert!(
        built.contains("Step 2/2 : RUN echo \"Hello World\" > /tmp/newfile")
            && built.contains("Successfully tagged test-ubuntu:latest"),
        "{built}"
    );
    let row = built.lines().skip_while(|l| !l.starts_with("IMAGE ")).nth(1).expect("a history row");
    assert!(row.contains(r#"/bin/sh -c echo "Hello World" > /tmp/newfile"#) && row.contains(" 12B "), "{row}");
    assert!(built.contains("  diff/tmp/\n  diff/tmp/newfile (12 bytes)\n"), "{built}");

    assert!(!dir.exists(), "the store is removed without --keep");
    assert!(overlay_mounts_under(parent.path()).is_empty());
}
