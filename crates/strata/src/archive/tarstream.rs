//! A streaming reader of tar entries over tar-core's sans-IO parser: owned metadata for each
//! entry, then its content in bounded chunks. PAX records are parsed by length prefix (not by
//! splitting on newlines), so binary xattrs such as `security.capability` survive.

use std::io::{self, Read};

use tar_core::EntryType;
use tar_core::parse::{Limits, ParseEvent, Parser};

use super::tarsplit::Recorder;
use crate::error::{Error, Result};

const BLOCK: u64 = 512;

/// One entry's metadata, owned.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: EntryType,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub dev: (u32, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Tar entries read from a stream.
pub(crate) struct TarStream<R> {
    input: R,
    parser: Parser,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Content (plus padding) of the current entry not yet consumed.
    pending: u64,
    pending_content: u64,
    /// Records tar-split entries, when asked for.
    recorder: Option<Recorder>,
    /// The (normalized) paths seen, while recording tar-split: a tarball is rebuilt from the
    /// files by name, so each name may come once (dockerd's tar-split refuses duplicates too).
    seen: std::collections::HashSet<std::path::PathBuf>,
}

impl<R: Read> TarStream<R> {
    pub(crate) fn new(input: R) -> Self {
        let limits = Limits { max_path_len: Some(4096), ..Limits::default() };
        TarStream {
            input,
            parser: Parser::new(limits),
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
            eof: false,
            pending: 0,
            pending_content: 0,
            recorder: None,
            seen: std::collections::HashSet::new(),
        }
    }

    /// Record the stream as tar-split entries as it is read (see [`TarStream::finish_split`]).
    pub(crate) fn record_tar_split(&mut self) {
        self.recorder = Some(Recorder::new());
    }

    /// Read the rest of the stream (after the archive's end) and return the gzipped tar-split.
    pub(crate) fn finish_split(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(mut recorder) = self.recorder.take() else { return Ok(None) };
        self.skip_content()?;
        recorder.raw(&self.buf[self.start..self.end]);
        self.start = self.end;
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => recorder.raw(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(format!("reading the layer stream: {e}"))),
            }
        }
        recorder.finish().map(Some).map_err(|e| bad(format!("recording tar-split: {e}")))
    }

    /// The stream, after the archive (for draining what follows it).
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    /// The next entry, or `None` at the end of the archive. Any unread content of the previous
    /// entry is skipped.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.skip_content()?;
        loop {
            if self.lone_zero_block_ends()? {
                return Ok(None);
            }
            let event = self.parser.parse(&self.buf[self.start..self.end]).map_err(|e| bad(e.to_string()))?;
            match event {
                ParseEvent::NeedData { min_bytes } => {
                    if !self.fill(min_bytes)? {
                        // A stream that stops cleanly between entries ends the archive, as
                        // Go's archive/tar (and so dockerd) reads it.
                        if self.start == self.end {
                            return Ok(None);
                        }
                        return Err(bad("the archive is truncated in the middle of a header".into()));
                    }
                }
                ParseEvent::Entry { consumed, entry } => {
                    let owned = Entry {
                        kind: entry.entry_type,
                        path: entry.path.to_vec(),
                        link: entry.link_target.as_ref().map(|l| l.to_vec()),
                        mode: entry.mode,
                        uid: entry.uid,
                        gid: entry.gid,
                        mtime: entry.mtime,
                        size: entry.size,
                        dev: (entry.dev_major.unwrap_or(0), entry.dev_minor.unwrap_or(0)),
                        xattrs: entry.xattrs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
                    };
                    if let Some(r) = &mut self.recorder {
                        if let Some(name) = super::path::normalize(&owned.path)
                            && !self.seen.insert(name)
                        {
                            return Err(bad(format!(
                                "{} appears twice: an image layer holds each path once, so that its exact tarball can be rebuilt (dockerd refuses it too)",
                                String::from_utf8_lossy(&owned.path)
                            )));
                        }
                        r.raw(&self.buf[self.start..self.start + consumed]);
                        r.start_file(&owned.path, owned.size);
                    }
                    self.start += consumed;
                    self.pending_content = owned.size;
                    self.pending = owned.size.div_ceil(BLOCK) * BLOCK;
                    return Ok(Some(owned));
                }
                ParseEvent::SparseEntry { entry, .. } => {
                    return Err(bad(format!(
                        "{}: GNU sparse files are not supported in image layers",
                        String::from_utf8_lossy(&entry.path)
                    )));
                }
                ParseEvent::GlobalExtensions { consumed, .. } => {
                    if let Some(r) = &mut self.recorder {
                        r.raw(&self.buf[self.start..self.start + consumed]);
                    }
                    self.start += consumed;
                }
                ParseEvent::End { consumed } => {
                    if let Some(r) = &mut self.recorder {
                        r.raw(&self.buf[self.start..self.start + consumed]);
                    }
                    self.start += consumed;
                    return Ok(None);
                }
            }
        }
    }

    /// Hand the current entry's content to `sink`, chunk by chunk.
    pub(crate) fn read_content(&mut self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while self.pending_content > 0 {
            if self.start == self.end && !self.fill(1)? {
                return Err(bad("the archive is truncated in the middle of a file".into()));
            }
            let n = (self.end - self.start).min(usize::try_from(self.pending_content).unwrap_or(usize::MAX));
            let chunk = &self.buf[self.start..self.start + n];
            if let Some(r) = &mut self.recorder {
                r.content(chunk);
            }
            sink(chunk)?;
            self.start += n;
            self.pending_content -= n as u64;
            self.pending -= n as u64;
            if self.pending_content == 0
                && let Some(r) = &mut self.recorder
            {
                r.end_file();
            }
        }
        Ok(())
    }

    /// Skip what is left of the current entry's content and padding.
    fn skip_content(&mut self) -> Result<()> {
        while self.pending > 0 {
            if self.start == self.end && !self.fill(1)? {
                return Err(bad("the archive is truncated in the middle of a file".into()));
            }
            let n = (self.end - self.start).min(usize::try_from(self.pending).unwrap_or(usize::MAX));
            // The first bytes may still be content; the rest is padding.
            let content = n.min(usize::try_from(self.pending_content).unwrap_or(usize::MAX));
            if let Some(r) = &mut self.recorder {
                r.content(&self.buf[self.start..self.start + content]);
                if content > 0 && self.pending_content == content as u64 {
                    r.end_file();
                }
                r.raw(&self.buf[self.start + content..self.start + n]);
            }
            self.start += n;
            self.pending -= n as u64;
            self.pending_content -= content as u64;
        }
        Ok(())
    }

    /// At a zero block: a second one (the parser's end of archive) is left to the parser; the
    /// stream's end right after it ends the archive (`true`), as Go's archive/tar reads it; any
    /// other block after it is refused, as dockerd refuses it, since what follows would be
    /// silently dropped.
    fn lone_zero_block_ends(&mut self) -> Result<bool> {
        if self.end - self.start < BLOCK_BYTES {
            self.fill(BLOCK_BYTES)?;
        }
        let zero = |b: &[u8]| b.iter().all(|x| *x == 0);
        if self.end - self.start < BLOCK_BYTES || !zero(&self.buf[self.start..self.start + BLOCK_BYTES]) {
            return Ok(false);
        }
        if self.end - self.start < 2 * BLOCK_BYTES {
            self.fill(2 * BLOCK_BYTES)?;
        }
        let available = (self.end - self.start).min(2 * BLOCK_BYTES);
        if !zero(&self.buf[self.start + BLOCK_BYTES..self.start + available]) {
            return Err(bad(
                "a zero block is followed by more entries: the archive is damaged (dockerd refuses it too)".into(),
            ));
        }
        if available == 2 * BLOCK_BYTES {
            return Ok(false);
        }
        if let Some(r) = &mut self.recorder {
            r.raw(&self.buf[self.start..self.end]);
        }
        self.start = self.end;
        Ok(true)
    }

    /// Make at least `min` unconsumed bytes available; `false` at end of stream.
    fn fill(&mut self, min: usize) -> Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if min > self.buf.len() {
            self.buf.resize(min.next_power_of_two(), 0);
        }
        while self.end < min && !self.eof {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(super::pipeline::stream_error(e)),
            }
        }
        Ok(self.end >= min)
    }
}

/// A tar block.
const BLOCK_BYTES: usize = BLOCK as usize;

fn bad(reason: String) -> Error {
    Error::Archive { reason }
}
