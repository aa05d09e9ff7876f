//! The acceptor: one thread per pipe name per server process that answers
//! every client at once, so busy and wait are exact and no client ever waits
//! on a server thread that is busy elsewhere.
//!
//! ```text
//!  client ──connect──▶ <pid>-<nonce>.sock ──▶ acceptor thread
//!                                               │ OPEN: a listening instance?  ACCEPTED → hand the socket
//!                                               │                               to that instance (Pending)
//!                                               │                               BUSY / ACCESS_DENIED → close
//!                                               │ WAIT: AVAILABLE now, or hold the socket until an
//!                                               │       instance listens
//!                                               └ CENSUS: this process's instances and the pipe's options
//! ```
//!
//! Instances live in slots under one mutex; a slot moves
//! Listening → Pending (a client was handed over) → Connected (the server
//! took it) → Idle (disconnected) → Listening (connect called again).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use pipeslot_proto::wire::local::{
    hello_flags, hello_len_hint, reply_flags, Hello, HelloPacket, Reply, ReplyStatus, Request, HELLO_LEN,
};
use pipeslot_proto::PipeName;
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::ns;
use crate::pipe::home::Home;
use crate::pipe::{Access, PipeMode};
use crate::security::{ClientIdentity, PipeSecurity};
use crate::shm::segment::End;

/// How long a connecting client may take to send its hello.
const HELLO_DEADLINE: Duration = Duration::from_secs(2);
/// How long the acceptor rests when it is out of descriptors, spare and all.
const STARVED_BACKOFF: Duration = Duration::from_millis(10);

/// What spending the spare descriptor did.
enum Refusal {
    /// A waiting client was told NO_RESOURCES.
    Told,
    /// No connection was waiting after all.
    NonePending,
    /// There was no spare to spend.
    NoSpare,
}

/// A descriptor held in reserve for telling clients the process has no
/// more (`/dev/null`, never read).
fn open_spare() -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()
}

/// The options of one instance that the acceptor tells clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstanceConfig {
    pub(crate) pipe_mode: PipeMode,
    pub(crate) access: Access,
    /// 1..=254, or 255 for unlimited.
    pub(crate) max_instances: u8,
    pub(crate) in_buffer: u32,
    pub(crate) out_buffer: u32,
    pub(crate) default_timeout_ms: u32,
    pub(crate) reject_remote: bool,
    /// The instance's front end can take the shared-memory data path.
    pub(crate) shm: bool,
}

/// A client the acceptor let in, waiting for its instance: the socket and,
/// when the handshake chose it, the server's end of the shared memory.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) fd: OwnedFd,
    pub(crate) shm: Option<Box<crate::shm::segment::End>>,
}

impl InstanceConfig {
    pub(crate) fn reply(&self, status: ReplyStatus, instances: u32, listening: u32) -> Reply {
        Reply {
            status,
            pipe_type: u8::from(self.pipe_mode == PipeMode::Message),
            access: self.access.bits(),
            max_instances: self.max_instances,
            data_path: 0,
            flags: if self.reject_remote {
                reply_flags::REJECT_REMOTE
            } else {
                0
            },
            in_buffer: self.in_buffer,
            out_buffer: self.out_buffer,
            default_timeout_ms: self.default_timeout_ms,
            server_pid: std::process::id(),
            instances,
            listening,
        }
    }
}

/// Where one instance stands.
#[derive(Debug)]
pub(crate) enum SlotState {
    /// Waiting for a client (created, or connect called after a disconnect).
    Listening,
    /// A client was accepted; the server has not picked it up yet.
    Pending(Accepted, ClientIdentity),
    /// The server holds the client. `acknowledged`: connect() has returned
    /// for this client (a second connect() is then `ERROR_PIPE_CONNECTED`).
    Connected { acknowledged: bool },
    /// Disconnected; not listening until connect is called.
    Idle,
}

#[derive(Debug)]
struct Slot {
    state: SlotState,
    /// When the slot last started listening: clients go to the instance
    /// that has listened longest (Win32's FIFO of waiting instances).
    since: u64,
    config: InstanceConfig,
    /// Wakes this instance's blocking ConnectNamedPipe alone: one shared
    /// condvar woke every instance of the name for each client, which with
    /// thousands of instances made opens quadratic.
    changed: Arc<Condvar>,
    #[cfg(feature = "tokio")]
    notify: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Default)]
pub(crate) struct Slots {
    slots: Vec<Option<Slot>>,
    closed: bool,
    /// The clock of `Slot::since`.
    listens: u64,
}

impl Slots {
    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    fn counts(&self) -> (u32, u32) {
        let n = self.live().count() as u32;
        let l = self.live().filter(|s| matches!(s.state, SlotState::Listening)).count() as u32;
        (n, l)
    }

    pub(crate) fn is_listening(&self, id: usize) -> bool {
        matches!(
            self.slots.get(id),
            Some(Some(Slot {
                state: SlotState::Listening,
                ..
            }))
        )
    }

    /// Makes an instance listen again (connect after a disconnect), last in
    /// the line of listening instances.
    pub(crate) fn listen(&mut self, id: usize) {
        self.listens += 1;
        let at = self.listens;
        if let Some(Some(slot)) = self.slots.get_mut(id) {
            slot.state = SlotState::Listening;
            slot.since = at;
        }
    }

    /// The instance that has listened longest.
    fn longest_listening(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Some(Slot {
                    state: SlotState::Listening,
                    since,
                    ..
                }) => Some((*since, i)),
                _ => None,
            })
            .min()
            .map(|(_, i)| i)
    }

    pub(crate) fn state_mut(&mut self, id: usize) -> &mut SlotState {
        match self.slots.get_mut(id) {
            Some(Some(s)) => &mut s.state,
            _ => unreachable!("a slot lives as long as its instance"),
        }
    }
}

/// The per-process, per-name acceptor.
#[derive(Debug)]
pub(crate) struct Acceptor {
    name: PipeName,
    home: Arc<Home>,
    socket: String,
    security: PipeSecurity,
    /// The pipe's first instance's direction and maximum, as this acceptor
    /// found them when it started (they hold for the pipe's whole life).
    first: (Access, u8),
    slots: Mutex<Slots>,
    /// WAIT connections the thread holds (read by instances to decide
    /// whether a change is worth waking the thread for).
    waiting: AtomicUsize,
    wake: OwnedFd,
    /// The shared-memory segment made ahead for the next open.
    shm_spare: Mutex<SpareSegment>,
}

/// See [`Acceptor::make_spare`].
#[derive(Debug, Default)]
struct SpareSegment {
    /// The buffer sizes (out, in) the last shared-memory open asked for.
    sizes: Option<(u32, u32)>,
    end: Option<((u32, u32), Box<End>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Acceptor>>> {
    static R: OnceLock<Mutex<HashMap<String, Weak<Acceptor>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Serialises instance creation within this process (other processes are
/// kept out by the folder lock).
pub(crate) fn registry_lock() -> MutexGuard<'static, HashMap<String, Weak<Acceptor>>> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

impl Acceptor {
    /// This process's live acceptor for a name, if any.
    pub(crate) fn find(reg: &HashMap<String, Weak<Acceptor>>, folded: &str) -> Option<Arc<Acceptor>> {
        reg.get(folded).and_then(Weak::upgrade).filter(|a| !a.lock().closed)
    }

    /// Binds a fresh socket in the pipe's folder and starts the thread.
    pub(crate) fn start(
        reg: &mut HashMap<String, Weak<Acceptor>>,
        name: &PipeName,
        home: Arc<Home>,
        security: PipeSecurity,
        first: (Access, u8),
    ) -> io::Result<Arc<Acceptor>> {
        let socket = ns::fresh_socket_name();
        let listener = ns::bind(home.dir(), &socket)?;
        listener.set_nonblocking(true)?;
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let acc = Arc::new(Acceptor {
            name: name.clone(),
            home,
            socket,
            security,
            first,
            slots: Mutex::new(Slots::default()),
            waiting: AtomicUsize::new(0),
            wake,
            shm_spare: Default::default(),
        });
        let thread_acc = Arc::clone(&acc);
        std::thread::Builder::new()
            .name(format!("pipeslot-acceptor {}", name.name()))
            .spawn(move || thread_acc.run(listener))?;
        reg.insert(name.folded().to_owned(), Arc::downgrade(&acc));
        Ok(acc)
    }

    /// The pipe's first instance's direction and maximum.
    pub(crate) fn first(&self) -> (Access, u8) {
        self.first
    }

    /// The file name of this process's socket in its home folder.
    pub(crate) fn socket_name(&self) -> &str {
        &self.socket
    }

    /// Where this process serves the name.
    pub(crate) fn home(&self) -> &Arc<Home> {
        &self.home
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The options of this process's first live instance, and its counts.
    pub(crate) fn census(&self) -> Option<(InstanceConfig, u32)> {
        let s = self.lock();
        let first = s.live().next()?.config;
        Some((first, s.counts().0))
    }

    /// Adds a listening instance. `None` when the acceptor is shutting down.
    pub(crate) fn add(&self, config: InstanceConfig) -> Option<usize> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        s.listens += 1;
        let slot = Slot {
            state: SlotState::Listening,
            since: s.listens,
            config,
            changed: Arc::new(Condvar::new()),
            #[cfg(feature = "tokio")]
            notify: Arc::new(tokio::sync::Notify::new()),
        };
        let id = match s.slots.iter().position(Option::is_none) {
            Some(i) => {
                s.slots[i] = Some(slot);
                i
            }
            None => {
                s.slots.push(Some(slot));
                s.slots.len() - 1
            }
        };
        drop(s);
        self.poke_waiters();
        Some(id)
    }

    /// Removes an instance; the last one shuts the acceptor down.
    pub(crate) fn remove(&self, id: usize) {
        let mut s = self.lock();
        if let Some(slot) = s.slots.get_mut(id) {
            *slot = None;
        }
        let closed = s.live().next().is_none();
        s.closed = closed;
        drop(s);
        if closed {
            self.poke();
        }
    }

    /// Wakes the thread to re-check its state (waiters, shutdown).
    pub(crate) fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Wakes the thread if clients wait for a listening instance: call after
    /// an instance started listening. The count is raised under the slots
    /// lock before a waiter is parked, so no waiter is missed.
    pub(crate) fn poke_waiters(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.poke();
        }
    }

    /// Signals an instance that its state changed, after letting go of the
    /// slots: a thread woken while the lock is still held would only wake
    /// to block on it (two more context switches per open).
    fn signal(&self, s: MutexGuard<'_, Slots>, id: usize) {
        let Some(Some(slot)) = s.slots.get(id) else { return };
        let changed = Arc::clone(&slot.changed);
        #[cfg(feature = "tokio")]
        let notify = Arc::clone(&slot.notify);
        drop(s);
        changed.notify_all();
        #[cfg(feature = "tokio")]
        notify.notify_one();
    }

    /// Waits (blocking) for a change to slot `id`, up to `timeout`.
    pub(crate) fn wait_change<'a>(
        &self,
        guard: MutexGuard<'a, Slots>,
        id: usize,
        timeout: Duration,
    ) -> MutexGuard<'a, Slots> {
        let Some(Some(slot)) = guard.slots.get(id) else {
            return guard;
        };
        let cv = Arc::clone(&slot.changed);
        cv.wait_timeout(guard, timeout)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn notifier(&self, id: usize) -> Arc<tokio::sync::Notify> {
        match self.lock().slots.get(id) {
            Some(Some(s)) => Arc::clone(&s.notify),
            _ => Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn run(self: Arc<Self>, listener: UnixListener) {
        let mut pending: Vec<PendingHello> = Vec::new();
        let mut waiters: Vec<OwnedFd> = Vec::new();
        // One descriptor in reserve. Out of descriptors, accept() fails and
        // the listener stays readable: clients would wait unanswered and
        // poll would spin. Closing the spare lets one connection in to be
        // told so (NO_RESOURCES: ERROR_NO_SYSTEM_RESOURCES) and closed.
        let mut spare = open_spare();
        let mut starved = false;
        loop {
            if self.lock().closed {
                break;
            }
            if std::mem::take(&mut starved) {
                // Not even the spare: wait for descriptors to come back
                // rather than spin on a listener that stays readable.
                std::thread::sleep(STARVED_BACKOFF);
                spare = spare.or_else(open_spare);
            }
            self.make_spare();
            if !waiters.is_empty() && self.lock().counts().1 > 0 {
                for w in waiters.drain(..) {
                    let reply = self.first_reply(ReplyStatus::AVAILABLE);
                    let _ = rustix::io::write(&w, &reply.emit());
                }
                self.waiting.store(0, Ordering::Release);
            }
            let now = Instant::now();
            pending.retain(|p| p.deadline > now);
            let timeout = pending
                .iter()
                .map(|p| p.deadline.saturating_duration_since(now))
                .min()
                .and_then(|d| rustix::fs::Timespec::try_from(d).ok());
            let mut fds = Vec::with_capacity(2 + pending.len() + waiters.len());
            fds.push(PollFd::new(&listener, PollFlags::IN));
            fds.push(PollFd::new(&self.wake, PollFlags::IN));
            for p in &pending {
                fds.push(PollFd::new(&p.fd, PollFlags::IN));
            }
            for w in &waiters {
                fds.push(PollFd::new(w, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::error!("acceptor for {} cannot poll: {e}", self.name);
                    break;
                }
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            if ready[1] {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut b);
            }
            // Waiters only ever become readable by closing: drop them.
            let np = pending.len();
            let mut i = 0;
            waiters.retain(|_| {
                let keep = !ready[2 + np + i];
                i += 1;
                keep
            });
            self.waiting.store(waiters.len(), Ordering::Release);
            let mut still = Vec::with_capacity(pending.len());
            for (i, mut p) in pending.into_iter().enumerate() {
                if !ready[2 + i] {
                    still.push(p);
                    continue;
                }
                match p.read() {
                    Ok(true) => {
                        if let Some(w) = self.handle(p) {
                            waiters.push(w);
                        }
                    }
                    Ok(false) => still.push(p),
                    Err(_) => {}
                }
            }
            pending = still;
            if ready[0] {
                loop {
                    // Non-blocking from the start: one system call fewer per open.
                    let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
                    match rustix::net::accept_with(&listener, flags).map_err(io::Error::from) {
                        Ok(fd) => {
                            let mut p = PendingHello {
                                fd,
                                buf: Vec::with_capacity(MAX_HELLO),
                                deadline: Instant::now() + HELLO_DEADLINE,
                            };
                            // Clients send their hello right after connecting:
                            // it is usually here already, so answer without
                            // another round of poll.
                            match p.read() {
                                Ok(true) => {
                                    if let Some(w) = self.handle(p) {
                                        waiters.push(w);
                                    }
                                }
                                Ok(false) => pending.push(p),
                                Err(_) => {}
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // accept() fails so before it looks for a connection.
                        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                            match self.refuse_one(&listener, &mut spare) {
                                Refusal::Told => {}
                                Refusal::NonePending => break,
                                Refusal::NoSpare => {
                                    starved = true;
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("acceptor for {}: accept failed: {e}", self.name);
                            break;
                        }
                    }
                }
            }
        }
        // Close every connection first: a creator may be waiting for our
        // answer while holding the folder lock that shut_down takes.
        drop(pending);
        drop(waiters);
        drop(listener);
        self.shut_down();
    }

    /// Out of descriptors: spends the spare on one waiting connection to
    /// answer it NO_RESOURCES, then takes the spare back.
    fn refuse_one(&self, listener: &UnixListener, spare: &mut Option<OwnedFd>) -> Refusal {
        let Some(fd) = spare.take() else {
            return Refusal::NoSpare;
        };
        drop(fd);
        let told = match listener.accept() {
            Ok((s, _)) => {
                tracing::debug!(
                    "acceptor for {}: out of file descriptors; a client is told so",
                    self.name
                );
                let reply = Reply {
                    status: ReplyStatus::NO_RESOURCES,
                    ..DEAD_REPLY
                };
                let _ = rustix::io::write(&s, &reply.emit());
                Refusal::Told
            }
            Err(_) => Refusal::NonePending,
        };
        *spare = open_spare();
        told
    }

    fn shut_down(&self) {
        let lock = self.home.lock();
        self.home.dir().remove(&self.socket);
        if let Ok(Some(mut held)) = lock {
            self.home.tidy(&mut held);
        }
    }

    fn first_reply(&self, status: ReplyStatus) -> Reply {
        let s = self.lock();
        let (n, l) = s.counts();
        let first = s.live().next().map(|slot| slot.config);
        match first {
            Some(config) => config.reply(status, n, l),
            None => DEAD_REPLY,
        }
    }

    /// Answers one complete hello. Returns the socket when it becomes a waiter.
    fn handle(&self, p: PendingHello) -> Option<OwnedFd> {
        let hello = match HelloPacket::new_checked(&p.buf[..]) {
            Ok(h) => Hello::parse(&h),
            Err(_) => {
                let _ = rustix::io::write(
                    &p.fd,
                    &Reply {
                        status: ReplyStatus::BAD_REQUEST,
                        ..DEAD_REPLY
                    }
                    .emit(),
                );
                return None;
            }
        };
        let send = |r: Reply| {
            let _ = rustix::io::write(&p.fd, &r.emit());
        };
        if hello.name != self.name.folded() {
            send(Reply {
                status: ReplyStatus::NOT_FOUND,
                ..DEAD_REPLY
            });
            return None;
        }
        match hello.request {
            Request::CENSUS => {
                // Adding an instance is the owner's (or root's, or a granted
                // user's) right, as FILE_CREATE_PIPE_INSTANCE is on
                // Windows: no squatting on a served name to catch its clients.
                let me = ns::me();
                let creator_ok = ClientIdentity::of_peer(p.fd.as_fd())
                    .map(|c| c.uid == me || self.security.permits_create_instance(c.uid, c.gid, &c.groups))
                    .unwrap_or(false);
                if hello.flags & hello_flags::CREATE != 0 && !creator_ok {
                    send(self.first_reply(ReplyStatus::ACCESS_DENIED));
                } else {
                    send(self.first_reply(ReplyStatus::CENSUS));
                }
                None
            }
            Request::WAIT => {
                let s = self.lock();
                if s.counts().1 > 0 {
                    drop(s);
                    send(self.first_reply(ReplyStatus::AVAILABLE));
                    None
                } else {
                    self.waiting.fetch_add(1, Ordering::AcqRel);
                    Some(p.fd)
                }
            }
            Request::OPEN => {
                self.open(p.fd, &hello);
                None
            }
            _ => {
                send(Reply {
                    status: ReplyStatus::BAD_REQUEST,
                    ..DEAD_REPLY
                });
                None
            }
        }
    }

    /// A segment for a shared-memory open: the one made ahead when its
    /// sizes fit, else a new one. Either way the next is made after the
    /// reply has gone ([`Acceptor::make_spare`]).
    fn segment(&self, out_buffer: u32, in_buffer: u32) -> Option<Box<End>> {
        let mut spare = lock(&self.shm_spare);
        spare.sizes = Some((out_buffer, in_buffer));
        match spare.end.take() {
            Some((sizes, end)) if sizes == (out_buffer, in_buffer) => Some(end),
            _ => crate::shm::segment::create(out_buffer, in_buffer).ok().map(Box::new),
        }
    }

    /// Makes the next shared-memory open's segment between clients, so
    /// that its six system calls are not in a client's wait for its reply.
    /// Only once a client took shared memory, for the sizes it took.
    fn make_spare(&self) {
        let mut spare = lock(&self.shm_spare);
        if let (Some(sizes), None) = (spare.sizes, &spare.end) {
            spare.end = crate::shm::segment::create(sizes.0, sizes.1)
                .ok()
                .map(|end| (sizes, Box::new(end)));
        }
    }

    fn open(&self, fd: OwnedFd, hello: &Hello) {
        let deny = |fd: &OwnedFd, s: &Slots, status| {
            let (n, l) = s.counts();
            let reply = match s.live().next() {
                Some(slot) => slot.config.reply(status, n, l),
                None => Reply { status, ..DEAD_REPLY },
            };
            let _ = rustix::io::write(fd, &reply.emit());
        };
        let Ok(ident) = ClientIdentity::of_peer(fd.as_fd()) else {
            return;
        };
        let mut s = self.lock();
        let me = rustix::process::geteuid().as_raw();
        // A remote client comes through the gateway, believed only from root
        // or our own user. The pipe's ACL then applies to the remote user
        // (as Windows checks the remote user's token, not the server
        // service's): the remote-user list, not the gateway's uid.
        let remote = hello.flags & hello_flags::REMOTE != 0 && (ident.uid == 0 || ident.uid == me);
        let remote_ext = match remote {
            true => pipeslot_proto::wire::local::hello_ext::decode(&hello.extensions).unwrap_or_default(),
            false => Vec::new(),
        };
        let allowed = match remote {
            true => {
                let user = remote_ext
                    .iter()
                    .find(|(t, _)| *t == pipeslot_proto::wire::local::hello_ext::REMOTE_USER)
                    .map_or("", |(_, v)| v.as_str());
                self.security.permits_remote(user)
            }
            false => self.security.permits(ident.uid, ident.gid, &ident.groups),
        };
        if !allowed {
            tracing::debug!("{}: refused uid {} (access control)", self.name, ident.uid);
            return deny(&fd, &s, ReplyStatus::ACCESS_DENIED);
        }
        let wants_read = hello.flags & hello_flags::READ != 0;
        let wants_write = hello.flags & hello_flags::WRITE != 0;
        let Some(first) = s.live().next().map(|s| s.config) else {
            return deny(&fd, &s, ReplyStatus::NOT_FOUND);
        };
        let access_ok = (!wants_read || first.access.outbound()) && (!wants_write || first.access.inbound());
        if !access_ok || (remote && first.reject_remote) {
            return deny(&fd, &s, ReplyStatus::ACCESS_DENIED);
        }
        let Some(id) = s.longest_listening() else {
            return deny(&fd, &s, ReplyStatus::BUSY);
        };
        let (n, l) = s.counts();
        let config = match &s.slots[id] {
            Some(slot) => slot.config,
            None => return,
        };
        let mut reply = config.reply(ReplyStatus::ACCEPTED, n, l.saturating_sub(1));
        // Shared memory when both sides can, the client is of our own user
        // or root (crate::shm::trusts) and descriptors are not short; when
        // making it fails (memory, descriptors), the socket path still serves.
        let segment = (config.shm
            && hello.flags & hello_flags::SHM != 0
            && crate::shm::trusts(ident.uid)
            && crate::shm::affordable(fd.as_fd()))
        .then(|| self.segment(config.out_buffer, config.in_buffer))
        .flatten();
        if segment.is_some() {
            reply.data_path = pipeslot_proto::wire::local::data_path::SHM;
        }
        let bytes = reply.emit();
        let sent = match &segment {
            None => rustix::io::write(&fd, &bytes),
            Some(end) => send_with_fds(&fd, &bytes, &end.give()),
        };
        if sent != Ok(bytes.len()) {
            return;
        }
        let accepted = Accepted { fd, shm: segment };
        let mut ident = ident;
        if remote {
            // Believed only from root or our own user (the gateway).
            ident.computer = Some(String::from("remote"));
            for (t, v) in remote_ext {
                use pipeslot_proto::wire::local::hello_ext as ext;
                match t {
                    ext::REMOTE_USER => ident.remote_user = Some(v),
                    ext::REMOTE_ADDRESS => ident.remote_address = Some(v),
                    ext::REMOTE_COMPUTER => ident.computer = Some(v),
                    _ => {}
                }
            }
        }
        *s.state_mut(id) = SlotState::Pending(accepted, ident);
        self.signal(s, id);
    }
}

/// The reply with the shared-memory segment's descriptors (SCM_RIGHTS).
pub(crate) fn send_with_fds(fd: impl AsFd, bytes: &[u8], give: &[BorrowedFd<'_>; 3]) -> rustix::io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(give)) {
        return Err(rustix::io::Errno::NOBUFS);
    }
    rustix::net::sendmsg(fd, &[std::io::IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)
}

/// A reply for a process that no longer serves the name.
pub(crate) const DEAD_REPLY: Reply = Reply::bare(ReplyStatus::NOT_FOUND);

/// A connection whose hello is still arriving.
struct PendingHello {
    fd: OwnedFd,
    buf: Vec<u8>,
    deadline: Instant,
}

/// The longest hello: the fixed part, a name and the gateway's extensions.
const MAX_HELLO: usize = 16 + 2048;

impl PendingHello {
    /// Reads what has arrived; `Ok(true)` once the hello is complete. The
    /// first read asks for as much as a hello can hold, so a whole hello
    /// takes one system call; a client speaks only after the reply, so
    /// bytes beyond the hello break the protocol (`InvalidData`).
    fn read(&mut self) -> io::Result<bool> {
        let have = self.buf.len();
        let want = hello_len_hint(&self.buf).unwrap_or(MAX_HELLO);
        if want > MAX_HELLO {
            return Err(io::ErrorKind::InvalidData.into());
        }
        self.buf.resize(want, 0);
        let got = rustix::io::read(&self.fd, &mut self.buf[have..]);
        match got {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.buf.truncate(have + n);
                match hello_len_hint(&self.buf) {
                    Some(len) if self.buf.len() > len => Err(io::ErrorKind::InvalidData.into()),
                    Some(len) if self.buf.len() == len => Ok(true),
                    // The fixed part is here: the rest may be too.
                    Some(_) if have < HELLO_LEN => self.read_more(),
                    _ => Ok(false),
                }
            }
            Err(rustix::io::Errno::AGAIN) => {
                self.buf.truncate(have);
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn read_more(&mut self) -> io::Result<bool> {
        match self.read() {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(e),
            r => r,
        }
    }
}
