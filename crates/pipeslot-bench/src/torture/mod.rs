//! `pipeslot torture`: load, kills and leak counts, with figures, run
//! short by CI and long on demand (docs/RELIABILITY.md).
//!
//! ```text
//!   torture_main(args) ─▶ load::{blocking, tokio}  N clients × M messages ─▶ echo peer
//!                      ─▶ load::blocking (Dial through a gateway in this process) ─▶ echo peer
//!                      ─▶ load::blocking (Dial through a private smbd) ─▶ echo behind its pipe proxy
//!                      ─▶ kills::servers           SIGKILL the echo peer mid-call (here, and
//!                                                  behind the gateway with a remote client)
//!                      ─▶ kills::clients           SIGKILL a client peer mid-call (local,
//!                                                  and remote through the gateway)
//!                      ─▶ leak counts (fds, threads, namespace entries) before and after
//! ```
//!
//! The peers are this binary re-executed (`peer.rs`), as the bench's are.

mod data;
mod dial;
mod kills;
mod load;

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::peer::{Control, Peer, PeerSpec};

/// Load, SIGKILLs and leak counts on local pipes and through a gateway, with figures.
#[derive(Debug, Parser)]
#[command(name = "pipeslot torture", disable_version_flag = true)]
struct Args {
    /// The short run CI makes (4 clients × 500 messages, 200 kills).
    #[arg(long)]
    quick: bool,
    /// Concurrent clients of the load (1..=10000; default 16). Past 254
    /// the echo server's pipe has unlimited instances, one per client.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=10000))]
    clients: Option<u16>,
    /// Messages per client (default 5,000).
    #[arg(long, value_name = "M")]
    messages: Option<u64>,
    /// SIGKILLs in all, half of servers and half of clients (default 1,000).
    #[arg(long, value_name = "K")]
    kills: Option<u64>,
    /// The seed of every random choice (default: from the clock; printed,
    /// so a failing run can be made again).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Soak: repeat whole runs (seed, seed + 1, …) for this many seconds,
    /// sampling this process's resident memory, descriptors and threads
    /// after each; fails when they grow.
    #[arg(long, value_name = "SECS")]
    soak: Option<u64>,
}

/// Runs `pipeslot torture ARGS`; the exit status (0: every check held).
pub fn torture_main(args: impl IntoIterator<Item = String>) -> i32 {
    let args = match Args::try_parse_from(std::iter::once("pipeslot torture".to_owned()).chain(args)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        // A reader that left (`| head`): nothing more to say, as the command's verbs.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("pipeslot torture: {e}");
            1
        }
    }
}

/// A gateway of this process on loopback, exporting one local pipe to one
/// account.
struct Gateway {
    port: u16,
    password: String,
}

pub(crate) const GATEWAY_USER: &str = "torture";

impl Gateway {
    fn start(local: &str) -> io::Result<Gateway> {
        let short = short_name(local);
        let password = format!("pw-{}", std::process::id());
        let mut g = pipeslot::gateway::GatewayOptions::new(([127, 0, 0, 1], 0).into());
        g.user(GATEWAY_USER, &password).export(short);
        let g = g.bind()?;
        let port = g.local_addr()?.port();
        std::thread::spawn(move || g.serve());
        Ok(Gateway { port, password })
    }

    fn dial(&self, local: &str) -> dial::Dial {
        dial::Dial::through_gateway(self.port, GATEWAY_USER, &self.password, short_name(local))
    }
}

/// `0..=64 KiB`, or the bounds in bytes when they are not the load's own.
fn sizes((min, max): (usize, usize)) -> String {
    if max == data::MAX_MESSAGE {
        format!("{min}..=64 KiB")
    } else {
        format!("{min}..={max} B")
    }
}

/// A private smbd serving an echo pipe of this process.
struct SambaLab {
    smbd: crate::workloads::smb::smbd::Smbd,
    _echo: crate::workloads::smb::smbd::NpaPipe,
}

const SAMBA_PIPE: &str = "tortureecho";

fn samba_lab() -> Option<SambaLab> {
    use crate::workloads::smb::smbd;
    let smbd = smbd::Smbd::start("torture", "")?;
    let echo = smbd::NpaPipe::serve(smbd.np_socket(SAMBA_PIPE), true, |m| {
        smbd::Answer::Reply(vec![m.to_vec()])
    });
    Some(SambaLab { smbd, _echo: echo })
}

impl SambaLab {
    fn dial(&self) -> dial::Dial {
        use crate::workloads::smb::smbd;
        dial::Dial::through_gateway(self.smbd.port, smbd::USER, smbd::PASSWORD, SAMBA_PIPE)
            .labelled("samba")
            .lengths(1, u16::MAX as usize)
    }
}

/// `NAME` of `\\.\pipe\NAME`.
fn short_name(local: &str) -> &str {
    local.rsplit('\\').next().unwrap_or(local)
}

/// Counts of what a process holds, to compare before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    fds: usize,
    threads: usize,
    entries: usize,
}

fn held(dir: &Path) -> Held {
    let count = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0);
    Held {
        fds: count(Path::new("/proc/self/fd")),
        threads,
        entries: count(dir),
    }
}

/// Waits up to a second for threads that are ending (a killed peer's
/// reader) to be gone, then counts.
fn held_after(dir: &Path, before: Held) -> Held {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now = held(dir);
        if (now.fds <= before.fds && now.threads <= before.threads) || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What this process holds after a soak round.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss: u64,
    held: Held,
}

fn run(a: &Args) -> io::Result<bool> {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    crate::pin::raise_fd_limit();
    let dir = crate::workloads::TempDir::new()?;
    // This process's pipes live in the run's own root, as the peers' do.
    std::env::set_var(pipeslot::ROOT_ENV, dir.path());
    // Long-lived, as a host's are: a soak's rounds share them.
    let fixture = Fixture::start()?;
    let Some(secs) = a.soak else {
        return round(a, seed, dir.path(), &fixture);
    };
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut ok = true;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) && ok {
        ok &= round(a, seed.wrapping_add(n), dir.path(), &fixture)?;
        n += 1;
        samples.push(Sample {
            at: start.elapsed(),
            rss: crate::pin::resident_bytes().unwrap_or(0),
            held: held(dir.path()),
        });
    }
    let mut out = io::stdout().lock();
    writeln!(out, "soak   {n} rounds in {:.0?}; after each round:", start.elapsed())?;
    let step = (samples.len() / 10).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step == 0 || i + 1 == samples.len() {
            writeln!(
                out,
                "soak   round {:>5} at {:>7.0?}: RSS {:>7.1} MiB, {} fds, {} threads",
                i + 1,
                s.at,
                s.rss as f64 / f64::from(1u32 << 20),
                s.held.fds,
                s.held.threads
            )?;
        }
    }
    // The first round warms up what stays (runtimes, caches); from then
    // on nothing may grow but the allocator's slack.
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let grew = last.held.fds > first.held.fds
            || last.held.threads > first.held.threads
            || last.rss > first.rss + first.rss / 2 + (16 << 20);
        if grew {
            ok = false;
            writeln!(out, "  FAILED: the process grew over the soak")?;
        }
    }
    writeln!(out, "soak: {}", if ok { "ok" } else { "FAILED" })?;
    Ok(ok)
}

/// The pipe names of a run (the same in every round of a soak).
fn name(what: &str) -> String {
    format!(r"\\.\pipe\torture-{what}-{}", std::process::id())
}

/// What a run starts once: the gateways of this process and the Samba lab.
struct Fixture {
    gateway: Gateway,
    behind_gateway: Gateway,
    remote_client_gateway: Gateway,
    samba: Option<SambaLab>,
}

impl Fixture {
    fn start() -> io::Result<Fixture> {
        Ok(Fixture {
            // The load's server through a gateway of our own on loopback.
            gateway: Gateway::start(&name("load"))?,
            behind_gateway: Gateway::start(&name("behind-gateway"))?,
            remote_client_gateway: Gateway::start(&name("remote-client-kill"))?,
            // And our client against Samba: a private smbd on loopback whose
            // pipe `tortureecho` is an echo server of this process behind its
            // pipe proxy (the interop tests' lab); skipped without root and samba.
            samba: samba_lab(),
        })
    }
}

fn round(a: &Args, seed: u64, root: &Path, fixture: &Fixture) -> io::Result<bool> {
    let clients = usize::from(a.clients.unwrap_or(if a.quick { 4 } else { 16 }));
    let messages = a.messages.unwrap_or(if a.quick { 500 } else { 5_000 });
    let kills = a.kills.unwrap_or(if a.quick { 200 } else { 1_000 });
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "pipeslot torture: seed {seed} (--seed {seed} runs the same choices)"
    )?;
    let mut ok = true;

    // The load, through each front end, against one echo peer.
    let load_name = name("load");
    let echo = Peer::spawn(
        &PeerSpec {
            workload: "torture".into(),
            case: "echo".into(),
            addr: load_name.clone(),
            count: clients as u64,
            size: data::MAX_MESSAGE + 1,
            lifetime_secs: 3600,
            ..PeerSpec::default()
        },
        root,
    )?;
    // The same server through the gateway: our SMB client, signed, on one
    // session; fewer clients and messages, as each exchange crosses two hops.
    let gateway = &fixture.gateway;
    let remote_clients = clients.min(8);
    let remote_messages = (messages / 5).max(1);
    let samba = &fixture.samba;
    let mut loads = vec![
        load::blocking(&dial::Dial::local(&load_name), clients, messages, seed),
        load::tokio(&load_name, clients, messages, seed ^ 1),
        load::blocking(&gateway.dial(&load_name), remote_clients, remote_messages, seed ^ 4),
    ];
    match &samba {
        Some(lab) => loads.push(load::blocking(&lab.dial(), remote_clients, remote_messages, seed ^ 8)),
        None => writeln!(
            out,
            "load   samba    skipped: needs root and Debian's samba (a private smbd)"
        )?,
    }
    for f in loads {
        let mib = f.bytes as f64 / (1024.0 * 1024.0);
        writeln!(
            out,
            "load   {:<8} {} clients × {} messages ({}, message mode, random short reads): \
             {} replies checked byte for byte, {mib:.1} MiB each way, {} partial reads continued, \
             {} wrong, lost or not Win32-exact, {:.1} s",
            f.front,
            f.clients,
            f.per_client,
            sizes(f.lens),
            f.checked,
            f.partial_reads,
            f.failures.len(),
            f.elapsed.as_secs_f64()
        )?;
        let expected = f.clients as u64 * f.per_client;
        if f.checked != expected {
            ok = false;
            writeln!(out, "  FAILED: {} of {expected} replies checked", f.checked)?;
        }
        ok &= report_failures(&mut out, &f.failures)?;
    }
    echo.finish()?;

    // The kills, with what this process holds counted around them.
    let server_kills = kills / 2;
    let behind = name("behind-gateway");
    let gateway_kills = (kills / 10).max(1);
    let behind_gateway = &fixture.behind_gateway;
    let remote_client = name("remote-client-kill");
    let remote_client_gateway = &fixture.remote_client_gateway;
    let before = held(root);
    for f in [
        kills::servers(
            root,
            &name("server-kill"),
            &dial::Dial::local(&name("server-kill")),
            server_kills,
            seed ^ 2,
        ),
        kills::clients(root, &name("client-kill"), None, kills - server_kills, seed ^ 3),
        kills::servers(root, &behind, &behind_gateway.dial(&behind), gateway_kills, seed ^ 5),
        kills::gateways(
            root,
            &name("through-gateway"),
            &behind_gateway.password,
            gateway_kills,
            seed ^ 6,
        ),
        kills::clients(
            root,
            &remote_client,
            Some((remote_client_gateway.port, &remote_client_gateway.password)),
            gateway_kills,
            seed ^ 7,
        ),
    ] {
        let mut f = f;
        f.returns.sort();
        let errors: Vec<String> = f.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let during: Vec<String> = f.during.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(
            out,
            "kills  {:<8} {} SIGKILLs of the {} mid-call: {} blocked calls returned, median {:.2?}, \
             p99 {:.2?}, slowest {:.2?} (bound {}); in flight: {}; errors: {}",
            match f.victim {
                kills::Victim::Server => "server",
                kills::Victim::ServerBehindGateway => "behind",
                kills::Victim::Gateway => "gateway",
                kills::Victim::Client => "client",
                kills::Victim::RemoteClient => "remote",
            },
            f.kills,
            match f.victim {
                kills::Victim::Server => "server process, then a new one on the same name",
                kills::Victim::ServerBehindGateway =>
                    "server process behind the gateway, its client remote (SMB), then a new one",
                kills::Victim::Gateway =>
                    "gateway process between a remote client and a local server, then a new one on the same port",
                kills::Victim::Client => "client process",
                kills::Victim::RemoteClient => "remote client process (SMB, through the gateway)",
            },
            f.returns.len(),
            pct_of(&f.returns, 0.5),
            pct_of(&f.returns, 0.99),
            f.returns.last().copied().unwrap_or_default(),
            f.bounds(),
            during.join(", "),
            errors.join(", ")
        )?;
        ok &= report_failures(&mut out, &f.failures)?;
    }
    let after = held_after(root, before);
    // A killed server's folder stays until the next server of the name
    // takes it back: one stale name may remain of each name whose server is killed.
    let leaked = after.fds > before.fds || after.threads > before.threads || after.entries > before.entries + 3;
    writeln!(
        out,
        "leaks  file descriptors {} → {}, threads {} → {}, namespace entries {} → {} (a killed server's name stays until it is served again)",
        before.fds, after.fds, before.threads, after.threads, before.entries, after.entries
    )?;
    if leaked {
        ok = false;
        writeln!(out, "  FAILED: something leaked")?;
    }
    writeln!(out, "torture: {}", if ok { "ok" } else { "FAILED" })?;
    Ok(ok)
}

fn pct_of(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Prints up to ten failures; true when there were none.
fn report_failures(out: &mut impl Write, failures: &[String]) -> io::Result<bool> {
    for f in failures.iter().take(10) {
        writeln!(out, "  FAILED: {f}")?;
    }
    if failures.len() > 10 {
        writeln!(out, "  … and {} more", failures.len() - 10)?;
    }
    Ok(failures.is_empty())
}

/// The peers' side: `echo` serves `count` instances of `addr` (messages up
/// to `size` bytes) until told to stop; `client` opens `addr`, says it is
/// ready, and runs the client loop until killed.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    match spec.case.as_str() {
        "echo" => {
            let n = spec.count.clamp(1, 10_000) as usize;
            let servers = (0..n)
                .map(|_| {
                    let mut o = pipeslot::blocking::ServerOptions::new();
                    o.pipe_mode(pipeslot::PipeMode::Message)
                        // The gateway (this user's) brings remote clients.
                        .reject_remote_clients(false);
                    if n <= 254 {
                        o.max_instances(n);
                    }
                    o.create(&spec.addr)
                })
                .collect::<io::Result<Vec<_>>>()?;
            let size = spec.size.max(64);
            for s in servers {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; size];
                    while s.connect().is_ok() {
                        kills::echo_until_error(&s, &mut buf);
                        let _ = s.disconnect();
                    }
                });
            }
            ctl.ready()?;
            ctl.wait_stop();
            Ok(())
        }
        // A gateway on loopback (`count`: the port, 0 for any) exporting
        // one local pipe to the torture's account: `addr` is `NAME|PASSWORD`.
        "gateway" => {
            let (short, password) = spec.addr.split_once('|').unwrap_or((&spec.addr, ""));
            let port = u16::try_from(spec.count).unwrap_or(0);
            let mut g = pipeslot::gateway::GatewayOptions::new(([127, 0, 0, 1], port).into());
            g.user(GATEWAY_USER, password).export(short);
            let g = g.bind()?;
            let bound = g.local_addr()?.port();
            std::thread::spawn(move || g.serve());
            ctl.ready()?;
            ctl.say(&format!("PORT {bound}"))?;
            ctl.wait_stop();
            Ok(())
        }
        // `addr`: a local name, or `NAME|PORT|PASSWORD` through a gateway.
        "client" => {
            let dial = match spec.addr.split('|').collect::<Vec<_>>()[..] {
                [short, port, password] => {
                    let port = port
                        .parse()
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("port {port:?}")))?;
                    dial::Dial::through_gateway(port, GATEWAY_USER, password, short)
                }
                _ => dial::Dial::local(&spec.addr),
            };
            let c = dial.open_waiting(Duration::from_secs(5))?;
            ctl.ready()?;
            let (op, _, e) = kills::client_loop(&dial, spec.count, c, false);
            Err(io::Error::other(format!("{op}: {e}")))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no torture case named {other}"),
        )),
    }
}
