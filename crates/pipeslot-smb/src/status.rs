//! NTSTATUS ([MS-ERREF] 2.3): the status field of every SMB2 response, its
//! name, and the Win32 error a Windows client reports for it (the mapping
//! `RtlNtStatusToDosError` applies), so remote pipes fail as local ones do.

use std::fmt;

use pipeslot_proto::Win32Error;

/// An NTSTATUS value. Unknown values are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub u32);

macro_rules! nt_statuses {
    ($($name:ident = $value:expr => $win32:ident;)*) => {
        impl NtStatus {
            $(#[doc = concat!("`", stringify!($name), "`")] pub const $name: NtStatus = NtStatus($value);)*

            /// Every status in the table.
            pub const ALL: &'static [NtStatus] = &[$(NtStatus::$name),*];

            /// `STATUS_…` name, when the table has one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(NtStatus::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The Win32 error Windows reports for this status;
            /// `ERROR_GEN_FAILURE` for statuses outside the table.
            pub fn win32(self) -> Win32Error {
                match self {
                    $(NtStatus::$name => Win32Error::$win32,)*
                    _ => Win32Error::ERROR_GEN_FAILURE,
                }
            }
        }
    };
}

nt_statuses! {
    STATUS_SUCCESS = 0x0000_0000 => ERROR_SUCCESS;
    STATUS_INVALID_INFO_CLASS = 0xC000_0003 => ERROR_INVALID_PARAMETER;
    STATUS_INFO_LENGTH_MISMATCH = 0xC000_0004 => ERROR_BAD_LENGTH;
    STATUS_PENDING = 0x0000_0103 => ERROR_IO_PENDING;
    STATUS_BUFFER_OVERFLOW = 0x8000_0005 => ERROR_MORE_DATA;
    STATUS_INVALID_HANDLE = 0xC000_0008 => ERROR_INVALID_HANDLE;
    STATUS_INVALID_PARAMETER = 0xC000_000D => ERROR_INVALID_PARAMETER;
    STATUS_NO_SUCH_FILE = 0xC000_000F => ERROR_FILE_NOT_FOUND;
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010 => ERROR_INVALID_FUNCTION;
    STATUS_END_OF_FILE = 0xC000_0011 => ERROR_HANDLE_EOF;
    STATUS_MORE_PROCESSING_REQUIRED = 0xC000_0016 => ERROR_MORE_DATA;
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023 => ERROR_INSUFFICIENT_BUFFER;
    STATUS_ACCESS_DENIED = 0xC000_0022 => ERROR_ACCESS_DENIED;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A => ERROR_NO_SYSTEM_RESOURCES;
    // Samba's answer when a message cannot go through its pipe proxy in one
    // piece (over 65,535 bytes in message mode: the proxy's u16 length).
    STATUS_PORT_MESSAGE_TOO_LONG = 0xC000_002F => ERROR_PORT_MESSAGE_TOO_LONG;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033 => ERROR_INVALID_NAME;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034 => ERROR_FILE_NOT_FOUND;
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003A => ERROR_PATH_NOT_FOUND;
    STATUS_LOGON_FAILURE = 0xC000_006D => ERROR_LOGON_FAILURE;
    STATUS_PIPE_NOT_AVAILABLE = 0xC000_00AC => ERROR_PIPE_BUSY;
    STATUS_INVALID_PIPE_STATE = 0xC000_00AD => ERROR_BAD_PIPE;
    STATUS_PIPE_BUSY = 0xC000_00AE => ERROR_PIPE_BUSY;
    STATUS_PIPE_DISCONNECTED = 0xC000_00B0 => ERROR_PIPE_NOT_CONNECTED;
    STATUS_PIPE_CLOSING = 0xC000_00B1 => ERROR_NO_DATA;
    STATUS_PIPE_CONNECTED = 0xC000_00B2 => ERROR_PIPE_CONNECTED;
    STATUS_PIPE_LISTENING = 0xC000_00B3 => ERROR_PIPE_LISTENING;
    STATUS_IO_TIMEOUT = 0xC000_00B5 => ERROR_SEM_TIMEOUT;
    STATUS_NOT_SUPPORTED = 0xC000_00BB => ERROR_NOT_SUPPORTED;
    STATUS_NETWORK_NAME_DELETED = 0xC000_00C9 => ERROR_NETNAME_DELETED;
    STATUS_BAD_NETWORK_NAME = 0xC000_00CC => ERROR_BAD_NET_NAME;
    STATUS_REQUEST_NOT_ACCEPTED = 0xC000_00D0 => ERROR_REQ_NOT_ACCEP;
    STATUS_CANCELLED = 0xC000_0120 => ERROR_OPERATION_ABORTED;
    STATUS_FILE_CLOSED = 0xC000_0128 => ERROR_INVALID_HANDLE;
    STATUS_PIPE_BROKEN = 0xC000_014B => ERROR_BROKEN_PIPE;
    // Samba's answer to FSCTL_PIPE_PEEK and FSCTL_PIPE_WAIT: the call is not
    // there, which is what a pipe user needs to hear.
    STATUS_FS_DRIVER_REQUIRED = 0xC000_019C => ERROR_NOT_SUPPORTED;
    STATUS_CONNECTION_REFUSED = 0xC000_0236 => ERROR_CONNECTION_REFUSED;
    STATUS_CONNECTION_DISCONNECTED = 0xC000_020C => ERROR_NETNAME_DELETED;
    STATUS_CONNECTION_RESET = 0xC000_020D => ERROR_NETNAME_DELETED;
    STATUS_USER_SESSION_DELETED = 0xC000_0203 => ERROR_UNEXP_NET_ERR;
    STATUS_UNEXPECTED_NETWORK_ERROR = 0xC000_00C4 => ERROR_UNEXP_NET_ERR;
}

impl NtStatus {
    /// Success, informational (`0x0…`, `0x4…`) or warning (`0x8…`,
    /// e.g. `STATUS_BUFFER_OVERFLOW`: the data came, more follows).
    pub fn is_error(self) -> bool {
        self.0 >> 30 == 3
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "NtStatus({:#010x})", self.0),
        }
    }
}

impl fmt::Display for NtStatus {
    /// `STATUS_PIPE_NOT_AVAILABLE (0xc00000ac)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#010x})", self.0),
            None => write!(f, "NTSTATUS {:#010x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_statuses_map_to_the_win32_errors_windows_reports() {
        for (st, w) in [
            (NtStatus::STATUS_PIPE_NOT_AVAILABLE, Win32Error::ERROR_PIPE_BUSY),
            (NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, Win32Error::ERROR_FILE_NOT_FOUND),
            (NtStatus::STATUS_PIPE_DISCONNECTED, Win32Error::ERROR_PIPE_NOT_CONNECTED),
            (NtStatus::STATUS_PIPE_BROKEN, Win32Error::ERROR_BROKEN_PIPE),
            (NtStatus::STATUS_BUFFER_OVERFLOW, Win32Error::ERROR_MORE_DATA),
            (NtStatus::STATUS_LOGON_FAILURE, Win32Error::ERROR_LOGON_FAILURE),
            (NtStatus::STATUS_IO_TIMEOUT, Win32Error::ERROR_SEM_TIMEOUT),
            (NtStatus(0xC0DE_0001), Win32Error::ERROR_GEN_FAILURE),
        ] {
            assert_eq!(st.win32(), w, "{st}");
        }
        assert_eq!(NtStatus::STATUS_PIPE_BUSY.to_string(), "STATUS_PIPE_BUSY (0xc00000ae)");
        assert_eq!(format!("{:?}", NtStatus(0x1234)), "NtStatus(0x00001234)");
    }

    #[test]
    fn the_table_has_no_duplicates_and_severity_is_read_from_the_top_bits() {
        for (i, a) in NtStatus::ALL.iter().enumerate() {
            assert!(NtStatus::ALL[i + 1..].iter().all(|b| b != a), "{a} twice");
        }
        assert!(!NtStatus::STATUS_SUCCESS.is_error());
        assert!(!NtStatus::STATUS_PENDING.is_error());
        assert!(!NtStatus::STATUS_BUFFER_OVERFLOW.is_error(), "a warning: data came");
        assert!(NtStatus::STATUS_ACCESS_DENIED.is_error());
    }
}
