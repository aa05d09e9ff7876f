//! Mailslots: CreateMailslot, GetMailslotInfo, SetMailslotInfo. Reading
//! and writing are `pipeslot_read_file` / `pipeslot_write_file`, and a
//! writer is opened with `pipeslot_create_file`, as on Windows.

use std::ffi::c_char;

use pipeslot::blocking::MailslotOptions;
use pipeslot::mailslot::ReadTimeout;
use pipeslot::Win32Error;

use crate::abi;
use crate::errors::{guard, Fail};
use crate::handles::{self, Object};
use crate::*;

/// CreateMailslot: the one reader of `name` (`\\.\mailslot\NAME`) on this
/// machine. `max_message_size`: 0 for any size; `read_timeout_ms`:
/// `MAILSLOT_WAIT_FOREVER`, or milliseconds (0: a read returns at once).
/// `flags`: `PIPESLOT_MAILSLOT_NETWORK` also takes messages from other
/// hosts (UDP 138, the Mailslot Protocol). `ERROR_ALREADY_EXISTS (183)`
/// when another reader has it.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to a writable handle.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_create_mailslot(
    name: *const c_char,
    max_message_size: u32,
    read_timeout_ms: u32,
    flags: u32,
    out: *mut PipeslotHandle,
) -> u32 {
    guard(|| {
        // SAFETY: the caller's contract.
        let name = unsafe { abi::name(name, "name") }?;
        let slot = MailslotOptions::new()
            .max_message_size(max_message_size)
            .read_timeout(ReadTimeout::from_millis(read_timeout_ms))
            .network(flags & PIPESLOT_MAILSLOT_NETWORK != 0)
            .create(name)?;
        // SAFETY: the caller's contract.
        unsafe { abi::put(out, handles::insert(Object::Mailslot(slot)), "out") }
    })
}

fn with_slot<T>(
    h: PipeslotHandle,
    f: impl FnOnce(&pipeslot::blocking::MailslotServer) -> Result<T, Fail>,
) -> Result<T, Fail> {
    match &*handles::get(h)? {
        Object::Mailslot(m) => f(m),
        _ => Err(Fail::new(
            Win32Error::ERROR_INVALID_HANDLE,
            format!("{h:#x} is not a mailslot server handle"),
        )),
    }
}

/// GetMailslotInfo: the maximum message size, the next message's size
/// (`MAILSLOT_NO_MESSAGE` when none waits), the messages waiting and the
/// read timeout. Each out-pointer may be NULL.
///
/// # Safety
/// The out-pointers are NULL or point to writable `uint32_t`s.
#[no_mangle]
pub unsafe extern "C" fn pipeslot_get_mailslot_info(
    mailslot: PipeslotHandle,
    max_message_size: *mut u32,
    next_size: *mut u32,
    message_count: *mut u32,
    read_timeout_ms: *mut u32,
) -> u32 {
    guard(|| {
        let info = with_slot(mailslot, |m| Ok(m.info()?))?;
        // SAFETY: the caller's contract.
        unsafe {
            abi::put_opt(max_message_size, info.max_message_size);
            abi::put_opt(next_size, info.next_size_win32());
            abi::put_opt(message_count, info.message_count);
            abi::put_opt(read_timeout_ms, info.read_timeout.as_millis());
        }
        Ok(())
    })
}

/// SetMailslotInfo: the read timeout (`MAILSLOT_WAIT_FOREVER`, or ms).
#[no_mangle]
pub extern "C" fn pipeslot_set_mailslot_info(mailslot: PipeslotHandle, read_timeout_ms: u32) -> u32 {
    guard(|| {
        with_slot(mailslot, |m| {
            Ok(m.set_read_timeout(ReadTimeout::from_millis(read_timeout_ms))?)
        })
    })
}
