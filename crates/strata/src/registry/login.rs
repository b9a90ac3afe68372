//! `login` and `logout`: credentials checked against the registry, then kept where the docker
//! CLI keeps them (a credential helper, or `config.json`), so docker, podman and strata share
//! them.

use super::RegistryOptions;
use super::client::Client;
use super::credentials::{self, Credentials};
use crate::error::{Error, ErrorKind, Result};

/// Where a login's credentials went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedIn {
    /// The registry, as keyed in `config.json` (`https://index.docker.io/v1/` for Docker Hub).
    pub server: String,
    /// `config.json`'s path, or the credential helper.
    pub stored_in: String,
    /// Whether an identity token was kept in place of the password.
    pub identity_token: bool,
}

/// The registry a `login`/`logout` argument names: `host[:port]`, a URL of one, or none
/// (Docker Hub).
pub fn server_domain(server: Option<&str>) -> String {
    let Some(server) = server.filter(|s| !s.is_empty()) else { return "docker.io".into() };
    let rest = server.strip_prefix("https://").or_else(|| server.strip_prefix("http://")).unwrap_or(server);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        host => host.to_owned(),
    }
}

/// Check `username` and `password` with the registry of `domain`, then store them (or the
/// identity token its token service gave instead).
pub fn login(domain: &str, username: &str, password: &str, registry: &RegistryOptions) -> Result<LoggedIn> {
    let dir = config_dir(domain, registry)?;
    let given = Credentials {
        username: username.to_owned(),
        secret: password.to_owned(),
        identity_token: false,
        from: "the command line".into(),
    };
    let client = Client::connect_as(domain, "", registry, "pull", Some(given))?;
    let token = client.login()?;
    let (secret, identity_token) = match &token {
        Some(token) => (token.as_str(), true),
        None => (password, false),
    };
    let stored_in = credentials::store(domain, username, secret, identity_token, &dir)?;
    Ok(LoggedIn { server: credentials::key_of(domain), stored_in, identity_token })
}

/// Forget the credentials stored for `domain`. Returns whether there were any.
pub fn logout(domain: &str, registry: &RegistryOptions) -> Result<bool> {
    credentials::erase(domain, &config_dir(domain, registry)?)
}

fn config_dir(domain: &str, registry: &RegistryOptions) -> Result<std::path::PathBuf> {
    registry.docker_config.clone().ok_or_else(|| Error::Registry {
        registry: domain.to_owned(),
        reason: "there is nowhere to keep credentials: set DOCKER_CONFIG or HOME".into(),
        kind: ErrorKind::InvalidInput,
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_as_docker_names_them() {
        assert_eq!(server_domain(None), "docker.io");
        assert_eq!(server_domain(Some("https://index.docker.io/v1/")), "docker.io");
        assert_eq!(server_domain(Some("registry.example:5000")), "registry.example:5000");
        assert_eq!(server_domain(Some("https://registry.example:5000/v2/")), "registry.example:5000");
    }
}
