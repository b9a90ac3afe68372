//! Registries: images pulled over the OCI distribution protocol (Docker's registry API v2)
//! into the store, as dockerd records them.
//!
//! - `conf`: mirrors, locations, insecure and blocked registries (containers-registries.conf).
//! - `endpoint`: the host, HTTPS with docker's `certs.d`, plain HTTP only where allowed.
//! - `credentials`: docker's `config.json` and credential helpers.
//! - `client`: authenticated requests (Basic, Bearer tokens), retried when transient.
//! - `manifest`, `blob`: manifests checked against their digests; blobs streamed, resumed
//!   with `Range` requests when a connection breaks.
//! - [`pull()`]: the whole pull, through the image store's pipeline.
//! - [`push()`]: layers skipped, mounted or streamed up compressed; the manifest last.
//! - [`login()`], [`logout()`]: credentials checked, then kept as the docker CLI keeps them.

mod blob;
mod client;
mod conf;
mod credentials;
mod endpoint;
mod login;
mod manifest;
mod pull;
mod push;
mod upload;

use std::path::PathBuf;
use std::time::Duration;

pub use conf::{Mirror, RegistriesConf, RegistryEntry, Source};
pub use login::{LoggedIn, login, logout, server_domain};
pub use pull::{PullOptions, Pulled, list_tags, pull};
pub use push::{PushCompression, PushEvent, PushOptions, PushProgress, Pushed, push};

/// How registries are reached: TLS material, insecure hosts, credentials, limits.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Directories in docker's `certs.d` layout: `<dir>/<host[:port]>/` holds CAs (`*.crt`)
    /// and a client certificate (`client.cert` with `client.key`).
    pub certs_dirs: Vec<PathBuf>,
    /// Hosts (`host[:port]`) reached without verifying TLS, or over plain HTTP. Loopback hosts
    /// may always use plain HTTP, but their TLS certificates are verified.
    pub insecure: Vec<String>,
    /// The directory of docker's `config.json` (credentials); `None`: none are used.
    pub docker_config: Option<PathBuf>,
    /// Layers fetched at once.
    pub max_concurrent: usize,
    /// Attempts of a request that fails in a way that may pass (dropped connection, 5xx, 429).
    pub attempts: u32,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a read may wait before the connection counts as stalled (and is resumed).
    pub read_timeout: Duration,
    /// Mirrors, locations, insecure and blocked registries (containers-registries.conf).
    pub conf: RegistriesConf,
}

/// Remove the bytes pulls kept to resume from (`strata/pulls/`), except those a running pull
/// writes; returns how many bytes that freed (`system prune`).
pub fn prune_partial_pulls(store: &crate::Store) -> crate::Result<u64> {
    blob::Partial::remove_idle(&partials_dir(store))
}

/// Where pulls keep the bytes of blobs they are fetching (`strata/pulls/<hex>.partial`).
pub(crate) fn partials_dir(store: &crate::Store) -> std::path::PathBuf {
    store.private_dir().join("pulls")
}

/// Blobs pulls kept to resume from that no pull is writing now, and their sizes (`check`).
pub(crate) fn idle_partials(store: &crate::Store) -> crate::Result<Vec<(std::path::PathBuf, u64)>> {
    blob::Partial::idle(&partials_dir(store))
}

/// Remove a blob a pull kept, unless a pull is writing it now.
pub(crate) fn remove_partial(path: &std::path::Path) -> crate::Result<()> {
    blob::Partial::remove_if_idle(path).map(drop)
}

impl RegistryOptions {
    /// The options for reaching `source`: its insecurity added.
    pub(crate) fn for_source(&self, source: &Source) -> std::borrow::Cow<'_, RegistryOptions> {
        if source.insecure && !self.insecure.contains(&source.domain) {
            let mut options = self.clone();
            options.insecure.push(source.domain.clone());
            std::borrow::Cow::Owned(options)
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }
}

impl Default for RegistryOptions {
    /// docker's: `/etc/docker/certs.d`, no insecure hosts, credentials from `$DOCKER_CONFIG`
    /// or `~/.docker`, 3 layers at once, 5 attempts.
    fn default() -> Self {
        RegistryOptions {
            certs_dirs: vec![PathBuf::from("/etc/docker/certs.d")],
            insecure: Vec::new(),
            docker_config: credentials::default_config_dir(),
            max_concurrent: 3,
            attempts: 5,
            connect_timeout: endpoint::CONNECT_TIMEOUT,
            read_timeout: endpoint::READ_TIMEOUT,
            conf: RegistriesConf::default(),
        }
    }
}
