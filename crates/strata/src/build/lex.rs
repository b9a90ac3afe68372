//! Dockerfile words: quotes, the escape character and `$` substitution, by the rules of
//! BuildKit's shell lexer (`frontend/dockerfile/shell/lex.go`), which both of docker's builders
//! use. Written here because shell-word crates know neither the escape directive nor
//! `${V:-word}` and friends; the upstream tables `envVarTest` and `wordsTest` are its tests.

use std::collections::BTreeSet;

use regex::Regex;

/// Where variables come from during substitution.
pub trait Env {
    /// The value of `name`, if it is set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// No variable is set.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A substitution that cannot be done; the message is BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError(pub String);

impl std::fmt::Display for LexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Lexed<T> = Result<T, LexError>;

/// The lexer and its switches.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// `\` or, after `# escape=\``, the backtick.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave `$NAME` of an unset variable as written.
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with `escape` as the escape character.
    pub fn new(escape: char) -> Lexer {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_unset: false }
    }

    /// One word, quotes removed and variables substituted.
    pub fn word(&self, source: &str, env: &dyn Env) -> Lexed<String> {
        Ok(self.word_with_unmatched(source, env)?.0)
    }

    /// [`word`](Self::word), and the names it used that were not set.
    pub fn word_with_unmatched(&self, source: &str, env: &dyn Env) -> Lexed<(String, BTreeSet<String>)> {
        let mut scan = Scan::new(self, source, env);
        let (word, _) = scan.until(None, self.raw_escapes).map_err(|e| failed(source, e))?;
        Ok((word, scan.unmatched))
    }

    /// Words split at unquoted white space (spaces inside a substituted value split too).
    pub fn words(&self, source: &str, env: &dyn Env) -> Lexed<Vec<String>> {
        let mut scan = Scan::new(self, source, env);
        let (_, words) = scan.until(None, self.raw_escapes).map_err(|e| failed(source, e))?;
        Ok(words)
    }
}

fn failed(source: &str, e: LexError) -> LexError {
    LexError(format!("failed to process {source:?}: {}", e.0))
}

fn err<T>(message: impl Into<String>) -> Lexed<T> {
    Err(LexError(message.into()))
}

/// Words being gathered beside the joined result.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw(ch);
        }
    }

    fn add_raw(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Scan<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    unmatched: BTreeSet<String>,
}

impl<'a> Scan<'a> {
    fn new(lexer: &'a Lexer, source: &str, env: &'a dyn Env) -> Scan<'a> {
        Scan {
            lexer,
            env,
            chars: source.chars().collect(),
            pos: 0,
            raw_escapes: lexer.raw_escapes,
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name).map(str::to_owned);
        if value.is_none() {
            self.unmatched.insert(name.to_owned());
        }
        value
    }

    /// Read up to `stop` (consumed) or the end; returns the joined text and the words.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Lexed<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn until_inner(&mut self, stop: Option<char>) -> Lexed<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_str(&value);
                }
                '<' => {
                    let value = self.possible_heredoc();
                    result.push_str(&value);
                    words.add_raw_str(&value);
                }
                '\'' => {
                    let value = self.single_quote()?;
                    result.push_str(&value);
                    words.add_raw_str(&value);
                }
                '"' => {
                    let value = self.double_quote()?;
                    result.push_str(&value);
                    words.add_raw_str(&value);
                }
                _ => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else { break };
                        words.add_raw(escaped);
                        result.push(escaped);
                    } else {
                        words.add(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => err(format!("unexpected end of statement while looking for matching {stop}")),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Lexed<String> {
        let mut result = String::new();
        let open = self.next().expect("a quote");
        if self.lexer.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => return err("unexpected end of statement while looking for matching single-quote"),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn double_quote(&mut self) -> Lexed<String> {
        let mut result = String::new();
        let open = self.next().expect("a quote");
        if self.lexer.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => return err("unexpected end of statement while looking for matching double-quote"),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().expect("peeked");
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.lexer.escape => {
                                ch = self.next().expect("peeked");
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay together, so a heredoc word is not split.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut result = String::from("<<");
        while let Some(ch) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            result.push(ch);
            self.next();
        }
        result
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Lexed<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return err("syntax error: missing '}'");
        };
        let mut modifier = ch.to_string();
        match ch {
            '}' => Ok(match self.get(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            modifier.push(c);
                        }
                        None => return err("syntax error: missing '}'"),
                    }
                }
                let pattern_like = ch == '#' || ch == '%';
                if !matches!(ch, '+' | '-' | '?' | '#' | '%') || (null_is_unset && pattern_like) {
                    return err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let word = match self.until(Some('}'), pattern_like) {
                    Ok((word, _)) => word,
                    Err(_) if self.peek().is_none() => return err("syntax error: missing '}'"),
                    Err(e) => return Err(e),
                };
                let value = self.get(&name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    '-' => Ok(if empty { word } else { value.unwrap_or_default() }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => {
                        let message = |default: &str| if word.is_empty() { default.to_owned() } else { word.clone() };
                        match value {
                            None => err(format!("{name}: {}", message("is not allowed to be unset"))),
                            Some(v) if null_is_unset && v.is_empty() => {
                                err(format!("{name}: {}", message("is not allowed to be empty")))
                            }
                            Some(v) => Ok(v),
                        }
                    }
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_owned()),
                            None => (false, word),
                        };
                        if ch == '%' {
                            trim_suffix(&pattern, &value, greedy)
                        } else {
                            trim_prefix(&pattern, &value, greedy)
                        }
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.until(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => return err("syntax error: missing '/' in ${}"),
                    Err(e) => return Err(e),
                };
                let replacement = match self.until(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(_) if self.peek().is_none() => return err("syntax error: missing '}'"),
                    Err(e) => return Err(e),
                };
                let Some(value) = self.get(&name) else {
                    return Ok(match self.lexer.skip_unset {
                        true => format!("${{{name}/{pattern}/{replacement}}}"),
                        false => String::new(),
                    });
                };
                let re = shell_pattern(&pattern, true, false)
                    .map_err(|e| LexError(format!("invalid pattern ({pattern}) in substitution: {e}")))?;
                Ok(match all {
                    true => re.replace_all(&value, regex::NoExpand(&replacement)).into_owned(),
                    false => re.replace(&value, regex::NoExpand(&replacement)).into_owned(),
                })
            }
            _ => err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }
}

/// A shell pattern (`*`, `?`, `\` escapes) as a regular expression.
fn shell_pattern(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape at the end".into()),
                }
            }
            c => {
                if "[]{}.+()|^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    // Go's regexp matches bytes as its own (?s); so does this.
    Regex::new(&format!("(?s){out}")).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Lexed<String> {
    let re = shell_pattern(pattern, greedy, true)
        .map_err(|e| LexError(format!("invalid pattern ({pattern}) in substitution: {e}")))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// Reverse a pattern, keeping each `\x` escape in front of its character.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec![' '; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let at = last - i;
        if chars[i] == '\\' && i != last {
            out[at - 1] = '\\';
            out[at] = chars[i + 1];
            i += 2;
        } else {
            out[at] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Lexed<String> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_pattern_keeps_escapes_in_front() {
        // From lex_test.go's TestReversePattern.
        for (pattern, reversed) in [("a\\*c", "c\\*a"), ("\\\\\\ab", "b\\a\\\\"), ("ab\\", "\\ba"), ("\\\\b", "b\\\\")]
        {
            assert_eq!(reverse_pattern(pattern), reversed, "{pattern}");
        }
    }

    #[test]
    fn bad_escapes_in_patterns_are_refused() {
        for pattern in ["\\", "\\x", "\\\\\\"] {
            assert!(shell_pattern(pattern, true, true).is_err(), "{pattern}");
        }
    }

    #[test]
    fn mandatory_variables() {
        // From lex_test.go's TestShellParserMandatoryEnvVars.
        let lexer = Lexer::new('\\');
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let set = env(&[("VAR", "plain"), ("ARG", "x")]);
        let empty = env(&[("VAR", ""), ("ARG", "x")]);
        let unset = env(&[("ARG", "x")]);
        assert_eq!(lexer.word("${VAR:?message here$ARG}", &set).unwrap(), "plain");
        assert!(lexer.word("${VAR:?message here$ARG}", &empty).unwrap_err().0.contains("message herex"));
        assert!(lexer.word("${VAR:?message here$ARG}", &unset).unwrap_err().0.contains("message herex"));
        assert_eq!(lexer.word("${VAR?message here$ARG}", &set).unwrap(), "plain");
        assert_eq!(lexer.word("${VAR?message here$ARG}", &empty).unwrap(), "");
        assert!(lexer.word("${VAR?message here$ARG}", &unset).unwrap_err().0.contains("message herex"));
    }
}

/// The upstream tables, run as they are (see `testdata/buildkit/README.md`).
#[cfg(test)]
mod tables {
    use super::*;

    fn env(pairs: &[&str]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn env_var_test() {
        let table = include_str!("../../testdata/buildkit/envVarTest");
        let vars = env(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
        let lexer = Lexer::new('\\');
        let mut ran = 0;
        for (n, line) in table.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split('|').collect();
            assert_eq!(parts.len(), 3, "line {}", n + 1);
            let (mode, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
            if mode == "W" {
                continue;
            }
            ran += 1;
            let got = lexer.word(source, &vars);
            match expected {
                "error" => assert!(got.is_err(), "line {}: {source:?} gave {got:?}", n + 1),
                _ => assert_eq!(got.as_deref(), Ok(expected), "line {}: {source:?}", n + 1),
            }
        }
        assert!(ran > 200, "{ran} cases");
    }

    #[test]
    fn words_test() {
        let table = include_str!("../../testdata/buildkit/wordsTest");
        let lexer = Lexer::new('\\');
        let mut vars = Vec::new();
        for (n, line) in table.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("ENV ") {
                vars.extend(env(&[rest.trim_start_matches(' ')]));
                continue;
            }
            let (source, expected) = line.split_once('|').expect("one |");
            let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
            let got = lexer.words(source.trim(), &vars).unwrap_or_else(|_| vec!["error".into()]);
            assert_eq!(got, expected, "line {}: {source:?}", n + 1);
        }
    }
}
