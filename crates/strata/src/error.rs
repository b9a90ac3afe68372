//! The library's one error type. Messages are lowercase, name what failed and, where there is
//! one, what to do about it in the library's terms; hints that name commands are the CLI's.

use std::io;
use std::path::PathBuf;

use crate::id::LayerId;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the strata engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An ID did not have the expected form.
    #[error("invalid ID {input:?}: expected {expected}")]
    InvalidId {
        /// What was given.
        input: String,
        /// What an ID of this kind looks like.
        expected: &'static str,
    },

    /// No layer with this ID exists in the store.
    #[error("no such layer: {0}")]
    LayerNotFound(LayerId),

    /// The parent named for a new layer does not exist.
    #[error("parent layer {0} does not exist")]
    ParentNotFound(LayerId),

    /// A layer with this ID already exists.
    #[error("layer {0} already exists")]
    LayerExists(LayerId),

    /// The layer cannot be removed while other layers are built on it.
    #[error("layer {id} has {} child layer(s) ({}): remove them first", children.len(), short_list(children))]
    HasChildren {
        /// The layer.
        id: LayerId,
        /// Its direct children.
        children: Vec<LayerId>,
    },

    /// The layer cannot be removed while it is mounted.
    #[error("layer {id} is mounted ({mounts} reference(s)): unmount it first")]
    Mounted {
        /// The layer.
        id: LayerId,
        /// How many mount references it holds.
        mounts: u32,
    },

    /// Something stands on the layer: changing it would break an image or a container.
    #[error("layer {id} is in use by {}: removing, unmounting or writing it would break them", users.join(", "))]
    LayerInUse {
        /// The layer.
        id: LayerId,
        /// What uses it, in words.
        users: Vec<String>,
    },

    /// An unmount was asked for a layer that is not mounted.
    #[error("layer {0} is not mounted")]
    NotMounted(LayerId),

    /// The stack is deeper than the kernel's OverlayFS can mount.
    #[error(
        "layer {id} would need {lowers} lower layers, but OverlayFS stacks at most {max} (kernel limit OVL_MAX_STACK)"
    )]
    TooDeep {
        /// The layer.
        id: LayerId,
        /// Lower layers the mount would need.
        lowers: usize,
        /// The kernel's limit.
        max: usize,
    },

    /// The mount data does not fit in one page and this kernel cannot take lower layers one by
    /// one through the new mount API.
    #[error(
        "layer {id} has {lowers} lower layers, too many for one page of mount options, and this kernel ({kernel}) has no `lowerdir+` in the new mount API (needs Linux 6.8 or later)"
    )]
    NeedsLowerdirPlus {
        /// The layer.
        id: LayerId,
        /// Lower layers the mount would need.
        lowers: usize,
        /// The running kernel's release.
        kernel: String,
    },

    /// The store root is on a filesystem where OverlayFS cannot work.
    #[error("{path} cannot hold an overlay2 store: {reason}")]
    UnsupportedFilesystem {
        /// The directory tested.
        path: PathBuf,
        /// Why it does not work.
        reason: String,
    },

    /// The store was written by a newer strata, whose state this one cannot read safely.
    #[error(
        "the store at {root} was written by a newer strata (its state is format {found}; this strata knows up to {known}): use that strata or a newer one"
    )]
    NewerStore {
        /// The store root.
        root: PathBuf,
        /// The version recorded in `strata/version`.
        found: u32,
        /// The newest this strata knows.
        known: u32,
    },

    /// The store root, or one of its top-level entries, is one another user could change.
    #[error("refusing the store at {path}: {reason}")]
    Unsafe {
        /// The root or entry.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// Something on disk is not as the overlay2 layout says it must be.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The kernel refused an OverlayFS mount.
    #[error("cannot mount layer {id} at {target}: {source}{}", log_suffix(log))]
    Mount {
        /// The layer.
        id: LayerId,
        /// The mount point.
        target: PathBuf,
        /// The kernel's error.
        source: io::Error,
        /// Messages the kernel logged on the filesystem context, if any.
        log: Vec<String>,
    },

    /// A layer archive is malformed or tries something a layer may not do.
    #[error("bad layer archive: {reason}")]
    Archive {
        /// What is wrong.
        reason: String,
    },

    /// Content did not hash to what was expected.
    #[error("{what} mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which digest (`diffID`, `digest`).
        what: &'static str,
        /// What was asked for.
        expected: crate::digest::Digest,
        /// What the content hashes to.
        actual: crate::digest::Digest,
    },

    /// A layer can only be applied once, into an empty layer nothing stands on.
    #[error("layer {id} {reason}: apply into a new layer (strata layer create)")]
    NotApplicable {
        /// The layer.
        id: LayerId,
        /// Why not.
        reason: &'static str,
    },

    /// A name that is not a valid image reference.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No image matches a name or ID.
    #[error("no such image: {0}")]
    ImageNotFound(String),

    /// Something that should be an image (an archive, a config, a manifest) is not a valid one.
    #[error("{what}: {reason}")]
    BadImage {
        /// The archive or object.
        what: String,
        /// What is wrong.
        reason: String,
    },

    /// An image cannot be removed as asked.
    #[error("cannot remove {image}: {reason}")]
    ImageConflict {
        /// The image as named.
        image: String,
        /// Why, and what to do.
        reason: String,
    },

    /// No container matches a name or ID.
    #[error("no such container: {0}")]
    ContainerNotFound(String),

    /// No volume has that name.
    #[error("no such volume: {0}")]
    VolumeNotFound(String),

    /// A volume that containers use cannot be removed.
    #[error("remove {volume}: volume is in use - [{}]: remove those containers first (strata rm)", containers.join(", "))]
    VolumeInUse {
        /// The volume.
        volume: String,
        /// The containers that use it (IDs).
        containers: Vec<String>,
    },

    /// A container cannot do what was asked.
    #[error("container {container}: {reason}")]
    Container {
        /// The container as named.
        container: String,
        /// Why, and what to do.
        reason: String,
    },

    /// An image has no command to run and none was given.
    #[error("no command specified: image {0} has no Cmd or Entrypoint; give one after the image name")]
    NoCommand(String),

    /// A `-u USER[:GROUP]` that the image does not know, or a bad option for a container.
    #[error("{what} {value:?}: {reason}")]
    BadOption {
        /// What it is (`user`, `working directory`).
        what: &'static str,
        /// As given.
        value: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// The OCI runtime is missing or failed.
    #[error("OCI runtime {runtime}: {reason}")]
    Runtime {
        /// `runc`, `crun`, …
        runtime: String,
        /// What went wrong.
        reason: String,
    },

    /// The container's command cannot be run: not found (exit status 127, as in a shell and
    /// in docker) or not executable (126).
    #[error("cannot run {command:?} in the container: {reason}")]
    Command {
        /// argv[0].
        command: String,
        /// Why.
        reason: String,
        /// The exit status docker gives for it.
        status: u8,
    },

    /// A registry could not be reached, refused a request, or answered what it should not.
    #[error("{registry}: {reason}")]
    Registry {
        /// The registry and repository (`127.0.0.1:5000/app`).
        registry: String,
        /// What happened, and what to do.
        reason: String,
        /// What kind of failure it is.
        kind: ErrorKind,
        /// The transport's error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A build stopped: the Dockerfile is wrong, or a step of it failed.
    #[error("{file}:{line}: {instruction}: {reason}")]
    Build {
        /// The Dockerfile's name.
        file: String,
        /// The instruction's first line (1-based; 0: the file as a whole).
        line: usize,
        /// The instruction, as written (shortened).
        instruction: String,
        /// What is wrong, and what to do.
        reason: String,
        /// A RUN's exit status, which `strata build` exits with (as docker does).
        status: Option<i32>,
        /// The error under it, if any.
        #[source]
        source: Option<Box<Error>>,
    },

    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`mkdir`, `rename`, …).
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
}

/// What kind of failure an [`Error`] is, for a caller to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What was named does not exist (a layer, an image, a container, a file).
    NotFound,
    /// What was to be made exists already.
    AlreadyExists,
    /// Something stands on it: children, mounts, images, containers.
    InUse,
    /// The input is not acceptable: a bad ID, name, option or request.
    InvalidInput,
    /// Data is damaged or not what it says it is: a bad archive or image, a digest mismatch,
    /// a store file that is wrong.
    Corrupt,
    /// The source stopped part way (a dropped connection, an interrupted read): trying again
    /// may work.
    Interrupted,
    /// The registry wants credentials, or refused the ones given.
    Denied,
    /// Anything else: the system refused (permissions, space), the kernel or a runtime failed.
    Other,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use std::io::ErrorKind as Io;
        match self {
            Error::LayerNotFound(_)
            | Error::ParentNotFound(_)
            | Error::NotMounted(_)
            | Error::ImageNotFound(_)
            | Error::ContainerNotFound(_)
            | Error::VolumeNotFound(_) => ErrorKind::NotFound,
            Error::LayerExists(_) => ErrorKind::AlreadyExists,
            Error::HasChildren { .. }
            | Error::Mounted { .. }
            | Error::LayerInUse { .. }
            | Error::ImageConflict { .. }
            | Error::VolumeInUse { .. } => ErrorKind::InUse,
            Error::InvalidId { .. }
            | Error::InvalidReference { .. }
            | Error::BadOption { .. }
            | Error::NoCommand(_)
            | Error::NotApplicable { .. }
            | Error::TooDeep { .. } => ErrorKind::InvalidInput,
            Error::Corrupt { .. } | Error::Archive { .. } | Error::DigestMismatch { .. } | Error::BadImage { .. } => {
                ErrorKind::Corrupt
            }
            Error::Registry { kind, .. } => *kind,
            Error::Build { source: Some(source), .. } => source.kind(),
            Error::Build { status: None, .. } => ErrorKind::InvalidInput,
            Error::Io { source, .. } => match source.kind() {
                Io::NotFound => ErrorKind::NotFound,
                Io::AlreadyExists => ErrorKind::AlreadyExists,
                Io::InvalidData => ErrorKind::Corrupt,
                Io::Interrupted
                | Io::UnexpectedEof
                | Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::TimedOut => ErrorKind::Interrupted,
                _ => ErrorKind::Other,
            },
            _ => ErrorKind::Other,
        }
    }

    /// An [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        Error::Io { op, path: path.into(), source: source.into() }
    }

    /// An [`Error::Corrupt`] for `path`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}

/// Extension to attach an operation and a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Wrap the error as [`Error::Io`].
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

fn short_list(ids: &[LayerId]) -> String {
    let mut names: Vec<&str> = ids.iter().take(3).map(|id| &id.as_str()[..12]).collect();
    if ids.len() > 3 {
        names.push("…");
    }
    names.join(", ")
}

fn log_suffix(log: &[String]) -> String {
    if log.is_empty() { String::new() } else { format!(" (kernel: {})", log.join("; ")) }
}
