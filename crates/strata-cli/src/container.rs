//! The container commands: `create`, `run`, `start`, `ps`, `mount`, `umount`, `rm`, `diff`,
//! `commit`, `export`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use strata::Store;
use strata::archive::ChangeKind;
use strata::container::{CommitOptions, ContainerStore, CreateOptions, Network, SecurityOptions};
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
    /// Security options: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges.
    #[arg(long = "security-opt", value_name = "OPTION")]
    security_opt: Vec<String>,
    /// The log of a detached run: max-size=SIZE (10m, 512k), max-file=N (rotated files kept).
    #[arg(long = "log-opt", value_name = "OPTION")]
    log_opt: Vec<String>,
    /// Run an init as the first process: it reaps orphans and passes signals on (docker's --init).
    #[arg(long)]
    init: bool,
    /// Keep stdin open: an attached run's stdin is the container's.
    #[arg(short, long)]
    interactive: bool,
    /// A pseudo-terminal for the container (with -i: an interactive shell, the caller's
    /// terminal in raw mode, its size passed on).
    #[arg(short, long)]
    tty: bool,
    /// Mount a volume or a host path: NAME:DEST[:ro], /HOST:DEST[:ro], or DEST (a new
    /// anonymous volume); repeatable.
    #[arg(short, long = "volume", value_name = "[SRC:]DEST[:MODE]")]
    volume: Vec<String>,
    /// Mount: type=volume|bind|tmpfs,source=…,target=…[,readonly][,volume-nocopy]…; repeatable.
    #[arg(long = "mount", value_name = "SPEC")]
    mount: Vec<String>,
    /// Mount a tmpfs: DEST[:OPTIONS] (size=64m, mode=1777, exec); repeatable.
    #[arg(long = "tmpfs", value_name = "DEST[:OPTIONS]")]
    tmpfs: Vec<String>,
    /// Mount what another container mounts, at the same places: CONTAINER[:ro|rw]; repeatable.
    #[arg(long = "volumes-from", value_name = "CONTAINER[:MODE]")]
    volumes_from: Vec<String>,
    /// Not offered: publishing ports needs a network of the container's own (refused).
    #[arg(short, long, hide = true)]
    publish: Vec<String>,
    /// Not offered: restart policies need a daemon (refused unless "no").
    #[arg(long, hide = true)]
    restart: Option<String>,
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
    /// Run it in the background and print its ID; its output goes to its log (`strata logs`).
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MonitorArgs {
    /// The container (name or ID).
    container: String,
    /// Remove the container if it cannot be run.
    #[arg(long)]
    remove_on_failure: bool,
    /// Detached: the output goes to the container's log, and once it runs the monitor says
    /// so on stderr and lets go of it.
    #[arg(long)]
    detach: bool,
    /// With --detach, for a container with a terminal: start it once someone attached.
    #[arg(long)]
    attach: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The container (name or ID).
    container: String,
    /// Stay attached: run in the foreground, with its output, and exit with its status
    /// (without it, `start` returns once the container runs, as docker's).
    #[arg(short, long)]
    attach: bool,
    /// With -a, this terminal's input goes to the container (which must have been made with -i).
    #[arg(short, long)]
    interactive: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Filter: status=STATE, name=TEXT, id=PREFIX, ancestor=IMAGE, label=KEY[=VALUE], exited=CODE.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Only show container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Output format: table, json (the Engine API's `GET /containers/json`, with `Status`), or
    /// a Go template (`{{.Names}} {{.Status}}`, `{{json .}}`, `table {{.ID}}\t{{.Image}}`).
    #[arg(long = "format", default_value = "table")]
    list_format: crate::template::ListFormat,
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
    /// Remove the container's anonymous volumes too (those no other container uses).
    #[arg(short, long)]
    volumes: bool,
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
    /// Freeze a running container during the commit (--pause=false to leave it running).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pause: bool,
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

/// The create options, reading a seccomp profile named by file as docker's CLI does.
fn options(args: &CreateArgs, auto_remove: bool) -> Result<CreateOptions> {
    if let Some(port) = args.publish.first() {
        bail!(
            "cannot publish port {port}: strata containers have no network of their own to publish from (only --network none or host); with --network host the container's ports are the host's"
        );
    }
    if let Some(policy) = args.restart.as_deref().filter(|p| *p != "no") {
        bail!(
            "cannot use --restart {policy}: restart policies need a daemon to watch the container, and strata has none"
        );
    }
    let mut security = Vec::new();
    for option in &args.security_opt {
        match option.split_once(['=', ':']) {
            Some(("seccomp", file)) if !matches!(file, "unconfined" | "builtin") => {
                let profile =
                    std::fs::read_to_string(file).with_context(|| format!("cannot read the seccomp profile {file}"))?;
                security.push(format!("seccomp={profile}"));
            }
            _ => security.push(option.clone()),
        }
    }
    if let Some(bad) = args.env.iter().find(|e| e.is_empty() || e.starts_with('=')) {
        bail!("invalid environment variable {bad:?}: give NAME=VALUE, or NAME to pass this process's value");
    }
    Ok(CreateOptions {
        name: args.name.clone(),
        log_options: args.log_opt.clone(),
        cmd: args.command.clone(),
        entrypoint: args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        env: env_values(&args.env),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        runtime: args.runtime.clone(),
        auto_remove,
        security: SecurityOptions::parse(&security)?,
        init: args.init,
        interactive: args.interactive,
        tty: args.tty,
        volumes: args.volume.iter().map(|v| absolute_source(v)).collect::<Result<_>>()?,
        mounts: args.mount.clone(),
        tmpfs: args.tmpfs.clone(),
        volumes_from: args.volumes_from.clone(),
    })
}

/// A `-v` whose source is a relative path (`./data:/x`) made absolute, as docker's CLI does
/// since 23.0; other sources are volume names.
fn absolute_source(raw: &str) -> Result<String> {
    match raw.split_once(':') {
        Some((source, rest)) if source == "." || source.starts_with("./") || source.starts_with("../") => {
            let cwd = std::env::current_dir().context("cannot find the current directory")?;
            Ok(format!("{}:{rest}", cwd.join(source).display()))
        }
        _ => Ok(raw.to_owned()),
    }
}

/// `-e` values as docker takes them: `NAME=VALUE`, or `NAME` to pass this process's `NAME` on
/// (nothing if it has none).
pub(crate) fn env_values(args: &[String]) -> Vec<String> {
    args.iter()
        .filter_map(
            |e| if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) },
        )
        .collect()
}

/// An error of `run` or `start` as docker reports it: the command's own status (126, 127) if
/// it could not be run, 125 for any other failure to run it.
fn failed(e: strata::Error) -> ExitCode {
    eprintln!("strata: {}", crate::describe(&e));
    match e {
        strata::Error::Command { status, .. } => ExitCode::from(status),
        _ => ExitCode::from(125),
    }
}

fn status(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

pub(crate) fn create(root: &Path, args: CreateArgs) -> Result<ExitCode> {
    let container = containers(root)?.create(&args.image, &options(&args, false)?)?;
    println!("{}", container.id());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(root: &Path, args: RunArgs) -> Result<ExitCode> {
    let store = containers(root)?;
    let options = match options(&args.create, args.rm) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("strata: {}", crate::one_line(&format!("{e:#}")));
            return Ok(ExitCode::from(125));
        }
    };
    let container = match store.create(&args.create.image, &options) {
        Ok(c) => c,
        Err(e) => return Ok(failed(e)),
    };
    if args.detach {
        return crate::monitor::start_detached(root, &container.id().to_string(), args.rm, true);
    }
    if args.create.tty {
        return crate::monitor::start_attached(root, &container.id().to_string(), args.rm, args.create.interactive);
    }
    crate::monitor::run_monitored(root, &container.id().to_string(), args.rm, args.create.interactive)
}

pub(crate) fn start(root: &Path, args: StartArgs) -> Result<ExitCode> {
    if args.attach {
        let store = containers(root)?;
        let container = store.get(store.resolve(&args.container)?)?;
        if container.record.config.tty {
            let stdin = args.interactive && container.record.config.open_stdin;
            return crate::monitor::start_attached(root, &args.container, false, stdin);
        }
        return crate::monitor::run_monitored(root, &args.container, false, true);
    }
    crate::monitor::start_detached(root, &args.container, false, true)
}

/// The monitor process's work: run the container in the foreground until it ends, unmount it
/// and record how it ended; with `remove_on_failure`, a container that could not be run is
/// removed (`run --rm`).
pub(crate) fn monitor(root: &Path, args: MonitorArgs) -> Result<ExitCode> {
    if args.detach {
        crate::monitor::detach()?;
    }
    let store = containers(root)?;
    let forwarder = crate::monitor::Forwarder::start()?;
    let spawned = |pid| forwarder.set_target(pid);
    let output = if args.attach { strata::container::Output::Attach } else { strata::container::Output::Log };
    let started = if args.detach {
        store.start_output(&args.container, output, spawned, crate::monitor::detached)
    } else {
        store.start_with(&args.container, spawned)
    };
    drop(forwarder);
    match started {
        Ok(code) => Ok(status(code)),
        // Nothing to start: an ordinary error, as `docker start`.
        Err(e @ (strata::Error::ContainerNotFound(_) | strata::Error::InvalidId { .. })) => Err(e.into()),
        Err(e) => {
            if args.remove_on_failure {
                let _ = store.remove(&args.container, true);
            }
            Ok(failed(e))
        }
    }
}

/// The header of each field of a `ps` row, as docker names them.
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub(crate) fn ps(root: &Path, args: PsArgs) -> Result<ExitCode> {
    let filters = strata::container::ContainerFilters::parse(&args.filter)?;
    let all = args.all || filters.names_a_status();
    let list: Vec<_> = containers(root)?
        .summaries_filtered(&filters)?
        .into_iter()
        .filter(|c| all || matches!(c.state, "running" | "paused"))
        .collect();
    let trunc =
        |id: &str| if args.no_trunc { id.to_owned() } else { id.trim_start_matches("sha256:")[..12].to_owned() };
    use crate::template::ListFormat;
    match &args.list_format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|c| {
                    let mut row = serde_json::to_value(c).expect("serializable");
                    row["Status"] = status_text(c).into();
                    row
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Template { text, table } => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|c| {
                    let command = if args.no_trunc { c.command.clone() } else { human::ellipsis(&c.command, 20) };
                    let image = if c.image.starts_with("sha256:") { trunc(&c.image) } else { c.image.clone() };
                    serde_json::json!({
                        "Command": format!("{command:?}"),
                        "CreatedAt": human::go_time(c.created),
                        "ID": trunc(&c.id),
                        "Image": image,
                        "Labels": "",
                        "LocalVolumes": "0",
                        "Mounts": "",
                        "Names": c.names.first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default(),
                        "Networks": "",
                        "Ports": "",
                        "RunningFor": human::ago(c.created),
                        "Size": "0B",
                        "State": c.state,
                        "Status": status_text(c),
                    })
                })
                .collect();
            print!("{}", crate::template::render(text, *table, &rows, PS_HEADERS)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Table => {}
    }
    if args.quiet {
        for c in &list {
            println!("{}", trunc(&c.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let command = if args.no_trunc { c.command.clone() } else { human::ellipsis(&c.command, 20) };
            let image = if c.image.starts_with("sha256:") { trunc(&c.image) } else { c.image.clone() };
            let name = c.names.first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default();
            vec![
                trunc(&c.id),
                image,
                format!("{command:?}"),
                human::ago(c.created),
                status_text(c),
                String::new(),
                name,
            ]
        })
        .collect();
    print!("{}", human::table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, as dockerd words them.
pub(crate) fn status_text(s: &strata::container::ContainerSummary) -> String {
    match s.state {
        "running" => format!("Up {}", human::since(&s.since)),
        "paused" => format!("Up {} (Paused)", human::since(&s.since)),
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
        match store.remove_with(name, args.force, args.volumes) {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("strata: {}", crate::describe(&e));
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
    let options = CommitOptions {
        reference: args.name,
        message: args.message,
        author: args.author,
        changes: args.change,
        pause: args.pause,
        ..Default::default()
    };
    println!("{}", containers(root)?.commit(&args.container, &options)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(root: &Path, args: ExportArgs) -> Result<ExitCode> {
    let store = containers(root)?;
    let id = store.resolve(&args.container)?.to_string();
    match &args.output {
        // A regular file (or a new one) is written beside and renamed over whole, so a failure
        // leaves it as it was; anything else (a device, a pipe) is written in place.
        Some(path) if std::fs::metadata(path).map_or(true, |m| m.is_file()) => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let partial = path.with_file_name(format!(".{name}.strata-partial"));
            let written = std::fs::File::create(&partial).map_err(anyhow::Error::from).and_then(|file| {
                let mut out = std::io::BufWriter::new(file);
                store.export(&id, &mut out)?;
                Ok(out.flush()?)
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(e.context(format!("cannot write {}", path.display())));
            }
            std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let written = store.export(&id, &mut out).map_err(anyhow::Error::from).and_then(|()| Ok(out.flush()?));
            written.with_context(|| format!("cannot write {}", path.display()))?;
        }
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write a tar to a terminal: give -o FILE or redirect stdout")
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            store.export(&id, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
