//! The files ADD and COPY bring besides the context's: one file as a tar (a heredoc, a
//! download), a local archive renamed under its destination, a URL fetched, and mtimes held
//! to `SOURCE_DATE_EPOCH`.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

fn refuse(reason: impl Into<String>) -> Error {
    Error::BadOption { what: "instruction", value: String::new(), reason: reason.into() }
}

/// A tar of one regular file.
pub(super) fn single_file(
    out: impl std::io::Write,
    name: &str,
    content: impl Read,
    len: u64,
    mode: u32,
    owner: (u32, u32),
    mtime: i64,
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(len);
    header.set_mode(mode);
    header.set_uid(owner.0.into());
    header.set_gid(owner.1.into());
    header.set_mtime(mtime.max(0) as u64);
    tar.append_data(&mut header, name, content)?;
    tar.finish()
}

/// The entries of an archive ADD unpacks, renamed under `dest`.
pub(super) fn rebase_tar(input: &mut dyn Read, out: impl std::io::Write, dest: &str) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut tar = tar::Builder::new(out);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let cleaned = crate::gopath::clean(&format!("/{path}"));
        let name = match (dest.is_empty(), cleaned.trim_start_matches('/')) {
            (_, "") => continue,
            (true, rel) => rel.to_owned(),
            (false, rel) => format!("{dest}/{rel}"),
        };
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Link => {
                let target = entry.link_name()?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                let target = crate::gopath::clean(&format!("/{target}"));
                let target =
                    if dest.is_empty() { target.trim_start_matches('/').to_owned() } else { format!("{dest}{target}") };
                tar.append_link(&mut header, &name, target)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                tar.append_link(&mut header, &name, target)?;
            }
            _ => {
                tar.append_data(&mut header, &name, &mut entry)?;
            }
        }
    }
    tar.finish()
}

/// Whether a file is an archive ADD unpacks (a tar, compressed or not), by its content.
pub(super) fn is_archive(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    let Ok((_, mut decoded)) = crate::archive::Compression::decoder(std::io::BufReader::new(file)) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut read = 0;
    while read < head.len() {
        match decoded.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return false,
        }
    }
    read == 512 && &head[257..262] == b"ustar"
}

pub(super) fn hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetch `url` into `dir`: its file name (the URL's last segment), path, mtime
/// (`Last-Modified`, else 0) and cache key.
pub(super) fn download(url: &str, dir: &Path) -> Result<(String, std::path::PathBuf, i64, String)> {
    std::fs::create_dir_all(dir).ctx("mkdir", dir)?;
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("download")
        .to_owned();
    let failed = |e: String| refuse(format!("cannot download {url}: {e}"));
    let response = ureq::get(url).call().map_err(|e| failed(e.to_string()))?;
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
        .map_or(0, |t| t.timestamp().as_second());
    let path = dir.join(&name);
    let mut file = std::fs::File::create(&path).ctx("create", &path)?;
    let mut body = response.into_body();
    let mut hasher = sha2::Sha256::default();
    let mut reader = body.as_reader();
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        use sha2::Digest as _;
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut file, &buf[..n]).ctx("write", &path)?;
    }
    use sha2::Digest as _;
    let key = format!("file:{}", hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
    Ok((name, path, mtime, key))
}

/// Set every mtime under `dir` to `epoch` at most (`SOURCE_DATE_EPOCH`).
pub(super) fn clamp_mtimes(dir: &Path, epoch: i64) -> Result<()> {
    let clamp = |path: &Path| -> Result<()> {
        let meta = std::fs::symlink_metadata(path).ctx("stat", path)?;
        use std::os::unix::fs::MetadataExt;
        if meta.mtime() > epoch {
            let t = rustix::fs::Timespec { tv_sec: epoch, tv_nsec: 0 };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                path,
                &rustix::fs::Timestamps { last_access: t, last_modification: t },
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx("utimensat", path)?;
        }
        Ok(())
    };
    fn walk(dir: &Path, clamp: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
        for entry in std::fs::read_dir(dir).ctx("read", dir)? {
            let path = entry.ctx("read", dir)?.path();
            let meta = std::fs::symlink_metadata(&path).ctx("stat", &path)?;
            if meta.is_dir() {
                walk(&path, clamp)?;
            }
            clamp(&path)?;
        }
        Ok(())
    }
    walk(dir, &clamp)?;
    clamp(dir)
}
