//! The Samba mode: for hosts that already run Samba (Active Directory,
//! Kerberos, an admin's own smb.conf), the gateway leaves SMB to smbd and
//! serves each exported pipe as one of smbd's external pipes: a unix socket
//! `<np_dir>/<name>` (smbd's `ncalrpc dir` + `/np`). smbd authenticates
//! the client, connects to the socket for each CREATE of `\pipe\NAME` on
//! IPC$ and says who the user is (`pipeslot_smb::npa`); the gateway opens
//! the local pipe on that user's behalf and relays the data.
//!
//! Only smbd may speak there: the folder is root's own (0700 in Samba's
//! layout), and a connection whose peer is not root is refused before a
//! byte is read.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pipeslot_smb::npa::{self, NpaRequest};

use super::{GatewayHandle, GatewayOptions};
use crate::blocking::{ClientOptions, NamedPipeClient};
use crate::error::{err, Error, Win32Error};
use crate::pipe::PipeMode;

/// How long smbd has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that only root can reach `dir`: root's, and no one else may write
/// in it (Samba makes it 0700).
pub(super) fn check_np_dir(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::from_io(&e, format!("the Samba np folder {}", dir.display())))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(err(
            Win32Error::ERROR_ACCESS_DENIED,
            format!(
                "{}: must be a folder of root's that only root can write in (Samba's ncalrpc/np is 0700)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// One exported name's socket, and the switch that stops its acceptor.
#[derive(Debug)]
struct Endpoint {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor (it sees the switch), then take the name away.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The sockets in smbd's folder, one per export, kept in step with the
/// options (a reload adds and removes them).
#[derive(Debug)]
pub(super) struct Endpoints {
    dir: PathBuf,
    live: HashMap<String, Endpoint>,
}

impl Endpoints {
    pub(super) fn new(dir: PathBuf) -> Endpoints {
        Endpoints {
            dir,
            live: HashMap::new(),
        }
    }

    /// Makes a socket for each export the options name, and removes those
    /// no longer named.
    pub(super) fn reconcile(&mut self, opts: &GatewayOptions, handle: &GatewayHandle) -> io::Result<()> {
        let wanted: Vec<String> = opts.exports.iter().map(|e| e.to_lowercase()).collect();
        self.live.retain(|name, _| wanted.contains(name));
        for name in wanted {
            if self.live.contains_key(&name) || name.contains('/') || name.is_empty() {
                continue;
            }
            let path = self.dir.join(&name);
            let _ = std::fs::remove_file(&path);
            let listener =
                UnixListener::bind(&path).map_err(|e| Error::from_io(&e, format!("serving {}", path.display())))?;
            // The folder keeps others out; smbd connects as root.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, h, pipe) = (Arc::clone(&stop), handle.clone(), name.clone());
            std::thread::Builder::new()
                .name("pipeslot-gateway-npa".into())
                .spawn(move || accept(listener, &pipe, &flag, &h))
                .map_err(|e| Error::from_io(&e, "starting an NPA acceptor"))?;
            tracing::info!("gateway: serving {name} for smbd at {}", path.display());
            self.live.insert(name, Endpoint { path, stop });
        }
        Ok(())
    }
}

fn accept(listener: UnixListener, pipe: &str, stop: &AtomicBool, handle: &GatewayHandle) {
    for s in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(s) = s else { continue };
        let uid = rustix::net::sockopt::socket_peercred(&s).map(|c| c.uid.as_raw());
        if uid != Ok(0) {
            tracing::warn!("gateway: {pipe}: a connection to smbd's socket from uid {uid:?}, not root; refused");
            continue;
        }
        let (pipe, handle) = (pipe.to_owned(), handle.clone());
        let _ = std::thread::Builder::new()
            .name("pipeslot-gateway-npa".into())
            .spawn(move || {
                if let Err(e) = relay(s, &pipe, &handle) {
                    tracing::info!("gateway: {pipe} for smbd: {e}");
                }
            });
    }
}

/// One client's open, from smbd's request to the last byte.
fn relay(mut smbd: UnixStream, pipe: &str, handle: &GatewayHandle) -> io::Result<()> {
    smbd.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut len = [0u8; 4];
    smbd.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > npa::MAX_REQUEST {
        return Err(err(
            Win32Error::ERROR_INVALID_DATA,
            format!("an NPA request of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    smbd.read_exact(&mut body)?;
    smbd.set_read_timeout(None)?;
    let req = match NpaRequest::parse(&body) {
        Ok(r) => r,
        // Level 7 is what this Samba speaks; anything else is refused (the
        // connection closed, which fails the client's CREATE) rather than
        // guessed at.
        Err(e) => return Err(err(Win32Error::ERROR_INVALID_DATA, format!("smbd's request: {e}"))),
    };
    let user = req.unix_name.clone().unwrap_or_default();
    let address = format!("{}:{}", req.client_addr.as_deref().unwrap_or("?"), req.client_port);
    let computer = req.client_name.clone().unwrap_or_default();
    let shown = pipeslot_proto::name::escape_controls(&user);
    // The export may have gone in a reload since smbd connected.
    if !handle.current().exports(pipe) {
        tracing::info!("gateway: {shown} from {address} (through smbd): {pipe} is no longer exported");
        return Ok(());
    }
    let mut o = ClientOptions::new();
    // As our own server's hop: shared memory when the local server takes it.
    o.shared_memory(true);
    use pipeslot_proto::wire::local::hello_ext as ext;
    o.on_behalf_of = Some(ext::encode(&[
        (ext::REMOTE_USER, &user),
        (ext::REMOTE_ADDRESS, &address),
        (ext::REMOTE_COMPUTER, &computer),
    ]));
    let local = match o.open(format!(r"\\.\pipe\{pipe}")) {
        Ok(c) => c,
        Err(e) => {
            // smbd 4.17 does not pass a reply's status on to the client
            // (its CREATE succeeds and the pipe is dead): no reply at all
            // fails the CREATE (STATUS_CONNECTION_DISCONNECTED). The log
            // says why.
            tracing::info!("gateway: {shown} from {address} (through smbd): {pipe} refused: {e}");
            return Ok(());
        }
    };
    let message = local.info().is_ok_and(|i| i.mode == PipeMode::Message);
    if message {
        let _ = local.set_read_mode(PipeMode::Message);
    }
    smbd.write_all(&npa::reply(req.level, message, 0))?;
    tracing::info!("gateway: {shown} from {address} (through smbd) opened {pipe}");
    let local = Arc::new(local);
    let to_smbd = smbd.try_clone()?;
    let back = {
        let local = Arc::clone(&local);
        std::thread::Builder::new()
            .name("pipeslot-gateway-npa".into())
            .spawn(move || local_to_smbd(&local, to_smbd, message))?
    };
    let r = smbd_to_local(&mut smbd, &local, message);
    // Either side gone: the other ends too.
    local.abort();
    let _ = smbd.shutdown(std::net::Shutdown::Both);
    let _ = back.join();
    r
}

fn smbd_to_local(smbd: &mut UnixStream, local: &NamedPipeClient, message: bool) -> io::Result<()> {
    let mut buf = vec![0u8; npa::MAX_MESSAGE];
    loop {
        if message {
            let mut l = [0u8; 2];
            if smbd.read_exact(&mut l).is_err() {
                return Ok(());
            }
            let n = usize::from(u16::from_le_bytes(l));
            smbd.read_exact(&mut buf[..n])?;
            local.write_msg(&buf[..n])?;
        } else {
            let n = smbd.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            local.write_msg(&buf[..n])?;
        }
    }
}

fn local_to_smbd(local: &NamedPipeClient, mut smbd: UnixStream, message: bool) {
    let mut buf = vec![0u8; npa::MAX_MESSAGE];
    loop {
        // A message longer than the framing's u16 goes in parts: each part
        // is one message to the client (logged once, not hidden).
        let r = local.read_msg(&mut buf);
        let Ok(m) = r else { break };
        if m.more {
            tracing::warn!(
                "gateway: a message over {} bytes goes to smbd in parts",
                npa::MAX_MESSAGE
            );
        }
        let sent = if message {
            let mut f = Vec::with_capacity(2 + m.len);
            f.extend_from_slice(&(m.len as u16).to_le_bytes());
            f.extend_from_slice(&buf[..m.len]);
            smbd.write_all(&f)
        } else {
            smbd.write_all(&buf[..m.len])
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = smbd.shutdown(std::net::Shutdown::Both);
}
