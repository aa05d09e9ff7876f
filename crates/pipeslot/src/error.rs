//! The one error type: a Win32 code and a sentence saying what failed, for
//! which name. Public functions return `std::io::Result` (tokio's shape); the
//! `pipeslot::Error` rides inside the `io::Error`, and `io::Error::kind()`
//! comes from the Win32 code's row in the table in `pipeslot_proto::status`.
//!
//! Win32 codes never go into `raw_os_error()`: on Linux that field holds an
//! errno, and mixing the two would make `ERROR_PIPE_BUSY (231)` print as some
//! unrelated errno. Use [`Error::win32`] instead.

use std::fmt;
use std::io;

pub use pipeslot_proto::Win32Error;

/// A pipeslot failure: the Win32 error it corresponds to and what happened.
///
/// `Display` prints `ERROR_PIPE_BUSY (231): all instances of \\.\pipe\x are busy`,
/// the exact line the `pipeslot` command writes after `pipeslot: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Win32Error,
    detail: String,
}

impl Error {
    /// A new error with its code and a sentence saying what failed.
    pub fn new(code: Win32Error, detail: impl Into<String>) -> Error {
        Error {
            code,
            detail: detail.into(),
        }
    }

    /// The Win32 error code.
    pub fn code(&self) -> Win32Error {
        self.code
    }

    /// What happened, for which name.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The Win32 code carried by an `io::Error`, if it came from pipeslot.
    /// Errors from the operating system are mapped from their errno
    /// (`EPIPE` → `ERROR_NO_DATA`, `ENOENT` → `ERROR_FILE_NOT_FOUND`, …).
    ///
    /// ```
    /// use pipeslot::{Error, Win32Error};
    /// let e: std::io::Error = Error::new(Win32Error::ERROR_PIPE_BUSY, "busy").into();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_PIPE_BUSY));
    /// assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
    /// ```
    pub fn win32(err: &io::Error) -> Option<Win32Error> {
        if let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Some(e.code);
        }
        err.raw_os_error().map(win32_from_errno)
    }

    /// Wraps an operating-system error with a Win32 code chosen from its errno
    /// and a sentence of context.
    pub(crate) fn from_io(err: &io::Error, context: impl fmt::Display) -> Error {
        if let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return e.clone();
        }
        let code = err
            .raw_os_error()
            .map(win32_from_errno)
            .unwrap_or(Win32Error::ERROR_GEN_FAILURE);
        Error::new(code, format!("{context}: {err}"))
    }
}

/// The Win32 error closest to an errno.
fn win32_from_errno(errno: i32) -> Win32Error {
    match errno {
        libc::ENOENT => Win32Error::ERROR_FILE_NOT_FOUND,
        libc::EACCES | libc::EPERM => Win32Error::ERROR_ACCESS_DENIED,
        libc::EPIPE => Win32Error::ERROR_NO_DATA,
        libc::ECONNRESET => Win32Error::ERROR_BROKEN_PIPE,
        libc::ENOTCONN => Win32Error::ERROR_PIPE_NOT_CONNECTED,
        libc::ECONNREFUSED => Win32Error::ERROR_FILE_NOT_FOUND,
        libc::ETIMEDOUT => Win32Error::ERROR_SEM_TIMEOUT,
        libc::ENOMEM | libc::ENOBUFS => Win32Error::ERROR_NOT_ENOUGH_MEMORY,
        libc::EMFILE | libc::ENFILE => Win32Error::ERROR_TOO_MANY_OPEN_FILES,
        libc::ENOSPC | libc::EDQUOT => Win32Error::ERROR_DISK_FULL,
        libc::EINVAL => Win32Error::ERROR_INVALID_PARAMETER,
        libc::EEXIST => Win32Error::ERROR_ALREADY_EXISTS,
        libc::ENAMETOOLONG => Win32Error::ERROR_INVALID_NAME,
        libc::EAGAIN => Win32Error::ERROR_NO_DATA,
        libc::EINTR => Win32Error::ERROR_OPERATION_ABORTED,
        libc::EOPNOTSUPP => Win32Error::ERROR_NOT_SUPPORTED,
        _ => Win32Error::ERROR_GEN_FAILURE,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.code.io_kind(), e)
    }
}

impl From<pipeslot_proto::NameError> for Error {
    fn from(e: pipeslot_proto::NameError) -> Error {
        Error::new(e.code(), e.to_string())
    }
}

/// Parses a pipe name into an `io::Result` (`ERROR_INVALID_NAME`).
pub(crate) fn pipe_name(name: &str) -> io::Result<pipeslot_proto::PipeName> {
    pipeslot_proto::PipeName::parse(name).map_err(|e| Error::from(e).into())
}

/// A bare "try again" from a non-blocking socket (not a pipeslot error that
/// happens to have the `WouldBlock` kind, such as a nowait `ERROR_NO_DATA`).
pub(crate) fn is_retry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock && e.get_ref().and_then(|i| i.downcast_ref::<Error>()).is_none()
}

/// Builds an `io::Error` carrying a pipeslot [`Error`].
/// The sentence of a pipeslot error (the whole text of any other).
pub(crate) fn detail_of(e: &io::Error) -> String {
    match e.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(p) => p.detail().to_owned(),
        None => e.to_string(),
    }
}

pub(crate) fn err(code: Win32Error, detail: impl Into<String>) -> io::Error {
    Error::new(code, detail).into()
}

/// Like [`err`] but with an explicit `ErrorKind`, for the few places where
/// context decides it (a non-blocking read with nothing to read is
/// `WouldBlock` whatever its Win32 code).
pub(crate) fn err_kind(kind: io::ErrorKind, code: Win32Error, detail: impl Into<String>) -> io::Error {
    io::Error::new(kind, Error::new(code, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_kind_come_from_the_code() {
        let e: io::Error = err(Win32Error::ERROR_FILE_NOT_FOUND, r"no pipe \\.\pipe\x");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), r"ERROR_FILE_NOT_FOUND (2): no pipe \\.\pipe\x");
        assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
        assert_eq!(e.raw_os_error(), None);
    }

    #[test]
    fn errnos_map_to_win32() {
        let e = io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_NO_DATA));
        assert_eq!(Error::from_io(&e, "writing").code(), Win32Error::ERROR_NO_DATA);
        let e = io::Error::other("plain");
        assert_eq!(Error::win32(&e), None);
    }
}
