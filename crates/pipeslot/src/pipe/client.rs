//! The client half of the local protocol: open, wait and census against the
//! server processes found in a pipe's folder.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pipeslot_proto::wire::local::{hello_flags, Hello, Reply, ReplyStatus, Request, REPLY_LEN};
use pipeslot_proto::PipeName;
use rustix::event::{PollFd, PollFlags};

use crate::error::{err, Win32Error};
use crate::ns::{self, Kind, Namespace};
use crate::pipe::acceptor;

/// How long a live server process may take to answer a hello.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// How often a wait looks for server processes that started meanwhile.
const RESCAN: Duration = Duration::from_millis(50);

/// The folder of a local pipe, or the "remote pipes come later" error.
pub(crate) fn pipe_dir(name: &PipeName) -> io::Result<PathBuf> {
    if !name.is_local() {
        return Err(err(
            Win32Error::ERROR_NOT_SUPPORTED,
            format!("{name} is on another machine; remote pipes (SMB2) are not available in this version"),
        ));
    }
    Namespace::from_env().object_dir(Kind::Pipe, name.folded(), false)
}

/// Why one server socket did not give us the pipe.
enum Attempt {
    Stale,
    Answered(UnixStream, Reply),
}

fn hello(request: Request, flags: u16, name: &PipeName) -> io::Result<Vec<u8>> {
    Hello {
        request,
        flags,
        pid: std::process::id(),
        name: name.folded().to_owned(),
        extensions: Vec::new(),
    }
    .to_vec()
    .map_err(|e| err(Win32Error::ERROR_INVALID_NAME, format!("{name}: {e}")))
}

/// Connects to one server socket and sends a hello; reads the reply unless
/// `read_reply` is false (a wait reads it later).
fn ask(path: &Path, msg: &[u8], read_reply: bool) -> io::Result<Attempt> {
    let mut s = match ns::connect(path) {
        Ok(s) => s,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENOENT)) => {
            return Ok(Attempt::Stale)
        }
        Err(e) => return Err(e),
    };
    if s.write_all(msg).is_err() {
        return Ok(Attempt::Stale);
    }
    if !read_reply {
        return Ok(Attempt::Answered(s, acceptor::DEAD_REPLY));
    }
    // A live server answers at once; one that is stopped must not hang us.
    let mut b = [0u8; REPLY_LEN];
    let mut have = 0;
    while have < REPLY_LEN {
        let ts = rustix::fs::Timespec::try_from(REPLY_DEADLINE).ok();
        match rustix::event::poll(&mut [PollFd::new(&s, PollFlags::IN)], ts.as_ref()) {
            Ok(0) => return Ok(Attempt::Stale),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        match s.read(&mut b[have..]) {
            Ok(0) | Err(_) => return Ok(Attempt::Stale),
            Ok(n) => have += n,
        }
    }
    match Reply::parse(&b) {
        Ok(r) => Ok(Attempt::Answered(s, r)),
        Err(_) => Ok(Attempt::Stale),
    }
}

/// CreateFile on a pipe name: the first listening instance of any serving
/// process takes us.
pub(crate) fn open(name: &PipeName, read: bool, write: bool) -> io::Result<(OwnedFd, Reply)> {
    let dir = pipe_dir(name)?;
    let mut flags = 0;
    if read {
        flags |= hello_flags::READ;
    }
    if write {
        flags |= hello_flags::WRITE;
    }
    let msg = hello(Request::OPEN, flags, name)?;
    let mut busy = false;
    for sock in ns::sockets(&dir) {
        match ask(&sock, &msg, true)? {
            Attempt::Stale => continue,
            Attempt::Answered(s, r) => match r.status {
                ReplyStatus::ACCEPTED => {
                    if r.in_buffer > 0 {
                        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, r.in_buffer as usize);
                    }
                    return Ok((s.into(), r));
                }
                ReplyStatus::BUSY => busy = true,
                ReplyStatus::ACCESS_DENIED => {
                    return Err(err(
                        Win32Error::ERROR_ACCESS_DENIED,
                        format!("{name} refuses this client (access control, pipe direction or remote client)"),
                    ))
                }
                _ => continue,
            },
        }
    }
    if busy {
        Err(err(
            Win32Error::ERROR_PIPE_BUSY,
            format!("all instances of {name} are busy"),
        ))
    } else {
        Err(ns::not_found(name))
    }
}

/// The answers of every live server process (stale sockets skipped).
pub(crate) fn census(name: &PipeName) -> io::Result<Vec<Reply>> {
    census_dir(name, &pipe_dir(name)?, Census::List)
}

/// Why a census is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Census<'a> {
    /// To describe the pipe (anyone may ask).
    List,
    /// Before creating an instance: skips our own acceptor's socket, removes
    /// stale sockets (the caller holds the folder lock), and asks each
    /// serving process whether this user may add an instance.
    Create { own: Option<&'a Path> },
}

/// Census of a folder: the `CENSUS` (or, for `Create`, `ACCESS_DENIED`)
/// answers of every live serving process.
pub(crate) fn census_dir(name: &PipeName, dir: &Path, why: Census<'_>) -> io::Result<Vec<Reply>> {
    let flags = match why {
        Census::List => 0,
        Census::Create { .. } => hello_flags::CREATE,
    };
    let msg = hello(Request::CENSUS, flags, name)?;
    let mut out = Vec::new();
    for sock in ns::sockets(dir) {
        if let Census::Create { own: Some(own) } = why {
            if own == sock.as_path() {
                continue;
            }
        }
        match ask(&sock, &msg, true)? {
            Attempt::Stale => {
                if matches!(why, Census::Create { .. }) {
                    let _ = std::fs::remove_file(&sock);
                }
            }
            Attempt::Answered(_, r) if matches!(r.status, ReplyStatus::CENSUS | ReplyStatus::ACCESS_DENIED) => {
                out.push(r)
            }
            Attempt::Answered(..) => {}
        }
    }
    Ok(out)
}

/// How long a wait may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTimeout {
    /// NMPWAIT_USE_DEFAULT_WAIT: the timeout the server gave at creation
    /// (0 there means 50 ms).
    Default,
    /// NMPWAIT_WAIT_FOREVER.
    Forever,
    /// This long (zero: just look).
    After(Duration),
}

/// WaitNamedPipe: returns once some instance listens.
pub(crate) fn wait(name: &PipeName, timeout: WaitTimeout) -> io::Result<()> {
    let dir = pipe_dir(name)?;
    let limit = match timeout {
        WaitTimeout::Forever => None,
        WaitTimeout::After(d) => Some(d),
        WaitTimeout::Default => {
            let replies = census(name)?;
            let ms = replies
                .first()
                .map(|r| r.default_timeout_ms)
                .ok_or_else(|| ns::not_found(name))?;
            Some(Duration::from_millis(if ms == 0 { 50 } else { u64::from(ms) }))
        }
    };
    let deadline = limit.map(|d| Instant::now() + d);
    let msg = hello(Request::WAIT, 0, name)?;
    let mut asked: Vec<(PathBuf, UnixStream)> = Vec::new();
    loop {
        // Ask every server process we have not asked yet.
        for sock in ns::sockets(&dir) {
            if asked.iter().any(|(p, _)| *p == sock) {
                continue;
            }
            if let Attempt::Answered(s, _) = ask(&sock, &msg, false)? {
                asked.push((sock, s));
            }
        }
        if asked.is_empty() {
            return Err(ns::not_found(name));
        }
        let now = Instant::now();
        let step = match deadline {
            // Out of time before the answers to our requests were read (always
            // so for a zero timeout, "just look"): look once, synchronously.
            Some(d) if d <= now => {
                if census(name)?.iter().any(|r| r.listening > 0) {
                    return Ok(());
                }
                return Err(timed_out(name));
            }
            Some(d) => (d - now).min(RESCAN),
            None => RESCAN,
        };
        let ts = rustix::fs::Timespec::try_from(step).ok();
        let mut fds: Vec<PollFd<'_>> = asked.iter().map(|(_, s)| PollFd::new(s, PollFlags::IN)).collect();
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        let mut available = false;
        asked.retain_mut(|(_, s)| {
            let r = ready[i];
            i += 1;
            if !r {
                return true;
            }
            let mut b = [0u8; REPLY_LEN];
            if s.read_exact(&mut b).is_ok() {
                if let Ok(reply) = Reply::parse(&b) {
                    available |= reply.status == ReplyStatus::AVAILABLE;
                }
            }
            false
        });
        if available {
            return Ok(());
        }
    }
}

fn timed_out(name: &PipeName) -> io::Error {
    err(
        Win32Error::ERROR_SEM_TIMEOUT,
        format!("no instance of {name} became available before the timeout"),
    )
}
