//! One connected pipe end: the socket, its framing state and the I/O that
//! both front ends share. Every call is a single attempt on the socket; the
//! blocking front end keeps the socket blocking, the tokio one keeps it
//! non-blocking and retries on readiness.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pipeslot_proto::wire::local::{frame_header, DISCONNECT_FRAME, FRAME_HEADER_LEN, MAX_MESSAGE_LEN};
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::error::{err, err_kind, Error, Win32Error};
use crate::pipe::frame::{FdSource, FrameReader, MsgEnd, Source};
use crate::pipe::{MsgRead, PeekInfo, PipeMode};
use crate::shm::{ShmPath, Wait};
use crate::sys;

/// Messages up to this long are copied behind their header and sent with
/// one `send`; longer ones go out as two iovecs with `sendmsg`.
const SMALL_MESSAGE: usize = 1024;

/// The most messages one [`Conn::write_msgs`] call hands to one `sendmsg`
/// (two iovecs each, within Linux's `IOV_MAX` of 1024).
pub(crate) const MAX_BATCH: usize = 512;

/// The end of a connection: direction rights, framing and state.
#[derive(Debug)]
pub(crate) struct Conn {
    fd: OwnedFd,
    /// Message-type pipe: frames on the wire.
    framed: bool,
    /// Read mode message (`PIPE_READMODE_MESSAGE`).
    read_messages: AtomicBool,
    can_read: bool,
    can_write: bool,
    /// PIPE_NOWAIT (the blocking front end's non-blocking mode): writes
    /// are all or nothing.
    nowait: AtomicBool,
    /// The pipe's buffer in this direction (the writer's side), as configured.
    capacity: usize,
    /// The peer closed with data of ours unread (`ECONNRESET` seen by a
    /// read, which consumes the socket's error): a flush must fail.
    reset: AtomicBool,
    /// A client's end: it watches for the server's disconnect marker.
    client_end: bool,
    /// The socket is non-blocking (tokio, or PIPE_NOWAIT).
    nonblocking: AtomicBool,
    /// tokio's reactor watches it, priority readiness included: reads the
    /// front end makes after checking that readiness (see
    /// [`reactor_checked`]) need no poll for the disconnect marker.
    readiness_watched: AtomicBool,
    /// The server disconnected this client (the marker came).
    disconnected: AtomicBool,
    /// What the peer closing means for us, in error messages.
    name: String,
    rd: Mutex<FrameReader>,
    /// A frame the socket took only part of (non-blocking writes).
    wr: Mutex<Vec<u8>>,
    /// The shared-memory data path, when the handshake chose it: the bytes
    /// go through its rings, and the socket only tells liveness.
    shm: Option<ShmPath>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Before the socket closes (fields drop after this), so that a peer
        // woken by the close finds the flag and fails its writes at once.
        if let Some(shm) = &self.shm {
            shm.mark_closed();
        }
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Conn {
    pub(crate) fn new(
        fd: OwnedFd,
        mode: PipeMode,
        read_mode: PipeMode,
        can_read: bool,
        can_write: bool,
        capacity: u32,
        name: String,
    ) -> Conn {
        Conn {
            fd,
            framed: mode == PipeMode::Message,
            read_messages: AtomicBool::new(read_mode == PipeMode::Message),
            can_read,
            can_write,
            nowait: AtomicBool::new(false),
            capacity: capacity as usize,
            reset: AtomicBool::new(false),
            client_end: false,
            nonblocking: AtomicBool::new(false),
            readiness_watched: AtomicBool::new(false),
            disconnected: AtomicBool::new(false),
            name,
            rd: Mutex::new(FrameReader::default()),
            wr: Mutex::new(Vec::new()),
            shm: None,
        }
    }

    /// Puts the connection's bytes on the shared-memory path.
    pub(crate) fn with_shm(mut self, end: crate::shm::segment::End) -> Conn {
        self.shm = Some(ShmPath::new(end, self.framed, self.name.clone()));
        self
    }

    /// The shared-memory data path, when the connection is on it.
    pub(crate) fn shm(&self) -> Option<&ShmPath> {
        self.shm.as_ref()
    }

    /// How the shared-memory path may wait: as the socket would.
    fn shm_wait(&self) -> Wait {
        Wait {
            block: !self.nonblocking.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        if mode == PipeMode::Message && !self.framed {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{} is a byte pipe: it cannot be read in message mode", self.name),
            ));
        }
        self.read_messages.store(mode == PipeMode::Message, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn read_mode(&self) -> PipeMode {
        if self.read_messages.load(Ordering::Relaxed) {
            PipeMode::Message
        } else {
            PipeMode::Byte
        }
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&self.fd, on)?;
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// PIPE_NOWAIT: non-blocking, and a write that does not fit the pipe's
    /// buffer writes nothing (Win32 reports 0 bytes written).
    pub(crate) fn set_nowait(&self, on: bool) -> io::Result<()> {
        self.nowait.store(on, Ordering::Relaxed);
        self.set_nonblocking(on)
    }

    /// `ERROR_ACCESS_DENIED` unless this end may read: checked before any
    /// wait, since data can never come for an end that may not read.
    pub(crate) fn check_read(&self) -> io::Result<()> {
        if self.can_read {
            return Ok(());
        }
        Err(err(
            Win32Error::ERROR_ACCESS_DENIED,
            format!("this end of {} may not read (the pipe's access forbids it)", self.name),
        ))
    }

    /// `ERROR_ACCESS_DENIED` unless this end may write.
    pub(crate) fn check_write(&self) -> io::Result<()> {
        if self.can_write {
            return Ok(());
        }
        Err(err(
            Win32Error::ERROR_ACCESS_DENIED,
            format!("this end of {} may not write (the pipe's access forbids it)", self.name),
        ))
    }

    fn read_error(&self, e: io::Error) -> io::Error {
        match e.raw_os_error() {
            Some(libc::ECONNRESET) => {
                self.reset.store(true, Ordering::Relaxed);
                self.broken()
            }
            _ if e.kind() == io::ErrorKind::WouldBlock => e,
            _ => Error::from_io(&e, format!("reading {}", self.name)).into(),
        }
    }

    fn broken(&self) -> io::Error {
        err(
            Win32Error::ERROR_BROKEN_PIPE,
            format!("the other end of {} has closed", self.name),
        )
    }

    /// `io::Read`: `Ok(0)` only at the end. In message read mode a call
    /// returns at most one message (or its next part).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.check_read()?;
        if let Some(shm) = &self.shm {
            return self.shm_read(shm, buf);
        }
        if !self.framed {
            let r = self.source().read(buf);
            return self.byte_result(r);
        }
        let mut rd = lock(&self.rd);
        self.gate_buffered(&mut rd)?;
        let mut src = self.source();
        if !self.read_messages.load(Ordering::Relaxed) {
            let r = rd.read_bytes(&mut src, buf);
            return r.map_err(|e| self.framed_error(&mut rd, e));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut filled = 0;
            let end = match rd.read_message(&mut src, buf, &mut filled) {
                // Part of a message arrived: hand it over; the rest follows.
                Err(e) if filled > 0 && crate::error::is_retry(&e) => return Ok(filled),
                Ok(end) => end,
                Err(e) => return Err(self.framed_error(&mut rd, e)),
            };
            match end {
                MsgEnd::Eof => return Ok(0),
                // A zero-length message cannot be told from the end in io::Read.
                MsgEnd::Complete if filled == 0 => continue,
                MsgEnd::Complete | MsgEnd::More => return Ok(filled),
            }
        }
    }

    fn shm_read(&self, shm: &ShmPath, buf: &mut [u8]) -> io::Result<usize> {
        if !self.framed || !self.read_messages.load(Ordering::Relaxed) {
            return shm.read_bytes(self.fd.as_fd(), buf, self.shm_wait());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut filled = 0;
            match shm.read_message(self.fd.as_fd(), buf, &mut filled, self.shm_wait()) {
                Err(e) if filled > 0 && crate::error::is_retry(&e) => return Ok(filled),
                Err(e) => return Err(e),
                Ok(MsgEnd::Eof) => return Ok(0),
                // A zero-length message cannot be told from the end in io::Read.
                Ok(MsgEnd::Complete) if filled == 0 => continue,
                Ok(_) => return Ok(filled),
            }
        }
    }

    /// `io::Read`'s view of [`read`](Self::read): the end of the stream,
    /// whether the peer closed or the server disconnected, is `Ok(0)` (the
    /// std and tokio convention, DESIGN §1); what was discarded stays
    /// discarded. Win32-shaped calls (`read_msg`, writes, peek, flush) say
    /// `ERROR_PIPE_NOT_CONNECTED` after a disconnect.
    pub(crate) fn read_stream(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.read(buf) {
            Err(e)
                if (self.disconnected.load(Ordering::Relaxed)
                    || self.shm.as_ref().is_some_and(|s| s.disconnected()))
                    && Error::win32(&e) == Some(Win32Error::ERROR_PIPE_NOT_CONNECTED) =>
            {
                Ok(0)
            }
            r => r,
        }
    }

    /// The socket, as the frame reader and byte reads see it: on a client's
    /// end every read first asks `poll` whether the server's disconnect
    /// marker came (see [`send_disconnect`](Self::send_disconnect)), so that
    /// no read, blocked or not, ever consumes it unseen.
    fn source(&self) -> Gated<'_> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        Gated {
            fd: FdSource(self.fd.as_fd()),
            watch: self.client_end.then_some(&self.disconnected),
            wait: !nonblocking,
            reactor: nonblocking && self.readiness_watched.load(Ordering::Relaxed),
        }
    }

    /// The end of a byte read: the peer's close is `Ok(0)`.
    fn byte_result(&self, r: io::Result<usize>) -> io::Result<usize> {
        match r {
            Err(e) if self.disconnected.load(Ordering::Relaxed) => {
                drop(e);
                Err(self.discard())
            }
            Err(e) => {
                let e = self.read_error(e);
                if Error::win32(&e) == Some(Win32Error::ERROR_BROKEN_PIPE) {
                    return Ok(0);
                }
                Err(e)
            }
            ok => ok,
        }
    }

    /// An error from the frame reader: a disconnect drops what it holds too.
    fn framed_error(&self, rd: &mut FrameReader, e: io::Error) -> io::Error {
        if self.client_end && Error::win32(&e) == Some(Win32Error::ERROR_PIPE_NOT_CONNECTED) {
            self.disconnected.store(true, Ordering::Relaxed);
        }
        if self.disconnected.load(Ordering::Relaxed) {
            *rd = FrameReader::default();
            return self.discard();
        }
        self.read_error(e)
    }

    /// Before a client's read hands over bytes the reader took earlier: a
    /// server that disconnected since makes them void.
    fn gate_buffered(&self, rd: &mut FrameReader) -> io::Result<()> {
        if !self.client_end {
            return Ok(());
        }
        if self.disconnected.load(Ordering::Relaxed) || (rd.has_buffered() && marker_pending(&self.fd)) {
            self.disconnected.store(true, Ordering::Relaxed);
            *rd = FrameReader::default();
            return Err(self.discard());
        }
        Ok(())
    }

    /// `readv`: the buffers are filled in turn. In message read mode a call
    /// reads at most one message (or its next part) across them, as
    /// [`read`](Self::read) does into one buffer.
    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.check_read()?;
        if !self.framed && self.shm.is_none() {
            let r = self.source().readv(bufs);
            return match self.byte_result(r) {
                Err(_) if self.disconnected.load(Ordering::Relaxed) => Ok(0),
                r => r,
            };
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut one = vec![0u8; total];
        let n = self.read_stream(&mut one)?;
        let mut from = &one[..n];
        for b in bufs.iter_mut() {
            let k = b.len().min(from.len());
            b[..k].copy_from_slice(&from[..k]);
            from = &from[k..];
        }
        Ok(n)
    }

    /// `writev`: byte pipes send the buffers in turn; on a message pipe they
    /// are one message.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.check_write()?;
        if self.framed || self.shm.is_some() {
            let msg: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            return self.write(&msg);
        }
        self.drain_pending()?;
        self.send(bufs)
    }

    /// TransactNamedPipe's look before it writes, one `poll` for both of
    /// its rules: a message waiting unread (`ERROR_PIPE_BUSY`), and, on a
    /// client, a server that disconnected (`ERROR_PIPE_NOT_CONNECTED`).
    pub(crate) fn transact_gate(&self) -> io::Result<()> {
        if self.disconnected.load(Ordering::Relaxed) {
            return Err(self.not_connected());
        }
        if let Some(shm) = &self.shm {
            if shm.unread_here()? {
                return Err(err(
                    Win32Error::ERROR_PIPE_BUSY,
                    format!(
                        "a message waits unread on {}: read it before a transact (nothing was written)",
                        self.name
                    ),
                ));
            }
            return Ok(());
        }
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN | rustix::event::PollFlags::PRI,
        )];
        let _ = rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 }));
        let got = fds[0].revents();
        if self.client_end && got.contains(rustix::event::PollFlags::PRI) {
            return self.check_disconnect();
        }
        let unread =
            got.contains(rustix::event::PollFlags::IN) && rustix::io::ioctl_fionread(&self.fd).unwrap_or(0) > 0;
        if unread || self.has_buffered() {
            return Err(err(
                Win32Error::ERROR_PIPE_BUSY,
                format!(
                    "a message waits unread on {}: read it before a transact (nothing was written)",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// True when the frame reader holds bytes, so a read will not block.
    pub(crate) fn has_buffered(&self) -> bool {
        if let Some(shm) = &self.shm {
            return shm.unread_here().unwrap_or(true);
        }
        self.framed && lock(&self.rd).has_buffered()
    }

    /// Win32's message read: the next message (or its next part) into `buf`,
    /// `more` set when it continues (`ERROR_MORE_DATA`). The end of the pipe is
    /// `ERROR_BROKEN_PIPE`. `filled` carries progress across `WouldBlock`.
    pub(crate) fn read_msg(&self, buf: &mut [u8], filled: &mut usize) -> io::Result<MsgRead> {
        self.read_msg_gated(buf, filled, true)
    }

    /// [`read_msg`](Self::read_msg), after [`transact_gate`](Self::transact_gate)
    /// looked already: the socket is not asked again before the reply (a
    /// disconnect while it is awaited comes as the disconnect frame).
    pub(crate) fn read_reply(&self, buf: &mut [u8], filled: &mut usize) -> io::Result<MsgRead> {
        self.read_msg_gated(buf, filled, false)
    }

    fn read_msg_gated(&self, buf: &mut [u8], filled: &mut usize, gate: bool) -> io::Result<MsgRead> {
        self.check_read()?;
        if !self.framed || !self.read_messages.load(Ordering::Relaxed) {
            let n = self.read(buf)?;
            if n == 0 && !buf.is_empty() {
                return Err(self.broken());
            }
            return Ok(MsgRead { len: n, more: false });
        }
        if let Some(shm) = &self.shm {
            let end = shm.read_message(self.fd.as_fd(), buf, filled, self.shm_wait())?;
            return self.msg_read(end, *filled);
        }
        let mut rd = lock(&self.rd);
        self.gate_buffered(&mut rd)?;
        let mut src = self.source();
        if !gate {
            src.watch = None;
        }
        let r = rd.read_message(&mut src, buf, filled);
        let end = r.map_err(|e| self.framed_error(&mut rd, e))?;
        self.msg_read(end, *filled)
    }

    /// How a message read ended, as ReadFile says it.
    fn msg_read(&self, end: MsgEnd, filled: usize) -> io::Result<MsgRead> {
        match end {
            MsgEnd::Eof => Err(self.broken()),
            MsgEnd::Complete => Ok(MsgRead {
                len: filled,
                more: false,
            }),
            MsgEnd::More => Ok(MsgRead {
                len: filled,
                more: true,
            }),
        }
    }

    fn write_error(&self, e: rustix::io::Errno) -> io::Error {
        match e {
            rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET if self.check_disconnect().is_err() => {
                self.not_connected()
            }
            rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET => err(
                Win32Error::ERROR_NO_DATA,
                format!("the other end of {} has closed: nothing can be written", self.name),
            ),
            rustix::io::Errno::AGAIN => io::Error::from(io::ErrorKind::WouldBlock),
            e => Error::from_io(&e.into(), format!("writing to {}", self.name)).into(),
        }
    }

    /// One contiguous buffer: a plain `send`, cheaper in the kernel than
    /// `sendmsg`.
    fn send_one(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(&self.fd, buf, SendFlags::NOSIGNAL) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    fn send(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            let mut control = SendAncillaryBuffer::default();
            match rustix::net::sendmsg(&self.fd, iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(self.write_error(e)),
            }
        }
    }

    /// Sends what an earlier non-blocking write left behind.
    pub(crate) fn drain_pending(&self) -> io::Result<()> {
        if let Some(shm) = &self.shm {
            return shm.drain_pending(self.fd.as_fd());
        }
        let mut wr = lock(&self.wr);
        while !wr.is_empty() {
            let n = self.send_one(&wr)?;
            wr.drain(..n);
        }
        Ok(())
    }

    /// A client end whose server disconnected: `ERROR_PIPE_NOT_CONNECTED`.
    fn not_connected(&self) -> io::Error {
        err(
            Win32Error::ERROR_PIPE_NOT_CONNECTED,
            format!(
                "the server of {} disconnected this client (what it had not read is gone)",
                self.name
            ),
        )
    }

    /// Marks this end as a client's: it watches for its server's disconnect.
    pub(crate) fn watch_disconnect(&mut self) {
        self.client_end = true;
    }

    /// A client's end (it watches for its server's disconnect).
    pub(crate) fn is_client_end(&self) -> bool {
        self.client_end
    }

    /// See `readiness_watched`.
    pub(crate) fn set_readiness_watched(&self) {
        self.readiness_watched.store(true, Ordering::Relaxed);
    }

    /// The reactor saw priority readiness on a client's end: the server's
    /// disconnect marker is there.
    pub(crate) fn note_marker(&self) {
        if self.client_end {
            self.disconnected.store(true, Ordering::Relaxed);
        }
    }

    /// DisconnectNamedPipe, on the server's connection before it closes:
    /// one out-of-band byte, which the client sees (`POLLPRI`) ahead of
    /// anything still queued, so it can drop that and answer 233, as Win32.
    pub(crate) fn send_disconnect(&self) {
        if let Some(shm) = &self.shm {
            // The flag, then the caller's shutdown wakes a sleeping client.
            shm.disconnect();
            return;
        }
        if self.framed {
            // Last in the stream, for a reader waiting on an empty pipe.
            let wr = lock(&self.wr);
            if wr.is_empty() {
                let _ = rustix::net::send(&self.fd, &DISCONNECT_FRAME, SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
            }
        }
        let flags = SendFlags::OOB | SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        if rustix::net::send(&self.fd, b"D", flags).is_err() {
            // A full socket: room for one byte more, and once again.
            if let Ok(n) = rustix::net::sockopt::socket_send_buffer_size(&self.fd) {
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(&self.fd, n + 4096);
            }
            let _ = rustix::net::send(&self.fd, b"D", flags);
        }
    }

    /// On a client end: `ERROR_PIPE_NOT_CONNECTED` once the server has
    /// disconnected (its marker came), dropping what is queued.
    pub(crate) fn check_disconnect(&self) -> io::Result<()> {
        if !self.client_end {
            return Ok(());
        }
        if let Some(shm) = &self.shm {
            if shm.disconnected() {
                return Err(shm.not_connected());
            }
            return Ok(());
        }
        if self.disconnected.load(Ordering::Relaxed) || marker_pending(&self.fd) {
            self.disconnected.store(true, Ordering::Relaxed);
            *lock(&self.rd) = FrameReader::default();
            return Err(self.discard());
        }
        Ok(())
    }

    /// Drops what the server sent before it disconnected (Win32 discards
    /// it); the error every later call gets.
    fn discard(&self) -> io::Error {
        let mut scratch = [0u8; 8192];
        while let Ok((n, _)) = rustix::net::recv(&self.fd, &mut scratch, RecvFlags::DONTWAIT) {
            if n == 0 {
                break;
            }
        }
        self.not_connected()
    }

    /// Writes one message (message pipes) or bytes (byte pipes). Blocking
    /// sockets: returns when the kernel holds all of it. Non-blocking: a
    /// message the socket takes only part of is finished from a buffer by
    /// later calls, so the caller sees one message accepted whole.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        self.check_write()?;
        if let Some(shm) = &self.shm {
            let nowait = self.nowait.load(Ordering::Relaxed);
            return shm.write(self.fd.as_fd(), data, self.shm_wait(), nowait);
        }
        let mut wr = lock(&self.wr);
        while !wr.is_empty() {
            let n = self.send_one(&wr)?;
            wr.drain(..n);
        }
        let hlen = if self.framed { FRAME_HEADER_LEN } else { 0 };
        if self.nowait.load(Ordering::Relaxed) && !data.is_empty() && !self.fits(hlen + data.len()) {
            return Ok(0); // Win32's PIPE_NOWAIT: nothing written, nothing queued
        }
        if !self.framed {
            return self.send_one(data);
        }
        if data.is_empty() {
            return self.write_empty_message(&mut wr);
        }
        if data.len() > MAX_MESSAGE_LEN {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("a message to {} is longer than 2 GiB - 1", self.name),
            ));
        }
        let hdr = frame_header(data.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let total = FRAME_HEADER_LEN + data.len();
        let sent = if data.len() <= SMALL_MESSAGE {
            // Header and payload side by side: one plain send.
            let mut one = [0u8; FRAME_HEADER_LEN + SMALL_MESSAGE];
            one[..FRAME_HEADER_LEN].copy_from_slice(&hdr);
            one[FRAME_HEADER_LEN..total].copy_from_slice(data);
            self.send_one(&one[..total])?
        } else {
            self.send(&[IoSlice::new(&hdr), IoSlice::new(data)])?
        };
        if sent < total {
            self.finish_frame(&mut wr, &hdr, data, sent)?;
        }
        Ok(data.len())
    }

    /// Whether `len` more bytes fit the pipe's buffer now: what the peer
    /// has not taken yet plus `len` within the configured size. The
    /// kernel counts its own overhead in what is queued, so this errs on
    /// the side of "does not fit".
    fn fits(&self, len: usize) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let queued = sys::unread_by_peer(self.fd.as_fd()).unwrap_or(0);
        len <= self.capacity && (queued == 0 || queued + len <= self.capacity)
    }

    /// A zero-length message never waits for room (Win32): its header goes
    /// now if the socket takes it, else ahead of the next write.
    fn write_empty_message(&self, wr: &mut Vec<u8>) -> io::Result<usize> {
        let hdr = frame_header(0).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let sent = loop {
            match rustix::net::send(&self.fd, &hdr, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => break 0,
                Err(e) => return Err(self.write_error(e)),
            }
        };
        wr.extend_from_slice(&hdr[sent..]);
        Ok(0)
    }

    /// Sends the rest of a frame the socket took only `sent` bytes of; what
    /// a non-blocking socket will not take now goes to the pending buffer,
    /// so the frame is never cut.
    fn finish_frame(&self, wr: &mut Vec<u8>, hdr: &[u8], data: &[u8], mut sent: usize) -> io::Result<()> {
        let total = hdr.len() + data.len();
        while sent < total {
            let (h, d) = if sent < hdr.len() {
                (&hdr[sent..], data)
            } else {
                (&hdr[..0], &data[sent - hdr.len()..])
            };
            match self.send(&[IoSlice::new(h), IoSlice::new(d)]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wr.extend_from_slice(h);
                    wr.extend_from_slice(d);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes several messages (message pipes) or byte runs (byte pipes)
    /// with one `sendmsg` per up to [`MAX_BATCH`] of them: the batch path
    /// for many small messages. Returns how many were accepted, each whole:
    /// as in [`write`](Self::write), one the socket took only part of
    /// (non-blocking) is finished from the pending buffer by later calls.
    /// Blocking sockets take all of the first `MAX_BATCH` at once.
    pub(crate) fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<usize> {
        self.check_write()?;
        if let Some(shm) = &self.shm {
            let nowait = self.nowait.load(Ordering::Relaxed);
            let msgs = &msgs[..msgs.len().min(MAX_BATCH)];
            return shm.write_msgs(self.fd.as_fd(), msgs, self.shm_wait(), nowait);
        }
        let mut wr = lock(&self.wr);
        while !wr.is_empty() {
            let n = self.send_one(&wr)?;
            wr.drain(..n);
        }
        let msgs = &msgs[..msgs.len().min(MAX_BATCH)];
        if msgs.is_empty() {
            return Ok(0);
        }
        let mut hdrs = [[0u8; FRAME_HEADER_LEN]; MAX_BATCH];
        if self.framed {
            for (h, m) in hdrs.iter_mut().zip(msgs) {
                if m.len() > MAX_MESSAGE_LEN {
                    return Err(err(
                        Win32Error::ERROR_INVALID_PARAMETER,
                        format!("a message to {} is longer than 2 GiB - 1", self.name),
                    ));
                }
                *h = frame_header(m.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            }
        }
        let hlen = if self.framed { FRAME_HEADER_LEN } else { 0 };
        let mut iov = [IoSlice::new(&[]); 2 * MAX_BATCH];
        for (i, m) in msgs.iter().enumerate() {
            iov[2 * i] = IoSlice::new(&hdrs[i][..hlen]);
            iov[2 * i + 1] = IoSlice::new(m);
        }
        let mut sent = self.send(&iov[..2 * msgs.len()])?;
        // Whole messages sent, then the one the socket took only part of.
        let mut done = 0;
        while done < msgs.len() && sent >= hlen + msgs[done].len() {
            sent -= hlen + msgs[done].len();
            done += 1;
        }
        if done == msgs.len() || (sent == 0 && done > 0) {
            return Ok(done);
        }
        self.finish_frame(&mut wr, &hdrs[done][..hlen], msgs[done], sent)?;
        Ok(done + 1)
    }

    /// PeekNamedPipe: copies what is readable without consuming it.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
        self.check_read()?;
        if let Some(shm) = &self.shm {
            return shm.peek(self.fd.as_fd(), buf);
        }
        self.check_disconnect()?;
        let queued = rustix::io::ioctl_fionread(&self.fd).unwrap_or(0) as usize;
        let mut sock = vec![0u8; queued];
        let peeked = if queued > 0 {
            match rustix::net::recv(&self.fd, &mut sock[..], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
                Ok((_, n)) => n,
                Err(rustix::io::Errno::AGAIN) => 0,
                Err(e) => return Err(self.read_error(e.into())),
            }
        } else {
            0
        };
        sock.truncate(peeked);
        if !self.framed {
            if peeked == 0 && self.peer_closed() {
                return Err(self.broken());
            }
            let n = buf.len().min(peeked);
            buf[..n].copy_from_slice(&sock[..n]);
            return Ok(PeekInfo {
                read: n,
                available: peeked,
                left_in_message: 0,
            });
        }
        let rd = lock(&self.rd);
        let (hdr, left, spill) = rd.pending();
        let mut bytes = Vec::with_capacity(hdr.len() + spill.len() + sock.len());
        bytes.extend_from_slice(hdr);
        bytes.extend_from_slice(spill);
        bytes.extend_from_slice(&sock);
        let info = peek_frames(&bytes, left.filter(|&l| l > 0), buf);
        if info.available == 0 && info.left_in_message == 0 && self.peer_closed() && left.is_none() {
            return Err(self.broken());
        }
        Ok(info)
    }

    /// Whether the peer has closed its end (nothing more can come; what it
    /// wrote may still be queued).
    pub(crate) fn peer_gone(&self) -> bool {
        if let Some(shm) = &self.shm {
            return shm.peer_gone(self.fd.as_fd());
        }
        let mut fds = [rustix::event::PollFd::new(&self.fd, rustix::event::PollFlags::RDHUP)];
        let _ = rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 }));
        fds[0]
            .revents()
            .intersects(rustix::event::PollFlags::HUP | rustix::event::PollFlags::RDHUP)
    }

    fn peer_closed(&self) -> bool {
        let mut one = [0u8; 1];
        matches!(
            rustix::net::recv(&self.fd, &mut one[..], RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Ok((_, 0)) | Err(rustix::io::Errno::CONNRESET)
        )
    }

    /// Bytes the peer has not yet taken out of the kernel.
    pub(crate) fn unread_by_peer(&self) -> io::Result<usize> {
        if let Some(shm) = &self.shm {
            return shm.unread_by_peer();
        }
        sys::unread_by_peer(self.fd.as_fd())
    }

    /// FlushFileBuffers: one step. `Ok(true)` when the peer has read
    /// everything; `Ok(false)` to try again after `backoff`. A peer that
    /// closed with data of ours unread is `ERROR_BROKEN_PIPE` (the kernel
    /// drops its queue, so "nothing unread" alone would look like success);
    /// one that read everything and closed lets the flush succeed, as Win32.
    pub(crate) fn flush_step(&self) -> io::Result<bool> {
        self.check_disconnect()?;
        if let Some(shm) = &self.shm {
            return shm.flush(self.fd.as_fd(), Some(Duration::ZERO));
        }
        let pending = match self.drain_pending() {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_NO_DATA) => return Err(self.flush_broken()),
            Err(e) => return Err(e),
        };
        let mut fds = [rustix::event::PollFd::new(&self.fd, rustix::event::PollFlags::empty())];
        let _ = rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 }));
        let revents = fds[0].revents();
        if revents.contains(rustix::event::PollFlags::ERR) || self.reset.load(Ordering::Relaxed) {
            return Err(self.flush_broken());
        }
        if pending {
            return Ok(false);
        }
        Ok(self.unread_by_peer()? == 0)
    }

    fn flush_broken(&self) -> io::Error {
        flush_broken(&self.name)
    }

    /// Blocks until the peer has read everything written so far, or until
    /// `limit` passes (`Ok(false)`).
    pub(crate) fn flush_blocking(&self, limit: Option<Duration>) -> io::Result<bool> {
        if let Some(shm) = &self.shm {
            self.check_disconnect()?;
            return shm.flush(self.fd.as_fd(), limit);
        }
        let deadline = limit.map(|d| std::time::Instant::now() + d);
        let mut backoff = Duration::from_micros(20);
        while !self.flush_step()? {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(5));
        }
        Ok(true)
    }

    /// The nowait flavour of "nothing to read": `WouldBlock` with `ERROR_NO_DATA`.
    pub(crate) fn no_data(&self) -> io::Error {
        err_kind(
            io::ErrorKind::WouldBlock,
            Win32Error::ERROR_NO_DATA,
            format!("nothing to read on {} (non-blocking)", self.name),
        )
    }
}

/// A flush whose reader closed with data unread (both data paths).
pub(crate) fn flush_broken(name: &str) -> io::Error {
    err(
        Win32Error::ERROR_BROKEN_PIPE,
        format!("the other end of {name} closed before reading everything written to it"),
    )
}

/// Whether the server's disconnect marker (an out-of-band byte) waits.
fn marker_pending(fd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::PRI)];
    let _ = rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 }));
    fds[0].revents().contains(rustix::event::PollFlags::PRI)
}

/// The socket seen through the disconnect gate: on a client's end, each
/// read first waits in `poll` for data *or* the marker (a read blocked in
/// the kernel would drop an out-of-band byte it meets). The marker sets
/// the connection's `disconnected` flag and fails the read.
struct Gated<'a> {
    fd: FdSource<'a>,
    watch: Option<&'a AtomicBool>,
    /// Blocking socket: `poll` waits as the read would have.
    wait: bool,
    /// tokio's reactor watches the socket; if this read comes right after
    /// a readiness check that included priority, the flag says it all.
    reactor: bool,
}

thread_local! {
    static REACTOR_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (one non-blocking attempt of the tokio front end) telling the
/// reads in it that priority readiness was just checked.
pub(crate) fn reactor_checked<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            REACTOR_CHECKED.with(|c| c.set(false));
        }
    }
    REACTOR_CHECKED.with(|c| c.set(true));
    let _reset = Reset;
    f()
}

impl Gated<'_> {
    fn gate(&self) -> io::Result<()> {
        let Some(flag) = self.watch else { return Ok(()) };
        if flag.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if self.reactor && REACTOR_CHECKED.with(|c| c.get()) {
            return Ok(());
        }
        use rustix::event::{PollFd, PollFlags};
        // A look, never a wait: a blocking read that then waits on an empty
        // pipe may lose the marker, but has nothing to discard, and the
        // disconnect frame that follows the marker on message pipes (or the
        // end of the stream on byte pipes) ends it.
        let mut fds = [PollFd::new(&self.fd.0, PollFlags::IN | PollFlags::PRI)];
        let zero = rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 };
        let _ = rustix::event::poll(&mut fds, Some(&zero));
        let got = fds[0].revents();
        if got.contains(PollFlags::PRI) {
            flag.store(true, Ordering::Relaxed);
            return Err(io::ErrorKind::NotConnected.into());
        }
        if got.is_empty() && !self.wait {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

impl crate::pipe::frame::Source for Gated<'_> {
    fn readv(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.gate()?;
        self.fd.readv(bufs)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.gate()?;
        self.fd.read(buf)
    }
}

/// Peek over buffered bytes that start at a frame boundary, or inside a
/// message with `inside` bytes left.
pub(crate) fn peek_frames(bytes: &[u8], inside: Option<usize>, buf: &mut [u8]) -> PeekInfo {
    let mut at = 0;
    let mut available = 0;
    let mut first: Option<(usize, usize)> = None; // (start, total length) of the current message
    if let Some(left) = inside {
        let present = left.min(bytes.len());
        first = Some((0, left));
        available += present;
        at = present;
        if present < left {
            at = bytes.len();
        }
    }
    while at + FRAME_HEADER_LEN <= bytes.len() {
        let mut h = [0u8; FRAME_HEADER_LEN];
        h.copy_from_slice(&bytes[at..at + FRAME_HEADER_LEN]);
        if h == DISCONNECT_FRAME {
            break; // the end: nothing after it is data
        }
        let len = u32::from_le_bytes(h) as usize & MAX_MESSAGE_LEN;
        let start = at + FRAME_HEADER_LEN;
        let present = len.min(bytes.len() - start);
        if first.is_none() {
            first = Some((start, len));
        }
        available += present;
        at = start + present;
        if present < len {
            break;
        }
    }
    match first {
        None => PeekInfo {
            read: 0,
            available,
            left_in_message: 0,
        },
        Some((start, len)) => {
            let present = len.min(bytes.len() - start);
            let n = present.min(buf.len());
            buf[..n].copy_from_slice(&bytes[start..start + n]);
            PeekInfo {
                read: n,
                available,
                left_in_message: len - n,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_over_frames() {
        let mut bytes = Vec::new();
        for m in [&b"hello"[..], b"", b"ab"] {
            bytes.extend_from_slice(&frame_header(m.len()).unwrap());
            bytes.extend_from_slice(m);
        }
        let mut buf = [0u8; 3];
        let p = peek_frames(&bytes, None, &mut buf);
        assert_eq!(
            p,
            PeekInfo {
                read: 3,
                available: 7,
                left_in_message: 2
            }
        );
        assert_eq!(&buf, b"hel");
        let p = peek_frames(&bytes[..7], None, &mut buf);
        assert_eq!(
            p,
            PeekInfo {
                read: 3,
                available: 3,
                left_in_message: 2
            },
            "partly arrived"
        );
        let p = peek_frames(b"lo", Some(2), &mut buf);
        assert_eq!(
            p,
            PeekInfo {
                read: 2,
                available: 2,
                left_in_message: 0
            }
        );
        let p = peek_frames(b"", None, &mut buf);
        assert_eq!(
            p,
            PeekInfo {
                read: 0,
                available: 0,
                left_in_message: 0
            }
        );
    }
}
