//! The container commands: `create`, `run`, `start`, `ps`, `mount`, `umount`, `rm`, `diff`,
//! `commit`, `export`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use strata::Store;
use strata::archive::ChangeKind;
use strata::container::{CommitOptions, ContainerStore, CreateOptions, Network};
use strata::image::Reference;

use crate::Format;
use crate::human;

/// The networks a container can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum NetworkArg {
    /// Its own network namespace with only loopback.
    #[default]
    None,
    /// The host's network.
    Host,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Name the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// The working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Run as USER[:GROUP] or UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Replace the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// The network: none (default) or the host's.
    #[arg(long, value_enum, default_value_t)]
    network: NetworkArg,
    /// The OCI runtime to run it with (runc, crun, or a path).
    #[arg(long, default_value = "runc")]
    runtime: String,
    /// The image (name or ID).
    image: String,
    /// The command and its arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The container (name or ID).
    container: String,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Only show container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Output format (json: the Engine API's `GET /containers/json`, with `Status`).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct OneArgs {
    /// The container (name or ID).
    container: String,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The containers (names or IDs).
    #[arg(required = true)]
    containers: Vec<String>,
    /// Kill a running container (and unmount a mounted one) first.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The container (name or ID).
    container: String,
    /// Output format (json: a list of {Kind, Path} as the Engine API's `GET /containers/{id}/changes`).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct CommitArgs {
    /// The container (name or ID).
    container: String,
    /// Name the image NAME[:TAG].
    name: Option<Reference>,
    /// The commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// The author.
    #[arg(short, long)]
    author: Option<String>,
    /// Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, …); repeatable.
    #[arg(short, long)]
    change: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The container (name or ID).
    container: String,
    /// Write to this file (default: stdout, unless it is a terminal).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn containers(root: &Path) -> Result<ContainerStore> {
    Ok(Store::open(root)?.containers())
}

fn options(args: &CreateArgs, auto_remove: bool) -> CreateOptions {
    CreateOptions {
        name: args.name.clone(),
        cmd: args.command.clone(),
        entrypoint: args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        runtime: args.runtime.clone(),
        auto_remove,
    }
}

/// An error of `run` or `start` as docker reports it: the command's own status (126, 127) if
/// it could not be run, 125 for any other failure to run it.
fn failed(e: strata::Error) -> ExitCode {
    eprintln!("strata: {}", crate::one_line(&e.to_string()));
    match e {
        strata::Error::Command { status, .. } => ExitCode::from(status),
        _ => ExitCode::from(125),
    }
}

fn status(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

pub(crate) fn create(root: &Path, args: CreateArgs) -> Result<ExitCode> {
    let container = containers(root)?.create(&args.image, &options(&args, false))?;
    println!("{}", container.id());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(root: &Path, args: RunArgs) -> Result<ExitCode> {
    let store = containers(root)?;
    let container = match store.create(&args.create.image, &options(&args.create, args.rm)) {
        Ok(c) => c,
        Err(e) => return Ok(failed(e)),
    };
    let id = container.id().to_string();
    match store.start(&id) {
        Ok(code) => Ok(status(code)),
        Err(e) => {
            if args.rm {
                let _ = store.remove(&id, true);
            }
            Ok(failed(e))
        }
    }
}

pub(crate) fn start(root: &Path, args: StartArgs) -> Result<ExitCode> {
    match containers(root)?.start(&args.container) {
        Ok(code) => Ok(status(code)),
        Err(e) => Ok(failed(e)),
    }
}

pub(crate) fn ps(root: &Path, args: PsArgs) -> Result<ExitCode> {
    let list: Vec<_> = containers(root)?.list()?.into_iter().filter(|c| args.all || c.running).collect();
    if args.format == Format::Json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|c| {
                let mut row = serde_json::to_value(c.summary()).expect("serializable");
                row["Status"] = status_text(&c.summary()).into();
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let id = |c: &strata::container::Container| {
        let id = c.id().to_string();
        if args.no_trunc { id } else { id[..12].to_owned() }
    };
    if args.quiet {
        for c in &list {
            println!("{}", id(c));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let s = c.summary();
            let command = if args.no_trunc { s.command.clone() } else { human::ellipsis(&s.command, 20) };
            vec![
                id(c),
                s.image.clone(),
                format!("{command:?}"),
                human::ago(s.created),
                status_text(&s),
                String::new(),
                c.record.name().to_owned(),
            ]
        })
        .collect();
    print!("{}", human::table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, as dockerd words them.
fn status_text(s: &strata::container::ContainerSummary) -> String {
    match s.state {
        "running" => format!("Up {}", human::since(&s.since)),
        "exited" => format!("Exited ({}) {} ago", s.exit_code, human::since(&s.since)),
        _ => "Created".to_owned(),
    }
}

pub(crate) fn mount(root: &Path, args: OneArgs) -> Result<ExitCode> {
    println!("{}", containers(root)?.mount(&args.container)?.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn umount(root: &Path, args: OneArgs) -> Result<ExitCode> {
    containers(root)?.unmount(&args.container)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rm(root: &Path, args: RmArgs) -> Result<ExitCode> {
    let store = containers(root)?;
    let mut code = ExitCode::SUCCESS;
    for name in &args.containers {
        match store.remove(name, args.force) {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("strata: {}", crate::one_line(&e.to_string()));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

pub(crate) fn diff(root: &Path, args: DiffArgs) -> Result<ExitCode> {
    let changes = containers(root)?.diff(&args.container)?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        let rows: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeKind::Modify => 0,
                    ChangeKind::Add => 1,
                    ChangeKind::Delete => 2,
                };
                serde_json::json!({"Kind": kind, "Path": c.path})
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for change in &changes {
            writeln!(out, "{change}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn commit(root: &Path, args: CommitArgs) -> Result<ExitCode> {
    let options =
        CommitOptions { reference: args.name, message: args.message, author: args.author, changes: args.change };
    println!("{}", containers(root)?.commit(&args.container, &options)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(root: &Path, args: ExportArgs) -> Result<ExitCode> {
    let store = containers(root)?;
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)?;
            let mut out = std::io::BufWriter::new(file);
            store.export(&args.container, &mut out)?;
            out.flush()?;
        }
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write a tar to a terminal: give -o FILE or redirect stdout")
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            store.export(&args.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
