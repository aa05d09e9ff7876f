//! The local namespace on disk: one root shared by every user of the machine.
//!
//! ```text
//! $PIPESLOT_DIR (default /tmp/pipeslot), mode 1777
//!   pipe/<key>/              one folder per pipe name; key = SHA-256 of the folded name
//!     name                   the first creator's spelling, for listing
//!     lock                   flock'd while an instance is being created
//!     <pid>-<nonce>.sock     one listening socket per serving process
//!   mailslot/<key>/          one folder per mailslot name (see `mailslot::local`)
//!     name, meta             display name; what the reader accepts (max size, network)
//!     reader.lock            flock'd by the one reader for its whole life
//!     reader.sock            the reader's datagram socket; query.sock: its info socket
//! ```
//!
//! Socket paths are derived from the name's hash, so a 256-character name
//! never meets `sun_path`'s 108 bytes; a long root is reached through
//! `/proc/self/fd/N`. A socket whose process died refuses connections at once
//! (`ECONNREFUSED`): it is stale, never waited on, and removed by the next
//! creator of that name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Win32Error};

/// The environment variable that moves the namespace root.
pub const ROOT_ENV: &str = "PIPESLOT_DIR";
/// The root when `PIPESLOT_DIR` is not set.
pub const DEFAULT_ROOT: &str = "/tmp/pipeslot";

/// Which kind of object a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pipe,
    Mailslot,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe",
            Kind::Mailslot => "mailslot",
        }
    }
}

/// The namespace root.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    root: PathBuf,
}

impl Namespace {
    /// The root named by `PIPESLOT_DIR`, or the default.
    pub(crate) fn from_env() -> Namespace {
        let root = std::env::var_os(ROOT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Namespace { root }
    }

    /// The folder of one object; created (with the root) when `create` is set.
    pub(crate) fn object_dir(&self, kind: Kind, folded: &str, create: bool) -> io::Result<PathBuf> {
        let kind_dir = self.root.join(kind.dir());
        let dir = kind_dir.join(key(folded));
        if create {
            shared_dir(&self.root)?;
            shared_dir(&kind_dir)?;
            shared_dir(&dir)?;
        }
        Ok(dir)
    }

    /// Every object folder of a kind, with the display name recorded in it.
    pub(crate) fn list(&self, kind: Kind) -> io::Result<Vec<(String, PathBuf)>> {
        let kind_dir = self.root.join(kind.dir());
        let entries = match fs::read_dir(&kind_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            if let Ok(name) = fs::read_to_string(dir.join("name")) {
                out.push((name, dir));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A folder every user may add to, but where only owners remove (1777).
fn shared_dir(path: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o1777).create(path) {
        Ok(()) => match fs::set_permissions(path, fs::Permissions::from_mode(0o1777)) {
            // The last server of a name removed it meanwhile: make it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => shared_dir(path),
            r => r,
        },
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path)?;
            if !meta.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a folder", path.display()),
                ));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The folder name for a folded object name: 32 hex digits of its SHA-256.
fn key(folded: &str) -> String {
    let digest = Sha256::digest(folded.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Records the display name (the first creator's spelling) in an object folder.
pub(crate) fn write_display_name(dir: &Path, display: &str) -> io::Result<()> {
    let tmp = dir.join(format!(".name.{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(display.as_bytes())?;
    }
    let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644));
    fs::rename(&tmp, dir.join("name"))
}

/// The listening sockets in an object folder.
pub(crate) fn sockets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sock"))
        .collect();
    v.sort();
    v
}

/// Removes an object folder once no socket is left in it. Called under the
/// folder's lock.
pub(crate) fn remove_if_empty(dir: &Path) {
    if sockets(dir).is_empty() {
        let _ = fs::remove_file(dir.join("name"));
        let _ = fs::remove_file(dir.join("lock"));
        let _ = fs::remove_dir(dir);
    }
}

/// An exclusive lock on an object folder, released on drop.
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the folder's creation lock (blocking; held for a few syscalls).
/// With `create`, the folder is made (again) when missing: the last server
/// of the name may remove it at any moment, under this same lock.
pub(crate) fn lock(dir: &Path, create: bool) -> io::Result<DirLock> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let file = match OpenOptions::new().create(true).append(true).open(dir.join("lock")) {
            Ok(f) => f,
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                shared_dir(dir)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = fs::set_permissions(dir.join("lock"), fs::Permissions::from_mode(0o666));
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        // The holder before us may have emptied and removed the folder: our
        // lock is then on a dead file. Lock the live one (or give up).
        let live = fs::metadata(dir.join("lock")).map(|m| m.ino()).ok();
        if live == Some(file.metadata()?.ino()) {
            return Ok(DirLock { _file: file });
        }
        if !create {
            return Err(io::ErrorKind::NotFound.into());
        }
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh socket file name for this process: `<pid>-<nonce>.sock`.
pub(crate) fn fresh_socket_path(dir: &Path) -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = NONCE.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{}-{:x}{:08x}.sock", std::process::id(), n, t))
}

/// `sun_path` holds 108 bytes including the NUL.
const SUN_PATH_MAX: usize = 107;

/// Runs `f` with an address for `path` short enough for `sun_path` (see
/// [`with_short_path`]).
fn with_addr<T>(path: &Path, f: impl FnOnce(&SocketAddr) -> io::Result<T>) -> io::Result<T> {
    with_short_path(path, |p| f(&SocketAddr::from_pathname(p)?))
}

/// Runs `f` with a path to `path` short enough for `sun_path`: the path
/// itself, or `/proc/self/fd/N/<file>` through an open handle on its folder.
pub(crate) fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return f(path);
    }
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let file = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dir: OwnedFd = File::open(parent)?.into();
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(file);
    let r = f(&short);
    drop(dir);
    r
}

/// Binds a datagram socket at `path` that every user may write to.
pub(crate) fn bind_datagram(path: &Path) -> io::Result<UnixDatagram> {
    let s = with_addr(path, UnixDatagram::bind_addr)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
    Ok(s)
}

/// Connects a datagram socket to the one bound at `path`.
pub(crate) fn connect_datagram(sock: &UnixDatagram, path: &Path) -> io::Result<()> {
    with_addr(path, |a| sock.connect_addr(a))
}

/// Binds a listening socket at `path`, readable and writable by everyone
/// (access control is the acceptor's job, so refusals carry a Win32 error).
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    let l = with_addr(path, UnixListener::bind_addr)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Connects to a listening socket at `path`.
pub(crate) fn connect(path: &Path) -> io::Result<UnixStream> {
    with_addr(path, UnixStream::connect_addr)
}

/// An error for a name whose object folder cannot be made.
pub(crate) fn dir_error(e: &io::Error, what: &str) -> io::Error {
    Error::from_io(e, format!("cannot prepare the namespace folder for {what}")).into()
}

/// The error for a name nobody serves.
pub(crate) fn not_found(what: impl std::fmt::Display) -> io::Error {
    Error::new(
        Win32Error::ERROR_FILE_NOT_FOUND,
        format!("no pipe or mailslot named {what} exists"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_length_and_distinct() {
        assert_eq!(key("A").len(), 32);
        assert_ne!(key("A"), key("B"));
        assert_eq!(key(&"X".repeat(256)).len(), 32);
    }

    #[test]
    fn long_roots_still_bind_and_connect() {
        let base = std::env::temp_dir().join(format!("pipeslot-ns-test-{}", std::process::id()));
        let deep = base.join("a".repeat(60)).join("b".repeat(60));
        fs::create_dir_all(&deep).unwrap();
        let ns = Namespace { root: deep.clone() };
        let dir = ns.object_dir(Kind::Pipe, "LONG", true).unwrap();
        let path = fresh_socket_path(&dir);
        assert!(path.as_os_str().len() > SUN_PATH_MAX);
        let l = bind(&path).unwrap();
        let _c = connect(&path).unwrap();
        let (_s, _) = l.accept().unwrap();
        fs::remove_dir_all(&base).unwrap();
    }
}
