//! What dockerd's builder prints into `created_by` and how it compares configs for its cache:
//! Go's `%q` and `%v` of string lists, `time.Duration`'s text, the `#(nop)` commands, the
//! HEALTHCHECK struct as dockerd 20.10 formats it, and `compare()` of two container configs.

use crate::image::ContainerConfig;

use super::parser::go_quote;

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quoted_list(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(list: &[String]) -> String {
    format!("[{}]", list.join(" "))
}

/// Go's `time.Duration.String()` of `nanos`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let negative = nanos < 0;
    let n = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if n < 1_000_000_000 {
        // Below a second: ns, µs or ms with a fraction.
        let (unit, scale) = match n {
            n if n < 1_000 => return format!("{sign}{n}ns"),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(n, scale));
    }
    let secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let seconds = if frac == 0 { s.to_string() } else { fraction(s * 1_000_000_000 + frac, 1_000_000_000) };
    match (h, m) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `n / scale` with its fraction, trailing zeros dropped.
fn fraction(n: u64, scale: u64) -> String {
    let whole = n / scale;
    let rest = n % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.to_string().len() - 1;
    let frac = format!("{rest:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Go's `%q` of an int as a rune (`'\x00'`), as dockerd 20.10 prints HEALTHCHECK's retries.
fn go_quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) if !c.is_control() && c != '\'' && c != '\\' => format!("'{c}'"),
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some('\u{7}') => "'\\a'".into(),
        Some('\u{8}') => "'\\b'".into(),
        Some('\u{c}') => "'\\f'".into(),
        Some('\n') => "'\\n'".into(),
        Some('\r') => "'\\r'".into(),
        Some('\t') => "'\\t'".into(),
        Some('\u{b}') => "'\\v'".into(),
        Some(c) if (c as u32) < 0x80 => format!("'\\x{:02x}'", c as u32),
        Some(c) if (c as u32) <= 0xffff => format!("'\\u{:04x}'", c as u32),
        Some(c) => format!("'\\U{:08x}'", c as u32),
        None => "'\u{fffd}'".into(),
    }
}

/// A HEALTHCHECK as the config holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Nanoseconds; 0: the runtime's default.
    pub interval: i64,
    /// Nanoseconds.
    pub timeout: i64,
    /// Nanoseconds.
    pub start_period: i64,
    /// 0: the default.
    pub retries: i64,
}

impl Health {
    /// The config's `Healthcheck` object: only what was given.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("Test".into(), self.test.clone().into());
        for (key, value) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("Retries", self.retries),
        ] {
            if value != 0 {
                map.insert(key.into(), value.into());
            }
        }
        serde_json::Value::Object(map)
    }

    /// dockerd 20.10's history text: Go's `%q` of the struct.
    pub fn history(&self) -> String {
        format!(
            "&{{{} {} {} {} {}}}",
            go_quoted_list(&self.test),
            go_quote(&go_duration(self.interval)),
            go_quote(&go_duration(self.timeout)),
            go_quote(&go_duration(self.start_period)),
            go_quote_rune(self.retries)
        )
    }
}

/// Parse a Go duration (`5s`, `1m30s`, `300ms`, `1.5h`) as nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let mut rest = text;
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some(total.round() as i64)
}

/// Whether a cached image's `container_config` matches a step's, by dockerd's `compare()`:
/// everything but `Image`, `Hostname`, `Domainname` and `MacAddress`; an empty map equals none.
pub fn same_config(a: &ContainerConfig, b: &ContainerConfig) -> bool {
    if a.open_stdin || b.open_stdin {
        return false;
    }
    let keys = |m: &Option<std::collections::BTreeMap<String, serde_json::Value>>| -> Vec<String> {
        m.as_ref().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let list = |l: &Option<Vec<String>>| l.clone().unwrap_or_default();
    let labels = |l: &Option<std::collections::BTreeMap<String, String>>| l.clone().unwrap_or_default();
    let health = |h: &Option<serde_json::Value>| h.clone().filter(|v| !v.is_null());
    a.attach_stdout == b.attach_stdout
        && a.attach_stderr == b.attach_stderr
        && a.attach_stdin == b.attach_stdin
        && a.tty == b.tty
        && a.stdin_once == b.stdin_once
        && a.user == b.user
        && a.working_dir == b.working_dir
        && a.stop_signal == b.stop_signal
        && a.stop_timeout == b.stop_timeout
        && a.args_escaped == b.args_escaped
        && a.network_disabled == b.network_disabled
        && list(&a.cmd) == list(&b.cmd)
        && list(&a.env) == list(&b.env)
        && list(&a.entrypoint) == list(&b.entrypoint)
        && list(&a.on_build) == list(&b.on_build)
        && list(&a.shell) == list(&b.shell)
        && labels(&a.labels) == labels(&b.labels)
        && keys(&a.exposed_ports) == keys(&b.exposed_ports)
        && keys(&a.volumes) == keys(&b.volumes)
        && health(&a.healthcheck) == health(&b.healthcheck)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (5_000_000_000, "5s"),
            (90_000_000_000, "1m30s"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_000, "1µs"),
            (12, "12ns"),
        ] {
            assert_eq!(go_duration(nanos), text);
            assert_eq!(parse_go_duration(text), Some(nanos), "{text}");
        }
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("x"), None);
    }

    /// The history text dockerd 20.10 wrote for `HEALTHCHECK --interval=5s CMD true`.
    #[test]
    fn healthcheck_history_as_dockerd_20_10() {
        let health =
            Health { test: vec!["CMD-SHELL".into(), "true".into()], interval: 5_000_000_000, ..Health::default() };
        assert_eq!(health.history(), r#"&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x00'}"#);
        assert_eq!(
            Health { retries: 3, ..health.clone() }.history(),
            r#"&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x03'}"#
        );
        assert_eq!(health.to_json(), serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64}));
    }

    #[test]
    fn lists_as_go_formats_them() {
        let list = vec!["/bin/sh".to_string(), "-c".into(), "echo \"hi\"".into()];
        assert_eq!(go_quoted_list(&list), r#"["/bin/sh" "-c" "echo \"hi\""]"#);
        assert_eq!(go_list(&["/data".to_string()]), "[/data]");
    }
}
