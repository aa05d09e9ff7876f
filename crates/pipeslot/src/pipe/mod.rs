//! The named-pipe model: one core shared by the blocking and tokio front ends.
//!
//! - [`ServerOptions`] / [`ClientOptions`]: the options of CreateNamedPipe and
//!   CreateFile, shaped like tokio's (`&mut self` setters, `create`/`open`).
//!   The front end is a type parameter, so both share one set of setters:
//!   `pipeslot::blocking::ServerOptions` and `pipeslot::tokio::ServerOptions`
//!   are the same builder with a different `create`.
//! - `acceptor`: the per-process thread that answers clients (busy, wait).
//! - `client`: open, wait and census from the client side.
//! - `conn`: one connected end's I/O; `frame`: message framing.

pub(crate) mod acceptor;
pub(crate) mod client;
pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod home;

use std::ffi::OsStr;
use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipeslot_proto::wire::local::Reply;
use pipeslot_proto::PipeName;

use crate::error::{err, Win32Error};
use crate::ns;
use crate::security::{ClientIdentity, PipeSecurity};
use acceptor::{Accepted, Acceptor, InstanceConfig, SlotState};
pub use client::WaitTimeout;
use conn::Conn;
use home::Home;

/// Byte or message: a pipe's type (PIPE_TYPE_*) or a handle's read mode
/// (PIPE_READMODE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeMode {
    /// A stream of bytes (PIPE_TYPE_BYTE / PIPE_READMODE_BYTE).
    Byte,
    /// Each write is one message, and reads keep the boundaries
    /// (PIPE_TYPE_MESSAGE / PIPE_READMODE_MESSAGE).
    Message,
}

/// Which end of a pipe a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipeEnd {
    /// The end opened by a client (CreateFile).
    Client,
    /// An instance made by the server (CreateNamedPipe).
    Server,
}

/// GetNamedPipeInfo: what a pipe is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeInfo {
    /// The pipe's type.
    pub mode: PipeMode,
    /// Which end this handle is.
    pub end: PipeEnd,
    /// The first instance's limit; 255 means unlimited (PIPE_UNLIMITED_INSTANCES).
    pub max_instances: u32,
    /// The server's output buffer size.
    pub out_buffer_size: u32,
    /// The server's input buffer size.
    pub in_buffer_size: u32,
}

/// GetNamedPipeHandleState: how a handle reads and how many instances exist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandleState {
    /// The handle's read mode.
    pub read_mode: PipeMode,
    /// PIPE_NOWAIT: reads return at once when nothing is there.
    pub nonblocking: bool,
    /// Instances of the pipe across every serving process.
    pub instances: u32,
}

/// The result of a message read: how many bytes, and whether the message
/// goes on (Win32's `ERROR_MORE_DATA (234)`, which is not an error here: the
/// rest comes with the next read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgRead {
    /// Bytes placed in the buffer.
    pub len: usize,
    /// The message continues past the buffer.
    pub more: bool,
}

/// PeekNamedPipe: what could be read now, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeekInfo {
    /// Bytes copied into the caller's buffer (from the next message only, on
    /// message pipes).
    pub read: usize,
    /// Data bytes available in total (all queued messages).
    pub available: usize,
    /// Bytes of the next message beyond what was copied (0 on byte pipes).
    pub left_in_message: usize,
}

/// PIPE_ACCESS_*: the direction data flows, seen from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Inbound,
    Outbound,
    Duplex,
}

impl Access {
    pub(crate) fn bits(self) -> u8 {
        match self {
            Access::Inbound => 1,
            Access::Outbound => 2,
            Access::Duplex => 3,
        }
    }
    pub(crate) fn from_bits(b: u8) -> Option<Access> {
        match b {
            1 => Some(Access::Inbound),
            2 => Some(Access::Outbound),
            3 => Some(Access::Duplex),
            _ => None,
        }
    }
    /// The server reads (client → server).
    pub(crate) fn inbound(self) -> bool {
        self.bits() & 1 != 0
    }
    /// The server writes (server → client).
    pub(crate) fn outbound(self) -> bool {
        self.bits() & 2 != 0
    }
}

/// Marker: the blocking front end.
#[derive(Debug, Clone, Copy)]
pub struct Blocking;

/// Marker: the tokio front end.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

/// PIPE_UNLIMITED_INSTANCES.
pub const UNLIMITED_INSTANCES: usize = 255;

/// The options of CreateNamedPipe. Start from [`ServerOptions::new`], set
/// what differs, then `create` an instance; call `create` again with the same
/// options for each further instance.
///
/// The defaults are tokio's: duplex, byte mode, unlimited instances, 64 KiB
/// buffers, remote clients rejected; plus owner-only access control and a
/// 50 ms default timeout.
#[derive(Debug, Clone)]
pub struct ServerOptions<F = Blocking> {
    access_inbound: bool,
    access_outbound: bool,
    pipe_mode: PipeMode,
    read_mode: Option<PipeMode>,
    first_pipe_instance: bool,
    reject_remote_clients: bool,
    max_instances: usize,
    out_buffer_size: u32,
    in_buffer_size: u32,
    default_timeout: Duration,
    security: PipeSecurity,
    shared_memory: Option<bool>,
    _front: PhantomData<fn() -> F>,
}

impl<F> Default for ServerOptions<F> {
    fn default() -> Self {
        ServerOptions::new()
    }
}

impl<F> ServerOptions<F> {
    /// Default options (see the type's docs).
    pub fn new() -> ServerOptions<F> {
        ServerOptions {
            access_inbound: true,
            access_outbound: true,
            pipe_mode: PipeMode::Byte,
            read_mode: None,
            first_pipe_instance: false,
            reject_remote_clients: true,
            max_instances: UNLIMITED_INSTANCES,
            out_buffer_size: 65536,
            in_buffer_size: 65536,
            default_timeout: Duration::ZERO,
            security: PipeSecurity::owner_only(),
            shared_memory: None,
            _front: PhantomData,
        }
    }

    /// The pipe's type, and the server's read mode with it (PIPE_TYPE_MESSAGE
    /// and PIPE_READMODE_MESSAGE, as tokio does).
    pub fn pipe_mode(&mut self, mode: PipeMode) -> &mut Self {
        self.pipe_mode = mode;
        self
    }

    /// The server's read mode alone (PIPE_READMODE_*): a message pipe may be
    /// read as bytes. A byte pipe cannot be read as messages.
    pub fn read_mode(&mut self, mode: PipeMode) -> &mut Self {
        self.read_mode = Some(mode);
        self
    }

    /// PIPE_ACCESS_INBOUND: clients may write to the server.
    pub fn access_inbound(&mut self, allowed: bool) -> &mut Self {
        self.access_inbound = allowed;
        self
    }

    /// PIPE_ACCESS_OUTBOUND: the server may write to clients.
    pub fn access_outbound(&mut self, allowed: bool) -> &mut Self {
        self.access_outbound = allowed;
        self
    }

    /// FILE_FLAG_FIRST_PIPE_INSTANCE: fail with `ERROR_ACCESS_DENIED` if the
    /// name already exists.
    pub fn first_pipe_instance(&mut self, first: bool) -> &mut Self {
        self.first_pipe_instance = first;
        self
    }

    /// Whether this instance's connections may take the shared-memory data
    /// path when the client offers it (default: yes, unless
    /// `PIPESLOT_SHM=0`). The bytes then go through two rings in memory both
    /// processes map, not through the kernel's socket buffers; everything
    /// else is the same, in both front ends. Off, they take the socket
    /// path, where a flush cannot see what the reader has taken ahead
    /// (docs/PORTING.md).
    pub fn shared_memory(&mut self, on: bool) -> &mut Self {
        self.shared_memory = Some(on);
        self
    }

    /// PIPE_REJECT_REMOTE_CLIENTS (default true): clients that come through
    /// the gateway from another machine get `ERROR_ACCESS_DENIED`.
    pub fn reject_remote_clients(&mut self, reject: bool) -> &mut Self {
        self.reject_remote_clients = reject;
        self
    }

    /// nMaxInstances: 1..=254 (0 is refused by `create` with
    /// `ERROR_INVALID_PARAMETER`). The default is unlimited; ask for it again
    /// with [`unlimited_instances`](Self::unlimited_instances).
    ///
    /// # Panics
    /// For 255 or more, as tokio's does ("cannot specify more than 254
    /// instances"): 255 is PIPE_UNLIMITED_INSTANCES in Win32, and an
    /// accidental "unlimited" is worth a loud failure.
    pub fn max_instances(&mut self, instances: usize) -> &mut Self {
        assert!(instances < 255, "cannot specify more than 254 instances");
        self.max_instances = instances;
        self
    }

    /// PIPE_UNLIMITED_INSTANCES (the default): no limit on instances.
    pub fn unlimited_instances(&mut self) -> &mut Self {
        self.max_instances = UNLIMITED_INSTANCES;
        self
    }

    /// WRITE_DAC, as tokio's setter: accepted so ported code compiles. It
    /// does nothing here: a pipe's [`PipeSecurity`] is fixed at creation
    /// and no handle can rewrite it later.
    pub fn write_dac(&mut self, _requested: bool) -> &mut Self {
        self
    }

    /// WRITE_OWNER, as tokio's setter: does nothing here (a name's owner is
    /// its first creator, for the name's whole life).
    pub fn write_owner(&mut self, _requested: bool) -> &mut Self {
        self
    }

    /// ACCESS_SYSTEM_SECURITY, as tokio's setter: does nothing here (there
    /// is no SACL; `tracing` logs refusals instead of an audit log).
    pub fn access_system_security(&mut self, _requested: bool) -> &mut Self {
        self
    }

    /// nOutBufferSize: how much the server may have written that the client
    /// has not read before writes wait.
    pub fn out_buffer_size(&mut self, buffer: u32) -> &mut Self {
        self.out_buffer_size = buffer;
        self
    }

    /// nInBufferSize: the same for the client's writes.
    pub fn in_buffer_size(&mut self, buffer: u32) -> &mut Self {
        self.in_buffer_size = buffer;
        self
    }

    /// nDefaultTimeOut: what a client's wait with [`WaitTimeout::Default`]
    /// waits. Zero means 50 ms, as in Win32.
    pub fn default_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.default_timeout = timeout;
        self
    }

    /// lpSecurityAttributes: who may open the pipe (default: owner only).
    pub fn security(&mut self, security: PipeSecurity) -> &mut Self {
        self.security = security;
        self
    }

    fn config(&self, name: &PipeName) -> io::Result<InstanceConfig> {
        let access = match (self.access_inbound, self.access_outbound) {
            (true, true) => Access::Duplex,
            (true, false) => Access::Inbound,
            (false, true) => Access::Outbound,
            (false, false) => {
                return Err(err(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    format!("{name}: a pipe must be inbound, outbound or both"),
                ))
            }
        };
        if self.max_instances == 0 || self.max_instances > UNLIMITED_INSTANCES {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{name}: max instances must be 1..=254 or 255 (unlimited)"),
            ));
        }
        if self.pipe_mode == PipeMode::Byte && self.read_mode == Some(PipeMode::Message) {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{name}: a byte pipe cannot be read in message mode"),
            ));
        }
        Ok(InstanceConfig {
            pipe_mode: self.pipe_mode,
            access,
            max_instances: self.max_instances as u8,
            in_buffer: self.in_buffer_size,
            out_buffer: self.out_buffer_size,
            default_timeout_ms: u32::try_from(self.default_timeout.as_millis()).unwrap_or(u32::MAX),
            reject_remote: self.reject_remote_clients,
            shm: false,
        })
    }

    /// CreateNamedPipe, front-end independent.
    pub(crate) fn create_instance(&self, addr: &OsStr) -> io::Result<Instance> {
        let name = parse_name(addr)?;
        if !name.is_local() {
            return Err(err(
                Win32Error::ERROR_INVALID_NAME,
                format!(r"{name}: a pipe can only be created on this machine (\\.\pipe\NAME)"),
            ));
        }
        let mut config = self.config(&name)?;
        config.shm = self.shared_memory.unwrap_or_else(crate::shm::enabled);
        let read_mode = self.read_mode.unwrap_or(self.pipe_mode);
        let mut reg = acceptor::registry_lock();
        if let Some(inst) = self.add_to_unlimited(&reg, &name, config, read_mode) {
            return Ok(inst);
        }
        let what = name.to_string();
        let mine = Acceptor::find(&reg, name.folded());
        let mut tries = 0;
        let (home, lock) = loop {
            crate::ns::race_pause(tries);
            tries += 1;
            // A process that serves the name already keeps its place.
            let home = match &mine {
                Some(a) => Arc::clone(a.home()),
                None => Arc::new(Home::claim(&name)?),
            };
            let locked = home.lock().map_err(|e| {
                // A full file system can fail the lock file of a folder just
                // made: the empty folder goes (rmdir takes only an empty one).
                if mine.is_none() {
                    home.obj.root.remove_dir(&home.obj.entry);
                }
                ns::dir_error(&e, &what)
            })?;
            match locked {
                Some(lock) => break (home, lock),
                None if tries < crate::ns::RACE_TRIES && mine.is_none() => continue, // its last server removed it: again
                None => {
                    return Err(err(
                        Win32Error::ERROR_GEN_FAILURE,
                        format!("{what}: its namespace folder keeps changing"),
                    ))
                }
            }
        };
        // Until the instance exists, a failure (a full file system, a
        // refusal) takes back what this create wrote in the folder; what
        // other servers hold stays (`tidy` checks).
        // The lock is held to the end, success or not.
        struct Undo(Option<Arc<Home>>, ns::DirLock);
        impl Drop for Undo {
            fn drop(&mut self) {
                if let Some(home) = self.0.take() {
                    home.tidy(&mut self.1);
                }
            }
        }
        let mut undo = Undo(mine.is_none().then(|| Arc::clone(&home)), lock);
        let (mut total, mut first) = (0u32, None::<(Access, u8)>);
        if let Some((cfg, n)) = mine.as_ref().and_then(|a| a.census()) {
            total += n;
            first = Some((cfg.access, cfg.max_instances));
        }
        let own = mine.as_ref().map(|a| a.socket_name());
        let dirs = client::PipeDirs::load(Arc::clone(&home.obj));
        let why = client::Census::Create { own, home: home.dir() };
        for r in client::census_dir(&name, &dirs, why)? {
            if r.status == pipeslot_proto::wire::local::ReplyStatus::ACCESS_DENIED {
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!(
                        "{name} is served by another user's process (pid {}); only its owner may add instances",
                        r.server_pid
                    ),
                ));
            }
            total += r.instances;
            if first.is_none() && r.instances > 0 {
                first = Access::from_bits(r.access).map(|a| (a, r.max_instances));
            }
        }
        match first {
            Some(_) if self.first_pipe_instance => {
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!("{name} already exists (first pipe instance was required)"),
                ))
            }
            Some((access, _)) if access != config.access => {
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!("{name} exists with another direction (inbound/outbound/duplex)"),
                ))
            }
            Some((_, max)) if usize::from(max) != UNLIMITED_INSTANCES && total >= u32::from(max) => {
                return Err(err(
                    Win32Error::ERROR_PIPE_BUSY,
                    format!("{name} already has its maximum of {max} instances"),
                ))
            }
            Some(_) => {}
            None => home
                .record_first(&what, &self.security)
                .map_err(|e| ns::dir_error(&e, &what))?,
        }
        let (acc, id) = match mine.as_ref().and_then(|a| a.add(config).map(|id| (Arc::clone(a), id))) {
            Some(found) => found,
            None => {
                let first = first.unwrap_or((config.access, config.max_instances));
                let acc = Acceptor::start(&mut reg, &name, home, self.security.clone(), first)
                    .map_err(|e| ns::dir_error(&e, &name.to_string()))?;
                let id = acc
                    .add(config)
                    .ok_or_else(|| err(Win32Error::ERROR_GEN_FAILURE, format!("{name}: acceptor closed")))?;
                (acc, id)
            }
        };
        undo.0 = None;
        Ok(Instance {
            acc,
            id,
            name,
            config,
            read_mode: Mutex::new(read_mode),
        })
    }
}

impl<F> ServerOptions<F> {
    /// The common case of the Win32 server loop, without touching the disk:
    /// this process already serves the name, the pipe has no instance limit
    /// and this instance keeps its direction, so no other process's count
    /// or permission can change the answer.
    fn add_to_unlimited(
        &self,
        reg: &std::collections::HashMap<String, std::sync::Weak<Acceptor>>,
        name: &PipeName,
        config: InstanceConfig,
        read_mode: PipeMode,
    ) -> Option<Instance> {
        if self.first_pipe_instance {
            return None;
        }
        let acc = Acceptor::find(reg, name.folded())?;
        let (access, max) = acc.first();
        if access != config.access || usize::from(max) != UNLIMITED_INSTANCES {
            return None;
        }
        let id = acc.add(config)?;
        Some(Instance {
            acc,
            id,
            name: name.clone(),
            config,
            read_mode: Mutex::new(read_mode),
        })
    }
}

fn parse_name(addr: &OsStr) -> io::Result<PipeName> {
    let s = addr
        .to_str()
        .ok_or_else(|| err(Win32Error::ERROR_INVALID_NAME, format!("{addr:?} is not valid Unicode")))?;
    crate::error::pipe_name(s)
}

/// One server instance, front-end independent: its slot in the acceptor.
#[derive(Debug)]
pub(crate) struct Instance {
    acc: Arc<Acceptor>,
    id: usize,
    name: PipeName,
    config: InstanceConfig,
    /// The handle's read mode: it outlives each client (SetNamedPipeHandleState
    /// before a client comes, or between clients, holds for the next).
    read_mode: Mutex<PipeMode>,
}

/// What a connect step found.
pub(crate) enum ConnectStep {
    /// No client yet: wait for a change.
    Wait,
    /// A client: build the connection from this socket.
    Took(Accepted, ClientIdentity),
    /// The client was already picked up by an earlier read or write.
    Ready,
}

impl Instance {
    pub(crate) fn name(&self) -> &PipeName {
        &self.name
    }

    pub(crate) fn acceptor(&self) -> &Arc<Acceptor> {
        &self.acc
    }

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn info(&self) -> PipeInfo {
        PipeInfo {
            mode: self.config.pipe_mode,
            end: PipeEnd::Server,
            max_instances: u32::from(self.config.max_instances),
            out_buffer_size: self.config.out_buffer,
            in_buffer_size: self.config.in_buffer,
        }
    }

    /// One step of ConnectNamedPipe.
    pub(crate) fn connect_step(&self) -> io::Result<ConnectStep> {
        let mut s = self.acc.lock();
        let state = s.state_mut(self.id);
        match state {
            SlotState::Listening => Ok(ConnectStep::Wait),
            SlotState::Idle => {
                s.listen(self.id);
                drop(s);
                self.acc.poke_waiters();
                Ok(ConnectStep::Wait)
            }
            SlotState::Connected { acknowledged: true } => Err(err(
                Win32Error::ERROR_PIPE_CONNECTED,
                format!("this instance of {} is already connected to a client", self.name),
            )),
            SlotState::Connected { acknowledged } => {
                *acknowledged = true;
                Ok(ConnectStep::Ready)
            }
            SlotState::Pending(..) => match std::mem::replace(state, SlotState::Connected { acknowledged: true }) {
                SlotState::Pending(fd, ident) => Ok(ConnectStep::Took(fd, ident)),
                _ => unreachable!("matched Pending above"),
            },
        }
    }

    /// Waits (blocking) for the next change of this instance's slot.
    pub(crate) fn wait_blocking(&self, timeout: Duration) {
        let g = self.acc.lock();
        if g.is_listening(self.id) {
            drop(self.acc.wait_change(g, self.id, timeout));
        }
    }

    /// A read or write before connect: take a waiting client, or say why not.
    pub(crate) fn adopt(&self) -> io::Result<(Accepted, ClientIdentity)> {
        let mut s = self.acc.lock();
        let state = s.state_mut(self.id);
        match state {
            SlotState::Pending(..) => match std::mem::replace(state, SlotState::Connected { acknowledged: false }) {
                SlotState::Pending(fd, ident) => Ok((fd, ident)),
                _ => unreachable!("matched Pending above"),
            },
            SlotState::Listening => Err(err(
                Win32Error::ERROR_PIPE_LISTENING,
                format!("this instance of {} is waiting for a client", self.name),
            )),
            _ => Err(self.not_connected()),
        }
    }

    pub(crate) fn not_connected(&self) -> io::Error {
        err(
            Win32Error::ERROR_PIPE_NOT_CONNECTED,
            format!("this instance of {} is not connected (call connect)", self.name),
        )
    }

    /// DisconnectNamedPipe, slot side.
    pub(crate) fn disconnect(&self) -> io::Result<()> {
        let mut s = self.acc.lock();
        let state = s.state_mut(self.id);
        match state {
            SlotState::Listening => Err(err(
                Win32Error::ERROR_PIPE_LISTENING,
                format!("this instance of {} has no client to disconnect", self.name),
            )),
            SlotState::Idle => Err(self.not_connected()),
            _ => {
                *state = SlotState::Idle;
                Ok(())
            }
        }
    }

    /// The handle's read mode.
    pub(crate) fn read_mode(&self) -> PipeMode {
        *self.read_mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SetNamedPipeHandleState on the instance: message mode on a byte pipe
    /// is `ERROR_INVALID_PARAMETER`, with or without a client.
    pub(crate) fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        if mode == PipeMode::Message && self.config.pipe_mode == PipeMode::Byte {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{} is a byte pipe: it cannot be read in message mode", self.name),
            ));
        }
        *self.read_mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        Ok(())
    }

    /// Builds the data path for a client socket.
    pub(crate) fn conn(&self, a: Accepted) -> Conn {
        let fd = a.fd;
        if a.shm.is_none() {
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&fd, self.config.out_buffer.max(1) as usize);
        }
        let conn = Conn::new(
            fd,
            self.config.pipe_mode,
            self.read_mode(),
            self.config.access.inbound(),
            self.config.access.outbound(),
            self.config.out_buffer,
            self.name.to_string(),
        );
        match a.shm {
            Some(end) => conn.with_shm(*end),
            None => conn,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.acc.remove(self.id);
    }
}

/// The options of CreateFile on a pipe name, shaped like tokio's.
#[derive(Debug, Clone)]
pub struct ClientOptions<F = Blocking> {
    read: bool,
    write: bool,
    pipe_mode: PipeMode,
    pub(crate) remote: crate::remote::options::RemoteOptions,
    /// The gateway opens local pipes for remote clients: who they are, as
    /// hello extensions.
    pub(crate) on_behalf_of: Option<Vec<u8>>,
    server_uid: Option<u32>,
    shared_memory: Option<bool>,
    _front: PhantomData<fn() -> F>,
}

impl<F> Default for ClientOptions<F> {
    fn default() -> Self {
        ClientOptions::new()
    }
}

impl<F> ClientOptions<F> {
    /// Read and write access, byte read mode (CreateFile's defaults).
    pub fn new() -> ClientOptions<F> {
        ClientOptions {
            read: true,
            write: true,
            pipe_mode: PipeMode::Byte,
            remote: Default::default(),
            on_behalf_of: None,
            server_uid: None,
            shared_memory: None,
            _front: PhantomData,
        }
    }

    /// Whether to offer the shared-memory data path to a local server
    /// (default: yes, unless `PIPESLOT_SHM=0`); it is used when the server
    /// takes it too (see [`ServerOptions::shared_memory`]).
    pub fn shared_memory(&mut self, on: bool) -> &mut Self {
        self.shared_memory = Some(on);
        self
    }

    /// Remote pipes: the user and password to log on to the server with
    /// (NTLMv2). Without it: `PIPESLOT_USER` / `PIPESLOT_PASSWORD` /
    /// `PIPESLOT_DOMAIN`, then the file `PIPESLOT_CREDENTIALS` names
    /// (smbclient's `-A` format), then an anonymous session, then guest.
    pub fn smb_credentials(&mut self, credentials: crate::remote::SmbCredentials) -> &mut Self {
        self.remote.credentials = Some(credentials);
        self
    }

    /// Remote pipes: the server's SMB port (else `PIPESLOT_SMB_PORT`, else 445).
    pub fn smb_port(&mut self, port: u16) -> &mut Self {
        self.remote.port = Some(port);
        self
    }

    /// Remote pipes: refuse a session whose messages would go unsigned
    /// (guest and anonymous sessions cannot sign), even when the server
    /// does not insist.
    pub fn require_signing(&mut self, on: bool) -> &mut Self {
        self.remote.require_signing = on;
        self
    }

    /// Remote pipes: encrypt everything (SMB 3.x), even when the server
    /// does not insist; a server without a cipher in common is refused.
    pub fn require_encryption(&mut self, on: bool) -> &mut Self {
        self.remote.require_encryption = on;
        self
    }

    /// Remote pipes: the SMB dialects to offer (`pipeslot_smb::negotiate::dialect`),
    /// all five (2.0.2 to 3.1.1) unless set.
    pub fn smb_dialects(&mut self, dialects: &[u16]) -> &mut Self {
        self.remote.dialects = Some(dialects.to_vec());
        self
    }

    /// Remote pipes: how long to wait for the server to accept the
    /// connection (default 5 s) and for each answer (default 30 s; a READ
    /// waits as long as the pipe is empty, while ECHO checks the server).
    pub fn smb_timeouts(&mut self, connect: Duration, response: Duration) -> &mut Self {
        self.remote.connect_timeout = Some(connect);
        self.remote.response_timeout = Some(response);
        self
    }

    /// WaitNamedPipe, remote names with these options.
    pub(crate) fn wait_for(&self, addr: &OsStr, timeout: WaitTimeout) -> io::Result<()> {
        let name = parse_name(addr)?;
        if !name.is_local() {
            return crate::remote::pipe::wait(&name, timeout, &self.remote);
        }
        client::wait(&name, timeout)
    }

    /// Opens a name on another machine over SMB; `None` for local names.
    pub(crate) fn open_remote(&self, addr: &OsStr) -> io::Result<Option<crate::remote::pipe::RemotePipe>> {
        let name = parse_name(addr)?;
        if name.is_local() {
            return Ok(None);
        }
        if self.server_uid.is_some() {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{name}: require_server_user applies to local pipes; a remote server is proven by signing"),
            ));
        }
        crate::remote::pipe::RemotePipe::open(&name, self.read, self.write, self.pipe_mode, &self.remote).map(Some)
    }

    /// GENERIC_READ.
    pub fn read(&mut self, allowed: bool) -> &mut Self {
        self.read = allowed;
        self
    }

    /// GENERIC_WRITE.
    pub fn write(&mut self, allowed: bool) -> &mut Self {
        self.write = allowed;
        self
    }

    /// The client's read mode (SetNamedPipeHandleState after opening).
    /// Message mode on a byte pipe fails with `ERROR_INVALID_PARAMETER`.
    pub fn pipe_mode(&mut self, mode: PipeMode) -> &mut Self {
        self.pipe_mode = mode;
        self
    }

    /// Local pipes: talk only to a server process running as `uid`
    /// (`pipeslot::resolve_user` turns a name into one). Win32 leaves a
    /// client to check GetNamedPipeServerProcessId after the fact; here
    /// another user's instances are skipped before the client connects,
    /// so a user who created the name first (a squatter) never sees the
    /// client, and the open fails with `ERROR_ACCESS_DENIED` naming who
    /// serves it. Remote names refuse it (`ERROR_INVALID_PARAMETER`): a
    /// remote server is proven by signing (`require_signing`).
    pub fn require_server_user(&mut self, uid: u32) -> &mut Self {
        self.server_uid = Some(uid);
        self
    }

    /// SECURITY_SQOS_PRESENT flags (impersonation levels), as tokio's
    /// setter: accepted so ported code compiles, and ignored. The server
    /// always learns the client's pid, uid, gid and groups from the kernel
    /// (`client_identity`), which a client cannot restrict.
    pub fn security_qos_flags(&mut self, _flags: u32) -> &mut Self {
        self
    }

    /// CreateFile, front-end independent.
    pub(crate) fn open_conn(&self, addr: &OsStr) -> io::Result<(Conn, PipeInfo)> {
        let name = parse_name(addr)?;
        let (fd, reply, fds) = client::open(
            &name,
            self.read,
            self.write,
            self.on_behalf_of.as_deref(),
            self.server_uid,
            self.shared_memory.unwrap_or_else(crate::shm::enabled),
        )?;
        let segment = match reply.data_path {
            pipeslot_proto::wire::local::data_path::SOCKET => None,
            pipeslot_proto::wire::local::data_path::SHM => Some(
                crate::shm::segment::adopt(fds, reply.out_buffer, reply.in_buffer)
                    .map_err(|e| err(Win32Error::ERROR_BAD_PIPE, format!("{name}: {e}")))?,
            ),
            other => {
                return Err(err(
                    Win32Error::ERROR_BAD_PIPE,
                    format!("{name}: the server chose a data path this client does not know ({other})"),
                ))
            }
        };
        let info = client_info(&reply);
        let access = Access::from_bits(reply.access).unwrap_or(Access::Duplex);
        let mut conn = Conn::new(
            fd,
            info.mode,
            PipeMode::Byte,
            self.read && access.outbound(),
            self.write && access.inbound(),
            reply.in_buffer,
            name.to_string(),
        );
        if let Some(end) = segment {
            conn = conn.with_shm(end);
        }
        conn.watch_disconnect();
        conn.set_read_mode(self.pipe_mode)?;
        Ok((conn, info))
    }
}

fn client_info(r: &Reply) -> PipeInfo {
    PipeInfo {
        mode: if r.pipe_type == 1 {
            PipeMode::Message
        } else {
            PipeMode::Byte
        },
        end: PipeEnd::Client,
        max_instances: u32::from(r.max_instances),
        out_buffer_size: r.out_buffer,
        in_buffer_size: r.in_buffer,
    }
}

/// Instances of a pipe across every serving process.
pub(crate) fn count_instances(name: &str) -> io::Result<u32> {
    let name = crate::error::pipe_name(name)?;
    Ok(client::census(&name)?.iter().map(|r| r.instances).sum())
}

/// WaitNamedPipe: waits until an instance of `name` listens.
///
/// As on Windows, a successful wait does not reserve the instance: open it
/// at once, and wait again if another client was faster.
///
/// # Errors
/// `ERROR_FILE_NOT_FOUND (2)` when no pipe has the name, `ERROR_SEM_TIMEOUT
/// (121)` when the time runs out.
///
/// ```
/// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-wait-{}", std::process::id())));
/// use std::time::Duration;
/// use pipeslot::blocking::{ClientOptions, ServerOptions};
/// use pipeslot::{wait_named_pipe, Error, WaitTimeout, Win32Error};
/// const NAME: &str = r"\\.\pipe\doc-wait";
/// let server = ServerOptions::new().create(NAME)?;
/// let busy = ClientOptions::new().open(NAME)?; // takes the only instance
/// let e = wait_named_pipe(NAME, WaitTimeout::After(Duration::from_millis(20))).unwrap_err();
/// assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_SEM_TIMEOUT));
/// // The server finishes with that client and listens again; the wait ends.
/// let t = std::thread::spawn(move || {
///     server.connect()?;
///     drop(busy);
///     server.disconnect()?;
///     server.connect()
/// });
/// wait_named_pipe(NAME, WaitTimeout::Forever)?;
/// let _client = ClientOptions::new().open(NAME)?;
/// t.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_named_pipe(name: impl AsRef<OsStr>, timeout: WaitTimeout) -> io::Result<()> {
    ClientOptions::<Blocking>::new().wait_for(name.as_ref(), timeout)
}
