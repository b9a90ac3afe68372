//! `pull`: images from registries, with docker's output.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Result;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use strata::Store;
use strata::image::{LayerEvent, Platform, Progress, Reference};
use strata::registry::{PullOptions, RegistryOptions};

use crate::Format;

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// The image: NAME[:TAG] or NAME@DIGEST (`debian` is docker.io/library/debian:latest).
    name: Reference,
    /// The platform to pull from a multi-platform image: OS/ARCH[/VARIANT] (default: this machine's).
    #[arg(long)]
    platform: Option<Platform>,
    /// Print only the image's name when done.
    #[arg(short, long)]
    quiet: bool,
    /// Layers fetched at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_concurrent_downloads: u16,
    /// A registry (HOST[:PORT]) reached without TLS verification or over plain HTTP (repeatable).
    #[arg(long, value_name = "HOST", env = "STRATA_INSECURE_REGISTRIES", value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// A directory in docker's certs.d layout (HOST[:PORT]/ca.crt, client.cert, client.key).
    #[arg(long, value_name = "DIR", env = "STRATA_CERTS_D")]
    certs_d: Option<PathBuf>,
    /// Output format (json: the image pulled, its digest, and how many layers were new).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn pull(root: &Path, args: PullArgs) -> Result<ExitCode> {
    let images = Store::open(root)?.images();
    let mut registry = RegistryOptions { max_concurrent: args.max_concurrent_downloads.into(), ..Default::default() };
    registry.insecure.extend(args.insecure_registry.iter().filter(|h| !h.is_empty()).cloned());
    if let Some(dir) = args.certs_d {
        registry.certs_dirs.insert(0, dir);
    }
    let options = PullOptions { platform: args.platform };
    let reference = args.name.clone().or_latest();
    let quiet = args.quiet || args.format == Format::Json;
    if !quiet {
        let at = reference.digest().map(|d| d.to_string()).or(reference.tag().map(str::to_owned)).unwrap_or_default();
        println!("{at}: Pulling from {}", reference.path());
    }
    let display = PullDisplay::new(quiet);
    let pulled = strata::registry::pull(&images, &reference, &registry, &options, &display)?;
    drop(display);
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&pulled)?);
        return Ok(ExitCode::SUCCESS);
    }
    let full = format!("{}/{}", reference.domain(), reference.path());
    let full = match (reference.tag(), reference.digest()) {
        (_, Some(digest)) => format!("{full}@{digest}"),
        (Some(tag), None) => format!("{full}:{tag}"),
        (None, None) => full,
    };
    if !quiet {
        println!("Digest: {}", pulled.digest);
        let status = if pulled.up_to_date { "Image is up to date" } else { "Downloaded newer image" };
        println!("Status: {status} for {reference}");
    }
    println!("{full}");
    Ok(ExitCode::SUCCESS)
}

/// docker's pull display: a line per layer change, or a bar per layer on a terminal.
struct PullDisplay {
    quiet: bool,
    multi: Option<MultiProgress>,
    layers: Mutex<HashMap<usize, (String, Option<ProgressBar>)>>,
}

impl PullDisplay {
    fn new(quiet: bool) -> PullDisplay {
        let multi = (!quiet && std::io::stdout().is_terminal()).then(MultiProgress::new);
        PullDisplay { quiet, multi, layers: Mutex::new(HashMap::new()) }
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(multi) => drop(multi.println(text)),
            None => println!("{text}"),
        }
    }
}

fn short(digest: Option<strata::Digest>, diff_id: strata::DiffId) -> String {
    digest.map(|d| d.hex()).unwrap_or_else(|| diff_id.hex())[..12].to_owned()
}

impl Progress for PullDisplay {
    fn event(&self, event: LayerEvent) {
        if self.quiet {
            return;
        }
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            LayerEvent::Exists { diff_id, digest } => self.line(format!("{}: Already exists", short(digest, diff_id))),
            LayerEvent::Started { index, diff_id, digest, size } => {
                let id = short(digest, diff_id);
                let bar = self.multi.as_ref().map(|multi| {
                    let bar = multi.add(ProgressBar::new(size.unwrap_or(0)));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: Downloading [{bar:40}] {decimal_bytes}/{decimal_total_bytes}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(id.clone());
                    bar
                });
                if bar.is_none() {
                    self.line(format!("{id}: Pulling fs layer"));
                }
                layers.insert(index, (id, bar));
            }
            LayerEvent::Read { index, bytes } => {
                if let Some((_, Some(bar))) = layers.get(&index) {
                    bar.set_position(bytes);
                }
            }
            LayerEvent::Done { index } => {
                if let Some((id, bar)) = layers.get(&index) {
                    if let Some(bar) = bar {
                        bar.finish_and_clear();
                    }
                    self.line(format!("{id}: Pull complete"));
                }
            }
        }
    }
}

impl Drop for PullDisplay {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
    }
}
