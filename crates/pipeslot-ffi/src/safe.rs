//! The same C calls behind safe Rust signatures, for Rust code that wants
//! to go through the ABI exactly as C does (the bench's `pipeslot-ffi`
//! case measures its cost this way). Each wrapper passes pointers to
//! buffers it borrows for the call, so the calls' contracts hold.

use std::ffi::CStr;

use crate::*;

/// An error code, or what the call gave.
pub type AbiResult<T> = Result<T, u32>;

fn code(rc: u32) -> AbiResult<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

/// `pipeslot_create_named_pipe`.
#[allow(clippy::too_many_arguments)]
pub fn create_named_pipe(
    name: &CStr,
    open_mode: u32,
    pipe_mode: u32,
    max_instances: u32,
    out_buffer_size: u32,
    in_buffer_size: u32,
    default_timeout_ms: u32,
    flags: u32,
) -> AbiResult<PipeslotHandle> {
    let mut h = 0;
    // SAFETY: a NUL-terminated name and a handle of ours to write.
    code(unsafe {
        pipeslot_create_named_pipe(
            name.as_ptr(),
            open_mode,
            pipe_mode,
            max_instances,
            out_buffer_size,
            in_buffer_size,
            default_timeout_ms,
            flags,
            &mut h,
        )
    })?;
    Ok(h)
}

/// `pipeslot_create_file`.
pub fn create_file(name: &CStr, access: u32, read_mode: u32) -> AbiResult<PipeslotHandle> {
    let mut h = 0;
    // SAFETY: a NUL-terminated name and a handle of ours to write.
    code(unsafe { pipeslot_create_file(name.as_ptr(), access, read_mode, &mut h) })?;
    Ok(h)
}

/// `pipeslot_read_file`: the bytes read, and the code (0, or
/// `ERROR_MORE_DATA` with bytes, or an error with none).
pub fn read_file(h: PipeslotHandle, buf: &mut [u8]) -> (u32, usize) {
    let mut n = 0;
    // SAFETY: `buf` is ours for the call, and so is `n`.
    let rc = unsafe { pipeslot_read_file(h, buf.as_mut_ptr(), buf.len(), &mut n) };
    (rc, n)
}

/// `pipeslot_write_file`.
pub fn write_file(h: PipeslotHandle, data: &[u8]) -> AbiResult<()> {
    // SAFETY: `data` is borrowed for the call; no count is asked for.
    code(unsafe { pipeslot_write_file(h, data.as_ptr(), data.len(), std::ptr::null_mut()) })
}

/// `pipeslot_transact_named_pipe`: as `read_file`.
pub fn transact_named_pipe(h: PipeslotHandle, input: &[u8], output: &mut [u8]) -> (u32, usize) {
    let mut n = 0;
    // SAFETY: both buffers are borrowed for the call, and so is `n`.
    let rc = unsafe {
        pipeslot_transact_named_pipe(
            h,
            input.as_ptr(),
            input.len(),
            output.as_mut_ptr(),
            output.len(),
            &mut n,
        )
    };
    (rc, n)
}
