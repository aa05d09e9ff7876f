//! One direction of a connection in shared memory: a single-producer,
//! single-consumer byte ring.
//!
//! ```text
//!  ctl +0    tail u64    bytes ever written (the producer's; Release)
//!  ctl +64   head u64    bytes ever read    (the consumer's; Release)
//!  ctl +128  reader_waits u32   the consumer sleeps until tail moves
//!  ctl +132  writer_waits u32   the producer sleeps until head moves
//!  data      cap bytes (a power of two), position = counter & (cap - 1)
//! ```
//!
//! Each side keeps its own counter privately and only publishes it: what it
//! reads of the peer's counter is untrusted and checked (`0 ≤ tail - head ≤
//! cap`). A peer that writes nonsense there gets [`Corrupt`] on its own
//! connection; it can make us copy garbage bytes of its own messages, never
//! read or write outside the ring. The wait flags follow the classic
//! pattern: the sleeper sets its flag, fences, checks again, then sleeps;
//! the other side moves its counter, fences, and rings the bell only when
//! the flag is set, so a wake-up is sent only to a side that waits. The
//! side that rings clears the flag (one bell per request): a sleeper that
//! must wait again sets it again, which lets several waiters of one end (tokio
//! tasks) share a flag without counting each other.

use std::sync::atomic::{fence, Ordering};

use super::mem::Region;

const TAIL: usize = 0;
const HEAD: usize = 64;
const READER_WAITS: usize = 128;
const WRITER_WAITS: usize = 132;
/// The control block of one ring (three cache lines).
#[cfg(test)]
pub(crate) const CTL_LEN: usize = 192;

/// The peer broke the ring's rules (its counter is out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Where one ring lives in the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingLayout {
    pub(crate) ctl: usize,
    pub(crate) data: usize,
    /// A power of two.
    pub(crate) cap: usize,
}

impl RingLayout {
    fn copy_in(&self, r: &Region, at: u64, src: &[u8]) {
        let pos = (at as usize) & (self.cap - 1);
        let first = src.len().min(self.cap - pos);
        r.write(self.data + pos, &src[..first]);
        r.write(self.data, &src[first..]);
    }

    fn copy_out(&self, r: &Region, at: u64, dst: &mut [u8]) {
        let pos = (at as usize) & (self.cap - 1);
        let first = dst.len().min(self.cap - pos);
        r.read(self.data + pos, &mut dst[..first]);
        r.read(self.data, &mut dst[first..]);
    }

    fn used(&self, tail: u64, head: u64) -> Result<usize, Corrupt> {
        let used = tail.wrapping_sub(head);
        if used > self.cap as u64 {
            return Err(Corrupt);
        }
        Ok(used as usize)
    }
}

/// Reads a wait flag and clears it when set (the common case, no sleeper,
/// costs a load and no write to the shared line).
fn take(r: &Region, at: usize) -> bool {
    let flag = r.u32_at(at);
    flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0
}

/// The producer's end.
#[derive(Debug)]
pub(crate) struct Tx {
    lay: RingLayout,
    tail: u64,
}

impl Tx {
    pub(crate) fn new(lay: RingLayout) -> Tx {
        Tx { lay, tail: 0 }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.lay.cap
    }

    /// Bytes written and not yet read by the peer.
    pub(crate) fn unread(&self, r: &Region) -> Result<usize, Corrupt> {
        let head = r.u64_at(self.lay.ctl + HEAD).load(Ordering::Acquire);
        self.lay.used(self.tail, head)
    }

    /// Room for this many bytes now.
    pub(crate) fn free(&self, r: &Region) -> Result<usize, Corrupt> {
        Ok(self.lay.cap - self.unread(r)?)
    }

    /// Writes as much of `src` as fits and publishes it; how much that was.
    pub(crate) fn push(&mut self, r: &Region, src: &[u8]) -> Result<usize, Corrupt> {
        let n = src.len().min(self.free(r)?);
        if n == 0 {
            return Ok(0);
        }
        self.lay.copy_in(r, self.tail, &src[..n]);
        self.tail = self.tail.wrapping_add(n as u64);
        r.u64_at(self.lay.ctl + TAIL).store(self.tail, Ordering::Release);
        Ok(n)
    }

    /// Writes all of the pieces, or nothing when they do not fit together.
    pub(crate) fn push_all(&mut self, r: &Region, pieces: &[&[u8]]) -> Result<bool, Corrupt> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if total > self.free(r)? {
            return Ok(false);
        }
        let mut at = self.tail;
        for p in pieces {
            self.lay.copy_in(r, at, p);
            at = at.wrapping_add(p.len() as u64);
        }
        self.tail = at;
        r.u64_at(self.lay.ctl + TAIL).store(self.tail, Ordering::Release);
        Ok(true)
    }

    /// After a push: whether the consumer sleeps and needs the bell; the
    /// request is used up.
    pub(crate) fn reader_waits(&self, r: &Region) -> bool {
        fence(Ordering::SeqCst);
        take(r, self.lay.ctl + READER_WAITS)
    }

    /// The producer is about to sleep (`true`) or has woken (`false`).
    pub(crate) fn set_waiting(&self, r: &Region, on: bool) {
        // Setting needs the fence before the sleeper looks again (the
        // other side fences before it looks at the flag); clearing late only
        // costs a spare bell.
        r.u32_at(self.lay.ctl + WRITER_WAITS)
            .store(u32::from(on), Ordering::Relaxed);
        if on {
            fence(Ordering::SeqCst);
        }
    }
}

/// The consumer's end.
#[derive(Debug)]
pub(crate) struct Rx {
    lay: RingLayout,
    head: u64,
}

impl Rx {
    pub(crate) fn new(lay: RingLayout) -> Rx {
        Rx { lay, head: 0 }
    }

    /// Bytes readable now.
    pub(crate) fn available(&self, r: &Region) -> Result<usize, Corrupt> {
        let tail = r.u64_at(self.lay.ctl + TAIL).load(Ordering::Acquire);
        self.lay.used(tail, self.head)
    }

    /// Copies readable bytes from `skip` on into `dst`, consuming nothing.
    /// The caller has seen `skip + dst.len()` bytes available.
    pub(crate) fn peek(&self, r: &Region, skip: usize, dst: &mut [u8]) {
        debug_assert!(skip + dst.len() <= self.lay.cap);
        self.lay.copy_out(r, self.head.wrapping_add(skip as u64), dst);
    }

    /// Marks `n` bytes (seen available) as read.
    pub(crate) fn consume(&mut self, r: &Region, n: usize) {
        if n == 0 {
            return;
        }
        self.head = self.head.wrapping_add(n as u64);
        r.u64_at(self.lay.ctl + HEAD).store(self.head, Ordering::Release);
    }

    /// After a consume: whether the producer sleeps and needs the bell; the
    /// request is used up.
    pub(crate) fn writer_waits(&self, r: &Region) -> bool {
        fence(Ordering::SeqCst);
        take(r, self.lay.ctl + WRITER_WAITS)
    }

    /// The consumer is about to sleep (`true`) or has woken (`false`).
    pub(crate) fn set_waiting(&self, r: &Region, on: bool) {
        // Setting needs the fence before the sleeper looks again (the
        // other side fences before it looks at the flag); clearing late only
        // costs a spare bell.
        r.u32_at(self.lay.ctl + READER_WAITS)
            .store(u32::from(on), Ordering::Relaxed);
        if on {
            fence(Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn pair(cap: usize) -> (Arc<Region>, Tx, Rx) {
        let lay = RingLayout {
            ctl: 0,
            data: CTL_LEN,
            cap,
        };
        let r = Arc::new(Region::heap(CTL_LEN + cap));
        (r, Tx::new(lay), Rx::new(lay))
    }

    #[test]
    fn bytes_wrap_around_the_end_intact() {
        let (r, mut tx, mut rx) = pair(16);
        let mut got = Vec::new();
        for round in 0..10u8 {
            let msg: Vec<u8> = (0..11).map(|i| round * 16 + i).collect();
            assert_eq!(tx.push(&r, &msg), Ok(11));
            assert_eq!(rx.available(&r), Ok(11));
            let mut b = [0u8; 11];
            rx.peek(&r, 0, &mut b);
            rx.consume(&r, 11);
            assert_eq!(b.to_vec(), msg);
            got.push(b);
        }
        assert_eq!(tx.unread(&r), Ok(0));
    }

    #[test]
    fn a_full_ring_takes_what_fits_and_all_or_nothing_refuses() {
        let (r, mut tx, mut rx) = pair(8);
        assert_eq!(tx.push(&r, b"0123456789"), Ok(8));
        assert_eq!(tx.free(&r), Ok(0));
        assert_eq!(tx.push(&r, b"x"), Ok(0));
        rx.consume(&r, 3);
        assert_eq!(tx.push_all(&r, &[b"ab", b"cd"]), Ok(false));
        assert_eq!(tx.push_all(&r, &[b"ab", b"c"]), Ok(true));
        let mut b = [0u8; 8];
        rx.peek(&r, 0, &mut b);
        assert_eq!(&b, b"34567abc");
    }

    #[test]
    fn a_peer_counter_out_of_range_is_corrupt_not_trusted() {
        let (r, mut tx, rx) = pair(8);
        // The consumer claims to have read more than was written.
        r.u64_at(HEAD).store(5, Ordering::Relaxed);
        assert_eq!(tx.free(&r), Err(Corrupt));
        assert_eq!(tx.push(&r, b"x"), Err(Corrupt));
        // The producer claims more than the ring holds.
        r.u64_at(TAIL).store(9, Ordering::Relaxed);
        assert_eq!(rx.available(&r), Err(Corrupt));
        r.u64_at(TAIL).store(u64::MAX, Ordering::Relaxed);
        assert_eq!(rx.available(&r), Err(Corrupt));
    }

    #[test]
    fn counters_wrap_at_u64() {
        let lay = RingLayout {
            ctl: 0,
            data: CTL_LEN,
            cap: 8,
        };
        let r = Region::heap(CTL_LEN + 8);
        let start = u64::MAX - 2;
        r.u64_at(TAIL).store(start, Ordering::Relaxed);
        r.u64_at(HEAD).store(start, Ordering::Relaxed);
        let mut tx = Tx { lay, tail: start };
        let mut rx = Rx { lay, head: start };
        assert_eq!(tx.push(&r, b"abcdef"), Ok(6));
        assert_eq!(rx.available(&r), Ok(6));
        let mut b = [0u8; 6];
        rx.peek(&r, 0, &mut b);
        rx.consume(&r, 6);
        assert_eq!(&b, b"abcdef");
        assert_eq!(tx.unread(&r), Ok(0));
    }

    /// Two threads stream bytes through a small ring, each spinning on the
    /// other's counter (Miri checks the orderings for data races).
    #[test]
    fn two_threads_stream_through_a_small_ring() {
        let (r, mut tx, mut rx) = pair(16);
        let total: usize = if cfg!(miri) { 300 } else { 100_000 };
        let r2 = Arc::clone(&r);
        let producer = std::thread::spawn(move || {
            let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            let mut at = 0;
            while at < total {
                at += tx.push(&r2, &data[at..(at + 7).min(total)]).unwrap();
                std::thread::yield_now();
            }
        });
        let mut got = Vec::with_capacity(total);
        while got.len() < total {
            let n = rx.available(&r).unwrap().min(5);
            let mut b = [0u8; 5];
            rx.peek(&r, 0, &mut b[..n]);
            rx.consume(&r, n);
            got.extend_from_slice(&b[..n]);
            std::thread::yield_now();
        }
        producer.join().unwrap();
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }

    #[test]
    fn the_bell_rings_only_for_a_sleeper() {
        let (r, mut tx, mut rx) = pair(8);
        tx.push(&r, b"a").unwrap();
        assert!(!tx.reader_waits(&r));
        rx.set_waiting(&r, true);
        assert!(tx.reader_waits(&r));
        assert!(!tx.reader_waits(&r), "one bell per request");
        rx.consume(&r, 1);
        assert!(!rx.writer_waits(&r));
        tx.set_waiting(&r, true);
        assert!(rx.writer_waits(&r));
        assert!(!rx.writer_waits(&r), "one bell per request");
    }
}
