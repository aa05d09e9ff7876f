//! Test helpers: a context per test (its own PIPESLOT_DIR, unique pipe
//! names, every child process tracked), processes whose output is collected
//! as it comes, and a watchdog that kills the test's processes and fails it
//! instead of letting it hang.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_pipeslot");
/// nobody/nogroup: the second user of the access tests.
pub(crate) const NOBODY: u32 = 65534;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One test's world.
pub(crate) struct Ctx {
    pub(crate) dir: PathBuf,
    tag: String,
    limit: Duration,
    /// Started and not yet reaped: what the watchdog and the end kill.
    pids: Arc<Mutex<Vec<u32>>>,
}

/// Runs `body` with a fresh context; fails if it takes longer than `limit`
/// (then every process it started is killed). Leftover processes (servers
/// left running) are killed and the namespace removed at the end.
pub(crate) fn test(tag: &str, limit: Duration, body: impl FnOnce(&Ctx) + Send + 'static) {
    let ctx = Arc::new(Ctx::new(tag, limit));
    let worker = {
        let ctx = Arc::clone(&ctx);
        thread::spawn(move || body(&ctx))
    };
    let deadline = Instant::now() + limit;
    while !worker.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if !worker.is_finished() {
        ctx.kill_all();
        panic!("watchdog: test {tag} did not finish within {limit:?} (a hang); its processes were killed");
    }
    let r = worker.join();
    ctx.kill_all();
    if r.is_ok() {
        let _ = std::fs::remove_dir_all(&ctx.dir);
    }
    if let Err(panic) = r {
        std::panic::resume_unwind(panic);
    }
}

impl Ctx {
    fn new(tag: &str, limit: Duration) -> Ctx {
        let base = std::env::temp_dir().join("pipeslot-cli-tests");
        let dir = base.join(format!(
            "{}-{tag}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("test folder");
        // The access tests run a client as another user: it must reach the
        // namespace (and the copy of the binary) through these folders.
        // The namespace root itself is shared like /tmp (1777).
        for (d, mode) in [(&base, 0o755), (&dir, 0o1777)] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).expect("chmod test folder");
        }
        Ctx {
            dir,
            tag: tag.to_owned(),
            limit,
            pids: Arc::default(),
        }
    }

    /// A pipe name no other test uses (bare form: `\\.\pipe\` is implied).
    pub(crate) fn name(&self, what: &str) -> String {
        format!(
            "t-{}-{what}-{}-{}",
            self.tag,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `pipeslot ARGS` in this test's namespace.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("PIPESLOT_DIR", &self.dir)
            .env_remove("PIPESLOT_LOG")
            .env_remove("RUST_LOG");
        c
    }

    /// `pipeslot ARGS` as nobody, from a copy of the binary nobody can run.
    pub(crate) fn cmd_as_nobody(&self, args: &[&str]) -> Command {
        let bin = self.dir.join("pipeslot-copy");
        if !bin.exists() {
            std::fs::copy(BIN, &bin).expect("copy the binary");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod the binary");
        }
        let mut c = Command::new(bin);
        c.args(args)
            .env("PIPESLOT_DIR", &self.dir)
            .env_remove("PIPESLOT_LOG")
            .current_dir("/")
            .uid(NOBODY)
            .gid(NOBODY);
        c
    }

    /// Starts a process; stdout and stderr are collected as they come.
    pub(crate) fn spawn_cmd(&self, mut c: Command) -> Proc {
        c.stdout(Stdio::piped());
        self.spawn_with_stdout(c)
    }

    /// Starts a process whose stdout the caller has set (or collects it).
    pub(crate) fn spawn_with_stdout(&self, mut c: Command) -> Proc {
        c.stdin(Stdio::piped()).stderr(Stdio::piped());
        let mut tries = 0;
        let mut child = loop {
            match c.spawn() {
                Ok(child) => break child,
                // The copy for nobody was just written: another test's fork
                // may still hold it open for writing for a moment.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("cannot start pipeslot: {e}"),
            }
        };
        self.pids.lock().unwrap().push(child.id());
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let mut readers = vec![collect(child.stderr.take().expect("stderr"), Arc::clone(&err))];
        if let Some(stdout) = child.stdout.take() {
            readers.push(collect(stdout, Arc::clone(&out)));
        }
        Proc {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            readers,
            limit: self.limit,
            pids: Arc::clone(&self.pids),
        }
    }

    pub(crate) fn spawn(&self, args: &[&str]) -> Proc {
        self.spawn_cmd(self.cmd(args))
    }

    /// Runs `pipeslot ARGS` to its end (stdin empty).
    pub(crate) fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, b"")
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut p = self.spawn(args);
        p.feed(input);
        p.close_stdin();
        p.wait()
    }

    /// Starts `pipeslot serve NAME ARGS…` and returns once `listening`
    /// instances listen.
    pub(crate) fn serve(&self, name: &str, extra: &[&str], listening: u32) -> Proc {
        let mut args = vec!["serve", name];
        args.extend_from_slice(extra);
        let p = self.spawn(&args);
        self.wait_listening(name, listening);
        p
    }

    /// Polls `pipeslot info` until `n` instances of `name` listen.
    pub(crate) fn wait_listening(&self, name: &str, n: u32) {
        let want = format!("listening: {n}\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = self.run(&["info", name]);
            if info.ok() && info.stdout_str().contains(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: never had {n} listening instances: {info:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Points the library in this test process at this test's namespace, for
    /// as long as the guard lives. The library reads `PIPESLOT_DIR` from the
    /// process environment, which all tests share, so tests that use it
    /// in-process take turns (child processes get `PIPESLOT_DIR` from `cmd`).
    pub(crate) fn in_process(&self) -> MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        std::env::set_var("PIPESLOT_DIR", &self.dir);
        turn
    }

    fn kill_all(&self) {
        for pid in self.pids.lock().unwrap().drain(..) {
            // SAFETY: kill(2) on a pid this test started and has not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A running `pipeslot`.
pub(crate) struct Proc {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    limit: Duration,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Proc {
    pub(crate) fn feed(&mut self, input: &[u8]) {
        if let Some(s) = self.stdin.as_mut() {
            // A process that already exited (an error) does not read: fine.
            let _ = s.write_all(input);
        }
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Stdout so far.
    pub(crate) fn stdout(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    /// Stderr so far.
    pub(crate) fn stderr(&self) -> Vec<u8> {
        self.err.lock().unwrap().clone()
    }

    /// Waits until stderr satisfies `done` (or panics after the test's limit).
    pub(crate) fn wait_stderr(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.limit;
        loop {
            let now = String::from_utf8_lossy(&self.stderr()).into_owned();
            if done(&now) {
                return now;
            }
            assert!(Instant::now() < deadline, "stderr never showed {what}: {now:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stdout satisfies `done` (or panics after the test's limit).
    pub(crate) fn wait_stdout(&self, what: &str, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + self.limit;
        loop {
            let now = self.stdout();
            if done(&now) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "stdout never showed {what}: {:?}",
                String::from_utf8_lossy(&now)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the process runs.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit (the watchdog covers a hang), then for the output.
    pub(crate) fn wait(mut self) -> Out {
        self.stdin = None;
        let status = self.child.wait().expect("wait for pipeslot");
        let pid = self.child.id();
        // Reaped: its pid may be reused, so it must never be killed now.
        self.pids.lock().unwrap().retain(|&p| p != pid);
        // Children of the process (serve --exec) may hold stderr a bit longer.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        Out {
            status,
            stdout: self.out.lock().unwrap().clone(),
            stderr: self.err.lock().unwrap().clone(),
        }
    }
}

/// A finished process.
pub(crate) struct Out {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}, stdout {:?}, stderr {:?}",
            self.status.code(),
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

impl Out {
    pub(crate) fn ok(&self) -> bool {
        self.status.success()
    }

    pub(crate) fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub(crate) fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts success with nothing on stderr; returns stdout.
    #[track_caller]
    pub(crate) fn success(&self) -> String {
        assert!(self.ok() && self.stderr.is_empty(), "expected success: {self:?}");
        self.stdout_str()
    }

    /// Asserts exit 1 with exactly one stderr line
    /// `pipeslot: ERROR_X (N): …` that mentions `about`; returns the line.
    #[track_caller]
    pub(crate) fn error(&self, code: &str, number: u32, about: &str) -> String {
        assert_eq!(self.status.code(), Some(1), "expected exit 1: {self:?}");
        self.error_line(code, number, about)
    }

    /// A usage error: exit 2 with the one line
    /// `pipeslot: ERROR_INVALID_PARAMETER (87): …` that mentions `about`.
    #[track_caller]
    pub(crate) fn usage(&self, about: &str) -> String {
        assert_eq!(self.status.code(), Some(2), "expected exit 2 (usage): {self:?}");
        self.error_line("ERROR_INVALID_PARAMETER", 87, about)
    }

    #[track_caller]
    fn error_line(&self, code: &str, number: u32, about: &str) -> String {
        let err = self.stderr_str();
        let prefix = format!("pipeslot: {code} ({number}): ");
        assert!(err.starts_with(&prefix), "expected {prefix:?}: {self:?}");
        assert!(
            err.ends_with('\n') && err.matches('\n').count() == 1,
            "one line: {self:?}"
        );
        assert!(err.contains(about), "the error should mention {about:?}: {self:?}");
        err
    }
}

/// Running as root (the access tests need to switch users). Elsewhere they
/// skip with a reason, except under CI=true where skipping would hide them.
pub(crate) fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(test, &format!("it needs root to run a client as uid {NOBODY}"))
}

/// Skips `test` saying why, and returns false; under CI=true, where a
/// skip would hide what CI must prove, fails it instead.
fn skip(test: &str, why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}, and CI=true forbids skipping it"
    );
    eprintln!("skipping {test}: {why}");
    false
}

/// Splits stdout into lines (without the newlines).
pub(crate) fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out).lines().map(str::to_owned).collect()
}

/// True when `tool` is on PATH. Elsewhere than CI a missing tool skips the
/// test with a reason; under CI=true it fails (CI must prove the test).
pub(crate) fn have(tool: &str, for_what: &str) -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| d.join(tool).is_file()));
    if found {
        return true;
    }
    skip(for_what, &format!("{tool} is not installed"))
}
