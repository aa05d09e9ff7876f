//! Server instances: options at creation, later instances checked against
//! the first, several processes serving one name, the connect/disconnect
//! life cycle and its Win32 errors.

use std::io::{Read, Write};
use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeEnd, PipeMode, Win32Error};

use crate::util::{self, assert_win32, Peer, SECOND};

#[test]
fn max_instances_is_enforced_at_creation() {
    let name = util::name("max");
    let _a = ServerOptions::new().max_instances(2).create(&name).unwrap();
    let _b = ServerOptions::new().max_instances(2).create(&name).unwrap();
    assert_win32(
        ServerOptions::new().max_instances(2).create(&name),
        Win32Error::ERROR_PIPE_BUSY,
    );
    // The first instance's maximum rules, whatever a later one asks.
    assert_win32(
        ServerOptions::new().max_instances(10).create(&name),
        Win32Error::ERROR_PIPE_BUSY,
    );
    drop(_b);
    ServerOptions::new()
        .max_instances(2)
        .create(&name)
        .expect("a slot freed up");
}

#[test]
fn bad_max_instances_are_invalid_parameter() {
    let name = util::name("badmax");
    assert_win32(
        ServerOptions::new().max_instances(0).create(&name),
        Win32Error::ERROR_INVALID_PARAMETER,
    );
    // 255 and more panic, as tokio's setter does; unlimited is its own setter.
    for n in [255, 256] {
        let p = std::panic::catch_unwind(|| {
            ServerOptions::new().max_instances(n);
        });
        let msg = p.unwrap_err();
        assert_eq!(
            msg.downcast_ref::<&str>(),
            Some(&"cannot specify more than 254 instances")
        );
    }
    ServerOptions::new().max_instances(254).create(&name).unwrap();
    let unlimited = ServerOptions::new()
        .unlimited_instances()
        .create(util::name("unlimited"))
        .unwrap();
    assert_eq!(unlimited.info().unwrap().max_instances, 255);
}

#[test]
fn later_instances_must_keep_the_direction() {
    let name = util::name("access");
    let _in = ServerOptions::new().access_outbound(false).create(&name).unwrap();
    assert_win32(ServerOptions::new().create(&name), Win32Error::ERROR_ACCESS_DENIED);
    ServerOptions::new()
        .access_outbound(false)
        .create(&name)
        .expect("same direction is fine");
    // Type, buffers and timeout are each instance's own.
    ServerOptions::new()
        .access_outbound(false)
        .pipe_mode(PipeMode::Message)
        .in_buffer_size(4096)
        .create(&name)
        .expect("other options may differ");
}

#[test]
fn first_pipe_instance_refuses_an_existing_name() {
    let name = util::name("first");
    let _a = ServerOptions::new().first_pipe_instance(true).create(&name).unwrap();
    assert_win32(
        ServerOptions::new().first_pipe_instance(true).create(&name),
        Win32Error::ERROR_ACCESS_DENIED,
    );
}

#[test]
fn several_processes_serve_one_name_and_share_the_maximum() {
    let name = util::name("multiproc");
    let peer = Peer::spawn("server_echo", &[&name, "3", "2"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    let mine = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .max_instances(3)
        .create(&name)
        .unwrap();
    assert_win32(
        ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .max_instances(3)
            .create(&name),
        Win32Error::ERROR_PIPE_BUSY,
    );
    let t = std::thread::spawn(move || {
        mine.connect().unwrap();
        let mut buf = [0u8; 64];
        let m = mine.read_msg(&mut buf).unwrap();
        let mut reply = b"parent:".to_vec();
        reply.extend_from_slice(&buf[..m.len]);
        mine.write_msg(&reply).unwrap();
        mine
    });
    let mut owners = Vec::new();
    let mut clients = Vec::new();
    for i in 0..3 {
        let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
        let mut buf = [0u8; 64];
        let r = c.transact(format!("m{i}").as_bytes(), &mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..r.len]).into_owned();
        owners.push(reply.split(':').next().unwrap().to_owned());
        assert!(reply.ends_with(&format!("m{i}")));
        clients.push(c);
    }
    owners.sort();
    let child = peer.pid().to_string();
    assert_eq!(owners.iter().filter(|o| **o == child).count(), 2, "{owners:?}");
    assert_eq!(owners.iter().filter(|o| *o == "parent").count(), 1, "{owners:?}");
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_PIPE_BUSY);
    assert_eq!(clients[0].handle_state().unwrap().instances, 3);
    let _ = t.join().unwrap();
}

#[test]
fn connect_disconnect_connect_again() {
    let name = util::name("cycle");
    let mut s = ServerOptions::new().create(&name).unwrap();
    for round in 0..3u8 {
        // connect() makes the instance listen again (after the first round's disconnect).
        let mut c = std::thread::scope(|sc| {
            let s2 = &s;
            let h = sc.spawn(move || s2.connect());
            std::thread::sleep(Duration::from_millis(30));
            let c = ClientOptions::new().open(&name).unwrap();
            h.join().unwrap().unwrap();
            c
        });
        c.write_all(&[round]).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b[0], round);
        s.disconnect().unwrap();
        let mut rest = [0u8; 1];
        assert_eq!(c.read(&mut rest).unwrap(), 0, "the client sees the end");
        // Not listening until connect is called again.
        assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_PIPE_BUSY);
    }
}

#[test]
fn connect_errors_follow_win32() {
    let name = util::name("connerr");
    let s = ServerOptions::new().create(&name).unwrap();
    // No client yet: reads say the instance is listening.
    let mut b = [0u8; 4];
    assert_win32((&s).read(&mut b), Win32Error::ERROR_PIPE_LISTENING);
    assert_win32(s.disconnect(), Win32Error::ERROR_PIPE_LISTENING);
    assert!(!s.connect_timeout(Duration::from_millis(20)).unwrap(), "no client came");
    // A client that came first: connect returns Ok (tokio's choice for 535)...
    let _c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    // ...and a second connect on the connected instance is ERROR_PIPE_CONNECTED.
    assert_win32(s.connect(), Win32Error::ERROR_PIPE_CONNECTED);
    s.disconnect().unwrap();
    assert_win32((&s).read(&mut b), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert_win32((&s).write(b"x"), Win32Error::ERROR_PIPE_NOT_CONNECTED);
    assert_win32(s.disconnect(), Win32Error::ERROR_PIPE_NOT_CONNECTED);
}

#[test]
fn a_read_before_connect_takes_the_client() {
    let name = util::name("readfirst");
    let s = ServerOptions::new().create(&name).unwrap();
    let mut c = ClientOptions::new().open(&name).unwrap();
    c.write_all(b"early").unwrap();
    let mut b = [0u8; 5];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"early");
    s.connect()
        .expect("connect after the client was picked up still returns Ok once");
    assert_win32(s.connect(), Win32Error::ERROR_PIPE_CONNECTED);
}

#[test]
fn info_describes_both_ends() {
    let name = util::name("info");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .max_instances(7)
        .in_buffer_size(1000)
        .out_buffer_size(2000)
        .create(&name)
        .unwrap();
    let i = s.info().unwrap();
    assert_eq!(
        (i.mode, i.end, i.max_instances),
        (PipeMode::Message, PipeEnd::Server, 7)
    );
    assert_eq!((i.in_buffer_size, i.out_buffer_size), (1000, 2000));
    let c = ClientOptions::new().open(&name).unwrap();
    let i = c.info().unwrap();
    assert_eq!(
        (i.mode, i.end, i.max_instances),
        (PipeMode::Message, PipeEnd::Client, 7)
    );
    assert_eq!((i.in_buffer_size, i.out_buffer_size), (1000, 2000));
    let st = c.handle_state().unwrap();
    assert_eq!(st.read_mode, PipeMode::Byte, "CreateFile opens in byte read mode");
    assert_eq!(st.instances, 1);
    c.set_read_mode(PipeMode::Message).unwrap();
    assert_eq!(c.handle_state().unwrap().read_mode, PipeMode::Message);
}

#[test]
fn byte_pipes_cannot_be_read_as_messages() {
    let name = util::name("bytemsg");
    assert_win32(
        ServerOptions::new().read_mode(PipeMode::Message).create(&name),
        Win32Error::ERROR_INVALID_PARAMETER,
    );
    let _s = ServerOptions::new().create(&name).unwrap();
    assert_win32(
        ClientOptions::new().pipe_mode(PipeMode::Message).open(&name),
        Win32Error::ERROR_INVALID_PARAMETER,
    );
}

#[test]
fn processes_creating_and_closing_one_name_never_trip_over_each_other() {
    let name = util::name("churn");
    let peers: Vec<Peer> = (0..2).map(|_| Peer::spawn("server_churn", &[&name, "150"])).collect();
    for _ in 0..150 {
        ServerOptions::new()
            .create(&name)
            .expect("create while others create and close");
    }
    for p in &peers {
        assert_eq!(p.expect_line(60 * SECOND), "ok");
    }
}
