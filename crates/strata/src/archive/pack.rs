//! A layer's own changes as a tar, read from its `diff/` alone (dockerd's "native diff").
//!
//! Entries come in the order Go's `filepath.WalkDir` visits them (names sorted bytewise, a
//! directory before its contents), with headers close to dockerd's: ustar with PAX records
//! only where needed, mtime in whole seconds, no atime/ctime. Unlike dockerd 20.10, which adds
//! the file-type bits to the mode field and user and group names looked up on the host, strata
//! writes permission bits and numeric IDs only: the same `diff/` gives the same bytes on every
//! machine, so the same digest. (The content is dockerd's; digests differ from dockerd's anyway,
//! as the mtimes do.)
//!
//! Unlike dockerd, which keeps only `security.capability`, every xattr is carried (sorted by
//! name) except OverlayFS's private ones and `security.selinux` (a host's label, not the
//! image's), so a layer survives a round trip whole.
//!
//! On-disk whiteouts go back to tar form: a 0/0 character device `NAME` becomes an empty
//! regular file `.wh.NAME` (mode 0600), an opaque directory is followed by `.wh..wh..opq`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::compression::Compression;
use super::dir::{is_opaque, sorted_names};
use super::path::{OPAQUE, WHITEOUT_PREFIX};
use super::pipeline::StreamDigests;
use crate::digest::{DiffId, Hasher, HashingWriter};
use crate::error::{Error, Result};

/// Largest value an octal ustar uid/gid field holds.
const USTAR_ID_MAX: u64 = 0o7_777_777;

/// Write the tar of the directory `diff` to `out`, compressed as asked, and return its digests.
pub(crate) fn pack(diff: &Path, out: impl Write + Send, compression: Compression) -> Result<StreamDigests> {
    let root = rustix::fs::open(diff, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io("open", diff, e))?;
    std::thread::scope(|scope| {
        let sink = Sink::start(scope, out, compression).map_err(|e| Error::io("start a thread for", diff, e))?;
        let mut builder = tar::Builder::new(sink);
        let mut packer = Packer { links: HashMap::new() };
        packer.dir(&mut builder, &root, b"")?;
        let sink = builder.into_inner().map_err(|e| Error::io("write", "layer tar", e))?;
        sink.finish().map_err(|e| Error::io("write", "layer tar", e))
    })
}

struct Packer {
    /// First path of each multiply-linked inode, for hard link entries.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl Packer {
    /// Emit the entries of directory `fd`, whose path in the tar is `prefix` (`""` or `a/b/`).
    fn dir<W: Write>(&mut self, b: &mut tar::Builder<W>, fd: &OwnedFd, prefix: &[u8]) -> Result<()> {
        for name in sorted_names(fd).map_err(|e| sys_err(prefix, e))? {
            let mut path = prefix.to_vec();
            path.extend_from_slice(name.as_bytes());
            let st = rustix::fs::statat(fd, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| sys_err(&path, e))?;
            let kind = FileType::from_raw_mode(st.st_mode);
            let mut h = Header::new(&st);
            match kind {
                FileType::Directory => {
                    path.push(b'/');
                    let child = rustix::fs::openat(
                        fd,
                        &name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| sys_err(&path, e))?;
                    h.kind = tar::EntryType::Directory;
                    h.xattrs = xattrs(fd, &name).map_err(|e| sys_err(&path, e))?;
                    h.write(b, &path, io::empty())?;
                    if is_opaque(&child) {
                        // The marker takes the directory's permission bits (not setuid, setgid
                        // or sticky) and owner, and no time, as dockerd's.
                        let mut marker = path.clone();
                        marker.extend_from_slice(OPAQUE.as_bytes());
                        let mut m = Header::new(&st);
                        m.kind = tar::EntryType::Regular;
                        m.mode &= 0o777;
                        m.mtime = 0;
                        m.write(b, &marker, io::empty())?;
                    }
                    self.dir(b, &child, &path)?;
                }
                FileType::CharacterDevice if st.st_rdev == 0 => {
                    let mut wh = prefix.to_vec();
                    wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                    wh.extend_from_slice(name.as_bytes());
                    h.kind = tar::EntryType::Regular;
                    h.mode = 0o600;
                    h.write(b, &wh, io::empty())?;
                }
                FileType::RegularFile => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&key) {
                            h.kind = tar::EntryType::Link;
                            h.link = Some(first.clone());
                            h.write(b, &path, io::empty())?;
                            continue;
                        }
                        self.links.insert(key, path.clone());
                    }
                    let file = rustix::fs::openat(
                        fd,
                        &name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| sys_err(&path, e))?;
                    h.kind = tar::EntryType::Regular;
                    h.size = st.st_size as u64;
                    h.xattrs = xattrs(fd, &name).map_err(|e| sys_err(&path, e))?;
                    h.write(b, &path, std::fs::File::from(file))?;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(fd, &name, Vec::new()).map_err(|e| sys_err(&path, e))?;
                    h.kind = tar::EntryType::Symlink;
                    h.link = Some(target.into_bytes());
                    h.xattrs = xattrs(fd, &name).map_err(|e| sys_err(&path, e))?;
                    h.write(b, &path, io::empty())?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    h.kind = match kind {
                        FileType::CharacterDevice => tar::EntryType::Char,
                        FileType::BlockDevice => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    };
                    h.dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                    h.xattrs = xattrs(fd, &name).map_err(|e| sys_err(&path, e))?;
                    h.write(b, &path, io::empty())?;
                }
                // Sockets (and anything else) have no place in a layer, as in dockerd.
                _ => {}
            }
        }
        Ok(())
    }
}

/// The metadata of one tar entry, written as dockerd would.
struct Header {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    size: u64,
    dev: (u32, u32),
    link: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Header {
    fn new(st: &rustix::fs::Stat) -> Header {
        Header {
            kind: tar::EntryType::Regular,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: u64::try_from(st.st_mtime).unwrap_or(0),
            size: 0,
            dev: (0, 0),
            link: None,
            xattrs: Vec::new(),
        }
    }

    fn write<W: Write>(&self, b: &mut tar::Builder<W>, path: &[u8], data: impl Read) -> Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut h = tar::Header::new_ustar();
        if !put(&mut h.as_old_mut().name, path) {
            pax.push(("path".into(), path.to_vec()));
        }
        if let Some(link) = &self.link
            && !put(&mut h.as_old_mut().linkname, link)
        {
            pax.push(("linkpath".into(), link.clone()));
        }
        for (key, id) in [("uid", self.uid), ("gid", self.gid)] {
            if id > USTAR_ID_MAX {
                pax.push((key.into(), id.to_string().into_bytes()));
            }
        }
        for (name, value) in &self.xattrs {
            pax.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(name)), value.clone()));
        }
        h.set_entry_type(self.kind);
        h.set_mode(self.mode);
        h.set_uid(self.uid.min(USTAR_ID_MAX));
        h.set_gid(self.gid.min(USTAR_ID_MAX));
        h.set_mtime(self.mtime);
        h.set_size(self.size);
        if matches!(self.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(self.dev.0).map_err(|e| Error::io("write", "layer tar", e))?;
            h.set_device_minor(self.dev.1).map_err(|e| Error::io("write", "layer tar", e))?;
        }
        h.set_cksum();
        let io_err = |e| Error::io("write", "layer tar", e);
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(io_err)?;
        }
        let mut data = data.take(self.size);
        let mut counted = Counted { inner: &mut data, n: 0 };
        b.append(&h, &mut counted).map_err(io_err)?;
        if counted.n != self.size {
            return Err(Error::Archive {
                reason: format!("{} changed size while it was being read", String::from_utf8_lossy(path)),
            });
        }
        Ok(())
    }
}

/// Copy `value` into a NUL-padded header field; `false` if it does not fit.
fn put(field: &mut [u8], value: &[u8]) -> bool {
    let fits = value.len() <= field.len();
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
    fits
}

struct Counted<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// The xattrs a layer tar carries for `name` in `dir`, sorted by name. Read through the
/// parent's descriptor, so a symlink, fifo or device is never opened or followed.
fn xattrs(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = Path::new(&format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(dir))).join(name);
    let mut list = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(&path, &mut list) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for key in list[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let private =
            key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.") || key == b"security.selinux";
        if private {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(&path, OsStr::from_bytes(key), &mut value)?;
        value.truncate(len);
        out.push((key.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

fn sys_err(path: &[u8], e: rustix::io::Errno) -> Error {
    Error::io("read", String::from_utf8_lossy(path).into_owned(), e)
}

/// Hashes the tar, compresses it and hashes the result, on its own thread.
struct Sink<'scope> {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    worker: Option<ScopedJoinHandle<'scope, io::Result<StreamDigests>>>,
}

const SINK_CHUNK: usize = 256 * 1024;

impl<'scope> Sink<'scope> {
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        out: impl Write + Send + 'scope,
        compression: Compression,
    ) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let worker = std::thread::Builder::new().name("strata-layer-writer".into()).spawn_scoped(scope, move || {
            let mut tar_hash = Hasher::new();
            let mut out = HashingWriter::new(out);
            let mut enc = compression.encoder(&mut out)?;
            for chunk in rx {
                tar_hash.update(&chunk);
                enc.write_all(&chunk)?;
            }
            enc.finish()?.flush()?;
            let size = tar_hash.len();
            let (compressed, compressed_size) = out.finish();
            Ok(StreamDigests {
                compression,
                compressed,
                compressed_size,
                diff_id: DiffId::of_tar(tar_hash.finish()),
                size,
            })
        })?;
        Ok(Sink { tx: Some(tx), buf: Vec::with_capacity(SINK_CHUNK), worker: Some(worker) })
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SINK_CHUNK));
        match &self.tx {
            Some(tx) if tx.send(chunk).is_ok() => Ok(()),
            // The writer thread stopped: its error is in the join.
            _ => Err(self.join().err().unwrap_or_else(|| io::Error::other("layer writer stopped"))),
        }
    }

    fn finish(mut self) -> io::Result<StreamDigests> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.tx = None;
        self.join()
    }

    fn join(&mut self) -> io::Result<StreamDigests> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w.join().map_err(|_| io::Error::other("layer writer thread panicked"))?,
            None => Err(io::Error::other("layer writer already finished")),
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(SINK_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == SINK_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
