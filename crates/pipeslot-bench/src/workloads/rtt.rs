//! Workload 1: round trip, 64 B request and 64 B reply, one client.
//!
//! pipeslot's transact (blocking; tokio current-thread and multi-thread, each
//! on the socket and on shared memory;
//! both ends through the C ABI, against the blocking API)
//! against a raw Unix stream ping-pong (blocking with `send`/`recv`, and
//! tokio's `UnixStream`), raw
//! `SOCK_SEQPACKET`, `interprocess` local sockets, ipc-channel's byte channels (with
//! the `ipc-channel` feature) and ZeroMQ REQ/REP. Both
//! processes use the same front end. The figure is the median round trip
//! of a run; the p99 is kept in the JSON.

use std::io;
use std::time::{Duration, Instant};

use pipeslot::PipeMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{pin_label, run_cases, Addr, Case, Ctx, Place, Sample};
use crate::link::{self, is_end, Kind, Link};
use crate::peer::{Control, Peer, PeerSpec};
use crate::report::{Outcome, TargetDef, Unit};
use crate::Workload;

const SIZE: usize = 64;

use pipeslot_ffi as abi;

/// The C ABI's calls as the bench makes them.
mod ffi {
    pub(super) use pipeslot_ffi::safe::*;
    use std::io;

    pub(super) fn c_name(addr: &str) -> io::Result<std::ffi::CString> {
        std::ffi::CString::new(addr).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the name"))
    }

    /// A code from the ABI as an error that names it.
    pub(super) fn error(rc: u32, what: &str) -> io::Error {
        pipeslot::Error::new(pipeslot::Win32Error(rc), format!("{what} through the C ABI")).into()
    }
}

/// The front end of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Blocking(Kind),
    /// tokio: the multi-thread runtime (or current-thread), the
    /// shared-memory data path (or the socket).
    PipeTokio {
        multi: bool,
        shm: bool,
    },
    UnixTokio(bool),
    /// Both ends through the C ABI (`pipeslot-ffi`), as a C program calls it.
    Ffi,
}

/// Every case: name, front end, baseline.
const CASES: [(&str, Front, Option<&str>); 15] = [
    (
        "pipeslot-blocking",
        Front::Blocking(Kind::PipeMessage),
        Some("unix-stream"),
    ),
    (
        "pipeslot-shm",
        Front::Blocking(Kind::PipeMessageShm),
        Some("unix-stream"),
    ),
    ("shm-floor", Front::Blocking(Kind::ShmFloor), Some("unix-stream")),
    ("pipeslot-ffi", Front::Ffi, Some("pipeslot-blocking")),
    (
        "pipeslot-tokio-ct",
        Front::PipeTokio {
            multi: false,
            shm: false,
        },
        Some("unix-stream-tokio-ct"),
    ),
    (
        "pipeslot-tokio-mt",
        Front::PipeTokio {
            multi: true,
            shm: false,
        },
        Some("unix-stream-tokio-mt"),
    ),
    (
        "pipeslot-tokio-shm-ct",
        Front::PipeTokio {
            multi: false,
            shm: true,
        },
        Some("unix-stream-tokio-ct"),
    ),
    (
        "pipeslot-tokio-shm-mt",
        Front::PipeTokio { multi: true, shm: true },
        Some("unix-stream-tokio-mt"),
    ),
    ("unix-stream", Front::Blocking(Kind::UnixStream), None),
    ("unix-stream-tokio-ct", Front::UnixTokio(false), Some("unix-stream")),
    ("unix-stream-tokio-mt", Front::UnixTokio(true), Some("unix-stream")),
    ("seqpacket", Front::Blocking(Kind::SeqPacket), Some("unix-stream")),
    ("interprocess", Front::Blocking(Kind::Interprocess), Some("unix-stream")),
    ("ipc-channel", Front::Blocking(Kind::IpcChannel), Some("unix-stream")),
    ("zeromq-req-rep", Front::Blocking(Kind::ZmqReqRep), Some("unix-stream")),
];

fn front(case: &str) -> io::Result<Front> {
    CASES
        .iter()
        .find(|c| c.0 == case)
        .map(|c| c.1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no rtt case {case}")))
}

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let plan = ctx.plan.clone();
    let measure = |peer: &mut Peer, spec: &PeerSpec| measure(&plan, peer, spec);
    let mut cases = Vec::new();
    let mut targets = Vec::new();
    for pin in plan.pin_variants(ctx.cpu) {
        let variant = format!("64 B {}", pin_label(pin));
        for (name, front, baseline) in CASES {
            cases.push(Case {
                name,
                variant: variant.clone(),
                unit: Unit::Micros,
                baseline,
                place: pin,
                addr: if matches!(
                    front,
                    Front::Blocking(Kind::PipeMessage | Kind::PipeMessageShm) | Front::PipeTokio { .. } | Front::Ffi
                ) {
                    Addr::Pipe
                } else {
                    Addr::Path
                },
                spec: PeerSpec {
                    size: SIZE,
                    ..PeerSpec::default()
                },
                measure: &measure,
            });
        }
        let key = |case: &str| format!("rtt/{case}/{variant}");
        let p = pin_label(pin);
        // Across CPUs a wake-up costs most of a socket's round trip, which
        // a brief look before sleeping saves.
        let shm_limit = if matches!(pin, Place::Split(..)) { 0.25 } else { 0.60 };
        targets.extend([
            TargetDef::ratio(
                format!("round trip ≤ 1.15× raw Unix stream, blocking ({p})"),
                key("pipeslot-blocking"),
                vec![key("unix-stream")],
                1.15,
            ),
            TargetDef::ratio(
                format!("round trip on shared memory ≤ {shm_limit:.2}× raw Unix stream, blocking ({p})"),
                key("pipeslot-shm"),
                vec![key("unix-stream")],
                shm_limit,
            ),
            TargetDef::ratio(
                format!("round trip on shared memory ≤ 1.10× a bare shared-memory + eventfd slot ({p})"),
                key("pipeslot-shm"),
                vec![key("shm-floor")],
                1.10,
            ),
            TargetDef::ratio(
                format!("round trip through the C ABI ≤ 1.10× the Rust blocking API ({p})"),
                key("pipeslot-ffi"),
                vec![key("pipeslot-blocking")],
                1.10,
            ),
            TargetDef::ratio(
                format!("round trip ≤ 1.20× raw tokio UnixStream, current-thread ({p})"),
                key("pipeslot-tokio-ct"),
                vec![key("unix-stream-tokio-ct")],
                1.20,
            ),
            TargetDef::ratio(
                format!("round trip ≤ 1.20× raw tokio UnixStream, multi-thread ({p})"),
                key("pipeslot-tokio-mt"),
                vec![key("unix-stream-tokio-mt")],
                1.20,
            ),
            TargetDef::ratio(
                format!("round trip on shared memory ≤ 0.80× raw tokio UnixStream, current-thread ({p})"),
                key("pipeslot-tokio-shm-ct"),
                vec![key("unix-stream-tokio-ct")],
                0.80,
            ),
            TargetDef::ratio(
                format!("round trip on shared memory ≤ 0.80× raw tokio UnixStream, multi-thread ({p})"),
                key("pipeslot-tokio-shm-mt"),
                vec![key("unix-stream-tokio-mt")],
                0.80,
            ),
            TargetDef::ratio(
                format!("round trip faster than interprocess ({p})"),
                key("pipeslot-blocking"),
                vec![key("interprocess")],
                1.0,
            ),
            TargetDef::ratio(
                format!("round trip faster than ipc-channel ({p})"),
                key("pipeslot-blocking"),
                vec![key("ipc-channel")],
                1.0,
            ),
            TargetDef::ratio(
                format!("round trip faster than ZeroMQ REQ/REP ({p})"),
                key("pipeslot-blocking"),
                vec![key("zeromq-req-rep")],
                1.0,
            ),
        ]);
    }
    let rows = run_cases(ctx, Workload::Rtt, &cases);
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}

/// Times warm-up plus timed round trips; the median and p99 in µs.
fn time_round_trips(warmup: usize, iters: usize, mut round_trip: impl FnMut() -> io::Result<()>) -> io::Result<Sample> {
    for _ in 0..warmup {
        round_trip()?;
    }
    let mut d = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        round_trip()?;
        d.push(t.elapsed());
    }
    Ok(latency_sample(&d))
}

fn latency_sample(d: &[Duration]) -> Sample {
    let (median, p99) = crate::stats::latency(d);
    Sample {
        value: median,
        p99: Some(p99),
    }
}

fn runtime(multi: bool) -> io::Result<tokio::runtime::Runtime> {
    if multi {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
}

fn measure(plan: &super::Plan, _peer: &mut Peer, spec: &PeerSpec) -> io::Result<Sample> {
    let req = [0x5au8; SIZE];
    let mut reply = [0u8; SIZE];
    let (warmup, iters) = (plan.rtt_warmup, plan.rtt_iters);
    match front(&spec.case)? {
        Front::Blocking(kind) => {
            let mut l = link::connect(kind, spec)?;
            let s = time_round_trips(warmup, iters, || l.round_trip(&req, &mut reply))?;
            l.close()?;
            Ok(s)
        }
        Front::PipeTokio { multi, shm } => runtime(multi)?.block_on(async {
            let c = pipeslot::tokio::ClientOptions::new()
                .pipe_mode(PipeMode::Message)
                .shared_memory(shm)
                .open(&spec.addr)?;
            let mut d = Vec::with_capacity(iters);
            for i in 0..warmup + iters {
                let t = Instant::now();
                c.transact(&req, &mut reply).await?;
                if i >= warmup {
                    d.push(t.elapsed());
                }
            }
            Ok(latency_sample(&d))
        }),
        Front::Ffi => {
            let h = ffi::create_file(
                &ffi::c_name(&spec.addr)?,
                abi::GENERIC_READ | abi::GENERIC_WRITE,
                abi::PIPE_READMODE_MESSAGE,
            )
            .map_err(|rc| ffi::error(rc, "pipeslot_create_file"))?;
            let s = time_round_trips(warmup, iters, || match ffi::transact_named_pipe(h, &req, &mut reply) {
                (0, n) if n == SIZE => Ok(()),
                (rc, _) => Err(ffi::error(rc, "pipeslot_transact_named_pipe")),
            });
            abi::pipeslot_close_handle(h);
            s
        }
        Front::UnixTokio(multi) => runtime(multi)?.block_on(async {
            let mut c = tokio::net::UnixStream::connect(&spec.addr).await?;
            let mut d = Vec::with_capacity(iters);
            for i in 0..warmup + iters {
                let t = Instant::now();
                c.write_all(&req).await?;
                c.read_exact(&mut reply).await?;
                if i >= warmup {
                    d.push(t.elapsed());
                }
            }
            Ok(latency_sample(&d))
        }),
    }
}

/// The peer: an echo server of the case's kind, until the client leaves.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    match front(&spec.case)? {
        Front::Blocking(kind) => {
            let mut l = link::serve(kind, spec, ctl)?;
            echo(l.as_mut(), spec.size)
        }
        Front::PipeTokio { multi, shm } => runtime(multi)?.block_on(async {
            let server = pipeslot::tokio::ServerOptions::new()
                .pipe_mode(PipeMode::Message)
                .shared_memory(shm)
                .first_pipe_instance(true)
                .create(&spec.addr)?;
            ctl.ready()?;
            server.connect().await?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let m = match server.read_msg(&mut buf).await {
                    Ok(m) => m,
                    Err(e) if is_end(&e) => return Ok(()),
                    Err(e) => return Err(e),
                };
                match server.write_msg(&buf[..m.len]).await {
                    Err(e) if is_end(&e) => return Ok(()),
                    r => r?,
                }
            }
        }),
        Front::Ffi => {
            let h = ffi::create_named_pipe(
                &ffi::c_name(&spec.addr)?,
                abi::PIPE_ACCESS_DUPLEX | abi::FILE_FLAG_FIRST_PIPE_INSTANCE,
                abi::PIPE_TYPE_MESSAGE | abi::PIPE_READMODE_MESSAGE,
                1,
                0,
                0,
                0,
                0,
            )
            .map_err(|rc| ffi::error(rc, "pipeslot_create_named_pipe"))?;
            ctl.ready()?;
            let rc = abi::pipeslot_connect_named_pipe(h, abi::INFINITE);
            if rc != 0 {
                return Err(ffi::error(rc, "pipeslot_connect_named_pipe"));
            }
            let mut buf = vec![0u8; 64 << 10];
            let end = loop {
                let (rc, n) = ffi::read_file(h, &mut buf);
                if rc != 0 {
                    break rc;
                }
                if let Err(rc) = ffi::write_file(h, &buf[..n]) {
                    break rc;
                }
            };
            abi::pipeslot_close_handle(h);
            match end {
                abi::ERROR_BROKEN_PIPE | abi::ERROR_NO_DATA => Ok(()),
                rc => Err(ffi::error(rc, "the echo")),
            }
        }
        Front::UnixTokio(multi) => runtime(multi)?.block_on(async {
            let listener = tokio::net::UnixListener::bind(&spec.addr)?;
            ctl.ready()?;
            let (mut s, _) = listener.accept().await?;
            let mut buf = vec![0u8; spec.size];
            loop {
                match s.read_exact(&mut buf).await {
                    Err(e) if is_end(&e) => return Ok(()),
                    r => r?,
                };
                s.write_all(&buf).await?;
            }
        }),
    }
}

/// Sends back every message until the other side leaves.
pub(crate) fn echo(l: &mut dyn Link, size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; size.max(64 << 10)];
    loop {
        let n = match l.recv(&mut buf) {
            Ok(Some(n)) if n > 0 => n,
            Ok(_) => return Ok(()),
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        match l.send(&buf[..n]) {
            Err(e) if is_end(&e) => return Ok(()),
            r => r?,
        }
    }
}
