//! One connection's shared segment: a sealed memfd holding both rings, made
//! by the server's acceptor and handed to the client with the handshake's
//! reply (SCM_RIGHTS), and the two doorbells.
//!
//! ```text
//!     0  magic "PSLTSHM1"
//!    64  ring 0 control (server → client)      256  ring 1 control (client → server)
//!   448  closed: server u32, client u32;  456  disconnected u32 (the server's)
//!   460  last CPU: server u32, client u32 (u32::MAX: not known yet)
//!  4096  ring 0 data (from the server's out buffer), then ring 1 data (its in buffer)
//! ```
//!
//! Bells: a reader that sleeps waits on its own eventfd, which the writer
//! signals after publishing data; a writer that sleeps (ring full, or a
//! flush) waits on the socket, where the reader sends one byte after
//! freeing room. The socket also stays the liveness channel: a peer that
//! dies closes it, which wakes either sleeper at once. So each end holds
//! four descriptors: the socket, the memfd, its own eventfd and the peer's.
//!
//! Each end maps the segment at its first use of the rings, not at the
//! open: a connection that closes without data never maps it, and
//! mapping and unmapping (page faults, and a TLB shootdown across CPUs at
//! the unmap) were a third of an open's cost. Until then the flags go
//! through the memfd (`pread`/`pwrite` of one word), which the peer's
//! mapping sees as it sees its own stores.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use super::mem::Region;
#[cfg(test)]
use super::ring::CTL_LEN;
use super::ring::{RingLayout, Rx, Tx};

const MAGIC: u64 = u64::from_le_bytes(*b"PSLTSHM1");
const RING0_CTL: usize = 64;
const RING1_CTL: usize = 256;
const CLOSED: usize = 448;
const DISCONNECTED: usize = 456;
const CPU: usize = 460;
const DATA: usize = 4096;
/// The largest ring: bigger buffer sizes are taken as this.
pub(crate) const MAX_RING: usize = 16 << 20;
/// The smallest ring, so that a header and some payload always fit.
pub(crate) const MIN_RING: usize = 4096;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Client,
}

/// A ring's size for a pipe buffer size: twice it (as the kernel doubles a
/// socket's asked-for buffer, so the socket path's writer also runs that
/// far ahead), a power of two in `MIN_RING..=MAX_RING`. With the bare size a
/// 64 KiB message filled the ring and every one waited for the reader: half
/// the socket path's bulk rate. Both ends compute it from the reply's
/// buffer sizes, never from the shared memory.
pub(crate) fn ring_capacity(buffer: u32) -> usize {
    (buffer as usize)
        .saturating_mul(2)
        .clamp(MIN_RING, MAX_RING)
        .next_power_of_two()
}

/// The segment's layout for the server's (out, in) buffer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) to_client: RingLayout,
    pub(crate) to_server: RingLayout,
    pub(crate) len: usize,
}

impl Layout {
    pub(crate) fn new(out_buffer: u32, in_buffer: u32) -> Layout {
        let c0 = ring_capacity(out_buffer);
        let c1 = ring_capacity(in_buffer);
        Layout {
            to_client: RingLayout {
                ctl: RING0_CTL,
                data: DATA,
                cap: c0,
            },
            to_server: RingLayout {
                ctl: RING1_CTL,
                data: DATA + c0,
                cap: c1,
            },
            len: DATA + c0 + c1,
        }
    }
}

/// One end's share of a connection's segment.
#[derive(Debug)]
pub(crate) struct End {
    memfd: OwnedFd,
    /// The mapping, made at the first use of the rings.
    region: OnceLock<Region>,
    pub(crate) role: Role,
    pub(crate) layout: Layout,
    /// This end's eventfd: it sleeps on it while its ring is empty (shared
    /// with the watcher thread, which rings it when the peer goes).
    pub(crate) bell: std::sync::Arc<OwnedFd>,
    /// The peer's eventfd: rung after publishing data it waits for.
    pub(crate) peer_bell: OwnedFd,
    marked_closed: std::sync::atomic::AtomicBool,
}

impl End {
    fn new(memfd: OwnedFd, role: Role, layout: Layout, bell: OwnedFd, peer_bell: OwnedFd) -> End {
        End {
            memfd,
            region: OnceLock::new(),
            role,
            layout,
            bell: bell.into(),
            peer_bell,
            marked_closed: Default::default(),
        }
    }

    /// What the handshake's reply carries to the client, in `adopt`'s order:
    /// the memfd, the server's bell, the client's bell. Lent, not dup'd:
    /// SCM_RIGHTS installs copies in the receiver, so the server's own
    /// descriptors go as they are.
    pub(crate) fn give(&self) -> [BorrowedFd<'_>; 3] {
        let (server_bell, client_bell) = match self.role {
            Role::Server => (self.bell.as_fd(), self.peer_bell.as_fd()),
            Role::Client => (self.peer_bell.as_fd(), self.bell.as_fd()),
        };
        [self.memfd.as_fd(), server_bell, client_bell]
    }

    /// [`give`](End::give) as copies of our own, for an in-process peer.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn give_owned(&self) -> io::Result<Vec<OwnedFd>> {
        self.give().iter().map(|fd| fd.try_clone_to_owned()).collect()
    }

    /// The segment mapped (at the first call).
    pub(crate) fn region(&self) -> io::Result<&Region> {
        if let Some(r) = self.region.get() {
            return Ok(r);
        }
        // Two threads may both map: the loser's mapping is dropped.
        let _ = self.region.set(Region::map(self.memfd.as_fd(), self.layout.len)?);
        self.region.get().ok_or_else(|| io::Error::from(io::ErrorKind::Other))
    }

    /// A flag word: through the mapping, or the memfd while unmapped.
    fn load(&self, off: usize) -> u32 {
        if let Some(r) = self.region.get() {
            return r.u32_at(off).load(Ordering::Acquire);
        }
        let mut w = [0u8; 4];
        match rustix::io::pread(&self.memfd, &mut w, off as u64) {
            Ok(4) => u32::from_ne_bytes(w),
            _ => 0,
        }
    }

    fn store(&self, off: usize, v: u32) {
        if let Some(r) = self.region.get() {
            return r.u32_at(off).store(v, Ordering::Release);
        }
        let _ = rustix::io::pwrite(&self.memfd, &v.to_ne_bytes(), off as u64);
    }

    /// This end's rings: what it writes and what it reads.
    pub(crate) fn rings(&self) -> (Tx, Rx) {
        match self.role {
            Role::Server => (Tx::new(self.layout.to_client), Rx::new(self.layout.to_server)),
            Role::Client => (Tx::new(self.layout.to_server), Rx::new(self.layout.to_client)),
        }
    }

    fn closed_word(&self, role: Role) -> usize {
        CLOSED + if role == Role::Server { 0 } else { 4 }
    }

    /// Marks this end closed (the peer's writes then fail at once). Once:
    /// the connection marks it before its socket closes and the path again
    /// when it drops, and unmapped each mark is a `pwrite`.
    pub(crate) fn mark_closed(&self) {
        if !self.marked_closed.swap(true, Ordering::Relaxed) {
            self.store(self.closed_word(self.role), 1);
        }
    }

    /// Whether the peer closed its end cleanly.
    pub(crate) fn peer_closed(&self) -> bool {
        let peer = if self.role == Role::Server {
            Role::Client
        } else {
            Role::Server
        };
        self.load(self.closed_word(peer)) != 0
    }

    /// The server's DisconnectNamedPipe.
    pub(crate) fn mark_disconnected(&self) {
        self.store(DISCONNECTED, 1);
    }

    /// On a client: whether its server disconnected it.
    pub(crate) fn disconnected(&self) -> bool {
        self.role == Role::Client && self.load(DISCONNECTED) != 0
    }

    /// Says which CPU this end runs on now; returns the peer's last one
    /// (u32::MAX when not known, as before the mapping). A hint only: a
    /// peer may lie about it, which costs it no more than a bounded spin
    /// of ours.
    pub(crate) fn cpus(&self) -> (u32, u32) {
        let me = rustix::thread::sched_getcpu() as u32;
        let Some(region) = self.region.get() else {
            return (me, u32::MAX);
        };
        let (mine, peer) = match self.role {
            Role::Server => (CPU, CPU + 4),
            Role::Client => (CPU + 4, CPU),
        };
        region.u32_at(mine).store(me, Ordering::Relaxed);
        (me, region.u32_at(peer).load(Ordering::Relaxed))
    }

    /// Rings the peer's bell (it sleeps waiting for data).
    pub(crate) fn ring_peer(&self) {
        let _ = rustix::io::write(&self.peer_bell, &1u64.to_ne_bytes());
    }

    /// Empties this end's bell after a wake-up (never waits: a bell made
    /// blocking is read only after poll said it rang).
    pub(crate) fn drain_bell(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&*self.bell, &mut b);
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    use rustix::event::EventfdFlags;
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// The server side: a new segment for a connection, the server's end of it
/// ([`End::give`] lends what the reply carries to the client).
pub(crate) fn create(out_buffer: u32, in_buffer: u32) -> io::Result<End> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let layout = Layout::new(out_buffer, in_buffer);
    let memfd = rustix::fs::memfd_create("pipeslot", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&memfd, layout.len as u64)?;
    // Sealed before the client sees it: no one can shrink it under a
    // mapping (SIGBUS), nor add seals that would stop us writing (mapping
    // it writable later needs no seal to be absent but F_SEAL_WRITE's).
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    // The header in one write: the magic, both CPUs unknown; the rest of
    // a new memfd is zeros, the rings' empty state.
    let mut head = [0u8; CPU + 8];
    head[..8].copy_from_slice(&MAGIC.to_le_bytes());
    head[CPU..].fill(0xff);
    if rustix::io::pwrite(&memfd, &head, 0)? != head.len() {
        return Err(io::ErrorKind::WriteZero.into());
    }
    let server_bell = eventfd()?;
    let client_bell = eventfd()?;
    Ok(End::new(memfd, Role::Server, layout, server_bell, client_bell))
}

fn refused(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server's shared memory is not usable: {why}"),
    )
}

/// Whether a descriptor a server sent is an eventfd (anything else could
/// block our bell reads or writes for ever). The quick test, two cheap
/// calls: the file is on the kernel's shared anonymous inode (as every
/// eventfd is, and timerfds, epolls, signalfds and the like are, but no
/// pipe, socket or file), and an 8-byte write of zero succeeds, which only
/// an eventfd takes (it adds nothing; the others have no write or refuse
/// it). A kernel that gives eventfds inodes of their own falls back to the
/// name `/proc` shows, which costs a path walk per bell.
fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    static ANON: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    let anon = ANON.get_or_init(|| {
        let probe = eventfd().ok()?;
        let st = rustix::fs::fstat(&probe).ok()?;
        Some((st.st_dev, st.st_ino))
    });
    let on_anon = rustix::fs::fstat(fd).is_ok_and(|st| Some((st.st_dev, st.st_ino)) == *anon);
    if on_anon {
        return rustix::io::write(fd, &0u64.to_ne_bytes()) == Ok(8);
    }
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|p| p.as_os_str() == "anon_inode:[eventfd]")
}

/// The client side: checks and maps what the server sent (untrusted: any
/// descriptors at all). The segment must be a memfd sealed against
/// shrinking and large enough for the layout the reply's buffer sizes
/// give, and the bells eventfds.
pub(crate) fn adopt(fds: Vec<OwnedFd>, out_buffer: u32, in_buffer: u32) -> io::Result<End> {
    use rustix::fs::SealFlags;
    let [memfd, server_bell, client_bell]: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| refused("the reply did not carry three descriptors"))?;
    let layout = Layout::new(out_buffer, in_buffer);
    let seals = rustix::fs::fcntl_get_seals(&memfd).map_err(|_| refused("not a sealable memfd"))?;
    if !seals.contains(SealFlags::SHRINK) {
        return Err(refused("the memfd may shrink under the mapping"));
    }
    // Checked here, since the mapping waits for the first use: a segment
    // we could not write would fail then, or drop the flags we pwrite.
    if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(refused("the memfd is sealed against writing"));
    }
    let st = rustix::fs::fstat(&memfd)?;
    if st.st_size < layout.len as i64 {
        return Err(refused("the memfd is smaller than the rings"));
    }
    if !is_eventfd(server_bell.as_fd()) || !is_eventfd(client_bell.as_fd()) {
        return Err(refused("a bell is not an eventfd"));
    }
    for b in [&server_bell, &client_bell] {
        rustix::io::ioctl_fionbio(b, true)?;
    }
    let mut magic = [0u8; 8];
    if rustix::io::pread(&memfd, &mut magic, 0).ok() != Some(8) || u64::from_le_bytes(magic) != MAGIC {
        return Err(refused("no segment header"));
    }
    Ok(End::new(memfd, Role::Client, layout, client_bell, server_bell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rings_do_not_overlap_and_fit() {
        let l = Layout::new(65536, 100);
        assert_eq!(l.to_client.cap, 131_072);
        assert_eq!(l.to_server.cap, MIN_RING);
        assert!(RING0_CTL + CTL_LEN <= l.to_server.ctl);
        assert!(l.to_server.ctl + CTL_LEN <= CLOSED);
        assert_eq!(l.to_client.data + l.to_client.cap, l.to_server.data);
        assert_eq!(l.len, DATA + 131_072 + MIN_RING);
        assert_eq!(ring_capacity(u32::MAX), MAX_RING);
        assert_eq!(ring_capacity(70_000), 262_144);
        assert_eq!(ring_capacity(2048), MIN_RING);
    }

    #[test]
    fn a_created_segment_is_sealed_and_adoptable() {
        let server = create(8192, 4096).unwrap();
        let give = server.give_owned().unwrap();
        let seals = rustix::fs::fcntl_get_seals(&give[0]).unwrap();
        assert!(seals.contains(rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::SEAL));
        assert!(rustix::fs::ftruncate(&give[0], 0).is_err(), "shrinking must be refused");
        let client = adopt(give, 8192, 4096).unwrap();
        let (mut tx, _) = server.rings();
        let (_, rx) = client.rings();
        tx.push(server.region().unwrap(), b"across").unwrap();
        let mut b = [0u8; 6];
        assert_eq!(rx.available(client.region().unwrap()), Ok(6));
        rx.peek(client.region().unwrap(), 0, &mut b);
        assert_eq!(&b, b"across");
        server.mark_disconnected();
        assert!(client.disconnected());
        assert!(!server.disconnected(), "only a client is disconnected");
        client.mark_closed();
        assert!(server.peer_closed());
        assert!(!client.peer_closed());
    }

    #[test]
    fn adoption_refuses_what_a_hostile_server_might_send() {
        // Buffer sizes larger than the memfd.
        let s = create(4096, 4096).unwrap();
        let e = adopt(s.give_owned().unwrap(), 1 << 20, 4096).unwrap_err();
        assert!(e.to_string().contains("smaller"), "{e}");
        // An unsealed memfd.
        let m = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&m, 1 << 20).unwrap();
        let e = adopt(vec![m, eventfd().unwrap(), eventfd().unwrap()], 4096, 4096).unwrap_err();
        assert!(e.to_string().contains("shrink"), "{e}");
        // A memfd we could not write.
        let m = rustix::fs::memfd_create(
            "x",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&m, 1 << 20).unwrap();
        rustix::fs::fcntl_add_seals(&m, rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::FUTURE_WRITE).unwrap();
        let e = adopt(vec![m, eventfd().unwrap(), eventfd().unwrap()], 4096, 4096).unwrap_err();
        assert!(e.to_string().contains("writing"), "{e}");
        // Bells that are not eventfds (a pipe would block us).
        let m = create(4096, 4096).unwrap().give_owned().unwrap().swap_remove(0);
        let (r, w) = rustix::pipe::pipe().unwrap();
        let e = adopt(vec![m, r, w], 4096, 4096).unwrap_err();
        assert!(e.to_string().contains("eventfd"), "{e}");
        // Bells on the anonymous inode that are not eventfds: an epoll, an
        // inotify (whose blocking read would wait for an event never due).
        let m = create(4096, 4096).unwrap().give_owned().unwrap().swap_remove(0);
        let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
        let ino = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC).unwrap();
        assert!(!is_eventfd(ino.as_fd()) && !is_eventfd(ep.as_fd()));
        let e = adopt(vec![m, ep, ino], 4096, 4096).unwrap_err();
        assert!(e.to_string().contains("eventfd"), "{e}");
        assert!(is_eventfd(eventfd().unwrap().as_fd()));
        // Too few descriptors.
        let e = adopt(vec![eventfd().unwrap()], 4096, 4096).unwrap_err();
        assert!(e.to_string().contains("three"), "{e}");
    }
}
