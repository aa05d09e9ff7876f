//! Test helpers: one namespace root per test process, unique pipe names, a
//! watchdog so a hang fails fast, and children that are this binary
//! re-executed to play a role (see `child.rs`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use pipeslot::{Error, Win32Error};

static INIT: Once = Once::new();
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The namespace root of this test process: shared like /tmp (1777), so a
/// child running as `nobody` can serve names and reach the sockets.
pub fn root() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pipeslot-tests-{}", std::process::id()))
}

/// Sets `PIPESLOT_DIR` to a fresh folder for this test process (once).
/// Children inherit it from the environment.
pub fn init() {
    INIT.call_once(|| {
        if std::env::var_os("PIPESLOT_CHILD").is_some() {
            return;
        }
        let dir = root();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::env::set_var("PIPESLOT_DIR", &dir);
        // Network mailslots made by this process receive on loopback only,
        // on a port of their own (never UDP 138 of the real network).
        std::env::set_var("PIPESLOT_BIND", "127.0.0.1");
        std::env::set_var("PIPESLOT_MAILSLOT_PORT", "0");
    });
}

/// A pipe name no other test uses: `\\.\pipe\t-<tag>-<pid>-<n>`.
pub fn name(tag: &str) -> String {
    init();
    format!(
        r"\\.\pipe\t-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub fn watchdog<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => {
            if h.is_finished() {
                // The closure panicked: re-raise its panic.
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p);
                }
            }
            panic!("watchdog: the test did not finish within {limit:?} (a hang)")
        }
    }
}

/// The Win32 code of an io::Error, for assertions.
pub fn code(e: &std::io::Error) -> Option<Win32Error> {
    Error::win32(e)
}

/// Asserts that `r` failed with exactly `want`.
#[track_caller]
pub fn assert_win32<T: std::fmt::Debug>(r: std::io::Result<T>, want: Win32Error) {
    match r {
        Ok(v) => panic!("expected {want}, got Ok({v:?})"),
        Err(e) => assert_eq!(code(&e), Some(want), "expected {want}, got {e}"),
    }
}

/// A child process playing `role` (a function in `child.rs`), with
/// arguments passed in the environment. Killed on drop.
pub struct Peer {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Peer {
    pub fn spawn(role: &str, args: &[&str]) -> Peer {
        Peer::spawn_as(role, args, None)
    }

    /// Spawns the role as another uid/gid (needs root).
    pub fn spawn_as(role: &str, args: &[&str], uid: Option<u32>) -> Peer {
        init();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            &format!("child::{role}"),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PIPESLOT_CHILD", role)
        .env("PIPESLOT_CHILD_ARGS", args.join("\u{1f}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        Peer::start(cmd)
    }

    /// Starts `cmd` and collects the lines it reports with `report`.
    fn start(mut cmd: Command) -> Peer {
        let mut child = cmd.spawn().expect("re-execute the test binary");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest may print "test child::x ... " on the same line first.
                if let Some(at) = line.find("@@ ") {
                    let _ = tx.send(line[at + 3..].to_owned());
                }
            }
        });
        Peer { child, lines: rx }
    }

    /// A child playing the test `path` (`module::role`), with extra
    /// environment, optionally run through `wrapper` (e.g. `ip netns exec NS`).
    pub fn spawn_with(path: &str, args: &[&str], env: &[(&str, &str)], wrapper: &[&str]) -> Peer {
        let exe = std::env::current_exe().unwrap();
        let cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        Peer::start(role_command(cmd, path, args, env))
    }

    /// A child playing the test `path` (`module::role`) as another uid (and
    /// gid: the same number) when `uid` is set, with extra environment.
    pub fn spawn_as_user(path: &str, args: &[&str], env: &[(&str, &str)], uid: Option<u32>) -> Peer {
        let mut cmd = role_command(Command::new(std::env::current_exe().unwrap()), path, args, env);
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        Peer::start(cmd)
    }

    /// The next line the child reported with `report`, within `limit`.
    pub fn expect_line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the child said nothing within {limit:?}"))
    }

    /// The next line the child reported within `limit`, if any.
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// Waits for the child to exit; its exit code.
    pub fn wait(mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the child did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cmd` (this binary, maybe behind a wrapper) set up to play `path`.
fn role_command(mut cmd: Command, path: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    init();
    let role = path.rsplit("::").next().unwrap_or(path);
    cmd.args(["--exact", path, "--ignored", "--nocapture", "--test-threads=1"])
        .env("PIPESLOT_CHILD", role)
        .env("PIPESLOT_CHILD_ARGS", args.join("\u{1f}"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// In a child: the arguments the parent passed.
pub fn child_args() -> Option<Vec<String>> {
    std::env::var("PIPESLOT_CHILD_ARGS")
        .ok()
        .map(|a| a.split('\u{1f}').map(str::to_owned).collect())
}

/// In a child: tells the parent something (one line).
pub fn report(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@@ {line}");
    let _ = out.flush();
}

/// Whether this process may switch uid (tests of a second user need it).
pub fn can_switch_uid() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run these tests as root (they run a client as another uid)"
    );
    eprintln!("skipped: not root, cannot run a client as another uid");
    false
}

pub const SECOND: Duration = Duration::from_secs(1);

/// Restores SIGPIPE's default action (death), as a C or Perl host process
/// would have it, so a test can prove pipeslot never raises it.
pub fn default_sigpipe() {
    #[allow(unsafe_code)]
    // SAFETY: signal() with SIG_DFL changes only this process's disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
