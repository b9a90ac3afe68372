//! Where a registry is reached, and how: its host (`docker.io` is served by
//! `registry-1.docker.io`), HTTPS verified against the system's roots plus docker's
//! `certs.d/<host>/` CAs and client certificates, and plain HTTP only for loopback hosts and
//! those configured insecure.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::RegistryOptions;
use crate::error::{Error, ErrorKind, Result};

/// Docker Hub's registry host, for names without a domain (`docker.io`).
const DOCKER_HUB: &str = "registry-1.docker.io";
/// The system's CA bundle on Debian, kept beside `certs.d` CAs.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host (and port) serving a reference's domain.
pub(crate) fn host_of(domain: &str) -> &str {
    if domain == "docker.io" || domain == "index.docker.io" { DOCKER_HUB } else { domain }
}

/// Whether `host[:port]` names this machine (`localhost`, 127.0.0.0/8, ::1).
pub(crate) fn is_loopback(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let bare = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => {
            host.rsplit_once(':').map_or(host, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host })
        }
    };
    bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One way to reach a registry: a base URL and an agent set up for it.
pub(crate) struct Endpoint {
    /// `https://host[:port]` or `http://host[:port]`.
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
}

/// The ways to try for `host`, in order: HTTPS, then plain HTTP where allowed.
pub(crate) fn endpoints(host: &str, options: &RegistryOptions) -> Result<Vec<Endpoint>> {
    let insecure = options.insecure.iter().any(|h| h == host);
    let tls = tls_config(host, options, insecure)?;
    let mut out = vec![Endpoint { base: format!("https://{host}"), agent: agent(tls.clone(), options) }];
    if insecure || is_loopback(host) {
        out.push(Endpoint { base: format!("http://{host}"), agent: agent(tls, options) });
    }
    Ok(out)
}

fn agent(tls: TlsConfig, options: &RegistryOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_per_read(Some(options.read_timeout))
        .max_idle_connections_per_host(options.max_concurrent.max(3) + 2)
        // A redirect to storage never carries the registry's Authorization (ureq's default,
        // said here because it matters).
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .max_redirects(5)
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Roots and client certificates for `host`: the system's roots, plus the `*.crt` CAs of
/// `<certs dir>/<host>/`, and a `*.cert`/`*.key` pair there as the client's certificate.
fn tls_config(host: &str, options: &RegistryOptions, insecure: bool) -> Result<TlsConfig> {
    let mut builder = TlsConfig::builder().disable_verification(insecure);
    let mut cas: Vec<Certificate<'static>> = Vec::new();
    for dir in options.certs_dirs.iter().map(|d| d.join(host)) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for path in &names {
            let name = path.to_string_lossy();
            if name.ends_with(".crt") {
                cas.extend(read_certs(path)?);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key_path = Path::new(&format!("{stem}.key")).to_owned();
                let pem = std::fs::read(&key_path).map_err(|e| tls_error(host, &key_path, e.to_string()))?;
                let key = PrivateKey::from_pem(&pem).map_err(|e| tls_error(host, &key_path, e.to_string()))?;
                builder = builder.client_cert(Some(ClientCert::new_with_certs(&read_certs(path)?, key)));
            }
        }
    }
    if cas.is_empty() {
        builder = builder.root_certs(RootCerts::PlatformVerifier);
    } else {
        if let Ok(system) = std::fs::read(SYSTEM_BUNDLE) {
            cas.extend(ureq::tls::parse_pem(&system).filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            }));
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&cas));
    }
    Ok(builder.build())
}

fn read_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(tls_error("", path, "it holds no PEM certificate".into()));
    }
    Ok(certs)
}

fn tls_error(host: &str, path: &Path, reason: String) -> Error {
    Error::Registry {
        registry: host.to_owned(),
        reason: format!("cannot use {}: {reason}", path.display()),
        kind: ErrorKind::InvalidInput,
        source: None,
    }
}

/// Connect and read timeouts when none are configured.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A read that waits longer than this is a stalled connection.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_and_loopback() {
        assert_eq!(host_of("docker.io"), "registry-1.docker.io");
        assert_eq!(host_of("quay.io"), "quay.io");
        for host in ["localhost", "localhost:5000", "127.0.0.1", "127.3.2.1:80", "[::1]:5000", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example:5000", "[::2]:5000"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
