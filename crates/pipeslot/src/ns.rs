//! The local namespace on disk: one root shared by every user of the machine,
//! laid out so that nothing another user can write lies on a path that a
//! client or a server trusts (docs/SECURITY.md has the threat model).
//!
//! ```text
//! $PIPESLOT_DIR (default /run/pipeslot)   root's or ours; 1777 with the sticky bit, like /tmp
//!   p-<key>/              one pipe name; key = SHA-256 of the folded name. Owned by the
//!                         name's owner (its first creator), mode 0755: only the owner
//!                         (and root) put anything in it
//!     name                the first creator's spelling, for listing
//!     lock                0600, flock'd while an instance is being created
//!     security            who else may add instances (only when someone is granted)
//!     <pid>-<nonce>.sock  one listening socket per serving process of the owner (or root)
//!     joiners/            1777; only when `security` grants someone FILE_CREATE_PIPE_INSTANCE
//!       <uid>/            a granted user's own folder (owned by that uid, 0755): its sockets
//!   m-<key>/              one mailslot name, owned by its reader's user, 0755 (see `mailslot::local`)
//! ```
//!
//! Every path below the root is reached from a verified folder handle:
//! `openat` with `O_NOFOLLOW`, and sockets through `/proc/self/fd/N/<file>`,
//! so a symlink, FIFO, file or folder planted by another user is never
//! followed, and a 256-character name never meets `sun_path`'s 108 bytes.
//! Who a server is comes from the connected socket (`SO_PEERCRED`), never
//! from what a file says; the folder's owner says whose name it is.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::error::{err, Error, Win32Error};

/// The environment variable that moves the namespace root.
pub const ROOT_ENV: &str = "PIPESLOT_DIR";
/// The machine-wide root when `PIPESLOT_DIR` is not set: made by root (the
/// first root process, or systemd-tmpfiles at boot with
/// `dist/tmpfiles.d/pipeslot.conf`), so no other user can make it first.
/// Without it, a non-root process uses a root of its own user's.
pub const DEFAULT_ROOT: &str = "/run/pipeslot";

/// Which kind of object a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pipe,
    Mailslot,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Pipe => "p-",
            Kind::Mailslot => "m-",
        }
    }
}

/// The uid this process acts as.
pub(crate) fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The namespace root.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    root: PathBuf,
}

impl Namespace {
    /// The root named by `PIPESLOT_DIR`, or the default for this user.
    pub(crate) fn from_env() -> Namespace {
        let root = match std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
            Some(v) => {
                let p = PathBuf::from(v);
                match p.is_absolute() {
                    true => p,
                    false => std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p),
                }
            }
            None => default_root(),
        };
        Namespace { root }
    }

    /// The root's path.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The root, checked as [`open_checked`](Self::open_checked) does, from
    /// a per-process cache: one `lstat` shows it is still the folder that
    /// was checked (same inode, owner and mode), which saves an open, a
    /// `fstat` and a close on every client open.
    pub(crate) fn open(&self, create: bool) -> io::Result<Option<Arc<Dir>>> {
        static ROOTS: Mutex<Vec<Arc<Dir>>> = Mutex::new(Vec::new());
        let mut roots = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = roots.iter().position(|d| d.path == self.root) {
            let same = rfs::lstat(&self.root).is_ok_and(|st| {
                st.st_ino == roots[at].ino
                    && st.st_dev == roots[at].dev
                    && st.st_uid == roots[at].uid
                    && st.st_mode == roots[at].mode
            });
            if same {
                return Ok(Some(Arc::clone(&roots[at])));
            }
            roots.swap_remove(at);
        }
        let Some(dir) = self.open_checked(create)? else {
            return Ok(None);
        };
        let dir = Arc::new(dir);
        if roots.len() >= 16 {
            roots.remove(0);
        }
        roots.push(Arc::clone(&dir));
        Ok(Some(dir))
    }

    /// Opens the root after checking that no other user can rearrange it;
    /// `None` when it does not exist and `create` is false.
    fn open_checked(&self, create: bool) -> io::Result<Option<Dir>> {
        let path = &self.root;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = loop {
            match rfs::open(path, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if create => {
                    // Shared when it is the machine's or one we were told to
                    // make; the per-user fallback is ours alone.
                    let mode = if self.is_private_fallback() { 0o755 } else { 0o1777 };
                    match rfs::mkdir(path, Mode::from_raw_mode(mode)) {
                        Ok(()) => {
                            // mkdir's mode is cut by the umask; set it whole.
                            rfs::chmod(path, Mode::from_raw_mode(mode)).map_err(|e| root_error(path, e.into()))?;
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(root_error(path, e.into())),
                    }
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let link =
                        rfs::lstat(path).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                    let why = if link {
                        format!("is a symbolic link; set {ROOT_ENV} to the folder itself")
                    } else {
                        format!("is not a folder (a file stands there); set {ROOT_ENV} to a folder")
                    };
                    return Err(err(
                        Win32Error::ERROR_DIRECTORY,
                        format!("the namespace root {} {why}", shown_root(path)),
                    ));
                }
                Err(e) => return Err(root_error(path, e.into())),
            }
        };
        let dir = Dir::from_fd(fd, path.clone())?;
        let me = me();
        if dir.uid != me && dir.uid != 0 {
            return Err(err(
                Win32Error::ERROR_ACCESS_DENIED,
                format!(
                    "the namespace root {} belongs to {}: its owner could replace any pipe or mailslot in it; \
                     use a folder of your own or root's ({ROOT_ENV})",
                    path.display(),
                    user_label(dir.uid)
                ),
            ));
        }
        if dir.mode & 0o022 != 0 && dir.mode & 0o1000 == 0 {
            // Writable by others without the sticky bit: anyone could
            // rename another user's names away.
            if dir.uid == me {
                rfs::fchmod(&dir.fd, Mode::from_raw_mode((dir.mode & 0o7777) | 0o1000))
                    .map_err(|e| root_error(path, e.into()))?;
                return Ok(Some(Dir::from_fd(dir.fd, path.clone())?));
            } else {
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!(
                        "the namespace root {} is writable by other users without the sticky bit; \
                         chmod +t it (as /tmp is)",
                        path.display()
                    ),
                ));
            }
        }
        Ok(Some(dir))
    }

    fn is_private_fallback(&self) -> bool {
        std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()).is_none() && self.root != Path::new(DEFAULT_ROOT)
    }
}

fn default_root() -> PathBuf {
    let shared = Path::new(DEFAULT_ROOT);
    if rustix::process::geteuid().is_root() {
        return shared.to_path_buf();
    }
    if let Ok(st) = rfs::lstat(shared) {
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory && st.st_uid == 0 {
            return shared.to_path_buf();
        }
    }
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(run) if run.is_absolute() => run.join("pipeslot"),
        _ => PathBuf::from(format!("/tmp/pipeslot-{}", me())),
    }
}

/// The root's path as errors name it, saying where a relative
/// `PIPESLOT_DIR` came from (processes in other folders would resolve it
/// elsewhere, and see other names).
fn shown_root(path: &Path) -> String {
    match std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
        Some(v) if !Path::new(&v).is_absolute() => format!(
            "{} ({ROOT_ENV}={}, relative: resolved from this process's folder; give an absolute path)",
            path.display(),
            Path::new(&v).display()
        ),
        _ => path.display().to_string(),
    }
}

fn root_error(path: &Path, e: io::Error) -> io::Error {
    let fix = match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "; this user may not enter or make it: a root shared by users is root's with mode 1777 \
             (as /tmp), or set {ROOT_ENV} to a folder of your own"
        ),
        Some(libc::ENOENT) => {
            // Win32's word for a folder on the way that is not there.
            return err(
                Win32Error::ERROR_PATH_NOT_FOUND,
                format!(
                    "cannot use the namespace root {}: its parent folder does not exist; make it, \
                     or set {ROOT_ENV} elsewhere",
                    shown_root(path)
                ),
            );
        }
        _ => String::new(),
    };
    Error::from_io(&e, format!("cannot use the namespace root {}{fix}", shown_root(path))).into()
}

/// `nobody (uid 65534)`: a user for messages.
pub(crate) fn user_label(uid: u32) -> String {
    match crate::security::user_name(uid) {
        Some(n) => format!("user {n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// An open, verified folder: every file in it is reached through this handle.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    uid: u32,
    mode: u32,
    dev: u64,
    ino: u64,
}

/// What stands at a name in a folder.
#[derive(Debug)]
pub(crate) enum Lookup {
    Missing,
    Dir(Dir),
    /// Not a folder (a symlink, file, FIFO, socket…): never followed.
    Other {
        uid: u32,
        what: &'static str,
    },
}

/// A socket file found in a folder, with its file owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketEntry {
    pub(crate) name: String,
    pub(crate) uid: u32,
}

fn what(ft: FileType) -> &'static str {
    match ft {
        FileType::Symlink => "a symbolic link",
        FileType::RegularFile => "a file",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::Directory => "a folder",
        _ => "a device",
    }
}

impl Dir {
    fn from_fd(fd: OwnedFd, path: PathBuf) -> io::Result<Dir> {
        let st = rfs::fstat(&fd)?;
        Ok(Dir {
            fd,
            path,
            uid: st.st_uid,
            mode: st.st_mode,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// The folder's owner.
    pub(crate) fn owner(&self) -> u32 {
        self.uid
    }

    /// The folder's identity (device, inode).
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The folder's path, for messages (never used to reach files).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A short path to `file` in this folder that resolves through the
    /// handle: for `bind` and `connect`, which take paths.
    pub(crate) fn at(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{file}", self.fd.as_raw_fd()))
    }

    /// What stands at `name`, without following it.
    pub(crate) fn lookup(&self, name: &str) -> io::Result<Lookup> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Lookup::Dir(Dir::from_fd(fd, self.path.join(name))?)),
            Err(Errno::NOENT) => Ok(Lookup::Missing),
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Ok(Lookup::Other {
                    uid: st.st_uid,
                    what: what(FileType::from_raw_mode(st.st_mode)),
                }),
                Err(Errno::NOENT) => Ok(Lookup::Missing),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// A sub-folder, made (owned by us, `mode`) when missing. Something else
    /// at the name, or a folder of another user's, is an error.
    pub(crate) fn make_dir(&self, name: &str, mode: u32) -> io::Result<Dir> {
        match rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        match self.lookup(name)? {
            Lookup::Dir(d) if d.uid == me() => {
                if d.mode & 0o7777 != mode {
                    rfs::fchmod(&d.fd, Mode::from_raw_mode(mode))?;
                }
                Ok(d)
            }
            Lookup::Dir(d) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} belongs to {}", d.path.display(), user_label(d.uid)),
            )),
            Lookup::Other { what, .. } => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is {what}", self.path.join(name).display()),
            )),
            Lookup::Missing => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// The folders in this one whose names start with `prefix`.
    pub(crate) fn dir_names(&self, prefix: &str) -> Vec<String> {
        self.names(|name, ft| name.starts_with(prefix) && matches!(ft, FileType::Directory | FileType::Unknown))
    }

    /// The socket files here (`*.sock`, sockets only, never links).
    pub(crate) fn sockets(&self) -> Vec<SocketEntry> {
        self.sockets_and(None).0
    }

    /// The socket files here, and whether `also` is listed too: one
    /// listing of the folder for both.
    pub(crate) fn sockets_and(&self, also: Option<&str>) -> (Vec<SocketEntry>, bool) {
        let mut seen = false;
        let names = self.names(|name, ft| {
            if Some(name) == also {
                seen = true;
            }
            name.ends_with(".sock") && matches!(ft, FileType::Socket | FileType::Unknown)
        });
        let mut v: Vec<SocketEntry> = names
            .into_iter()
            .filter_map(|name| {
                let st = rfs::statat(&self.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
                (FileType::from_raw_mode(st.st_mode) == FileType::Socket)
                    .then_some(SocketEntry { name, uid: st.st_uid })
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        (v, seen)
    }

    /// The entries `keep` accepts, read with `getdents64` on this handle
    /// itself (no second open of the folder). The handle's offset is
    /// rewound first, so every call lists the whole folder.
    fn names(&self, mut keep: impl FnMut(&str, FileType) -> bool) -> Vec<String> {
        if rfs::seek(&self.fd, rfs::SeekFrom::Start(0)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::with_capacity(8192);
        let mut it = rfs::RawDir::new(&self.fd, buf.spare_capacity_mut());
        let mut out = Vec::new();
        while let Some(Ok(entry)) = it.next() {
            let name: &CStr = entry.file_name();
            let Ok(name) = name.to_str() else { continue };
            if name != "." && name != ".." && keep(name, entry.file_type()) {
                out.push(name.to_owned());
            }
        }
        out
    }

    /// Reads a small regular file (never through a link), with its owner.
    pub(crate) fn read_small(&self, file: &str, max: usize) -> Option<(Vec<u8>, u32)> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rfs::openat(&self.fd, file, flags, Mode::empty()).ok()?;
        let st = rfs::fstat(&fd).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        let mut buf = Vec::new();
        File::from(fd).take(max as u64 + 1).read_to_end(&mut buf).ok()?;
        (buf.len() <= max).then_some((buf, st.st_uid))
    }

    /// Replaces `file` with `data` at once (a temporary file renamed over it).
    pub(crate) fn write_atomic(&self, file: &str, data: &[u8], mode: u32) -> io::Result<()> {
        use std::io::Write;
        let tmp = format!(
            ".{file}.{}.{:x}",
            std::process::id(),
            NONCE.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(mode))?;
        rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let written = File::from(fd).write_all(data);
        let renamed = written.and_then(|()| Ok(rfs::renameat(&self.fd, tmp.as_str(), &self.fd, file)?));
        if renamed.is_err() {
            let _ = rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        renamed
    }

    /// Opens (making it when missing) a file only our user may open, such as
    /// a lock file: 0600, never through a link, never another user's.
    pub(crate) fn open_private(&self, file: &str) -> io::Result<OwnedFd> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        for _ in 0..4 {
            let fd = rfs::openat(&self.fd, file, flags, Mode::from_raw_mode(0o600))?;
            let st = rfs::fstat(&fd)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_uid != me() {
                // Not ours (made before the folder was ours): replace it.
                self.remove(file);
                continue;
            }
            if st.st_mode & 0o077 != 0 {
                rfs::fchmod(&fd, Mode::from_raw_mode(0o600))?;
            }
            return Ok(fd);
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not ours", self.path.join(file).display()),
        ))
    }

    /// Whether `fd` is the file now at `file` here.
    pub(crate) fn holds(&self, file: &str, fd: &OwnedFd) -> bool {
        match (rfs::fstat(fd), rfs::statat(&self.fd, file, AtFlags::SYMLINK_NOFOLLOW)) {
            (Ok(a), Ok(b)) => a.st_ino == b.st_ino && a.st_dev == b.st_dev,
            _ => false,
        }
    }

    /// Removes a file (not a folder) if it is there.
    pub(crate) fn remove(&self, file: &str) {
        let _ = rfs::unlinkat(&self.fd, file, AtFlags::empty());
    }

    /// Removes an empty sub-folder.
    pub(crate) fn remove_dir(&self, name: &str) -> bool {
        rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).is_ok()
    }

    /// Whether two handles are on the same folder.
    pub(crate) fn same(&self, other: &Dir) -> bool {
        self.ino == other.ino && self.dev == other.dev
    }

    /// Whether this folder is still the one at `parent/name` (the last user
    /// of a name may remove its folder at any moment).
    pub(crate) fn still_at(&self, parent: &Dir, name: &str) -> bool {
        rfs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| st.st_ino == self.ino && st.st_dev == self.dev)
            .unwrap_or(false)
    }

    /// Removes everything at `name` without following links: for root,
    /// reclaiming what another user left behind or planted. Depth-limited:
    /// nothing we make is deeper than three levels.
    pub(crate) fn remove_tree(&self, name: &str) -> io::Result<()> {
        self.remove_tree_at(name, 4)
    }

    fn remove_tree_at(&self, name: &str, depth: u32) -> io::Result<()> {
        match self.lookup(name)? {
            Lookup::Missing => Ok(()),
            Lookup::Other { .. } => Ok(rfs::unlinkat(&self.fd, name, AtFlags::empty())?),
            Lookup::Dir(sub) => {
                if depth == 0 {
                    return Err(io::Error::other(format!(
                        "{} is nested too deep to be ours",
                        sub.path.display()
                    )));
                }
                for child in sub.names(|_, _| true) {
                    sub.remove_tree_at(&child, depth - 1)?;
                }
                Ok(rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
            }
        }
    }
}

/// The folder name of an object: its kind's prefix and 32 hex digits of the
/// SHA-256 of the folded name.
pub(crate) fn entry_name(kind: Kind, folded: &str) -> String {
    let digest = Sha256::digest(folded.as_bytes());
    let mut s = String::with_capacity(34);
    s.push_str(kind.prefix());
    for b in digest.iter().take(16) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// One name's folder, with the root it was found in.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) root: Arc<Dir>,
    pub(crate) dir: Dir,
    pub(crate) entry: String,
}

impl Object {
    /// The name's owner: whoever made its folder.
    pub(crate) fn owner(&self) -> u32 {
        self.dir.owner()
    }

    /// Whether the folder is still the name's (not removed meanwhile).
    pub(crate) fn is_current(&self) -> bool {
        self.dir.still_at(&self.root, &self.entry)
    }
}

/// The folder of a name, if it has one. Anything but a folder at its place
/// is another user's trick and counts as no name at all.
pub(crate) fn find(kind: Kind, folded: &str) -> io::Result<Option<Object>> {
    let Some(root) = Namespace::from_env().open(false)? else {
        return Ok(None);
    };
    let entry = entry_name(kind, folded);
    match root.lookup(&entry)? {
        Lookup::Dir(dir) => Ok(Some(Object { root, dir, entry })),
        Lookup::Missing => Ok(None),
        Lookup::Other { uid, what } => {
            tracing::warn!(
                "ignoring {what} of {} planted at {}",
                user_label(uid),
                root.path.join(&entry).display()
            );
            Ok(None)
        }
    }
}

/// Whether `entry` in the namespace root is still the folder `id` (not
/// removed and made again, nor replaced by a link): one `fstatat` on the
/// checked root's handle.
pub(crate) fn folder_unchanged(entry: &str, id: (u64, u64)) -> bool {
    let Ok(Some(root)) = Namespace::from_env().open(false) else {
        return false;
    };
    rfs::statat(&root.fd, entry, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory && (st.st_dev, st.st_ino) == id)
}

/// Every name of a kind, as (the creator's spelling, its folder). `fold`
/// turns a spelling into its folded form; a folder whose recorded spelling
/// does not hash to the folder's own name (a fake record) is skipped.
pub(crate) fn list(kind: Kind, fold: &dyn Fn(&str) -> Option<String>) -> io::Result<Vec<(String, Object)>> {
    let Some(root) = Namespace::from_env().open(false)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in root.dir_names(kind.prefix()) {
        let Ok(Lookup::Dir(dir)) = root.lookup(&entry) else {
            continue;
        };
        let owner = dir.owner();
        let Some((text, uid)) = dir.read_small("name", 4096) else {
            continue;
        };
        let Ok(display) = String::from_utf8(text) else { continue };
        if (uid != owner && uid != 0) || fold(&display).map(|f| entry_name(kind, &f)) != Some(entry.clone()) {
            continue;
        }
        found.push((display, entry, dir));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found
        .into_iter()
        .map(|(display, entry, dir)| {
            let root = Arc::clone(&root);
            (display, Object { root, dir, entry })
        })
        .collect())
}

/// Whose a name's folder turned out to be.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Ours: new, or made by us before.
    Mine(Object),
    /// Another user's, with a live server or reader in it.
    Theirs(Object),
}

/// Takes a name's folder for creating an object: makes it (ours), or finds
/// the one there. What another user left without anything live in it
/// (`live` says) is removed when we are root and refused otherwise, saying
/// who holds it and how to clear it; planted files, links and the like
/// likewise.
pub(crate) fn claim(
    kind: Kind,
    folded: &str,
    what: &dyn std::fmt::Display,
    live: &dyn Fn(&Object) -> bool,
) -> io::Result<Claim> {
    let ns = Namespace::from_env();
    let entry = entry_name(kind, folded);
    let me = me();
    for tries in 0..RACE_TRIES {
        race_pause(tries);
        let root = ns.open(true)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        match rfs::mkdirat(&root.fd, entry.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(Errno::ACCESS) | Err(Errno::PERM) | Err(Errno::ROFS) => {
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!(
                        "cannot create {what}: this user may not add names to the namespace root {} \
                         (it should be mode 1777, as /tmp is)",
                        root.path.display()
                    ),
                ))
            }
            Err(e) => return Err(Error::from_io(&e.into(), format!("cannot create {what}")).into()),
        }
        match root.lookup(&entry)? {
            Lookup::Missing => continue, // its last user removed it just now
            Lookup::Dir(dir) if dir.uid == me => {
                if dir.mode & 0o7777 != 0o755 {
                    rfs::fchmod(&dir.fd, Mode::from_raw_mode(0o755))?;
                }
                return Ok(Claim::Mine(Object {
                    root,
                    dir,
                    entry: entry.clone(),
                }));
            }
            Lookup::Dir(dir) => {
                let obj = Object {
                    root,
                    dir,
                    entry: entry.clone(),
                };
                if live(&obj) {
                    return Ok(Claim::Theirs(obj));
                }
                if me == 0 {
                    tracing::info!(
                        "{what}: removing what {} left behind at {}",
                        user_label(obj.owner()),
                        obj.dir.path.display()
                    );
                    obj.root.remove_tree(&obj.entry)?;
                    continue;
                }
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!(
                        "{what} was left behind by {}, whose server is no longer running; \
                         only root can clear it (rm -r {}), or its owner by serving it again",
                        user_label(obj.owner()),
                        obj.dir.path.display()
                    ),
                ));
            }
            Lookup::Other { uid, what: thing } => {
                let path = root.path.join(&entry);
                if me == 0 || uid == me {
                    tracing::warn!(
                        "{what}: removing {thing} of {} planted at {}",
                        user_label(uid),
                        path.display()
                    );
                    root.remove(&entry);
                    continue;
                }
                return Err(err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!(
                        "cannot create {what}: {} put {thing} at {} where its folder belongs; \
                         only root can clear it (rm {})",
                        user_label(uid),
                        path.display(),
                        path.display()
                    ),
                ));
            }
        }
    }
    Err(err(
        Win32Error::ERROR_GEN_FAILURE,
        format!("cannot create {what}: its folder keeps changing"),
    ))
}

/// How often a create tries again after losing a race with other
/// processes over a name's folder (it went between the claim and the lock).
pub(crate) const RACE_TRIES: u32 = 40;

/// The pause before try `tries` (0 = the first, no pause). Retrying at once
/// can lose to the same busy peers every time on a loaded machine; a pause
/// growing from 40 µs to 2.5 ms lets them finish, and all 40 tries together
/// stay under 100 ms.
pub(crate) fn race_pause(tries: u32) {
    if tries > 0 {
        std::thread::sleep(std::time::Duration::from_micros(20 << tries.min(7)));
    }
}

/// An exclusive lock on a folder, released on drop, with a shared lock on
/// its `keep` file that says "this process means to use the folder".
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: OwnedFd,
    intent: Option<OwnedFd>,
}

/// The file whose shared lock every creator takes before it waits for the
/// folder's lock. Without it the server that closes its last instance
/// removes the folder under a creator waiting for the lock, and on a busy
/// machine one waiter could lose that way twenty times in a row (flock is
/// not fair: the remover's next create takes the lock before the woken
/// waiter runs).
pub(crate) const KEEP_FILE: &str = "keep";

impl DirLock {
    /// Whether this holder is the folder's only user, so that it may remove
    /// it: `Some` with an exclusive lock on `keep` (held until the removal is
    /// done, so that no creator slips in between) when no other process
    /// waits for the folder.
    ///
    /// A process that forks while one of its threads holds a shared lock
    /// lends it to the child until the child's `exec` closes it (flock
    /// belongs to the open file, which the child shares): refused at once,
    /// a server closing while another thread spawned a process would leave
    /// its empty folder behind. So a refusal is asked again for up to 2 ms,
    /// far longer than a spawn takes; a creator that really waits holds on
    /// (it cannot get the folder's lock meanwhile) and keeps the folder.
    pub(crate) fn alone(&mut self, dir: &Dir) -> Option<OwnedFd> {
        self.intent = None; // our own shared lock would refuse us
        let keep = dir.open_private(KEEP_FILE).ok()?;
        let mut tries = 0;
        loop {
            match rfs::flock(&keep, rfs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                Err(_) => return None,
            }
        }
        dir.holds(KEEP_FILE, &keep).then_some(keep)
    }
}

/// Takes `dir`'s creation lock (blocking; held for a few syscalls). The lock
/// file is 0600 in a folder only its owner writes, so no other user can
/// open it, let alone hold it. `None` when `dir` is no longer at
/// `parent/name` (its last user removed it under this lock): start over.
pub(crate) fn lock(dir: &Dir, parent: &Dir, name: &str) -> io::Result<Option<DirLock>> {
    let open = |file| match dir.open_private(file) {
        Ok(fd) => Ok(Some(fd)),
        // The folder was removed (its handle is on a deleted folder).
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let Some(intent) = open(KEEP_FILE)? else {
        return Ok(None);
    };
    rfs::flock(&intent, rfs::FlockOperation::LockShared)?;
    let Some(fd) = open("lock")? else { return Ok(None) };
    rfs::flock(&fd, rfs::FlockOperation::LockExclusive)?;
    if !dir.holds("lock", &fd) || !dir.holds(KEEP_FILE, &intent) || !dir.still_at(parent, name) {
        return Ok(None);
    }
    Ok(Some(DirLock {
        _file: fd,
        intent: Some(intent),
    }))
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh socket file name for this process: `<pid>-<nonce>.sock`.
pub(crate) fn fresh_socket_name() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = NONCE.fetch_add(1, Ordering::Relaxed);
    format!("{}-{:x}{:08x}.sock", std::process::id(), n, t)
}

/// Binds a listening socket at `dir/file`, which every user may connect to
/// (access control is the acceptor's job, so refusals carry a Win32 error).
pub(crate) fn bind(dir: &Dir, file: &str) -> io::Result<UnixListener> {
    let l = UnixListener::bind(dir.at(file))?;
    rfs::chmodat(&dir.fd, file, Mode::from_raw_mode(0o666), AtFlags::empty())?;
    Ok(l)
}

/// Binds a datagram socket at `dir/file` that every user may write to.
pub(crate) fn bind_datagram(dir: &Dir, file: &str) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::bind(dir.at(file))?;
    rfs::chmodat(&dir.fd, file, Mode::from_raw_mode(0o666), AtFlags::empty())?;
    Ok(s)
}

/// Connects to a listening socket at `dir/file`: by its real path when that
/// fits `sun_path` (a plain lookup is cheaper than one through /proc), else
/// through the handle. Either way the caller checks whose socket answered
/// (`SO_PEERCRED`), and only the folder's owner could have moved anything.
pub(crate) fn connect(dir: &Dir, file: &str) -> io::Result<UnixStream> {
    if connectable_by_path(&dir.path, file) {
        return UnixStream::connect(dir.path.join(file));
    }
    UnixStream::connect(dir.at(file))
}

/// Whether a socket in `dir` can be reached by its path alone (the path
/// fits in `sun_path`).
pub(crate) fn connectable_by_path(dir: &Path, file: &str) -> bool {
    dir.as_os_str().len() + 1 + file.len() <= SUN_PATH_MAX
}

/// `sun_path` holds 108 bytes including the NUL.
const SUN_PATH_MAX: usize = 107;

/// The uid of the process that listens on the other end of a connected
/// socket, as the kernel recorded it at `listen` time.
pub(crate) fn peer_uid(s: &impl AsFd) -> Option<u32> {
    rustix::net::sockopt::socket_peercred(s).ok().map(|c| c.uid.as_raw())
}

/// An error for a name whose object folder cannot be made.
pub(crate) fn dir_error(e: &io::Error, what: &str) -> io::Error {
    Error::from_io(e, format!("cannot prepare the namespace folder for {what}")).into()
}

/// The error for a pipe name nobody serves.
pub(crate) fn not_found(what: impl std::fmt::Display) -> io::Error {
    Error::new(Win32Error::ERROR_FILE_NOT_FOUND, format!("no pipe named {what} exists")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> (PathBuf, Arc<Dir>) {
        let base = std::env::temp_dir().join(format!("pipeslot-ns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let ns = Namespace { root: base.clone() };
        let dir = ns.open(false).unwrap().unwrap();
        (base, dir)
    }

    #[test]
    fn entry_names_are_fixed_length_distinct_and_kind_prefixed() {
        assert_eq!(entry_name(Kind::Pipe, "A").len(), 34);
        assert_ne!(entry_name(Kind::Pipe, "A"), entry_name(Kind::Pipe, "B"));
        assert_ne!(entry_name(Kind::Pipe, "A")[2..], entry_name(Kind::Mailslot, "B")[2..]);
        assert!(entry_name(Kind::Mailslot, &"X".repeat(256)).starts_with("m-"));
    }

    #[test]
    fn long_roots_still_bind_and_connect() {
        let (base, _) = scratch("long");
        let deep = base.join("a".repeat(60)).join("b".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let root = Namespace { root: deep.clone() }.open(false).unwrap().unwrap();
        let dir = root.make_dir("p-x", 0o755).unwrap();
        assert!(dir.path().as_os_str().len() > 108);
        let name = fresh_socket_name();
        let l = bind(&dir, &name).unwrap();
        let c = connect(&dir, &name).unwrap();
        let (_s, _) = l.accept().unwrap();
        assert_eq!(peer_uid(&c), Some(me()));
        assert_eq!(
            dir.sockets().iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            vec![name]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn lookups_never_follow_links() {
        let (base, root) = scratch("links");
        std::fs::create_dir(base.join("target")).unwrap();
        std::os::unix::fs::symlink(base.join("target"), base.join("p-link")).unwrap();
        std::fs::write(base.join("p-file"), b"x").unwrap();
        assert!(matches!(
            root.lookup("p-link").unwrap(),
            Lookup::Other {
                what: "a symbolic link",
                ..
            }
        ));
        assert!(matches!(
            root.lookup("p-file").unwrap(),
            Lookup::Other { what: "a file", .. }
        ));
        assert!(matches!(root.lookup("p-none").unwrap(), Lookup::Missing));
        assert!(
            root.make_dir("p-link", 0o755).is_err(),
            "a link is never made into a folder"
        );
        // A socket link in a folder is not a socket.
        let dir = root.make_dir("p-d", 0o755).unwrap();
        let _l = bind(&dir, "real.sock").unwrap();
        std::os::unix::fs::symlink(base.join("p-d/real.sock"), base.join("p-d/fake.sock")).unwrap();
        assert_eq!(dir.sockets().len(), 1);
        assert_eq!(dir.read_small("fake.sock", 16), None);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn remove_tree_removes_links_not_their_targets() {
        let (base, root) = scratch("tree");
        std::fs::create_dir_all(base.join("keep")).unwrap();
        std::fs::write(base.join("keep/file"), b"x").unwrap();
        std::fs::create_dir_all(base.join("p-t/joiners/7")).unwrap();
        std::os::unix::fs::symlink(base.join("keep"), base.join("p-t/joiners/7/link")).unwrap();
        root.remove_tree("p-t").unwrap();
        assert!(!base.join("p-t").exists());
        assert!(base.join("keep/file").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_shared_root_without_the_sticky_bit_gets_it() {
        use std::os::unix::fs::PermissionsExt;
        let (base, _) = scratch("sticky");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        Namespace { root: base.clone() }.open(false).unwrap().unwrap();
        let mode = std::fs::metadata(&base).unwrap().permissions().mode();
        assert_eq!(mode & 0o1777, 0o1777);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_root_that_is_a_link_or_a_file_is_refused_by_path() {
        let (base, _) = scratch("badroot");
        std::os::unix::fs::symlink(&base, base.join("link")).unwrap();
        std::fs::write(base.join("file"), b"x").unwrap();
        for (sub, code) in [
            ("link", Win32Error::ERROR_DIRECTORY),
            ("file", Win32Error::ERROR_DIRECTORY),
        ] {
            let e = Namespace { root: base.join(sub) }.open(true).unwrap_err();
            assert_eq!(Error::win32(&e), Some(code), "{sub}: {e}");
            assert!(e.to_string().contains(&base.join(sub).display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
