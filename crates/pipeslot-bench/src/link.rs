//! One connected, blocking, message-at-a-time channel, whatever carries it:
//! the shape every blocking workload is written against, so pipeslot and
//! each baseline run exactly the same loop.

use std::io;

use pipeslot::blocking::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use pipeslot::{Error, PipeMode, Win32Error};

use crate::baseline;
use crate::peer::{Control, PeerSpec};

/// A connected channel of messages.
pub(crate) trait Link {
    /// Sends one message.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// Receives one message into `buf` (at least one message long):
    /// its length, or `None` once the other side has closed.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Sends several messages; transports with a batch path override it.
    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        msgs.iter().try_for_each(|m| self.send(m))
    }

    /// One request and its reply (pipeslot overrides it with transact).
    fn round_trip(&mut self, req: &[u8], reply: &mut [u8]) -> io::Result<()> {
        self.send(req)?;
        match self.recv(reply)? {
            Some(_) => Ok(()),
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    /// Says goodbye where the transport cannot tell a close (ZeroMQ).
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The blocking transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// pipeslot, message pipe, blocking front end.
    PipeMessage,
    /// pipeslot, byte pipe, blocking front end.
    PipeByte,
    /// pipeslot, message pipe, blocking, on the shared-memory data path.
    PipeMessageShm,
    /// The bare shared-memory ping-pong (a slot and an eventfd each way),
    /// the floor of the shared-memory cases.
    ShmFloor,
    /// A raw Unix stream socket, fixed-size messages.
    UnixStream,
    /// A raw Unix stream socket, a 4-byte length before each message.
    UnixPrefixed,
    /// A raw Unix `SOCK_SEQPACKET` socket.
    SeqPacket,
    /// The `interprocess` crate's local socket.
    Interprocess,
    /// ipc-channel's byte channels.
    IpcChannel,
    /// ZeroMQ REQ (client) / REP (server) over `ipc://`.
    ZmqReqRep,
    /// ZeroMQ PUSH (client) / PULL (server) over `ipc://`.
    ZmqPushPull,
    /// A pipeslot mailslot: a writer (client) and the reader (server).
    Mailslot,
    /// A raw Unix datagram socket.
    UnixDatagram,
}

impl Kind {
    /// A pipeslot pipe: (message type, on shared memory).
    pub(crate) fn pipe(self) -> Option<(bool, bool)> {
        match self {
            Kind::PipeMessage => Some((true, false)),
            Kind::PipeByte => Some((false, false)),
            Kind::PipeMessageShm => Some((true, true)),
            _ => None,
        }
    }
}

/// Listens as `kind` at `spec.addr`, says `READY`, accepts one client.
pub(crate) fn serve(kind: Kind, spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
    if let Some((message, _)) = kind.pipe() {
        let server = server_options(kind, spec)
            .first_pipe_instance(true)
            .create(&spec.addr)?;
        ctl.ready()?;
        server.connect()?;
        return Ok(Box::new(PipeLink {
            end: server,
            message,
            size: spec.size,
        }));
    }
    match kind {
        Kind::PipeMessage | Kind::PipeByte | Kind::PipeMessageShm => unreachable!("served above"),
        Kind::ShmFloor => {
            let l = std::os::unix::net::UnixListener::bind(&spec.addr)?;
            ctl.ready()?;
            let (s, _) = l.accept()?;
            Ok(Box::new(FloorLink(pipeslot::shm_floor::FloorEnd::serve(&s)?, s)))
        }
        Kind::UnixStream | Kind::UnixPrefixed => baseline::unix::serve(kind == Kind::UnixPrefixed, spec, ctl),
        Kind::SeqPacket => baseline::seqpacket::serve(spec, ctl),
        Kind::Interprocess => baseline::interproc::serve(spec, ctl),
        Kind::IpcChannel => baseline::ipcchan::serve(spec, ctl),
        Kind::ZmqReqRep | Kind::ZmqPushPull => baseline::zeromq::serve(kind == Kind::ZmqPushPull, spec, ctl),
        Kind::Mailslot => {
            let slot = pipeslot::blocking::MailslotOptions::new().create(&spec.addr)?;
            ctl.ready()?;
            Ok(Box::new(SlotReader(slot)))
        }
        Kind::UnixDatagram => baseline::datagram::serve(spec, ctl),
    }
}

/// Connects as `kind` to the peer at `spec.addr`.
pub(crate) fn connect(kind: Kind, spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
    if let Some((message, shm)) = kind.pipe() {
        let mode = if message { PipeMode::Message } else { PipeMode::Byte };
        let client = ClientOptions::new()
            .pipe_mode(mode)
            .shared_memory(shm)
            .open(&spec.addr)?;
        return Ok(Box::new(PipeLink {
            end: client,
            message,
            size: spec.size,
        }));
    }
    match kind {
        Kind::PipeMessage | Kind::PipeByte | Kind::PipeMessageShm => unreachable!("opened above"),
        Kind::ShmFloor => {
            let s = std::os::unix::net::UnixStream::connect(&spec.addr)?;
            Ok(Box::new(FloorLink(pipeslot::shm_floor::FloorEnd::connect(&s)?, s)))
        }
        Kind::UnixStream | Kind::UnixPrefixed => baseline::unix::connect(kind == Kind::UnixPrefixed, spec),
        Kind::SeqPacket => baseline::seqpacket::connect(spec),
        Kind::Interprocess => baseline::interproc::connect(spec),
        Kind::IpcChannel => baseline::ipcchan::connect(spec),
        Kind::ZmqReqRep | Kind::ZmqPushPull => baseline::zeromq::connect(kind == Kind::ZmqPushPull, spec),
        Kind::Mailslot => Ok(Box::new(SlotWriter(pipeslot::blocking::MailslotWriter::open(
            &spec.addr,
        )?))),
        Kind::UnixDatagram => baseline::datagram::connect(spec),
    }
}

/// The shared-memory floor (its socket only carried the segment).
struct FloorLink(
    pipeslot::shm_floor::FloorEnd,
    #[allow(dead_code)] std::os::unix::net::UnixStream,
);

impl Link for FloorLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.send(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.0.recv(buf)
    }

    fn close(&mut self) -> io::Result<()> {
        self.0.bye()
    }
}

/// A mailslot's reader.
struct SlotReader(pipeslot::blocking::MailslotServer);

impl Link for SlotReader {
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a mailslot reader cannot write",
        ))
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.0.read(buf).map(Some)
    }
}

/// A mailslot's writer.
struct SlotWriter(pipeslot::blocking::MailslotWriter);

impl Link for SlotWriter {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.write(msg)
    }

    fn recv(&mut self, _: &mut [u8]) -> io::Result<Option<usize>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a mailslot writer cannot read",
        ))
    }
}

/// The server options a case asks for: the pipe's type, and its buffers
/// raised when the case tunes them (how users tune pipeslot for bulk).
pub(crate) fn server_options(kind: Kind, spec: &PeerSpec) -> ServerOptions {
    let mut opts = ServerOptions::new();
    let (message, shm) = kind.pipe().unwrap_or((false, false));
    if message {
        opts.pipe_mode(PipeMode::Message);
    }
    // Each case says its data path, whatever PIPESLOT_SHM says.
    opts.shared_memory(shm);
    if spec.buffer > 0 {
        let b = u32::try_from(spec.buffer).unwrap_or(u32::MAX);
        opts.in_buffer_size(b).out_buffer_size(b);
    }
    opts
}

/// Whether an error means the other end has gone.
pub(crate) fn is_end(e: &io::Error) -> bool {
    matches!(
        Error::win32(e),
        Some(Win32Error::ERROR_BROKEN_PIPE | Win32Error::ERROR_NO_DATA | Win32Error::ERROR_PIPE_NOT_CONNECTED)
    ) || matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Either end of a pipeslot pipe.
struct PipeLink<E> {
    end: E,
    message: bool,
    /// Byte pipes: the size of one message.
    size: usize,
}

/// The calls both ends of a blocking pipe share.
trait BlockingEnd: io::Read {
    fn write_msg(&self, msg: &[u8]) -> io::Result<()>;
    fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<usize>;
    fn read_msg(&self, buf: &mut [u8]) -> io::Result<pipeslot::MsgRead>;
    fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<pipeslot::MsgRead>;
}

impl BlockingEnd for NamedPipeServer {
    fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
        NamedPipeServer::write_msg(self, msg)
    }
    fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<usize> {
        NamedPipeServer::write_msgs(self, msgs)
    }
    fn read_msg(&self, buf: &mut [u8]) -> io::Result<pipeslot::MsgRead> {
        NamedPipeServer::read_msg(self, buf)
    }
    fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<pipeslot::MsgRead> {
        NamedPipeServer::transact(self, msg, reply)
    }
}

impl BlockingEnd for NamedPipeClient {
    fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
        NamedPipeClient::write_msg(self, msg)
    }
    fn write_msgs(&self, msgs: &[&[u8]]) -> io::Result<usize> {
        NamedPipeClient::write_msgs(self, msgs)
    }
    fn read_msg(&self, buf: &mut [u8]) -> io::Result<pipeslot::MsgRead> {
        NamedPipeClient::read_msg(self, buf)
    }
    fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<pipeslot::MsgRead> {
        NamedPipeClient::transact(self, msg, reply)
    }
}

impl<E: BlockingEnd> Link for PipeLink<E> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.end.write_msg(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.message {
            return match self.end.read_exact(&mut buf[..self.size]) {
                Ok(()) => Ok(Some(self.size)),
                Err(e) if is_end(&e) => Ok(None),
                Err(e) => Err(e),
            };
        }
        match self.end.read_msg(buf) {
            Ok(m) if m.more => Err(io::Error::other("a message longer than the buffer")),
            Ok(m) => Ok(Some(m.len)),
            Err(e) if is_end(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        self.end.write_msgs(msgs).map(drop)
    }

    fn round_trip(&mut self, req: &[u8], reply: &mut [u8]) -> io::Result<()> {
        if !self.message {
            self.send(req)?;
            return self.end.read_exact(&mut reply[..self.size]);
        }
        self.end.transact(req, reply).map(drop)
    }
}
