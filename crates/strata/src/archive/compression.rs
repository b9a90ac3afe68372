//! Layer compression, told apart by magic bytes: gzip (`1f 8b`), zstd (`28 b5 2f fd`), xz
//! (`fd 37 7a 58 5a 00`), bzip2 (`42 5a 68`), or none. As in dockerd, xz and bzip2 layers are
//! read but never written.

use std::io::{self, BufRead, Read, Write};

use serde::Serialize;

use super::parallel_gzip::ParallelGzEncoder;

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
    /// xz (read only).
    Xz,
    /// bzip2 (read only).
    Bzip2,
}

impl Compression {
    /// Recognise the compression from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    /// Peek at `input` and wrap it in the matching decoder.
    pub fn decoder<'a, R: BufRead + Send + 'a>(mut input: R) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
        let kind = Compression::detect(input.fill_buf()?);
        let reader: Box<dyn Read + Send> = match kind {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        };
        Ok((kind, reader))
    }

    /// Wrap `output` in the matching encoder; call `finish` on the result when done.
    pub fn encoder<'a, W: Write + 'a>(self, output: W) -> io::Result<Encoder<'a, W>> {
        self.encoder_at(output, None)
    }

    /// [`encoder`](Self::encoder) at a level (gzip 1–9, default 6 as docker's; zstd 1–19,
    /// default 3).
    pub fn encoder_at<'a, W: Write + 'a>(self, output: W, level: Option<u32>) -> io::Result<Encoder<'a, W>> {
        Ok(match self {
            Compression::None => Encoder::None(output),
            Compression::Gzip => {
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
                Encoder::Gzip(ParallelGzEncoder::new(output, level.unwrap_or(6), workers)?)
            }
            Compression::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(output, level.map_or(3, |l| l.clamp(1, 19) as i32))?)
            }
            Compression::Xz | Compression::Bzip2 => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("strata reads {self:?} layers but writes only gzip, zstd or plain tars"),
                ));
            }
        })
    }
}

/// A compressing writer (see [`Compression::encoder`]).
pub enum Encoder<'a, W: Write> {
    /// No compression.
    None(W),
    /// gzip, deflated on every core.
    Gzip(ParallelGzEncoder<W>),
    /// Zstandard.
    Zstd(zstd::stream::write::Encoder<'a, W>),
}

impl<W: Write> Encoder<'_, W> {
    /// Flush the compressed trailer and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

impl<W: Write> std::fmt::Debug for Encoder<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoder")
    }
}
