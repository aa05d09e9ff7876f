//! The blocking mailslot front end (also re-exported by [`crate::blocking`]).
//!
//! A reader loop, and writers in other threads or processes:
//!
//! ```
//! # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-msblk-{}", std::process::id())));
//! use pipeslot::blocking::{MailslotOptions, MailslotWriter};
//! let slot = MailslotOptions::new().create(r"\\.\mailslot\doc\loop")?; // reads wait for ever
//! let writers: Vec<_> = (0..3)
//!     .map(|i| std::thread::spawn(move || {
//!         let w = MailslotWriter::open(r"\\.\mailslot\doc\loop")?;
//!         w.write(format!("hello from {i}").as_bytes())
//!     }))
//!     .collect();
//! let mut got = Vec::new();
//! for _ in 0..3 {
//!     got.push(String::from_utf8(slot.read_message()?).unwrap());
//! }
//! got.sort();
//! assert_eq!(got, ["hello from 0", "hello from 1", "hello from 2"]);
//! for w in writers { w.join().unwrap()?; }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use pipeslot_proto::Host;

use super::local::{self, LocalWriter, Shared, Slot};
use super::net::{NetConfig, RemoteWriter};
use super::{MailslotInfo, ReadTimeout};
use crate::pipe::Blocking;

/// CreateMailslot options for blocking readers.
pub type MailslotOptions = super::MailslotOptions<Blocking>;

impl super::MailslotOptions<Blocking> {
    /// CreateMailslot: makes `\\.\mailslot\[PATH\]NAME` and becomes its one
    /// reader.
    ///
    /// # Errors
    /// - `ERROR_ALREADY_EXISTS (183)`: the name has a reader (in any
    ///   process; a reader that died does not count).
    /// - `ERROR_INVALID_NAME (123)`: a malformed name, or not `\\.\`.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-mscreate-{}", std::process::id())));
    /// use pipeslot::{blocking::MailslotOptions, Error, Win32Error};
    /// let _slot = MailslotOptions::new().create(r"\\.\mailslot\doc\one")?;
    /// let e = MailslotOptions::new().create(r"\\.\mailslot\DOC\ONE").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_ALREADY_EXISTS));
    /// let e = MailslotOptions::new().create(r"\\server\mailslot\doc\one").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_INVALID_NAME));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&self, addr: impl AsRef<OsStr>) -> io::Result<MailslotServer> {
        Ok(MailslotServer {
            slot: self.create_slot(addr.as_ref())?,
        })
    }
}

/// A mailslot's reader (the handle CreateMailslot returns). Dropping it
/// deletes the mailslot; unread messages are lost, as on Windows.
#[derive(Debug)]
pub struct MailslotServer {
    slot: Slot,
}

impl MailslotServer {
    fn shared(&self) -> &Arc<Shared> {
        self.slot.shared()
    }

    /// ReadFile: the next whole message into `buf`; its length.
    ///
    /// # Errors
    /// - `ERROR_INSUFFICIENT_BUFFER (122)`: `buf` is shorter than the next
    ///   message, which stays for the next read.
    /// - `ERROR_SEM_TIMEOUT (121)`: no message within the read timeout (at
    ///   once when it is zero).
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-msread-{}", std::process::id())));
    /// use pipeslot::blocking::{MailslotOptions, MailslotWriter};
    /// use pipeslot::{Error, Win32Error};
    /// let slot = MailslotOptions::new().create(r"\\.\mailslot\doc\short")?;
    /// MailslotWriter::open(r"\\.\mailslot\doc\short")?.write(b"twelve bytes")?;
    /// let e = slot.read(&mut [0u8; 4]).unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_INSUFFICIENT_BUFFER));
    /// let mut buf = [0u8; 64];
    /// assert_eq!(slot.read(&mut buf)?, 12); // still there
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let sh = self.shared();
        sh.take_blocking(&mut local::take_into(buf, sh.display()))
    }

    /// ReadFile into a fresh vector: the next whole message, any size.
    ///
    /// # Errors
    /// `ERROR_SEM_TIMEOUT (121)` as [`read`](Self::read).
    pub fn read_message(&self) -> io::Result<Vec<u8>> {
        self.shared().take_blocking(&mut local::take_vec)
    }

    /// GetMailslotInfo: max size, next size, count, timeout — exact.
    ///
    /// # Errors
    /// None today; the `Result` keeps the Win32 shape.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-msgetinfo-{}", std::process::id())));
    /// use pipeslot::blocking::{MailslotOptions, MailslotWriter};
    /// use pipeslot::mailslot::{ReadTimeout, MAILSLOT_NO_MESSAGE};
    /// let slot = MailslotOptions::new().max_message_size(100).create(r"\\.\mailslot\doc\info")?;
    /// let info = slot.info()?;
    /// assert_eq!(info.next_message_size, None);
    /// assert_eq!(info.next_size_win32(), MAILSLOT_NO_MESSAGE);
    /// assert_eq!((info.max_message_size, info.message_count), (100, 0));
    /// assert_eq!(info.read_timeout, ReadTimeout::Forever);
    /// let w = MailslotWriter::open(r"\\.\mailslot\doc\info")?;
    /// for msg in [&b"a"[..], b"bc", b""] { w.write(msg)?; }
    /// let info = slot.info()?;
    /// assert_eq!((info.message_count, info.next_message_size), (3, Some(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> io::Result<MailslotInfo> {
        Ok(self.shared().info())
    }

    /// SetMailslotInfo: the read timeout of later reads.
    ///
    /// # Errors
    /// None today; the `Result` keeps the Win32 shape.
    pub fn set_read_timeout(&self, timeout: impl Into<ReadTimeout>) -> io::Result<()> {
        self.shared().set_timeout(timeout.into());
        Ok(())
    }

    /// The mailslot's full name, as its creator spelled it.
    pub fn name(&self) -> &str {
        self.shared().display()
    }

    /// Datagrams this reader dropped for being over its maximum message size
    /// (only writers that skip the size check send them).
    pub fn dropped(&self) -> u64 {
        self.shared().dropped()
    }
}

/// A mailslot writer (the handle CreateFile returns for a mailslot name):
/// local (`\\.\mailslot\…`) or remote (`\\HOST\…`, `\\DOMAIN\…`, `\\*\…`).
/// Each [`write`](Self::write) is one whole message; writes from many
/// writers are never torn or interleaved.
#[derive(Debug)]
pub struct MailslotWriter {
    target: Target,
}

#[derive(Debug)]
pub(crate) enum Target {
    Local(LocalWriter),
    Remote(RemoteWriter),
}

impl Target {
    pub(crate) fn open(addr: &OsStr, config: Option<&NetConfig>, nonblocking: bool) -> io::Result<Target> {
        let name = super::parse_name(addr)?;
        match name.host() {
            Host::Local => Ok(Target::Local(LocalWriter::open(&name, nonblocking)?)),
            _ => {
                let owned;
                let config = match config {
                    Some(c) => c,
                    None => {
                        owned = NetConfig::from_env()?;
                        &owned
                    }
                };
                Ok(Target::Remote(RemoteWriter::open(&name, config)?))
            }
        }
    }

    pub(crate) fn max_message_size(&self) -> usize {
        match self {
            Target::Local(w) => w.max_message_size(),
            Target::Remote(w) => w.max_data(),
        }
    }
}

impl MailslotWriter {
    /// CreateFile on a mailslot name. Remote names use the `PIPESLOT_*`
    /// environment ([`NetConfig::from_env`]).
    ///
    /// # Errors
    /// - `ERROR_FILE_NOT_FOUND (2)`: no local mailslot has this name.
    /// - `ERROR_BAD_NETPATH (53)`: a domain or `\\*\` name and no interface
    ///   to broadcast on.
    /// - `ERROR_INVALID_NAME (123)`: a malformed name.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-msopen-{}", std::process::id())));
    /// use pipeslot::{blocking::MailslotWriter, Error, Win32Error};
    /// let e = MailslotWriter::open(r"\\.\mailslot\doc\nobody-reads-this").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(addr: impl AsRef<OsStr>) -> io::Result<MailslotWriter> {
        Ok(MailslotWriter {
            target: Target::open(addr.as_ref(), None, false)?,
        })
    }

    /// [`open`](Self::open) with an explicit network configuration for
    /// remote names.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(addr: impl AsRef<OsStr>, config: &NetConfig) -> io::Result<MailslotWriter> {
        Ok(MailslotWriter {
            target: Target::open(addr.as_ref(), Some(config), false)?,
        })
    }

    /// WriteFile: sends `msg` as one message. Local: returns once the
    /// reader's process holds it (it waits only while that reader's queue
    /// is full, [`QUOTA_BYTES`](super::QUOTA_BYTES)). Remote: returns once
    /// the datagram left; delivery is not confirmed (Win32 neither).
    ///
    /// # Errors
    /// - `ERROR_INVALID_PARAMETER (87)`: over the local reader's maximum
    ///   message size.
    /// - `ERROR_BAD_NETPATH (53)`: over what one datagram carries
    ///   (`\\HOST\`: 432 − the name's length rounded up to 4; domain and
    ///   `\\*\`: at most 424 bytes).
    /// - `ERROR_FILE_NOT_FOUND (2)`: the local mailslot is gone.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-mswrite-{}", std::process::id())));
    /// use pipeslot::blocking::{MailslotOptions, MailslotWriter};
    /// use pipeslot::{Error, Win32Error};
    /// let slot = MailslotOptions::new().max_message_size(4).create(r"\\.\mailslot\doc\small")?;
    /// let w = MailslotWriter::open(r"\\.\mailslot\doc\small")?;
    /// w.write(b"1234")?;
    /// let e = w.write(b"12345").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_INVALID_PARAMETER));
    /// assert_eq!(slot.read_message()?, b"1234");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&self, msg: &[u8]) -> io::Result<()> {
        match &self.target {
            Target::Local(w) => w.send(msg),
            Target::Remote(w) => w.write(msg),
        }
    }

    /// The largest message this writer may send now (the local reader's
    /// maximum, or what one datagram carries).
    pub fn max_message_size(&self) -> usize {
        self.target.max_message_size()
    }

    /// Whether the writes go over the network.
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Target::Remote(_))
    }
}
