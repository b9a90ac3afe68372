//! How `docker` prints things for people: sizes (`3.61MB`), ages (`2 weeks ago`), truncated
//! commands and padded columns.

/// `HumanSizeWithPrecision(size, 3)` of go-units: decimal units, three significant digits.
pub(crate) fn size(bytes: u64) -> String {
    size_with_precision(bytes, 3)
}

/// `HumanSize` of go-units: four significant digits (what `docker system df` prints).
pub(crate) fn size4(bytes: u64) -> String {
    size_with_precision(bytes, 4)
}

fn size_with_precision(bytes: u64, precision: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, precision), UNITS[unit])
}

/// Go's `%.<precision>g` for 0 ≤ v < 1000.
fn significant(v: f64, precision: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exponent = v.log10().floor() as i32;
    let decimals = (precision - 1 - exponent).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.split('.').next().is_some_and(|int| int.len() as i32 > precision) {
        return "1e+03".into();
    }
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    s
}

/// Go's default format of a `time.Time` in UTC, as docker's `CreatedAt` prints it:
/// `2026-12-02 06:20:00 +0000 UTC`.
pub(crate) fn go_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// `HumanDuration` of go-units, plus " ago", for a time `seconds` since the epoch.
pub(crate) fn ago(seconds: i64) -> String {
    if seconds <= 0 {
        return "N/A".into();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    format!("{} ago", duration(now - seconds))
}

/// `HumanDuration` of go-units for the time since `rfc3339` (`Up 3 seconds`).
pub(crate) fn since(rfc3339: &str) -> String {
    let then = rfc3339.parse::<jiff::Timestamp>().map_or(0, |t| t.as_second());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    duration(now - then)
}

fn duration(secs: i64) -> String {
    let hours = ((secs as f64) / 3600.0 + 0.5) as i64;
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// `s` cut to `width` characters, the last one `…`, as `docker history` cuts commands.
pub(crate) fn ellipsis(s: &str, width: usize) -> String {
    if s.chars().count() <= width { s.to_owned() } else { s.chars().take(width - 1).chain(['…']).collect() }
}

/// Columns as Go's `tabwriter` (minimum width 10, padding 3) lays them out for `docker`.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths = vec![0usize; columns];
    for row in std::iter::once(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(rows) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max((cell.chars().count() + 3).max(10));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(rows) {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == columns {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        for (bytes, shown) in [
            (0, "0B"),
            (5, "5B"),
            (999, "999B"),
            (1000, "1kB"),
            (3_609_619, "3.61MB"),
            (72_800_000, "72.8MB"),
            (215_900_000, "216MB"),
            (124_000_000_000, "124GB"),
        ] {
            assert_eq!(size(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn durations_as_docker_prints_them() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(2), "2 seconds");
        assert_eq!(duration(90), "About a minute");
        assert_eq!(duration(3600), "About an hour");
        assert_eq!(duration(5 * 3600), "5 hours");
        assert_eq!(duration(3 * 86400), "3 days");
        assert_eq!(duration(20 * 86400), "2 weeks");
        assert_eq!(duration(100 * 86400), "3 months");
        assert_eq!(duration(3 * 365 * 86400), "3 years");
    }

    #[test]
    fn columns_as_docker_pads_them() {
        let t = table(&["REPOSITORY", "TAG", "SIZE"], &[vec!["mini".into(), "1".into(), "3.61MB".into()]]);
        assert_eq!(t, "REPOSITORY   TAG       SIZE\nmini         1         3.61MB\n");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
