//! Image references (`debian`, `debian:bookworm`, `registry.example:5000/team/app:1.0`,
//! `app@sha256:…`), parsed and normalized as Docker does, and shown in Docker's short
//! ("familiar") form: `docker.io/library/debian:latest` is `debian:latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME: usize = 255;

/// A normalized image reference: a repository name with a tag, a digest, or both.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Docker's short form of the repository name: `debian`, `team/app`, `host:5000/app`.
    pub fn name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return format!("{}/{}", self.domain, self.path);
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The registry's domain: `docker.io` for a name without one, `registry.example:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository's path within its registry: `library/debian`, `team/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The same reference with `latest` as its tag if it has neither tag nor digest, as
    /// `docker tag` and `docker pull` read a bare name.
    pub fn or_latest(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// The same repository at `digest`, without a tag: the name a pulled image is given by
    /// its manifest's digest (docker's `RepoDigests`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { tag: None, digest: Some(digest), ..self.clone() }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag, tag)?;
        Ok(Reference { tag: Some(tag.into()), digest: None, ..self.clone() })
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidReference { input: s.to_owned(), reason: why.to_owned() };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("a repository name cannot be 64 hexadecimal characters (that is an image ID)"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>().map_err(|_| bad("the digest is not sha256:<64 hex>"))?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(s, tag)?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
        };
        check_domain(&domain).map_err(bad)?;
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("a repository name must be lowercase"));
        }
        if !path.split('/').all(is_path_component) {
            return Err(bad(
                "a repository name is lowercase letters, digits and separators (., _, __, -) between them, in components joined by /",
            ));
        }
        let path =
            if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("{OFFICIAL_PREFIX}{path}") } else { path };
        if domain.len() + 1 + path.len() > MAX_NAME {
            return Err(bad("a repository name is at most 255 characters"));
        }
        Ok(Reference { domain, path, tag: tag.map(str::to_owned), digest })
    }
}

/// Docker's short form: `name:tag`, `name@digest` or `name:tag@digest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        f.write_str(")")
    }
}

fn check_tag(input: &str, tag: &str) -> Result<()> {
    let ok = tag.len() <= 128
        && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidReference {
            input: input.to_owned(),
            reason: format!(
                "tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
            ),
        })
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|s| s == b'-')) {
            return false;
        }
    }
    true
}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn check_domain(domain: &str) -> std::result::Result<(), &'static str> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the registry port must be a number");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.split('.').all(label_ok) { Ok(()) } else { Err("the registry host name is not valid") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_path_are_the_registrys() {
        let r: Reference = "debian:12".parse().unwrap();
        assert_eq!((r.domain(), r.path()), ("docker.io", "library/debian"));
        let r: Reference =
            "registry.example:5000/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .unwrap();
        assert_eq!((r.domain(), r.path()), ("registry.example:5000", "team/app"));
        let r: Reference = "team/app".parse().unwrap();
        assert_eq!((r.domain(), r.path()), ("docker.io", "team/app"));
    }

    fn show(s: &str) -> String {
        s.parse::<Reference>().map(|r| r.to_string()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(show("debian"), "debian");
        assert_eq!(show("debian:bookworm"), "debian:bookworm");
        assert_eq!(show("docker.io/library/debian:12"), "debian:12");
        assert_eq!(show("library/debian"), "debian");
        assert_eq!(show("team/app:1.0"), "team/app:1.0");
        assert_eq!(show("docker.io/team/app"), "team/app");
        assert_eq!(show("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(show("registry.example/a/b__c/d-e.f:x_y"), "registry.example/a/b__c/d-e.f:x_y");
        assert_eq!("debian".parse::<Reference>().unwrap().or_latest().to_string(), "debian:latest");
        let with_digest = format!("app@sha256:{}", "a".repeat(64));
        assert_eq!(show(&with_digest), with_digest);
    }

    #[test]
    fn bad_references() {
        for bad in [
            "",
            "Debian",
            "debian:",
            "debian:-x",
            "debian:.x",
            "../x",
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a:b:c",
            "app@sha256:abc",
            "host:port/app",
            &"a".repeat(64),
            &format!("a:{}", "t".repeat(129)),
            &"a".repeat(256),
            "a b",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} parsed");
        }
    }
}
