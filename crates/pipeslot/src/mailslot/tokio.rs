//! The tokio mailslot front end (also re-exported by [`crate::tokio`]): the
//! blocking names, with `async` reads and writes.
//!
//! ```
//! # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-mstokio-{}", std::process::id())));
//! use pipeslot::tokio::{MailslotOptions, MailslotWriter};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let slot = MailslotOptions::new().create(r"\\.\mailslot\doc\async")?;
//! let writer = tokio::spawn(async {
//!     let w = MailslotWriter::open(r"\\.\mailslot\doc\async").await?;
//!     for i in 0..3u8 {
//!         w.write(&[i; 3]).await?;
//!     }
//!     Ok::<_, std::io::Error>(())
//! });
//! for i in 0..3u8 {
//!     assert_eq!(slot.read_message().await?, [i; 3]);
//! }
//! writer.await.unwrap()?;
//! assert_eq!(slot.info()?.message_count, 0);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::unix::AsyncFd;

use super::blocking::Target;
use super::local::{self, LocalWriter, Shared, Slot, State};
use super::net::{NetConfig, RemoteWriter};
use super::{MailslotInfo, ReadTimeout};
use crate::error::{err, Win32Error};
use crate::pipe::Tokio;

/// CreateMailslot options for tokio readers.
pub type MailslotOptions = super::MailslotOptions<Tokio>;

impl super::MailslotOptions<Tokio> {
    /// CreateMailslot. Errors as
    /// [`crate::blocking::MailslotOptions::create`].
    pub fn create(&self, addr: impl AsRef<OsStr>) -> io::Result<MailslotServer> {
        Ok(MailslotServer {
            slot: self.create_slot(addr.as_ref())?,
        })
    }
}

/// A mailslot's reader (the handle CreateMailslot returns).
#[derive(Debug)]
pub struct MailslotServer {
    slot: Slot,
}

impl MailslotServer {
    fn shared(&self) -> &Arc<Shared> {
        self.slot.shared()
    }

    async fn take<T>(&self, take: &mut (dyn FnMut(&mut State) -> io::Result<Option<T>> + Send)) -> io::Result<T> {
        let sh = self.shared();
        let timeout = sh.timeout();
        let deadline = match timeout {
            ReadTimeout::Forever => None,
            ReadTimeout::After(d) => Some(Instant::now() + d),
        };
        loop {
            let notified = sh.notify.notified();
            if let Some(v) = sh.try_take(take)? {
                return Ok(v);
            }
            match deadline {
                None => notified.await,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() || ::tokio::time::timeout(left, notified).await.is_err() {
                        if let Some(v) = sh.try_take(take)? {
                            return Ok(v);
                        }
                        return Err(sh.timed_out(timeout));
                    }
                }
            }
        }
    }

    /// ReadFile: the next whole message into `buf`. Errors as
    /// [`crate::blocking::MailslotServer::read`].
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken only in the step that returns it.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let display = self.shared().display().to_owned();
        let mut take = local::take_into(buf, &display);
        self.take(&mut take).await
    }

    /// The next whole message, any size. Errors as
    /// [`crate::blocking::MailslotServer::read`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`read`](Self::read).
    pub async fn read_message(&self) -> io::Result<Vec<u8>> {
        self.take(&mut local::take_vec).await
    }

    /// GetMailslotInfo, exact (it never waits).
    ///
    /// # Errors
    /// None today; the `Result` keeps the Win32 shape.
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

    /// Datagrams this reader dropped for being over its maximum message size.
    pub fn dropped(&self) -> u64 {
        self.shared().dropped()
    }
}

/// A mailslot writer. Local writes wait (without blocking the runtime) only
/// while the reader's queue is full; remote writes send one UDP datagram.
#[derive(Debug)]
pub struct MailslotWriter {
    target: Writer,
}

#[derive(Debug)]
enum Writer {
    Local(AsyncFd<LocalWriter>),
    Remote(RemoteWriter),
}

impl MailslotWriter {
    /// CreateFile on a mailslot name (remote names are resolved on a
    /// blocking thread). Must be called inside a tokio runtime. Errors as
    /// [`crate::blocking::MailslotWriter::open`].
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is sent.
    pub async fn open(addr: impl AsRef<OsStr>) -> io::Result<MailslotWriter> {
        MailslotWriter::open_inner(addr.as_ref().to_owned(), None).await
    }

    /// [`open`](Self::open) with an explicit network configuration.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is sent.
    pub async fn open_with(addr: impl AsRef<OsStr>, config: &NetConfig) -> io::Result<MailslotWriter> {
        MailslotWriter::open_inner(addr.as_ref().to_owned(), Some(config.clone())).await
    }

    async fn open_inner(addr: std::ffi::OsString, config: Option<NetConfig>) -> io::Result<MailslotWriter> {
        let target = ::tokio::task::spawn_blocking(move || Target::open(&addr, config.as_ref(), true))
            .await
            .map_err(|e| err(Win32Error::ERROR_OPERATION_ABORTED, format!("open task failed: {e}")))??;
        let target = match target {
            Target::Local(w) => Writer::Local(crate::sys::register_mailslot_writer(w)?),
            Target::Remote(w) => Writer::Remote(w),
        };
        Ok(MailslotWriter { target })
    }

    /// WriteFile: one whole message. Errors as
    /// [`crate::blocking::MailslotWriter::write`].
    ///
    /// # Cancel safety
    /// Cancel safe: a message is sent whole or not at all.
    pub async fn write(&self, msg: &[u8]) -> io::Result<()> {
        match &self.target {
            Writer::Remote(w) => w.write(msg),
            Writer::Local(io) => loop {
                let mut ready = io.writable().await?;
                match ready.try_io(|w| w.get_ref().send(msg)) {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
        }
    }

    /// The largest message this writer may send now (the local reader's
    /// maximum, or what one datagram carries).
    pub fn max_message_size(&self) -> usize {
        match &self.target {
            Writer::Local(io) => io.get_ref().max_message_size(),
            Writer::Remote(w) => w.max_data(),
        }
    }

    /// Whether the writes go over the network.
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Writer::Remote(_))
    }
}
