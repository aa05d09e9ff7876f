//! The tokio front end, shaped like `tokio::net::windows::named_pipe`: code
//! written for Windows ports by changing the import.
//!
//! The server loop keeps one instance listening while it serves the others:
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("pipeslot-doc-tokio-{}", std::process::id()));
//! # std::env::set_var("PIPESLOT_DIR", &dir);
//! use pipeslot::tokio::{ClientOptions, ServerOptions};
//! use pipeslot::{Error, Win32Error};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! const NAME: &str = r"\\.\pipe\doc-tokio-echo";
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut server = ServerOptions::new().first_pipe_instance(true).create(NAME)?;
//! let serve = tokio::spawn(async move {
//!     for _ in 0..3 {
//!         server.connect().await?;
//!         let mut connected = server;
//!         server = ServerOptions::new().create(NAME)?; // keep one instance listening
//!         tokio::spawn(async move {
//!             let mut buf = [0u8; 4];
//!             connected.read_exact(&mut buf).await?;
//!             connected.write_all(&buf).await?;
//!             Ok::<_, std::io::Error>(())
//!         });
//!     }
//!     Ok::<_, std::io::Error>(())
//! });
//! for _ in 0..3 {
//!     let mut client = loop {
//!         match ClientOptions::new().open(NAME) {
//!             Ok(c) => break c,
//!             Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_PIPE_BUSY) => {
//!                 tokio::time::sleep(std::time::Duration::from_millis(5)).await
//!             }
//!             Err(e) => return Err(e),
//!         }
//!     };
//!     client.write_all(b"ping").await?;
//!     let mut buf = [0u8; 4];
//!     client.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"ping");
//! }
//! serve.await.unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

use std::ffi::OsStr;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use tokio::sync::Notify;

use crate::blocking::transact_check;
use crate::error::{err, is_retry, Win32Error};
use crate::pipe::conn::Conn;
use crate::pipe::{self, ConnectStep, HandleState, Instance, MsgRead, PeekInfo, PipeInfo, PipeMode, Tokio};
use crate::security::ClientIdentity;
use crate::WaitTimeout;

pub use crate::mailslot::tokio::{MailslotOptions, MailslotServer, MailslotWriter};
pub use crate::pipe::{PipeEnd, UNLIMITED_INSTANCES};

/// CreateNamedPipe options for tokio servers.
pub type ServerOptions = pipe::ServerOptions<Tokio>;
/// CreateFile options for tokio clients.
pub type ClientOptions = pipe::ClientOptions<Tokio>;

impl pipe::ServerOptions<Tokio> {
    /// CreateNamedPipe: makes one listening instance. Must be called inside
    /// a tokio runtime. Errors as [`crate::blocking::ServerOptions::create`].
    pub fn create(&self, addr: impl AsRef<OsStr>) -> io::Result<NamedPipeServer> {
        let inst = self.create_instance(addr.as_ref())?;
        let notify = inst.acceptor().notifier(inst.id());
        Ok(NamedPipeServer {
            inst,
            notify,
            conn: Mutex::new(None),
            client: Mutex::new(None),
        })
    }
}

impl pipe::ClientOptions<Tokio> {
    /// CreateFile on a pipe: connects to a listening instance at once (it
    /// never waits; on `ERROR_PIPE_BUSY` use [`wait_named_pipe`] or retry).
    /// Must be called inside a tokio runtime. Errors as
    /// [`crate::blocking::ClientOptions::open`].
    pub fn open(&self, addr: impl AsRef<OsStr>) -> io::Result<NamedPipeClient> {
        let (conn, info) = self.open_conn(addr.as_ref())?;
        conn.set_nonblocking(true)?;
        Ok(NamedPipeClient {
            io: Arc::new(crate::sys::register(conn)?),
            info,
        })
    }
}

/// WaitNamedPipe without blocking the runtime.
///
/// # Cancel safety
/// Cancel safe: it consumes nothing.
pub async fn wait_named_pipe(name: impl AsRef<OsStr>, timeout: WaitTimeout) -> io::Result<()> {
    let name = name.as_ref().to_owned();
    tokio::task::spawn_blocking(move || pipe::wait_named_pipe(name, timeout))
        .await
        .map_err(|e| err(Win32Error::ERROR_OPERATION_ABORTED, format!("wait task failed: {e}")))?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Io = Arc<AsyncFd<Conn>>;

/// A server instance (the handle CreateNamedPipe returns).
#[derive(Debug)]
pub struct NamedPipeServer {
    inst: Instance,
    notify: Arc<Notify>,
    conn: Mutex<Option<Io>>,
    client: Mutex<Option<ClientIdentity>>,
}

impl NamedPipeServer {
    /// ConnectNamedPipe: waits for a client; returns at once when one came first.
    ///
    /// # Errors
    /// `ERROR_PIPE_CONNECTED (535)` when connect already returned for the
    /// current client.
    ///
    /// # Cancel safety
    /// Cancel safe: a client that arrives meanwhile stays queued for the next call.
    pub async fn connect(&self) -> io::Result<()> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.inst.connect_step()? {
                ConnectStep::Wait => notified.await,
                ConnectStep::Ready => return Ok(()),
                ConnectStep::Took(fd, ident) => {
                    self.install(fd, ident)?;
                    return Ok(());
                }
            }
        }
    }

    fn install(&self, fd: std::os::fd::OwnedFd, ident: ClientIdentity) -> io::Result<Io> {
        let conn = self.inst.conn(fd);
        conn.set_nonblocking(true)?;
        let io = Arc::new(crate::sys::register(conn)?);
        *lock(&self.conn) = Some(Arc::clone(&io));
        *lock(&self.client) = Some(ident);
        Ok(io)
    }

    /// DisconnectNamedPipe: ends the current client's connection, dropping
    /// what it had not read; [`connect`](Self::connect) listens again.
    pub fn disconnect(&self) -> io::Result<()> {
        self.inst.disconnect()?;
        if let Some(io) = lock(&self.conn).take() {
            let _ = rustix::net::shutdown(io.get_ref(), rustix::net::Shutdown::Both);
        }
        *lock(&self.client) = None;
        Ok(())
    }

    /// GetNamedPipeInfo.
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.inst.info())
    }

    /// The connected client's identity, or `None` while none is connected.
    pub fn client_identity(&self) -> Option<ClientIdentity> {
        if lock(&self.client).is_none() {
            let _ = self.io();
        }
        lock(&self.client).clone()
    }

    fn io(&self) -> io::Result<Io> {
        if let Some(c) = lock(&self.conn).as_ref() {
            return Ok(Arc::clone(c));
        }
        let (fd, ident) = self.inst.adopt()?;
        self.install(fd, ident)
    }
}

/// A client's end of a pipe (the handle CreateFile returns).
#[derive(Debug)]
pub struct NamedPipeClient {
    io: Io,
    info: PipeInfo,
}

impl NamedPipeClient {
    /// GetNamedPipeInfo.
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.info.clone())
    }

    fn io(&self) -> io::Result<Io> {
        Ok(Arc::clone(&self.io))
    }
}

/// Runs a non-blocking operation until it stops saying `WouldBlock`. Each
/// attempt runs under a readiness guard, so a `WouldBlock` clears exactly
/// the readiness it saw and the next wait parks at once: one failed syscall
/// per wait, as tokio's own sockets do (a bare attempt before each wait cost
/// two more whenever the readiness was stale). Bytes the frame reader holds
/// already are taken without waiting.
async fn retry<R>(io: &Io, interest: Interest, mut op: impl FnMut(&Conn) -> io::Result<R>) -> io::Result<R> {
    if interest == Interest::READABLE && io.get_ref().has_buffered() {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return r,
        }
    }
    loop {
        let mut guard = io.ready(interest).await?;
        match guard.try_io(|a| op(a.get_ref())) {
            Ok(r) => return r,
            Err(_) => continue,
        }
    }
}

fn poll_retry<R>(
    io: &Io,
    cx: &mut Context<'_>,
    interest: Interest,
    mut op: impl FnMut(&Conn) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    if interest == Interest::READABLE && io.get_ref().has_buffered() {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return Poll::Ready(r),
        }
    }
    loop {
        let mut guard = if interest == Interest::READABLE {
            ready!(io.poll_read_ready(cx))?
        } else {
            ready!(io.poll_write_ready(cx))?
        };
        match guard.try_io(|a| op(a.get_ref())) {
            Ok(r) => return Poll::Ready(r),
            Err(_) => continue,
        }
    }
}

/// The I/O both ends share, written once.
macro_rules! pipe_io {
    ($t:ty) => {
        impl $t {
            /// Reads the next message (or its next part, `more` set when the
            /// buffer is short: Win32's `ERROR_MORE_DATA`).
            ///
            /// # Errors
            /// `ERROR_BROKEN_PIPE (109)` when the other end has closed.
            ///
            /// # Cancel safety
            /// Cancel safe until the first byte of a message arrives; a
            /// message larger than the socket buffer may be cut if cancelled
            /// while it streams in.
            pub async fn read_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
                let io = self.io()?;
                let mut filled = 0;
                retry(&io, Interest::READABLE, |c| c.read_msg(buf, &mut filled)).await
            }

            /// Writes one message (message pipes) or all the bytes (byte pipes).
            ///
            /// # Errors
            /// `ERROR_NO_DATA (232)` when the other end has closed.
            ///
            /// # Cancel safety
            /// A message is accepted whole or not at all.
            pub async fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
                let io = self.io()?;
                let mut at = 0;
                while at < msg.len() || (at == 0 && msg.is_empty()) {
                    let n = retry(&io, Interest::WRITABLE, |c| c.write(&msg[at..])).await?;
                    at += n;
                    if msg.is_empty() {
                        break;
                    }
                }
                Ok(())
            }

            /// Writes many messages at once: each slice is one message on a
            /// message pipe (a run of bytes on a byte pipe), handed to the
            /// kernel with one `sendmsg` per up to 512 of them. The reader
            /// sees exactly what `write_msg` per slice would give.
            ///
            /// # Errors
            /// `ERROR_NO_DATA (232)` when the other end has closed.
            ///
            /// # Cancel safety
            /// Each message is accepted whole or not at all, but a cancelled
            /// call may have written the first messages of the batch.
            pub async fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<()> {
                let io = self.io()?;
                let mut at = 0;
                while at < msgs.len() {
                    at += retry(&io, Interest::WRITABLE, |c| c.write_msgs(&msgs[at..])).await?;
                }
                Ok(())
            }

            /// TransactNamedPipe: writes one message and reads one reply.
            ///
            /// # Errors
            /// `ERROR_BAD_PIPE (230)` unless the handle reads messages.
            ///
            /// # Cancel safety
            /// Not cancel safe once the request is written.
            pub async fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
                transact_check(self.io()?.get_ref())?;
                self.write_msg(msg).await?;
                self.read_msg(reply).await
            }

            /// PeekNamedPipe: what is readable now, without consuming it.
            pub fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
                self.io()?.get_ref().peek(buf)
            }

            /// FlushFileBuffers: resolves once the other end has read
            /// everything written so far. Needs the runtime's time driver.
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn flush_buffers(&self) -> io::Result<()> {
                let io = self.io()?;
                let mut backoff = std::time::Duration::from_micros(20);
                while !io.get_ref().flush_step()? {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_millis(5));
                }
                Ok(())
            }

            /// SetNamedPipeHandleState: byte or message read mode.
            pub fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
                self.io()?.get_ref().set_read_mode(mode)
            }

            /// GetNamedPipeHandleState (always non-blocking underneath).
            pub fn handle_state(&self) -> io::Result<HandleState> {
                let io = self.io()?;
                Ok(HandleState {
                    read_mode: io.get_ref().read_mode(),
                    nonblocking: false,
                    instances: pipe::count_instances(io.get_ref().name())?,
                })
            }

            /// Waits for any of the requested readiness.
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                let io = self.io()?;
                let guard = io.ready(interest).await?;
                Ok(guard.ready())
            }

            /// Waits until the pipe may be readable.
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn readable(&self) -> io::Result<()> {
                self.ready(Interest::READABLE).await.map(|_| ())
            }

            /// Waits until the pipe may be writable.
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn writable(&self) -> io::Result<()> {
                self.ready(Interest::WRITABLE).await.map(|_| ())
            }

            /// Reads what is there without waiting (`WouldBlock` if nothing).
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.io()?.try_io(Interest::READABLE, |c| c.read(buf))
            }

            /// Writes without waiting (`WouldBlock` if the pipe is full).
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.io()?.try_io(Interest::WRITABLE, |c| c.write(buf))
            }
        }

        impl AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                let io = self.io()?;
                let unfilled = buf.initialize_unfilled();
                let n = ready!(poll_retry(&io, cx, Interest::READABLE, |c| c.read(unfilled)))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let io = self.io()?;
                poll_retry(&io, cx, Interest::WRITABLE, |c| c.write(buf))
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let io = self.io()?;
                poll_retry(&io, cx, Interest::WRITABLE, |c| c.drain_pending())
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let io = self.io()?;
                ready!(poll_retry(&io, cx, Interest::WRITABLE, |c| c.drain_pending()))?;
                let _ = rustix::net::shutdown(io.get_ref(), rustix::net::Shutdown::Write);
                Poll::Ready(Ok(()))
            }
        }
    };
}

pipe_io!(NamedPipeServer);
pipe_io!(NamedPipeClient);
