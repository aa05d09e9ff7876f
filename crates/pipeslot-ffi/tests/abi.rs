//! The C ABI called as C would call it, in this process: every call's
//! return code, the modes, the identity, mailslots, and bad input of every
//! kind (NULLs, lengths, names, handles) answered with its Win32 error.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pipeslot_ffi::*;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("pipeslot-ffi-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("PIPESLOT_DIR", dir);
    });
}

fn name(tag: &str) -> CString {
    init();
    static SEQ: AtomicU32 = AtomicU32::new(0);
    CString::new(format!(r"\\.\pipe\ffi-{tag}-{}", SEQ.fetch_add(1, Ordering::Relaxed))).unwrap()
}

fn last_error() -> String {
    let mut buf = vec![0u8; 512];
    // SAFETY: buf holds 512 writable bytes.
    let n = unsafe { pipeslot_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(buf.len()) - 1]).into_owned()
}

fn error_name(code: u32) -> &'static str {
    let p = pipeslot_error_name(code);
    assert!(!p.is_null(), "{code} has a name");
    // SAFETY: the library returns static NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap()
}

fn server(n: &CString, pipe_mode: u32, instances: u32) -> PipeslotHandle {
    let mut h = 0;
    // SAFETY: a valid name and out-pointer.
    let rc =
        unsafe { pipeslot_create_named_pipe(n.as_ptr(), PIPE_ACCESS_DUPLEX, pipe_mode, instances, 0, 0, 0, 0, &mut h) };
    assert_eq!(rc, 0, "{}", last_error());
    assert_ne!(h, 0);
    h
}

fn open(n: &CString, read_mode: u32) -> Result<PipeslotHandle, u32> {
    let mut h = 0;
    // SAFETY: a valid name and out-pointer.
    match unsafe { pipeslot_create_file(n.as_ptr(), GENERIC_READ | GENERIC_WRITE, read_mode, &mut h) } {
        0 => Ok(h),
        rc => Err(rc),
    }
}

fn write(h: PipeslotHandle, data: &[u8]) -> u32 {
    let mut n = 0;
    // SAFETY: data's bytes and a valid out-pointer.
    let rc = unsafe { pipeslot_write_file(h, data.as_ptr(), data.len(), &mut n) };
    if rc == 0 {
        assert_eq!(n, data.len());
    }
    rc
}

fn read(h: PipeslotHandle, room: usize) -> (u32, Vec<u8>) {
    let mut buf = vec![0u8; room];
    let mut n = usize::MAX;
    // SAFETY: buf's room and a valid out-pointer.
    let rc = unsafe { pipeslot_read_file(h, buf.as_mut_ptr(), buf.len(), &mut n) };
    buf.truncate(n);
    (rc, buf)
}

#[test]
fn a_message_pipe_round_trip_with_every_call_on_it() {
    let n = name("msg");
    let s = server(&n, PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE, 2);
    let n2 = n.clone();
    let client = std::thread::spawn(move || {
        // SAFETY: a valid name.
        assert_eq!(unsafe { pipeslot_wait_named_pipe(n2.as_ptr(), 5000) }, 0);
        let c = open(&n2, PIPE_READMODE_MESSAGE).unwrap();
        let mut who = PipeslotIdentity::default();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { pipeslot_get_server_identity(c, &mut who) }, 0);
        assert_eq!(who.pid, std::process::id());
        let mut reply = [0u8; 4];
        let mut got = 0;
        // SAFETY: valid buffers.
        let rc = unsafe { pipeslot_transact_named_pipe(c, b"hello".as_ptr(), 5, reply.as_mut_ptr(), 4, &mut got) };
        assert_eq!((rc, got, &reply), (ERROR_MORE_DATA, 4, b"HELL"));
        assert_eq!(read(c, 64), (0, b"O".to_vec()), "the rest of the reply");
        assert_eq!(write(c, b"second"), 0);
        // SAFETY: a handle.
        assert_eq!(pipeslot_flush_file_buffers(c), 0, "returns once the server read it");
        assert_eq!(pipeslot_close_handle(c), 0);
    });
    assert_eq!(pipeslot_connect_named_pipe(s, INFINITE), 0, "{}", last_error());
    let mut who = PipeslotIdentity::default();
    let mut user = [0i8; 64];
    // SAFETY: valid out-pointers.
    assert_eq!(
        unsafe { pipeslot_get_client_identity(s, &mut who, user.as_mut_ptr().cast(), user.len()) },
        0
    );
    assert_eq!((who.pid, who.remote), (std::process::id(), 0), "a local client");
    // SAFETY: NUL-terminated by the call.
    assert!(!unsafe { CStr::from_ptr(user.as_ptr().cast()) }.to_bytes().is_empty());
    let mut tiny = [0i8; 1];
    // SAFETY: one writable byte.
    let rc = unsafe { pipeslot_get_client_identity(s, &mut who, tiny.as_mut_ptr().cast(), 1) };
    assert_eq!(rc, ERROR_INSUFFICIENT_BUFFER);
    // Peek sees the request without taking it.
    let until = Instant::now() + Duration::from_secs(5);
    let (mut avail, mut left, mut got) = (0usize, 0usize, 0usize);
    let mut buf = [0u8; 2];
    while avail == 0 {
        assert!(Instant::now() < until);
        // SAFETY: valid buffers.
        assert_eq!(
            unsafe { pipeslot_peek_named_pipe(s, buf.as_mut_ptr(), 2, &mut got, &mut avail, &mut left) },
            0
        );
    }
    assert_eq!((got, avail, left, &buf), (2, 5, 3, b"he"));
    let (rc, msg) = read(s, 64);
    assert_eq!((rc, msg.as_slice()), (0, &b"hello"[..]));
    assert_eq!(write(s, b"HELLO"), 0);
    assert_eq!(read(s, 64), (0, b"second".to_vec()));
    let (mut flags, mut out_size, mut in_size, mut max) = (0, 0, 0, 0);
    // SAFETY: valid out-pointers.
    assert_eq!(
        unsafe { pipeslot_get_named_pipe_info(s, &mut flags, &mut out_size, &mut in_size, &mut max) },
        0
    );
    assert_eq!((flags, max), (PIPE_SERVER_END | PIPE_TYPE_MESSAGE, 2));
    let (mut state, mut instances) = (0, 0);
    // SAFETY: valid out-pointers.
    assert_eq!(
        unsafe { pipeslot_get_named_pipe_handle_state(s, &mut state, &mut instances) },
        0
    );
    assert_eq!((state, instances), (PIPE_READMODE_MESSAGE, 1));
    client.join().unwrap();
    // The client closed: at once, ERROR_BROKEN_PIPE.
    let t = Instant::now();
    assert_eq!(read(s, 64).0, ERROR_BROKEN_PIPE);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(last_error().starts_with("ERROR_BROKEN_PIPE (109)"), "{}", last_error());
    assert_eq!(pipeslot_disconnect_named_pipe(s), 0);
    assert_eq!(pipeslot_close_handle(s), 0);
}

#[test]
fn byte_pipes_busy_waits_nowait_and_call() {
    let n = name("byte");
    let s = server(&n, PIPE_TYPE_BYTE, 1);
    let c = open(&n, 0).unwrap();
    assert_eq!(pipeslot_connect_named_pipe(s, 1000), 0);
    assert_eq!(pipeslot_connect_named_pipe(s, 1000), ERROR_PIPE_CONNECTED);
    assert_eq!(open(&n, 0), Err(ERROR_PIPE_BUSY));
    // SAFETY: a valid name.
    assert_eq!(unsafe { pipeslot_wait_named_pipe(n.as_ptr(), 50) }, ERROR_SEM_TIMEOUT);
    assert_eq!(write(c, b"abc"), 0);
    assert_eq!(write(c, b"def"), 0);
    assert_eq!(read(s, 2), (0, b"ab".to_vec()), "bytes: no message bounds");
    assert_eq!(
        pipeslot_set_named_pipe_handle_state(s, PIPE_READMODE_BYTE | PIPE_NOWAIT),
        0
    );
    assert_eq!(read(s, 64), (0, b"cdef".to_vec()));
    assert_eq!(read(s, 64).0, ERROR_NO_DATA, "PIPE_NOWAIT: nothing there, no wait");
    // A message read mode on a byte pipe is refused, as Win32 does.
    assert_eq!(
        pipeslot_set_named_pipe_handle_state(c, PIPE_READMODE_MESSAGE),
        ERROR_INVALID_PARAMETER
    );
    assert_eq!(pipeslot_close_handle(c), 0);
    assert_eq!(
        pipeslot_set_named_pipe_handle_state(s, PIPE_READMODE_BYTE | PIPE_WAIT),
        0
    );
    assert_eq!(read(s, 64).0, ERROR_BROKEN_PIPE, "a byte read after the client closed");
    assert_eq!(pipeslot_close_handle(s), 0);
    // A nobody-connects connect with a timeout.
    let n = name("lonely");
    let s = server(&n, PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE, 1);
    assert_eq!(pipeslot_connect_named_pipe(s, 20), ERROR_SEM_TIMEOUT);
    // CallNamedPipe against an echo instance.
    let n2 = n.clone();
    let echo = std::thread::spawn(move || {
        assert_eq!(pipeslot_connect_named_pipe(s, INFINITE), 0);
        let (_, m) = read(s, 64);
        assert_eq!(write(s, &m), 0);
        pipeslot_close_handle(s);
    });
    let mut reply = [0u8; 16];
    let mut got = 0;
    // SAFETY: valid buffers and name.
    let rc =
        unsafe { pipeslot_call_named_pipe(n2.as_ptr(), b"call".as_ptr(), 4, reply.as_mut_ptr(), 16, &mut got, 5000) };
    assert_eq!((rc, &reply[..got]), (0, &b"call"[..]));
    echo.join().unwrap();
}

#[test]
fn bad_input_gets_its_win32_error_never_a_crash() {
    init();
    let mut h = 0;
    // SAFETY: NULL and bad names are what is tested; the out-pointer is valid.
    unsafe {
        assert_eq!(
            pipeslot_create_named_pipe(null(), 3, 0, 1, 0, 0, 0, 0, &mut h),
            ERROR_INVALID_PARAMETER
        );
        assert!(last_error().contains("name is NULL"), "{}", last_error());
        let bad = [0xffu8, 0xfe, 0];
        assert_eq!(
            pipeslot_create_named_pipe(bad.as_ptr().cast(), 3, 0, 1, 0, 0, 0, 0, &mut h),
            ERROR_INVALID_NAME
        );
        let n = name("limits");
        for bad in [0, 256, u32::MAX] {
            assert_eq!(
                pipeslot_create_named_pipe(n.as_ptr(), 3, 0, bad, 0, 0, 0, 0, &mut h),
                ERROR_INVALID_PARAMETER,
                "{bad}"
            );
        }
        let n = name("null-out");
        assert_eq!(
            pipeslot_create_named_pipe(n.as_ptr(), 3, 0, 1, 0, 0, 0, 0, null_mut()),
            ERROR_INVALID_PARAMETER
        );
        assert_eq!(
            pipeslot_create_file(c"\\\\.\\pipe\\no-such".as_ptr(), GENERIC_READ, 0, &mut h),
            ERROR_FILE_NOT_FOUND
        );
        assert!(last_error().starts_with("ERROR_FILE_NOT_FOUND (2)"), "{}", last_error());
        // Not a pipe or mailslot path: as CreateFile of a file that is not there.
        assert_eq!(
            pipeslot_create_file(c"not a name".as_ptr(), GENERIC_READ, 0, &mut h),
            ERROR_FILE_NOT_FOUND
        );
        assert_eq!(pipeslot_wait_named_pipe(null(), 0), ERROR_INVALID_PARAMETER);
    }
    // Handles that are not open, or not of the kind the call needs.
    for bogus in [0, 1, 0xdead_beef, u64::MAX] {
        assert_eq!(pipeslot_connect_named_pipe(bogus, 0), ERROR_INVALID_HANDLE);
        assert_eq!(read(bogus, 4).0, ERROR_INVALID_HANDLE);
        assert_eq!(pipeslot_close_handle(bogus), ERROR_INVALID_HANDLE);
    }
    let n = name("kinds");
    let s = server(&n, 0, 1);
    let c = open(&n, 0).unwrap();
    assert_eq!(
        pipeslot_connect_named_pipe(c, 0),
        1,
        "ERROR_INVALID_FUNCTION on a client"
    );
    assert_eq!(
        pipeslot_set_mailslot_info(s, 0),
        ERROR_INVALID_HANDLE,
        "a pipe is no mailslot"
    );
    // Buffers: NULL with a length, and lengths no buffer can have.
    let mut got = 0;
    // SAFETY: NULL and an impossible length are what is tested.
    unsafe {
        assert_eq!(pipeslot_write_file(c, null(), 5, &mut got), ERROR_INVALID_PARAMETER);
        assert_eq!(pipeslot_read_file(s, null_mut(), 5, &mut got), ERROR_INVALID_PARAMETER);
        assert_eq!(
            pipeslot_read_file(s, [0u8; 4].as_mut_ptr(), usize::MAX, &mut got),
            ERROR_INVALID_PARAMETER
        );
        assert_eq!(
            pipeslot_read_file(s, [0u8; 4].as_mut_ptr(), 4, null_mut()),
            ERROR_INVALID_PARAMETER
        );
        assert_eq!(
            pipeslot_write_file(c, null(), 0, null_mut()),
            0,
            "an empty write needs no buffer"
        );
    }
    // Closed is closed: the second close, and any use after, is refused.
    assert_eq!(pipeslot_close_handle(c), 0);
    assert_eq!(pipeslot_close_handle(c), ERROR_INVALID_HANDLE);
    assert_eq!(write(c, b"x"), ERROR_INVALID_HANDLE);
    assert_eq!(pipeslot_close_handle(s), 0);
    // Names of codes, and the need of a zero-length message buffer.
    assert_eq!(error_name(231), "ERROR_PIPE_BUSY");
    assert_eq!(error_name(0), "ERROR_SUCCESS");
    assert!(pipeslot_error_name(0x7fff_0000).is_null());
    // SAFETY: a NULL buffer of length 0 only asks for the size.
    let need = unsafe { pipeslot_last_error_message(null_mut(), 0) };
    assert_eq!(need, last_error().len() + 1);
    // SAFETY: a static string.
    let v = unsafe { CStr::from_ptr(pipeslot_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn one_handle_read_and_written_from_two_threads_at_once() {
    let n = name("threads");
    let s = server(&n, PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE, 1);
    let c = open(&n, PIPE_READMODE_MESSAGE).unwrap();
    assert_eq!(pipeslot_connect_named_pipe(s, INFINITE), 0);
    let echo = std::thread::spawn(move || {
        for _ in 0..1000 {
            let (rc, m) = read(s, 64);
            assert_eq!(rc, 0);
            assert_eq!(write(s, &m), 0);
        }
    });
    let reader = std::thread::spawn(move || (0..1000u32).map(|_| read(c, 64)).collect::<Vec<_>>());
    for i in 0..1000u32 {
        assert_eq!(write(c, &i.to_le_bytes()), 0);
    }
    let got = reader.join().unwrap();
    for (i, (rc, m)) in got.into_iter().enumerate() {
        assert_eq!((rc, m), (0, (i as u32).to_le_bytes().to_vec()));
    }
    echo.join().unwrap();
    pipeslot_close_handle(c);
    pipeslot_close_handle(s);
}

#[test]
fn a_mailslot_through_the_abi() {
    init();
    let n = CString::new(format!(r"\\.\mailslot\ffi\slot{}", std::process::id())).unwrap();
    let (mut slot, mut again, mut w) = (0, 0, 0);
    // SAFETY: valid names and out-pointers.
    unsafe {
        assert_eq!(
            pipeslot_create_mailslot(n.as_ptr(), 64, 0, 0, &mut slot),
            0,
            "{}",
            last_error()
        );
        assert_eq!(
            pipeslot_create_mailslot(n.as_ptr(), 64, 0, 0, &mut again),
            ERROR_ALREADY_EXISTS
        );
        assert_eq!(pipeslot_create_file(n.as_ptr(), GENERIC_WRITE, 0, &mut w), 0);
    }
    assert_eq!(read(slot, 64).0, ERROR_SEM_TIMEOUT, "a zero timeout returns at once");
    assert_eq!(write(w, b"one message"), 0);
    assert_eq!(
        write(w, &[7; 65]),
        ERROR_INVALID_PARAMETER,
        "over the maximum: refused at the writer"
    );
    let (mut max, mut next, mut count, mut timeout) = (0, 0, 0, 0);
    // SAFETY: valid out-pointers.
    assert_eq!(
        unsafe { pipeslot_get_mailslot_info(slot, &mut max, &mut next, &mut count, &mut timeout) },
        0
    );
    assert_eq!((max, next, count, timeout), (64, 11, 1, 0));
    assert_eq!(read(slot, 4).0, ERROR_INSUFFICIENT_BUFFER);
    assert_eq!(read(slot, 64), (0, b"one message".to_vec()), "it stayed");
    // SAFETY: valid out-pointers.
    assert_eq!(
        unsafe { pipeslot_get_mailslot_info(slot, null_mut(), &mut next, null_mut(), null_mut()) },
        0
    );
    assert_eq!(next, MAILSLOT_NO_MESSAGE);
    assert_eq!(pipeslot_set_mailslot_info(slot, 30), 0);
    let t = Instant::now();
    assert_eq!(read(slot, 64).0, ERROR_SEM_TIMEOUT);
    assert!(t.elapsed() >= Duration::from_millis(25));
    assert_eq!(read(w, 4).0, ERROR_ACCESS_DENIED, "a writer does not read");
    assert_eq!(pipeslot_close_handle(w), 0);
    assert_eq!(pipeslot_close_handle(slot), 0);
}
