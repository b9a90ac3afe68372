//! The digests that name images and layer stacks, as Docker computes them.
//!
//! - a layer's **diffID** is the sha256 of its uncompressed tar ([`Digest`]);
//! - a stack's **chainID** is the diffID of its base layer, then for each layer above
//!   `sha256(parent chainID + " " + diffID)`;
//! - an **image ID** is the sha256 of the image config's exact bytes.

use std::fmt;
use std::str::FromStr;

use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Digest);

        impl $name {
            /// The digest.
            pub fn digest(&self) -> Digest {
                self.0
            }

            /// The 64 hex characters, without `sha256:`.
            pub fn hex(&self) -> String {
                self.0.hex()
            }

            /// The first 12 hex characters, as `docker images` shows them.
            pub fn short(&self) -> String {
                self.0.hex()[..12].to_owned()
            }
        }

        impl From<Digest> for $name {
            fn from(d: Digest) -> Self {
                $name(d)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// `sha256:<hex>` or the bare 64 hex characters.
            fn from_str(s: &str) -> Result<Self> {
                match Digest::from_hex(s) {
                    Some(d) => Ok($name(d)),
                    None => s.parse().map($name),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
    };
}

digest_id!(
    /// Names a stack of layers: the key of `image/overlay2/layerdb/sha256/<chainID>/`.
    ChainId
);

digest_id!(
    /// Names an image: the sha256 of its config, the key of `imagedb/content/sha256/<id>`.
    ImageId
);

impl ChainId {
    /// The chainID of `diff_id` stacked on `parent`.
    pub fn of(parent: Option<ChainId>, diff_id: DiffId) -> ChainId {
        match parent {
            None => ChainId(diff_id.digest()),
            Some(parent) => ChainId(Digest::of(format!("{parent} {diff_id}").as_bytes())),
        }
    }

    /// The chainIDs of every prefix of `diff_ids`, base first.
    pub fn chain(diff_ids: &[DiffId]) -> Vec<ChainId> {
        let mut parent = None;
        diff_ids
            .iter()
            .map(|d| {
                let id = ChainId::of(parent, *d);
                parent = Some(id);
                id
            })
            .collect()
    }
}

impl ImageId {
    /// Whether `name` names this image by ID: all or a prefix of its hex, `sha256:` optional
    /// (as opposed to by a reference).
    pub fn is_named_by(&self, name: &str) -> bool {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        !hex.is_empty() && self.hex().starts_with(hex)
    }

    /// The ID of the image whose config is `config`.
    pub fn of_config(config: &[u8]) -> ImageId {
        ImageId(Digest::of(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_are_dockers() {
        // From a dockerd 20.10 root: two layers of a `docker build`.
        let base: DiffId = "sha256:3ff35bda6fb93b2e0a0c19947238b126ec6ceabb5614280bfa7faacef1005a6e".parse().unwrap();
        let next: DiffId = "sha256:b1044686bb7c4d845974f113a2b8e0110272fc5b16a227e442eb4f649aad3719".parse().unwrap();
        let chain = ChainId::chain(&[base, next]);
        assert_eq!(chain[0].digest(), base.digest());
        assert_eq!(chain[1].hex(), "7358fd0355794d61c1e5522d8c6bbdd6c12256b0849d6a8d79b4f11f337ce669");
        assert_eq!(chain[1].digest(), Digest::of(format!("{base} {next}").as_bytes()));
    }

    #[test]
    fn bare_hex_parses() {
        let hex = "3ff35bda6fb93b2e0a0c19947238b126ec6ceabb5614280bfa7faacef1005a6e";
        assert_eq!(hex.parse::<ImageId>().unwrap().hex(), hex);
        assert!("3ff35bda".parse::<ImageId>().is_err());
    }
}
