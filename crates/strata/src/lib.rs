//! strata: Docker's overlay2 storage, rebuilt in Rust.
//!
//! Layers live under `<root>/overlay2/` exactly as dockerd lays them out, so a root written by
//! strata is read by dockerd and the other way round. The kernel's OverlayFS unions them.
//!
//! - [`Store`]: a store root and its on-disk map.
//! - [`layer`]: create, stack, mount, inspect and remove layers.
//! - [`mount`]: OverlayFS mounts, one page of options or one `lowerdir+` per layer.
//! - [`image`]: images as stacks of layers, in Docker's image database.
//! - [`container`]: containers run by an OCI runtime on an image's layers.
//! - [`registry`]: images pulled from registries.
//! - [`check`]: find and mend what a crash or a hand edit left behind.
//!
//! Every change is built aside and published with one `rename(2)` under a store-wide
//! `flock(2)`, so concurrent processes never see or make half a layer.

#![forbid(unsafe_code)]

pub mod archive;
pub mod build;
pub mod check;
pub mod container;
pub mod df;
pub mod digest;
mod error;
mod failpoint;
mod fsutil;
pub mod glob;
pub mod gopath;
pub mod host;
pub mod id;
pub mod image;
mod index;
pub mod info;
pub mod layer;
mod lock;
pub mod mount;
pub mod prune;
pub mod registry;
mod scratch;
mod store;
mod sys;
mod txn;
mod users;
pub mod volume;

pub use digest::{DiffId, Digest};
pub use error::{Error, ErrorKind, Result};
pub use id::{LayerId, ShortLink};
pub use scratch::Abandoned;
pub use store::{DEFAULT_ROOT, DRIVER_NAME, STATE_VERSION, Store};
pub use users::LayerUser;

/// Every kind of journaled operation, and how to carry out the journal of one whose process
/// died (see `txn`): the crate root wires them, so that the transaction layer below names none
/// of the modules above it.
pub(crate) static RECOVERIES: &[txn::Recovery] = &[image::journal::RECOVERY, container::journal::RECOVERY];
