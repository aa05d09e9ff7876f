//! Mailslots: one-way messages, many writers, one reader per name, on this
//! machine or across the network.
//!
//! | Win32                                 | pipeslot                                               |
//! |---------------------------------------|--------------------------------------------------------|
//! | `CreateMailslot(name, max, timeout)`  | [`MailslotOptions::new`]`().max_message_size(max).read_timeout(t).create(name)` |
//! | `ReadFile` on the mailslot            | [`MailslotServer::read`] (or [`read_message`](MailslotServer::read_message)) |
//! | `GetMailslotInfo`                     | [`MailslotServer::info`] → [`MailslotInfo`]            |
//! | `SetMailslotInfo`                     | [`MailslotServer::set_read_timeout`]                   |
//! | `CreateFile` + `WriteFile`            | [`MailslotWriter::open`]`(name)?.write(msg)`           |
//!
//! The types named here are the blocking ones ([`blocking`], also
//! re-exported by [`crate::blocking`]); [`tokio`] has the same names with
//! `async` reads and writes (also in [`crate::tokio`]).
//!
//! ```
//! # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-ms-{}", std::process::id())));
//! use std::time::Duration;
//! use pipeslot::blocking::{MailslotOptions, MailslotWriter};
//! use pipeslot::{Error, Win32Error};
//!
//! let slot = MailslotOptions::new()
//!     .max_message_size(424)
//!     .read_timeout(Duration::ZERO)
//!     .create(r"\\.\mailslot\doc\tour")?;
//! let writer = MailslotWriter::open(r"\\.\MAILSLOT\DOC\TOUR")?; // names fold
//! writer.write(b"first")?;
//! writer.write(b"")?; // zero-length messages exist
//!
//! let info = slot.info()?;
//! assert_eq!((info.message_count, info.next_message_size), (2, Some(5)));
//!
//! let mut buf = [0u8; 424];
//! assert_eq!(slot.read(&mut buf)?, 5);
//! assert_eq!(&buf[..5], b"first");
//! assert_eq!(slot.read(&mut buf)?, 0);
//! // Read timeout 0: an empty mailslot answers at once.
//! let e = slot.read(&mut buf).unwrap_err();
//! assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_SEM_TIMEOUT));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How it works (see `local` and `net` in the source): the reader binds a
//! Unix datagram socket in its folder `$PIPESLOT_DIR/m-<key>/` (its user's
//! alone), holds a lock file
//! for its whole life (one reader per name, across processes; the kernel
//! releases it when the reader dies), and a pump thread moves arriving
//! datagrams into its queue, so writers return at once and info is exact.
//! Remote writers send Mailslot Protocol datagrams to UDP port 138; the
//! host's [`DatagramReceiver`] hands them to local mailslots created with
//! [`network(true)`](MailslotOptions::network).

pub mod blocking;
pub(crate) mod local;
pub(crate) mod net;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::ffi::OsStr;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use pipeslot_proto::MailslotName;

pub use blocking::{MailslotServer, MailslotWriter};
pub use local::{MAX_LOCAL_MESSAGE, QUOTA_BYTES, QUOTA_MESSAGES};
pub use net::{
    embedded_receiver, DatagramReceiver, DropCause, NetConfig, ReceiverCounters, ReceiverHandle, ReceiverStatus,
    Verdict, BIND_ENV, BROADCAST_ENV, DEFAULT_WORKGROUP, PORT_ENV, WORKGROUP_ENV,
};
pub use pipeslot_proto::wire::smb1::WriteShape;

use crate::error::{err, Win32Error};
use crate::pipe::Blocking;

/// `MAILSLOT_NO_MESSAGE`: GetMailslotInfo's next size when no message waits.
pub const MAILSLOT_NO_MESSAGE: u32 = u32::MAX;
/// `MAILSLOT_WAIT_FOREVER`: the read timeout that never expires.
pub const MAILSLOT_WAIT_FOREVER: u32 = u32::MAX;

/// How long a read waits for a message (CreateMailslot's `lReadTimeout`).
/// A read that finds nothing in time fails with `ERROR_SEM_TIMEOUT (121)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadTimeout {
    /// This long; zero returns at once.
    After(Duration),
    /// `MAILSLOT_WAIT_FOREVER`.
    Forever,
}

impl ReadTimeout {
    /// Zero: a read returns at once.
    pub const IMMEDIATE: ReadTimeout = ReadTimeout::After(Duration::ZERO);

    /// The Win32 value: milliseconds, [`MAILSLOT_WAIT_FOREVER`] for ever.
    pub fn from_millis(ms: u32) -> ReadTimeout {
        if ms == MAILSLOT_WAIT_FOREVER {
            ReadTimeout::Forever
        } else {
            ReadTimeout::After(Duration::from_millis(u64::from(ms)))
        }
    }

    /// The Win32 value (long durations saturate just below "forever").
    pub fn as_millis(self) -> u32 {
        match self {
            ReadTimeout::Forever => MAILSLOT_WAIT_FOREVER,
            ReadTimeout::After(d) => u32::try_from(d.as_millis()).unwrap_or(u32::MAX - 1).min(u32::MAX - 1),
        }
    }
}

impl From<Duration> for ReadTimeout {
    fn from(d: Duration) -> ReadTimeout {
        ReadTimeout::After(d)
    }
}

/// GetMailslotInfo: exact at the moment of the call (messages written
/// before it are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailslotInfo {
    /// The maximum message size given at creation (0: any size).
    pub max_message_size: u32,
    /// The size of the next message, `None` when none waits
    /// (Win32: `MAILSLOT_NO_MESSAGE`).
    pub next_message_size: Option<u32>,
    /// Messages waiting.
    pub message_count: u32,
    /// The current read timeout.
    pub read_timeout: ReadTimeout,
}

impl MailslotInfo {
    /// The next size as GetMailslotInfo gives it: [`MAILSLOT_NO_MESSAGE`]
    /// when none waits.
    pub fn next_size_win32(&self) -> u32 {
        self.next_message_size.unwrap_or(MAILSLOT_NO_MESSAGE)
    }
}

/// A listing entry: one live mailslot on this machine (for `pipeslot list`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailslotListing {
    /// The full name in the reader's spelling.
    pub name: String,
    /// Its maximum message size (0: any).
    pub max_message_size: u32,
    /// Messages waiting.
    pub message_count: u32,
    /// Whether it takes messages from the network.
    pub network: bool,
    /// The reading process.
    pub reader_pid: u32,
    /// The reader's user: the name's owner while it reads.
    pub owner: u32,
    /// The owner's user name, when the user database has one.
    pub owner_name: Option<String>,
}

/// The options of CreateMailslot. Start from [`MailslotOptions::new`], set
/// what differs, then `create`. The front end is a type parameter, as for
/// pipes: `pipeslot::blocking::MailslotOptions` and
/// `pipeslot::tokio::MailslotOptions` are this builder with a different
/// `create`.
///
/// Defaults: any message size, reads wait for ever, local messages only.
#[derive(Debug, Clone)]
pub struct MailslotOptions<F = Blocking> {
    max_message_size: u32,
    read_timeout: ReadTimeout,
    network: bool,
    _front: PhantomData<fn() -> F>,
}

impl<F> Default for MailslotOptions<F> {
    fn default() -> Self {
        MailslotOptions::new()
    }
}

impl<F> MailslotOptions<F> {
    /// Default options (see the type's docs).
    pub fn new() -> MailslotOptions<F> {
        MailslotOptions {
            max_message_size: 0,
            read_timeout: ReadTimeout::Forever,
            network: false,
            _front: PhantomData,
        }
    }

    /// nMaxMessageSize: the largest message writers may write, in bytes; 0
    /// for any size (up to [`MAX_LOCAL_MESSAGE`] locally; a remote write
    /// is at most 432 bytes anyway). Larger local writes fail with
    /// `ERROR_INVALID_PARAMETER (87)`; larger remote ones are dropped.
    /// [CreateMailslot](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createmailslotw)
    pub fn max_message_size(&mut self, bytes: u32) -> &mut Self {
        self.max_message_size = bytes;
        self
    }

    /// lReadTimeout: how long a read waits; a `Duration` (zero: not at all)
    /// or [`ReadTimeout::Forever`]. Change it later with `set_read_timeout`.
    pub fn read_timeout(&mut self, timeout: impl Into<ReadTimeout>) -> &mut Self {
        self.read_timeout = timeout.into();
        self
    }

    /// Also take messages written from other hosts (`\\HOST\mailslot\…`,
    /// `\\DOMAIN\…`, `\\*\…`), delivered by the host's
    /// [`DatagramReceiver`]. When no receiver runs on this host, this
    /// process starts one (UDP port 138 or `PIPESLOT_MAILSLOT_PORT` on
    /// `PIPESLOT_BIND`; binding 138 needs root or CAP_NET_BIND_SERVICE).
    /// Default: false, local writers only.
    pub fn network(&mut self, on: bool) -> &mut Self {
        self.network = on;
        self
    }

    /// CreateMailslot, front-end independent.
    fn create_slot(&self, addr: &OsStr) -> io::Result<local::Slot> {
        let name = parse_name(addr)?;
        if !matches!(name.host(), pipeslot_proto::Host::Local) {
            return Err(err(
                Win32Error::ERROR_INVALID_NAME,
                format!(r"{name}: a mailslot can only be created on this machine (\\.\mailslot\NAME)"),
            ));
        }
        local::Slot::create(&name, self.max_message_size, self.read_timeout, self.network)
    }
}

pub(crate) fn parse_name(addr: &OsStr) -> io::Result<MailslotName> {
    let s = addr
        .to_str()
        .ok_or_else(|| err(Win32Error::ERROR_INVALID_NAME, format!("{addr:?} is not valid Unicode")))?;
    MailslotName::parse(s).map_err(|e| crate::error::Error::from(e).into())
}

/// GetMailslotInfo for a mailslot another process (or this one) reads:
/// asks its reader. Exact, as [`MailslotServer::info`].
///
/// # Errors
/// `ERROR_FILE_NOT_FOUND (2)` when nobody reads the name;
/// `ERROR_NOT_SUPPORTED (50)` for a remote name (only a reader knows).
///
/// ```
/// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-msinfo-{}", std::process::id())));
/// use pipeslot::blocking::{MailslotOptions, MailslotWriter};
/// use pipeslot::mailslot::mailslot_info;
/// let _slot = MailslotOptions::new().max_message_size(64).create(r"\\.\mailslot\doc\asked")?;
/// MailslotWriter::open(r"\\.\mailslot\doc\asked")?.write(b"abc")?;
/// let info = mailslot_info(r"\\.\mailslot\doc\asked")?;
/// assert_eq!((info.max_message_size, info.message_count, info.next_message_size), (64, 1, Some(3)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn mailslot_info(name: impl AsRef<OsStr>) -> io::Result<MailslotInfo> {
    let name = parse_name(name.as_ref())?;
    if !matches!(name.host(), pipeslot_proto::Host::Local) {
        return Err(err(
            Win32Error::ERROR_NOT_SUPPORTED,
            format!("{name}: only the reader of a mailslot knows its info"),
        ));
    }
    local::query(&name).map(|(info, _)| info)
}

/// Every live mailslot on this machine (readers that died are skipped).
///
/// # Errors
/// When the namespace folder cannot be read.
pub fn list_mailslots() -> io::Result<Vec<MailslotListing>> {
    local::list()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_timeouts_map_to_win32_values() {
        assert_eq!(ReadTimeout::from_millis(MAILSLOT_WAIT_FOREVER), ReadTimeout::Forever);
        assert_eq!(ReadTimeout::from_millis(0), ReadTimeout::IMMEDIATE);
        assert_eq!(ReadTimeout::from_millis(250).as_millis(), 250);
        assert_eq!(ReadTimeout::Forever.as_millis(), MAILSLOT_WAIT_FOREVER);
        let long = ReadTimeout::After(Duration::from_secs(u64::from(u32::MAX)));
        assert_eq!(long.as_millis(), u32::MAX - 1, "never mistaken for forever");
        assert_eq!(ReadTimeout::from(Duration::from_millis(5)).as_millis(), 5);
    }
}
