//! The client side: open, busy, wait (timeout, the pipe's default,
//! forever), call.

use std::time::{Duration, Instant};

use pipeslot::blocking::{call_named_pipe, ClientOptions, ServerOptions};
use pipeslot::{wait_named_pipe, PipeMode, WaitTimeout, Win32Error};

use crate::util::{self, assert_win32, watchdog, Peer, SECOND};

#[test]
fn open_a_missing_pipe_is_file_not_found_naming_it() {
    let name = util::name("missing");
    let e = ClientOptions::new().open(&name).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().starts_with("ERROR_FILE_NOT_FOUND (2): "), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
}

#[test]
fn open_when_every_instance_is_busy_is_pipe_busy() {
    let name = util::name("busy");
    let _s = ServerOptions::new().create(&name).unwrap();
    let _first = ClientOptions::new().open(&name).unwrap();
    let e = ClientOptions::new().open(&name).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_BUSY));
    assert!(e.to_string().contains(&name), "{e}");
}

#[test]
fn wait_times_out_with_sem_timeout() {
    let name = util::name("waitto");
    let _s = ServerOptions::new().create(&name).unwrap();
    let _c = ClientOptions::new().open(&name).unwrap();
    let t = Instant::now();
    assert_win32(
        wait_named_pipe(&name, WaitTimeout::After(Duration::from_millis(150))),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_win32(
        wait_named_pipe(&name, WaitTimeout::After(Duration::ZERO)),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
}

#[test]
fn wait_default_uses_the_servers_timeout() {
    let name = util::name("waitdef");
    let _s = ServerOptions::new()
        .default_timeout(Duration::from_millis(300))
        .create(&name)
        .unwrap();
    let _c = ClientOptions::new().open(&name).unwrap();
    let t = Instant::now();
    assert_win32(
        wait_named_pipe(&name, WaitTimeout::Default),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    assert!(t.elapsed() >= Duration::from_millis(290), "{:?}", t.elapsed());
    // Zero means 50 ms, as in Win32.
    let name2 = util::name("waitdef0");
    let _s2 = ServerOptions::new().create(&name2).unwrap();
    let _c2 = ClientOptions::new().open(&name2).unwrap();
    let t = Instant::now();
    assert_win32(
        wait_named_pipe(&name2, WaitTimeout::Default),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

#[test]
fn wait_returns_when_an_instance_frees_up() {
    let name = util::name("waitok");
    let s = ServerOptions::new().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.connect().unwrap();
    let n2 = name.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        wait_named_pipe(&n2, WaitTimeout::Forever).map(|_| t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished(), "the wait must wait while the instance is busy");
    drop(c);
    s.disconnect().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "a disconnected instance does not listen until connect"
    );
    let s2 = std::thread::spawn(move || {
        s.connect().unwrap();
        s
    });
    let waited = watchdog(5 * SECOND, move || waiter.join().unwrap()).unwrap();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    let _c = ClientOptions::new().open(&name).unwrap();
    let _ = s2.join().unwrap();
}

#[test]
fn wait_sees_a_server_process_that_starts_later() {
    let name = util::name("waitlate");
    // The name exists (one busy instance here), then another process adds instances.
    let _s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let _c = ClientOptions::new().open(&name).unwrap();
    let n2 = name.clone();
    let waiter = std::thread::spawn(move || wait_named_pipe(&n2, WaitTimeout::After(10 * SECOND)));
    std::thread::sleep(Duration::from_millis(100));
    let peer = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    watchdog(10 * SECOND, move || waiter.join().unwrap()).expect("the new process's instance ends the wait");
}

#[test]
fn call_waits_transacts_and_closes() {
    let name = util::name("call");
    let peer = Peer::spawn("server_echo", &[&name, "1", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    let mut reply = [0u8; 64];
    let r = call_named_pipe(&name, b"hello", &mut reply, WaitTimeout::After(5 * SECOND)).unwrap();
    assert_eq!(&reply[..r.len], format!("{}:hello", peer.pid()).as_bytes());
    assert!(!r.more);
    // Call closed its handle, so the single instance serves the next call.
    let r = call_named_pipe(&name, b"again", &mut reply, WaitTimeout::After(5 * SECOND)).unwrap();
    assert_eq!(&reply[..r.len], format!("{}:again", peer.pid()).as_bytes());
    // A short reply buffer: the part, flagged.
    let mut short = [0u8; 3];
    let r = call_named_pipe(&name, b"abcdef", &mut short, WaitTimeout::After(5 * SECOND)).unwrap();
    assert!(r.more);
    assert_eq!(r.len, 3);
    assert_win32(
        call_named_pipe(util::name("nocall"), b"x", &mut reply, WaitTimeout::After(SECOND)),
        Win32Error::ERROR_FILE_NOT_FOUND,
    );
}

#[test]
fn call_on_a_busy_pipe_waits_then_times_out() {
    let name = util::name("callbusy");
    let _s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let _holder = ClientOptions::new().open(&name).unwrap();
    let mut reply = [0u8; 8];
    let t = Instant::now();
    assert_win32(
        call_named_pipe(&name, b"x", &mut reply, WaitTimeout::After(Duration::from_millis(200))),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    assert!(t.elapsed() >= Duration::from_millis(190));
}

#[test]
fn a_client_may_ask_for_one_direction() {
    let name = util::name("dirs");
    let _inbound = ServerOptions::new().access_outbound(false).create(&name).unwrap();
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_ACCESS_DENIED);
    let c = ClientOptions::new().read(false).open(&name).unwrap();
    let mut b = [0u8; 1];
    assert_win32(c.peek(&mut b), Win32Error::ERROR_ACCESS_DENIED);
}

/// A server process that is alive but does not answer (stopped here; a
/// swamped acceptor under thousands of simultaneous opens looks the same)
/// is busy, not gone: the open says ERROR_PIPE_BUSY after its bounded wait
/// for the answer, and a new instance of the name leaves its socket alone,
/// so once it runs again it serves at once.
#[test]
fn a_server_that_does_not_answer_is_busy_not_gone() {
    use rustix::process::{kill_process, Pid, Signal};
    let name = util::name("stopped");
    let peer = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(peer.expect_line(10 * SECOND), "ready");
    let pid = Pid::from_raw(peer.pid() as i32).unwrap();
    kill_process(pid, Signal::STOP).unwrap();
    // Stopped once /proc says so (the signal lands after kill returns).
    let stat = format!("/proc/{}/stat", peer.pid());
    let t = Instant::now();
    while !std::fs::read_to_string(&stat).unwrap().contains(") T ") {
        assert!(t.elapsed() < 5 * SECOND, "the server never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at = Instant::now();
    let e = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .open(&name)
        .unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_BUSY), "{e}");
    assert!(at.elapsed() < 3 * SECOND, "bounded: {:?}", at.elapsed());
    // A look finds the pipe there, with no instance free in time.
    assert_win32(
        wait_named_pipe(&name, WaitTimeout::After(Duration::ZERO)),
        Win32Error::ERROR_SEM_TIMEOUT,
    );
    // Another instance of the name (a census of the live servers first).
    let mine = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    drop(mine);
    kill_process(pid, Signal::CONT).unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    let mut reply = [0u8; 64];
    let r = c.transact(b"back", &mut reply).unwrap();
    assert!(reply[..r.len].ends_with(b":back"), "the stopped server serves again");
}

/// One transact through a fresh open of `name`: the pid of the process
/// that served it (server_echo prefixes its replies with it).
fn served_by(name: &str) -> (pipeslot::blocking::NamedPipeClient, String) {
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(name).unwrap();
    let mut reply = [0u8; 64];
    let r = c.transact(b"who", &mut reply).unwrap();
    let text = String::from_utf8(reply[..r.len].to_vec()).unwrap();
    let pid = text.strip_suffix(":who").expect("an echo").to_owned();
    (c, pid)
}

// A client remembers where a name's servers listened (the folder changes
// only when a server process comes or goes): these are the changes that
// memory must not hide.
#[test]
fn a_client_that_opened_a_name_finds_the_server_process_that_replaced_its_server() {
    let name = util::name("replaced");
    let mut first = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(first.expect_line(10 * SECOND), "ready");
    let (c, pid) = served_by(&name);
    assert_eq!(pid, first.pid().to_string());
    drop(c);
    first.kill();
    let second = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(second.expect_line(10 * SECOND), "ready");
    let (_c, pid) = served_by(&name);
    assert_eq!(pid, second.pid().to_string(), "the new process serves at once");
}

#[test]
fn a_client_finds_a_second_server_process_when_the_one_it_knows_is_busy() {
    let name = util::name("second");
    let first = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(first.expect_line(10 * SECOND), "ready");
    let (_held, pid) = served_by(&name);
    assert_eq!(pid, first.pid().to_string());
    // The first process's one instance is taken; another process adds one.
    let second = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(second.expect_line(10 * SECOND), "ready");
    let (_c, pid) = served_by(&name);
    assert_eq!(
        pid,
        second.pid().to_string(),
        "not ERROR_PIPE_BUSY from the process known before"
    );
    // Both taken: busy, from both.
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_PIPE_BUSY);
}

#[test]
fn a_name_whose_last_server_went_is_not_found_for_a_client_that_opened_it_before() {
    let name = util::name("gone");
    let mut first = Peer::spawn("server_echo", &[&name, "255", "1"]);
    assert_eq!(first.expect_line(10 * SECOND), "ready");
    drop(served_by(&name));
    first.kill();
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_FILE_NOT_FOUND);
}
