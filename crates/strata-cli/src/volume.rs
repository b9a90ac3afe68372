//! `strata volume …`: named and anonymous volumes in dockerd's layout, as docker lists,
//! shows and removes them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use strata::Store;

use crate::human;
use crate::template::ListFormat;

/// `strata volume …`.
#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume (a random name if none is given) and print its name.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes in the Engine API's JSON shape.
    Inspect(InspectArgs),
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every volume no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The volume's name.
    name: Option<String>,
    /// A label, KEY=VALUE; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The driver: only `local`.
    #[arg(short, long, default_value = "local")]
    driver: String,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Only volume names.
    #[arg(short, long)]
    quiet: bool,
    /// Filter: dangling=true|false, name=PART, label=KEY[=VALUE], driver=local.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Output format: table, json (the Engine API's volume objects), or a Go template
    /// (`{{.Name}}`, `table {{.Driver}}\t{{.Name}}`).
    #[arg(long = "format", default_value = "table")]
    list_format: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
    /// A Go template over each volume (`{{.Mountpoint}}`).
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
    /// No error for a volume that does not exist.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Only volumes with this label: label=KEY[=VALUE].
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

pub(crate) fn run(root: &Path, command: VolumeCommand) -> Result<ExitCode> {
    let store = Store::open(root)?;
    match command {
        VolumeCommand::Create(args) => {
            if args.driver != "local" {
                bail!("volume driver {:?} is not available: strata has only the local driver", args.driver);
            }
            let mut labels = BTreeMap::new();
            for label in &args.label {
                let (k, v) = label.split_once('=').unwrap_or((label, ""));
                labels.insert(k.to_owned(), v.to_owned());
            }
            let volume = strata::volume::VolumeStore::new(&store).create(args.name.as_deref(), Some(labels))?;
            println!("{}", volume.name);
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Ls(args) => ls(&store, args),
        VolumeCommand::Inspect(args) => inspect(&store, args),
        VolumeCommand::Rm(args) => {
            let containers = store.containers();
            let mut code = ExitCode::SUCCESS;
            for name in &args.volumes {
                match containers.remove_volume(name, args.force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("strata: {}", crate::describe(&e));
                        code = ExitCode::FAILURE;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(args) => {
            if !args.force
                && !crate::system::confirm(
                    "WARNING! This will remove all local volumes not used by at least one container.",
                )
            {
                return Ok(ExitCode::SUCCESS);
            }
            let (removed, freed) = store.containers().prune_volumes(&args.filter)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for name in &removed {
                    println!("{name}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human::size(freed));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ls(store: &Store, args: LsArgs) -> Result<ExitCode> {
    let list = store.containers().volumes(&args.filter)?;
    match &args.list_format {
        ListFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Template { text, table } => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|v| {
                    let labels: Vec<String> = v.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
                    serde_json::json!({
                        "Driver": v.driver, "Name": v.name, "Scope": v.scope,
                        "Mountpoint": v.mountpoint, "Labels": labels.join(","), "Links": "N/A", "Size": "N/A",
                    })
                })
                .collect();
            let headers = &[
                ("Driver", "DRIVER"),
                ("Name", "VOLUME NAME"),
                ("Scope", "SCOPE"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Labels", "LABELS"),
                ("Links", "LINKS"),
                ("Size", "SIZE"),
            ];
            print!("{}", crate::template::render(text, *table, &rows, headers)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Table => {}
    }
    if args.quiet {
        for v in &list {
            println!("{}", v.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list.iter().map(|v| vec![v.driver.to_owned(), v.name.clone()]).collect();
    print!("{}", human::table(&["DRIVER", "VOLUME NAME"], &rows));
    Ok(ExitCode::SUCCESS)
}

fn inspect(store: &Store, args: InspectArgs) -> Result<ExitCode> {
    let volumes = strata::volume::VolumeStore::new(store);
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in &args.volumes {
        match volumes.get(name) {
            Ok(v) => found.push(serde_json::to_value(v)?),
            Err(e) => {
                eprintln!("strata: {}", crate::describe(&e));
                code = ExitCode::FAILURE;
            }
        }
    }
    match &args.format {
        Some(template) => {
            for v in &found {
                println!("{}", crate::template::render_one(template, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(code)
}
