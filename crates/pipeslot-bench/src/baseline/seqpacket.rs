//! Raw Unix `SOCK_SEQPACKET` sockets: the kernel keeps message boundaries
//! (but truncates a message longer than the reader's buffer).

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketType};

use crate::link::Link;
use crate::peer::{Control, PeerSpec};

fn socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None)?)
}

/// Binds, says `READY`, accepts one client.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
    let l = socket()?;
    rustix::net::bind(&l, &SocketAddrUnix::new(spec.addr.as_str())?)?;
    rustix::net::listen(&l, 128)?;
    ctl.ready()?;
    let fd = rustix::net::accept(&l)?;
    super::unix::tune(&fd, spec.buffer)?;
    Ok(Box::new(SeqPacket(fd)))
}

/// Connects to the peer.
pub(crate) fn connect(spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
    let fd = socket()?;
    super::unix::tune(&fd, spec.buffer)?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(spec.addr.as_str())?)?;
    Ok(Box::new(SeqPacket(fd)))
}

struct SeqPacket(OwnedFd);

impl Link for SeqPacket {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        loop {
            match rustix::net::send(&self.0, msg, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match rustix::net::recv(&self.0, &mut *buf, RecvFlags::empty()) {
                Ok((0, _)) => return Ok(None),
                Ok((n, _)) => return Ok(Some(n)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
