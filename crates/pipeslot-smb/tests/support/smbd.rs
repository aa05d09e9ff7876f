//! A private smbd on loopback for interop tests, shared by this crate's
//! tests and the library's (included by `#[path]`). Everything lives in one
//! temporary folder; the account is made once; every process started with
//! this instance's config (smbd, samba-dcerpcd, rpcd_*) is killed on drop.
//! Skips with a reason without smbd or root outside CI; fails under CI=true.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// smbd in the foreground with everything under one folder; killed on drop.
pub struct Smbd {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Smbd {
    pub fn start(tag: &str, extra: &str) -> Option<Smbd> {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let smbd = ["/usr/sbin/smbd", "/usr/bin/smbd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let root = rustix_free_euid() == 0;
        if smbd.is_none() || !root {
            assert!(!ci, "CI must run this as root with samba installed (scripts/setup.sh)");
            eprintln!("skipped: needs root and smbd (apt-get install samba)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("pipeslot-smbd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["lock", "state", "cache", "private", "run", "log", "ncalrpc"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "[global]\n  server role = standalone server\n  smb ports = {port}\n  interfaces = 127.0.0.1\n  \
             bind interfaces only = yes\n  lock directory = {d}/lock\n  state directory = {d}/state\n  \
             cache directory = {d}/cache\n  private dir = {d}/private\n  pid directory = {d}/run\n  \
             ncalrpc dir = {d}/ncalrpc\n  log file = {d}/log/smbd.log\n  passdb backend = tdbsam:{d}/private/passdb.tdb\n  \
             load printers = no\n  disable spoolss = yes\n  \
             server min protocol = SMB2_02\n{extra}"
        );
        std::fs::write(dir.join("smb.conf"), conf).unwrap();
        add_user(&dir.join("smb.conf"));
        let child = Command::new(smbd.unwrap())
            .args(["--foreground", "--no-process-group"])
            .arg(format!("--configfile={d}/smb.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smbd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smbd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Smbd { child, dir, port })
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // smbd starts samba-dcerpcd and its rpcd_* workers on demand, and
        // they outlive it: end every process that runs with our config.
        let marker = format!("--configfile={}/smb.conf", self.dir.display());
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).split('\0').any(|a| a == marker) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        if std::env::var_os("PIPESLOT_KEEP_SMBD").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The test account: a unix user of that name (Samba needs one) and its
/// password in this instance's own passdb.
pub const USER: &str = "pipeslot-smbtest";
pub const PASSWORD: &str = "pipeslot-pass-1";

fn add_user(conf: &std::path::Path) {
    let exists = Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {USER}");
    }
    let mut p = Command::new("smbpasswd")
        .arg("-c")
        .arg(conf)
        .args(["-s", "-a", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smbpasswd");
    p.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(p.wait().unwrap().success(), "smbpasswd -a {USER}");
}

/// The effective uid, from /proc (this crate has no syscall dependency).
pub fn rustix_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

impl Smbd {
    /// Where smbd looks for the socket of an external pipe `name`
    /// (lower-cased): `ncalrpc dir/np/name`.
    pub fn np_socket(&self, name: &str) -> PathBuf {
        let d = self.dir.join("ncalrpc").join("np");
        std::fs::create_dir_all(&d).unwrap();
        d.join(name.to_lowercase())
    }
}

/// What a pipe endpoint does with one message.
pub enum Answer {
    /// Send these messages back.
    Reply(Vec<Vec<u8>>),
    /// Drop the connection without answering (the pipe's server dies).
    Hang,
    /// Answer nothing and keep the connection (a server that goes quiet).
    Nothing,
}

/// Our process as a pipe server behind Samba's external-pipe proxy
/// (smbd 4.17, NPA level 7): smbd connects to the unix socket for each
/// client open, sends a length-prefixed `named_pipe_auth_req`, takes a
/// 36-byte reply naming the pipe type, and then forwards data. In message
/// mode every message goes each way as a u16 little-endian length and the
/// payload.
pub struct NpaPipe {
    pub path: PathBuf,
    pub opens: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl NpaPipe {
    pub fn serve<F>(path: PathBuf, message_mode: bool, handler: F) -> NpaPipe
    where
        F: Fn(&[u8]) -> Answer + Send + Sync + 'static,
    {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        // smbd connects as the logged-on user.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let opens = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler = std::sync::Arc::new(handler);
        let counter = opens.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut len = [0u8; 4];
                    if c.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut req = vec![0u8; u32::from_be_bytes(len) as usize];
                    if c.read_exact(&mut req).is_err() || &req[..4] != b"NPAM" {
                        return;
                    }
                    let level = u32::from_le_bytes([req[4], req[5], req[6], req[7]]);
                    let mut rep = b"NPAM".to_vec();
                    rep.extend_from_slice(&level.to_le_bytes());
                    rep.extend_from_slice(&level.to_le_bytes());
                    rep.extend_from_slice(&(if message_mode { 2u16 } else { 1 }).to_le_bytes());
                    rep.extend_from_slice(&0x05ffu16.to_le_bytes()); // device state
                    rep.extend_from_slice(&[0; 4]);
                    rep.extend_from_slice(&4096u64.to_le_bytes()); // allocation size
                    rep.extend_from_slice(&0u32.to_le_bytes()); // NT_STATUS_OK
                    let mut out = (rep.len() as u32).to_be_bytes().to_vec();
                    out.extend_from_slice(&rep);
                    if c.write_all(&out).is_err() {
                        return;
                    }
                    let send = |c: &mut UnixStream, m: &[u8]| {
                        if message_mode {
                            c.write_all(&(m.len() as u16).to_le_bytes())?;
                        }
                        c.write_all(m)
                    };
                    loop {
                        let msg = if message_mode {
                            let mut l = [0u8; 2];
                            if c.read_exact(&mut l).is_err() {
                                return;
                            }
                            let mut m = vec![0u8; usize::from(u16::from_le_bytes(l))];
                            if c.read_exact(&mut m).is_err() {
                                return;
                            }
                            m
                        } else {
                            let mut m = vec![0u8; 65536];
                            match c.read(&mut m) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => m[..n].to_vec(),
                            }
                        };
                        match handler(&msg) {
                            Answer::Reply(ms) => {
                                for m in ms {
                                    if send(&mut c, &m).is_err() {
                                        return;
                                    }
                                }
                            }
                            Answer::Hang => return,
                            Answer::Nothing => {}
                        }
                    }
                });
            }
        });
        NpaPipe { path, opens }
    }
}

/// smbd's external-pipe proxy needs no registration, only the socket; an
/// instance whose connection the test wants to end is stopped this way.
impl Drop for NpaPipe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits until smbd accepts on `port` (used after a restart).
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smbd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
