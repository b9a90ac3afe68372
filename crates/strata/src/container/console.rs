//! A container's terminal (`-t`), as podman's conmon holds one: the runtime makes the
//! pseudo-terminal and hands its master end over a console socket (`--console-socket`) and
//! returns; the container's process is then this process's to wait for (as its subreaper).
//! The master end is relayed to the caller's terminal (raw while the container runs, its
//! window size passed on at every `SIGWINCH`) or, for a detached run, into the log.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use super::attach::{Clients, Input, Server, Tee, add_client, close_all};
use super::runtime::Runtime;
use crate::error::Result;

/// Where the terminal's output goes.
pub(crate) enum TerminalTo<'a> {
    /// The caller's stdout; the caller's stdin goes in if `stdin`.
    Caller { stdin: bool },
    /// The container's log (one stream: `stdout`, as dockerd logs a terminal), and whoever
    /// attaches on the socket at `attach` (see [`Attach`]).
    Log { log: &'a std::sync::Mutex<super::log::LogFile>, attach: Attach<'a> },
}

/// A detached terminal's attach socket (see `attach`).
pub(crate) struct Attach<'a> {
    /// Where the socket is (`<private>/attach.sock`).
    pub socket: &'a Path,
    /// Start the container only once a client has attached (`run -it`: nothing is missed).
    pub wait_first: bool,
    /// Whether clients' input reaches the container (`-i`).
    pub stdin: bool,
}

/// The socket the runtime sends the terminal's master end to, alone in a directory of this
/// process's (0700: nobody else can connect and hand over a terminal of theirs) under the
/// temporary directory (a socket's path must be short); both removed when dropped.
struct ConsoleSocket {
    listener: UnixListener,
    dir: PathBuf,
}

impl ConsoleSocket {
    fn bind() -> std::io::Result<ConsoleSocket> {
        let dir =
            std::env::temp_dir().join(format!("strata-console-{}", crate::id::hex(&crate::id::random_bytes::<8>())));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let listener = UnixListener::bind(dir.join("sock")).inspect_err(|_| drop(std::fs::remove_dir(&dir)))?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { listener, dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The master end, once the runtime sends it; `None` if `ended` says the runtime ended
    /// first (its own error is then on stderr).
    fn receive(&self, mut ended: impl FnMut() -> bool) -> std::io::Result<Option<OwnedFd>> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => return receive_fd(&stream).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if ended() {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The descriptor sent with `SCM_RIGHTS` on `stream`.
fn receive_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    stream.set_nonblocking(false)?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 4096];
    rustix::net::recvmsg(stream, &mut [IoSliceMut::new(&mut name)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(std::io::Error::other("the runtime sent no terminal over the console socket"))
}

/// Reads the master end until the terminal closes, or until `done` is set and nothing more
/// comes for a moment (a process the container left behind may hold the terminal open).
struct Master {
    fd: Arc<OwnedFd>,
    done: Arc<AtomicBool>,
}

impl Read for Master {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut fds = [rustix::event::PollFd::new(&*self.fd, rustix::event::PollFlags::IN)];
            let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) if self.done.load(Ordering::SeqCst) => return Ok(0),
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            match rustix::io::read(&*self.fd, &mut *buf) {
                Ok(n) => return Ok(n),
                // The last holder of the terminal's other end closed it.
                Err(rustix::io::Errno::IO) => return Ok(0),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// This process's terminal (its stdin) in raw mode until dropped, if it is a terminal: keys
/// reach the container's terminal as typed.
#[derive(Debug)]
pub struct RawTerminal(Option<rustix::termios::Termios>);

impl RawTerminal {
    /// Make stdin raw (nothing happens if it is not a terminal).
    pub fn set() -> RawTerminal {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else { return RawTerminal(None) };
        let mut raw = saved.clone();
        raw.make_raw();
        match rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw) {
            Ok(()) => RawTerminal(Some(saved)),
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, saved);
        }
    }
}

/// The caller's terminal size onto the container's.
fn copy_size(master: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin())
        && size.ws_row > 0
    {
        let _ = rustix::termios::tcsetwinsize(master, size);
    }
}

/// How the runtime is run for a process with a terminal.
pub(crate) struct Invocation<'a> {
    pub runtime: &'a Runtime,
    /// A `create` (then `start` if `then_start`), or an `exec --detach`; the console socket
    /// and then `id` are added.
    pub args: &'a [&'a std::ffi::OsStr],
    pub then_start: bool,
    /// The container.
    pub id: &'a str,
    /// Where the runtime writes the process's PID.
    pub pid_file: &'a Path,
}

/// Run the runtime as `Invocation` says with a terminal: take the terminal's master end,
/// wait for the runtime to have started the process (its PID in `pid_file`), call `spawned`
/// with that PID and `running`, relay the terminal to `to` and wait for the process, as its
/// subreaper. Returns its exit status (128 + the signal that ended it).
pub(crate) fn run_with_terminal(
    Invocation { runtime, args, then_start, id, pid_file }: Invocation<'_>,
    to: TerminalTo<'_>,
    spawned: impl FnOnce(u32),
    running: impl FnOnce(),
) -> Result<i32> {
    let io = |what: &str, e: std::io::Error| runtime.error(format!("{what}: {e}"));
    let console = ConsoleSocket::bind().map_err(|e| io("cannot make its console socket", e))?;
    // The attach socket is there before the container starts; `wait_first` waits for a client.
    let mut early_client = None;
    let mut first_size = None;
    let server = match &to {
        TerminalTo::Log { attach, .. } => {
            let server = Server::bind(attach.socket).map_err(|e| io("cannot make its attach socket", e))?;
            if attach.wait_first {
                // A client says its window size first: the container starts with it.
                let (client, size) = server
                    .first_client(Duration::from_secs(60))
                    .map_err(|e| io("nobody attached to its terminal", e))?;
                (early_client, first_size) = (Some(client), size);
            }
            Some(server)
        }
        TerminalTo::Caller { .. } => None,
    };
    // The process is the runtime's child until the runtime returns; then it is this one's.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| io("cannot become the container's subreaper", e.into()))?;
    let mut command: Command = runtime.command();
    command.args(args).arg("--console-socket").arg(console.path()).arg(id);
    command.stdin(Stdio::null());
    if matches!(to, TerminalTo::Log { .. }) {
        command.stdout(Stdio::null());
    }
    let mut child = command.spawn().map_err(|e| io("cannot start it", e))?;
    let master = console.receive(|| matches!(child.try_wait(), Ok(Some(_)))).map_err(|e| io("no terminal came", e))?;
    let status = child.wait().map_err(|e| io("waiting for it", e))?;
    drop(console);
    let Some(master) = master.filter(|_| status.success()) else {
        return Err(runtime.error(format!("failed before the container ran ({status}); see its message above")));
    };
    if let Some(size) = first_size {
        let _ = rustix::termios::tcsetwinsize(&master, size);
    }
    if then_start {
        let mut start = runtime.command();
        start.arg("start").arg(id).stdin(Stdio::null());
        let started = start.status().map_err(|e| io("cannot start it", e))?;
        if !started.success() {
            return Err(runtime.error(format!("failed to start the container ({started}); see its message above")));
        }
    }
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| runtime.error(format!("wrote no process ID to {}", pid_file.display())))?;
    spawned(pid as u32);
    running();

    let master = Arc::new(master);
    let clients: Clients = server.as_ref().map(|s| Arc::clone(&s.clients)).unwrap_or_default();
    let done = Arc::new(AtomicBool::new(false));
    let output = Master { fd: Arc::clone(&master), done: Arc::clone(&done) };
    let relay = std::thread::scope(|scope| {
        let _raw = match &to {
            TerminalTo::Caller { stdin: true } => Some(RawTerminal::set()),
            _ => None,
        };
        let pump = match to {
            TerminalTo::Caller { stdin } => {
                copy_size(&master);
                let resize = Arc::clone(&master);
                let winch = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]).ok();
                let handle = winch.as_ref().map(|w| w.handle());
                if let Some(mut winch) = winch {
                    std::thread::spawn(move || winch.forever().for_each(|_| copy_size(&resize)));
                }
                if stdin {
                    // Not joined: a read of the caller's stdin cannot be interrupted, and the
                    // process ends soon after the container does.
                    let input = Arc::clone(&master);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        let mut stdin = std::io::stdin();
                        while let Ok(n @ 1..) = stdin.read(&mut buf) {
                            if rustix::io::write(input.as_fd(), &buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                scope.spawn(move || {
                    let copied =
                        std::io::copy(&mut { output }, &mut std::io::stdout()).and_then(|_| std::io::stdout().flush());
                    if let Some(handle) = handle {
                        handle.close();
                    }
                    copied
                })
            }
            TerminalTo::Log { log, attach } => {
                let input = if attach.stdin { Input::Terminal(Arc::clone(&master)) } else { Input::Closed };
                if let Some(stream) = early_client.take() {
                    add_client(stream, &input, &clients);
                }
                if let Some(server) = server {
                    let done = Arc::clone(&done);
                    scope.spawn(move || server.serve(input, done));
                }
                let tee = Tee { clients: Arc::clone(&clients), log, stream: "stdout", framed: false };
                scope.spawn(move || tee.pump(output))
            }
        };
        let status = wait_for(pid);
        done.store(true, Ordering::SeqCst);
        let pumped = pump.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        close_all(&clients);
        (status, pumped)
    });
    let (status, pumped) = relay;
    if let Err(e) = pumped {
        tracing::warn!("the container's terminal could not be relayed: {e}");
    }
    status.map_err(|e| io("waiting for the container", e.into()))
}

/// Reap children until `pid` ends; its exit status.
fn wait_for(pid: i32) -> rustix::io::Result<i32> {
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((reaped, status))) if reaped.as_raw_nonzero().get() == pid => {
                return Ok(match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => code,
                    (None, Some(signal)) => 128 + signal,
                    _ => 1,
                });
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}
