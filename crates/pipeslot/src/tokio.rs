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

use std::os::fd::{AsFd, OwnedFd};

use crate::shm::ShmPath;

use crate::blocking::transact_check;
use crate::error::{err, is_retry, Win32Error};
use crate::pipe::conn::Conn;
use crate::pipe::{self, ConnectStep, HandleState, Instance, MsgRead, PeekInfo, Tokio};
use crate::security::{ClientIdentity, ServerIdentity};
use crate::WaitTimeout;

pub use crate::mailslot::tokio::{MailslotOptions, MailslotServer, MailslotWriter};
pub use crate::pipe::{PipeEnd, PipeInfo, PipeMode, UNLIMITED_INSTANCES};

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
    ///
    /// A remote name (`\\HOST\pipe\NAME`) is opened over SMB; that open
    /// blocks the calling thread while it connects and logs on (as
    /// CreateFile does), bounded by the connect and response timeouts.
    pub fn open(&self, addr: impl AsRef<OsStr>) -> io::Result<NamedPipeClient> {
        if let Some(r) = self.open_remote(addr.as_ref())? {
            return Ok(NamedPipeClient {
                info: r.info(),
                link: Link::Remote(Arc::new(RemoteIo::new(r))),
            });
        }
        let (conn, info) = self.open_conn(addr.as_ref())?;
        Ok(NamedPipeClient {
            link: Link::Local(Arc::new(Local::new(conn)?)),
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

/// A local connection as the reactor watches it.
#[derive(Debug)]
struct Local {
    sock: AsyncFd<Conn>,
    /// On the shared-memory path: this end's bell, which rings when data
    /// comes or the peer goes. Room for writes is signalled on the socket.
    bell: Option<AsyncFd<Arc<OwnedFd>>>,
}

impl Local {
    fn new(conn: Conn) -> io::Result<Local> {
        conn.set_nonblocking(true)?;
        let bell = match conn.shm() {
            Some(shm) => Some(crate::sys::register_bell(shm.for_reactor(conn.as_fd())?)?),
            None => None,
        };
        Ok(Local {
            sock: crate::sys::register(conn)?,
            bell,
        })
    }

    fn get_ref(&self) -> &Conn {
        self.sock.get_ref()
    }

    /// The shared-memory path and its bell, when the connection is on it.
    fn shm(&self) -> Option<(&ShmPath, &AsyncFd<Arc<OwnedFd>>)> {
        Some((self.get_ref().shm()?, self.bell.as_ref()?))
    }
}

type Io = Arc<Local>;
use crate::remote::tokio_io::RemoteIo;

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

    fn install(&self, fd: crate::pipe::acceptor::Accepted, ident: ClientIdentity) -> io::Result<Io> {
        let io = Arc::new(Local::new(self.inst.conn(fd))?);
        *lock(&self.conn) = Some(Arc::clone(&io));
        *lock(&self.client) = Some(ident);
        Ok(io)
    }

    /// DisconnectNamedPipe: ends the current client's connection, dropping
    /// what it had not read; [`connect`](Self::connect) listens again.
    pub fn disconnect(&self) -> io::Result<()> {
        self.inst.disconnect()?;
        if let Some(io) = lock(&self.conn).take() {
            io.get_ref().send_disconnect();
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

    fn remote(&self) -> Option<&RemoteIo> {
        None
    }

    fn io(&self) -> io::Result<Io> {
        if let Some(c) = lock(&self.conn).as_ref() {
            return Ok(Arc::clone(c));
        }
        let (fd, ident) = self.inst.adopt()?;
        self.install(fd, ident)
    }

    fn apply_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        self.inst.set_read_mode(mode)?;
        if let Some(c) = lock(&self.conn).as_ref() {
            c.get_ref().set_read_mode(mode)?;
        }
        Ok(())
    }

    fn current_read_mode(&self) -> PipeMode {
        self.inst.read_mode()
    }

    fn pipe_name(&self) -> String {
        self.inst.name().to_string()
    }
}

/// A client's end of a pipe (the handle CreateFile returns).
#[derive(Debug)]
pub struct NamedPipeClient {
    link: Link,
    info: PipeInfo,
}

/// This machine's pipe, or a server's over SMB.
#[derive(Debug)]
enum Link {
    Local(Io),
    Remote(Arc<RemoteIo>),
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
            Link::Local(c) => ServerIdentity::of_peer(c.get_ref().as_fd()),
            Link::Remote(r) => Err(ServerIdentity::remote(r.pipe.name())),
        }
    }

    /// GetNamedPipeServerProcessId.
    pub fn server_process_id(&self) -> io::Result<u32> {
        self.server_identity().map(|s| s.pid)
    }

    /// For remote pipes: the server, the SMB dialect and how the session is
    /// protected (`None` for local pipes).
    pub fn remote_session(&self) -> Option<crate::RemoteSession> {
        self.remote().map(|r| r.pipe.describe())
    }

    /// Ends a local pipe now: a read waiting on it returns, and the server
    /// sees the client gone (the gateway, when the remote client that owned
    /// it went away).
    pub(crate) fn abort(&self) {
        if let Link::Local(io) = &self.link {
            let _ = rustix::net::shutdown(io.get_ref(), rustix::net::Shutdown::Both);
        }
    }

    fn remote(&self) -> Option<&RemoteIo> {
        match &self.link {
            Link::Remote(r) => Some(r),
            Link::Local(_) => None,
        }
    }

    fn io(&self) -> io::Result<Io> {
        match &self.link {
            Link::Local(io) => Ok(Arc::clone(io)),
            Link::Remote(r) => Err(r.unsupported("this call")),
        }
    }

    fn apply_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        match &self.link {
            Link::Local(io) => io.get_ref().set_read_mode(mode),
            Link::Remote(r) => r.pipe.set_read_mode(mode),
        }
    }

    fn current_read_mode(&self) -> PipeMode {
        match &self.link {
            Link::Local(io) => io.get_ref().read_mode(),
            Link::Remote(r) => r.pipe.read_mode(),
        }
    }

    fn pipe_name(&self) -> String {
        match &self.link {
            Link::Local(io) => io.get_ref().name().to_owned(),
            Link::Remote(r) => r.pipe.name().to_owned(),
        }
    }
}

/// Fails at once when the handle's direction forbids what `interest` asks:
/// that readiness would never come.
fn check_direction(io: &Io, interest: Interest) -> io::Result<()> {
    if interest.is_readable() && !interest.is_writable() {
        io.get_ref().check_read()?;
    }
    if interest.is_writable() && !interest.is_readable() {
        io.get_ref().check_write()?;
    }
    Ok(())
}

/// A client's reads also wake on priority readiness: the server's
/// disconnect marker (see `Conn::send_disconnect`).
fn with_marker(io: &Io, interest: Interest) -> Interest {
    if interest == Interest::READABLE && io.get_ref().is_client_end() {
        interest | Interest::PRIORITY
    } else {
        interest
    }
}

/// Runs a non-blocking operation until it stops saying `WouldBlock`. Each
/// attempt runs under a readiness guard, so a `WouldBlock` clears exactly
/// the readiness it saw and the next wait parks at once: one failed syscall
/// per wait, as tokio's own sockets do (a bare attempt before each wait cost
/// two more whenever the readiness was stale). Bytes the frame reader holds
/// already are taken without waiting.
async fn retry<R>(io: &Io, interest: Interest, mut op: impl FnMut(&Conn) -> io::Result<R>) -> io::Result<R> {
    check_direction(io, interest)?;
    if let Some((shm, bell)) = io.shm() {
        return shm_retry(io, shm, bell, interest, op).await;
    }
    if interest == Interest::READABLE && io.get_ref().has_buffered() {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return r,
        }
    }
    let interest = with_marker(io, interest);
    loop {
        let mut guard = io.sock.ready(interest).await?;
        if guard.ready().is_priority() {
            io.get_ref().note_marker();
        }
        // The readiness just read includes priority: the read needs no poll
        // of its own for the marker.
        let r = crate::pipe::conn::reactor_checked(|| guard.try_io(|a| op(a.get_ref())));
        match r {
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
    check_direction(io, interest)?;
    if let Some((shm, bell)) = io.shm() {
        return shm_poll_retry(io, shm, bell, cx, interest, op);
    }
    if interest == Interest::READABLE && io.get_ref().has_buffered() {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return Poll::Ready(r),
        }
    }
    loop {
        // poll_read_ready knows nothing of priority readiness: these reads
        // ask the socket itself for the disconnect marker (one poll).
        let mut guard = if interest == Interest::READABLE {
            ready!(io.sock.poll_read_ready(cx))?
        } else {
            ready!(io.sock.poll_write_ready(cx))?
        };
        match guard.try_io(|a| op(a.get_ref())) {
            Ok(r) => return Poll::Ready(r),
            Err(_) => continue,
        }
    }
}

/// [`retry`] on the shared-memory path: an attempt; then the request for
/// the peer's bell and a second look (the wake-up may already have been
/// sent); then the wait. The flag is cleared by the side that rings it, so
/// any number of tasks may wait at once.
async fn shm_retry<R>(
    io: &Local,
    shm: &ShmPath,
    bell: &AsyncFd<Arc<OwnedFd>>,
    interest: Interest,
    mut op: impl FnMut(&Conn) -> io::Result<R>,
) -> io::Result<R> {
    let mut spun = false;
    loop {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return r,
        }
        // A read waiting while a message written earlier is still partly
        // out (it was larger than the ring) moves it on, or both sides
        // could wait for each other.
        let push = interest.is_readable() && shm.has_pending();
        if push {
            let _ = shm.drain_pending(io.get_ref().as_fd());
        }
        let room = interest.is_writable() || (push && shm.has_pending());
        // Once per call: a ring that holds part of a frame looks readable.
        if interest.is_readable() && !room && !spun {
            spun = true;
            if shm.spin_for_data() {
                continue;
            }
        }
        shm.park(interest.is_readable(), room);
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return r,
        }
        let wait = if room { interest | Interest::WRITABLE } else { interest };
        shm_wait(io, shm, bell, wait).await?;
    }
}

/// Waits for the bell (data, or the peer gone: the watcher thread rings it)
/// or for a room signal on the socket (which also wakes on the peer's end).
/// The readiness is cleared after the signal is taken and before the caller
/// looks again, so no wake-up falls between.
async fn shm_wait(io: &Local, shm: &ShmPath, bell: &AsyncFd<Arc<OwnedFd>>, interest: Interest) -> io::Result<()> {
    let (data, room) = (interest.is_readable(), interest.is_writable());
    tokio::select! {
        g = bell.readable(), if data => {
            let mut g = g?;
            shm.drain_bell();
            g.clear_ready();
        }
        g = io.sock.readable(), if room => {
            let mut g = g?;
            shm.drain_room_signals(io.get_ref().as_fd());
            g.clear_ready();
        }
        else => {}
    }
    Ok(())
}

/// [`shm_retry`] for the poll functions (one direction).
fn shm_poll_retry<R>(
    io: &Local,
    shm: &ShmPath,
    bell: &AsyncFd<Arc<OwnedFd>>,
    cx: &mut Context<'_>,
    interest: Interest,
    mut op: impl FnMut(&Conn) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    let mut spun = false;
    loop {
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return Poll::Ready(r),
        }
        let data = interest.is_readable();
        // As in shm_retry: a read moves an earlier message on.
        let push = data && shm.has_pending();
        if push {
            let _ = shm.drain_pending(io.get_ref().as_fd());
        }
        let room = !data || (push && shm.has_pending());
        if data && !room && !spun {
            spun = true;
            if shm.spin_for_data() {
                continue;
            }
        }
        shm.park(data, room);
        match op(io.get_ref()) {
            Err(e) if is_retry(&e) => {}
            r => return Poll::Ready(r),
        }
        ready!(shm_poll_wait(io, shm, bell, cx, data, room))?;
    }
}

/// One direction of [`shm_wait`] as a poll: `Ready` once the signal came
/// (and was taken).
fn shm_poll_wait(
    io: &Local,
    shm: &ShmPath,
    bell: &AsyncFd<Arc<OwnedFd>>,
    cx: &mut Context<'_>,
    data: bool,
    room: bool,
) -> Poll<io::Result<()>> {
    let mut woke = false;
    if data {
        if let Poll::Ready(g) = bell.poll_read_ready(cx) {
            let mut g = g?;
            shm.drain_bell();
            g.clear_ready();
            woke = true;
        }
    }
    if room {
        if let Poll::Ready(g) = io.sock.poll_read_ready(cx) {
            let mut g = g?;
            shm.drain_room_signals(io.get_ref().as_fd());
            g.clear_ready();
            woke = true;
        }
    }
    if woke {
        Poll::Ready(Ok(()))
    } else {
        Poll::Pending
    }
}

/// What the shared-memory path can do now, as tokio's `Ready`.
fn shm_ready_now(io: &Local, shm: &ShmPath, interest: Interest) -> Ready {
    let (readable, writable) = shm.readiness(io.get_ref().as_fd());
    let mut got = Ready::EMPTY;
    if readable && interest.is_readable() {
        got |= Ready::READABLE;
    }
    if writable && interest.is_writable() {
        got |= Ready::WRITABLE;
    }
    got
}

/// `ready` on the shared-memory path: looks, asks for the bell, looks
/// again, waits.
async fn shm_ready(io: &Local, shm: &ShmPath, bell: &AsyncFd<Arc<OwnedFd>>, interest: Interest) -> io::Result<Ready> {
    loop {
        let got = shm_ready_now(io, shm, interest);
        if !got.is_empty() {
            return Ok(got);
        }
        shm.park(interest.is_readable(), interest.is_writable());
        let got = shm_ready_now(io, shm, interest);
        if !got.is_empty() {
            return Ok(got);
        }
        shm_wait(io, shm, bell, interest).await?;
    }
}

/// `poll_read_ready` / `poll_write_ready` on the shared-memory path.
fn shm_poll_ready(
    io: &Local,
    shm: &ShmPath,
    bell: &AsyncFd<Arc<OwnedFd>>,
    cx: &mut Context<'_>,
    interest: Interest,
) -> Poll<io::Result<()>> {
    let data = interest.is_readable();
    loop {
        if !shm_ready_now(io, shm, interest).is_empty() {
            return Poll::Ready(Ok(()));
        }
        shm.park(data, !data);
        if !shm_ready_now(io, shm, interest).is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(shm_poll_wait(io, shm, bell, cx, data, !data))?;
    }
}

/// The set-up of the method examples below: a runtime, a namespace and a
/// connected message pipe (`pair(NAME)` gives the server and the client).
macro_rules! doc_setup {
    () => {
        r#"# let dir = std::env::temp_dir().join(format!("pipeslot-doc-tokio-io-{}", std::process::id()));
# std::env::set_var("PIPESLOT_DIR", &dir);
# use pipeslot::tokio::{ClientOptions, ServerOptions, PipeMode};
# const NAME: &str = concat!(r"\\.\pipe\doc-tokio-io-", line!());
# async fn pair(name: &str) -> std::io::Result<(pipeslot::tokio::NamedPipeServer, pipeslot::tokio::NamedPipeClient)> {
#     let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(name)?;
#     let client = ClientOptions::new().pipe_mode(PipeMode::Message).open(name)?;
#     server.connect().await?;
#     Ok((server, client))
# }
# tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {"#
    };
}

macro_rules! doc_end {
    () => {
        "# Ok::<(), std::io::Error>(())\n# }).unwrap();"
    };
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
                if let Some(r) = self.remote() {
                    return r.read_msg(buf).await?.ok_or_else(|| ended(r));
                }
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
                if let Some(r) = self.remote() {
                    return r.pipe.write_async(msg).await.map(drop);
                }
                let io = self.io()?;
                let mut at = 0;
                while at < msg.len() || (at == 0 && msg.is_empty()) {
                    let n = retry(&io, Interest::WRITABLE, |c| c.write(&msg[at..])).await?;
                    at += n;
                    if msg.is_empty() {
                        break;
                    }
                }
                // All of it handed on, not parked in the pending buffer: a
                // read that follows would not move it.
                retry(&io, Interest::WRITABLE, |c| c.drain_pending()).await
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
                if let Some(r) = self.remote() {
                    for m in msgs {
                        r.pipe.write_async(m).await?;
                    }
                    return Ok(());
                }
                let io = self.io()?;
                let mut at = 0;
                while at < msgs.len() {
                    at += retry(&io, Interest::WRITABLE, |c| c.write_msgs(&msgs[at..])).await?;
                }
                retry(&io, Interest::WRITABLE, |c| c.drain_pending()).await
            }

            /// TransactNamedPipe: writes one message and reads one reply.
            ///
            /// # Errors
            /// `ERROR_BAD_PIPE (230)` unless the handle reads messages.
            ///
            /// # Cancel safety
            /// Not cancel safe once the request is written.
            pub async fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
                if let Some(r) = self.remote() {
                    return r.pipe.transact_async(msg, reply).await;
                }
                transact_check(self.io()?.get_ref())?;
                self.write_msg(msg).await?;
                self.read_msg(reply).await
            }

            /// PeekNamedPipe: what is readable now, without consuming it.
            ///
            /// # Errors
            /// `ERROR_BAD_PIPE (230)` on a server instance no client has opened.
            pub fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
                if let Some(r) = self.remote() {
                    // One FSCTL round trip, waited for on this thread.
                    return r.pipe.peek(buf);
                }
                self.io()
                    .map_err(crate::blocking::nothing_to_peek)?
                    .get_ref()
                    .peek(buf)
            }

            /// FlushFileBuffers: resolves once the other end has read
            /// everything written so far. Needs the runtime's time driver.
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn flush_buffers(&self) -> io::Result<()> {
                if let Some(r) = self.remote() {
                    return r.pipe.flush_async().await;
                }
                let io = self.io()?;
                let mut backoff = std::time::Duration::from_micros(20);
                while !io.get_ref().flush_step()? {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_millis(5));
                }
                Ok(())
            }

            /// SetNamedPipeHandleState: byte or message read mode.
            ///
            /// # Errors
            /// `ERROR_INVALID_PARAMETER (87)` for message mode on a byte pipe.
            pub fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
                self.apply_read_mode(mode)
            }

            /// GetNamedPipeHandleState (also on a server instance that has no
            /// client yet; the handle is never PIPE_NOWAIT, waits are async).
            pub fn handle_state(&self) -> io::Result<HandleState> {
                if let Some(r) = self.remote() {
                    return Ok(HandleState {
                        read_mode: r.pipe.read_mode(),
                        nonblocking: false,
                        instances: r.pipe.instances(),
                    });
                }
                Ok(HandleState {
                    read_mode: self.current_read_mode(),
                    nonblocking: false,
                    instances: pipe::count_instances(&self.pipe_name())?,
                })
            }

            /// Waits for any of the requested readiness.
            ///
            /// # Errors
            /// `ERROR_ACCESS_DENIED (5)` at once when the handle may not do
            /// what it waits for (readable on an end that may not read).
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                if let Some(r) = self.remote() {
                    return r.ready(interest).await;
                }
                let io = self.io()?;
                check_direction(&io, interest)?;
                if let Some((shm, bell)) = io.shm() {
                    return shm_ready(&io, shm, bell, interest).await;
                }
                let guard = io.sock.ready(interest).await?;
                Ok(guard.ready())
            }

            /// Polls for read readiness, as tokio's `poll_read_ready`: `Ready(Ok(()))`
            /// once the pipe may be readable (a later read may still give
            /// `WouldBlock`), registering `cx` to be woken otherwise.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// client.write_msg(b"x").await?;
            /// std::future::poll_fn(|cx| server.poll_read_ready(cx)).await?;
            /// let mut buf = [0u8; 1];
            /// assert_eq!(server.try_read(&mut buf)?, 1);
            #[doc = doc_end!()]
            /// ```
            pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                if let Some(r) = self.remote() {
                    return r.poll_fill(cx).map_ok(drop);
                }
                let io = self.io()?;
                check_direction(&io, Interest::READABLE)?;
                if let Some((shm, bell)) = io.shm() {
                    return shm_poll_ready(&io, shm, bell, cx, Interest::READABLE);
                }
                if io.get_ref().has_buffered() {
                    return Poll::Ready(Ok(()));
                }
                io.sock.poll_read_ready(cx).map_ok(|_| ())
            }

            /// Polls for write readiness, as tokio's `poll_write_ready`.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// std::future::poll_fn(|cx| client.poll_write_ready(cx)).await?;
            /// assert_eq!(client.try_write(b"hi")?, 2);
            /// let mut buf = [0u8; 2];
            /// let m = server.read_msg(&mut buf).await?;
            /// assert_eq!(&buf[..m.len], b"hi");
            #[doc = doc_end!()]
            /// ```
            pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                if self.remote().is_some() {
                    return Poll::Ready(Ok(()));
                }
                let io = self.io()?;
                check_direction(&io, Interest::WRITABLE)?;
                if let Some((shm, bell)) = io.shm() {
                    return shm_poll_ready(&io, shm, bell, cx, Interest::WRITABLE);
                }
                io.sock.poll_write_ready(cx).map_ok(|_| ())
            }

            /// Reads into several buffers without waiting, as tokio's
            /// `try_read_vectored`: `WouldBlock` when nothing is there. In
            /// message read mode one call reads at most one message (into the
            /// first non-empty buffer), so boundaries are kept.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// client.write_msg(b"hello").await?;
            /// server.readable().await?;
            /// let (mut a, mut b) = ([0u8; 2], [0u8; 8]);
            /// let n = server.try_read_vectored(&mut [std::io::IoSliceMut::new(&mut a), std::io::IoSliceMut::new(&mut b)])?;
            /// assert_eq!((n, &a, &b[..3]), (5, b"he", &b"llo"[..]));
            #[doc = doc_end!()]
            /// ```
            pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                if let Some(r) = self.remote() {
                    return match bufs.iter_mut().find(|b| !b.is_empty()) {
                        Some(b) => r.try_read(b),
                        None => Ok(0),
                    };
                }
                let io = self.io()?;
                check_direction(&io, Interest::READABLE)?;
                if io.get_ref().has_buffered() || io.bell.is_some() {
                    return io.get_ref().read_vectored(bufs);
                }
                io.sock.try_io(Interest::READABLE, |c| c.read_vectored(bufs))
            }

            /// Reads into a [`bytes::BufMut`] without waiting, as tokio's
            /// `try_read_buf`: advances the buffer by what was read.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// client.write_msg(b"abc").await?;
            /// server.readable().await?;
            /// let mut buf = Vec::with_capacity(16);
            /// assert_eq!(server.try_read_buf(&mut buf)?, 3);
            /// assert_eq!(buf, b"abc");
            #[doc = doc_end!()]
            /// ```
            pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
                // Read through a scratch buffer: filling `buf`'s uninitialised
                // tail in place would need unsafe code.
                let mut scratch = vec![0u8; buf.remaining_mut().min(64 << 10)];
                let n = self.try_read(&mut scratch)?;
                buf.put_slice(&scratch[..n]);
                Ok(n)
            }

            /// Writes several buffers without waiting, as tokio's
            /// `try_write_vectored`. On a message pipe they form one message.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// client.writable().await?;
            /// let n = client.try_write_vectored(&[std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")])?;
            /// assert_eq!(n, 4);
            /// let mut buf = [0u8; 8];
            /// let m = server.read_msg(&mut buf).await?;
            /// assert_eq!(&buf[..m.len], b"abcd", "one message");
            #[doc = doc_end!()]
            /// ```
            pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                let io = self.io()?;
                check_direction(&io, Interest::WRITABLE)?;
                if io.bell.is_some() {
                    return io.get_ref().write_vectored(bufs);
                }
                io.sock.try_io(Interest::WRITABLE, |c| c.write_vectored(bufs))
            }

            /// Runs `f` when the pipe is ready for `interest`, as tokio's
            /// `try_io`: `f` does its own I/O (e.g. on
            /// [`as_raw_fd`](std::os::fd::AsRawFd::as_raw_fd)) and returns
            /// `WouldBlock` when the pipe was not ready after all, which clears
            /// the readiness. Raw reads and writes bypass message framing:
            /// use them on byte pipes.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// client.write_msg(b"x").await?;
            /// server.readable().await?;
            /// let n = server.try_io(tokio::io::Interest::READABLE, || server.try_read(&mut [0u8; 4]))?;
            /// assert_eq!(n, 1);
            #[doc = doc_end!()]
            /// ```
            pub fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                let io = self.io()?;
                check_direction(&io, interest)?;
                if io.bell.is_some() {
                    return f();
                }
                io.sock.try_io(interest, |_| f())
            }

            /// Waits for `interest` and runs `f` until it stops saying
            /// `WouldBlock`, as tokio's `async_io`.
            ///
            /// ```
            #[doc = doc_setup!()]
            /// let (server, client) = pair(NAME).await?;
            /// let t = tokio::spawn(async move { client.write_msg(b"later").await });
            /// let mut buf = [0u8; 8];
            /// let n = server.async_io(tokio::io::Interest::READABLE, || server.try_read(&mut buf)).await?;
            /// assert_eq!(&buf[..n], b"later");
            /// t.await.unwrap()?;
            #[doc = doc_end!()]
            /// ```
            ///
            /// # Cancel safety
            /// As cancel safe as `f`.
            pub async fn async_io<R>(&self, interest: Interest, mut f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
                let io = self.io()?;
                check_direction(&io, interest)?;
                if let Some((shm, bell)) = io.shm() {
                    return shm_retry(&io, shm, bell, interest, |_| f()).await;
                }
                io.sock.async_io(interest, |_| f()).await
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
            ///
            /// # Errors
            /// `ERROR_ACCESS_DENIED (5)` when this end may not read.
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                if let Some(r) = self.remote() {
                    return r.try_read(buf);
                }
                let io = self.io()?;
                check_direction(&io, Interest::READABLE)?;
                if io.get_ref().has_buffered() || io.bell.is_some() {
                    return io.get_ref().read_stream(buf);
                }
                io.sock.try_io(Interest::READABLE, |c| c.read_stream(buf))
            }

            /// Writes without waiting (`WouldBlock` if the pipe is full).
            ///
            /// # Errors
            /// `ERROR_ACCESS_DENIED (5)` when this end may not write.
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                let io = self.io()?;
                check_direction(&io, Interest::WRITABLE)?;
                if io.bell.is_some() {
                    return io.get_ref().write(buf);
                }
                io.sock.try_io(Interest::WRITABLE, |c| c.write(buf))
            }
        }

        impl AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                if let Some(r) = self.remote() {
                    let n = ready!(r.poll_read(cx, buf.initialize_unfilled()))?;
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                let io = self.io()?;
                let unfilled = buf.initialize_unfilled();
                let n = ready!(poll_retry(&io, cx, Interest::READABLE, |c| c.read_stream(unfilled)))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                if let Some(r) = self.remote() {
                    return r.poll_write(cx, buf);
                }
                let io = self.io()?;
                poll_retry(&io, cx, Interest::WRITABLE, |c| c.write(buf))
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                if self.remote().is_some() {
                    return Poll::Ready(Ok(()));
                }
                let io = self.io()?;
                poll_retry(&io, cx, Interest::WRITABLE, |c| c.drain_pending())
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                if self.remote().is_some() {
                    return Poll::Ready(Ok(()));
                }
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

/// The pipe's socket; for a remote pipe, the SMB connection's (shared by
/// every pipe to that server: poll it, never read or write it).
impl std::os::fd::AsRawFd for NamedPipeClient {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl std::os::fd::AsFd for NamedPipeClient {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.link {
            Link::Local(io) => io.get_ref().as_fd(),
            Link::Remote(r) => r.pipe.connection_fd(),
        }
    }
}

/// ReadFile's answer once a remote pipe's server has ended it.
fn ended(r: &RemoteIo) -> io::Error {
    err(
        Win32Error::ERROR_BROKEN_PIPE,
        format!("the pipe {} has been ended by its server", r.pipe.name()),
    )
}
