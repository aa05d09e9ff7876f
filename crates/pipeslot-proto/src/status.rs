//! Win32 error codes: one table gives the constants, their names, their
//! descriptions and the `std::io::ErrorKind` each one maps to.
//!
//! Values are those of MS-ERREF §2.2 (Win32 Error Codes). The names are
//! spelled exactly as in `windows-sys`, so ported code reads the same.

use std::fmt;
use std::io::ErrorKind;

/// A Win32 error code (`GetLastError()` value).
///
/// A newtype, not a closed enum: a code we have no name for still round-trips
/// and prints as its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Win32Error(pub u32);

macro_rules! win32_errors {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $kind:ident, $text:literal; )*) => {
        impl Win32Error {
            $( $(#[$doc])* #[doc = concat!("`", $text, "`")] pub const $name: Win32Error = Win32Error($value); )*

            /// Every code this table knows, in table order.
            pub const ALL: &'static [Win32Error] = &[$(Win32Error::$name),*];

            /// The Win32 name, e.g. `"ERROR_PIPE_BUSY"`, or `None` for a code
            /// this table does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// A short description of what the code means.
            pub fn description(self) -> &'static str {
                match self.0 {
                    $( $value => $text, )*
                    _ => "unknown Win32 error",
                }
            }

            /// The `std::io::ErrorKind` this code maps to.
            pub fn io_kind(self) -> ErrorKind {
                match self.0 {
                    $( $value => ErrorKind::$kind, )*
                    _ => ErrorKind::Other,
                }
            }

            /// Looks a code up by its Win32 name.
            pub fn from_name(name: &str) -> Option<Win32Error> {
                match name {
                    $( stringify!($name) => Some(Win32Error::$name), )*
                    _ => None,
                }
            }
        }
    };
}

win32_errors! {
    ERROR_SUCCESS = 0, Other, "the operation completed successfully";
    ERROR_INVALID_FUNCTION = 1, Unsupported, "incorrect function";
    ERROR_FILE_NOT_FOUND = 2, NotFound, "the system cannot find the file specified";
    ERROR_PATH_NOT_FOUND = 3, NotFound, "the system cannot find the path specified";
    ERROR_TOO_MANY_OPEN_FILES = 4, Other, "the system cannot open the file";
    ERROR_ACCESS_DENIED = 5, PermissionDenied, "access is denied";
    ERROR_INVALID_HANDLE = 6, InvalidInput, "the handle is invalid";
    ERROR_NOT_ENOUGH_MEMORY = 8, OutOfMemory, "not enough memory resources are available";
    ERROR_INVALID_DATA = 13, InvalidData, "the data is invalid";
    ERROR_GEN_FAILURE = 31, Other, "a device attached to the system is not functioning";
    ERROR_BAD_LENGTH = 24, InvalidInput, "the program issued a command but the command length is incorrect";
    ERROR_HANDLE_EOF = 38, UnexpectedEof, "reached the end of the file";
    ERROR_NOT_SUPPORTED = 50, Unsupported, "the request is not supported";
    ERROR_BAD_NETPATH = 53, NotFound, "the network path was not found";
    ERROR_UNEXP_NET_ERR = 59, Other, "an unexpected network error occurred";
    ERROR_NETNAME_DELETED = 64, ConnectionReset, "the specified network name is no longer available";
    ERROR_BAD_NET_NAME = 67, NotFound, "the network name cannot be found";
    ERROR_REQ_NOT_ACCEP = 71, ConnectionRefused, "no more connections can be made to this remote computer at this time";
    ERROR_INVALID_PARAMETER = 87, InvalidInput, "the parameter is incorrect";
    ERROR_BROKEN_PIPE = 109, BrokenPipe, "the pipe has been ended";
    ERROR_DISK_FULL = 112, Other, "there is not enough space on the disk";
    ERROR_SEM_TIMEOUT = 121, TimedOut, "the semaphore timeout period has expired";
    ERROR_INSUFFICIENT_BUFFER = 122, InvalidInput, "the data area passed to a system call is too small";
    ERROR_INVALID_NAME = 123, InvalidInput, "the filename, directory name, or volume label syntax is incorrect";
    ERROR_DIRECTORY = 267, InvalidInput, "the directory name is invalid";
    ERROR_ALREADY_EXISTS = 183, AlreadyExists, "cannot create a file when that file already exists";
    ERROR_BAD_PIPE = 230, InvalidData, "the pipe state is invalid";
    ERROR_PIPE_BUSY = 231, ResourceBusy, "all pipe instances are busy";
    ERROR_NO_DATA = 232, BrokenPipe, "the pipe is being closed";
    ERROR_PIPE_NOT_CONNECTED = 233, NotConnected, "no process is on the other end of the pipe";
    ERROR_MORE_DATA = 234, Other, "more data is available";
    ERROR_PIPE_CONNECTED = 535, Other, "there is a process on other end of the pipe";
    ERROR_PIPE_LISTENING = 536, NotConnected, "waiting for a process to open the other end of the pipe";
    ERROR_PORT_MESSAGE_TOO_LONG = 546, InvalidInput, "the message is longer than the maximum the port allows";
    ERROR_OPERATION_ABORTED = 995, Interrupted, "the I/O operation has been aborted";
    ERROR_IO_PENDING = 997, WouldBlock, "overlapped I/O operation is in progress";
    ERROR_CONNECTION_REFUSED = 1225, ConnectionRefused, "the remote computer refused the network connection";
    ERROR_PRIVILEGE_NOT_HELD = 1314, PermissionDenied, "a required privilege is not held by the client";
    ERROR_LOGON_FAILURE = 1326, PermissionDenied, "the user name or password is incorrect";
    ERROR_NONE_MAPPED = 1332, NotFound, "no mapping between account names and security IDs was done";
    ERROR_NO_SYSTEM_RESOURCES = 1450, OutOfMemory, "insufficient system resources exist to complete the requested service";
    ERROR_TIMEOUT = 1460, TimedOut, "this operation returned because the timeout period expired";
}

impl fmt::Debug for Win32Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Win32Error({})", self.0),
        }
    }
}

impl fmt::Display for Win32Error {
    /// `ERROR_PIPE_BUSY (231)`: the name and number, as the CLI prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "ERROR_{} ({})", self.0, self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_ms_erref() {
        let expected = [
            (Win32Error::ERROR_FILE_NOT_FOUND, 2, "ERROR_FILE_NOT_FOUND"),
            (Win32Error::ERROR_ACCESS_DENIED, 5, "ERROR_ACCESS_DENIED"),
            (Win32Error::ERROR_BROKEN_PIPE, 109, "ERROR_BROKEN_PIPE"),
            (Win32Error::ERROR_SEM_TIMEOUT, 121, "ERROR_SEM_TIMEOUT"),
            (Win32Error::ERROR_INSUFFICIENT_BUFFER, 122, "ERROR_INSUFFICIENT_BUFFER"),
            (Win32Error::ERROR_INVALID_NAME, 123, "ERROR_INVALID_NAME"),
            (Win32Error::ERROR_ALREADY_EXISTS, 183, "ERROR_ALREADY_EXISTS"),
            (Win32Error::ERROR_PIPE_BUSY, 231, "ERROR_PIPE_BUSY"),
            (Win32Error::ERROR_NO_DATA, 232, "ERROR_NO_DATA"),
            (Win32Error::ERROR_PIPE_NOT_CONNECTED, 233, "ERROR_PIPE_NOT_CONNECTED"),
            (Win32Error::ERROR_MORE_DATA, 234, "ERROR_MORE_DATA"),
            (Win32Error::ERROR_PIPE_CONNECTED, 535, "ERROR_PIPE_CONNECTED"),
            (Win32Error::ERROR_PIPE_LISTENING, 536, "ERROR_PIPE_LISTENING"),
            (
                Win32Error::ERROR_PORT_MESSAGE_TOO_LONG,
                546,
                "ERROR_PORT_MESSAGE_TOO_LONG",
            ),
            (Win32Error::ERROR_BAD_NETPATH, 53, "ERROR_BAD_NETPATH"),
            (Win32Error::ERROR_DISK_FULL, 112, "ERROR_DISK_FULL"),
            (Win32Error::ERROR_PRIVILEGE_NOT_HELD, 1314, "ERROR_PRIVILEGE_NOT_HELD"),
        ];
        for (code, number, name) in expected {
            assert_eq!(code.0, number);
            assert_eq!(code.name(), Some(name));
            assert_eq!(Win32Error::from_name(name), Some(code));
        }
    }

    #[test]
    fn display_is_the_cli_spelling() {
        assert_eq!(Win32Error::ERROR_PIPE_BUSY.to_string(), "ERROR_PIPE_BUSY (231)");
        assert_eq!(format!("{:?}", Win32Error::ERROR_NO_DATA), "ERROR_NO_DATA");
        assert_eq!(Win32Error(4242).to_string(), "ERROR_4242 (4242)");
        assert_eq!(Win32Error(4242).name(), None);
    }

    #[test]
    fn every_code_is_unique_and_maps_to_a_kind() {
        let mut seen = std::collections::HashSet::new();
        for code in Win32Error::ALL {
            assert!(seen.insert(code.0), "duplicate value {}", code.0);
            assert!(code.name().is_some());
        }
        assert_eq!(Win32Error::ERROR_FILE_NOT_FOUND.io_kind(), ErrorKind::NotFound);
        assert_eq!(Win32Error::ERROR_ACCESS_DENIED.io_kind(), ErrorKind::PermissionDenied);
        assert_eq!(Win32Error::ERROR_BROKEN_PIPE.io_kind(), ErrorKind::BrokenPipe);
        assert_eq!(Win32Error::ERROR_SEM_TIMEOUT.io_kind(), ErrorKind::TimedOut);
        assert_eq!(Win32Error::ERROR_PIPE_BUSY.io_kind(), ErrorKind::ResourceBusy);
    }
}
