//! Go's `path.Match`, which docker's `reference=` filter and a Dockerfile's COPY wildcards use: `*` matches any run of
//! characters but `/`, `?` one character but `/`, `[…]` a class (`[^…]` negated,
//! ranges `a-z`, `\` escapes). Written here because the glob crates follow shell or gitignore
//! rules, which differ from Go's on `/`, on `**` and on classes, and a pattern must select the
//! same images in strata as in docker.

/// Whether `name` matches `pattern` as Go's `path.Match` decides; a malformed pattern matches
/// nothing.
pub fn matches(pattern: &str, name: &str) -> bool {
    matches_checked(pattern, name).unwrap_or(false)
}

/// A pattern Go's `path.Match` refuses (`ErrBadPattern`): an unclosed or empty class, a
/// range with no end, a trailing `\`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match`: whether `name` matches `pattern`, or [`BadPattern`] (which Go reports
/// even when the name fails to match earlier in the pattern).
pub fn matches_checked(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern: Vec<char> = pattern.chars().collect();
    let mut name: Vec<char> = name.chars().collect();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(&pattern);
        let (chunk, rest) = (chunk.to_vec(), rest.to_vec());
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` takes the rest of the name, unless it holds a '/'.
            return Ok(!name.contains(&'/'));
        }
        let (tail, ok) = match_chunk(&chunk, &name)?;
        if ok && (tail.is_empty() || !pattern.is_empty()) {
            name = tail.to_vec();
            continue;
        }
        if star {
            // The star takes name[..=i], never a '/'.
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                let (tail, ok) = match_chunk(&chunk, &name[i + 1..])?;
                if ok && (tail.is_empty() || !pattern.is_empty()) {
                    name = tail.to_vec();
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // No match: the rest of the pattern must still be well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(&pattern);
            match_chunk(chunk, &[])?;
            pattern = rest.to_vec();
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Whether Go's `path.Match` accepts `pattern`.
pub fn valid(pattern: &str) -> bool {
    matches_checked(pattern, ".").is_ok()
}

/// Leading stars, then the pattern up to the next star outside a class.
fn scan_chunk(pattern: &[char]) -> (bool, &[char], &[char]) {
    let stars = pattern.iter().take_while(|c| **c == '*').count();
    let pattern = &pattern[stars..];
    let mut in_class = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '\\' if i + 1 < pattern.len() => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (stars > 0, &pattern[..i], &pattern[i..])
}

/// Match a chunk (no stars) against the start of `s`: the rest of `s` and whether it matched.
fn match_chunk<'a>(mut chunk: &[char], mut s: &'a [char]) -> Result<(&'a [char], bool), BadPattern> {
    // After a failure the chunk is still read to the end, to find a malformed class.
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match first {
            '[' => {
                let c = match failed {
                    true => None,
                    false => {
                        let c = s[0];
                        s = &s[1..];
                        Some(c)
                    }
                };
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, rest) = class_char(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if c.is_some_and(|c| lo <= c && c <= hi) {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if s[0] == '/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if first == '\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { (&[], false) } else { (s, true) })
}

/// One character of a class (`\x` escapes it); something must follow it.
fn class_char(chunk: &[char]) -> Result<(char, &[char]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some('-') | Some(']') => return Err(BadPattern),
        Some('\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        Some(_) => {}
    }
    let rest = &chunk[1..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((chunk[0], rest))
}

#[cfg(test)]
mod tests {
    use super::matches;

    /// Cases from Go's `path` package tests (`matchTests`), rewritten.
    #[test]
    fn go_path_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("*x", "xxx", true),
            ("debian", "debian", true),
            ("deb*", "debian:12", true),
            ("*/app", "team/app", true),
            ("*", "team/app", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "a", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(matches(pattern, name), *want, "{pattern:?} {name:?}");
        }
    }

    /// Go's malformed patterns (`matchTests` with `ErrBadPattern`): refused whatever the name.
    #[test]
    fn go_bad_patterns() {
        for pattern in ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a*[", "*x\\"] {
            assert_eq!(super::matches_checked(pattern, "a"), Err(super::BadPattern), "{pattern:?}");
            assert!(!super::valid(pattern), "{pattern:?}");
        }
        assert!(super::valid("[!a]"), "a literal '!' in a class");
        assert!(!super::matches("[!a]", "b"), "'!' does not negate in Go");
    }
}
