//! Container logs in dockerd's json-file format: `containers/<id>/<id>-json.log`, one JSON
//! object a line (`{"log":"hello\n","stream":"stdout","time":"2026-12-07T05:44:08.123456789Z"}`),
//! so that `docker logs` reads strata's logs and `strata logs` reads dockerd's. As dockerd
//! does, a line longer than 16 KiB is cut into entries of 16 KiB, and only the last piece
//! ends with its newline.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ContainerStore;
use super::id::ContainerId;
use super::monitor;
use crate::error::{Error, IoContext, Result};
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

/// How large a container's log may grow (`--log-opt max-size=10m --log-opt max-file=3`, as
/// dockerd's json-file driver): past `max_size` bytes the file is rotated (`<log>.1`, `.2`, …),
/// and at most `max_files` files are kept, the live one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogLimits {
    /// Bytes a file may hold before it is rotated; no limit if `None`.
    pub max_size: Option<u64>,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
}

impl LogLimits {
    /// `--log-opt` values (`max-size=10m`, `max-file=3`), as dockerd takes them.
    pub fn parse(options: &[String]) -> Result<LogLimits> {
        let bad = |value: &str, reason: &str| Error::BadOption {
            what: "log option",
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let mut limits = LogLimits { max_size: None, max_files: 1 };
        let mut files_given = false;
        for option in options {
            match option.split_once('=') {
                Some(("max-size", size)) => {
                    let (number, unit) = size.split_at(size.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
                    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
                        "" | "b" => 1,
                        "k" | "kb" => 1 << 10,
                        "m" | "mb" => 1 << 20,
                        "g" | "gb" => 1 << 30,
                        _ => return Err(bad(option, "has an unknown unit: give bytes, or k, m, g")),
                    };
                    let n: u64 = number.parse().map_err(|_| bad(option, "is not a size: give 10m, 512k, …"))?;
                    limits.max_size = Some(n.saturating_mul(scale)).filter(|n| *n > 0);
                }
                Some(("max-file", files)) => {
                    limits.max_files = files
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad(option, "must be a number, at least 1"))?;
                    files_given = true;
                }
                _ => return Err(bad(option, "is not one strata's json-file log takes: max-size=SIZE or max-file=N")),
            }
        }
        if files_given && limits.max_files > 1 && limits.max_size.is_none() {
            return Err(bad("max-file", "needs max-size, as dockerd's json-file log"));
        }
        Ok(limits)
    }

    /// The limits as `hostconfig.json` keeps them (`LogConfig.Config`).
    pub(crate) fn to_config(options: &[String]) -> serde_json::Map<String, serde_json::Value> {
        options.iter().filter_map(|o| o.split_once('=')).map(|(k, v)| (k.to_owned(), v.into())).collect()
    }

    /// The limits a container's host config records.
    pub(crate) fn of(host: &super::HostConfig) -> LogLimits {
        let options: Vec<String> = host.extra["LogConfig"]["Config"]
            .as_object()
            .map(|c| c.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?))).collect())
            .unwrap_or_default();
        LogLimits::parse(&options).unwrap_or(LogLimits { max_size: None, max_files: 1 })
    }
}

/// The live log file and what it holds, rotated as its limits say.
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    limits: LogLimits,
}

impl LogFile {
    /// Open (append to) the log at `path`.
    pub(crate) fn open(path: &Path, limits: LogLimits) -> io::Result<LogFile> {
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile { path: path.to_owned(), file, size, limits })
    }

    fn write_entry(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(max) = self.limits.max_size
            && self.size > 0
            && self.size + bytes.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `<log>` becomes `<log>.1`, `.1` becomes `.2`, …, the oldest beyond `max_files` goes;
    /// with one file, the log starts again empty.
    fn rotate(&mut self) -> io::Result<()> {
        let rotated = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.limits.max_files <= 1 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.limits.max_files - 1).rev() {
                match std::fs::rename(rotated(n), rotated(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated(1))?;
            self.file = std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// Where the log of container `id` is.
pub(crate) fn path(containers_dir: &std::path::Path, id: ContainerId) -> PathBuf {
    containers_dir.join(id.as_str()).join(format!("{id}-json.log"))
}

/// Copy one of a container's streams into `log`, an entry per line, until it ends.
pub(crate) fn pump(input: impl Read, stream: &'static str, log: &Mutex<LogFile>) -> io::Result<()> {
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
        log.lock().unwrap_or_else(|p| p.into_inner()).write_entry(&bytes)?;
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
        let send = |entry: &LogEntry, each: &mut dyn FnMut(&LogEntry) -> io::Result<()>| {
            each(entry).ctx("write", std::path::Path::new("the output"))
        };
        let mut tail = std::collections::VecDeque::new();
        let mut take = |entry: LogEntry, each: &mut dyn FnMut(&LogEntry) -> io::Result<()>| -> Result<()> {
            match options.tail {
                Some(0) => {}
                Some(n) => {
                    if tail.len() == n {
                        tail.pop_front();
                    }
                    tail.push_back(entry);
                }
                None => send(&entry, each)?,
            }
            Ok(())
        };
        // The rotated files first, oldest first.
        let rotated: Vec<PathBuf> =
            (1..).map(|n| PathBuf::from(format!("{}.{n}", path.display()))).take_while(|p| p.exists()).collect();
        for old in rotated.iter().rev() {
            let Ok(file) = File::open(old) else { continue };
            for line in BufReader::new(file).lines() {
                if let Some(entry) = parse(&line.ctx("read", old)?).filter(|e| options.wants(e)) {
                    take(entry, &mut each)?;
                }
            }
        }
        // Then what the live file holds now (a torn last line waits for the rest of it).
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            if reader.read_line(&mut line).ctx("read", &path)? == 0 || !line.ends_with('\n') {
                break;
            }
            if let Some(entry) = parse(&line).filter(|e| options.wants(e)) {
                take(entry, &mut each)?;
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
            // Rotated under the reader: go on in the new live file.
            use std::os::unix::fs::MetadataExt;
            let live = std::fs::metadata(&path).map(|m| m.ino()).ok();
            if live.is_some() && live != reader.get_ref().metadata().map(|m| m.ino()).ok() {
                reader = BufReader::new(File::open(&path).ctx("open", &path)?);
                line.clear();
                continue;
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
