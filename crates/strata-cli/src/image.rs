//! The image commands: `images`, `history`, `inspect`, `tag`, `rmi`, `load`, `save`, `import`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use strata::Store;
use strata::image::{ImageStore, ImportOptions, LayerEvent, Progress, Reference, Removed, SaveFormat};

use crate::Format;
use crate::human;

#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    /// Only images of this repository (and tag): a pattern as in `reference=`.
    reference: Option<String>,
    /// Show all images (also the untagged parents of built images).
    #[arg(short, long)]
    all: bool,
    /// Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Output format: table, json (the Engine API's `GET /images/json`), or a Go template
    /// (`{{.Repository}}:{{.Tag}}`, `{{json .}}`, `table {{.ID}}\t{{.Size}}`).
    #[arg(long = "format", default_value = "table")]
    list_format: crate::template::ListFormat,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show full image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Show digests (the manifests the images were pulled or pushed as).
    #[arg(long)]
    digests: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The image (name or ID).
    image: String,
    /// Show full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Show sizes in bytes and times as RFC 3339.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table, json (the Engine API's `GET /images/{name}/history`), or a Go
    /// template (`{{.ID}} {{.CreatedBy}}`, `table {{.CreatedBy}}\t{{.Size}}`).
    #[arg(long = "format", default_value = "table")]
    list_format: crate::template::ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The containers or images (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Print each one through a Go template (`{{.State.Status}}`, `{{json .Config}}`).
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// The image (name or ID).
    source: String,
    /// The new name, NAME[:TAG].
    target: Reference,
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    /// The images (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove an image with several names, or one a stopped container uses.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// The archive: a `docker save` tar, an OCI layout directory or tar (default: stdin).
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// No progress display.
    #[arg(short, long)]
    quiet: bool,
    /// Output format (json: the images loaded, and how many layers were new).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Archive layouts of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum ArchiveFormat {
    /// What `docker save` writes.
    #[default]
    Docker,
    /// An OCI image layout (with a manifest.json, so `docker load` reads it too).
    Oci,
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// The images (names or IDs); a name without a tag saves every tag of that repository.
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file (default: stdout, unless it is a terminal).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The archive's layout.
    #[arg(long, value_enum, default_value_t)]
    format: ArchiveFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The root filesystem: a tar (plain, gzip or zstd; `-` for stdin) or a directory.
    source: PathBuf,
    /// Name the image NAME[:TAG].
    name: Option<Reference>,
    /// The commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// ONBUILD, USER, VOLUME, WORKDIR); repeatable.
    #[arg(short, long)]
    change: Vec<String>,
}

fn images(root: &Path) -> Result<ImageStore> {
    Ok(Store::open(root)?.images())
}

/// The header of each field of an `images` row, as docker names them.
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("Containers", "CONTAINERS"),
];

/// An image's rows as docker lists them: one per tag, the repository's digests beside it
/// (a row per digest) with `--digests`, and a `<none>` tag row for a repository named only
/// by digest. Returns (repository, tag, digest).
fn name_rows(image: &strata::image::ImageSummary, digests: bool) -> Vec<(String, String, String)> {
    let split = |name: &str, at: char| match name.rsplit_once(at) {
        Some((r, t)) if !t.contains('/') => (r.to_owned(), t.to_owned()),
        _ => (name.to_owned(), "<none>".to_owned()),
    };
    let mut by_repo: Vec<(String, Vec<String>)> = Vec::new();
    for (repo, digest) in image.repo_digests.iter().flatten().map(|d| split(d, '@')) {
        match by_repo.iter_mut().find(|(r, _)| *r == repo) {
            Some((_, list)) => list.push(digest),
            None => by_repo.push((repo, vec![digest])),
        }
    }
    let mut rows = Vec::new();
    let mut tagged = Vec::new();
    for (repo, tag) in image.repo_tags.iter().flatten().map(|t| split(t, ':')) {
        let repo_digests = by_repo.iter().find(|(r, _)| *r == repo).map(|(_, d)| d.clone()).unwrap_or_default();
        tagged.push(repo.clone());
        if !digests || repo_digests.is_empty() {
            rows.push((repo, tag, "<none>".to_owned()));
        } else {
            rows.extend(repo_digests.into_iter().map(|d| (repo.clone(), tag.clone(), d)));
        }
    }
    for (repo, list) in by_repo.into_iter().filter(|(r, _)| !tagged.contains(r)) {
        if digests {
            rows.extend(list.into_iter().map(|d| (repo.clone(), "<none>".to_owned(), d)));
        } else {
            rows.push((repo, "<none>".to_owned(), "<none>".to_owned()));
        }
    }
    rows
}

/// The rows `images --format` renders for an image (see `name_rows`), with docker's fields.
fn image_rows(image: &strata::image::ImageSummary, no_trunc: bool, digests: bool) -> Vec<serde_json::Value> {
    name_rows(image, digests)
        .into_iter()
        .map(|(repo, tag, digest)| {
            serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": human::go_time(image.created),
                "CreatedSince": human::ago(image.created),
                "Digest": digest,
                "ID": short(&image.id.to_string(), no_trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human::size(image.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human::size(image.virtual_size),
            })
        })
        .collect()
}

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc { id.to_owned() } else { id.trim_start_matches("sha256:").chars().take(12).collect() }
}

pub(crate) fn list(root: &Path, args: ImagesArgs) -> Result<ExitCode> {
    let mut filters = strata::image::ImageFilters::parse(&args.filter)?;
    if let Some(reference) = &args.reference {
        filters = filters.with_reference(reference);
    }
    let list = images(root)?.list_filtered(args.all, &filters)?;
    use crate::template::ListFormat;
    match &args.list_format {
        ListFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Template { text, table } => {
            let rows: Vec<serde_json::Value> =
                list.iter().flat_map(|i| image_rows(i, args.no_trunc, args.digests)).collect();
            print!("{}", crate::template::render(text, *table, &rows, IMAGE_HEADERS)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Table => {}
    }
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for image in &list {
            if seen.insert(image.id) {
                println!("{}", short(&image.id.to_string(), args.no_trunc));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for image in &list {
        let id = short(&image.id.to_string(), args.no_trunc);
        for (repo, tag, digest) in name_rows(image, args.digests) {
            let mut row = vec![repo, tag];
            if args.digests {
                row.push(digest);
            }
            row.extend([id.clone(), human::ago(image.created), human::size(image.size)]);
            rows.push(row);
        }
    }
    let headers: &[&str] = if args.digests {
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    print!("{}", human::table(headers, &rows));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn history(root: &Path, args: HistoryArgs) -> Result<ExitCode> {
    let rows = images(root)?.history(&args.image)?;
    use crate::template::ListFormat;
    match &args.list_format {
        ListFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Template { text, table } => {
            let contexts: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let created_by = r.created_by.replace('\t', " ");
                    let created_at = jiff::Timestamp::from_second(r.created).map(|t| t.to_string()).unwrap_or_default();
                    serde_json::json!({
                        "ID": if r.id == "<missing>" { r.id.clone() } else { short(&r.id, args.no_trunc) },
                        "CreatedAt": created_at,
                        "CreatedSince": if args.human { human::ago(r.created) } else { created_at.clone() },
                        "CreatedBy": if args.no_trunc { created_by } else { human::ellipsis(&created_by, 45) },
                        "Size": if args.human { human::size(r.size) } else { r.size.to_string() },
                        "Comment": r.comment,
                    })
                })
                .collect();
            let headers = &[
                ("ID", "IMAGE"),
                ("CreatedAt", "CREATED AT"),
                ("CreatedSince", "CREATED"),
                ("CreatedBy", "CREATED BY"),
                ("Size", "SIZE"),
                ("Comment", "COMMENT"),
            ];
            print!("{}", crate::template::render(text, *table, &contexts, headers)?);
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Table => {}
    }
    if args.quiet {
        for row in &rows {
            println!("{}", if row.id == "<missing>" { row.id.clone() } else { short(&row.id, args.no_trunc) });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let id = if r.id == "<missing>" { r.id.clone() } else { short(&r.id, args.no_trunc) };
            let created_by = r.created_by.replace('\t', " ");
            let created_by = if args.no_trunc { created_by } else { human::ellipsis(&created_by, 45) };
            let (created, size) = if args.human {
                (human::ago(r.created), human::size(r.size))
            } else {
                let t = jiff::Timestamp::from_second(r.created).map(|t| t.to_string()).unwrap_or_default();
                (t, r.size.to_string())
            };
            vec![id, created, created_by, size, r.comment.clone()]
        })
        .collect();
    print!("{}", human::table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &table));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn inspect(root: &Path, args: InspectArgs) -> Result<ExitCode> {
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Inspected {
        Container(Box<strata::container::ContainerInspect>),
        Image(Box<strata::image::ImageInspect>),
    }
    let store = Store::open(root)?;
    let (containers, images) = (store.containers(), store.images());
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in &args.images {
        // As `docker inspect`: a container by that name or ID first, then an image.
        let result = match containers.inspect(name) {
            Ok(c) => Ok(Inspected::Container(Box::new(c))),
            Err(strata::Error::ContainerNotFound(_) | strata::Error::InvalidId { .. }) => match images.inspect(name) {
                Err(strata::Error::ImageNotFound(_) | strata::Error::InvalidReference { .. }) => {
                    eprintln!("strata: no such container or image: {}", crate::one_line(name));
                    code = ExitCode::FAILURE;
                    continue;
                }
                other => other.map(|i| Inspected::Image(Box::new(i))),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(i) => found.push(i),
            Err(e) => {
                eprintln!("strata: {}", crate::describe(&e));
                code = ExitCode::FAILURE;
            }
        }
    }
    if let Some(template) = &args.format {
        for item in &found {
            print!("{}", crate::template::render_one(template, &serde_json::to_value(item)?)?);
        }
        return Ok(code);
    }
    // As `docker inspect`: a JSON array, indented by four spaces.
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    serde::Serialize::serialize(&found, &mut serde_json::Serializer::with_formatter(&mut out, formatter))?;
    println!("{}", String::from_utf8(out)?);
    Ok(code)
}

pub(crate) fn tag(root: &Path, args: TagArgs) -> Result<ExitCode> {
    images(root)?.tag(&args.source, args.target)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rmi(root: &Path, args: RmiArgs) -> Result<ExitCode> {
    let store = images(root)?;
    let mut code = ExitCode::SUCCESS;
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    for result in store.remove_each(&names, args.force)? {
        match result {
            Ok(removed) => {
                for r in removed {
                    match r {
                        Removed::Untagged(n) => println!("Untagged: {n}"),
                        Removed::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("strata: {}", crate::describe(&e));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

pub(crate) fn load(root: &Path, args: LoadArgs) -> Result<ExitCode> {
    let store = images(root)?;
    let bars = Bars::new(args.quiet);
    let loaded = store.load(&args.input, &bars)?;
    drop(bars);
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&loaded)?);
        return Ok(ExitCode::SUCCESS);
    }
    for image in &loaded.images {
        if image.names.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for name in &image.names {
            println!("Loaded image: {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn save(root: &Path, args: SaveArgs) -> Result<ExitCode> {
    let store = images(root)?;
    let format = match args.format {
        ArchiveFormat::Docker => SaveFormat::Docker,
        ArchiveFormat::Oci => SaveFormat::Oci,
    };
    match &args.output {
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let stdout = std::io::stdout();
            store.save(&args.images, std::io::BufWriter::with_capacity(1 << 20, stdout), format)?;
        }
        Some(path) => {
            // Written aside and renamed, so a failed save leaves no half archive.
            let name = path.file_name().context("-o needs a file name")?.to_string_lossy().into_owned();
            let tmp = path.with_file_name(format!(".{name}.strata-tmp-{}", std::process::id()));
            let result = (|| -> Result<()> {
                let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                store.save(&args.images, &mut out, format)?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(root: &Path, args: ImportArgs) -> Result<ExitCode> {
    let options = ImportOptions { message: args.message, changes: args.change };
    let id = images(root)?.import(&args.source, args.name, &options)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// One progress bar per layer being extracted, on a terminal.
struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let multi = (!quiet && std::io::stderr().is_terminal()).then(MultiProgress::new);
        Bars { multi, bars: Mutex::new(HashMap::new()) }
    }
}

impl Progress for Bars {
    fn event(&self, event: LayerEvent) {
        let Some(multi) = &self.multi else { return };
        let mut bars = self.bars.lock().expect("not poisoned");
        match event {
            LayerEvent::Exists { diff_id, .. } => {
                let _ = multi.println(format!("{}: Already exists", &diff_id.hex()[..12]));
            }
            LayerEvent::Started { index, diff_id, size, .. } => {
                let bar = multi.add(ProgressBar::new(size.unwrap_or(0)));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: Loading layer [{bar:40}] {decimal_bytes}/{decimal_total_bytes}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(diff_id.hex()[..12].to_owned());
                bars.insert(index, bar);
            }
            LayerEvent::Read { index, bytes } => {
                if let Some(bar) = bars.get(&index) {
                    bar.set_position(bytes);
                }
            }
            LayerEvent::Done { index } => {
                if let Some(bar) = bars.get(&index) {
                    bar.finish();
                }
            }
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        let _ = std::io::stderr().flush();
    }
}
