//! The shared-memory data path between two ends of one real segment,
//! driven by random operations, with a hostile peer scribbling on the
//! shared bytes in between (`pipeslot::shm_fuzzing`).
//!
//! Oracle: nothing panics or blocks (every call is non-blocking); every
//! error names a Win32 code; and until the first scribble or disconnect,
//! what each end reads in message mode is exactly, in order, what the other
//! wrote (a model queue per direction).

#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use pipeslot::shm_fuzzing::{Read, ShmPair};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) | u16::from(self.byte()) << 8
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// What one direction has accepted and not yet been read, for the model.
#[derive(Default)]
struct Dir {
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the front message already delivered.
    at: usize,
}

fn win32_named(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return;
    }
    assert!(
        pipeslot::Error::win32(e).is_some(),
        "an error without a Win32 code: {e}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let framed = inp.byte() & 1 == 1;
    let out_buffer = 4096 << (inp.byte() % 3);
    let in_buffer = 4096 << (inp.byte() % 3);
    let Ok(pair) = ShmPair::new(framed, out_buffer, in_buffer) else {
        return;
    };
    // dirs[e]: what end e wrote, for the other end to read.
    let mut dirs = [Dir::default(), Dir::default()];
    let mut exact = framed;
    let mut seq = 0u8;
    for _ in 0..200 {
        if inp.0.is_empty() {
            break;
        }
        let op = inp.byte() % 9;
        let e = usize::from(inp.byte() & 1);
        match op {
            0 => {
                let len = usize::from(inp.u16()) % 20_000;
                let nowait = inp.byte() & 1 == 1;
                seq = seq.wrapping_add(1);
                let msg: Vec<u8> = (0..len).map(|i| seq.wrapping_add(i as u8)).collect();
                match pair.write(e, &msg, nowait) {
                    Ok(n) if n == msg.len() => dirs[e].queue.push_back(msg),
                    Ok(0) => {}
                    // Not PIPE_NOWAIT (tokio's writes): a byte pipe takes
                    // what fits, as a socket does (no model for bytes).
                    Ok(n) if !framed && !nowait && n < len => {}
                    Ok(n) => panic!("a message write took {n} of {len} bytes"),
                    Err(err) => win32_named(&err),
                }
            }
            1 => {
                let mut buf = vec![0u8; usize::from(inp.u16()) % 20_000];
                match pair.read_message(e, &mut buf) {
                    Ok((how, n)) if exact => {
                        let d = &mut dirs[1 - e];
                        match how {
                            Read::Eof => panic!("end of pipe with both ends open"),
                            Read::Complete | Read::More | Read::Partial => {
                                let front = d.queue.front().expect("a message read with nothing written");
                                assert_eq!(&buf[..n], &front[d.at..d.at + n], "wrong bytes");
                                d.at += n;
                                if how == Read::Complete {
                                    assert_eq!(d.at, front.len(), "complete before the end of the message");
                                    d.queue.pop_front();
                                    d.at = 0;
                                } else {
                                    assert!(d.at < front.len(), "more past the end of the message");
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        win32_named(&err);
                        if exact && err.kind() == std::io::ErrorKind::WouldBlock {
                            let d = &dirs[1 - e];
                            // Nothing to read only when nothing is left, or
                            // only zero-length messages owed behind a full ring,
                            // or the rest of a message larger than the ring not
                            // yet pushed by its writer.
                            assert!(
                                d.queue.iter().all(|m| m.is_empty())
                                    || d.at > 0 && buf.is_empty()
                                    || pair.has_pending(1 - e),
                                "a read found nothing with a message written"
                            );
                        }
                    }
                }
            }
            2 => {
                let mut buf = vec![0u8; usize::from(inp.byte()) * 64];
                if let Err(err) = pair.read_bytes(e, &mut buf) {
                    win32_named(&err);
                }
                exact = false; // byte reads cross messages; the model stops here
            }
            3 => {
                let mut buf = vec![0u8; usize::from(inp.byte()) * 64];
                match pair.peek(e, &mut buf) {
                    Ok((read, available, _left)) => assert!(read <= buf.len() && read <= available.max(read)),
                    Err(err) => win32_named(&err),
                }
            }
            4 => {
                if let Err(err) = pair.flush_now(e) {
                    win32_named(&err);
                }
            }
            5 => {
                if let Err(err) = pair.unread_here(e) {
                    win32_named(&err);
                }
            }
            6 => {
                let off = usize::from(inp.u16()) | usize::from(inp.byte()) << 16;
                let n = usize::from(inp.byte() % 16);
                let bytes = inp.take(n).to_vec();
                pair.scribble(off, &bytes);
                exact = false;
            }
            7 => {
                if let Err(err) = pair.drain_pending(e) {
                    win32_named(&err);
                }
            }
            _ => {
                pair.disconnect();
                exact = false;
            }
        }
    }
});
