//! Names and the namespace: folding, long names, remote forms, stale
//! entries of dead servers, listing.

use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeMode, Win32Error};

use crate::util::{self, assert_win32, Peer, SECOND};

#[test]
fn names_compare_case_insensitively_and_slashes_fold() {
    let name = util::name("CaseMix");
    let _s = ServerOptions::new().create(&name).unwrap();
    ClientOptions::new()
        .open(name.to_lowercase())
        .expect("lower case opens the same pipe");
    let _s2 = ServerOptions::new().create(&name).unwrap();
    ClientOptions::new()
        .open(name.to_uppercase().replace('\\', "/"))
        .expect("upper case with slashes");
}

#[test]
fn bare_names_mean_the_local_pipe() {
    let full = util::name("bare");
    let bare = full.trim_start_matches(r"\\.\pipe\").to_owned();
    let _s = ServerOptions::new().create(&bare).unwrap();
    ClientOptions::new()
        .open(&full)
        .expect("the bare name created \\\\.\\pipe\\NAME");
}

#[test]
fn a_256_character_name_works_and_257_is_invalid() {
    util::init();
    let long = format!(r"\\.\pipe\{}", "n".repeat(200) + &format!("{:056}", std::process::id()));
    assert_eq!(long.len() - r"\\.\pipe\".len(), 256);
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&long).unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&long).unwrap();
    s.connect().unwrap();
    c.write_msg(b"long").unwrap();
    let mut buf = [0u8; 8];
    let m = s.read_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"long");
    let too_long = format!("{long}x");
    assert_win32(ServerOptions::new().create(&too_long), Win32Error::ERROR_INVALID_NAME);
    assert_win32(ClientOptions::new().open(&too_long), Win32Error::ERROR_INVALID_NAME);
}

#[test]
fn bad_names_are_invalid_name() {
    util::init();
    for bad in ["", r"\\.\pipe\", "a\0b", r"\\.\nothing\x", r"\pipe\x", r"\\*\pipe\x"] {
        assert_win32(ServerOptions::new().create(bad), Win32Error::ERROR_INVALID_NAME);
        assert_win32(ClientOptions::new().open(bad), Win32Error::ERROR_INVALID_NAME);
    }
}

#[test]
fn remote_names_open_over_smb_and_an_unknown_host_is_bad_netpath() {
    util::init();
    let e = ClientOptions::new()
        .open(r"\\fileserver.invalid\pipe\srvsvc")
        .unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_BAD_NETPATH), "{e}");
    assert!(e.to_string().contains(r"\\fileserver.invalid\pipe\srvsvc"), "{e}");
    assert_win32(
        ServerOptions::new().create(r"\\fileserver\pipe\x"),
        Win32Error::ERROR_INVALID_NAME,
    );
}

#[test]
fn listing_shows_the_creators_spelling_and_counts() {
    let name = util::name("ListMe");
    let _a = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let _b = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .create(name.to_uppercase())
        .unwrap();
    let all = pipeslot::list_pipes().unwrap();
    let me = all
        .iter()
        .find(|p| p.name == name)
        .expect("listed under the first creator's spelling");
    assert_eq!(me.instances, 2);
    assert_eq!(me.listening, 2);
    assert_eq!(me.mode, PipeMode::Message);
    assert_eq!(me.server_pids, vec![std::process::id()]);
    assert_eq!(
        (me.in_buffer_size, me.out_buffer_size, me.default_timeout_ms),
        (65536, 65536, 0)
    );
    let one = pipeslot::pipe_listing(&name.to_lowercase()).unwrap();
    assert_eq!(one.name, name);
}

/// A server binds its socket before its first instance exists; until then
/// the name is not there (CreateNamedPipe has not returned), also to a
/// wait that only looks. It was "busy" (ERROR_SEM_TIMEOUT), which told
/// `wait --retry` the pipe had come.
#[test]
fn a_socket_that_serves_no_instance_yet_is_no_pipe_even_to_a_zero_wait() {
    let name = util::name("unborn");
    let mut peer = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    peer.kill();
    // Answers every hello "no such pipe", as the acceptor of a server
    // between bind and its first instance does (it has no instance to
    // describe). One that answers nothing is alive and busy instead
    // (client.rs: a_server_that_does_not_answer_is_busy_not_gone).
    let unborn = std::os::unix::net::UnixListener::bind(crate::attacks::pipe_dir(&name).join("0-unborn.sock")).unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in unborn.incoming().flatten() {
            let mut hello = [0u8; 16];
            let _ = s.read_exact(&mut hello);
            use pipeslot_proto::wire::local::{Reply, ReplyStatus};
            let reply = Reply::bare(ReplyStatus::NOT_FOUND);
            let _ = s.write_all(&reply.emit());
        }
    });
    let t = Instant::now();
    assert_win32(
        pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::After(Duration::ZERO)),
        Win32Error::ERROR_FILE_NOT_FOUND,
    );
    assert_win32(
        pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::Default),
        Win32Error::ERROR_FILE_NOT_FOUND,
    );
    // Each look waits its second for an answer, no more.
    assert!(t.elapsed() < 5 * SECOND, "{:?}", t.elapsed());
}

#[test]
fn a_dead_servers_entry_blocks_nobody() {
    let name = util::name("stale");
    let mut peer = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    peer.kill(); // SIGKILL: no clean-up runs, the socket file stays
    let sockets_left = std::fs::read_dir(util::root())
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("p-"))
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sock"))
        .count();
    assert!(sockets_left >= 1, "the dead server left its socket behind");
    let t = Instant::now();
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_FILE_NOT_FOUND);
    assert_win32(
        pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::Forever),
        Win32Error::ERROR_FILE_NOT_FOUND,
    );
    assert!(t.elapsed() < Duration::from_secs(1), "no hang on a stale entry");
    assert!(
        !pipeslot::list_pipes().unwrap().iter().any(|p| p.name == name),
        "not listed"
    );
    // A new server takes the name, even as "first instance".
    let _s = ServerOptions::new().first_pipe_instance(true).create(&name).unwrap();
    ClientOptions::new().open(&name).unwrap();
}
