//! The stages of a build and the images its steps write: a step that changes only the config
//! is written at once (no container, as no file changes); RUN, WORKDIR, COPY and ADD run in a
//! container of the current image and commit it. Before each step, the cache: a child of the
//! current image whose `container_config` equals the step's (dockerd's rule), so dockerd's
//! builds serve strata and the reverse.

use std::collections::HashMap;
use std::io::Write;
use std::time::SystemTime;

use super::args::BuildArgs;
use super::format::same_config;
use super::parser::{self, Instruction};
use super::{BuildOptions, Built};
use crate::container::ContainerStore;
use crate::error::{Error, Result};
use crate::image::{Child, ContainerConfig, ImageConfig, ImageId, ImageStore};
use crate::store::Store;

/// The default PATH a stage gets when its base sets none (dockerd's).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One stage: its FROM line and what follows.
pub(super) struct Stage {
    pub from: Instruction,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// Where a stage stands.
pub(super) struct State {
    /// The current image (`None`: `FROM scratch`, nothing yet).
    pub image: Option<ImageId>,
    /// Its config (history and layers for the next step).
    pub base: Option<ImageConfig>,
    /// The config the next image gets.
    pub config: ContainerConfig,
    pub args: BuildArgs,
    pub maintainer: String,
    /// A CMD was given in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl State {
    /// The shell that shell-form commands and `#(nop)` lines run under.
    pub fn shell(&self) -> Vec<String> {
        self.config.shell.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The environment words are expanded in: ENV, then the stage's ARGs it does not shadow.
    pub fn expansion_env(&self) -> Vec<(String, String)> {
        let env = self.config.env.clone().unwrap_or_default();
        let mut out: Vec<(String, String)> = env
            .iter()
            .map(|e| e.split_once('=').map_or((e.clone(), String::new()), |(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        out.extend(self.args.allowed_values(&env));
        out
    }
}

/// A build in progress.
pub(super) struct Builder<'a> {
    pub images: ImageStore,
    pub containers: ContainerStore,
    pub options: &'a BuildOptions,
    pub out: &'a mut dyn Write,
    pub escape: char,
    /// Images by the image they were built on (`None`: on nothing), for the cache.
    children: Option<HashMap<Option<ImageId>, Vec<ImageId>>>,
    pub created: Option<SystemTime>,
    step: usize,
    steps: usize,
    pub ran: usize,
    pub cached: usize,
    pub warnings: Vec<String>,
    /// The names of this build's step containers, kept where a later build finds them.
    steps_list: super::leftovers::StepList,
}

/// Build the Dockerfile of `options`; progress goes to `out` as docker prints it.
pub fn build(store: &Store, options: &BuildOptions, out: &mut dyn Write) -> Result<Built> {
    let file = &options.dockerfile_name;
    let parsed = parser::parse(&options.dockerfile).map_err(|e| Error::Build {
        file: file.clone(),
        line: e.line,
        instruction: String::new(),
        reason: e.message,
        status: None,
        source: None,
    })?;
    let mut meta = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in parsed.instructions {
        match (instruction.keyword().as_str(), stages.last_mut()) {
            ("from", _) => {
                let name = match instruction.args.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                    [_] => None,
                    _ => {
                        return Err(bad(file, &instruction, "FROM takes an image, then optionally AS and a name"));
                    }
                };
                if let Some(name) = &name {
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                    if !valid {
                        return Err(bad(
                            file,
                            &instruction,
                            &format!(
                                "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                            ),
                        ));
                    }
                    if stages.iter().any(|s| s.name.as_deref() == Some(name)) {
                        return Err(bad(file, &instruction, &format!("duplicate name {name:?}")));
                    }
                }
                stages.push(Stage { from: instruction, name, instructions: Vec::new() });
            }
            ("arg", None) => meta.push(instruction),
            (_, None) => {
                return Err(bad(
                    file,
                    &instruction,
                    "no build stage in current context: the file must begin with FROM (ARG may come before it)",
                ));
            }
            (_, Some(stage)) => stage.instructions.push(instruction),
        }
    }
    if stages.is_empty() {
        return Err(Error::Build {
            file: file.clone(),
            line: 0,
            instruction: String::new(),
            reason: "no FROM instruction: nothing to build".into(),
            status: None,
            source: None,
        });
    }
    let target = match &options.target {
        None => stages.len() - 1,
        Some(t) => stages.iter().position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase())).ok_or_else(|| {
            Error::Build {
                file: file.clone(),
                line: 0,
                instruction: String::new(),
                reason: format!("failed to reach build target {t} in Dockerfile: no stage is named so"),
                status: None,
                source: None,
            }
        })?,
    };
    stages.truncate(target + 1);
    let containers = store.containers();
    for name in super::leftovers::clean(store, &containers)? {
        tracing::info!("removed {name}, a step container of a build that was killed");
    }
    let steps_list = super::leftovers::StepList::begin(store)?;
    let needed = needed_stages(&stages, target);
    let created =
        options.source_date_epoch.map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64));
    let mut builder = Builder {
        images: store.images(),
        containers,
        options,
        out,
        escape: parsed.escape,
        children: None,
        created,
        step: 0,
        steps: meta.len()
            + stages
                .iter()
                .enumerate()
                .filter(|(i, _)| needed[*i])
                .map(|(_, s)| 1 + s.instructions.len())
                .sum::<usize>()
            + options.labels.len(),
        ran: 0,
        cached: 0,
        warnings: parsed.warnings.clone(),
        steps_list,
    };
    let mut args = BuildArgs::new(options.build_args.iter().cloned());
    // BuildKit's automatic platform ARGs: this machine builds for itself.
    let host = crate::image::Platform::host();
    for prefix in ["TARGET", "BUILD"] {
        args.predefine(&format!("{prefix}PLATFORM"), &host.to_string());
        args.predefine(&format!("{prefix}OS"), &host.os);
        args.predefine(&format!("{prefix}ARCH"), &host.architecture);
        args.predefine(&format!("{prefix}VARIANT"), host.variant.as_deref().unwrap_or_default());
    }
    for instruction in &meta {
        builder.announce(instruction)?;
        let env: Vec<(String, String)> = args.meta_values();
        for (key, value) in builder.arg_pairs(instruction, &env).map_err(|e| builder.wrap(instruction, e))? {
            args.add_meta(&key, value);
        }
    }
    let mut results: Vec<Option<ImageId>> = vec![None; stages.len()];
    for (index, stage) in stages.iter().enumerate() {
        if !needed[index] {
            continue;
        }
        let mut stage_args = args.clone();
        stage_args.new_stage();
        let (image, used) = builder.stage(&stages, &results, stage, stage_args, index == target)?;
        results[index] = image;
        args.merge_used(&used);
    }
    let Some(id) = results[target] else {
        return Err(Error::Build {
            file: file.clone(),
            line: 0,
            instruction: String::new(),
            reason: "no image was generated: the target stage is FROM scratch with no step".into(),
            status: None,
            source: None,
        });
    };
    for name in args.unused() {
        builder.warnings.push(format!("One or more build-args [{name}] were not consumed"));
    }
    if !options.tags.is_empty() {
        let mut writer = builder.images.writer()?;
        for tag in &options.tags {
            writer.tag(tag.clone().or_latest(), id)?;
        }
        writer.commit()?;
    }
    builder.line(&format!("Successfully built {}", &id.hex()[..12]))?;
    for tag in &options.tags {
        builder.line(&format!("Successfully tagged {}", tag.clone().or_latest()))?;
    }
    Ok(Built { id, steps_run: builder.ran, cached: builder.cached, warnings: builder.warnings })
}

fn bad(file: &str, instruction: &Instruction, reason: &str) -> Error {
    Error::Build {
        file: file.to_owned(),
        line: instruction.lines.0,
        instruction: shorten(&instruction.original),
        reason: reason.to_owned(),
        status: None,
        source: None,
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Which stages the target needs: itself, the stages it is FROM, the stages it copies from.
fn needed_stages(stages: &[Stage], target: usize) -> Vec<bool> {
    let find = |name: &str| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())).or_else(|| name.parse().ok())
    };
    let mut needed = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        let stage = &stages[i];
        if let Some(base) = stage.from.args.first().and_then(|b| find(b)).filter(|b| *b < i) {
            todo.push(base);
        }
        for instruction in &stage.instructions {
            for flag in &instruction.flags {
                if let Some(from) = flag.strip_prefix("--from=").and_then(find).filter(|f| *f < i) {
                    todo.push(from);
                }
            }
        }
    }
    needed
}

impl Builder<'_> {
    /// A line of progress.
    pub fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("write", "the build's output", e))
    }

    /// `Step N/M : INSTRUCTION`.
    pub fn announce(&mut self, instruction: &Instruction) -> Result<()> {
        self.step += 1;
        let text = format!("Step {}/{} : {}", self.step, self.steps, instruction.original.trim());
        self.line(&text)
    }

    /// An error of `instruction`, with the file and line.
    pub fn wrap(&self, instruction: &Instruction, e: Error) -> Error {
        match e {
            Error::Build { .. } => e,
            Error::BadOption { what: "instruction", value: _, reason } => {
                bad(&self.options.dockerfile_name, instruction, &reason)
            }
            other => Error::Build {
                file: self.options.dockerfile_name.clone(),
                line: instruction.lines.0,
                instruction: shorten(&instruction.original),
                reason: other.to_string(),
                status: None,
                source: Some(Box::new(other)),
            },
        }
    }

    /// One stage; returns its image.
    fn stage(
        &mut self,
        stages: &[Stage],
        results: &[Option<ImageId>],
        stage: &Stage,
        args: BuildArgs,
        last: bool,
    ) -> Result<(Option<ImageId>, BuildArgs)> {
        self.announce(&stage.from)?;
        let mut state = self.begin(stages, results, stage, args).map_err(|e| self.wrap(&stage.from, e))?;
        let triggers = state.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            self.line(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ))?;
            for trigger in &triggers {
                let parsed = parser::parse(trigger).map_err(|e| {
                    bad(
                        &self.options.dockerfile_name,
                        &stage.from,
                        &format!("ONBUILD trigger {trigger:?}: {}", e.message),
                    )
                })?;
                for instruction in &parsed.instructions {
                    if matches!(instruction.keyword().as_str(), "onbuild" | "from" | "maintainer") {
                        return Err(bad(
                            &self.options.dockerfile_name,
                            &stage.from,
                            &format!(
                                "{} isn't allowed as an ONBUILD trigger",
                                instruction.command.to_ascii_uppercase()
                            ),
                        ));
                    }
                    self.dispatch(&mut state, stages, results, instruction).map_err(|e| self.wrap(&stage.from, e))?;
                }
            }
        }
        for instruction in &stage.instructions {
            self.announce(instruction)?;
            self.dispatch(&mut state, stages, results, instruction).map_err(|e| self.wrap(instruction, e))?;
        }
        if last {
            let mut labels = self.options.labels.clone();
            labels.sort();
            for (key, value) in labels {
                let instruction = Instruction {
                    command: "LABEL".into(),
                    args: vec![key, value, "=".into()],
                    original: String::new(),
                    ..Instruction::default()
                };
                let shown = Instruction {
                    original: format!("LABEL {}={}", instruction.args[0], instruction.args[1]),
                    ..instruction.clone()
                };
                self.announce(&shown)?;
                self.dispatch(&mut state, stages, results, &instruction).map_err(|e| self.wrap(&shown, e))?;
            }
        }
        Ok((state.image, state.args))
    }

    /// FROM: the base image (or an earlier stage, or nothing), its config as the start.
    fn begin(
        &mut self,
        stages: &[Stage],
        results: &[Option<ImageId>],
        stage: &Stage,
        args: BuildArgs,
    ) -> Result<State> {
        let platform = stage.from.flags.iter().find_map(|f| f.strip_prefix("--platform="));
        for flag in &stage.from.flags {
            if !flag.starts_with("--platform=") {
                return Err(Error::BadOption {
                    what: "instruction",
                    value: flag.clone(),
                    reason: format!("unknown flag: {}", flag.split('=').next().unwrap_or(flag)),
                });
            }
        }
        let meta: Vec<(String, String)> = args.meta_values();
        let lexer = super::lex::Lexer::new(self.escape);
        if let Some(platform) = platform {
            let platform = lexer.word(platform, &meta).map_err(lex_error)?;
            let wanted: crate::image::Platform = platform.parse()?;
            if wanted.architecture != crate::image::host_arch() || wanted.os != "linux" {
                return Err(Error::BadOption {
                    what: "instruction",
                    value: platform.clone(),
                    reason: format!(
                        "this machine builds for linux/{} only: {platform} cannot be run here",
                        crate::image::host_arch()
                    ),
                });
            }
        }
        let raw = stage.from.args.first().cloned().unwrap_or_default();
        let base = lexer.word(&raw, &meta).map_err(lex_error)?;
        if base.is_empty() {
            return Err(Error::BadOption {
                what: "instruction",
                value: raw,
                reason: "the base name is empty after substitution (an ARG without a value?)".into(),
            });
        }
        let earlier = stages.iter().position(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()));
        let image = match earlier {
            Some(i) if results[i].is_some() => results[i],
            Some(_) => None,
            None if base.eq_ignore_ascii_case("scratch") => None,
            None if self.options.pull.is_some() => Some(self.pull(&base)?),
            None => Some(self.images.resolve(&base).map_err(|e| match e {
                Error::ImageNotFound(_) => Error::BadOption {
                    what: "instruction",
                    value: base.clone(),
                    reason: format!("no such image: {base}: pull it first (strata pull {base})"),
                },
                other => other,
            })?),
        };
        let base_config = image.map(|id| self.images.get(id)).transpose()?.map(|i| i.config);
        let mut config = base_config.as_ref().and_then(|c| c.config.clone()).unwrap_or_default();
        config.open_stdin = false;
        config.stdin_once = false;
        let env = config.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.into());
        }
        config.image = image.map(|i| i.to_string()).unwrap_or_default();
        if let Some(id) = image {
            self.line(&format!(" ---> {}", &id.hex()[..12]))?;
        }
        Ok(State { image, base: base_config, config, args, maintainer: String::new(), cmd_set: false })
    }

    /// `--pull`: the base image from its registry, as `strata pull` would fetch it.
    fn pull(&mut self, name: &str) -> Result<ImageId> {
        let registry = self.options.pull.as_ref().expect("asked to pull");
        let reference: crate::image::Reference = name.parse()?;
        let reference = reference.or_latest();
        let at = reference
            .tag()
            .map(str::to_owned)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        self.line(&format!("{at}: Pulling from {}", reference.path()))?;
        let pulled = crate::registry::pull(&self.images, &reference, registry, &Default::default(), &())?;
        self.line(&format!("Digest: {}", pulled.digest))?;
        let status = if pulled.up_to_date { "Image is up to date for" } else { "Downloaded newer image for" };
        self.line(&format!("Status: {status} {reference}"))?;
        Ok(pulled.id)
    }

    /// The cache's answer for a step with `probe` as its `container_config` on the current
    /// image: the newest such child.
    pub fn cached(&mut self, state: &State, probe: &ContainerConfig) -> Result<Option<ImageId>> {
        if self.options.no_cache {
            return Ok(None);
        }
        if self.children.is_none() {
            let mut children: HashMap<Option<ImageId>, Vec<ImageId>> = HashMap::new();
            for (child, parent) in self.images.image_parents()? {
                children.entry(Some(parent)).or_default().push(child);
            }
            self.children = Some(children);
        }
        let candidates = match state.image {
            Some(parent) => self.children.as_ref().and_then(|c| c.get(&Some(parent))).cloned().unwrap_or_default(),
            // On nothing: every image built locally with no parent.
            None => {
                let with_parent: std::collections::HashSet<ImageId> =
                    self.children.as_ref().map(|c| c.values().flatten().copied().collect()).unwrap_or_default();
                self.images
                    .imagedb
                    .list()?
                    .into_iter()
                    .filter(|id| !with_parent.contains(id) && self.images.imagedb.built_locally(*id))
                    .collect()
            }
        };
        let mut best: Option<(String, ImageId)> = None;
        for id in candidates {
            let Ok(image) = self.images.get_unnamed(id) else { continue };
            let Some(theirs) = &image.config.container_config else { continue };
            if same_config(theirs, probe) {
                let created = image.config.created.clone().unwrap_or_default();
                if best.as_ref().is_none_or(|(c, _)| created > *c) {
                    best = Some((created, id));
                }
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    /// Take the cache's image as this step's.
    pub fn use_cached(&mut self, state: &mut State, id: ImageId) -> Result<()> {
        self.line(" ---> Using cache")?;
        self.cached += 1;
        let image = self.images.get_unnamed(id)?;
        self.advance(state, id, image.config)
    }

    /// The step made `id` (its config `config`): the stage goes on from it.
    pub fn advance(&mut self, state: &mut State, id: ImageId, config: ImageConfig) -> Result<()> {
        if let Some(children) = &mut self.children {
            children.entry(state.image).or_default().push(id);
        }
        state.image = Some(id);
        state.base = Some(config);
        state.config.image = id.to_string();
        self.line(&format!(" ---> {}", &id.hex()[..12]))
    }

    /// A container of `image` for a step, named in the build's list first (so a killed build's
    /// are found); `options.cmd` is the step's command, as dockerd gives it. Returns its ID.
    pub fn step_container(&mut self, image: ImageId, options: crate::container::CreateOptions) -> Result<String> {
        let name = self.steps_list.next_name()?;
        let options = crate::container::CreateOptions {
            name: Some(name),
            runtime: self.options.runtime.clone(),
            network: self.options.network,
            ..options
        };
        let id = self.containers.create(&image.to_string(), &options)?.id().to_string();
        crate::failpoint::hit("build.step");
        Ok(id)
    }

    /// The creation time of a new step.
    pub fn created_text(&self) -> String {
        match self.created {
            Some(t) => crate::image::config::format_rfc3339(
                jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            ),
            None => crate::image::now_rfc3339(),
        }
    }

    /// A step that changes the config only (`#(nop)`): probed, then written with no layer
    /// and no container, naming a container ID as dockerd's (which made and dropped one).
    pub fn meta_step(&mut self, state: &mut State, comment: &str) -> Result<()> {
        let mut probe = state.config.clone();
        let mut cmd = state.shell();
        cmd.extend(["#(nop) ".to_owned(), comment.to_owned()]);
        probe.cmd = Some(cmd);
        if let Some(hit) = self.cached(state, &probe)? {
            return self.use_cached(state, hit);
        }
        let container = (self.options.source_date_epoch.is_none()).then(|| crate::id::LayerId::random().to_string());
        let mut container_config = probe.clone();
        if let Some(id) = &container {
            container_config.hostname = id[..12].to_owned();
        }
        container_config.labels.get_or_insert_with(Default::default);
        let mut config = state.config.clone();
        config.image = state.image.map(|i| i.to_string()).unwrap_or_default();
        let created = self.created_text();
        let created_by = probe.cmd.as_ref().map(|c| c.join(" ")).unwrap_or_default();
        let child = Child {
            parent: state.base.as_ref(),
            author: &state.maintainer,
            config: &config,
            container: container.as_deref(),
            container_config: &container_config,
            created: &created,
            created_by: &created_by,
            comment: "",
            diff_id: None,
        };
        let bytes = child.to_bytes();
        let mut writer = self.images.writer()?;
        let id = writer.image(&bytes, state.image)?;
        writer.built_locally(id)?;
        writer.commit()?;
        self.ran += 1;
        let parsed = ImageConfig::parse(&bytes, "the new image")?;
        self.advance(state, id, parsed)
    }
}

pub(super) fn lex_error(e: super::lex::LexError) -> Error {
    Error::BadOption { what: "instruction", value: String::new(), reason: e.0 }
}
