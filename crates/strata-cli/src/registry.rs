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
    /// Pull every tag of the repository.
    #[arg(short, long)]
    all_tags: bool,
    /// Print only the image's name when done.
    #[arg(short, long)]
    quiet: bool,
    /// Layers fetched at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_concurrent_downloads: u16,
    #[command(flatten)]
    reach: ReachArgs,
    /// Output format (json: the image pulled, its digest, and how many layers were new).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn pull(root: &Path, args: PullArgs) -> Result<ExitCode> {
    let images = Store::open(root)?.images();
    let registry =
        RegistryOptions { max_concurrent: args.max_concurrent_downloads.into(), ..registry_options(args.reach)? };
    let options = PullOptions { platform: args.platform };
    let quiet = args.quiet || args.format == Format::Json;
    let names = if args.all_tags {
        if args.name.tag().is_some() || args.name.digest().is_some() {
            anyhow::bail!("a tag or digest cannot be given with --all-tags");
        }
        let tags = strata::registry::list_tags(&args.name, &registry)?;
        tags.iter().map(|t| args.name.with_tag(t)).collect::<strata::Result<Vec<_>>>()?
    } else {
        vec![args.name.clone().or_latest()]
    };
    let mut pulled = Vec::new();
    for reference in &names {
        if !quiet {
            let at =
                reference.digest().map(|d| d.to_string()).or(reference.tag().map(str::to_owned)).unwrap_or_default();
            println!("{at}: Pulling from {}", reference.path());
        }
        let display = PullDisplay::new(quiet);
        let one = strata::registry::pull(&images, reference, &registry, &options, &display)?;
        drop(display);
        if !quiet {
            println!("Digest: {}", one.digest);
        }
        pulled.push(one);
    }
    if args.format == Format::Json {
        let out = if args.all_tags {
            serde_json::to_string_pretty(&pulled)?
        } else {
            serde_json::to_string_pretty(&pulled[0])?
        };
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    // As docker: the status of the name asked for (the repository with -a), then its full name.
    let shown = if args.all_tags { args.name.name() } else { names[0].to_string() };
    let full = if args.all_tags {
        format!("{}/{}", args.name.domain(), args.name.path())
    } else {
        let r = &names[0];
        let base = format!("{}/{}", r.domain(), r.path());
        match (r.tag(), r.digest()) {
            (_, Some(digest)) => format!("{base}@{digest}"),
            (Some(tag), None) => format!("{base}:{tag}"),
            (None, None) => base,
        }
    };
    if !quiet {
        let status = if pulled.iter().all(|p| p.up_to_date) { "Image is up to date" } else { "Downloaded newer image" };
        println!("Status: {status} for {shown}");
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
        // On stdout, with the lines, as docker draws them.
        let multi = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stdout()));
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
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        let _ = std::io::stdout().flush();
    }
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The registry (HOST[:PORT]; default: Docker Hub).
    server: Option<String>,
    /// The user name.
    #[arg(short, long)]
    username: Option<String>,
    /// The password (insecure: it shows in the process list; prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    reach: ReachArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// The registry (HOST[:PORT]; default: Docker Hub).
    server: Option<String>,
}

/// The registries configuration podman and skopeo read, unless `STRATA_REGISTRIES_CONF` names
/// another file.
const REGISTRIES_CONF: &str = "/etc/containers/registries.conf";

/// How registries are reached, for `pull`, `push` and `login`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReachArgs {
    /// A registry (HOST[:PORT]) reached without TLS verification or over plain HTTP (repeatable).
    #[arg(long, value_name = "HOST", env = "STRATA_INSECURE_REGISTRIES", value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// A directory in docker's certs.d layout (HOST[:PORT]/ca.crt, client.cert, client.key).
    #[arg(long, value_name = "DIR", env = "STRATA_CERTS_D")]
    certs_d: Option<PathBuf>,
}

pub(crate) fn registry_options(reach: ReachArgs) -> Result<RegistryOptions> {
    let mut registry = RegistryOptions::default();
    registry.insecure.extend(reach.insecure_registry.into_iter().filter(|h| !h.is_empty()));
    if let Some(dir) = reach.certs_d {
        registry.certs_dirs.insert(0, dir);
    }
    // How long a read may wait before the connection counts as stalled (and is resumed).
    if let Some(seconds) = std::env::var("STRATA_REGISTRY_TIMEOUT").ok().filter(|s| !s.is_empty()) {
        let seconds: u64 =
            seconds.parse().map_err(|_| anyhow::anyhow!("STRATA_REGISTRY_TIMEOUT={seconds}: a number of seconds"))?;
        registry.read_timeout = std::time::Duration::from_secs(seconds.max(1));
    }
    let conf = std::env::var_os("STRATA_REGISTRIES_CONF").map(PathBuf::from).unwrap_or_else(|| REGISTRIES_CONF.into());
    registry.conf = strata::registry::RegistriesConf::load(&conf)?;
    Ok(registry)
}

pub(crate) fn login(args: LoginArgs) -> Result<ExitCode> {
    use std::io::BufRead;
    let domain = strata::registry::server_domain(args.server.as_deref());
    let registry = registry_options(args.reach)?;
    if args.password.is_some() && args.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive && !args.password_stdin => prompt("Username: ", true)?,
        None => anyhow::bail!("a user name is needed: give it with -u (there is no terminal to ask on)"),
    };
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) if interactive => prompt("Password: ", false)?,
        (None, false) => anyhow::bail!("a password is needed: give it with --password-stdin"),
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("a user name and a password are both needed");
    }
    let done = strata::registry::login(&domain, &username, &password, &registry)?;
    if done.stored_in.ends_with("config.json") {
        eprintln!("WARNING! Your password will be stored unencrypted in {}.", done.stored_in);
        eprintln!("Configure a credential helper (credsStore in that file) to remove this warning.");
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn logout(args: LogoutArgs) -> Result<ExitCode> {
    let domain = strata::registry::server_domain(args.server.as_deref());
    let shown = args.server.unwrap_or_else(|| "https://index.docker.io/v1/".into());
    if strata::registry::logout(&domain, &RegistryOptions::default())? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on the terminal; without echo for a password.
fn prompt(question: &str, echo: bool) -> Result<String> {
    use std::io::BufRead;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let saved = if echo { None } else { rustix::termios::tcgetattr(&stdin).ok() };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The image: NAME[:TAG], named for its registry (`strata tag` it first).
    name: Reference,
    /// How to compress the layers the registry does not have: gzip (a Docker schema 2 manifest,
    /// as dockerd pushes) or zstd (an OCI manifest).
    #[arg(long, value_enum, default_value_t = Compress::Gzip)]
    compression: Compress,
    /// The compression level: gzip 1–9 (default 6, as docker), zstd 1–19 (default 3). gzip
    /// at 1 compresses about twice as fast, for blobs about a fifth larger.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=19))]
    compression_level: Option<u32>,
    /// Send each layer in chunks of at most this many bytes (`PATCH` requests with their
    /// `Content-Range`), for registries or proxies that limit a request's size.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(4096..))]
    chunk_size: Option<u64>,
    /// Print only the digest's line.
    #[arg(short, long)]
    quiet: bool,
    /// Layers sent at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_concurrent_uploads: u16,
    #[command(flatten)]
    reach: ReachArgs,
    /// Output format (json: the manifest's digest and size, and how many layers were sent).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Layer compression for `push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Compress {
    Gzip,
    Zstd,
}

pub(crate) fn push(root: &Path, args: PushArgs) -> Result<ExitCode> {
    let images = Store::open(root)?.images();
    let registry =
        RegistryOptions { max_concurrent: args.max_concurrent_uploads.into(), ..registry_options(args.reach)? };
    let reference = args.name.clone().or_latest();
    let quiet = args.quiet || args.format == Format::Json;
    if !quiet {
        println!("The push refers to repository [{}/{}]", reference.domain(), reference.path());
    }
    let compression = match args.compression {
        Compress::Gzip => strata::registry::PushCompression::Gzip,
        Compress::Zstd => strata::registry::PushCompression::Zstd,
    };
    let display = PushDisplay { quiet };
    let chunk = args.chunk_size.map(|c| c as usize);
    let options = strata::registry::PushOptions { compression, level: args.compression_level, chunk };
    let pushed = strata::registry::push(&images, &reference, &registry, &options, &display)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&pushed)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: digest: {} size: {}", reference.tag().unwrap_or("latest"), pushed.digest, pushed.size);
    Ok(ExitCode::SUCCESS)
}

/// docker's push display: a line per layer change.
struct PushDisplay {
    quiet: bool,
}

impl strata::registry::PushProgress for PushDisplay {
    fn event(&self, event: strata::registry::PushEvent) {
        use strata::registry::PushEvent::*;
        if self.quiet {
            return;
        }
        let (diff_id, status) = match event {
            Preparing { diff_id } => (diff_id, "Preparing".to_owned()),
            Exists { diff_id } => (diff_id, "Layer already exists".to_owned()),
            Mounted { diff_id, from } => (diff_id, format!("Mounted from {from}")),
            Pushed { diff_id } => (diff_id, "Pushed".to_owned()),
        };
        println!("{}: {status}", &diff_id.hex()[..12]);
    }
}
