//! The only place raw pointers from C become Rust references. Each helper
//! checks what can be checked (null, length, UTF-8) and documents what it
//! must take on trust: that a non-null pointer points to as many bytes as
//! the caller says, valid for the call, and not written by another thread
//! meanwhile. Everything above this module is safe Rust.

use std::ffi::{c_char, CStr};

use crate::errors::Fail;
use pipeslot::Win32Error;

/// A NUL-terminated UTF-8 string argument (a pipe or mailslot name).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn name<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::new(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{what} is NULL"),
        ));
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Fail::new(Win32Error::ERROR_INVALID_NAME, format!("{what} is not UTF-8")))
}

fn check_len(len: usize, what: &str) -> Result<(), Fail> {
    if len > isize::MAX as usize {
        return Err(Fail::new(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{what}: a length of {len} bytes"),
        ));
    }
    Ok(())
}

/// An input buffer: `len` bytes at `p` (`p` may be null when `len` is 0).
///
/// # Safety
/// When `len > 0`, `p` points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Fail> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::new(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{what} is NULL with a length of {len}"),
        ));
    }
    // SAFETY: non-null, `len` fits an isize, and the caller vouches for
    // `len` readable bytes that no one writes during the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An output buffer: room for `len` bytes at `p` (`p` may be null when
/// `len` is 0).
///
/// # Safety
/// When `len > 0`, `p` points to `len` writable bytes valid for the call,
/// which nothing else reads or writes meanwhile.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut u8, len: usize, what: &str) -> Result<&'a mut [u8], Fail> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Fail::new(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{what} is NULL with a length of {len}"),
        ));
    }
    // SAFETY: as `bytes`, and the bytes are the caller's to give us
    // exclusively for the call (they may be uninitialised: we only write).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// Stores `v` through an out-pointer that must not be null.
///
/// # Safety
/// `p` is null or points to a writable, aligned `T`.
pub(crate) unsafe fn put<T>(p: *mut T, v: T, what: &str) -> Result<(), Fail> {
    if p.is_null() {
        return Err(Fail::new(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{what} is NULL"),
        ));
    }
    // SAFETY: non-null, aligned and writable by the caller's contract;
    // `write` does not read (or drop) what was there.
    unsafe { p.write(v) };
    Ok(())
}

/// Stores `v` through an out-pointer that may be null (then nothing).
///
/// # Safety
/// As [`put`].
pub(crate) unsafe fn put_opt<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: as `put`.
        unsafe { p.write(v) };
    }
}

// Plain Rust over real pointers: these also run under Miri, which checks
// the helpers' unsafe blocks for undefined behaviour.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_null_empty_too_long_and_real() {
        // SAFETY: (all calls below) each pointer is null or a live buffer of
        // at least the length given, as the helpers require.
        unsafe {
            assert!(bytes(std::ptr::null(), 0, "b").unwrap().is_empty());
            assert_eq!(bytes(std::ptr::null(), 1, "b").unwrap_err().code, 87);
            let data = [1u8, 2, 3];
            assert_eq!(bytes(data.as_ptr(), 3, "b").unwrap(), &data);
            assert_eq!(bytes(data.as_ptr(), usize::MAX, "b").unwrap_err().code, 87);
            let mut out = [0u8; 4];
            bytes_mut(out.as_mut_ptr(), 4, "o").unwrap().copy_from_slice(b"abcd");
            assert_eq!(&out, b"abcd");
            assert_eq!(bytes_mut(std::ptr::null_mut(), 2, "o").unwrap_err().code, 87);
            assert!(bytes_mut(std::ptr::null_mut(), 0, "o").unwrap().is_empty());
        }
    }

    #[test]
    fn names_and_out_values() {
        // SAFETY: (all calls below) null, or NUL-terminated strings and
        // aligned writable values that outlive the calls.
        unsafe {
            assert_eq!(name(c"\\\\.\\pipe\\x".as_ptr(), "n").unwrap(), r"\\.\pipe\x");
            assert_eq!(name(std::ptr::null(), "n").unwrap_err().code, 87);
            let bad = [0xc3u8, 0x28, 0];
            assert_eq!(name(bad.as_ptr().cast(), "n").unwrap_err().code, 123);
            let mut v = 0u64;
            put(&mut v, 7, "v").unwrap();
            assert_eq!(v, 7);
            assert_eq!(put::<u64>(std::ptr::null_mut(), 7, "v").unwrap_err().code, 87);
            put_opt::<u64>(std::ptr::null_mut(), 9);
            put_opt(&mut v, 9);
            assert_eq!(v, 9);
        }
    }
}
