//! `image/overlay2/distribution/`: where layers' blobs came from, as dockerd records them, so
//! that a later push (dockerd's or strata's) of the same layers to the same registry mounts
//! or skips them instead of uploading.
//!
//! ```text
//! distribution/
//! ├── diffid-by-digest/sha256/<blob hex>      the layer's diffID
//! └── v2metadata-by-diffid/sha256/<diffID hex> [{"Digest","SourceRepository","HMAC"}, …]
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ImageStore;
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};
use crate::fsutil::{mkdir, read_bytes_optional, replace};

/// One blob a layer was pulled as, or pushed as, and the repository that has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// The blob's digest (compressed, as the registry stores it).
    #[serde(rename = "Digest")]
    pub digest: Digest,
    /// The repository, fully named (`docker.io/library/debian`).
    #[serde(rename = "SourceRepository")]
    pub source_repository: String,
    /// dockerd's HMAC of the credentials used (empty: none).
    #[serde(rename = "HMAC", default)]
    pub hmac: String,
}

/// Records kept per diffID, as dockerd caps them.
const MAX_RECORDS: usize = 50;

impl ImageStore {
    fn distribution(&self) -> PathBuf {
        self.store.root().join("image/overlay2/distribution")
    }

    /// Record that the layer `diff_id` is the blob `digest` in `repository`.
    pub fn record_blob(&self, diff_id: DiffId, digest: Digest, repository: &str) -> Result<()> {
        let base = self.distribution();
        let by_digest = base.join("diffid-by-digest/sha256");
        let by_diff_id = base.join("v2metadata-by-diffid/sha256");
        for dir in [&by_digest, &by_diff_id] {
            for ancestor in dir.ancestors().take(3).collect::<Vec<_>>().into_iter().rev() {
                mkdir(ancestor, 0o700)?;
            }
        }
        replace(&by_digest.join(digest.hex()), diff_id.to_string().as_bytes(), 0o644)?;
        let mut records = self.blob_records(diff_id)?;
        let record = BlobRecord { digest, source_repository: repository.to_owned(), hmac: String::new() };
        records.retain(|r| !(r.digest == record.digest && r.source_repository == record.source_repository));
        records.push(record);
        if records.len() > MAX_RECORDS {
            records.drain(..records.len() - MAX_RECORDS);
        }
        let json = serde_json::to_vec(&records).map_err(|e| Error::corrupt(&by_diff_id, e.to_string()))?;
        replace(&by_diff_id.join(diff_id.hex()), &json, 0o644)
    }

    /// The blobs the layer `diff_id` is known as, oldest first.
    pub fn blob_records(&self, diff_id: DiffId) -> Result<Vec<BlobRecord>> {
        let path = self.distribution().join("v2metadata-by-diffid/sha256").join(diff_id.hex());
        match read_bytes_optional(&path)? {
            // A damaged record is a lost hint, not lost data: start again.
            Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    /// The diffID of the layer stored from the blob `digest`, if recorded.
    pub fn diff_id_of_blob(&self, digest: Digest) -> Result<Option<DiffId>> {
        let path = self.distribution().join("diffid-by-digest/sha256").join(digest.hex());
        Ok(read_bytes_optional(&path)?.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.trim().parse().ok()))
    }
}
