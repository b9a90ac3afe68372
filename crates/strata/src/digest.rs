//! Content digests: `sha256:<64 lowercase hex>`, as Docker and OCI write them.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::id::hex;

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest whose 64 lowercase hex digits are `h` (no `sha256:`), if they are.
    pub fn from_hex(h: &str) -> Option<Digest> {
        if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in h.as_bytes().chunks(2).enumerate() {
            let nibble = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
            out[i] = nibble(pair[0]) << 4 | nibble(pair[1]);
        }
        Some(Digest(out))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// The 64 hex characters, without `sha256:`.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid =
            || Error::InvalidId { input: s.to_owned(), expected: "sha256: followed by 64 lowercase hex characters" };
        let h = s.strip_prefix("sha256:").ok_or_else(invalid)?;
        Digest::from_hex(h).ok_or_else(invalid)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A layer's diffID: the digest of its uncompressed tar. It names the layer in an image config
/// and in a chain (`ChainId`). A layer *blob*'s digest (the bytes an archive or a registry
/// holds, compressed or not) is a plain [`Digest`]: the two are equal only for an uncompressed
/// blob, and the types keep one from standing for the other.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DiffId(Digest);

impl DiffId {
    /// The diffID of an uncompressed tar whose digest is `digest`.
    pub fn of_tar(digest: Digest) -> DiffId {
        DiffId(digest)
    }

    /// The digest itself: the blob digest of the layer stored uncompressed.
    pub fn digest(&self) -> Digest {
        self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> String {
        self.0.hex()
    }
}

impl FromStr for DiffId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.parse().map(DiffId)
    }
}

impl fmt::Display for DiffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for DiffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiffId({})", self.0)
    }
}

/// A running sha256 with a byte count.
#[derive(Debug, Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feed `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest(self.sha.finalize().into())
    }
}

/// A reader that hashes what passes through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Hash what is read from `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Hasher::new() }
    }

    /// The digest and length of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.hasher.len();
        (self.hasher.finish(), len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Hash what is written to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Hasher::new() }
    }

    /// The digest and length of everything written so far.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.hasher.len();
        (self.hasher.finish(), len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_layer_digest_matches_docker() {
        // Docker's empty layer: 1024 zero bytes.
        assert_eq!(
            Digest::of(&[0u8; 1024]).to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
    }

    #[test]
    fn digests_parse_and_print() {
        let s = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
        assert_eq!(s.parse::<Digest>().unwrap().to_string(), s);
        for bad in ["5f70bf18", "sha256:XYZ", "sha512:5f70", &s.to_uppercase()] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
