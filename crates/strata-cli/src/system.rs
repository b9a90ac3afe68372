//! `strata system df`: disk usage as `docker system df` shows it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use strata::Store;

use crate::Format;
use crate::human;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub(crate) enum SystemCommand {
    /// Show what images, containers, volumes and build cache take on disk.
    Df(DfArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DfArgs {
    /// Show every image and container.
    #[arg(short, long)]
    verbose: bool,
    /// Output format (json: the Engine API's `GET /system/df` shape).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn run(root: &Path, command: SystemCommand) -> Result<ExitCode> {
    match command {
        SystemCommand::Df(args) => df(root, args),
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
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
        return Ok(ExitCode::SUCCESS);
    }
    let active_images = usage.images.iter().filter(|i| i.containers > 0).count();
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
    if !args.verbose {
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
            vec!["Local Volumes".into(), "0".into(), "0".into(), "0B".into(), "0B".into()],
            vec!["Build Cache".into(), "0".into(), "0".into(), "0B".into(), "0B".into()],
        ];
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
    print!("{}", human::table(&["VOLUME NAME", "LINKS", "SIZE"], &[]));
    println!("\nBuild cache usage: 0B\n");
    print!("{}", human::table(&["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], &[]));
    Ok(ExitCode::SUCCESS)
}
