//! Message framing over a byte stream: the part of the data path that keeps
//! message boundaries, short-buffer reads (`ERROR_MORE_DATA`) and byte reads
//! across boundaries exact.
//!
//! The reader reads each header together with as much payload as the caller's
//! buffer holds, in one `readv` (into a buffer shorter than [`READ_AHEAD`]:
//! one plain read of whatever is there into the spill buffer), and what
//! follows the current payload (the next headers and messages) together with
//! its end.
//! Bytes that arrive past the current message wait in a spill buffer that is
//! reused, so a steady stream of small messages costs one syscall per spill
//! buffer, not one per message, and no allocation per message.
//!
//! Independent of the socket: everything goes through a [`Source`], so the
//! same code serves blocking and non-blocking sockets (a `WouldBlock` leaves
//! the state consistent, and the caller's progress is kept in `filled`) and
//! is property-tested against an in-memory source.

use std::io::{self, IoSliceMut};

use pipeslot_proto::wire::local::{parse_frame_header, DISCONNECT_FRAME, FRAME_HEADER_LEN};

use crate::error::{err, Win32Error};

/// Where framed bytes come from.
pub(crate) trait Source {
    /// One `readv`: fills the slices in order; `Ok(0)` at end of stream.
    fn readv(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;

    /// One read into one buffer (a socket's plain `recv`, the cheapest call).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.readv(&mut [IoSliceMut::new(buf)])
    }
}

/// How a message read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgEnd {
    /// The message is complete.
    Complete,
    /// The buffer is full and the message goes on (Win32's `ERROR_MORE_DATA`).
    More,
    /// The stream ended on a message boundary, before any byte of a new message.
    Eof,
}

/// How much a read that finishes a message takes along of what follows it.
pub(crate) const READ_AHEAD: usize = 8 << 10;

/// Reader state of one message-type pipe end.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    /// Bytes read past the current message: `spill[pos..end]`. Its length is
    /// what was ever allocated (initialised once, reused).
    spill: Vec<u8>,
    pos: usize,
    end: usize,
    hdr: [u8; FRAME_HEADER_LEN],
    hdr_have: usize,
    /// Bytes of the current message not yet delivered; `None` at a boundary.
    left: Option<usize>,
}

fn broken_mid_message() -> io::Error {
    err(
        Win32Error::ERROR_BROKEN_PIPE,
        "the peer closed the pipe in the middle of a message",
    )
}

fn bad_frame(e: pipeslot_proto::wire::DecodeError) -> io::Error {
    err(Win32Error::ERROR_BAD_PIPE, format!("the peer sent a bad frame: {e}"))
}

/// A header, or the server's disconnect frame (`ERROR_PIPE_NOT_CONNECTED`).
fn header_len(h: [u8; FRAME_HEADER_LEN]) -> io::Result<usize> {
    if h == DISCONNECT_FRAME {
        return Err(err(
            Win32Error::ERROR_PIPE_NOT_CONNECTED,
            "the server disconnected this client",
        ));
    }
    parse_frame_header(h).map_err(bad_frame)
}

impl FrameReader {
    fn spilled(&self) -> &[u8] {
        &self.spill[self.pos..self.end]
    }

    fn take_spill(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.end - self.pos);
        dst[..n].copy_from_slice(&self.spill[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        n
    }

    /// The empty spill buffer, at least `len` bytes, to read into.
    fn spill_room(&mut self, len: usize) -> &mut [u8] {
        debug_assert_eq!(self.pos, self.end, "the spill is empty when refilled");
        if self.spill.len() < len {
            self.spill.resize(len, 0);
        }
        &mut self.spill[..]
    }

    /// Bytes read from the socket but not yet delivered, and whether the
    /// reader sits inside a message (for peek).
    pub(crate) fn pending(&self) -> (&[u8], Option<usize>, &[u8]) {
        (&self.hdr[..self.hdr_have], self.left, self.spilled())
    }

    /// True when bytes are buffered, so a read will not block.
    pub(crate) fn has_buffered(&self) -> bool {
        self.pos < self.end || self.left == Some(0)
    }

    /// Reads (the rest of) one message into `buf[*filled..]`, advancing
    /// `*filled`, until the message ends or the buffer is full.
    ///
    /// On `WouldBlock` (non-blocking sources) the state and `*filled` stay
    /// consistent: call again with the same buffer to continue.
    pub(crate) fn read_message(
        &mut self,
        src: &mut dyn Source,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<MsgEnd> {
        loop {
            match self.left {
                None => {
                    if self.hdr_have < FRAME_HEADER_LEN && self.pos < self.end {
                        let have = self.hdr_have;
                        let mut tmp = [0u8; FRAME_HEADER_LEN];
                        let n = self.take_spill(&mut tmp[..FRAME_HEADER_LEN - have]);
                        self.hdr[have..have + n].copy_from_slice(&tmp[..n]);
                        self.hdr_have += n;
                    } else if self.hdr_have == 0 && buf.len() - *filled < READ_AHEAD {
                        // A small buffer: whatever is there (headers and
                        // messages) into the spill with one plain read; the
                        // loop takes them from there.
                        let n = src.read(self.spill_room(READ_AHEAD))?;
                        if n == 0 {
                            return Ok(MsgEnd::Eof);
                        }
                        self.end = n;
                    } else if self.hdr_have < FRAME_HEADER_LEN {
                        // The header and as much payload as fits, in one call.
                        let have = self.hdr_have;
                        let (hdr, tail) = (&mut self.hdr[have..], &mut buf[*filled..]);
                        let n = src.readv(&mut [IoSliceMut::new(hdr), IoSliceMut::new(tail)])?;
                        if n == 0 {
                            return if have == 0 {
                                Ok(MsgEnd::Eof)
                            } else {
                                Err(broken_mid_message())
                            };
                        }
                        let h = n.min(FRAME_HEADER_LEN - have);
                        self.hdr_have += h;
                        let payload = n - h;
                        if self.hdr_have < FRAME_HEADER_LEN {
                            continue;
                        }
                        let len = header_len(self.hdr)?;
                        self.hdr_have = 0;
                        let take = payload.min(len);
                        // Past this message: the next frames, kept for later reads.
                        let extra = &buf[*filled + take..*filled + payload];
                        self.spill_room(extra.len())[..extra.len()].copy_from_slice(extra);
                        self.end = extra.len();
                        *filled += take;
                        self.left = Some(len - take);
                        continue;
                    }
                    if self.hdr_have == FRAME_HEADER_LEN {
                        self.left = Some(header_len(self.hdr)?);
                        self.hdr_have = 0;
                    }
                }
                Some(0) => {
                    self.left = None;
                    return Ok(MsgEnd::Complete);
                }
                Some(left) => {
                    if *filled == buf.len() {
                        return Ok(MsgEnd::More);
                    }
                    let room = left.min(buf.len() - *filled);
                    let n = if self.pos < self.end {
                        self.take_spill(&mut buf[*filled..*filled + room])
                    } else if room == left && self.hdr_have == 0 {
                        // Finishing the message: take what follows along
                        // (the next headers and messages) into the spill.
                        let dst = &mut buf[*filled..*filled + room];
                        let ahead = {
                            let spill = &mut self.spill;
                            if spill.len() < READ_AHEAD {
                                spill.resize(READ_AHEAD, 0);
                            }
                            &mut spill[..]
                        };
                        let n = src.readv(&mut [IoSliceMut::new(dst), IoSliceMut::new(ahead)])?;
                        if n == 0 {
                            return Err(broken_mid_message());
                        }
                        self.end = n.saturating_sub(room);
                        n - self.end
                    } else {
                        let n = src.readv(&mut [IoSliceMut::new(&mut buf[*filled..*filled + room])])?;
                        if n == 0 {
                            return Err(broken_mid_message());
                        }
                        n
                    };
                    *filled += n;
                    self.left = Some(left - n);
                }
            }
        }
    }

    /// A byte-mode read of a message pipe: boundaries are ignored, at least
    /// one byte is returned unless the stream ended (`Ok(0)`). Zero-length
    /// messages vanish. Never blocks once it holds a byte.
    pub(crate) fn read_bytes(&mut self, src: &mut dyn Source, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        loop {
            let blocked = filled > 0 && !self.has_buffered() && self.left.is_none();
            if blocked || filled == buf.len() {
                return Ok(filled);
            }
            match self.read_message(src, buf, &mut filled) {
                Ok(MsgEnd::Eof) => return Ok(filled),
                Ok(MsgEnd::More) => return Ok(filled),
                Ok(MsgEnd::Complete) => {}
                Err(e) if filled > 0 && crate::error::is_retry(&e) => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A source over a file descriptor.
pub(crate) struct FdSource<'a>(pub(crate) std::os::fd::BorrowedFd<'a>);

impl Source for FdSource<'_> {
    fn readv(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        loop {
            match rustix::io::readv(self.0, bufs) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::net::recv(self.0, &mut *buf, rustix::net::RecvFlags::empty()) {
                Ok((n, _)) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeslot_proto::wire::local::frame_header;
    use proptest::prelude::*;

    /// An in-memory stream that hands out at most `chunks[i]` bytes per call.
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        chunks: Vec<usize>,
        call: usize,
    }

    impl Source for Chunked {
        fn readv(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
            let limit = self.chunks[self.call % self.chunks.len()].max(1);
            self.call += 1;
            let mut n = 0;
            for b in bufs.iter_mut() {
                let k = b.len().min(self.data.len() - self.at).min(limit - n);
                b[..k].copy_from_slice(&self.data[self.at..self.at + k]);
                self.at += k;
                n += k;
                if k < b.len() {
                    break;
                }
            }
            Ok(n)
        }
    }

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&frame_header(m.len()).unwrap());
            v.extend_from_slice(m);
        }
        v
    }

    fn messages(sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
            .collect()
    }

    #[test]
    fn zero_length_messages_are_messages() {
        let msgs = messages(&[0, 3, 0]);
        let mut src = Chunked {
            data: framed(&msgs),
            at: 0,
            chunks: vec![100],
            call: 0,
        };
        let mut r = FrameReader::default();
        let mut buf = [0u8; 8];
        for m in &msgs {
            let mut filled = 0;
            assert_eq!(
                r.read_message(&mut src, &mut buf, &mut filled).unwrap(),
                MsgEnd::Complete
            );
            assert_eq!(&buf[..filled], &m[..]);
        }
        let mut filled = 0;
        assert_eq!(r.read_message(&mut src, &mut buf, &mut filled).unwrap(), MsgEnd::Eof);
    }

    #[test]
    fn short_buffer_says_more_and_loses_nothing() {
        let msgs = messages(&[10, 2]);
        let mut src = Chunked {
            data: framed(&msgs),
            at: 0,
            chunks: vec![1000],
            call: 0,
        };
        let mut r = FrameReader::default();
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        let mut filled = 0;
        assert_eq!(r.read_message(&mut src, &mut buf, &mut filled).unwrap(), MsgEnd::More);
        assert_eq!(filled, 4);
        got.extend_from_slice(&buf[..4]);
        filled = 0;
        assert_eq!(r.read_message(&mut src, &mut buf, &mut filled).unwrap(), MsgEnd::More);
        got.extend_from_slice(&buf[..filled]);
        filled = 0;
        assert_eq!(
            r.read_message(&mut src, &mut buf, &mut filled).unwrap(),
            MsgEnd::Complete
        );
        got.extend_from_slice(&buf[..filled]);
        assert_eq!(got, msgs[0]);
        filled = 0;
        assert_eq!(
            r.read_message(&mut src, &mut buf, &mut filled).unwrap(),
            MsgEnd::Complete
        );
        assert_eq!(&buf[..filled], &msgs[1][..]);
    }

    #[test]
    fn eof_inside_a_message_is_broken_pipe() {
        let mut data = framed(&messages(&[10]));
        data.truncate(8);
        let mut src = Chunked {
            data,
            at: 0,
            chunks: vec![100],
            call: 0,
        };
        let mut r = FrameReader::default();
        let mut buf = [0u8; 32];
        let mut filled = 0;
        let e = r.read_message(&mut src, &mut buf, &mut filled).unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_BROKEN_PIPE));
    }

    #[test]
    fn byte_reads_cross_boundaries() {
        let msgs = messages(&[3, 0, 4]);
        let mut src = Chunked {
            data: framed(&msgs),
            at: 0,
            chunks: vec![1000],
            call: 0,
        };
        let mut r = FrameReader::default();
        let mut buf = [0u8; 64];
        let n = r.read_bytes(&mut src, &mut buf).unwrap();
        assert_eq!(&buf[..n], &msgs.concat()[..], "one read takes every queued message");
        assert_eq!(r.read_bytes(&mut src, &mut buf).unwrap(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn message_reads_account_for_every_byte(
            sizes in proptest::collection::vec(0usize..300, 0..20),
            chunks in proptest::collection::vec(1usize..400, 1..6),
            bufsize in 0usize..128,
        ) {
            let msgs = messages(&sizes);
            let mut src = Chunked { data: framed(&msgs), at: 0, chunks, call: 0 };
            let mut r = FrameReader::default();
            let mut buf = vec![0u8; bufsize];
            for m in &msgs {
                let mut got = Vec::new();
                loop {
                    let mut filled = 0;
                    let end = r.read_message(&mut src, &mut buf, &mut filled).unwrap();
                    got.extend_from_slice(&buf[..filled]);
                    match end {
                        MsgEnd::Complete => break,
                        MsgEnd::More => {
                            prop_assert_eq!(filled, buf.len(), "More only with a full buffer");
                            // A zero-length buffer learns only that a message waits.
                            if buf.is_empty() { buf = vec![0u8; 7]; }
                        }
                        MsgEnd::Eof => prop_assert!(false, "early end"),
                    }
                }
                prop_assert_eq!(&got, m);
                buf = vec![0u8; bufsize];
            }
            let mut filled = 0;
            prop_assert_eq!(r.read_message(&mut src, &mut buf, &mut filled).unwrap(), MsgEnd::Eof);
        }

        #[test]
        fn large_buffers_read_ahead_and_account_for_every_byte(
            sizes in proptest::collection::vec(0usize..20_000, 0..12),
            chunks in proptest::collection::vec(1usize..30_000, 1..6),
            bufsize in READ_AHEAD - 4..READ_AHEAD + 4_000,
        ) {
            let msgs = messages(&sizes);
            let mut src = Chunked { data: framed(&msgs), at: 0, chunks, call: 0 };
            let mut r = FrameReader::default();
            let mut buf = vec![0u8; bufsize];
            for m in &msgs {
                let mut got = Vec::new();
                loop {
                    let mut filled = 0;
                    let end = r.read_message(&mut src, &mut buf, &mut filled).unwrap();
                    got.extend_from_slice(&buf[..filled]);
                    match end {
                        MsgEnd::Complete => break,
                        MsgEnd::More => prop_assert_eq!(filled, buf.len(), "More only with a full buffer"),
                        MsgEnd::Eof => prop_assert!(false, "early end"),
                    }
                }
                prop_assert_eq!(&got, m);
            }
            let mut filled = 0;
            prop_assert_eq!(r.read_message(&mut src, &mut buf, &mut filled).unwrap(), MsgEnd::Eof);
        }

        #[test]
        fn byte_reads_return_the_concatenation(
            sizes in proptest::collection::vec(0usize..300, 0..20),
            chunks in proptest::collection::vec(1usize..400, 1..6),
            bufsize in 1usize..128,
        ) {
            let msgs = messages(&sizes);
            let mut src = Chunked { data: framed(&msgs), at: 0, chunks, call: 0 };
            let mut r = FrameReader::default();
            let mut buf = vec![0u8; bufsize];
            let mut got = Vec::new();
            loop {
                let n = r.read_bytes(&mut src, &mut buf).unwrap();
                if n == 0 { break; }
                got.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(got, msgs.concat());
        }
    }
}
