//! `.dockerignore`: which files of the context a build does not see, by moby's patternmatcher
//! rules (a pattern is a Go `filepath.Match` pattern plus `**`; `!` re-includes; the last rule
//! that matches a path or one of its parents wins). Written here because glob and gitignore
//! crates differ from moby on `**` (moby also takes `**file`), on `!` under an excluded
//! directory (moby re-includes) and on classes; moby/patternmatcher's tables are its tests.

use regex::Regex;

use crate::gopath::clean;

/// The patterns of a `.dockerignore`, compiled.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

#[derive(Debug)]
struct Pattern {
    exclusion: bool,
    cleaned: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Exact,
    /// `dir/**`: anything under `dir/`.
    Prefix,
    /// `**/x`, `**x`: anything ending so.
    Suffix,
    Regex(Regex),
}

/// The lines of a `.dockerignore` as patterns (moby's `ignorefile.ReadAll`): a UTF-8 BOM
/// dropped, `#` comments only at the very start of a line, blanks trimmed, each pattern
/// cleaned and made relative.
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert { format!("!{cleaned}") } else { cleaned });
    }
    out
}

impl Ignore {
    /// Compile patterns; a malformed one is an error that names it.
    pub fn new(patterns: &[String]) -> Result<Ignore, String> {
        let mut ignore = Ignore::default();
        for pattern in patterns {
            let pattern = pattern.trim();
            if pattern.is_empty() {
                continue;
            }
            let mut cleaned = clean(pattern);
            let exclusion = cleaned.starts_with('!');
            if exclusion {
                if cleaned.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".into());
                }
                cleaned.remove(0);
                ignore.exclusions = true;
            }
            if !crate::glob::valid(&cleaned) {
                return Err(format!("syntax error in pattern {cleaned:?}"));
            }
            let kind = compile(&cleaned).map_err(|e| format!("syntax error in pattern {cleaned:?}: {e}"))?;
            ignore.patterns.push(Pattern { exclusion, cleaned, kind });
        }
        Ok(ignore)
    }

    /// Whether some pattern starts with `!`.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (relative, `/`-separated) is left out: it or one of its parent
    /// directories matches, and no later `!` pattern takes it back.
    pub fn excludes(&self, path: &str) -> bool {
        let file = clean(path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(at) => file[..at].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&file);
            if !hit {
                for i in 1..=parents.len() {
                    if pattern.matches(&parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// A pattern as the cheapest test that decides it, as moby compiles it.
fn compile(pattern: &str) -> Result<Kind, regex::Error> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut token = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if token == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    detected = Detected::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                detected = Detected::Regex;
            }
            _ => re.push(ch),
        }
        token += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix,
        Detected::Suffix => Kind::Suffix,
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(patterns: &[&str]) -> Ignore {
        Ignore::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// moby/patternmatcher's `TestMatches` table (single patterns), rewritten; checked with
    /// `excludes` as moby checks them with `MatchesOrParentMatches`.
    #[test]
    fn patternmatcher_matches_table() {
        let table = include_str!("../../testdata/patternmatcher/matches");
        let mut count = 0;
        for line in table.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let parts: Vec<&str> = line.split('\t').collect();
            let [pattern, text, pass] = parts[..] else { panic!("bad line {line:?}") };
            let patterns: Vec<&str> = pattern.split(' ').collect();
            assert_eq!(ignore(&patterns).excludes(text), pass == "true", "{patterns:?} {text:?}");
            count += 1;
        }
        assert_eq!(count, 72);
    }

    #[test]
    fn exceptions_and_folders() {
        // From patternmatcher_test.go's single-case tests.
        assert!(ignore(&["*"]).excludes("fileutils.go"));
        assert!(ignore(&["!fileutils.go", "*.go"]).excludes("fileutils.go"));
        assert!(!ignore(&["docs", "!docs/README.md"]).excludes("docs/README.md"));
        assert!(!ignore(&["docs/", "!docs/README.md"]).excludes("docs/README.md"));
        assert!(!ignore(&["docs/*", "!docs/README.md"]).excludes("docs/README.md"));
        assert!(!ignore(&["*.go", "!fileutils.go"]).excludes("fileutils.go"));
        assert!(!ignore(&["docs", "!docs"]).excludes("docs/README.md"));
        assert!(Ignore::new(&["!".to_string()]).is_err());
        assert!(Ignore::new(&["[".to_string()]).is_err());
        assert!(Ignore::new(&["[Local-Only]/".to_string()]).is_err());
    }

    /// moby's `compileTests`: which fast path each pattern takes.
    #[test]
    fn compile_table() {
        for (pattern, kind) in [
            ("*", "^[^/]*$"),
            ("a*/b", "^a[^/]*/b$"),
            ("**", "suffix"),
            ("**/**", "^(.*/)?.*$"),
            ("dir/**", "prefix"),
            ("**/dir", "suffix"),
            ("**/dir2/*", "^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", "^(.*/)?dir2/.*$"),
            ("**file", "suffix"),
            ("**/**/*.txt", r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ("a[b-d]e", "^a[b-d]e$"),
            (".*", r"^\.[^/]*$"),
            ("abc.def", "exact"),
            ("abc?def", "^abc[^/]def$"),
            ("**/foo/bar", "suffix"),
            ("a(b)c/def", "exact"),
            ("a.|)$(}+{bc", "exact"),
        ] {
            let got = match compile(&clean(pattern)).unwrap() {
                Kind::Exact => "exact".to_owned(),
                Kind::Prefix => "prefix".to_owned(),
                Kind::Suffix => "suffix".to_owned(),
                Kind::Regex(re) => re.as_str().to_owned(),
            };
            assert_eq!(got, kind, "{pattern}");
        }
    }

    #[test]
    fn dockerignore_lines() {
        let text = "\u{feff}# comment\n  # not a comment\n\n/abs/../x\n! keep \n**/*.tmp\n";
        assert_eq!(read_patterns(text), ["# not a comment", "x", "!keep", "**/*.tmp"]);
    }
}
