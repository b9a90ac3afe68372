//! Layer archives: tarballs in, tarballs out, in the OCI/Docker layer format.
//!
//! - [`LayerStore::apply`](crate::layer::LayerStore::apply): a tar (plain, gzip or zstd) into an
//!   empty layer, safely, with its diffID, digest and size computed in the same pass.
//! - [`LayerStore::diff`](crate::layer::LayerStore::diff): a layer's own changes as a tar, the
//!   same bytes every time.
//! - [`LayerStore::changes`](crate::layer::LayerStore::changes) and
//!   [`LayerStore::size`](crate::layer::LayerStore::size): `docker diff` and the layer size,
//!   from the layer's own files.
//!
//! Whiteouts have two forms: in a tar `.wh.NAME` and `.wh..wh..opq`; on disk (what OverlayFS
//! reads) a 0/0 character device `NAME` and `trusted.overlay.opaque=y`. Apply converts the
//! first to the second.

mod apply;
mod changes;
mod compression;
pub(crate) mod dir;
pub(crate) mod pack;
mod parallel_gzip;
mod path;
mod pipeline;
pub(crate) mod tarsplit;
mod tarstream;
pub mod tree;
mod unpack;
mod writers;

pub use apply::{Applied, ApplyOptions, Staged};
pub(crate) use changes::size as tree_size;
pub use changes::{Change, ChangeKind};
pub use compression::{Compression, Encoder};
pub use pipeline::StreamDigests;

/// Extract a tar of plain files (no whiteouts) under `prefix` inside `root`, an existing
/// directory, never writing outside `root` (see `unpack`): how a build's COPY and ADD and `cp`
/// write into a container's tree.
pub(crate) fn extract_into(
    root: &std::path::Path,
    prefix: &std::path::Path,
    tar: impl std::io::Read,
) -> crate::Result<()> {
    let mut stream = tarstream::TarStream::new(tar);
    unpack::Extractor::plain(root, prefix)?.unpack(&mut stream)?;
    Ok(())
}

/// A pipe between two threads of one tar stream, 1 MiB deep: the reader wakes once per MiB,
/// not per 64 KiB page ring (a smaller pipe where the kernel refuses a bigger one).
pub fn pipe() -> std::io::Result<(std::io::PipeReader, std::io::PipeWriter)> {
    let (reader, writer) = std::io::pipe()?;
    let _ = rustix::pipe::fcntl_setpipe_size(&writer, 1 << 20);
    Ok((reader, writer))
}
