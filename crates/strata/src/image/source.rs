//! Where an image archive's files come from: a directory (an OCI layout) or a tar (`docker
//! save`, `skopeo copy … oci-archive:`), read by name. A tar is indexed once, by seeking over
//! its members, and each member is then read in place with `pread`, so that layers can be
//! read in parallel and nothing is copied. A compressed tar (`docker save | gzip`) or a pipe
//! is first spooled to an unnamed temporary file in the store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::archive::Compression;
use crate::error::{Error, IoContext, Result};

/// A member of an indexed tar.
#[derive(Debug, Clone)]
pub(crate) enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An image archive, open for reading by name.
#[derive(Debug)]
pub(crate) enum Source {
    /// A directory.
    Dir { path: PathBuf, fd: rustix::fd::OwnedFd },
    /// A tar file and its index.
    Tar { path: PathBuf, file: Arc<File>, members: HashMap<String, Member> },
}

impl Source {
    /// Open `path` (a directory or a tar, maybe compressed; `-` for stdin). Spools go into an
    /// unnamed file in `spool_dir`.
    pub(crate) fn open(path: &Path, spool_dir: &Path) -> Result<Source> {
        if path != Path::new("-") && path.is_dir() {
            let fd = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .ctx("open", path)?;
            return Ok(Source::Dir { path: path.to_owned(), fd });
        }
        let file = if path == Path::new("-") {
            File::from(rustix::io::dup(std::io::stdin().as_fd()).ctx("duplicate", "standard input")?)
        } else {
            File::open(path).ctx("open", path)?
        };
        let shown = if path == Path::new("-") { PathBuf::from("standard input") } else { path.to_owned() };
        let mut input = BufReader::with_capacity(1 << 20, file);
        let head = input.fill_buf().ctx("read", &shown)?;
        let compression = Compression::detect(head);
        let seekable =
            input.get_mut().stream_position().is_ok() && input.get_ref().metadata().is_ok_and(|m| m.is_file());
        let file = if compression == Compression::None && seekable {
            let mut file = input.into_inner();
            file.rewind().ctx("seek", &shown)?;
            file
        } else {
            spool(input, spool_dir, &shown)?
        };
        let members = index(&file, &shown)?;
        Ok(Source::Tar { path: shown, file: Arc::new(file), members })
    }

    /// The archive's name, for messages.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Source::Dir { path, .. } | Source::Tar { path, .. } => path,
        }
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadImage { what: self.path().display().to_string(), reason }
    }

    /// Whether the archive has a file `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.open_member(name).is_ok()
    }

    /// Read a whole (small) file, at most `limit` bytes.
    pub(crate) fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (mut reader, size) = self.open_member(name)?;
        if size > limit {
            return Err(
                self.bad(format!("{name} is {size} bytes, more than the {limit} an image archive's metadata may be"))
            );
        }
        let mut out = Vec::with_capacity(size as usize);
        reader.read_to_end(&mut out).map_err(|e| self.bad(format!("reading {name}: {e}")))?;
        Ok(out)
    }

    /// A reader of file `name`, and its size.
    pub(crate) fn reader(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        self.open_member(name)
    }

    fn open_member(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let missing = || self.bad(format!("{name} is missing from the archive"));
        let clean = normalize(name).ok_or_else(|| self.bad(format!("{name:?} is not a path inside the archive")))?;
        match self {
            Source::Dir { fd, .. } => {
                let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
                let member = rustix::fs::openat2(fd, &clean, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty(), resolve)
                    .map_err(|_| missing())?;
                let file = File::from(member);
                let meta = file.metadata().map_err(|_| missing())?;
                if !meta.is_file() {
                    return Err(missing());
                }
                Ok((Box::new(file), meta.len()))
            }
            Source::Tar { file, members, .. } => {
                let mut name = clean;
                for _ in 0..16 {
                    match members.get(&name).ok_or_else(missing)? {
                        Member::File { offset, size } => {
                            let reader = SliceReader { file: Arc::clone(file), pos: *offset, end: offset + size };
                            return Ok((Box::new(reader), *size));
                        }
                        Member::Link(target) => name = target.clone(),
                    }
                }
                Err(self.bad(format!("{name}: too many levels of links")))
            }
        }
    }
}

/// A range of a file, read with `pread` (so many can read one file at once).
struct SliceReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for SliceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive is truncated"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// `a/./b/../c` → `a/c`; `None` if it climbs out or is empty.
fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir => {}
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Decompress (or copy) `input` into an unnamed file.
fn spool(input: BufReader<File>, dir: &Path, shown: &Path) -> Result<File> {
    let fd = rustix::fs::open(dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, Mode::from(0o600))
        .ctx("create a temporary file in", dir)?;
    let mut spool = File::from(fd);
    let (_, mut decoded) = Compression::decoder(input).ctx("read", shown)?;
    io::copy(&mut decoded, &mut spool).map_err(|e| Error::BadImage {
        what: shown.display().to_string(),
        reason: format!("cannot read it as a (compressed) tar: {e}"),
    })?;
    spool.rewind().ctx("seek", dir)?;
    Ok(spool)
}

/// Index a tar's regular files and links by normalized name.
fn index(file: &File, shown: &Path) -> Result<HashMap<String, Member>> {
    let bad = |reason: String| Error::BadImage { what: shown.display().to_string(), reason };
    let not_tar = |e: io::Error| bad(format!("not an image archive (a tar from `docker save` or an OCI layout): {e}"));
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek().map_err(not_tar)? {
        let entry = entry.map_err(not_tar)?;
        let raw = entry.path().map_err(not_tar)?.to_string_lossy().into_owned();
        let Some(name) = normalize(&raw) else { continue };
        let kind = entry.header().entry_type();
        let member = if kind.is_file() {
            Member::File { offset: entry.raw_file_position(), size: entry.size() }
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(not_tar)?.unwrap_or_default().to_string_lossy().into_owned();
            let base = if kind.is_symlink() && !target.starts_with('/') {
                Path::new(&name).parent().map(|p| p.join(&target)).unwrap_or_else(|| PathBuf::from(&target))
            } else {
                PathBuf::from(&target)
            };
            let Some(target) = normalize(&base.to_string_lossy()) else { continue };
            Member::Link(target)
        } else {
            continue;
        };
        members.insert(name, member);
    }
    if members.is_empty() {
        return Err(bad("not an image archive: it holds no files".into()));
    }
    Ok(members)
}
