//! pipeslot's C ABI (`include/pipeslot.h`, made by cbindgen): Windows'
//! named-pipe and mailslot calls, shaped as Win32's, for C and for other
//! languages' foreign-function interfaces (the Perl module `Win32::Pipe` in
//! `perl/` sits on it).
//!
//! - **Errors.** Every call returns a Win32 error code: 0 (`ERROR_SUCCESS`)
//!   or, e.g., 231 (`ERROR_PIPE_BUSY`). `pipeslot_last_error_message` gives
//!   the last failure's text on the calling thread, `pipeslot_error_name`
//!   a code's name. A message read cut short returns `ERROR_MORE_DATA (234)`
//!   with the bytes read, as ReadFile does.
//! - **Handles** are numbers (`PipeslotHandle`), never pointers: a closed or
//!   made-up one is `ERROR_INVALID_HANDLE (6)`. Close each with
//!   `pipeslot_close_handle`.
//! - **Pointers and lengths** are checked where they can be: NULL where a
//!   buffer or an out-value is needed is `ERROR_INVALID_PARAMETER (87)`, a
//!   name that is not UTF-8 `ERROR_INVALID_NAME (123)`. That a pointer
//!   points to as many bytes as its length says is the caller's promise.
//! - **No panic crosses the boundary**: one would be a bug, and returns
//!   `ERROR_GEN_FAILURE (31)` with its text.
//! - **Threads.** Every call may be made from any thread, and a handle used
//!   from several at once (a reader and a writer, say). A call holds the
//!   object it works on, so closing the handle meanwhile makes later calls
//!   fail with `ERROR_INVALID_HANDLE`; the pipe itself ends once the calls
//!   in flight have returned.
//! - **No known problem of the seed**: a read whose peer died returns
//!   `ERROR_BROKEN_PIPE (109)` at once; `PIPE_NOWAIT` and timeouts give
//!   calls that never block; pipes are their owner's unless
//!   `PIPESLOT_ALLOW_EVERYONE`.
//!
//! The unsafe code is the pointer handling in `abi.rs`, the `#[no_mangle]`
//! that exports each call, and `safe.rs`, which makes the same calls for
//! Rust with borrowed buffers.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

use std::ffi::c_char;

mod abi;
mod errors;
mod handles;
mod mailslots;
mod pipes;
pub mod safe;

pub use mailslots::*;
pub use pipes::*;

use errors::guard;

/// A pipe or mailslot handle; 0 is never one.
pub type PipeslotHandle = u64;

/// Who is at the other end of a pipe, as the kernel recorded it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipeslotIdentity {
    /// Its process id.
    pub pid: u32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
    /// 1 when it came from another machine through the gateway: the ids are
    /// then the gateway's, not the remote user's (no local identity to take).
    pub remote: u32,
}

/// ERROR_SUCCESS.
pub const ERROR_SUCCESS: u32 = 0;
/// ERROR_FILE_NOT_FOUND: no such pipe or mailslot.
pub const ERROR_FILE_NOT_FOUND: u32 = 2;
/// ERROR_ACCESS_DENIED.
pub const ERROR_ACCESS_DENIED: u32 = 5;
/// ERROR_INVALID_HANDLE.
pub const ERROR_INVALID_HANDLE: u32 = 6;
/// ERROR_GEN_FAILURE.
pub const ERROR_GEN_FAILURE: u32 = 31;
/// ERROR_INVALID_PARAMETER.
pub const ERROR_INVALID_PARAMETER: u32 = 87;
/// ERROR_BROKEN_PIPE: the other end has closed.
pub const ERROR_BROKEN_PIPE: u32 = 109;
/// ERROR_SEM_TIMEOUT: a timeout ran out.
pub const ERROR_SEM_TIMEOUT: u32 = 121;
/// ERROR_INSUFFICIENT_BUFFER.
pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
/// ERROR_INVALID_NAME.
pub const ERROR_INVALID_NAME: u32 = 123;
/// ERROR_ALREADY_EXISTS.
pub const ERROR_ALREADY_EXISTS: u32 = 183;
/// ERROR_PIPE_BUSY: every instance is taken.
pub const ERROR_PIPE_BUSY: u32 = 231;
/// ERROR_NO_DATA: the pipe is being closed, or (PIPE_NOWAIT) nothing to read.
pub const ERROR_NO_DATA: u32 = 232;
/// ERROR_PIPE_NOT_CONNECTED.
pub const ERROR_PIPE_NOT_CONNECTED: u32 = 233;
/// ERROR_MORE_DATA: the message goes on past the buffer.
pub const ERROR_MORE_DATA: u32 = 234;
/// ERROR_PIPE_CONNECTED: a client had connected already.
pub const ERROR_PIPE_CONNECTED: u32 = 535;
/// ERROR_PIPE_LISTENING.
pub const ERROR_PIPE_LISTENING: u32 = 536;

/// The server reads (client to server).
pub const PIPE_ACCESS_INBOUND: u32 = 0x1;
/// The server writes (server to client).
pub const PIPE_ACCESS_OUTBOUND: u32 = 0x2;
/// Both ways.
pub const PIPE_ACCESS_DUPLEX: u32 = 0x3;
/// Fail with ERROR_ACCESS_DENIED when the name exists already.
pub const FILE_FLAG_FIRST_PIPE_INSTANCE: u32 = 0x0008_0000;
/// A byte stream.
pub const PIPE_TYPE_BYTE: u32 = 0x0;
/// Messages.
pub const PIPE_TYPE_MESSAGE: u32 = 0x4;
/// Reads take bytes.
pub const PIPE_READMODE_BYTE: u32 = 0x0;
/// Reads take from one message.
pub const PIPE_READMODE_MESSAGE: u32 = 0x2;
/// Calls block.
pub const PIPE_WAIT: u32 = 0x0;
/// Calls return at once.
pub const PIPE_NOWAIT: u32 = 0x1;
/// Clients from other hosts (through the gateway) may connect.
pub const PIPE_ACCEPT_REMOTE_CLIENTS: u32 = 0x0;
/// Only local clients.
pub const PIPE_REJECT_REMOTE_CLIENTS: u32 = 0x8;
/// As many instances as resources allow.
pub const PIPE_UNLIMITED_INSTANCES: u32 = 255;
/// GetNamedPipeInfo: a client handle.
pub const PIPE_CLIENT_END: u32 = 0x0;
/// GetNamedPipeInfo: a server handle.
pub const PIPE_SERVER_END: u32 = 0x1;
/// WaitNamedPipe: the server's default timeout.
pub const NMPWAIT_USE_DEFAULT_WAIT: u32 = 0x0;
/// WaitNamedPipe: 1 ms.
pub const NMPWAIT_NOWAIT: u32 = 0x1;
/// WaitNamedPipe: for ever.
pub const NMPWAIT_WAIT_FOREVER: u32 = 0xffff_ffff;
/// No timeout.
pub const INFINITE: u32 = 0xffff_ffff;
/// CreateFile: read access.
pub const GENERIC_READ: u32 = 0x8000_0000;
/// CreateFile: write access.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// A mailslot read waits for ever.
pub const MAILSLOT_WAIT_FOREVER: u32 = 0xffff_ffff;
/// GetMailslotInfo: no message waits.
pub const MAILSLOT_NO_MESSAGE: u32 = 0xffff_ffff;
/// pipeslot_create_named_pipe: every local user may open it (the default:
/// its owner only, and root).
pub const PIPESLOT_ALLOW_EVERYONE: u32 = 0x1;
/// pipeslot_create_mailslot: take messages from other hosts too.
pub const PIPESLOT_MAILSLOT_NETWORK: u32 = 0x1;

/// CloseHandle: a server instance ends its client's connection, a client
/// closes, a mailslot stops reading. `ERROR_INVALID_HANDLE` when `handle`
/// is not open.
#[no_mangle]
pub extern "C" fn pipeslot_close_handle(handle: PipeslotHandle) -> u32 {
    guard(|| handles::remove(handle).map(drop))
}

/// The calling thread's last error text (as FormatMessage would give it,
/// with its code's name): copied into `buf` cut to `len - 1` bytes and
/// NUL-terminated. Returns the size it needs, its NUL counted.
///
/// # Safety
/// `buf` points to `len` writable bytes (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn pipeslot_last_error_message(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: the caller's contract; a NULL with a length asks only.
    match unsafe { abi::bytes_mut(buf.cast::<u8>(), len, "buf") } {
        Ok(out) => errors::last_message(out),
        Err(_) => errors::last_message(&mut []),
    }
}

/// The name of a Win32 error code (`"ERROR_PIPE_BUSY"`), or NULL when it
/// is not one pipeslot gives. The string is static.
#[no_mangle]
pub extern "C" fn pipeslot_error_name(code: u32) -> *const c_char {
    names::of(code)
}

/// The library's version, a static string.
#[no_mangle]
pub extern "C" fn pipeslot_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

mod names {
    use std::collections::HashMap;
    use std::ffi::{c_char, CString};
    use std::sync::LazyLock;

    static NAMES: LazyLock<HashMap<u32, CString>> = LazyLock::new(|| {
        (0..16_000u32)
            .filter_map(|n| {
                let name = pipeslot::Win32Error(n).name()?;
                Some((n, CString::new(name).ok()?))
            })
            .collect()
    });

    pub(super) fn of(code: u32) -> *const c_char {
        NAMES.get(&code).map_or(std::ptr::null(), |c| c.as_ptr())
    }
}

/// Open handles, for the tests' leak checks.
#[doc(hidden)]
pub fn open_handles() -> usize {
    handles::count()
}
