//! The Win32::Pipe-style layer across processes.

use pipeslot::win32::Win32Pipe;

use crate::util::{self, Peer, SECOND};

#[test]
fn the_seeds_server_story_with_a_client_process() {
    let full = util::name("w32");
    let bare = full.trim_start_matches(r"\\.\pipe\").to_owned();
    let mut server = Win32Pipe::new(&bare).expect("server by bare name");
    assert_eq!(server.buffer_size(), 512);
    assert_eq!(server.resize_buffer(4096), 4096);
    let peer = Peer::spawn("client_echo", &[&full]);
    assert!(server.connect());
    assert_eq!(peer.expect_line(10 * SECOND), "open");
    assert!(server.write(b"Howdy! This is cool!"));
    let echoed = server.read().expect("the echo");
    assert_eq!(echoed, b"Howdy! This is cool!");
    drop(peer); // kills the client
    assert_eq!(server.read(), None);
    assert_eq!(server.error().0, 109);
    assert!(server.error().1.contains("ERROR_BROKEN_PIPE"));
    assert!(server.disconnect());
    server.close();
    assert!(!server.connect(), "a closed pipe cannot connect");
}

#[test]
fn new_reports_failures_through_last_error() {
    util::init();
    assert!(Win32Pipe::new(r"\\.\pipe\w32-nobody-serves-this").is_none());
    assert_eq!(Win32Pipe::last_error().0, 2);
}
