//! Workload 7: resident bytes per idle connected server instance, on the
//! socket and on the shared-memory path.
//!
//! The peer (the server) notes its resident set (`VmRSS`), creates 1,000
//! instances, says `READY`; this process opens 1,000 clients and says `GO`;
//! the peer connects every instance, notes its resident set again and
//! reports the difference per instance. Kernel socket buffers are not in
//! the resident set: this is the user-space cost. The raw baseline holds
//! 1,000 accepted `UnixStream`s.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use pipeslot::PipeMode;

use super::{run_cases, Addr, Case, Ctx, Place, Sample};
use crate::peer::{Control, Peer, PeerSpec};
use crate::pin::resident_bytes;
use crate::report::{Outcome, TargetDef, Unit};
use crate::Workload;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The `-shm` cases' servers take the shared-memory path.
const CASES: [(&str, Addr); 5] = [
    ("pipeslot-blocking", Addr::Pipe),
    ("pipeslot-tokio", Addr::Pipe),
    ("pipeslot-blocking-shm", Addr::Pipe),
    ("pipeslot-tokio-shm", Addr::Pipe),
    ("unix-stream", Addr::Path),
];

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let n = ctx.plan.memory_instances;
    let measure = |peer: &mut Peer, spec: &PeerSpec| {
        let deadline = Instant::now() + TIMEOUT;
        let mut pipes = Vec::new();
        let mut socks = Vec::new();
        for _ in 0..spec.count {
            if spec.case.starts_with("pipeslot") {
                pipes.push(super::connect::open_pipe(&spec.addr, deadline)?);
            } else {
                socks.push(UnixStream::connect(&spec.addr)?);
            }
        }
        peer.send("GO")?;
        let per = peer.expect("RESULT", TIMEOUT)?;
        let per: f64 = per
            .parse()
            .map_err(|_| io::Error::other(format!("peer sent a bad RESULT: {per}")))?;
        Ok(Sample::of(per))
    };
    let variant = format!("{n} idle");
    let cases: Vec<Case<'_>> = CASES
        .iter()
        .map(|&(name, addr)| Case {
            name,
            variant: variant.clone(),
            unit: Unit::Bytes,
            baseline: None,
            place: Place::Unpinned,
            addr,
            spec: PeerSpec {
                count: n,
                ..PeerSpec::default()
            },
            measure: &measure,
        })
        .collect();
    let targets = CASES
        .iter()
        .map(|c| c.0)
        .filter(|c| c.starts_with("pipeslot"))
        .map(|c| {
            TargetDef::absolute(
                format!("≤ 16 KiB user-space memory per idle instance ({c})"),
                format!("memory/{c}/{variant}"),
                16.0 * 1024.0,
            )
        })
        .collect();
    let rows = run_cases(ctx, Workload::Memory, &cases);
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}

/// The peer: `spec.count` instances (or accepted sockets), measured.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    let n = spec.count as usize;
    let per = |before: u64| -> io::Result<String> {
        let after = resident_bytes()?;
        Ok(format!("RESULT {}", after.saturating_sub(before) as f64 / n as f64))
    };
    let go = |ctl: &mut Control| -> io::Result<()> {
        match ctl.line()?.as_str() {
            "GO" => Ok(()),
            other => Err(io::Error::other(format!("expected GO, got {other}"))),
        }
    };
    let shm = spec.case.ends_with("-shm");
    match spec.case.as_str() {
        "pipeslot-blocking" | "pipeslot-blocking-shm" => {
            let before = resident_bytes()?;
            let mut opts = pipeslot::blocking::ServerOptions::new();
            opts.pipe_mode(PipeMode::Message).shared_memory(shm);
            let mut servers = Vec::with_capacity(n);
            servers.push(opts.clone().first_pipe_instance(true).create(&spec.addr)?);
            for _ in 1..n {
                servers.push(opts.create(&spec.addr)?);
            }
            ctl.ready()?;
            go(ctl)?;
            for s in &servers {
                if !s.connect_timeout(TIMEOUT)? {
                    return Err(io::Error::other("an instance got no client"));
                }
            }
            let line = per(before)?;
            ctl.say(&line)?;
            ctl.wait_stop();
        }
        "pipeslot-tokio" | "pipeslot-tokio-shm" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let before = resident_bytes()?;
                let mut opts = pipeslot::tokio::ServerOptions::new();
                opts.pipe_mode(PipeMode::Message).shared_memory(shm);
                let mut servers = Vec::with_capacity(n);
                servers.push(opts.clone().first_pipe_instance(true).create(&spec.addr)?);
                for _ in 1..n {
                    servers.push(opts.create(&spec.addr)?);
                }
                ctl.ready()?;
                go(ctl)?;
                for s in &servers {
                    tokio::time::timeout(TIMEOUT, s.connect())
                        .await
                        .map_err(|_| io::Error::other("an instance got no client"))??;
                }
                let line = per(before)?;
                ctl.say(&line)?;
                ctl.wait_stop();
                Ok::<_, io::Error>(())
            })?;
        }
        _ => {
            let listener = UnixListener::bind(&spec.addr)?;
            let before = resident_bytes()?;
            // Accept at once: a full backlog would stall the clients.
            let acceptor = std::thread::spawn(move || {
                (0..n)
                    .map(|_| listener.accept().map(|(s, _)| s))
                    .collect::<io::Result<Vec<_>>>()
            });
            ctl.ready()?;
            go(ctl)?;
            let socks = acceptor
                .join()
                .map_err(|_| io::Error::other("the accepting thread panicked"))??;
            let line = per(before)?;
            ctl.say(&line)?;
            ctl.wait_stop();
            drop(socks);
        }
    }
    Ok(())
}
