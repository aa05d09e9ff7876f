//! One SMB2 connection and session to a server, shared by every remote pipe
//! opened there with the same credentials: the driver around
//! `pipeslot_smb::client`. Callers on any thread (or task) send requests,
//! and answers are matched to them by message id. A blocked caller reads
//! the socket itself when no one else is (delivering others' answers too),
//! so a round trip costs no thread hand-off; otherwise, and for tasks, the
//! connection's reader thread reads. The reader thread also keeps the time: an answer that does not come within the response timeout fails its
//! caller with `ERROR_SEM_TIMEOUT`; a connection that goes silent while
//! requests wait is probed with ECHO and, without an answer, failed as a
//! whole with `ERROR_NETNAME_DELETED`; a lost connection fails every
//! waiting call at once.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pipeslot_smb::client::{
    Auth, ClientConfig, ClientError, Connection, Entropy, Handshake, Response, SessionInfo, Step,
};
use pipeslot_smb::client::{ALL_DIALECTS, EMPTY_REQUEST};
use pipeslot_smb::header::Command;
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::{next_message, MAX_MESSAGE_LEN};

use super::options::{RemoteOptions, SmbCredentials, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use crate::error::{Error, Win32Error};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often the reader looks at the clock while nothing arrives.
const TICK: Duration = Duration::from_millis(250);

/// What a waiting caller gets.
enum SlotState {
    Waiting {
        deadline: Option<Instant>,
        async_id: Option<u64>,
        waker: Option<Waker>,
    },
    Done(Response),
    Failed(Error),
}

/// One outstanding request's rendezvous, for a blocked thread or a task.
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
    /// Nudges so far (changed under `state`): a waiter compares it with
    /// what it saw before it found the socket's reading taken, so a nudge
    /// in between is not lost.
    nudges: AtomicU64,
}

impl Slot {
    fn new(deadline: Option<Instant>) -> Arc<Slot> {
        Arc::new(Slot {
            state: Mutex::new(SlotState::Waiting {
                deadline,
                async_id: None,
                waker: None,
            }),
            cv: Condvar::new(),
            nudges: AtomicU64::new(0),
        })
    }

    fn settle(&self, outcome: SlotState) {
        let mut st = lock(&self.state);
        if let SlotState::Waiting { waker, .. } = &mut *st {
            if let Some(w) = waker.take() {
                w.wake();
            }
            *st = outcome;
            self.cv.notify_all();
        }
    }

    fn take(st: &mut SlotState) -> Option<Result<Response, Error>> {
        match std::mem::replace(
            st,
            SlotState::Failed(Error::new(Win32Error::ERROR_INVALID_HANDLE, "answer already taken")),
        ) {
            SlotState::Done(r) => Some(Ok(r)),
            SlotState::Failed(e) => Some(Err(e)),
            w @ SlotState::Waiting { .. } => {
                *st = w;
                None
            }
        }
    }

    fn is_settled(&self) -> bool {
        !matches!(&*lock(&self.state), SlotState::Waiting { .. })
    }

    /// The answer if it is there; else waits up to `d` for a delivery or
    /// a nudge after the `seen`-th (`None` when one came: go and read).
    fn take_or_wait(&self, d: Duration, seen: u64) -> Option<Result<Response, Error>> {
        let mut st = lock(&self.state);
        if let Some(r) = Slot::take(&mut st) {
            return Some(r);
        }
        if self.nudges.load(AtomicOrdering::SeqCst) != seen {
            return None;
        }
        let (mut st, _) = self.cv.wait_timeout(st, d).unwrap_or_else(|p| p.into_inner());
        Slot::take(&mut st)
    }

    fn nudges(&self) -> u64 {
        self.nudges.load(AtomicOrdering::SeqCst)
    }

    /// The socket's reading is free: a waiter should take it.
    fn nudge(&self) {
        let _st = lock(&self.state);
        self.nudges.fetch_add(1, AtomicOrdering::SeqCst);
        self.cv.notify_all();
    }
}

/// The async side of a slot.
pub(crate) struct SlotFuture(pub(crate) Arc<Slot>);

impl Future for SlotFuture {
    type Output = Result<Response, Error>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.0.state);
        if let Some(r) = Slot::take(&mut st) {
            return Poll::Ready(r);
        }
        if let SlotState::Waiting { waker, .. } = &mut *st {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct State {
    conn: Connection,
    slots: HashMap<u64, Arc<Slot>>,
    dead: Option<Error>,
    last_heard: Instant,
    probe: Option<u64>,
}

/// The read side: whoever holds it reads and delivers.
struct Rx {
    stream: TcpStream,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// A large frame read straight into its own buffer (no copy), and how
    /// much of it has come.
    big: Option<(Vec<u8>, usize)>,
}

/// Frames larger than this are read into a buffer of their own.
const BIG_FRAME: usize = 16 * 1024;

/// Shared by the handles and the reader thread.
struct Shared {
    server: String,
    stream: TcpStream,
    write: Mutex<()>,
    state: Mutex<State>,
    credits: Condvar,
    info: SessionInfo,
    timeout: Duration,
    rx: Mutex<Rx>,
    /// Blocked callers that read for themselves; while there are any, the
    /// reader thread only keeps the time.
    direct: std::sync::atomic::AtomicUsize,
    /// Wakes the reader thread when the last direct reader leaves.
    idle: (Mutex<()>, Condvar),
}

/// A live session, as pipes hold it; the last one gone logs off.
pub(crate) struct Session {
    shared: Arc<Shared>,
    /// The IPC$ tree every pipe of this session lives in.
    pub(crate) tree: u32,
    /// `host` as written in the pipe names (for TREE_CONNECT and messages).
    pub(crate) host: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Session({}, dialect {:#06x})",
            self.shared.server, self.shared.info.dialect
        )
    }
}

/// Sessions by server and identity, so pipes share them.
type Key = (String, u16, String, String);
static POOL: Mutex<Option<HashMap<Key, Weak<Session>>>> = Mutex::new(None);

impl Session {
    /// The pooled session for `host:port` as the configured user, connecting
    /// and logging on when there is none.
    pub(crate) fn get(host: &str, opts: &RemoteOptions) -> io::Result<Arc<Session>> {
        let port = opts.port()?;
        let creds = opts.credentials()?;
        // A session is reused only by the same user with the same password
        // (a digest of it; the password itself is not kept).
        let who = creds
            .as_ref()
            .map(|c| {
                use sha2::Digest;
                let d = sha2::Sha256::digest(c.nt_hash());
                format!("{}\\{} {:x}", c.domain, c.user, d)
            })
            .unwrap_or_default();
        // Sessions differ by what was asked of them too (protection,
        // dialects, timeouts).
        let terms = format!(
            "{} {} {:?} {:?}",
            opts.require_signing, opts.require_encryption, opts.dialects, opts.response_timeout
        );
        let key = (host.to_lowercase(), port, who, terms);
        // One connection attempt per key at a time: a second opener waits
        // and shares it instead of logging on twice.
        static CONNECTING: Mutex<()> = Mutex::new(());
        let _one = lock(&CONNECTING);
        if let Some(s) = lock(&POOL)
            .get_or_insert_with(HashMap::new)
            .get(&key)
            .and_then(Weak::upgrade)
        {
            if lock(&s.shared.state).dead.is_none() {
                return Ok(s);
            }
        }
        let s = Arc::new(Session::connect(host, port, creds, opts)?);
        lock(&POOL)
            .get_or_insert_with(HashMap::new)
            .insert(key, Arc::downgrade(&s));
        Ok(s)
    }

    fn connect(host: &str, port: u16, creds: Option<SmbCredentials>, opts: &RemoteOptions) -> io::Result<Session> {
        let server = display_server(host, port);
        let connect_timeout = opts.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let timeout = opts.response_timeout.unwrap_or(RESPONSE_TIMEOUT);
        let stream = dial(host, port, &server, connect_timeout)?;
        let auths = match creds {
            Some(c) => vec![Auth::Ntlm {
                user: c.user.clone(),
                domain: c.domain.clone(),
                nt_hash: c.nt_hash(),
            }],
            // No credentials: a null session, then the guest account.
            None => vec![
                Auth::Anonymous,
                Auth::Ntlm {
                    user: "guest".into(),
                    domain: String::new(),
                    nt_hash: pipeslot_smb::ntlm::nt_hash(""),
                },
            ],
        };
        let mut stream = Some(stream);
        let mut last: Option<io::Error> = None;
        for (i, auth) in auths.iter().enumerate() {
            let s = match stream.take() {
                Some(s) => s,
                None => dial(host, port, &server, connect_timeout)?,
            };
            let more = i + 1 < auths.len();
            match log_on(&s, &server, auth.clone(), opts, connect_timeout.max(timeout)) {
                // A null session may log on and still be refused IPC$
                // (`restrict anonymous`): then the guest account is next.
                Ok(conn) => match Session::start(s, server.clone(), host, conn, timeout) {
                    Err(e) if more && Error::win32(&e) == Some(Win32Error::ERROR_ACCESS_DENIED) => {
                        last = Some(e);
                    }
                    r => return r,
                },
                Err(e) if more && is_refusal(&e) => last = Some(e.into()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn start(
        stream: TcpStream,
        server: String,
        host: &str,
        conn: Connection,
        timeout: Duration,
    ) -> io::Result<Session> {
        let reader = stream
            .try_clone()
            .map_err(|e| Error::from_io(&e, format!("the connection to {server}")))?;
        // Readers block at most a tick, so the time is kept while they wait.
        reader.set_read_timeout(Some(TICK)).ok();
        // A server that stops reading must not stall writers for ever.
        stream.set_write_timeout(Some(timeout)).ok();
        let shared = Arc::new(Shared {
            server,
            stream,
            write: Mutex::new(()),
            info: conn.info.clone(),
            state: Mutex::new(State {
                conn,
                slots: HashMap::new(),
                dead: None,
                last_heard: Instant::now(),
                probe: None,
            }),
            credits: Condvar::new(),
            timeout,
            rx: Mutex::new(Rx {
                stream: reader,
                buf: Vec::with_capacity(64 * 1024),
                chunk: vec![0u8; 256 * 1024],
                big: None,
            }),
            direct: Default::default(),
            idle: (Mutex::new(()), Condvar::new()),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("pipeslot-smb".into())
            .spawn(move || read_loop(weak))
            .map_err(|e| Error::from_io(&e, "the SMB reader thread"))?;
        let mut s = Session {
            shared,
            tree: 0,
            host: host.to_owned(),
        };
        s.tree = s.tree_connect()?;
        Ok(s)
    }

    fn tree_connect(&self) -> io::Result<u32> {
        let path = format!(r"\\{}\IPC$", self.host);
        let r = self.call(
            Command::TREE_CONNECT,
            0,
            &pipeslot_smb::tree::tree_connect_body(&path),
            0,
        )?;
        if r.status != NtStatus::STATUS_SUCCESS {
            return Err(self.status_error(r.status, &format!("TREE_CONNECT {path}")).into());
        }
        let tree = pipeslot_smb::header::Header::new_checked(&r.msg[..])
            .ok()
            .and_then(|h| h.tree_id())
            .ok_or_else(|| self.protocol_error("a TREE_CONNECT answer without a tree id"))?;
        let d = self.shared.info.dialect;
        if d == pipeslot_smb::negotiate::dialect::SMB_3_0 || d == pipeslot_smb::negotiate::dialect::SMB_3_0_2 {
            self.validate_negotiate(tree)?;
        }
        Ok(tree)
    }

    fn validate_negotiate(&self, tree: u32) -> io::Result<()> {
        use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output};
        let input = lock(&self.shared.state).conn.validate_negotiate_input();
        let body = fsctl_body(
            fsctl::VALIDATE_NEGOTIATE_INFO,
            pipeslot_smb::create::FileId([0xff; 16]),
            &input,
            24,
        );
        let r = self.call(Command::IOCTL, tree, &body, 24)?;
        // Servers that do not do it (some NAS boxes) say so; a wrong answer
        // is what the check is for.
        if r.status.is_error() {
            return Ok(());
        }
        let out = parse_ioctl_output(&r.msg).map_err(|e| self.protocol_error(&e.to_string()))?;
        let st = lock(&self.shared.state);
        st.conn
            .check_validate_negotiate(out)
            .map_err(|e| Error::new(Win32Error::ERROR_ACCESS_DENIED, format!("{}: {e}", self.shared.server)).into())
    }

    /// What the session negotiated.
    pub(crate) fn info(&self) -> &SessionInfo {
        &self.shared.info
    }

    pub(crate) fn connection_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.shared.stream.as_fd()
    }

    /// `host:port`, for messages.
    pub(crate) fn server(&self) -> &str {
        &self.shared.server
    }

    /// Sends one request; the slot receives its final answer.
    /// `bounded` applies the response timeout (a pipe READ waits as long as
    /// the pipe has nothing to read; ECHO probes still watch the server).
    pub(crate) fn send(
        &self,
        command: Command,
        tree: u32,
        body: &[u8],
        receive: usize,
        bounded: bool,
    ) -> io::Result<Arc<Slot>> {
        let sh = &self.shared;
        let deadline = bounded.then(|| Instant::now() + sh.timeout);
        let mut st = lock(&sh.state);
        let out = loop {
            if let Some(e) = &st.dead {
                return Err(e.clone().into());
            }
            match st.conn.request(command, tree, body, receive) {
                Ok(out) => break out,
                Err(ClientError::NoCredits(n)) => {
                    let (g, t) = sh
                        .credits
                        .wait_timeout(st, sh.timeout)
                        .unwrap_or_else(|p| p.into_inner());
                    st = g;
                    if t.timed_out() && st.conn.credits() < u32::from(n) {
                        return Err(Error::new(
                            Win32Error::ERROR_SEM_TIMEOUT,
                            format!("{}: no credits for a request in {:?}", sh.server, sh.timeout),
                        )
                        .into());
                    }
                }
                Err(e) => {
                    return Err(Error::new(Win32Error::ERROR_INVALID_PARAMETER, format!("{}: {e}", sh.server)).into())
                }
            }
        };
        let slot = Slot::new(deadline);
        st.slots.insert(out.message_id, Arc::clone(&slot));
        drop(st);
        sh.write_frame(&out.frame)?;
        Ok(slot)
    }

    /// Sends and waits, blocking the thread.
    pub(crate) fn call(&self, command: Command, tree: u32, body: &[u8], receive: usize) -> io::Result<Response> {
        let slot = self.send(command, tree, body, receive, true)?;
        Ok(self.wait(&slot)?)
    }

    /// Blocks until `slot` is answered, reading the socket itself when no
    /// one else does: the answer then needs no hand-off between threads.
    pub(crate) fn wait(&self, slot: &Slot) -> Result<Response, Error> {
        use std::sync::atomic::Ordering;
        let sh = &self.shared;
        sh.direct.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            if slot.is_settled() {
                if let Some(r) = slot.take_or_wait(Duration::ZERO, slot.nudges()) {
                    break r;
                }
            }
            let seen = slot.nudges();
            match sh.rx.try_lock() {
                Ok(mut rx) => {
                    while !slot.is_settled() {
                        if !sh.pump(&mut rx, true) {
                            break;
                        }
                    }
                    drop(rx);
                    // Someone else may be waiting to read: let them.
                    sh.nudge_waiters();
                }
                Err(_) => {
                    // Whoever reads delivers our answer or, leaving, nudges us.
                    if let Some(r) = slot.take_or_wait(TICK, seen) {
                        break r;
                    }
                }
            }
        };
        if sh.direct.fetch_sub(1, Ordering::SeqCst) == 1 {
            sh.idle.1.notify_all();
        }
        r
    }

    /// Sends without waiting for the answer (CLOSE of a dropped handle).
    pub(crate) fn post(&self, command: Command, tree: u32, body: &[u8]) {
        let _ = self.send(command, tree, body, 0, true);
    }

    /// A server status as the Win32 error a Windows client reports.
    pub(crate) fn status_error(&self, status: NtStatus, what: &str) -> Error {
        Error::new(status.win32(), format!("{what} on {}: {status}", self.shared.server))
    }

    fn protocol_error(&self, why: &str) -> Error {
        Error::new(
            Win32Error::ERROR_UNEXP_NET_ERR,
            format!("{}: {why}", self.shared.server),
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Best effort and bounded: LOGOFF, then the reader sees the end.
        if let Ok(slot) = self.send(Command::LOGOFF, 0, &EMPTY_REQUEST, 0, true) {
            let sh = Arc::clone(&self.shared);
            let _ = std::thread::Builder::new()
                .name("pipeslot-smb-logoff".into())
                .spawn(move || {
                    let _ = slot.take_or_wait(RESPONSE_TIMEOUT, slot.nudges());
                    let _ = sh.stream.shutdown(Shutdown::Both);
                });
        } else {
            let _ = self.shared.stream.shutdown(Shutdown::Both);
        }
    }
}

impl Shared {
    fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        let _w = lock(&self.write);
        (&self.stream).write_all(frame).map_err(|e| {
            let dead = Error::new(
                Win32Error::ERROR_NETNAME_DELETED,
                format!("the connection to {} was lost ({e})", self.server),
            );
            self.die(dead.clone());
            dead.into()
        })
    }

    /// Fails every waiting call and refuses new ones.
    fn die(&self, why: Error) {
        let slots = {
            let mut st = lock(&self.state);
            if st.dead.is_none() {
                st.dead = Some(why.clone());
            }
            std::mem::take(&mut st.slots)
        };
        self.credits.notify_all();
        for (_, s) in slots {
            s.settle(SlotState::Failed(why.clone()));
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn deliver(&self, frame: Vec<u8>) {
        let mut st = lock(&self.state);
        st.last_heard = Instant::now();
        let rs = match st.conn.receive_owned(frame) {
            Ok(rs) => rs,
            Err(e) => {
                drop(st);
                return self.die(Error::new(
                    Win32Error::ERROR_UNEXP_NET_ERR,
                    format!("{}: {e}; the connection is dropped", self.server),
                ));
            }
        };
        let mut done = Vec::new();
        for r in rs {
            if st.probe == Some(r.message_id) && !r.interim {
                st.probe = None;
            }
            if r.interim {
                if let Some(slot) = st.slots.get(&r.message_id) {
                    if let SlotState::Waiting { async_id, .. } = &mut *lock(&slot.state) {
                        *async_id = r.async_id;
                    }
                }
            } else if let Some(slot) = st.slots.remove(&r.message_id) {
                done.push((slot, r));
            }
        }
        drop(st);
        self.credits.notify_all();
        for (slot, r) in done {
            slot.settle(SlotState::Done(r));
        }
    }

    /// One read (blocking up to a tick, or not at all) and the delivery of
    /// every whole frame; `false` once the connection is dead.
    fn pump(&self, rx: &mut Rx, block: bool) -> bool {
        let Rx {
            stream,
            buf,
            chunk,
            big,
        } = rx;
        let into: &mut [u8] = match big {
            Some((f, have)) => &mut f[*have..],
            None => chunk,
        };
        let got = if block {
            stream.read(into)
        } else {
            rustix::net::recv(&*stream, into, rustix::net::RecvFlags::DONTWAIT)
                .map(|(n, _)| n)
                .map_err(io::Error::from)
        };
        match got {
            Ok(0) => {
                self.die(Error::new(
                    Win32Error::ERROR_NETNAME_DELETED,
                    format!("{} closed the connection", self.server),
                ));
                return false;
            }
            Ok(n) => match big {
                Some((f, have)) => {
                    *have += n;
                    if *have == f.len() {
                        let (f, _) = big.take().expect("a big frame");
                        self.deliver(f);
                    }
                    return lock(&self.state).dead.is_none();
                }
                None => buf.extend_from_slice(&chunk[..n]),
            },
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if block {
                    self.tick();
                }
                return lock(&self.state).dead.is_none();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => {
                self.die(Error::new(
                    Win32Error::ERROR_NETNAME_DELETED,
                    format!("the connection to {} was lost ({e})", self.server),
                ));
                return false;
            }
        }
        let mut at = 0;
        loop {
            match next_message(&buf[at..], MAX_MESSAGE_LEN) {
                Ok(Some((msg, used))) => {
                    let msg = msg.to_vec();
                    self.deliver(msg);
                    at += used;
                }
                Ok(None) => {
                    // The start of a large frame: read the rest in place.
                    if let Some(h) = buf[at..].first_chunk::<4>() {
                        let len = pipeslot_smb::transport::message_len(*h).unwrap_or(0);
                        if len > BIG_FRAME {
                            let have = buf.len() - at - 4;
                            let mut f = vec![0u8; len];
                            f[..have].copy_from_slice(&buf[at + 4..]);
                            *big = Some((f, have));
                            at = buf.len();
                        }
                    }
                    break;
                }
                Err(e) => {
                    self.die(Error::new(
                        Win32Error::ERROR_UNEXP_NET_ERR,
                        format!("{}: {e}; the connection is dropped", self.server),
                    ));
                    return false;
                }
            }
        }
        buf.drain(..at);
        lock(&self.state).dead.is_none()
    }

    /// Wakes blocked callers so one of them takes over the reading.
    fn nudge_waiters(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.state).slots.values().cloned().collect();
        for s in slots {
            s.nudge();
        }
        self.idle.1.notify_all();
    }

    /// Timeouts and the liveness probe.
    fn tick(&self) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let expired: Vec<u64> = st
            .slots
            .iter()
            .filter(|(_, s)| matches!(&*lock(&s.state), SlotState::Waiting { deadline: Some(d), .. } if *d <= now))
            .map(|(id, _)| *id)
            .collect();
        if st.probe.is_some_and(|p| expired.contains(&p)) {
            drop(st);
            return self.die(Error::new(
                Win32Error::ERROR_NETNAME_DELETED,
                format!(
                    "{} stopped answering (no ECHO reply in {:?}); the connection is dropped",
                    self.server, self.timeout
                ),
            ));
        }
        let mut cancels = Vec::new();
        for id in expired {
            if let Some(slot) = st.slots.remove(&id) {
                let async_id = match &*lock(&slot.state) {
                    SlotState::Waiting { async_id, .. } => *async_id,
                    _ => None,
                };
                cancels.push(st.conn.cancel(id, async_id));
                slot.settle(SlotState::Failed(Error::new(
                    Win32Error::ERROR_SEM_TIMEOUT,
                    format!("{} did not answer in {:?}", self.server, self.timeout),
                )));
            }
        }
        // Requests wait and the server has said nothing for a while: ask
        // it whether it is still there.
        let quiet = now.duration_since(st.last_heard) >= self.timeout / 3;
        let probe = if quiet && st.probe.is_none() && !st.slots.is_empty() && st.dead.is_none() {
            match st.conn.request(Command::ECHO, 0, &EMPTY_REQUEST, 0) {
                Ok(out) => {
                    st.probe = Some(out.message_id);
                    st.slots.insert(out.message_id, Slot::new(Some(now + self.timeout)));
                    Some(out.frame)
                }
                Err(_) => None,
            }
        } else {
            None
        };
        drop(st);
        for c in cancels {
            let _ = self.write_frame(&c);
        }
        if let Some(f) = probe {
            let _ = self.write_frame(&f);
        }
    }
}

/// The connection's own reader: reads for tasks and for callers that do
/// not read themselves, and keeps the time every tick.
fn read_loop(shared: Weak<Shared>) {
    use std::sync::atomic::Ordering;
    loop {
        let Some(sh) = shared.upgrade() else { return };
        if lock(&sh.state).dead.is_some() {
            return;
        }
        if sh.direct.load(Ordering::SeqCst) > 0 {
            // A blocked caller reads; wait for it to leave, or a tick.
            let g = lock(&sh.idle.0);
            let _ = sh.idle.1.wait_timeout(g, TICK);
            sh.tick();
            continue;
        }
        let readable = {
            // The write side is the same socket: poll it, not holding the reading.
            let mut fds = [rustix::event::PollFd::new(&sh.stream, rustix::event::PollFlags::IN)];
            let ts = rustix::fs::Timespec::try_from(TICK).ok();
            matches!(rustix::event::poll(&mut fds, ts.as_ref()), Ok(n) if n > 0)
        };
        if readable {
            let mut rx = lock(&sh.rx);
            // Everything there is, without blocking: a caller may hold the
            // socket's reading by the time we are here.
            while sh.pump(&mut rx, false) && !rx_drained(&rx) {}
            drop(rx);
            // A caller that came meanwhile found the reading taken and
            // sleeps on its slot; it reads its own answer now, not a tick
            // later (which was a reopen's 250 ms tail).
            if sh.direct.load(Ordering::SeqCst) > 0 {
                sh.nudge_waiters();
            }
        } else {
            sh.tick();
        }
    }
}

/// Whether the socket has nothing more to read now.
fn rx_drained(rx: &Rx) -> bool {
    let mut fds = [rustix::event::PollFd::new(&rx.stream, rustix::event::PollFlags::IN)];
    !matches!(
        rustix::event::poll(&mut fds, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 })),
        Ok(n) if n > 0
    )
}

fn display_server(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves and connects: DNS names, `/etc/hosts`, IPv4 and IPv6 literals
/// (also Windows' `fe80--1.ipv6-literal.net` spelling).
fn dial(host: &str, port: u16, server: &str, timeout: Duration) -> io::Result<TcpStream> {
    let literal = host
        .strip_suffix(".ipv6-literal.net")
        .map(|h| h.replace('-', ":").replace('s', "%"));
    let h = literal.as_deref().unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match h.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (h, port).to_socket_addrs().map(Iterator::collect).map_err(|e| {
            Error::new(
                Win32Error::ERROR_BAD_NETPATH,
                format!("the network path was not found: no address for {host} ({e})"),
            )
        })?,
    };
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                s.set_nodelay(true).ok();
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound));
    Err(match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::new(
            Win32Error::ERROR_CONNECTION_REFUSED,
            format!("{server} refused the connection (no SMB server on that port?)"),
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::new(
            Win32Error::ERROR_SEM_TIMEOUT,
            format!("{server} did not accept a connection in {timeout:?}"),
        ),
        _ => Error::new(Win32Error::ERROR_BAD_NETPATH, format!("cannot reach {server}: {e}")),
    }
    .into())
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let mut at = 0;
    while at < N {
        match rustix::rand::getrandom(&mut b[at..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => at += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
    b
}

/// FILETIME now.
pub(crate) fn filetime_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (unix.as_nanos() / 100) as u64 + 116_444_736_000_000_000
}

/// A log-on failure of the handshake, with what the caller should hear.
struct LogOnError(Error, Option<NtStatus>);

impl From<LogOnError> for io::Error {
    fn from(e: LogOnError) -> io::Error {
        e.0.into()
    }
}

fn is_refusal(e: &LogOnError) -> bool {
    matches!(
        e.1,
        Some(NtStatus::STATUS_LOGON_FAILURE | NtStatus::STATUS_ACCESS_DENIED)
    )
}

fn log_on(
    s: &TcpStream,
    server: &str,
    auth: Auth,
    opts: &RemoteOptions,
    timeout: Duration,
) -> Result<Connection, LogOnError> {
    let io_err = |e: io::Error| {
        let code = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Win32Error::ERROR_SEM_TIMEOUT,
            _ => Win32Error::ERROR_NETNAME_DELETED,
        };
        LogOnError(Error::new(code, format!("{server} during the log-on: {e}")), None)
    };
    s.set_read_timeout(Some(timeout)).map_err(io_err)?;
    s.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let user = match &auth {
        Auth::Anonymous => "anonymous".to_owned(),
        Auth::Ntlm { user, domain, .. } if domain.is_empty() => user.clone(),
        Auth::Ntlm { user, domain, .. } => format!("{domain}\\{user}"),
    };
    let cfg = ClientConfig {
        auth,
        dialects: opts.dialects.clone().unwrap_or_else(|| ALL_DIALECTS.to_vec()),
        require_signing: opts.require_signing,
        require_encryption: opts.require_encryption,
        workstation: "PIPESLOT".into(),
        entropy: Entropy {
            client_guid: random(),
            salt: random(),
            client_challenge: random(),
            nonce_prefix: random(),
        },
        now: filetime_now(),
    };
    let (mut hs, first) = Handshake::start(cfg);
    let mut r = s;
    r.write_all(&first).map_err(io_err)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let msg = loop {
            match next_message(&buf, 1 << 20) {
                Ok(Some((m, used))) => break (m.to_vec(), used),
                Ok(None) => {}
                Err(e) => {
                    return Err(LogOnError(
                        Error::new(
                            Win32Error::ERROR_UNEXP_NET_ERR,
                            format!("{server} is not an SMB2 server: {e}"),
                        ),
                        None,
                    ))
                }
            }
            match r.read(&mut chunk).map_err(io_err)? {
                0 => {
                    return Err(LogOnError(
                        Error::new(
                            Win32Error::ERROR_NETNAME_DELETED,
                            format!("{server} closed the connection during the log-on (an SMB1-only server?)"),
                        ),
                        None,
                    ))
                }
                n => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..msg.1);
        let step = hs.receive(&msg.0).map_err(|e| {
            let st = match e {
                ClientError::Status(st) => Some(st),
                _ => None,
            };
            let code = match &e {
                ClientError::Status(st) => st.win32(),
                ClientError::SigningUnavailable(_) | ClientError::EncryptionUnavailable(_) => {
                    Win32Error::ERROR_ACCESS_DENIED
                }
                ClientError::Dialect(_) => Win32Error::ERROR_NOT_SUPPORTED,
                _ => Win32Error::ERROR_UNEXP_NET_ERR,
            };
            LogOnError(Error::new(code, format!("log-on to {server} as {user}: {e}")), st)
        })?;
        match step {
            Step::Send(f) => r.write_all(&f).map_err(io_err)?,
            Step::Wait => {}
            Step::Ready => return Ok(hs.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nudge_between_a_look_and_the_wait_is_not_lost() {
        let slot = Slot::new(None);
        let seen = slot.nudges();
        // The reader leaves after the waiter found the reading taken, and
        // before the waiter sleeps: the waiter must not sleep a tick.
        slot.nudge();
        let t = Instant::now();
        assert!(slot.take_or_wait(Duration::from_secs(5), seen).is_none());
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // No nudge since: it waits for the answer, which a delivery gives.
        let seen = slot.nudges();
        let s = Arc::clone(&slot);
        let deliver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s.settle(SlotState::Failed(Error::new(Win32Error::ERROR_NETNAME_DELETED, "gone")));
        });
        let r = slot
            .take_or_wait(Duration::from_secs(5), seen)
            .expect("the delivery wakes it");
        assert_eq!(r.unwrap_err().code(), Win32Error::ERROR_NETNAME_DELETED);
        deliver.join().unwrap();
    }
}
