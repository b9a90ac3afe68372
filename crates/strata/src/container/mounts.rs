//! What is mounted over a container's tree, as `-v`, `--mount`, `--tmpfs`, `--volumes-from`
//! and the image's `VOLUME`s ask: parsed with docker's rules and words, and recorded as
//! dockerd records it (`MountPoints` in `config.v2.json`; `Binds`, `Mounts`, `Tmpfs` and
//! `VolumesFrom` in `hostconfig.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A volume.
pub const VOLUME: &str = "volume";
/// A host path.
pub const BIND: &str = "bind";
/// A tmpfs.
pub const TMPFS: &str = "tmpfs";

/// One mount of a container, as `config.v2.json` keeps it (`MountPoints`, by destination).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// The host path: a bind's source, a named volume's `_data` (empty for an anonymous one,
    /// as dockerd leaves it).
    #[serde(default)]
    pub source: String,
    /// Where it is in the container.
    pub destination: String,
    /// Writable.
    #[serde(rename = "RW", default)]
    pub rw: bool,
    /// The volume's name.
    #[serde(default)]
    pub name: String,
    /// The volume driver (`local`), empty for others.
    #[serde(default)]
    pub driver: String,
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// The `-v` mode (`ro`, `z`, …): dockerd's field keeps its old name.
    #[serde(rename = "Relabel", default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// A bind's propagation (`rprivate`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    /// The mount as asked (`--mount`'s shape); `{}` for the image's and `-v /path` volumes.
    #[serde(default)]
    pub spec: MountSpec,
    /// The source must exist (a `--mount` bind); `-v` makes a missing host directory.
    #[serde(default)]
    pub skip_mountpoint_creation: bool,
    /// Everything else dockerd keeps, as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MountPoint {
    /// A volume nobody named (no source in its spec): `rm -v` removes it with its container.
    pub fn is_anonymous_volume(&self) -> bool {
        self.kind == VOLUME && self.spec.source.is_empty()
    }
}

/// A mount as `--mount` (and the Engine API's `HostConfig.Mounts`) gives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    /// `volume`, `bind` or `tmpfs` (empty in the spec of an image's volume).
    #[serde(rename = "Type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The volume's name or the host path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Where in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `Propagation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    /// `NoCopy`, `Labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    /// `SizeBytes`, `Mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
}

impl MountSpec {
    /// Whether the image's content at the target is copied into a new empty volume.
    pub(crate) fn copies(&self) -> bool {
        !self.volume_options.as_ref().is_some_and(|o| o["NoCopy"] == true)
    }

    /// The labels a new named volume gets.
    pub(crate) fn labels(&self) -> Option<BTreeMap<String, String>> {
        let labels = self.volume_options.as_ref()?.get("Labels")?;
        serde_json::from_value(labels.clone()).ok()
    }
}

fn bad(value: &str, reason: impl Into<String>) -> Error {
    Error::BadOption { what: "mount", value: value.to_owned(), reason: reason.into() }
}

/// Go's `path.Clean` of a target, which must be absolute and not `/`.
fn target(raw: &str, target: &str) -> Result<String> {
    if !target.starts_with('/') {
        return Err(bad(raw, format!("invalid mount path: '{target}' mount path must be absolute")));
    }
    let clean = crate::gopath::clean(target);
    if clean == "/" {
        return Err(bad(raw, "invalid specification: destination can't be '/'"));
    }
    Ok(clean)
}

const PROPAGATIONS: &[&str] = &["private", "rprivate", "slave", "rslave", "shared", "rshared"];

/// Whether `mode` is a valid `-v` mode: at most one each of rw/ro, z/Z, a propagation,
/// nocopy, and a consistency.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0; 5];
    for o in mode.split(',') {
        let class = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[class] += 1;
    }
    counts.iter().all(|&c| c <= 1)
}

/// A `-v` as docker parses it: `DEST` (an anonymous volume), `NAME:DEST[:MODE]` (a volume) or
/// `/HOST:DEST[:MODE]` (a bind). `None` for an anonymous volume (it goes to `Config.Volumes`).
pub(crate) fn parse_bind(raw: &str) -> Result<Option<MountPoint>> {
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    let invalid = || bad(raw, format!("invalid spec: {raw}"));
    if parts[0].is_empty() {
        return Err(invalid());
    }
    let (source, dest, mode) = match parts[..] {
        [dest] => {
            target(raw, dest)?;
            return Ok(None);
        }
        [_, mode] if valid_mode(mode) => return Err(invalid()),
        [source, dest] => (source, dest, ""),
        [source, dest, mode] => (source, dest, mode),
        _ => return Err(invalid()),
    };
    if !valid_mode(mode) {
        return Err(bad(raw, format!("invalid mode: {mode}")));
    }
    let destination = target(raw, dest)?;
    let read_only = mode.split(',').any(|o| o == "ro");
    let propagation = mode.split(',').find(|o| PROPAGATIONS.contains(o));
    let mut spec = MountSpec { source: source.to_owned(), target: dest.to_owned(), read_only, ..Default::default() };
    let mut point = MountPoint {
        source: String::new(),
        destination,
        rw: !read_only,
        name: String::new(),
        driver: String::new(),
        kind: String::new(),
        mode: mode.to_owned(),
        propagation: String::new(),
        spec: MountSpec::default(),
        skip_mountpoint_creation: false,
        extra: Map::new(),
    };
    if source.starts_with('/') {
        spec.kind = BIND.into();
        point.kind = BIND.into();
        point.source = crate::gopath::clean(source);
        point.propagation = propagation.unwrap_or("rprivate").to_owned();
        if let Some(p) = propagation {
            spec.bind_options = Some(serde_json::json!({"Propagation": p}));
        }
    } else {
        crate::volume::valid_name(source).map_err(|e| bad(raw, format!("create {source}: {e}")))?;
        spec.kind = VOLUME.into();
        point.kind = VOLUME.into();
        point.name = source.to_owned();
        point.driver = "local".into();
        if mode.split(',').any(|o| o == "nocopy") {
            spec.volume_options = Some(serde_json::json!({"NoCopy": true}));
        }
        if point.mode.is_empty() {
            point.mode = "z".into();
        }
    }
    point.spec = spec;
    Ok(Some(point))
}

/// A `--mount` (`type=volume|bind|tmpfs,source=…,target=…,readonly,…`) as docker's CLI
/// parses it.
pub(crate) fn parse_mount(raw: &str) -> Result<MountSpec> {
    let mut spec = MountSpec { kind: VOLUME.into(), ..Default::default() };
    let mut volume = Map::new();
    let mut labels = Map::new();
    let mut tmpfs = Map::new();
    let truth = |key: &str, value: Option<&str>| match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(v) => Err(bad(raw, format!("invalid value for {key}: {v}"))),
    };
    for field in raw.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || value.ok_or_else(|| bad(raw, format!("invalid field '{field}' must be a key=value pair")));
        match key.as_str() {
            "type" => spec.kind = need()?.to_owned(),
            "source" | "src" => spec.source = need()?.to_owned(),
            "target" | "dst" | "destination" => spec.target = need()?.to_owned(),
            "readonly" | "ro" => spec.read_only = truth(&key, value)?,
            "consistency" => drop(need()?),
            "bind-propagation" => {
                let p = need()?;
                if !PROPAGATIONS.contains(&p) {
                    return Err(bad(raw, format!("invalid propagation mode: {p}")));
                }
                spec.bind_options = Some(serde_json::json!({"Propagation": p}));
            }
            "volume-nocopy" => drop(volume.insert("NoCopy".into(), truth(&key, value)?.into())),
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                labels.insert(k.to_owned(), v.into());
            }
            "volume-driver" if need()? == "local" => {}
            "tmpfs-size" => drop(tmpfs.insert("SizeBytes".into(), size_bytes(raw, need()?)?.into())),
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8).map_err(|_| bad(raw, "invalid value for tmpfs-mode"))?;
                tmpfs.insert("Mode".into(), mode.into());
            }
            _ => return Err(bad(raw, format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), labels.into());
    }
    let config = |reason: String| bad(raw, format!("invalid mount config for type \"{}\": {reason}", spec.kind));
    if spec.target.is_empty() {
        return Err(config("field Target must not be empty".into()));
    }
    target(raw, &spec.target).map_err(|e| config(e.to_string()))?;
    if spec.kind != VOLUME && !volume.is_empty() {
        return Err(config(format!("cannot mix 'volume-*' options with mount type '{}'", spec.kind)));
    }
    match spec.kind.as_str() {
        VOLUME => {
            if !spec.source.is_empty() {
                crate::volume::valid_name(&spec.source).map_err(|e| bad(raw, e.to_string()))?;
            }
            if !volume.is_empty() {
                spec.volume_options = Some(volume.into());
            }
        }
        BIND => {
            if spec.source.is_empty() {
                return Err(config("field Source must not be empty".into()));
            }
            if !spec.source.starts_with('/') {
                return Err(config(format!("invalid mount path: '{}' mount path must be absolute", spec.source)));
            }
            if !std::path::Path::new(&spec.source).exists() {
                return Err(config(format!("bind source path does not exist: {}", spec.source)));
            }
        }
        TMPFS => {
            if !spec.source.is_empty() {
                return Err(config("field Source must not be specified".into()));
            }
            if !tmpfs.is_empty() {
                spec.tmpfs_options = Some(tmpfs.into());
            }
        }
        other => return Err(bad(raw, format!("invalid mount type {other:?}: give volume, bind or tmpfs"))),
    }
    Ok(spec)
}

/// `64m` → 67108864: a size with an optional binary unit (k, m, g, t; `b` allowed).
fn size_bytes(raw: &str, size: &str) -> Result<u64> {
    let lower = size.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (digits, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => trimmed.split_at(i),
        None => (trimmed, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad(raw, format!("invalid size: '{size}'"))),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| bad(raw, format!("invalid size: '{size}'")))
}

/// A `--tmpfs DEST[:OPTIONS]`: the destination and its mount options.
pub(crate) fn parse_tmpfs(raw: &str) -> Result<(String, String)> {
    let (dest, options) = raw.split_once(':').unwrap_or((raw, ""));
    Ok((target(raw, dest)?, options.to_owned()))
}

/// The mount a tmpfs gets in the runtime's spec: docker's defaults, then the options given.
pub(crate) fn tmpfs_options(given: &str) -> Vec<String> {
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev"].map(String::from).to_vec();
    for o in given.split(',').filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        options.retain(|x| Some(x.as_str()) != opposite);
        if !matches!(o, "exec" | "suid" | "dev") {
            options.push(o.to_owned());
        }
    }
    options
}

/// The options of a `--mount type=tmpfs`.
pub(crate) fn tmpfs_spec_options(spec: &MountSpec) -> String {
    let mut options = Vec::new();
    if spec.read_only {
        options.push("ro".to_owned());
    }
    if let Some(o) = &spec.tmpfs_options {
        if let Some(mode) = o["Mode"].as_u64() {
            options.push(format!("mode={mode:o}"));
        }
        if let Some(size) = o["SizeBytes"].as_u64() {
            options.push(format!("size={size}"));
        }
    }
    options.join(",")
}

/// `--volumes-from C[:ro|rw]`: the container and whether its mounts stay writable.
pub(crate) fn parse_volumes_from(raw: &str) -> Result<(String, bool)> {
    let (name, mode) = raw.split_once(':').unwrap_or((raw, "rw"));
    if name.is_empty() {
        return Err(bad(raw, "volumes-from specification cannot be an empty string"));
    }
    match mode {
        "rw" | "" => Ok((name.to_owned(), true)),
        "ro" => Ok((name.to_owned(), false)),
        _ => Err(bad(raw, format!("invalid mode: {mode}"))),
    }
}

/// What `inspect` shows of a mount (`Mounts`, the Engine API's `MountPoint`).
pub(crate) fn api(point: &MountPoint, source: &str) -> Value {
    let mut out = Map::new();
    out.insert("Type".into(), point.kind.clone().into());
    if point.kind == VOLUME {
        out.insert("Name".into(), point.name.clone().into());
    }
    out.insert("Source".into(), source.into());
    out.insert("Destination".into(), point.destination.clone().into());
    if point.kind == VOLUME {
        out.insert("Driver".into(), point.driver.clone().into());
    }
    out.insert("Mode".into(), point.mode.clone().into());
    out.insert("RW".into(), point.rw.into());
    out.insert("Propagation".into(), point.propagation.clone().into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_as_docker_parses_them() {
        assert_eq!(parse_bind("/data").unwrap(), None);
        let v = parse_bind("vol:/data:ro").unwrap().unwrap();
        assert_eq!((v.kind.as_str(), v.name.as_str(), v.rw, v.mode.as_str()), (VOLUME, "vol", false, "ro"));
        let v = parse_bind("vol:/data/").unwrap().unwrap();
        assert_eq!((v.destination.as_str(), v.mode.as_str()), ("/data", "z"));
        let b = parse_bind("/host/../h:/x:rslave").unwrap().unwrap();
        assert_eq!((b.kind.as_str(), b.source.as_str(), b.propagation.as_str()), (BIND, "/h", "rslave"));
        for bad in ["", ":/x", "/x:rw", "v:x", "v:/", "v:/x:bogus", "v:/x:ro,rw", "a:b:c:d", "x:/y"] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_as_docker_parses_them() {
        let m = parse_mount("type=volume,src=v1,dst=/d,readonly,volume-nocopy").unwrap();
        assert_eq!((m.source.as_str(), m.read_only, m.copies()), ("v1", true, false));
        let t = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(tmpfs_spec_options(&t), "mode=1770,size=67108864");
        let anon = parse_mount("target=/a").unwrap();
        assert_eq!((anon.kind.as_str(), anon.source.as_str()), (VOLUME, ""));
        for bad in [
            "type=bind,src=/does/not/exist,dst=/x",
            "type=bind,dst=/x",
            "type=volume,src=v",
            "type=volume,src=v,dst=rel",
            "type=tmpfs,src=x,dst=/t",
            "type=nfs,dst=/x",
            "type=volume,dst=/x,bogus=1",
            "type=volume,src=/abs,dst=/x",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
        let e = parse_mount("type=bind,src=/does/not/exist,dst=/x").unwrap_err().to_string();
        assert!(e.contains("bind source path does not exist: /does/not/exist"), "{e}");
    }

    #[test]
    fn tmpfs_defaults_as_docker() {
        assert_eq!(tmpfs_options("size=1m"), ["noexec", "nosuid", "nodev", "size=1m"]);
        assert_eq!(tmpfs_options("exec,mode=1777"), ["nosuid", "nodev", "mode=1777"]);
        assert_eq!(parse_tmpfs("/t:size=1m").unwrap(), ("/t".to_owned(), "size=1m".to_owned()));
        assert!(parse_tmpfs("t").is_err());
    }
}
