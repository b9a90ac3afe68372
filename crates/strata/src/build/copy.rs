//! COPY and ADD: sources from the context (or an earlier stage or image, `--from`) written
//! into a container of the current image through the safe extractor, so no path in the
//! container's tree can lead a write outside it; ADD also unpacks local archives and fetches
//! URLs. The step's key is dockerd's: `COPY <hash> in <dest> `.

use std::path::Path;

use super::builder::{Builder, Stage, State};
use super::context::{Context, Source};
use super::dispatch::flag;
use super::files::{clamp_mtimes, download, hex, is_archive, rebase_tar, single_file};
use super::parser::Instruction;
use crate::error::{Error, IoContext, Result};
use crate::image::ImageId;

fn refuse(reason: impl Into<String>) -> Error {
    Error::BadOption { what: "instruction", value: String::new(), reason: reason.into() }
}

/// What one COPY/ADD source is.
enum Item {
    /// A file or directory of the context (or of `--from`'s tree).
    Path(Source),
    /// A heredoc's body, written as a file of this name.
    Inline { name: String, content: Vec<u8> },
    /// A local archive ADD unpacks.
    Archive(Source),
    /// A file ADD downloaded, and its name.
    Url { name: String, file: std::path::PathBuf, mtime: i64 },
}

impl Builder<'_> {
    /// COPY or ADD.
    pub(super) fn copy(
        &mut self,
        state: &mut State,
        stages: &[Stage],
        results: &[Option<ImageId>],
        instruction: &Instruction,
    ) -> Result<()> {
        let add = instruction.keyword() == "add";
        let name = if add { "ADD" } else { "COPY" };
        for f in &instruction.flags {
            let key = f.trim_start_matches('-').split('=').next().unwrap_or_default();
            let known: &[&str] = if add {
                &["chown", "chmod", "link", "checksum", "keep-git-dir"]
            } else {
                &["chown", "chmod", "from", "link", "parents", "exclude"]
            };
            if !known.contains(&key) {
                return Err(refuse(format!("unknown flag: --{key}")));
            }
        }
        if instruction.args.len() < 2 {
            return Err(refuse(format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined."
            )));
        }
        let env = state.expansion_env();
        let lexer = super::lex::Lexer::new(self.escape);
        let expand = |w: &str| lexer.word(w, &env).map_err(super::builder::lex_error);
        let (raw_sources, raw_dest) = instruction.args.split_at(instruction.args.len() - 1);
        let dest_written = expand(&raw_dest[0])?;
        let chown = flag(instruction, "chown").map(&expand).transpose()?;
        let chmod = flag(instruction, "chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| refuse(format!("invalid --chmod={m}: give an octal mode such as 0755")))
            })
            .transpose()?;

        // Where the sources come from: the context, or another stage's or image's tree.
        let from = flag(instruction, "from").map(str::to_owned);
        let mut from_container: Option<String> = None;
        let from_context;
        let context: &Context = match &from {
            None => &self.options.context,
            Some(from) => {
                if add {
                    return Err(refuse("ADD does not take --from"));
                }
                let lower = from.to_ascii_lowercase();
                let image = match stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .or_else(|| from.parse::<usize>().ok())
                {
                    Some(i) if i < results.len() => results[i]
                        .ok_or_else(|| refuse(format!("stage {from} made no image (FROM scratch with no step)")))?,
                    Some(_) => {
                        return Err(refuse(format!("invalid from flag value {from}: no such stage before this one")));
                    }
                    None => self.images.resolve(from).map_err(|_| {
                        refuse(format!("invalid from flag value {from}: no such stage or image (pull it first)"))
                    })?,
                };
                let id = self.step_container(
                    image,
                    crate::container::CreateOptions { cmd: vec!["#(nop) COPY --from".into()], ..Default::default() },
                )?;
                from_container = Some(id.clone());
                let root = self.containers.mount(&id)?;
                from_context = Context::tree(&root);
                &from_context
            }
        };
        let result = self.copy_with(
            state,
            instruction,
            context,
            name,
            add,
            raw_sources,
            &dest_written,
            chown.as_deref(),
            chmod,
            from.is_some(),
            &expand,
        );
        match from_container {
            Some(id) => {
                let unmounted = self.containers.unmount(&id);
                let result = result.and(unmounted);
                match (result, self.containers.remove_with(&id, true, true)) {
                    (Err(e), removed) => {
                        if let Err(also) = removed {
                            tracing::warn!("the --from container {id} stays: {also} (the next build removes it)");
                        }
                        Err(e)
                    }
                    (Ok(()), removed) => removed.map(drop),
                }
            }
            None => result,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_with(
        &mut self,
        state: &mut State,
        instruction: &Instruction,
        context: &Context,
        name: &str,
        add: bool,
        raw_sources: &[String],
        dest_written: &str,
        chown: Option<&str>,
        chmod: Option<u32>,
        keep_owner: bool,
        expand: &dyn Fn(&str) -> Result<String>,
    ) -> Result<()> {
        let download_dir = self.images.store.tmp_dir().join(format!("build-{}", std::process::id()));
        let mut items = Vec::new();
        let mut keys = Vec::new();
        for raw in raw_sources {
            if let Some(doc) = instruction.heredocs.iter().find(|d| {
                raw.trim_start_matches("<<").trim_start_matches('-').trim_matches(['\'', '"']) == d.name
                    && raw.starts_with("<<")
            }) {
                let content = if doc.expand { expand(&doc.content)? } else { doc.content.clone() };
                keys.push(format!("heredoc:{}", hex(&content)));
                items.push(Item::Inline { name: doc.name.clone(), content: content.into_bytes() });
                continue;
            }
            let source = expand(raw)?;
            if add && (source.starts_with("http://") || source.starts_with("https://")) {
                let (file_name, file, mtime, key) = download(&source, &download_dir)?;
                keys.push(key);
                items.push(Item::Url { name: file_name, file, mtime });
                continue;
            }
            let found = context.sources(&source).map_err(refuse)?;
            keys.push(context.hash(&found).ctx("hash", context.root().unwrap_or(Path::new(".")))?);
            for source in found {
                if add && !source.is_dir && is_archive(&source.path) {
                    items.push(Item::Archive(source));
                } else {
                    items.push(Item::Path(source));
                }
            }
        }
        let many = items.len() > 1;
        if many && !dest_written.ends_with('/') {
            return Err(refuse(format!(
                "When using {name} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let hash = match keys.as_slice() {
            [one] => one.clone(),
            _ => format!("multi:{}", hex(&keys.join(","))),
        };
        let chown_comment = chown.map(|c| format!("--chown={c}")).unwrap_or_default();
        let comment = format!("{name} {chown_comment}{hash} in {dest_written} ");
        let mut probe = state.config.clone();
        let mut cmd = state.shell();
        cmd.push(format!("#(nop) {comment}"));
        probe.cmd = Some(cmd.clone());
        if let Some(hit) = self.cached(state, &probe)? {
            let _ = std::fs::remove_dir_all(&download_dir);
            return self.use_cached(state, hit);
        }
        let workdir =
            if state.config.working_dir.is_empty() { "/".to_owned() } else { state.config.working_dir.clone() };
        let dest_abs =
            if dest_written.starts_with('/') { dest_written.to_owned() } else { format!("{workdir}/{dest_written}") };
        let dest_dir_marked = dest_written.ends_with('/') || dest_written.ends_with("/.") || dest_written == ".";
        let dest_rel = crate::gopath::clean(&dest_abs).trim_start_matches('/').to_owned();

        let no_layers = state.base.as_ref().is_none_or(|b| b.rootfs.diff_ids.is_empty());
        let (Some(image), false) = (state.image, no_layers) else {
            return self.copy_onto_nothing(
                state,
                context,
                &items,
                &dest_rel,
                dest_dir_marked || many,
                chown,
                chmod,
                probe,
                &cmd,
            );
        };
        let id =
            self.step_container(image, crate::container::CreateOptions { cmd: cmd.clone(), ..Default::default() })?;
        let written = (|| -> Result<()> {
            let root = self.containers.mount(&id)?;
            let rootfs = crate::container::user::Rootfs::open(&root)?;
            let owner = match chown {
                Some(spec) => {
                    let spec = if spec.contains(':') { spec.to_owned() } else { format!("{spec}:{spec}") };
                    let user = rootfs
                        .user(&spec)
                        .map_err(|e| refuse(format!("unable to convert --chown={spec} to a uid and gid: {e}")))?;
                    Some((user.uid, user.gid))
                }
                None if keep_owner => None,
                None => Some((0, 0)),
            };
            let dest_is_dir = dest_dir_marked || many || is_dir_in(&root, &dest_rel);
            // Missing directories on the way are made 0755 for the new owner (dockerd's
            // MkdirAllAndChownNew); existing ones are left as they are.
            let dirs = if dest_is_dir { dest_rel.as_str() } else { dest_rel.rsplit_once('/').map_or("", |p| p.0) };
            make_dirs_in(&root, dirs, owner.unwrap_or((0, 0)))?;
            let result = (|| {
                for item in &items {
                    self.write_item(context, &root, item, &dest_rel, dest_is_dir, owner, chmod)?;
                }
                Ok(())
            })();
            let unmounted = self.containers.unmount(&id);
            result?;
            unmounted
        })();
        let _ = std::fs::remove_dir_all(&download_dir);
        let committed = written.and_then(|()| self.commit(state, &id, &cmd.join(" "), probe, true));
        let (new, config) = self.finish_container(&id, committed, false)?;
        self.ran += 1;
        self.advance(state, new, config)
    }

    /// COPY or ADD on an image of no layers (`FROM scratch`): the files are the whole layer,
    /// made aside and stored as a base layer (there is no tree under them to write through).
    #[allow(clippy::too_many_arguments)]
    fn copy_onto_nothing(
        &mut self,
        state: &mut State,
        context: &Context,
        items: &[Item],
        dest_rel: &str,
        dest_is_dir: bool,
        chown: Option<&str>,
        chmod: Option<u32>,
        probe: crate::image::ContainerConfig,
        cmd: &[String],
    ) -> Result<()> {
        let owner = match chown {
            None => (0, 0),
            Some(spec) => {
                let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
                match (u.parse(), g.parse()) {
                    (Ok(u), Ok(g)) => (u, g),
                    _ => {
                        return Err(refuse(format!(
                            "--chown={spec}: a stage FROM scratch has no /etc/passwd: give numeric IDs"
                        )));
                    }
                }
            }
        };
        let dir = self.images.store.tmp_dir().join(format!(
            "build-scratch-{}-{}",
            std::process::id(),
            crate::id::LayerId::random().as_str()
        ));
        std::fs::create_dir_all(&dir).ctx("mkdir", &dir)?;
        let written = (|| -> Result<crate::archive::Staged> {
            let dirs = if dest_is_dir { dest_rel } else { dest_rel.rsplit_once('/').map_or("", |p| p.0) };
            make_dirs_in(&dir, dirs, owner)?;
            for item in items {
                self.write_item(context, &dir, item, dest_rel, dest_is_dir, Some(owner), chmod)?;
            }
            if let Some(epoch) = self.options.source_date_epoch {
                clamp_mtimes(&dir, epoch)?;
            }
            self.images.stage_dir(&dir)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        let staged = written?;
        let diff_id = staged.applied().stream.diff_id;
        let mut config = state.config.clone();
        config.image = state.image.map(|i| i.to_string()).unwrap_or_default();
        let created = self.created_text();
        let created_by = cmd.join(" ");
        let child = crate::image::Child {
            parent: state.base.as_ref(),
            author: &state.maintainer,
            config: &config,
            container: None,
            container_config: &probe,
            created: &created,
            created_by: &created_by,
            comment: "",
            diff_id: Some(diff_id),
        };
        let bytes = child.to_bytes();
        let mut writer = self.images.writer()?;
        if !child.empty_layer() {
            writer.layer(None, diff_id, Some(staged))?;
        }
        let id = writer.image(&bytes, state.image)?;
        writer.built_locally(id)?;
        writer.commit()?;
        self.ran += 1;
        let parsed = crate::image::ImageConfig::parse(&bytes, "the new image")?;
        self.advance(state, id, parsed)
    }

    /// Write one item under `dest` in the tree at `root`.
    #[allow(clippy::too_many_arguments)]
    fn write_item(
        &self,
        context: &Context,
        root: &Path,
        item: &Item,
        dest: &str,
        dest_is_dir: bool,
        owner: Option<(u32, u32)>,
        chmod: Option<u32>,
    ) -> Result<()> {
        let join = |base: &str| if dest.is_empty() { base.to_owned() } else { format!("{dest}/{base}") };
        let target = |base: &str| if dest_is_dir { join(base) } else { dest.to_owned() };
        let (reader, writer) = crate::archive::pipe().ctx("pipe", root)?;
        std::thread::scope(|scope| {
            let producer = scope.spawn(move || -> std::io::Result<()> {
                let writer = writer;
                match item {
                    Item::Path(source) if source.is_dir => context.pack(source, dest, owner, writer, chmod),
                    Item::Path(source) => {
                        let base = Path::new(&source.rel)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        context.pack(source, &target(&base), owner, writer, chmod)
                    }
                    Item::Inline { name, content } => {
                        let mode = chmod.unwrap_or(0o644);
                        single_file(
                            writer,
                            &target(name),
                            content.as_slice(),
                            content.len() as u64,
                            mode,
                            owner.unwrap_or((0, 0)),
                            0,
                        )
                    }
                    Item::Url { name, file, mtime } => {
                        let f = std::fs::File::open(file)?;
                        let len = f.metadata()?.len();
                        single_file(
                            writer,
                            &target(name),
                            f,
                            len,
                            chmod.unwrap_or(0o600),
                            owner.unwrap_or((0, 0)),
                            *mtime,
                        )
                    }
                    Item::Archive(source) => {
                        let file = std::io::BufReader::new(std::fs::File::open(&source.path)?);
                        let (_, mut decoded) = crate::archive::Compression::decoder(file)?;
                        rebase_tar(&mut decoded, writer, dest)
                    }
                }
            });
            let extracted = crate::archive::extract_into(root, std::path::Path::new(""), reader);
            let produced = producer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            match (produced, extracted) {
                (Err(e), _) => Err(refuse(format!("cannot copy: {e}"))),
                (Ok(()), Err(e)) => Err(e),
                (Ok(()), Ok(())) => Ok(()),
            }
        })
    }
}

impl Context {
    /// An image's tree (`COPY --from`): no `.dockerignore`, absolute symlinks re-rooted.
    pub(super) fn tree(root: &Path) -> Context {
        Context::rooted(root)
    }
}

/// Whether `rel` is a directory inside the tree at `root` (symlinks resolved inside it).
fn is_dir_in(root: &Path, rel: &str) -> bool {
    if rel.is_empty() {
        return true;
    }
    let Ok(dir) =
        rustix::fs::open(root, rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty())
    else {
        return false;
    };
    let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    rustix::fs::openat2(&dir, rel, flags, rustix::fs::Mode::empty(), rustix::fs::ResolveFlags::IN_ROOT).is_ok()
}

/// Make the missing directories of `rel` inside the tree at `root`, owned by `owner`.
fn make_dirs_in(root: &Path, rel: &str, owner: (u32, u32)) -> Result<()> {
    crate::container::user::Rootfs::open(root)?.make_dirs(&format!("/{rel}"), owner, "destination").map(drop)
}
