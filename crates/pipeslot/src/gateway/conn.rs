//! One client connection of the gateway, on a thread of its own running
//! tokio's current-thread scheduler: frames in, the state machine's answers
//! out, and a task per open pipe for what may wait. Everything of one
//! connection lives on that one thread, so an answer takes no hand-off
//! between threads (the pipe's reply wakes the same thread that writes the
//! SMB answer, as in smbd), and a connection cannot hold up another.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use pipeslot_proto::name::escape_controls;
use pipeslot_smb::create::FileId;
use pipeslot_smb::info::PipeLocalInfo;
use pipeslot_smb::server::{
    Answer, Event, PipeState, Req, Server, ServerConfig, ServerEntropy, FILE_PIPE_CONNECTED_STATE,
};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::message_len;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

use super::builtin::{self, Builtin};
use super::{GatewayHandle, GatewayOptions};
use crate::error::{err, Error, Win32Error};
use crate::pipe::{MsgRead, PeekInfo, PipeEnd, PipeMode};
use crate::remote::session::{filetime_now, random};
use crate::tokio::{ClientOptions, NamedPipeClient};

/// The largest frame a client may send: a 64 KiB write or transact and its
/// headers, with room to spare.
const MAX_FRAME: usize = 1 << 18;

/// How long an operation may take before the client is told it is pending
/// (STATUS_PENDING): most transacts are answered before, in one frame.
const INTERIM_AFTER: Duration = Duration::from_micros(500);

/// The socket and what is queued for it. Frames go out in the order they
/// are made; a full socket buffer leaves the rest to the writer task.
struct Wire {
    server: RefCell<Server>,
    sock: TcpStream,
    out: RefCell<VecDeque<Vec<u8>>>,
    /// Bytes of the front frame already written.
    written: Cell<usize>,
    writer: Notify,
    dead: Cell<bool>,
    peer: String,
}

impl Wire {
    fn send(&self, frame: Vec<u8>) {
        if self.dead.get() {
            return;
        }
        self.out.borrow_mut().push_back(frame);
        if self.out.borrow().len() == 1 {
            self.flush();
        }
    }

    /// Writes what the socket takes now; the writer task waits for room.
    fn flush(&self) {
        let mut out = self.out.borrow_mut();
        while let Some(front) = out.front() {
            match self.sock.try_write(&front[self.written.get()..]) {
                Ok(n) => {
                    let at = self.written.get() + n;
                    if at == front.len() {
                        out.pop_front();
                        self.written.set(0);
                    } else {
                        self.written.set(at);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writer.notify_one();
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead.set(true);
                    out.clear();
                    self.writer.notify_one();
                    return;
                }
            }
        }
    }

    fn answer(&self, req: Req, a: Answer<'_>) {
        let f = self.server.borrow_mut().answer(req, a);
        self.send(f);
    }

    fn interim(&self, req: Req) -> Req {
        let (req, f) = self.server.borrow_mut().interim(req, req.message_id);
        self.send(f);
        req
    }
}

/// The writer task: waits for room whenever the socket was full.
async fn write_when_ready(wire: Rc<Wire>) {
    loop {
        wire.writer.notified().await;
        while !wire.out.borrow().is_empty() && !wire.dead.get() {
            if wire.sock.writable().await.is_err() {
                wire.dead.set(true);
            }
            wire.flush();
        }
        if wire.dead.get() {
            return;
        }
    }
}

pub(super) fn run(stream: std::net::TcpStream, shared: &GatewayHandle, seq: u64, full: bool) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return tracing::warn!("gateway: no runtime for a connection: {e}"),
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(stream, shared.clone(), seq, full));
}

async fn serve(stream: std::net::TcpStream, shared: GatewayHandle, seq: u64, full: bool) {
    // The terms a connection logs on with are those of when it came; each
    // open asks the current options (a reload's exports apply at once).
    let opts = shared.current();
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    if let Err(e) = keep_alive(&stream, opts.keepalive) {
        tracing::warn!("gateway: {peer}: cannot set TCP keepalive: {e}");
    }
    let sock = match stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("gateway: {peer}: {e}"),
    };
    let mut server = Server::new(
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
    if full {
        server.refuse_logons();
    }
    let wire = Rc::new(Wire {
        server: RefCell::new(server),
        sock,
        out: RefCell::new(VecDeque::new()),
        written: Cell::new(0),
        writer: Notify::new(),
        dead: Cell::new(false),
        peer,
    });
    tracing::info!("gateway: connection from {}", wire.peer);
    let writer = tokio::task::spawn_local(write_when_ready(Rc::clone(&wire)));
    let mut opens: Opens = HashMap::new();
    loop {
        // Idle: nothing open and nothing said for the idle time. With pipes
        // open a client may be quiet for ever (a monitor waiting on a log).
        let idle = match (full, opens.is_empty()) {
            (true, _) => Some(opts.frame_timeout),
            (false, true) => Some(opts.idle_timeout),
            (false, false) => None,
        };
        let mut msg = match read_frame(&wire.sock, idle, opts.frame_timeout).await {
            Ok(m) => m,
            Err(e) => {
                if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::InvalidData) {
                    tracing::info!("gateway: {}: {e}; closed", wire.peer);
                }
                break;
            }
        };
        let out = wire.server.borrow_mut().receive_mut(&mut msg);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("gateway: {}: {e}; closed", wire.peer);
                break;
            }
        };
        for f in out.send {
            wire.send(f);
        }
        let now = shared.current();
        for e in out.events {
            handle(&wire, &now, &mut opens, e);
        }
        if wire.dead.get() {
            break;
        }
    }
    // The client is gone: its pipes end now, even those a read waits on.
    for (_, open) in opens.drain() {
        open.target.abort();
    }
    wire.dead.set(true);
    writer.abort();
    tracing::info!("gateway: {} gone", wire.peer);
}

/// A client may hold pipes open and say nothing for hours (a monitor
/// waiting on a log), so silence alone cannot close it; the kernel asks the
/// client's host instead, and gives up on it as `GatewayOptions::keepalive` says.
fn keep_alive(stream: &std::net::TcpStream, t: Duration) -> io::Result<()> {
    use rustix::net::sockopt;
    sockopt::set_socket_keepalive(stream, true)?;
    sockopt::set_tcp_keepidle(stream, t)?;
    sockopt::set_tcp_keepintvl(stream, t)?;
    sockopt::set_tcp_keepcnt(stream, 3)?;
    let ms = (t * 4).as_millis().try_into().unwrap_or(u32::MAX);
    sockopt::set_tcp_user_timeout(stream, ms)?;
    Ok(())
}

/// Reads one frame: its first byte within `first` (None: no limit), the
/// rest within `rest` of it, so a frame sent byte by byte cannot hold a
/// connection for ever.
async fn read_frame(sock: &TcpStream, first: Option<Duration>, rest: Duration) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    let n = match first {
        Some(t) => tokio::time::timeout(t, read_some(sock, &mut head))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle too long"))??,
        None => read_some(sock, &mut head).await?,
    };
    let whole = async {
        read_exact(sock, &mut head[n..]).await?;
        let len = message_len(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a frame of {len} bytes"),
            ));
        }
        let mut msg = vec![0u8; len];
        read_exact(sock, &mut msg).await?;
        Ok(msg)
    };
    tokio::time::timeout(rest, whole)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "a frame left half-sent too long"))?
}

async fn read_some(sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        sock.readable().await?;
        match sock.try_read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
}

async fn read_exact(sock: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        at += read_some(sock, &mut buf[at..]).await?;
    }
    Ok(())
}

/// What a pipe's task does next.
enum Op {
    Read(u32),
    Write(Vec<u8>),
    Transceive(Vec<u8>, u32),
    Flush,
}

/// One operation for a pipe's task, and the client's way to cancel it.
struct Job {
    req: Req,
    op: Op,
    cancelled: oneshot::Receiver<()>,
}

/// One open pipe: its task's queue, the pipe (to end it, peek and query it
/// from here), how many reads are with the task (a PEEK then finds nothing,
/// as a read waiting on the pipe takes what comes first), and the cancel
/// switches of the jobs not yet answered, by message id.
struct Open {
    tx: mpsc::UnboundedSender<Job>,
    target: Rc<Target>,
    reading: Rc<Cell<usize>>,
    cancels: Rc<RefCell<HashMap<u64, oneshot::Sender<()>>>>,
}

type Opens = HashMap<FileId, Open>;

/// What an open reaches: a local pipe, or one the gateway serves itself.
enum Target {
    Local(NamedPipeClient),
    Builtin(Builtin),
}

impl Target {
    async fn read_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        match self {
            Target::Local(c) => c.read_msg(buf).await,
            Target::Builtin(b) => b.read_msg(buf).await,
        }
    }

    async fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
        match self {
            Target::Local(c) => c.write_msg(msg).await,
            Target::Builtin(b) => b.write_msg(msg),
        }
    }

    async fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        match self {
            Target::Local(c) => c.transact(msg, reply).await,
            Target::Builtin(b) => b.transact(msg, reply).await,
        }
    }

    async fn flush_buffers(&self) -> io::Result<()> {
        match self {
            Target::Local(c) => c.flush_buffers().await,
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
            Target::Builtin(_) => Err(err(Win32Error::ERROR_INVALID_PARAMETER, "srvsvc is read as messages")),
        }
    }

    fn abort(&self) {
        match self {
            Target::Local(c) => c.abort(),
            Target::Builtin(b) => b.abort(),
        }
    }
}

fn handle(wire: &Rc<Wire>, opts: &GatewayOptions, opens: &mut Opens, e: Event) {
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
            // The local hop is a round trip per SMB request: shared memory
            // when the local server takes it (its options decide).
            o.read(desired_access & 0x1 != 0 || desired_access & 0x8000_0000 != 0)
                .write(desired_access & 0x2 != 0 || desired_access & 0x4000_0000 != 0)
                .shared_memory(true);
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
        Event::Read { req, file, length } => queue(wire, opens, file, req, Op::Read(length)),
        Event::Write { req, file, data } => queue(wire, opens, file, req, Op::Write(data)),
        Event::Transceive {
            req,
            file,
            input,
            max_output,
        } => queue(wire, opens, file, req, Op::Transceive(input, max_output)),
        Event::Flush { req, file } => queue(wire, opens, file, req, Op::Flush),
        Event::Wait { req, pipe, timeout } => {
            if !opts.exports(&pipe) {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            }
            let t = match timeout {
                // 100 ns units; an i64::MAX is "for ever".
                Some(t) if (0..i64::MAX).contains(&t) => {
                    crate::WaitTimeout::After(Duration::from_nanos((t as u64).saturating_mul(100)))
                }
                Some(_) => crate::WaitTimeout::Forever,
                None => crate::WaitTimeout::Default,
            };
            let wire = Rc::clone(wire);
            tokio::task::spawn_local(async move {
                let waited = answer_later(
                    &wire,
                    req,
                    crate::tokio::wait_named_pipe(format!(r"\\.\pipe\{pipe}"), t),
                );
                let (req, r) = waited.await;
                let a = match r {
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
                open.target.abort();
            }
        }
        Event::Cancel { req } => {
            // A cancel names its request by message id (or async id, which
            // is the same here). Only what can be given up without losing
            // data stops: a read not yet begun, a wait; a transact whose
            // request is written is answered when the pipe answers.
            for open in opens.values() {
                if let Some(stop) = open.cancels.borrow_mut().remove(&req.message_id) {
                    let _ = stop.send(());
                }
            }
        }
        Event::Peek { req, file } => {
            let Some(open) = opens.get(&file) else {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
            };
            if open.reading.get() > 0 {
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
            match open.target.peek(&mut buf) {
                Ok(p) => {
                    let message = open.target.is_message();
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
            match open.target.set_read_mode(mode) {
                Ok(()) => wire.answer(req, Answer::Done),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
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

/// Starts the task of a new open and answers the CREATE.
fn start(wire: &Rc<Wire>, opens: &mut Opens, req: Req, file: FileId, target: Target) {
    let (tx, rx) = mpsc::unbounded_channel();
    let open = Open {
        tx,
        target: Rc::new(target),
        reading: Rc::new(Cell::new(0)),
        cancels: Rc::default(),
    };
    tokio::task::spawn_local(pipe_task(
        Rc::clone(wire),
        Rc::clone(&open.target),
        Rc::clone(&open.reading),
        Rc::clone(&open.cancels),
        rx,
    ));
    opens.insert(file, open);
    wire.answer(req, Answer::Opened);
}

/// Hands an operation to its pipe's task, in order.
fn queue(wire: &Rc<Wire>, opens: &Opens, file: FileId, req: Req, op: Op) {
    let Some(open) = opens.get(&file) else {
        return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
    };
    if matches!(op, Op::Read(_) | Op::Transceive(..)) {
        open.reading.set(open.reading.get() + 1);
    }
    let (stop, cancelled) = oneshot::channel();
    open.cancels.borrow_mut().insert(req.message_id, stop);
    if open.tx.send(Job { req, op, cancelled }).is_err() {
        wire.answer(req, Answer::Status(NtStatus::STATUS_PIPE_BROKEN));
    }
}

/// Runs `fut`; when it has not finished after [`INTERIM_AFTER`], tells the
/// client it is pending first. Gives the `Req` the final answer must use.
async fn answer_later<T>(wire: &Wire, req: Req, fut: impl Future<Output = T>) -> (Req, T) {
    let mut fut = std::pin::pin!(fut);
    match tokio::time::timeout(INTERIM_AFTER, &mut fut).await {
        Ok(v) => (req, v),
        Err(_) => {
            let req = wire.interim(req);
            (req, fut.await)
        }
    }
}

/// One open pipe's operations, one after another, as the client sent them.
async fn pipe_task(
    wire: Rc<Wire>,
    target: Rc<Target>,
    reading: Rc<Cell<usize>>,
    cancels: Rc<RefCell<HashMap<u64, oneshot::Sender<()>>>>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    // One buffer for the pipe's replies, grown to the largest asked for.
    let mut buf = Vec::new();
    while let Some(job) = rx.recv().await {
        let Job { req, op, mut cancelled } = job;
        run_job(&wire, &target, req, op, &mut cancelled, &reading, &mut buf).await;
        cancels.borrow_mut().remove(&req.message_id);
    }
}

async fn run_job(
    wire: &Wire,
    target: &Target,
    req: Req,
    op: Op,
    cancelled: &mut oneshot::Receiver<()>,
    reading: &Cell<usize>,
    buf: &mut Vec<u8>,
) {
    // A read is no longer waiting once its call returns, before the answer
    // goes out: a PEEK the client sends after it sees the answer.
    let done_reading = || reading.set(reading.get().saturating_sub(1));
    match op {
        Op::Read(n) => {
            buf.resize(n.max(1) as usize, 0);
            let buf = &mut buf[..n.max(1) as usize];
            // A read not yet begun, or waiting with nothing come, stops on a
            // cancel without losing a byte (the read is cancel safe until
            // the first byte of a message arrives).
            let read = async {
                tokio::select! {
                    biased;
                    r = target.read_msg(buf) => Some(r),
                    _ = &mut *cancelled => None,
                }
            };
            let (req, r) = answer_later(wire, req, read).await;
            done_reading();
            match r {
                None => wire.answer(req, Answer::Status(NtStatus::STATUS_CANCELLED)),
                Some(Ok(m)) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Some(Ok(m)) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Some(Err(e)) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        // A full pipe holds a write back (the server reads slowly).
        Op::Write(data) => match answer_later(wire, req, target.write_msg(&data)).await {
            (req, Ok(())) => wire.answer(req, Answer::Written(data.len() as u32)),
            (req, Err(e)) => wire.answer(req, Answer::Status(status_of(&e))),
        },
        Op::Transceive(input, n) => {
            buf.resize(n.max(1) as usize, 0);
            let buf = &mut buf[..n.max(1) as usize];
            let (req, r) = answer_later(wire, req, target.transact(&input, buf)).await;
            done_reading();
            match r {
                Ok(m) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Ok(m) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Op::Flush => {
            let flush = async {
                tokio::select! {
                    biased;
                    r = target.flush_buffers() => Some(r),
                    _ = &mut *cancelled => None,
                }
            };
            match answer_later(wire, req, flush).await {
                (req, None) => wire.answer(req, Answer::Status(NtStatus::STATUS_CANCELLED)),
                (req, Some(Ok(()))) => wire.answer(req, Answer::Done),
                (req, Some(Err(e))) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
    }
}

/// What QUERY_INFO reports: the local pipe's info, state and queue.
fn pipe_state(open: &Open) -> io::Result<PipeState> {
    let c = match &*open.target {
        Target::Local(c) => c,
        Target::Builtin(b) => {
            return Ok(PipeState {
                local: PipeLocalInfo {
                    pipe_type: 1,
                    configuration: 2,
                    max_instances: 255,
                    current_instances: 1,
                    inbound_quota: 4280,
                    read_data_available: b.queued() as u32,
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
    let available = match open.reading.get() {
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

/// The NTSTATUS a Windows server answers for a local pipe failure.
pub(super) fn status_of(e: &io::Error) -> NtStatus {
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
