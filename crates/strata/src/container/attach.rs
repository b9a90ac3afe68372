//! Attaching to a detached container (`attach`, `run -it`): its monitor serves a socket in
//! the container's private directory (`attach.sock`). A client receives what the container
//! writes from then on (a terminal's bytes as they are; without a terminal, frames naming
//! stdout or stderr) and sends frames of input (kept only if the container's stdin is open)
//! and window sizes. The socket is bound and reached through its directory's descriptor, so a
//! store's long path does not count against the 108 bytes a socket address holds.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The attach socket's name in the container's private directory.
pub(crate) const ATTACH_SOCKET: &str = "attach.sock";

/// A client's frame: bytes for the container's stdin.
const INPUT: u8 = 0;
/// A client's frame: the window size, rows then columns (big-endian `u16`s).
const RESIZE: u8 = 1;
/// A server's frame (no terminal): bytes the container wrote to stdout.
const STDOUT: u8 = 1;
/// A server's frame (no terminal): bytes the container wrote to stderr.
const STDERR: u8 = 2;

/// One frame: kind, length (big-endian `u16`), bytes.
fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + data.len());
    out.push(kind);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// `path` as `/proc/self/fd/<its directory>/<name>`, with the descriptor that keeps it valid.
fn short_path(path: &Path) -> std::io::Result<(OwnedFd, String)> {
    use rustix::fs::{Mode, OFlags};
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("sock");
    let fd = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let short = format!("/proc/self/fd/{}/{name}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    Ok((fd, short))
}

/// An attached container (`attach`): what it writes comes through
/// [`copy_output`](Self::copy_output); input and window sizes are sent.
#[derive(Debug)]
pub struct Terminal {
    reader: UnixStream,
    writer: Mutex<UnixStream>,
    /// No terminal: the output comes in frames naming its stream.
    framed: bool,
}

impl Terminal {
    /// Attach to the container whose socket is at `path` (`tty`: it has a terminal).
    pub(crate) fn connect(path: &Path, tty: bool) -> std::io::Result<Terminal> {
        let (_dir, short) = short_path(path)?;
        let reader = UnixStream::connect(short)?;
        let writer = Mutex::new(reader.try_clone()?);
        Ok(Terminal { reader, writer, framed: !tty })
    }

    /// Copy what the container writes from now on to `out` (and its stderr, if it has no
    /// terminal, to `err`) until it ends or [`close`](Self::close) is called.
    pub fn copy_output(&self, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
        let mut reader = &self.reader;
        if !self.framed {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        out.write_all(&buf[..n])?;
                        out.flush()?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut reader = std::io::BufReader::new(reader);
        let mut head = [0u8; 3];
        loop {
            match reader.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let mut data = vec![0u8; u16::from_be_bytes([head[1], head[2]]) as usize];
            reader.read_exact(&mut data)?;
            let to: &mut dyn Write = if head[0] == STDERR { &mut *err } else { &mut *out };
            to.write_all(&data)?;
            to.flush()?;
        }
    }

    /// Type `bytes` (ignored unless the container has its stdin open, `-i`).
    pub fn input(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.send(INPUT, bytes)
    }

    /// The window is now `rows` × `cols` (zero: unknown, ignored).
    pub fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        let mut size = rows.to_be_bytes().to_vec();
        size.extend_from_slice(&cols.to_be_bytes());
        self.send(RESIZE, &size)
    }

    fn send(&self, kind: u8, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(u16::MAX as usize) {
            self.writer.lock().unwrap_or_else(|p| p.into_inner()).write_all(&frame(kind, chunk))?;
        }
        Ok(())
    }

    /// Leave: the container runs on as it is.
    pub fn close(&self) {
        let _ = self.reader.shutdown(std::net::Shutdown::Both);
    }
}

/// Where clients' input goes.
#[derive(Clone)]
pub(crate) enum Input {
    /// A terminal's master end: input, and window sizes.
    Terminal(Arc<OwnedFd>),
    /// The write end of the container's stdin pipe.
    Pipe(Arc<OwnedFd>),
    /// Nowhere (the container's stdin is not open).
    Closed,
}

/// The clients attached to a container.
pub(crate) type Clients = Arc<Mutex<Vec<UnixStream>>>;

/// A container's attach socket, served by its monitor.
pub(crate) struct Server {
    listener: UnixListener,
    pub clients: Clients,
}

impl Server {
    /// Bind the socket at `path` (replacing a dead monitor's).
    pub(crate) fn bind(path: &Path) -> std::io::Result<Server> {
        let _ = std::fs::remove_file(path);
        let (_dir, short) = short_path(path)?;
        let listener = UnixListener::bind(short)?;
        listener.set_nonblocking(true)?;
        Ok(Server { listener, clients: Arc::default() })
    }

    /// Wait up to `limit` for a first client, and the window size it sends first (a client
    /// always does, zero if it has no terminal).
    pub(crate) fn first_client(
        &self,
        limit: Duration,
    ) -> std::io::Result<(UnixStream, Option<rustix::termios::Winsize>)> {
        let deadline = Instant::now() + limit;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut head = [0u8; 7];
        let read = (&stream).read_exact(&mut head);
        stream.set_read_timeout(None)?;
        let (rows, cols) = (u16::from_be_bytes([head[3], head[4]]), u16::from_be_bytes([head[5], head[6]]));
        let size = (read.is_ok() && head[0] == RESIZE && head[1..3] == [0, 4] && rows > 0 && cols > 0)
            .then_some(rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 });
        Ok((stream, size))
    }

    /// Accept clients until `done`, each one's input into `input`.
    pub(crate) fn serve(self, input: Input, done: Arc<AtomicBool>) {
        while !done.load(Ordering::SeqCst) {
            match self.listener.accept() {
                Ok((stream, _)) => add_client(stream, &input, &self.clients),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    tracing::warn!("attach socket: {e}");
                    return;
                }
            }
        }
    }
}

/// Take `stream` as a client: its frames go to `input` on a thread of its own.
pub(crate) fn add_client(stream: UnixStream, input: &Input, clients: &Clients) {
    let Ok(reader) = stream.try_clone() else { return };
    let _ = stream.set_nonblocking(false);
    clients.lock().unwrap_or_else(|p| p.into_inner()).push(stream);
    let input = input.clone();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut head = [0u8; 3];
        while reader.read_exact(&mut head).is_ok() {
            let mut data = vec![0u8; u16::from_be_bytes([head[1], head[2]]) as usize];
            if reader.read_exact(&mut data).is_err() {
                break;
            }
            match (head[0], &input) {
                (INPUT, Input::Terminal(fd) | Input::Pipe(fd)) => drop(write_all(fd, &data)),
                (RESIZE, Input::Terminal(master)) if data.len() == 4 && data != [0, 0, 0, 0] => {
                    let size = rustix::termios::Winsize {
                        ws_row: u16::from_be_bytes([data[0], data[1]]),
                        ws_col: u16::from_be_bytes([data[2], data[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    let _ = rustix::termios::tcsetwinsize(&**master, size);
                }
                _ => {}
            }
        }
    });
}

/// End every client's connection: they learn the container's end by it.
pub(crate) fn close_all(clients: &Clients) {
    for client in clients.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        let _ = client.shutdown(std::net::Shutdown::Both);
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One of the container's streams, to the log and to every attached client (a client that
/// cannot take it is dropped).
pub(crate) struct Tee<'a> {
    pub clients: Clients,
    pub log: &'a Mutex<super::log::LogFile>,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// Framed for clients (no terminal), or as it is.
    pub framed: bool,
}

impl Tee<'_> {
    /// Copy `output` until it ends: whole lines into the log (as `log::pump` does), every byte
    /// to the clients as it comes.
    pub(crate) fn pump(self, mut output: impl Read) -> std::io::Result<()> {
        let (reader, mut writer) = std::io::pipe()?;
        let kind = if self.stream == "stderr" { STDERR } else { STDOUT };
        std::thread::scope(|scope| {
            let (log, stream) = (self.log, self.stream);
            let logged = scope.spawn(move || super::log::pump(reader, stream, log));
            let mut buf = [0u8; 8192];
            let copied = loop {
                let n = match output.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                };
                {
                    let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
                    if !clients.is_empty() {
                        let bytes = if self.framed { frame(kind, &buf[..n]) } else { buf[..n].to_vec() };
                        clients.retain_mut(|c| c.write_all(&bytes).is_ok());
                    }
                }
                if let Err(e) = writer.write_all(&buf[..n]) {
                    break Err(e);
                }
            };
            drop(writer);
            let logged = logged.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            copied.and(logged)
        })
    }
}
