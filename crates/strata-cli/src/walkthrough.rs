//! `strata walkthrough`: the classic overlay2 experiment, done with real layers in a
//! fresh store, then their container walkthrough (run a command in an image, commit it, look
//! at the new layer), printing each step and what it left on disk.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use strata::Store;
use strata::layer::{CreateOptions, LayerStore};

#[derive(Debug, Args)]
pub(crate) struct WalkthroughArgs {
    /// Use this (new or empty) directory as the store root instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the store and its mount in place afterwards, to look around.
    #[arg(long)]
    keep: bool,
}

pub(crate) fn run(args: WalkthroughArgs) -> Result<ExitCode> {
    if !strata::host::is_root() {
        bail!("the walkthrough mounts OverlayFS and needs root: run it with sudo");
    }
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("strata-walkthrough-{}", std::process::id())),
    };
    if root.exists() && fs::read_dir(&root)?.next().is_some() {
        bail!("{} is not empty: give --dir a new or empty directory", root.display());
    }
    let store = Store::open(&root)?;
    let layers = store.layers();
    let result = walk(&store, &layers).and_then(|()| walk_container(&store));
    if !args.keep {
        cleanup(&layers);
        let _ = fs::remove_dir_all(store.root());
    } else {
        println!(
            "\nThe store is kept at {} (remove it with `strata --root {0} layer umount … && rm -r {0}`).",
            store.root().display()
        );
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn walk(store: &Store, layers: &LayerStore) -> Result<()> {
    let root = store.root().display().to_string();
    step(&format!(
        "A fresh store at {root}. Three layers, as in the classic overlay2 experiment: lower2 holds a; lower1 holds a and b; upper holds c."
    ));
    let lower2 = layers.create(&CreateOptions::default())?;
    write(layers, &lower2, "a", "in lower2\n")?;
    cmd(&format!("strata --root {root} layer create                     # lower2 → {}", short(&lower2)));
    let lower1 = layers.create(&CreateOptions { parent: Some(lower2.clone()), ..Default::default() })?;
    write(layers, &lower1, "a", "in lower1\n")?;
    write(layers, &lower1, "b", "in lower1\n")?;
    fs::create_dir_all(layers.diff_dir(&lower1).join("dir"))?;
    write(layers, &lower1, "dir/old", "hidden once dir is made again\n")?;
    cmd(&format!("strata --root {root} layer create --parent {}   # lower1 → {}", short(&lower2), short(&lower1)));
    let upper = layers.create(&CreateOptions { parent: Some(lower1.clone()), ..Default::default() })?;
    write(layers, &upper, "c", "in upper\n")?;
    cmd(&format!("strata --root {root} layer create --parent {}   # upper  → {}", short(&lower1), short(&upper)));

    step("The layout on disk, file for file as dockerd writes it:");
    show_layout(store)?;

    step("Mount the upper layer: its diff/ is the upperdir, its ancestors (through l/) the lowerdirs.");
    let merged = layers.mount(&upper)?;
    cmd(&format!("strata --root {root} layer mount {}", short(&upper)));
    println!("{}", merged.display());
    if let Some(line) =
        fs::read_to_string("/proc/self/mountinfo")?.lines().find(|l| l.contains(&merged.display().to_string()))
    {
        println!("  mountinfo: {}", line.split(" - ").nth(1).unwrap_or(line));
    }
    step("The merged view: a comes from lower1 (it hides lower2's), b from lower1, c from upper.");
    for name in ["a", "b", "c"] {
        println!("  {name}: {}", fs::read_to_string(merged.join(name))?.trim_end());
    }

    step("Writes land in the upper layer; the layers below never change (copy-on-write).");
    fs::write(merged.join("d"), "")?;
    println!("  touch merged/d           → upper/diff/d exists: {}", layers.diff_dir(&upper).join("d").exists());
    fs::write(merged.join("a"), "changed in the container\n")?;
    println!(
        "  echo … > merged/a        → copied up: upper/diff/a = {:?}, lower1/diff/a still {:?}",
        fs::read_to_string(layers.diff_dir(&upper).join("a"))?.trim_end(),
        fs::read_to_string(layers.diff_dir(&lower1).join("a"))?.trim_end()
    );
    fs::remove_file(merged.join("b"))?;
    let wh = fs::symlink_metadata(layers.diff_dir(&upper).join("b"))?;
    let (major, minor) = strata::host::device_numbers(wh.rdev());
    println!(
        "  rm merged/b              → upper/diff/b is a whiteout: character device {major}/{minor} (is char device: {})",
        wh.file_type().is_char_device()
    );
    fs::remove_dir_all(merged.join("dir"))?;
    fs::create_dir(merged.join("dir"))?;
    let opaque = strata::host::xattr(&layers.diff_dir(&upper).join("dir"), "trusted.overlay.opaque")
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    println!(
        "  rm -r merged/dir; mkdir  → upper/diff/dir is opaque: trusted.overlay.opaque={opaque:?}; merged/dir is empty: {}",
        fs::read_dir(merged.join("dir"))?.next().is_none()
    );

    step("What `docker inspect` would show for the upper layer:");
    cmd(&format!("strata --root {root} layer inspect {}", short(&upper)));
    println!("{}", serde_json::to_string_pretty(&layers.graph_driver(&upper)?)?);

    step("Unmount; the layer keeps its changes in diff/.");
    layers.unmount(&upper)?;
    cmd(&format!("strata --root {root} layer umount {}", short(&upper)));
    list_tree(&layers.diff_dir(&upper), "  upper/diff/")?;

    step("What changed, as `docker diff` would say it:");
    cmd(&format!("strata --root {root} layer changes {}", short(&upper)));
    for change in layers.changes(&upper)? {
        println!("{change}");
    }

    step("The layer as an image layer tarball (whiteouts become .wh. entries), and back into a fresh layer.");
    let mut tar = Vec::new();
    let digests = layers.diff(&upper, &mut tar, strata::archive::Compression::Gzip)?;
    cmd(&format!("strata --root {root} layer diff {} --compress gzip -o upper.tar.gz", short(&upper)));
    println!("  diffID {}  ({} bytes of tar, {} gzipped)", digests.diff_id, digests.size, digests.compressed_size);
    let copy = layers.create(&CreateOptions::default())?;
    let applied = layers.apply(&copy, &tar[..], &Default::default())?;
    cmd(&format!("strata --root {root} layer apply {} upper.tar.gz   # into a fresh layer", short(&copy)));
    println!("  diffID {}: the same layer again, {} entries", applied.stream.diff_id, applied.entries);
    list_tree(&layers.diff_dir(&copy), "  copy/diff/")?;
    Ok(())
}

/// The container walkthrough: a base image made of host files, a container that writes
/// one file, the commit of it as a 12-byte layer.
fn walk_container(store: &Store) -> Result<()> {
    let root = store.root().display().to_string();
    step("Part two: containers. A base image from files of this host: a shell and the libraries it links against.");
    let base = tempfile_dir(store, "base-rootfs")?;
    host_shell_rootfs(&base)?;
    let images = store.images();
    let options = strata::image::ImportOptions {
        message: Some("a shell from the host".into()),
        changes: vec![r#"CMD ["/bin/sh"]"#.into()],
    };
    let image = images.import(&base, Some("base:1".parse()?), &options)?;
    fs::remove_dir_all(&base)?;
    cmd(&format!("strata --root {root} import ROOTFS base:1 -c 'CMD [\"/bin/sh\"]'   # {}", image));

    step("Run a command in a container of it (runc): an -init layer and a writable layer go on the image's layer.");
    let containers = store.containers();
    let options = strata::container::CreateOptions {
        name: Some("hello".into()),
        cmd: vec!["sh".into(), "-c".into(), r#"echo "Hello World" > /tmp/newfile"#.into()],
        ..Default::default()
    };
    let container =
        containers.create("base:1", &options).context("the container part runs runc: apt-get install runc")?;
    let status = containers.start("hello")?;
    cmd(&format!(
        "strata --root {root} run --name hello base:1 sh -c 'echo \"Hello World\" > /tmp/newfile'   # exit status {status}"
    ));

    step("What `docker inspect hello` shows: the -init layer and the image's layer are the lowerdirs.");
    cmd(&format!("strata --root {root} inspect hello"));
    let inspect = containers.inspect("hello")?;
    println!("{}", serde_json::to_string_pretty(&inspect.graph_driver)?);
    let init = container.layers.init_id.clone().context("an init layer")?;
    list_recursive(&store.layers().diff_dir(&init), "  -init/diff/")?;

    step("What the container changed:");
    cmd(&format!("strata --root {root} diff hello"));
    for change in containers.diff("hello")? {
        println!("{change}");
    }

    step("Commit it: its changes become a new image layer on top of the base image's.");
    let committed = containers.commit(
        "hello",
        &strata::container::CommitOptions { reference: Some("hello:1".parse()?), ..Default::default() },
    )?;
    cmd(&format!("strata --root {root} commit hello hello:1   # {committed}"));
    cmd(&format!("strata --root {root} history hello:1"));
    print_history(&images, "hello:1")?;

    step("The new layer's diff/ holds only what the container wrote:");
    let top = images.inspect("hello:1")?.graph_driver.context("the image has layers")?;
    println!("  {}", top.data.upper_dir.display());
    list_recursive(&top.data.upper_dir, "  diff/")?;
    println!("  tmp/newfile: {:?}", fs::read_to_string(top.data.upper_dir.join("tmp/newfile"))?);
    containers.remove("hello", false)?;
    cmd(&format!("strata --root {root} rm hello   # its two layers go; the image's stay"));

    step("The documents' way: `docker build -t test-ubuntu .` from a two-line Dockerfile (here on base:1).");
    let context = tempfile_dir(store, "build-context")?;
    let dockerfile = "FROM base:1\nRUN echo \"Hello World\" > /tmp/newfile\n";
    fs::write(context.join("Dockerfile"), dockerfile)?;
    for line in dockerfile.lines() {
        println!("  {line}");
    }
    cmd(&format!("strata --root {root} build -t test-ubuntu {}", context.display()));
    let options = strata::build::BuildOptions {
        dockerfile: dockerfile.into(),
        context: strata::build::context::Context::open(&context).map_err(anyhow::Error::msg)?,
        tags: vec!["test-ubuntu".parse()?],
        ..Default::default()
    };
    strata::build::build(store, &options, &mut std::io::stdout())?;
    fs::remove_dir_all(&context)?;
    cmd(&format!("strata --root {root} history test-ubuntu   # the RUN step's layer: 12 bytes"));
    print_history(&images, "test-ubuntu")?;
    step("Its new layer's diff/ holds only tmp/newfile (and the tmp/ directory it is in):");
    let top = images.inspect("test-ubuntu")?.graph_driver.context("the image has layers")?;
    println!("  {}", top.data.upper_dir.display());
    list_recursive(&top.data.upper_dir, "  diff/")?;
    Ok(())
}

/// `history NAME` as the CLI prints it.
fn print_history(images: &strata::image::ImageStore, name: &str) -> Result<()> {
    let rows: Vec<Vec<String>> = images
        .history(name)?
        .iter()
        .map(|r| {
            let id =
                if r.id == "<missing>" { r.id.clone() } else { r.id.trim_start_matches("sha256:")[..12].to_owned() };
            vec![id, crate::human::ellipsis(&r.created_by, 45), crate::human::size(r.size), r.comment.clone()]
        })
        .collect();
    print!("{}", crate::human::table(&["IMAGE", "CREATED BY", "SIZE", "COMMENT"], &rows));
    Ok(())
}

/// A fresh directory inside the store's root (removed with it).
fn tempfile_dir(store: &Store, name: &str) -> Result<PathBuf> {
    let dir = store.root().join(name);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `/bin/sh` and the libraries `ldd` says it needs, plus `/tmp` and `/etc`, under `dir`.
fn host_shell_rootfs(dir: &Path) -> Result<()> {
    let shell = Path::new("/bin/sh");
    let ldd = std::process::Command::new("ldd").arg(shell).output().context("run ldd (libc-bin)")?;
    let mut files = vec![shell.to_owned()];
    files.extend(
        String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')).map(PathBuf::from),
    );
    for file in files {
        let target = dir.join(file.strip_prefix("/")?);
        fs::create_dir_all(target.parent().context("a parent")?)?;
        fs::copy(&file, &target).with_context(|| format!("copy {}", file.display()))?;
    }
    for sub in ["tmp", "etc"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

fn list_recursive(dir: &Path, prefix: &str) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = fs::symlink_metadata(e.path())?;
        let name = e.file_name().to_string_lossy().into_owned();
        if meta.is_dir() {
            println!("{prefix}{name}/");
            list_recursive(&e.path(), &format!("{prefix}{name}/"))?;
        } else if meta.file_type().is_symlink() {
            println!("{prefix}{name} -> {}", fs::read_link(e.path())?.display());
        } else {
            println!("{prefix}{name} ({} bytes)", meta.len());
        }
    }
    Ok(())
}

fn cleanup(layers: &LayerStore) {
    if let Ok(all) = layers.list() {
        for layer in all.iter().filter(|l| l.mounts > 0) {
            let _ = layers.unmount(&layer.id);
        }
    }
}

fn show_layout(store: &Store) -> Result<()> {
    let home = store.home();
    println!("  {}/", home.display());
    let mut entries: Vec<_> = fs::read_dir(home)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        println!("  ├── {name}/ {}", mode(&path)?);
        let mut inner: Vec<_> = fs::read_dir(&path)?.collect::<Result<_, _>>()?;
        inner.sort_by_key(|e| e.file_name());
        for e in inner {
            let p = e.path();
            let n = e.file_name().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p)?;
            let what = if meta.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p)?.display())
            } else if meta.is_dir() {
                format!("/ {}", mode(&p)?)
            } else {
                format!("{} {:?}", mode(&p)?, fs::read_to_string(&p).unwrap_or_default())
            };
            println!("  │   ├── {n}{}{what}", if meta.is_dir() { "" } else { " " });
        }
    }
    Ok(())
}

fn list_tree(dir: &Path, prefix: &str) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = fs::symlink_metadata(e.path())?;
        let kind = if meta.file_type().is_char_device() {
            " (whiteout)"
        } else if meta.is_dir() {
            "/"
        } else {
            ""
        };
        println!("{prefix}{}{kind}", e.file_name().to_string_lossy());
    }
    Ok(())
}

fn write(layers: &LayerStore, id: &strata::LayerId, name: &str, content: &str) -> Result<()> {
    let path = layers.diff_dir(id).join(name);
    fs::write(&path, content).with_context(|| format!("write {}", path.display()))
}

fn mode(path: &Path) -> Result<String> {
    Ok(format!("{:04o}", fs::symlink_metadata(path)?.permissions().mode() & 0o7777))
}

fn short(id: &strata::LayerId) -> String {
    id.as_str()[..12].to_owned()
}

fn step(text: &str) {
    println!("\n== {text}");
}

fn cmd(text: &str) {
    println!("$ {text}");
}
