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

fn parse(text: &str) -> Result<Template> {
    let mut template = Template::default();
    template.add_func("json", json);
    template.add_func("upper", upper);
    template.add_func("lower", lower);
    template.add_func("join", join);
    // Go's text/template reads `\t` and `\n` written in a shell argument literally; docker's
    // CLI turns them into tabs and newlines first.
    let text = text.replace("\\t", "\t").replace("\\n", "\n");
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
