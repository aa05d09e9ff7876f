//! Raw Unix datagram sockets: what a local mailslot rides on. The reader
//! binds a path; each writer sends one datagram per message.

use std::io;
use std::os::unix::net::UnixDatagram;

use crate::link::Link;
use crate::peer::{Control, PeerSpec};

/// Binds the reader, says `READY`.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
    let s = UnixDatagram::bind(&spec.addr)?;
    super::unix::tune(&s, spec.buffer)?;
    ctl.ready()?;
    Ok(Box::new(Datagram(s)))
}

/// A writer connected to the reader's path.
pub(crate) fn connect(spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
    let s = UnixDatagram::unbound()?;
    super::unix::tune(&s, spec.buffer)?;
    s.connect(&spec.addr)?;
    Ok(Box::new(Datagram(s)))
}

struct Datagram(UnixDatagram);

impl Link for Datagram {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.send(msg).map(drop)
    }

    /// Datagram sockets see no close; the reader counts messages instead.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.0.recv(buf).map(Some)
    }
}
