//! The shared-memory path as the fuzz target `shm_ring` drives it: two
//! ends of one real segment (memfd, eventfds, a socket pair), every call
//! non-blocking, and a way to scribble on the shared bytes between calls
//! as a hostile peer would. Not part of the API (feature `fuzzing`).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::path::{ShmPath, Wait};
use super::segment;
use crate::pipe::frame::MsgEnd;

/// Both ends of one connection in shared memory.
#[derive(Debug)]
pub struct ShmPair {
    ends: [ShmPath; 2],
    socks: [UnixStream; 2],
}

const NOW: Wait = Wait { block: false };

/// How a message read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The message is complete.
    Complete,
    /// The buffer filled and the message goes on.
    More,
    /// The peer closed at a boundary.
    Eof,
    /// Part of a message came and the rest has not yet (a non-blocking
    /// read's `WouldBlock` with bytes filled: they are consumed, and the
    /// front ends keep them for the next call).
    Partial,
}

impl ShmPair {
    /// A connection of a message (`framed`) or byte pipe with these
    /// buffer sizes (the server's out and in).
    pub fn new(framed: bool, out_buffer: u32, in_buffer: u32) -> io::Result<ShmPair> {
        let server = segment::create(out_buffer, in_buffer)?;
        let client = segment::adopt(server.give_owned()?, out_buffer, in_buffer)?;
        let (a, b) = UnixStream::pair()?;
        Ok(ShmPair {
            ends: [
                ShmPath::new(server, framed, "fuzz-server".into()),
                ShmPath::new(client, framed, "fuzz-client".into()),
            ],
            socks: [a, b],
        })
    }

    /// End 0 is the server's, 1 the client's.
    pub fn write(&self, end: usize, data: &[u8], nowait: bool) -> io::Result<usize> {
        let e = end & 1;
        self.ends[e].write(self.socks[e].as_fd(), data, NOW, nowait)
    }

    /// A message read into `buf`: how it ended and how much it filled.
    pub fn read_message(&self, end: usize, buf: &mut [u8]) -> io::Result<(Read, usize)> {
        let e = end & 1;
        let mut filled = 0;
        let r = match self.ends[e].read_message(self.socks[e].as_fd(), buf, &mut filled, NOW) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok((Read::Partial, filled)),
            r => r?,
        };
        let r = match r {
            MsgEnd::Complete => Read::Complete,
            MsgEnd::More => Read::More,
            MsgEnd::Eof => Read::Eof,
        };
        Ok((r, filled))
    }

    /// A byte read.
    pub fn read_bytes(&self, end: usize, buf: &mut [u8]) -> io::Result<usize> {
        let e = end & 1;
        self.ends[e].read_bytes(self.socks[e].as_fd(), buf, NOW)
    }

    /// PeekNamedPipe: (read, available, left in message).
    pub fn peek(&self, end: usize, buf: &mut [u8]) -> io::Result<(usize, usize, usize)> {
        let e = end & 1;
        let p = self.ends[e].peek(self.socks[e].as_fd(), buf)?;
        Ok((p.read, p.available, p.left_in_message))
    }

    /// One look of FlushFileBuffers (never waits).
    pub fn flush_now(&self, end: usize) -> io::Result<bool> {
        let e = end & 1;
        self.ends[e].flush(self.socks[e].as_fd(), Some(Duration::ZERO))
    }

    /// Whether a message waits unread at `end` (transact's look).
    pub fn unread_here(&self, end: usize) -> io::Result<bool> {
        self.ends[end & 1].unread_here()
    }

    /// Whether part of a message `end` wrote is still to go into the ring
    /// (a non-blocking write accepted a message larger than the ring).
    pub fn has_pending(&self, end: usize) -> bool {
        self.ends[end & 1].has_pending()
    }

    /// Moves what fits of `end`'s pending message into the ring.
    pub fn drain_pending(&self, end: usize) -> io::Result<()> {
        let e = end & 1;
        self.ends[e].drain_pending(self.socks[e].as_fd())
    }

    /// The server disconnects the client.
    pub fn disconnect(&self) {
        self.ends[0].disconnect();
    }

    /// The segment's size.
    pub fn segment_len(&self) -> usize {
        self.ends[0].segment_len()
    }

    /// A hostile peer's write of `bytes` at `offset` (taken modulo the
    /// segment's size) straight into the shared memory.
    pub fn scribble(&self, offset: usize, bytes: &[u8]) {
        let len = self.segment_len();
        let at = offset % len;
        let n = bytes.len().min(len - at);
        self.ends[0].scribble(at, &bytes[..n]);
    }
}
