//! `strata layer …`

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use strata::archive::{ApplyOptions, Compression};
use strata::layer::{CreateOptions, LayerInfo, LayerStore};
use strata::{Digest, LayerId, Store};

use crate::Format;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum LayerCommand {
    /// Create an empty layer and print its ID.
    Create {
        /// Stack the new layer on this one.
        #[arg(long)]
        parent: Option<LayerId>,
        /// Give the layer this ID (64 lowercase hex characters) instead of a random one.
        #[arg(long)]
        id: Option<LayerId>,
    },
    /// Mount a layer over its ancestors and print the merged directory.
    Mount {
        /// The layer.
        id: LayerId,
    },
    /// Drop a mount reference; the last one unmounts. A container's layer is refused (use
    /// `strata umount CONTAINER`).
    #[command(alias = "unmount")]
    Umount {
        /// The layer.
        id: LayerId,
        /// Unmount even a container's layer, breaking a container that runs on it.
        #[arg(long)]
        force: bool,
    },
    /// Remove layers that have no children, are not mounted and that no image or container
    /// stands on.
    #[command(alias = "remove")]
    Rm {
        /// The layers.
        #[arg(required = true)]
        ids: Vec<LayerId>,
        /// Remove even a layer an image or a container stands on, breaking them.
        #[arg(long)]
        force: bool,
    },
    /// List the layers of the store.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Apply a layer tarball (plain, gzip or zstd) to an empty layer.
    Apply(ApplyArgs),
    /// Write the tar of a layer's own changes (from its diff/ alone).
    Diff(DiffArgs),
    /// List what a layer changed over its parent (A/C/D, as `docker diff`).
    Changes {
        /// The layer.
        id: LayerId,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a layer's size in bytes, as dockerd counts it.
    Size {
        /// The layer.
        id: LayerId,
    },
    /// Print a layer's directories as `docker inspect` shows them (GraphDriver).
    Inspect {
        /// The layer.
        id: LayerId,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The layer (empty, unmounted, without children).
    id: LayerId,
    /// The tarball; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// Fail unless the uncompressed tar hashes to this diffID.
    #[arg(long)]
    diff_id: Option<strata::DiffId>,
    /// Fail unless the input, as given, hashes to this digest.
    #[arg(long)]
    digest: Option<Digest>,
    /// Write even into a layer an image or a container stands on, changing them.
    #[arg(long)]
    force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The layer.
    id: LayerId,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Compress the tar.
    #[arg(long, value_enum)]
    compress: Option<Compress>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Compress {
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Only print layer IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn run(root: &Path, cmd: LayerCommand) -> Result<ExitCode> {
    let store = Store::open(root)?;
    let layers = store.layers();
    match cmd {
        LayerCommand::Create { parent, id } => println!("{}", layers.create(&CreateOptions { id, parent })?),
        LayerCommand::Mount { id } => println!("{}", layers.mount(&id)?.display()),
        LayerCommand::Umount { id, force } => store.unmount_layer(&id, force).map_err(in_use_hint)?,
        LayerCommand::Rm { ids, force } => {
            let mut failed = false;
            for id in ids {
                match store.remove_layer(&id, force) {
                    Ok(()) => println!("{id}"),
                    Err(e) => {
                        eprintln!("strata: {}", in_use_hint(e));
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        LayerCommand::Ls(args) => print_list(&layers.list()?, &args)?,
        LayerCommand::Apply(args) => apply(&store, args)?,
        LayerCommand::Diff(args) => diff(&layers, args)?,
        LayerCommand::Changes { id, format } => {
            let changes = layers.changes(&id)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&changes)?);
            } else {
                changes.iter().for_each(|c| println!("{c}"));
            }
        }
        LayerCommand::Size { id } => println!("{}", layers.size(&id)?),
        LayerCommand::Inspect { id } => println!("{}", serde_json::to_string_pretty(&layers.graph_driver(&id)?)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(layers: &[LayerInfo], args: &LsArgs) -> Result<()> {
    if args.quiet {
        layers.iter().for_each(|l| println!("{}", l.id));
        return Ok(());
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(layers)?);
        return Ok(());
    }
    println!("{:<69} {:<26} {:<12} {:>5} {:>6}", "LAYER ID", "LINK", "PARENT", "DEPTH", "MOUNTS");
    for l in layers {
        let parent = l.parent.as_ref().map(|p| p.as_str()[..12].to_owned()).unwrap_or_default();
        let link = l.link.map(|l| l.to_string()).unwrap_or_else(|| "(missing)".into());
        println!("{:<69} {:<26} {:<12} {:>5} {:>6}", l.id, link, parent, l.lowers.len(), l.mounts);
    }
    Ok(())
}

/// What to do about a layer in use: the commands that remove its users, or `--force`.
fn in_use_hint(e: strata::Error) -> anyhow::Error {
    match e {
        strata::Error::LayerInUse { .. } => {
            anyhow::anyhow!("{e}; remove them first (`strata rm`, `strata rmi`), or pass --force")
        }
        e => anyhow::anyhow!("{}", crate::describe(&e)),
    }
}

fn apply(store: &Store, args: ApplyArgs) -> Result<()> {
    let input: Box<dyn Read + Send> = match &args.file {
        None => Box::new(std::io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin()),
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?),
    };
    let options = ApplyOptions { diff_id: args.diff_id, digest: args.digest, ..Default::default() };
    let applied = store.apply_layer(&args.id, input, &options, args.force).map_err(in_use_hint)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&applied)?);
    } else {
        let s = &applied.stream;
        println!("diffID       {}", s.diff_id);
        println!("digest       {} ({:?}, {} bytes)", s.compressed, s.compression, s.compressed_size);
        println!("tar size     {} bytes, {} entries", s.size, applied.entries);
        println!("layer size   {} bytes", applied.layer_size);
    }
    Ok(())
}

fn diff(layers: &LayerStore, args: DiffArgs) -> Result<()> {
    let compression = match args.compress {
        None => Compression::None,
        Some(Compress::Gzip) => Compression::Gzip,
        Some(Compress::Zstd) => Compression::Zstd,
    };
    let digests = match &args.output {
        Some(path) => {
            // Written aside and renamed, so a failed diff leaves no half file.
            let tmp = path.with_extension("strata-partial");
            let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let result = layers.diff(&args.id, std::io::BufWriter::new(file), compression);
            match result {
                Ok(d) => {
                    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
                    d
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.into());
                }
            }
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!("refusing to write a tar to a terminal: use -o FILE or redirect the output");
            }
            layers.diff(&args.id, std::io::stdout(), compression)?
        }
    };
    eprintln!("diffID {}", digests.diff_id);
    if compression != Compression::None {
        eprintln!("digest {}", digests.compressed);
    }
    Ok(())
}
