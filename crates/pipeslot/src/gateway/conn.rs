//! One client connection of the gateway: frames in, the state machine's
//! answers out, and a worker thread per open pipe for what may wait.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeslot_smb::create::FileId;
use pipeslot_smb::info::PipeLocalInfo;
use pipeslot_smb::server::{
    Answer, Event, PipeState, Req, Server, ServerConfig, ServerEntropy, FILE_PIPE_CONNECTED_STATE,
};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::message_len;

use super::builtin::{self, Builtin};
use super::GatewayHandle;
use crate::blocking::{ClientOptions, NamedPipeClient};
use crate::error::{Error, Win32Error};
use crate::pipe::{MsgRead, PeekInfo, PipeEnd, PipeMode};
use crate::remote::session::{filetime_now, random};
use pipeslot_proto::name::escape_controls;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The largest frame a client may send: a 64 KiB write or transact and its
/// headers, with room to spare.
const MAX_FRAME: usize = 1 << 18;

/// What a pipe's worker does next.
enum Op {
    Read(Req, u32),
    Write(Req, Vec<u8>),
    Transceive(Req, Vec<u8>, u32),
    Flush(Req),
}

/// The parts the connection and its workers share.
struct Wire {
    server: Mutex<Server>,
    out: Mutex<TcpStream>,
    peer: String,
}

impl Wire {
    fn send(&self, frame: &[u8]) {
        if lock(&self.out).write_all(frame).is_err() {
            let _ = lock(&self.out).shutdown(std::net::Shutdown::Both);
        }
    }

    fn answer(&self, req: Req, a: Answer<'_>) {
        let f = lock(&self.server).answer(req, a);
        self.send(&f);
    }
}

pub(super) fn run(stream: TcpStream, shared: &GatewayHandle, seq: u64, full: bool) {
    // The terms a connection logs on with are those of when it came; each
    // open asks the current options (a reload's exports apply at once).
    let opts = shared.current();
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let Ok(out) = stream.try_clone() else { return };
    let server = Server::new(
        ServerConfig {
            server_guid: random(),
            domain: opts.domain.clone(),
            computer: opts.computer.clone(),
            users: opts.users.clone(),
            require_signing: opts.require_signing,
            max_io: 1 << 16,
            guest: opts.guest,
            encryption: opts.encryption,
            max_opens: opts.max_opens,
        },
        ServerEntropy {
            salt: random(),
            server_challenge: random(),
            session_id: u64::from_le_bytes(random()) >> 16 | seq,
            now: filetime_now(),
            nonce_prefix: random(),
        },
    );
    let mut server = server;
    if full {
        server.refuse_logons();
    }
    let wire = Arc::new(Wire {
        server: Mutex::new(server),
        out: Mutex::new(out),
        peer,
    });
    tracing::info!("gateway: connection from {}", wire.peer);
    let mut opens: Opens = HashMap::new();
    let mut reader = stream;
    loop {
        // Idle: nothing open and nothing said for the idle time. With pipes
        // open a client may be quiet for ever (a monitor waiting on a log).
        let idle = match (full, opens.is_empty()) {
            (true, _) => Some(opts.frame_timeout),
            (false, true) => Some(opts.idle_timeout),
            (false, false) => None,
        };
        let mut th = [0u8; 4];
        match read_within(&mut reader, &mut th, idle, opts.frame_timeout) {
            Ok(()) => {}
            Err(e) => {
                if e.kind() == io::ErrorKind::TimedOut {
                    tracing::info!("gateway: {}: {e}; closed", wire.peer);
                }
                break;
            }
        }
        let Ok(n) = message_len(th) else { break };
        if n > MAX_FRAME {
            tracing::warn!("gateway: {} sent a frame of {n} bytes; closed", wire.peer);
            break;
        }
        let mut msg = vec![0u8; n];
        if let Err(e) = read_within(&mut reader, &mut msg, Some(opts.frame_timeout), opts.frame_timeout) {
            if e.kind() == io::ErrorKind::TimedOut {
                tracing::info!("gateway: {}: {e}; closed", wire.peer);
            }
            break;
        }
        let out = lock(&wire.server).receive(&msg);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("gateway: {}: {e}; closed", wire.peer);
                break;
            }
        };
        for f in &out.send {
            wire.send(f);
        }
        let now = shared.current();
        for e in out.events {
            handle(&wire, &now, &mut opens, e);
        }
    }
    // The client is gone: its pipes end now, even those a read waits on.
    for (_, open) in opens.drain() {
        drop(open.tx);
        open.client.abort();
    }
    let _ = lock(&wire.out).shutdown(std::net::Shutdown::Both);
    tracing::info!("gateway: {} gone", wire.peer);
}

/// Fills `buf`: the first byte within `first` (None: no limit), the rest
/// within `rest` of it, so a frame sent byte by byte cannot hold a
/// connection (and its thread) for ever.
fn read_within(r: &mut TcpStream, buf: &mut [u8], first: Option<Duration>, rest: Duration) -> io::Result<()> {
    let mut at = 0;
    let mut deadline = first.map(|d| Instant::now() + d);
    while at < buf.len() {
        let left = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        r.set_read_timeout(left)?;
        match r.read(&mut buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                if at == 0 {
                    deadline = Some(Instant::now() + rest);
                }
                at += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let what = if at == 0 && first != Some(rest) {
                    "idle"
                } else {
                    "a frame left half-sent"
                };
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} too long")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One open pipe: its worker's queue, the pipe (to end it, peek and query
/// it from here), and how many reads are with the worker (a PEEK then
/// finds nothing, as a read waiting on the pipe would take it first).
struct Open {
    tx: Sender<Op>,
    client: Arc<Target>,
    reading: Arc<AtomicUsize>,
}

/// What an open reaches: a local pipe, or one the gateway serves itself.
enum Target {
    Local(NamedPipeClient),
    Builtin(Builtin),
}

impl Target {
    fn read_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        match self {
            Target::Local(c) => c.read_msg(buf),
            Target::Builtin(b) => b.read_msg(buf),
        }
    }

    fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
        match self {
            Target::Local(c) => c.write_msg(msg),
            Target::Builtin(b) => b.write_msg(msg),
        }
    }

    fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        match self {
            Target::Local(c) => c.transact(msg, reply),
            Target::Builtin(b) => b.transact(msg, reply),
        }
    }

    fn flush_buffers(&self) -> io::Result<()> {
        match self {
            Target::Local(c) => c.flush_buffers(),
            // Answers are read by our own client, not by a server.
            Target::Builtin(_) => Ok(()),
        }
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
        match self {
            Target::Local(c) => c.peek(buf),
            Target::Builtin(b) => Ok(b.peek(buf)),
        }
    }

    fn is_message(&self) -> bool {
        match self {
            Target::Local(c) => c.info().is_ok_and(|i| i.mode == PipeMode::Message),
            Target::Builtin(_) => true,
        }
    }

    fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        match self {
            Target::Local(c) => c.set_read_mode(mode),
            Target::Builtin(_) if mode == PipeMode::Message => Ok(()),
            Target::Builtin(_) => Err(crate::error::err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "srvsvc is read as messages",
            )),
        }
    }

    fn abort(&self) {
        match self {
            Target::Local(c) => c.abort(),
            Target::Builtin(b) => b.abort(),
        }
    }
}

type Opens = HashMap<FileId, Open>;

fn handle(wire: &Arc<Wire>, opts: &super::GatewayOptions, opens: &mut Opens, e: Event) {
    match e {
        Event::Open {
            req,
            user,
            pipe,
            file,
            desired_access,
        } => {
            if builtin::is_builtin(&pipe) {
                let target = Target::Builtin(Builtin::srvsvc(&opts.computer));
                return start(wire, opens, req, file, target);
            }
            let who = if user.domain.is_empty() {
                user.user.clone()
            } else {
                format!("{}\\{}", user.domain, user.user)
            };
            // Names from the network are escaped before they reach a log.
            let (shown_who, shown_pipe) = (escape_controls(&who), escape_controls(&pipe));
            if !opts.exports(&pipe) {
                tracing::info!("gateway: {shown_who} from {}: {shown_pipe} is not exported", wire.peer);
                return wire.answer(req, Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            }
            let mut o = ClientOptions::new();
            o.read(desired_access & 0x1 != 0 || desired_access & 0x8000_0000 != 0)
                .write(desired_access & 0x2 != 0 || desired_access & 0x4000_0000 != 0);
            use pipeslot_proto::wire::local::hello_ext as ext;
            o.on_behalf_of = Some(ext::encode(&[
                (ext::REMOTE_USER, &who),
                (ext::REMOTE_ADDRESS, &wire.peer),
                (ext::REMOTE_COMPUTER, &user.workstation),
            ]));
            match o.open(format!(r"\\.\pipe\{pipe}")) {
                Ok(client) => {
                    if client.info().is_ok_and(|i| i.mode == PipeMode::Message) {
                        let _ = client.set_read_mode(PipeMode::Message);
                    }
                    tracing::info!("gateway: {shown_who} from {} opened {shown_pipe}", wire.peer);
                    start(wire, opens, req, file, Target::Local(client));
                }
                Err(e) => {
                    tracing::info!("gateway: {shown_who} from {}: {shown_pipe} refused: {e}", wire.peer);
                    wire.answer(req, Answer::Status(status_of(&e)));
                }
            }
        }
        Event::Read { req, file, length } => queue(wire, opens, file, req, Op::Read(req, length)),
        Event::Write { req, file, data } => queue(wire, opens, file, req, Op::Write(req, data)),
        Event::Transceive {
            req,
            file,
            input,
            max_output,
        } => queue(wire, opens, file, req, Op::Transceive(req, input, max_output)),
        Event::Wait { req, pipe, timeout } => {
            if !opts.exports(&pipe) {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            }
            let (req, f) = lock(&wire.server).interim(req, req.message_id);
            wire.send(&f);
            let wire = Arc::clone(wire);
            let t = match timeout {
                // 100 ns units; an i64::MAX is "for ever".
                Some(t) if (0..i64::MAX).contains(&t) => {
                    crate::WaitTimeout::After(std::time::Duration::from_nanos((t as u64).saturating_mul(100)))
                }
                Some(_) => crate::WaitTimeout::Forever,
                None => crate::WaitTimeout::Default,
            };
            let _ = std::thread::Builder::new()
                .name("pipeslot-gateway-wait".into())
                .spawn(move || {
                    let a = match crate::wait_named_pipe(format!(r"\\.\pipe\{pipe}"), t) {
                        Ok(()) => Answer::Data(&[]),
                        Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_SEM_TIMEOUT) => {
                            Answer::Status(NtStatus::STATUS_IO_TIMEOUT)
                        }
                        Err(e) => Answer::Status(status_of(&e)),
                    };
                    wire.answer(req, a);
                });
        }
        Event::Close { file } => {
            // As a handle's close on Windows: what waits on it ends.
            if let Some(open) = opens.remove(&file) {
                drop(open.tx);
                open.client.abort();
            }
        }
        Event::Flush { req, file } => queue(wire, opens, file, req, Op::Flush(req)),
        Event::Peek { req, file } => {
            let Some(open) = opens.get(&file) else {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
            };
            if open.reading.load(Ordering::Acquire) > 0 {
                // A read waits on the pipe: whatever comes is its.
                return wire.answer(
                    req,
                    Answer::Peeked {
                        data: &[],
                        available: 0,
                        messages: 0,
                        message_length: 0,
                    },
                );
            }
            let mut buf = vec![0u8; 1 << 16];
            match open.client.peek(&mut buf) {
                Ok(p) => {
                    let message = open.client.is_message();
                    let next = if message { p.read + p.left_in_message } else { 0 };
                    wire.answer(
                        req,
                        Answer::Peeked {
                            data: &buf[..p.read],
                            available: p.available as u32,
                            messages: u32::from(message && p.available > 0),
                            message_length: next as u32,
                        },
                    )
                }
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Event::QueryInfo { req, file } => {
            let Some(open) = opens.get(&file) else {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
            };
            match pipe_state(open) {
                Ok(st) => wire.answer(req, Answer::Info(st)),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Event::SetReadMode { req, file, message } => {
            let Some(open) = opens.get(&file) else {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
            };
            let mode = if message { PipeMode::Message } else { PipeMode::Byte };
            match open.client.set_read_mode(mode) {
                Ok(()) => wire.answer(req, Answer::Done),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        // A pipe read cannot be taken back without losing what it may
        // bring: the request is answered when the pipe answers.
        Event::Cancel { .. } => {}
        Event::LoggedOn { user, sealed } => tracing::info!(
            "gateway: {} logged on as {}\\{} ({:?}{}) from {}",
            escape_controls(&user.workstation),
            escape_controls(&user.domain),
            escape_controls(&user.user),
            user.kind,
            if sealed { ", sealed" } else { "" },
            wire.peer
        ),
        Event::LogonRefused {
            user,
            workstation,
            status,
        } => tracing::warn!(
            "gateway: log-on refused for {} on {} from {}: {status}",
            escape_controls(&user),
            escape_controls(&workstation),
            wire.peer
        ),
    }
}

/// Starts the worker of a new open and answers the CREATE.
fn start(wire: &Arc<Wire>, opens: &mut Opens, req: Req, file: FileId, target: Target) {
    let (tx, rx) = channel();
    let client = Arc::new(target);
    let reading = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (wire, client, reading) = (Arc::clone(wire), Arc::clone(&client), Arc::clone(&reading));
        std::thread::Builder::new()
            .name("pipeslot-gateway-pipe".into())
            .spawn(move || {
                for op in rx {
                    work(&wire, &client, &reading, op);
                }
            })
    };
    if worker.is_err() {
        client.abort();
        return wire.answer(req, Answer::Status(NtStatus::STATUS_INSUFFICIENT_RESOURCES));
    }
    opens.insert(file, Open { tx, client, reading });
    wire.answer(req, Answer::Opened);
}

/// Hands an operation to its pipe's worker, first telling the client it
/// may wait (an interim answer; the final one comes from the worker).
fn queue(wire: &Arc<Wire>, opens: &Opens, file: FileId, req: Req, op: Op) {
    let Some(open) = opens.get(&file) else {
        return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
    };
    let op = match op {
        Op::Read(r, n) => {
            let (r, f) = lock(&wire.server).interim(r, r.message_id);
            wire.send(&f);
            open.reading.fetch_add(1, Ordering::AcqRel);
            Op::Read(r, n)
        }
        Op::Transceive(r, input, n) => {
            let (r, f) = lock(&wire.server).interim(r, r.message_id);
            wire.send(&f);
            open.reading.fetch_add(1, Ordering::AcqRel);
            Op::Transceive(r, input, n)
        }
        Op::Flush(r) => {
            let (r, f) = lock(&wire.server).interim(r, r.message_id);
            wire.send(&f);
            Op::Flush(r)
        }
        w => w,
    };
    if open.tx.send(op).is_err() {
        wire.answer(req, Answer::Status(NtStatus::STATUS_PIPE_BROKEN));
    }
}

/// What QUERY_INFO reports: the local pipe's info, state and queue.
fn pipe_state(open: &Open) -> io::Result<PipeState> {
    let c = match &*open.client {
        Target::Local(c) => c,
        Target::Builtin(b) => {
            let bytes = b.queued();
            return Ok(PipeState {
                local: PipeLocalInfo {
                    pipe_type: 1,
                    configuration: 2,
                    max_instances: 255,
                    current_instances: 1,
                    inbound_quota: 4280,
                    read_data_available: bytes as u32,
                    outbound_quota: 4280,
                    write_quota_available: 4280,
                    state: FILE_PIPE_CONNECTED_STATE,
                    end: 0,
                },
                message_read: true,
                nonblocking: false,
            });
        }
    };
    let info = c.info()?;
    let hs = c.handle_state()?;
    let available = match open.reading.load(Ordering::Acquire) {
        0 => c.peek(&mut []).map_or(0, |p| p.available as u32),
        _ => 0,
    };
    Ok(PipeState {
        local: PipeLocalInfo {
            pipe_type: u32::from(info.mode == PipeMode::Message),
            // Full duplex, as the gateway opens what the client asked for.
            configuration: 2,
            max_instances: info.max_instances,
            current_instances: hs.instances,
            inbound_quota: info.in_buffer_size,
            read_data_available: available,
            outbound_quota: info.out_buffer_size,
            write_quota_available: info.out_buffer_size,
            state: FILE_PIPE_CONNECTED_STATE,
            end: u32::from(info.end == PipeEnd::Server),
        },
        message_read: hs.read_mode == PipeMode::Message,
        nonblocking: false,
    })
}

fn work(wire: &Wire, client: &Target, reading: &AtomicUsize, op: Op) {
    // A read is no longer waiting once its call returns, before the answer
    // goes out: a PEEK the client sends after it sees the answer.
    let done_reading = || reading.fetch_sub(1, Ordering::AcqRel);
    match op {
        Op::Flush(req) => match client.flush_buffers() {
            Ok(()) => wire.answer(req, Answer::Done),
            Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
        },
        Op::Read(req, n) => {
            let mut buf = vec![0u8; n.max(1) as usize];
            let r = client.read_msg(&mut buf);
            done_reading();
            match r {
                Ok(m) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Ok(m) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Op::Write(req, data) => match client.write_msg(&data) {
            Ok(()) => wire.answer(req, Answer::Written(data.len() as u32)),
            Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
        },
        Op::Transceive(req, input, n) => {
            let mut buf = vec![0u8; n.max(1) as usize];
            let r = client.transact(&input, &mut buf);
            done_reading();
            match r {
                Ok(m) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Ok(m) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
    }
}

/// The NTSTATUS a Windows server answers for a local pipe failure.
fn status_of(e: &io::Error) -> NtStatus {
    match Error::win32(e) {
        Some(Win32Error::ERROR_FILE_NOT_FOUND) => NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
        Some(Win32Error::ERROR_PIPE_BUSY) => NtStatus::STATUS_PIPE_NOT_AVAILABLE,
        Some(Win32Error::ERROR_ACCESS_DENIED) => NtStatus::STATUS_ACCESS_DENIED,
        Some(Win32Error::ERROR_BROKEN_PIPE) => NtStatus::STATUS_PIPE_BROKEN,
        Some(Win32Error::ERROR_NO_DATA) => NtStatus::STATUS_PIPE_CLOSING,
        Some(Win32Error::ERROR_PIPE_NOT_CONNECTED) => NtStatus::STATUS_PIPE_DISCONNECTED,
        Some(Win32Error::ERROR_BAD_PIPE) => NtStatus::STATUS_INVALID_PIPE_STATE,
        Some(Win32Error::ERROR_INVALID_PARAMETER) => NtStatus::STATUS_INVALID_PARAMETER,
        _ => NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR,
    }
}
