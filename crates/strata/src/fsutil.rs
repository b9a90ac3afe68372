//! Small filesystem helpers with exact modes, whatever the umask.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{IoContext, Result};

/// `mkdir` with exactly `mode`. Returns whether it was made (`false`: it existed already).
pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<bool> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {
            std::fs::set_permissions(path, Permissions::from_mode(mode)).ctx("chmod", path)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).ctx("mkdir", path),
    }
}

/// Create `path` (which must not exist) with exactly `mode` and `contents`.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).ctx("create", path)?;
    file.set_permissions(Permissions::from_mode(mode)).ctx("chmod", path)?;
    file.write_all(contents).ctx("write", path)
}

/// Replace `path` atomically: write a sibling temporary file, then rename it over `path`.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", crate::id::hex(&crate::id::random_bytes::<6>())));
    write_new(&tmp, contents, mode)?;
    std::fs::rename(&tmp, path).inspect_err(|_| drop(std::fs::remove_file(&tmp))).ctx("rename", path)
}

/// Read a small text file; `None` if it does not exist.
///
/// For the store's own small regular files (`link`, `lower`, counts): one `open`, one `read`
/// and one `close` where `std::fs::read_to_string` adds a `statx` and a second `read`, which
/// counts when every command reads several of them. A short read of a regular file on a local
/// filesystem is its end; a longer file is read on to the end.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("read", path),
    };
    let mut first = [0u8; SMALL_FILE];
    let n = file.read(&mut first).ctx("read", path)?;
    let mut buf = first[..n].to_vec();
    if n == SMALL_FILE {
        file.read_to_end(&mut buf).ctx("read", path)?;
    }
    String::from_utf8(buf).map(Some).map_err(|e| io::Error::new(ErrorKind::InvalidData, e)).ctx("read", path)
}

/// The first read of [`read_optional`], on the stack: a `link`, a count, the `lower` file of
/// up to 140 layers.
const SMALL_FILE: usize = 4096;

/// Read a file's bytes; `None` if it does not exist.
pub(crate) fn read_bytes_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("read", path),
    }
}

/// The entries of `dir` whose names parse as `T` (digests, IDs), sorted; none if `dir` does
/// not exist.
pub(crate) fn parsed_names<T: std::str::FromStr + Ord>(dir: &Path) -> Result<Vec<T>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read directory", dir),
    };
    let mut out = Vec::new();
    for entry in entries {
        if let Ok(name) = entry.ctx("read directory", dir)?.file_name().to_string_lossy().parse() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Remove a file or an empty directory, ignoring "not found".
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    // unlink(2) first, since most callers remove files: Linux refuses a directory with EISDIR.
    let result = match std::fs::remove_file(path) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::ISDIR.raw_os_error()) => std::fs::remove_dir(path),
        other => other,
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}
