//! `strata cp`: files between a container and this machine, as `docker cp`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use strata::Store;
use strata::archive::tree::{pack_path, unpack_plain};
use strata::container::PathKind;

#[derive(Debug, Args)]
pub(crate) struct CpArgs {
    /// CONTAINER:SRC_PATH, a local path, or `-` (a tar on stdin).
    src: String,
    /// CONTAINER:DEST_PATH, a local path, or `-` (a tar on stdout).
    dest: String,
    /// Keep the files' UID and GID copying out (in, dockerd 20.10 keeps them either way).
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink at SRC_PATH itself.
    #[arg(short = 'L', long)]
    follow_link: bool,
}

/// `CONTAINER:PATH` as docker splits it: a path that is absolute or starts with `.` is local.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// The last name of `path` (`/` for the root), and whether it asks for a directory's
/// contents (`dir/.`).
fn base(path: &str) -> (String, bool) {
    let contents = path.ends_with("/.") || path == ".";
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or_default();
    (if name.is_empty() { ".".into() } else { name.to_owned() }, contents)
}

fn parent(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((p, _)) => p.into(),
        None => ".".into(),
    }
}

pub(crate) fn run(root: &Path, args: CpArgs) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    match (split(&args.src), split(&args.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported: copy out, then in"),
        (None, None) => bail!("must specify at least one container source (CONTAINER:PATH)"),
        (Some((c, src)), None) => {
            let src = if src.is_empty() { "/" } else { src };
            let (name, contents) = base(src);
            if args.dest == "-" {
                let mut out = std::io::stdout();
                containers.copy_out(c, src, &name, args.follow_link, None, &mut out)?;
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let kind = containers.path_kind(c, src)?;
            if kind == PathKind::Missing {
                bail!("could not find the file {src} in container {c}");
            }
            let dest = PathBuf::from(&args.dest);
            let (into, top) = match std::fs::metadata(&dest) {
                Ok(m) if m.is_dir() => (dest.clone(), if contents { String::new() } else { name }),
                Ok(_) if kind == PathKind::Dir => bail!("cannot copy a directory to a file: {}", dest.display()),
                Ok(_) => (PathBuf::from(parent(&args.dest)), base(&args.dest).0),
                Err(_) if args.dest.ends_with('/') => bail!("destination directory {} does not exist", dest.display()),
                Err(_) => {
                    let p = PathBuf::from(parent(&args.dest));
                    if !p.is_dir() {
                        bail!("no directory {}: the destination's parent must exist", p.display());
                    }
                    (p, base(&args.dest).0)
                }
            };
            // As docker's CLI: what comes out is the caller's, unless -a keeps the owners.
            let owner =
                (!args.archive).then(|| (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()));
            let (reader, writer) = strata::archive::pipe()?;
            std::thread::scope(|scope| -> Result<()> {
                let packer = scope.spawn(move || containers.copy_out(c, src, &top, args.follow_link, owner, writer));
                let unpacked =
                    unpack_plain(&into, reader).with_context(|| format!("cannot write into {}", into.display()));
                let packed = packer.join().expect("the packer does not panic");
                packed?;
                unpacked
            })?;
        }
        (None, Some((c, dest))) => {
            let dest = if dest.is_empty() { "/" } else { dest };
            if args.src == "-" {
                containers.copy_in(c, dest, std::io::stdin())?;
                return Ok(ExitCode::SUCCESS);
            }
            let src = Path::new(&args.src);
            let meta = if args.follow_link { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) }
                .with_context(|| format!("no such file or directory: {}", src.display()))?;
            let (name, contents) = base(&args.src);
            let (into, top) = match containers.path_kind(c, dest)? {
                PathKind::Dir => (dest.to_owned(), if contents && meta.is_dir() { String::new() } else { name }),
                PathKind::Other if meta.is_dir() => bail!("cannot copy a directory to a file: {c}:{dest}"),
                _ if dest.ends_with('/') => bail!("destination directory {c}:{dest} does not exist"),
                _ => (parent(dest), base(dest).0),
            };
            // dockerd 20.10 keeps the owners of what a root caller sends, -a or not.
            let owner = None;
            let (reader, writer) = strata::archive::pipe()?;
            std::thread::scope(|scope| -> Result<()> {
                let follow = args.follow_link;
                let packer = scope.spawn(move || pack_path(src, &top, follow, owner, writer));
                let copied = containers.copy_in(c, &into, reader);
                let packed = packer.join().expect("the packer does not panic");
                copied?;
                packed?;
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
