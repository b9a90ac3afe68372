//! Credentials as the docker CLI keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), looked up with its precedence: `credHelpers[host]`, then
//! `credsStore`, then the file's own `auths` (base64 `user:password`, or an identity token).
//! Helpers are `docker-credential-<name>` programs spoken to on stdin/stdout.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// Docker Hub's key in `config.json`.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// The user name (`<token>` for an identity token).
    pub(crate) username: String,
    /// The password, or the identity (refresh) token.
    pub(crate) secret: String,
    /// Whether `secret` is an identity token, traded for access tokens.
    pub(crate) identity_token: bool,
    /// Where they came from, for messages (`config.json`, `docker-credential-pass`).
    pub(crate) from: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} from {})", self.username, self.from)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The directory of docker's `config.json`: `$DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker"))
}

/// The key of `domain` in `config.json`.
pub(crate) fn key_of(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" { DOCKER_HUB_KEY.to_owned() } else { domain.to_owned() }
}

/// `https://host:5000/v1/` → `host:5000`, as the CLI compares keys.
fn hostname(key: &str) -> &str {
    let rest = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The credentials stored for `domain`, if any.
pub(crate) fn lookup(domain: &str, config_dir: Option<&Path>) -> Result<Option<Credentials>> {
    let Some(dir) = config_dir else { return Ok(None) };
    let path = dir.join("config.json");
    let config: ConfigFile = match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => ConfigFile::default(),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
            registry: domain.to_owned(),
            reason: format!("{} is not valid JSON: {e}", path.display()),
            kind: ErrorKind::InvalidInput,
            source: None,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let key = key_of(domain);
    let wanted = hostname(&key);
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| hostname(k) == wanted)
        .map(|(_, h)| h.clone())
        .or(config.creds_store.clone())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return from_helper(&helper, &key, domain);
    }
    let Some(entry) = config.auths.iter().find(|(k, _)| hostname(k) == wanted).map(|(_, e)| e) else {
        return Ok(None);
    };
    let from = path.display().to_string();
    let bad = |reason: &str| Error::Registry {
        registry: domain.to_owned(),
        reason: format!("the credentials for it in {from} are unreadable: {reason}"),
        kind: ErrorKind::InvalidInput,
        source: None,
    };
    let (mut username, mut password) = (entry.username.clone().unwrap_or_default(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth).map_err(|_| bad("auth is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8"))?;
        let (user, pass) = text.split_once(':').ok_or_else(|| bad("auth is not user:password"))?;
        username = user.to_owned();
        password = Some(pass.to_owned());
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials { username, secret: token.to_owned(), identity_token: true, from }));
    }
    Ok(password.map(|secret| Credentials { username, secret, identity_token: false, from }))
}

/// The credential helper configured for `domain`, if any (`credHelpers`, then `credsStore`).
fn helper_for(config: &serde_json::Value, key: &str) -> Option<String> {
    let wanted = hostname(key);
    let helpers = config.get("credHelpers").and_then(|h| h.as_object());
    let specific = helpers.and_then(|h| h.iter().find(|(k, _)| hostname(k) == wanted)).and_then(|(_, v)| v.as_str());
    specific.or_else(|| config.get("credsStore").and_then(|s| s.as_str())).filter(|h| !h.is_empty()).map(str::to_owned)
}

fn read_config(path: &Path) -> Result<serde_json::Value> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(Error::corrupt(path, "not a JSON object; fix or remove it")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Write `config.json` as the docker CLI does: a temporary file beside it, mode 0600, renamed.
fn write_config(dir: &Path, config: &serde_json::Value) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io("mkdir", dir, e))?;
    let path = dir.join("config.json");
    let tmp = dir.join(format!(".config.json.strata-{}", std::process::id()));
    let text = serde_json::to_vec_pretty(config).map_err(|e| Error::corrupt(&path, e.to_string()))?;
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(&text)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

/// Store credentials for `domain` as `docker login` does: through the credential helper
/// configured for it, else in `config.json`'s `auths` (base64 `user:password`, or the user and
/// an identity token in place of the password). Returns where they went.
pub(crate) fn store(domain: &str, username: &str, secret: &str, identity_token: bool, dir: &Path) -> Result<String> {
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    let key = key_of(domain);
    let helper = helper_for(&config, &key);
    if !config.get("auths").is_some_and(|a| a.is_object()) {
        config["auths"] = serde_json::json!({});
    }
    let mut entry = serde_json::Map::new();
    let stored_in = match helper {
        Some(helper) => {
            let user = if identity_token { "<token>" } else { username };
            let input = serde_json::json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string();
            run_helper(&helper, "store", &input, domain)?;
            format!("docker-credential-{helper}")
        }
        None => {
            let pair = if identity_token { format!("{username}:") } else { format!("{username}:{secret}") };
            entry.insert("auth".into(), base64::engine::general_purpose::STANDARD.encode(pair).into());
            if identity_token {
                entry.insert("identitytoken".into(), secret.into());
            }
            path.display().to_string()
        }
    };
    if let Some(auths) = config["auths"].as_object_mut() {
        auths.insert(key, serde_json::Value::Object(entry));
    }
    write_config(dir, &config)?;
    Ok(stored_in)
}

/// Remove the credentials stored for `domain` (helper and file). Returns whether there were any.
pub(crate) fn erase(domain: &str, dir: &Path) -> Result<bool> {
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    let key = key_of(domain);
    let wanted = hostname(&key).to_owned();
    let mut found = false;
    if let Some(helper) = helper_for(&config, &key) {
        found |= run_helper(&helper, "erase", &key, domain).is_ok();
    }
    if let Some(auths) = config.get_mut("auths").and_then(|a| a.as_object_mut()) {
        let keys: Vec<String> = auths.keys().filter(|k| hostname(k) == wanted).cloned().collect();
        for k in keys {
            auths.remove(&k);
            found = true;
        }
    }
    if found && path.exists() {
        write_config(dir, &config)?;
    }
    Ok(found)
}

/// Run `docker-credential-<helper> <action>` with `input` on stdin; its stdout.
fn run_helper(helper: &str, action: &str, input: &str, domain: &str) -> Result<String> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| Error::Registry {
        registry: domain.to_owned(),
        reason: format!("credential helper {program} {action}: {reason}"),
        kind: ErrorKind::Denied,
        source: None,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(|e| failed(format!("cannot write to it: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(failed(format!("{}: {}", output.status, stdout.trim())));
    }
    Ok(stdout)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `docker-credential-<helper> get`, the server's key on stdin.
fn from_helper(helper: &str, key: &str, domain: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let stdout = match run_helper(helper, "get", key, domain) {
        Ok(stdout) => stdout,
        Err(Error::Registry { reason, .. }) if reason.contains("credentials not found") => return Ok(None),
        Err(e) => return Err(e),
    };
    let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|e| Error::Registry {
        registry: domain.to_owned(),
        reason: format!("credential helper {program}: its answer is not valid: {e}"),
        kind: ErrorKind::Denied,
        source: None,
    })?;
    let identity_token = answer.username == "<token>";
    Ok(Some(Credentials { username: answer.username, secret: answer.secret, identity_token, from: program }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"identitytoken":"tok"}},"http://reg.example:8080/v2/":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        )
        .unwrap();
        let hub = lookup("docker.io", Some(dir.path())).unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.secret.as_str(), hub.identity_token), ("alice", "s3cret:x", false));
        let local = lookup("127.0.0.1:5000", Some(dir.path())).unwrap().unwrap();
        assert_eq!((local.secret.as_str(), local.identity_token), ("tok", true));
        let other = lookup("reg.example:8080", Some(dir.path())).unwrap().unwrap();
        assert_eq!((other.username.as_str(), other.secret.as_str()), ("bob", "pw"));
        assert_eq!(lookup("quay.io", Some(dir.path())).unwrap(), None);
        assert_eq!(lookup("quay.io", Some(&dir.path().join("missing"))).unwrap(), None);
    }

    #[test]
    fn a_helper_for_the_host_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"reg.example":{"auth":"eDp5"}},"credHelpers":{"reg.example":"strata-test-missing"}}"#,
        )
        .unwrap();
        let err = lookup("reg.example", Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("docker-credential-strata-test-missing"), "{err}");
    }
}
