//! gzip on every core, as pigz makes it. The input is cut into blocks of 512 KiB; each block
//! is deflated on a worker with the 32 KiB before it as its dictionary and ends on a sync
//! flush (the last one on the final block), so the pieces join into one ordinary gzip member
//! that any decoder reads, within a fraction of a percent of a serial encoder's size. The bytes
//! depend only on the input and the level, never on the threads' timing.
//!
//! Written here rather than taken from gzp: its default features need zlib-ng and cmake, its
//! pure-Rust backend is not zlib-rs, and it measured barely faster than one thread on two cores.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input per block.
const BLOCK: usize = 512 * 1024;
/// Deflate's window: how much of the previous block primes the next.
const WINDOW: usize = 32 * 1024;

/// A block for a worker: its place, its dictionary, its bytes, whether it ends the stream.
struct Job {
    seq: u64,
    dictionary: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

type Done = (u64, io::Result<Vec<u8>>);

/// A gzip writer that deflates on `workers` threads; call [`finish`](Self::finish) when done.
pub struct ParallelGzEncoder<W: Write> {
    /// `None` only once `finish` has taken it.
    output: Option<W>,
    level: Compression,
    header_written: bool,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    crc: Crc,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    submitted: u64,
    written: u64,
    waiting: BTreeMap<u64, Vec<u8>>,
    in_flight_limit: u64,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// An encoder at `level` (1–9) on `workers` threads (at least one).
    pub fn new(output: W, level: u32, workers: usize) -> io::Result<Self> {
        let workers = workers.max(1);
        let level = Compression::new(level.clamp(1, 9));
        let (jobs, queue) = sync_channel::<Job>(workers * 2);
        let (finished, done) = sync_channel::<Done>(workers * 2);
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (queue, finished) = (Arc::clone(&queue), finished.clone());
            let handle = std::thread::Builder::new()
                .name("strata-gzip".into())
                .spawn(move || work(&queue, &finished, level))
                .map_err(|e| io::Error::new(e.kind(), format!("start a compression thread: {e}")))?;
            handles.push(handle);
        }
        Ok(ParallelGzEncoder {
            output: Some(output),
            level,
            header_written: false,
            block: Vec::with_capacity(BLOCK),
            dictionary: Vec::new(),
            crc: Crc::new(),
            jobs: Some(jobs),
            done,
            workers: handles,
            submitted: 0,
            written: 0,
            waiting: BTreeMap::new(),
            in_flight_limit: workers as u64 * 2,
        })
    }

    /// Compress what is left, write the trailer and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        self.drain(0)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        let mut output = self.output.take().ok_or_else(stopped)?;
        output.write_all(&trailer)?;
        self.stop();
        Ok(output)
    }

    /// The inner writer (there until `finish`).
    fn output(&mut self) -> io::Result<&mut W> {
        self.output.as_mut().ok_or_else(stopped)
    }

    /// Hand the current block to a worker (`last`: it ends the stream, even if empty).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        if self.block.is_empty() && !last {
            return Ok(());
        }
        self.drain(self.in_flight_limit - 1)?;
        self.crc.update(&self.block);
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let dictionary = std::mem::take(&mut self.dictionary);
        // The next block's dictionary: the last 32 KiB this one ends with (and before it).
        let mut next = Vec::with_capacity(WINDOW);
        if data.len() < WINDOW {
            let keep = dictionary.len().min(WINDOW - data.len());
            next.extend_from_slice(&dictionary[dictionary.len() - keep..]);
        }
        next.extend_from_slice(&data[data.len().saturating_sub(WINDOW)..]);
        self.dictionary = next;
        let job = Job { seq: self.submitted, dictionary, data, last };
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        self.submitted += 1;
        Ok(())
    }

    /// Write finished blocks in order until at most `pending` are still out.
    fn drain(&mut self, pending: u64) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level.level() {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.output()?.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        while self.submitted - self.written > pending {
            if let Some(bytes) = self.waiting.remove(&self.written) {
                self.output()?.write_all(&bytes)?;
                self.written += 1;
                continue;
            }
            let (seq, bytes) = self.done.recv().map_err(|_| stopped())?;
            self.waiting.insert(seq, bytes?);
        }
        Ok(())
    }

    /// Close the queue and wait for the workers.
    fn stop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let take = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..take]);
        if self.block.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(take)
    }

    /// Everything written so far becomes decodable output (a sync-flushed block).
    fn flush(&mut self) -> io::Result<()> {
        self.submit(false)?;
        self.drain(0)?;
        self.output()?.flush()
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> io::Error {
    io::Error::other("a compression thread stopped")
}

/// A worker: take blocks until the queue closes.
fn work(queue: &Mutex<Receiver<Job>>, finished: &SyncSender<Done>, level: Compression) {
    let mut deflate = Compress::new(level, false);
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_block(&mut deflate, &job);
        if finished.send((job.seq, result)).is_err() {
            return;
        }
    }
}

/// One block as raw deflate, primed with its dictionary, ending on a sync flush or (last) the
/// final block.
fn deflate_block(deflate: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    deflate.reset();
    if !job.dictionary.is_empty() {
        deflate.set_dictionary(&job.dictionary).map_err(io::Error::other)?;
    }
    let flush = if job.last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(job.data.len() / 2 + 1024);
    let start = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = deflate.compress_vec(&job.data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let consumed = (deflate.total_in() - start) as usize;
        match status {
            Status::StreamEnd => return Ok(out),
            // Done when every byte is in and the flush left room to spare.
            _ if !job.last && consumed == job.data.len() && out.capacity() > out.len() => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A single-member decoder: the output must be one member.
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn encode(input: &[u8], workers: usize, writes: usize) -> Vec<u8> {
        let mut encoder = ParallelGzEncoder::new(Vec::new(), 6, workers).unwrap();
        for piece in input.chunks(writes.max(1)) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    }

    /// Text-like input that compresses, with repeats across block edges.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 7 == 0 { (state % 251) as u8 } else { b"overlay2 lowerdir upperdir "[i % 27] }
            })
            .collect()
    }

    #[test]
    fn round_trips_one_member_at_every_size() {
        for len in [0, 1, WINDOW - 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + WINDOW / 2] {
            let input = sample(len);
            assert_eq!(decode(&encode(&input, 2, 100_000)), input, "{len} bytes");
        }
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_write_sizes() {
        let input = sample(2 * BLOCK + 12_345);
        let one = encode(&input, 1, BLOCK * 3);
        assert_eq!(encode(&input, 4, 777), one);
        assert_eq!(encode(&input, 2, 1), one);
    }

    #[test]
    fn size_is_close_to_a_serial_encoder() {
        let input = sample(4 * BLOCK);
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        serial.write_all(&input).unwrap();
        let serial = serial.finish().unwrap().len() as f64;
        let parallel = encode(&input, 2, 65536).len() as f64;
        assert!(parallel < serial * 1.01, "{parallel} against {serial}");
    }

    #[test]
    fn flush_makes_what_was_written_decodable() {
        let mut encoder = ParallelGzEncoder::new(Vec::new(), 6, 2).unwrap();
        encoder.write_all(b"first").unwrap();
        encoder.flush().unwrap();
        encoder.write_all(b" second").unwrap();
        assert_eq!(decode(&encoder.finish().unwrap()), b"first second");
    }
}
