//! Raw Unix stream sockets: fixed-size messages, or a 4-byte length before
//! each message read through a buffer (the best a hand-rolled framing does).
//! Driven with `send`/`recv`, the cheapest calls on a socket (`read` and
//! `write` take the longer way through the VFS layer).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use rustix::net::{RecvFlags, SendFlags};

use crate::link::Link;
use crate::peer::{Control, PeerSpec};

/// Raises both socket buffers when the case asks for it.
pub(crate) fn tune(fd: impl std::os::fd::AsFd, buffer: usize) -> io::Result<()> {
    if buffer > 0 {
        rustix::net::sockopt::set_socket_send_buffer_size(&fd, buffer)?;
        rustix::net::sockopt::set_socket_recv_buffer_size(&fd, buffer)?;
    }
    Ok(())
}

/// Binds, says `READY`, accepts one client.
pub(crate) fn serve(prefixed: bool, spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
    let listener = UnixListener::bind(&spec.addr)?;
    ctl.ready()?;
    let (s, _) = listener.accept()?;
    tune(&s, spec.buffer)?;
    Ok(link(Sock::from(s), prefixed, spec))
}

/// Connects to the peer.
pub(crate) fn connect(prefixed: bool, spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
    let s = UnixStream::connect(&spec.addr)?;
    tune(&s, spec.buffer)?;
    Ok(link(Sock::from(s), prefixed, spec))
}

/// A connected Unix stream socket read with `recv` and written with `send`.
pub(crate) struct Sock(OwnedFd);

impl From<UnixStream> for Sock {
    fn from(s: UnixStream) -> Sock {
        Sock(s.into())
    }
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::net::recv(&self.0, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(&self.0, buf, SendFlags::NOSIGNAL) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn link(s: Sock, prefixed: bool, spec: &PeerSpec) -> Box<dyn Link> {
    if prefixed {
        Box::new(Prefixed {
            s,
            out: Vec::new(),
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
        })
    } else {
        Box::new(Fixed { s, size: spec.size })
    }
}

/// Messages of one known size: `write_all` and `read_exact`.
pub(crate) struct Fixed<S> {
    pub(crate) s: S,
    pub(crate) size: usize,
}

impl<S: Read + Write> Link for Fixed<S> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.s.write_all(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.s.read_exact(&mut buf[..self.size]) {
            Ok(()) => Ok(Some(self.size)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Length-prefixed messages: one `write` of prefix and payload per
/// message; reads through a 64 KiB buffer, parsed in place.
struct Prefixed {
    s: Sock,
    out: Vec<u8>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Prefixed {
    /// Makes `n` bytes available at `start`; false at a clean end.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            let got = self.s.read(&mut self.buf[self.end..])?;
            if got == 0 {
                return if self.end == self.start {
                    Ok(false)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
            self.end += got;
        }
        Ok(true)
    }
}

impl Link for Prefixed {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let len = u32::try_from(msg.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.out.clear();
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(msg);
        self.s.write_all(&self.out)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.fill(4)? {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.buf[self.start..self.start + 4]);
        let len = u32::from_le_bytes(len) as usize;
        self.start += 4;
        if !self.fill(len)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf[..len].copy_from_slice(&self.buf[self.start..self.start + len]);
        self.start += len;
        Ok(Some(len))
    }
}
