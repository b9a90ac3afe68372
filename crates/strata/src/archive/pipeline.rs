//! Read, hash and decompress on one thread; extract on another.
//!
//! The reader thread hashes the bytes as they arrive (the compressed digest), decompresses
//! them, and hashes the tar stream itself (the diffID, over every byte to EOF, trailing
//! padding included, as dockerd does). It passes chunks through a bounded channel, so memory
//! stays at a few chunks whatever the layer's size.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use crate::archive::Compression;
use crate::digest::{DiffId, Digest, Hasher};

/// Size of one chunk handed from the reader thread to the extractor.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: bounds memory to about `CHUNK * DEPTH`.
const DEPTH: usize = 8;

/// What the reader thread learned about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDigests {
    /// How the input was compressed.
    pub compression: Compression,
    /// sha256 of the input as given.
    pub compressed: Digest,
    /// Bytes of input.
    pub compressed_size: u64,
    /// sha256 of the uncompressed tar: the layer's diffID.
    pub diff_id: DiffId,
    /// Bytes of uncompressed tar.
    pub size: u64,
}

/// The extractor's end: a `Read` over the uncompressed stream.
pub(crate) struct Pipeline<'scope> {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    reader: Option<ScopedJoinHandle<'scope, io::Result<StreamDigests>>>,
}

impl<'scope> Pipeline<'scope> {
    /// Start reading `input` on its own thread, in `scope` (so `input` may borrow).
    pub(crate) fn start<'env, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        input: R,
    ) -> io::Result<Self> {
        let (tx, rx) = sync_channel(DEPTH);
        let reader = std::thread::Builder::new()
            .name("strata-layer-reader".into())
            .spawn_scoped(scope, move || read_all(input, &tx))?;
        Ok(Pipeline { chunks: rx, current: Vec::new(), pos: 0, done: false, reader: Some(reader) })
    }

    /// Read the rest of the stream (hashing it) and return the digests.
    pub(crate) fn finish(mut self) -> io::Result<StreamDigests> {
        let mut sink = vec![0u8; 64 * 1024];
        while self.read(&mut sink)? > 0 {}
        self.join()
    }

    fn join(&mut self) -> io::Result<StreamDigests> {
        match self.reader.take() {
            Some(handle) => handle.join().map_err(|_| io::Error::other("layer reader thread panicked"))?,
            None => Err(io::Error::other("layer stream already finished")),
        }
    }
}

impl Read for Pipeline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.done = true,
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The reader thread ended without its end marker: its error is in the join.
                Err(_) => return Err(self.join().err().unwrap_or_else(|| io::Error::other("layer reader stopped"))),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counts and hashes the raw input.
struct Tee<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(SourceError::wrap)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An error of the layer's source itself (a file, a pipe, a connection), as opposed to what
/// was read being a bad archive: carried through the pipeline inside an `io::Error`.
#[derive(Debug)]
pub(crate) struct SourceError {
    kind: io::ErrorKind,
    message: String,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    fn wrap(e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted || e.get_ref().is_some_and(|r| r.is::<SourceError>()) {
            return e;
        }
        io::Error::new(e.kind(), SourceError { kind: e.kind(), message: e.to_string() })
    }

    /// A copy of `e` that keeps saying where it came from (for the second receiver).
    fn copy(e: &io::Error) -> io::Error {
        match e.get_ref().and_then(|r| r.downcast_ref::<SourceError>()) {
            Some(s) => io::Error::new(s.kind, SourceError { kind: s.kind, message: s.message.clone() }),
            None => io::Error::new(e.kind(), e.to_string()),
        }
    }
}

/// The library's error for a failure reading a layer stream: the source's own failure (a
/// dropped connection, an I/O error) stays an I/O error with its kind; anything else (the
/// decompressor's or the tar parser's complaint) means the archive is bad.
pub(crate) fn stream_error(e: io::Error) -> crate::Error {
    if let Some(source) = e.get_ref().and_then(|r| r.downcast_ref::<SourceError>()) {
        let kind = source.kind;
        return crate::Error::Io {
            op: "read",
            path: "the layer's source".into(),
            source: io::Error::new(kind, source.message.clone()),
        };
    }
    crate::Error::Archive { reason: format!("reading the layer stream: {e}") }
}

fn read_all<R: Read + Send>(input: R, tx: &SyncSender<io::Result<Vec<u8>>>) -> io::Result<StreamDigests> {
    let mut tee = Tee { inner: input, hasher: Hasher::new() };
    let result = (|| {
        let (compression, mut decoder) = Compression::decoder(BufReader::with_capacity(CHUNK, &mut tee))?;
        // A plain tar is its own input: its digest is the input's, hashed once.
        let hash_tar = compression != Compression::None;
        let mut tar_hash = Hasher::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match decoder.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            chunk.truncate(filled);
            if hash_tar {
                tar_hash.update(&chunk);
            }
            let last = filled == 0;
            if tx.send(Ok(chunk)).is_err() {
                // The extractor stopped (it failed); its error is the one to report.
                return Err(io::Error::other("layer extraction stopped"));
            }
            if last {
                return Ok((compression, tar_hash));
            }
        }
    })();
    match result {
        Ok((compression, tar_hash)) => {
            // Whatever follows the compressed stream still counts for the input's digest.
            io::copy(&mut tee, &mut io::sink())?;
            let compressed_size = tee.hasher.len();
            let compressed = tee.hasher.finish();
            let (diff_id, size) = match compression {
                Compression::None => (compressed, compressed_size),
                _ => (tar_hash.clone().finish(), tar_hash.len()),
            };
            let diff_id = DiffId::of_tar(diff_id);
            Ok(StreamDigests { compression, compressed, compressed_size, diff_id, size })
        }
        Err(e) => {
            let _ = tx.send(Err(SourceError::copy(&e)));
            Err(e)
        }
    }
}
