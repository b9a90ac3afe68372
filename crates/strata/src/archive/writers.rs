//! Files written on worker threads while the tar stream is read on.
//!
//! A filesystem makes the names of one directory one at a time (the directory's lock, and on
//! ext4 the inode allocator's scan under it), so the gain is in writing two directories at
//! once: each directory's files go to one worker, the next directory's to the least busy one.
//! The caller hands over only work that no queued work can touch, and [`Writers::wait`]s for
//! all of it before anything that might. Queued bytes are bounded per worker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// Bytes queued for one worker at most (a file larger than that still goes alone).
const BUDGET: usize = 4 << 20;
/// Jobs queued for one worker at most (empty files cost no bytes).
const MAX_JOBS: usize = 4096;

/// What the workers and the caller share.
struct State {
    /// Jobs handed over and not yet done.
    outstanding: usize,
    /// Bytes and jobs queued per worker.
    queued: Vec<(usize, usize)>,
    /// The first error a worker met; later jobs are skipped.
    error: Option<Error>,
    /// Set when the caller gives up: queued jobs are skipped.
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A pool of workers doing `work` on jobs of type `J`, started at the first job.
pub(crate) struct Writers<J: Send + 'static> {
    work: fn(J) -> Result<()>,
    /// How many workers to start (0: every job runs on the caller's thread).
    count: usize,
    shared: Arc<Shared>,
    senders: Vec<mpsc::Sender<(J, usize)>>,
    threads: Vec<JoinHandle<()>>,
    /// The directory whose jobs go to the worker named with it.
    current: Option<(PathBuf, usize)>,
}

impl<J: Send + 'static> Writers<J> {
    /// Two workers doing `work` (two directories at once is where the gain is, and pulls and
    /// loads already extract one layer per core); none on a single core.
    pub(crate) fn new(work: fn(J) -> Result<()>) -> Writers<J> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let count = if cores < 2 { 0 } else { 2 };
        let state = State { outstanding: 0, queued: vec![(0, 0); count], error: None, stopped: false };
        Writers {
            work,
            count,
            shared: Arc::new(Shared { state: Mutex::new(state), changed: Condvar::new() }),
            senders: Vec::new(),
            threads: Vec::new(),
            current: None,
        }
    }

    /// Hand over `job` (of `bytes` held in memory), a file in the directory `dir`. Waits while
    /// its worker has too much queued; returns the first error a worker met.
    pub(crate) fn send(&mut self, dir: &Path, bytes: usize, job: J) -> Result<()> {
        if self.count > 0 && self.senders.is_empty() {
            self.start();
        }
        if self.senders.is_empty() {
            return (self.work)(job);
        }
        let mut state = self.shared.lock();
        let worker = match &self.current {
            Some((d, w)) if d == dir => *w,
            previous => {
                // The least busy worker, the one after the previous first on a tie.
                let after = previous.as_ref().map_or(0, |(_, w)| w + 1);
                let w = (0..self.senders.len())
                    .map(|i| (after + i) % self.senders.len())
                    .min_by_key(|&w| state.queued[w].0)
                    .unwrap_or(0);
                self.current = Some((dir.to_owned(), w));
                w
            }
        };
        loop {
            if let Some(e) = state.error.take() {
                return Err(e);
            }
            let (queued, jobs) = state.queued[worker];
            if queued == 0 || (queued + bytes <= BUDGET && jobs < MAX_JOBS) {
                break;
            }
            state = self.shared.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.outstanding += 1;
        state.queued[worker].0 += bytes;
        state.queued[worker].1 += 1;
        drop(state);
        if let Err(mpsc::SendError((job, _))) = self.senders[worker].send((job, bytes)) {
            // The worker is gone (it cannot be, but then): do the job here.
            let mut state = self.shared.lock();
            state.outstanding -= 1;
            state.queued[worker].0 -= bytes;
            state.queued[worker].1 -= 1;
            drop(state);
            return (self.work)(job);
        }
        Ok(())
    }

    /// Wait until every job handed over is done; the first error a worker met, if any.
    pub(crate) fn wait(&mut self) -> Result<()> {
        let mut state = self.shared.lock();
        while state.outstanding > 0 {
            state = self.shared.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.error.take().map_or(Ok(()), Err)
    }

    /// Start the workers; on a failure to start one, those started do the work (or none, and
    /// the caller's thread does it).
    fn start(&mut self) {
        for i in 0..self.count {
            let (sender, receiver) = mpsc::channel::<(J, usize)>();
            let shared = Arc::clone(&self.shared);
            let work = self.work;
            let spawned = std::thread::Builder::new()
                .name(format!("strata-write-{i}"))
                .spawn(move || worker(i, &shared, work, &receiver));
            match spawned {
                Ok(thread) => {
                    self.senders.push(sender);
                    self.threads.push(thread);
                }
                Err(_) => break,
            }
        }
        self.count = 0;
    }
}

/// One worker: do each job received, unless an error came first, and say so.
fn worker<J>(index: usize, shared: &Shared, work: fn(J) -> Result<()>, jobs: &mpsc::Receiver<(J, usize)>) {
    while let Ok((job, bytes)) = jobs.recv() {
        let skip = {
            let state = shared.lock();
            state.stopped || state.error.is_some()
        };
        // A panic is an error like another: the caller waiting on this job must wake.
        let result = if skip {
            Ok(())
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(job))).unwrap_or_else(|_| {
                Err(Error::io("write", "a file", std::io::Error::other("a writer thread panicked")))
            })
        };
        let mut state = shared.lock();
        state.outstanding -= 1;
        state.queued[index].0 -= bytes;
        state.queued[index].1 -= 1;
        if let Err(e) = result
            && state.error.is_none()
        {
            state.error = Some(e);
        }
        drop(state);
        shared.changed.notify_all();
    }
}

impl<J: Send + 'static> Drop for Writers<J> {
    /// Skip what is queued (the caller stopped, on an error of its own or after `wait`), and
    /// join the workers.
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.senders.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
