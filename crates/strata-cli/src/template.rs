//! `--format` with Go templates, as docker's: `{{.ID}}`, `{{json .}}`, and `table …`, which
//! prints a header row and lines up the tab-separated columns. Each command gives a row per
//! item with docker's field names (all strings, as docker's formatters give them) and the
//! header of each field.

use std::str::FromStr;

use anyhow::{Context, Result, anyhow};
use gtmpl::{FuncError, Template, Value};
use serde_json::Value as Json;

use crate::human;

/// `--format` of a list: `table` (the default), `json` (the Engine API's list), or a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// Columns for people.
    Table,
    /// The Engine API's JSON.
    Json,
    /// A Go template, per row; `table` ones print a header and align columns.
    Template {
        /// The template, without `table `.
        text: String,
        /// Whether it began with `table`.
        table: bool,
    },
}

impl FromStr for ListFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "table" | "" => ListFormat::Table,
            "json" => ListFormat::Json,
            t => match t.strip_prefix("table") {
                Some(rest) if rest.starts_with([' ', '\t']) => {
                    ListFormat::Template { text: rest.trim_start().to_owned(), table: true }
                }
                _ => ListFormat::Template { text: t.to_owned(), table: false },
            },
        })
    }
}

fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (_, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(a) => Value::from(a.iter().map(to_value).collect::<Vec<_>>()),
        Json::Object(o) => {
            Value::from(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect::<std::collections::HashMap<_, _>>())
        }
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil | Value::NoValue => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                Json::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) | Value::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
        Value::Function(_) => Json::Null,
    }
}

/// `{{json .}}`: the value as compact JSON, keys sorted (as Go's encoding of a struct's
/// fields in the order docker declares them, which is alphabetical for its formatters).
fn json(args: &[Value]) -> Result<Value, FuncError> {
    let value = args.first().ok_or(FuncError::AtLeastXArgs("json".into(), 1))?;
    Ok(Value::from(serde_json::to_string(&to_json(value)).unwrap_or_default()))
}

fn string_arg(args: &[Value], i: usize, name: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg(args, 0, "upper")?.to_uppercase()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg(args, 0, "lower")?.to_lowercase()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = string_arg(args, 1, "join")?;
    match args.first() {
        Some(Value::Array(items)) => Ok(Value::from(
            items
                .iter()
                .map(|v| to_json(v).as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(&sep),
        )),
        Some(other) => Ok(Value::from(other.to_string())),
        None => Err(FuncError::AtLeastXArgs("join".into(), 2)),
    }
}

/// How Go's `fmt` prints a value (`%v`), which docker's templates print with: `[a b]` for a
/// list, `map[k:v]` for an object (keys sorted), `<nil>` for null.
fn go_print(value: &Value) -> String {
    match value {
        Value::Nil => "<nil>".into(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Map(m) | Value::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
            let parts: Vec<String> = sorted.into_iter().map(|(k, v)| format!("{k}:{}", go_print(v))).collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

/// The function every output action is wrapped in (see `wrap_outputs`).
fn print(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(args.first().map(go_print).unwrap_or_default()))
}

/// The name `wrap_outputs` gives `print`: no template of a user's calls it.
const PRINT: &str = "__strata_print";

/// Go's templates print an action's value with `fmt`; gtmpl prints lists and maps as Rust's
/// debug output. Each action that prints (not `if`, `range`, `end`, …, a comment or an
/// assignment) is wrapped as `{{PRINT (pipeline)}}`, so values print as docker prints them.
fn wrap_outputs(text: &str) -> String {
    const KEYWORDS: &[&str] =
        &["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"];
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = action_end(after) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (left, body) = match inner.strip_prefix("- ").or_else(|| inner.strip_prefix("-\t")) {
            Some(b) => ("- ", b),
            None => ("", inner),
        };
        let (body, right) = match body.strip_suffix(" -").or_else(|| body.strip_suffix("\t-")) {
            Some(b) => (b, " -"),
            None => (body, ""),
        };
        let trimmed = body.trim_start();
        let word: String = trimmed.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let assignment =
            trimmed.starts_with('$') && trimmed.split_whitespace().nth(1).is_some_and(|op| op == ":=" || op == "=");
        if KEYWORDS.contains(&word.as_str()) || trimmed.starts_with("/*") || assignment || trimmed.is_empty() {
            out.push_str(&rest[start..start + 2 + end + 2]);
        } else {
            out.push_str(&format!("{{{{{left}{PRINT} ({body}){right}}}}}"));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Where an action's `}}` is, past any quoted string.
fn action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse(text: &str) -> Result<Template> {
    let mut template = Template::default();
    template.add_func(PRINT, print);
    template.add_func("json", json);
    template.add_func("upper", upper);
    template.add_func("lower", lower);
    template.add_func("join", join);
    // Go's text/template reads `\t` and `\n` written in a shell argument literally; docker's
    // CLI turns them into tabs and newlines first.
    let text = wrap_outputs(&text.replace("\\t", "\t").replace("\\n", "\n"));
    template.parse(text).map_err(|e| anyhow!("invalid --format template: {e}"))?;
    Ok(template)
}

/// Render one object (an `inspect` result, `info`) with the template, and a newline.
pub(crate) fn render_one(text: &str, value: &Json) -> Result<String> {
    let template = parse(text)?;
    let context = gtmpl::Context::from(to_value(value));
    Ok(format!("{}\n", template.render(&context).map_err(|e| anyhow!("--format template: {e}"))?))
}

/// Render `rows` with the template: a line per row, and for a `table` template first a header
/// (each field's name from `headers`) with the columns lined up.
pub(crate) fn render(text: &str, table: bool, rows: &[Json], headers: &[(&str, &str)]) -> Result<String> {
    let template = parse(text)?;
    let mut lines = Vec::new();
    if table {
        let header: serde_json::Map<String, Json> =
            headers.iter().map(|(k, v)| ((*k).to_owned(), Json::String((*v).to_owned()))).collect();
        let context = gtmpl::Context::from(to_value(&Json::Object(header)));
        lines.push(template.render(&context).map_err(|e| anyhow!("--format template: {e}"))?);
    }
    for row in rows {
        let context = gtmpl::Context::from(to_value(row));
        lines.push(template.render(&context).context("--format template")?);
    }
    if !table {
        return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
    }
    let cells: Vec<Vec<String>> = lines.iter().map(|l| l.split('\t').map(str::to_owned).collect()).collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let padded: Vec<Vec<String>> = cells
        .into_iter()
        .map(|mut c| {
            c.resize(columns, String::new());
            c
        })
        .collect();
    let header: Vec<&str> = padded.first().map(|h| h.iter().map(String::as_str).collect()).unwrap_or_default();
    Ok(human::table(&header, &padded[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_as_docker_s() {
        let rows = vec![serde_json::json!({"ID": "abc", "Repository": "debian", "Tag": "12"})];
        let headers = [("ID", "IMAGE ID"), ("Repository", "REPOSITORY"), ("Tag", "TAG")];
        assert_eq!(render("{{.Repository}}:{{.Tag}}", false, &rows, &headers).unwrap(), "debian:12\n");
        assert_eq!(
            render("{{json .}}", false, &rows, &headers).unwrap(),
            "{\"ID\":\"abc\",\"Repository\":\"debian\",\"Tag\":\"12\"}\n"
        );
        let table = render("{{.Repository}}\\t{{.ID}}", true, &rows, &headers).unwrap();
        assert_eq!(table, "REPOSITORY   IMAGE ID\ndebian       abc\n");
        assert_eq!(render("{{upper .Tag}}{{lower .Repository}}", false, &rows, &headers).unwrap(), "12debian\n");
        assert!(render("{{.Repository", false, &rows, &headers).is_err());
        assert_eq!(
            "table {{.ID}}".parse::<ListFormat>().unwrap(),
            ListFormat::Template { text: "{{.ID}}".into(), table: true }
        );
        assert_eq!("json".parse::<ListFormat>().unwrap(), ListFormat::Json);
    }
}

#[cfg(test)]
mod go_print_tests {
    use super::*;

    fn one(template: &str, value: Json) -> String {
        render_one(template, &value).unwrap().trim_end_matches('\n').to_owned()
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let v =
            serde_json::json!({"Tags": ["a:1", "b:2"], "Env": null, "Labels": {"z": "1", "a": "x"}, "N": 3, "S": "s"});
        assert_eq!(one("{{.Tags}}", v.clone()), "[a:1 b:2]");
        assert_eq!(one("{{.Labels}}", v.clone()), "map[a:x z:1]");
        assert_eq!(one("{{.Env}}", v.clone()), "<nil>");
        assert_eq!(one("{{.N}} {{.S}}", v.clone()), "3 s");
        assert_eq!(one("{{json .Tags}}", v.clone()), r#"["a:1","b:2"]"#);
        assert_eq!(one("{{.Tags | json}}", v.clone()), r#"["a:1","b:2"]"#);
        assert_eq!(one("{{range .Tags}}<{{.}}>{{end}}", v.clone()), "<a:1><b:2>");
        assert_eq!(one("{{if .N}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(one("{{- .S -}} | {{ .S }}", v.clone()), "s| s", "as Go trims");
        assert_eq!(one(r#"{{"}}"}} {{/* a comment */}}x"#, v.clone()), "}} x");
        assert_eq!(one("{{$t := .Tags}}{{index $t 1}}", v.clone()), "b:2");
        assert_eq!(one("{{join .Tags \",\"}}", v), "a:1,b:2");
    }
}
