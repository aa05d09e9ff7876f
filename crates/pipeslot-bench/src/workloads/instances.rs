//! Workload 5: 1 to 254 concurrent clients doing 64 B round trips against
//! one server: how cost grows with clients.
//!
//! The server (the peer) runs tokio's multi-thread runtime: pipeslot's
//! server loop (one instance listening, a task per connected instance), or
//! a raw `UnixListener` with a task per connection. The clients are
//! blocking, one thread each, in this process (raw ones use `send`/`recv`). Two figures per count:
//! - closed loop: every client as fast as it can; aggregate round trips per
//!   second (its p99 is in the JSON);
//! - paced: 5,000 round trips per second offered in total, spread evenly
//!   over the clients; the p99 latency. With a fixed load, the p99 shows
//!   what each extra idle-most-of-the-time client costs; it is compared with
//!   the single client's p99.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pipeslot::PipeMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{run_cases, Addr, Case, Ctx, Place, Plan, Sample};
use crate::baseline::unix::Sock;
use crate::link::is_end;
use crate::peer::{Control, Peer, PeerSpec};
use crate::report::{paired_ratio, Outcome, TargetDef, Unit};
use crate::Workload;

const SIZE: usize = 64;
/// Untimed round trips per client before the figures are taken.
const WARMUP: usize = 5;
/// How long connecting every client may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let plan = ctx.plan.clone();
    let closed = |_: &mut Peer, spec: &PeerSpec| drive(&plan, spec, false);
    let paced = |_: &mut Peer, spec: &PeerSpec| drive(&plan, spec, true);
    let mut cases = Vec::new();
    for &n in &plan.clients {
        for (name, addr) in [("pipeslot", Addr::Pipe), ("unix-stream", Addr::Path)] {
            let spec = PeerSpec {
                size: SIZE,
                count: n as u64,
                ..PeerSpec::default()
            };
            cases.push(Case {
                name,
                variant: closed_variant(n),
                unit: Unit::PerSec,
                baseline: (name == "pipeslot").then_some("unix-stream"),
                place: Place::Unpinned,
                addr,
                spec: spec.clone(),
                measure: &closed,
            });
            cases.push(Case {
                name,
                variant: paced_variant(n),
                unit: Unit::Micros,
                baseline: None,
                place: Place::Unpinned,
                addr,
                spec,
                measure: &paced,
            });
        }
    }
    let mut rows = run_cases(ctx, Workload::Instances, &cases);
    // Paced p99s compare with the same transport's single client.
    let first = plan.clients.first().copied().unwrap_or(1);
    for i in 0..rows.len() {
        if !rows[i].variant.ends_with("paced p99") {
            continue;
        }
        let base = format!("instances/{}/{}", rows[i].case, paced_variant(first));
        if let Some(b) = rows.iter().find(|r| r.key() == base) {
            let ratio = paired_ratio(&rows[i].samples, &[&b.samples], rows[i].better);
            rows[i].ratio = ratio;
            rows[i].baseline = Some(base);
        }
    }
    let most = plan.clients.last().copied().unwrap_or(1);
    let targets = vec![TargetDef::ratio(
        format!("p99 with {most} clients ≤ 4× single-client p99 (paced)"),
        format!("instances/pipeslot/{}", paced_variant(most)),
        vec![format!("instances/pipeslot/{}", paced_variant(first))],
        4.0,
    )];
    let notes = vec![format!(
        "instances: paced = {:.0} round trips/s offered in total, spread over the clients",
        plan.paced_rate
    )];
    Ok(Outcome { rows, targets, notes })
}

fn closed_variant(n: usize) -> String {
    format!("{n:>3} clients, closed loop")
}

fn paced_variant(n: usize) -> String {
    format!("{n:>3} clients, paced p99")
}

/// One connected client.
enum Client {
    Pipe(pipeslot::blocking::NamedPipeClient),
    Unix(Sock),
}

impl Client {
    fn connect(spec: &PeerSpec, deadline: Instant) -> io::Result<Client> {
        if spec.case == "pipeslot" {
            super::connect::open_pipe(&spec.addr, deadline).map(Client::Pipe)
        } else {
            UnixStream::connect(&spec.addr).map(|s| Client::Unix(Sock::from(s)))
        }
    }

    fn round_trip(&mut self, req: &[u8], reply: &mut [u8]) -> io::Result<()> {
        match self {
            Client::Pipe(c) => c.transact(req, reply).map(drop),
            Client::Unix(s) => {
                s.write_all(req)?;
                s.read_exact(reply)
            }
        }
    }
}

/// Connects `spec.count` clients, runs them from a common start, and sums
/// up: aggregate rate (closed loop) or p99 (paced).
fn drive(plan: &Plan, spec: &PeerSpec, paced: bool) -> io::Result<Sample> {
    let n = spec.count as usize;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut clients = (0..n)
        .map(|_| Client::connect(spec, deadline))
        .collect::<io::Result<Vec<_>>>()?;
    // A few untimed round trips each, so first-use costs on both sides
    // (buffers, task stacks, readiness) stay out of the p99.
    let (req, mut reply) = ([0x5au8; SIZE], [0u8; SIZE]);
    for c in &mut clients {
        for _ in 0..WARMUP {
            c.round_trip(&req, &mut reply)?;
        }
    }
    let length = if paced { plan.paced } else { plan.saturate };
    // Time to start every thread before the common start.
    let start = Instant::now() + Duration::from_millis(20) + Duration::from_micros(100) * n as u32;
    let end = start + length;
    let gap = Duration::from_secs_f64(n as f64 / plan.paced_rate);
    let threads = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let first = start + gap.mul_f64(i as f64 / n as f64);
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || -> io::Result<Vec<Duration>> {
                    let req = [0x5au8; SIZE];
                    let mut reply = [0u8; SIZE];
                    let mut lat = Vec::new();
                    let mut next = if paced { first } else { start };
                    sleep_until(start);
                    loop {
                        if paced {
                            sleep_until(next);
                            next += gap;
                        }
                        let t = Instant::now();
                        if t >= end {
                            return Ok(lat);
                        }
                        c.round_trip(&req, &mut reply)?;
                        lat.push(t.elapsed());
                    }
                })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut all = Vec::new();
    for t in threads {
        let lat = t.join().map_err(|_| io::Error::other("a client thread panicked"))??;
        all.extend(lat);
    }
    let (_, p99) = crate::stats::latency(&all);
    if paced {
        Ok(Sample::of(p99))
    } else {
        Ok(Sample {
            value: all.len() as f64 / length.as_secs_f64(),
            p99: Some(p99),
        })
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The peer: a tokio multi-thread server for `spec.count` clients.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut tasks = Vec::new();
        if spec.case == "pipeslot" {
            let mut opts = pipeslot::tokio::ServerOptions::new();
            opts.pipe_mode(PipeMode::Message);
            let mut server = opts.clone().first_pipe_instance(true).create(&spec.addr)?;
            ctl.ready()?;
            for _ in 0..spec.count {
                server.connect().await?;
                let connected = std::mem::replace(&mut server, opts.create(&spec.addr)?);
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        let m = match connected.read_msg(&mut buf).await {
                            Ok(m) => m,
                            Err(e) if is_end(&e) => return Ok(()),
                            Err(e) => return Err(e),
                        };
                        match connected.write_msg(&buf[..m.len]).await {
                            Err(e) if is_end(&e) => return Ok(()),
                            r => r?,
                        }
                    }
                }));
            }
        } else {
            let listener = tokio::net::UnixListener::bind(&spec.addr)?;
            ctl.ready()?;
            for _ in 0..spec.count {
                let (mut s, _) = listener.accept().await?;
                let size = spec.size;
                tasks.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; size];
                    loop {
                        match s.read_exact(&mut buf).await {
                            Err(e) if is_end(&e) => return Ok(()),
                            r => r?,
                        };
                        s.write_all(&buf).await?;
                    }
                }));
            }
        }
        for t in tasks {
            t.await.map_err(io::Error::other)??;
        }
        Ok(())
    })
}
