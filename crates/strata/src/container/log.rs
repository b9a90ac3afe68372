//! Container logs in dockerd's json-file format: `containers/<id>/<id>-json.log`, one JSON
//! object a line (`{"log":"hello\n","stream":"stdout","time":"2026-12-07T05:44:08.123456789Z"}`),
//! so that `docker logs` reads strata's logs and `strata logs` reads dockerd's. As dockerd
//! does, a line longer than 16 KiB is cut into entries of 16 KiB, and only the last piece
//! ends with its newline.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ContainerStore;
use super::id::ContainerId;
use super::monitor;
use crate::error::{IoContext, Result};
use crate::image::now_rfc3339;

/// The longest entry; longer lines are cut, as dockerd cuts them.
const MAX_ENTRY: u64 = 16 * 1024;

/// How often `logs --follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// One line (or piece of a line) a container wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The bytes, with the line's newline if it had one (invalid UTF-8 replaced, as dockerd).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When it was written (RFC 3339, nanoseconds).
    pub time: String,
}

/// Which entries `logs` gives.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N entries (before following).
    pub tail: Option<usize>,
    /// Only entries written at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only entries written before this time.
    pub until: Option<jiff::Timestamp>,
    /// Keep giving new entries until the container stops.
    pub follow: bool,
}

impl LogOptions {
    fn wants(&self, entry: &LogEntry) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Ok(time) = entry.time.parse::<jiff::Timestamp>() else { return true };
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }
}

/// Where the log of container `id` is.
pub(crate) fn path(containers_dir: &std::path::Path, id: ContainerId) -> PathBuf {
    containers_dir.join(id.as_str()).join(format!("{id}-json.log"))
}

/// Copy one of a container's streams into `log`, an entry per line, until it ends.
pub(crate) fn pump(input: impl Read, stream: &'static str, log: &Mutex<File>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    loop {
        line.clear();
        if (&mut reader).take(MAX_ENTRY).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let entry = LogEntry {
            log: String::from_utf8_lossy(&line).into_owned(),
            stream: stream.to_owned(),
            time: now_rfc3339(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
        log.lock().unwrap_or_else(|p| p.into_inner()).write_all(&bytes)?;
    }
}

impl ContainerStore {
    /// The container's log, as `docker logs` gives it: `each` is called for every entry the
    /// options select, in order; with `follow`, also for new ones until the container stops.
    /// A container that never ran has no log, and gives nothing.
    pub fn logs(
        &self,
        name: &str,
        options: &LogOptions,
        mut each: impl FnMut(&LogEntry) -> io::Result<()>,
    ) -> Result<()> {
        let id = self.resolve(name)?;
        let path = path(&self.store.containers_dir(), id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !options.follow => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Following a container that has not written yet: wait for its log.
                loop {
                    if let Ok(file) = File::open(&path) {
                        break file;
                    }
                    if !monitor::is_held(&self.store, id) {
                        return Ok(());
                    }
                    std::thread::sleep(FOLLOW_POLL);
                }
            }
            Err(e) => return Err(e).ctx("open", &path),
        };
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut tail = std::collections::VecDeque::new();
        let send = |entry: &LogEntry, each: &mut dyn FnMut(&LogEntry) -> io::Result<()>| {
            each(entry).ctx("write", std::path::Path::new("the output"))
        };
        // What is there now (a torn last line waits for the rest of it).
        loop {
            if reader.read_line(&mut line).ctx("read", &path)? == 0 || !line.ends_with('\n') {
                break;
            }
            if let Some(entry) = parse(&line).filter(|e| options.wants(e)) {
                match options.tail {
                    Some(0) => {}
                    Some(n) => {
                        if tail.len() == n {
                            tail.pop_front();
                        }
                        tail.push_back(entry);
                    }
                    None => send(&entry, &mut each)?,
                }
            }
            line.clear();
        }
        for entry in tail {
            send(&entry, &mut each)?;
        }
        if !options.follow {
            return Ok(());
        }
        loop {
            let running = monitor::is_held(&self.store, id);
            loop {
                if reader.read_line(&mut line).ctx("read", &path)? == 0 || !line.ends_with('\n') {
                    break;
                }
                if let Some(entry) = parse(&line).filter(|e| options.wants(e)) {
                    send(&entry, &mut each)?;
                }
                line.clear();
            }
            if !running {
                return Ok(());
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// An entry of a log line; a line that is not one is skipped (dockerd skips them too).
fn parse(line: &str) -> Option<LogEntry> {
    serde_json::from_str(line.trim_end_matches('\n')).ok()
}
