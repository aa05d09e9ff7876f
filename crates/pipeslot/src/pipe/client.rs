//! The client half of the local protocol: open, wait and census against the
//! server processes of a pipe name, trusting only those that run as the
//! name's owner, as root, or as a user the owner granted
//! FILE_CREATE_PIPE_INSTANCE (checked on the connected socket).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pipeslot_proto::wire::local::{hello_flags, Hello, HelloPacket, Reply, ReplyStatus, Request, REPLY_LEN};
use pipeslot_proto::PipeName;
use rustix::event::{PollFd, PollFlags};

use crate::error::{err, Win32Error};
use crate::ns::{self, Dir, Kind, Lookup, Object, SocketEntry};
use crate::pipe::acceptor;
use crate::security::PipeSecurity;

/// How long a trusted server process may take to answer a hello. Only the
/// name's owner, root or a granted user can make a client wait this long
/// (a stopped server); another user's socket is skipped before any wait.
const REPLY_DEADLINE: Duration = Duration::from_secs(1);
/// How often a wait looks for server processes that started meanwhile.
const RESCAN: Duration = Duration::from_millis(50);

/// The folder of a granted user's instances inside a pipe's folder.
pub(crate) const JOINERS: &str = "joiners";
/// The file holding a pipe's FILE_CREATE_PIPE_INSTANCE grants.
pub(crate) const SECURITY: &str = "security";

/// Whose server a socket must be for a client to talk to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// In the name's own folder: its owner or root.
    OwnerOrRoot(u32),
    /// In `joiners/<uid>`: that user, if the owner's grants still admit it.
    Joiner(u32),
}

/// Where the servers of one pipe name listen.
#[derive(Debug)]
pub(crate) struct PipeDirs {
    pub(crate) obj: Arc<Object>,
    joiners: Joiners,
}

/// The sockets of a pipe's folder, the granted users' folders, and the
/// owner's grants: what one listing of the folder shows.
#[derive(Debug, Default)]
struct Joiners {
    own: Vec<SocketEntry>,
    dirs: Vec<(Dir, u32)>,
    grants: Option<PipeSecurity>,
}

/// One server socket worth asking.
struct Candidate<'a> {
    dir: &'a Dir,
    sock: SocketEntry,
    trust: Trust,
}

impl Joiners {
    /// The owner's grants and, when there are any, the granted users'
    /// folders (each made by the user its name says).
    fn load(obj: &Object) -> Joiners {
        let owner = obj.owner();
        let (own, granted) = obj.dir.sockets_and(Some(SECURITY));
        if !granted {
            // The common case: nobody granted.
            return Joiners {
                own,
                ..Joiners::default()
            };
        }
        let grants = obj
            .dir
            .read_small(SECURITY, 64 << 10)
            .filter(|(_, uid)| *uid == owner || *uid == 0)
            .and_then(|(text, _)| String::from_utf8(text).ok())
            .map(|text| PipeSecurity::decode_grants(owner, &text));
        let mut dirs = Vec::new();
        if let (Some(g), Ok(Lookup::Dir(jd))) = (&grants, obj.dir.lookup(JOINERS)) {
            for entry in jd.dir_names("") {
                let Ok(uid) = entry.parse::<u32>() else { continue };
                if !(g.grants_uid(uid) || g.grants_any_group()) {
                    continue; // never granted: never asked
                }
                if let Ok(Lookup::Dir(d)) = jd.lookup(&entry) {
                    if d.owner() == uid {
                        dirs.push((d, uid));
                    }
                }
            }
        }
        Joiners { own, dirs, grants }
    }

    /// Every socket a server of this name might listen on, skipping files
    /// whose owner could not be a trusted server.
    fn candidates<'a>(&'a self, obj: &'a Object) -> Vec<Candidate<'a>> {
        let owner = obj.owner();
        let mut out: Vec<Candidate<'a>> = self
            .own
            .iter()
            .filter(|s| s.uid == owner || s.uid == 0)
            .cloned()
            .map(|sock| Candidate {
                dir: &obj.dir,
                sock,
                trust: Trust::OwnerOrRoot(owner),
            })
            .collect();
        for (d, uid) in &self.dirs {
            out.extend(d.sockets().into_iter().filter(|s| s.uid == *uid).map(|sock| Candidate {
                dir: d,
                sock,
                trust: Trust::Joiner(*uid),
            }));
        }
        out
    }

    /// Whether the process listening behind `s` is one this name trusts.
    fn trusts(&self, trust: Trust, s: &UnixStream) -> bool {
        let Ok(cred) = rustix::net::sockopt::socket_peercred(s) else {
            return false;
        };
        let uid = cred.uid.as_raw();
        match trust {
            Trust::OwnerOrRoot(owner) => uid == owner || uid == 0,
            Trust::Joiner(u) => {
                uid == u
                    && self.grants.as_ref().is_some_and(|g| {
                        let groups = crate::sys::peer_groups(s.as_fd()).unwrap_or_default();
                        g.permits_create_instance(uid, cred.gid.as_raw(), &groups)
                    })
            }
        }
    }
}

impl PipeDirs {
    /// Reads what is in a pipe's folder.
    pub(crate) fn load(obj: Arc<Object>) -> PipeDirs {
        let joiners = Joiners::load(&obj);
        PipeDirs { obj, joiners }
    }

    /// The pipe's folder, if the name exists.
    pub(crate) fn find(name: &PipeName) -> io::Result<Option<PipeDirs>> {
        local_only(name)?;
        Ok(ns::find(Kind::Pipe, name.folded())?.map(|o| PipeDirs::load(Arc::new(o))))
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.joiners.candidates(&self.obj)
    }

    fn trusts(&self, trust: Trust, s: &UnixStream) -> bool {
        self.joiners.trusts(trust, s)
    }

    /// The owner's grants, when the owner granted anyone.
    pub(crate) fn grants(&self) -> Option<&PipeSecurity> {
        self.joiners.grants.as_ref()
    }
}

/// Whether any trusted server process of a pipe's folder is alive (answers
/// connections): for a creator deciding whether another user holds a name.
pub(crate) fn any_live(obj: &Object) -> bool {
    let j = Joiners::load(obj);
    j.candidates(obj)
        .iter()
        .any(|c| matches!(ns::connect(c.dir, &c.sock.name), Ok(s) if j.trusts(c.trust, &s)))
}

/// The "remote pipes come later" error for names on other machines.
fn local_only(name: &PipeName) -> io::Result<()> {
    if !name.is_local() {
        return Err(err(
            Win32Error::ERROR_NOT_SUPPORTED,
            format!("{name} is on another machine; remote pipes (SMB2) are not available in this version"),
        ));
    }
    Ok(())
}

/// Why one server socket did not give us the pipe.
enum Attempt {
    Stale,
    /// A trusted server process took the hello but did not answer in
    /// time: alive (its socket accepted us) but stopped or swamped. Its
    /// instances are not free now; its socket is not stale.
    Silent,
    /// The socket, the reply, and the descriptors it carried (the
    /// shared-memory segment of an accepted open; anything else is closed).
    Answered(UnixStream, Reply, Vec<OwnedFd>),
}

fn hello(request: Request, flags: u16, name: &PipeName) -> io::Result<Vec<u8>> {
    hello_with(request, flags, name, &[])
}

fn hello_with(request: Request, flags: u16, name: &PipeName, extensions: &[u8]) -> io::Result<Vec<u8>> {
    Hello {
        request,
        flags,
        pid: std::process::id(),
        name: name.folded().to_owned(),
        extensions: extensions.to_vec(),
    }
    .to_vec()
    .map_err(|e| err(Win32Error::ERROR_INVALID_NAME, format!("{name}: {e}")))
}

/// A connection to a server socket; `None` when nobody listens there any
/// more (refused, or the socket is gone): a stale entry, not an error.
fn live(r: io::Result<UnixStream>) -> io::Result<Option<UnixStream>> {
    match r {
        Ok(s) => Ok(Some(s)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENOENT)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Connects to one server socket, checks whose it is, and sends a hello;
/// reads the reply unless `read_reply` is false (a wait reads it later).
fn ask(dirs: &PipeDirs, c: &Candidate<'_>, msg: &[u8], read_reply: bool) -> io::Result<Attempt> {
    let Some(s) = live(ns::connect(c.dir, &c.sock.name))? else {
        return Ok(Attempt::Stale);
    };
    // The kernel recorded who listens at connect time: an impostor is
    // skipped before it can read our hello or make us wait.
    if !dirs.trusts(c.trust, &s) {
        tracing::warn!(
            "skipping {} in {}: its server runs as uid {:?}, which this name does not trust",
            c.sock.name,
            c.dir.path().display(),
            ns::peer_uid(&s)
        );
        return Ok(Attempt::Stale);
    }
    converse(s, msg, read_reply, c.dir.path(), &c.sock.name)
}

/// A hello that does not offer shared memory.
fn without_shm(msg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    if let Ok(mut p) = HelloPacket::new_checked(&mut out[..]) {
        p.set_flags(p.flags() & !hello_flags::SHM);
    }
    out
}

/// Sends the hello on a connection to a trusted server and reads its reply.
fn converse(mut s: UnixStream, msg: &[u8], read_reply: bool, dir: &Path, sock: &str) -> io::Result<Attempt> {
    // A server of another user (crate::shm::trusts), or too few
    // descriptors left for a segment's three: the socket path.
    let unoffered;
    let msg = if ns::peer_uid(&s).is_some_and(crate::shm::trusts) && crate::shm::affordable(s.as_fd()) {
        msg
    } else {
        unoffered = without_shm(msg);
        &unoffered[..]
    };
    if s.write_all(msg).is_err() {
        // A server that answers before it reads (one out of descriptors
        // says so and closes at once) has left its answer to be read.
        return Ok(early_answer(s));
    }
    if !read_reply {
        return Ok(Attempt::Answered(s, acceptor::DEAD_REPLY, Vec::new()));
    }
    // A live server answers at once; one that is stopped must not hang us.
    let deadline = Instant::now() + REPLY_DEADLINE;
    let mut b = [0u8; REPLY_LEN];
    let mut have = 0;
    let mut fds = Vec::new();
    while have < REPLY_LEN {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = rustix::fs::Timespec::try_from(left).ok();
        match rustix::event::poll(&mut [PollFd::new(&s, PollFlags::IN)], ts.as_ref()) {
            Ok(0) => {
                tracing::warn!("{sock} in {} did not answer within {REPLY_DEADLINE:?}", dir.display());
                return Ok(Attempt::Silent);
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        match recv_with_fds(&s, &mut b[have..], &mut fds) {
            Ok(0) | Err(_) => return Ok(Attempt::Stale),
            Ok(n) => have += n,
        }
    }
    match Reply::parse(&b) {
        Ok(r) => Ok(Attempt::Answered(s, r, fds)),
        Err(_) => Ok(Attempt::Stale),
    }
}

/// One read of the reply, keeping the descriptors that come with it (at
/// most three are taken: the kernel closes any beyond what fits).
pub(crate) fn recv_with_fds(s: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [io::IoSliceMut::new(buf)];
    let r = loop {
        match rustix::net::recvmsg(s, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    Ok(r.bytes)
}

/// The answer a server wrote before closing, if a whole one is there.
fn early_answer(mut s: UnixStream) -> Attempt {
    let mut b = [0u8; REPLY_LEN];
    if s.set_nonblocking(true).is_err() || s.read_exact(&mut b).is_err() {
        return Attempt::Stale;
    }
    match Reply::parse(&b) {
        Ok(r) => Attempt::Answered(s, r, Vec::new()),
        Err(_) => Attempt::Stale,
    }
}

/// CreateFile on a pipe name: the first listening instance of any trusted
/// serving process takes us.
/// `remote`: the open is made for a client on another machine (the
/// gateway's); servers believe it only from root or their own user.
/// `shm`: offer the shared-memory data path (an accepted open's reply
/// then may carry its segment, returned with it).
/// `server_uid`: only a server process running as that user will do
/// (`ClientOptions::require_server_user`); others' instances are not even
/// connected to.
pub(crate) fn open(
    name: &PipeName,
    read: bool,
    write: bool,
    remote: Option<&[u8]>,
    server_uid: Option<u32>,
    shm: bool,
) -> io::Result<(OwnedFd, Reply, Vec<OwnedFd>)> {
    local_only(name)?;
    let mut flags = if remote.is_some() { hello_flags::REMOTE } else { 0 };
    if shm {
        flags |= hello_flags::SHM;
    }
    if read {
        flags |= hello_flags::READ;
    }
    if write {
        flags |= hello_flags::WRITE;
    }
    let msg = hello_with(Request::OPEN, flags, name, remote.unwrap_or_default())?;
    let key = Listing::key(name);
    let mut tally = Tally::default();
    // The servers found last time first: the folder changes only when a
    // server process comes or goes, and reading it costs seven system calls
    // and a directory walk. Anything but an accepted open reads the folder
    // again and asks only the servers not asked yet.
    if let Some(kept) = Listing::get(&key).filter(|k| ns::folder_unchanged(&k.entry, k.id)) {
        for sock in &kept.sockets {
            if server_uid.is_some_and(|want| sock.uid != want) {
                continue; // the fresh listing below says whose it is
            }
            tally.asked.push(sock.name.clone());
            if let Some(done) = tally.take(name, server_uid, kept.ask(sock, &msg)?)? {
                return Ok(done);
            }
        }
    }
    let dirs = match PipeDirs::find(name)? {
        Some(d) => d,
        None => {
            Listing::forget(&key);
            return Err(ns::not_found(name));
        }
    };
    Listing::put(key, &dirs);
    for c in dirs.candidates() {
        if tally.asked.contains(&c.sock.name) {
            continue;
        }
        if let Some(want) = server_uid {
            if c.sock.uid != want {
                tally.others.push(c.sock.uid);
                continue;
            }
        }
        if let Some(done) = tally.take(name, server_uid, ask(&dirs, &c, &msg, true)?)? {
            return Ok(done);
        }
    }
    if tally.busy {
        Err(err(
            Win32Error::ERROR_PIPE_BUSY,
            format!("all instances of {name} are busy"),
        ))
    } else if tally.exhausted {
        Err(err(
            Win32Error::ERROR_NO_SYSTEM_RESOURCES,
            format!(
                "the server of {name} is out of file descriptors (its ulimit -n) and cannot take \
                 another client; those connected are still served"
            ),
        ))
    } else if let (Some(want), Some(&other)) = (server_uid, tally.others.first()) {
        Err(wrong_server(name, want, other))
    } else {
        Err(ns::not_found(name))
    }
}

/// What the servers asked during one open said, so far.
#[derive(Default)]
struct Tally {
    /// The sockets asked already: one open asks each server once.
    asked: Vec<String>,
    busy: bool,
    /// A server process out of file descriptors said so; another may serve.
    exhausted: bool,
    /// The users of servers skipped for `server_uid`.
    others: Vec<u32>,
}

type Opened = (OwnedFd, Reply, Vec<OwnedFd>);

impl Tally {
    /// Counts one server's answer; the open when it accepted.
    fn take(&mut self, name: &PipeName, server_uid: Option<u32>, attempt: Attempt) -> io::Result<Option<Opened>> {
        match attempt {
            Attempt::Stale => {}
            // Thousands of clients at once can keep a live acceptor from
            // answering in time: busy (wait and try again), not absent.
            Attempt::Silent => self.busy = true,
            // The socket file is the user's; the process behind it must be too.
            Attempt::Answered(s, ..) if server_uid.is_some_and(|want| ns::peer_uid(&s) != Some(want)) => {
                self.others.extend(ns::peer_uid(&s));
            }
            Attempt::Answered(s, r, fds) => match r.status {
                ReplyStatus::ACCEPTED => {
                    // On shared memory the socket carries no data: its
                    // buffer stays as it is.
                    if r.in_buffer > 0 && r.data_path == pipeslot_proto::wire::local::data_path::SOCKET {
                        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, r.in_buffer as usize);
                    }
                    return Ok(Some((s.into(), r, fds)));
                }
                ReplyStatus::BUSY => self.busy = true,
                ReplyStatus::NO_RESOURCES => self.exhausted = true,
                ReplyStatus::ACCESS_DENIED => {
                    return Err(err(
                        Win32Error::ERROR_ACCESS_DENIED,
                        format!("{name} refuses this client (access control, pipe direction or remote client)"),
                    ))
                }
                _ => {}
            },
        }
        Ok(None)
    }
}

/// Where a pipe's servers listened when this process last read its folder:
/// the folder's path and identity, its owner and the owner's (and root's)
/// sockets. No descriptor is kept. Only folders without grants are
/// remembered (a granted user's folder and the grants are read fresh every
/// time). A kept listing is used only while the name's entry in the root is
/// still that folder (one `fstatat`, not following links: a folder removed
/// and replaced, by a link to sockets elsewhere say, is read afresh), and it
/// says only where to knock: each server is checked on its connection, its
/// uid against the folder's owner, as on a fresh listing.
#[derive(Debug)]
struct Listing {
    dir: PathBuf,
    entry: String,
    id: (u64, u64),
    owner: u32,
    sockets: Vec<SocketEntry>,
}

/// At most this many names are kept; past it the cache starts over.
const LISTINGS_MAX: usize = 64;

type ListingKey = (PathBuf, String);
type ListingMap = HashMap<ListingKey, Arc<Listing>>;

impl Listing {
    fn map() -> MutexGuard<'static, ListingMap> {
        static MAP: OnceLock<Mutex<ListingMap>> = OnceLock::new();
        MAP.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn key(name: &PipeName) -> ListingKey {
        (ns::Namespace::from_env().root().to_owned(), name.folded().to_owned())
    }

    fn get(key: &ListingKey) -> Option<Arc<Listing>> {
        Self::map().get(key).cloned()
    }

    fn put(key: ListingKey, dirs: &PipeDirs) {
        let owner = dirs.obj.owner();
        let sockets: Vec<SocketEntry> = dirs
            .joiners
            .own
            .iter()
            .filter(|s| s.uid == owner || s.uid == 0)
            .cloned()
            .collect();
        let path = dirs.obj.dir.path();
        let fits = sockets.iter().all(|s| ns::connectable_by_path(path, &s.name));
        let mut map = Self::map();
        if dirs.joiners.grants.is_some() || sockets.is_empty() || !fits {
            map.remove(&key);
            return;
        }
        if map.len() >= LISTINGS_MAX && !map.contains_key(&key) {
            map.clear();
        }
        let listing = Listing {
            dir: path.to_owned(),
            entry: dirs.obj.entry.clone(),
            id: dirs.obj.dir.id(),
            owner,
            sockets,
        };
        map.insert(key, Arc::new(listing));
    }

    fn forget(key: &ListingKey) {
        Self::map().remove(key);
    }

    /// [`ask`] for a kept socket.
    fn ask(&self, sock: &SocketEntry, msg: &[u8]) -> io::Result<Attempt> {
        let Some(s) = live(UnixStream::connect(self.dir.join(&sock.name)))? else {
            return Ok(Attempt::Stale);
        };
        // The folder may have been replaced since it was read (then the
        // fresh listing decides, and warns of impostors).
        if !matches!(ns::peer_uid(&s), Some(uid) if uid == self.owner || uid == 0) {
            return Ok(Attempt::Stale);
        }
        converse(s, msg, true, &self.dir, &sock.name)
    }
}

/// `ERROR_ACCESS_DENIED`: the name is served, but not by the user the
/// client requires (a squatter that created the name first, or a granted
/// user's instances only).
fn wrong_server(name: &PipeName, want: u32, other: u32) -> io::Error {
    let who = |uid: u32| match crate::security::user_name(uid) {
        Some(n) => format!("uid {uid} ({n})"),
        None => format!("uid {uid}"),
    };
    err(
        Win32Error::ERROR_ACCESS_DENIED,
        format!(
            "{name} is served by {}, not by {} as this client requires; \
             another user may have created the name first",
            who(other),
            who(want)
        ),
    )
}

/// The answers of every live trusted server process.
pub(crate) fn census(name: &PipeName) -> io::Result<Vec<Reply>> {
    match PipeDirs::find(name)? {
        Some(dirs) => census_dir(name, &dirs, Census::List),
        None => Ok(Vec::new()),
    }
}

/// Why a census is taken.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Census<'a> {
    /// To describe the pipe (anyone may ask).
    List,
    /// Before creating an instance: skips our own acceptor's socket, removes
    /// stale sockets in `home` (the folder the caller holds the lock of),
    /// and asks each serving process whether this user may add an instance.
    Create { own: Option<&'a str>, home: &'a Dir },
}

/// Census of a pipe's folders: the `CENSUS` (or, for `Create`,
/// `ACCESS_DENIED`) answers of every live trusted serving process.
pub(crate) fn census_dir(name: &PipeName, dirs: &PipeDirs, why: Census<'_>) -> io::Result<Vec<Reply>> {
    census_counting(name, dirs, why).map(|(replies, _)| replies)
}

/// [`census_dir`], and how many live server processes did not answer in
/// time (stopped, or swamped by a crowd of clients).
fn census_counting(name: &PipeName, dirs: &PipeDirs, why: Census<'_>) -> io::Result<(Vec<Reply>, usize)> {
    let flags = match why {
        Census::List => 0,
        Census::Create { .. } => hello_flags::CREATE,
    };
    let msg = hello(Request::CENSUS, flags, name)?;
    let mut out = Vec::new();
    let mut silent = 0;
    for c in dirs.candidates() {
        if let Census::Create { own: Some(own), .. } = why {
            if own == c.sock.name {
                continue;
            }
        }
        match ask(dirs, &c, &msg, true)? {
            Attempt::Stale => {
                if let Census::Create { home, .. } = why {
                    if home.same(c.dir) {
                        home.remove(&c.sock.name);
                    }
                }
            }
            Attempt::Answered(_, r, _) if matches!(r.status, ReplyStatus::CENSUS | ReplyStatus::ACCESS_DENIED) => {
                out.push(r)
            }
            Attempt::Silent => silent += 1,
            Attempt::Answered(..) => {}
        }
    }
    Ok((out, silent))
}

/// How long a wait may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTimeout {
    /// NMPWAIT_USE_DEFAULT_WAIT: the timeout the server gave at creation
    /// (0 there means 50 ms).
    Default,
    /// NMPWAIT_WAIT_FOREVER.
    Forever,
    /// This long (zero: just look).
    After(Duration),
}

/// WaitNamedPipe: returns once some instance listens.
pub(crate) fn wait(name: &PipeName, timeout: WaitTimeout) -> io::Result<()> {
    let dirs = PipeDirs::find(name)?.ok_or_else(|| ns::not_found(name))?;
    let limit = match timeout {
        WaitTimeout::Forever => None,
        WaitTimeout::After(d) => Some(d),
        WaitTimeout::Default => {
            let (replies, silent) = census_counting(name, &dirs, Census::List)?;
            let ms = match replies.first() {
                Some(r) => r.default_timeout_ms,
                // Served, but too busy to say its default: Win32's 50 ms.
                None if silent > 0 => 0,
                None => return Err(ns::not_found(name)),
            };
            Some(Duration::from_millis(if ms == 0 { 50 } else { u64::from(ms) }))
        }
    };
    let deadline = limit.map(|d| Instant::now() + d);
    let msg = hello(Request::WAIT, 0, name)?;
    let mut dirs = dirs;
    let mut asked: Vec<(String, UnixStream)> = Vec::new();
    loop {
        // Ask every server process we have not asked yet.
        for c in dirs.candidates() {
            if asked.iter().any(|(p, _)| *p == c.sock.name) {
                continue;
            }
            if let Attempt::Answered(s, ..) = ask(&dirs, &c, &msg, false)? {
                asked.push((c.sock.name.clone(), s));
            }
        }
        if asked.is_empty() {
            return Err(ns::not_found(name));
        }
        let now = Instant::now();
        let step = match deadline {
            // Out of time before the answers to our requests were read (always
            // so for a zero timeout, "just look"): look once, synchronously.
            Some(d) if d <= now => {
                let (replies, silent) = census_counting(name, &dirs, Census::List)?;
                if replies.iter().any(|r| r.listening > 0) {
                    return Ok(());
                }
                // A socket that took our hello but serves no instance yet (a
                // server still inside CreateNamedPipe) is not a pipe yet; one
                // too busy to answer is, and timed out.
                if replies.is_empty() && silent == 0 {
                    return Err(ns::not_found(name));
                }
                return Err(timed_out(name));
            }
            Some(d) => (d - now).min(RESCAN),
            None => RESCAN,
        };
        let ts = rustix::fs::Timespec::try_from(step).ok();
        let mut fds: Vec<PollFd<'_>> = asked.iter().map(|(_, s)| PollFd::new(s, PollFlags::IN)).collect();
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        let mut available = false;
        asked.retain_mut(|(_, s)| {
            let r = ready[i];
            i += 1;
            if !r {
                return true;
            }
            let mut b = [0u8; REPLY_LEN];
            if s.read_exact(&mut b).is_ok() {
                if let Ok(reply) = Reply::parse(&b) {
                    available |= reply.status == ReplyStatus::AVAILABLE;
                }
            }
            false
        });
        if available {
            return Ok(());
        }
        // Server processes that started meanwhile (granted users' folders too).
        if let Some(fresh) = PipeDirs::find(name)? {
            dirs = fresh;
        }
    }
}

fn timed_out(name: &PipeName) -> io::Error {
    err(
        Win32Error::ERROR_SEM_TIMEOUT,
        format!("no instance of {name} became available before the timeout"),
    )
}
