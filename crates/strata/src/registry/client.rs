//! One repository of one registry: requests authenticated as the registry asks (nothing,
//! Basic, or Bearer tokens from its token service, renewed as they expire), retried with
//! backoff when the failure is transient (a dropped connection, 5xx, 429 with `Retry-After`),
//! and errors that say what happened and which credentials were tried.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use ureq::http::{HeaderMap, Response};

use super::RegistryOptions;
use super::credentials::{self, Credentials};
use super::endpoint::{self, Endpoint};
use crate::error::{Error, ErrorKind, Result};

/// The longest wait between attempts (a `Retry-After` asking more is cut to this).
const MAX_WAIT: Duration = Duration::from_secs(10);
/// A token's life when the service does not say (and the least it is taken to be).
const MIN_TOKEN_LIFE: Duration = Duration::from_secs(60);
/// The most of an error body read to explain a failure.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// How the registry wants requests authenticated.
enum Auth {
    /// Not at all.
    Anonymous,
    /// With the user's name and password on every request.
    Basic,
    /// With a token from `realm`, kept until it expires.
    Bearer { realm: String, service: Option<String>, token: Option<(String, Instant)> },
}

/// A repository of a registry, reached and authenticated.
pub(crate) struct Client {
    endpoint: Endpoint,
    /// The registry as named (`docker.io`, `127.0.0.1:5000`).
    pub(crate) domain: String,
    /// The repository's path (`library/debian`).
    pub(crate) repository: String,
    credentials: Option<Credentials>,
    /// `pull`, or `pull,push`.
    actions: &'static str,
    auth: Mutex<Auth>,
    attempts: u32,
    /// A refresh token the token service gave at a login.
    refresh_token: Mutex<Option<String>>,
    /// Other repositories a token must cover (`pull` of a push's mount sources).
    extra_scopes: Vec<String>,
}

impl Client {
    /// Reach the registry of `domain` (HTTPS, or plain HTTP where allowed) and learn how it
    /// authenticates, for `actions` on `repository`.
    pub(crate) fn connect(
        domain: &str,
        repository: &str,
        options: &RegistryOptions,
        actions: &'static str,
    ) -> Result<Client> {
        let credentials = credentials::lookup(domain, options.docker_config.as_deref())?;
        Client::connect_as(domain, repository, options, actions, credentials)
    }

    /// [`connect`](Self::connect) to where `source` says (a mirror, a location of
    /// registries.conf), with its insecurity.
    pub(crate) fn connect_source(
        source: &super::Source,
        options: &RegistryOptions,
        actions: &'static str,
    ) -> Result<Client> {
        Client::connect(&source.domain, &source.path, &options.for_source(source), actions)
    }

    /// [`connect`](Self::connect) with the credentials given, not those stored.
    pub(crate) fn connect_as(
        domain: &str,
        repository: &str,
        options: &RegistryOptions,
        actions: &'static str,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let host = endpoint::host_of(domain);
        let what = format!("{domain}/{repository}");
        let mut failures = Vec::new();
        for endpoint in endpoint::endpoints(host, options)? {
            let url = format!("{}/v2/", endpoint.base);
            let response = match endpoint.agent.get(&url).call() {
                Ok(response) => response,
                Err(e) => {
                    if let Some(reason) = certificate_problem(&e) {
                        return Err(Error::Registry {
                            registry: what,
                            reason: format!(
                                "its TLS certificate is not trusted ({reason}); put its CA in certs.d/{host}/ca.crt, or list {host} as insecure"
                            ),
                            kind: ErrorKind::Denied,
                            source: Some(Box::new(e)),
                        });
                    }
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let auth = match response.status().as_u16() {
                200 => Auth::Anonymous,
                401 => parse_challenge(response.headers()).ok_or_else(|| Error::Registry {
                    registry: what.clone(),
                    reason: format!("{url} answered 401 without a challenge this client understands"),
                    kind: ErrorKind::Denied,
                    source: None,
                })?,
                status => {
                    failures.push(format!("{url} answered {status}: not a registry (distribution API v2)"));
                    continue;
                }
            };
            return Ok(Client {
                endpoint,
                domain: domain.to_owned(),
                repository: repository.to_owned(),
                credentials,
                actions,
                auth: Mutex::new(auth),
                attempts: options.attempts.max(1),
                refresh_token: Mutex::new(None),
                extra_scopes: Vec::new(),
            });
        }
        Err(Error::Registry {
            registry: what,
            reason: format!("cannot reach it: {}", failures.join("; ")),
            kind: ErrorKind::Interrupted,
            source: None,
        })
    }

    /// `domain/repository`, for messages.
    pub(crate) fn what(&self) -> String {
        if self.repository.is_empty() { self.domain.clone() } else { format!("{}/{}", self.domain, self.repository) }
    }

    /// Tokens will also cover `pull` of these repositories (the sources a push mounts from).
    pub(crate) fn also_pull_from(&mut self, repositories: impl IntoIterator<Item = String>) {
        self.extra_scopes.extend(repositories.into_iter().map(|r| format!("repository:{r}:pull")));
        self.extra_scopes.sort();
        self.extra_scopes.dedup();
    }

    /// Send a request with a streamed body, authenticated, not retried (a stream cannot be
    /// sent twice): the caller starts again.
    pub(crate) fn send_body(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: ureq::SendBody<'_>,
    ) -> Result<Response<ureq::Body>> {
        let request = self.request(method, url, headers, body)?;
        self.endpoint.agent.run(request).map_err(|e| Error::Registry {
            registry: self.what(),
            reason: format!("{method} {url}: {e}"),
            kind: transport_kind(&e),
            source: Some(Box::new(e)),
        })
    }

    /// A request with `headers` and the `Authorization` the registry wants.
    fn request<B>(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: B,
    ) -> Result<ureq::http::Request<B>> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        if let Some(authorization) = self.authorization()? {
            request = request.header("Authorization", authorization);
        }
        request.body(body).map_err(|e| self.error(format!("bad request {url}: {e}"), ErrorKind::InvalidInput))
    }

    /// `scheme://host[:port]`.
    pub(crate) fn base(&self) -> &str {
        &self.endpoint.base
    }

    /// The URL of `path` under the repository (`manifests/latest`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.endpoint.base, self.repository)
    }

    /// Send a request without a body, authenticated, retrying transient failures. The
    /// answer may be any status; 401 is answered by authenticating again once.
    pub(crate) fn send(&self, method: &str, url: &str, headers: &[(&str, String)]) -> Result<Response<ureq::Body>> {
        let mut reauthenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.request(method, url, headers, ())?;
            let response = match self.endpoint.agent.run(request) {
                Ok(response) => response,
                Err(e) if attempt < self.attempts && is_transient(&e) => {
                    tracing::info!(url, attempt, "retrying after {e}");
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                Err(e) => {
                    return Err(Error::Registry {
                        registry: self.what(),
                        reason: format!("{method} {url}{}: {e}", tries(attempt)),
                        kind: transport_kind(&e),
                        source: Some(Box::new(e)),
                    });
                }
            };
            let status = response.status().as_u16();
            if status == 401 && !reauthenticated {
                reauthenticated = true;
                self.renew(response.headers())?;
                continue;
            }
            if status == 401 {
                return Err(self.denied(response));
            }
            if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) && attempt < self.attempts {
                let wait = retry_after(response.headers()).unwrap_or_else(|| backoff(attempt)).min(MAX_WAIT);
                tracing::info!(url, attempt, status, "retrying in {wait:?}");
                std::thread::sleep(wait);
                continue;
            }
            return Ok(response);
        }
    }

    /// The error for an answer that is not what was asked: the registry's own code and
    /// message, and a kind from the status.
    pub(crate) fn refused(&self, what: &str, mut response: Response<ureq::Body>) -> Error {
        let status = response.status().as_u16();
        let kind = match status {
            401 | 403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Interrupted,
            _ => ErrorKind::Other,
        };
        let body = response.body_mut().with_config().limit(MAX_ERROR_BODY).read_to_vec().unwrap_or_default();
        let message = error_message(&body)
            .unwrap_or_else(|| response.status().canonical_reason().unwrap_or("unexpected answer").to_lowercase());
        self.error(format!("{what}: {status} {message}"), kind)
    }

    pub(crate) fn error(&self, reason: String, kind: ErrorKind) -> Error {
        Error::Registry { registry: self.what(), reason, kind, source: None }
    }

    fn denied(&self, response: Response<ureq::Body>) -> Error {
        let tried = match &self.credentials {
            Some(c) => format!("the credentials of {} from {}", c.username, c.from),
            None => "no credentials (none are stored for it)".to_owned(),
        };
        let mut error = self.refused("unauthorized", response);
        if let Error::Registry { reason, .. } = &mut error {
            reason.push_str(&format!("; tried {tried}"));
        }
        error
    }

    /// Check the credentials as `docker login` does: `GET /v2/` authenticated (for a token
    /// registry, with a token asked for without a scope). Returns the refresh token the token
    /// service gave, if any: docker keeps it as the identity token, in place of the password.
    pub(crate) fn login(&self) -> Result<Option<String>> {
        let url = format!("{}/v2/", self.endpoint.base);
        let response = self.send("GET", &url, &[])?;
        if response.status().as_u16() != 200 {
            return Err(self.refused("login", response));
        }
        Ok(self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()).take())
    }

    /// The `Authorization` header for the next request, fetching a token if need be.
    fn authorization(&self) -> Result<Option<String>> {
        let mut auth = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *auth {
            Auth::Anonymous => Ok(None),
            Auth::Basic => Ok(self.credentials.as_ref().filter(|c| !c.identity_token).map(basic)),
            Auth::Bearer { realm, service, token } => {
                if let Some((value, expires)) = token
                    && *expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {value}")));
                }
                let (value, life) = self.fetch_token(realm, service.as_deref())?;
                // Renewed a little before it runs out.
                *token = Some((value.clone(), Instant::now() + life.saturating_sub(Duration::from_secs(10))));
                Ok(Some(format!("Bearer {value}")))
            }
        }
    }

    /// After a 401: take the new challenge, drop the token; with Basic and nothing to send,
    /// fail now.
    fn renew(&self, headers: &HeaderMap) -> Result<()> {
        let mut auth = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(challenge) = parse_challenge(headers) {
            *auth = challenge;
        } else if let Auth::Bearer { token, .. } = &mut *auth {
            *token = None;
        }
        if matches!(*auth, Auth::Basic) && self.credentials.is_none() {
            return Err(self.error(
                "it asks for a user name and password, and none are stored for it (docker's config.json)".into(),
                ErrorKind::Denied,
            ));
        }
        Ok(())
    }

    /// A token for this repository's actions from the token service at `realm`.
    /// Without a repository (a login), no scope is asked for, and a refresh token is (kept in
    /// `refresh_token`, as docker keeps it for an identity token).
    fn fetch_token(&self, realm: &str, service: Option<&str>) -> Result<(String, Duration)> {
        let scope = format!("repository:{}:{}", self.repository, self.actions);
        let mut params = Vec::new();
        if self.repository.is_empty() {
            params.extend([("offline_token", "true"), ("client_id", "strata")]);
        } else {
            params.push(("scope", scope.as_str()));
            params.extend(self.extra_scopes.iter().map(|s| ("scope", s.as_str())));
        }
        if let Some(service) = service {
            params.push(("service", service));
        }
        let result = match &self.credentials {
            Some(c) if c.identity_token => {
                params.extend([("grant_type", "refresh_token"), ("refresh_token", &c.secret), ("client_id", "strata")]);
                self.endpoint
                    .agent
                    .post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(form(&params))
            }
            credentials => {
                if let Some(c) = credentials {
                    params.push(("account", &c.username));
                }
                let separator = if realm.contains('?') { '&' } else { '?' };
                let mut request = self.endpoint.agent.get(format!("{realm}{separator}{}", form(&params)));
                if let Some(c) = credentials {
                    request = request.header("Authorization", basic(c));
                }
                request.call()
            }
        };
        let mut response = result.map_err(|e| Error::Registry {
            registry: self.what(),
            reason: format!("cannot reach its token service {realm}: {e}"),
            kind: transport_kind(&e),
            source: Some(Box::new(e)),
        })?;
        if !response.status().is_success() {
            let mut error = self.refused(&format!("token service {realm}"), response);
            if let (Error::Registry { reason, .. }, Some(c)) = (&mut error, &self.credentials) {
                reason.push_str(&format!("; tried the credentials of {} from {}", c.username, c.from));
            }
            return Err(error);
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
            #[serde(default)]
            refresh_token: Option<String>,
        }
        let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| Error::Registry {
            registry: self.what(),
            reason: format!("reading the answer of its token service {realm}: {e}"),
            kind: ErrorKind::Interrupted,
            source: Some(Box::new(e)),
        })?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("its token service {realm} answered no token: {e}"), ErrorKind::Corrupt))?;
        let token =
            answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
                self.error(format!("its token service {realm} answered no token"), ErrorKind::Corrupt)
            })?;
        let life = Duration::from_secs(answer.expires_in.unwrap_or(0)).max(MIN_TOKEN_LIFE);
        if let Some(refresh) = answer.refresh_token.filter(|t| !t.is_empty()) {
            *self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(refresh);
        }
        Ok((token, life))
    }
}

fn basic(c: &Credentials) -> String {
    let pair = format!("{}:{}", c.username, c.secret);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// `a=1&b=x%3Ay`.
fn form(params: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The first challenge of `WWW-Authenticate` this client can answer.
fn parse_challenge(headers: &HeaderMap) -> Option<Auth> {
    for value in headers.get_all("www-authenticate") {
        let Ok(text) = value.to_str() else { continue };
        let Ok(challenges) = http_auth::parse_challenges(text) else { continue };
        for challenge in challenges {
            let param = |name: &str| {
                challenge.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_unescaped())
            };
            if challenge.scheme.eq_ignore_ascii_case("bearer")
                && let Some(realm) = param("realm")
            {
                return Some(Auth::Bearer { realm, service: param("service"), token: None });
            }
            if challenge.scheme.eq_ignore_ascii_case("basic") {
                return Some(Auth::Basic);
            }
        }
    }
    None
}

/// `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` → its codes and
/// messages.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(Deserialize)]
    struct One {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = errors.errors.iter().map(|e| format!("{} ({})", e.message, e.code)).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// 0.2 s, 0.4 s, 0.8 s, …
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.saturating_sub(1).min(5)).min(MAX_WAIT)
}

fn tries(attempt: u32) -> String {
    if attempt > 1 { format!(" (tried {attempt} times)") } else { String::new() }
}

/// Whether trying again may work: the connection failed or dropped, or timed out.
fn is_transient(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_))
}

fn transport_kind(e: &ureq::Error) -> ErrorKind {
    match e {
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ErrorKind::Interrupted
        }
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => ErrorKind::Denied,
        _ => ErrorKind::Other,
    }
}

/// What is wrong with the server's certificate, if that is why a connection failed.
fn certificate_problem(e: &ureq::Error) -> Option<String> {
    let rustls_error = match e {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(reason)) => Some(format!("{reason:?}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "www-authenticate",
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
                .parse()
                .unwrap(),
        );
        match parse_challenge(&headers) {
            Some(Auth::Bearer { realm, service, .. }) => {
                assert_eq!(realm, "https://auth.example/token");
                assert_eq!(service.as_deref(), Some("registry.example"));
            }
            _ => panic!("not a bearer challenge"),
        }
        headers.insert("www-authenticate", r#"Basic realm="Registry Realm""#.parse().unwrap());
        assert!(matches!(parse_challenge(&headers), Some(Auth::Basic)));
        headers.insert("www-authenticate", r#"Negotiate"#.parse().unwrap());
        assert!(parse_challenge(&headers).is_none());
    }

    #[test]
    fn registry_errors_and_forms() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(body).as_deref(), Some("manifest unknown (MANIFEST_UNKNOWN)"));
        assert_eq!(error_message(b"<html>"), None);
        assert_eq!(
            form(&[("scope", "repository:a/b:pull,push"), ("x", "1 2")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&x=1%202"
        );
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_millis(6400));
    }
}
