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

/// Whether this process offers and accepts the shared-memory path when the
/// options do not say (their `shared_memory` overrides): only with
/// `PIPESLOT_SHM=1`, for now. Both front ends speak it; it stays off by
/// default until an idle connection on it costs no more memory than one on
/// the socket (docs/BENCHMARKS.md).
pub(crate) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| matches!(std::env::var("PIPESLOT_SHM").as_deref(), Ok("1")))
}
