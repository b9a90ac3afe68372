//! Blob uploads: what the registry has already is not sent again (`HEAD`), a blob another
//! repository of the registry has is mounted from it, and the rest is streamed: `POST` opens
//! an upload, one `PATCH` carries the bytes as they are made (hashed on the way), and `PUT
//! ?digest=` closes it with the digest they turned out to have.

use std::io::Read;

use super::client::Client;
use crate::digest::{Digest, HashingReader};
use crate::error::{ErrorKind, Result};

/// What became of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// The repository had it.
    Exists,
    /// Mounted from another repository of the registry.
    Mounted(String),
    /// Uploaded.
    Pushed,
}

impl Client {
    /// The size of a blob the repository has, or `None`.
    pub(crate) fn blob_size(&self, digest: Digest) -> Result<Option<u64>> {
        let response = self.send("HEAD", &self.url(&format!("blobs/{digest}")), &[])?;
        match response.status().as_u16() {
            200 => Ok(Some(
                response.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.refused(&format!("blob {digest}"), response)),
        }
    }

    /// The first bytes of a blob the repository has (to tell how it is compressed).
    pub(crate) fn blob_head(&self, digest: Digest) -> Result<Vec<u8>> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut response = self.send("GET", &url, &[("Range", "bytes=0-15".into())])?;
        if !matches!(response.status().as_u16(), 200 | 206) {
            return Err(self.refused(&format!("blob {digest}"), response));
        }
        let mut head = vec![0u8; 16];
        let mut reader = response.body_mut().as_reader();
        let mut filled = 0;
        while filled < head.len() {
            match reader.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(self.error(format!("blob {digest}: {e}"), ErrorKind::Interrupted)),
            }
        }
        head.truncate(filled);
        Ok(head)
    }

    /// Mount `digest` from repository `from` of the same registry. `false`: the registry
    /// would not (the upload it opened instead is cancelled).
    pub(crate) fn mount(&self, digest: Digest, from: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let response = self.send("POST", &url, &[("Content-Length", "0".into())])?;
        match response.status().as_u16() {
            201 => Ok(true),
            202 => {
                if let Some(location) = self.location(&response) {
                    let _ = self.send("DELETE", &location, &[]);
                }
                Ok(false)
            }
            _ => Err(self.refused(&format!("mount of blob {digest} from {from}"), response)),
        }
    }

    /// Upload the bytes `body` makes; returns their digest and size, as the registry took
    /// them.
    pub(crate) fn upload(&self, body: &mut dyn Read) -> Result<(Digest, u64)> {
        let location = self.start_upload()?;
        let mut hashing = HashingReader::new(body);
        let patched = self.send_body(
            "PATCH",
            &location,
            &[("Content-Type", "application/octet-stream".into())],
            ureq::SendBody::from_reader(&mut hashing),
        );
        let patched = match patched {
            Ok(response) if response.status().as_u16() == 202 => response,
            Ok(response) => {
                let _ = self.send("DELETE", &location, &[]);
                return Err(self.refused("uploading a blob", response));
            }
            Err(e) => {
                let _ = self.send("DELETE", &location, &[]);
                return Err(e);
            }
        };
        let (digest, size) = hashing.finish();
        self.finish_upload(&self.location(&patched).unwrap_or(location), digest)?;
        Ok((digest, size))
    }

    /// Upload the bytes `body` makes in chunks of at most `chunk` bytes (for registries and
    /// proxies that limit a request's size): a `PATCH` with its `Content-Range` each. A chunk
    /// that fails is sent again from where the registry says the upload stands.
    pub(crate) fn upload_chunked(&self, body: &mut dyn Read, chunk: usize) -> Result<(Digest, u64)> {
        let mut location = self.start_upload()?;
        let mut hashing = HashingReader::new(body);
        let mut buffer = vec![0u8; chunk.max(1)];
        let mut sent: u64 = 0;
        loop {
            let mut filled = 0;
            while filled < buffer.len() {
                match hashing.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = self.send("DELETE", &location, &[]);
                        return Err(crate::Error::io("read", "the layer being pushed", e));
                    }
                }
            }
            if filled == 0 {
                break;
            }
            location = self.patch_chunk(&location, &buffer[..filled], sent)?;
            sent += filled as u64;
        }
        let (digest, size) = hashing.finish();
        self.finish_upload(&location, digest)?;
        Ok((digest, size))
    }

    /// Close an upload whose bytes are all sent: `PUT <location>?digest=`.
    fn finish_upload(&self, location: &str, digest: Digest) -> Result<()> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let done =
            self.send("PUT", &format!("{location}{separator}digest={digest}"), &[("Content-Length", "0".into())])?;
        if done.status().as_u16() != 201 {
            return Err(self.refused(&format!("closing the upload of blob {digest}"), done));
        }
        Ok(())
    }

    /// Send `bytes` as the chunk at `start`; the upload's next `Location`. A failure is tried
    /// again (up to 5 times) from the offset the registry reports.
    fn patch_chunk(&self, location: &str, bytes: &[u8], start: u64) -> Result<String> {
        let mut location = location.to_owned();
        let mut from = 0usize;
        for attempt in 1..=5u32 {
            let part = &bytes[from..];
            let first = start + from as u64;
            let headers = [
                ("Content-Type", "application/octet-stream".to_owned()),
                ("Content-Range", format!("{first}-{}", first + part.len() as u64 - 1)),
                ("Content-Length", part.len().to_string()),
            ];
            let failure =
                match self.send_body("PATCH", &location, &headers, ureq::SendBody::from_reader(&mut &part[..])) {
                    Ok(response) if response.status().as_u16() == 202 => {
                        return Ok(self.location(&response).unwrap_or(location));
                    }
                    Ok(response) if response.status().as_u16() < 500 && response.status().as_u16() != 408 => {
                        return Err(self.refused("uploading a chunk", response));
                    }
                    Ok(response) => format!("{}", response.status()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => e.to_string(),
                    Err(e) => return Err(e),
                };
            tracing::warn!(attempt, "a chunk failed ({failure}); asking where the upload stands");
            std::thread::sleep(super::client::backoff(attempt));
            // `GET <location>` → 204 with `Range: 0-<last byte>`.
            let status = self.send("GET", &location, &[])?;
            let stands = status
                .headers()
                .get("range")
                .and_then(|r| r.to_str().ok())
                .and_then(|r| r.rsplit('-').next()?.parse::<u64>().ok())
                .map_or(0, |last| last + 1);
            if let Some(next) = self.location(&status) {
                location = next;
            }
            if stands < start || stands > start + bytes.len() as u64 {
                return Err(self.error(
                    format!("the upload stands at byte {stands}, outside the chunk at {start}: start the push again"),
                    ErrorKind::Interrupted,
                ));
            }
            from = (stands - start) as usize;
            if from == bytes.len() {
                return Ok(location);
            }
        }
        Err(self.error(format!("the chunk at byte {start} could not be sent (tried 5 times)"), ErrorKind::Interrupted))
    }

    /// Upload small bytes whole (a config): `POST`, then `PUT ?digest=` with them.
    pub(crate) fn upload_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let location = self.start_upload()?;
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self.send_body(
            "PUT",
            &format!("{location}{separator}digest={digest}"),
            &[("Content-Type", "application/octet-stream".into())],
            ureq::SendBody::from_reader(&mut &bytes[..]),
        )?;
        if done.status().as_u16() != 201 {
            return Err(self.refused(&format!("uploading blob {digest}"), done));
        }
        Ok(digest)
    }

    /// Put a manifest as `reference`; returns its digest, checked against the registry's.
    pub(crate) fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let response = self.send_body(
            "PUT",
            &self.url(&format!("manifests/{reference}")),
            &[("Content-Type", media_type.to_owned())],
            ureq::SendBody::from_reader(&mut &bytes[..]),
        )?;
        if response.status().as_u16() != 201 {
            return Err(self.refused(&format!("manifest {reference}"), response));
        }
        let said =
            response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()?.parse::<Digest>().ok());
        if let Some(said) = said.filter(|d| *d != digest) {
            return Err(self
                .error(format!("manifest {reference}: the registry stored {said}, not {digest}"), ErrorKind::Corrupt));
        }
        Ok(digest)
    }

    /// Open an upload (`POST …/blobs/uploads/`); its `Location`.
    fn start_upload(&self) -> Result<String> {
        let start = self.send("POST", &self.url("blobs/uploads/"), &[("Content-Length", "0".into())])?;
        if start.status().as_u16() != 202 {
            return Err(self.refused("starting an upload", start));
        }
        self.location(&start).ok_or_else(|| self.error("an upload without a Location".into(), ErrorKind::Corrupt))
    }

    /// An upload's `Location`, made absolute.
    fn location(&self, response: &ureq::http::Response<ureq::Body>) -> Option<String> {
        let location = response.headers().get("location")?.to_str().ok()?;
        Some(if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base())
        })
    }
}
