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
mod samba;

pub use config::add_user;

use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
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
    keepalive: Duration,
    /// The Samba mode: smbd's folder of external pipes.
    samba: Option<PathBuf>,
    /// Our own SMB2 server on `listen` (off in a Samba-only set-up).
    own_server: bool,
    /// The host's mailslot datagram service (UDP 138, or this address).
    mailslots: Option<SocketAddrV4>,
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
            .field("keepalive", &self.keepalive)
            .field("samba", &self.samba)
            .field("own_server", &self.own_server)
            .field("mailslots", &self.mailslots)
            .finish()
    }
}

impl GatewayOptions {
    /// Listening on `listen` (445 needs CAP_NET_BIND_SERVICE; any port over
    /// 1024 does not), no users, nothing exported, signing required, no
    /// guest, encryption allowed (not required), 256 connections, 64 opens
    /// per session, idle connections closed after 15 minutes, a silent
    /// client's connection closed within 2 minutes (keepalive 30 s).
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
            keepalive: Duration::from_secs(30),
            samba: None,
            own_server: true,
            mailslots: None,
        }
    }

    /// Runs the host's mailslot datagram service on `addr` (`0.0.0.0:138`
    /// is Windows'; a port under 1024 needs CAP_NET_BIND_SERVICE): remote
    /// writes to `\\HOST\mailslot\NAME` reach the local mailslots made with
    /// `network(true)`, which then need not bind the port themselves (their
    /// own receivers stand by while the gateway holds it).
    pub fn mailslot_service(&mut self, addr: SocketAddrV4) -> &mut Self {
        self.mailslots = Some(addr);
        self
    }

    /// The Samba mode: serve the exports as smbd's external pipes, unix
    /// sockets in `np_dir` (smbd's `ncalrpc dir` + `/np`; Debian:
    /// `/run/samba/ncalrpc/np`), so Samba does the SMB, the log-on
    /// (Kerberos, Active Directory) and the encryption. Needs root (the
    /// folder is root's, and only root may connect there).
    pub fn samba(&mut self, np_dir: impl Into<PathBuf>) -> &mut Self {
        self.samba = Some(np_dir.into());
        self
    }

    /// Whether to run our own SMB2 server on `listen` too (default: yes).
    /// Off for a host where smbd owns port 445 and the Samba mode serves.
    pub fn own_server(&mut self, on: bool) -> &mut Self {
        self.own_server = on;
        self
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

    /// How soon a client whose host went away without a word (powered off,
    /// the link cut) is noticed, even while its pipes are open and it is
    /// rightly quiet: TCP keepalive probes after `t` of silence, three
    /// more `t` apart, and data left unacknowledged for `4 × t` end the
    /// connection, so its pipes are closed and their instances freed
    /// within about `4 × t`. At least 1 s.
    pub fn keepalive(&mut self, t: Duration) -> &mut Self {
        self.keepalive = t.max(Duration::from_secs(1));
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
        if self.own_server && self.users.is_empty() && !self.guest {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs at least one user, or guest access turned on",
            ));
        }
        if !self.own_server && self.samba.is_none() && self.mailslots.is_none() {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs its own server, the Samba mode or the mailslot service",
            ));
        }
        let listener = match self.own_server {
            true => Some(
                TcpListener::bind(self.listen)
                    .map_err(|e| Error::from_io(&e, format!("listening on {}", self.listen)))?,
            ),
            false => None,
        };
        let handle = GatewayHandle {
            opts: Arc::new(RwLock::new(Arc::new(self.clone()))),
            changed: Arc::new((Mutex::new(0), Condvar::new())),
        };
        let endpoints = match &self.samba {
            Some(dir) => {
                samba::check_np_dir(dir)?;
                let mut e = samba::Endpoints::new(dir.clone());
                e.reconcile(self, &handle)?;
                Some(e)
            }
            None => None,
        };
        let mailslots = match self.mailslots {
            Some(addr) => {
                let mut cfg = crate::mailslot::NetConfig::from_env()?;
                cfg.bind(*addr.ip()).port(addr.port());
                let r = crate::mailslot::DatagramReceiver::bind(&cfg)?.spawn()?;
                tracing::info!("gateway: mailslot datagrams on UDP {}", r.local_addr());
                Some(r)
            }
            None => None,
        };
        Ok(Gateway {
            listener,
            handle,
            connections: Arc::new(AtomicUsize::new(0)),
            endpoints,
            mailslots,
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
    listener: Option<TcpListener>,
    handle: GatewayHandle,
    connections: Arc<AtomicUsize>,
    /// The Samba mode's sockets (removed when the gateway goes).
    endpoints: Option<samba::Endpoints>,
    /// The mailslot datagram service (stops when the gateway goes).
    mailslots: Option<crate::mailslot::ReceiverHandle>,
}

/// Changes a running gateway's options (a reload): exports, users, guest,
/// signing, encryption and limits apply to what comes next (new opens see
/// the new exports at once; new connections log on under the new terms),
/// and no connection is dropped. The listening address stays as bound.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    opts: Arc<RwLock<Arc<GatewayOptions>>>,
    /// Bumped by each update (the Samba mode's sockets follow it).
    changed: Arc<(Mutex<u64>, Condvar)>,
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
        if new.own_server && new.users.is_empty() && !new.guest {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the gateway needs at least one user, or guest access turned on",
            ));
        }
        if new.samba != w.samba || new.own_server != w.own_server {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                "the Samba mode or the own server changed: restart the gateway for that",
            ));
        }
        *w = Arc::new(new);
        drop(w);
        let (n, cv) = &*self.changed;
        *n.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cv.notify_all();
        Ok(())
    }
}

impl Gateway {
    /// Where it listens (the port chosen for port 0).
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(err(
                Win32Error::ERROR_INVALID_FUNCTION,
                "no SMB listener of our own (the Samba mode alone)",
            )),
        }
    }

    /// smbd's folder the Samba mode serves in, when it runs.
    pub fn samba_dir(&self) -> Option<PathBuf> {
        self.handle.current().samba.clone()
    }

    /// Where the mailslot datagram service listens, when it runs.
    pub fn mailslot_addr(&self) -> Option<SocketAddr> {
        self.mailslots.as_ref().map(crate::mailslot::ReceiverHandle::local_addr)
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
    pub fn serve(mut self) -> io::Result<()> {
        if let Some(mut endpoints) = self.endpoints.take() {
            // Keeps smbd's sockets in step with reloads.
            let handle = self.handle.clone();
            let mut follow = move || {
                let mut seen = 0;
                loop {
                    let (n, cv) = &*handle.changed;
                    let mut g = n.lock().unwrap_or_else(|p| p.into_inner());
                    while *g == seen {
                        g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
                    }
                    seen = *g;
                    drop(g);
                    if let Err(e) = endpoints.reconcile(&handle.current(), &handle) {
                        tracing::warn!("gateway: the Samba mode's sockets: {e}");
                    }
                }
            };
            match self.listener {
                Some(_) => {
                    std::thread::Builder::new()
                        .name("pipeslot-gateway-samba".into())
                        .spawn(follow)
                        .map_err(|e| Error::from_io(&e, "starting the Samba mode"))?;
                }
                None => follow(),
            }
        }
        let Some(listener) = self.listener.take() else {
            // The mailslot service alone: it serves on its own thread.
            if self.mailslots.is_some() {
                loop {
                    std::thread::park();
                }
            }
            return Ok(());
        };
        let mut salt_seq = 0u64;
        for s in listener.incoming() {
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
