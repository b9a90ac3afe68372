//! Blobs: small ones (configs) read whole and checked, layers streamed. A layer's stream that
//! breaks (a dropped or stalled connection, a short body) is picked up where it broke with a
//! `Range` request, so the layer's extraction goes on as if nothing happened; the digest
//! checked downstream covers every byte, wherever it came from.

use std::io::{self, Read};

use super::client::{Client, backoff};
use crate::digest::Digest;
use crate::error::{ErrorKind, Result};

/// Times a stream is picked up again without making progress in between.
const MAX_RESUMES: u32 = 5;

impl Client {
    /// A small blob's bytes (at most `limit`), checked against its digest.
    pub(crate) fn blob_bytes(&self, digest: Digest, limit: u64) -> Result<Vec<u8>> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut response = self.send("GET", &url, &[])?;
        if response.status().as_u16() != 200 {
            return Err(self.refused(&format!("blob {digest}"), response));
        }
        let bytes = response.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| {
            self.error(
                format!("blob {digest}: {e} (more than {limit} bytes, or the connection dropped)"),
                ErrorKind::Corrupt,
            )
        })?;
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(self.error(format!("blob {digest} has digest {actual}: it was damaged"), ErrorKind::Corrupt));
        }
        Ok(bytes)
    }

    /// A reader of a blob from byte `offset`, and its whole size if the registry says.
    fn open_blob(&self, digest: Digest, offset: u64) -> Result<(ureq::BodyReader<'static>, Option<u64>)> {
        let url = self.url(&format!("blobs/{digest}"));
        let headers = if offset > 0 { vec![("Range", format!("bytes={offset}-"))] } else { Vec::new() };
        let response = self.send("GET", &url, &headers)?;
        let status = response.status().as_u16();
        let content_range = response.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let length = response.body().content_length();
        match status {
            200 => {
                let mut reader = response.into_body().into_reader();
                // The registry ignored the range: skip what was read already.
                if offset > 0 {
                    let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
                        .map_err(|e| self.error(format!("blob {digest}: {e}"), ErrorKind::Interrupted))?;
                    if skipped < offset {
                        return Err(self.error(format!("blob {digest} is shorter than before"), ErrorKind::Corrupt));
                    }
                }
                Ok((reader, length))
            }
            206 => {
                let start = content_range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(self.error(
                        format!("blob {digest}: asked from byte {offset}, got {}", content_range.unwrap_or_default()),
                        ErrorKind::Corrupt,
                    ));
                }
                let total = content_range.as_deref().and_then(|r| r.rsplit('/').next()).and_then(|t| t.parse().ok());
                Ok((response.into_body().into_reader(), total))
            }
            _ => Err(self.refused(&format!("blob {digest}"), response)),
        }
    }

    /// A stream of a layer's blob that resumes where it broke. With `partial`, the bytes an
    /// earlier pull kept come from it first, the rest from the registry, and every byte read
    /// from the registry is added to it.
    pub(crate) fn blob_stream(
        &self,
        digest: Digest,
        expected: Option<u64>,
        partial: Option<Partial>,
    ) -> Result<(BlobStream<'_>, Option<u64>)> {
        let mut partial = partial;
        let kept = partial.as_ref().map_or(0, |p| p.kept);
        if let Some(p) = &mut partial
            && expected.is_some_and(|size| kept > size)
        {
            // More than the blob holds: not this blob's beginning.
            p.reset();
        }
        let kept = partial.as_ref().map_or(0, |p| p.kept);
        let complete = expected.is_some_and(|size| kept == size && size > 0);
        let (body, size) = if complete {
            (None, expected)
        } else {
            let (body, size) = self.open_blob(digest, kept)?;
            (Some(body), size.or(expected))
        };
        if kept > 0 {
            tracing::info!(blob = %digest, kept, "resuming from the bytes an earlier pull kept");
        }
        let replay =
            partial.as_ref().filter(|p| p.kept > 0).and_then(|p| p.file.try_clone().ok()).map(|f| (f, 0, kept));
        let stream =
            BlobStream { client: self, digest, body, offset: kept, size, failures: 0, resumed: 0, replay, partial };
        Ok((stream, size))
    }
}

/// A blob's bytes kept as they arrive (`strata/pulls/<hex>.partial`), locked by the pull
/// that writes it, so a pull killed part way is resumed by the next one.
pub(crate) struct Partial {
    file: std::fs::File,
    kept: u64,
}

impl Partial {
    /// The partial file of `digest` in `dir`, made if need be. `None` if another pull holds it
    /// or it cannot be made (the pull goes on without).
    pub(crate) fn open(dir: &std::path::Path, digest: Digest) -> Option<Partial> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
            .ok()?;
        let path = Partial::path(dir, digest);
        let file = std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&path).ok()?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        let kept = file.metadata().ok()?.len();
        Some(Partial { file, kept })
    }

    /// Where the partial file of `digest` is.
    pub(crate) fn path(dir: &std::path::Path, digest: Digest) -> std::path::PathBuf {
        dir.join(format!("{}.partial", digest.hex()))
    }

    /// The partial files in `dir` no pull is writing, and the bytes each holds.
    pub(crate) fn idle(dir: &std::path::Path) -> crate::error::Result<Vec<(std::path::PathBuf, u64)>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::Error::io("read directory", dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| crate::Error::io("read directory", dir, e))?.path();
            if !path.to_string_lossy().ends_with(".partial") {
                continue;
            }
            let Ok(file) = std::fs::File::open(&path) else { continue };
            // A pull holds its file locked while it writes.
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            out.push((path, file.metadata().map_or(0, |m| m.len())));
        }
        out.sort();
        Ok(out)
    }

    /// Remove the partial file at `path` unless a pull is writing it now; the bytes it held.
    pub(crate) fn remove_if_idle(path: &std::path::Path) -> crate::error::Result<u64> {
        let Ok(file) = std::fs::File::open(path) else { return Ok(0) };
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(0);
        }
        let size = file.metadata().map_or(0, |m| m.len());
        match std::fs::remove_file(path) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(crate::Error::io("remove", path, e)),
        }
    }

    /// Remove the partial files in `dir` no pull is writing; the bytes they held.
    pub(crate) fn remove_idle(dir: &std::path::Path) -> crate::error::Result<u64> {
        let mut freed = 0;
        for (path, _) in Partial::idle(dir)? {
            freed += Partial::remove_if_idle(&path)?;
        }
        Ok(freed)
    }

    /// Whether an earlier pull kept any bytes.
    pub(crate) fn has_bytes(&self) -> bool {
        self.kept > 0
    }

    fn reset(&mut self) {
        if self.file.set_len(0).is_ok() {
            self.kept = 0;
        }
    }
}

/// A blob's bytes, picked up again with a `Range` request when the connection breaks.
pub(crate) struct BlobStream<'a> {
    client: &'a Client,
    digest: Digest,
    body: Option<ureq::BodyReader<'static>>,
    /// Bytes of the blob from the registry so far (and kept ones before them).
    offset: u64,
    size: Option<u64>,
    /// Failures since the last byte read.
    failures: u32,
    /// Times the stream was picked up again.
    resumed: u32,
    /// Kept bytes still to give first: the file, where, and where they end.
    replay: Option<(std::fs::File, u64, u64)>,
    /// Where bytes from the registry are kept.
    partial: Option<Partial>,
}

impl BlobStream<'_> {
    fn broke(&mut self, cause: String) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        if self.failures > MAX_RESUMES {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!(
                    "{}: blob {} broke off at byte {} and could not be resumed ({} tries): {cause}",
                    self.client.what(),
                    self.digest,
                    self.offset,
                    MAX_RESUMES
                ),
            ));
        }
        tracing::warn!(blob = %self.digest, offset = self.offset, "the stream broke ({cause}); resuming");
        std::thread::sleep(backoff(self.failures));
        Ok(())
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((file, at, end)) = &mut self.replay {
            use std::os::unix::fs::FileExt;
            let want = buf.len().min((*end - *at) as usize);
            let n = if want == 0 { 0 } else { file.read_at(&mut buf[..want], *at)? };
            if n > 0 {
                *at += n as u64;
                return Ok(n);
            }
            self.replay = None;
        }
        let n = self.read_registry(buf)?;
        if n > 0
            && let Some(partial) = &mut self.partial
        {
            use std::io::Write;
            if let Err(e) = partial.file.write_all(&buf[..n]) {
                tracing::warn!(blob = %self.digest, "cannot keep the blob's bytes for a later resume: {e}");
                self.partial = None;
            }
        }
        Ok(n)
    }
}

impl BlobStream<'_> {
    fn read_registry(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.body.is_none() && self.size.is_some_and(|s| self.offset >= s) {
            return Ok(0);
        }
        loop {
            let body = match &mut self.body {
                Some(body) => body,
                None => match self.client.open_blob(self.digest, self.offset) {
                    Ok((body, _)) => {
                        self.resumed += 1;
                        self.body.insert(body)
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {
                        self.broke(e.to_string())?;
                        continue;
                    }
                    Err(e) => return Err(io::Error::other(e.to_string())),
                },
            };
            match body.read(buf) {
                Ok(0) if !buf.is_empty() && self.size.is_some_and(|s| self.offset < s) => {
                    self.broke("the connection closed early".into())?;
                }
                Ok(n) => {
                    if n > 0 {
                        self.failures = 0;
                    }
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.broke(e.to_string())?,
            }
        }
    }
}

impl Drop for BlobStream<'_> {
    fn drop(&mut self) {
        if self.resumed > 0 {
            tracing::info!(blob = %self.digest, resumed = self.resumed, "blob read with resumed requests");
        }
    }
}
