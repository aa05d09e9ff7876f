//! The gateway: this host's exported pipes, served to other machines as
//! `\\HOST\pipe\NAME` over SMB2 on an IPC$ share of our own.
//!
//! The protocol is `pipeslot_smb::server` (sans I/O); this is its driver:
//! a listener, a thread per connection that reads frames and answers what
//! the state machine answers itself, and a thread per open pipe that does
//! the pipe's reads, writes and transacts on the local pipe (opened on the
//! remote user's behalf, so `reject_remote_clients` applies), so a READ that
//! waits never holds up another open of the same connection.
//!
//! Only exported names are visible: any other is STATUS_OBJECT_NAME_NOT_FOUND,
//! as if it did not exist.

mod config;
mod conn;

pub use config::add_user;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use pipeslot_smb::server::ServerUser;

use crate::error::{err, Error, Win32Error};

/// How the gateway faces the network.
#[derive(Clone)]
pub struct GatewayOptions {
    listen: SocketAddr,
    users: Vec<ServerUser>,
    exports: Vec<String>,
    require_signing: bool,
    computer: String,
    domain: String,
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("listen", &self.listen)
            .field("users", &self.users)
            .field("exports", &self.exports)
            .field("require_signing", &self.require_signing)
            .finish()
    }
}

impl GatewayOptions {
    /// Listening on `listen` (445 needs CAP_NET_BIND_SERVICE; any port over
    /// 1024 does not), no users, nothing exported, signing required.
    pub fn new(listen: SocketAddr) -> GatewayOptions {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_else(|_| "PIPESLOT".into())
            .trim()
            .to_uppercase();
        GatewayOptions {
            listen,
            users: Vec::new(),
            exports: Vec::new(),
            require_signing: true,
            computer: host.chars().take(15).collect(),
            domain: "WORKGROUP".into(),
        }
    }

    /// An account remote clients log on with (NTLMv2). Only its NT hash is
    /// kept.
    pub fn user(&mut self, name: &str, password: &str) -> &mut Self {
        self.users.push(ServerUser {
            name: name.to_owned(),
            domain: String::new(),
            nt_hash: pipeslot_smb::ntlm::nt_hash(password),
        });
        self
    }

    /// Makes the local pipe `name` (`NAME` or `\\.\pipe\NAME`) reachable.
    pub fn export(&mut self, name: &str) -> &mut Self {
        let bare = name.rsplit('\\').next().unwrap_or(name);
        self.exports.push(pipeslot_proto::name::fold(bare));
        self
    }

    /// Refuse unsigned requests (the default).
    pub fn require_signing(&mut self, on: bool) -> &mut Self {
        self.require_signing = on;
        self
    }

    /// Binds the listener.
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER (87)` without users; the bind's own error
    /// (e.g. `ERROR_ACCESS_DENIED` for port 445 without the capability).
    pub fn bind(&self) -> io::Result<Gateway> {
        if self.users.is_empty() {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs at least one user (guest access is not offered)",
            ));
        }
        let listener =
            TcpListener::bind(self.listen).map_err(|e| Error::from_io(&e, format!("listening on {}", self.listen)))?;
        Ok(Gateway {
            listener,
            opts: Arc::new(self.clone()),
        })
    }

    pub(crate) fn exports(&self, pipe: &str) -> bool {
        let folded = pipeslot_proto::name::fold(pipe);
        self.exports.contains(&folded)
    }
}

/// A random password of 32 hex digits (for one-off accounts, e.g. a demo).
pub fn random_password() -> String {
    crate::remote::session::random::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A bound gateway; [`serve`](Gateway::serve) runs it.
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    opts: Arc<GatewayOptions>,
}

impl Gateway {
    /// Where it listens (the port chosen for port 0).
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections for ever, each on a thread of its own; a
    /// connection that misbehaves is closed and the others go on.
    ///
    /// # Errors
    /// Only when accepting itself fails for good.
    pub fn serve(self) -> io::Result<()> {
        let mut salt_seq = 0u64;
        for s in self.listener.incoming() {
            let s = match s {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("gateway: accept failed: {e}");
                    continue;
                }
            };
            salt_seq += 1;
            let opts = Arc::clone(&self.opts);
            let _ = std::thread::Builder::new()
                .name("pipeslot-gateway".into())
                .spawn(move || conn::run(s, &opts, salt_seq));
        }
        Ok(())
    }
}
