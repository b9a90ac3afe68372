//! `strata info`: the store and the machine, as `docker info` shows them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use strata::Store;

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Output format: json (the Engine API's `GET /info` shape, with strata's own under
    /// "Strata"), or a Go template (`{{.Driver}}`, `{{json .DriverStatus}}`).
    #[arg(short, long)]
    format: Option<String>,
}

pub(crate) fn run(root: &Path, args: InfoArgs) -> Result<ExitCode> {
    let info = Store::open(root)?.info()?;
    match args.format.as_deref() {
        Some("json") => {
            println!("{}", serde_json::to_string_pretty(&info)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(template) if template != "table" => {
            print!("{}", crate::template::render_one(template, &serde_json::to_value(&info)?)?);
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    println!("Containers: {}", info.containers);
    println!(" Running: {}", info.containers_running);
    println!(" Paused: {}", info.containers_paused);
    println!(" Stopped: {}", info.containers_stopped);
    println!("Images: {}", info.images);
    println!("Storage Driver: {}", info.driver);
    for [key, value] in &info.driver_status {
        println!(" {key}: {value}");
    }
    let s = &info.strata;
    println!(" Layers: {}", s.layers);
    let how = if s.lowerdir_plus { "lowerdir+, one layer at a time" } else { "one page of mount options" };
    println!(" Lower layers per mount: up to {} ({how})", s.max_lower_layers);
    let options: Vec<String> = s.overlay_options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(" OverlayFS options: {}", options.join(" "));
    println!(" State format: {}", s.state_version);
    let runtimes: Vec<String> = info.runtimes.keys().cloned().collect();
    println!("Runtimes: {}", runtimes.join(" "));
    for (name, runtime) in &info.runtimes {
        println!(" {name}: {} ({})", runtime.version, runtime.path);
    }
    println!("Default Runtime: {}", info.default_runtime);
    println!("Kernel Version: {}", info.kernel_version);
    println!("Operating System: {}", info.operating_system);
    println!("OSType: {}", info.os_type);
    println!("Architecture: {}", info.architecture);
    println!("CPUs: {}", info.ncpu);
    println!("Total Memory: {:.2}GiB", info.mem_total as f64 / (1u64 << 30) as f64);
    println!("Strata Root Dir: {}", info.root_dir.display());
    Ok(ExitCode::SUCCESS)
}
