//! Build arguments, as dockerd's legacy builder scopes them (`buildargs.go`): `--build-arg`
//! values override the defaults of `ARG` lines; ARGs before the first FROM serve FROM lines
//! and the stages that declare them again; a stage sees only the ARGs it declared, and the
//! proxy variables, which need no ARG line and stay out of history unless one declares them.

use std::collections::{BTreeMap, BTreeSet};

/// The proxy variables any build may be given without an ARG line.
pub const BUILTIN: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The arguments of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    /// `--build-arg K=V` (`None`: `K` alone with no value in the environment).
    given: BTreeMap<String, Option<String>>,
    /// ARGs before the first FROM, and their defaults.
    meta: BTreeMap<String, Option<String>>,
    /// ARGs the current stage declared, and their defaults.
    allowed: BTreeMap<String, Option<String>>,
    /// Every name an ARG declared, to report the `--build-arg`s nothing used.
    referenced: BTreeSet<String>,
}

impl BuildArgs {
    /// Start from the `--build-arg` values.
    pub fn new(given: impl IntoIterator<Item = (String, Option<String>)>) -> BuildArgs {
        BuildArgs { given: given.into_iter().collect(), ..BuildArgs::default() }
    }

    /// An ARG before the first FROM.
    pub fn add_meta(&mut self, key: &str, default: Option<String>) {
        self.referenced.insert(key.to_owned());
        self.meta.insert(key.to_owned(), default);
    }

    /// A value every build has before its first line (BuildKit's platform ARGs): used by FROM
    /// lines, and by a stage that declares it, as a meta ARG's; never reported as unused.
    pub fn predefine(&mut self, key: &str, value: &str) {
        self.meta.entry(key.to_owned()).or_insert_with(|| Some(value.to_owned()));
    }

    /// An ARG in a stage.
    pub fn add(&mut self, key: &str, default: Option<String>) {
        self.referenced.insert(key.to_owned());
        self.allowed.insert(key.to_owned(), default);
    }

    /// A new stage: only the meta ARGs remain.
    pub fn new_stage(&mut self) {
        self.allowed.clear();
    }

    fn value(&self, key: &str, default: Option<&Option<String>>) -> Option<String> {
        if let Some(Some(v)) = self.given.get(key) {
            return Some(v.clone());
        }
        match default {
            Some(Some(d)) => Some(d.clone()),
            _ => self.meta.get(key).and_then(|m| self.given.get(key).cloned().flatten().or_else(|| m.clone())),
        }
    }

    /// The meta ARGs with values, for FROM lines.
    pub fn meta_values(&self) -> Vec<(String, String)> {
        self.meta.iter().filter_map(|(k, d)| self.value(k, Some(d)).map(|v| (k.clone(), v))).collect()
    }

    /// The stage's arguments with values, not set by `env` (an ENV shadows an ARG), as
    /// `(key, value)`, sorted by key. Proxy variables count when given.
    pub fn allowed_values(&self, env: &[String]) -> Vec<(String, String)> {
        let in_env = |k: &str| env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == k);
        let mut keys: BTreeSet<&str> = self.allowed.keys().map(String::as_str).collect();
        keys.extend(BUILTIN.iter().copied().filter(|k| self.given.contains_key(*k)));
        keys.into_iter()
            .filter(|k| !in_env(k))
            .filter_map(|k| self.value(k, self.allowed.get(k)).map(|v| (k.to_owned(), v)))
            .collect()
    }

    /// Whether `key` may appear in history (`|N K=V` before a RUN): declared by an ARG, or
    /// not a proxy variable.
    pub fn shown(&self, key: &str) -> bool {
        !BUILTIN.contains(&key) || self.allowed.contains_key(key)
    }

    /// Count the names a stage's ARGs declared as used.
    pub fn merge_used(&mut self, stage: &BuildArgs) {
        self.referenced.extend(stage.referenced.iter().cloned());
    }

    /// The `--build-arg`s no ARG declared (docker warns about them).
    pub fn unused(&self) -> Vec<String> {
        self.given.keys().filter(|k| !self.referenced.contains(*k) && !BUILTIN.contains(&k.as_str())).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_overrides() {
        let mut args = BuildArgs::new([("V".to_string(), Some("2".to_string())), ("X".into(), Some("x".into()))]);
        args.add_meta("BASE", Some("deb:1".into()));
        args.add_meta("V", Some("0".into()));
        assert_eq!(args.meta_values(), [("BASE".to_string(), "deb:1".to_string()), ("V".into(), "2".into())]);
        args.new_stage();
        assert!(args.allowed_values(&[]).is_empty(), "meta ARGs are not in a stage until declared");
        args.add("V", None);
        args.add("W", Some("w".into()));
        args.add("BASE", None);
        assert_eq!(
            args.allowed_values(&["W=env".into()]),
            [("BASE".to_string(), "deb:1".to_string()), ("V".into(), "2".into())],
            "the meta default reaches a redeclared ARG; an ENV shadows W"
        );
        assert_eq!(args.unused(), ["X"]);
    }

    #[test]
    fn proxies_need_no_arg_and_stay_out_of_history() {
        let mut args = BuildArgs::new([("HTTP_PROXY".to_string(), Some("http://p".to_string()))]);
        args.new_stage();
        assert_eq!(args.allowed_values(&[]), [("HTTP_PROXY".to_string(), "http://p".to_string())]);
        assert!(!args.shown("HTTP_PROXY"));
        args.add("HTTP_PROXY", None);
        assert!(args.shown("HTTP_PROXY"));
        assert!(args.unused().is_empty());
    }
}
