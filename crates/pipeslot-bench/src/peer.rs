//! The other process. The bench re-executes its own binary with
//! [`PEER_ENV`] holding a [`PeerSpec`] (JSON); that copy serves the case and
//! exits.
//!
//! The two talk over the child's stdin and stdout, one line at a time:
//! the peer prints `READY` once it listens, `DONE …` or `RESULT …` when it
//! has something to say, and reads lines such as `GO` from its stdin. Every
//! wait on the parent's side has a deadline, and a peer is killed when its
//! [`Peer`] handle drops; the peer itself dies with its parent
//! (`PR_SET_PDEATHSIG`) and after its own lifetime runs out.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The variable that makes a binary play the peer.
pub(crate) const PEER_ENV: &str = "PIPESLOT_BENCH_PEER";

/// How long a peer may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer may take to exit once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the peer is to do: one case of one workload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PeerSpec {
    /// The workload's name (`rtt`, `bulk`, ...).
    pub(crate) workload: String,
    /// The case within it (`pipeslot-blocking`, `unix-stream`, ...).
    pub(crate) case: String,
    /// Where to listen: a pipe name, a socket path or an endpoint.
    pub(crate) addr: String,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Messages (one-way workloads), connections or instances.
    pub(crate) count: u64,
    /// Socket buffer size to ask for, 0 for the default.
    pub(crate) buffer: usize,
    /// The CPU to run on, if pinned.
    pub(crate) pin: Option<usize>,
    /// The peer exits by itself after this many seconds.
    pub(crate) lifetime_secs: u64,
}

/// Called first thing in a binary's `main`: when the bench started this
/// process as its peer (`PIPESLOT_BENCH_PEER` is set), serves that case and
/// exits (status 0, or 1 with a line on stderr); otherwise returns at once.
pub fn peer_main_if_requested() {
    let Some(raw) = std::env::var_os(PEER_ENV) else {
        return;
    };
    let code = match peer_main(&raw.to_string_lossy()) {
        Ok(()) => 0,
        // The case is skipped, not failed (a build without that peer): the
        // bench's row says so, nothing else need.
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            println!("UNSUPPORTED {e}");
            1
        }
        Err(e) => {
            eprintln!("pipeslot bench peer: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn peer_main(raw: &str) -> io::Result<()> {
    let spec: PeerSpec = serde_json::from_str(raw)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{PEER_ENV}: {e}")))?;
    // Never outlive the bench: die with the parent, and after the lifetime.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let lifetime = Duration::from_secs(spec.lifetime_secs.max(5));
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        eprintln!("pipeslot bench peer: lifetime of {lifetime:?} ran out");
        std::process::exit(3);
    });
    crate::pin::raise_fd_limit();
    if let Some(cpu) = spec.pin {
        crate::pin::pin_thread(cpu)?;
    }
    let mut ctl = Control::new();
    crate::workloads::serve(&spec, &mut ctl)
}

/// The peer's end of the line channel.
pub(crate) struct Control {
    stdin: io::StdinLock<'static>,
}

impl Control {
    fn new() -> Control {
        Control {
            stdin: io::stdin().lock(),
        }
    }

    /// Tells the bench one line.
    pub(crate) fn say(&mut self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    /// Tells the bench this peer listens.
    pub(crate) fn ready(&mut self) -> io::Result<()> {
        self.say("READY")
    }

    /// The bench's next line; an error once the bench closed our stdin.
    pub(crate) fn line(&mut self) -> io::Result<String> {
        let mut s = String::new();
        if self.stdin.read_line(&mut s)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the bench closed the control channel",
            ));
        }
        Ok(s.trim_end().to_owned())
    }

    /// Waits until the bench closes our stdin (its way to say "stop").
    pub(crate) fn wait_stop(&mut self) {
        while self.line().is_ok() {}
    }
}

/// The bench's handle on a running peer. Dropping it kills the peer.
pub(crate) struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl Peer {
    /// Starts the peer for `spec` and waits until it says `READY`.
    pub(crate) fn spawn(spec: &PeerSpec, pipeslot_dir: &std::path::Path) -> io::Result<Peer> {
        let exe = std::env::current_exe()?;
        let json = serde_json::to_string(spec).map_err(io::Error::other)?;
        let mut child = Command::new(exe)
            .env(PEER_ENV, json)
            .env(pipeslot::ROOT_ENV, pipeslot_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no peer stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            child,
            stdin,
            lines,
            what: format!("{}/{}", spec.workload, spec.case),
        };
        peer.expect("READY", READY_TIMEOUT)?;
        Ok(peer)
    }

    /// Waits for a line starting with `word`; returns the rest of it.
    pub(crate) fn expect(&mut self, word: &str, timeout: Duration) -> io::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(word) {
                        return Ok(rest.trim().to_owned());
                    }
                    if let Some(why) = line.strip_prefix("UNSUPPORTED ") {
                        return Err(io::Error::new(io::ErrorKind::Unsupported, why.to_owned()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("peer {} did not say {word} within {timeout:?}", self.what),
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.reap(Duration::from_secs(2));
                    return Err(io::Error::other(format!(
                        "peer {} exited ({status}) before saying {word}",
                        self.what
                    )));
                }
            }
        }
    }

    /// Sends the peer one line.
    pub(crate) fn send(&mut self, line: &str) -> io::Result<()> {
        match self.stdin.as_mut() {
            Some(s) => writeln!(s, "{line}").and_then(|()| s.flush()),
            None => Err(io::Error::other("peer stdin already closed")),
        }
    }

    /// Says "stop" (closes the peer's stdin) and waits for a clean exit;
    /// kills it when it takes too long.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.stdin = None;
        let status = self.reap(EXIT_TIMEOUT);
        if status == "exit status: 0" {
            Ok(())
        } else {
            Err(io::Error::other(format!("peer {} ended badly: {status}", self.what)))
        }
    }

    /// SIGKILL now, and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn reap(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return format!("killed after {timeout:?}");
                }
                Err(e) => return e.to_string(),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
