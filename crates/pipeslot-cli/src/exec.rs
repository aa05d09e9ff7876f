//! `serve --exec CMD…`: one child process per client, with the pipe as its
//! stdin and stdout.
//!
//! Byte pipes are copied as bytes. On message pipes each message becomes one
//! line of the child's stdin and each line the child prints becomes one
//! message, so line-oriented programs can answer `call` and `transact`.
//! There the child's stdout is a pseudo-terminal in raw mode: C programs
//! (`tr`, `grep`, `awk`) buffer a pipe until it fills, but print each line
//! at once to a terminal, so an ordinary filter answers each message. The
//! client closing closes the child's stdin; the child's stdout ending (it
//! exited) disconnects the client.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{ChildStdin, Command, Stdio};
use std::thread;

use pipeslot::blocking::NamedPipeServer;
use pipeslot::{PipeMode, Win32Error};

use crate::error::{fail, wrap};
use crate::pipe;

const BUF: usize = 64 * 1024;

/// Serves one connected client with a fresh child. Only a child that cannot
/// start is an error; what the client and the child do is theirs.
pub(crate) fn serve_client(server: &NamedPipeServer, mode: PipeMode, cmd: &[OsString]) -> io::Result<()> {
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| fail(Win32Error::ERROR_INVALID_PARAMETER, "--exec needs a command"))?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::piped());
    // Message pipes: a terminal for stdout (read from its master side).
    let terminal = match mode {
        PipeMode::Message => {
            let (master, slave) = raw_pty().map_err(|e| wrap(e, "making a pseudo-terminal for --exec"))?;
            command.stdout(Stdio::from(slave));
            Some(master)
        }
        _ => {
            command.stdout(Stdio::piped());
            None
        }
    };
    let mut child = command
        .spawn()
        .map_err(|e| wrap(e, format!("cannot run {:?}", program.to_string_lossy())))?;
    // The parent's copy of the slave is gone with `command`: the master
    // reads end when the child (and its children) close theirs.
    drop(command);
    let stdout: Box<dyn Read + Send> = match (terminal, child.stdout.take()) {
        (Some(master), _) => Box::new(Terminal(File::from(master))),
        (None, Some(out)) => Box::new(out),
        (None, None) => return Err(fail(Win32Error::ERROR_GEN_FAILURE, "the child's stdout is missing")),
    };
    let Some(stdin) = child.stdin.take() else {
        return Err(fail(Win32Error::ERROR_GEN_FAILURE, "the child's stdin is missing"));
    };
    tracing::info!("started {:?} (pid {}) for this client", program, child.id());
    thread::scope(|scope| {
        scope.spawn(|| {
            if let Err(e) = to_child(server, mode, stdin) {
                tracing::debug!("client → child stopped: {}", crate::error::line(&e));
            }
        });
        if let Err(e) = from_child(server, mode, stdout) {
            // The client is gone: nobody will read what the child prints.
            tracing::debug!("child → client stopped: {}", crate::error::line(&e));
            let _ = child.kill();
        }
        match child.wait() {
            Ok(status) => tracing::info!("child exited: {status}"),
            Err(e) => tracing::warn!("cannot reap the child: {e}"),
        }
        // The client reads what the child printed before the disconnect,
        // which would discard it (Win32's rule); a client that does not
        // read holds the instance no longer than this.
        let _ = server.flush_buffers_timeout(FLUSH_LIMIT);
        // Ends the client's connection, which also wakes `to_child` if it
        // is still reading from the pipe.
        let _ = server.disconnect();
    });
    Ok(())
}

/// How long a client may take to read the child's last output.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Client → child's stdin, until the client closes (then stdin is dropped,
/// which closes it) or the child stops reading.
fn to_child(server: &NamedPipeServer, mode: PipeMode, mut stdin: ChildStdin) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    match mode {
        PipeMode::Message => {
            while let Some(mut msg) = pipe::read_message(|b| server.read_msg(b), &mut buf)? {
                msg.push(b'\n');
                stdin.write_all(&msg)?;
            }
        }
        _ => loop {
            let n = (&*server).read(&mut buf)?;
            if n == 0 {
                break;
            }
            stdin.write_all(&buf[..n])?;
        },
    }
    Ok(())
}

/// A pseudo-terminal in raw mode (no newline translation, no echo): the
/// master, and the slave for the child's stdout.
fn raw_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::OpenptFlags;
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let path = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        path.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut t = rustix::termios::tcgetattr(&slave)?;
    t.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t)?;
    Ok((master, slave))
}

/// The master side of the child's terminal: once every slave is closed
/// Linux answers reads with EIO, which here is the end of the output.
struct Terminal(File);

impl Read for Terminal {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            r => r,
        }
    }
}

/// Child's stdout → client, until the child closes its stdout.
fn from_child(server: &NamedPipeServer, mode: PipeMode, stdout: Box<dyn Read + Send>) -> io::Result<()> {
    match mode {
        PipeMode::Message => {
            let mut lines = BufReader::with_capacity(BUF, stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                server.write_msg(&line)?;
            }
        }
        _ => {
            let mut stdout = stdout;
            let mut buf = vec![0u8; BUF];
            loop {
                let n = stdout.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                (&*server).write_all(&buf[..n])?;
            }
        }
    }
}

/// Checks at start that `--exec`'s program can run: an executable file at
/// that path, or on `PATH` for a bare name. `ERROR_FILE_NOT_FOUND (2)`
/// naming it otherwise, before any client is served.
pub(crate) fn check_program(program: &std::ffi::OsStr) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let path = std::path::Path::new(program);
    let found = if program.as_encoded_bytes().contains(&b'/') {
        runnable(path)
    } else {
        std::env::var_os("PATH").is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| runnable(&d.join(path))))
    };
    if found {
        return Ok(());
    }
    Err(crate::error::fail(
        pipeslot::Win32Error::ERROR_FILE_NOT_FOUND,
        format!(
            "--exec: cannot run {}: no such executable{}",
            program.to_string_lossy(),
            if program.as_encoded_bytes().contains(&b'/') {
                ""
            } else {
                " on PATH"
            }
        ),
    ))
}
