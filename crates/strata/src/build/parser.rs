//! The Dockerfile's shape: parser directives, comments, line continuations, heredocs, and each
//! instruction's flags and arguments, by the rules of BuildKit's parser (which both of
//! docker's builders use). Arguments are not yet substituted: that is [`super::lex`]'s job,
//! per instruction. BuildKit's `testfiles` are its tests, through [`Instruction::dump`].

use regex::Regex;
use std::sync::LazyLock;

use super::lex::{Lexer, NoEnv};

/// The default escape character.
pub const DEFAULT_ESCAPE: char = '\\';

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
    /// The escape character (`# escape=` directive).
    pub escape: char,
    /// The `# syntax=` directive, if any (read, not acted on).
    pub syntax: Option<String>,
    /// Warnings, as BuildKit prints them (empty continuation lines).
    pub warnings: Vec<String>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instruction {
    /// The keyword as written (`RUN`, `run`).
    pub command: String,
    /// `--flag` words before the arguments.
    pub flags: Vec<String>,
    /// The arguments, split as the keyword splits them (ENV: key, value, separator, …).
    pub args: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Instruction>>,
    /// The heredocs the instruction opens, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// The line as joined from its continuation lines.
    pub original: String,
    /// First and last line (1-based) in the file.
    pub lines: (usize, usize),
}

/// A heredoc: `<<EOF` … `EOF`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 if none.
    pub fd: u32,
    /// Variables are substituted in the body (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// The body, each line with its newline.
    pub content: String,
}

/// A syntax error, with the lines it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The first line (1-based) of the instruction, or the line of the error.
    pub line: usize,
    /// What is wrong, in BuildKit's words.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

type Parsed<T> = Result<T, String>;

/// The blanks that separate a keyword from its arguments (Go's `[\t\v\f\r ]+`).
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn split_blanks(s: &str) -> Vec<&str> {
    s.split(is_blank).filter(|w| !w.is_empty()).collect()
}

/// `s` cut at its first run of blanks.
fn split_blanks_once(s: &str) -> (&str, Option<&str>) {
    match s.find(is_blank) {
        Some(at) => (&s[..at], Some(s[at..].trim_start_matches(is_blank))),
        None => (s, None),
    }
}

impl Instruction {
    /// The keyword, lower case.
    pub fn keyword(&self) -> String {
        self.command.to_ascii_lowercase()
    }

    /// BuildKit's S-expression of the instruction (`Node.Dump`), as its `testfiles` hold it.
    pub fn dump(&self) -> String {
        let mut s = self.keyword();
        if !self.flags.is_empty() {
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", quoted.join(" ")));
        }
        if let Some(sub) = &self.sub {
            s.push(' ');
            s.push('(');
            s.push_str(&sub.dump());
            s.push(')');
        }
        for arg in &self.args {
            s.push(' ');
            s.push_str(&go_quote(arg));
        }
        s.trim().to_owned()
    }

    fn can_contain_heredoc(&self) -> bool {
        let me = match (&self.sub, self.keyword().as_str()) {
            (Some(sub), "onbuild") => sub,
            _ => self,
        };
        matches!(me.keyword().as_str(), "add" | "copy" | "run") && !me.json
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => match c as u32 {
                n if n <= 0xffff => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The parser's state: the escape character and the directive scanner.
struct Directives {
    escape: char,
    syntax: Option<String>,
    seen: Vec<String>,
    done: bool,
}

static DIRECTIVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("a regex"));

impl Directives {
    /// Look at a line for `# key=value`: only lines before anything else can be directives.
    fn scan(&mut self, line: &str) -> Parsed<bool> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let Some(m) = DIRECTIVE.captures(rest.trim_start()) else {
            self.done = true;
            return Ok(false);
        };
        let key = m[1].to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        let value = m[2].to_owned();
        match key.as_str() {
            "escape" => {
                self.escape = match value.as_str() {
                    "`" => '`',
                    "\\" => '\\',
                    _ => return Err(format!("invalid escape token '{value}' does not match ` or \\")),
                };
            }
            "syntax" => self.syntax = Some(value),
            _ => {}
        }
        Ok(true)
    }

    /// A line ending in the escape character (not itself escaped) continues on the next:
    /// returns the line without it, and whether the instruction ends here.
    fn trim_continuation<'a>(&self, line: &'a str) -> (&'a str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.is_empty() {
            return ("", false);
        }
        match before.ends_with(self.escape) {
            true => (line, true),
            false => (before, false),
        }
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Parse a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut d = Directives { escape: DEFAULT_ESCAPE, syntax: None, seen: Vec::new(), done: false };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n').peekable();
    let mut current = 0;
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    let at = |line: usize| move |message: String| ParseError { line, message };
    while let Some(raw) = lines.next() {
        let token = trim_newline(raw).trim_start();
        d.scan(token).map_err(at(current + 1))?;
        let token = if is_comment(token) { "" } else { token };
        current += 1;
        let start = current;
        let (first, mut ended) = d.trim_continuation(token);
        if ended && first.is_empty() {
            continue;
        }
        let mut joined = first.to_owned();
        let mut empty_continuation = false;
        while !ended {
            let Some(raw) = lines.next() else { break };
            let token = trim_newline(raw);
            d.scan(token).map_err(at(current + 1))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = d.trim_continuation(token);
            joined.push_str(part);
            ended = end;
        }
        if empty_continuation {
            warnings.push(format!("Empty continuation line found in: {joined}"));
        }
        let mut instruction = instruction(&joined, &d).map_err(at(start))?;
        if instruction.can_contain_heredoc() && joined.contains("<<") {
            for mut heredoc in heredocs_in(&joined).map_err(at(start))? {
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError { line: start, message: "unterminated heredoc".into() });
                }
                instruction.heredocs.push(heredoc);
            }
        }
        instruction.lines = (start, current);
        instructions.push(instruction);
    }
    if instructions.is_empty() {
        return Err(ParseError { line: current.max(1), message: "file with no instructions".into() });
    }
    Ok(Dockerfile { instructions, escape: d.escape, syntax: d.syntax, warnings })
}

/// One joined line as an instruction.
fn instruction(line: &str, d: &Directives) -> Parsed<Instruction> {
    let (command, rest) = split_blanks_once(line.trim());
    let (args, flags) = match rest {
        Some(rest) => builder_flags(rest, d.escape),
        None => (String::new(), Vec::new()),
    };
    let args = args.trim();
    let mut instruction =
        Instruction { command: command.to_owned(), flags, original: line.to_owned(), ..Instruction::default() };
    let keyword = instruction.keyword();
    let (list, json) = match keyword.as_str() {
        "add" | "copy" | "volume" => maybe_json_list(args)?,
        "arg" => (parse_words(args, d.escape), false),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(args)?,
        "env" | "label" => (name_values(args, &keyword.to_ascii_uppercase(), d.escape)?, false),
        "expose" | "from" => (split_blanks(args).into_iter().map(str::to_owned).collect(), false),
        "healthcheck" => health(args)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            (if args.is_empty() { vec![] } else { vec![args.to_owned()] }, false)
        }
        "onbuild" => {
            if !args.is_empty() {
                instruction.sub = Some(Box::new(self::instruction(args, d)?));
            }
            (vec![], false)
        }
        // Unknown keywords parse, and are refused when the build reads them.
        _ => (vec![String::new()], false),
    };
    instruction.args = list;
    instruction.json = json;
    Ok(instruction)
}

/// Leading `--flag` words; the rest of the line and the flags.
fn builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut phase = Phase::Spaces;
    let mut i = 0;
    loop {
        let Some(&(at, ch)) = chars.get(i) else {
            if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return (String::new(), words);
        };
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    i += 1;
                    continue;
                }
                if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                    return (line[at..].to_owned(), words);
                }
                phase = Phase::Word;
                continue;
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[at..].to_owned(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == escape {
                    if let Some(&(_, next)) = chars.get(i + 1) {
                        word.push(next);
                        i += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                } else if ch == escape {
                    match chars.get(i + 1) {
                        Some(&(_, next)) => {
                            word.push(next);
                            i += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
}

/// Words split at blanks, quotes and escapes kept (they are removed at substitution).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while i <= chars.len() {
        let Some(&ch) = chars.get(i) else {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            break;
        };
        i += 1;
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if ch.is_whitespace() {
                    in_word = false;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some(&next) = chars.get(i) else { continue };
                    word.push(ch);
                    word.push(next);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    let Some(&next) = chars.get(i) else {
                        quote = None;
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
        }
    }
    words
}

/// ENV and LABEL: `key value` (old form, one pair) or `k=v k2=v2`; as key, value, separator.
fn name_values(rest: &str, keyword: &str, escape: char) -> Parsed<Vec<String>> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else { return Ok(vec![]) };
    if !first.contains('=') {
        let (key, value) = split_blanks_once(rest);
        return match value {
            Some(value) => Ok(vec![key.to_owned(), value.to_owned(), String::new()]),
            None => Err(format!("{keyword} must have two arguments")),
        };
    }
    let mut out = Vec::new();
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(word)));
        };
        out.extend([key.to_owned(), value.to_owned(), "=".to_owned()]);
    }
    Ok(out)
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// A JSON array of strings: `Ok(Some)`; not JSON: `Ok(None)`; JSON of other things: an error.
fn json_array(rest: &str) -> Parsed<Option<Vec<String>>> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else { return Ok(None) };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRINGS.to_owned()),
        })
        .collect::<Parsed<Vec<String>>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Parsed<(Vec<String>, bool)> {
    if rest.is_empty() {
        return Ok((vec![], false));
    }
    Ok(match json_array(rest)? {
        Some(list) => (list, true),
        None => (vec![rest.to_owned()], false),
    })
}

fn maybe_json_list(rest: &str) -> Parsed<(Vec<String>, bool)> {
    Ok(match json_array(rest)? {
        Some(list) => (list, true),
        None => (split_blanks(rest).into_iter().map(str::to_owned).collect(), false),
    })
}

/// HEALTHCHECK: its type (`CMD`, `NONE`), then the command as CMD takes it.
fn health(rest: &str) -> Parsed<(Vec<String>, bool)> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((vec![], false));
    }
    let (kind, cmd) = rest.split_at(sep);
    let (mut cmd, json) = maybe_json(cmd.trim_start())?;
    cmd.insert(0, kind.to_owned());
    Ok((cmd, json))
}

static HEREDOC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d*)<<(-?)\s*([^<]*)$").expect("a regex"));

/// The heredocs a line opens, in order.
fn heredocs_in(line: &str) -> Parsed<Vec<Heredoc>> {
    let lexer = Lexer { raw_quotes: true, raw_escapes: true, skip_unset: true, ..Lexer::new('\\') };
    let words = lexer.words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The heredoc a word opens, if it is `[fd]<<[-]NAME`.
pub fn heredoc(word: &str) -> Parsed<Option<Heredoc>> {
    let Some(m) = HEREDOC.captures(word) else { return Ok(None) };
    let rest = &m[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let mut lexer = Lexer { skip_unset: true, ..Lexer::new('\\') };
    let words = lexer.words(rest, &NoEnv).map_err(|e| e.0)?;
    let [name] = words.as_slice() else { return Ok(None) };
    lexer.raw_quotes = true;
    let raw = lexer.words(rest, &NoEnv).map_err(|e| e.0)?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: name.clone(),
        fd: m[1].parse().unwrap_or(0),
        expand,
        chomp: &m[2] == "-",
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BuildKit's `testfiles`: each Dockerfile's dump equals its `result`.
    #[test]
    fn buildkit_testfiles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/buildkit/parser");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let case = entry.unwrap().path();
            let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
            let expected = std::fs::read_to_string(case.join("result")).unwrap();
            let parsed = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
            let dump: String = parsed.instructions.iter().map(|i| format!("({})\n", i.dump())).collect();
            assert_eq!(dump, expected, "{}", case.display());
            count += 1;
        }
        assert_eq!(count, 33);
    }

    #[test]
    fn buildkit_negative_testfiles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/buildkit/parser-negative");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let case = entry.unwrap().path();
            let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
            assert!(parse(&text).is_err(), "{} parsed", case.display());
        }
    }

    /// Cases from BuildKit's `parser_heredoc_test.go` (TestParseExtractsHeredoc).
    #[test]
    fn heredocs() {
        let text = "FROM alpine\nUSER <<INVALID\nINVALID\nRUN 3<<EMPTY2\nEMPTY2\nRUN \"<<NOHEREDOC\"\n\
RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\
COPY <<X <<Y /dest\nY\nX\nX\nY\nRUN <<COMMENT\n# internal comment\necho hi # trailing\nCOMMENT\n\
RUN <<eo\\'f\necho foo\neo'f\nRUN <<  EOF  > foo\nEOF\n";
        let parsed = parse(text).unwrap();
        let docs: Vec<Vec<Heredoc>> = parsed.instructions.iter().map(|i| i.heredocs.clone()).collect();
        let doc = |name: &str, fd, expand, chomp, content: &str| Heredoc {
            name: name.to_owned(),
            fd,
            expand,
            chomp,
            content: content.to_owned(),
        };
        assert_eq!(parsed.instructions[2].keyword(), "invalid", "USER takes no heredoc");
        assert_eq!(docs[3], vec![doc("EMPTY2", 3, true, false, "")]);
        assert!(docs[4].is_empty(), "a quoted <<");
        assert_eq!(docs[5], vec![doc("UNINDENT2", 0, true, true, "\tbaz\n\tquux\n")]);
        assert_eq!(docs[6], vec![doc("NOEXPAND", 0, false, true, "\tdon't expand $NAME\n")]);
        assert_eq!(docs[7], vec![doc("X", 0, true, false, "Y\n"), doc("Y", 0, true, false, "X\n")]);
        assert_eq!(docs[8], vec![doc("COMMENT", 0, true, false, "# internal comment\necho hi # trailing\n")]);
        assert_eq!(docs[9], vec![doc("eo'f", 0, true, false, "echo foo\n")], "an escaped quote is not a quote");
        assert_eq!(docs[10], vec![doc("EOF", 0, true, false, "")]);
        assert_eq!(parse("FROM a\nRUN <<EOF\necho\n").unwrap_err().message, "unterminated heredoc");
    }

    #[test]
    fn errors_name_their_line() {
        let err = parse("FROM a\n\nENV X\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (3, "ENV must have two arguments"));
        let err = parse("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse("FROM a\nRUN [\"a\", 1]\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (2, NOT_STRINGS));
        assert_eq!(parse("# escape=`\nFROM a\nRUN a `\n  b\n").unwrap().instructions[1].args, ["a   b"]);
    }
}
