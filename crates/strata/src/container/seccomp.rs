//! Seccomp: the container's system-call filter, as dockerd builds it. A profile in Docker's
//! format (`archMap`, rules with `includes`/`excludes` by capability, architecture and kernel)
//! is narrowed to this machine and the container's capabilities, giving the OCI config's
//! `linux.seccomp`; the runtime (runc, crun) loads it before the container's program starts.
//!
//! The default profile is Docker's own (`seccomp.json` beside this file: moby's
//! `profiles/seccomp/default.json` at v20.10.24, Apache-2.0), so a container of strata's is
//! denied what one of dockerd 20.10's is: `unshare`, `mount`, `keyctl`, `bpf`,
//! `perf_event_open`, most `personality` values, and the rest.
//!
//! A container's choice is kept as dockerd keeps it, in `HostConfig.SecurityOpt`:
//! `seccomp=unconfined`, `seccomp=<the profile's JSON>` (the CLI reads the file, as docker's
//! does) and `no-new-privileges`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::sys::kernel_version;

/// Docker's default profile (moby v20.10.24).
const DEFAULT_PROFILE: &str = include_str!("seccomp.json");

/// Which filter a container runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's (or the OCI) format, as JSON text.
    Profile(String),
}

/// A container's security options (`--security-opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// The system-call filter.
    pub seccomp: Seccomp,
    /// Set `no_new_privs`, so setuid programs and file capabilities grant nothing.
    pub no_new_privileges: bool,
}

impl SecurityOptions {
    /// Read options in dockerd's stored form (`HostConfig.SecurityOpt`): `seccomp=…`,
    /// `no-new-privileges[=|:true|false]`. Others (`apparmor=`, `label=`) are refused, since
    /// strata cannot honour them.
    pub fn parse(options: &[String]) -> Result<SecurityOptions> {
        let mut out = SecurityOptions::default();
        for option in options {
            let bad = |reason: &str| Error::BadOption {
                what: "security option",
                value: shorten(option),
                reason: reason.to_owned(),
            };
            let (key, value) = match option.split_once(['=', ':']) {
                Some((k, v)) => (k, Some(v)),
                None => (option.as_str(), None),
            };
            match (key, value) {
                ("no-new-privileges", None) => out.no_new_privileges = true,
                ("no-new-privileges", Some(v)) => {
                    out.no_new_privileges = v.parse().map_err(|_| bad("the value is true or false"))?;
                }
                ("seccomp", Some("unconfined")) => out.seccomp = Seccomp::Unconfined,
                ("seccomp", Some("builtin")) => out.seccomp = Seccomp::Default,
                ("seccomp", Some(profile)) if profile.trim_start().starts_with('{') => {
                    oci_filter(profile, &[], (0, 0))?;
                    out.seccomp = Seccomp::Profile(profile.to_owned());
                }
                ("seccomp", _) => return Err(bad("give seccomp=unconfined or seccomp=<a profile's JSON>")),
                _ => return Err(bad("strata knows seccomp=unconfined|PROFILE and no-new-privileges")),
            }
        }
        Ok(out)
    }

    /// The options in dockerd's stored form; empty for the defaults.
    pub fn to_stored(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.seccomp {
            Seccomp::Default => {}
            Seccomp::Unconfined => out.push("seccomp=unconfined".to_owned()),
            Seccomp::Profile(json) => out.push(format!("seccomp={json}")),
        }
        if self.no_new_privileges {
            out.push("no-new-privileges".to_owned());
        }
        out
    }

    /// The OCI `linux.seccomp` for a container with `capabilities`, or `None` when unconfined.
    pub(crate) fn filter(&self, capabilities: &[&str]) -> Result<Option<Value>> {
        let kernel = kernel_version(&crate::sys::kernel_release());
        match &self.seccomp {
            Seccomp::Unconfined => Ok(None),
            Seccomp::Default => oci_filter(DEFAULT_PROFILE, capabilities, kernel),
            Seccomp::Profile(json) => oci_filter(json, capabilities, kernel),
        }
    }
}

fn shorten(option: &str) -> String {
    match option.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &option[..at]),
        None => option.to_owned(),
    }
}

/// A profile in Docker's format; an OCI `linux.seccomp` object reads as one too.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default, deserialize_with = "null_as_default")]
    default_action: String,
    #[serde(default, deserialize_with = "null_as_default")]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_as_default")]
    flags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "null_as_default")]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    names: Vec<String>,
    action: String,
    #[serde(default, deserialize_with = "null_as_default")]
    args: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    includes: Filter,
    #[serde(default, deserialize_with = "null_as_default")]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "null_as_default")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    min_kernel: Option<String>,
}

/// Go writes an empty list as `null`.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// This machine in the two namings a profile uses: Go's architecture name (in `arches`) and
/// libseccomp's (in `archMap`).
fn this_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "x86" => ("x86", "SCMP_ARCH_X86"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "mips64" => ("mips64", "SCMP_ARCH_MIPS64"),
        other => (other, ""),
    }
}

/// Narrow `profile` (JSON text) to this machine, `capabilities` and `kernel`, as dockerd does.
fn oci_filter(profile: &str, capabilities: &[&str], kernel: (u32, u32)) -> Result<Option<Value>> {
    let bad = |reason: String| Error::BadOption { what: "seccomp profile", value: shorten(profile), reason };
    let profile: Profile = serde_json::from_str(profile).map_err(|e| bad(format!("is not valid: {e}")))?;
    if profile.default_action.is_empty() && profile.syscalls.is_empty() {
        return Ok(None);
    }
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(bad("gives both architectures and archMap; give one".to_owned()));
    }
    let (arch, native) = this_arch();
    let mut architectures = profile.architectures.clone();
    if let Some(map) = profile.arch_map.iter().find(|m| m.architecture == native) {
        architectures.push(map.architecture.clone());
        architectures.extend(map.sub_architectures.iter().cloned());
    }
    let at_least = |min: &Option<String>| min.as_deref().map(|m| kernel >= kernel_version(m));
    let has = |cap: &String| capabilities.contains(&cap.as_str());
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let (inc, exc) = (&rule.includes, &rule.excludes);
        let excluded =
            exc.arches.iter().any(|a| a == arch) || exc.caps.iter().any(has) || at_least(&exc.min_kernel) == Some(true);
        let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
            && inc.caps.iter().all(has)
            && at_least(&inc.min_kernel) != Some(false);
        if excluded || !included {
            continue;
        }
        if !rule.name.is_empty() && !rule.names.is_empty() {
            return Err(bad("a rule gives both name and names; give one".to_owned()));
        }
        let names = if rule.name.is_empty() { rule.names.clone() } else { vec![rule.name.clone()] };
        let mut call = json!({"names": names, "action": rule.action});
        if !rule.args.is_empty() {
            call["args"] = Value::from(rule.args.clone());
        }
        if let Some(errno) = rule.errno_ret {
            call["errnoRet"] = errno.into();
        }
        syscalls.push(call);
    }
    let mut filter = json!({"defaultAction": profile.default_action, "syscalls": syscalls});
    if !architectures.is_empty() {
        filter["architectures"] = architectures.into();
    }
    if let Some(errno) = profile.default_errno_ret {
        filter["defaultErrnoRet"] = errno.into();
    }
    if !profile.flags.is_empty() {
        filter["flags"] = profile.flags.into();
    }
    Ok(Some(filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: &[&str] = &["CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_KILL"];

    fn allowed(filter: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for call in filter["syscalls"].as_array().unwrap() {
            if call["action"] == "SCMP_ACT_ALLOW" && call.get("args").is_none() {
                out.extend(call["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()));
            }
        }
        out
    }

    #[test]
    fn the_default_profile_denies_what_dockers_denies() {
        let filter = oci_filter(DEFAULT_PROFILE, CAPS, (6, 18)).unwrap().unwrap();
        assert_eq!(filter["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = allowed(&filter);
        for call in ["read", "execve", "clone", "chroot", "ptrace"] {
            // clone is allowed with arguments (no namespace flags); the others outright.
            assert!(call == "clone" || allowed.iter().any(|a| a == call), "{call} not allowed");
        }
        for call in ["unshare", "mount", "keyctl", "add_key", "bpf", "perf_event_open", "setns", "reboot", "clone3"] {
            assert!(!allowed.iter().any(|a| a == call), "{call} allowed");
        }
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(filter["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
            assert!(allowed.iter().any(|a| a == "arch_prctl"));
        }
        // clone3 answers ENOSYS without CAP_SYS_ADMIN, so that libc falls back to clone.
        let clone3 = filter["syscalls"].as_array().unwrap().iter().find(|c| c["names"] == json!(["clone3"])).unwrap();
        assert_eq!(clone3["errnoRet"], 38);
    }

    #[test]
    fn rules_follow_capabilities_and_kernel() {
        let admin = oci_filter(DEFAULT_PROFILE, &["CAP_SYS_ADMIN"], (6, 18)).unwrap().unwrap();
        assert!(allowed(&admin).iter().any(|a| a == "unshare"));
        let old = oci_filter(DEFAULT_PROFILE, CAPS, (4, 4)).unwrap().unwrap();
        assert!(!allowed(&old).iter().any(|a| a == "ptrace"), "ptrace needs 4.8 without CAP_SYS_PTRACE");
        assert_eq!(kernel_version("6.18.0-1-amd64"), (6, 18));
        assert_eq!(kernel_version("4.8"), (4, 8));
    }

    #[test]
    fn options_read_and_write_dockerds_form() {
        let parsed = SecurityOptions::parse(&["seccomp=unconfined".into(), "no-new-privileges".into()]).unwrap();
        assert_eq!(parsed, SecurityOptions { seccomp: Seccomp::Unconfined, no_new_privileges: true });
        assert_eq!(parsed.to_stored(), ["seccomp=unconfined", "no-new-privileges"]);
        let profile =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let parsed = SecurityOptions::parse(&[format!("seccomp={profile}"), "no-new-privileges:false".into()]).unwrap();
        assert_eq!(parsed.seccomp, Seccomp::Profile(profile.into()));
        assert!(!parsed.no_new_privileges);
        assert_eq!(parsed.filter(CAPS).unwrap().unwrap()["syscalls"][0]["names"], json!(["mkdir"]));
        assert!(SecurityOptions::parse(&["seccomp={bad".into()]).is_err());
        assert!(SecurityOptions::parse(&["apparmor=x".into()]).is_err());
        assert!(SecurityOptions::parse(&["no-new-privileges=maybe".into()]).is_err());
        assert_eq!(SecurityOptions::parse(&[]).unwrap().to_stored(), Vec::<String>::new());
    }
}
