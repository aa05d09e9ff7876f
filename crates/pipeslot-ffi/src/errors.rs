//! Win32 error codes out, the last error's text per thread (as
//! GetLastError and FormatMessage), and no panic across the boundary.

use std::cell::RefCell;
use std::ffi::CString;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pipeslot::{Error, Win32Error};

/// A failed call: its Win32 code and what to tell the caller.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: u32,
    pub(crate) text: String,
}

impl Fail {
    pub(crate) fn new(code: Win32Error, detail: impl std::fmt::Display) -> Fail {
        Fail {
            code: code.0,
            text: Error::new(code, detail.to_string()).to_string(),
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        match Error::win32(&e) {
            Some(code) => Fail {
                code: code.0,
                text: e.to_string(),
            },
            None => Fail::new(Win32Error::ERROR_GEN_FAILURE, e),
        }
    }
}

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last(text: &str) {
    let c = CString::new(text.replace('\0', " ")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = c);
}

/// Runs one call: 0 on success, else its Win32 code with the text kept
/// for `pipeslot_last_error_message`. A panic (a bug) becomes
/// `ERROR_GEN_FAILURE (31)` instead of unwinding into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Fail>) -> u32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(fail)) => {
            set_last(&fail.text);
            fail.code
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            set_last(
                &Fail::new(
                    Win32Error::ERROR_GEN_FAILURE,
                    format!("internal error in pipeslot: {why}"),
                )
                .text,
            );
            Win32Error::ERROR_GEN_FAILURE.0
        }
    }
}

/// Copies the calling thread's last error text into `out` (truncated,
/// NUL-terminated, when `len > 0`); returns the length it needs with its NUL.
pub(crate) fn last_message(out: &mut [u8]) -> usize {
    LAST.with(|l| {
        let l = l.borrow();
        let text = l.as_bytes();
        if let Some(room) = out.len().checked_sub(1) {
            let n = text.len().min(room);
            out[..n].copy_from_slice(&text[..n]);
            out[n] = 0;
        }
        text.len() + 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_error_gen_failure_with_its_text() {
        let code = guard(|| panic!("on purpose"));
        assert_eq!(code, 31);
        let mut buf = [0u8; 128];
        let n = last_message(&mut buf);
        let text = std::str::from_utf8(&buf[..n - 1]).unwrap();
        assert!(
            text.starts_with("ERROR_GEN_FAILURE (31)") && text.contains("on purpose"),
            "{text}"
        );
    }

    #[test]
    fn the_text_is_truncated_to_the_buffer_and_the_need_is_told() {
        guard(|| Err(Fail::new(Win32Error::ERROR_PIPE_BUSY, "all instances are busy")));
        let mut small = [0xffu8; 6];
        let need = last_message(&mut small);
        assert_eq!(&small, b"ERROR\0");
        let mut big = vec![0u8; need];
        assert_eq!(last_message(&mut big), need);
        assert_eq!(&big[..need - 1], b"ERROR_PIPE_BUSY (231): all instances are busy");
        assert_eq!(last_message(&mut []), need, "a zero-length buffer only asks");
    }
}
