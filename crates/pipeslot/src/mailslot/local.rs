//! Local mailslots: the reader's queue and the local datagram transport.
//!
//! ```text
//! $PIPESLOT_DIR/m-<key>/   key = SHA-256 of the folded name (see `ns`); owned by the
//!                          reader's user, 0755, so no other user puts anything in it
//!   name          the creator's spelling, for listing
//!   meta          max=…  limit=…  network=0|1  pid=…   (what writers check)
//!   reader.lock   0600, flock'd (exclusive) by the one reader for its whole life
//!   reader.sock   SOCK_DGRAM bound by the reader: writers send one datagram per message
//!   query.sock    SOCK_STREAM bound by the reader: connect, read one info record
//! ```
//!
//! - One reader per name: `reader.lock` is flock'd without waiting; a second
//!   create gets `ERROR_ALREADY_EXISTS`, and so does another user's while a
//!   reader of the owner's answers on `query.sock` (nobody else can open the
//!   lock file to hold it). What a dead reader of another user left behind
//!   is root's to clear (see `ns::claim`). The kernel drops the lock when the
//!   reader dies, so a crashed reader never blocks a new one; the new reader
//!   replaces its stale sockets. (A reader that closes unlinks the lock file
//!   while still holding it; a creator that locked an unlinked file sees the
//!   inode change and starts over.)
//! - Datagrams keep message boundaries and are never torn or interleaved.
//! - A pump thread moves datagrams from the socket into the reader's queue
//!   as they arrive, so writers return at once, as on Windows, while the
//!   kernel's tiny per-socket queue (`net.unix.max_dgram_qlen`) is never the
//!   limit. Past [`QUOTA_BYTES`] or [`QUOTA_MESSAGES`] queued it stops, the
//!   kernel queue fills, and writers block: backpressure, never loss, never
//!   unbounded memory.
//! - Info is exact: the reader and the pump both drain the socket under the
//!   queue's lock, so a message is always either in the kernel or in the
//!   queue, and `info()` drains before it counts.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipeslot_proto::MailslotName;
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::net::{RecvFlags, SendFlags};

use super::{MailslotInfo, MailslotListing, ReadTimeout, MAILSLOT_NO_MESSAGE};
use crate::error::{err, Error, Win32Error};
use crate::ns::{self, Claim, Dir, Kind, Object};

pub(crate) const READER_SOCK: &str = "reader.sock";
pub(crate) const QUERY_SOCK: &str = "query.sock";
pub(crate) const READER_LOCK: &str = "reader.lock";
pub(crate) const META: &str = "meta";

/// The largest local message when the maximum message size is 0 ("any"),
/// and the most a reader ever takes: one datagram's practical limit.
pub const MAX_LOCAL_MESSAGE: usize = 4 << 20;
/// Queued bytes past which the pump stops taking datagrams (writers then
/// wait in the kernel until the reader reads).
pub const QUOTA_BYTES: usize = 32 << 20;
/// Queued messages past which the pump stops, as for [`QUOTA_BYTES`].
pub const QUOTA_MESSAGES: usize = 1 << 20;

/// Bookkeeping bytes counted per queued message against the quota.
const MESSAGE_OVERHEAD: usize = 64;
/// Datagrams taken out of the socket per drain while under quota, so a
/// drain under heavy writing ends.
const DRAIN_BATCH: usize = 4096;

/// How many datagrams a drain may take.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// Up to [`DRAIN_BATCH`], stopping at the quota (the pump, reads).
    UnderQuota,
    /// Everything the kernel queue can hold, quota or not (info): the
    /// first `n` datagrams include every one queued when the drain began.
    Exact(usize),
}

/// The most datagrams the kernel queues on one Unix datagram socket:
/// `net.unix.max_dgram_qlen` + 1 (a sender waits while more are queued).
fn kernel_queue_max() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .map_or(65_536, |n| n.saturating_add(1))
    })
}
/// The query record: magic, max, next, count, timeout, pid, network.
const QUERY_LEN: usize = 28;
const QUERY_MAGIC: u32 = 0x534d_5350; // "PSMS"

/// What a reader publishes in its folder for writers and the datagram receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// nMaxMessageSize as given (0 = any).
    pub(crate) max_size: u32,
    /// The most bytes the reader takes in one message.
    pub(crate) limit: usize,
    /// Remote datagrams are delivered to it.
    pub(crate) network: bool,
    pub(crate) pid: u32,
}

impl Meta {
    fn new(max_size: u32, network: bool) -> Meta {
        let limit = match max_size {
            0 => MAX_LOCAL_MESSAGE,
            n => usize::try_from(n).unwrap_or(usize::MAX).min(MAX_LOCAL_MESSAGE),
        };
        Meta {
            max_size,
            limit,
            network,
            pid: std::process::id(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "max={}\nlimit={}\nnetwork={}\npid={}\n",
            self.max_size,
            self.limit,
            u8::from(self.network),
            self.pid
        )
    }

    fn parse(text: &str) -> Option<Meta> {
        let (mut max, mut limit, mut network, mut pid) = (None, None, None, None);
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k {
                "max" => max = v.parse().ok(),
                "limit" => limit = v.parse().ok(),
                "network" => network = Some(v == "1"),
                "pid" => pid = v.parse().ok(),
                _ => {}
            }
        }
        Some(Meta {
            max_size: max?,
            limit: limit?,
            network: network?,
            pid: pid?,
        })
    }

    /// The meta of the reader of `obj`, or `None` when there is none (or
    /// the file is not the folder owner's).
    pub(crate) fn read(obj: &Object) -> Option<Meta> {
        let (text, uid) = obj.dir.read_small(META, 4096)?;
        if uid != obj.owner() && uid != 0 {
            return None;
        }
        Meta::parse(std::str::from_utf8(&text).ok()?)
    }

    fn write(&self, dir: &Dir) -> io::Result<()> {
        dir.write_atomic(META, self.encode().as_bytes(), 0o644)
    }

    /// Refuses a message this reader would not take: `ERROR_INVALID_PARAMETER`.
    pub(crate) fn check(&self, len: usize, name: &dyn std::fmt::Display) -> io::Result<()> {
        if self.max_size != 0 && u64::try_from(len).unwrap_or(u64::MAX) > u64::from(self.max_size) {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!(
                    "a message of {len} bytes is larger than the maximum message size of {name} ({} bytes)",
                    self.max_size
                ),
            ));
        }
        if len > self.limit {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!(
                    "a message of {len} bytes is larger than a local mailslot message may be ({} bytes) for {name}",
                    self.limit
                ),
            ));
        }
        Ok(())
    }
}

/// A mailslot name's folder, if it has one.
fn find(name: &MailslotName) -> io::Result<Option<Object>> {
    ns::find(Kind::Mailslot, name.folded()).map_err(|e| ns::dir_error(&e, &name.to_string()))
}

/// Whether a reader of the folder's owner (or root) answers on its query
/// socket: another user's live reader holds the name.
fn reader_alive(obj: &Object) -> bool {
    match ns::connect(&obj.dir, QUERY_SOCK) {
        Ok(s) => ns::peer_uid(&s).is_some_and(|u| u == obj.owner() || u == 0),
        Err(_) => false,
    }
}

fn not_found(name: &dyn std::fmt::Display) -> io::Error {
    err(
        Win32Error::ERROR_FILE_NOT_FOUND,
        format!("no mailslot named {name} exists (no process reads it)"),
    )
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ECONNREFUSED) | Some(libc::ENOTCONN) | Some(libc::EPIPE)
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The reader's queue and its settings, behind one lock.
pub(crate) struct State {
    queue: VecDeque<Vec<u8>>,
    /// Message bytes plus overhead, against [`QUOTA_BYTES`].
    charged: usize,
    timeout: ReadTimeout,
    /// Receive buffer, `limit` bytes (pages are touched only by big messages).
    buf: Vec<u8>,
    /// Datagrams over the limit (only a foreign writer sends them).
    dropped: u64,
}

impl State {
    fn over_quota(&self) -> bool {
        self.charged > QUOTA_BYTES || self.queue.len() > QUOTA_MESSAGES
    }

    /// Moves what the socket holds into the queue. Returns how many came.
    fn drain(&mut self, sock: &UnixDatagram, max_size: u32, slot_name: &str, budget: Budget) -> usize {
        let mut added = 0;
        let count = match budget {
            Budget::UnderQuota => DRAIN_BATCH,
            Budget::Exact(n) => n,
        };
        for _ in 0..count {
            if matches!(budget, Budget::UnderQuota) && self.over_quota() {
                break;
            }
            match rustix::net::recv(sock, &mut self.buf[..], RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
                Ok((got, len)) => {
                    let over_max = max_size != 0 && u64::try_from(len).unwrap_or(u64::MAX) > u64::from(max_size);
                    if len > got || over_max {
                        self.dropped += 1;
                        tracing::debug!(
                            mailslot = slot_name,
                            len,
                            "dropped a datagram over the mailslot's limit"
                        );
                        continue;
                    }
                    self.charged += got + MESSAGE_OVERHEAD;
                    self.queue.push_back(self.buf[..got].to_vec());
                    added += 1;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => {
                    tracing::debug!(mailslot = slot_name, error = %e, "mailslot receive failed");
                    break;
                }
            }
        }
        added
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let m = self.queue.pop_front()?;
        self.charged = self.charged.saturating_sub(m.len() + MESSAGE_OVERHEAD);
        Some(m)
    }
}

/// What the reader, its pump thread and the front ends share.
pub(crate) struct Shared {
    sock: UnixDatagram,
    query: UnixListener,
    wake: OwnedFd,
    state: Mutex<State>,
    /// Signalled when messages arrive.
    arrived: Condvar,
    #[cfg(feature = "tokio")]
    pub(crate) notify: tokio::sync::Notify,
    closing: AtomicBool,
    meta: Meta,
    display: String,
}

impl Shared {
    fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn announce(&self) {
        self.arrived.notify_all();
        #[cfg(feature = "tokio")]
        self.notify.notify_one();
    }

    fn drain(&self, st: &mut State, budget: Budget) {
        if st.drain(&self.sock, self.meta.max_size, &self.display, budget) > 0 {
            self.announce();
        }
    }

    /// Takes the next message with `take`, after draining the socket;
    /// `Ok(None)` when the queue is empty.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn try_take<T>(
        &self,
        take: &mut dyn FnMut(&mut State) -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        let mut st = lock(&self.state);
        self.drain(&mut st, Budget::UnderQuota);
        self.take_locked(&mut st, take)
    }

    fn take_locked<T>(
        &self,
        st: &mut State,
        take: &mut dyn FnMut(&mut State) -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        let was_over = st.over_quota();
        let r = take(st)?;
        if r.is_some() && was_over && !st.over_quota() {
            self.poke(); // the pump may take datagrams again
        }
        #[cfg(feature = "tokio")]
        if r.is_some() && !st.queue.is_empty() {
            self.notify.notify_one(); // the next waiting reader
        }
        Ok(r)
    }

    /// ReadFile, blocking: waits as the read timeout says.
    pub(crate) fn take_blocking<T>(&self, take: &mut dyn FnMut(&mut State) -> io::Result<Option<T>>) -> io::Result<T> {
        let mut st = lock(&self.state);
        let timeout = st.timeout;
        let deadline = match timeout {
            ReadTimeout::Forever => None,
            ReadTimeout::After(d) => Some(Instant::now() + d),
        };
        loop {
            self.drain(&mut st, Budget::UnderQuota);
            if let Some(v) = self.take_locked(&mut st, take)? {
                return Ok(v);
            }
            match deadline {
                None => st = self.arrived.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        return Err(self.timed_out(timeout));
                    }
                    st = self
                        .arrived
                        .wait_timeout(st, at - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    pub(crate) fn timed_out(&self, timeout: ReadTimeout) -> io::Error {
        let detail = match timeout {
            ReadTimeout::After(d) if d.is_zero() => format!("no message is waiting in {}", self.display),
            ReadTimeout::After(d) => format!("no message arrived in {} within {d:?}", self.display),
            ReadTimeout::Forever => format!("no message in {}", self.display),
        };
        err(Win32Error::ERROR_SEM_TIMEOUT, detail)
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn timeout(&self) -> ReadTimeout {
        lock(&self.state).timeout
    }

    pub(crate) fn set_timeout(&self, t: ReadTimeout) {
        lock(&self.state).timeout = t;
        // Blocked readers keep the timeout they started with (Win32: the
        // new value applies to later reads).
    }

    /// GetMailslotInfo, exact: drains the socket, then counts.
    pub(crate) fn info(&self) -> MailslotInfo {
        let mut st = lock(&self.state);
        self.drain(&mut st, Budget::Exact(kernel_queue_max()));
        MailslotInfo {
            max_message_size: self.meta.max_size,
            next_message_size: st.queue.front().map(|m| u32::try_from(m.len()).unwrap_or(u32::MAX)),
            message_count: u32::try_from(st.queue.len()).unwrap_or(u32::MAX),
            read_timeout: st.timeout,
        }
    }

    /// Datagrams the reader dropped for being over its limit.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    pub(crate) fn display(&self) -> &str {
        &self.display
    }
}

/// Copies the next message into `buf` (ReadFile): a short buffer fails with
/// `ERROR_INSUFFICIENT_BUFFER` and leaves the message for the next read.
pub(crate) fn take_into<'a>(
    buf: &'a mut [u8],
    display: &'a str,
) -> impl FnMut(&mut State) -> io::Result<Option<usize>> + 'a {
    move |st: &mut State| {
        let Some(front) = st.queue.front() else { return Ok(None) };
        if front.len() > buf.len() {
            return Err(err(
                Win32Error::ERROR_INSUFFICIENT_BUFFER,
                format!(
                    "the next message in {display} is {} bytes; the buffer holds {} (the message stays)",
                    front.len(),
                    buf.len()
                ),
            ));
        }
        let m = st.pop().unwrap_or_default();
        buf[..m.len()].copy_from_slice(&m);
        Ok(Some(m.len()))
    }
}

/// Takes the next message whole.
pub(crate) fn take_vec(st: &mut State) -> io::Result<Option<Vec<u8>>> {
    Ok(st.pop())
}

/// The reader of one mailslot (the handle CreateMailslot returns), front-end
/// independent.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    pump: Option<JoinHandle<()>>,
    obj: Object,
    lock: Option<OwnedFd>,
    _network: Option<super::net::EmbeddedGuard>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.shared.display)
            .field("max_message_size", &self.shared.meta.max_size)
            .field("network", &self.shared.meta.network)
            .finish()
    }
}

impl Slot {
    /// CreateMailslot.
    pub(crate) fn create(name: &MailslotName, max_size: u32, timeout: ReadTimeout, network: bool) -> io::Result<Slot> {
        let display = name.to_string();
        let (obj, lock) = take_name(name)?;
        let fail = |e: io::Error| -> io::Error { Error::from_io(&e, format!("cannot create {display}")).into() };
        let dir = &obj.dir;
        for stale in [READER_SOCK, QUERY_SOCK] {
            dir.remove(stale);
        }
        let meta = Meta::new(max_size, network);
        dir.write_atomic("name", display.as_bytes(), 0o644).map_err(fail)?;
        meta.write(dir).map_err(fail)?;
        let sock = ns::bind_datagram(dir, READER_SOCK).map_err(fail)?;
        sock.set_nonblocking(true).map_err(fail)?;
        let query = ns::bind(dir, QUERY_SOCK).map_err(fail)?;
        query.set_nonblocking(true).map_err(fail)?;
        let wake =
            rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| fail(e.into()))?;
        let shared = Arc::new(Shared {
            sock,
            query,
            wake,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                charged: 0,
                timeout,
                buf: vec![0; meta.limit],
                dropped: 0,
            }),
            arrived: Condvar::new(),
            #[cfg(feature = "tokio")]
            notify: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            meta,
            display: display.clone(),
        });
        let for_pump = Arc::clone(&shared);
        let pump = std::thread::Builder::new()
            .name("pipeslot-mailslot".into())
            .spawn(move || pump(&for_pump))
            .map_err(fail)?;
        let network = network.then(super::net::EmbeddedGuard::acquire);
        Ok(Slot {
            shared,
            pump: Some(pump),
            obj,
            lock: Some(lock),
            _network: network,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Becomes the one reader of `name`: its folder and the flock'd lock file.
fn take_name(name: &MailslotName) -> io::Result<(Object, OwnedFd)> {
    let display = name.to_string();
    for tries in 0..ns::RACE_TRIES {
        ns::race_pause(tries);
        let obj = match ns::claim(Kind::Mailslot, name.folded(), &display, &reader_alive)? {
            Claim::Mine(obj) => obj,
            Claim::Theirs(obj) => {
                return Err(err(
                    Win32Error::ERROR_ALREADY_EXISTS,
                    format!(
                        "{name} already exists: a mailslot has one reader, and a process of {} reads this one",
                        ns::user_label(obj.owner())
                    ),
                ))
            }
        };
        let file = obj
            .dir
            .open_private(READER_LOCK)
            .map_err(|e| Error::from_io(&e, format!("cannot create {name}")))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(err(
                    Win32Error::ERROR_ALREADY_EXISTS,
                    format!("{name} already exists: a mailslot has one reader, and a process reads this one"),
                ))
            }
            Err(e) => return Err(Error::from_io(&e.into(), format!("cannot lock {name}")).into()),
        }
        // The file we locked must still be the one at the path (a reader
        // that closes unlinks it while it holds the lock), in the folder
        // still at the name's place.
        if obj.dir.holds(READER_LOCK, &file) && obj.is_current() {
            return Ok((obj, file));
        }
    }
    Err(err(
        Win32Error::ERROR_GEN_FAILURE,
        format!("cannot create {name}: its folder keeps changing"),
    ))
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.poke();
        if let Some(p) = self.pump.take() {
            let _ = p.join();
        }
        // Unlink everything while the lock is held, the lock file last, so
        // that the next reader never loses a file it made.
        for f in [READER_SOCK, QUERY_SOCK, META, "name", READER_LOCK] {
            self.obj.dir.remove(f);
        }
        self.obj.root.remove_dir(&self.obj.entry);
        drop(self.lock.take());
    }
}

/// The pump: moves datagrams into the queue while under quota, and answers
/// info queries from other processes.
fn pump(sh: &Shared) {
    loop {
        let take_data = !lock(&sh.state).over_quota();
        let data_events = if take_data { PollFlags::IN } else { PollFlags::empty() };
        let mut fds = [
            PollFd::new(&sh.sock, data_events),
            PollFd::new(&sh.query, PollFlags::IN),
            PollFd::new(&sh.wake, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::debug!(mailslot = sh.display, error = %e, "mailslot poll failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let (data, query, wake) = (fds[0].revents(), fds[1].revents(), fds[2].revents());
        if sh.closing.load(Ordering::SeqCst) {
            return;
        }
        if !wake.is_empty() {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(&sh.wake, &mut b);
        }
        if !data.is_empty() {
            let mut st = lock(&sh.state);
            sh.drain(&mut st, Budget::UnderQuota);
        }
        if !query.is_empty() {
            answer_queries(sh);
        }
    }
}

fn answer_queries(sh: &Shared) {
    while let Ok((mut conn, _)) = sh.query.accept() {
        let info = sh.info();
        let mut rec = [0u8; QUERY_LEN];
        let fields = [
            QUERY_MAGIC,
            info.max_message_size,
            info.next_message_size.unwrap_or(MAILSLOT_NO_MESSAGE),
            info.message_count,
            info.read_timeout.as_millis(),
            sh.meta.pid,
            u32::from(sh.meta.network),
        ];
        for (chunk, v) in rec.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        let _ = conn.set_nonblocking(true);
        let _ = conn.write_all(&rec);
    }
}

/// Asks the reader of `name` (any process) for its info.
pub(crate) fn query(name: &MailslotName) -> io::Result<(MailslotInfo, Meta)> {
    let obj = find(name)?.ok_or_else(|| not_found(name))?;
    query_obj(name, &obj)
}

fn query_obj(name: &dyn std::fmt::Display, obj: &Object) -> io::Result<(MailslotInfo, Meta)> {
    let mut conn = ns::connect(&obj.dir, QUERY_SOCK).map_err(|e| {
        if is_gone(&e) {
            not_found(name)
        } else {
            Error::from_io(&e, format!("cannot ask {name} for its info")).into()
        }
    })?;
    // Only the folder owner's (or root's) reader speaks for the name.
    if !ns::peer_uid(&conn).is_some_and(|u| u == obj.owner() || u == 0) {
        return Err(not_found(name));
    }
    conn.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut rec = [0u8; QUERY_LEN];
    conn.read_exact(&mut rec).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => err(
            Win32Error::ERROR_SEM_TIMEOUT,
            format!("the reader of {name} did not answer within 1 s"),
        ),
        _ => not_found(name),
    })?;
    let mut f = rec
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let mut next = || f.next().unwrap_or(0);
    if next() != QUERY_MAGIC {
        return Err(err(
            Win32Error::ERROR_INVALID_DATA,
            format!("the reader of {name} answered in an unknown format"),
        ));
    }
    let max_message_size = next();
    let next_size = next();
    let message_count = next();
    let timeout = next();
    let pid = next();
    let network = next() != 0;
    let info = MailslotInfo {
        max_message_size,
        next_message_size: (next_size != MAILSLOT_NO_MESSAGE).then_some(next_size),
        message_count,
        read_timeout: ReadTimeout::from_millis(timeout),
    };
    let mut meta = Meta::new(max_message_size, network);
    meta.pid = pid;
    Ok((info, meta))
}

/// Every live mailslot on this machine.
pub(crate) fn list() -> io::Result<Vec<MailslotListing>> {
    let fold = |d: &str| MailslotName::parse(d).ok().map(|n| n.folded().to_owned());
    let mut out = Vec::new();
    for (display, obj) in ns::list(Kind::Mailslot, &fold)? {
        let Ok((info, meta)) = query_obj(&display, &obj) else {
            continue;
        };
        out.push(MailslotListing {
            name: display,
            max_message_size: info.max_message_size,
            message_count: info.message_count,
            network: meta.network,
            reader_pid: meta.pid,
            owner: obj.owner(),
            owner_name: crate::security::user_name(obj.owner()),
        });
    }
    Ok(out)
}

/// A writer's end of a local mailslot: a datagram socket connected to the
/// reader's. It belongs to the reader it opened (Win32: a handle to that
/// mailslot object): once that reader closes, writes fail, and never reach
/// a later reader of the same name.
#[derive(Debug)]
pub(crate) struct LocalWriter {
    sock: UnixDatagram,
    meta: Meta,
    display: String,
}

impl AsRawFd for LocalWriter {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for LocalWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl LocalWriter {
    /// CreateFile on `\\.\mailslot\…`.
    pub(crate) fn open(name: &MailslotName, nonblocking: bool) -> io::Result<LocalWriter> {
        let display = name.to_string();
        // A mailslot exists while its reader answers: a folder whose
        // reader is gone (or was never one) has no mailslot in it.
        let obj = find(name)?.filter(reader_alive).ok_or_else(|| not_found(&display))?;
        let sock = UnixDatagram::unbound().map_err(|e| Error::from_io(&e, format!("cannot open {display}")))?;
        let meta = connect(&sock, &obj, &display)?;
        sock.set_nonblocking(nonblocking)?;
        let w = LocalWriter { sock, meta, display };
        w.size_buffer(meta.limit.min(256 << 10));
        Ok(w)
    }

    /// The reader's limits as last seen.
    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    /// The largest message the reader takes.
    pub(crate) fn max_message_size(&self) -> usize {
        let m = self.meta();
        match m.max_size {
            0 => m.limit,
            n => usize::try_from(n).unwrap_or(usize::MAX).min(m.limit),
        }
    }

    /// Makes room in the socket's send buffer for a message of `len` bytes
    /// (a datagram larger than `SO_SNDBUF` fails with `EMSGSIZE`).
    fn size_buffer(&self, len: usize) -> bool {
        let want = len.saturating_add(4096);
        let have = rustix::net::sockopt::socket_send_buffer_size(&self.sock).unwrap_or(0);
        if have >= want.saturating_add(64) {
            return false;
        }
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&self.sock, want);
        let have = rustix::net::sockopt::socket_send_buffer_size(&self.sock).unwrap_or(0);
        if have < want {
            // Past net.core.wmem_max: allowed with CAP_NET_ADMIN.
            let _ = rustix::net::sockopt::set_socket_send_buffer_size_force(&self.sock, want);
        }
        true
    }

    /// One attempt to send a whole message. A blocking socket waits while the
    /// reader's queue is full; a non-blocking one fails with `WouldBlock`.
    pub(crate) fn send(&self, msg: &[u8]) -> io::Result<()> {
        self.meta().check(msg.len(), &self.display)?;
        let mut grown = false;
        loop {
            match rustix::net::send(&self.sock, msg, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(rustix::io::Errno::MSGSIZE) if !grown => {
                    grown = true;
                    self.size_buffer(msg.len());
                }
                Err(rustix::io::Errno::MSGSIZE) => {
                    return Err(err(
                        Win32Error::ERROR_INVALID_PARAMETER,
                        format!(
                            "a message of {} bytes is larger than one local datagram may be on this system \
                             (raise net.core.wmem_max) for {}",
                            msg.len(),
                            self.display
                        ),
                    ))
                }
                Err(e) if is_gone(&e.into()) => {
                    return Err(err(
                        Win32Error::ERROR_FILE_NOT_FOUND,
                        format!(
                            "the reader of {} that this handle was opened to has closed; open the name again \
                             to write to a new reader",
                            self.display
                        ),
                    ))
                }
                Err(e) => {
                    return Err(Error::from_io(&e.into(), format!("cannot write to {}", self.display)).into());
                }
            }
        }
    }
}

/// Connects `sock` to the reader of `obj` and reads its limits. Only a
/// socket of the folder owner's (or root's) is the reader: the folder is the
/// owner's alone, and the file's owner is checked too.
fn connect(sock: &UnixDatagram, obj: &Object, display: &str) -> io::Result<Meta> {
    reader_socket(obj).ok_or_else(|| not_found(&display))?;
    sock.connect(obj.dir.at(READER_SOCK)).map_err(|e| -> io::Error {
        if is_gone(&e) {
            not_found(&display)
        } else {
            Error::from_io(&e, format!("cannot open {display}")).into()
        }
    })?;
    Meta::read(obj).ok_or_else(|| not_found(&display))
}

/// The reader's datagram socket in `obj`, if it is a socket of the owner's.
fn reader_socket(obj: &Object) -> Option<()> {
    obj.dir
        .sockets()
        .into_iter()
        .any(|s| s.name == READER_SOCK && (s.uid == obj.owner() || s.uid == 0))
        .then_some(())
}

/// What became of a remote message handed to a local mailslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    Delivered,
    /// No reader, or one that takes no network messages.
    NoReader,
    TooBig,
    Full,
}

/// Hands a message that came from the network to the local mailslot
/// `\\.\mailslot\<path>`, without waiting. `sock` is an unbound datagram
/// socket of the caller's.
pub(crate) fn hand_off(sock: &UnixDatagram, path: &str, data: &[u8]) -> Handoff {
    let Ok(name) = MailslotName::parse(&format!(r"\\.\mailslot\{path}")) else {
        return Handoff::NoReader;
    };
    let Ok(Some(obj)) = find(&name) else {
        return Handoff::NoReader;
    };
    let Some(meta) = Meta::read(&obj) else {
        return Handoff::NoReader;
    };
    if reader_socket(&obj).is_none() {
        return Handoff::NoReader;
    }
    if !meta.network {
        return Handoff::NoReader;
    }
    if meta.check(data.len(), &name).is_err() {
        return Handoff::TooBig;
    }
    let sent = rustix::net::SocketAddrUnix::new(obj.dir.at(READER_SOCK))
        .and_then(|addr| rustix::net::sendto(sock, data, SendFlags::DONTWAIT | SendFlags::NOSIGNAL, &addr))
        .map_err(io::Error::from);
    match sent {
        Ok(_) => Handoff::Delivered,
        Err(e) if is_gone(&e) => Handoff::NoReader,
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Handoff::TooBig,
        Err(_) => Handoff::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let m = Meta::new(424, true);
        assert_eq!(Meta::parse(&m.encode()), Some(m));
        assert_eq!(Meta::new(0, false).limit, MAX_LOCAL_MESSAGE);
        assert_eq!(Meta::new(u32::MAX, false).limit, MAX_LOCAL_MESSAGE);
        assert_eq!(Meta::parse("max=1\n"), None);
    }

    #[test]
    fn size_checks_name_the_mailslot() {
        let m = Meta::new(8, false);
        assert!(m.check(8, &"x").is_ok());
        let e = m.check(9, &r"\\.\mailslot\x").unwrap_err();
        assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_INVALID_PARAMETER));
        assert!(e.to_string().contains(r"\\.\mailslot\x"), "{e}");
    }
}
