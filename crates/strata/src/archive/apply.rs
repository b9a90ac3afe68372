//! Apply a layer tarball to an empty layer: extract aside, check the digests, swap it in.

use std::io::Read;

use rustix::fs::{CWD, RenameFlags};

use super::pipeline::{Pipeline, StreamDigests};
use super::tarstream::TarStream;
use super::unpack::Extractor;
use crate::digest::{DiffId, Digest};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::mkdir;
use crate::id::LayerId;
use crate::layer::LayerStore;
use crate::layer::layout::mode;
use crate::scratch::Scratch;

/// What to check while applying.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The diffID the uncompressed tar must hash to.
    pub diff_id: Option<DiffId>,
    /// The digest the input, as given (compressed or not), must hash to.
    pub digest: Option<Digest>,
    /// Record the tar-split of the stream (see [`Applied::tar_split`]).
    pub tar_split: bool,
}

/// What applying a layer found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Digests and sizes of the stream.
    #[serde(flatten)]
    pub stream: StreamDigests,
    /// Tar entries read.
    pub entries: u64,
    /// The layer's size as dockerd counts it (regular files once per inode, plus symlinks).
    pub layer_size: u64,
    /// The gzipped tar-split (`tar-split.json.gz`), if asked for.
    #[serde(skip)]
    pub tar_split: Option<Vec<u8>>,
}

/// A layer extracted aside, not yet part of any layer: given to an image writer's `layer`,
/// which makes it one, or removed when dropped.
#[derive(Debug)]
pub struct Staged {
    pub(crate) scratch: Scratch,
    pub(crate) applied: Applied,
}

impl Staged {
    /// The extracted files.
    pub fn dir(&self) -> &std::path::Path {
        self.scratch.dir()
    }

    /// What extracting it found: its diffID, sizes and tar-split.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }
}

impl serde::Serialize for StreamDigests {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("diff_id", &self.diff_id)?;
        m.serialize_entry("digest", &self.compressed)?;
        m.serialize_entry("compression", &self.compression)?;
        m.serialize_entry("compressed_size", &self.compressed_size)?;
        m.serialize_entry("tar_size", &self.size)?;
        m.end()
    }
}

impl LayerStore {
    /// Apply a layer tarball (plain, gzip or zstd) to `id`, which must be empty, unmounted and
    /// without children. The tar is extracted aside while it streams in, its digests are
    /// checked, and only then does it become the layer's `diff`: on any error the layer is
    /// left empty.
    pub fn apply(&self, id: &LayerId, input: impl Read + Send, options: &ApplyOptions) -> Result<Applied> {
        self.apply_checked(id, input, options, |_| Ok(()))
    }

    /// [`apply`](Self::apply), with `check` called under the store lock before the swap.
    pub(crate) fn apply_checked(
        &self,
        id: &LayerId,
        input: impl Read + Send,
        options: &ApplyOptions,
        check: impl FnOnce(&crate::lock::StoreLock) -> Result<()>,
    ) -> Result<Applied> {
        self.check_applicable(id)?;
        let staged = self.stage(input, options)?;
        crate::failpoint::hit("apply.extracted");
        let lock = self.store().write_lock()?;
        self.check_applicable(id)?;
        check(&lock)?;
        let diff = self.diff_dir(id);
        rustix::fs::renameat_with(CWD, staged.dir(), CWD, &diff, RenameFlags::EXCHANGE).ctx("rename", &diff)?;
        crate::failpoint::hit("apply.swapped");
        let Staged { scratch, applied } = staged;
        scratch.finish()?;
        Ok(applied)
    }

    /// Extract a layer tarball into a scratch directory of the store, checking its digests:
    /// the first half of [`apply`](Self::apply), for callers that make the layer afterwards.
    pub fn stage(&self, input: impl Read + Send, options: &ApplyOptions) -> Result<Staged> {
        self.store().ensure_layout()?;
        let scratch = Scratch::new(self.store(), "stage a layer")?;
        mkdir(scratch.dir(), mode::DIFF)?;

        // The reader thread lives in a scope, so `input` may borrow.
        let (unpacked, stream) = std::thread::scope(|scope| -> Result<_> {
            let pipeline = Pipeline::start(scope, input)
                .map_err(|e| Error::Archive { reason: format!("cannot start the reader thread: {e}") })?;
            let mut tar = TarStream::new(pipeline);
            if options.tar_split {
                tar.record_tar_split();
            }
            let unpacked = Extractor::new(scratch.dir())?.unpack(&mut tar)?;
            let tar_split = tar.finish_split()?;
            let stream = tar.into_inner().finish();
            let stream = stream.map_err(super::pipeline::stream_error)?;
            Ok(((unpacked, tar_split), stream))
        })?;
        let (unpacked, tar_split) = unpacked;
        for (what, expected, actual) in [
            ("diffID", options.diff_id.map(|d| d.digest()), stream.diff_id.digest()),
            ("digest", options.digest, stream.compressed),
        ] {
            if let Some(expected) = expected.filter(|e| *e != actual) {
                return Err(Error::DigestMismatch { what, expected, actual });
            }
        }
        Ok(Staged {
            scratch,
            applied: Applied { stream, entries: unpacked.entries, layer_size: unpacked.size, tar_split },
        })
    }

    /// Make `dir` (a container's writable layer, unmounted, which the caller gives up) a
    /// staged layer without copying its files: moved aside whole, OverlayFS's bookkeeping
    /// xattrs removed (`origin`, `impure`, `nlink`; `opaque` is the layer format's own), then
    /// packed once to hash it and record its tar-split. A directory the kernel redirected or a
    /// metacopy file cannot be taken as it is: `Ok(None)`, and `dir` is left as it was.
    pub(crate) fn stage_taken(&self, dir: &std::path::Path) -> Result<Option<Staged>> {
        self.store().ensure_layout()?;
        if !portable(dir)? {
            return Ok(None);
        }
        let scratch = Scratch::new(self.store(), "stage a layer")?;
        rustix::fs::renameat(CWD, dir, CWD, scratch.dir()).ctx("rename", dir)?;
        strip_overlay_xattrs(scratch.dir())?;
        let root = scratch.dir().to_owned();
        let (reader, writer) = crate::archive::pipe().ctx("pipe", &root)?;
        let (read, packed) = std::thread::scope(|scope| {
            let packer = scope.spawn(|| super::pack::pack(&root, writer, super::Compression::None));
            let read = (|| -> Result<_> {
                let pipeline = Pipeline::start(scope, reader)
                    .map_err(|e| Error::Archive { reason: format!("cannot start the reader thread: {e}") })?;
                let mut tar = TarStream::new(pipeline);
                tar.record_tar_split();
                let (mut entries, mut size) = (0u64, 0u64);
                while let Some(entry) = tar.next_entry()? {
                    entries += 1;
                    if entry.kind.is_file() || entry.kind.is_contiguous() {
                        size += entry.size;
                    } else if entry.kind.is_symlink() {
                        size += entry.link.as_ref().map_or(0, |l| l.len() as u64);
                    }
                    tar.read_content(|_| Ok(()))?;
                }
                let tar_split = tar.finish_split()?;
                let stream = tar.into_inner().finish().map_err(super::pipeline::stream_error)?;
                Ok((entries, size, tar_split, stream))
            })();
            (read, packer.join().expect("the packer does not panic"))
        });
        let (entries, layer_size, tar_split, stream) = read?;
        packed?;
        Ok(Some(Staged { scratch, applied: Applied { stream, entries, layer_size, tar_split } }))
    }

    /// Whether `id` can take a tarball. Takes no lock: called both before and under it.
    fn check_applicable(&self, id: &LayerId) -> Result<()> {
        let info = self.read_info(id, None)?;
        let not = |reason| Err(Error::NotApplicable { id: id.clone(), reason });
        if info.mounts > 0 {
            return not("is mounted");
        }
        if info.committed {
            return not("already has child layers");
        }
        let diff = self.diff_dir(id);
        if std::fs::read_dir(&diff).ctx("read directory", &diff)?.next().is_some() {
            return not("is not empty");
        }
        Ok(())
    }
}

impl LayerStore {
    /// Write the tar of the layer's own changes (its `diff/` alone, whiteouts in tar form) to
    /// `out`, compressed as asked; returns its diffID, digest and sizes.
    pub fn diff(
        &self,
        id: &LayerId,
        out: impl std::io::Write + Send,
        compression: super::Compression,
    ) -> Result<StreamDigests> {
        let _lock = self.store().read_lock()?;
        self.read_info(id, None)?;
        super::pack::pack(&self.diff_dir(id), out, compression)
    }
}

impl LayerStore {
    /// What the layer changed relative to its parent (`docker diff` of a container layer,
    /// whose parent is its init layer). The parent is mounted read-only for the lookups.
    pub fn changes(&self, id: &LayerId) -> Result<Vec<super::Change>> {
        let info = self.info(id)?;
        let upper = self.diff_dir(id);
        let Some(parent) = info.parent else { return super::changes::changes(&upper, None) };
        let lower = self.mount(&parent)?;
        let result = super::changes::changes(&upper, Some(&lower));
        self.unmount(&parent)?;
        result
    }

    /// The layer's size as dockerd reports it: bytes of its own non-directory files, each
    /// inode once.
    pub fn size(&self, id: &LayerId) -> Result<u64> {
        let _lock = self.store().read_lock()?;
        self.read_info(id, None)?;
        super::changes::size(&self.diff_dir(id))
    }
}

impl LayerStore {
    /// Write the exact tarball the layer was applied from, rebuilt from its tar-split
    /// (recorded by [`ApplyOptions::tar_split`]) and its files; a file changed since fails.
    pub fn reassemble(&self, id: &LayerId, tar_split: &[u8], out: &mut impl std::io::Write) -> Result<()> {
        let _lock = self.store().read_lock()?;
        self.read_info(id, None)?;
        super::tarsplit::assemble(tar_split, &self.diff_dir(id), out)
    }
}

/// Whether a writable layer's files are a layer as they are: no directory redirected and no
/// metacopy file (the kernel's `redirect_dir` and `metacopy` features, off unless asked).
fn portable(dir: &std::path::Path) -> Result<bool> {
    let mut ok = true;
    walk_xattrs(dir, &mut |_, name| {
        if name == b"trusted.overlay.redirect" || name == b"trusted.overlay.metacopy" {
            ok = false;
        }
        Ok(())
    })?;
    Ok(ok)
}

/// Remove OverlayFS's own xattrs from a writable layer's files, but `opaque`.
fn strip_overlay_xattrs(dir: &std::path::Path) -> Result<()> {
    walk_xattrs(dir, &mut |path, name| {
        if name.starts_with(b"trusted.overlay.") && name != b"trusted.overlay.opaque" {
            let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
            rustix::fs::lremovexattr(path, name).ctx("removexattr", path)?;
        }
        Ok(())
    })
}

/// Call `each(path, xattr name)` for every xattr of every file under `dir`, and `dir`'s.
fn walk_xattrs(dir: &std::path::Path, each: &mut dyn FnMut(&std::path::Path, &[u8]) -> Result<()>) -> Result<()> {
    fn names(path: &std::path::Path) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        loop {
            match rustix::fs::llistxattr(path, &mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
                Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
                Err(e) => return Err(Error::io("listxattr", path, e)),
            }
        }
    }
    let list = names(dir)?;
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        each(dir, name)?;
    }
    let meta = std::fs::symlink_metadata(dir).ctx("stat", dir)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).ctx("read directory", dir)? {
            let path = entry.ctx("read directory", dir)?.path();
            walk_xattrs(&path, each)?;
        }
    }
    Ok(())
}
