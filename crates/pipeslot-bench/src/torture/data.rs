//! What the torture sends: reproducible random sizes and bytes from one
//! printed seed, so a failure can be run again exactly.

/// xorshift64*: small, fast, and the same on every machine.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        // splitmix64 first: seeds one bit apart (a run's parts) start far
        // apart; and never the all-zero state, which xorshift cannot leave.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `0..=max`.
    pub(crate) fn upto(&mut self, max: usize) -> usize {
        self.below(max as u64 + 1) as usize
    }
}

/// The largest message the load sends: 64 KiB.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The `seq`th message of `stream`, `len` bytes: its first eight bytes are
/// the sequence number (as many as fit), the rest depends on both, so a
/// reply from another message or another client never compares equal.
pub(crate) fn message(stream: u64, seq: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut r = Rng::new(stream.rotate_left(32) ^ seq);
    while out.len() < len {
        out.extend_from_slice(&r.next_u64().to_le_bytes());
    }
    out.truncate(len);
    let head = seq.to_le_bytes();
    let n = len.min(8);
    out[..n].copy_from_slice(&head[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_reproducible_and_distinct() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        message(1, 7, 100, &mut a);
        message(1, 7, 100, &mut b);
        assert_eq!(a, b);
        assert_eq!(&a[..8], &7u64.to_le_bytes());
        message(2, 7, 100, &mut b);
        assert_ne!(a[8..], b[8..], "another stream, other bytes");
        message(1, 7, 3, &mut b);
        assert_eq!(b, [7, 0, 0]);
        message(1, 7, 0, &mut b);
        assert!(b.is_empty());
        let mut r = Rng::new(0);
        assert!((0..1000).all(|_| r.upto(5) <= 5));
    }
}
