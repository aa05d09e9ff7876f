//! Named pipes: CreateNamedPipe, ConnectNamedPipe, DisconnectNamedPipe,
//! CreateFile, WaitNamedPipe, ReadFile, WriteFile, TransactNamedPipe,
//! CallNamedPipe, PeekNamedPipe, FlushFileBuffers, GetNamedPipeInfo,
//! Get/SetNamedPipeHandleState, the client's and server's identity.

use std::ffi::c_char;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeEnd, PipeMode, PipeSecurity, WaitTimeout, Win32Error};

use crate::abi;
use crate::errors::{guard, Fail};
use crate::handles::{self, with_pipe, End, Object, Pipe};
use crate::*;

/// Both ends share the I/O calls.
macro_rules! on_end {
    ($pipe:expr, $e:ident => $call:expr) => {
        match &$pipe.end {
            End::Server($e) => $call,
            End::Client($e) => $call,
        }
    };
}

fn mode_of(message: bool) -> PipeMode {
    if message {
        PipeMode::Message
    } else {
        PipeMode::Byte
    }
}

fn wait_timeout(ms: u32) -> WaitTimeout {
    match ms {
        NMPWAIT_USE_DEFAULT_WAIT => WaitTimeout::Default,
        NMPWAIT_WAIT_FOREVER => WaitTimeout::Forever,
        ms => WaitTimeout::After(Duration::from_millis(u64::from(ms))),
    }
}

/// CreateNamedPipe: one listening instance of `name` (`\\.\pipe\NAME`, or
/// a bare `NAME`). `open_mode`: `PIPE_ACCESS_*`, optionally with
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`; `pipe_mode`: `PIPE_TYPE_*`,
/// `PIPE_READMODE_*`, `PIPE_NOWAIT`, `PIPE_REJECT_REMOTE_CLIENTS`;
/// `max_instances`: 1 to 254 or `PIPE_UNLIMITED_INSTANCES`; buffer sizes
/// and the default wait as Win32 takes them (0: defaults). `flags`:
/// `PIPESLOT_ALLOW_EVERYONE` lets every local user open it (the default is
/// its owner only). The handle is stored in `*out`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to a writable handle.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_create_named_pipe(
    name: *const c_char,
    open_mode: u32,
    pipe_mode: u32,
    max_instances: u32,
    out_buffer_size: u32,
    in_buffer_size: u32,
    default_timeout_ms: u32,
    flags: u32,
    out: *mut PipeslotHandle,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract, passed on.
        let name = unsafe { abi::name(name, "name") }?;
        let message_type = pipe_mode & PIPE_TYPE_MESSAGE != 0;
        let message_reads = pipe_mode & PIPE_READMODE_MESSAGE != 0;
        let mut o = ServerOptions::new();
        o.pipe_mode(mode_of(message_type))
            .read_mode(mode_of(message_reads))
            .access_inbound(open_mode & PIPE_ACCESS_INBOUND != 0)
            .access_outbound(open_mode & PIPE_ACCESS_OUTBOUND != 0)
            .first_pipe_instance(open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE != 0)
            .reject_remote_clients(pipe_mode & PIPE_REJECT_REMOTE_CLIENTS != 0);
        match max_instances {
            PIPE_UNLIMITED_INSTANCES => o.unlimited_instances(),
            n @ 1..=254 => o.max_instances(n as usize),
            n => {
                return Err(Fail::new(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    format!("max_instances {n}: 1 to 254, or PIPE_UNLIMITED_INSTANCES (255)"),
                ))
            }
        };
        if out_buffer_size > 0 {
            o.out_buffer_size(out_buffer_size);
        }
        if in_buffer_size > 0 {
            o.in_buffer_size(in_buffer_size);
        }
        if default_timeout_ms > 0 {
            o.default_timeout(Duration::from_millis(u64::from(default_timeout_ms)));
        }
        if flags & PIPESLOT_ALLOW_EVERYONE != 0 {
            o.security(PipeSecurity::owner_only().allow_everyone());
        }
        let server = o.create(name)?;
        if pipe_mode & PIPE_NOWAIT != 0 {
            server.set_nonblocking(true)?;
        }
        let h = handles::insert(Object::Pipe(Pipe {
            end: End::Server(server),
            message_type,
            message_reads: AtomicBool::new(message_reads),
        }));
        // SAFETY: the caller's contract.
        unsafe { abi::put(out, h, "out") }
    })
}

/// ConnectNamedPipe: waits for a client, at most `timeout_ms`
/// (`INFINITE`: for ever; `ERROR_SEM_TIMEOUT (121)` when none came).
/// `ERROR_PIPE_CONNECTED (535)` when one had connected already.
#[no_mangle]
pub extern "C" fn pipeslot_connect_named_pipe(pipe: PipeslotHandle, timeout_ms: u32) -> u32 {
    guard(|| {
        with_pipe(pipe, |p| {
            let End::Server(s) = &p.end else {
                return Err(Fail::new(
                    Win32Error::ERROR_INVALID_FUNCTION,
                    "ConnectNamedPipe on a client handle",
                ));
            };
            if timeout_ms == INFINITE {
                return Ok(s.connect()?);
            }
            match s.connect_timeout(Duration::from_millis(u64::from(timeout_ms)))? {
                true => Ok(()),
                false => Err(Fail::new(
                    Win32Error::ERROR_SEM_TIMEOUT,
                    format!("no client came in {timeout_ms} ms"),
                )),
            }
        })
    })
}

/// DisconnectNamedPipe: ends the client's connection (what it had not
/// read is discarded); the instance can connect again.
#[no_mangle]
pub extern "C" fn pipeslot_disconnect_named_pipe(pipe: PipeslotHandle) -> u32 {
    guard(|| {
        with_pipe(pipe, |p| match &p.end {
            End::Server(s) => Ok(s.disconnect()?),
            End::Client(_) => Err(Fail::new(
                Win32Error::ERROR_INVALID_FUNCTION,
                "DisconnectNamedPipe on a client handle",
            )),
        })
    })
}

/// CreateFile on a pipe: `\\.\pipe\NAME` or `\\HOST\pipe\NAME` (over SMB,
/// with `PIPESLOT_USER`/`PIPESLOT_PASSWORD` or `PIPESLOT_CREDENTIALS`), or
/// a mailslot `\\.\mailslot\NAME`, `\\HOST\…`, `\\DOMAIN\…`, `\\*\…` to
/// write to. `access`: `GENERIC_READ` and/or `GENERIC_WRITE`; `read_mode`:
/// `PIPE_READMODE_BYTE` or `PIPE_READMODE_MESSAGE` (pipes only).
/// `ERROR_PIPE_BUSY (231)` when every instance is taken (see
/// `pipeslot_wait_named_pipe`).
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to a writable handle.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_create_file(
    name: *const c_char,
    access: u32,
    read_mode: u32,
    out: *mut PipeslotHandle,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let name = unsafe { abi::name(name, "name") }?;
        let object = if is_mailslot(name) {
            Object::Writer(pipeslot::blocking::MailslotWriter::open(name)?)
        } else {
            let message_reads = read_mode & PIPE_READMODE_MESSAGE != 0;
            let client = ClientOptions::new()
                .read(access & GENERIC_READ != 0)
                .write(access & GENERIC_WRITE != 0)
                .pipe_mode(mode_of(message_reads))
                .open(name)?;
            let message_type = client.info()?.mode == PipeMode::Message;
            Object::Pipe(Pipe {
                end: End::Client(client),
                message_type,
                message_reads: AtomicBool::new(message_reads),
            })
        };
        // SAFETY: the caller's contract.
        unsafe { abi::put(out, handles::insert(object), "out") }
    })
}

fn is_mailslot(name: &str) -> bool {
    matches!(pipeslot::Name::parse(name), Ok(pipeslot::Name::Mailslot(_)))
}

/// WaitNamedPipe: until an instance of `name` listens, at most
/// `timeout_ms` (`NMPWAIT_USE_DEFAULT_WAIT`: the server's default;
/// `NMPWAIT_WAIT_FOREVER`). `ERROR_SEM_TIMEOUT (121)`, or
/// `ERROR_FILE_NOT_FOUND (2)` when no such pipe exists.
///
/// # Safety
/// `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_wait_named_pipe(name: *const c_char, timeout_ms: u32) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let name = unsafe { abi::name(name, "name") }?;
        Ok(pipeslot::wait_named_pipe(name, wait_timeout(timeout_ms))?)
    })
}

/// ReadFile: up to `len` bytes into `buf`, their count in `*read`. In
/// message read mode one message, or its first `len` bytes with
/// `ERROR_MORE_DATA (234)` (the rest is read next). `ERROR_BROKEN_PIPE
/// (109)` when the other end closed — at once, also when it died;
/// `ERROR_NO_DATA (232)` in `PIPE_NOWAIT` mode when nothing waits. On a
/// mailslot: the next whole message, `ERROR_INSUFFICIENT_BUFFER (122)`
/// when it does not fit (it stays), `ERROR_SEM_TIMEOUT (121)` after the
/// mailslot's read timeout.
///
/// # Safety
/// `buf` points to `len` writable bytes (or `len` is 0); `read` points to
/// a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_read_file(handle: PipeslotHandle, buf: *mut u8, len: usize, read: *mut usize) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let buf = unsafe { abi::bytes_mut(buf, len, "buf") }?;
        // SAFETY: the caller's contract.
        unsafe { abi::put(read, 0, "read") }?;
        let (n, more) = match &*handles::get(handle)? {
            Object::Pipe(p) if p.reads_messages() => {
                let m = on_end!(p, e => e.read_msg(buf))?;
                (m.len, m.more)
            }
            Object::Pipe(p) => {
                let n = on_end!(p, e => { let mut r: &_ = e; r.read(buf) })?;
                // std's end of file is ReadFile's ERROR_BROKEN_PIPE.
                if n == 0 && !buf.is_empty() {
                    return Err(Fail::new(
                        Win32Error::ERROR_BROKEN_PIPE,
                        "the pipe has been ended by the other end",
                    ));
                }
                (n, false)
            }
            Object::Mailslot(m) => (m.read(buf)?, false),
            Object::Writer(_) => {
                return Err(Fail::new(
                    Win32Error::ERROR_ACCESS_DENIED,
                    "a mailslot is read by its server handle only",
                ))
            }
        };
        // SAFETY: the caller's contract.
        unsafe { abi::put(read, n, "read") }?;
        if more {
            return Err(Fail::new(
                Win32Error::ERROR_MORE_DATA,
                format!("{n} bytes read; the message goes on"),
            ));
        }
        Ok(())
    })
}

/// WriteFile: `len` bytes from `buf`, as one message on a message pipe or
/// a mailslot; `*written` (may be NULL) gets the count. `ERROR_NO_DATA
/// (232)` when the other end has closed.
///
/// # Safety
/// `buf` points to `len` readable bytes (or `len` is 0); `written` is NULL
/// or points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_write_file(
    handle: PipeslotHandle,
    buf: *const u8,
    len: usize,
    written: *mut usize,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let data = unsafe { abi::bytes(buf, len, "buf") }?;
        // SAFETY: the caller's contract.
        unsafe { abi::put_opt(written, 0) };
        match &*handles::get(handle)? {
            Object::Pipe(p) if p.message_type => on_end!(p, e => e.write_msg(data))?,
            Object::Pipe(p) => on_end!(p, e => { let mut w: &_ = e; w.write_all(data) })?,
            Object::Writer(w) => w.write(data)?,
            Object::Mailslot(_) => {
                return Err(Fail::new(
                    Win32Error::ERROR_ACCESS_DENIED,
                    "a mailslot server handle only reads",
                ))
            }
        }
        // SAFETY: the caller's contract.
        unsafe { abi::put_opt(written, data.len()) };
        Ok(())
    })
}

/// TransactNamedPipe: writes one message and reads the answer (message
/// read mode), `ERROR_MORE_DATA (234)` when it is longer than `out_len`.
///
/// # Safety
/// `input` points to `in_len` readable bytes, `output` to `out_len`
/// writable ones (either may be NULL with a length of 0); `read` points to
/// a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_transact_named_pipe(
    pipe: PipeslotHandle,
    input: *const u8,
    in_len: usize,
    output: *mut u8,
    out_len: usize,
    read: *mut usize,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let (input, output) = unsafe {
            (
                abi::bytes(input, in_len, "input")?,
                abi::bytes_mut(output, out_len, "output")?,
            )
        };
        // SAFETY: the caller's contract.
        unsafe { abi::put(read, 0, "read") }?;
        let m = with_pipe(pipe, |p| Ok(on_end!(p, e => e.transact(input, output))?))?;
        finish_message(read, m)
    })
}

fn finish_message(read: *mut usize, m: pipeslot::MsgRead) -> Result<(), Fail> {
    // SAFETY: `read` was checked and written by the caller of this helper
    // under the same contract.
    unsafe { abi::put(read, m.len, "read") }?;
    if m.more {
        return Err(Fail::new(
            Win32Error::ERROR_MORE_DATA,
            format!("{} bytes read; the message goes on", m.len),
        ));
    }
    Ok(())
}

/// CallNamedPipe: open (waiting up to `timeout_ms` while every instance is
/// busy, as `pipeslot_wait_named_pipe`), transact, close.
///
/// # Safety
/// As `pipeslot_transact_named_pipe`, and `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_call_named_pipe(
    name: *const c_char,
    input: *const u8,
    in_len: usize,
    output: *mut u8,
    out_len: usize,
    read: *mut usize,
    timeout_ms: u32,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let name = unsafe { abi::name(name, "name") }?;
        // SAFETY: the caller's contract.
        let (input, output) = unsafe {
            (
                abi::bytes(input, in_len, "input")?,
                abi::bytes_mut(output, out_len, "output")?,
            )
        };
        // SAFETY: the caller's contract.
        unsafe { abi::put(read, 0, "read") }?;
        let m = pipeslot::blocking::call_named_pipe(name, input, output, wait_timeout(timeout_ms))?;
        finish_message(read, m)
    })
}

/// PeekNamedPipe: copies what waits (from the next message, on message
/// pipes) without taking it. Each out-pointer may be NULL.
///
/// # Safety
/// `buf` points to `len` writable bytes (or `len` is 0); the out-pointers
/// are NULL or point to writable `size_t`s.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_peek_named_pipe(
    pipe: PipeslotHandle,
    buf: *mut u8,
    len: usize,
    read: *mut usize,
    available: *mut usize,
    left_in_message: *mut usize,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let buf = unsafe { abi::bytes_mut(buf, len, "buf") }?;
        let p = with_pipe(pipe, |p| Ok(on_end!(p, e => e.peek(buf))?))?;
        // SAFETY: the caller's contract.
        unsafe {
            abi::put_opt(read, p.read);
            abi::put_opt(available, p.available);
            abi::put_opt(left_in_message, p.left_in_message);
        }
        Ok(())
    })
}

/// FlushFileBuffers: returns once the other end has read everything
/// written so far.
#[no_mangle]
pub extern "C" fn pipeslot_flush_file_buffers(pipe: PipeslotHandle) -> u32 {
    guard(|| with_pipe(pipe, |p| Ok(on_end!(p, e => e.flush_buffers())?)))
}

/// GetNamedPipeInfo: `PIPE_SERVER_END`/`PIPE_CLIENT_END` with
/// `PIPE_TYPE_MESSAGE` in `*flags`, the buffer sizes and the instance
/// limit. Each out-pointer may be NULL.
///
/// # Safety
/// The out-pointers are NULL or point to writable `uint32_t`s.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_get_named_pipe_info(
    pipe: PipeslotHandle,
    flags: *mut u32,
    out_buffer_size: *mut u32,
    in_buffer_size: *mut u32,
    max_instances: *mut u32,
) -> u32 {
    guard(|| {
        let info = with_pipe(pipe, |p| Ok(on_end!(p, e => e.info())?))?;
        let end = if info.end == PipeEnd::Server {
            PIPE_SERVER_END
        } else {
            PIPE_CLIENT_END
        };
        let kind = if info.mode == PipeMode::Message {
            PIPE_TYPE_MESSAGE
        } else {
            PIPE_TYPE_BYTE
        };
        // SAFETY: the caller's contract.
        unsafe {
            abi::put_opt(flags, end | kind);
            abi::put_opt(out_buffer_size, info.out_buffer_size);
            abi::put_opt(in_buffer_size, info.in_buffer_size);
            abi::put_opt(max_instances, info.max_instances);
        }
        Ok(())
    })
}

/// SetNamedPipeHandleState's mode: `PIPE_READMODE_*` and `PIPE_WAIT` or
/// `PIPE_NOWAIT`.
#[no_mangle]
pub extern "C" fn pipeslot_set_named_pipe_handle_state(pipe: PipeslotHandle, mode: u32) -> u32 {
    guard(|| {
        with_pipe(pipe, |p| {
            let message = mode & PIPE_READMODE_MESSAGE != 0;
            on_end!(p, e => e.set_read_mode(mode_of(message)))?;
            // Only a change: a remote pipe has no PIPE_NOWAIT, but may be told PIPE_WAIT.
            let nowait = mode & PIPE_NOWAIT != 0;
            if on_end!(p, e => e.handle_state())?.nonblocking != nowait {
                on_end!(p, e => e.set_nonblocking(nowait))?;
            }
            p.message_reads.store(message, Ordering::Relaxed);
            Ok(())
        })
    })
}

/// GetNamedPipeHandleState: `PIPE_READMODE_*` | `PIPE_NOWAIT` in `*state`,
/// and the instances of the pipe in `*instances`. Each may be NULL.
///
/// # Safety
/// The out-pointers are NULL or point to writable `uint32_t`s.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_get_named_pipe_handle_state(
    pipe: PipeslotHandle,
    state: *mut u32,
    instances: *mut u32,
) -> u32 {
    guard(|| {
        let st = with_pipe(pipe, |p| Ok(on_end!(p, e => e.handle_state())?))?;
        let mut mode = if st.read_mode == PipeMode::Message {
            PIPE_READMODE_MESSAGE
        } else {
            PIPE_READMODE_BYTE
        };
        if st.nonblocking {
            mode |= PIPE_NOWAIT;
        }
        // SAFETY: the caller's contract.
        unsafe {
            abi::put_opt(state, mode);
            abi::put_opt(instances, st.instances);
        }
        Ok(())
    })
}

/// Who the connected client is (a server handle): pid, uid and gid as the
/// kernel recorded them, and its user name in `user` (NUL-terminated;
/// `ERROR_INSUFFICIENT_BUFFER (122)` when `user_len` is too short, the
/// numbers still filled in). A client through the gateway shows as the
/// gateway's process with `remote` set, and its remote `DOMAIN\user`.
///
/// # Safety
/// `identity` points to a writable `PipeslotIdentity`; `user` points to
/// `user_len` writable bytes (or `user_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn pipeslot_get_client_identity(
    pipe: PipeslotHandle,
    identity: *mut PipeslotIdentity,
    user: *mut c_char,
    user_len: usize,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let user = unsafe { abi::bytes_mut(user.cast::<u8>(), user_len, "user") }?;
        let who = with_pipe(pipe, |p| match &p.end {
            End::Server(s) => s
                .client_identity()
                .ok_or_else(|| Fail::new(Win32Error::ERROR_PIPE_NOT_CONNECTED, "no client is connected")),
            End::Client(_) => Err(Fail::new(
                Win32Error::ERROR_INVALID_FUNCTION,
                "a client handle: ask its server identity",
            )),
        })?;
        let id = PipeslotIdentity {
            pid: who.pid,
            uid: who.uid,
            gid: who.gid,
            remote: u32::from(who.remote_user.is_some() || who.computer.is_some()),
        };
        // SAFETY: the caller's contract.
        unsafe { abi::put(identity, id, "identity") }?;
        let name = who.remote_user.or(who.user).unwrap_or_else(|| who.uid.to_string());
        copy_string(&name, user)
    })
}

/// GetNamedPipeServerProcessId (a client handle), with the server's uid and gid.
///
/// # Safety
/// `identity` points to a writable `PipeslotIdentity`.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_get_server_identity(pipe: PipeslotHandle, identity: *mut PipeslotIdentity) -> u32 {
    guard(|| {
        let who = with_pipe(pipe, |p| match &p.end {
            End::Client(c) => Ok(c.server_identity()?),
            End::Server(_) => Err(Fail::new(
                Win32Error::ERROR_INVALID_FUNCTION,
                "a server handle: ask its client identity",
            )),
        })?;
        // SAFETY: the caller's contract.
        unsafe {
            abi::put(
                identity,
                PipeslotIdentity {
                    pid: who.pid,
                    uid: who.uid,
                    gid: who.gid,
                    remote: 0,
                },
                "identity",
            )
        }
    })
}

fn copy_string(s: &str, out: &mut [u8]) -> Result<(), Fail> {
    let b = s.as_bytes();
    if out.len() <= b.len() {
        if let Some(first) = out.first_mut() {
            *first = 0;
        }
        return Err(Fail::new(
            Win32Error::ERROR_INSUFFICIENT_BUFFER,
            format!("{} bytes are needed", b.len() + 1),
        ));
    }
    out[..b.len()].copy_from_slice(b);
    out[b.len()] = 0;
    Ok(())
}
