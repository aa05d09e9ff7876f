//! Roles played by re-executed copies of this binary (see `util::Peer`).
//! Each is an ignored test that does nothing unless the parent set
//! `PIPESLOT_CHILD` to its name, so `cargo test -- --ignored` stays harmless.

use std::io::{Read, Write};

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{Error, PipeMode};

use crate::util::{child_args, report};

fn args(role: &str) -> Option<Vec<String>> {
    (std::env::var("PIPESLOT_CHILD").ok()? == role)
        .then(child_args)
        .flatten()
}

fn err_name(e: &std::io::Error) -> String {
    Error::win32(e).and_then(|c| c.name()).unwrap_or("OTHER").to_owned()
}

/// Opens args[0] (message read mode if args[1] == "msg"), reports "open",
/// then echoes every message until the pipe ends; reports how it ended.
#[test]
#[ignore]
fn client_echo() {
    let Some(a) = args("client_echo") else { return };
    let mode = if a.get(1).map(String::as_str) == Some("msg") {
        PipeMode::Message
    } else {
        PipeMode::Byte
    };
    let c = match ClientOptions::new().pipe_mode(mode).open(&a[0]) {
        Ok(c) => c,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    report("open");
    let mut buf = vec![0u8; 65536];
    loop {
        match c.read_msg(&mut buf) {
            Ok(m) => {
                if c.write_msg(&buf[..m.len]).is_err() {
                    break;
                }
            }
            Err(e) => return report(format!("end {}", err_name(&e))),
        }
    }
}

/// Opens args[0] and blocks reading; reports how the read ended.
#[test]
#[ignore]
fn client_block_read() {
    let Some(a) = args("client_block_read") else { return };
    let mut c = match ClientOptions::new().open(&a[0]) {
        Ok(c) => c,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    report("open");
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(n) => report(format!("read {n}")),
        Err(e) => report(format!("end {}", err_name(&e))),
    }
}

/// Opens args[0], writes args[1] as one message, reports "sent", then
/// lingers until killed.
#[test]
#[ignore]
fn client_send_and_linger() {
    let Some(a) = args("client_send_and_linger") else {
        return;
    };
    let c = match ClientOptions::new().open(&a[0]) {
        Ok(c) => c,
        Err(e) => return report(format!("error {}", err_name(&e))),
    };
    match c.write_msg(a[1].as_bytes()) {
        Ok(()) => report("sent"),
        Err(e) => report(format!("error {}", err_name(&e))),
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Creates args[0] (message pipe, args[1] instances max) with args[2]
/// instances, reports "ready", serves echo on each until killed.
#[test]
#[ignore]
fn server_echo() {
    let Some(a) = args("server_echo") else { return };
    let max: usize = a[1].parse().unwrap();
    let count: usize = a[2].parse().unwrap();
    let mut servers = Vec::new();
    for _ in 0..count {
        let mut opts = ServerOptions::new();
        match max {
            255 => opts.unlimited_instances(),
            n => opts.max_instances(n),
        };
        match opts.pipe_mode(PipeMode::Message).create(&a[0]) {
            Ok(s) => servers.push(s),
            Err(e) => return report(format!("error {}", err_name(&e))),
        }
    }
    report("ready");
    let handles: Vec<_> = servers
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || loop {
                if s.connect().is_err() {
                    return;
                }
                let mut buf = vec![0u8; 65536];
                while let Ok(m) = s.read_msg(&mut buf) {
                    let mut reply = format!("{}:", std::process::id()).into_bytes();
                    reply.extend_from_slice(&buf[..m.len]);
                    if s.write_msg(&reply).is_err() {
                        break;
                    }
                }
                let _ = s.disconnect();
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// Creates args[0] (byte pipe), reports "ready", waits for a client, writes
/// "hi", then blocks reading until killed.
#[test]
#[ignore]
fn server_block_read() {
    let Some(a) = args("server_block_read") else { return };
    let mut s = ServerOptions::new().create(&a[0]).unwrap();
    report("ready");
    s.connect().unwrap();
    s.write_all(b"hi").unwrap();
    let mut buf = [0u8; 16];
    let _ = s.read(&mut buf);
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// With SIGPIPE at its default (deadly) action: opens args[0], waits until
/// the server is gone, writes, and reports the error instead of dying.
#[test]
#[ignore]
fn client_write_after_close_sigpipe_default() {
    let Some(a) = args("client_write_after_close_sigpipe_default") else {
        return;
    };
    crate::util::default_sigpipe();
    let mut c = ClientOptions::new().open(&a[0]).unwrap();
    report("open");
    let mut buf = [0u8; 4];
    let _ = c.read(&mut buf); // returns once the server is gone
    match c.write_all(b"x") {
        Ok(()) => report("wrote"),
        Err(e) => report(format!("error {}", err_name(&e))),
    }
}

/// Tries to create an instance of args[0]; reports "created" or the error.
#[test]
#[ignore]
fn server_create() {
    let Some(a) = args("server_create") else { return };
    match ServerOptions::new().create(&a[0]) {
        Ok(_s) => report("created"),
        Err(e) => report(format!("error {}", err_name(&e))),
    }
}

/// Creates and drops an instance of args[0] args[1] times; reports "ok" or
/// the first error.
#[test]
#[ignore]
fn server_churn() {
    let Some(a) = args("server_churn") else { return };
    let n: usize = a[1].parse().unwrap();
    for _ in 0..n {
        if let Err(e) = ServerOptions::new().create(&a[0]) {
            return report(format!("error {e}"));
        }
    }
    report("ok");
}
