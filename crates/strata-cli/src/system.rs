//! `strata system df`, and the prunes (`system prune`, `container prune`, `image prune`): disk
//! usage and its reclaiming, as docker shows and does them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use strata::Store;

use crate::human;
use crate::template::ListFormat;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum SystemCommand {
    /// Show what images, containers, volumes and build cache take on disk.
    Df(DfArgs),
    /// Remove stopped containers and dangling images (-a: every image no container uses).
    Prune(PruneArgs),
}

/// `strata container …`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum ContainerCommand {
    /// Remove every stopped container.
    Prune(ContainerPruneArgs),
}

/// `strata image …`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum ImageCommand {
    /// Remove dangling images (-a: every image no container uses).
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DfArgs {
    /// Show every image and container.
    #[arg(short, long)]
    verbose: bool,
    /// Output format: table, json (the Engine API's `GET /system/df` shape), or a Go template
    /// over the summary rows (`{{.Type}} {{.Size}}`, `{{json .}}`).
    #[arg(long = "format", default_value = "table")]
    list_format: crate::template::ListFormat,
}

pub(crate) fn run(root: &Path, command: SystemCommand) -> Result<ExitCode> {
    match command {
        SystemCommand::Df(args) => df(root, args),
        SystemCommand::Prune(args) => system_prune(root, args),
    }
}

/// `size (percent%)` as docker's formatter writes a reclaimable amount.
fn reclaimable(amount: u64, total: u64) -> String {
    match (amount * 100).checked_div(total) {
        Some(percent) => format!("{} ({percent}%)", human::size4(amount)),
        None => human::size4(amount),
    }
}

fn df(root: &Path, args: DfArgs) -> Result<ExitCode> {
    let usage = Store::open(root)?.disk_usage()?;
    if args.list_format == ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
        return Ok(ExitCode::SUCCESS);
    }
    let active_images = usage.images.iter().filter(|i| i.containers > 0).count();
    let volume_size = |v: &serde_json::Value| v["UsageData"]["Size"].as_u64().unwrap_or(0);
    let in_use = |v: &&serde_json::Value| v["UsageData"]["RefCount"].as_u64().unwrap_or(0) > 0;
    let volumes_active = usage.volumes.iter().filter(in_use).count();
    let volumes_size: u64 = usage.volumes.iter().map(volume_size).sum();
    let volumes_unused: u64 = usage.volumes.iter().filter(|v| !in_use(v)).map(volume_size).sum();
    // As docker's formatter: what the images in use hold alone is not reclaimable.
    let used: u64 = usage
        .images
        .iter()
        .filter(|i| i.containers != 0)
        .map(|i| i.virtual_size.saturating_sub(i.shared_size.max(0) as u64))
        .sum();
    let running = usage.containers.iter().filter(|c| c.summary.state == "running").count();
    let containers_size: u64 = usage.containers.iter().map(|c| c.size_rw).sum();
    let stopped_size: u64 = usage.containers.iter().filter(|c| c.summary.state != "running").map(|c| c.size_rw).sum();
    if !args.verbose || matches!(args.list_format, ListFormat::Template { .. }) {
        let rows = vec![
            vec![
                "Images".to_owned(),
                usage.images.len().to_string(),
                active_images.to_string(),
                human::size4(usage.layers_size),
                reclaimable(usage.layers_size.saturating_sub(used), usage.layers_size),
            ],
            vec![
                "Containers".to_owned(),
                usage.containers.len().to_string(),
                running.to_string(),
                human::size4(containers_size),
                reclaimable(stopped_size, containers_size),
            ],
            vec![
                "Local Volumes".into(),
                usage.volumes.len().to_string(),
                volumes_active.to_string(),
                human::size4(volumes_size),
                reclaimable(volumes_unused, volumes_size),
            ],
            vec!["Build Cache".into(), "0".into(), "0".into(), "0B".into(), "0B".into()],
        ];
        if let ListFormat::Template { text, table } = &args.list_format {
            let fields = ["Type", "TotalCount", "Active", "Size", "Reclaimable"];
            let contexts: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        fields.iter().map(|f| (*f).to_owned()).zip(row.iter().map(|c| c.clone().into())).collect(),
                    )
                })
                .collect();
            let headers = &[
                ("Type", "TYPE"),
                ("TotalCount", "TOTAL"),
                ("Active", "ACTIVE"),
                ("Size", "SIZE"),
                ("Reclaimable", "RECLAIMABLE"),
            ];
            print!("{}", crate::template::render(text, *table, &contexts, headers)?);
            return Ok(ExitCode::SUCCESS);
        }
        print!("{}", human::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows));
        return Ok(ExitCode::SUCCESS);
    }
    println!("Images space usage:\n");
    let rows: Vec<Vec<String>> = usage
        .images
        .iter()
        .map(|i| {
            let tag = i.repo_tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_else(|| "<none>:<none>".into());
            let (repo, tag) =
                tag.rsplit_once(':').map(|(r, t)| (r.to_owned(), t.to_owned())).unwrap_or((tag, String::new()));
            let shared = i.shared_size.max(0) as u64;
            vec![
                repo,
                tag,
                i.id.short(),
                human::ago(i.created),
                human::size4(i.virtual_size),
                human::size4(shared),
                human::size4(i.virtual_size - shared),
                i.containers.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        human::table(
            &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
            &rows
        )
    );
    println!("\nContainers space usage:\n");
    let rows: Vec<Vec<String>> = usage
        .containers
        .iter()
        .map(|c| {
            let s = &c.summary;
            vec![
                s.id[..12].to_owned(),
                s.image.clone(),
                format!("\"{}\"", human::ellipsis(&s.command, 20)),
                "0".to_owned(),
                human::size4(c.size_rw),
                human::ago(s.created),
                crate::container::status_text(s),
                s.names.first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        human::table(
            &["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
            &rows
        )
    );
    println!("\nLocal Volumes space usage:\n");
    let rows: Vec<Vec<String>> = usage
        .volumes
        .iter()
        .map(|v| {
            let name = v["Name"].as_str().unwrap_or_default().to_owned();
            let links = v["UsageData"]["RefCount"].as_u64().unwrap_or(0).to_string();
            vec![name, links, human::size4(v["UsageData"]["Size"].as_u64().unwrap_or(0))]
        })
        .collect();
    print!("{}", human::table(&["VOLUME NAME", "LINKS", "SIZE"], &rows));
    println!("\nBuild cache usage: 0B\n");
    print!("{}", human::table(&["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], &[]));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Images: remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ContainerPruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Ask as docker does; anything but y or Y (or no answer) is no.
pub(crate) fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y")
}

fn print_pruned(pruned: &strata::prune::Pruned, containers: bool, images: bool) {
    if containers && !pruned.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        pruned.containers_deleted.iter().for_each(|id| println!("{id}"));
        println!();
    }
    if images && !pruned.images_deleted.is_empty() {
        println!("Deleted Images:");
        for removed in &pruned.images_deleted {
            match removed {
                strata::image::Removed::Untagged(name) => println!("untagged: {name}"),
                strata::image::Removed::Deleted(id) => println!("deleted: {id}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human::size4(pruned.space_reclaimed));
}

pub(crate) fn container_prune(root: &Path, args: ContainerPruneArgs) -> Result<ExitCode> {
    if !args.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(ExitCode::SUCCESS);
    }
    print_pruned(&Store::open(root)?.prune_containers()?, true, false);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn image_prune(root: &Path, args: PruneArgs) -> Result<ExitCode> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning) {
        return Ok(ExitCode::SUCCESS);
    }
    print_pruned(&Store::open(root)?.prune_images(args.all)?, false, true);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn system_prune(root: &Path, args: PruneArgs) -> Result<ExitCode> {
    let images =
        if args.all { "all images without at least one container associated to them" } else { "all dangling images" };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - {images}\n  - all layers interrupted pulls kept to resume from\n"
    );
    if !args.force && !confirm(&warning) {
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(root)?;
    let mut pruned = store.prune_containers()?;
    let images = store.prune_images(args.all)?;
    pruned.images_deleted = images.images_deleted;
    pruned.space_reclaimed += images.space_reclaimed;
    // What interrupted pulls kept to resume from: as docker's prune takes its build cache.
    pruned.space_reclaimed += strata::registry::prune_partial_pulls(&store)?;
    print_pruned(&pruned, true, true);
    Ok(ExitCode::SUCCESS)
}
