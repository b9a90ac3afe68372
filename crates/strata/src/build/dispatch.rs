//! Each instruction's step: how it changes the config, the `#(nop)` text dockerd's builder
//! records for it, and the steps that run a container (RUN, WORKDIR).

use std::collections::BTreeMap;

use super::builder::{Builder, Stage, State, lex_error};
use super::format::{Health, go_list, go_quoted_list, parse_go_duration};
use super::lex::Lexer;
use super::parser::Instruction;
use crate::container::{CommitOptions, CreateOptions};
use crate::error::{Error, Result};
use crate::image::ImageId;

fn refuse(reason: impl Into<String>) -> Error {
    Error::BadOption { what: "instruction", value: String::new(), reason: reason.into() }
}

/// The flags an instruction may take; any other is refused.
fn check_flags(instruction: &Instruction, allowed: &[&str]) -> Result<()> {
    for flag in &instruction.flags {
        let name = flag.trim_start_matches('-').split('=').next().unwrap_or_default();
        if !allowed.contains(&name) {
            return Err(refuse(match instruction.keyword().as_str() {
                "run" if ["mount", "network", "security", "device"].contains(&name) => {
                    format!("RUN --{name} is not supported by strata's builder yet")
                }
                _ => format!("unknown flag: --{name}"),
            }));
        }
    }
    Ok(())
}

/// The value of `--name=` among the flags.
pub(super) fn flag<'a>(instruction: &'a Instruction, name: &str) -> Option<&'a str> {
    instruction
        .flags
        .iter()
        .rev()
        .find_map(|f| f.strip_prefix("--").and_then(|f| f.strip_prefix(name)).and_then(|f| f.strip_prefix('=')))
}

impl Builder<'_> {
    fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// One word, substituted with the stage's variables.
    pub(super) fn word(&self, state: &State, word: &str) -> Result<String> {
        self.lexer().word(word, &state.expansion_env()).map_err(lex_error)
    }

    /// ARG's `name[=default]` pairs, defaults substituted from `env`.
    pub(super) fn arg_pairs(
        &self,
        instruction: &Instruction,
        env: &[(String, String)],
    ) -> Result<Vec<(String, Option<String>)>> {
        check_flags(instruction, &[])?;
        if instruction.args.is_empty() {
            return Err(refuse("ARG requires at least one argument"));
        }
        let lexer = self.lexer();
        let env = env.to_vec();
        let mut out = Vec::new();
        for word in &instruction.args {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(lexer.word(v, &env).map_err(lex_error)?)),
                None => (word.as_str(), None),
            };
            if key.is_empty() {
                return Err(refuse(format!("ARG names must not be empty: {word:?}")));
            }
            out.push((key.to_owned(), value));
        }
        Ok(out)
    }

    /// Carry out one instruction of a stage.
    pub(super) fn dispatch(
        &mut self,
        state: &mut State,
        stages: &[Stage],
        results: &[Option<ImageId>],
        instruction: &Instruction,
    ) -> Result<()> {
        let keyword = instruction.keyword();
        match keyword.as_str() {
            "env" | "label" => {
                check_flags(instruction, &[])?;
                if instruction.args.is_empty() {
                    return Err(refuse(format!("{} requires at least one argument", keyword.to_ascii_uppercase())));
                }
                let env = state.expansion_env();
                let lexer = self.lexer();
                let mut pairs = Vec::new();
                for triple in instruction.args.chunks(3) {
                    let key = lexer.word(&triple[0], &env).map_err(lex_error)?;
                    let value = lexer.word(&triple[1], &env).map_err(lex_error)?;
                    if key.is_empty() {
                        return Err(refuse(format!("{} names can not be blank", keyword.to_ascii_uppercase())));
                    }
                    pairs.push((key, value));
                }
                let mut comment = keyword.to_ascii_uppercase();
                for (key, value) in pairs {
                    comment.push_str(&format!(" {key}={value}"));
                    if keyword == "env" {
                        let env = state.config.env.get_or_insert_with(Vec::new);
                        let entry = format!("{key}={value}");
                        match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == key) {
                            Some(existing) => *existing = entry,
                            None => env.push(entry),
                        }
                    } else {
                        state.config.labels.get_or_insert_with(BTreeMap::new).insert(key, value);
                    }
                }
                self.meta_step(state, &comment)
            }
            "arg" => {
                let pairs = self.arg_pairs(instruction, &state.expansion_env())?;
                let mut comment = String::from("ARG");
                for (key, value) in pairs {
                    comment.push(' ');
                    comment.push_str(&key);
                    if let Some(v) = &value {
                        comment.push('=');
                        comment.push_str(v);
                    }
                    state.args.add(&key, value);
                }
                self.meta_step(state, &comment)
            }
            "maintainer" => {
                check_flags(instruction, &[])?;
                let name = instruction
                    .args
                    .first()
                    .cloned()
                    .ok_or_else(|| refuse("MAINTAINER requires exactly one argument"))?;
                state.maintainer = name.clone();
                self.meta_step(state, &format!("MAINTAINER {name}"))
            }
            "user" | "stopsignal" => {
                check_flags(instruction, &[])?;
                let raw = instruction
                    .args
                    .first()
                    .ok_or_else(|| refuse(format!("{} requires exactly one argument", keyword.to_ascii_uppercase())))?;
                let value = self.word(state, raw)?;
                if keyword == "user" {
                    state.config.user = value.clone();
                    self.meta_step(state, &format!("USER {value}"))
                } else {
                    crate::container::parse_signal(&value).map_err(|_| refuse(format!("invalid signal: {value}")))?;
                    state.config.stop_signal = value.clone();
                    self.meta_step(state, &format!("STOPSIGNAL {value}"))
                }
            }
            "expose" => {
                check_flags(instruction, &[])?;
                if instruction.args.is_empty() {
                    return Err(refuse("EXPOSE requires at least one argument"));
                }
                let env = state.expansion_env();
                let mut words = Vec::new();
                for raw in &instruction.args {
                    words.extend(self.lexer().words(raw, &env).map_err(lex_error)?);
                }
                let ports = state.config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for word in &words {
                    for port in parse_ports(word)? {
                        ports.insert(port, serde_json::json!({}));
                    }
                }
                words.sort();
                self.meta_step(state, &format!("EXPOSE {}", words.join(" ")))
            }
            "volume" => {
                check_flags(instruction, &[])?;
                if instruction.args.is_empty() {
                    return Err(refuse("VOLUME requires at least one argument"));
                }
                let mut volumes = Vec::new();
                for raw in &instruction.args {
                    let v = self.word(state, raw)?;
                    if v.trim().is_empty() {
                        return Err(refuse("VOLUME specified can not be an empty string"));
                    }
                    state.config.volumes.get_or_insert_with(BTreeMap::new).insert(v.clone(), serde_json::json!({}));
                    volumes.push(v);
                }
                self.meta_step(state, &format!("VOLUME {}", go_list(&volumes)))
            }
            "cmd" | "entrypoint" => {
                check_flags(instruction, &[])?;
                let cmd = self.command_line(state, instruction);
                if keyword == "cmd" {
                    state.config.cmd = Some(cmd.clone());
                    if !instruction.args.is_empty() {
                        state.cmd_set = true;
                    }
                    self.meta_step(state, &format!("CMD {}", go_quoted_list(&cmd)))
                } else {
                    state.config.entrypoint = Some(cmd.clone());
                    if !state.cmd_set {
                        state.config.cmd = None;
                    }
                    self.meta_step(state, &format!("ENTRYPOINT {}", go_quoted_list(&cmd)))
                }
            }
            "shell" => {
                check_flags(instruction, &[])?;
                if !instruction.json || instruction.args.is_empty() {
                    return Err(refuse("SHELL requires the arguments to be in JSON form"));
                }
                state.config.shell = Some(instruction.args.clone());
                self.meta_step(state, &format!("SHELL {}", go_list(&instruction.args)))
            }
            "healthcheck" => {
                let health = self.healthcheck(instruction)?;
                state.config.healthcheck = Some(health.to_json());
                self.meta_step(state, &format!("HEALTHCHECK {}", health.history()))
            }
            "onbuild" => {
                check_flags(instruction, &[])?;
                let Some(sub) = &instruction.sub else { return Err(refuse("ONBUILD requires at least one argument")) };
                let sub_keyword = sub.keyword();
                if matches!(sub_keyword.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(refuse(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        sub_keyword.to_ascii_uppercase()
                    )));
                }
                let text = instruction.original.trim();
                let expression = text[instruction.command.len()..].trim().to_owned();
                state.config.on_build.get_or_insert_with(Vec::new).push(expression.clone());
                self.meta_step(state, &format!("ONBUILD {expression}"))
            }
            "workdir" => {
                check_flags(instruction, &[])?;
                let raw = instruction.args.first().ok_or_else(|| refuse("WORKDIR requires exactly one argument"))?;
                let path = self.word(state, raw)?;
                let dir = if path.starts_with('/') {
                    path
                } else {
                    format!(
                        "{}/{path}",
                        if state.config.working_dir.is_empty() { "/" } else { &state.config.working_dir }
                    )
                };
                state.config.working_dir = crate::gopath::clean(&dir);
                self.workdir(state)
            }
            "run" => self.run(state, instruction),
            "copy" | "add" => self.copy(state, stages, results, instruction),
            "from" => Err(refuse("FROM is not allowed here")),
            other => Err(refuse(format!("unknown instruction: {}", other.to_ascii_uppercase()))),
        }
    }

    /// CMD, ENTRYPOINT, RUN: exec form as given, shell form under the stage's shell.
    fn command_line(&self, state: &State, instruction: &Instruction) -> Vec<String> {
        if instruction.json {
            return instruction.args.clone();
        }
        let mut line = instruction.args.first().cloned().unwrap_or_default();
        if let Some(doc) = instruction.heredocs.first() {
            // BuildKit: a lone heredoc is the script; otherwise the shell reads the heredoc.
            let only =
                line.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(['\'', '"']) == doc.name;
            if instruction.heredocs.len() == 1 && only {
                line = doc.content.clone();
            } else {
                for doc in &instruction.heredocs {
                    line = format!("{line}\n{}{}", doc.content, doc.name);
                }
            }
        }
        if instruction.args.is_empty() && instruction.heredocs.is_empty() {
            return Vec::new();
        }
        let mut cmd = state.shell();
        cmd.push(line);
        cmd
    }

    fn healthcheck(&self, instruction: &Instruction) -> Result<Health> {
        check_flags(instruction, &["interval", "timeout", "start-period", "retries"])?;
        let kind = instruction
            .args
            .first()
            .map(|k| k.to_ascii_uppercase())
            .ok_or_else(|| refuse("HEALTHCHECK requires an argument"))?;
        let mut health = Health::default();
        match kind.as_str() {
            "NONE" => {
                if instruction.args.len() > 1 || !instruction.flags.is_empty() {
                    return Err(refuse("HEALTHCHECK NONE takes no arguments"));
                }
                health.test = vec!["NONE".into()];
                return Ok(health);
            }
            "CMD" => {}
            other => return Err(refuse(format!("unknown type {other:?} in HEALTHCHECK (try CMD)"))),
        }
        let rest = &instruction.args[1..];
        if rest.is_empty() {
            return Err(refuse("missing command after HEALTHCHECK CMD"));
        }
        health.test = match instruction.json {
            true => std::iter::once("CMD".to_owned()).chain(rest.iter().cloned()).collect(),
            false => vec!["CMD-SHELL".into(), rest[0].clone()],
        };
        let duration = |name: &str| -> Result<i64> {
            match flag(instruction, name) {
                None => Ok(0),
                Some(text) => match parse_go_duration(text) {
                    Some(d) if d == 0 || d >= 1_000_000 => Ok(d),
                    Some(_) => Err(refuse(format!("Interval {name:?} cannot be less than 1ms"))),
                    None => Err(refuse(format!("invalid duration for --{name}: {text}"))),
                },
            }
        };
        health.interval = duration("interval")?;
        health.timeout = duration("timeout")?;
        health.start_period = duration("start-period")?;
        if let Some(retries) = flag(instruction, "retries") {
            health.retries = retries.parse().map_err(|_| refuse(format!("invalid --retries: {retries}")))?;
            if health.retries < 1 {
                return Err(refuse("--retries cannot be 0 or negative"));
            }
        }
        Ok(health)
    }

    /// RUN: a container of the current image runs the command, then is committed.
    fn run(&mut self, state: &mut State, instruction: &Instruction) -> Result<()> {
        check_flags(instruction, &[])?;
        let cmd = self.command_line(state, instruction);
        if cmd.is_empty() {
            return Err(refuse("RUN requires at least one argument"));
        }
        let Some(image) = state.image else {
            return Err(refuse("RUN needs a base image with a shell: this stage is FROM scratch"));
        };
        let env = state.config.env.clone().unwrap_or_default();
        let build_env = state.args.allowed_values(&env);
        let mut saved = cmd.clone();
        if !build_env.is_empty() {
            let shown: Vec<String> =
                build_env.iter().filter(|(k, _)| state.args.shown(k)).map(|(k, v)| format!("{k}={v}")).collect();
            let mut prefixed = vec![format!("|{}", shown.len())];
            prefixed.extend(shown);
            prefixed.extend(cmd.iter().cloned());
            saved = prefixed;
        }
        let mut probe = state.config.clone();
        probe.cmd = Some(saved.clone());
        probe.entrypoint = None;
        if let Some(hit) = self.cached(state, &probe)? {
            return self.use_cached(state, hit);
        }
        let options = CreateOptions {
            cmd: cmd.clone(),
            entrypoint: Some(Vec::new()),
            env: build_env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ..CreateOptions::default()
        };
        let id = self.step_container(image, options)?;
        self.line(&format!(" ---> Running in {}", &id[..12]))?;
        let status = self.containers.start(&id);
        let committed = match status {
            Ok(0) => self.commit(state, &id, &saved.join(" "), probe, false),
            Ok(code) => Err(Error::Build {
                file: self.options.dockerfile_name.clone(),
                line: instruction.lines.0,
                instruction: instruction.original.trim().chars().take(80).collect(),
                reason: format!("the command '{}' returned a non-zero code: {code}", cmd.join(" ")),
                status: Some(code),
                source: None,
            }),
            Err(e) => Err(e),
        };
        let (new, config) = self.finish_container(&id, committed, true)?;
        self.ran += 1;
        self.advance(state, new, config)
    }

    /// WORKDIR: the directory is made in a container of the current image (root's, 0755)
    /// and committed, as dockerd does.
    fn workdir(&mut self, state: &mut State) -> Result<()> {
        let comment = format!("WORKDIR {}", state.config.working_dir);
        let mut probe = state.config.clone();
        let mut cmd = state.shell();
        cmd.push(format!("#(nop) {comment}"));
        probe.cmd = Some(cmd.clone());
        if let Some(hit) = self.cached(state, &probe)? {
            return self.use_cached(state, hit);
        }
        let Some(image) = state.image else {
            return self.meta_step(state, &comment);
        };
        let id =
            self.step_container(image, crate::container::CreateOptions { cmd: cmd.clone(), ..Default::default() })?;
        self.line(&format!(" ---> Running in {}", &id[..12]))?;
        let made = (|| {
            let root = self.containers.mount(&id)?;
            let dir =
                crate::container::user::Rootfs::open(&root).and_then(|r| r.working_dir(&state.config.working_dir));
            let unmounted = self.containers.unmount(&id);
            dir?;
            unmounted?;
            let mut container_config = probe.clone();
            if self.options.source_date_epoch.is_none() {
                container_config.hostname = id[..12].to_owned();
            }
            container_config.labels.get_or_insert_with(Default::default);
            self.commit(state, &id, &cmd.join(" "), container_config, false)
        })();
        let (new, config) = self.finish_container(&id, made, true)?;
        self.ran += 1;
        self.advance(state, new, config)
    }

    /// Commit a step's container: the stage's config, `probe` as `container_config`.
    pub(super) fn commit(
        &self,
        state: &State,
        id: &str,
        created_by: &str,
        container_config: crate::image::ContainerConfig,
        anonymous: bool,
    ) -> Result<(ImageId, crate::image::ImageConfig)> {
        let mut config = state.config.clone();
        config.image = state.image.map(|i| i.to_string()).unwrap_or_default();
        if let Some(epoch) = self.options.source_date_epoch {
            let container = self.containers.get(id.parse()?)?;
            super::files::clamp_mtimes(&self.images.layers.diff_dir(&container.layers.mount_id), epoch)?;
        }
        let options = CommitOptions {
            author: (!state.maintainer.is_empty()).then(|| state.maintainer.clone()),
            created_by: Some(created_by.to_owned()),
            created: self.created,
            config: Some(config),
            container_config: Some(container_config),
            anonymous: anonymous || self.options.source_date_epoch.is_some(),
            built_locally: true,
            take_layer: !self.options.keep_containers,
            ..CommitOptions::default()
        };
        let new = self.containers.commit(id, &options)?;
        let image = self.images.get_unnamed(new)?;
        Ok((new, image.config))
    }

    /// Remove a step's container (unless kept), saying so if `announce` (docker does for the
    /// containers it names: RUN's, WORKDIR's), and pass on the
    /// step's outcome: a step's error is the one told (a failed removal is logged beside it).
    pub(super) fn finish_container<T>(&mut self, id: &str, outcome: Result<T>, announce: bool) -> Result<T> {
        if self.options.keep_containers {
            return outcome;
        }
        let removed = self.containers.remove_with(id, true, true);
        match (outcome, removed) {
            (Ok(value), Ok(_)) => {
                if announce {
                    self.line(&format!("Removing intermediate container {}", &id[..12]))?;
                }
                Ok(value)
            }
            (Ok(_), Err(e)) => Err(e),
            (Err(e), removed) => {
                if let Err(also) = removed {
                    tracing::warn!("the step's container {id} stays: {also} (the next build removes it)");
                }
                Err(e)
            }
        }
    }
}

/// EXPOSE's `port[-end][/proto]` as config keys (`80/tcp`).
fn parse_ports(word: &str) -> Result<Vec<String>> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(refuse(format!("invalid proto: {proto}")));
    }
    let bad = || refuse(format!("invalid containerPort: {ports}"));
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start {
        return Err(refuse(format!("invalid range specified for containerPort: {ports}")));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}
