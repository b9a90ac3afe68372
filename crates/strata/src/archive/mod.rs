//! Layer archives: tarballs in, tarballs out, in the OCI/Docker layer format.
//!
//! - [`LayerStore::apply`](crate::layer::LayerStore::apply): a tar (plain, gzip or zstd) into an
//!   empty layer, safely, with its diffID, digest and size computed in the same pass.
//! - [`LayerStore::diff`](crate::layer::LayerStore::diff): a layer's own changes as a tar, the
//!   same bytes every time.
//!
//! Whiteouts have two forms: in a tar `.wh.NAME` and `.wh..wh..opq`; on disk (what OverlayFS
//! reads) a 0/0 character device `NAME` and `trusted.overlay.opaque=y`. Apply converts the
//! first to the second.

mod apply;
mod compression;
mod pack;
mod path;
mod pipeline;
mod tarstream;
mod unpack;

pub use apply::{Applied, ApplyOptions};
pub use compression::{Compression, Encoder};
pub use pipeline::StreamDigests;
