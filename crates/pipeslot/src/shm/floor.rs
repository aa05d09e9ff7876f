//! The floor the shared-memory path is measured against (the bench's
//! `shm-floor` case, feature `bench`; not the API): one slot per direction
//! in a memfd and one eventfd each way. A send copies the message into its
//! slot and rings; a receive sleeps in a blocking read of its eventfd, then
//! copies. No checks, no framing, no liveness: what any shared-memory
//! ping-pong must at least cost on this machine.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

use super::mem::Region;

const SLOT: usize = 64 << 10;
const DATA: usize = 4096;
const LEN: usize = DATA + 2 * SLOT;
/// The length word that says the peer has left.
const BYE: u64 = u64::MAX;

/// One end of a floor connection.
#[derive(Debug)]
pub struct FloorEnd {
    region: Region,
    /// 0: the end that created the segment; 1: the other.
    me: usize,
    bell: OwnedFd,
    peer_bell: OwnedFd,
}

fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?)
}

impl FloorEnd {
    /// The accepting end: makes the segment and sends it over `sock`.
    pub fn serve(sock: &UnixStream) -> io::Result<FloorEnd> {
        let memfd = rustix::fs::memfd_create("pipeslot-floor", rustix::fs::MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&memfd, LEN as u64)?;
        let region = Region::map(memfd.as_fd(), LEN)?;
        let (mine, theirs) = (eventfd()?, eventfd()?);
        let give = [memfd.as_fd(), mine.as_fd(), theirs.as_fd()];
        let sent = crate::pipe::acceptor::send_with_fds(sock, b"F", &give)?;
        if sent != 1 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(FloorEnd {
            region,
            me: 0,
            bell: mine,
            peer_bell: theirs,
        })
    }

    /// The connecting end: takes the segment from `sock`.
    pub fn connect(sock: &UnixStream) -> io::Result<FloorEnd> {
        let mut fds = Vec::new();
        let mut b = [0u8; 1];
        crate::pipe::client::recv_with_fds(sock, &mut b, &mut fds)?;
        let [memfd, theirs, mine]: [OwnedFd; 3] = fds
            .try_into()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        if rustix::fs::fstat(&memfd)?.st_size < LEN as i64 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(FloorEnd {
            region: Region::map(memfd.as_fd(), LEN)?,
            me: 1,
            bell: mine,
            peer_bell: theirs,
        })
    }

    fn slot(&self, of: usize) -> (usize, usize) {
        (of * 64, DATA + of * SLOT)
    }

    /// Copies `msg` (at most 64 KiB) into this end's slot and rings.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        let (len_at, data) = self.slot(self.me);
        let n = msg.len().min(SLOT);
        self.region.write(data, &msg[..n]);
        self.region.u64_at(len_at).store(n as u64, Ordering::Release);
        rustix::io::write(&self.peer_bell, &1u64.to_ne_bytes())?;
        Ok(())
    }

    /// Sleeps until the peer's message comes; its length, or `None` when
    /// the peer said goodbye.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut b = [0u8; 8];
        rustix::io::read(&self.bell, &mut b)?;
        let (len_at, data) = self.slot(1 - self.me);
        let n = self.region.u64_at(len_at).load(Ordering::Acquire);
        if n == BYE {
            return Ok(None);
        }
        let n = (n as usize).min(buf.len()).min(SLOT);
        self.region.read(data, &mut buf[..n]);
        Ok(Some(n))
    }

    /// Tells the peer this end is leaving.
    pub fn bye(&self) -> io::Result<()> {
        let (len_at, _) = self.slot(self.me);
        self.region.u64_at(len_at).store(BYE, Ordering::Release);
        rustix::io::write(&self.peer_bell, &1u64.to_ne_bytes())?;
        Ok(())
    }
}
