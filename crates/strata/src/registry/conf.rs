//! Registries configured as podman, buildah and skopeo configure them
//! (containers-registries.conf(5), version 2): a `[[registry]]` per prefix with its real
//! `location`, whether it is `insecure` or `blocked`, and `[[registry.mirror]]`s a pull tries
//! first. A push goes to the location only.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::image::Reference;

/// The file, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistriesConf {
    /// The `[[registry]]` tables.
    #[serde(default)]
    pub registry: Vec<RegistryEntry>,
}

/// One `[[registry]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryEntry {
    /// The names it applies to (`example.com/team`, `*.example.com`); its location if not
    /// given.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Where those names really are (`host[:port][/path]`).
    #[serde(default)]
    pub location: Option<String>,
    /// TLS unverified, or plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// No pulls or pushes at all.
    #[serde(default)]
    pub blocked: bool,
    /// Tried in order before the location, for pulls.
    #[serde(default)]
    pub mirror: Vec<Mirror>,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mirror {
    /// `host[:port][/path]`.
    pub location: String,
    /// TLS unverified, or plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// `all` (default), `digest-only` or `tag-only`: which pulls may use it.
    #[serde(default)]
    pub pull_from_mirror: Option<String>,
}

/// Where to fetch a name from: a registry and the repository's path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `host[:port]`.
    pub domain: String,
    /// The repository's path on it.
    pub path: String,
    /// Reached without TLS verification, or over plain HTTP.
    pub insecure: bool,
    /// A mirror (tried before the registry itself).
    pub mirror: bool,
}

impl RegistriesConf {
    /// Read `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConf> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistriesConf::default()),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        toml::from_str(&text).map_err(|e| Error::Registry {
            registry: path.display().to_string(),
            reason: format!("not a valid registries.conf: {}", e.message()),
            kind: ErrorKind::InvalidInput,
            source: None,
        })
    }

    /// The entry for `reference`: the longest prefix that matches its `domain/path`.
    fn entry(&self, reference: &Reference) -> Option<(&RegistryEntry, &str)> {
        let name = format!("{}/{}", reference.domain(), reference.path());
        self.registry
            .iter()
            .filter_map(|e| {
                let prefix = e.prefix.as_deref().or(e.location.as_deref())?;
                matches(prefix, &name).then_some((e, prefix))
            })
            .max_by_key(|(_, prefix)| prefix.len())
    }

    /// Where a pull of `reference` looks, in order: the mirrors that take it, then the
    /// registry's location. An error if the registry is blocked.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<Source>> {
        self.sources(reference, true)
    }

    /// Where a push of `reference` goes: the location only.
    pub fn push_source(&self, reference: &Reference) -> Result<Source> {
        let mut sources = self.sources(reference, false)?;
        Ok(sources.remove(0))
    }

    fn sources(&self, reference: &Reference, mirrors: bool) -> Result<Vec<Source>> {
        let plain = Source {
            domain: reference.domain().to_owned(),
            path: reference.path().to_owned(),
            insecure: false,
            mirror: false,
        };
        let Some((entry, prefix)) = self.entry(reference) else { return Ok(vec![plain]) };
        if entry.blocked {
            return Err(Error::Registry {
                registry: format!("{}/{}", reference.domain(), reference.path()),
                reason: format!("registries.conf blocks {prefix}"),
                kind: ErrorKind::Denied,
                source: None,
            });
        }
        let name = format!("{}/{}", reference.domain(), reference.path());
        // The part of the name after the prefix (a wildcard prefix keeps the whole name).
        let rest = if prefix.starts_with("*.") { "" } else { &name[prefix.len()..] };
        let at = |location: &str, insecure: bool, mirror: bool| {
            let full = if prefix.starts_with("*.") { name.clone() } else { format!("{location}{rest}") };
            let (domain, path) = full.split_once('/').unwrap_or((&full, ""));
            Source { domain: domain.to_owned(), path: path.to_owned(), insecure, mirror }
        };
        let mut out = Vec::new();
        if mirrors {
            let by_digest = reference.digest().is_some();
            for m in &entry.mirror {
                let takes = match m.pull_from_mirror.as_deref().unwrap_or("all") {
                    "digest-only" => by_digest,
                    "tag-only" => !by_digest,
                    _ => true,
                };
                if takes {
                    out.push(at(&m.location, m.insecure, true));
                }
            }
        }
        out.push(at(entry.location.as_deref().unwrap_or(prefix), entry.insecure, false));
        Ok(out)
    }
}

/// Whether `prefix` covers `name`: the same, or `name` goes on with `/` after it; `*.example.com`
/// covers names whose domain ends with `.example.com`.
fn matches(prefix: &str, name: &str) -> bool {
    if let Some(suffix) = prefix.strip_prefix("*.") {
        let domain = name.split('/').next().unwrap_or(name);
        return domain.ends_with(&format!(".{suffix}"));
    }
    name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
[[registry.mirror]]
location = "pinned.local/hub"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "example.com/team"
location = "internal.example:5000/mirrored/team"

[[registry]]
location = "bad.example"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true
"#;

    fn sources(conf: &RegistriesConf, name: &str) -> Vec<(String, String, bool, bool)> {
        conf.pull_sources(&name.parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|s| (s.domain, s.path, s.insecure, s.mirror))
            .collect()
    }

    #[test]
    fn mirrors_locations_and_blocks() {
        let conf: RegistriesConf = toml::from_str(CONF).unwrap();
        let s = |d: &str, p: &str, i: bool, m: bool| (d.to_owned(), p.to_owned(), i, m);
        assert_eq!(
            sources(&conf, "debian:12"),
            vec![s("mirror.local:5000", "library/debian", true, true), s("docker.io", "library/debian", false, false)]
        );
        let pinned = format!("debian@sha256:{}", "a".repeat(64));
        assert_eq!(sources(&conf, &pinned)[1], s("pinned.local", "hub/library/debian", false, true));
        assert_eq!(
            sources(&conf, "example.com/team/app:1"),
            vec![s("internal.example:5000", "mirrored/team/app", false, false)]
        );
        assert_eq!(sources(&conf, "example.com/teams/app:1"), vec![s("example.com", "teams/app", false, false)]);
        assert_eq!(sources(&conf, "reg.corp.example/app"), vec![s("reg.corp.example", "app", true, false)]);
        let blocked = conf.pull_sources(&"bad.example/x".parse().unwrap()).unwrap_err();
        assert!(blocked.to_string().contains("blocks bad.example"), "{blocked}");
        let push = conf.push_source(&"debian:12".parse().unwrap()).unwrap();
        assert_eq!((push.domain.as_str(), push.mirror), ("docker.io", false));
    }
}
