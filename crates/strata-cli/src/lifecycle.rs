//! The commands for containers that keep running: `exec`, `logs`, `stop`, `kill`, `wait`,
//! `restart`, `pause`, `unpause`, `top`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use strata::Store;
use strata::container::{LogEntry, LogOptions};

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The container (name or ID).
    container: String,
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Put the time each line was written before it.
    #[arg(short, long)]
    timestamps: bool,
    /// Only lines written since a time (RFC 3339, Unix seconds, or a duration ago: 10s, 5m, 2h).
    #[arg(long)]
    since: Option<String>,
    /// Only lines written before a time (as --since).
    #[arg(long)]
    until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Seconds to wait after the stop signal before killing it.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// The containers (names or IDs).
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// The signal to send (a name such as TERM or SIGKILL, or a number).
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    /// The containers (names or IDs).
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Start the process and return at once.
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin open for the process.
    #[arg(short, long)]
    interactive: bool,
    /// A pseudo-terminal for the process (with -i: the caller's terminal in raw mode).
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass this process's); repeatable.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Run as USER[:GROUP] or UID[:GID] (default: the container's user).
    #[arg(short, long)]
    user: Option<String>,
    /// The working directory (default: the container's).
    #[arg(short, long)]
    workdir: Option<String>,
    /// The container (name or ID).
    container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ManyArgs {
    /// The containers (names or IDs).
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// The container (name or ID).
    container: String,
    /// Options for ps(1) (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RenameArgs {
    /// The container (name or ID).
    container: String,
    /// Its new name.
    new_name: String,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The containers (names or IDs).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// A time as `docker logs --since` takes it: RFC 3339, Unix seconds, or a duration ago.
fn parse_time(text: &str) -> Result<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return jiff::Timestamp::from_nanosecond((seconds * 1e9) as i128).context("a time out of range");
    }
    let (number, unit) = text.split_at(text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => bail!("invalid time {text:?}: give an RFC 3339 time, Unix seconds, or a duration such as 10s, 5m, 2h"),
    };
    let ago: f64 = number.parse().with_context(|| format!("invalid time {text:?}"))?;
    let now = jiff::Timestamp::now().as_nanosecond();
    jiff::Timestamp::from_nanosecond(now - (ago * scale * 1e9) as i128).context("a time out of range")
}

pub(crate) fn logs(root: &Path, args: LogsArgs) -> Result<ExitCode> {
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse().with_context(|| format!("invalid --tail {n:?}: give a number of lines or \"all\""))?),
    };
    let options = LogOptions {
        tail,
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        follow: args.follow,
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let timestamps = args.timestamps;
    let show = |entry: &LogEntry| -> std::io::Result<()> {
        let to: &mut dyn Write = if entry.stream == "stderr" { &mut err } else { &mut out };
        if timestamps {
            write!(to, "{} ", entry.time)?;
        }
        to.write_all(entry.log.as_bytes())?;
        // Following, each line shows as it comes.
        if options.follow { to.flush() } else { Ok(()) }
    };
    Store::open(root)?.containers().logs(&args.container, &options, show)?;
    Ok(ExitCode::SUCCESS)
}

/// Run `each` on every container named, printing what it returns; the first failure is
/// reported after the others were tried, as docker does.
fn each(names: &[String], mut each: impl FnMut(&str) -> Result<String>) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match each(name) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("strata: {}", crate::one_line(&format!("{e:#}")));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

pub(crate) fn stop(root: &Path, args: StopArgs) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    each(&args.containers, |name| {
        containers.stop(name, Duration::from_secs(args.time))?;
        Ok(name.to_owned())
    })
}

pub(crate) fn kill(root: &Path, args: KillArgs) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    strata::container::parse_signal(&args.signal)?;
    each(&args.containers, |name| {
        containers.kill(name, &args.signal)?;
        Ok(name.to_owned())
    })
}

pub(crate) fn wait(root: &Path, args: WaitArgs) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    each(&args.containers, |name| Ok(containers.wait(name)?.to_string()))
}

pub(crate) fn exec(root: &Path, args: ExecArgs) -> Result<ExitCode> {
    let options = strata::container::ExecOptions {
        env: crate::container::env_values(&args.env),
        user: args.user,
        workdir: args.workdir,
        stdin: args.interactive,
        detach: args.detach,
        tty: args.tty,
    };
    let containers = Store::open(root)?.containers();
    let forwarder = crate::monitor::Forwarder::start()?;
    let done = containers.exec(&args.container, &args.command, &options, |pid| forwarder.set_target(pid));
    drop(forwarder);
    match done {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        // The command could not be run: 126 or 127, as docker's.
        Err(e @ strata::Error::Command { .. }) => {
            let strata::Error::Command { status, .. } = &e else { unreachable!() };
            let status = *status;
            eprintln!("strata: {}", crate::describe(&e));
            Ok(ExitCode::from(status))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn restart(root: &Path, args: StopArgs) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    each(&args.containers, |name| {
        let id = containers.stop(name, Duration::from_secs(args.time))?;
        let started = crate::monitor::start_detached(root, id.as_str(), false, false)?;
        if started != ExitCode::SUCCESS {
            bail!("{name} stopped but did not start again");
        }
        Ok(name.to_owned())
    })
}

pub(crate) fn pause(root: &Path, args: ManyArgs, pause: bool) -> Result<ExitCode> {
    let containers = Store::open(root)?.containers();
    each(&args.containers, |name| {
        containers.pause(name, pause)?;
        Ok(name.to_owned())
    })
}

/// `top`: ps(1) of the host, only the container's processes, as docker's.
pub(crate) fn top(root: &Path, args: TopArgs) -> Result<ExitCode> {
    let pids = Store::open(root)?.containers().processes(&args.container)?;
    let options = if args.ps_options.is_empty() { vec!["-ef".to_owned()] } else { args.ps_options };
    let out = std::process::Command::new("ps").args(&options).output().context("cannot run ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", options.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {} shows no PID column: give options that do", options.join(" "));
    };
    println!("{header}");
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rename(root: &Path, args: RenameArgs) -> Result<ExitCode> {
    Store::open(root)?.containers().rename(&args.container, &args.new_name)?;
    Ok(ExitCode::SUCCESS)
}
