//! `strata build`: docker's legacy builder, daemonless.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use strata::Store;
use strata::build::BuildOptions;
use strata::build::context::Context;
use strata::container::Network;
use strata::image::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum NetworkArg {
    /// RUN has only a loopback device.
    #[default]
    None,
    /// RUN uses the host's network.
    Host,
    /// docker's default; strata has no bridge, so RUN gets none (as `none`).
    Default,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The context: a directory, or `-` for a tar (any compression) or a lone Dockerfile on stdin.
    context: String,
    /// Name the image NAME[:TAG]; repeatable.
    #[arg(short, long)]
    tag: Vec<Reference>,
    /// The Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from stdin.
    #[arg(short, long)]
    file: Option<String>,
    /// Set a build argument (K=V, or K to take it from the environment); repeatable.
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    target: Option<String>,
    /// Run every step; use no cached one.
    #[arg(long)]
    no_cache: bool,
    /// Pull the base images first (docker's legacy builder pulls missing ones; strata only asked).
    #[arg(long)]
    pull: bool,
    #[command(flatten)]
    reach: crate::registry::ReachArgs,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Add a label to the image (K=V); repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// RUN's network.
    #[arg(long, value_enum, default_value_t)]
    network: NetworkArg,
    /// The platform to build for (only this machine's).
    #[arg(long)]
    platform: Option<String>,
    /// Remove each step's container once done (--rm=false keeps them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    rm: bool,
    /// Remove step containers even when a step fails (strata always does, unless --rm=false).
    #[arg(long)]
    force_rm: bool,
    /// The OCI runtime for RUN (runc or crun).
    #[arg(long, default_value = "")]
    runtime: String,
}

pub(crate) fn run(root: &Path, args: BuildArgs) -> Result<ExitCode> {
    if let Some(platform) = &args.platform {
        let wanted: strata::image::Platform = platform.parse()?;
        if wanted != strata::image::Platform::host() {
            bail!(
                "cannot build for {platform}: strata builds for this machine's platform ({}) only",
                strata::image::Platform::host()
            );
        }
    }
    if let Some(iidfile) = &args.iidfile {
        match std::fs::remove_file(iidfile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", iidfile.display()));
            }
            _ => {}
        }
    }
    let mut stdin_used = false;
    let mut scratch: Option<PathBuf> = None;
    let context = match args.context.as_str() {
        "-" => {
            stdin_used = true;
            let mut head = Vec::new();
            let mut input = std::io::stdin();
            input.by_ref().take(1024).read_to_end(&mut head)?;
            if is_archive_head(&head) {
                let dir = std::env::temp_dir().join(format!("strata-build-context-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                scratch = Some(dir.clone());
                let context = Context::from_tar(std::io::Cursor::new(head).chain(input), &dir)?;
                (context, None)
            } else {
                let mut text = head;
                input.read_to_end(&mut text)?;
                (Context::none(), Some(text))
            }
        }
        dir => (Context::open(Path::new(dir)).map_err(anyhow::Error::msg)?, None),
    };
    let result = build(root, &args, context, stdin_used);
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn build(
    root: &Path,
    args: &BuildArgs,
    (context, stdin_dockerfile): (Context, Option<Vec<u8>>),
    stdin_used: bool,
) -> Result<ExitCode> {
    let (name, bytes) = match (&args.file, stdin_dockerfile) {
        (Some(f), _) if f == "-" => {
            if stdin_used {
                bail!("the context and the Dockerfile cannot both come from stdin");
            }
            let mut text = Vec::new();
            std::io::stdin().read_to_end(&mut text)?;
            ("Dockerfile".to_owned(), text)
        }
        (Some(f), _) => {
            let path = PathBuf::from(f);
            (f.clone(), std::fs::read(&path).with_context(|| format!("cannot read the Dockerfile {}", path.display()))?)
        }
        (None, Some(text)) => ("Dockerfile".to_owned(), text),
        (None, None) => {
            let root = context.root().map(Path::to_path_buf).unwrap_or_default();
            let path = [root.join("Dockerfile"), root.join("dockerfile")].into_iter().find(|p| p.is_file());
            let Some(path) = path else {
                bail!("cannot find the Dockerfile: {} holds no Dockerfile (give one with -f)", root.display());
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?)
        }
    };
    let dockerfile = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{name} is not UTF-8 text (byte {} is not): save it as UTF-8", e.utf8_error().valid_up_to())
    })?;
    let mut build_args = Vec::new();
    for arg in &args.build_arg {
        match arg.split_once('=') {
            Some((k, v)) => build_args.push((k.to_owned(), Some(v.to_owned()))),
            None => build_args.push((arg.clone(), std::env::var(arg).ok())),
        }
    }
    let mut labels = Vec::new();
    for label in &args.label {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        labels.push((k.to_owned(), v.to_owned()));
    }
    let epoch = build_args
        .iter()
        .find(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .and_then(|(_, v)| v.clone())
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .map(|v| v.parse::<i64>().map_err(|_| anyhow::anyhow!("SOURCE_DATE_EPOCH={v} is not a number of seconds")))
        .transpose()?;
    let options = BuildOptions {
        dockerfile,
        dockerfile_name: name,
        context,
        tags: args.tag.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels,
        network: match args.network {
            NetworkArg::Host => Network::Host,
            NetworkArg::None | NetworkArg::Default => Network::None,
        },
        runtime: args.runtime.clone(),
        keep_containers: !args.rm && !args.force_rm,
        pull: if args.pull { Some(crate::registry::registry_options(args.reach.clone())?) } else { None },
        source_date_epoch: epoch,
    };
    let store = Store::open(root)?;
    let mut stdout = std::io::stdout().lock();
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if args.quiet { &mut sink } else { &mut stdout };
    let built = match strata::build::build(&store, &options, out) {
        Ok(built) => built,
        Err(e) => {
            let status = match &e {
                strata::Error::Build { status: Some(s), .. } => Some(*s),
                _ => None,
            };
            eprintln!("strata: {}", crate::describe(&e));
            return Ok(match status {
                Some(s) => ExitCode::from(u8::try_from(s).unwrap_or(1).max(1)),
                None => ExitCode::FAILURE,
            });
        }
    };
    for warning in &built.warnings {
        eprintln!("[WARNING]: {warning}");
    }
    if args.quiet {
        println!("{}", built.id);
    }
    if let Some(iidfile) = &args.iidfile {
        std::fs::write(iidfile, built.id.to_string()).with_context(|| format!("cannot write {}", iidfile.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether stdin starts with an archive (compressed, or a tar header) rather than a Dockerfile.
fn is_archive_head(head: &[u8]) -> bool {
    !matches!(strata::archive::Compression::detect(head), strata::archive::Compression::None)
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}
