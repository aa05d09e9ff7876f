//! Remote pipes: `\\HOST\pipe\NAME` on a Windows or Samba server, over
//! SMB2/3 on the IPC$ share. The protocol is `pipeslot_smb`'s (sans I/O);
//! this is its driver: sockets, threads, time, credentials.
//!
//! - [`options`]: credentials, port, required protection, timeouts.
//! - [`session`]: one connection and log-on per server and user, shared by
//!   every pipe opened there; a reader thread matches answers to requests.
//! - [`pipe`]: one open pipe, the local model's calls mapped onto READ,
//!   WRITE and the pipe FSCTLs.
//! - `tokio_io`: the same pipe as the tokio front end polls it.
//!
//! Kerberos is not spoken here: the seam is `pipeslot_smb::client::Auth`,
//! and the gateway's Samba mode is the way to a Kerberos realm today.

pub(crate) mod options;
pub(crate) mod pipe;
pub(crate) mod session;
#[cfg(feature = "tokio")]
pub(crate) mod tokio_io;

pub use options::SmbCredentials;

/// What a remote pipe's session is: the server, the SMB dialect, how the
/// messages are protected. `Display`: `SMB 3.1.1 with HOST:PORT, signed (AesGmac)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSession {
    /// `host:port`.
    pub server: String,
    /// `3.1.1`, `2.0.2`, …
    pub dialect: String,
    /// `signed (…)`, `encrypted (…)`, `guest, unsigned` or `anonymous, unsigned`.
    pub protection: String,
    /// Whether the server told the pipe's type, instances and quotas
    /// (FilePipeLocalInformation; Samba does not, and then
    /// `PipeInfo::mode` is the read mode the client asked for).
    pub pipe_info_reported: bool,
}

impl std::fmt::Display for RemoteSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SMB {} with {}, {}", self.dialect, self.server, self.protection)
    }
}
