//! The blocking front end: named pipes for programs without an async
//! runtime. Same names as [`crate::tokio`]; every call blocks the thread.
//!
//! The server loop keeps one instance listening while it serves the others,
//! as on Windows:
//!
//! ```
//! use std::io::{Read, Write};
//! use pipeslot::blocking::{ClientOptions, ServerOptions};
//! # let dir = tempfile_dir(); std::env::set_var("PIPESLOT_DIR", &dir);
//! # fn tempfile_dir() -> std::path::PathBuf { let d = std::env::temp_dir().join(format!("pipeslot-doc-blocking-{}", std::process::id())); std::fs::create_dir_all(&d).unwrap(); d }
//! const NAME: &str = r"\\.\pipe\doc-blocking-echo";
//! let first = ServerOptions::new().first_pipe_instance(true).create(NAME)?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let mut server = first;
//!     for _ in 0..2 {
//!         server.connect()?;
//!         let connected = server;
//!         server = ServerOptions::new().create(NAME)?; // the next client's instance
//!         let mut c = connected;
//!         let mut buf = [0u8; 5];
//!         c.read_exact(&mut buf)?;
//!         c.write_all(&buf)?;
//!     }
//!     Ok(())
//! });
//! for _ in 0..2 {
//!     let mut client = loop {
//!         match ClientOptions::new().open(NAME) {
//!             Ok(c) => break c,
//!             Err(e) if pipeslot::Error::win32(&e) == Some(pipeslot::Win32Error::ERROR_PIPE_BUSY) => {
//!                 pipeslot::wait_named_pipe(NAME, pipeslot::WaitTimeout::Forever)?;
//!             }
//!             Err(e) => return Err(e),
//!         }
//!     };
//!     client.write_all(b"hello")?;
//!     let mut buf = [0u8; 5];
//!     client.read_exact(&mut buf)?;
//!     assert_eq!(&buf, b"hello");
//! }
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{err, is_retry, Error, Win32Error};
use crate::pipe::conn::Conn;
use crate::pipe::{self, Blocking, ConnectStep, HandleState, Instance, MsgRead, PeekInfo};
use crate::remote::pipe::RemotePipe;
use crate::security::{ClientIdentity, ServerIdentity};
use crate::WaitTimeout;

pub use crate::mailslot::blocking::{MailslotOptions, MailslotServer, MailslotWriter};
pub use crate::pipe::PipeMode as Mode;
pub use crate::pipe::{PipeEnd, PipeInfo, PipeMode, UNLIMITED_INSTANCES};

/// CreateNamedPipe options for blocking servers.
pub type ServerOptions = pipe::ServerOptions<Blocking>;
/// CreateFile options for blocking clients.
pub type ClientOptions = pipe::ClientOptions<Blocking>;

impl pipe::ServerOptions<Blocking> {
    /// CreateNamedPipe: makes one listening instance of `addr`.
    ///
    /// # Errors
    /// - `ERROR_INVALID_NAME (123)`: a malformed or remote name.
    /// - `ERROR_ACCESS_DENIED (5)`: first-pipe-instance was asked and the
    ///   name exists, or the existing instances have another direction.
    /// - `ERROR_PIPE_BUSY (231)`: the first instance's maximum is reached.
    /// - `ERROR_INVALID_PARAMETER (87)`: options that do not go together.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-create-{}", std::process::id())));
    /// use pipeslot::{blocking::ServerOptions, Error, Win32Error};
    /// let _one = ServerOptions::new().max_instances(1).create(r"\\.\pipe\doc-max-one")?;
    /// let e = ServerOptions::new().max_instances(1).create(r"\\.\pipe\DOC-MAX-ONE").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_PIPE_BUSY));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&self, addr: impl AsRef<OsStr>) -> io::Result<NamedPipeServer> {
        Ok(NamedPipeServer {
            inst: self.create_instance(addr.as_ref())?,
            conn: Mutex::new(None),
            client: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })
    }
}

impl pipe::ClientOptions<Blocking> {
    /// CreateFile on a pipe: connects to a listening instance.
    ///
    /// # Errors
    /// - `ERROR_FILE_NOT_FOUND (2)`: no pipe has this name.
    /// - `ERROR_PIPE_BUSY (231)`: every instance is serving another client
    ///   (wait with [`crate::wait_named_pipe`], then try again).
    /// - `ERROR_ACCESS_DENIED (5)`: the pipe's access control or direction
    ///   refuses this client.
    ///
    /// ```
    /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-open-{}", std::process::id())));
    /// use pipeslot::{blocking::ClientOptions, Error, Win32Error};
    /// let e = ClientOptions::new().open(r"\\.\pipe\doc-nobody-serves-this").unwrap_err();
    /// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(&self, addr: impl AsRef<OsStr>) -> io::Result<NamedPipeClient> {
        if let Some(r) = self.open_remote(addr.as_ref())? {
            return Ok(NamedPipeClient {
                info: r.info(),
                link: Link::Remote(Arc::new(r)),
                nonblocking: AtomicBool::new(false),
            });
        }
        let (conn, info) = self.open_conn(addr.as_ref())?;
        Ok(NamedPipeClient {
            link: Link::Local(Arc::new(conn)),
            info,
            nonblocking: AtomicBool::new(false),
        })
    }
}

impl pipe::ClientOptions<Blocking> {
    /// WaitNamedPipe with these options: for a remote name, its port,
    /// credentials and timeouts (the free [`crate::wait_named_pipe`] uses
    /// the defaults and the environment).
    ///
    /// # Errors
    /// As [`crate::wait_named_pipe`].
    pub fn wait(&self, addr: impl AsRef<OsStr>, timeout: WaitTimeout) -> io::Result<()> {
        self.wait_for(addr.as_ref(), timeout)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A server instance (the handle CreateNamedPipe returns).
#[derive(Debug)]
pub struct NamedPipeServer {
    inst: Instance,
    conn: Mutex<Option<Arc<Conn>>>,
    client: Mutex<Option<ClientIdentity>>,
    nonblocking: AtomicBool,
}

impl NamedPipeServer {
    /// ConnectNamedPipe: waits until a client opens this instance. Returns at
    /// once if a client came first (Win32's `ERROR_PIPE_CONNECTED` case).
    ///
    /// # Errors
    /// `ERROR_PIPE_CONNECTED (535)` when connect already returned for this
    /// client; call `disconnect` first.
    ///
    /// In PIPE_NOWAIT mode ([`set_nonblocking`](Self::set_nonblocking)) it
    /// never waits: `ERROR_PIPE_LISTENING (536)` while no client came, and
    /// as [`try_connect`](Self::try_connect) otherwise.
    pub fn connect(&self) -> io::Result<()> {
        loop {
            if self.try_connect()? {
                return Ok(());
            }
            if self.nonblocking() {
                return Err(err(
                    Win32Error::ERROR_PIPE_LISTENING,
                    format!(
                        "no client has opened this instance of {} yet (PIPE_NOWAIT)",
                        self.inst.name()
                    ),
                ));
            }
            self.inst.wait_blocking(Duration::from_millis(500));
        }
    }

    /// ConnectNamedPipe without waiting: `Ok(true)` when a client is
    /// connected, `Ok(false)` while the instance listens.
    ///
    /// # Errors
    /// In PIPE_NOWAIT mode, `ERROR_NO_DATA (232)` when a client came and has
    /// already closed its end (what it wrote can still be read; then
    /// disconnect), as Win32's non-blocking ConnectNamedPipe tells it. A
    /// blocking handle returns `Ok(true)` there, as tokio's `connect` does.
    pub fn try_connect(&self) -> io::Result<bool> {
        match self.inst.connect_step()? {
            ConnectStep::Wait => Ok(false),
            ConnectStep::Ready => Ok(true),
            ConnectStep::Took(fd, ident) => {
                let conn = self.install(fd, ident)?;
                if self.nonblocking() && conn.peer_gone() {
                    return Err(err(
                        Win32Error::ERROR_NO_DATA,
                        format!(
                            "a client opened {} and has already closed it; read what it left, then disconnect",
                            self.inst.name()
                        ),
                    ));
                }
                Ok(true)
            }
        }
    }

    fn install(&self, fd: crate::pipe::acceptor::Accepted, ident: ClientIdentity) -> io::Result<Arc<Conn>> {
        let conn = Arc::new(self.inst.conn(fd));
        conn.set_nowait(self.nonblocking.load(Ordering::Relaxed))?;
        *lock(&self.conn) = Some(Arc::clone(&conn));
        *lock(&self.client) = Some(ident);
        Ok(conn)
    }

    /// Waits up to `timeout` for a client; `Ok(false)` when none came.
    pub fn connect_timeout(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_connect()? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            self.inst.wait_blocking(deadline - now);
        }
    }

    /// DisconnectNamedPipe: ends the connection with the current client and
    /// drops what it had not read; the instance listens again once
    /// [`connect`](Self::connect) is called.
    ///
    /// # Errors
    /// `ERROR_PIPE_LISTENING (536)` when no client ever came,
    /// `ERROR_PIPE_NOT_CONNECTED (233)` when already disconnected.
    pub fn disconnect(&self) -> io::Result<()> {
        self.inst.disconnect()?;
        if let Some(conn) = lock(&self.conn).take() {
            conn.send_disconnect();
            let _ = rustix::net::shutdown(&*conn, rustix::net::Shutdown::Both);
        }
        *lock(&self.client) = None;
        Ok(())
    }

    /// GetNamedPipeInfo.
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.inst.info())
    }

    /// Who the connected client is (pid, uid, gid, user name), or `None`
    /// while no client is connected.
    pub fn client_identity(&self) -> Option<ClientIdentity> {
        if lock(&self.client).is_none() {
            let _ = self.conn();
        }
        lock(&self.client).clone()
    }

    /// The pipe's name, as this instance's creator spelled it.
    pub fn name(&self) -> String {
        self.inst.name().to_string()
    }

    fn remote(&self) -> Option<&RemotePipe> {
        None
    }

    fn conn(&self) -> io::Result<Arc<Conn>> {
        if let Some(c) = lock(&self.conn).as_ref() {
            return Ok(Arc::clone(c));
        }
        let (fd, ident) = self.inst.adopt()?;
        self.install(fd, ident)
    }

    fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// The read mode belongs to the instance handle, client or not.
    fn apply_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        self.inst.set_read_mode(mode)?;
        if let Some(c) = lock(&self.conn).as_ref() {
            c.set_read_mode(mode)?;
        }
        Ok(())
    }

    fn current_read_mode(&self) -> PipeMode {
        self.inst.read_mode()
    }

    fn pipe_name(&self) -> String {
        self.inst.name().to_string()
    }

    /// PIPE_NOWAIT: reads return `WouldBlock` (`ERROR_NO_DATA`) at once when
    /// nothing is there, a write that does not fit the pipe's buffer writes
    /// nothing, and `connect` does not wait.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        if let Some(c) = lock(&self.conn).as_ref() {
            c.set_nowait(on)?;
        }
        Ok(())
    }
}

/// A client's end of a pipe (the handle CreateFile returns).
#[derive(Debug)]
pub struct NamedPipeClient {
    link: Link,
    info: PipeInfo,
    nonblocking: AtomicBool,
}

/// Where a client's pipe is: this machine, or a server over SMB.
#[derive(Debug)]
pub(crate) enum Link {
    Local(Arc<Conn>),
    Remote(Arc<RemotePipe>),
}

impl NamedPipeClient {
    /// GetNamedPipeInfo.
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.info.clone())
    }

    /// GetNamedPipeServerProcessId, and the server's user: who serves
    /// this instance, as the kernel recorded it (local pipes;
    /// `ERROR_NOT_SUPPORTED` for remote ones). To refuse a server before
    /// connecting, see `ClientOptions::require_server_user`.
    pub fn server_identity(&self) -> io::Result<ServerIdentity> {
        match &self.link {
            Link::Local(c) => ServerIdentity::of_peer(std::os::fd::AsFd::as_fd(&**c)),
            Link::Remote(r) => Err(ServerIdentity::remote(r.name())),
        }
    }

    /// GetNamedPipeServerProcessId.
    pub fn server_process_id(&self) -> io::Result<u32> {
        self.server_identity().map(|s| s.pid)
    }

    /// For remote pipes: the server, the SMB dialect and how the session is
    /// protected (`None` for local pipes).
    pub fn remote_session(&self) -> Option<crate::RemoteSession> {
        self.remote().map(RemotePipe::describe)
    }

    fn remote(&self) -> Option<&RemotePipe> {
        match &self.link {
            Link::Remote(r) => Some(r),
            Link::Local(_) => None,
        }
    }

    /// Ends a local pipe now, from any thread: a read blocked on it
    /// returns, and the server sees the client gone (the gateway's Samba
    /// mode, when smbd's client went away).
    pub(crate) fn abort(&self) {
        if let Link::Local(c) = &self.link {
            let _ = rustix::net::shutdown(&**c, rustix::net::Shutdown::Both);
        }
    }

    fn conn(&self) -> io::Result<Arc<Conn>> {
        match &self.link {
            Link::Local(c) => Ok(Arc::clone(c)),
            Link::Remote(r) => Err(err(Win32Error::ERROR_INVALID_HANDLE, format!("{} is remote", r.name()))),
        }
    }

    fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    fn apply_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        match &self.link {
            Link::Local(c) => c.set_read_mode(mode),
            Link::Remote(r) => r.set_read_mode(mode),
        }
    }

    fn current_read_mode(&self) -> PipeMode {
        match &self.link {
            Link::Local(c) => c.read_mode(),
            Link::Remote(r) => r.read_mode(),
        }
    }

    fn pipe_name(&self) -> String {
        match &self.link {
            Link::Local(c) => c.name().to_owned(),
            Link::Remote(r) => r.name().to_owned(),
        }
    }

    /// PIPE_NOWAIT for this handle: reads and writes never wait (a write
    /// that does not fit the pipe's buffer writes nothing).
    ///
    /// # Errors
    /// `ERROR_NOT_SUPPORTED (50)` on a remote pipe (SMB has no PIPE_NOWAIT
    /// for clients; use the tokio front end).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.link {
            Link::Local(c) => {
                self.nonblocking.store(on, Ordering::Relaxed);
                c.set_nowait(on)
            }
            Link::Remote(r) => Err(err(
                Win32Error::ERROR_NOT_SUPPORTED,
                format!("{}: PIPE_NOWAIT is not available on remote pipes", r.name()),
            )),
        }
    }
}

/// The I/O both ends share, written once.
macro_rules! pipe_io {
    ($t:ty) => {
        impl $t {
            /// ReadFile in message read mode: the next message, or its next
            /// part with `more` set when the buffer is too short (Win32's
            /// `ERROR_MORE_DATA`); nothing is lost.
            ///
            /// # Errors
            /// `ERROR_BROKEN_PIPE (109)` when the other end has closed.
            pub fn read_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
                if let Some(r) = self.remote() {
                    return remote_read_msg(r, buf);
                }
                let conn = self.conn()?;
                let mut filled = 0;
                match conn.read_msg(buf, &mut filled) {
                    // Non-blocking, part of a message arrived: nothing is lost.
                    Err(e) if filled > 0 && is_retry(&e) => Ok(MsgRead {
                        len: filled,
                        more: true,
                    }),
                    r => no_data(&conn, r, self.nonblocking()),
                }
            }

            /// WriteFile: one message on a message pipe (zero bytes too), or
            /// bytes on a byte pipe; returns when the pipe holds all of it.
            ///
            /// # Errors
            /// `ERROR_NO_DATA (232)` when the other end has closed.
            ///
            /// With PIPE_NOWAIT a message that does not fit the pipe's free
            /// buffer is not written at all: `WouldBlock` (`ERROR_NO_DATA`).
            pub fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
                if let Some(r) = self.remote() {
                    return r.write(msg).map(drop);
                }
                let conn = self.conn()?;
                let n = conn.write(msg)?;
                if n == 0 && !msg.is_empty() && self.nonblocking() {
                    return Err(crate::error::err_kind(
                        io::ErrorKind::WouldBlock,
                        Win32Error::ERROR_NO_DATA,
                        format!(
                            "a message of {} bytes does not fit the free buffer of {} now: nothing was written (PIPE_NOWAIT)",
                            msg.len(),
                            conn.name()
                        ),
                    ));
                }
                if n < msg.len() {
                    // Byte pipes in non-blocking mode may take part.
                    return (&*conn).write_rest(&msg[n..]);
                }
                Ok(())
            }

            /// Writes many messages at once: each slice is one message on a
            /// message pipe (a run of bytes on a byte pipe), handed to the
            /// kernel with one `sendmsg` per up to 512 of them instead of
            /// one call each. The batch path for many small messages; the
            /// reader sees exactly what `write_msg` per slice would give.
            /// Returns how many were written: all of them, unless the handle
            /// is non-blocking (PIPE_NOWAIT) and the pipe filled up.
            ///
            /// # Errors
            /// `ERROR_NO_DATA (232)` when the other end has closed.
            ///
            /// ```
            /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-batch-{}", std::process::id())));
            /// use pipeslot::{blocking::{ClientOptions, ServerOptions}, PipeMode};
            /// const NAME: &str = r"\\.\pipe\doc-write-msgs";
            /// let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(NAME)?;
            /// let client = ClientOptions::new().pipe_mode(PipeMode::Message).open(NAME)?;
            /// assert_eq!(client.write_msgs(&[b"one", b"", b"three"])?, 3);
            /// let mut buf = [0u8; 16];
            /// for want in [&b"one"[..], b"", b"three"] {
            ///     let m = server.read_msg(&mut buf)?;
            ///     assert_eq!(&buf[..m.len], want);
            /// }
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<usize> {
                if let Some(r) = self.remote() {
                    for m in msgs {
                        r.write(m)?;
                    }
                    return Ok(msgs.len());
                }
                let conn = self.conn()?;
                let mut at = 0;
                while at < msgs.len() {
                    match conn.write_msgs(&msgs[at..]) {
                        Ok(n) => at += n,
                        Err(e) if at > 0 && is_retry(&e) => break,
                        Err(e) => return no_data(&conn, Err(e), self.nonblocking()),
                    }
                }
                Ok(at)
            }

            /// TransactNamedPipe: writes one message and reads one reply.
            ///
            /// # Errors
            /// `ERROR_BAD_PIPE (230)` unless this is a message pipe read in
            /// message mode; `ERROR_BROKEN_PIPE`/`ERROR_NO_DATA` when the
            /// other end has closed.
            ///
            /// ```
            /// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-tx-{}", std::process::id())));
            /// use pipeslot::blocking::{ClientOptions, ServerOptions};
            /// use pipeslot::PipeMode;
            /// let name = format!(r"\\.\pipe\doc-transact-{}", line!());
            /// let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name)?;
            /// let client = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name)?;
            /// let t = std::thread::spawn(move || -> std::io::Result<()> {
            ///     server.connect()?;
            ///     let mut buf = [0u8; 64];
            ///     let m = server.read_msg(&mut buf)?;
            ///     server.write_msg(&buf[..m.len].repeat(2))
            /// });
            /// let mut reply = [0u8; 64];
            /// let r = client.transact(b"ab", &mut reply)?;
            /// assert_eq!(&reply[..r.len], b"abab");
            /// t.join().unwrap()?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
                if let Some(r) = self.remote() {
                    return r.transact(msg, reply);
                }
                let conn = self.conn()?;
                transact_check(&conn)?;
                conn.write(msg)?;
                let mut filled = 0;
                conn.read_reply(reply, &mut filled)
            }

            /// PeekNamedPipe: copies what is readable without consuming it.
            ///
            /// # Errors
            /// `ERROR_BROKEN_PIPE (109)` when nothing is left and the other
            /// end has closed.
            pub fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
                if let Some(r) = self.remote() {
                    return r.peek(buf);
                }
                self.conn().map_err(nothing_to_peek)?.peek(buf)
            }

            /// FlushFileBuffers: returns once the other end has read everything
            /// written so far. (`io::Write::flush` does nothing, as for files.)
            pub fn flush_buffers(&self) -> io::Result<()> {
                if let Some(r) = self.remote() {
                    return r.flush();
                }
                self.conn()?.flush_blocking(None).map(drop)
            }

            /// FlushFileBuffers with a bound: `Ok(true)` once the other end has
            /// read everything, `Ok(false)` when `timeout` passed first. A
            /// server calls it before `disconnect`, which discards what the
            /// client has not read (Win32's rule), so a last reply is not lost.
            ///
            /// # Errors
            /// As [`flush_buffers`](Self::flush_buffers).
            pub fn flush_buffers_timeout(&self, timeout: Duration) -> io::Result<bool> {
                if let Some(r) = self.remote() {
                    return r.flush().map(|()| true);
                }
                self.conn()?.flush_blocking(Some(timeout))
            }

            /// SetNamedPipeHandleState: byte or message read mode.
            ///
            /// # Errors
            /// `ERROR_INVALID_PARAMETER (87)` for message mode on a byte pipe.
            pub fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
                self.apply_read_mode(mode)
            }

            /// GetNamedPipeHandleState (also on a server instance that has
            /// no client yet).
            pub fn handle_state(&self) -> io::Result<HandleState> {
                if let Some(r) = self.remote() {
                    return Ok(HandleState {
                        read_mode: r.read_mode(),
                        nonblocking: false,
                        instances: r.instances(),
                    });
                }
                Ok(HandleState {
                    read_mode: self.current_read_mode(),
                    nonblocking: self.nonblocking(),
                    instances: pipe::count_instances(&self.pipe_name())?,
                })
            }
        }

        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
        }

        impl Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if let Some(r) = self.remote() {
                    return Ok(r.read_msg(buf)?.map_or(0, |m| m.len));
                }
                let conn = self.conn()?;
                no_data(&conn, conn.read_stream(buf), self.nonblocking())
            }
        }

        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                (&*self).write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        impl Write for &$t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if let Some(r) = self.remote() {
                    return r.write(buf);
                }
                self.conn()?.write(buf)
            }
            /// A no-op, as std's `File::flush`; see `flush_buffers`.
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

pipe_io!(NamedPipeServer);
pipe_io!(NamedPipeClient);

/// ReadFile on a remote pipe: the end of the pipe is ERROR_BROKEN_PIPE, as
/// locally.
fn remote_read_msg(r: &RemotePipe, buf: &mut [u8]) -> io::Result<MsgRead> {
    r.read_msg(buf)?.ok_or_else(|| {
        err(
            Win32Error::ERROR_BROKEN_PIPE,
            format!("the pipe {} has been ended by its server", r.name()),
        )
    })
}

/// Maps a non-blocking "nothing there" to Win32's nowait answer.
fn no_data<T>(conn: &Conn, r: io::Result<T>, nonblocking: bool) -> io::Result<T> {
    match r {
        Err(e) if nonblocking && is_retry(&e) => Err(conn.no_data()),
        r => r,
    }
}

/// TransactNamedPipe's rules: the handle reads messages, and no message
/// waits unread on it (the reply could not be told from it); nothing is
/// written when either fails.
pub(crate) fn transact_check(conn: &Conn) -> io::Result<()> {
    if conn.read_mode() != PipeMode::Message {
        return Err(err(
            Win32Error::ERROR_BAD_PIPE,
            format!(
                "transact needs {} in message read mode (set_read_mode(PipeMode::Message))",
                conn.name()
            ),
        ));
    }
    conn.transact_gate()
}

/// PeekNamedPipe on a server instance with no client (none yet, or
/// disconnected): Win32 says the instance has no pipe to peek.
pub(crate) fn nothing_to_peek(e: io::Error) -> io::Error {
    match Error::win32(&e) {
        Some(Win32Error::ERROR_PIPE_LISTENING | Win32Error::ERROR_PIPE_NOT_CONNECTED) => err(
            Win32Error::ERROR_BAD_PIPE,
            format!("{e}: this instance has no client, so there is nothing to peek"),
        ),
        _ => e,
    }
}

trait WriteRest {
    fn write_rest(self, rest: &[u8]) -> io::Result<()>;
}

impl WriteRest for &Conn {
    fn write_rest(self, mut rest: &[u8]) -> io::Result<()> {
        while !rest.is_empty() {
            match self.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = rustix::event::poll(
                        &mut [rustix::event::PollFd::new(self, rustix::event::PollFlags::OUT)],
                        None,
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// CallNamedPipe: waits for an instance (up to `timeout`), opens the pipe in
/// message mode, sends `request`, reads one reply into `reply` and closes.
/// A reply longer than the buffer comes back cut with `more` set; the rest
/// is discarded, as in Win32.
///
/// # Errors
/// `ERROR_FILE_NOT_FOUND`, `ERROR_SEM_TIMEOUT` (no instance in time),
/// `ERROR_BAD_PIPE` (not a message pipe), `ERROR_BROKEN_PIPE`.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("pipeslot-doc-call-{}", std::process::id()));
/// # std::env::set_var("PIPESLOT_DIR", &dir);
/// use pipeslot::{blocking::{call_named_pipe, ServerOptions}, PipeMode, WaitTimeout};
/// const NAME: &str = r"\\.\pipe\doc-call";
/// let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(NAME)?;
/// let t = std::thread::spawn(move || {
///     server.connect().unwrap();
///     let mut buf = [0u8; 64];
///     let m = server.read_msg(&mut buf).unwrap();
///     server.write_msg(&buf[..m.len].to_ascii_uppercase()).unwrap();
/// });
/// let mut reply = [0u8; 64];
/// let r = call_named_pipe(NAME, b"ping", &mut reply, WaitTimeout::After(std::time::Duration::from_secs(5)))?;
/// assert_eq!(&reply[..r.len], b"PING");
/// t.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn call_named_pipe(
    name: impl AsRef<OsStr>,
    request: &[u8],
    reply: &mut [u8],
    timeout: WaitTimeout,
) -> io::Result<MsgRead> {
    let name = name.as_ref();
    let deadline = match timeout {
        WaitTimeout::After(d) => Some(Instant::now() + d),
        _ => None,
    };
    let client = loop {
        match ClientOptions::new().pipe_mode(PipeMode::Message).open(name) {
            Ok(c) => break c,
            Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_PIPE_BUSY) => {
                let left = match deadline {
                    Some(d) => WaitTimeout::After(d.saturating_duration_since(Instant::now())),
                    None => timeout,
                };
                pipe::wait_named_pipe(name, left)?;
            }
            Err(e) => return Err(e),
        }
    };
    client.transact(request, reply)
}
