//! A container's ID (64 hex, as dockerd makes it) and its name (`/c1` on disk, `c1` to users).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A container's ID: 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId([u8; 64]);

impl ContainerId {
    /// A fresh random ID that, like dockerd's, never starts with twelve digits.
    pub fn random() -> Self {
        let id = crate::LayerId::random();
        id.as_str().parse().expect("a layer ID is 64 hex")
    }

    /// The ID in full.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first 12 characters, as `docker ps` shows them (and the container's hostname).
    pub fn short(&self) -> &str {
        &self.as_str()[..12]
    }
}

impl FromStr for ContainerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bytes = s.as_bytes();
        if bytes.len() == 64 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            let mut out = [0u8; 64];
            out.copy_from_slice(bytes);
            Ok(ContainerId(out))
        } else {
            Err(Error::InvalidId { input: s.to_owned(), expected: "64 lowercase hex characters" })
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.as_str())
    }
}

impl serde::Serialize for ContainerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ContainerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Check a container name as dockerd does (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, a leading `/`
/// allowed) and return it without the slash.
pub fn valid_name(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut bytes = bare.bytes();
    let ok = bare.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(bare)
    } else {
        Err(Error::Container {
            container: format!("{name:?}"),
            reason: "is not a valid name: use two or more of a-z A-Z 0-9 _ . -, starting with a letter or digit".into(),
        })
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring", "bold", "brave", "busy", "calm", "clever", "eager", "elastic", "focused", "gallant", "happy", "jolly",
    "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "zealous",
];
const NAMES: &[&str] = &[
    "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "hypatia", "kepler", "lamport", "lovelace",
    "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow",
];

/// A random name in dockerd's `adjective_surname` style; `attempt` > 0 adds a digit, as
/// dockerd does when a name is taken.
pub(crate) fn random_name(attempt: u32) -> String {
    let [a, b] = crate::id::random_bytes::<2>();
    let name = format!("{}_{}", ADJECTIVES[usize::from(a) % ADJECTIVES.len()], NAMES[usize::from(b) % NAMES.len()]);
    if attempt == 0 { name } else { format!("{name}{attempt}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_take_dockers_forms_only() {
        let id = ContainerId::random();
        assert_eq!(id.as_str().parse::<ContainerId>().unwrap(), id);
        assert_eq!(id.short().len(), 12);
        for bad in ["", "../x", &id.as_str()[..63], &id.as_str().to_uppercase()] {
            assert!(bad.parse::<ContainerId>().is_err());
        }
        assert_eq!(valid_name("/web-1").unwrap(), "web-1");
        assert_eq!(valid_name("a.b_c").unwrap(), "a.b_c");
        for bad in ["", "a", "-x", "../x", "a/b", "a b", "_x"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert!(valid_name(&random_name(0)).is_ok());
        assert!(random_name(3).ends_with('3'));
    }
}
