//! The build context: the directory COPY and ADD read, less what `.dockerignore` leaves out.
//! Sources are resolved inside it (a path or symlink that leads out is refused, where
//! docker's builder would quietly re-root it), matched with Go's `filepath.Match` rules,
//! hashed as dockerd's legacy builder hashes them (tarsum v1 of the tar docker's CLI would
//! send: owner 0:0, no mtime), so its cache keys and strata's are the same, and packed as a
//! tar for the copy.

use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ignore::{Ignore, read_patterns};
use crate::gopath::clean;

/// A directory context, or none (a Dockerfile on stdin alone).
#[derive(Debug)]
pub struct Context {
    root: Option<PathBuf>,
    ignore: Ignore,
    /// An image's tree: absolute symlinks lead to its own root, not out of it.
    reroot: bool,
}

/// One source of a COPY or ADD: a path in the context, symlinks at its top followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Relative to the context root, cleaned (`.` for the root).
    pub rel: String,
    /// The path on disk.
    pub path: PathBuf,
    /// A directory: its contents are copied.
    pub is_dir: bool,
}

/// The symlinks followed while resolving one path, at most (as the kernel's limit).
const MAX_LINKS: usize = 40;

impl Context {
    /// No context: every COPY and ADD of a local file fails.
    pub fn none() -> Context {
        Context { root: None, ignore: Ignore::default(), reroot: false }
    }

    /// A tree where absolute symlinks mean its own root (an image's, for `COPY --from`).
    pub fn rooted(root: &Path) -> Context {
        Context { root: Some(root.to_owned()), ignore: Ignore::default(), reroot: true }
    }

    /// The directory `root`, with its `.dockerignore`.
    pub fn open(root: &Path) -> Result<Context, String> {
        let root = root
            .canonicalize()
            .map_err(|e| format!("unable to prepare context: path {:?} not found: {e}", root.display().to_string()))?;
        if !root.is_dir() {
            return Err(format!("unable to prepare context: {} is not a directory", root.display()));
        }
        let ignore = match std::fs::read(root.join(".dockerignore")) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| ".dockerignore is not UTF-8 text".to_string())?;
                Ignore::new(&read_patterns(&text)).map_err(|e| format!("error checking context: .dockerignore: {e}"))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
            Err(e) => return Err(format!("cannot read .dockerignore: {e}")),
        };
        Ok(Context { root: Some(root), ignore, reroot: false })
    }

    /// A context sent as a tar (any compression): extracted into `dir` (an empty directory)
    /// as a layer is, never outside it, then opened.
    pub fn from_tar(tar: impl Read + Send, dir: &Path) -> crate::Result<Context> {
        let (_, decoded) = crate::archive::Compression::decoder(io::BufReader::new(tar))
            .map_err(|e| crate::Error::Archive { reason: format!("the context is not a readable archive: {e}") })?;
        crate::archive::extract_into(dir, std::path::Path::new(""), decoded)?;
        Context::open(dir).map_err(|reason| crate::Error::Archive { reason })
    }

    /// The context directory, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Whether `.dockerignore` leaves `rel` out.
    pub fn excluded(&self, rel: &str) -> bool {
        rel != "." && self.ignore.excludes(rel)
    }

    /// The sources a COPY/ADD source names: one path, or every match of a wildcard.
    pub fn sources(&self, given: &str) -> Result<Vec<Source>, String> {
        let Some(root) = &self.root else {
            return Err(format!("no build context: {given} cannot be copied (give a context directory)"));
        };
        let rel = clean(given.trim_start_matches('/'));
        let rel = rel.trim_start_matches('/').to_owned();
        if rel == ".." || rel.starts_with("../") {
            return Err(format!("forbidden path outside the build context: {given}"));
        }
        if has_wildcards(&rel) {
            if !crate::glob::valid(&rel) {
                return Err(format!("syntax error in pattern {given:?}"));
            }
            let mut found = Vec::new();
            self.walk(root, ".", &mut |entry_rel, meta| {
                if crate::glob::matches(&rel, entry_rel) {
                    found.push(entry_rel.to_owned());
                    return Ok(Walk::Skip);
                }
                Ok(if meta.is_dir() { Walk::Into } else { Walk::Skip })
            })
            .map_err(|e| format!("cannot read the build context: {e}"))?;
            if found.is_empty() {
                return Err(format!("no source files were specified (nothing in the context matches {given})"));
            }
            return found.iter().map(|r| self.resolve(r, given)).collect();
        }
        Ok(vec![self.resolve(&rel, given)?])
    }

    /// `rel` with its symlinks followed inside the context.
    fn resolve(&self, rel: &str, given: &str) -> Result<Source, String> {
        let root = self.root.as_ref().expect("a context");
        let missing = || {
            format!("file not found in build context or excluded by .dockerignore: stat {given}: file does not exist")
        };
        if self.excluded(rel) {
            return Err(missing());
        }
        let mut parts: Vec<String> = if rel == "." { vec![] } else { rel.split('/').map(str::to_owned).collect() };
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while !parts.is_empty() {
            let part = parts.remove(0);
            let path = root.join(done.join("/")).join(&part);
            let meta = std::fs::symlink_metadata(&path).map_err(|_| missing())?;
            if !meta.file_type().is_symlink() {
                done.push(part);
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{given}: too many levels of symbolic links (a loop in the build context?)"));
            }
            let target = std::fs::read_link(&path).map_err(|e| format!("{given}: {e}"))?;
            let target = target.to_string_lossy().into_owned();
            let joined = match target.strip_prefix(&format!("{}/", root.display())) {
                Some(inside) => inside.to_owned(),
                None if self.reroot && target.starts_with('/') => clean(&target).trim_start_matches('/').to_owned(),
                None if target.starts_with('/') => {
                    return Err(format!(
                        "{given}: the symlink {} points outside the build context",
                        done_join(&done, &part)
                    ));
                }
                None if done.is_empty() => clean(&target),
                None => clean(&format!("{}/{target}", done.join("/"))),
            };
            let joined = if joined.is_empty() { ".".to_owned() } else { joined };
            if joined == ".." || joined.starts_with("../") || joined.starts_with('/') {
                return Err(format!(
                    "{given}: the symlink {} points outside the build context",
                    done_join(&done, &part)
                ));
            }
            let mut rest: Vec<String> =
                if joined == "." { vec![] } else { joined.split('/').map(str::to_owned).collect() };
            rest.append(&mut parts);
            parts = rest;
            done.clear();
        }
        let rel = if done.is_empty() { ".".to_owned() } else { done.join("/") };
        if self.excluded(&rel) {
            return Err(missing());
        }
        let path = root.join(&rel);
        let is_dir = path.is_dir();
        Ok(Source { rel, path, is_dir })
    }

    /// `rel` with every symlink followed as dockerd's `FollowSymlinkInScope` does: absolute
    /// targets and `..` held inside the context; a loop gives up where it stands.
    fn follow_in_scope(&self, rel: &str) -> String {
        let root = self.root.as_ref().expect("a context");
        let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while !parts.is_empty() {
            let part = parts.remove(0);
            let here = root.join(done.join("/")).join(&part);
            let Ok(target) = std::fs::read_link(&here) else {
                done.push(part);
                continue;
            };
            links += 1;
            if links > MAX_LINKS {
                return rel.to_owned();
            }
            let target = target.to_string_lossy().into_owned();
            let base = if target.starts_with('/') { String::new() } else { done.join("/") };
            let joined = clean(&format!("/{base}/{target}"));
            let mut rest: Vec<String> = joined.split('/').filter(|p| !p.is_empty()).map(str::to_owned).collect();
            rest.append(&mut parts);
            parts = rest;
            done.clear();
        }
        done.join("/")
    }

    /// Visit the context's entries under `rel` (lexical order, as filepath.Walk), skipping
    /// excluded ones; `visit` says whether to enter a directory.
    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        visit: &mut dyn FnMut(&str, &Metadata) -> io::Result<Walk>,
    ) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let child_rel = if rel == "." { name.clone() } else { format!("{rel}/{name}") };
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path)?;
            let excluded = self.excluded(&child_rel);
            if excluded && !(meta.is_dir() && self.ignore.has_exclusions()) {
                continue;
            }
            let step = if excluded { Walk::Into } else { visit(&child_rel, &meta)? };
            if step == Walk::Into && meta.is_dir() {
                self.walk(&path, &child_rel, visit)?;
            }
        }
        Ok(())
    }

    /// dockerd's cache key of the sources: `file:<tarsum>`, `dir:<sum of sums>`, or for
    /// several, `multi:<sum of their keys>`.
    pub fn hash(&self, sources: &[Source]) -> io::Result<String> {
        let mut keys = Vec::with_capacity(sources.len());
        for source in sources {
            keys.push(self.hash_one(source)?);
        }
        Ok(match keys.as_slice() {
            [one] => one.clone(),
            _ => format!("multi:{}", hex_sha256(keys.join(",").as_bytes())),
        })
    }

    fn hash_one(&self, source: &Source) -> io::Result<String> {
        if !source.is_dir {
            let meta = std::fs::metadata(&source.path)?;
            return Ok(format!("file:{}", tarsum_entry(&source.rel, &meta, &source.path, None)?));
        }
        let mut sums = Vec::new();
        let mut links = Hardlinks::default();
        if source.rel != "." {
            let meta = std::fs::symlink_metadata(&source.path)?;
            sums.push(tarsum_entry(&source.rel, &meta, &source.path, None)?);
        }
        let root = self.root.as_ref().expect("a context");
        self.walk(&source.path, &source.rel, &mut |rel, meta| {
            let link = links.seen(rel, meta);
            if !meta.file_type().is_symlink() {
                sums.push(tarsum_entry(rel, meta, &root.join(rel), link.as_deref())?);
                return Ok(Walk::Into);
            }
            // dockerd hashes what a symlink leads to (followed inside the context), and a
            // symlink that leads nowhere as its own path.
            let target = self.follow_in_scope(rel);
            match std::fs::symlink_metadata(root.join(&target)) {
                Ok(target_meta) if !target_meta.file_type().is_symlink() => {
                    sums.push(tarsum_entry(&target, &target_meta, &root.join(&target), None)?)
                }
                _ => sums.push(rel.to_owned()),
            }
            Ok(Walk::Into)
        })?;
        sums.sort();
        Ok(format!("dir:{}", hex_sha256(sums.join(",").as_bytes())))
    }

    /// Write `source` as a tar whose entries are named under `dest` (relative to the
    /// container's root, no leading `/`): a file as `dest` itself, a directory's contents
    /// under it. Owner `owner`, or the files' own (`None`, for `--from`); mtimes kept.
    pub fn pack(
        &self,
        source: &Source,
        dest: &str,
        owner: Option<(u32, u32)>,
        out: impl Write,
        chmod: Option<u32>,
    ) -> io::Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        if !source.is_dir {
            let meta = std::fs::metadata(&source.path)?;
            append(&mut tar, dest, &source.path, &meta, owner, None, chmod)?;
        } else {
            let mut links = Hardlinks::default();
            let root = self.root.as_ref().expect("a context").clone();
            self.walk(&source.path, &source.rel, &mut |rel, meta| {
                let inner = match source.rel.as_str() {
                    "." => rel,
                    base => &rel[base.len() + 1..],
                };
                let name = if dest.is_empty() { inner.to_owned() } else { format!("{dest}/{inner}") };
                let link = links.seen(&name, meta);
                append(&mut tar, &name, &root.join(rel), meta, owner, link.as_deref(), chmod)?;
                Ok(Walk::Into)
            })?;
        }
        tar.finish()
    }
}

fn done_join(done: &[String], part: &str) -> String {
    if done.is_empty() { part.to_owned() } else { format!("{}/{part}", done.join("/")) }
}

#[derive(Debug, PartialEq, Eq)]
enum Walk {
    Into,
    Skip,
}

/// Inodes with several names: every name after the first is a hard link to it.
#[derive(Default)]
struct Hardlinks(std::collections::HashMap<(u64, u64), String>);

impl Hardlinks {
    fn seen(&mut self, name: &str, meta: &Metadata) -> Option<String> {
        if meta.is_dir() || meta.nlink() < 2 {
            return None;
        }
        match self.0.entry((meta.dev(), meta.ino())) {
            std::collections::hash_map::Entry::Occupied(first) => Some(first.get().clone()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(name.to_owned());
                None
            }
        }
    }
}

/// Whether a COPY source is a pattern (`*`, `?`, `[`, not escaped).
fn has_wildcards(path: &str) -> bool {
    let mut escaped = false;
    for c in path.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tarsum v1 of one entry as docker's CLI would tar it: name (directories end in `/`), Go's
/// mode (file type bits and permissions), uid and gid 0, size, type flag, link name, empty
/// user and group names, device numbers; then the content.
fn tarsum_entry(rel: &str, meta: &Metadata, path: &Path, hardlink: Option<&str>) -> io::Result<String> {
    let ft = meta.file_type();
    let (flag, size, link) = match () {
        _ if hardlink.is_some() => ('1', 0, hardlink.unwrap_or_default().to_owned()),
        _ if ft.is_dir() => ('5', 0, String::new()),
        _ if ft.is_symlink() => ('2', 0, std::fs::read_link(path)?.to_string_lossy().into_owned()),
        _ if ft.is_file() => ('0', meta.len(), String::new()),
        _ => {
            use std::os::unix::fs::FileTypeExt;
            let flag = match () {
                _ if ft.is_char_device() => '3',
                _ if ft.is_block_device() => '4',
                _ => '6',
            };
            (flag, 0, String::new())
        }
    };
    let name = if ft.is_dir() { format!("{rel}/") } else { rel.to_owned() };
    let (major, minor) = match flag {
        '3' | '4' => (rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev())),
        _ => (0, 0),
    };
    let mut h = Sha256::new();
    for (key, value) in [
        ("name", name),
        ("mode", (meta.mode() & 0o177777).to_string()),
        ("uid", "0".into()),
        ("gid", "0".into()),
        ("size", size.to_string()),
        ("typeflag", flag.to_string()),
        ("linkname", link),
        ("uname", String::new()),
        ("gname", String::new()),
        ("devmajor", major.to_string()),
        ("devminor", minor.to_string()),
    ] {
        h.update(key.as_bytes());
        h.update(value.as_bytes());
    }
    if flag == '0' {
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// One entry of a COPY's tar.
fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    path: &Path,
    meta: &Metadata,
    owner: Option<(u32, u32)>,
    hardlink: Option<&str>,
    chmod: Option<u32>,
) -> io::Result<()> {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.starts_with(".wh.") {
        return Err(io::Error::other(format!(
            "{name}: names starting with .wh. are OverlayFS whiteouts and cannot be copied into an image"
        )));
    }
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_mode(chmod.unwrap_or(meta.permissions().mode() & 0o7777));
    let (uid, gid) = owner.unwrap_or((meta.uid(), meta.gid()));
    header.set_uid(uid.into());
    header.set_gid(gid.into());
    header.set_mtime(meta.mtime().max(0) as u64);
    let ft = meta.file_type();
    if let Some(first) = hardlink {
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        return tar.append_link(&mut header, name, first);
    }
    if ft.is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        return tar.append_link(&mut header, name, std::fs::read_link(path)?);
    }
    if ft.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        return tar.append_data(&mut header, format!("{name}/"), io::empty());
    }
    if ft.is_file() {
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        return tar.append_data(&mut header, name, std::fs::File::open(path)?);
    }
    Err(io::Error::other(format!("{name}: devices, sockets and pipes in a build context are not copied")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys dockerd 20.10's legacy builder gave these files (checked by hand against it).
    #[test]
    fn keys_match_dockerd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), "x\n").unwrap();
        for (path, mode) in [("a.txt", 0o644), ("sub", 0o755), ("sub/b", 0o644)] {
            std::fs::set_permissions(dir.path().join(path), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let context = Context::open(dir.path()).unwrap();
        let key = |s: &str| context.hash(&context.sources(s).unwrap()).unwrap();
        assert_eq!(key("a.txt"), "file:679c43c79a56cffbb3b002bda3050542c152a2f09757a0f1a9578871f7cda00d");
        assert_eq!(key("sub"), "dir:f373a25553f19effb8197d01e49b4bde7abbb885c6ead17fbad6463a0ef248fd");
        assert_eq!(key("./sub/../a.txt"), key("a.txt"));
    }

    #[test]
    fn sources_stay_in_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/f.txt"), "f").unwrap();
        std::fs::write(ctx.join("g.txt"), "g").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("d/f.txt", ctx.join("ok")).unwrap();
        std::os::unix::fs::symlink("loop2", ctx.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", ctx.join("loop2")).unwrap();
        std::fs::write(ctx.join(".dockerignore"), "g.txt\n").unwrap();
        let context = Context::open(&ctx).unwrap();
        assert!(context.sources("../secret").unwrap_err().contains("outside the build context"));
        assert!(context.sources("up").unwrap_err().contains("outside the build context"));
        assert!(context.sources("abs").unwrap_err().contains("outside the build context"));
        assert!(context.sources("loop1").unwrap_err().contains("too many levels"));
        assert!(context.sources("g.txt").unwrap_err().contains("excluded by .dockerignore"));
        assert!(context.sources("nope").unwrap_err().contains("file not found"));
        assert_eq!(context.sources("ok").unwrap()[0].rel, "d/f.txt");
        assert!(context.sources("*.txt").is_err(), "g.txt is excluded; * does not cross /");
        let found: Vec<String> = context.sources("d/*").unwrap().into_iter().map(|s| s.rel).collect();
        assert_eq!(found, ["d/f.txt"]);
        assert!(context.sources("*.nothing").is_err());
        assert!(Context::none().sources("x").is_err());
    }
}
