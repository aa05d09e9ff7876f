//! The load: N clients × M messages against an echo server in another
//! process, message mode, random sizes 0..=64 KiB (1..=65,535 through Samba), replies read through
//! random short buffers (ERROR_MORE_DATA and the rest after it), by
//! `transact` or by a write and a read. Every reply is compared with what
//! was sent, byte for byte: a lost, cut, reordered or foreign message is
//! a failure.

use std::io;
use std::time::{Duration, Instant};

use pipeslot::{MsgRead, PipeMode, WaitTimeout, Win32Error};

use super::data::{message, Rng, MAX_MESSAGE};
use super::dial::Dial;

/// What one load run did.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadFigures {
    pub(crate) front: &'static str,
    pub(crate) clients: usize,
    pub(crate) per_client: u64,
    /// The shortest and longest message sent.
    pub(crate) lens: (usize, usize),
    /// Replies compared with what was sent.
    pub(crate) checked: u64,
    pub(crate) bytes: u64,
    /// Reads that came back with ERROR_MORE_DATA and were continued.
    pub(crate) partial_reads: u64,
    pub(crate) elapsed: Duration,
    pub(crate) failures: Vec<String>,
}

/// One client's random choices.
struct Plan {
    rng: Rng,
    min_len: usize,
    max_len: usize,
}

/// One message's exchange, decided before it runs.
struct Step {
    seq: u64,
    len: usize,
    transact: bool,
    first_buf: usize,
}

impl Plan {
    fn new(seed: u64, stream: u64, (min_len, max_len): (usize, usize)) -> Plan {
        Plan {
            rng: Rng::new(seed ^ stream.wrapping_mul(0x100_0000_01B3)),
            min_len,
            max_len,
        }
    }

    fn step(&mut self, seq: u64) -> Step {
        let len = self.min_len + self.rng.upto(self.max_len - self.min_len);
        Step {
            seq,
            len,
            transact: self.rng.below(2) == 0,
            // From an empty buffer to one byte more than needed.
            first_buf: self.rng.upto(len + 1),
        }
    }

    /// The size of a buffer that continues a partial read.
    fn next_buf(&mut self, len: usize) -> usize {
        1 + self.rng.upto(len)
    }
}

/// One client's buffers, and the bookkeeping of each read.
struct Exchange {
    stream: u64,
    plan: Plan,
    sent: Vec<u8>,
    got: Vec<u8>,
    buf: Vec<u8>,
}

impl Exchange {
    /// `lens`: the shortest and the longest message to send.
    fn new(seed: u64, stream: u64, lens: (usize, usize)) -> Exchange {
        Exchange {
            stream,
            plan: Plan::new(seed, stream, lens),
            sent: Vec::new(),
            got: Vec::new(),
            buf: vec![0u8; MAX_MESSAGE + 1],
        }
    }

    /// The next message: decided, built, and its reply emptied.
    fn next(&mut self, seq: u64) -> Step {
        let s = self.plan.step(seq);
        message(self.stream, seq, s.len, &mut self.sent);
        self.got.clear();
        s
    }

    /// A continuation read: its buffer size, and the bytes still due.
    fn more(&mut self, s: &Step, f: &mut LoadFigures) -> (usize, usize) {
        f.partial_reads += 1;
        (self.plan.next_buf(s.len), s.len.saturating_sub(self.got.len()))
    }

    /// One read of `n` bytes, asked with `left` due: checked and kept.
    fn took(&mut self, f: &mut LoadFigures, s: &Step, left: usize, n: usize, r: MsgRead) {
        exact(f, self.stream, s.seq, left, n, r);
        self.got.extend_from_slice(&self.buf[..r.len]);
    }

    /// The whole reply against what was sent.
    fn done(&self, f: &mut LoadFigures, s: &Step) {
        check(f, self.stream, s.seq, &self.sent, &self.got);
    }
}

/// Compares one reply; a failure names the client, the message and what
/// differed.
fn check(f: &mut LoadFigures, stream: u64, seq: u64, sent: &[u8], got: &[u8]) {
    f.checked += 1;
    f.bytes += sent.len() as u64;
    if sent != got {
        let at = sent
            .iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(sent.len().min(got.len()));
        f.failures.push(format!(
            "client {stream}, message {seq}: sent {} bytes, got {} back, first difference at byte {at}",
            sent.len(),
            got.len()
        ));
    }
}

/// ReadFile's rule in message mode, checked on every read: a buffer that
/// holds the rest of the message gets all of it; a smaller one is filled
/// and says ERROR_MORE_DATA (`more`). Never a short read because the
/// bytes were still on their way.
fn exact(f: &mut LoadFigures, stream: u64, seq: u64, left: usize, buf: usize, r: MsgRead) {
    let want = (left.min(buf), left > buf);
    if (r.len, r.more) != want {
        f.failures.push(format!(
            "client {stream}, message {seq}: a {buf}-byte read with {left} bytes left gave {} bytes, more {} \
             (Win32: {} bytes, more {})",
            r.len, r.more, want.0, want.1
        ));
    }
}

/// The blocking front end: a thread per client.
pub(crate) fn blocking(dial: &Dial, clients: usize, per_client: u64, seed: u64) -> LoadFigures {
    let started = Instant::now();
    let threads: Vec<_> = (0..clients as u64)
        .map(|stream| {
            let dial = dial.clone();
            std::thread::spawn(move || {
                let mut f = LoadFigures::default();
                if let Err(e) = blocking_client(&dial, stream, per_client, seed, &mut f) {
                    f.failures.push(format!("client {stream}: {e}"));
                }
                f
            })
        })
        .collect();
    let mut all = LoadFigures {
        front: dial.label,
        clients,
        per_client,
        lens: (dial.min_len, dial.max_len),
        ..LoadFigures::default()
    };
    for t in threads {
        match t.join() {
            Ok(f) => merge(&mut all, f),
            Err(_) => all.failures.push("a client thread panicked".to_owned()),
        }
    }
    all.elapsed = started.elapsed();
    all
}

fn blocking_client(dial: &Dial, stream: u64, per_client: u64, seed: u64, f: &mut LoadFigures) -> io::Result<()> {
    let c = dial.open_waiting(Duration::from_secs(30))?;
    let mut x = Exchange::new(seed, stream, (dial.min_len, dial.max_len));
    for seq in 0..per_client {
        let s = x.next(seq);
        let first = &mut x.buf[..s.first_buf];
        // ERROR_MORE_DATA is `more`, not an error: the rest follows.
        let mut r: MsgRead = if s.transact {
            c.transact(&x.sent, first)?
        } else {
            c.write_msg(&x.sent)?;
            c.read_msg(first)?
        };
        x.took(f, &s, s.len, s.first_buf, r);
        while r.more {
            let (n, left) = x.more(&s, f);
            r = c.read_msg(&mut x.buf[..n])?;
            x.took(f, &s, left, n, r);
        }
        x.done(f, &s);
    }
    Ok(())
}

/// The tokio front end: a task per client on a two-thread runtime.
pub(crate) fn tokio(name: &str, clients: usize, per_client: u64, seed: u64) -> LoadFigures {
    let mut all = LoadFigures {
        front: "tokio",
        lens: (0, MAX_MESSAGE),
        clients,
        per_client,
        ..LoadFigures::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            all.failures.push(format!("tokio runtime: {e}"));
            return all;
        }
    };
    let started = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..clients as u64)
            .map(|stream| {
                let name = name.to_owned();
                tokio::spawn(async move {
                    let mut f = LoadFigures::default();
                    if let Err(e) = tokio_client(&name, stream, per_client, seed, &mut f).await {
                        f.failures.push(format!("client {stream}: {e}"));
                    }
                    f
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    for r in results {
        match r {
            Ok(f) => merge(&mut all, f),
            Err(e) => all.failures.push(format!("a client task failed: {e}")),
        }
    }
    all.elapsed = started.elapsed();
    all
}

async fn tokio_client(name: &str, stream: u64, per_client: u64, seed: u64, f: &mut LoadFigures) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let c = loop {
        match pipeslot::tokio::ClientOptions::new()
            .pipe_mode(PipeMode::Message)
            .open(name)
        {
            Err(e) if pipeslot::Error::win32(&e) == Some(Win32Error::ERROR_PIPE_BUSY) && Instant::now() < deadline => {
                pipeslot::tokio::wait_named_pipe(name, WaitTimeout::After(Duration::from_secs(5))).await?;
            }
            r => break r?,
        }
    };
    let mut x = Exchange::new(seed, stream, (0, MAX_MESSAGE));
    for seq in 0..per_client {
        let s = x.next(seq);
        let first = &mut x.buf[..s.first_buf];
        let mut r = if s.transact {
            c.transact(&x.sent, first).await?
        } else {
            c.write_msg(&x.sent).await?;
            c.read_msg(first).await?
        };
        x.took(f, &s, s.len, s.first_buf, r);
        while r.more {
            let (n, left) = x.more(&s, f);
            r = c.read_msg(&mut x.buf[..n]).await?;
            x.took(f, &s, left, n, r);
        }
        x.done(f, &s);
    }
    Ok(())
}

fn merge(all: &mut LoadFigures, f: LoadFigures) {
    all.checked += f.checked;
    all.bytes += f.bytes;
    all.partial_reads += f.partial_reads;
    all.failures.extend(f.failures);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(len: usize, more: bool) -> MsgRead {
        MsgRead { len, more }
    }

    #[test]
    fn a_wrong_reply_and_an_inexact_read_are_failures() {
        let mut f = LoadFigures::default();
        check(&mut f, 1, 2, b"abc", b"abc");
        exact(&mut f, 1, 2, 10, 4, read(4, true));
        exact(&mut f, 1, 2, 4, 10, read(4, false));
        exact(&mut f, 1, 2, 0, 0, read(0, false));
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        check(&mut f, 1, 2, b"abc", b"abd");
        check(&mut f, 1, 3, b"abc", b"ab");
        exact(&mut f, 1, 4, 10, 20, read(6, false)); // short though it fit
        exact(&mut f, 1, 5, 10, 4, read(4, false)); // no ERROR_MORE_DATA
        assert_eq!(f.failures.len(), 4, "{:?}", f.failures);
        assert!(f.failures[0].contains("first difference at byte 2"));
        assert_eq!(f.checked, 3);
    }
}
