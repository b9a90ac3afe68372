//! The labels dockerd keeps of its volumes, read from its `volumes/metadata.db`: a BoltDB
//! whose bucket `volumes` maps a name to `{"Name","Driver","Labels","Options"}`.
//!
//! Written by hand: strata only reads one bucket of a small file dockerd owns (and never
//! writes it), which a page walk of ~100 lines does; the Rust ports of bbolt are whole
//! read-write engines with a dozen dependencies. The format: pages of `pageSize` bytes, each
//! with a 16-byte header (id, flags, count, overflow); two meta pages (0 and 1, the valid one
//! with the larger transaction ID wins) name the root bucket's page; branch pages hold
//! `(pos, ksize, pgid)` elements, leaf pages `(flags, pos, ksize, vsize)`; a sub-bucket's
//! value is `(root pgid, sequence)`, followed by its page inline when `root` is 0.

use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: u32 = 0xED0C_DAED;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const BUCKET_LEAF: u32 = 0x01;
const HEADER: usize = 16;
const ELEMENT: usize = 16;
/// dockerd's file is a few pages; anything this large is not it.
const MAX_FILE: u64 = 64 << 20;

type Labels = Option<BTreeMap<String, String>>;

/// Each volume dockerd recorded, with its labels; empty if there is no readable database
/// (dockerd never ran here, or the file is not what it should be: labels are not worth failing
/// a listing for).
pub(super) fn dockerd_labels(path: &Path) -> BTreeMap<String, Labels> {
    let Ok(meta) = std::fs::metadata(path) else { return BTreeMap::new() };
    if meta.len() > MAX_FILE {
        return BTreeMap::new();
    }
    let Ok(bytes) = std::fs::read(path) else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    if read(&bytes, &mut out).is_none() {
        tracing::debug!("{}: not a BoltDB strata can read; dockerd's volume labels are not shown", path.display());
    }
    out
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    name: String,
    #[serde(default)]
    labels: Labels,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
}

fn read(bytes: &[u8], out: &mut BTreeMap<String, Labels>) -> Option<()> {
    // The meta pages: magic, version, pageSize, flags, root (pgid, sequence), freelist, pgid, txid.
    let meta = |at: usize| -> Option<(u64, usize, u64)> {
        let m = at + HEADER;
        (u32_at(bytes, m)? == MAGIC).then_some(())?;
        let page_size = u32_at(bytes, m + 8)? as usize;
        Some((u64_at(bytes, m + 56)?, page_size, u64_at(bytes, m + 16)?))
    };
    let first = meta(0)?;
    let second = meta(first.1).filter(|m| m.1 == first.1);
    let (_, page_size, root) = match second {
        Some(second) if second.0 > first.0 => second,
        _ => first,
    };
    if !(512..=1 << 20).contains(&page_size) {
        return None;
    }
    let db = Db { bytes, page_size };
    let volumes = db.find(db.page(root)?, b"volumes", 0)?;
    let (bucket_root, inline) = (u64_at(volumes, 0)?, volumes.get(ELEMENT..)?);
    let page = if bucket_root == 0 { inline } else { db.page(bucket_root)? };
    db.each(page, 0, &mut |_, _, value| {
        if let Ok(entry) = serde_json::from_slice::<Entry>(value) {
            out.insert(entry.name, entry.labels);
        }
    })
}

impl<'a> Db<'a> {
    fn page(&self, id: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(id).ok()?.checked_mul(self.page_size)?;
        let overflow = u32_at(self.bytes, start + 12)? as usize;
        self.bytes.get(start..start + self.page_size * (overflow + 1))
    }

    /// The value of the sub-bucket `key` in the tree at `page`.
    fn find(&self, page: &'a [u8], key: &[u8], depth: usize) -> Option<&'a [u8]> {
        let mut found = None;
        self.each(page, depth, &mut |flags, k, v| {
            if k == key && flags & BUCKET_LEAF != 0 {
                found = Some(v);
            }
        })?;
        found
    }

    /// Call `each` with every sub-bucket or key-value pair under `page`.
    fn each(&self, page: &'a [u8], depth: usize, each: &mut dyn FnMut(u32, &'a [u8], &'a [u8])) -> Option<()> {
        if depth > 32 {
            return None;
        }
        let (flags, count) = (u16_at(page, 8)?, u16_at(page, 10)? as usize);
        for i in 0..count {
            let at = HEADER + i * ELEMENT;
            if flags & BRANCH != 0 {
                self.each(self.page(u64_at(page, at + 8)?)?, depth + 1, each)?;
            } else if flags & LEAF != 0 {
                let (leaf_flags, pos, ksize, vsize) = (
                    u32_at(page, at)?,
                    u32_at(page, at + 4)? as usize,
                    u32_at(page, at + 8)? as usize,
                    u32_at(page, at + 12)? as usize,
                );
                let k = page.get(at + pos..at + pos + ksize)?;
                let v = page.get(at + pos + ksize..at + pos + ksize + vsize)?;
                each(leaf_flags, k, v);
            } else {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_database_gives_nothing() {
        let mut out = BTreeMap::new();
        assert!(read(b"", &mut out).is_none());
        assert!(read(&[0u8; 8192], &mut out).is_none());
        let dir = tempfile::tempdir().unwrap();
        assert!(dockerd_labels(&dir.path().join("missing.db")).is_empty());
    }
}
