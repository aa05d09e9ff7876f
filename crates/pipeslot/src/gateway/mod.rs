//! The gateway: this host's exported pipes, served to other machines as
//! `\\HOST\pipe\NAME` over SMB2 on an IPC$ share of our own.
//!
//! The protocol is `pipeslot_smb::server` (sans I/O); this is its driver:
//! a listener, and per connection a thread running tokio's current-thread
//! scheduler, where one task reads frames and answers what the state
//! machine answers itself, and a task per open pipe does the pipe's reads,
//! writes and transacts on the local pipe (opened on the remote user's
//! behalf, so `reject_remote_clients` applies), so a READ that waits never
//! holds up another open of the same connection.
//!
//! Only exported names are visible: any other is STATUS_OBJECT_NAME_NOT_FOUND,
//! as if it did not exist.

mod builtin;
mod config;
mod conn;

pub use config::add_user;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use pipeslot_smb::server::Encryption;
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
    guest: bool,
    encryption: Encryption,
    max_connections: usize,
    max_opens: usize,
    idle_timeout: Duration,
    frame_timeout: Duration,
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("listen", &self.listen)
            .field("users", &self.users)
            .field("exports", &self.exports)
            .field("require_signing", &self.require_signing)
            .field("guest", &self.guest)
            .field("encryption", &self.encryption)
            .field("max_connections", &self.max_connections)
            .field("max_opens", &self.max_opens)
            .field("idle_timeout", &self.idle_timeout)
            .field("frame_timeout", &self.frame_timeout)
            .finish()
    }
}

impl GatewayOptions {
    /// Listening on `listen` (445 needs CAP_NET_BIND_SERVICE; any port over
    /// 1024 does not), no users, nothing exported, signing required, no
    /// guest, encryption allowed (not required), 256 connections, 64 opens
    /// per session, idle connections closed after 15 minutes.
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
            guest: false,
            encryption: Encryption::Allowed,
            max_connections: 256,
            max_opens: 64,
            idle_timeout: Duration::from_secs(15 * 60),
            frame_timeout: Duration::from_secs(30),
        }
    }

    /// Let anonymous clients and unknown user names in, as a guest or a null
    /// session (default: off). They cannot sign or seal; a known name with a
    /// wrong password is refused all the same.
    pub fn guest(&mut self, on: bool) -> &mut Self {
        self.guest = on;
        self
    }

    /// Whether sessions seal (SMB 3.x, AES-CCM/GCM): offered by default.
    pub fn encryption(&mut self, e: Encryption) -> &mut Self {
        self.encryption = e;
        self
    }

    /// The most client connections at once; one more is told
    /// STATUS_REQUEST_NOT_ACCEPTED (`ERROR_REQ_NOT_ACCEP (71)`).
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n.max(1);
        self
    }

    /// The most pipes one session may hold open (more:
    /// `ERROR_NO_SYSTEM_RESOURCES (1450)`).
    pub fn max_opens(&mut self, n: usize) -> &mut Self {
        self.max_opens = n.max(1);
        self
    }

    /// A connection with no pipe open that says nothing this long is closed.
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.idle_timeout = t;
        self
    }

    /// A frame must arrive whole within this time of its first byte.
    pub fn frame_timeout(&mut self, t: Duration) -> &mut Self {
        self.frame_timeout = t;
        self
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
        if self.users.is_empty() && !self.guest {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs at least one user, or guest access turned on",
            ));
        }
        let listener =
            TcpListener::bind(self.listen).map_err(|e| Error::from_io(&e, format!("listening on {}", self.listen)))?;
        Ok(Gateway {
            listener,
            handle: GatewayHandle {
                opts: Arc::new(RwLock::new(Arc::new(self.clone()))),
            },
            connections: Arc::new(AtomicUsize::new(0)),
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
    handle: GatewayHandle,
    connections: Arc<AtomicUsize>,
}

/// Changes a running gateway's options (a reload): exports, users, guest,
/// signing, encryption and limits apply to what comes next (new opens see
/// the new exports at once; new connections log on under the new terms),
/// and no connection is dropped. The listening address stays as bound.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    opts: Arc<RwLock<Arc<GatewayOptions>>>,
}

impl GatewayHandle {
    pub(crate) fn current(&self) -> Arc<GatewayOptions> {
        Arc::clone(&self.opts.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `new` in force.
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER (87)` when `new` listens elsewhere (that
    /// needs a restart) or has neither users nor guest access; the old
    /// options stay.
    pub fn update(&self, new: GatewayOptions) -> io::Result<()> {
        let mut w = self.opts.write().unwrap_or_else(|p| p.into_inner());
        if new.listen != w.listen {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!(
                    "listen changed ({} to {}): restart the gateway for that",
                    w.listen, new.listen
                ),
            ));
        }
        if new.users.is_empty() && !new.guest {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs at least one user, or guest access turned on",
            ));
        }
        *w = Arc::new(new);
        Ok(())
    }
}

impl Gateway {
    /// Where it listens (the port chosen for port 0).
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to change the options while [`serve`](Self::serve) runs.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
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
            let opts = self.handle.current();
            let n = self.connections.fetch_add(1, Ordering::AcqRel) + 1;
            // Past the limit a client is still answered, so it hears why;
            // far past it (a flood), it is closed at once.
            if n > 2 * opts.max_connections {
                self.connections.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!("gateway: {n} connections; one more closed unheard");
                continue;
            }
            let full = n > opts.max_connections;
            if full {
                tracing::warn!(
                    "gateway: at the limit of {} connections; refusing a log-on",
                    opts.max_connections
                );
            }
            let count = Arc::clone(&self.connections);
            let handle = self.handle.clone();
            let spawned = std::thread::Builder::new()
                .name("pipeslot-gateway".into())
                .spawn(move || {
                    conn::run(s, &handle, salt_seq, full);
                    count.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!("gateway: no thread for a connection; closed");
            }
        }
        Ok(())
    }
}
