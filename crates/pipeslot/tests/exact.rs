//! The last differences from Win32 (as Wine's `dlls/kernel32/tests/pipe.c`
//! pins it) and from tokio's named-pipe API, each in both front ends where
//! both have the call.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use pipeslot::{PipeMode, Win32Error};

use crate::util::{self, assert_win32, watchdog, Peer, SECOND};

fn message_pair(name: &str) -> (NamedPipeServer, NamedPipeClient) {
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(name).unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(name).unwrap();
    s.connect().unwrap();
    (s, c)
}

/// Runs `f` on a current-thread runtime with timers.
fn on_tokio<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---- a direction the handle may not use never waits ---------------------

#[test]
fn tokio_reads_on_a_handle_that_may_not_read_fail_at_once() {
    let name = util::name("dir-tokio");
    watchdog(10 * SECOND, move || {
        on_tokio(async {
            use pipeslot::tokio::{ClientOptions, ServerOptions};
            // tokio's access_outbound(false) example: an inbound-only pipe.
            let mut server = ServerOptions::new().access_outbound(false).create(&name).unwrap();
            let mut client = ClientOptions::new().read(false).open(&name).unwrap();
            server.connect().await.unwrap();
            let mut buf = [0u8; 8];
            for e in [
                tokio::io::AsyncReadExt::read(&mut client, &mut buf)
                    .await
                    .map(drop)
                    .err(),
                client.read_msg(&mut buf).await.map(drop).err(),
                client.try_read(&mut buf).map(drop).err(),
                client.readable().await.err(),
                client
                    .try_read_vectored(&mut [std::io::IoSliceMut::new(&mut buf)])
                    .map(drop)
                    .err(),
                std::future::poll_fn(|cx| client.poll_read_ready(cx)).await.err(),
            ] {
                let e = e.expect("refused");
                assert_eq!(util::code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            }
            // The server of an inbound pipe may not write: the same, at once.
            let e = server.write_msg(b"x").await.unwrap_err();
            assert_eq!(util::code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
            assert_eq!(
                util::code(&server.try_write(b"x").unwrap_err()),
                Some(Win32Error::ERROR_ACCESS_DENIED)
            );
            // What the direction allows still works.
            client.write_msg(b"in").await.unwrap();
            let mut got = [0u8; 2];
            tokio::io::AsyncReadExt::read_exact(&mut server, &mut got)
                .await
                .unwrap();
            assert_eq!(&got, b"in");
        });
    });
}

#[test]
fn blocking_calls_a_handle_may_not_make_fail_at_once() {
    let name = util::name("dir-blocking");
    watchdog(10 * SECOND, move || {
        let server = ServerOptions::new().access_outbound(false).create(&name).unwrap();
        let mut client = ClientOptions::new().read(false).open(&name).unwrap();
        server.connect().unwrap();
        let mut buf = [0u8; 8];
        assert_win32(client.read(&mut buf), Win32Error::ERROR_ACCESS_DENIED);
        assert_win32(client.read_msg(&mut buf), Win32Error::ERROR_ACCESS_DENIED);
        assert_win32(client.peek(&mut buf), Win32Error::ERROR_ACCESS_DENIED);
        assert_win32(server.write_msg(b"x"), Win32Error::ERROR_ACCESS_DENIED);
    });
}

// ---- DisconnectNamedPipe -------------------------------------------------

#[test]
fn after_a_disconnect_the_client_gets_not_connected_and_unread_data_is_gone() {
    let name = util::name("disconnect");
    let (s, c) = message_pair(&name);
    s.write_msg(b"never to be read").unwrap();
    s.write_msg(b"nor this").unwrap();
    s.disconnect().unwrap();
    let mut buf = [0u8; 32];
    assert_win32(c.read_msg(&mut buf), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    // io::Read says "the end", as std and tokio do (DESIGN §1); nothing of
    // what the server wrote comes through.
    assert_eq!((&c).read(&mut buf).unwrap(), 0);
    assert_win32(c.peek(&mut buf), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert_win32(c.write_msg(b"x"), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert_win32(c.flush_buffers(), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    // The server's side: not connected until it connects again.
    assert_win32(s.read_msg(&mut buf), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert_win32(s.disconnect(), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    // A close (not a disconnect) keeps Win32's order: queued data, then 109.
    let name2 = util::name("closed");
    let (s2, c2) = message_pair(&name2);
    s2.write_msg(b"kept").unwrap();
    drop(s2);
    let m = c2.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"kept");
    assert_win32(c2.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
}

#[test]
fn a_client_blocked_in_read_wakes_with_not_connected_on_disconnect() {
    let name = util::name("disconnect-blocked");
    let (s, c) = message_pair(&name);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        c.read_msg(&mut buf).map(|m| m.len)
    });
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    s.disconnect().unwrap();
    assert_win32(reader.join().unwrap(), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert!(t.elapsed() < Duration::from_millis(100));
    // The instance serves the next client as if new (it listens again once
    // connect is called).
    assert!(!s.try_connect().unwrap());
    let c2 = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    s.connect().unwrap();
    s.write_msg(b"fresh").unwrap();
    let mut buf = [0u8; 8];
    let m = c2.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"fresh");
}

#[test]
fn tokio_clients_see_a_disconnect_as_not_connected() {
    let name = util::name("disconnect-tokio");
    on_tokio(async {
        use pipeslot::tokio::{ClientOptions, ServerOptions};
        let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
        let mut c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
        s.connect().await.unwrap();
        s.write_msg(b"dropped").await.unwrap();
        s.disconnect().unwrap();
        let mut buf = [0u8; 16];
        let e = c.read_msg(&mut buf).await.unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_NOT_CONNECTED), "{e}");
        assert_eq!(
            tokio::io::AsyncReadExt::read(&mut c, &mut buf).await.unwrap(),
            0,
            "AsyncRead: the end"
        );
        let e = c.write_msg(b"x").await.unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_NOT_CONNECTED), "{e}");
    });
}

// ---- FlushFileBuffers ----------------------------------------------------

#[test]
fn flush_fails_with_broken_pipe_when_the_reader_closed_without_reading() {
    let name = util::name("flush-gone");
    let (s, c) = message_pair(&name);
    s.write_msg(b"never read").unwrap();
    drop(c);
    let t = Instant::now();
    assert_win32(s.flush_buffers(), Win32Error::ERROR_BROKEN_PIPE);
    assert!(t.elapsed() < Duration::from_millis(100));
}

#[test]
fn flush_waiting_on_a_reader_that_dies_ends_within_100_ms() {
    let name = util::name("flush-dies");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let mut peer = Peer::spawn("client_send_and_linger", &[&name, "hello"]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "sent");
    s.write_msg(b"for a reader that never reads").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = s.flush_buffers();
        tx.send(Instant::now()).unwrap();
        r
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "the flush waits while the reader lives"
    );
    let killed = Instant::now();
    peer.kill();
    let ended = rx.recv_timeout(5 * SECOND).expect("the flush ended");
    assert!(ended - killed < Duration::from_millis(100), "{:?}", ended - killed);
    assert_win32(waiter.join().unwrap(), Win32Error::ERROR_BROKEN_PIPE);
}

#[test]
fn flush_succeeds_once_the_reader_read_everything_even_if_it_then_closed() {
    let name = util::name("flush-read");
    let (s, mut c) = message_pair(&name);
    s.write_msg(b"abc").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 3);
    s.flush_buffers().unwrap();
    drop(c);
    s.flush_buffers().unwrap();
}

#[test]
fn tokio_flush_fails_with_broken_pipe_when_the_reader_closed_without_reading() {
    let name = util::name("flush-tokio");
    on_tokio(async {
        use pipeslot::tokio::{ClientOptions, ServerOptions};
        let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
        let c = ClientOptions::new().open(&name).unwrap();
        s.connect().await.unwrap();
        s.write_msg(b"x").await.unwrap();
        drop(c);
        let e = tokio::time::timeout(Duration::from_millis(100), s.flush_buffers())
            .await
            .expect("at once")
            .unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_BROKEN_PIPE), "{e}");
    });
}

// ---- TransactNamedPipe, PeekNamedPipe, handle state ---------------------

#[test]
fn transact_with_a_message_waiting_is_pipe_busy_and_writes_nothing() {
    let name = util::name("tx-busy");
    let (s, c) = message_pair(&name);
    s.write_msg(b"stale").unwrap();
    let mut reply = [0u8; 16];
    assert_win32(c.transact(b"request", &mut reply), Win32Error::ERROR_PIPE_BUSY);
    let mut buf = [0u8; 16];
    assert_eq!(s.peek(&mut buf).unwrap().available, 0, "the request was not written");
    // Once read, transact works.
    let m = c.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"stale");
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        let m = s.read_msg(&mut b).unwrap();
        s.write_msg(&b[..m.len]).unwrap();
    });
    let r = c.transact(b"ping", &mut reply).unwrap();
    assert_eq!(&reply[..r.len], b"ping");
    t.join().unwrap();
}

#[test]
fn tokio_transact_with_a_message_waiting_is_pipe_busy() {
    let name = util::name("tx-busy-tokio");
    on_tokio(async {
        use pipeslot::tokio::{ClientOptions, ServerOptions};
        let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
        let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
        s.connect().await.unwrap();
        s.write_msg(b"stale").await.unwrap();
        let mut reply = [0u8; 16];
        let e = c.transact(b"request", &mut reply).await.unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_BUSY), "{e}");
        assert_eq!(s.peek(&mut reply).unwrap().available, 0);
    });
}

#[test]
fn peek_on_a_server_without_a_client_is_bad_pipe() {
    let name = util::name("peek-listening");
    let s = ServerOptions::new().create(&name).unwrap();
    let mut buf = [0u8; 4];
    assert_win32(s.peek(&mut buf), Win32Error::ERROR_BAD_PIPE);
    // Reads on a listening instance stay ERROR_PIPE_LISTENING (Win32).
    assert_win32((&s).read(&mut buf), Win32Error::ERROR_PIPE_LISTENING);
    let c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    assert_eq!(s.peek(&mut buf).unwrap().available, 0);
    s.disconnect().unwrap();
    assert_win32(s.peek(&mut buf), Win32Error::ERROR_BAD_PIPE);
    drop(c);
    on_tokio(async {
        let t = pipeslot::tokio::ServerOptions::new()
            .create(util::name("peek-tokio"))
            .unwrap();
        assert_win32(t.peek(&mut buf), Win32Error::ERROR_BAD_PIPE);
    });
}

#[test]
fn handle_state_and_read_mode_on_a_server_before_any_client() {
    let name = util::name("state");
    let byte = ServerOptions::new().create(&name).unwrap();
    let st = byte.handle_state().unwrap();
    assert_eq!((st.read_mode, st.nonblocking, st.instances), (PipeMode::Byte, false, 1));
    assert_win32(
        byte.set_read_mode(PipeMode::Message),
        Win32Error::ERROR_INVALID_PARAMETER,
    );
    byte.set_read_mode(PipeMode::Byte).unwrap();

    // On a message pipe the read mode set before the client holds for it.
    let mname = util::name("state-msg");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .create(&mname)
        .unwrap();
    s.set_read_mode(PipeMode::Byte).unwrap();
    assert_eq!(s.handle_state().unwrap().read_mode, PipeMode::Byte);
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&mname).unwrap();
    s.connect().unwrap();
    c.write_msg(b"ab").unwrap();
    c.write_msg(b"cd").unwrap();
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = (&s).read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"abcd", "byte read mode reads across messages");
    assert_eq!(s.handle_state().unwrap().read_mode, PipeMode::Byte);
    on_tokio(async {
        let t = pipeslot::tokio::ServerOptions::new()
            .create(util::name("state-tokio"))
            .unwrap();
        assert_eq!(t.handle_state().unwrap().read_mode, PipeMode::Byte);
        assert_win32(t.set_read_mode(PipeMode::Message), Win32Error::ERROR_INVALID_PARAMETER);
    });
}

// ---- instance order ------------------------------------------------------

#[test]
fn clients_get_the_instance_that_has_listened_longest() {
    let name = util::name("fifo");
    let a = ServerOptions::new().create(&name).unwrap();
    let b = ServerOptions::new().create(&name).unwrap();
    let c = ServerOptions::new().create(&name).unwrap();
    let got = |servers: &[&NamedPipeServer]| -> usize {
        let i = servers.iter().position(|s| s.try_connect().unwrap());
        i.expect("one instance got the client")
    };
    let first = ClientOptions::new().open(&name).unwrap();
    assert_eq!(got(&[&a, &b, &c]), 0, "a listened first");
    // a serves its client and listens again: now it is last in line.
    drop(first);
    a.disconnect().unwrap();
    assert!(!a.try_connect().unwrap(), "listening again");
    let _one = ClientOptions::new().open(&name).unwrap();
    assert_eq!(got(&[&b, &c]), 0, "b, then c, before a");
    let _two = ClientOptions::new().open(&name).unwrap();
    assert_eq!(got(&[&c]), 0);
    let _three = ClientOptions::new().open(&name).unwrap();
    assert!(a.try_connect().unwrap(), "a last");
    // A later instance queues behind those that listened before it.
    b.disconnect().unwrap();
    let d = ServerOptions::new().create(&name).unwrap();
    assert!(!b.try_connect().unwrap());
    let _four = ClientOptions::new().open(&name).unwrap();
    assert!(d.try_connect().unwrap(), "d listened before b listened again");
}

// ---- PIPE_NOWAIT -----------------------------------------------------------

#[test]
fn nowait_writes_that_do_not_fit_write_nothing() {
    let name = util::name("nowait-big");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .out_buffer_size(4096)
        .create(&name)
        .unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    s.connect().unwrap();
    s.set_nonblocking(true).unwrap();
    let big = vec![7u8; 4 << 20];
    assert_eq!((&s).write(&big).unwrap(), 0, "WriteFile reports 0 bytes");
    let e = s.write_msg(&big).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_NO_DATA));
    let mut buf = [0u8; 8];
    assert_eq!(c.peek(&mut buf).unwrap().available, 0, "nothing queued");
    // A message that fits goes whole.
    s.write_msg(b"small").unwrap();
    let m = c.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"small");
    // Byte pipes too: all or nothing.
    let bname = util::name("nowait-bytes");
    let bs = ServerOptions::new().out_buffer_size(4096).create(&bname).unwrap();
    let bc = ClientOptions::new().open(&bname).unwrap();
    bs.connect().unwrap();
    bs.set_nonblocking(true).unwrap();
    assert_eq!((&bs).write(&big).unwrap(), 0);
    assert_eq!(bc.peek(&mut buf).unwrap().available, 0);
}

#[test]
fn a_zero_length_message_never_waits_for_room() {
    let name = util::name("zero-full");
    let (s, c) = message_pair(&name);
    // Fill the pipe.
    s.set_nonblocking(true).unwrap();
    let mut sent = 0usize;
    loop {
        match s.write_msg(&[1u8; 1000]) {
            Ok(()) => sent += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    let t = Instant::now();
    s.write_msg(b"").unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "a blocking empty write waited"
    );
    // Both are delivered, the empty message last. The reader also takes
    // "after" before it closes: a write that finds its reader gone is
    // ERROR_NO_DATA, and a reader that stopped at the empty message could
    // close before the writer woke for room.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1000];
        let mut lens = Vec::new();
        for _ in 0..sent + 2 {
            lens.push(c.read_msg(&mut buf).unwrap().len);
        }
        lens
    });
    s.write_msg(b"after").unwrap(); // the empty message goes ahead of this one
    let lens = reader.join().unwrap();
    assert_eq!(lens.len(), sent + 2);
    assert!(lens[..sent].iter().all(|&l| l == 1000));
    assert_eq!(lens[sent], 0);
    assert_eq!(lens[sent + 1], b"after".len());
}

#[test]
fn nowait_connect_tells_no_client_yet_from_a_client_that_came_and_went() {
    let name = util::name("nowait-connect");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    s.set_nonblocking(true).unwrap();
    assert_win32(s.connect(), Win32Error::ERROR_PIPE_LISTENING);
    assert!(!s.try_connect().unwrap());
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    c.write_msg(b"left this").unwrap();
    drop(c);
    assert_win32(s.connect(), Win32Error::ERROR_NO_DATA);
    // What it left is still there; then the server disconnects and listens.
    s.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 16];
    let m = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"left this");
    assert_win32(s.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
    s.disconnect().unwrap();
    s.set_nonblocking(true).unwrap();
    assert_win32(s.connect(), Win32Error::ERROR_PIPE_LISTENING);
    let _c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
}

// ---- tokio's API shape -----------------------------------------------------

#[test]
fn tokio_code_compiles_with_only_the_import_changed() {
    // tokio::net::windows::named_pipe re-exports these three.
    use pipeslot::tokio::{ClientOptions, PipeEnd, PipeInfo, PipeMode, ServerOptions};
    let name = util::name("tokio-shape");
    on_tokio(async {
        let server = ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .write_dac(true)
            .write_owner(true)
            .access_system_security(true)
            .reject_remote_clients(true)
            .max_instances(4)
            .create(&name)
            .unwrap();
        let client = ClientOptions::new()
            .security_qos_flags(0x0010_0000)
            .open(&name)
            .unwrap();
        let info: PipeInfo = client.info().unwrap();
        assert_eq!(
            (info.end, info.mode, info.max_instances),
            (PipeEnd::Client, PipeMode::Message, 4)
        );
        server.connect().await.unwrap();
        server.info().unwrap();
    });
    let _: pipeslot::blocking::PipeInfo = pipeslot::blocking::ServerOptions::new()
        .unlimited_instances()
        .create(util::name("blocking-shape"))
        .unwrap()
        .info()
        .unwrap();
}

/// FlushFileBuffers waits until the reader's application has read every
/// message. On the shared-memory path there is no read-ahead: what the
/// reader has not read is still in the ring, so the flush waits for "two"
/// and "three" too (the socket path's known difference, ARCHITECTURE.md).
#[test]
fn on_shared_memory_flush_waits_for_every_message_the_reader_has_not_read() {
    let name = util::name("flush-shm");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .shared_memory(true)
        .create(&name)
        .unwrap();
    let c = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .shared_memory(true)
        .open(&name)
        .unwrap();
    s.connect().unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        s.write_msg(m).unwrap();
    }
    let mut buf = [0u8; 8];
    let r = c.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"one");
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = s.flush_buffers();
        tx.send(()).unwrap();
        r
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "the flush waits while two messages are unread"
    );
    let r = c.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"two");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "and while one is");
    let r = c.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"three");
    rx.recv_timeout(5 * SECOND).expect("the flush ends once all is read");
    waiter.join().unwrap().unwrap();
}
