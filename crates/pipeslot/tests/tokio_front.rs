//! The tokio front end: the same model, async.

use crate::util;
use pipeslot::tokio::{ClientOptions, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn echo_three_clients() {
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
                Err(e) => {
                    eprintln!("open: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
            }
        };
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
    serve.await.unwrap();
}

#[test]
fn blocking_write_before_connect() {
    use std::io::{Read, Write};
    let name = util::name("bwbc");
    let server = pipeslot::blocking::ServerOptions::new().create(&name).unwrap();
    let mut client = pipeslot::blocking::ClientOptions::new().open(&name).unwrap();
    client.write_all(b"ping").unwrap();
    server.connect().unwrap();
    let mut buf = [0u8; 4];
    (&server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}
