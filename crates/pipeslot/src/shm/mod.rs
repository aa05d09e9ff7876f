//! The shared-memory data path: a local connection's bytes go through two
//! rings in a memfd both processes map, instead of through the kernel's
//! socket buffers. Negotiated in the handshake (the client offers it, the
//! server's reply carries the segment); either side may keep the socket path.
//!
//! ```text
//!   mem.rs      Region: the mapping, the only unsafe here (atomics in place, raw copies)
//!   ring.rs     Tx / Rx: one SPSC byte ring, peer counters checked, wait flags
//!   segment.rs  the memfd's layout, create (server) / adopt (client, checked), bells
//!   path.rs     ShmPath: framing, waits and Win32's rules over the rings
//!   watch.rs    the thread that rings a sleeping reader's bell when its peer's socket goes
//! ```
//!
//! Access control and identity are settled on the socket before any memory
//! is shared; the socket then stays open as the liveness channel.

#[cfg(feature = "bench")]
pub mod floor;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod mem;
pub(crate) mod path;
pub(crate) mod ring;
pub(crate) mod segment;
mod watch;

pub(crate) use path::{ShmPath, Wait};

/// Whether shared memory may be shared with a peer of this uid: only our
/// own user's processes and root's, never another user's, even one the
/// pipe's ACL lets in. Its bells are eventfds, and an eventfd's blocking
/// flag and counter belong to every holder: a peer could make it blocking
/// and fill it, and our next ring of its bell would then block for as long
/// as it likes, even after it died. Our own user and root can do worse to
/// us anyway (signals, ptrace); another user gets the socket path, where
/// every call of ours is non-blocking per call.
pub(crate) fn trusts(uid: u32) -> bool {
    uid == 0 || uid == crate::ns::me()
}

/// Whether a process whose newest descriptor is `fd` can afford shared
/// memory for one more connection. Each end of a shared-memory connection
/// holds four descriptors (the socket, the memfd and two eventfds) where the
/// socket path holds one, so a server of hundreds of clients would hit a
/// 1024 `ulimit -n` at a quarter of the clients. The kernel hands out the
/// lowest free number, so `fd` tells how full the table is: past a quarter
/// of the soft limit, connections take the socket path.
pub(crate) fn affordable(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // Asked each time (one cheap call): a process may lower its limit.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    (fd.as_raw_fd() as u64) < limit / 4
}

/// Whether this process offers and accepts the shared-memory path when the
/// options do not say (their `shared_memory` overrides): yes, unless
/// `PIPESLOT_SHM=0`. A connection takes it only when both ends offer it,
/// so a peer that turned it off, or one too short of descriptors
/// ([`affordable`]), keeps the socket path.
pub(crate) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !matches!(std::env::var("PIPESLOT_SHM").as_deref(), Ok("0")))
}
