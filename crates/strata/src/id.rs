//! Identifiers, parsed once at the boundary and never passed around as strings.
//!
//! - [`LayerId`]: the name of a layer directory under `<root>/overlay2/`: 64 lowercase hex
//!   characters, or that followed by `-init` for a container's init layer (dockerd's cache-id /
//!   mount-id).
//! - [`ShortLink`]: the 26-character base32 name under `<root>/overlay2/l/` that keeps
//!   OverlayFS mount options under one page.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Length of a [`ShortLink`], as dockerd's `overlayutils.GenerateID(26)` makes it.
pub const SHORT_LINK_LEN: usize = 26;

const INIT_SUFFIX: &str = "-init";

/// The ID of a layer directory: `^[0-9a-f]{64}(-init)?$`, as dockerd validates mount IDs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerId(String);

impl LayerId {
    /// A fresh random ID. Like dockerd's `stringid.GenerateRandomID`, it never starts with
    /// twelve digits, so its short form cannot be mistaken for a number.
    pub fn random() -> Self {
        loop {
            let hex = hex(&random_bytes::<32>());
            if !hex[..12].bytes().all(|b| b.is_ascii_digit()) {
                return LayerId(hex);
            }
        }
    }

    /// The ID of the init layer that sits under this container layer (`<id>-init`).
    pub fn init_layer(&self) -> LayerId {
        LayerId(format!("{}{INIT_SUFFIX}", self.base_hex()))
    }

    /// Whether this is a container's `-init` layer.
    pub fn is_init(&self) -> bool {
        self.0.ends_with(INIT_SUFFIX)
    }

    /// The ID as it appears on disk.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn base_hex(&self) -> &str {
        &self.0[..64]
    }
}

impl FromStr for LayerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let hex = s.strip_suffix(INIT_SUFFIX).unwrap_or(s);
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(LayerId(s.to_owned()))
        } else {
            Err(Error::InvalidId {
                input: s.to_owned(),
                expected: "64 lowercase hex characters, optionally followed by -init",
            })
        }
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerId({})", self.0)
    }
}

/// A short link name under `<root>/overlay2/l/`: 26 characters of RFC 4648 base32 (`A-Z2-7`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortLink([u8; SHORT_LINK_LEN]);

impl ShortLink {
    /// A fresh random link: 17 random bytes in base32, the first 26 characters (130 bits), as
    /// dockerd makes it.
    pub fn random() -> Self {
        let bytes = random_bytes::<17>();
        let mut out = [0u8; SHORT_LINK_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let bit = i * 5;
            let (byte, shift) = (bit / 8, bit % 8);
            let window = (u16::from(bytes[byte]) << 8) | u16::from(*bytes.get(byte + 1).unwrap_or(&0));
            let index = (window >> (11 - shift)) & 0x1f;
            *slot = BASE32[usize::from(index)];
        }
        ShortLink(out)
    }

    /// The link as it appears on disk.
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII from BASE32.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl FromStr for ShortLink {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bytes = s.as_bytes();
        if bytes.len() == SHORT_LINK_LEN && bytes.iter().all(|b| BASE32.contains(b)) {
            let mut out = [0u8; SHORT_LINK_LEN];
            out.copy_from_slice(bytes);
            Ok(ShortLink(out))
        } else {
            Err(Error::InvalidId { input: s.to_owned(), expected: "26 characters of base32 (A-Z, 2-7)" })
        }
    }
}

impl fmt::Display for ShortLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ShortLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortLink({})", self.as_str())
    }
}

/// `N` bytes from the kernel's random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            // getrandom(2) cannot fail on Linux >= 3.17 once the pool is initialised; without
            // randomness no ID can be made safely.
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
    buf
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_accept_docker_forms_only() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(hex.parse::<LayerId>().is_ok());
        assert!(format!("{hex}-init").parse::<LayerId>().unwrap().is_init());
        for bad in [
            "",
            "../x",
            &hex[..63],
            &format!("{hex}0"),
            &hex.to_uppercase(),
            &format!("{hex}-INIT"),
            &format!("{}/", &hex[..63]),
            &format!("{hex}-init-init"),
        ] {
            assert!(bad.parse::<LayerId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn random_layer_ids_are_valid_and_distinct() {
        let a = LayerId::random();
        let b = LayerId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<LayerId>().unwrap(), a);
        assert!(!a.is_init());
        assert_eq!(a.init_layer().as_str(), format!("{a}-init"));
        assert_eq!(a.init_layer().init_layer(), a.init_layer());
    }

    #[test]
    fn short_links_are_26_base32_chars() {
        for _ in 0..1000 {
            let link = ShortLink::random();
            assert_eq!(link.as_str().len(), 26);
            assert!(link.as_str().bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
            assert_eq!(link.as_str().parse::<ShortLink>().unwrap(), link);
        }
        assert!("5VTK2ORIHBK33URDA6QHOTNXFW".parse::<ShortLink>().is_ok());
        assert!("5VTK2ORIHBK33URDA6QHOTNXF1".parse::<ShortLink>().is_err());
        assert!("5vtk2orihbk33urda6qhotnxfw".parse::<ShortLink>().is_err());
    }

    #[test]
    fn short_links_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(ShortLink::random().as_str().bytes());
        }
        assert_eq!(seen.len(), 32);
    }
}
