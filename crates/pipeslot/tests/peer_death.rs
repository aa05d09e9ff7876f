//! The seed's worst known problem: "if someone is waiting on a Read and the
//! other end terminates then you will wait for one REALLY long time". Here a
//! peer killed with SIGKILL ends every blocked read at once.

use std::io::Read;
use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeMode, Win32Error};

use crate::util::{self, assert_win32, watchdog, Peer, SECOND};

#[test]
fn a_blocked_server_read_ends_when_the_client_process_is_killed() {
    let name = util::name("death-client");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let mut peer = Peer::spawn("client_send_and_linger", &[&name, "first"]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "sent");
    let mut buf = [0u8; 16];
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"first");
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let r = s.read_msg(&mut buf);
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished(), "the read blocks while the client lives");
    let killed = Instant::now();
    peer.kill();
    let (r, ended) = watchdog(5 * SECOND, move || reader.join().unwrap());
    assert_win32(r, Win32Error::ERROR_BROKEN_PIPE);
    assert!(
        ended - killed < Duration::from_millis(500),
        "ended {:?} after the kill",
        ended - killed
    );
}

#[test]
fn a_blocked_client_read_ends_when_the_server_process_is_killed() {
    let name = util::name("death-server");
    let mut peer = Peer::spawn("server_block_read", &[&name]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    let mut c = ClientOptions::new().open(&name).unwrap();
    let mut hi = [0u8; 2];
    c.read_exact(&mut hi).unwrap();
    assert_eq!(&hi, b"hi");
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        let n = c.read(&mut buf);
        (n.map_err(|e| e.to_string()), c)
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished());
    peer.kill();
    let (n, c) = watchdog(5 * SECOND, move || reader.join().unwrap());
    assert_eq!(n, Ok(0), "io::Read reports the end as Ok(0)");
    let mut buf = [0u8; 4];
    assert_win32(c.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
    assert_win32(c.write_msg(b"late"), Win32Error::ERROR_NO_DATA);
}

#[test]
fn a_read_of_a_message_cut_by_death_is_broken_pipe_not_a_short_message() {
    let name = util::name("death-mid");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let mut peer = Peer::spawn("client_echo", &[&name, "msg"]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "open");
    peer.kill();
    let mut buf = [0u8; 8];
    assert_win32(s.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
    assert_win32(s.write_msg(b"x"), Win32Error::ERROR_NO_DATA);
}

#[test]
fn writing_to_a_closed_pipe_never_raises_sigpipe() {
    let name = util::name("sigpipe");
    let s = ServerOptions::new().create(&name).unwrap();
    let peer = Peer::spawn("client_write_after_close_sigpipe_default", &[&name]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "open");
    drop(s);
    assert_eq!(peer.expect_line(10 * SECOND), "error ERROR_NO_DATA");
    assert_eq!(peer.wait(10 * SECOND), 0, "the child lived through the write");
}

/// A write that is the first call after the peer was SIGKILLed fails as
/// Win32's does (ERROR_NO_DATA) and queues nothing, on either data path
/// (on shared memory the watcher thread has marked the connection gone).
#[test]
fn the_first_write_after_the_peer_was_killed_is_no_data() {
    let name = util::name("death-write");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let mut peer = Peer::spawn("client_send_and_linger", &[&name, "first"]);
    s.connect().unwrap();
    assert_eq!(peer.expect_line(10 * SECOND), "sent");
    let mut buf = [0u8; 16];
    let r = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"first");
    peer.kill();
    std::thread::sleep(Duration::from_millis(50));
    assert_win32(s.write_msg(b"late"), Win32Error::ERROR_NO_DATA);
    assert_win32(s.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
}
