//! Platforms (`linux/amd64`, `linux/arm/v7`) and choosing an index's manifest by one, as
//! docker does: the host's by default, and an index with no match is an error naming what it
//! has, never its first manifest.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::Error;

/// An OS, an architecture and maybe a variant, in Go's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, …
    pub architecture: String,
    /// `v7`, `v8`, …, if one is asked for.
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's: linux and its architecture.
    pub fn host() -> Platform {
        Platform { os: "linux".into(), architecture: super::host_arch().into(), variant: None }
    }

    /// Whether an image for `os`/`architecture`/`variant` runs as this platform. A variant
    /// not asked for matches any; arm64's `v8` is its default.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let default = |v: Option<&str>| match (architecture, v) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.os == os
            && self.architecture == normalize_arch(architecture)
            && (self.variant.is_none() || default(self.variant.as_deref()) == default(variant))
    }

    /// The manifest of `index` for this platform: the one whose platform matches, or the only
    /// one of an index that gives no platforms. Attestations (`unknown/unknown`) are skipped.
    /// The error lists what the index offers.
    pub fn choose<'a>(&self, index: &'a ImageIndex) -> Result<&'a Descriptor, String> {
        let manifests = index.manifests();
        let found = manifests.iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                self.matches(&p.os().to_string(), &p.architecture().to_string(), p.variant().as_deref())
            })
        });
        if let Some(found) = found {
            return Ok(found);
        }
        if let [only] = manifests.as_slice()
            && only.platform().is_none()
        {
            return Ok(only);
        }
        let offered: Vec<String> = manifests
            .iter()
            .filter_map(|m| m.platform().as_ref())
            .map(|p| {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s = format!("{s}/{v}");
                }
                s
            })
            .filter(|s| s != "unknown/unknown")
            .collect();
        Err(format!(
            "no image for {self} (it has: {})",
            if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }
        ))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// `OS/ARCH[/VARIANT]`, or `ARCH` alone (linux), as `--platform` takes it.
    fn from_str(text: &str) -> Result<Platform, Error> {
        let bad = |reason: &str| Error::BadOption { what: "platform", value: text.into(), reason: reason.into() };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            return Err(bad("expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7"));
        }
        let lower = |s: &str| s.to_ascii_lowercase();
        match parts.as_slice() {
            [arch] => Ok(Platform { os: "linux".into(), architecture: normalize_arch(&lower(arch)), variant: None }),
            [os, arch] => Ok(Platform { os: lower(os), architecture: normalize_arch(&lower(arch)), variant: None }),
            [os, arch, variant] => Ok(Platform {
                os: lower(os),
                architecture: normalize_arch(&lower(arch)),
                variant: Some(lower(variant)),
            }),
            _ => Err(bad("expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7")),
        }
    }
}

/// Go's name for an architecture: `x86_64` → `amd64`, `aarch64` → `arm64`.
fn normalize_arch(arch: &str) -> String {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[Option<(&str, &str, Option<&str>)>]) -> ImageIndex {
        let manifests: Vec<String> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let platform = match p {
                    Some((os, arch, Some(v))) => format!(r#","platform":{{"os":"{os}","architecture":"{arch}","variant":"{v}"}}"#),
                    Some((os, arch, None)) => format!(r#","platform":{{"os":"{os}","architecture":"{arch}"}}"#),
                    None => String::new(),
                };
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{:064x}","size":1{platform}}}"#,
                    i
                )
            })
            .collect();
        serde_json::from_str(&format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, manifests.join(","))).unwrap()
    }

    fn chosen(platform: &str, index: &ImageIndex) -> Result<usize, String> {
        let p: Platform = platform.parse().unwrap();
        let d = p.choose(index)?;
        Ok(index.manifests().iter().position(|m| m.digest() == d.digest()).unwrap())
    }

    #[test]
    fn chooses_by_os_architecture_and_variant() {
        let idx = index(&[
            Some(("linux", "arm", Some("v6"))),
            Some(("linux", "arm", Some("v7"))),
            Some(("linux", "arm64", Some("v8"))),
            Some(("linux", "amd64", None)),
            Some(("unknown", "unknown", None)),
        ]);
        assert_eq!(chosen("linux/amd64", &idx), Ok(3));
        assert_eq!(chosen("linux/x86_64", &idx), Ok(3));
        assert_eq!(chosen("linux/arm/v7", &idx), Ok(1));
        assert_eq!(chosen("linux/arm", &idx), Ok(0), "no variant asked: the first arm");
        assert_eq!(chosen("linux/arm64", &idx), Ok(2));
        assert_eq!(chosen("linux/aarch64/v8", &idx), Ok(2));
        let err = chosen("linux/s390x", &idx).unwrap_err();
        assert_eq!(err, "no image for linux/s390x (it has: linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/amd64)");
        assert_eq!(chosen("windows/amd64", &idx).unwrap_err().split(' ').nth(3), Some("windows/amd64"));
    }

    #[test]
    fn arm64_v8_is_the_default_variant() {
        let idx = index(&[Some(("linux", "arm64", None))]);
        assert_eq!(chosen("linux/arm64/v8", &idx), Ok(0));
        assert!(chosen("linux/arm64/v9", &idx).is_err());
    }

    #[test]
    fn a_lone_manifest_without_platform_is_taken() {
        assert_eq!(chosen("linux/amd64", &index(&[None])), Ok(0));
        assert!(chosen("linux/amd64", &index(&[None, None])).is_err());
        assert!(chosen("linux/amd64", &index(&[])).is_err());
    }

    #[test]
    fn bad_platforms_are_refused() {
        for bad in ["", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }
}
