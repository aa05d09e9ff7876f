//! The tokio front end: the same model, async.

use std::time::Duration;

use pipeslot::tokio::{wait_named_pipe, ClientOptions, ServerOptions};
use pipeslot::{MsgRead, PipeMode, WaitTimeout, Win32Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{self, assert_win32, Peer};

#[tokio::test]
async fn echo_server_keeps_one_instance_listening() {
    let name = util::name("tokio-echo");
    let mut server = ServerOptions::new().first_pipe_instance(true).create(&name).unwrap();
    let n2 = name.clone();
    let serve = tokio::spawn(async move {
        for _ in 0..3 {
            server.connect().await.unwrap();
            let mut connected = server;
            server = ServerOptions::new().create(&n2).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                connected.read_exact(&mut buf).await.unwrap();
                connected.write_all(&buf).await.unwrap();
            });
        }
    });
    for _ in 0..3 {
        let mut client = loop {
            match ClientOptions::new().open(&name) {
                Ok(c) => break c,
                Err(e) if util::code(&e) == Some(Win32Error::ERROR_PIPE_BUSY) => {
                    tokio::time::sleep(Duration::from_millis(2)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
    serve.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_transact_and_short_reads() {
    let name = util::name("tokio-msg");
    let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let client = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    server.connect().await.unwrap();
    let srv = tokio::spawn(async move {
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        loop {
            let r = server.read_msg(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..r.len]);
            if !r.more {
                break;
            }
        }
        server.write_msg(&got).await.unwrap();
        server.write_msg(b"").await.unwrap();
        server
    });
    let mut reply = [0u8; 64];
    let r = client.transact(b"a longer request", &mut reply).await.unwrap();
    assert_eq!(&reply[..r.len], b"a longer request");
    let r = client.read_msg(&mut reply).await.unwrap();
    assert_eq!(r, MsgRead { len: 0, more: false }, "a zero-length message");
    let _ = srv.await.unwrap();
}

#[tokio::test]
async fn connect_is_cancel_safe() {
    let name = util::name("tokio-cancel");
    let server = ServerOptions::new().create(&name).unwrap();
    let timed_out = tokio::time::timeout(Duration::from_millis(50), server.connect()).await;
    assert!(timed_out.is_err(), "no client yet");
    let _client = ClientOptions::new().open(&name).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.connect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.client_identity().unwrap().pid, std::process::id());
}

#[tokio::test]
async fn a_dead_client_process_ends_an_async_read() {
    let name = util::name("tokio-death");
    let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let mut peer = Peer::spawn("client_send_and_linger", &[&name, "hello"]);
    server.connect().await.unwrap();
    let mut buf = [0u8; 16];
    let r = server.read_msg(&mut buf).await.unwrap();
    assert_eq!(&buf[..r.len], b"hello");
    peer.kill();
    let r = tokio::time::timeout(Duration::from_secs(2), server.read_msg(&mut buf))
        .await
        .expect("no hang");
    assert_win32(r, Win32Error::ERROR_BROKEN_PIPE);
}

#[tokio::test]
async fn async_wait_and_busy() {
    let name = util::name("tokio-wait");
    let server = ServerOptions::new().create(&name).unwrap();
    let _c = ClientOptions::new().open(&name).unwrap();
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_PIPE_BUSY);
    assert_win32(
        wait_named_pipe(&name, WaitTimeout::After(Duration::from_millis(50))).await,
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    server.connect().await.unwrap();
}

#[tokio::test]
async fn try_read_and_try_write() {
    let name = util::name("tokio-try");
    let server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    server.connect().await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        server.try_read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    client.writable().await.unwrap();
    assert_eq!(client.try_write(b"abc").unwrap(), 3);
    server.readable().await.unwrap();
    let n = server.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_msgs_sends_a_batch_with_its_boundaries() {
    let name = util::name("tokio-batch");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .in_buffer_size(4096)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    server.connect().await.unwrap();
    // Enough to fill the socket, so the non-blocking path finishes a
    // message from the pending buffer.
    let msgs: Vec<Vec<u8>> = (0..2000usize).map(|i| vec![i as u8; i % 300]).collect();
    let want = msgs.clone();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        for _ in 0..2000 {
            let r = server.read_msg(&mut buf).await.unwrap();
            got.push(buf[..r.len].to_vec());
        }
        got
    });
    let slices: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    tokio::time::timeout(Duration::from_secs(10), client.write_msgs(&slices))
        .await
        .unwrap()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, want);
}
