//! The shared-memory data path of one connected end: message framing,
//! waits and Win32's rules over the two rings, with the socket kept as the
//! liveness channel and the writer's bell.
//!
//! Frames in the rings are those of the socket path (a `u32` length, then
//! the payload; byte pipes carry raw bytes). A header is published whole;
//! a payload may go in pieces as room appears, and a reader takes what has
//! arrived, so a message larger than the ring streams through it.
//! The reader copies straight from the ring into the caller's buffer, with
//! no read-ahead: what the peer has not read is exactly what is in the
//! ring, which makes flush, peek and transact's "nothing unread" exact.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pipeslot_proto::wire::local::{frame_header, parse_frame_header, FRAME_HEADER_LEN, MAX_MESSAGE_LEN};
use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvFlags, SendFlags};

use super::ring::{Corrupt, Rx, Tx};
use super::segment::End;
use crate::error::{err, Win32Error};
use crate::pipe::frame::MsgEnd;
use crate::pipe::PeekInfo;

/// How long a reader looks for an answer from a peer on another CPU
/// before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct TxState {
    tx: Tx,
    /// Zero-length messages owed: they never wait for room (Win32), so
    /// one that found the ring full goes ahead of the next write.
    owed_empty: usize,
    /// The rest of a message larger than the ring that a non-blocking
    /// (tokio) write accepted: it streams into the ring ahead of anything
    /// written later, as the socket path's pending buffer does.
    pending: Vec<u8>,
    /// How much of `pending` is in the ring already.
    pending_at: usize,
}

impl TxState {
    fn has_pending(&self) -> bool {
        self.pending_at < self.pending.len()
    }
}

#[derive(Debug)]
struct RxState {
    rx: Rx,
    /// Bytes of the current message not yet delivered; `None` at a boundary.
    left: Option<usize>,
}

/// How a call may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// Blocking handle: sleep until the call can go on.
    pub(crate) block: bool,
}

/// One end's shared-memory data path.
#[derive(Debug)]
pub(crate) struct ShmPath {
    end: End,
    framed: bool,
    name: String,
    tx: Mutex<TxState>,
    rx: Mutex<RxState>,
    /// The peer's socket end was seen gone (a peer that dies sets no flag
    /// in the segment): later writes fail at once, as on the socket path.
    /// Set here or by the watcher thread.
    gone: Arc<AtomicBool>,
    /// The watcher thread's registration, made at the first write or the
    /// first blocking sleep on the bell (or when the tokio front end takes
    /// the end), so a connection that carries nothing costs the watcher
    /// nothing. With it, a
    /// reader sleeps in a blocking read of its bell; without (the thread
    /// could not start), in `poll` on the bell and the socket.
    watched: OnceLock<Option<super::watch::Watched>>,
    /// The tokio front end drives this end: its tasks wait on the bell,
    /// which the watcher rings when the peer goes, so a look at the flags
    /// says whether the peer has gone without a `poll` of the socket.
    reactor: AtomicBool,
}

impl Drop for ShmPath {
    fn drop(&mut self) {
        self.mark_closed();
    }
}

/// What a sleeper waits for.
enum Until {
    /// Data in this end's ring (its eventfd), or the peer's end.
    Data,
    /// Room in the peer's ring (a byte on the socket), or the peer's end.
    Room,
}

impl ShmPath {
    /// The data path of a connection; its socket is passed to each call.
    pub(crate) fn new(end: End, framed: bool, name: String) -> ShmPath {
        let (tx, rx) = end.rings();
        let gone = Arc::new(AtomicBool::new(false));
        ShmPath {
            end,
            framed,
            name,
            tx: Mutex::new(TxState {
                tx,
                owed_empty: 0,
                pending: Vec::new(),
                pending_at: 0,
            }),
            rx: Mutex::new(RxState { rx, left: None }),
            gone,
            watched: OnceLock::new(),
            reactor: AtomicBool::new(false),
        }
    }

    /// Whether the peer has gone, as cheaply as this call may ask: a
    /// blocking reader with the watcher trusts the flags (its sleep ends
    /// when the peer goes, and the watcher sets `gone`); anyone else looks
    /// at the socket.
    fn gone_for(&self, sock: BorrowedFd<'_>, w: Wait) -> bool {
        if (w.block || self.reactor.load(Ordering::Relaxed)) && self.is_watched() {
            return self.gone.load(Ordering::Acquire) || self.end.peer_closed();
        }
        self.peer_gone(sock)
    }

    fn is_watched(&self) -> bool {
        matches!(self.watched.get(), Some(Some(_)))
    }

    /// Registers with the watcher thread (once); whether it watches. A
    /// socket that hung up before is reported at once (epoll is level
    /// triggered), so a sleep that follows still ends.
    fn watch(&self, sock: BorrowedFd<'_>) -> bool {
        self.watched
            .get_or_init(|| {
                // Our own bell is read blocking (the peer only writes it).
                let watched = rustix::io::ioctl_fionbio(&*self.end.bell, false)
                    .ok()
                    .and_then(|()| super::watch::watch(sock, Arc::clone(&self.gone), Arc::clone(&self.end.bell)).ok());
                if watched.is_none() {
                    let _ = rustix::io::ioctl_fionbio(&*self.end.bell, true);
                }
                watched
            })
            .is_some()
    }

    /// Before the first write: from then on a write trusts `gone`, which
    /// only the watcher sets, so it must watch; and a peer that went before
    /// it watched is seen here, not when the watcher thread gets to it.
    fn attach(&self, sock: BorrowedFd<'_>) {
        if self.watched.get().is_none() {
            self.watch(sock);
            let _ = self.peer_gone(sock);
        }
    }

    /// This end closes: the peer's writes fail from now on. Called before
    /// the socket closes, so a peer woken by the close sees the flag.
    pub(crate) fn mark_closed(&self) {
        self.end.mark_closed();
    }

    /// The segment, mapped at the first use of the rings.
    fn region(&self) -> io::Result<&super::mem::Region> {
        self.end.region().map_err(|e| {
            err(
                Win32Error::ERROR_NO_SYSTEM_RESOURCES,
                format!("cannot map the shared memory of {}: {e}", self.name),
            )
        })
    }

    fn corrupt(&self, _: Corrupt) -> io::Error {
        err(
            Win32Error::ERROR_BAD_PIPE,
            format!("the other end of {} broke the shared-memory ring's rules", self.name),
        )
    }

    fn broken(&self) -> io::Error {
        err(
            Win32Error::ERROR_BROKEN_PIPE,
            format!("the other end of {} has closed", self.name),
        )
    }

    fn broken_mid_message(&self) -> io::Error {
        err(
            Win32Error::ERROR_BROKEN_PIPE,
            format!("the other end of {} closed in the middle of a message", self.name),
        )
    }

    fn no_reader(&self) -> io::Error {
        err(
            Win32Error::ERROR_NO_DATA,
            format!("the other end of {} has closed: nothing can be written", self.name),
        )
    }

    pub(crate) fn not_connected(&self) -> io::Error {
        err(
            Win32Error::ERROR_PIPE_NOT_CONNECTED,
            format!(
                "the server of {} disconnected this client (what it had not read is gone)",
                self.name
            ),
        )
    }

    fn flush_broken(&self) -> io::Error {
        crate::pipe::conn::flush_broken(&self.name)
    }

    /// On a client: its server disconnected it.
    pub(crate) fn disconnected(&self) -> bool {
        self.end.disconnected()
    }

    /// The server's DisconnectNamedPipe, before it shuts the socket (which
    /// wakes a client asleep in either direction).
    pub(crate) fn disconnect(&self) {
        self.end.mark_disconnected();
    }

    /// A client whose server disconnected: what it had not read is dropped.
    fn discard(&self, rs: &mut RxState) -> io::Error {
        if let Ok(r) = self.end.region() {
            if let Ok(n) = rs.rx.available(r) {
                rs.rx.consume(r, n);
            }
        }
        rs.left = None;
        self.not_connected()
    }

    /// The peer has gone: closed cleanly (its flag), or its socket end is
    /// shut or gone (it died, or the server disconnected).
    pub(crate) fn peer_gone(&self, sock: BorrowedFd<'_>) -> bool {
        if self.end.peer_closed() {
            return true;
        }
        if self.gone.load(Ordering::Relaxed) {
            return true;
        }
        let mut fds = [PollFd::new(&sock, PollFlags::RDHUP)];
        let _ = rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 }));
        let gone = fds[0]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR);
        if gone {
            self.gone.store(true, Ordering::Relaxed);
        }
        gone
    }

    /// Sleeps until the bell rings, the peer goes, or `deadline` passes.
    /// The caller has set its wait flag and checked its condition after.
    fn sleep(&self, sock: BorrowedFd<'_>, until: Until, deadline: Option<Instant>) {
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            rustix::fs::Timespec::try_from(left).unwrap_or(rustix::fs::Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        match until {
            Until::Data if timeout.is_none() && self.watch(sock) => {
                // One call that waits and empties the bell; the watcher
                // rings it if the peer goes. A bell the peer made
                // non-blocking (it shares the file) falls back to poll.
                let mut b = [0u8; 8];
                if let Err(rustix::io::Errno::AGAIN) = rustix::io::read(&*self.end.bell, &mut b) {
                    self.poll_bell(sock, timeout);
                }
            }
            Until::Data => self.poll_bell(sock, timeout),
            Until::Room => {
                let mut fds = [PollFd::new(&sock, PollFlags::IN | PollFlags::RDHUP)];
                let _ = rustix::event::poll(&mut fds, timeout.as_ref());
                let mut scratch = [0u8; 64];
                while let Ok((n, _)) = rustix::net::recv(sock, &mut scratch, RecvFlags::DONTWAIT) {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }

    /// Before sleeping: when the peer runs on another CPU, looks for `ready`
    /// for a few microseconds, since a wake-up across CPUs costs far more
    /// (tens of µs on a VM) than an answer that comes while we look. Never
    /// when the peer shares our CPU: it could not run while we spin.
    fn spin_for(&self, ready: impl Fn() -> bool) -> bool {
        let (me, peer) = self.end.cpus();
        // Two different CPUs seen: there is another to spin against.
        if peer == u32::MAX || peer == me {
            return false;
        }
        let until = Instant::now() + SPIN;
        loop {
            for _ in 0..64 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until || self.gone.load(Ordering::Relaxed) {
                return false;
            }
        }
    }

    /// Sleeps in `poll` on this end's bell and the socket.
    fn poll_bell(&self, sock: BorrowedFd<'_>, timeout: Option<rustix::fs::Timespec>) {
        let mut fds = [
            PollFd::new(&*self.end.bell, PollFlags::IN),
            PollFd::new(&sock, PollFlags::RDHUP),
        ];
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        if fds[0].revents().contains(PollFlags::IN) {
            self.end.drain_bell();
        }
    }

    /// After reading: tells a writer that sleeps for room.
    fn freed(&self, rx: &Rx, sock: BorrowedFd<'_>) {
        if self.end.region().is_ok_and(|r| rx.writer_waits(r)) {
            let _ = rustix::net::send(sock, b"r", SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
        }
    }

    /// After writing: tells a reader that sleeps for data.
    fn published(&self, tx: &Tx) {
        if self.end.region().is_ok_and(|r| tx.reader_waits(r)) {
            self.end.ring_peer();
        }
    }

    /// Waits for data in this end's ring. `Ok(false)`: not blocking, none.
    fn wait_data(&self, rs: &RxState, sock: BorrowedFd<'_>, w: Wait, need: usize) -> io::Result<bool> {
        if !w.block {
            return Ok(false);
        }
        let r = self.region()?;
        if self.spin_for(|| rs.rx.available(r).map_or(true, |n| n >= need) || self.end.disconnected()) {
            return Ok(true);
        }
        rs.rx.set_waiting(r, true);
        let ready = rs.rx.available(r).map_err(|c| self.corrupt(c))? >= need
            || self.end.disconnected()
            || self.gone_for(sock, w);
        if !ready {
            self.sleep(sock, Until::Data, None);
        }
        rs.rx.set_waiting(r, false);
        Ok(true)
    }

    /// Reads (the rest of) one message into `buf[*filled..]`, as the socket
    /// path's frame reader does: `Complete`, `More` (the buffer is full and
    /// the message goes on), or `Eof` (the peer closed at a boundary).
    /// Not blocking: `WouldBlock`, with `*filled` kept for the next call.
    pub(crate) fn read_message(
        &self,
        sock: BorrowedFd<'_>,
        buf: &mut [u8],
        filled: &mut usize,
        w: Wait,
    ) -> io::Result<MsgEnd> {
        let mut rs = lock(&self.rx);
        self.read_message_locked(&mut rs, sock, buf, filled, w)
    }

    fn read_message_locked(
        &self,
        rs: &mut RxState,
        sock: BorrowedFd<'_>,
        buf: &mut [u8],
        filled: &mut usize,
        w: Wait,
    ) -> io::Result<MsgEnd> {
        let r = self.region()?;
        loop {
            if self.end.disconnected() {
                return Err(self.discard(rs));
            }
            let avail = rs.rx.available(r).map_err(|c| self.corrupt(c))?;
            match rs.left {
                None if avail >= FRAME_HEADER_LEN => {
                    let mut h = [0u8; FRAME_HEADER_LEN];
                    rs.rx.peek(r, 0, &mut h);
                    let len = parse_frame_header(h).map_err(|e| {
                        err(
                            Win32Error::ERROR_BAD_PIPE,
                            format!("the other end of {} sent a bad frame: {e}", self.name),
                        )
                    })?;
                    // The common case, a whole message there that fits:
                    // one copy, one move of the counter.
                    if len <= buf.len() - *filled && avail - FRAME_HEADER_LEN >= len {
                        rs.rx.peek(r, FRAME_HEADER_LEN, &mut buf[*filled..*filled + len]);
                        rs.rx.consume(r, FRAME_HEADER_LEN + len);
                        *filled += len;
                        self.freed(&rs.rx, sock);
                        return Ok(MsgEnd::Complete);
                    }
                    rs.rx.consume(r, FRAME_HEADER_LEN);
                    rs.left = Some(len);
                }
                None => {
                    if self.gone_for(sock, w) && rs.rx.available(r).map_err(|c| self.corrupt(c))? == avail {
                        return if avail == 0 {
                            Ok(MsgEnd::Eof)
                        } else {
                            Err(self.broken_mid_message())
                        };
                    }
                    if !self.wait_data(rs, sock, w, FRAME_HEADER_LEN)? {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                }
                Some(0) => {
                    rs.left = None;
                    self.freed(&rs.rx, sock);
                    return Ok(MsgEnd::Complete);
                }
                Some(left) => {
                    let room = buf.len() - *filled;
                    if room == 0 {
                        self.freed(&rs.rx, sock);
                        return Ok(MsgEnd::More);
                    }
                    if avail == 0 {
                        self.freed(&rs.rx, sock);
                        if self.gone_for(sock, w) && rs.rx.available(r).map_err(|c| self.corrupt(c))? == 0 {
                            return Err(self.broken_mid_message());
                        }
                        if !self.wait_data(rs, sock, w, 1)? {
                            return Err(io::ErrorKind::WouldBlock.into());
                        }
                        continue;
                    }
                    let n = left.min(avail).min(room);
                    rs.rx.peek(r, 0, &mut buf[*filled..*filled + n]);
                    rs.rx.consume(r, n);
                    *filled += n;
                    rs.left = Some(left - n);
                }
            }
        }
    }

    /// A byte read: raw bytes on a byte pipe; on a message pipe read in
    /// byte mode, payloads across message boundaries (what has arrived,
    /// waiting only for the first byte). `Ok(0)`: the end.
    pub(crate) fn read_bytes(&self, sock: BorrowedFd<'_>, buf: &mut [u8], w: Wait) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut rs = lock(&self.rx);
        if self.framed {
            let mut filled = 0;
            loop {
                let wait = Wait {
                    block: w.block && filled == 0,
                };
                match self.read_message_locked(&mut rs, sock, buf, &mut filled, wait) {
                    Ok(MsgEnd::Complete) if filled < buf.len() => continue,
                    Ok(_) => return Ok(filled),
                    Err(e) if filled > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(filled),
                    Err(e) => return Err(e),
                }
            }
        }
        let r = self.region()?;
        loop {
            if self.end.disconnected() {
                return Err(self.discard(&mut rs));
            }
            let avail = rs.rx.available(r).map_err(|c| self.corrupt(c))?;
            if avail > 0 {
                let n = avail.min(buf.len());
                rs.rx.peek(r, 0, &mut buf[..n]);
                rs.rx.consume(r, n);
                self.freed(&rs.rx, sock);
                return Ok(n);
            }
            if self.gone_for(sock, w) && rs.rx.available(r).map_err(|c| self.corrupt(c))? == 0 {
                return Ok(0);
            }
            if !self.wait_data(&rs, sock, w, 1)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Waits for room for `need` bytes (or for the ring to empty, `need`
    /// = capacity). `Ok(false)` when `deadline` passed first.
    fn wait_room(
        &self,
        ts: &TxState,
        sock: BorrowedFd<'_>,
        need: usize,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        let r = self.region()?;
        loop {
            if self.end.disconnected() {
                return Err(self.not_connected());
            }
            if ts.tx.free(r).map_err(|c| self.corrupt(c))? >= need {
                return Ok(true);
            }
            if self.peer_gone(sock) {
                return Err(self.no_reader());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            ts.tx.set_waiting(r, true);
            if ts.tx.free(r).map_err(|c| self.corrupt(c))? < need && !self.peer_gone(sock) {
                self.sleep(sock, Until::Room, deadline);
            }
            ts.tx.set_waiting(r, false);
        }
    }

    /// Writes what earlier zero-length messages still owe; `Ok(false)`
    /// when there is no room for them (not blocking, or `deadline` passed).
    fn pay_owed(&self, ts: &mut TxState, sock: BorrowedFd<'_>, w: Wait, deadline: Option<Instant>) -> io::Result<bool> {
        let hdr = frame_header(0).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        while ts.owed_empty > 0 {
            if ts.tx.push_all(self.region()?, &[&hdr]).map_err(|c| self.corrupt(c))? {
                ts.owed_empty -= 1;
                self.published(&ts.tx);
                continue;
            }
            if !w.block || !self.wait_room(ts, sock, FRAME_HEADER_LEN, deadline)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves what it can of the pending message into the ring; `Ok(true)`
    /// once none is left. Blocking: waits for room until it is all in.
    fn push_pending(&self, ts: &mut TxState, sock: BorrowedFd<'_>, w: Wait) -> io::Result<bool> {
        while ts.has_pending() {
            let n = ts
                .tx
                .push(self.region()?, &ts.pending[ts.pending_at..])
                .map_err(|c| self.corrupt(c))?;
            ts.pending_at += n;
            if n > 0 {
                self.published(&ts.tx);
                continue;
            }
            if !w.block {
                if self.peer_gone(sock) {
                    return Err(self.no_reader());
                }
                return Ok(false);
            }
            self.wait_room(ts, sock, 1, None)?;
        }
        ts.pending = Vec::new();
        ts.pending_at = 0;
        Ok(true)
    }

    /// Whether part of a message accepted earlier is still to go into the ring.
    pub(crate) fn has_pending(&self) -> bool {
        lock(&self.tx).has_pending()
    }

    /// The tokio front end's `poll_flush`: the pending message all in the
    /// ring, or `WouldBlock`.
    pub(crate) fn drain_pending(&self, sock: BorrowedFd<'_>) -> io::Result<()> {
        let mut ts = lock(&self.tx);
        if self.push_pending(&mut ts, sock, Wait { block: false })? {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// WriteFile: one message (message pipes) or bytes. Blocking: returns
    /// once the ring holds all of it. `nowait` (PIPE_NOWAIT): all or
    /// nothing, `Ok(0)` when it does not fit now. Neither (tokio):
    /// `WouldBlock` until the message fits whole; one larger than the ring
    /// is accepted once its start fits, and its rest streams in from a copy
    /// ahead of later writes.
    pub(crate) fn write(&self, sock: BorrowedFd<'_>, data: &[u8], w: Wait, nowait: bool) -> io::Result<usize> {
        self.attach(sock);
        let r = self.region()?;
        let asynchronous = !w.block && !nowait;
        let mut ts = lock(&self.tx);
        if self.end.disconnected() {
            return Err(self.not_connected());
        }
        if self.end.peer_closed() || self.gone.load(Ordering::Relaxed) {
            return Err(self.no_reader());
        }
        let caught_up = self.push_pending(&mut ts, sock, w)? && self.pay_owed(&mut ts, sock, w, None)?;
        if !caught_up {
            if self.framed && data.is_empty() {
                ts.owed_empty += 1;
                return Ok(0);
            }
            if asynchronous {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return Ok(0);
        }
        if self.framed && data.len() > MAX_MESSAGE_LEN {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("a message to {} is longer than 2 GiB - 1", self.name),
            ));
        }
        let hdr = frame_header(data.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let hdr: &[u8] = if self.framed { &hdr } else { &[] };
        if self.framed && data.is_empty() {
            // Never waits for room (Win32): owed when the ring is full.
            if !ts.tx.push_all(r, &[hdr]).map_err(|c| self.corrupt(c))? {
                ts.owed_empty += 1;
            } else {
                self.published(&ts.tx);
            }
            return Ok(0);
        }
        if ts.tx.push_all(r, &[hdr, data]).map_err(|c| self.corrupt(c))? {
            self.published(&ts.tx);
            return Ok(data.len());
        }
        if nowait || !w.block {
            if self.peer_gone(sock) {
                return Err(self.no_reader());
            }
            if !asynchronous {
                return Ok(0);
            }
            if !self.framed {
                // A byte stream may be taken in part, as a socket takes it.
                let n = ts.tx.push(r, data).map_err(|c| self.corrupt(c))?;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                self.published(&ts.tx);
                return Ok(n);
            }
            let whole = hdr.len() + data.len();
            if whole <= ts.tx.capacity() || ts.tx.free(r).map_err(|c| self.corrupt(c))? <= hdr.len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // Never fits whole: its start now, the rest from a copy.
            let pushed = ts.tx.push_all(r, &[hdr]).map_err(|c| self.corrupt(c))?;
            debug_assert!(pushed);
            let at = ts.tx.push(r, data).map_err(|c| self.corrupt(c))?;
            ts.pending = data[at..].to_vec();
            ts.pending_at = 0;
            self.published(&ts.tx);
            return Ok(data.len());
        }
        // Larger than the room there is: the header whole, then the payload
        // in pieces as the reader frees room.
        self.wait_room(&ts, sock, hdr.len().max(1), None)?;
        let pushed = ts.tx.push_all(r, &[hdr]).map_err(|c| self.corrupt(c))?;
        debug_assert!(pushed);
        let mut at = 0;
        loop {
            at += ts.tx.push(r, &data[at..]).map_err(|c| self.corrupt(c))?;
            self.published(&ts.tx);
            if at == data.len() {
                return Ok(data.len());
            }
            self.wait_room(&ts, sock, 1, None)?;
        }
    }

    /// Several messages in a row (each as [`write`](Self::write)); how many
    /// were written (fewer only when not blocking and the ring filled).
    pub(crate) fn write_msgs(&self, sock: BorrowedFd<'_>, msgs: &[&[u8]], w: Wait, nowait: bool) -> io::Result<usize> {
        let mut done = 0;
        for m in msgs {
            match self.write(sock, m, w, nowait) {
                Ok(0) if !m.is_empty() => break,
                Ok(_) => done += 1,
                Err(e) if done > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// TransactNamedPipe's look: a message waiting unread (or the rest of
    /// one) is `ERROR_PIPE_BUSY`; a disconnected client, 233.
    pub(crate) fn unread_here(&self) -> io::Result<bool> {
        if self.end.disconnected() {
            return Err(self.not_connected());
        }
        let rs = lock(&self.rx);
        let avail = rs.rx.available(self.region()?).map_err(|c| self.corrupt(c))?;
        Ok(avail > 0 || rs.left.is_some())
    }

    /// Bytes written that the peer has not read yet.
    pub(crate) fn unread_by_peer(&self) -> io::Result<usize> {
        let ts = lock(&self.tx);
        let queued = ts.tx.unread(self.region()?).map_err(|c| self.corrupt(c))?;
        Ok(queued + ts.pending.len() - ts.pending_at)
    }

    /// FlushFileBuffers: until the peer has read everything written so far,
    /// or `limit` passes (`Ok(false)`). A peer that closes with data unread
    /// is `ERROR_BROKEN_PIPE`; one that read everything and closed, success.
    pub(crate) fn flush(&self, sock: BorrowedFd<'_>, limit: Option<Duration>) -> io::Result<bool> {
        let deadline = limit.map(|d| Instant::now() + d);
        let mut ts = lock(&self.tx);
        let cap = ts.tx.capacity();
        while ts.has_pending() {
            match self.push_pending(&mut ts, sock, Wait { block: false }) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if crate::error::Error::win32(&e) == Some(Win32Error::ERROR_NO_DATA) => {
                    return Err(self.flush_broken())
                }
                Err(e) => return Err(e),
            }
            match self.wait_room(&ts, sock, 1, deadline) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) if crate::error::Error::win32(&e) == Some(Win32Error::ERROR_NO_DATA) => {
                    return Err(self.flush_broken())
                }
                Err(e) => return Err(e),
            }
        }
        if !self.pay_owed(&mut ts, sock, Wait { block: true }, deadline)? {
            return Ok(false);
        }
        match self.wait_room(&ts, sock, cap, deadline) {
            Err(e) if crate::error::Error::win32(&e) == Some(Win32Error::ERROR_NO_DATA) => {
                if ts.tx.unread(self.region()?).map_err(|c| self.corrupt(c))? == 0 {
                    return Ok(true);
                }
                Err(self.flush_broken())
            }
            r => r,
        }
    }

    /// The tokio front end takes this end: it reads its bell without
    /// blocking when the reactor says it rang, and relies on the watcher
    /// thread to ring it when the peer goes (a task waits on nothing else).
    pub(crate) fn for_reactor(&self, sock: BorrowedFd<'_>) -> io::Result<Arc<OwnedFd>> {
        if !self.watch(sock) {
            return Err(err(
                Win32Error::ERROR_NO_SYSTEM_RESOURCES,
                format!(
                    "{}: the thread that watches shared-memory connections could not start",
                    self.name
                ),
            ));
        }
        rustix::io::ioctl_fionbio(&*self.end.bell, true)?;
        self.reactor.store(true, Ordering::Relaxed);
        Ok(Arc::clone(&self.end.bell))
    }

    /// A task is about to wait for data (`data`) or room (`room`): asks
    /// the peer for the bell. The caller looks again before it waits.
    pub(crate) fn park(&self, data: bool, room: bool) {
        // Unmappable: the look before the wait finds the error to report.
        let Ok(r) = self.end.region() else { return };
        if data {
            lock(&self.rx).rx.set_waiting(r, true);
        }
        if room {
            lock(&self.tx).tx.set_waiting(r, true);
        }
    }

    /// Empties this end's bell after the reactor said it rang.
    pub(crate) fn drain_bell(&self) {
        self.end.drain_bell();
    }

    /// Takes the "room" signals the reader sent on the socket.
    pub(crate) fn drain_room_signals(&self, sock: BorrowedFd<'_>) {
        let mut scratch = [0u8; 64];
        while let Ok((n, _)) = rustix::net::recv(sock, &mut scratch, RecvFlags::DONTWAIT) {
            if n == 0 {
                break;
            }
        }
    }

    /// Something to read (or an error to report) in the ring now.
    fn readable_now(&self) -> bool {
        let rs = lock(&self.rx);
        rs.left == Some(0)
            || self
                .end
                .region()
                .map_or(true, |r| rs.rx.available(r).map_or(true, |n| n > 0))
    }

    /// The tokio front end, before it parks a read: the brief look a
    /// blocking read takes (only when the peer runs on another CPU). Whether
    /// something came.
    pub(crate) fn spin_for_data(&self) -> bool {
        self.spin_for(|| self.readable_now() || self.end.disconnected())
    }

    /// What a read and a write would find now without waiting: something
    /// to read (or an end or error to report), room to write (or an error).
    pub(crate) fn readiness(&self, sock: BorrowedFd<'_>) -> (bool, bool) {
        // Unmappable: both ready, so the call that follows reports it.
        let Ok(r) = self.end.region() else {
            return (true, true);
        };
        if self.end.disconnected() {
            return (true, true);
        }
        let readable = self.readable_now();
        let writable = {
            let ts = lock(&self.tx);
            ts.tx.free(r).map_or(true, |n| n > 0)
        };
        if readable && writable {
            return (true, true);
        }
        if self.peer_gone(sock) {
            return (true, true);
        }
        (readable, writable)
    }

    /// The segment's size (fuzzing).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn segment_len(&self) -> usize {
        self.end.layout.len
    }

    /// A hostile peer's write into the shared memory (fuzzing).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn scribble(&self, at: usize, bytes: &[u8]) {
        if let Ok(r) = self.end.region() {
            r.write(at, bytes);
        }
    }

    /// PeekNamedPipe over what is in the ring.
    pub(crate) fn peek(&self, sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<PeekInfo> {
        let mut rs = lock(&self.rx);
        if self.end.disconnected() {
            return Err(self.discard(&mut rs));
        }
        let r = self.region()?;
        let avail = rs.rx.available(r).map_err(|c| self.corrupt(c))?;
        let mut bytes = vec![0u8; avail];
        rs.rx.peek(r, 0, &mut bytes);
        let info = if self.framed {
            crate::pipe::conn::peek_frames(&bytes, rs.left.filter(|&l| l > 0), buf)
        } else {
            let n = buf.len().min(avail);
            buf[..n].copy_from_slice(&bytes[..n]);
            PeekInfo {
                read: n,
                available: avail,
                left_in_message: 0,
            }
        };
        if info.available == 0 && info.left_in_message == 0 && rs.left.is_none() && self.peer_gone(sock) {
            return Err(self.broken());
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::super::segment;
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    fn pair(framed: bool, buffer: u32) -> (Arc<ShmPath>, Arc<ShmPath>, UnixStream, UnixStream) {
        let server = segment::create(buffer, buffer).unwrap();
        let client = segment::adopt(server.give_owned().unwrap(), buffer, buffer).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        (
            Arc::new(ShmPath::new(server, framed, "s".into())),
            Arc::new(ShmPath::new(client, framed, "c".into())),
            a,
            b,
        )
    }

    const BLOCK: Wait = Wait { block: true };
    const NOWAIT: Wait = Wait { block: false };

    #[test]
    fn messages_keep_their_boundaries_and_more_data() {
        let (s, c, ss, cs) = pair(true, 4096);
        assert_eq!(s.write(ss.as_fd(), b"hello", BLOCK, false).unwrap(), 5);
        assert_eq!(s.write(ss.as_fd(), b"", BLOCK, false).unwrap(), 0);
        assert_eq!(s.write(ss.as_fd(), b"world!", BLOCK, false).unwrap(), 6);
        let mut b = [0u8; 3];
        let mut f = 0;
        assert_eq!(c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap(), MsgEnd::More);
        assert_eq!((&b[..f], f), (&b"hel"[..], 3));
        let mut f = 0;
        assert_eq!(
            c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap(),
            MsgEnd::Complete
        );
        assert_eq!(&b[..f], b"lo");
        let mut f = 0;
        assert_eq!(
            c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap(),
            MsgEnd::Complete
        );
        assert_eq!(f, 0, "the empty message");
        let mut big = [0u8; 16];
        assert_eq!(c.read_bytes(cs.as_fd(), &mut big, BLOCK).unwrap(), 6);
        assert_eq!(&big[..6], b"world!");
        let mut f = 0;
        assert_eq!(
            c.read_message(cs.as_fd(), &mut big, &mut f, NOWAIT).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn a_message_larger_than_the_ring_streams_through_it() {
        let (s, c, ss, cs) = pair(true, 4096);
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let m2 = msg.clone();
        let t = std::thread::spawn(move || s.write(ss.as_fd(), &m2, BLOCK, false).unwrap());
        let mut got = vec![0u8; 100_000];
        let mut f = 0;
        assert_eq!(
            c.read_message(cs.as_fd(), &mut got, &mut f, BLOCK).unwrap(),
            MsgEnd::Complete
        );
        assert_eq!(t.join().unwrap(), 100_000);
        assert_eq!(got, msg);
    }

    #[test]
    fn nowait_writes_are_all_or_nothing() {
        // A 4 KiB ring (the smallest).
        let (s, _c, ss, _cs) = pair(true, 2048);
        assert_eq!(s.write(ss.as_fd(), &[7u8; 5000], NOWAIT, true).unwrap(), 0);
        assert_eq!(s.unread_by_peer().unwrap(), 0, "nothing queued");
        assert_eq!(s.write(ss.as_fd(), &[7u8; 4000], NOWAIT, true).unwrap(), 4000);
        assert_eq!(s.unread_by_peer().unwrap(), 4004);
    }

    #[test]
    fn a_peer_that_closes_ends_reads_and_writes() {
        let (s, c, ss, cs) = pair(true, 4096);
        s.write(ss.as_fd(), b"last", BLOCK, false).unwrap();
        drop(s);
        drop(ss);
        let mut b = [0u8; 8];
        let mut f = 0;
        assert_eq!(
            c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap(),
            MsgEnd::Complete
        );
        assert_eq!(&b[..f], b"last", "what was written before the close is read");
        let mut f = 0;
        assert_eq!(c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap(), MsgEnd::Eof);
        let e = c.write(cs.as_fd(), b"x", BLOCK, false).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_NO_DATA));
    }

    #[test]
    fn a_blocked_reader_wakes_when_the_peer_dies_without_closing() {
        let (s, c, ss, cs) = pair(true, 4096);
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            let mut f = 0;
            let at = Instant::now();
            let r = c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK);
            (r.map_err(|e| e.to_string()), at.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        // A SIGKILLed peer sets no flag: only its socket closes.
        std::mem::forget(s);
        drop(ss);
        let (r, waited) = t.join().unwrap();
        assert_eq!(r, Ok(MsgEnd::Eof));
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    fn flush_waits_for_the_reader_and_fails_when_it_leaves_unread() {
        let (s, c, ss, cs) = pair(true, 4096);
        s.write(ss.as_fd(), b"one", BLOCK, false).unwrap();
        assert!(
            !s.flush(ss.as_fd(), Some(Duration::from_millis(20))).unwrap(),
            "unread: times out"
        );
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let mut b = [0u8; 8];
            let mut f = 0;
            c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap();
            (c, cs)
        });
        assert!(s.flush(ss.as_fd(), None).unwrap());
        let (c, cs) = t.join().unwrap();
        s.write(ss.as_fd(), b"two", BLOCK, false).unwrap();
        drop(c);
        drop(cs);
        let e = s.flush(ss.as_fd(), None).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_BROKEN_PIPE));
    }

    #[test]
    fn a_disconnect_discards_what_the_client_had_not_read() {
        let (s, c, ss, cs) = pair(true, 4096);
        s.write(ss.as_fd(), b"gone", BLOCK, false).unwrap();
        s.disconnect();
        let mut b = [0u8; 8];
        let mut f = 0;
        let e = c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_PIPE_NOT_CONNECTED));
        let e = c.write(cs.as_fd(), b"x", BLOCK, false).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_PIPE_NOT_CONNECTED));
        let e = c.unread_here().unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_PIPE_NOT_CONNECTED));
    }

    #[test]
    fn peek_and_the_transact_gate_see_exactly_what_is_unread() {
        let (s, c, ss, cs) = pair(true, 4096);
        assert!(!c.unread_here().unwrap());
        s.write(ss.as_fd(), b"abcdef", BLOCK, false).unwrap();
        s.write(ss.as_fd(), b"gh", BLOCK, false).unwrap();
        assert!(c.unread_here().unwrap());
        let mut p = [0u8; 4];
        let info = c.peek(cs.as_fd(), &mut p).unwrap();
        assert_eq!((info.read, info.available, info.left_in_message), (4, 8, 2));
        assert_eq!(&p, b"abcd");
        let mut b = [0u8; 4];
        let mut f = 0;
        c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap();
        let info = c.peek(cs.as_fd(), &mut p).unwrap();
        assert_eq!((info.read, info.available, info.left_in_message), (2, 4, 0));
        assert!(c.unread_here().unwrap(), "the rest of a message is unread");
    }

    #[test]
    fn a_peer_that_corrupts_the_ring_gets_bad_pipe_not_a_crash() {
        let (s, c, ss, cs) = pair(true, 4096);
        s.write(ss.as_fd(), b"ok", BLOCK, false).unwrap();
        // The server scribbles a tail far beyond what the ring holds.
        s.end
            .region()
            .unwrap()
            .u64_at(c.end.layout.to_client.ctl)
            .store(1 << 40, std::sync::atomic::Ordering::Release);
        let mut b = [0u8; 8];
        let mut f = 0;
        let e = c.read_message(cs.as_fd(), &mut b, &mut f, BLOCK).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_BAD_PIPE));
        // A header whose length has the control bit: a bad frame.
        let (s, c, ss, cs) = pair(true, 4096);
        let (mut tx, _) = s.end.rings();
        let _ = ss;
        tx.push(s.end.region().unwrap(), &0xffff_ffffu32.to_le_bytes()).unwrap();
        let e = c.read_message(cs.as_fd(), &mut b, &mut 0, BLOCK).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_BAD_PIPE));
    }

    #[test]
    fn byte_pipes_carry_raw_bytes() {
        let (s, c, ss, cs) = pair(false, 4096);
        assert_eq!(s.write(ss.as_fd(), b"abc", BLOCK, false).unwrap(), 3);
        assert_eq!(s.write(ss.as_fd(), b"de", BLOCK, false).unwrap(), 2);
        let mut b = [0u8; 8];
        assert_eq!(c.read_bytes(cs.as_fd(), &mut b, BLOCK).unwrap(), 5);
        assert_eq!(&b[..5], b"abcde");
        drop(s);
        drop(ss);
        assert_eq!(c.read_bytes(cs.as_fd(), &mut b, BLOCK).unwrap(), 0);
    }
}
