//! Volume names as dockerd's `local` driver takes them: two or more of `[a-zA-Z0-9_.-]`, the
//! first a letter or digit, so a name is always one directory under `volumes/`.

use crate::error::{Error, Result};

/// Check `name` against dockerd's rules, with dockerd's words.
pub fn valid_name(name: &str) -> Result<&str> {
    let bad = |reason: String| Err(Error::BadOption { what: "volume name", value: name.to_owned(), reason });
    if name.len() == 1 {
        return bad("is too short, names should be at least two alphanumeric characters".into());
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return bad(
            "includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. \
             If you intended to pass a host directory, use absolute path"
                .into(),
        );
    }
    Ok(name)
}

/// A fresh name for an anonymous volume: 64 hex digits, as dockerd gives them.
pub(crate) fn anonymous_name() -> String {
    crate::id::hex(&crate::id::random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_rules() {
        for good in ["ab", "a1", "my_vol", "v.1-x", "0abc", &anonymous_name()] {
            assert!(valid_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "_ab", ".ab", "-ab", "a/b", "..", "a b", "vol:1", "a\0b", "é1"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert!(valid_name("x").unwrap_err().to_string().contains("too short"));
        assert!(valid_name("/x").unwrap_err().to_string().contains("use absolute path"));
    }
}
