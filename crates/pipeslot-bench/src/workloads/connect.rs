//! Workload 4: connection rate, open + handshake + close per second.
//!
//! pipeslot: the client opens (connect, hello, reply) and closes, waiting
//! while every instance is busy; the server runs the Win32 loop (connect,
//! create the next instance, drop the served one) on four threads. Raw: connect and close against accept and close; and, for
//! reference, the same with a one-byte hello answered by the server (what a
//! handshake costs on a raw socket). The figure is connections per second
//! until the server has taken them all.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use pipeslot::blocking::{ClientOptions, NamedPipeServer, ServerOptions};
use pipeslot::{Error, WaitTimeout, Win32Error};

use super::{run_cases, Addr, Case, Ctx, Place, Sample};
use crate::peer::{Control, Peer, PeerSpec};
use crate::report::{Outcome, TargetDef, Unit};
use crate::Workload;

/// How long one run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Server threads, each keeping one instance listening (Win32's
/// multi-threaded pipe server), so a client rarely finds them all busy.
const SERVER_THREADS: usize = 4;

/// `pipeslot-shm`: the server takes the shared-memory path (a memfd, two
/// eventfds and a mapping set up per open).
const CASES: [(&str, Addr, Option<&str>); 4] = [
    ("pipeslot", Addr::Pipe, Some("unix-stream")),
    ("pipeslot-shm", Addr::Pipe, Some("unix-stream")),
    ("unix-stream", Addr::Path, None),
    ("unix-stream-hello", Addr::Path, Some("unix-stream")),
];

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let count = ctx.plan.connects;
    let measure = |peer: &mut Peer, spec: &PeerSpec| {
        let t = Instant::now();
        open_all(spec)?;
        peer.expect("DONE", RUN_TIMEOUT)?;
        Ok(Sample::of(spec.count as f64 / t.elapsed().as_secs_f64()))
    };
    let cases: Vec<Case<'_>> = CASES
        .iter()
        .map(|&(name, addr, baseline)| Case {
            name,
            variant: "open+close".to_owned(),
            unit: Unit::PerSec,
            baseline,
            place: Place::Unpinned,
            addr,
            spec: PeerSpec {
                count,
                ..PeerSpec::default()
            },
            measure: &measure,
        })
        .collect();
    let mut targets = vec![TargetDef::ratio_at_least(
        "connection rate ≥ 0.50× raw connect/accept/close".to_owned(),
        "connect/pipeslot/open+close".to_owned(),
        vec!["connect/unix-stream/open+close".to_owned()],
        0.50,
    )];
    // A handshake is a hello and its answer: the fair floor.
    for case in ["pipeslot", "pipeslot-shm"] {
        targets.push(TargetDef::ratio_at_least(
            format!("connection rate ≥ 0.80× raw connect with a one-byte answer ({case})"),
            format!("connect/{case}/open+close"),
            vec!["connect/unix-stream-hello/open+close".to_owned()],
            0.80,
        ));
    }
    let rows = run_cases(ctx, Workload::Connect, &cases);
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}

fn open_all(spec: &PeerSpec) -> io::Result<()> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    for _ in 0..spec.count {
        match spec.case.as_str() {
            "pipeslot" | "pipeslot-shm" => drop(open_pipe(&spec.addr, deadline)?),
            "unix-stream" => drop(UnixStream::connect(&spec.addr)?),
            _ => {
                let mut s = UnixStream::connect(&spec.addr)?;
                s.write_all(b"h")?;
                let mut b = [0u8; 1];
                s.read_exact(&mut b)?;
            }
        }
    }
    Ok(())
}

/// Opens a pipe, waiting while every instance is busy (the client loop
/// Windows documents), until `deadline`. It offers the shared-memory path:
/// the server's options decide which path a case measures.
pub(crate) fn open_pipe(name: &str, deadline: Instant) -> io::Result<pipeslot::blocking::NamedPipeClient> {
    loop {
        match ClientOptions::new()
            .pipe_mode(pipeslot::PipeMode::Message)
            .shared_memory(true)
            .open(name)
        {
            Ok(c) => return Ok(c),
            Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_PIPE_BUSY) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(e);
                }
                match pipeslot::wait_named_pipe(name, WaitTimeout::After(left.min(Duration::from_secs(1)))) {
                    Err(e) if Error::win32(&e) != Some(Win32Error::ERROR_SEM_TIMEOUT) => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One thread of the Win32 server loop: wait for a client on this
/// instance, create the next one, drop the served one; until the threads
/// together have taken `count` clients.
/// The thread that takes the last client says so on `last` at once: the
/// others notice only at their next 20 ms timeout, which must not count.
fn serve_pipe(
    opts: &ServerOptions,
    name: &str,
    count: u64,
    taken: &AtomicU64,
    last: &std::sync::mpsc::Sender<()>,
    mut server: NamedPipeServer,
) -> io::Result<()> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while taken.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the clients did not all come"));
        }
        if server.connect_timeout(Duration::from_millis(20))? {
            if taken.fetch_add(1, Ordering::Relaxed) + 1 == count {
                let _ = last.send(());
            }
            let next = opts.create(name)?;
            drop(std::mem::replace(&mut server, next));
        }
    }
    Ok(())
}

/// The peer: takes `spec.count` connections, then says `DONE`.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    match spec.case.as_str() {
        "pipeslot" | "pipeslot-shm" => {
            let mut opts = ServerOptions::new();
            opts.pipe_mode(pipeslot::PipeMode::Message)
                .shared_memory(spec.case == "pipeslot-shm");
            let mut instances = vec![opts.clone().first_pipe_instance(true).create(&spec.addr)?];
            for _ in 1..SERVER_THREADS {
                instances.push(opts.create(&spec.addr)?);
            }
            let taken = AtomicU64::new(0);
            let (last, all_taken) = std::sync::mpsc::channel();
            ctl.ready()?;
            std::thread::scope(|scope| {
                let threads: Vec<_> = instances
                    .into_iter()
                    .map(|server| {
                        let (opts, taken, last) = (&opts, &taken, last.clone());
                        scope.spawn(move || serve_pipe(opts, &spec.addr, spec.count, taken, &last, server))
                    })
                    .collect();
                drop(last);
                // Every thread gone without the last client is a failure below.
                if all_taken.recv().is_ok() {
                    ctl.say("DONE")?;
                }
                threads
                    .into_iter()
                    .try_for_each(|t| t.join().map_err(|_| io::Error::other("a server thread panicked"))?)
            })?;
            ctl.wait_stop();
            return Ok(());
        }
        case => {
            let listener = UnixListener::bind(&spec.addr)?;
            ctl.ready()?;
            for _ in 0..spec.count {
                let (mut s, _) = listener.accept()?;
                if case == "unix-stream-hello" {
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b)?;
                    s.write_all(&b)?;
                }
            }
        }
    }
    ctl.say("DONE")?;
    ctl.wait_stop();
    Ok(())
}
