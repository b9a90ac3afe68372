//! `strata`: Docker's overlay2 storage without a daemon.

#![forbid(unsafe_code)]

mod attach;
mod build;
mod check;
mod container;
mod copy;
mod human;
mod image;
mod info;
mod init;
mod layer;
mod lifecycle;
mod monitor;
mod registry;
mod system;
mod template;
mod volume;
mod walkthrough;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Layered container root filesystems you can see, trust and script: Docker's overlay2
/// layout on disk, unioned by the kernel's OverlayFS, with no daemon.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, max_term_width = 100)]
struct Cli {
    /// The store root (layers live under <ROOT>/overlay2).
    #[arg(long, global = true, env = "STRATA_ROOT", default_value = strata::DEFAULT_ROOT)]
    root: PathBuf,

    /// Log what strata does (error, warn, info, debug, trace); STRATA_LOG takes filters.
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// Create, mount, inspect and remove layers.
    #[command(subcommand)]
    Layer(layer::LayerCommand),
    /// List images.
    Images(image::ImagesArgs),
    /// Show how an image was made, a row per step, with each layer's size.
    History(image::HistoryArgs),
    /// Show containers or images in Docker's JSON shape, with their layers' directories.
    Inspect(image::InspectArgs),
    /// Give an image another name.
    Tag(image::TagArgs),
    /// Remove images (or names of images) and the layers nothing else uses.
    Rmi(image::RmiArgs),
    /// Pull an image from a registry.
    Pull(registry::PullArgs),
    /// Push an image to a registry.
    Push(registry::PushArgs),
    /// Log in to a registry: check the credentials, keep them as the docker CLI does.
    Login(registry::LoginArgs),
    /// Forget the credentials kept for a registry.
    Logout(registry::LogoutArgs),
    /// Load images from a `docker save` tar or an OCI layout (directory or tar).
    Load(image::LoadArgs),
    /// Save images to a tar, as `docker save` or as an OCI layout.
    Save(image::SaveArgs),
    /// Make a one-layer image from a root filesystem (a tar or a directory).
    Import(image::ImportArgs),
    /// Create a container: an -init layer and a writable layer on the image's layers.
    Create(container::CreateArgs),
    /// Create a container and run it with an OCI runtime (runc, crun): in the foreground, or
    /// detached (-d) with its output in its log.
    Run(container::RunArgs),
    /// Run a created or stopped container in the foreground.
    Start(container::StartArgs),
    /// Run a command in a running container.
    Exec(lifecycle::ExecArgs),
    /// Join this terminal to a detached container: its output, and its terminal or stdin; ctrl-p ctrl-q leaves it running.
    Attach(attach::AttachArgs),
    /// Show what a detached container wrote (its log, in dockerd's json-file format).
    Logs(lifecycle::LogsArgs),
    /// Stop running containers: their stop signal, then SIGKILL after a grace period.
    Stop(lifecycle::StopArgs),
    /// Send a signal to running containers.
    Kill(lifecycle::KillArgs),
    /// Wait for containers to stop, and print their exit codes.
    Wait(lifecycle::WaitArgs),
    /// Stop containers and start them again, detached.
    Restart(lifecycle::StopArgs),
    /// Freeze every process of running containers (the cgroup freezer).
    Pause(lifecycle::ManyArgs),
    /// Thaw paused containers.
    Unpause(lifecycle::ManyArgs),
    /// Show a running container's processes, as ps(1) does.
    Top(lifecycle::TopArgs),
    /// Give a container another name.
    Rename(lifecycle::RenameArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Mount a container's tree and print where.
    Mount(container::OneArgs),
    /// Drop a mount taken by `strata mount`.
    Umount(container::OneArgs),
    /// Remove containers and their layers.
    Rm(container::RmArgs),
    /// Show what a container changed: A added, C changed, D deleted.
    Diff(container::DiffArgs),
    /// Make an image of a container's changes on its image.
    Commit(container::CommitArgs),
    /// Build an image from a Dockerfile, one image per step as docker's builder makes them.
    Build(build::BuildArgs),
    /// Write a container's whole tree as one tar.
    Export(container::ExportArgs),
    /// Copy files between a container and this machine (CONTAINER:PATH on one side).
    Cp(copy::CpArgs),
    /// Disk usage of the store (`system df`), and removing what nothing uses (`system prune`).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Volumes: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Containers: `container prune`.
    #[command(subcommand)]
    Container(system::ContainerCommand),
    /// Images: `image prune`.
    #[command(subcommand)]
    Image(system::ImageCommand),
    /// Show the store and the machine, as `docker info` does.
    Info(info::InfoArgs),
    /// Find and mend what a crash or a hand edit left in the store.
    Check(check::CheckArgs),
    /// Run a container in the foreground as `run` and `start` do, from a process of its own
    /// that outlives theirs (internal).
    #[command(hide = true, name = "container-monitor")]
    ContainerMonitor(container::MonitorArgs),
    /// The classic overlay2 experiment, then a container and its commit, in a fresh store, step by step (needs root).
    Walkthrough(walkthrough::WalkthroughArgs),
}

impl Command {
    /// Whether the command works on things already stored, so that a root that does not
    /// exist is a mistake (a mistyped --root) rather than an empty store to make.
    fn needs_a_store(&self) -> bool {
        !matches!(
            self,
            Command::Import(_)
                | Command::Load(_)
                | Command::Pull(_)
                | Command::Login(_)
                | Command::Logout(_)
                | Command::Layer(layer::LayerCommand::Create { .. })
                | Command::Walkthrough(_)
        )
    }
}

/// The log filter in force, for the processes strata starts.
static LOG_LEVEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Output formats for commands that list or describe things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum Format {
    /// Columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

fn main() -> ExitCode {
    // `strata images | head`: a closed stdout ends the command quietly, as in other tools.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    if init::wanted(std::env::args_os().next().as_ref()) {
        return init::main(std::env::args_os().collect());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // A usage error is one line, like every other error: clap's first paragraph.
            let text = e.to_string();
            let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("strata: {}", one_line(first.join(" ").trim_start_matches("error: ")));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    if cli.command.needs_a_store() && !cli.root.is_dir() {
        eprintln!(
            "strata: there is no store at {}: give the root of one (--root or STRATA_ROOT); `strata import`, `load` or `layer create` make a new one",
            cli.root.display()
        );
        return ExitCode::FAILURE;
    }
    let mut filter = std::env::var("STRATA_LOG").unwrap_or_else(|_| cli.log_level.clone());
    // A plain level is strata's: the HTTP and TLS crates' own complaints reach the user as
    // strata's errors, once, unless their logs are asked for (`ureq=debug`).
    if !filter.contains('=') {
        filter.push_str(",ureq=off,ureq_proto=off,rustls=off");
    }
    let _ = LOG_LEVEL.set(cli.log_level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let result = match cli.command {
        Command::Layer(cmd) => layer::run(&cli.root, cmd),
        Command::Check(args) => check::run(&cli.root, args),
        Command::Info(args) => info::run(&cli.root, args),
        Command::System(cmd) => system::run(&cli.root, cmd),
        Command::Container(system::ContainerCommand::Prune(args)) => system::container_prune(&cli.root, args),
        Command::Image(system::ImageCommand::Prune(args)) => system::image_prune(&cli.root, args),
        Command::Images(args) => image::list(&cli.root, args),
        Command::History(args) => image::history(&cli.root, args),
        Command::Inspect(args) => image::inspect(&cli.root, args),
        Command::Tag(args) => image::tag(&cli.root, args),
        Command::Rmi(args) => image::rmi(&cli.root, args),
        Command::Load(args) => image::load(&cli.root, args),
        Command::Pull(args) => registry::pull(&cli.root, args),
        Command::Push(args) => registry::push(&cli.root, args),
        Command::Login(args) => registry::login(args),
        Command::Logout(args) => registry::logout(args),
        Command::Save(args) => image::save(&cli.root, args),
        Command::Import(args) => image::import(&cli.root, args),
        Command::Create(args) => container::create(&cli.root, args),
        Command::Run(args) => container::run(&cli.root, args),
        Command::Start(args) => container::start(&cli.root, args),
        Command::Exec(args) => lifecycle::exec(&cli.root, args),
        Command::Logs(args) => lifecycle::logs(&cli.root, args),
        Command::Attach(args) => attach::attach(&cli.root, args),
        Command::Stop(args) => lifecycle::stop(&cli.root, args),
        Command::Kill(args) => lifecycle::kill(&cli.root, args),
        Command::Wait(args) => lifecycle::wait(&cli.root, args),
        Command::Restart(args) => lifecycle::restart(&cli.root, args),
        Command::Pause(args) => lifecycle::pause(&cli.root, args, true),
        Command::Unpause(args) => lifecycle::pause(&cli.root, args, false),
        Command::Top(args) => lifecycle::top(&cli.root, args),
        Command::Rename(args) => lifecycle::rename(&cli.root, args),
        Command::ContainerMonitor(args) => container::monitor(&cli.root, args),
        Command::Ps(args) => container::ps(&cli.root, args),
        Command::Mount(args) => container::mount(&cli.root, args),
        Command::Umount(args) => container::umount(&cli.root, args),
        Command::Rm(args) => container::rm(&cli.root, args),
        Command::Diff(args) => container::diff(&cli.root, args),
        Command::Commit(args) => container::commit(&cli.root, args),
        Command::Build(args) => build::run(&cli.root, args),
        Command::Export(args) => container::export(&cli.root, args),
        Command::Cp(args) => copy::run(&cli.root, args),
        Command::Volume(command) => volume::run(&cli.root, command),
        Command::Walkthrough(args) => walkthrough::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let mut message = e.to_string();
            // Each cause once: strata's errors already end with their cause.
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !message.ends_with(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            if let Some(hint) = e.downcast_ref::<strata::Error>().and_then(hint) {
                message = format!("{message} ({hint})");
            }
            eprintln!("strata: {}", one_line(&message));
            ExitCode::FAILURE
        }
    }
}

/// A library error on one line, with what to do about it.
pub(crate) fn describe(e: &strata::Error) -> String {
    match hint(e) {
        Some(hint) => one_line(&format!("{e} ({hint})")),
        None => one_line(&e.to_string()),
    }
}

/// What to do about a library error, naming the commands that help.
pub(crate) fn hint(e: &strata::Error) -> Option<String> {
    use strata::Error::*;
    Some(match e {
        LayerNotFound(_) | ParentNotFound(_) => "see `strata layer ls`".to_owned(),
        Mounted { id, .. } => format!("run `strata layer umount {id}` first"),
        Corrupt { .. } => "run `strata check` for details, `strata check --repair` to mend".to_owned(),
        ImageNotFound(_) => "see `strata images`".to_owned(),
        ContainerNotFound(_) => "see `strata ps -a`".to_owned(),
        VolumeNotFound(_) => "see `strata volume ls`".to_owned(),
        VolumeInUse { .. } => "`strata ps -a --filter volume=NAME` lists them".to_owned(),
        Registry { kind: strata::ErrorKind::Denied, .. } => {
            "credentials are read from docker's config.json ($DOCKER_CONFIG or ~/.docker): `docker login` writes them"
                .to_owned()
        }
        _ => return None,
    })
}

/// An error message on one line, whatever names from an archive it quotes: control characters
/// (newlines, escape sequences) are shown escaped.
pub(crate) fn one_line(message: &str) -> String {
    message.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect()
}
