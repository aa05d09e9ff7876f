//! Data: message boundaries (zero-length too), short reads, byte reads of
//! message pipes, transact, peek, flush, disconnect, backpressure.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use pipeslot::{MsgRead, PeekInfo, PipeMode, Win32Error};

use crate::util::{self, assert_win32, watchdog, Peer, SECOND};

fn pair(tag: &str, mode: PipeMode) -> (NamedPipeServer, NamedPipeClient) {
    let name = util::name(tag);
    let s = ServerOptions::new().pipe_mode(mode).create(&name).unwrap();
    let c = ClientOptions::new().pipe_mode(mode).open(&name).unwrap();
    s.connect().unwrap();
    (s, c)
}

#[test]
fn messages_keep_their_boundaries_including_empty_ones() {
    let (s, c) = pair("msgs", PipeMode::Message);
    for m in [&b"one"[..], b"", b"three", b""] {
        c.write_msg(m).unwrap();
    }
    let mut buf = [0u8; 64];
    for want in [&b"one"[..], b"", b"three", b""] {
        let r = s.read_msg(&mut buf).unwrap();
        assert_eq!(
            r,
            MsgRead {
                len: want.len(),
                more: false
            }
        );
        assert_eq!(&buf[..r.len], want);
    }
}

#[test]
fn byte_pipes_do_not_keep_boundaries() {
    let (mut s, c) = pair("bytes", PipeMode::Byte);
    c.write_msg(b"one").unwrap();
    c.write_msg(b"two").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"onetwo", "a byte pipe is a stream");
}

#[test]
fn a_short_buffer_gets_the_part_and_more_and_nothing_is_lost() {
    let (s, c) = pair("short", PipeMode::Message);
    c.write_msg(b"0123456789").unwrap();
    c.write_msg(b"next").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.read_msg(&mut buf).unwrap(), MsgRead { len: 4, more: true });
    assert_eq!(&buf, b"0123");
    assert_eq!(s.read_msg(&mut buf).unwrap(), MsgRead { len: 4, more: true });
    assert_eq!(&buf, b"4567");
    assert_eq!(s.read_msg(&mut buf).unwrap(), MsgRead { len: 2, more: false });
    assert_eq!(&buf[..2], b"89");
    assert_eq!(s.read_msg(&mut buf).unwrap(), MsgRead { len: 4, more: false });
    assert_eq!(&buf, b"next");
}

#[test]
fn byte_read_mode_reads_across_message_boundaries() {
    let name = util::name("bytemode");
    let mut s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .read_mode(PipeMode::Byte)
        .create(&name)
        .unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    c.write_msg(b"ab").unwrap();
    c.write_msg(b"").unwrap();
    c.write_msg(b"cde").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"abcde");
    // io::Read in message mode returns one message per call.
    let (mut s2, c2) = pair("readmsgmode", PipeMode::Message);
    c2.write_msg(b"ab").unwrap();
    c2.write_msg(b"cd").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(s2.read(&mut buf).unwrap(), 2);
    assert_eq!(s2.read(&mut buf).unwrap(), 2);
}

#[test]
fn large_messages_cross_intact() {
    let (s, c) = pair("large", PipeMode::Message);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let b2 = big.clone();
    let w = std::thread::spawn(move || {
        c.write_msg(&b2).unwrap();
        c.write_msg(b"tail").unwrap();
        c
    });
    let mut buf = vec![0u8; 4 << 20];
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(
        r,
        MsgRead {
            len: big.len(),
            more: false
        }
    );
    assert!(buf[..r.len] == big[..]);
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"tail");
    let _ = w.join().unwrap();
}

#[test]
fn transact_writes_one_and_reads_one() {
    let name = util::name("transact");
    let peer = Peer::spawn("server_echo", &[&name, "1", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..5 {
        let r = c.transact(format!("req{i}").as_bytes(), &mut buf).unwrap();
        assert_eq!(&buf[..r.len], format!("{}:req{i}", peer.pid()).as_bytes());
    }
    // Win32: transact needs message read mode.
    c.set_read_mode(PipeMode::Byte).unwrap();
    assert_win32(c.transact(b"x", &mut buf), Win32Error::ERROR_BAD_PIPE);
}

#[test]
fn peek_shows_without_consuming() {
    let (s, c) = pair("peek", PipeMode::Message);
    let mut buf = [0u8; 3];
    assert_eq!(
        s.peek(&mut buf).unwrap(),
        PeekInfo {
            read: 0,
            available: 0,
            left_in_message: 0
        }
    );
    c.write_msg(b"hello").unwrap();
    c.write_msg(b"yo").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let p = s.peek(&mut buf).unwrap();
    assert_eq!(
        p,
        PeekInfo {
            read: 3,
            available: 7,
            left_in_message: 2
        }
    );
    assert_eq!(&buf, b"hel");
    // Still there: a read after the peek gets it all.
    let mut big = [0u8; 16];
    let r = s.read_msg(&mut big).unwrap();
    assert_eq!(&big[..r.len], b"hello");
    // Half of a message read: the peek starts where the reader stands.
    let mut two = [0u8; 1];
    assert!(s.read_msg(&mut two).unwrap().more);
    let p = s.peek(&mut big).unwrap();
    assert_eq!(
        p,
        PeekInfo {
            read: 1,
            available: 1,
            left_in_message: 0
        }
    );
    assert_eq!(&big[..1], b"o");
    // Byte pipes: no message left.
    let (bs, mut bc) = pair("peekbytes", PipeMode::Byte);
    bc.write_all(b"abcdef").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let p = bs.peek(&mut buf).unwrap();
    assert_eq!(
        p,
        PeekInfo {
            read: 3,
            available: 6,
            left_in_message: 0
        }
    );
    // After the peer is gone and nothing is left: broken pipe. Another
    // test's fork may hold a copy of the client's socket until its exec, so
    // "gone" can come a moment after the drop: until then the peek shows
    // nothing.
    drop(bc);
    let mut all = [0u8; 6];
    (&bs).read_exact(&mut all).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let ended = loop {
        match bs.peek(&mut buf) {
            Ok(p) if std::time::Instant::now() < deadline => {
                assert_eq!(
                    p,
                    PeekInfo {
                        read: 0,
                        available: 0,
                        left_in_message: 0
                    }
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            r => break r,
        }
    };
    assert_win32(ended, Win32Error::ERROR_BROKEN_PIPE);
}

#[test]
fn flush_buffers_returns_when_the_peer_has_read_everything() {
    let (s, c) = pair("flush", PipeMode::Message);
    c.write_msg(&[7u8; 10_000]).unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut buf = vec![0u8; 20_000];
        let r = s.read_msg(&mut buf).unwrap();
        (r.len, Instant::now(), s)
    });
    let t = Instant::now();
    c.flush_buffers().unwrap();
    let flushed_at = Instant::now();
    let (n, read_at, _s) = reader.join().unwrap();
    assert_eq!(n, 10_000);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "flush waited for the reader: {:?}",
        t.elapsed()
    );
    assert!(
        flushed_at + Duration::from_millis(50) >= read_at,
        "flush did not return before the read"
    );
    // And io::Write::flush is a no-op, as for files.
    let mut c2 = c;
    c2.write_all(b"x").unwrap();
    let t = Instant::now();
    c2.flush().unwrap();
    assert!(t.elapsed() < Duration::from_millis(100));
}

#[test]
fn disconnect_discards_what_the_client_sent_and_the_next_client_starts_clean() {
    let name = util::name("discard");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    c.write_msg(b"stale data").unwrap();
    s.disconnect().unwrap();
    // Win32 (test_DisconnectNamedPipe): the client is told it is not connected.
    assert_win32(c.write_msg(b"more"), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    s.connect_timeout(Duration::ZERO).unwrap();
    let c2 = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    c2.write_msg(b"fresh").unwrap();
    let mut buf = [0u8; 32];
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"fresh");
}

#[test]
fn writes_wait_when_the_reader_is_slow_memory_stays_bounded() {
    let name = util::name("backpressure");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .in_buffer_size(16 * 1024)
        .create(&name)
        .unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let w2 = Arc::clone(&written);
    let writer = std::thread::spawn(move || {
        let chunk = [1u8; 1024];
        for _ in 0..20_000 {
            if c.write_msg(&chunk).is_err() {
                break;
            }
            w2.fetch_add(1024, Ordering::Relaxed);
        }
        c
    });
    std::thread::sleep(Duration::from_millis(300));
    let in_flight = written.load(Ordering::Relaxed);
    assert!(
        in_flight < 1024 * 1024,
        "the writer was held back: {in_flight} bytes in flight"
    );
    assert!(!writer.is_finished());
    // Reading lets it finish: every message arrives.
    let count = watchdog(60 * SECOND, move || {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while n < 20_000 {
            let r = s.read_msg(&mut buf).unwrap();
            assert_eq!(r.len, 1024);
            n += 1;
        }
        n
    });
    assert_eq!(count, 20_000);
    let _ = writer.join().unwrap();
}

#[test]
fn the_pipes_direction_is_enforced_on_each_end() {
    let name = util::name("oneway");
    let mut s = ServerOptions::new().access_outbound(false).create(&name).unwrap();
    let mut c = ClientOptions::new().read(false).open(&name).unwrap();
    s.connect().unwrap();
    assert_win32(s.write(b"x"), Win32Error::ERROR_ACCESS_DENIED);
    let mut b = [0u8; 1];
    assert_win32(c.read(&mut b), Win32Error::ERROR_ACCESS_DENIED);
    c.write_all(b"y").unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
}

#[test]
fn nonblocking_reads_say_no_data() {
    let (s, c) = pair("nowait", PipeMode::Message);
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    let e = s.read_msg(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_NO_DATA));
    c.write_msg(b"now").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"now");
}

#[test]
fn write_msgs_keeps_every_boundary_across_batches() {
    let (s, c) = pair("batch", PipeMode::Message);
    // More than one sendmsg's worth (512), zero-length messages included.
    let msgs: Vec<Vec<u8>> = (0..1300usize).map(|i| vec![i as u8; i % 70]).collect();
    let slices: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 128];
        (0..1300usize)
            .map(|_| {
                let r = s.read_msg(&mut buf).unwrap();
                assert!(!r.more);
                buf[..r.len].to_vec()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(c.write_msgs(&slices).unwrap(), 1300);
    assert_eq!(watchdog(10 * SECOND, move || reader.join().unwrap()), msgs);
}

#[test]
fn write_msgs_on_a_byte_pipe_writes_the_bytes_in_order() {
    let (mut s, c) = pair("batch-bytes", PipeMode::Byte);
    assert_eq!(c.write_msgs(&[b"ab", b"", b"cde"]).unwrap(), 3);
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abcde", "no framing on a byte pipe");
}

#[test]
fn write_msgs_waits_for_a_slow_reader_and_loses_nothing() {
    let name = util::name("batch-slow");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .in_buffer_size(4096)
        .create(&name)
        .unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    s.connect().unwrap();
    let big = vec![7u8; 100_000];
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 200_000];
        let mut lens = Vec::new();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            lens.push(s.read_msg(&mut buf).unwrap().len);
        }
        lens
    });
    assert_eq!(c.write_msgs(&[&big, b"x", &big]).unwrap(), 3);
    assert_eq!(
        watchdog(10 * SECOND, move || reader.join().unwrap()),
        vec![100_000, 1, 100_000]
    );
}

#[test]
fn write_msgs_to_a_closed_pipe_says_no_data() {
    let (s, c) = pair("batch-closed", PipeMode::Message);
    drop(s);
    std::thread::sleep(Duration::from_millis(20));
    assert_win32(c.write_msgs(&[b"a", b"b"]), Win32Error::ERROR_NO_DATA);
}
