//! What pipeslot is measured against: raw Unix sockets (the transport it
//! rides on), and what a user might pick instead (`interprocess`, ZeroMQ,
//! ipc-channel).
//! Each baseline runs in its best configuration for the workload.

pub(crate) mod datagram;
pub(crate) mod interproc;
pub(crate) mod ipcchan;
pub(crate) mod seqpacket;
pub(crate) mod unix;
pub(crate) mod zeromq;

/// The socket buffer a tuned baseline asks for (and tuned pipeslot cases
/// pass as in/out buffer sizes): 4 MiB, `net.core.wmem_max` here.
pub(crate) const TUNED_BUFFER: usize = 4 << 20;
