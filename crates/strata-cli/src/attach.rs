//! `attach`, and `run -it` / `start -ai` of a container with a terminal: the caller's terminal
//! joined to the container's through its monitor's attach socket (raw while attached, its
//! window size passed on at every `SIGWINCH`), until the container ends or the detach keys
//! (`ctrl-p ctrl-q`) leave it running. A detached container without a terminal is attached to
//! as docker does: its stdout and stderr to ours, our stdin to its if it is open (`-di`).

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use strata::Store;
use strata::container::Terminal;

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// Do not send this terminal's input to the container.
    #[arg(long)]
    no_stdin: bool,
    /// The keys that leave the container running: ctrl-X and single characters, comma-separated.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    detach_keys: String,
    /// The container (name or ID).
    container: String,
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The detach keys: the container runs on.
    Detached,
    /// The container's terminal closed: it ended.
    Closed,
}

/// `ctrl-p,ctrl-q` → `[0x10, 0x11]`, as docker reads `--detach-keys`.
pub(crate) fn detach_keys(spec: &str) -> Result<Vec<u8>> {
    let mut keys = Vec::new();
    for key in spec.split(',') {
        let key = key.trim();
        match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let c = c.as_bytes()[0].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => keys.push(c - b'a' + 1),
                    b'@' => keys.push(0),
                    b'[' | b'\\' | b']' | b'^' | b'_' => keys.push(c - b'@'),
                    _ => bail!("invalid detach key {key:?}: ctrl- takes a letter or one of @[\\]^_"),
                }
            }
            None if key.len() == 1 => keys.push(key.as_bytes()[0]),
            _ => bail!("invalid detach key {key:?}: give ctrl-X or a single character, comma-separated"),
        }
    }
    Ok(keys)
}

/// This terminal's window size to the container's (zero if stdin is no terminal: a client
/// says its size first, whatever it is).
fn send_size(terminal: &Terminal) {
    let (rows, cols) = match rustix::termios::tcgetwinsize(std::io::stdin()) {
        Ok(size) => (size.ws_row, size.ws_col),
        Err(_) => (0, 0),
    };
    let _ = terminal.resize(rows, cols);
}

/// Join this process's terminal to `terminal` (raw if the container has one, `tty`) until
/// it closes or `keys` are typed.
pub(crate) fn relay(terminal: Terminal, tty: bool, stdin: bool, keys: Vec<u8>) -> Result<Ended> {
    let terminal = Arc::new(terminal);
    let _raw = (tty && stdin && std::io::stdin().is_terminal()).then(strata::container::RawTerminal::set);
    send_size(&terminal);
    let winch = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])?;
    let winch_handle = winch.handle();
    let resized = Arc::clone(&terminal);
    std::thread::spawn(move || {
        let mut winch = winch;
        winch.forever().for_each(|_| send_size(&resized));
    });
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        // Not joined: a read of stdin cannot be interrupted; the process ends soon after.
        let (input, detached) = (Arc::clone(&terminal), Arc::clone(&detached));
        std::thread::spawn(move || {
            let mut matched = 0;
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n @ 1..) = stdin.read(&mut buf) {
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !keys.is_empty() && b == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            let _ = input.input(&out);
                            detached.store(true, Ordering::SeqCst);
                            input.close();
                            return;
                        }
                        continue;
                    }
                    out.extend_from_slice(&keys[..matched]);
                    matched = 0;
                    if !keys.is_empty() && b == keys[0] {
                        matched = 1;
                    } else {
                        out.push(b);
                    }
                }
                if input.input(&out).is_err() {
                    return;
                }
            }
        });
    }
    let copied = terminal.copy_output(&mut std::io::stdout(), &mut std::io::stderr());
    if !detached.load(Ordering::SeqCst) {
        copied.context("reading the container's output")?;
    }
    winch_handle.close();
    Ok(if detached.load(Ordering::SeqCst) { Ended::Detached } else { Ended::Closed })
}

pub(crate) fn attach(root: &Path, args: AttachArgs) -> Result<ExitCode> {
    let keys = detach_keys(&args.detach_keys)?;
    let containers = Store::open(root)?.containers();
    let tty = containers.get(containers.resolve(&args.container)?)?.record.config.tty;
    let terminal = containers.attach(&args.container, Duration::ZERO)?;
    match relay(terminal, tty, !args.no_stdin, keys)? {
        Ended::Detached => Ok(ExitCode::SUCCESS),
        Ended::Closed => {
            let code = containers.wait(&args.container)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_as_docker_reads_them() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(detach_keys("ctrl-@,ctrl-[").unwrap(), [0, 0x1b]);
        assert!(detach_keys("ctrl-pq").is_err());
        assert!(detach_keys("alt-x").is_err());
    }
}
